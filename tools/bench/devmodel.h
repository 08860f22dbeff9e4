/* SPDX-License-Identifier: MIT */
/*
 * A device model whose files behave like VFIO migration data fds: a read() or write() blocks
 * in the kernel until the "device" has produced or consumed the bytes, at the device's own
 * rate, and cannot be done non-blocking (io_uring must run it in its io-wq workers).
 *
 * It is a rate-limiting FUSE proxy in front of ordinary fds the caller gives it:
 *   - a SOURCE file streams the bytes of its backing fd from offset 0 to the backing fd's
 *     size (taken at create time), then reads return 0 (end of stream);
 *   - a SINK file stores what is written to it in its backing fd from offset 0 on.
 * Each read or write request waits latency + bytes/rate, paced per file (each file is one
 * device, independent of the others). Files are streams: each open has its own position,
 * kept by the server, and the offset the kernel passes is ignored (see devmodel.c).
 *
 * The server runs in its own process, forked by devmodel_create() and mounted on a private
 * directory /tmp/vfio-uring-devmodel.<creator pid>.XXXXXX; callers open the files by path
 * (devmodel_open) in whatever process will use them. Needs root and /dev/fuse.
 * Functions return 0 (or an fd) or a negated errno.
 */
#ifndef VFIO_URING_BENCH_DEVMODEL_H
#define VFIO_URING_BENCH_DEVMODEL_H

#include <stddef.h>
#include <stdint.h>

enum devmodel_kind {
	DEVMODEL_SOURCE = 1, /* read-only stream of the backing fd's bytes */
	DEVMODEL_SINK = 2,   /* write-only stream stored into the backing fd */
};

struct devmodel_file {
	enum devmodel_kind kind;
	int backing_fd;       /* kept open by the model's server until devmodel_destroy() */
	uint64_t rate;        /* bytes per second; 0 = as fast as the server goes */
	unsigned latency_us;  /* added to every request (a FUSE request: see devmodel.c) */
};

struct devmodel_stats {
	uint64_t read_requests, read_bytes;   /* source files, end-of-stream reads included */
	uint64_t write_requests, write_bytes; /* sink files */
	uint64_t reads_peak;   /* most read requests in the server at once (all files) */
	uint64_t writes_peak;  /* most write requests in the server at once */
	double cpu_s;          /* the server's CPU serving requests (its start-up, which maps
				* the sources, excluded); only from devmodel_destroy() */
};

struct devmodel;

/* 0 when this process can mount the model; else -errno and why (for a skip message). */
int devmodel_available(char *why, size_t why_len);

/*
 * Starts the server process for n files and waits until they can be opened. On failure,
 * err (if not NULL) says why, e.g. that /dev/fuse is missing or mounting failed.
 */
int devmodel_create(const struct devmodel_file *files, unsigned n, struct devmodel **out,
		    char *err, size_t err_len);

/* Opens file i (O_RDONLY for a source, O_WRONLY for a sink, O_CLOEXEC): an fd or -errno. */
int devmodel_open(const struct devmodel *m, unsigned i);

/* The path of file i (valid until devmodel_destroy). */
const char *devmodel_path(const struct devmodel *m, unsigned i);

/* Counters so far (cpu_s is 0 here). */
void devmodel_get_stats(const struct devmodel *m, struct devmodel_stats *st);

/*
 * Stops the server: unmounts, removes the directory, reaps the process. Close the files
 * first (a file still open afterwards fails with ENOTCONN). final may be NULL.
 * NULL m is a no-op. Returns 0 or -errno if the server did not exit cleanly.
 */
int devmodel_destroy(struct devmodel *m, struct devmodel_stats *final);

#endif
