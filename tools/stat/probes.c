// SPDX-License-Identifier: MIT
/*
 * vfio-uring-stat: finding the library's USDT probes (the vfio_uring provider's notes in
 * .note.stapsdt) in a target's files, the program and every file a process maps, and
 * attaching a BPF program to each.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "vfio-uring-stat.h"
#include "vfio_uring_stat.skel.h"

/* Every attached probe, destroyed at exit (the kernel would detach them anyway). */
static struct bpf_link **links;
static size_t nlinks;

/*
 * Reads PATH's .note.stapsdt and returns the number of vfio_uring probe sites; sets
 * have[i] for each BPF program whose probe is there. -errno if the file cannot be read.
 */
static int elf_probes(const char *path, struct vfio_uring_stat_bpf *skel, bool *have,
		      unsigned nprogs)
{
	size_t shstrndx, addr_size;
	Elf_Scn *scn = NULL;
	int fd, sites = 0;
	Elf *elf;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx)) {
		if (elf)
			elf_end(elf);
		close(fd);
		return 0;
	}
	addr_size = gelf_getclass(elf) == ELFCLASS32 ? 4 : 8;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		Elf_Data *data;
		const char *name;
		GElf_Nhdr nhdr;
		size_t off = 0, name_off, desc_off;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!name || strcmp(name, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
			const char *desc = (const char *)data->d_buf + desc_off;
			const char *provider, *probe;
			size_t left;

			/* desc: pc, base, semaphore (addresses), provider\0, name\0, args\0 */
			if (nhdr.n_type != 3 || nhdr.n_namesz != sizeof("stapsdt") ||
			    memcmp((const char *)data->d_buf + name_off, "stapsdt", 8) ||
			    nhdr.n_descsz < 3 * addr_size + 2)
				continue;
			provider = desc + 3 * addr_size;
			left = nhdr.n_descsz - 3 * addr_size;
			if (strnlen(provider, left) >= left || strcmp(provider, PROVIDER))
				continue;
			probe = provider + sizeof(PROVIDER);
			left -= sizeof(PROVIDER);
			if (strnlen(probe, left) >= left)
				continue;
			sites++;
			for (unsigned i = 0; i < nprogs; i++)
				if (!strcmp(probe, skel->skeleton->progs[i].name))
					have[i] = true;
		}
	}
	elf_end(elf);
	close(fd);
	return sites;
}

/*
 * The path to open PATH as the target process sees it: PATH itself when the process
 * shares our mount namespace, else through /proc/PID/root (a VMM in a container).
 */
static char *target_path(pid_t pid, const char *path)
{
	char proc_path[PATH_MAX + 64];
	struct stat a, b;

	if (pid < 0)
		return strdup(path);
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/root%s", pid, path);
	if (stat(path, &a) == 0 && stat(proc_path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return strdup(path);
	return strdup(proc_path);
}

/* The executable and every file the process maps: candidates for vfio_uring probes. */
static unsigned mapped_files(pid_t pid, char **out, unsigned max)
{
	char maps[64], line[PATH_MAX + 256];
	unsigned n = 0;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "re");
	if (!f) {
		if (errno == ENOENT)
			die("no process %d", pid);
		die("cannot read %s: %s", maps, strerror(errno));
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		size_t len;
		bool dup = false;

		/* addr perms offset dev inode path: the path is the first '/' on the line */
		if (!path)
			continue;
		len = strcspn(path, "\n");
		path[len] = '\0';
		if (len > 10 && !strcmp(path + len - 10, " (deleted)")) {
			note("process %d maps %s, which was deleted: its probes cannot be attached",
			     pid, path);
			continue;
		}
		for (unsigned i = 0; i < n && !dup; i++)
			dup = !strcmp(out[i], path);
		if (!dup)
			out[n++] = strdup(path);
	}
	fclose(f);
	return n;
}

static void read_comm(struct target *t)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", t->pid);
	f = fopen(path, "re");
	if (f && fgets(t->comm, sizeof(t->comm), f))
		t->comm[strcspn(t->comm, "\n")] = '\0';
	if (f)
		fclose(f);
}

/* Attaches every program whose probe is in FILE; returns the number attached. */
static unsigned attach_file(struct vfio_uring_stat_bpf *skel, pid_t pid, const char *file,
			    const bool *have)
{
	const struct bpf_object_skeleton *s = skel->skeleton;
	unsigned attached = 0;

	for (int i = 0; i < s->prog_cnt; i++) {
		struct bpf_link *link;

		if (!have[i])
			continue;
		link = bpf_program__attach_usdt(*s->progs[i].prog, pid, file, PROVIDER,
						s->progs[i].name, NULL);
		if (!link)
			die("cannot attach to probe %s:%s in %s%s: %s", PROVIDER, s->progs[i].name,
			    file, pid < 0 ? "" : " of the process", strerror(errno));
		links = realloc(links, (nlinks + 1) * sizeof(*links));
		if (!links)
			die("out of memory");
		links[nlinks++] = link;
		attached++;
	}
	return attached;
}

void attach_target(struct vfio_uring_stat_bpf *skel, struct target *t)
{
	unsigned nprogs = skel->skeleton->prog_cnt, total = 0;
	char *candidates[512];
	unsigned ncand;

	if (t->pid >= 0) {
		read_comm(t);
		ncand = mapped_files(t->pid, candidates, 512);
	} else {
		candidates[0] = strdup(t->binary);
		ncand = 1;
	}
	for (unsigned c = 0; c < ncand; c++) {
		bool have[16] = { false };
		char *path = target_path(t->pid, candidates[c]);
		int sites = elf_probes(path, skel, have, nprogs < 16 ? nprogs : 16);

		if (sites < 0 && t->pid < 0)
			die("cannot read %s: %s", path, strerror(-sites));
		if (sites > 0 && t->nfiles < MAX_FILES) {
			unsigned n = attach_file(skel, t->pid, path, have);

			for (unsigned i = 0; i < nprogs && i < 16; i++)
				if (!have[i])
					note("%s has no probe %s:%s (older library?): its counters "
					     "stay 0", path, PROVIDER, skel->skeleton->progs[i].name);
			t->files[t->nfiles++] = path;
			total += n;
			if (t->pid >= 0)
				note("attached %u probes in %s to pid %d (%s)", n, path, t->pid,
				     t->comm);
			else
				note("attached %u probes in %s for every process", n, path);
		} else {
			free(path);
		}
		free(candidates[c]);
	}
	if (!total) {
		if (t->pid >= 0)
			die("process %d (%s) has no " PROVIDER " USDT probes: it does not link "
			    "libvfio-uring, or the library was built without probes "
			    "(-Dprobes=disabled or no sys/sdt.h)", t->pid, t->comm);
		die("%s has no " PROVIDER " USDT probes: give libvfio-uring.so.0 or a program "
		    "linking the library statically, built with probes", t->binary);
	}
}

void detach_probes(void)
{
	for (size_t i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	free(links);
	links = NULL;
	nlinks = 0;
}
