/* SPDX-License-Identifier: MIT */
/*
 * The engine core: the ring and its feature probing, registration, the completion
 * dispatcher, the blocking and non-blocking loops, failure and teardown. What the source
 * and destination do with completions lives in source.c and destination.c.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "probes.h"

/* The opcodes the engine issues; all present since Linux 5.6, probed anyway. */
static const struct {
	int opcode;
	const char *name;
} required_ops[] = {
	{ IORING_OP_READ, "READ" },         { IORING_OP_WRITE, "WRITE" },
	{ IORING_OP_SEND, "SEND" },         { IORING_OP_RECV, "RECV" },
	{ IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" }, { IORING_OP_TIMEOUT, "TIMEOUT" },
};

/*
 * Setup flags, best first. SINGLE_ISSUER (6.0) lets the kernel skip submission locking;
 * R_DISABLED (5.10) defers binding the single issuer to the thread that calls start().
 *
 * COOP_TASKRUN and DEFER_TASKRUN are deliberately not used: with them a completion waits as
 * task work until the task itself enters io_uring, so a VMM sleeping in poll() or epoll on
 * the ring fd (vfio_uring_engine_get_fd) would never be woken. The integration tests drive
 * the engine from poll() and caught exactly that.
 */
static const unsigned setup_flag_sets[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED,
	0,
};

uint64_t vu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *vu_side_name(const struct vfio_uring_engine *e)
{
	return e->opts.side == VFIO_URING_SOURCE ? "source" : "destination";
}

/* The engine's legal transitions (enum vu_engine_state): a bit per target state. */
static const unsigned engine_transitions[] = {
	[VU_ENGINE_CREATED] = 1u << VU_ENGINE_RUNNING,
	[VU_ENGINE_RUNNING] = 1u << VU_ENGINE_FINISHING | 1u << VU_ENGINE_FAILED,
	[VU_ENGINE_FINISHING] = 1u << VU_ENGINE_FAILED, /* a late error while the last ops drain */
	[VU_ENGINE_FAILED] = 0,
};

void vu_engine_set_state(struct vfio_uring_engine *e, enum vu_engine_state state)
{
	assert(engine_transitions[e->state] & (1u << state));
	VU_PROBE(engine_state, (int)e->opts.side, (int)e->state, (int)state);
	e->state = state;
}

/*
 * A device's public state (enum vfio_uring_device_state): its legal transitions. What an
 * ACTIVE device does is its side's machine (enum vu_src_state, enum vu_dst_state).
 */
static const unsigned device_transitions[] = {
	[VFIO_URING_DEVICE_REGISTERED] = 1u << VFIO_URING_DEVICE_ACTIVE |
					 1u << VFIO_URING_DEVICE_NOT_MULTIFD,
	[VFIO_URING_DEVICE_ACTIVE] = 1u << VFIO_URING_DEVICE_DONE | 1u << VFIO_URING_DEVICE_FAILED,
	[VFIO_URING_DEVICE_DONE] = 0,
	[VFIO_URING_DEVICE_FAILED] = 0,
	[VFIO_URING_DEVICE_NOT_MULTIFD] = 0,
};

/* The one way a device's public state changes after registration (done and error probes tell). */
static void device_set_state(struct vfio_uring_device *dev, enum vfio_uring_device_state state)
{
	assert(device_transitions[dev->state] & (1u << state));
	dev->state = state;
}

/*
 * The ABI's copies (vfio-uring.h, "ABI"). In: a caller's options struct of their_size
 * bytes over `ours`, which holds the library's defaults: fields beyond their_size keep
 * them, and bytes of a bigger (newer) struct that this library does not know must be 0.
 */
static int opts_copy_in(void *ours, size_t ours_size, const void *theirs, size_t their_size,
			size_t required)
{
	if (their_size < required || their_size > VFIO_URING_STRUCT_SIZE_MAX)
		return -EINVAL;
	for (size_t i = ours_size; i < their_size; i++)
		if (((const unsigned char *)theirs)[i])
			return -E2BIG;
	memcpy(ours, theirs, their_size < ours_size ? their_size : ours_size);
	*(size_t *)ours = ours_size; /* `size` is every options struct's first field */
	return 0;
}

/* Out: exactly their_size bytes: ours as far as it fits, zeros in what this library lacks. */
static int copy_out(void *theirs, size_t their_size, const void *ours, size_t ours_size)
{
	if (!theirs || their_size == 0 || their_size > VFIO_URING_STRUCT_SIZE_MAX)
		return -EINVAL;
	memcpy(theirs, ours, their_size < ours_size ? their_size : ours_size);
	if (their_size > ours_size)
		memset((unsigned char *)theirs + ours_size, 0, their_size - ours_size);
	return 0;
}

_Static_assert(offsetof(struct vfio_uring_engine_opts, size) == 0 &&
		       offsetof(struct vfio_uring_device_opts, size) == 0,
	       "opts_copy_in() sets `size` at offset 0");

int vu_device_opts_read(struct vfio_uring_device_opts *o, const struct vfio_uring_device_opts *opts)
{
	vfio_uring_device_opts_init(o);
	if (!opts)
		return -EINVAL;
	return opts_copy_in(o, sizeof(*o), opts, opts->size,
			    offsetof(struct vfio_uring_device_opts, data_fd) + sizeof(opts->data_fd));
}

static int probe_opcodes(struct vfio_uring_engine *e)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&e->ring);
	int ret = 0;

	if (!probe) /* IORING_REGISTER_PROBE is 5.6; older kernels lack the opcodes too */
		return -EOPNOTSUPP;
	for (size_t i = 0; i < sizeof(required_ops) / sizeof(required_ops[0]); i++) {
		if (!io_uring_opcode_supported(probe, required_ops[i].opcode)) {
			snprintf(e->message, sizeof(e->message),
				 "kernel lacks io_uring opcode %s", required_ops[i].name);
			ret = -EOPNOTSUPP;
			break;
		}
	}
	io_uring_free_probe(probe);
	return ret;
}

static int setup_ring(struct vfio_uring_engine *e)
{
	bool baseline = e->opts.flags & VFIO_URING_ENGINE_F_BASELINE_RING;
	size_t first = baseline ? sizeof(setup_flag_sets) / sizeof(setup_flag_sets[0]) - 1 : 0;
	int ret = -EINVAL;

	for (size_t i = first; i < sizeof(setup_flag_sets) / sizeof(setup_flag_sets[0]); i++) {
		ret = io_uring_queue_init(e->opts.ring_entries, &e->ring, setup_flag_sets[i]);
		if (ret == 0) {
			e->ring_flags = setup_flag_sets[i];
			break;
		}
		if (ret != -EINVAL) /* EINVAL: flags unknown to this kernel; try fewer */
			return ret;
	}
	if (ret)
		return ret;
	e->ring_ready = true;
	if (!(e->ring.features & IORING_FEAT_RW_CUR_POS)) /* 5.6: offset -1 = file position */
		return -EOPNOTSUPP;
	return probe_opcodes(e);
}

static bool opts_valid(const struct vfio_uring_engine_opts *o)
{
	if (o->side != VFIO_URING_SOURCE && o->side != VFIO_URING_DESTINATION)
		return false;
	if (o->ring_entries == 0 || o->ring_entries > 32768)
		return false;
	if (o->flags & ~(unsigned)(VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO |
				   VFIO_URING_ENGINE_F_BASELINE_RING | VFIO_URING_ENGINE_F_NO_WAITALL |
				   VFIO_URING_ENGINE_F_NO_IOWQ_LIMITS | VFIO_URING_ENGINE_F_PRECOPY))
		return false;
	if (o->side == VFIO_URING_SOURCE) {
		/* One read is one packet: its payload size must fit the u32 next_packet_size. */
		if (o->chunk_size == 0 || o->chunk_size > (1u << 30))
			return false;
		return o->chunk_size + VU_WIRE_PACKET_OVERHEAD <= o->buffer_cap;
	}
	return o->max_packet_size >= VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING &&
	       o->max_packet_size <= UINT32_MAX && o->max_packet_size <= o->buffer_cap;
}

int vfio_uring_engine_create(const struct vfio_uring_engine_opts *opts,
			     struct vfio_uring_engine **out)
{
	struct vfio_uring_engine_opts o;
	struct vfio_uring_engine *e;
	size_t max_request;
	int ret;

	if (!opts || !out)
		return -EINVAL;
	/* A caller built against other headers passes a smaller or bigger struct (ABI). */
	vfio_uring_engine_opts_init(&o, VFIO_URING_SOURCE);
	ret = opts_copy_in(&o, sizeof(o), opts, opts->size,
			   offsetof(struct vfio_uring_engine_opts, side) + sizeof(opts->side));
	if (ret)
		return ret;
	if (!opts_valid(&o))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->opts = o;
	e->ops = o.side == VFIO_URING_SOURCE ? &vu_source_ops : &vu_destination_ops;
	e->ops->init(e);
	e->msg_waitall = o.flags & VFIO_URING_ENGINE_F_NO_WAITALL ? 0 : MSG_WAITALL;

	/*
	 * A source buffer holds the whole packet (headers in front of the data, so a packet is
	 * one send); a destination buffer holds a payload. Config packets may be larger than a
	 * chunk: they take whatever the cap allows.
	 */
	max_request = e->opts.side == VFIO_URING_SOURCE ? e->opts.buffer_cap : e->opts.max_packet_size;
	ret = vu_pool_init(&e->pool, e->opts.buffer_cap, max_request);
	if (ret)
		goto err;
	if (e->opts.side == VFIO_URING_DESTINATION) {
		ret = vu_reorder_init(&e->reorder, vu_pool_max_buffers(&e->pool));
		if (ret)
			goto err;
	}
	ret = setup_ring(e);
	if (ret)
		goto err;
	*out = e;
	return 0;
err:
	vfio_uring_engine_destroy(e);
	return ret;
}

int vfio_uring_engine_add_channel(struct vfio_uring_engine *e, int sockfd)
{
	struct vu_channel *chans;
	struct stat st;

	if (!e)
		return -EINVAL;
	if (vu_engine_started(e))
		return -EBUSY;
	if (e->n_channels >= VFIO_URING_MAX_CHANNELS)
		return -E2BIG;
	if (sockfd < 0 || fstat(sockfd, &st) < 0)
		return -EBADF;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	chans = realloc(e->channels, (e->n_channels + 1) * sizeof(*chans));
	if (!chans)
		return -ENOMEM;
	e->channels = chans;
	chans[e->n_channels] = (struct vu_channel){
		.engine = e,
		.index = e->n_channels,
		.fd = sockfd,
		.io = { .kind = e->ops->channel_op },
	};
	return (int)e->n_channels++;
}

int vfio_uring_engine_add_device(struct vfio_uring_engine *e,
				 const struct vfio_uring_device_opts *caller_opts,
				 struct vfio_uring_device **out)
{
	struct vfio_uring_device *dev, **devs;
	struct vfio_uring_device_opts o, *opts = &o;
	size_t len;
	int ret;

	if (!e)
		return -EINVAL;
	/* A caller built against other headers passes a smaller or bigger struct (ABI). */
	ret = vu_device_opts_read(&o, caller_opts);
	if (ret)
		return ret;
	if (!opts->idstr)
		return -EINVAL;
	if (vu_engine_started(e))
		return -EBUSY;
	len = strnlen(opts->idstr, VFIO_URING_IDSTR_MAX);
	if (len == 0 || len >= VFIO_URING_IDSTR_MAX || opts->data_fd < 0 ||
	    opts->multifd > VFIO_URING_MULTIFD_OFF ||
	    (opts->flags & ~(unsigned)VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS))
		return -EINVAL;
	/* Pre-copy is a source's, and needs the extension on. */
	if (opts->precopy_info && (e->opts.side != VFIO_URING_SOURCE ||
				   !(e->opts.flags & VFIO_URING_ENGINE_F_PRECOPY)))
		return -EINVAL;
	for (unsigned i = 0; i < e->n_devices; i++)
		if (e->devices[i]->instance_id == opts->instance_id &&
		    strcmp(e->devices[i]->idstr, opts->idstr) == 0)
			return -EEXIST;
	dev = calloc(1, sizeof(*dev));
	devs = realloc(e->devices, (e->n_devices + 1) * sizeof(*devs));
	if (!dev || !devs) {
		free(dev);
		if (devs)
			e->devices = devs;
		return -ENOMEM;
	}
	e->devices = devs;
	dev->engine = e;
	dev->index = e->n_devices;
	memcpy(dev->idstr, opts->idstr, len);
	dev->instance_id = opts->instance_id;
	dev->data_fd = opts->data_fd;
	dev->multifd = opts->multifd;
	dev->save_config = opts->save_config;
	dev->load_config = opts->load_config;
	dev->done = opts->done;
	dev->precopy_info = opts->precopy_info;
	dev->opaque = opts->opaque;
	dev->state = VFIO_URING_DEVICE_REGISTERED;
	if (e->ops->device_init)
		e->ops->device_init(dev, opts); /* its part of the union (engine.h) */
	dev->io.owner = dev;
	dev->io.kind = e->ops->device_op;
	devs[e->n_devices++] = dev;
	if (out)
		*out = dev;
	return 0;
}

int vfio_uring_device_set_multifd(struct vfio_uring_device *dev, enum vfio_uring_multifd_mode mode)
{
	if (!dev || mode > VFIO_URING_MULTIFD_OFF)
		return -EINVAL;
	if (vu_engine_started(dev->engine))
		return -EBUSY;
	dev->multifd = mode;
	return 0;
}

/*
 * io-wq runs the device reads and writes that cannot complete at once (a VFIO data fd
 * always blocks in the kernel). Its workers come in two pools: "bounded" for regular files
 * and block devices, at most min(SQ entries, 4 x CPUs) by default (8 on a 2-CPU host), and
 * "unbounded" for everything else, up to RLIMIT_NPROC. A VFIO data fd is an anonymous
 * inode, so unbounded; the bench's and tests' slow devices are FUSE files, so bounded.
 * Either way a device blocked in read() holds a worker for its whole wait: with fewer
 * workers than devices, devices wait for one another. So raise both limits to at least one
 * worker per device (IORING_REGISTER_IOWQ_MAX_WORKERS, 5.15; never lowered). Without it
 * (an older kernel), the defaults stay: every unbounded device still gets a worker, and
 * regular files are read by at most the default number at once.
 */
static void size_workers(struct vfio_uring_engine *e)
{
	unsigned limits[2] = { 0, 0 }; /* 0: change nothing; the call returns the limits in force */
	bool raise = false;

	if (e->devices_active == 0 || (e->opts.flags & VFIO_URING_ENGINE_F_NO_IOWQ_LIMITS) ||
	    io_uring_register_iowq_max_workers(&e->ring, limits) < 0)
		return;
	for (int i = 0; i < 2; i++) {
		raise |= limits[i] < e->devices_active;
		limits[i] = limits[i] < e->devices_active ? e->devices_active : 0;
	}
	if (raise)
		io_uring_register_iowq_max_workers(&e->ring, limits);
}

int vfio_uring_engine_start(struct vfio_uring_engine *e)
{
	int ret;

	if (!e)
		return -EINVAL;
	if (vu_engine_started(e))
		return -EBUSY;
	/* Sample every device's switch first, so that a bad one changes nothing. */
	for (unsigned i = 0; i < e->n_devices; i++) {
		if (e->devices[i]->multifd == VFIO_URING_MULTIFD_ON && e->n_channels == 0) {
			snprintf(e->message, sizeof(e->message),
				 "%s: device %s/%u: multifd is ON but the engine has no channel",
				 vu_side_name(e), e->devices[i]->idstr, e->devices[i]->instance_id);
			return -EINVAL;
		}
	}
	if (e->ring_flags & IORING_SETUP_R_DISABLED) {
		/*
		 * This thread becomes the single issuer. liburing 2.3 declares
		 * io_uring_enable_rings() but does not ship it: register directly.
		 */
		if (syscall(__NR_io_uring_register, e->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
			    NULL, 0) < 0)
			return -errno;
	}
	vu_engine_set_state(e, VU_ENGINE_RUNNING);
	e->last_progress_ns = vu_now_ns();
	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (dev->multifd == VFIO_URING_MULTIFD_OFF ||
		    (dev->multifd == VFIO_URING_MULTIFD_AUTO && e->n_channels == 0)) {
			device_set_state(dev, VFIO_URING_DEVICE_NOT_MULTIFD);
			continue;
		}
		device_set_state(dev, VFIO_URING_DEVICE_ACTIVE);
		dev->started_ns = e->last_progress_ns;
		e->devices_active++;
	}
	/* The channels array is final now (add_channel() reallocs it): point into it. */
	for (unsigned i = 0; i < e->n_channels; i++)
		e->channels[i].io.owner = &e->channels[i];
	size_workers(e);
	ret = e->ops->start(e);
	if (ret)
		return ret;
	/*
	 * No device left: nothing to do, or a callback the side ran (precopy_info,
	 * precopy_ready) failed or cancelled the migration, which process() then reports.
	 */
	if (e->devices_active == 0 && !vu_engine_failed(e))
		vu_engine_set_state(e, VU_ENGINE_FINISHING);
	/* Push the first batch to the kernel now, so a poller sees progress. */
	io_uring_submit(&e->ring);
	e->ring_enters++;
	return 0;
}

/*
 * A call from the caller (not from a completion) that queued SQEs hands them to the kernel
 * before it returns: a caller sleeping in poll() on the ring fd would otherwise wait for
 * completions of operations the kernel has never seen.
 */
static void enter_failed(struct vfio_uring_engine *e, int ret)
{
	if (ret == -EEXIST && (e->ring_flags & IORING_SETUP_SINGLE_ISSUER))
		vu_engine_fail(e, NULL, NULL, VFIO_URING_REASON_RING_ENTER, ret,
			       "io_uring_enter failed: called from a thread other than the one that "
			       "started the engine (the ring is SINGLE_ISSUER)");
	else
		vu_engine_fail(e, NULL, NULL, VFIO_URING_REASON_RING_ENTER, ret,
			       "io_uring_enter failed: %s", strerror(-ret));
}

static void submit_queued(struct vfio_uring_engine *e)
{
	int ret;

	if (!vu_engine_started(e) || !io_uring_sq_ready(&e->ring))
		return;
	ret = io_uring_submit(&e->ring);
	e->ring_enters++;
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		enter_failed(e, ret); /* e.g. -EEXIST: called from a thread that is not the issuer */
}

int vfio_uring_device_config_load_ready(struct vfio_uring_device *dev)
{
	int ret;

	if (!dev || dev->engine->opts.side != VFIO_URING_DESTINATION)
		return -EINVAL;
	ret = vu_destination_config_load_ready(dev);
	submit_queued(dev->engine);
	return ret;
}

int vfio_uring_engine_config_load_ready(struct vfio_uring_engine *e)
{
	if (!e || e->opts.side != VFIO_URING_DESTINATION)
		return -EINVAL;
	for (unsigned i = 0; i < e->n_devices; i++)
		vu_destination_config_load_ready(e->devices[i]);
	submit_queued(e);
	return e->error;
}

int vfio_uring_engine_set_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second)
{
	if (!e || e->opts.side != VFIO_URING_SOURCE)
		return -EINVAL;
	vu_source_set_rate_limit(e, bytes_per_second);
	submit_queued(e);
	return 0;
}

int vfio_uring_engine_stop_copy(struct vfio_uring_engine *e)
{
	if (!e || e->opts.side != VFIO_URING_SOURCE || !(e->opts.flags & VFIO_URING_ENGINE_F_PRECOPY))
		return -EINVAL;
	vu_precopy_stop_copy(e);
	submit_queued(e);
	return 0;
}

int vfio_uring_engine_set_precopy_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second)
{
	if (!e || e->opts.side != VFIO_URING_SOURCE)
		return -EINVAL;
	vu_precopy_set_rate_limit(e, bytes_per_second);
	submit_queued(e);
	return 0;
}

int vfio_uring_engine_get_precopy_status(const struct vfio_uring_engine *e,
					 struct vfio_uring_precopy_status *status, size_t size)
{
	struct vfio_uring_precopy_status st;

	if (!e)
		return -EINVAL;
	vu_precopy_engine_status(e, &st);
	return copy_out(status, size, &st, sizeof(st));
}

int vfio_uring_device_get_precopy_status(const struct vfio_uring_device *dev,
					 struct vfio_uring_precopy_status *status, size_t size)
{
	struct vfio_uring_precopy_status st;

	if (!dev)
		return -EINVAL;
	vu_precopy_device_status(dev, &st); /* zeros without precopy_info (any destination) */
	return copy_out(status, size, &st, sizeof(st));
}

int vfio_uring_engine_switchover_start(struct vfio_uring_engine *e)
{
	if (!e || e->opts.side != VFIO_URING_DESTINATION)
		return -EINVAL;
	e->ops->switchover(e);
	submit_queued(e);
	return 0;
}

struct io_uring_sqe *vu_engine_get_sqe(struct vfio_uring_engine *e)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

	if (!sqe) {
		/* The SQ is full: hand the batch to the kernel and take a fresh slot. */
		io_uring_submit(&e->ring);
		e->ring_enters++;
		sqe = io_uring_get_sqe(&e->ring);
	}
	return sqe;
}

static bool is_device_io(const struct vu_op *op)
{
	return op->kind == VU_OP_DEVICE_READ || op->kind == VU_OP_DEVICE_WRITE;
}

void vu_op_submitted(struct vfio_uring_engine *e, struct vu_op *op, struct io_uring_sqe *sqe)
{
	io_uring_sqe_set_data(sqe, op);
	op->in_flight = true;
	e->in_flight++;
	if (is_device_io(op) && ++e->device_io > e->device_io_peak)
		e->device_io_peak = e->device_io;
}

void vu_engine_cancel_op(struct vfio_uring_engine *e, struct vu_op *op)
{
	struct io_uring_sqe *sqe;

	if (!op->in_flight)
		return;
	sqe = vu_engine_get_sqe(e);
	if (!sqe)
		return; /* cannot happen after a submit; drain() cancels again */
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL); /* the cancel's own CQE is ignored */
}

/* Cancels every operation in flight; their CQEs still arrive and are dispatched. */
static void cancel_all(struct vfio_uring_engine *e)
{
	for (unsigned i = 0; i < e->n_devices; i++)
		vu_engine_cancel_op(e, &e->devices[i]->io);
	for (unsigned i = 0; i < e->n_channels; i++)
		vu_engine_cancel_op(e, &e->channels[i].io);
	if (e->ops->cancel)
		e->ops->cancel(e);
}

/*
 * The done callback runs last, once the engine's state says what happened (the last DONE
 * device has set `finishing`), so that a callback calling vfio_uring_engine_cancel() or a
 * query sees the engine as it is.
 */
static void finish_device(struct vfio_uring_device *dev, enum vfio_uring_device_state state)
{
	struct vfio_uring_engine *e = dev->engine;

	device_set_state(dev, state);
	dev->fail_pending = false;
	if (e->ops->device_stopped)
		e->ops->device_stopped(dev);
	e->devices_active--;
	if (state == VFIO_URING_DEVICE_DONE && e->devices_active == 0 &&
	    e->state == VU_ENGINE_RUNNING) {
		vu_engine_set_state(e, VU_ENGINE_FINISHING);
		if (e->ops->finish)
			e->ops->finish(e);
	}
	if (dev->done)
		dev->done(dev->opaque, dev->error);
}

/*
 * A failed device is reported FAILED (and its done callback called, where a VMM resumes a
 * source device) only once its read or write of the data fd has completed: after that the
 * engine never touches the fd again, so the device's state is exactly what was read.
 */
static void fail_device(struct vfio_uring_device *dev)
{
	if (dev->io.in_flight)
		dev->fail_pending = true;
	else
		finish_device(dev, VFIO_URING_DEVICE_FAILED);
}

void vu_device_done(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	VU_PROBE(device_done, (int)e->opts.side, dev->idstr, dev->instance_id, dev->bytes,
		 vu_now_ns() - dev->started_ns);
	finish_device(dev, VFIO_URING_DEVICE_DONE);
}

void vu_engine_fail(struct vfio_uring_engine *e, struct vfio_uring_device *dev,
		    struct vu_channel *chan, enum vfio_uring_reason reason, int err,
		    const char *fmt, ...)
{
	char cause[VU_MESSAGE_SIZE];
	char where[VU_MESSAGE_SIZE / 2] = "";
	int n = 0;
	va_list ap;

	/* A reason with an errno of its own takes it; one without needs the call's. */
	assert(reason != VFIO_URING_REASON_NONE && reason != VFIO_URING_REASON_FALLOUT);
	assert(!err || !vu_reason_errno(reason) || err == vu_reason_errno(reason));
	if (!err)
		err = vu_reason_errno(reason);
	assert(err < 0);
	if (vu_engine_failed(e))
		return; /* the first error is the cause; what follows is fallout */
	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	if (chan)
		n += snprintf(where + n, sizeof(where) - (size_t)n, "channel %u: ", chan->index);
	if (dev)
		snprintf(where + n, sizeof(where) - (size_t)n, "device %.200s/%u: ", dev->idstr,
			 dev->instance_id);
	snprintf(e->message, sizeof(e->message), "%s: %.230s%.260s", vu_side_name(e), where, cause);
	vu_engine_set_state(e, VU_ENGINE_FAILED);
	e->error = err;
	e->reason = reason;
	VU_PROBE(error, (int)e->opts.side, dev ? dev->idstr : "", dev ? dev->instance_id : 0, err,
		 e->message);

	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *d = e->devices[i];

		if (d->state != VFIO_URING_DEVICE_ACTIVE)
			continue;
		if (d == dev) {
			d->error = err;
			d->reason = reason;
			snprintf(d->message, sizeof(d->message), "%s", e->message);
		} else {
			d->error = vu_reason_errno(VFIO_URING_REASON_FALLOUT);
			d->reason = VFIO_URING_REASON_FALLOUT;
			snprintf(d->message, sizeof(d->message), "migration failed: %.480s", e->message);
		}
		fail_device(d);
	}
	cancel_all(e);
	/*
	 * Tell the peer at once rather than leaving it to its own timeout: a half-sent packet
	 * must never look like a clean end, and a blocked peer must wake up.
	 */
	for (unsigned i = 0; i < e->n_channels; i++)
		shutdown(e->channels[i].fd, SHUT_RDWR);
}

static void dispatch(struct vfio_uring_engine *e, struct io_uring_cqe *cqe)
{
	struct vu_op *op = io_uring_cqe_get_data(cqe);

	e->completions++;
	/*
	 * NULL: a cancel request's own completion. LIBURING_UDATA_TIMEOUT: on kernels without
	 * IORING_FEAT_EXT_ARG (before 5.11), io_uring_submit_and_wait_timeout() queues a timeout
	 * of its own, whose completion carries that user_data.
	 */
	if (!op || cqe->user_data == LIBURING_UDATA_TIMEOUT)
		return;
	op->in_flight = false;
	e->in_flight--;
	if (is_device_io(op))
		e->device_io--;
	e->last_progress_ns = vu_now_ns();
	switch (op->kind) {
	case VU_OP_DEVICE_READ:
	case VU_OP_DEVICE_WRITE:
		e->ops->device_io_done(op->owner, cqe->res);
		break;
	case VU_OP_CHANNEL_SEND:
	case VU_OP_CHANNEL_RECV:
		e->ops->channel_io_done(op->owner, cqe->res);
		break;
	case VU_OP_SIDE:
		e->ops->side_op_done(op, cqe->res);
		break;
	default:
		__builtin_unreachable();
	}
	if (is_device_io(op) && ((struct vfio_uring_device *)op->owner)->fail_pending)
		finish_device(op->owner, VFIO_URING_DEVICE_FAILED);
}

/* Dispatches every CQE that is ready; returns how many. */
static unsigned reap(struct vfio_uring_engine *e)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	/*
	 * Handlers queue new SQEs and may trigger an early submit (SQ full) which can post
	 * CQEs; that only appends behind the ones seen here, so advancing by n stays right.
	 */
	io_uring_for_each_cqe(&e->ring, head, cqe) {
		dispatch(e, cqe);
		n++;
	}
	io_uring_cq_advance(&e->ring, n);
	return n;
}

/* 1 done, 0 in progress, <0 failed (once nothing is in flight any more). */
static int status(const struct vfio_uring_engine *e)
{
	if (vu_engine_failed(e))
		return e->in_flight ? 0 : e->error;
	if (vu_engine_finishing(e) && e->in_flight == 0)
		return 1;
	return 0;
}

/* Names what the engine waits on, for a timeout message: "channel 2 (receive), ...". */
static void describe_waits(const struct vfio_uring_engine *e, char *buf, size_t size)
{
	static const char *const what[] = {
		[VU_OP_DEVICE_READ] = "read", [VU_OP_DEVICE_WRITE] = "write",
		[VU_OP_CHANNEL_SEND] = "send", [VU_OP_CHANNEL_RECV] = "receive",
	};
	size_t n = 0;
	unsigned listed = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < e->n_channels && listed < 4; i++) {
		const struct vu_channel *chan = &e->channels[i];
		const char *waits = chan->io.in_flight ? what[chan->io.kind]
				    : e->ops->channel_waits ? e->ops->channel_waits(chan)
							    : NULL;

		if (waits)
			n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%schannel %u (%s)",
					      listed++ ? ", " : "", i, waits);
	}
	for (unsigned i = 0; i < e->n_devices && listed < 4; i++) {
		const struct vfio_uring_device *dev = e->devices[i];

		if (dev->io.in_flight)
			n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%sdevice %.64s/%u (%s)",
					      listed++ ? ", " : "", dev->idstr, dev->instance_id,
					      what[dev->io.kind]);
	}
	if (!listed)
		snprintf(buf, size, "nothing (%u operations in flight)", e->in_flight);
	else if (e->in_flight > listed)
		snprintf(buf + n, n < size ? size - n : 0, " and %u more", e->in_flight - listed);
}

/* Every device left waits for a call of the caller's: waiting is the caller's choice. */
static bool only_caller_awaited(const struct vfio_uring_engine *e)
{
	return !vu_engine_failed(e) && e->ops->only_caller_awaited && e->ops->only_caller_awaited(e);
}

static void check_progress(struct vfio_uring_engine *e, uint64_t now)
{
	uint64_t limit = (uint64_t)e->opts.progress_timeout_ms * 1000000u;

	if (!limit || e->state != VU_ENGINE_RUNNING || only_caller_awaited(e))
		return;
	if (e->ops->progress_expected && !e->ops->progress_expected(e))
		return;
	if (now - e->last_progress_ns >= limit) {
		char waits[VU_MESSAGE_SIZE / 2];

		describe_waits(e, waits, sizeof(waits));
		vu_engine_fail(e, NULL, NULL, VFIO_URING_REASON_PROGRESS_TIMEOUT, 0,
			       "no progress for %u ms, waiting on %s",
			       e->opts.progress_timeout_ms, waits);
	}
}


int vfio_uring_engine_process(struct vfio_uring_engine *e)
{
	int ret;

	if (!e || !vu_engine_started(e))
		return -EINVAL;
	/* A few passes: completions that arrive inline during submit are handled at once. */
	for (int pass = 0; pass < 4; pass++) {
		ret = io_uring_submit_and_get_events(&e->ring);
		e->ring_enters++;
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			enter_failed(e, ret);
		if (reap(e) == 0)
			break;
	}
	/* What the last pass queued must reach the kernel before the caller sleeps in poll(). */
	if (io_uring_sq_ready(&e->ring)) {
		io_uring_submit(&e->ring);
		e->ring_enters++;
	}
	check_progress(e, vu_now_ns());
	ret = status(e);
	if (ret == 0 && vu_engine_failed(e))
		return e->error; /* failed, still draining: report it, draining goes on */
	return ret;
}

int vfio_uring_engine_run(struct vfio_uring_engine *e, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : vu_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int ret;

	if (!e || !vu_engine_started(e))
		return -EINVAL;
	while ((ret = status(e)) == 0) {
		uint64_t now = vu_now_ns(), wait_until = deadline;
		struct __kernel_timespec ts;
		struct io_uring_cqe *cqe;

		check_progress(e, now);
		if (e->opts.progress_timeout_ms && e->state == VU_ENGINE_RUNNING) {
			uint64_t limit = e->last_progress_ns +
					 (uint64_t)e->opts.progress_timeout_ms * 1000000u;

			if (limit < wait_until)
				wait_until = limit;
		}
		if (now >= deadline) /* failed and still draining: the error is the answer */
			return vu_engine_failed(e) ? e->error : -ETIMEDOUT;
		if (only_caller_awaited(e))
			return -EAGAIN;
		if (wait_until == UINT64_MAX) {
			ret = io_uring_submit_and_wait(&e->ring, 1);
		} else {
			uint64_t left = wait_until > now ? wait_until - now : 0;

			ts.tv_sec = (long long)(left / 1000000000u);
			ts.tv_nsec = (long long)(left % 1000000000u);
			ret = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
		}
		e->ring_enters++;
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			enter_failed(e, ret);
		reap(e);
	}
	return ret > 0 ? 0 : ret;
}

int vfio_uring_engine_get_fd(const struct vfio_uring_engine *e)
{
	if (!e || !e->ring_ready)
		return -EINVAL;
	return e->ring.ring_fd;
}

int vfio_uring_engine_cancel(struct vfio_uring_engine *e)
{
	if (!e)
		return -EINVAL;
	if (e->state == VU_ENGINE_RUNNING)
		vu_engine_fail(e, NULL, NULL, VFIO_URING_REASON_CANCELLED, 0, "cancelled by the caller");
	submit_queued(e);
	return 0;
}

int vfio_uring_engine_error(const struct vfio_uring_engine *e, const char **message)
{
	if (!e)
		return -EINVAL;
	if (message)
		*message = e->message;
	return e->error;
}

enum vfio_uring_reason vfio_uring_engine_reason(const struct vfio_uring_engine *e)
{
	return e ? e->reason : VFIO_URING_REASON_NONE;
}

/* Waits for every operation in flight, so no kernel write can land in freed memory. */
static void drain(struct vfio_uring_engine *e)
{
	if (!e->ring_ready || !vu_engine_started(e))
		return;
	if (e->in_flight)
		cancel_all(e);
	while (e->in_flight) {
		int ret = io_uring_submit_and_wait(&e->ring, 1);

		e->ring_enters++;
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break;
		reap(e);
	}
}

void vfio_uring_engine_destroy(struct vfio_uring_engine *e)
{
	if (!e)
		return;
	if (e->state == VU_ENGINE_RUNNING || (e->state == VU_ENGINE_FINISHING && e->in_flight))
		vu_engine_fail(e, NULL, NULL, VFIO_URING_REASON_DESTROYED, 0,
			       "engine destroyed during the transfer");
	drain(e);
	e->ops->release_buffers(e);
	/*
	 * Nothing may be in flight and every buffer must be back: anything else is an accounting
	 * bug (a buffer the kernel could still write, or a leak). The tests run with asserts on.
	 */
	assert(e->in_flight == 0 || !vu_engine_started(e));
	assert(e->pool.buffers_in_use == 0);
	vu_pool_destroy(&e->pool);
	vu_reorder_destroy(&e->reorder);
	if (e->ring_ready)
		io_uring_queue_exit(&e->ring);
	for (unsigned i = 0; i < e->n_devices; i++)
		free(e->devices[i]);
	free(e->devices);
	free(e->channels);
	free(e);
}

int vfio_uring_device_get_status(const struct vfio_uring_device *dev,
				 struct vfio_uring_device_status *status, size_t size)
{
	const struct vu_side_ops *ops;
	struct vfio_uring_device_status st;

	if (!dev)
		return -EINVAL;
	ops = dev->engine->ops;
	/*
	 * A device failing while its read or write drains stays ACTIVE, with no error shown,
	 * until it is FAILED: error set means "failed, and the engine is done with its fd".
	 */
	st = (struct vfio_uring_device_status){
		.state = dev->state,
		.error = dev->state == VFIO_URING_DEVICE_FAILED ? dev->error : 0,
		.message = dev->state == VFIO_URING_DEVICE_FAILED ? dev->message : "",
		.bytes = dev->bytes,
		.data_bytes = dev->data_bytes,
		.packets = dev->packets,
		.packets_queued = ops->packets_queued ? ops->packets_queued(dev) : 0,
		.reason = dev->state == VFIO_URING_DEVICE_FAILED ? dev->reason : VFIO_URING_REASON_NONE,
	};
	return copy_out(status, size, &st, sizeof(st));
}

int vfio_uring_engine_get_stats(const struct vfio_uring_engine *e,
				struct vfio_uring_engine_stats *stats, size_t size)
{
	struct vfio_uring_engine_stats st;

	if (!e)
		return -EINVAL;
	st = (struct vfio_uring_engine_stats){
		.ring_enters = e->ring_enters,
		.completions = e->completions,
		.buffer_bytes = e->pool.allocated,
		.buffer_peak = e->pool.peak,
		.buffer_cap = e->pool.cap,
		.device_io_peak = e->device_io_peak,
	};
	for (unsigned i = 0; i < e->n_devices; i++) {
		st.bytes += e->devices[i]->bytes;
		st.packets += e->devices[i]->packets;
	}
	for (unsigned i = 0; i < e->n_channels; i++)
		st.wire_bytes += e->channels[i].stats.wire_bytes;
	return copy_out(stats, size, &st, sizeof(st));
}

int vfio_uring_engine_get_channel_stats(const struct vfio_uring_engine *e, unsigned channel,
					struct vfio_uring_channel_stats *stats, size_t size)
{
	if (!e)
		return -EINVAL;
	if (channel >= e->n_channels)
		return -ENOENT;
	return copy_out(stats, size, &e->channels[channel].stats, sizeof(*stats));
}

void vfio_uring_engine_reset_stats(struct vfio_uring_engine *e)
{
	if (!e)
		return;
	for (unsigned i = 0; i < e->n_devices; i++) {
		e->devices[i]->bytes = 0;
		e->devices[i]->data_bytes = 0;
		e->devices[i]->packets = 0;
	}
	for (unsigned i = 0; i < e->n_channels; i++)
		e->channels[i].stats = (struct vfio_uring_channel_stats){ 0 };
	e->ring_enters = 0;
	e->completions = 0;
}

const char *vfio_uring_device_idstr(const struct vfio_uring_device *dev)
{
	return dev ? dev->idstr : NULL;
}

uint32_t vfio_uring_device_instance_id(const struct vfio_uring_device *dev)
{
	return dev ? dev->instance_id : 0;
}

const char *vfio_uring_device_state_name(enum vfio_uring_device_state state)
{
	switch (state) {
	case VFIO_URING_DEVICE_REGISTERED: return "registered";
	case VFIO_URING_DEVICE_ACTIVE: return "active";
	case VFIO_URING_DEVICE_DONE: return "done";
	case VFIO_URING_DEVICE_FAILED: return "failed";
	case VFIO_URING_DEVICE_NOT_MULTIFD: return "not-multifd";
	}
	return "unknown";
}

const char *vfio_uring_version(void)
{
	return VFIO_URING_VERSION_STRING; /* meson.build's project version, via vfio-uring-version.h */
}
