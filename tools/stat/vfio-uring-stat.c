// SPDX-License-Identifier: MIT
/*
 * vfio-uring-stat: live per-device and per-channel byte, packet and rate counters of the
 * vfio-uring migrations running in a process, read from the library's USDT probes with
 * BPF (libbpf CO-RE; the BPF side is bpf/vfio_uring_stat.bpf.c).
 *
 *   vfio-uring-stat -p PID [-p PID ...]   the processes' migrations, until they exit
 *   vfio-uring-stat -b PATH               every process using PATH (libvfio-uring.so.0 or
 *                                         a program linking the library statically)
 *
 * It prints a table every interval and a final summary when the processes exit or on
 * SIGINT/SIGTERM; --json prints one JSON object per line instead.
 *
 * The counters are summed in BPF maps by the probes themselves, so the totals are exact:
 * they equal the library's own counters (vfio_uring_device_get_status().bytes), provided
 * the tool was attached before the transfer started (it says so on stderr: "watching").
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <linux/types.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vfio_uring_stat.h"
#include "vfio_uring_stat.skel.h"

#define PROVIDER "vfio_uring"
#define MAX_TARGETS 64
#define MAX_FILES 16 /* files with vfio_uring probes per target */

struct target {
	pid_t pid;          /* -1: every process using `binary` */
	char *binary;       /* -b PATH */
	int pidfd;          /* -1 when not watched (or pidfd_open is missing) */
	bool exited;
	char comm[64];
	char *files[MAX_FILES];
	unsigned nfiles;
};

struct dev_entry {
	struct vus_dev_key key;
	struct vus_dev_val val;
};

struct chan_entry {
	struct vus_chan_key key;
	struct vus_chan_val val;
};

struct err_entry {
	struct vus_err_key key;
	struct vus_err_val val;
};

/* read_map() stores each value right after its key. */
_Static_assert(offsetof(struct dev_entry, val) == sizeof(struct vus_dev_key), "dev_entry");
_Static_assert(offsetof(struct chan_entry, val) == sizeof(struct vus_chan_key), "chan_entry");
_Static_assert(offsetof(struct err_entry, val) == sizeof(struct vus_err_key), "err_entry");

struct snapshot {
	struct dev_entry *devs;
	size_t ndevs;
	struct chan_entry *chans;
	size_t nchans;
	struct err_entry *errs;
	size_t nerrs;
	double t;           /* CLOCK_MONOTONIC seconds */
};

static struct {
	struct target targets[MAX_TARGETS];
	unsigned ntargets;
	unsigned interval_s;
	bool json;
	bool quiet;
	bool verbose;
	bool tty;
} cfg = { .interval_s = 1 };

static volatile sig_atomic_t stop_signal;

/* Every attached probe, destroyed at exit (the kernel would detach them anyway). */
static struct bpf_link **links;
static size_t nlinks;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("vfio-uring-stat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("vfio-uring-stat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !cfg.verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *side_name(__u32 side)
{
	return side == VUS_SOURCE ? "source" : side == VUS_DESTINATION ? "destination" : "unknown";
}

/* ---- privileges and BPF availability -------------------------------------------------- */

/* Effective capability set from /proc/self/status; 0 if unreadable. */
static uint64_t effective_caps(void)
{
	char line[256];
	uint64_t caps = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	fclose(f);
	return caps;
}

static void check_privileges(void)
{
	const uint64_t sys_admin = 1ull << 21, perfmon = 1ull << 38, bpf = 1ull << 39;
	uint64_t caps = effective_caps();

	if (geteuid() == 0 || (caps & sys_admin) || ((caps & bpf) && (caps & perfmon)))
		return;
	die("must run as root (or with CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load BPF "
	    "programs and attach uprobes; try: sudo vfio-uring-stat ...");
}

static void explain_load_error(int err)
{
	err = err < 0 ? -err : err;
	if (err == ENOSYS)
		die("BPF is not available: this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)");
	if (err == EPERM || err == EACCES)
		die("loading the BPF programs was refused (%s): run as root; check "
		    "kernel.unprivileged_bpf_disabled, lockdown=confidentiality and seccomp "
		    "(containers)", strerror(err));
	die("cannot load the BPF programs: %s (needs a kernel with BPF and uprobes, 5.15 or "
	    "later; run with -v for libbpf's log)", strerror(err));
}

/* ---- finding the probes ----------------------------------------------------------------- */

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

static void attach_target(struct vfio_uring_stat_bpf *skel, struct target *t)
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

/* ---- reading the maps ------------------------------------------------------------------- */

static int cmp_dev(const void *a, const void *b)
{
	const struct vus_dev_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	int c = strncmp(x->idstr, y->idstr, sizeof(x->idstr));
	if (c)
		return c;
	return x->instance_id < y->instance_id ? -1 : x->instance_id > y->instance_id;
}

static int cmp_chan(const void *a, const void *b)
{
	const struct vus_chan_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->channel < y->channel ? -1 : x->channel > y->channel;
}

static int cmp_err(const void *a, const void *b)
{
	const struct vus_err_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Copies a hash map into an array of (key, value) entries, sorted. */
static void *read_map(int fd, size_t key_size, size_t entry_size, size_t max, size_t *count,
		      int (*cmp)(const void *, const void *))
{
	char *entries = calloc(max, entry_size), *key = NULL, next[sizeof(struct vus_dev_key)];
	size_t n = 0;

	if (!entries)
		die("out of memory");
	while (n < max && bpf_map_get_next_key(fd, key, next) == 0) {
		char *e = entries + n * entry_size;

		memcpy(e, next, key_size);
		key = e;
		/* a key deleted in between (never here: nothing deletes) would just be skipped */
		if (bpf_map_lookup_elem(fd, e, e + key_size) == 0)
			n++;
	}
	qsort(entries, n, entry_size, cmp);
	*count = n;
	return entries;
}

static void take_snapshot(struct vfio_uring_stat_bpf *skel, struct snapshot *s)
{
	s->t = now_s();
	s->devs = read_map(bpf_map__fd(skel->maps.devices), sizeof(struct vus_dev_key),
			   sizeof(struct dev_entry), VUS_MAX_DEVICES, &s->ndevs, cmp_dev);
	s->chans = read_map(bpf_map__fd(skel->maps.channels), sizeof(struct vus_chan_key),
			    sizeof(struct chan_entry), VUS_MAX_CHANNELS, &s->nchans, cmp_chan);
	s->errs = read_map(bpf_map__fd(skel->maps.errors), sizeof(struct vus_err_key),
			   sizeof(struct err_entry), 1024, &s->nerrs, cmp_err);
}

static void free_snapshot(struct snapshot *s)
{
	free(s->devs);
	free(s->chans);
	free(s->errs);
	memset(s, 0, sizeof(*s));
}

static const struct vus_dev_val *prev_dev(const struct snapshot *p, const struct vus_dev_key *k)
{
	const struct dev_entry *e = p->devs ? bsearch(k, p->devs, p->ndevs, sizeof(*e), cmp_dev)
					    : NULL;

	return e ? &e->val : NULL;
}

static const struct vus_chan_val *prev_chan(const struct snapshot *p,
					    const struct vus_chan_key *k)
{
	const struct chan_entry *e = p->chans ? bsearch(k, p->chans, p->nchans, sizeof(*e),
							cmp_chan) : NULL;

	return e ? &e->val : NULL;
}

static const char *dev_state(const struct vus_dev_val *v)
{
	if (v->flags & VUS_DEV_FAILED)
		return "failed";
	if (v->flags & VUS_DEV_DONE)
		return "done";
	return "active";
}

/* Average over the device's own elapsed time when done, else over the packets seen. */
static double dev_avg_rate(const struct vus_dev_val *v)
{
	double secs = v->elapsed_ns ? v->elapsed_ns / 1e9
				    : (v->last_ns > v->first_ns ? (v->last_ns - v->first_ns) / 1e9
								: 0);

	return secs > 0 ? v->bytes / secs : 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static void json_string(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct snapshot *s, const struct snapshot *p, bool final)
{
	double dt = p->devs ? s->t - p->t : 0;
	uint64_t tot_bytes[3] = { 0 }, tot_packets[3] = { 0 };
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	printf("{\"time\":%.3f,\"final\":%s,\"interval_s\":%.3f,\"devices\":[",
	       wall.tv_sec + wall.tv_nsec / 1e9, final ? "true" : "false", dt);
	for (size_t i = 0; i < s->ndevs; i++) {
		const struct dev_entry *e = &s->devs[i];
		const struct vus_dev_val *o = prev_dev(p, &e->key);
		double rb = 0, rp = 0;

		if (dt > 0) {
			rb = (e->val.bytes - (o ? o->bytes : 0)) / dt;
			rp = (e->val.packets - (o ? o->packets : 0)) / dt;
		}
		tot_bytes[e->key.side % 3] += e->val.bytes;
		tot_packets[e->key.side % 3] += e->val.packets;
		printf("%s{\"pid\":%u,\"side\":\"%s\",\"idstr\":", i ? "," : "", e->key.pid,
		       side_name(e->key.side));
		json_string(e->key.idstr, sizeof(e->key.idstr));
		printf(",\"instance_id\":%u,\"state\":\"%s\",\"error\":%d,\"bytes\":%llu,"
		       "\"packets\":%llu,\"wire_bytes\":%llu,\"written_bytes\":%llu,"
		       "\"written_packets\":%llu,\"queued_max\":%llu,\"config_len\":%llu,"
		       "\"done_bytes\":%llu,\"elapsed_ns\":%llu,\"bytes_per_s\":%.0f,"
		       "\"packets_per_s\":%.1f,\"avg_bytes_per_s\":%.0f}",
		       e->key.instance_id, dev_state(&e->val), e->val.error,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.packets,
		       (unsigned long long)e->val.wire_bytes,
		       (unsigned long long)e->val.written_bytes,
		       (unsigned long long)e->val.written_packets,
		       (unsigned long long)e->val.queued_max,
		       (unsigned long long)e->val.config_len,
		       (unsigned long long)e->val.done_bytes,
		       (unsigned long long)e->val.elapsed_ns, rb, rp, dev_avg_rate(&e->val));
	}
	printf("],\"channels\":[");
	for (size_t i = 0; i < s->nchans; i++) {
		const struct chan_entry *e = &s->chans[i];
		const struct vus_chan_val *o = prev_chan(p, &e->key);
		double rw = 0, rp = 0;

		if (dt > 0) {
			rw = (e->val.wire_bytes - (o ? o->wire_bytes : 0)) / dt;
			rp = (e->val.packets - (o ? o->packets : 0)) / dt;
		}
		printf("%s{\"pid\":%u,\"side\":\"%s\",\"channel\":%u,\"bytes\":%llu,"
		       "\"wire_bytes\":%llu,\"packets\":%llu,\"handshakes\":%llu,"
		       "\"wire_bytes_per_s\":%.0f,\"packets_per_s\":%.1f}",
		       i ? "," : "", e->key.pid, side_name(e->key.side), e->key.channel,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.wire_bytes,
		       (unsigned long long)e->val.packets, (unsigned long long)e->val.handshakes,
		       rw, rp);
	}
	printf("],\"errors\":[");
	for (size_t i = 0; i < s->nerrs; i++) {
		const struct err_entry *e = &s->errs[i];

		printf("%s{\"pid\":%u,\"side\":\"%s\",\"error\":%d,\"count\":%u,\"message\":",
		       i ? "," : "", e->key.pid, side_name(e->key.side), e->val.error,
		       e->val.count);
		json_string(e->val.message, sizeof(e->val.message));
		putchar('}');
	}
	printf("],\"totals\":{\"source\":{\"bytes\":%llu,\"packets\":%llu},"
	       "\"destination\":{\"bytes\":%llu,\"packets\":%llu}}}\n",
	       (unsigned long long)tot_bytes[VUS_SOURCE],
	       (unsigned long long)tot_packets[VUS_SOURCE],
	       (unsigned long long)tot_bytes[VUS_DESTINATION],
	       (unsigned long long)tot_packets[VUS_DESTINATION]);
	fflush(stdout);
}

static void print_table(const struct snapshot *s, const struct snapshot *p, bool final)
{
	double dt = p->devs ? s->t - p->t : 0;
	uint64_t tot_bytes[3] = { 0 }, tot_packets[3] = { 0 };
	char when[32];
	time_t wall = time(NULL);

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
	if (cfg.tty && !final)
		fputs("\033[H\033[2J", stdout);
	if (final)
		printf("\n%s  vfio-uring-stat: final summary (avg MB/s over each device's "
		       "transfer)\n", when);
	else
		printf("%s  vfio-uring-stat (every %us)\n", when, cfg.interval_s);
	printf("%-11s %7s %-28s %5s %15s %9s %9s %9s %5s %-6s\n", "SIDE", "PID", "DEVICE",
	       "INST", "BYTES", "PACKETS", final ? "AVG_MB/s" : "MB/s", final ? "" : "PKT/s",
	       "QMAX", "STATE");
	for (size_t i = 0; i < s->ndevs; i++) {
		const struct dev_entry *e = &s->devs[i];
		const struct vus_dev_val *o = prev_dev(p, &e->key);
		char rb[16] = "-", rp[16] = "", q[8] = "-";

		if (final) {
			snprintf(rb, sizeof(rb), "%.1f", dev_avg_rate(&e->val) / 1e6);
		} else if (dt > 0) {
			snprintf(rb, sizeof(rb), "%.1f",
				 (e->val.bytes - (o ? o->bytes : 0)) / dt / 1e6);
			snprintf(rp, sizeof(rp), "%.0f",
				 (e->val.packets - (o ? o->packets : 0)) / dt);
		}
		if (e->key.side == VUS_DESTINATION)
			snprintf(q, sizeof(q), "%llu", (unsigned long long)e->val.queued_max);
		tot_bytes[e->key.side % 3] += e->val.bytes;
		tot_packets[e->key.side % 3] += e->val.packets;
		printf("%-11s %7u %-28.*s %5u %15llu %9llu %9s %9s %5s %-6s", side_name(e->key.side),
		       e->key.pid, VUS_IDSTR_MAX, e->key.idstr, e->key.instance_id,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.packets, rb,
		       rp, q, dev_state(&e->val));
		if (e->val.error)
			printf(" %s", strerror(-e->val.error));
		putchar('\n');
	}
	printf("%-11s %7s %-5s %15s %15s %9s %9s %9s\n", "SIDE", "PID", "CHAN", "BYTES",
	       "WIRE_BYTES", "PACKETS", final ? "" : "MB/s", final ? "" : "PKT/s");
	for (size_t i = 0; i < s->nchans; i++) {
		const struct chan_entry *e = &s->chans[i];
		const struct vus_chan_val *o = prev_chan(p, &e->key);
		char rw[16] = "", rp[16] = "";

		if (!final && dt > 0) {
			snprintf(rw, sizeof(rw), "%.1f",
				 (e->val.wire_bytes - (o ? o->wire_bytes : 0)) / dt / 1e6);
			snprintf(rp, sizeof(rp), "%.0f",
				 (e->val.packets - (o ? o->packets : 0)) / dt);
		}
		printf("%-11s %7u %-5u %15llu %15llu %9llu %9s %9s\n", side_name(e->key.side),
		       e->key.pid, e->key.channel, (unsigned long long)e->val.bytes,
		       (unsigned long long)e->val.wire_bytes, (unsigned long long)e->val.packets,
		       rw, rp);
	}
	for (unsigned side = VUS_SOURCE; side <= VUS_DESTINATION; side++)
		if (tot_packets[side])
			printf("total %-11s bytes %llu packets %llu\n", side_name(side),
			       (unsigned long long)tot_bytes[side],
			       (unsigned long long)tot_packets[side]);
	for (size_t i = 0; i < s->nerrs; i++)
		printf("error %s pid %u: %s (%d), %u probe hit(s); first: %s\n",
		       side_name(s->errs[i].key.side), s->errs[i].key.pid,
		       strerror(-s->errs[i].val.error), s->errs[i].val.error,
		       s->errs[i].val.count,
		       s->errs[i].val.message[0] ? s->errs[i].val.message : "(unreadable)");
	fflush(stdout);
}

static void report(const struct snapshot *s, const struct snapshot *p, bool final)
{
	if (cfg.json)
		print_json(s, p, final);
	else
		print_table(s, p, final);
}

/* ---- main loop -------------------------------------------------------------------------- */

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* True when every -p target has exited (never for -b targets: those run until a signal). */
static bool targets_gone(void)
{
	bool any_pid = false;

	for (unsigned i = 0; i < cfg.ntargets; i++) {
		struct target *t = &cfg.targets[i];

		if (t->pid < 0)
			return false;
		any_pid = true;
		if (!t->exited && t->pidfd < 0 && kill(t->pid, 0) && errno == ESRCH)
			t->exited = true;
		if (!t->exited)
			return false;
	}
	return any_pid;
}

/* Sleeps until the next tick, a signal, or every target's exit. */
static void wait_tick(double deadline)
{
	struct pollfd pfd[MAX_TARGETS];
	unsigned map[MAX_TARGETS], n = 0;

	for (unsigned i = 0; i < cfg.ntargets; i++)
		if (cfg.targets[i].pidfd >= 0 && !cfg.targets[i].exited) {
			pfd[n].fd = cfg.targets[i].pidfd;
			pfd[n].events = POLLIN;
			map[n++] = i;
		}
	while (!stop_signal && !targets_gone()) {
		double left = deadline - now_s();
		int r;

		if (left <= 0)
			return;
		r = poll(pfd, n, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (unsigned j = 0; r > 0 && j < n; j++)
			if (pfd[j].revents) {
				cfg.targets[map[j]].exited = true;
				pfd[j].fd = -1;
			}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfio-uring-stat [options] -p PID [-p PID ...]\n"
		"       vfio-uring-stat [options] -b PATH\n"
		"Live bytes, packets and rates per device and per channel of the vfio-uring\n"
		"migrations in a process (its USDT probes, read with BPF); a final summary when\n"
		"the processes exit or on Ctrl-C.\n"
		"  -p, --pid PID        a process linking libvfio-uring (repeatable)\n"
		"  -b, --binary PATH    every process using PATH: libvfio-uring.so.0, or a program\n"
		"                       linking the library statically (runs until Ctrl-C)\n"
		"  -i, --interval SEC   refresh every SEC seconds (default 1)\n"
		"  -j, --json           one JSON object per line (the last has \"final\":true)\n"
		"  -q, --quiet          only the final summary\n"
		"  -v, --verbose        libbpf's messages\n"
		"  -h, --help\n"
		"Needs root (CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN).\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "binary", required_argument, NULL, 'b' },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:b:i:jqvh", opts, NULL)) != -1) {
		struct target *t = &cfg.targets[cfg.ntargets];
		char *end;
		long v;

		switch (c) {
		case 'p':
		case 'b':
			if (cfg.ntargets == MAX_TARGETS)
				die("at most %d targets", MAX_TARGETS);
			memset(t, 0, sizeof(*t));
			t->pidfd = -1;
			if (c == 'p') {
				v = strtol(optarg, &end, 10);
				if (*end || v <= 0 || v > INT_MAX)
					die("bad pid '%s'", optarg);
				t->pid = v;
			} else {
				t->pid = -1;
				t->binary = optarg;
			}
			cfg.ntargets++;
			break;
		case 'i':
			v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 3600)
				die("bad interval '%s' (whole seconds, 1 to 3600)", optarg);
			cfg.interval_s = v;
			break;
		case 'j':
			cfg.json = true;
			break;
		case 'q':
			cfg.quiet = true;
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc || !cfg.ntargets) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct vfio_uring_stat_bpf *skel;
	struct snapshot cur = { 0 }, prev = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	double next;
	int err;

	parse_args(argc, argv);
	cfg.tty = isatty(STDOUT_FILENO);
	check_privileges();
	if (elf_version(EV_CURRENT) == EV_NONE)
		die("libelf is too old");
	libbpf_set_print(libbpf_print);

	/* Targets first: a wrong pid is reported before any BPF work. */
	for (unsigned i = 0; i < cfg.ntargets; i++) {
		struct target *t = &cfg.targets[i];
		char path[64];

		if (t->pid < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d", t->pid);
		if (access(path, F_OK))
			die("no process %d", t->pid);
	}

	skel = vfio_uring_stat_bpf__open();
	if (!skel)
		explain_load_error(errno);
	err = vfio_uring_stat_bpf__load(skel);
	if (err)
		explain_load_error(err);

	for (unsigned i = 0; i < cfg.ntargets; i++) {
		struct target *t = &cfg.targets[i];

		attach_target(skel, t);
		if (t->pid >= 0) {
			t->pidfd = pidfd_open_compat(t->pid);
			if (t->pidfd < 0 && errno == ESRCH)
				t->exited = true;
		}
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Tests and scripts wait for this line before starting the transfer. */
	note("watching; Ctrl-C to stop");

	take_snapshot(skel, &prev);
	next = prev.t + cfg.interval_s;
	for (;;) {
		wait_tick(next);
		if (stop_signal || targets_gone())
			break;
		next += cfg.interval_s;
		take_snapshot(skel, &cur);
		if (!cfg.quiet)
			report(&cur, &prev, false);
		free_snapshot(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
	}
	/* Every probe of an exited target has run: the maps hold the exact totals. */
	take_snapshot(skel, &cur);
	report(&cur, &prev, true);
	free_snapshot(&cur);
	free_snapshot(&prev);
	for (size_t i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	free(links);
	vfio_uring_stat_bpf__destroy(skel);
	for (unsigned i = 0; i < cfg.ntargets; i++) {
		if (cfg.targets[i].pidfd >= 0)
			close(cfg.targets[i].pidfd);
		for (unsigned f = 0; f < cfg.targets[i].nfiles; f++)
			free(cfg.targets[i].files[f]);
	}
	return 0;
}
