// SPDX-License-Identifier: MIT
/*
 * vfio-uring-stat (see main.c): what its parts share. probes.c finds the library's USDT
 * probes in a target's files and attaches them; snapshot.c reads the BPF maps the probes
 * fill into sorted snapshots; output_table.c and output_json.c print a snapshot against
 * the previous one; setup.c checks privileges and explains BPF load errors; options.c
 * reads the command line; main.c runs the loop.
 */
#ifndef VFIO_URING_STAT_TOOL_H
#define VFIO_URING_STAT_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "timing.h" /* now_s */
#include "vfio_uring_stat.h"

struct vfio_uring_stat_bpf;

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

struct stat_config {
	struct target targets[MAX_TARGETS];
	unsigned ntargets;
	unsigned interval_s;
	bool json;
	bool quiet;
	bool verbose;
	bool tty;
};

/* The command line (options.c). */
extern struct stat_config cfg;
void parse_args(int argc, char **argv);

/* util.c */
__attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);
const char *side_name(__u32 side);

/* setup.c: privileges and BPF availability */
void check_privileges(void);
void explain_load_error(int err);
void set_libbpf_print(void);

/* probes.c: attaches every probe of the target's files; detach_probes() at exit. */
void attach_target(struct vfio_uring_stat_bpf *skel, struct target *t);
void detach_probes(void);

/* snapshot.c */
void take_snapshot(struct vfio_uring_stat_bpf *skel, struct snapshot *s);
void free_snapshot(struct snapshot *s);
/* A key's value in the previous snapshot p (NULL: none, or no previous snapshot). */
const struct vus_dev_val *prev_dev(const struct snapshot *p, const struct vus_dev_key *k);
const struct vus_chan_val *prev_chan(const struct snapshot *p, const struct vus_chan_key *k);
const char *dev_state(const struct vus_dev_val *v);
double dev_avg_rate(const struct vus_dev_val *v);

/* output_table.c, output_json.c: snapshot s against the previous one p */
void print_table(const struct snapshot *s, const struct snapshot *p, bool final);
void print_json(const struct snapshot *s, const struct snapshot *p, bool final);

#endif /* VFIO_URING_STAT_TOOL_H */
