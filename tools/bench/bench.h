/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-bench: shared declarations.
 *
 * One run = one engine moving N synthetic devices from a source process to a destination
 * process over C data connections plus one control connection. The control connection
 * carries the run's synchronisation (nothing else touches it):
 *
 *   destination -> source  'R'  ready: engine set up, channels registered
 *   source -> destination  'G'  go: the source starts now (t0); the destination's
 *                               switchover clock starts here
 *   source -> destination  'S'  pre-copy runs only (--precopy): the VM stopped (t_stop);
 *                               the destination starts the switchover now
 *   destination -> source  'D'  every device loaded with its config (t_end), or
 *                          'F'  the destination failed
 *
 * stop-copy time = t_end - t0, both on the source's clock (works across two hosts); in a
 * pre-copy run t_end - t_stop (the live phase, t0..t_stop, is reported apart).
 */
#ifndef VFIO_URING_BENCH_H
#define VFIO_URING_BENCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fdio.h" /* read_full, write_full */
#include "timing.h" /* now_s */

enum bench_engine {
	ENGINE_URING = 0,
	ENGINE_THREADS,
	ENGINE_LEGACY,
	ENGINE_RAW,
	ENGINE_COUNT,
};

enum bench_transport {
	TRANSPORT_TCP = 0,
	TRANSPORT_UNIX,
	TRANSPORT_VETH,
};

enum bench_side {
	SIDE_SOURCE = 1,
	SIDE_DEST = 2,
};

/* Device I/O mode: how data fd reads/writes run (only the uring engine has a choice). */
enum bench_device_mode {
	DEVMODE_INLINE = 1, /* io_uring may complete memfd I/O inline (non-blocking fast path) */
	DEVMODE_ASYNC = 2,  /* IOSQE_ASYNC: io_uring worker threads, as with a real VFIO fd */
	DEVMODE_BOTH = 3,
};

struct bench_cfg {
	unsigned engine_order[ENGINE_COUNT]; /* engines to run, in order */
	unsigned engine_count;
	unsigned devices;
	uint64_t size;             /* bytes per device */
	unsigned channels;
	size_t chunk;
	unsigned repeat;
	enum bench_transport transport;
	unsigned switchover_delay_ms;
	unsigned device_mode;      /* DEVMODE_* mask */
	size_t buffer_cap;         /* uring engine cap; 0 = the library default */
	size_t src_buffer_cap;     /* uring source cap if different; 0 = buffer_cap */
	bool json;
	bool quiet;
	int progress;              /* -1 auto (tty), 0 off, 1 on */
	unsigned timeout_s;        /* per run watchdog */
	uint64_t seed;
	const char *listen;        /* "[addr:]port": this host is the destination */
	const char *connect;       /* "addr:port": this host is the source */
	bool sweep;
	const char *sweep_prefix;  /* CSV/plot path prefix */
	uint64_t sweep_total;      /* bytes per sweep point (split over the devices) */
	bool sweep_short;
	bool corrupt_for_test;     /* flip one destination byte before verifying (tests) */
	/*
	 * Device model (devmodel.h): with a rate, a side's engine reads or writes FUSE files that
	 * pace every request like a device, in front of the same memfds. 0 = plain memfds;
	 * BENCH_RATE_UNLIMITED = the model without pacing (its own overhead only).
	 */
	uint64_t device_rate;      /* source, bytes/s per device */
	uint64_t dst_device_rate;  /* destination (defaults to device_rate) */
	unsigned device_latency_us;
	unsigned sweep_devs[16];   /* --sweep-devices; 0 entries = the default list */
	unsigned sweep_ndevs;
	/*
	 * Pre-copy (--precopy, uring only, needs the source model): each configuration runs
	 * stop-copy only and with live pre-copy of this share of every device's state.
	 */
	double precopy;            /* share offered as initial bytes; 0 = no pre-copy mode */
	uint64_t dirty_rate;       /* dirty bytes per second per device while live */
	unsigned precopy_max_ms;   /* stop at readiness or after this long, whichever first */
};

#define BENCH_RATE_UNLIMITED UINT64_MAX
static inline bool bench_src_model(const struct bench_cfg *cfg)
{
	return cfg->device_rate != 0;
}
static inline bool bench_dst_model(const struct bench_cfg *cfg)
{
	return cfg->dst_device_rate != 0;
}
static inline bool bench_model(const struct bench_cfg *cfg)
{
	return bench_src_model(cfg) || bench_dst_model(cfg);
}

/* What one side's process reports back (through a pipe, or over the control socket). */
struct side_result {
	int err;                   /* 0 or negated errno */
	char msg[256];
	double t0;                 /* source: CLOCK_MONOTONIC seconds when it started */
	double t_end;              /* source: when the destination reported done */
	uint64_t ring_enters;      /* uring engine only */
	uint64_t buffer_peak;      /* uring engine: payload bytes held at most */
	bool config_ok;            /* destination: every config blob arrived intact, once */
	bool dest_failed;          /* source: the destination sent 'F' */
	/* Filled by the parent from wait4(2) (and, for the device model, its own counters). */
	double cpu_s;
	long maxrss_kib;
	long ctx_switches;
	/* Destination in two-host mode: verification done locally. */
	bool verified;
	/* Source, pre-copy runs: the stop (t_stop), what moved before it, readiness then. */
	double t_stop;
	uint64_t precopy_bytes;    /* data bytes read while live (the engine's count: a read in
				    * flight at the stop counts, whatever the device gave it) */
	uint64_t stop_bytes;       /* what the devices had left at the stop (their info then) */
	bool precopy_ready;        /* the engine was ready at the stop (else precopy_max_ms) */
};

struct devmodel;

/* Everything an engine needs for one side of one run. */
struct side_ctx {
	enum bench_side side;
	const struct bench_cfg *cfg;
	unsigned engine;
	bool async_devio;          /* DEVMODE_ASYNC */
	int ctrl;                  /* control connection */
	int *chans;                /* data connections */
	unsigned nchan;
	int *dev_fds;              /* source: memfds read as streams; destination: memfd sinks;
				    * with --device-rate: the device model's files in front of them */
	unsigned ndev;
	uint64_t dev_size;
	size_t chunk;
	uint8_t uuid[16];
	struct side_result *res;
	void *priv;                /* the engine's state */
	/* Pre-copy run (uring): the source's model files (precopy_info, stop-copy). */
	bool precopy;
	const struct devmodel *model;
	const unsigned *model_idx; /* device -> its source file in the model */
};

/*
 * An engine: source and destination halves. setup() prepares everything before the clock
 * starts (not timed); run() does the transfer. The destination's run() gets the absolute
 * CLOCK_MONOTONIC time at which to start the switchover. teardown() always runs.
 */
struct bench_engine_ops {
	const char *name;
	int (*src_setup)(struct side_ctx *ctx);
	int (*src_run)(struct side_ctx *ctx);
	int (*dst_setup)(struct side_ctx *ctx);
	int (*dst_run)(struct side_ctx *ctx, double switchover_at);
	void (*teardown)(struct side_ctx *ctx);
	bool uses_one_channel;     /* legacy: the single migration stream */
};

extern const struct bench_engine_ops engine_uring_ops;
extern const struct bench_engine_ops engine_threads_ops;
extern const struct bench_engine_ops engine_legacy_ops;
extern const struct bench_engine_ops engine_raw_ops;
const struct bench_engine_ops *engine_ops(unsigned engine);
const char *engine_name(unsigned engine);
int engine_from_name(const char *name);
bool engine_uring_available(void);

/* options.c */
int options_parse(int argc, char **argv, struct bench_cfg *cfg);
int parse_size(const char *s, uint64_t *out);
void options_usage(FILE *f);

/* devices.c: synthetic devices, content, config blobs, verification */
#define BENCH_HASH_BLOCK (1u << 20)
void device_idstr(unsigned dev, char *out, size_t len);
uint32_t device_instance_id(unsigned dev);
size_t device_config_blob(unsigned dev, uint64_t seed, uint8_t *out, size_t len);
#define BENCH_CONFIG_BLOB_SIZE 96u
bool device_config_check(unsigned dev, uint64_t seed, const void *blob, size_t len);
void device_fill_block(unsigned dev, uint64_t seed, uint64_t offset, uint8_t *buf, size_t len);
uint64_t hash64(const void *data, size_t len, uint64_t seed);
int device_create_source(unsigned dev, uint64_t size, uint64_t seed, int *fd_out,
			 uint64_t *digest_out);
int device_expected_digest(unsigned dev, uint64_t size, uint64_t seed, uint64_t *digest_out);
int fd_digest(int fd, uint64_t *size_out, uint64_t *digest_out);
int memfd_sink(unsigned dev);

/* transport.c */
struct conn_set {
	int ctrl[2];      /* [0] source end, [1] destination end */
	int *src;         /* data connections, source ends */
	int *dst;         /* destination ends */
	unsigned n;
};
int transport_init(const struct bench_cfg *cfg);
void transport_cleanup(void);
int transport_connect_local(const struct bench_cfg *cfg, unsigned n, struct conn_set *cs);
void conn_set_close(struct conn_set *cs);
int transport_two_host(const struct bench_cfg *cfg, enum bench_side side, unsigned n,
		       int *ctrl, int *chans);

/* util */
int ctl_send(int fd, char c);
int ctl_recv(int fd, char *c);
void sleep_until(double t);
void set_sock_opts(int fd);

/* side.c: the common part of each side's process */
int side_main(struct side_ctx *ctx);

/* report.c */
void progress_update(const char *label, double frac, double elapsed);
void progress_done(void);
bool progress_enabled(const struct bench_cfg *cfg);

#endif
