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
#include <libelf.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vfio-uring-stat.h"
#include "vfio_uring_stat.skel.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void report(const struct snapshot *s, const struct snapshot *p, bool final)
{
	if (cfg.json)
		print_json(s, p, final);
	else
		print_table(s, p, final);
}

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
	set_libbpf_print();

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
	detach_probes();
	vfio_uring_stat_bpf__destroy(skel);
	for (unsigned i = 0; i < cfg.ntargets; i++) {
		if (cfg.targets[i].pidfd >= 0)
			close(cfg.targets[i].pidfd);
		for (unsigned f = 0; f < cfg.targets[i].nfiles; f++)
			free(cfg.targets[i].files[f]);
	}
	return 0;
}
