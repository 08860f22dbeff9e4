/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate --connect: the source, top to bottom. Open the devices and read their
 * config blobs, connect the channels, move each device to STOP_COPY and register it with
 * the engine (with --precopy: to PRE_COPY, registered live; the engine streams the devices'
 * pre-copy data until they are ready or --precopy-max-ms passed, then each device goes to
 * STOP_COPY and the rest follows), send everything, then wait for the
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

/* Registered with the engine: in STOP_COPY, or with --precopy live in PRE_COPY. */
static int save_add(struct mig_session *s, struct mig_device *d,
		    const struct vfio_uring_device_opts *opts)
{
	if (s->o->precopy) {
		uint64_t initial = 0, dirty = 0;
		int ret = vfio_uring_vfio_save_precopy(d->vfio);
		if (ret == 0)
			vfio_uring_vfio_precopy_info(d->vfio, &initial, &dirty);
		fprintf(stderr, "%s: PRE_COPY %s (initial_bytes %llu, dirty_bytes %llu%s)\n",
			d->name, ret == 0 ? "entered" : vfio_uring_vfio_error(d->vfio),
			(unsigned long long)initial, (unsigned long long)dirty,
			ret != 0 ? "" : vfio_uring_vfio_precopy_v2(d->vfio) ? ", PRECOPY_INFOv2"
									: ", no PRECOPY_INFOv2");
		if (ret < 0 && ret != -EOPNOTSUPP)
			return ret;
	}
	return vfio_uring_vfio_save_add(d->vfio, s->engine, opts, &d->dev);
}

static bool is_live(const struct mig_device *d)
{
	struct vfio_uring_precopy_status st = { 0 };

	return d->dev && vfio_uring_device_get_precopy_status(d->dev, &st, sizeof(st)) == 0 &&
	       st.devices && st.live;
}

/*
 * The live phase: the engine streams the pre-copy data until every device is ready (or
 * --precopy-max-ms passed); then, as a VMM stopping its VM, each device goes to STOP_COPY and
 * the engine is told, without running it in between. 0 or the error that ends the run.
 */
static int precopy_phase(struct mig_session *s)
{
	struct vfio_uring_precopy_status st = { 0 };
	double t0 = now_s(), last_print = t0;
	int ret = 0;

	for (;;) {
		vfio_uring_engine_get_precopy_status(s->engine, &st, sizeof(st));
		if (!st.devices || st.ready)
			break;
		double t = now_s();
		if (s->o->precopy_max_ms && (t - t0) * 1000 >= s->o->precopy_max_ms)
			break;
		if (!s->o->quiet && t - last_print >= 1.0) {
			fprintf(stderr, "precopy: %llu bytes live, initial_bytes %llu, dirty_bytes %llu "
				"left, %u device(s) not ready\n", (unsigned long long)st.precopy_bytes,
				(unsigned long long)st.initial_bytes, (unsigned long long)st.dirty_bytes,
				st.devices_pending);
			last_print = t;
		}
		ret = vfio_uring_engine_run(s->engine, 50);
		if (ret != -ETIMEDOUT)
			return ret < 0 ? ret : -EPROTO; /* done while live cannot be */
	}
	s->precopy_ran = st.devices > 0;
	s->precopy_s = now_s() - t0;
	s->precopy = st;
	if (s->precopy_ran)
		fprintf(stderr, "precopy: %s after %.3f s: %llu bytes live, initial_bytes %llu, "
			"dirty_bytes %llu left; stopping\n", st.ready ? "ready" : "NOT ready",
			s->precopy_s, (unsigned long long)st.precopy_bytes,
			(unsigned long long)st.initial_bytes, (unsigned long long)st.dirty_bytes);
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		if (!is_live(d))
			continue;
		ret = vfio_uring_vfio_stop_copy(d->vfio);
		if (ret < 0) {
			mig_fail(s, ret, "%s", vfio_uring_vfio_error(d->vfio));
			vfio_uring_engine_cancel(s->engine); /* every device resumes */
			return ret;
		}
	}
	return vfio_uring_engine_stop_copy(s->engine);
}

static void transfer(struct mig_session *s)
{
	const char *emsg = NULL;
	int ret = vfio_uring_engine_start(s->engine);

	if (ret == 0 && s->o->precopy)
		ret = precopy_phase(s);
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
