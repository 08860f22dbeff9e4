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
 * Callbacks (save_config, load_config, done; precopy_info and precopy_ready with pre-copy)
 * run inside process(), run(), start(), switchover_start(), stop_copy(), cancel(),
 * config_load_ready() and destroy(). From a callback the caller may call
 * vfio_uring_engine_cancel() and the read-only queries (status, stats, error, names); never
 * process(), run(), switchover_start() or destroy(): record what happened, act from the loop
 * (docs/EMBEDDING.md).
 *
 * Return contract: functions returning int return 0 (or a non-negative value where stated)
 * on success and a negated errno on failure. Nothing calls exit() or prints.
 *
 * Wire format: QEMU 10's multifd device-state packets, byte for byte (see README.md).
 *
 * ABI
 * ---
 * From 0.2.0 on the ABI is stable: a program built against these headers runs with the
 * same or any later 0.x library (soname libvfio-uring.so.0; every function carries the
 * symbol version of the release that added it, VFIO_URING_0.2 for the first ones). Structs
 * only grow at their end; a field never moves or changes type. Every struct passed by
 * pointer says how big the caller's copy of it is, so that a program built against older or
 * newer headers than the library's never has bytes beyond its struct read or written:
 *
 *  - Options (vfio_uring_engine_opts, vfio_uring_device_opts) carry `size`, set by their
 *    init function: a static inline, so it runs in the program with the program's
 *    sizeof. The library reads only `size` bytes; fields beyond them take their defaults.
 *    A struct bigger than the library's (newer headers) is accepted when the bytes the
 *    library does not know are all 0 (every field added later has 0 as its default, the
 *    earlier behaviour), else the call fails with -E2BIG: the program asked for something
 *    this library cannot do. `size` below the required fields is -EINVAL.
 *  - Outputs (vfio_uring_device_status, vfio_uring_engine_stats, vfio_uring_channel_stats)
 *    are filled by functions that take the caller's sizeof(*out) (SPDK's convention):
 *        vfio_uring_engine_get_stats(engine, &stats, sizeof(stats));
 *    The library writes exactly `size` bytes: the fields it knows, as far as they fit, and
 *    0 in any it does not know (a field added later reads 0 from an older library).
 *  - A size of 0 or above VFIO_URING_STRUCT_SIZE_MAX is -EINVAL (an uninitialised size).
 */
#ifndef VFIO_URING_H
#define VFIO_URING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, in the inline opts_init functions */
#include <sys/types.h>

#include "vfio-uring-version.h" /* VFIO_URING_VERSION_*, VFIO_URING_CHECK_VERSION() */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VFIO_URING_API __attribute__((visibility("default")))
#else
#define VFIO_URING_API
#endif

/** Opaque handles. */
struct vfio_uring_engine;
struct vfio_uring_device;
struct vfio_uring_precopy_status; /* below, with pre-copy */

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
	/*
	 * Optional kernel features, each of which the engine probes and falls back from; these
	 * flags switch one off, so that the fallback paths run on a kernel that has the feature
	 * (docs/KERNELS.md lists the minimum kernel of each).
	 */
	/** No io_uring setup flags beyond the 5.15 baseline (SINGLE_ISSUER 6.0, R_DISABLED 5.10). */
	VFIO_URING_ENGINE_F_BASELINE_RING = 1u << 1,
	/**
	 * No MSG_WAITALL on sends and receives: a short transfer comes back to the engine, which
	 * continues it (what kernels before 5.19 do even with the flag).
	 */
	VFIO_URING_ENGINE_F_NO_WAITALL = 1u << 2,
	/** Leave io-wq's worker limits as they are (IORING_REGISTER_IOWQ_MAX_WORKERS, 5.15). */
	VFIO_URING_ENGINE_F_NO_IOWQ_LIMITS = 1u << 3,
	/**
	 * Live pre-copy over the channels ("Pre-copy" below; README "Wire format"), an
	 * extension of QEMU's wire that both sides must enable. A source reads the devices
	 * registered with a precopy_info callback while the VM runs and sends that data with
	 * the extension's PRECOPY flag in the VFIO packet header; a destination accepts such
	 * packets and writes them before switchover start. Without it (the default) the wire
	 * is QEMU's byte for byte and a destination rejects the flag (VFIO_FLAGS).
	 */
	VFIO_URING_ENGINE_F_PRECOPY = 1u << 4,
};

#define VFIO_URING_DEFAULT_BUFFER_CAP (64u << 20)     /* 64 MiB */
#define VFIO_URING_DEFAULT_CHUNK_SIZE (1u << 20)      /* 1 MiB, as QEMU */
#define VFIO_URING_DEFAULT_MAX_PACKET_SIZE (4u << 20) /* largest payload a destination takes */
#define VFIO_URING_DEFAULT_RING_ENTRIES 256u
#define VFIO_URING_MAX_CHANNELS 256u                  /* the handshake's channel id is a u8 */
#define VFIO_URING_IDSTR_MAX 256u                     /* including the terminating NUL */
#define VFIO_URING_STRUCT_SIZE_MAX 4096u              /* largest `size` of a struct (see ABI) */

/**
 * Engine options. Initialise with vfio_uring_engine_opts_init(), then set what you need;
 * `size` lets the struct grow without breaking binaries built against other headers (ABI).
 */
struct vfio_uring_engine_opts {
	size_t size;                  /**< sizeof(struct vfio_uring_engine_opts), as the caller sees it */
	enum vfio_uring_side side;    /**< required (size must cover it) */
	/**
	 * The VM's UUID: a source sends it in every channel handshake, a destination checks it.
	 * A QEMU destination compares it with its own -uuid (all zeros when -uuid is not given),
	 * not with a per-migration value; a VMM that is not QEMU may use any 16 bytes both sides
	 * agree on.
	 */
	uint8_t uuid[16];
	size_t buffer_cap;            /**< bytes of payload buffers the engine may hold */
	/**
	 * Source: bytes per data fd read (one data packet), at most. Every multifd device keeps
	 * one read in flight, so when buffer_cap cannot hold (devices + channels + 2) packets of
	 * chunk_size, reads shrink to the largest multiple of 4 KiB for which it can (at least
	 * 4 KiB): cap / (devices + channels + 2) - 288 bytes of packet headers, rounded down.
	 */
	size_t chunk_size;
	size_t max_packet_size;       /**< destination: largest accepted payload (next_packet_size) */
	unsigned ring_entries;        /**< submission queue size */
	unsigned progress_timeout_ms; /**< fail with -ETIMEDOUT after this long with no progress; 0 = never */
	unsigned flags;               /**< VFIO_URING_ENGINE_F_* */
	/**
	 * Destination: fail with -ENOBUFS when received packets not yet written would hold more
	 * than this many payload bytes (QEMU 10.1's x-migration-max-queued-buffers-size).
	 * 0 (the default): never fail for memory; channels whose next packet does not fit the
	 * buffer cap stop receiving until writes free room, and TCP backpressure slows the
	 * source (before switchover start, until it starts).
	 */
	size_t max_queued_bytes;
	/*
	 * Pre-copy (source, VFIO_URING_ENGINE_F_PRECOPY; fields added in 0.3).
	 */
	/**
	 * Called when the engine's pre-copy readiness (vfio_uring_precopy_status.ready)
	 * changes: to 1 once every pre-copy device has read its initial bytes (and the stop-copy
	 * estimate is within precopy_downtime_ms), back to 0 when a device reports new initial
	 * bytes (REINIT) or the estimate grows past the limit. NULL: poll
	 * vfio_uring_engine_get_precopy_status().
	 */
	void (*precopy_ready)(struct vfio_uring_engine *engine, void *opaque,
			      const struct vfio_uring_precopy_status *status);
	void *precopy_opaque;          /**< passed to precopy_ready */
	/**
	 * How often a device with nothing to read in pre-copy is asked again (its
	 * precopy_info), and the longest a device's estimates may be old. 0: 10 ms.
	 */
	unsigned precopy_poll_ms;
	/**
	 * The longest stop-copy the caller accepts (QEMU's downtime-limit, for the devices'
	 * part): readiness also needs est_stop_copy_us within it, so a device that dirties
	 * faster than its state can move never becomes ready. 0: initial bytes only.
	 */
	unsigned precopy_downtime_ms;
};

/* ------------------------------------------------------------------------------------------
 * Pre-copy
 *
 * A device that supports VFIO's PRE_COPY streams most of its state while the VM still runs:
 * first its "initial bytes", then what the running device dirties. With
 * VFIO_URING_ENGINE_F_PRECOPY on both sides, a source reads every device registered with a
 * precopy_info callback from start on, sends the data over the channels, and asks the
 * device (its precopy_info) how much is left whenever it has nothing to read, never
 * spinning: a read returning ENOMSG or 0 means "nothing for now", and the device is asked
 * again every precopy_poll_ms. The VMM watches the readiness (the precopy_ready callback,
 * vfio_uring_engine_get_precopy_status()), stops the VM when the stop-copy part left is
 * small enough, moves each device to STOP_COPY and calls vfio_uring_engine_stop_copy(): the
 * same data fd then streams to its end, and the engine finishes as without pre-copy. Pre-copy
 * and stop-copy data are one ordered stream per device (idx 0, 1, ...): the destination
 * writes pre-copy packets as they come, the rest after switchover start as before.
 * ------------------------------------------------------------------------------------------ */

/** What a device reports of its pre-copy data (VFIO_MIG_GET_PRECOPY_INFO, MIG_DATA_SIZE). */
struct vfio_uring_precopy_info {
	uint64_t initial_bytes;   /**< initial data still to read (falls to 0 as it is read) */
	uint64_t dirty_bytes;     /**< data the running device dirtied since, ready to read */
	/**
	 * The device's estimate of its stop-copy data (VFIO_DEVICE_FEATURE_MIG_DATA_SIZE); 0:
	 * unknown, initial_bytes + dirty_bytes is used instead.
	 */
	uint64_t stop_copy_bytes;
	uint32_t flags;           /**< VFIO_URING_PRECOPY_F_* */
	uint32_t reserved0;
	uint64_t reserved[4];     /**< 0: the struct keeps this size in every 0.x release */
};

/**
 * initial_bytes rose again: the driver has new initial data (VFIO_PRECOPY_INFO_REINIT, which
 * drivers report only after the VMM opted in to VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, see
 * vfio_uring_vfio_save_precopy()). Without it initial_bytes only falls.
 */
#define VFIO_URING_PRECOPY_F_REINIT (1u << 0)

/**
 * Source: fills *info (zeroed by the engine) with the device's pre-copy state. Called only
 * while the device is in pre-copy and no read of its data fd is in flight. Return 0 or a
 * negated errno (fails the device: VFIO_URING_REASON_PRECOPY_INFO).
 */
typedef int (*vfio_uring_precopy_info_fn)(void *opaque, struct vfio_uring_precopy_info *info);

/** Pre-copy progress of a device, or of the engine (sums; readiness of all devices). */
struct vfio_uring_precopy_status {
	/**
	 * 1 when every pre-copy device (or this one) has read all its initial bytes, as it last
	 * reported, and est_stop_copy_us is within opts.precopy_downtime_ms (when set): stopping
	 * the VM now costs only the stop-copy part.
	 */
	uint32_t ready;
	uint32_t devices_pending;  /**< pre-copy devices whose initial bytes are not all read */
	uint32_t live;             /**< 1 until vfio_uring_engine_stop_copy() */
	uint32_t devices;          /**< pre-copy devices (a device's own: 0 or 1) */
	uint64_t initial_bytes;    /**< initial bytes still to read, as last reported */
	uint64_t dirty_bytes;      /**< dirty bytes ready to read, as last reported */
	uint64_t stop_copy_bytes;  /**< estimated bytes left for the stop-copy phase */
	/**
	 * Data bytes of the reads issued while live (sent as PRECOPY packets). The read in
	 * flight when stop_copy() is called counts, whatever the device answered it with.
	 */
	uint64_t precopy_bytes;
	/**
	 * Bytes per second the device's data fd reads at, measured over its reads so far (0:
	 * not measured yet); for the engine, the slowest device's.
	 */
	uint64_t read_rate;
	/**
	 * Estimated stop-copy time in microseconds: the longest stop_copy_bytes / read_rate of
	 * any device (devices are read in parallel), or, when the stop-copy phase has a cap
	 * (vfio_uring_engine_set_rate_limit()), the bytes left to send at that cap if longer.
	 * Without a cap the link is not in it: a VMM divides stop_copy_bytes by its link's rate.
	 * 0 while no rate is measured.
	 */
	uint64_t est_stop_copy_us;
	uint64_t reinits;          /**< how often initial_bytes rose again (REINIT) */
};

/*
 * The config blob: the library frames it (QEMU's begin/end markers) and carries it in the
 * device's last packet; its content belongs to the VMM. With a QEMU peer it must be exactly
 * QEMU's VMState encoding of the device's config (vmstate_vfio_pci_config for a PCI device): a
 * QEMU destination rejects anything else, an empty blob included.
 */

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
 * it FAILED with (a VMM resumes a source device here). See "Callbacks" above for what it may
 * call.
 */
typedef void (*vfio_uring_device_done_fn)(void *opaque, int error);

/**
 * Device options. Initialise with vfio_uring_device_opts_init(), then set what you need;
 * `size` as in vfio_uring_engine_opts. idstr and data_fd are required (size must cover them).
 */
struct vfio_uring_device_opts {
	size_t size;                 /**< sizeof(struct vfio_uring_device_opts), as the caller sees it */
	const char *idstr;           /**< device id string, at most 255 bytes */
	uint32_t instance_id;
	int data_fd;                 /**< migration data fd: read (source) or written (destination) */
	enum vfio_uring_multifd_mode multifd;
	vfio_uring_save_config_fn save_config; /**< source; NULL = empty config blob */
	vfio_uring_load_config_fn load_config; /**< destination; NULL = config blob ignored */
	vfio_uring_device_done_fn done;        /**< optional */
	void *opaque;                /**< passed to the callbacks */
	unsigned flags;              /**< VFIO_URING_DEVICE_F_* */
	/**
	 * Source, with VFIO_URING_ENGINE_F_PRECOPY (0.3): the device is in PRE_COPY and its
	 * data fd streams pre-copy data from start until vfio_uring_engine_stop_copy(). NULL:
	 * stop-copy only.
	 */
	vfio_uring_precopy_info_fn precopy_info;
};

/** Device flags (vfio_uring_device_opts.flags). */
enum {
	/**
	 * Destination: load_config is not called until the caller says so with
	 * vfio_uring_device_config_load_ready() or vfio_uring_engine_config_load_ready(), as
	 * QEMU 10.1's x-migration-load-config-after-iter (on some platforms, e.g. ARM64, a
	 * device's config may be loaded only after the VMM has loaded other state). The call
	 * may come before or after the device's data is in; the config is loaded as soon as
	 * both are true.
	 */
	VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS = 1u << 0,
};

enum vfio_uring_device_state {
	VFIO_URING_DEVICE_REGISTERED = 0, /**< added, engine not started */
	VFIO_URING_DEVICE_ACTIVE = 1,     /**< transfer in progress */
	VFIO_URING_DEVICE_DONE = 2,       /**< every byte and the config moved */
	VFIO_URING_DEVICE_FAILED = 3,     /**< see error and message; the engine no longer
	                                       touches its data fd (a failure waits for the
	                                       device's read or write in flight to complete) */
	VFIO_URING_DEVICE_NOT_MULTIFD = 4,/**< multifd OFF: left to the caller's single-stream path */
};

/**
 * Why a migration failed. The errno a failure carries is its coarse class, which several
 * reasons may share (-ECANCELED: cancelled, destroyed, or failed because of another
 * device; -ECONNRESET: a truncated stream or a reset socket); the reason says exactly which
 * check or which operation failed. vfio_uring_engine_reason() gives the engine's (the first
 * failure), vfio_uring_device_status.reason a device's, vfio_uring_reason_name() a name.
 * A value never changes meaning; new reasons get new values (and may appear in a newer
 * library: print unknown ones by number).
 *
 * The list is an X-macro, X(name, value, errno, side, meaning): the enum, the library's
 * names and errnos, the tests and the table in docs/RELIABILITY.md are all generated from
 * it. errno is an E* constant, or 0 where it is the failed call's own; side is the engine
 * side it occurs on (DESTINATION, SOURCE or BOTH).
 *
 * VFIO_URING_REASONS_WIRE: a destination's checks of what its peer sent, in the order it
 * makes them. Each has an errno of its own, distinct from every other check's and from the
 * fixed errno of every other reason a destination can fail with, so that even the errno
 * alone names the check.
 */
#define VFIO_URING_REASONS_WIRE(X)                                                           \
	X(HS_MAGIC, 1, EPROTO, DESTINATION, "handshake magic is not 0x11223344")               \
	X(HS_VERSION, 2, EPROTONOSUPPORT, DESTINATION, "handshake version is not 1")           \
	X(HS_UUID, 3, EACCES, DESTINATION,                                                     \
	  "handshake UUID is not opts.uuid (another VM's stream, or the sides were given "      \
	  "different UUIDs)")                                                                  \
	X(HS_CHANNEL_RANGE, 4, ECHRNG, DESTINATION,                                            \
	  "handshake channel id >= the number of channels")                                    \
	X(HS_CHANNEL_DUP, 5, EALREADY, DESTINATION,                                            \
	  "handshake channel id already seen on another channel")                              \
	X(PKT_MAGIC, 6, EBADMSG, DESTINATION,                                                  \
	  "packet magic wrong: garbage where a packet header belongs (also: bytes after every " \
	  "device was done)")                                                                  \
	X(PKT_VERSION, 7, ENOPROTOOPT, DESTINATION, "packet header version is not 1")         \
	X(PKT_NOT_DEVICE_STATE, 10, EPROTOTYPE, DESTINATION,                                   \
	  "not a device-state packet (e.g. a RAM packet)")                                     \
	X(PKT_SYNC, 8, EBADE, DESTINATION, "SYNC flag on a device-state packet")              \
	X(PKT_COMPRESSION, 9, EOPNOTSUPP, DESTINATION,                                         \
	  "a compression flag: compressed device state is not supported")                      \
	X(PKT_FLAGS, 11, EBADRQC, DESTINATION, "unknown packet flag bits")                     \
	X(PKT_IDSTR, 12, ENAMETOOLONG, DESTINATION, "idstr not NUL-terminated")                \
	X(PKT_EMPTY, 13, ENODATA, DESTINATION, "next_packet_size is 0")                        \
	X(PKT_TOO_BIG, 14, EMSGSIZE, DESTINATION, "next_packet_size above opts.max_packet_size") \
	X(PKT_UNKNOWN_DEVICE, 15, ENODEV, DESTINATION,                                         \
	  "no device registered with the packet's idstr and instance_id")                      \
	X(PKT_NOT_MULTIFD, 16, EPERM, DESTINATION,                                             \
	  "packet for a device whose multifd switch is OFF")                                   \
	X(VFIO_SHORT, 17, EBADR, DESTINATION, "payload shorter than the 12-byte VFIO header")   \
	X(VFIO_VERSION, 18, EPFNOSUPPORT, DESTINATION, "VFIO packet version is not 0")         \
	X(VFIO_FLAGS, 19, EBADSLT, DESTINATION, "unknown VFIO packet flag bits")               \
	X(VFIO_IDX_INVALID, 20, ERANGE, DESTINATION, "VFIO packet idx is UINT32_MAX")          \
	X(VFIO_IDX_DUP, 21, EEXIST, DESTINATION, "VFIO packet idx already received")           \
	X(VFIO_CONFIG_DUP, 22, ENOTUNIQ, DESTINATION, "a second config packet for the device") \
	X(VFIO_DATA_AFTER_CONFIG, 23, EILSEQ, DESTINATION,                                     \
	  "config packet idx N, but a data packet idx >= N was received")                      \
	X(VFIO_IDX_BEYOND_CONFIG, 24, EOVERFLOW, DESTINATION,                                  \
	  "data packet idx above the config packet's")                                         \
	X(VFIO_CONFIG_FRAMING, 25, EUCLEAN, DESTINATION,                                       \
	  "config packet markers (DEV_CONFIG_STATE, END_OF_STATE) missing or wrong")           \
	X(VFIO_PRECOPY_ORDER, 43, ESTRPIPE, DESTINATION,                                       \
	  "pre-copy extension: a PRECOPY packet at or above the idx of a stop-copy or config "  \
	  "packet of the same device, or the flag on a config packet")                        \
	X(STREAM_TRUNCATED, 26, ECONNRESET, DESTINATION,                                       \
	  "a channel ended (EOF) inside a handshake, packet header or payload")                \
	X(STREAM_ENDED, 27, ENOLINK, DESTINATION,                                              \
	  "a channel ended before its handshake, or every channel ended with a device "         \
	  "incomplete")

/** Every other failure: the engine's limits, failed operations, the caller. */
#define VFIO_URING_REASONS_OTHER(X)                                                          \
	X(BUFFER_CAP, 28, ENOBUFS, DESTINATION,                                                \
	  "the buffer cap is full of packets waiting for earlier ones and every channel waits " \
	  "for room: no write can free any")                                                   \
	X(MAX_QUEUED_BYTES, 29, ENOBUFS, DESTINATION,                                          \
	  "received packets not yet written would exceed opts.max_queued_bytes")               \
	X(SOCKET_SEND, 30, 0, SOURCE,                                                          \
	  "a send on a channel failed (e.g. EPIPE or ECONNRESET: the peer closed or reset it; " \
	  "EPIPE for a send of 0 bytes)")                                                      \
	X(SOCKET_RECV, 31, 0, DESTINATION,                                                     \
	  "a receive on a channel failed (e.g. ECONNRESET: the peer's socket was reset)")      \
	X(DATA_FD_READ, 32, 0, SOURCE, "a read of a device's migration data fd failed")        \
	X(DATA_FD_WRITE, 33, 0, DESTINATION,                                                   \
	  "a write of a device's migration data fd failed (EIO for a write of 0 bytes)")       \
	X(SAVE_CONFIG, 34, 0, SOURCE,                                                          \
	  "the save_config callback failed: its return value (EINVAL for a length without "     \
	  "data)")                                                                             \
	X(LOAD_CONFIG, 35, 0, DESTINATION, "the load_config callback failed: its return value") \
	X(CONFIG_TOO_BIG, 36, EMSGSIZE, SOURCE,                                                \
	  "a device's config blob does not fit the buffer cap")                                \
	X(IDX_EXHAUSTED, 37, EOVERFLOW, SOURCE,                                                \
	  "a device has more packets than a u32 idx can number")                               \
	X(PROGRESS_TIMEOUT, 38, ETIMEDOUT, BOTH,                                               \
	  "no progress for opts.progress_timeout_ms (the message names what it waited on)")    \
	X(RING_ENTER, 39, 0, BOTH, "io_uring_enter(2) failed")                                 \
	X(CANCELLED, 40, ECANCELED, BOTH, "vfio_uring_engine_cancel()")                        \
	X(DESTROYED, 41, ECANCELED, BOTH, "vfio_uring_engine_destroy() during the transfer")   \
	X(FALLOUT, 42, ECANCELED, BOTH,                                                        \
	  "a device's only: the migration failed elsewhere (another device, a channel, the "    \
	  "engine); the engine's reason says why")                                             \
	X(PRECOPY_INFO, 44, 0, SOURCE, "the precopy_info callback failed: its return value")    \
	X(PEER_CLOSED, 45, 0, SOURCE,                                                          \
	  "the destination closed (EPIPE) or reset (ECONNRESET) a channel during the transfer: "\
	  "it failed or was cancelled, and its own reason says why")

#define VFIO_URING_REASONS(X) VFIO_URING_REASONS_WIRE(X) VFIO_URING_REASONS_OTHER(X)

#define VFIO_URING_REASON_ENUM_(name, value, errno_, side, meaning) \
	VFIO_URING_REASON_##name = value,
enum vfio_uring_reason {
	VFIO_URING_REASON_NONE = 0, /**< no failure */
	VFIO_URING_REASONS(VFIO_URING_REASON_ENUM_)
};

/* The outputs: filled by functions taking the caller's sizeof (see ABI above). */
struct vfio_uring_device_status {
	enum vfio_uring_device_state state;
	int error;               /**< negated errno when FAILED, else 0 */
	const char *message;     /**< "" or why it failed; valid until the engine is destroyed */
	uint64_t bytes;          /**< QEMU's vfio.transferred: 12-byte VFIO header + data, per packet */
	uint64_t data_bytes;     /**< bytes read from (source) or written to (destination) the data fd */
	uint64_t packets;        /**< packets sent (source) or received (destination) */
	uint64_t packets_queued; /**< destination: packets received and waiting for their turn */
	/**
	 * Why it FAILED (else VFIO_URING_REASON_NONE): the engine's first failure for the
	 * device it concerned, VFIO_URING_REASON_FALLOUT for the others.
	 */
	enum vfio_uring_reason reason;
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
	/**
	 * Most data fd operations in flight at once: reads (source) or writes (destination).
	 * With N devices that are each slower than the wire, N means every device was read or
	 * written at the same time.
	 */
	uint64_t device_io_peak;
};

struct vfio_uring_channel_stats {
	uint64_t wire_bytes;
	uint64_t packets;
};

/**
 * Sets every field to its default and `size` to this header's sizeof: 64 MiB cap, 1 MiB
 * chunks, 4 MiB max packet, 256 entries, no timeout, no flags. Inline, so that `size` is
 * the program's own (see ABI); the library fills the fields a smaller struct lacks with
 * the same defaults.
 */
static inline void vfio_uring_engine_opts_init(struct vfio_uring_engine_opts *opts,
					       enum vfio_uring_side side)
{
	memset(opts, 0, sizeof(*opts)); /* padding too: a newer library checks unknown bytes */
	opts->size = sizeof(*opts);
	opts->side = side;
	opts->buffer_cap = VFIO_URING_DEFAULT_BUFFER_CAP;
	opts->chunk_size = VFIO_URING_DEFAULT_CHUNK_SIZE;
	opts->max_packet_size = VFIO_URING_DEFAULT_MAX_PACKET_SIZE;
	opts->ring_entries = VFIO_URING_DEFAULT_RING_ENTRIES;
}

/** Defaults: no idstr, instance 0, data_fd -1, multifd AUTO, no callbacks, no flags. */
static inline void vfio_uring_device_opts_init(struct vfio_uring_device_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	opts->data_fd = -1;
	opts->multifd = VFIO_URING_MULTIFD_AUTO;
}

/**
 * Creates an engine and its io_uring, probing the kernel's features.
 * \return 0 and *out, or -EINVAL (bad options), -E2BIG (opts->size, see ABI), -ENOMEM,
 *         -EOPNOTSUPP (kernel lacks an opcode the engine needs), or the error of
 *         io_uring_setup(2).
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
 * \return 0 and *out (owned by the engine), or -EINVAL, -E2BIG (opts->size, see ABI),
 *         -EEXIST, -EBUSY, -ENOMEM.
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
 * data is written to the data fds. Before it, nothing is written: received packets stay
 * queued within the buffer cap and, once it is full, the channels stop receiving (the data
 * waits in the socket buffers and TCP backpressure slows the source) until this call.
 * Source: -EINVAL.
 */
VFIO_URING_API int vfio_uring_engine_switchover_start(struct vfio_uring_engine *engine);

/**
 * Source: caps the bytes sent on all channels together at bytes_per_second (0: no cap, the
 * default), for when device state must not starve other traffic on a shared link (QEMU lifts
 * its own rate limit at switchover: a caller wanting that sets 0 then). Callable at any
 * time, before start or while the transfer runs; a new cap applies from the next packet.
 * Every byte of a packet counts (headers included); the handshakes are not delayed.
 * \return 0, or -EINVAL (NULL, or a destination engine).
 */
VFIO_URING_API int vfio_uring_engine_set_rate_limit(struct vfio_uring_engine *engine,
						    uint64_t bytes_per_second);

/**
 * Source, pre-copy: the VM is stopped and every pre-copy device is in STOP_COPY now. From
 * here on a read of 0 bytes ends a device's stream (a read already in flight still counts as
 * pre-copy), and the live-phase bandwidth cap no longer applies. Before start: the devices
 * skip pre-copy. \return 0, or -EINVAL (NULL, a destination, or no VFIO_URING_ENGINE_F_PRECOPY).
 */
VFIO_URING_API int vfio_uring_engine_stop_copy(struct vfio_uring_engine *engine);

/**
 * Source, pre-copy: caps the bytes sent on all channels together at bytes_per_second while
 * the VM runs (until vfio_uring_engine_stop_copy()), so that device state does not starve the
 * running VM's own traffic; 0 (the default): no cap. The stop-copy phase runs under
 * vfio_uring_engine_set_rate_limit()'s cap (none by default). Callable at any time.
 * \return 0, or -EINVAL (NULL, or a destination).
 */
VFIO_URING_API int vfio_uring_engine_set_precopy_rate_limit(struct vfio_uring_engine *engine,
							    uint64_t bytes_per_second);

/**
 * Pre-copy progress: the engine's (sums, and the readiness of every pre-copy device) or one
 * device's; size as in the outputs (ABI). A source without pre-copy devices reports zeros
 * (ready 0, devices 0). \return 0, or -EINVAL.
 */
VFIO_URING_API int vfio_uring_engine_get_precopy_status(const struct vfio_uring_engine *engine,
							struct vfio_uring_precopy_status *status,
							size_t size);
VFIO_URING_API int vfio_uring_device_get_precopy_status(const struct vfio_uring_device *dev,
							struct vfio_uring_precopy_status *status,
							size_t size);

/**
 * Destination: the config of a device registered with VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS
 * may be loaded now (QEMU's DEV_CONFIG_LOAD_READY). If the device's data is all written and
 * its config packet is in, load_config runs inside this call; otherwise as soon as they are.
 * No effect on a device without the flag, or one that is DONE.
 * \return 0, -EINVAL (NULL, or a source engine), or the device's error if it FAILED (its
 *         config is never loaded).
 */
VFIO_URING_API int vfio_uring_device_config_load_ready(struct vfio_uring_device *dev);

/** The same for every device of the engine. \return 0, -EINVAL, or the engine's error. */
VFIO_URING_API int vfio_uring_engine_config_load_ready(struct vfio_uring_engine *engine);

/**
 * Runs until every multifd device is done, the engine fails, or timeout_ms passes
 * (-1 = no limit).
 * \return 0 when done, -ETIMEDOUT when timeout_ms passed (the transfer goes on; call again
 *         or cancel), -EAGAIN when every device left waits for
 *         vfio_uring_*_config_load_ready() (nothing else can happen until it is called), or
 *         the engine's error.
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

/** The reason of the engine's first error (VFIO_URING_REASON_NONE if none, or engine NULL). */
VFIO_URING_API enum vfio_uring_reason
vfio_uring_engine_reason(const struct vfio_uring_engine *engine);

/**
 * The outputs. `size` is the caller's sizeof(*status) (or *stats): exactly that many bytes
 * are written (see ABI).
 * \return 0, or -EINVAL (NULL, or size 0 or above VFIO_URING_STRUCT_SIZE_MAX).
 */
VFIO_URING_API int vfio_uring_device_get_status(const struct vfio_uring_device *dev,
						struct vfio_uring_device_status *status,
						size_t size);
VFIO_URING_API int vfio_uring_engine_get_stats(const struct vfio_uring_engine *engine,
					       struct vfio_uring_engine_stats *stats, size_t size);
/** \return 0, -EINVAL as above, or -ENOENT for a channel number that does not exist. */
VFIO_URING_API int vfio_uring_engine_get_channel_stats(const struct vfio_uring_engine *engine,
						       unsigned channel,
						       struct vfio_uring_channel_stats *stats,
						       size_t size);
/** Zeroes the byte and packet counters of the engine, its devices and channels. */
VFIO_URING_API void vfio_uring_engine_reset_stats(struct vfio_uring_engine *engine);

VFIO_URING_API const char *vfio_uring_device_idstr(const struct vfio_uring_device *dev);
VFIO_URING_API uint32_t vfio_uring_device_instance_id(const struct vfio_uring_device *dev);

/** Names for printing. */
VFIO_URING_API const char *vfio_uring_device_state_name(enum vfio_uring_device_state state);
/** The reason's name without the prefix ("HS_MAGIC"), or "unknown". */
VFIO_URING_API const char *vfio_uring_reason_name(enum vfio_uring_reason reason);

/**
 * The library's version, "MAJOR.MINOR.PATCH": the library the program runs with, which may
 * be newer than the headers it was built against (VFIO_URING_VERSION_STRING).
 */
VFIO_URING_API const char *vfio_uring_version(void);

/* ------------------------------------------------------------------------------------------
 * VFIO devices
 *
 * Drives a real VFIO device through the migration uAPI v2 (linux/vfio.h): migration flags,
 * MIG_DATA_SIZE, device state moves along the shortest legal path, the data fd of each save or
 * resume session, PRE_COPY info; and the save/load glue that hands the data fd to an engine.
 *
 * A struct vfio_uring_vfio owns every data fd the kernel returns to it and closes it when the
 * session ends (STOP_COPY -> STOP, RESUMING -> STOP, PRE_COPY -> RUNNING, reset, close).
 * It is not thread-safe; use it from the engine's thread. Every failure leaves a message
 * naming the device, the arc and the cause (vfio_uring_vfio_error()).
 * ------------------------------------------------------------------------------------------ */

/** Device migration states: the values of enum vfio_device_mig_state in linux/vfio.h. */
enum vfio_uring_vfio_state {
	VFIO_URING_VFIO_ERROR = 0,        /**< only VFIO_DEVICE_RESET leaves it */
	VFIO_URING_VFIO_STOP = 1,         /**< not running, no session */
	VFIO_URING_VFIO_RUNNING = 2,      /**< normal operation */
	VFIO_URING_VFIO_STOP_COPY = 3,    /**< stopped; data fd streams the final state to EOF */
	VFIO_URING_VFIO_RESUMING = 4,     /**< stopped; data fd takes the incoming state */
	VFIO_URING_VFIO_RUNNING_P2P = 5,  /**< running, but no new peer-to-peer DMA (needs P2P) */
	VFIO_URING_VFIO_PRE_COPY = 6,     /**< running; data fd streams initial/dirty state (needs PRE_COPY) */
	VFIO_URING_VFIO_PRE_COPY_P2P = 7, /**< PRE_COPY with P2P quiesced (needs P2P and PRE_COPY) */
};
#define VFIO_URING_VFIO_NUM_STATES 8

/** Migration flags (VFIO_DEVICE_FEATURE_MIGRATION). */
#define VFIO_URING_VFIO_MIG_STOP_COPY (1ull << 0)
#define VFIO_URING_VFIO_MIG_P2P (1ull << 1)
#define VFIO_URING_VFIO_MIG_PRE_COPY (1ull << 2)

struct vfio_uring_vfio;

/**
 * Finds the IOMMU group of a device from sysfs: `name` is an mdev UUID
 * (/sys/bus/mdev/devices/<uuid>) or a PCI address (/sys/bus/pci/devices/<addr>).
 * \return the group number (>= 0), or -ENOENT, -EINVAL.
 */
VFIO_URING_API int vfio_uring_vfio_find_group(const char *name);

/**
 * Opens a device through the legacy group/container path: /dev/vfio/vfio, /dev/vfio/<group>,
 * VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU (type1 v2, else type1), VFIO_GROUP_GET_DEVICE_FD.
 * `group` < 0 looks the group up with vfio_uring_vfio_find_group(name). The handle owns the
 * container, group and device fds. Queries the migration flags.
 * \return 0 and *out, or a negated errno: the error of open(2) on /dev/vfio/vfio or the group
 *         (-ENOENT: no such group), -EPROTONOSUPPORT (VFIO API version), -EPERM (group not
 *         viable: another device of the group is not bound to vfio), -ENODEV (no type1 IOMMU),
 *         the error of VFIO_GROUP_GET_DEVICE_FD (-EINVAL: no such device in the group), or
 *         -EOPNOTSUPP (the device has no migration support).
 */
VFIO_URING_API int vfio_uring_vfio_open_group(int group, const char *name,
					      struct vfio_uring_vfio **out);

/**
 * Wraps a VFIO device fd opened by the caller (a VMM), who keeps ownership of it: the handle
 * never closes device_fd. `name` is used in messages (NULL: "fd N"). Queries the migration
 * flags. \return 0 and *out, or -EBADF, -ENOMEM, -EOPNOTSUPP (no migration support).
 */
VFIO_URING_API int vfio_uring_vfio_from_fd(int device_fd, const char *name,
					   struct vfio_uring_vfio **out);

/** Closes the data fd and whatever the handle owns. NULL is allowed. */
VFIO_URING_API void vfio_uring_vfio_close(struct vfio_uring_vfio *dev);

VFIO_URING_API const char *vfio_uring_vfio_name(const struct vfio_uring_vfio *dev);
/** The device fd (for region access, interrupts); owned by the handle or by the caller. */
VFIO_URING_API int vfio_uring_vfio_device_fd(const struct vfio_uring_vfio *dev);
/** The open session's data fd, or -1; owned by the handle. */
VFIO_URING_API int vfio_uring_vfio_data_fd(const struct vfio_uring_vfio *dev);

/** \return 0 and the VFIO_URING_VFIO_MIG_* flags in *flags. */
VFIO_URING_API int vfio_uring_vfio_get_migration_flags(const struct vfio_uring_vfio *dev,
						       uint64_t *flags);

/**
 * VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the driver's estimate of the stop-copy data length.
 * \return 0 and *bytes, or -ENOTTY/-EOPNOTSUPP when the kernel or driver lacks it.
 */
VFIO_URING_API int vfio_uring_vfio_get_data_size(struct vfio_uring_vfio *dev, uint64_t *bytes);

/** Asks the device for its current state. \return 0 and *state, or a negated errno. */
VFIO_URING_API int vfio_uring_vfio_get_state(struct vfio_uring_vfio *dev,
					     enum vfio_uring_vfio_state *state);

/**
 * Moves the device to `target` one arc at a time along the shortest legal path for its
 * migration flags, never starting a save or resume session on the way. Arcs that open a
 * session store its new data fd in the handle; arcs that end one close it.
 * If an arc fails and the device is left in ERROR (or its state cannot be read), it is
 * recovered with VFIO_DEVICE_RESET (back to RUNNING, sessions closed); the message says so.
 * \return 0, -EINVAL (target ERROR or not supported by the device's flags), or the failing
 *         arc's negated errno.
 */
VFIO_URING_API int vfio_uring_vfio_set_state(struct vfio_uring_vfio *dev,
					     enum vfio_uring_vfio_state target);

/** VFIO_DEVICE_RESET: back to RUNNING, the data fd closed. */
VFIO_URING_API int vfio_uring_vfio_reset(struct vfio_uring_vfio *dev);

/**
 * VFIO_MIG_GET_PRECOPY_INFO on the data fd; only in PRE_COPY states.
 * \return 0, -EINVAL (not in a PRE_COPY state / no data fd), or the ioctl's error.
 */
VFIO_URING_API int vfio_uring_vfio_precopy_info(struct vfio_uring_vfio *dev,
						uint64_t *initial_bytes, uint64_t *dirty_bytes);

/** The last failure's message ("" if none), valid until the next call on dev. */
VFIO_URING_API const char *vfio_uring_vfio_error(const struct vfio_uring_vfio *dev);
/** How many times the handle recovered the device with VFIO_DEVICE_RESET. */
VFIO_URING_API unsigned vfio_uring_vfio_reset_count(const struct vfio_uring_vfio *dev);

VFIO_URING_API const char *vfio_uring_vfio_state_name(enum vfio_uring_vfio_state state);

/*
 * Save and load through an engine.
 *
 * Source:       [vfio_uring_vfio_save_precopy()]  RUNNING -> PRE_COPY (device keeps running)
 *               vfio_uring_vfio_save_add()        -> STOP_COPY (via STOP or the P2P states),
 *                                                   registers the data fd with the engine
 *               ... engine start / run ...
 *               vfio_uring_vfio_save_finish(result)
 * Source, live pre-copy (engine created with VFIO_URING_ENGINE_F_PRECOPY):
 *               vfio_uring_vfio_save_precopy()    RUNNING -> PRE_COPY (PRECOPY_INFOv2 opt-in)
 *               vfio_uring_vfio_save_add()        stays in PRE_COPY: registered live, with the
 *                                                   handle's precopy_info
 *               ... engine start / run, until the precopy status is ready ...
 *               (stop the VM) vfio_uring_vfio_stop_copy() on every device, then
 *               vfio_uring_engine_stop_copy(), without running the engine in between
 *               ... engine run ...
 *               vfio_uring_vfio_save_finish(result)
 * Destination:  vfio_uring_vfio_load_add()        -> STOP -> RESUMING, registers the data fd
 *               ... engine start / run ...
 *               vfio_uring_vfio_load_finish(result)  RESUMING -> STOP: the driver validates
 *               vfio_uring_vfio_set_state(RUNNING)   when the caller decides
 *
 * The handle wraps the device opts' callbacks (yours are still called, with your opaque). When
 * the engine reports the device done (its `done` callback), the handle at once:
 *   source ok: STOP_COPY -> STOP;  source failed: back to RUNNING (the guest resumes);
 *   destination ok: RESUMING -> STOP (validation; a rejection resets the device to RUNNING);
 *   destination failed: VFIO_DEVICE_RESET (RUNNING, clean state).
 * The finish functions do the same if the engine never reported the device (it failed first),
 * and return the device's outcome.
 */

/**
 * Source: RUNNING -> PRE_COPY; the data fd is kept and later continued to STOP_COPY.
 * First opts in to PRECOPY_INFOv2 (VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, kernels since
 * early 2026; vfio_uring_vfio_precopy_v2() says whether it worked). Without it the session
 * still runs, but its driver never reports REINIT (VFIO_URING_PRECOPY_F_REINIT), and
 * initial_bytes only falls.
 */
VFIO_URING_API int vfio_uring_vfio_save_precopy(struct vfio_uring_vfio *dev);

/**
 * 1 when the last vfio_uring_vfio_save_precopy() from a state outside PRE_COPY opted in to
 * PRECOPY_INFOv2 (the session reports REINIT), else 0 (also for NULL). (0.3)
 */
VFIO_URING_API int vfio_uring_vfio_precopy_v2(const struct vfio_uring_vfio *dev);

/**
 * Source: registers the device with the engine; opts->data_fd and opts->precopy_info are
 * ignored (the session's data fd and the handle's own precopy_info are used).
 *  - An engine with VFIO_URING_ENGINE_F_PRECOPY and a device in PRE_COPY or PRE_COPY_P2P
 *    (vfio_uring_vfio_save_precopy()): the device stays there and is registered live; its
 *    precopy_info reports VFIO_MIG_GET_PRECOPY_INFO's initial and dirty bytes, MIG_DATA_SIZE
 *    as stop_copy_bytes (0 when the driver lacks it) and REINIT when the PRECOPY_INFOv2
 *    opt-in worked, and reports zeros once the device has left PRE_COPY.
 *    Finish with vfio_uring_vfio_stop_copy() and vfio_uring_engine_stop_copy().
 *  - Otherwise: moves the device to STOP_COPY first (a PRE_COPY session continues).
 * On failure the device is moved back to RUNNING.
 * \return 0 and *out, or a negated errno (message in vfio_uring_vfio_error()).
 */
VFIO_URING_API int vfio_uring_vfio_save_add(struct vfio_uring_vfio *dev,
					    struct vfio_uring_engine *engine,
					    const struct vfio_uring_device_opts *opts,
					    struct vfio_uring_device **out);

/**
 * Source, live pre-copy: the VM is stopped; PRE_COPY(_P2P) -> STOP_COPY on the same data fd
 * (through PRE_COPY_P2P when the device has P2P), which stays registered with the engine.
 * Call it for every live device, then vfio_uring_engine_stop_copy(). (0.3)
 * \return 0, -EINVAL (not in a PRE_COPY session), -EPROTO (the driver handed a new data fd:
 *         the engine cannot follow it), or the failing arc's error (vfio_uring_vfio_error()).
 */
VFIO_URING_API int vfio_uring_vfio_stop_copy(struct vfio_uring_vfio *dev);

/**
 * Source, after the engine finished with `result` (0, or the migration's error, which may
 * also come from the destination afterwards): on failure the device is moved back to RUNNING.
 * \return 0 when the device's state was saved and it is in STOP, else the negated errno.
 */
VFIO_URING_API int vfio_uring_vfio_save_finish(struct vfio_uring_vfio *dev, int result);

/** Destination: STOP -> RESUMING and registers the device with the engine. */
VFIO_URING_API int vfio_uring_vfio_load_add(struct vfio_uring_vfio *dev,
					    struct vfio_uring_engine *engine,
					    const struct vfio_uring_device_opts *opts,
					    struct vfio_uring_device **out);

/**
 * Destination, after the engine finished with `result`: RESUMING -> STOP (the driver
 * validates the loaded state) unless already done from the done callback.
 * \return 0 when the state was loaded and the device is in STOP; else the negated errno, the
 *         device reset to RUNNING and a message naming it (vfio_uring_vfio_error()).
 */
VFIO_URING_API int vfio_uring_vfio_load_finish(struct vfio_uring_vfio *dev, int result);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_URING_H */
