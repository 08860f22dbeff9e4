/* SPDX-License-Identifier: MIT */
/*
 * A device model whose files behave like VFIO migration data fds: a read() or write() blocks
 * in the kernel until the "device" has produced or consumed the bytes, at the device's own
 * rate, and cannot be done non-blocking (io_uring must run it in its io-wq workers).
 *
 * It is a rate-limiting FUSE proxy in front of ordinary fds the caller gives it:
 *   - a SOURCE file streams the bytes of its backing fd from offset 0 to the backing fd's
 *     size (taken at create time), then reads return 0 (end of stream);
 *   - a SINK file stores what is written to it in its backing fd from offset 0 on;
 *   - a PRECOPY file is a source whose device is still running (VFIO PRE_COPY, below).
 * Each read or write request waits latency + bytes/rate, paced per file (each file is one
 * device, independent of the others). Files are streams: each open has its own position,
 * kept by the server, and the offset the kernel passes is ignored (see devmodel.c).
 *
 * A PRECOPY file streams its backing fd's bytes in order, like a source, but only as far
 * as the running "device" has produced them. Its backing fd holds the longest stream the
 * file can give (size S, taken at create time); the file's stream is a prefix of it:
 *   - live phase (from the file's first open): precopy_initial bytes are available at
 *     once ("initial bytes"); then dirty bytes are produced at dirty_rate bytes per second,
 *     while at most dirty_max (0: no cap) produced dirty bytes are unread. A read returns
 *     what is available (a short read if less than asked); with nothing available it fails
 *     at once with ENOMSG, as a VFIO data fd in PRE_COPY does: poll the info, read later.
 *     The live phase produces at most S - stop_copy_bytes bytes in all (initial, reinit
 *     and dirty alike); past that the device produces nothing more until stop-copy.
 *   - stop-copy (devmodel_stop_copy): the stream ends at the bytes produced so far plus
 *     stop_copy_bytes (its length is known from then on: devmodel_stream_length); reads
 *     stream the rest, never ENOMSG, then return 0.
 * The stream position is the device's, shared by every open of the file (a VFIO device has
 * one data fd), because the info counts what the device still has to give.
 * devmodel_precopy_info, devmodel_precopy_reinit and devmodel_stop_copy work from any
 * process that created or inherited the model (the state is in shared memory, under a
 * process-shared lock); the server (another process) updates it as it serves reads.
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
	DEVMODEL_PRECOPY = 3, /* read-only, a prefix of the backing fd's bytes (see the top) */
};

struct devmodel_file {
	enum devmodel_kind kind;
	int backing_fd;       /* kept open by the model's server until devmodel_destroy() */
	uint64_t rate;        /* bytes per second; 0 = as fast as the server goes */
	unsigned latency_us;  /* added to every request (a FUSE request: see devmodel.c) */
	/* PRECOPY files only (see the top); ignored otherwise. */
	uint64_t precopy_initial; /* initial bytes, available from the first open */
	uint64_t dirty_rate;      /* dirty bytes per second produced while live; 0 = none */
	uint64_t dirty_max;       /* most produced-but-unread dirty bytes; 0 = no cap */
	uint64_t stop_copy_bytes; /* bytes produced at stop-copy; <= the backing fd's size */
};

/* What a VFIO_MIG_GET_PRECOPY_INFO would say about a PRECOPY file now. */
struct devmodel_precopy_info {
	uint64_t initial_bytes;   /* initial bytes (reinit's included) not yet read */
	uint64_t dirty_bytes;     /* dirty bytes produced and not yet read */
	uint64_t stop_copy_bytes; /* what a stop-copy now would stream: every unread produced
				   * byte plus the file's stop_copy_bytes (the exact figure) */
	unsigned flags;           /* DEVMODEL_PRECOPY_REINIT */
};
/* New initial bytes were added (devmodel_precopy_reinit) since the last info: reported once. */
#define DEVMODEL_PRECOPY_REINIT 1u

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

/* Opens file i (O_RDONLY for a source or pre-copy file, O_WRONLY for a sink, O_CLOEXEC). */
int devmodel_open(const struct devmodel *m, unsigned i);

/* The path of file i (valid until devmodel_destroy). */
const char *devmodel_path(const struct devmodel *m, unsigned i);

/* Counters so far (cpu_s is 0 here). */
void devmodel_get_stats(const struct devmodel *m, struct devmodel_stats *st);

/*
 * Pre-copy file i's info now (the dirty bytes produced until now included). -EINVAL if i
 * is not a PRECOPY file or is in stop-copy already (as the kernel's ioctl: PRE_COPY only).
 */
int devmodel_precopy_info(const struct devmodel *m, unsigned i, struct devmodel_precopy_info *out);

/*
 * The device re-initialises: bytes more initial bytes become available (no more than the
 * live phase's limit allows) and the next devmodel_precopy_info reports
 * DEVMODEL_PRECOPY_REINIT. -EINVAL if not a PRECOPY file or in stop-copy.
 */
int devmodel_precopy_reinit(const struct devmodel *m, unsigned i, uint64_t bytes);

/*
 * The VM stopped: pre-copy file i moves to stop-copy; its stream ends stop_copy_bytes after
 * what it has produced so far. -EINVAL if not a PRECOPY file; -EALREADY the second time.
 */
int devmodel_stop_copy(const struct devmodel *m, unsigned i);

/*
 * The length of file i's stream: a source's backing size; a pre-copy file's once in
 * stop-copy (-EBUSY before: not decided yet). -EINVAL for a sink.
 */
int devmodel_stream_length(const struct devmodel *m, unsigned i, uint64_t *len);

/*
 * Stops the server: unmounts, removes the directory, reaps the process. Close the files
 * first (a file still open afterwards fails with ENOTCONN). final may be NULL.
 * NULL m is a no-op. Returns 0 or -errno if the server did not exit cleanly.
 */
int devmodel_destroy(struct devmodel *m, struct devmodel_stats *final);

#endif
