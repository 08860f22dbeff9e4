// SPDX-License-Identifier: MIT
/* vfio-uring-stat: the command line. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-uring-stat.h"

struct stat_config cfg = { .interval_s = 1 };

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

void parse_args(int argc, char **argv)
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
