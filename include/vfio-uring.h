/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring: move VFIO device migration state between two hosts over QEMU-compatible
 * multifd channels, driven by one io_uring ring per side.
 *
 * Model
 * -----
 * An engine is one side of one migration: the SOURCE reads each device's migration data fd
 * and sends device-state packets on the channels; the DESTINATION receives them, reorders
 * them per device, writes them in order to each device's data fd and finally hands the
 * device's config blob to the caller.
 *
 * An engine owns one io_uring and is single-threaded: every function taking an engine (or a
 * device of it) must be called from the thread that called vfio_uring_engine_start(), and
 * never concurrently. The caller keeps ownership of every fd it passes in (sockets and data
 * fds); the engine never closes them. When a migration fails the engine shuts the channel
 * sockets down (shutdown(2), not close) so that the peer sees the failure at once.
 *
 * Return contract: functions returning int return 0 (or a non-negative value where stated)
 * on success and a negated errno on failure. Nothing calls exit() or prints.
 *
 * Wire format: QEMU 10's multifd device-state packets, byte for byte (see README.md).
 */
#ifndef VFIO_URING_H
#define VFIO_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VFIO_URING_API __attribute__((visibility("default")))
#else
#define VFIO_URING_API
#endif

#define VFIO_URING_VERSION_MAJOR 0
#define VFIO_URING_VERSION_MINOR 1

/** Opaque handles. */
struct vfio_uring_engine;
struct vfio_uring_device;

enum vfio_uring_side {
	VFIO_URING_SOURCE = 1,
	VFIO_URING_DESTINATION = 2,
};

/**
 * Per-device multifd switch, as QEMU's x-migration-multifd-transfer. It can be changed at
 * any time until vfio_uring_engine_start(), which samples it.
 */
enum vfio_uring_multifd_mode {
	/** multifd when the engine has at least one channel, otherwise OFF. */
	VFIO_URING_MULTIFD_AUTO = 0,
	/** multifd; vfio_uring_engine_start() fails with -EINVAL without a channel. */
	VFIO_URING_MULTIFD_ON = 1,
	/** the engine leaves this device to the caller's own single-stream path. */
	VFIO_URING_MULTIFD_OFF = 2,
};

/** Engine flags (vfio_uring_engine_opts.flags). */
enum {
	/**
	 * Issue every data fd read and write with IOSQE_ASYNC, so io_uring runs it in a kernel
	 * worker thread, as it must for a real VFIO data fd (which cannot do non-blocking I/O).
	 * Lets synthetic devices (memfds) behave like real ones for measurement.
	 */
	VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO = 1u << 0,
	/** Do not use io_uring setup flags beyond the 5.15 baseline (tests the fallback path). */
	VFIO_URING_ENGINE_F_BASELINE_RING = 1u << 1,
};

#define VFIO_URING_DEFAULT_BUFFER_CAP (64u << 20)     /* 64 MiB */
#define VFIO_URING_DEFAULT_CHUNK_SIZE (1u << 20)      /* 1 MiB, as QEMU */
#define VFIO_URING_DEFAULT_MAX_PACKET_SIZE (4u << 20) /* largest payload a destination takes */
#define VFIO_URING_DEFAULT_RING_ENTRIES 256u
#define VFIO_URING_MAX_CHANNELS 256u                  /* the handshake's channel id is a u8 */
#define VFIO_URING_IDSTR_MAX 256u                     /* including the terminating NUL */

/**
 * Engine options. Initialise with vfio_uring_engine_opts_init(), then set what you need;
 * `size` lets the struct grow without breaking binaries built against an older header.
 */
struct vfio_uring_engine_opts {
	size_t size;                  /**< sizeof(struct vfio_uring_engine_opts) */
	enum vfio_uring_side side;    /**< required */
	uint8_t uuid[16];             /**< migration UUID: sent by a source, checked by a destination */
	size_t buffer_cap;            /**< bytes of payload buffers the engine may hold */
	size_t chunk_size;            /**< source: bytes per data fd read (one data packet) */
	size_t max_packet_size;       /**< destination: largest accepted payload (next_packet_size) */
	unsigned ring_entries;        /**< submission queue size */
	unsigned progress_timeout_ms; /**< fail with -ETIMEDOUT after this long with no progress; 0 = never */
	unsigned flags;               /**< VFIO_URING_ENGINE_F_* */
};

/**
 * Source: hands out the device's config blob, called once when its data stream has ended.
 * Store a pointer in *data and its length in *len; the memory must stay valid until the
 * device is done or the engine is destroyed. Return 0 or a negated errno (fails the device).
 */
typedef int (*vfio_uring_save_config_fn)(void *opaque, const void **data, size_t *len);

/**
 * Destination: loads the device's config blob, called exactly once, after every data byte
 * of the device was written to its data fd. Return 0 or a negated errno (fails the device).
 */
typedef int (*vfio_uring_load_config_fn)(void *opaque, const void *data, size_t len);

/**
 * Called once when the device leaves ACTIVE: error 0 when it is DONE, else the negated errno
 * it FAILED with (a VMM resumes a source device here). The engine may not be re-entered
 * from this callback.
 */
typedef void (*vfio_uring_device_done_fn)(void *opaque, int error);

struct vfio_uring_device_opts {
	size_t size;                 /**< sizeof(struct vfio_uring_device_opts) */
	const char *idstr;           /**< device id string, at most 255 bytes */
	uint32_t instance_id;
	int data_fd;                 /**< migration data fd: read (source) or written (destination) */
	enum vfio_uring_multifd_mode multifd;
	vfio_uring_save_config_fn save_config; /**< source; NULL = empty config blob */
	vfio_uring_load_config_fn load_config; /**< destination; NULL = config blob ignored */
	vfio_uring_device_done_fn done;        /**< optional */
	void *opaque;                /**< passed to the callbacks */
};

enum vfio_uring_device_state {
	VFIO_URING_DEVICE_REGISTERED = 0, /**< added, engine not started */
	VFIO_URING_DEVICE_ACTIVE = 1,     /**< transfer in progress */
	VFIO_URING_DEVICE_DONE = 2,       /**< every byte and the config moved */
	VFIO_URING_DEVICE_FAILED = 3,     /**< see error and message */
	VFIO_URING_DEVICE_NOT_MULTIFD = 4,/**< multifd OFF: left to the caller's single-stream path */
};

struct vfio_uring_device_status {
	enum vfio_uring_device_state state;
	int error;               /**< negated errno when FAILED, else 0 */
	const char *message;     /**< "" or why it failed; valid until the engine is destroyed */
	uint64_t bytes;          /**< QEMU's vfio.transferred: 12-byte VFIO header + data, per packet */
	uint64_t data_bytes;     /**< bytes read from (source) or written to (destination) the data fd */
	uint64_t packets;        /**< packets sent (source) or received (destination) */
	uint64_t packets_queued; /**< destination: packets received and waiting for their turn */
};

struct vfio_uring_engine_stats {
	uint64_t bytes;          /**< sum of the devices' bytes (QEMU's vfio.transferred) */
	uint64_t packets;
	uint64_t wire_bytes;     /**< every byte on every channel: handshakes, headers, payloads */
	uint64_t ring_enters;    /**< io_uring_enter(2) calls made by the engine */
	uint64_t completions;    /**< completions processed */
	uint64_t buffer_bytes;   /**< payload buffer bytes held now */
	uint64_t buffer_peak;    /**< most payload buffer bytes ever held */
	uint64_t buffer_cap;     /**< the configured cap */
};

struct vfio_uring_channel_stats {
	uint64_t wire_bytes;
	uint64_t packets;
};

/** Fills defaults: 64 MiB cap, 1 MiB chunks, 4 MiB max packet, 256 entries, no timeout. */
VFIO_URING_API void vfio_uring_engine_opts_init(struct vfio_uring_engine_opts *opts,
						enum vfio_uring_side side);
VFIO_URING_API void vfio_uring_device_opts_init(struct vfio_uring_device_opts *opts);

/**
 * Creates an engine and its io_uring, probing the kernel's features.
 * \return 0 and *out, or -EINVAL (bad options), -ENOMEM, -EOPNOTSUPP (kernel lacks an
 *         opcode the engine needs), or the error of io_uring_setup(2).
 */
VFIO_URING_API int vfio_uring_engine_create(const struct vfio_uring_engine_opts *opts,
					    struct vfio_uring_engine **out);

/** Cancels anything in flight, waits for it, frees everything. NULL is allowed. */
VFIO_URING_API void vfio_uring_engine_destroy(struct vfio_uring_engine *engine);

/**
 * Adds a connected stream socket (TCP or UNIX) as the next channel; before start only.
 * \return the channel number (0, 1, ...), or -EBUSY (started), -E2BIG (too many), -EBADF.
 */
VFIO_URING_API int vfio_uring_engine_add_channel(struct vfio_uring_engine *engine, int sockfd);

/**
 * Registers a device; before start only. (idstr, instance_id) must be unique.
 * \return 0 and *out (owned by the engine), or -EINVAL, -EEXIST, -EBUSY, -ENOMEM.
 */
VFIO_URING_API int vfio_uring_engine_add_device(struct vfio_uring_engine *engine,
						const struct vfio_uring_device_opts *opts,
						struct vfio_uring_device **out);

/** Changes a device's multifd switch; -EBUSY once the engine has started. */
VFIO_URING_API int vfio_uring_device_set_multifd(struct vfio_uring_device *dev,
						 enum vfio_uring_multifd_mode mode);

/**
 * Starts the transfer: samples each device's multifd switch; a source sends the handshake
 * on every channel and starts reading; a destination starts receiving.
 * \return 0, or -EINVAL (multifd ON without a channel), -EBUSY (already started).
 */
VFIO_URING_API int vfio_uring_engine_start(struct vfio_uring_engine *engine);

/**
 * Destination: the switchover has started (QEMU's switchover_start); from now on received
 * data is written to the data fds. Before it, nothing is written and received packets stay
 * queued within the buffer cap. Source: -EINVAL.
 */
VFIO_URING_API int vfio_uring_engine_switchover_start(struct vfio_uring_engine *engine);

/**
 * Runs until every multifd device is done, the engine fails, or timeout_ms passes
 * (-1 = no limit).
 * \return 0 when done, -ETIMEDOUT when timeout_ms passed (the transfer goes on; call again
 *         or cancel), or the engine's error.
 */
VFIO_URING_API int vfio_uring_engine_run(struct vfio_uring_engine *engine, int timeout_ms);

/**
 * For a caller's own event loop: an fd that polls readable (POLLIN) when the engine has
 * completions to process. Valid after start. Call vfio_uring_engine_process() then.
 */
VFIO_URING_API int vfio_uring_engine_get_fd(const struct vfio_uring_engine *engine);

/**
 * Processes whatever has completed, submits what follows, never blocks.
 * \return 1 when every device is done, 0 while in progress, or the engine's error.
 */
VFIO_URING_API int vfio_uring_engine_process(struct vfio_uring_engine *engine);

/** Fails the migration with -ECANCELED; the engine can then be destroyed. */
VFIO_URING_API int vfio_uring_engine_cancel(struct vfio_uring_engine *engine);

/**
 * The engine's first error: a negated errno (0 if none) and, in *message if not NULL, a
 * text naming side, channel, device and cause; valid until the engine is destroyed.
 */
VFIO_URING_API int vfio_uring_engine_error(const struct vfio_uring_engine *engine,
					   const char **message);

VFIO_URING_API int vfio_uring_device_get_status(const struct vfio_uring_device *dev,
						struct vfio_uring_device_status *status);
VFIO_URING_API int vfio_uring_engine_get_stats(const struct vfio_uring_engine *engine,
					       struct vfio_uring_engine_stats *stats);
/** \return 0, or -ENOENT for a channel number that does not exist. */
VFIO_URING_API int vfio_uring_engine_get_channel_stats(const struct vfio_uring_engine *engine,
						       unsigned channel,
						       struct vfio_uring_channel_stats *stats);
/** Zeroes the byte and packet counters of the engine, its devices and channels. */
VFIO_URING_API void vfio_uring_engine_reset_stats(struct vfio_uring_engine *engine);

VFIO_URING_API const char *vfio_uring_device_idstr(const struct vfio_uring_device *dev);
VFIO_URING_API uint32_t vfio_uring_device_instance_id(const struct vfio_uring_device *dev);

/** Names for printing. */
VFIO_URING_API const char *vfio_uring_device_state_name(enum vfio_uring_device_state state);
VFIO_URING_API const char *vfio_uring_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_URING_H */
