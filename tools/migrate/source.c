/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate --connect: the source, top to bottom. Open the devices and read their
 * config blobs, connect the channels, move each device to STOP_COPY (through PRE_COPY with
 * --precopy) and register it with the engine, send everything, then wait for the
 * destination's verdict: the devices stay stopped only when it accepted their state, and are
 * resumed (RUNNING) on any failure. Until a device is moved it is reported as untouched.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "migrate.h"

static int read_config_blobs(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		int ret = mig_read_config(d);
		if (ret < 0) {
			mig_device_fate(d, MIG_UNTOUCHED, "untouched (its config blob %s: %s)",
					d->config_path, strerror(-ret));
			return mig_fail(s, ret, "%s: config blob %s: %s", d->name, d->config_path,
					strerror(-ret));
		}
	}
	return 0;
}

/* STOP_COPY (after PRE_COPY with --precopy) and registered with the engine. */
static int save_add(struct mig_session *s, struct mig_device *d,
		    const struct vfio_uring_device_opts *opts)
{
	if (s->o->precopy) {
		uint64_t initial = 0, dirty = 0;
		int ret = vfio_uring_vfio_save_precopy(d->vfio);
		if (ret == 0)
			vfio_uring_vfio_precopy_info(d->vfio, &initial, &dirty);
		fprintf(stderr, "%s: PRE_COPY %s (initial_bytes %llu, dirty_bytes %llu)\n",
			d->name, ret == 0 ? "entered" : vfio_uring_vfio_error(d->vfio),
			(unsigned long long)initial, (unsigned long long)dirty);
		if (ret < 0 && ret != -EOPNOTSUPP)
			return ret;
	}
	return vfio_uring_vfio_save_add(d->vfio, s->engine, opts, &d->dev);
}

static void transfer(struct mig_session *s)
{
	const char *emsg = NULL;
	int ret = vfio_uring_engine_start(s->engine);

	if (ret == 0)
		ret = mig_run_engine(s);
	if (ret < 0) {
		vfio_uring_engine_error(s->engine, &emsg);
		mig_fail(s, ret, "%s", emsg && *emsg ? emsg : strerror(-ret));
		return;
	}
	/* Every byte went out; the destination still has to accept it. */
	char vmsg[MIG_VERDICT_MSG_MAX + 64];
	shutdown(s->socks[0], SHUT_WR);
	ret = mig_recv_verdict(s->socks[0], s->o->timeout_s ? (int)s->o->timeout_s * 1000 : -1,
			       vmsg, sizeof(vmsg));
	if (ret < 0)
		mig_fail(s, ret, "%s", vmsg);
}

/* Stopped when saved and accepted, else resumed: the library does it, we report it. */
static void finish_devices(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		if (!d->dev)
			continue;
		int ret = vfio_uring_vfio_save_finish(d->vfio, s->result);
		if (ret == 0) {
			mig_device_fate(d, MIG_SAVED, "saved; the destination accepted it; stays in STOP");
			continue;
		}
		mig_device_fate(d, MIG_FAILED, "%s", mig_vfio_message(d));
		mig_fail(s, ret, "%s", vfio_uring_vfio_error(d->vfio));
	}
}

int mig_source_run(struct mig_session *s)
{
	if (mig_open_devices(s) == 0 && read_config_blobs(s) == 0 &&
	    mig_connect_channels(s) == 0) {
		s->t0 = now_s();
		if (mig_create_engine(s, VFIO_URING_SOURCE) == 0 && mig_add_devices(s, save_add) == 0)
			transfer(s);
		finish_devices(s);
	}
	return s->result;
}
