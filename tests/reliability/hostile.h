/* SPDX-License-Identifier: MIT */
/*
 * Test support for the reliability suite: a "hostile source" that crafts raw handshake and
 * packet bytes with the wire encoders and writes them from a thread into one end of a
 * socketpair (or TCP connection) whose other end feeds a destination engine; a pair of real
 * engines (source + destination) driven from one thread; and checks shared by every test:
 * the engine error and its message, what was written to the data fds, that no device
 * reported DONE, that no fd leaked and that the engine destroys cleanly.
 *
 * Every check is a CHECK (tests/lib/check.h): it prints "FAIL file:line: ..." and counts a
 * failure; a test program returns check_result() (0 pass, 1 fail).
 */
#ifndef RL_HOSTILE_H
#define RL_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cases.h"
#include "check.h"
#include "clock.h"
#include "fds.h"
#include "net.h"
#include "vfio-uring.h"
#include "wire.h"

#define RL_MAX_CH 8
#define RL_MAX_DEV 8
#define RL_SKIP 77

extern const uint8_t rl_uuid[16];

/* ---- raw stream builder ------------------------------------------------------------- */

struct rl_buf {
	uint8_t *p;
	size_t len, cap;
};

void rl_buf_raw(struct rl_buf *b, const void *p, size_t n);
void rl_buf_fill(struct rl_buf *b, uint8_t byte, size_t n);
void rl_buf_handshake(struct rl_buf *b, const uint8_t uuid[16], uint8_t id);
void rl_buf_header(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t next_size);
/* header + 12-byte VFIO header (version 0) + data; data NULL = a pattern derived from idx */
void rl_buf_packet(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t idx,
		   uint32_t vflags, const void *data, size_t len);
/* a config packet: markers around blob */
void rl_buf_config(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t idx,
		   const void *blob, size_t len);
void rl_buf_free(struct rl_buf *b);
/* The pattern rl_buf_packet writes for data == NULL. */
void rl_pattern(uint8_t *out, size_t len, uint32_t idx);

/* ---- writer thread ------------------------------------------------------------------ */

enum rl_end {
	RL_END_SHUTDOWN = 0, /* shutdown(SHUT_WR) after the last byte: the engine sees EOF */
	RL_END_STALL = 1,    /* keep the connection open and silent */
};

struct rl_writer;
/* Writes a copy of b to fd from a new thread (blocking sends, MSG_NOSIGNAL). */
struct rl_writer *rl_writer_start(int fd, const struct rl_buf *b, enum rl_end end);
/* Shuts fd down (unblocking a stuck send), joins; returns bytes written. */
size_t rl_writer_stop(struct rl_writer *w);

/* ---- fds and memory ----------------------------------------------------------------- */

long rl_rss_kib(void);
int rl_memfd(const char *name, size_t size, uint32_t seed); /* filled with a pattern */
size_t rl_fd_size(int fd);
/* Reads a whole regular file / memfd into a malloc'd buffer. */
uint8_t *rl_fd_read_all(int fd, size_t *len);

/* ---- destination fixture ------------------------------------------------------------ */

struct rl_dest_opts {
	int channels;               /* default 1 */
	int devices;                /* default 1 */
	uint32_t max_packet_size;   /* 0 = default */
	size_t buffer_cap;          /* 0 = default */
	unsigned progress_timeout_ms;
	size_t max_queued_bytes;    /* 0 = off (flow control only) */
	bool config_load_waits;     /* every device: VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS */
	unsigned engine_flags;      /* VFIO_URING_ENGINE_F_* (e.g. the pre-copy extension) */
	bool tcp;
	bool no_switchover;         /* do not call switchover_start */
	bool dev_multifd_off[RL_MAX_DEV];
	int dev_fd[RL_MAX_DEV];     /* >0: use this data fd (caller's) instead of a memfd */
};

struct rl_dest_dev {
	struct vfio_uring_device *dev;
	char idstr[64];
	uint32_t inst;
	int fd;
	bool own_fd;
	int config_calls;
	size_t config_len;
	uint8_t config[256];
	int done_calls;
	int done_error;
	int config_ret; /* what load_config returns */
};

struct rl_dest {
	struct vfio_uring_engine *e;
	int nch, ndev;
	int ch[RL_MAX_CH][2]; /* [0] engine end, [1] the hostile peer's end */
	struct rl_writer *w[RL_MAX_CH];
	struct rl_dest_dev d[RL_MAX_DEV];
	int fds_before;
};

/* Device i is "0000:01:00.<i>/vfio", instance i + 1. */
int rl_dest_init(struct rl_dest *d, const struct rl_dest_opts *o);
/* Starts a writer on channel ch's peer end. */
void rl_dest_send(struct rl_dest *d, int ch, const struct rl_buf *b, enum rl_end end);
/*
 * Runs the engine until it finishes or fails; a test guard of guard_ms (default 20 s) turns
 * a hang into a failure. Returns the run result.
 */
int rl_dest_run(struct rl_dest *d, int guard_ms);
/*
 * Checks the engine failed with errno `expect` and the failure reason `reason` (0 and
 * VFIO_URING_REASON_NONE: did not fail), that the errno is the one the list of reasons
 * gives the reason (when it has its own), and that the message names every non-NULL
 * needle (a device idstr, "channel 1", ...).
 */
void rl_check_error(struct vfio_uring_engine *e, int expect, enum vfio_uring_reason reason,
		    const char *needle1, const char *needle2);
/* Checks the engine's reason is one of n allowed ones. */
void rl_check_reason_one_of(struct vfio_uring_engine *e, const enum vfio_uring_reason *allowed,
			    int n, const char *what);
/*
 * A device's status reason: NONE unless FAILED; when FAILED, the engine's reason and error
 * (the device the failure concerned) or FALLOUT with -ECANCELED (the others).
 */
void rl_check_device_reason(struct vfio_uring_engine *e, struct vfio_uring_device *dev,
			    const char *what);
/* No device DONE, no done callback with 0, no config loaded. */
void rl_dest_check_none_done(struct rl_dest *d);
/* Device i's data fd holds exactly these len bytes (expect may be NULL when len is 0). */
void rl_dest_check_written(struct rl_dest *d, int i, const void *expect, size_t len);
/* Buffer use stayed within the cap. */
void rl_check_buffer_peak(struct vfio_uring_engine *e);
/* Stops writers, destroys the engine, closes fds, checks no fd leaked. */
void rl_dest_fini(struct rl_dest *d);

/* Device i's data fd holds a prefix (possibly empty) of these len bytes. */
void rl_dest_check_prefix(struct rl_dest *d, int i, const void *expect, size_t len);

/* ---- source + destination pair, both driven from this thread ------------------------ */

struct rl_mig_opts {
	int channels;            /* default 2 */
	int devices;             /* default 2 */
	size_t dev_size;         /* default 256 KiB; device i gets dev_size + i * 4099 */
	size_t chunk_size;       /* default 64 KiB */
	size_t buffer_cap;       /* 0 = default */
	unsigned progress_timeout_ms;
	unsigned flags;          /* engine flags (VFIO_URING_ENGINE_F_*), both sides */
	bool tcp;
	int src_fd[RL_MAX_DEV];  /* >0: the source reads this fd instead of a memfd */
	int dst_fd[RL_MAX_DEV];  /* >0: the destination writes this fd */
	bool no_dest;            /* only a source; the peer ends (ch[i][1]) stay with the caller */
	bool no_source;          /* only a destination; the peer ends (ch[i][0]) stay with the caller */
	int ext_ch[RL_MAX_CH];   /* >0: with no_dest/no_source, this (caller's) socket is channel i */
	uint32_t seed;
};

struct rl_mig_dev {
	struct vfio_uring_device *src, *dst;
	char idstr[64];
	uint32_t inst;
	int src_fd, dst_fd;
	bool own_src, own_dst;
	size_t size;
	uint8_t blob[64];
	size_t blob_len;
	int config_calls;
	bool config_ok;
	int config_ret; /* what the destination's load_config returns */
	int src_done_calls, dst_done_calls;
	int src_done_error, dst_done_error;
	off_t src_pos0; /* source fd position at start */
	off_t src_pos_at_done; /* source fd position when done() was called */
	uint64_t src_sum; /* hash of the source fd's content at start (0: not readable) */
};

struct rl_mig {
	struct vfio_uring_engine *src, *dst;
	int nch, ndev;
	int ch[RL_MAX_CH][2]; /* [0] source end, [1] destination end */
	bool ext_ch;
	struct rl_mig_dev d[RL_MAX_DEV];
	int src_rc, dst_rc; /* 1 done, 0 running, <0 error */
	bool check_status;  /* after every process(): status.error != 0 exactly when FAILED */
	int fds_before;
};

int rl_mig_init(struct rl_mig *m, const struct rl_mig_opts *o);
/* One pass: poll both rings (up to poll_ms), process both. Returns true while both run. */
bool rl_mig_step(struct rl_mig *m, int poll_ms);
/*
 * For a failed engine, run() until its cancelled operations are back (process() reports the
 * failure at once); checks that no device is still ACTIVE then.
 */
void rl_mig_drain(struct rl_mig *m);
/* Runs until both engines finished (done or failed), then drains; false on a guard hang. */
bool rl_mig_run(struct rl_mig *m, int guard_ms);
/* Every destination data fd equals its source and every config loaded, each device DONE. */
void rl_mig_check_complete(struct rl_mig *m);
/*
 * After a failure: every destination device that is DONE holds exactly its source's bytes
 * and loaded its config; every other one holds a prefix of them and loaded no config.
 */
void rl_mig_check_dest_consistent(struct rl_mig *m);
uint64_t rl_wire_bytes(struct vfio_uring_engine *e);
/*
 * Source device fds: content unchanged, position moved at least data_bytes (everything
 * counted was read) and at most data_bytes + the buffer cap (reads in flight at the failure).
 */
void rl_mig_check_source_untouched(struct rl_mig *m);
/* Destroys both engines (rl_mig_fini then only closes fds). */
void rl_mig_destroy_engines(struct rl_mig *m);
/*
 * After rl_mig_destroy_engines(): no source device fd moved after its done(error) callback
 * ran, i.e. the engine did not read a device's data fd any more once it told the caller the
 * device failed (the caller resumes the device there).
 */
void rl_mig_check_source_quiet_after_done(struct rl_mig *m);
void rl_mig_fini(struct rl_mig *m);

/* A full small migration in this process must still work (after a fault). */
void rl_check_fresh_migration(void);

#endif /* RL_HOSTILE_H */
