/* SPDX-License-Identifier: MIT */
/*
 * Internal view of an engine: the structs every module shares, and the calls between the
 * engine core (engine.c: the ring, the dispatcher, failure and teardown) and its side,
 * source.c or destination.c, which the engine reaches only through its struct vu_side_ops.
 *
 * State machines: the engine (enum vu_engine_state), a device's public state (enum
 * vfio_uring_device_state), what an ACTIVE device does on each side (enum vu_src_state,
 * enum vu_dst_state) and a destination channel (enum vu_recv_state). Each changes in one
 * function that asserts the transition against a table; all but the public device state
 * (whose end the device_done and error probes report) fire a USDT probe (probes.h).
 *
 * Ownership: every in-flight io_uring operation is a `struct vu_op` embedded in the device
 * or channel that issued it; a CQE's user_data points at it and the engine's dispatch()
 * routes it by kind to the side. A device has at most one operation in flight (a read of its data fd on the
 * source, a write on the destination: a data fd is a byte stream), and so has a channel
 * (a send on the source, a receive on the destination: a stream socket must not interleave).
 * So the engine never allocates per I/O: payload buffers come from the pool (pool.h).
 */
#ifndef VFIO_URING_ENGINE_H
#define VFIO_URING_ENGINE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "vfio-uring.h"
#include "pool.h"
#include "reorder.h"
#include "wire.h"

#define VU_MESSAGE_SIZE 512

enum vu_op_kind {
	VU_OP_DEVICE_READ = 1,  /* source: read(data_fd) into a packet buffer */
	VU_OP_DEVICE_WRITE,     /* destination: write(data_fd) of a packet's data */
	VU_OP_CHANNEL_SEND,     /* source: send a handshake or packet */
	VU_OP_CHANNEL_RECV,     /* destination: receive a handshake, header or payload */
	VU_OP_SIDE,             /* a side's own operation, owner the engine (source: the pace
				   and pre-copy poll timers, each channel's peer watch) */
};

struct vu_op {
	uint8_t kind;      /* enum vu_op_kind */
	bool in_flight;
	void *owner;       /* struct vfio_uring_device *, struct vu_channel * or the engine */
};

/*
 * Destination channel: what the next receive is for; destination.c's set_recv_state() makes
 * every transition: HANDSHAKE -> HEADER -> (PARKED ->) PAYLOAD -> HEADER ... -> CLOSED.
 */
enum vu_recv_state {
	VU_RECV_HANDSHAKE, /* (0: a new channel) the 64-byte handshake, first on every channel */
	VU_RECV_HEADER,    /* a 276-byte device-state header and the 12-byte VFIO header behind it */
	VU_RECV_PAYLOAD,   /* the packet's data (next_packet_size - 12 bytes) into a pool buffer */
	VU_RECV_PARKED,    /* headers read, waiting for the pool to free room for the data */
	VU_RECV_CLOSED,    /* the peer closed the channel at a packet boundary */
};

/*
 * Source device, while ACTIVE: what it does now. source.c's vu_source_set_state() makes every
 * transition; the device's public state (DONE, FAILED) ends it wherever it is.
 *   IDLE -> READING -> IDLE ...              a read per packet
 *   IDLE -> WAIT_READ -> READING             no room for the next read yet
 *   READING -> END_OF_STREAM (-> WAIT_CONFIG) -> SENDING
 *   READING -> PRECOPY_WAIT -> IDLE          pre-copy: nothing to read for now (precopy.c)
 */
enum vu_src_state {
	VU_SRC_IDLE,          /* (0) its next step is a read, not started yet */
	VU_SRC_READING,       /* a read of data_fd is in flight into dev->reading */
	VU_SRC_WAIT_READ,     /* on the waiting list: the pool is at its cap, or the channels
				 have enough packets ready to send (backpressure) */
	VU_SRC_END_OF_STREAM, /* read() returned 0: the config packet is next */
	VU_SRC_WAIT_CONFIG,   /* on the waiting list: the config packet waits for room */
	VU_SRC_SENDING,       /* config packet queued: DONE once packets_unsent is 0 */
	VU_SRC_PRECOPY_WAIT,  /* pre-copy: its read found nothing (ENOMSG or 0); the poll timer
				 asks its precopy_info again, stop_copy() wakes it at once */
};

/*
 * Destination device, while ACTIVE: what it does now. destination.c's set_dst_state() makes
 * every transition: RECEIVING <-> WRITING, then RECEIVING (-> WAIT_CALLER, when its config
 * load waits for the caller) -> LOADING; the config loaded, it is DONE.
 */
enum vu_dst_state {
	VU_DST_RECEIVING,   /* (0) its next packet is not here, or switchover has not started */
	VU_DST_WRITING,     /* a write of data_fd is in flight from dev->writing */
	VU_DST_WAIT_CALLER, /* all written, config here: waits for config_load_ready() */
	VU_DST_LOADING,     /* its load_config callback runs: DONE or FAILED next */
};

struct vu_channel {
	struct vfio_uring_engine *engine;
	unsigned index;
	int fd;
	struct vu_op io;
	struct vfio_uring_channel_stats stats;

	uint8_t handshake[VU_WIRE_HANDSHAKE_SIZE]; /* sent first (source), received first */

	/* Each side's own part: only source.c, or only destination.c, touches one. */
	union {
		struct { /* source */
			/* packets waiting to be sent, in order; the first is being sent */
			STAILQ_HEAD(, vu_buf) send_queue;
			uint64_t outstanding;    /* bytes queued or in flight (least_loaded_channel) */
			size_t send_offset;      /* bytes of the head (or handshake) already sent */
			bool handshake_pending;  /* the handshake goes out before any packet */
			bool paced;              /* its next packet waits for the bandwidth cap */
			/*
			 * While live (pre-copy), a receive that peeks at what the destination
			 * sends: nothing, until it closes or resets the channel (it failed),
			 * which an idle source would otherwise learn only at its next send.
			 */
			struct vu_op watch;
			uint8_t watch_byte;
		};

		struct { /* destination */
			enum vu_recv_state recv_state;
			size_t received;         /* bytes of the current structure received so far */
			/*
			 * Both headers are received together, so the device and idx of a
			 * packet are known before a buffer is taken for its data: see the
			 * memory policy in destination.c.
			 */
			uint8_t header[VU_WIRE_PACKET_OVERHEAD];
			struct vu_wire_header hdr;          /* the decoded headers of the packet being read */
			struct vu_wire_vfio_header vh;
			struct vfio_uring_device *target;   /* ... and the device it is for */
			struct vu_buf *payload;             /* its data */
			TAILQ_ENTRY(vu_channel) parked_link; /* on the engine's parked channels */
		};
	};
};

struct vfio_uring_device {
	struct vfio_uring_engine *engine;
	unsigned index;
	char idstr[VFIO_URING_IDSTR_MAX];
	uint32_t instance_id;
	int data_fd;
	enum vfio_uring_multifd_mode multifd;
	vfio_uring_save_config_fn save_config;
	vfio_uring_load_config_fn load_config;
	vfio_uring_device_done_fn done;
	vfio_uring_precopy_info_fn precopy_info;
	void *opaque;

	enum vfio_uring_device_state state;
	int error;
	enum vfio_uring_reason reason;
	char message[VU_MESSAGE_SIZE];
	uint64_t bytes, data_bytes, packets; /* see struct vfio_uring_device_status */
	uint64_t started_ns;
	struct vu_op io;
	bool fail_pending;           /* failed, reported once io has completed */

	/* Each side's own part: only source.c, or only destination.c, touches one. */
	union {
		struct { /* source */
			enum vu_src_state src_state;
			struct vu_buf *reading;      /* the buffer a read is filling */
			uint64_t read_issued_ns;     /* when that read was issued */
			bool reads_fast;             /* its last read completed as fast as a memory copy */
			uint32_t next_idx;           /* idx of the next packet */
			bool config_saved;           /* save_config() was called (once): config_blob is its */
			const void *config_blob;
			size_t config_len;
			unsigned packets_unsent;     /* packets queued on channels or being sent */
			struct vu_channel *last_channel; /* where its previous packet went */
			STAILQ_ENTRY(vfio_uring_device) waiting_link; /* on the engine's waiting devices */
			/* Its read rate, over reads that returned data: the stop-copy estimate. */
			uint64_t read_busy_ns, read_timed_bytes;
			/*
			 * Pre-copy (precopy.c), for a device with precopy_info: its stream starts
			 * live, in PRE_COPY, until the engine's stop_copy.
			 */
			bool read_live;              /* the read in flight was issued before stop_copy() */
			struct vfio_uring_precopy_info info; /* as it last reported */
			uint64_t info_ns;            /* when (0: never asked) */
			uint64_t precopy_bytes;      /* data bytes read live */
			uint64_t reinits;            /* reports with VFIO_URING_PRECOPY_F_REINIT */
		};

		struct { /* destination */
			enum vu_dst_state dst_state;
			uint32_t next_write_idx;     /* the packet to write next */
			uint32_t next_missing_idx;   /* lowest idx not here: all below are here or written */
			uint64_t data_idx_end;       /* 1 + the highest data idx received (0: none) */
			uint32_t config_idx;         /* the config packet's idx, UINT32_MAX until it arrives */
			struct vu_buf *config;       /* the config packet, held until its turn */
			struct vu_buf *writing;      /* the packet being written */
			size_t write_offset;         /* bytes of it already written */
			unsigned queued;             /* packets received, waiting for their turn */
			/* Pre-copy: every PRECOPY packet's idx is below every other packet's. */
			uint32_t precopy_idx_end;    /* 1 + the highest PRECOPY idx received (0: none) */
			uint32_t stopcopy_idx_min;   /* the lowest other idx received, UINT32_MAX: none */
			bool config_load_waits;      /* VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS */
			bool config_load_ready;      /* ... and the caller said the config may be loaded */
		};
	};
};

/*
 * The engine's lifecycle; vu_engine_set_state() makes every transition:
 *   CREATED -> RUNNING -> FINISHING
 *                  \          \
 *                   -> FAILED <-
 */
enum vu_engine_state {
	VU_ENGINE_CREATED,     /* (0: a new engine) channels and devices may be added; nothing in flight */
	VU_ENGINE_RUNNING,     /* started: devices are moving their state */
	VU_ENGINE_FINISHING,   /* every multifd device DONE: waiting for the last operations */
	VU_ENGINE_FAILED,      /* the first error is recorded; what is in flight drains */
};

/* The source's part of an engine: its read window, send scheduling and bandwidth cap. */
struct vu_source_engine {
	unsigned next_channel;       /* where the round-robin tie-break starts */
	size_t read_size;            /* bytes per data fd read (<= chunk_size) */
	size_t ready;                /* bytes of packets queued on channels or being sent */
	size_t reading_fast;         /* bytes being read by devices that read fast */
	size_t ready_limit;          /* no new read while `ready` is at this */
	uint64_t rate_limit;         /* bytes per second on all channels; 0 = no cap */
	uint64_t pace_ns;            /* when the cap lets the next packet start */
	struct vu_op pace_timer;     /* wakes paced channels at pace_ns */
	struct __kernel_timespec pace_ts;
	/* Devices waiting for pool space (WAIT_READ, WAIT_CONFIG), woken in FIFO order. */
	STAILQ_HEAD(, vfio_uring_device) waiting;
	/* Pre-copy (precopy.c). */
	bool live;                   /* pre-copy devices stream live: until stop_copy() */
	bool stop_copy;              /* stop_copy() was called */
	bool precopy_ready;          /* the readiness last reported to the caller */
	uint64_t precopy_rate_limit; /* the cap while live; 0 = none */
	struct vu_op poll_timer;     /* asks the devices' precopy_info every precopy_poll_ms */
	struct __kernel_timespec poll_ts;
};

/* The destination's part of an engine: switchover, channel admission and the memory policy. */
struct vu_dest_engine {
	bool switchover;             /* switchover_start() was called */
	unsigned channels_open;      /* channels not closed by the peer */
	size_t reserve;              /* pool bytes only a device's next missing packet may use */
	unsigned waiting_for_caller; /* devices whose config load waits for the caller */
	uint64_t channel_ids_seen[VFIO_URING_MAX_CHANNELS / 64]; /* accepted handshake ids */
	/* Channels waiting for pool space (VU_RECV_PARKED), resumed in FIFO order. */
	TAILQ_HEAD(, vu_channel) parked_channels;
	unsigned parked;             /* how many are parked */
};

struct vfio_uring_engine {
	struct vfio_uring_engine_opts opts;
	const struct vu_side_ops *ops; /* by opts.side */
	struct io_uring ring;
	bool ring_ready;
	unsigned ring_flags;         /* the setup flags the kernel accepted */
	int msg_waitall;             /* MSG_WAITALL, or 0 (VFIO_URING_ENGINE_F_NO_WAITALL) */

	struct vfio_uring_device **devices;
	unsigned n_devices;
	struct vu_channel *channels;
	unsigned n_channels;

	struct vu_pool pool;
	struct vu_reorder reorder;

	enum vu_engine_state state;
	int error;
	enum vfio_uring_reason reason;
	char message[VU_MESSAGE_SIZE];

	unsigned devices_active;     /* multifd devices not yet DONE or FAILED */
	unsigned in_flight;          /* operations submitted and not yet completed */
	unsigned device_io;          /* data fd reads or writes in flight */
	unsigned device_io_peak;     /* most of them at once */

	/* The side's own part (opts.side): only source.c, or only destination.c, touches one. */
	union {
		struct vu_source_engine src;
		struct vu_dest_engine dst;
	};

	uint64_t ring_enters, completions;
	uint64_t last_progress_ns;
};

/* Started: RUNNING, FINISHING or FAILED. */
static inline bool vu_engine_started(const struct vfio_uring_engine *e)
{
	return e->state != VU_ENGINE_CREATED;
}

/* FAILED: handlers only let what is in flight drain; teardown frees the buffers. */
static inline bool vu_engine_failed(const struct vfio_uring_engine *e)
{
	return e->state == VU_ENGINE_FAILED;
}

static inline bool vu_engine_finishing(const struct vfio_uring_engine *e)
{
	return e->state == VU_ENGINE_FINISHING;
}

/* engine.c */
uint64_t vu_now_ns(void);
/* The one way the engine's state changes: asserts the transition, fires engine_state. */
void vu_engine_set_state(struct vfio_uring_engine *e, enum vu_engine_state state);
/*
 * Reads a caller's device options (of opts->size bytes, vfio-uring.h "ABI") into *o over
 * the defaults: 0, -EINVAL (NULL, size below data_fd or too big) or -E2BIG.
 */
int vu_device_opts_read(struct vfio_uring_device_opts *o, const struct vfio_uring_device_opts *opts);
struct io_uring_sqe *vu_engine_get_sqe(struct vfio_uring_engine *e);
void vu_op_submitted(struct vfio_uring_engine *e, struct vu_op *op, struct io_uring_sqe *sqe);
/* Asks the kernel to cancel op if it is in flight; its CQE still arrives and is dispatched. */
void vu_engine_cancel_op(struct vfio_uring_engine *e, struct vu_op *op);
/*
 * Fails the migration: records the first error (reason, errno, and a message naming side,
 * channel, device and cause), fails the device concerned with it and every other active
 * device with VFIO_URING_REASON_FALLOUT (-ECANCELED), cancels what is in flight and shuts
 * the channels down. dev and chan may be NULL. err is the failed call's negated errno for
 * the reasons that carry one (errno 0 in the list), else 0: the reason's own.
 */
void vu_engine_fail(struct vfio_uring_engine *e, struct vfio_uring_device *dev,
		    struct vu_channel *chan, enum vfio_uring_reason reason, int err,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Marks a device DONE, calls its done callback, and finishes the engine after the last. */
void vu_device_done(struct vfio_uring_device *dev);
const char *vu_side_name(const struct vfio_uring_engine *e);

/*
 * A side's half of the engine (source.c, destination.c), chosen at create: engine.c runs the
 * ring, dispatches completions to these, and handles failure and teardown.
 */
struct vu_side_ops {
	uint8_t device_op;  /* enum vu_op_kind of a device's I/O */
	uint8_t channel_op; /* ... and of a channel's */
	/* At create: sets up the side's part of the engine (e->src or e->dst). */
	void (*init)(struct vfio_uring_engine *e);
	/* add_device(): sets up the side's part of the device from its options (NULL: none). */
	void (*device_init)(struct vfio_uring_device *dev, const struct vfio_uring_device_opts *opts);
	/* Every ACTIVE device and every channel is set up: issue the first operations. 0 or <0. */
	int (*start)(struct vfio_uring_engine *e);
	void (*device_io_done)(struct vfio_uring_device *dev, int res);
	void (*channel_io_done)(struct vu_channel *chan, int res);
	void (*side_op_done)(struct vu_op *op, int res); /* VU_OP_SIDE */
	/* switchover_start() was called, before or after start (NULL: the side has none). */
	void (*switchover)(struct vfio_uring_engine *e);
	/* Failure: cancel the side's own operations in flight (vu_engine_cancel_op); NULL: none. */
	void (*cancel)(struct vfio_uring_engine *e);
	/* Every device DONE: what is still in flight carries nothing (NULL: nothing to do). */
	void (*finish)(struct vfio_uring_engine *e);
	/* The device is DONE or FAILED now, before its done callback (NULL: nothing to do). */
	void (*device_stopped)(struct vfio_uring_device *dev);
	/* For its status: packets received and waiting for their turn (NULL: none). */
	unsigned (*packets_queued)(const struct vfio_uring_device *dev);
	/* Teardown, nothing in flight: returns every buffer the side holds to the pool. */
	void (*release_buffers)(struct vfio_uring_engine *e);
	/* Every device left waits for a call of the caller's (NULL: never): run() says -EAGAIN. */
	bool (*only_caller_awaited)(const struct vfio_uring_engine *e);
	/* Whether the progress timeout runs now (NULL: always while running). */
	bool (*progress_expected)(const struct vfio_uring_engine *e);
	/* What a channel with nothing in flight waits for, for a timeout message; NULL: nothing. */
	const char *(*channel_waits)(const struct vu_channel *chan);
};

/* source.c */
extern const struct vu_side_ops vu_source_ops;
void vu_source_set_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second);
/* Applies a changed cap (rate_limit, or precopy_rate_limit while live) from now on. */
void vu_source_rate_changed(struct vfio_uring_engine *e);
/* Cancels the channels' peer watches (kept only while live: see watch_peer in source.c). */
void vu_source_stop_watching(struct vfio_uring_engine *e);
/* Starts the device's next step (a read) or queues it behind the devices waiting for space. */
void vu_source_device_pump(struct vfio_uring_device *dev);
void vu_source_set_state(struct vfio_uring_device *dev, enum vu_src_state state);

/* precopy.c: the source's live phase */
void vu_precopy_start(struct vfio_uring_engine *e);
/* A live read returned nothing (ENOMSG or 0): the device waits for the poll timer. */
void vu_precopy_read_empty(struct vfio_uring_device *dev);
/* A live read returned data: refreshes the device's precopy_info when it is older than a poll. */
void vu_precopy_read_data(struct vfio_uring_device *dev, uint64_t bytes, uint64_t now);
void vu_precopy_timer_done(struct vfio_uring_engine *e, int res);
/* vfio_uring_engine_stop_copy(), before or after start; again: nothing */
void vu_precopy_stop_copy(struct vfio_uring_engine *e);
/* vfio_uring_engine_set_precopy_rate_limit(): the cap of the live phase */
void vu_precopy_set_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second);
void vu_precopy_device_status(const struct vfio_uring_device *dev,
			      struct vfio_uring_precopy_status *st);
void vu_precopy_engine_status(const struct vfio_uring_engine *e,
			      struct vfio_uring_precopy_status *st);

/* destination.c */
extern const struct vu_side_ops vu_destination_ops;
/* The caller lets the device's config load: 0, or the device's error when it FAILED. */
int vu_destination_config_load_ready(struct vfio_uring_device *dev);

#endif /* VFIO_URING_ENGINE_H */
