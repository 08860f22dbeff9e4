/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate --listen: the destination, top to bottom. Open the devices, accept the
 * channels, move each device to RESUMING and register it with the engine, receive
 * everything, let the driver validate each device's state (RESUMING -> STOP), write the
 * config blobs of the devices it accepted, send the verdict to the source, and with --run
 * move the devices to RUNNING. A device whose load failed is reset (RUNNING, clean state).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate.h"

/* Fail before any device is touched if a config blob could not be written where asked. */
static int check_config_paths(struct mig_session *s)
{
	const char *dir_opt = s->o->config_dir;

	if (dir_opt && mkdir(dir_opt, 0777) < 0 && errno != EEXIST)
		return mig_fail(s, -errno, "config blobs: cannot create %s: %s", dir_opt,
				strerror(errno));
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		char copy[PATH_MAX];
		if (!d->config_path[0])
			continue;
		snprintf(copy, sizeof(copy), "%s", d->config_path);
		const char *dir = dirname(copy);
		if (access(dir, W_OK | X_OK) < 0)
			return mig_fail(s, -errno, "%s: config blob %s: cannot write in %s: %s",
					d->name, d->config_path, dir, strerror(errno));
	}
	return 0;
}

/* STOP -> RESUMING and registered with the engine. */
static int load_add(struct mig_session *s, struct mig_device *d,
		    const struct vfio_uring_device_opts *opts)
{
	return vfio_uring_vfio_load_add(d->vfio, s->engine, opts, &d->dev);
}

static void transfer(struct mig_session *s)
{
	const char *emsg = NULL;
	int ret = vfio_uring_engine_start(s->engine);

	if (ret == 0)
		ret = vfio_uring_engine_switchover_start(s->engine);
	if (ret == 0)
		ret = mig_run_engine(s);
	if (ret < 0) {
		vfio_uring_engine_error(s->engine, &emsg);
		mig_fail(s, ret, "%s", emsg && *emsg ? emsg : strerror(-ret));
	}
}

/* RESUMING -> STOP (the driver validates), then the config blob of each accepted device. */
static void finish_devices(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		if (!d->dev)
			continue;
		int ret = vfio_uring_vfio_load_finish(d->vfio, s->result);
		if (ret < 0) {
			mig_device_fate(d, MIG_FAILED, "%s", mig_vfio_message(d));
			mig_fail(s, ret, "%s", vfio_uring_vfio_error(d->vfio));
			continue;
		}
		ret = mig_write_config(d);
		if (ret < 0) {
			/* Loaded but unusable without its config: treat it as any failed load. */
			int rret = vfio_uring_vfio_reset(d->vfio);
			mig_device_fate(d, MIG_FAILED,
					"loaded, but writing its config blob to %s failed (%s); %s",
					d->config_path, strerror(-ret),
					rret == 0 ? "device reset to RUNNING" :
						    "VFIO_DEVICE_RESET failed too");
			mig_fail(s, ret, "%s: writing the config blob to %s: %s", d->name,
				 d->config_path, strerror(-ret));
			continue;
		}
		mig_device_fate(d, MIG_LOADED, "loaded; the driver accepted it; in STOP");
	}
}

static void run_devices(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		int ret = vfio_uring_vfio_set_state(d->vfio, VFIO_URING_VFIO_RUNNING);
		if (ret == 0) {
			mig_device_fate(d, MIG_LOADED, "loaded; the driver accepted it; now RUNNING");
			continue;
		}
		mig_device_fate(d, MIG_FAILED, "loaded, but %s", mig_vfio_message(d));
		mig_fail(s, ret, "%s", vfio_uring_vfio_error(d->vfio));
	}
}

int mig_destination_run(struct mig_session *s)
{
	if (mig_open_devices(s) == 0 && check_config_paths(s) == 0 &&
	    mig_accept_channels(s) == 0) {
		s->t0 = now_s();
		if (mig_create_engine(s, VFIO_URING_DESTINATION) == 0 && mig_add_devices(s, load_add) == 0)
			transfer(s);
		finish_devices(s);
	}
	/* The source waits for this before it decides to keep its devices stopped. After a
	 * failed transfer the engine has shut the channels down and it cannot arrive; the
	 * source sees the failure on the channels then. */
	if (s->nsocks > 0)
		mig_send_verdict(s->socks[0], s->result, s->why);
	if (s->result == 0 && s->o->run_after)
		run_devices(s);
	return s->result;
}
