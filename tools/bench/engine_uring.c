/* SPDX-License-Identifier: MIT */
/*
 * `uring`: the library, through its public API only (include/vfio-uring.h). One engine, one
 * io_uring, one thread per side. The destination runs the engine until the switchover time,
 * then calls vfio_uring_engine_switchover_start() (QEMU's switchover_start) and runs it to
 * the end. In async device mode every data fd read/write goes to io_uring's worker threads
 * (VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO), as it must for a real VFIO data fd.
 *
 * A pre-copy run (--precopy) plays the VMM of a live migration: both engines have
 * VFIO_URING_ENGINE_F_PRECOPY, the source's devices are the model's pre-copy files with
 * their info as precopy_info; the source runs live until the engine is ready (or
 * --precopy-max-ms), then stops the "VM" (devmodel_stop_copy on every device,
 * vfio_uring_engine_stop_copy) and tells the destination ('S'), which starts the switchover.
 */
#include "bench.h"

#include "devmodel.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef BENCH_HAVE_URING
#include <vfio-uring.h>

struct udev {
	struct side_ctx *ctx;
	unsigned dev;
	uint8_t blob[BENCH_CONFIG_BLOB_SIZE];
	size_t blob_len;
	unsigned config_loads;
	bool config_ok;
	int done_err;
	bool done_called;
};

struct uring {
	struct vfio_uring_engine *engine;
	struct udev *devs;
	bool ready; /* source, pre-copy: the engine's readiness, from precopy_ready */
};

static int precopy_info(void *opaque, struct vfio_uring_precopy_info *info)
{
	struct udev *u = opaque;
	struct devmodel_precopy_info mi;
	int err = devmodel_precopy_info(u->ctx->model, u->ctx->model_idx[u->dev], &mi);

	if (err)
		return err;
	info->initial_bytes = mi.initial_bytes;
	info->dirty_bytes = mi.dirty_bytes;
	info->stop_copy_bytes = mi.stop_copy_bytes;
	info->flags = mi.flags & DEVMODEL_PRECOPY_REINIT ? VFIO_URING_PRECOPY_F_REINIT : 0;
	return 0;
}

static void precopy_ready(struct vfio_uring_engine *engine, void *opaque,
			  const struct vfio_uring_precopy_status *status)
{
	struct uring *u = opaque;

	(void)engine;
	u->ready = status->ready != 0;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct udev *u = opaque;

	*data = u->blob;
	*len = u->blob_len;
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct udev *u = opaque;

	u->config_loads++;
	u->config_ok = device_config_check(u->dev, u->ctx->cfg->seed, data, len);
	return u->config_ok ? 0 : -EBADMSG;
}

static void device_done(void *opaque, int error)
{
	struct udev *u = opaque;

	u->done_called = true;
	u->done_err = error;
}

static int uring_setup(struct side_ctx *ctx)
{
	bool src = ctx->side == SIDE_SOURCE;
	struct vfio_uring_engine_opts eo;
	struct uring *u = calloc(1, sizeof(*u));
	int err;

	if (!u)
		return -ENOMEM;
	ctx->priv = u;
	u->devs = calloc(ctx->ndev, sizeof(*u->devs));
	if (!u->devs)
		return -ENOMEM;
	vfio_uring_engine_opts_init(&eo, src ? VFIO_URING_SOURCE : VFIO_URING_DESTINATION);
	memcpy(eo.uuid, ctx->uuid, sizeof(eo.uuid));
	eo.chunk_size = ctx->chunk;
	if (ctx->chunk + 4096 > eo.max_packet_size)
		eo.max_packet_size = ctx->chunk + 4096;
	if (ctx->cfg->buffer_cap)
		eo.buffer_cap = ctx->cfg->buffer_cap;
	if (src && ctx->cfg->src_buffer_cap)
		eo.buffer_cap = ctx->cfg->src_buffer_cap;
	eo.progress_timeout_ms = 60000;
	if (ctx->async_devio)
		eo.flags |= VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	if (ctx->precopy) {
		eo.flags |= VFIO_URING_ENGINE_F_PRECOPY;
		if (src) {
			eo.precopy_ready = precopy_ready;
			eo.precopy_opaque = u;
		}
	}
	err = vfio_uring_engine_create(&eo, &u->engine);
	if (err) {
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "uring: engine_create: %s",
			 strerror(-err));
		return err;
	}
	for (unsigned i = 0; i < ctx->nchan; i++) {
		err = vfio_uring_engine_add_channel(u->engine, ctx->chans[i]);
		if (err < 0)
			return err;
	}
	for (unsigned d = 0; d < ctx->ndev; d++) {
		struct vfio_uring_device_opts dopts;
		struct udev *ud = &u->devs[d];
		char idstr[64];

		ud->ctx = ctx;
		ud->dev = d;
		ud->blob_len = device_config_blob(d, ctx->cfg->seed, ud->blob, sizeof(ud->blob));
		device_idstr(d, idstr, sizeof(idstr));
		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = idstr;
		dopts.instance_id = device_instance_id(d);
		dopts.data_fd = ctx->dev_fds[d];
		dopts.multifd = VFIO_URING_MULTIFD_ON;
		if (src)
			dopts.save_config = save_config;
		if (src && ctx->precopy)
			dopts.precopy_info = precopy_info;
		if (!src)
			dopts.load_config = load_config;
		dopts.done = device_done;
		dopts.opaque = ud;
		err = vfio_uring_engine_add_device(u->engine, &dopts, NULL);
		if (err)
			return err;
	}
	/* The destination receives from now on (and queues until the switchover). */
	return src ? 0 : vfio_uring_engine_start(u->engine);
}

static int uring_finish(struct side_ctx *ctx, int err)
{
	struct uring *u = ctx->priv;
	struct vfio_uring_engine_stats st;

	if (vfio_uring_engine_get_stats(u->engine, &st, sizeof(st)) == 0) {
		ctx->res->ring_enters = st.ring_enters;
		ctx->res->buffer_peak = st.buffer_peak;
	}
	if (err) {
		const char *m = NULL;
		int eerr = vfio_uring_engine_error(u->engine, &m);

		if (eerr)
			err = eerr;
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "uring %s: %s",
			 ctx->side == SIDE_SOURCE ? "source" : "destination",
			 m && *m ? m : strerror(-err));
	}
	return err;
}

/*
 * The live phase of a pre-copy run, as a VMM: run until the engine is ready (every initial
 * byte read) or --precopy-max-ms passed, then stop the VM: every device to STOP_COPY, the
 * engine told, the destination told to start the switchover.
 */
static int uring_src_live(struct side_ctx *ctx)
{
	struct uring *u = ctx->priv;
	double deadline = ctx->res->t0 + ctx->cfg->precopy_max_ms / 1000.0;
	int err = 0;

	while (!u->ready && now_s() < deadline) {
		/* Short slices: the readiness is seen within 2 ms of the callback. */
		err = vfio_uring_engine_run(u->engine, 2);
		if (err == -ETIMEDOUT)
			err = 0;
		else
			break; /* failed (or done, which a live engine cannot be) */
	}
	if (err)
		return err;
	ctx->res->precopy_ready = u->ready;
	ctx->res->t_stop = now_s();
	for (unsigned d = 0; d < ctx->ndev && !err; d++) {
		struct devmodel_precopy_info mi;

		/*
		 * What the device streams after the stop, from its own count: the engine's
		 * precopy_bytes also counts reads in flight at the stop, which the device may
		 * answer with stop-copy data. (With a dirty rate, the bytes dirtied between this
		 * and the stop, a few at most, are not in it.)
		 */
		err = devmodel_precopy_info(ctx->model, ctx->model_idx[d], &mi);
		if (!err)
			err = devmodel_stop_copy(ctx->model, ctx->model_idx[d]);
		ctx->res->stop_bytes += mi.stop_copy_bytes;
	}
	if (!err)
		err = vfio_uring_engine_stop_copy(u->engine);
	if (!err)
		err = ctl_send(ctx->ctrl, 'S');
	return err;
}

static int uring_src_run(struct side_ctx *ctx)
{
	struct uring *u = ctx->priv;
	int err = vfio_uring_engine_start(u->engine);

	if (!err && ctx->precopy)
		err = uring_src_live(ctx);
	if (!err)
		err = vfio_uring_engine_run(u->engine, -1);
	if (ctx->precopy) {
		struct vfio_uring_precopy_status ps;

		if (vfio_uring_engine_get_precopy_status(u->engine, &ps, sizeof(ps)) == 0)
			ctx->res->precopy_bytes = ps.precopy_bytes;
	}
	return uring_finish(ctx, err);
}

/* Destination, pre-copy: receive (and write pre-copy data) until the source's stop ('S'). */
static int uring_dst_wait_stop(struct side_ctx *ctx)
{
	struct uring *u = ctx->priv;

	for (;;) {
		struct pollfd pfd = { .fd = ctx->ctrl, .events = POLLIN };
		int err;

		if (poll(&pfd, 1, 0) > 0) {
			char c = 0;

			err = ctl_recv(ctx->ctrl, &c);
			return err ? err : c == 'S' ? 0 : -EPROTO;
		}
		err = vfio_uring_engine_run(u->engine, 1);
		if (err != -ETIMEDOUT)
			return err;
	}
}

static int uring_dst_run(struct side_ctx *ctx, double switchover_at)
{
	struct uring *u = ctx->priv;
	double left = switchover_at - now_s();
	int err = 0;
	bool ok = true;

	/* Receive (and queue) until the switchover; the cap bounds what may queue. */
	if (ctx->precopy) {
		err = uring_dst_wait_stop(ctx);
	} else if (left > 0) {
		err = vfio_uring_engine_run(u->engine, (int)(left * 1000) + 1);
		if (err == -ETIMEDOUT)
			err = 0;
	}
	if (!err)
		err = vfio_uring_engine_switchover_start(u->engine);
	if (!err)
		err = vfio_uring_engine_run(u->engine, -1);
	for (unsigned d = 0; d < ctx->ndev; d++)
		ok &= u->devs[d].config_loads == 1 && u->devs[d].config_ok &&
		      u->devs[d].done_called && u->devs[d].done_err == 0;
	ctx->res->config_ok = ok && !err;
	return uring_finish(ctx, err);
}

static void uring_teardown(struct side_ctx *ctx)
{
	struct uring *u = ctx->priv;

	if (u) {
		vfio_uring_engine_destroy(u->engine);
		free(u->devs);
		free(u);
	}
	ctx->priv = NULL;
}

bool engine_uring_available(void)
{
	return true;
}

#else /* !BENCH_HAVE_URING: the library has no engine yet */

static int uring_unavailable(struct side_ctx *ctx)
{
	snprintf(ctx->res->msg, sizeof(ctx->res->msg),
		 "uring: this build of the library has no engine (src/engine.c missing)");
	return -ENOSYS;
}

static int uring_dst_run(struct side_ctx *ctx, double switchover_at)
{
	(void)switchover_at;
	return uring_unavailable(ctx);
}

static void uring_teardown(struct side_ctx *ctx)
{
	(void)ctx;
}

#define uring_setup uring_unavailable
#define uring_src_run uring_unavailable

bool engine_uring_available(void)
{
	return false;
}
#endif

const struct bench_engine_ops engine_uring_ops = {
	.name = "uring",
	.src_setup = uring_setup,
	.src_run = uring_src_run,
	.dst_setup = uring_setup,
	.dst_run = uring_dst_run,
	.teardown = uring_teardown,
};
