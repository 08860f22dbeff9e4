// SPDX-License-Identifier: MIT
/* vfio-uring-stat: may this process load BPF programs, and why loading failed. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "vfio-uring-stat.h"

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

void check_privileges(void)
{
	const uint64_t sys_admin = 1ull << 21, perfmon = 1ull << 38, bpf = 1ull << 39;
	uint64_t caps = effective_caps();

	if (geteuid() == 0 || (caps & sys_admin) || ((caps & bpf) && (caps & perfmon)))
		return;
	die("must run as root (or with CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) to load BPF "
	    "programs and attach uprobes; try: sudo vfio-uring-stat ...");
}

void explain_load_error(int err)
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

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !cfg.verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* libbpf's warnings always, its info with -v. */
void set_libbpf_print(void)
{
	libbpf_set_print(libbpf_print);
}
