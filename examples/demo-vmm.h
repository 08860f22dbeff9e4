/* SPDX-License-Identifier: MIT */
/*
 * What the example VMMs share that is NOT about the event loop: the command line, the fake
 * devices (memfds with deterministic content stand in for VFIO migration data fds), the
 * loopback TCP connections, the control channel and the loop statistics. Read epoll-vmm.c
 * or glib-vmm.c first; this file only keeps them short.
 */
#ifndef DEMO_VMM_H
#define DEMO_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vfio-uring.h>

#define DEMO_MAX_DEVICES 8
#define DEMO_MAX_CHANNELS 8
#define DEMO_TICK_MS 10 /* the period of the VMM's "other work" */
#define DEMO_CONFIG_MAX 512
#define DEMO_ACCEPT_TIMEOUT_MS 30000

/* A real VMM has this from its migration stream; both sides of the demo agree on it. */
extern const uint8_t demo_uuid[16];

struct demo_options {
	bool source;        /* --role source | destination */
	unsigned port;      /* --port: the destination listens (0: any), the source connects */
	unsigned devices;   /* --devices (default 4) */
	unsigned channels;  /* --channels (default 3) */
};

/* 0, or prints the usage and returns -EINVAL. */
int demo_parse_options(int argc, char **argv, struct demo_options *opts);

struct demo_device {
	char idstr[32];                 /* "0000:00:0N.0/vfio", as QEMU names a VFIO device */
	unsigned index;
	uint64_t size;                  /* bytes of migration data (16 to 64 MiB) */
	int data_fd;                    /* memfd: read by the source, written by the destination */
	uint8_t config[DEMO_CONFIG_MAX];/* source: the blob to send; destination: what arrived */
	size_t config_len;
	unsigned config_loads;          /* destination: load_config calls */
	struct vfio_uring_device *handle;
	bool reported;                  /* its done callback has run */
	int error;                      /* ... with this error */
	void *vmm;                      /* the example's own state, for the callbacks */
};

/* Source: memfds filled with each device's pattern and config blob. Destination: empty ones. */
int demo_devices_create(struct demo_device *devs, unsigned n, bool source);
void demo_devices_close(struct demo_device *devs, unsigned n);
/* Destination: 0 when the data fd holds exactly the device's pattern and the config blob
 * arrived once and intact; else -EIO, with the first difference printed. */
int demo_device_verify(const struct demo_device *dev);

/* Destination: listens on 127.0.0.1:port (0: a free port) and prints the port. */
int demo_listen(unsigned port, int *listen_fd);
/* The control connection first, then one per channel: connect() returns once the
 * connection is queued for accept(), so both sides see them in the same order. The
 * destination waits at most DEMO_ACCEPT_TIMEOUT_MS for each (-ETIMEDOUT). */
int demo_accept_all(int listen_fd, int *control_fd, int *channel_fds, unsigned channels);
int demo_connect_all(unsigned port, int *control_fd, int *channel_fds, unsigned channels);

/* Source: demo_connect_all(); destination: demo_listen() then demo_accept_all(). */
int demo_connect(const struct demo_options *opts, int *control_fd, int *channel_fds);

/*
 * Creates the engine for this side, adds the channels and the devices (save_config or
 * load_config from the demo device, `done` given by the example: what it does is the
 * example's business). Not about the loop: the same in every example.
 */
int demo_engine_setup(const struct demo_options *opts, struct demo_device *devs,
		      const int *channel_fds, vfio_uring_device_done_fn done,
		      struct vfio_uring_engine **engine);

/* The control channel stands in for the VMM's main migration stream. */
enum { DEMO_MSG_SWITCHOVER = 'S' };
int demo_send_message(int fd, char msg);

/*
 * How well the loop served its other work while the engine ran. On a shared machine a gap
 * between ticks also holds time the loop thread waited for a CPU (it was runnable but
 * another task ran): the "own" gap takes that out (from /proc/thread-self/schedstat), which
 * leaves what the loop itself spent: mostly inside process().
 */
struct demo_loop_stats {
	uint64_t start_ns, end_ns;
	uint64_t last_tick_ns, last_tick_wait_ns;
	uint64_t max_gap_ns;         /* largest gap between ticks (and from start, and to the end) */
	uint64_t max_gap_own_ns;     /* the same, less the time spent waiting for a CPU */
	uint64_t max_process_ns;     /* longest vfio_uring_engine_process() call, wall clock */
	uint64_t max_process_cpu_ns; /* ... and the most CPU time one call used */
	unsigned ticks, process_calls;
	unsigned process_sleeps;     /* calls during which the thread slept: process() blocked */
	int schedstat_fd;
	/* the process() call being measured */
	uint64_t call_ns, call_cpu_ns;
	long call_nvcsw;
};

uint64_t demo_now_ns(void);
void demo_stats_start(struct demo_loop_stats *s);
void demo_stats_tick(struct demo_loop_stats *s);
void demo_stats_process_begin(struct demo_loop_stats *s);
void demo_stats_process_end(struct demo_loop_stats *s);
void demo_stats_stop(struct demo_loop_stats *s);

/*
 * The start of the transfer, the same in every example: the source tells the destination
 * the switchover is here (its VM is stopped, its devices in STOP_COPY); then the loop's
 * statistics and the engine start. Call it from the thread that runs the loop: the engine's
 * ring accepts submissions only from the thread that called start. Returns the engine's
 * fd, for the loop to watch, or -errno.
 */
int demo_engine_start(const struct demo_options *opts, int control_fd,
		      struct vfio_uring_engine *engine, struct demo_loop_stats *stats);

/*
 * Prints the outcome (the lines the tests read):
 *   <side>: migrated N devices, B bytes in T ms, buffers peak P of C MiB
 *   or <side>: migration failed: E (strerror): message
 *   <side>: timer ticks N, largest gap G ms, O ms without CPU waits
 *   <side>: process() calls N, longest P ms (cpu C ms), slept S times
 * and each device's status. Call before vfio_uring_engine_destroy(): the messages are the
 * engine's. Returns the exit status: 0 success, 1 failure.
 */
int demo_report(const char *side, struct vfio_uring_engine *engine, int result,
		const struct demo_device *devs, unsigned n, const struct demo_loop_stats *stats);

#endif /* DEMO_VMM_H */
