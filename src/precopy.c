/* SPDX-License-Identifier: MIT */
/*
 * The source's live phase: pre-copy (VFIO_URING_ENGINE_F_PRECOPY).
 *
 * A device registered with precopy_info is in VFIO's PRE_COPY state from start: its data fd
 * streams the initial bytes, then what the running device dirties, and a read that finds
 * nothing fails with ENOMSG (or returns 0) until the device has more. Such a read puts the
 * device in PRECOPY_WAIT. One timer on the ring, every precopy_poll_ms while the phase lasts,
 * asks the devices' precopy_info and reads again from a waiting device that reports bytes:
 * no thread sleeps and no read spins (a device whose report and reads disagree costs one
 * read per poll).
 *
 * precopy_info is an ioctl on the data fd for a real device, so it is never called while a
 * read of that fd is in flight (the read may hold the driver's lock for as long as the
 * device takes). The timer asks every live device not reading; a device that keeps reading
 * is asked between two reads once its last report is a poll old. Those reports are the
 * status's estimates; readiness is every pre-copy device having reported initial_bytes 0,
 * and its changes go to opts.precopy_ready.
 *
 * stop_copy() ends the phase: the devices are in STOP_COPY, reads issued from then on are
 * stop-copy reads (0 ends the stream), waiting devices read at once, and the live-phase
 * bandwidth cap gives way to the caller's stop-copy cap.
 */
#include <errno.h>
#include <string.h>

#include "engine.h"

#define VU_PRECOPY_POLL_MS_DEFAULT 10u

static uint64_t poll_ns(const struct vfio_uring_engine *e)
{
	unsigned ms = e->opts.precopy_poll_ms ? e->opts.precopy_poll_ms : VU_PRECOPY_POLL_MS_DEFAULT;

	return (uint64_t)ms * 1000000u;
}

static bool is_live(const struct vfio_uring_device *dev)
{
	return dev->precopy_info && !dev->engine->src.stop_copy &&
	       dev->state == VFIO_URING_DEVICE_ACTIVE;
}

/* It has reported, and its last report had no initial bytes left. */
static bool initial_done(const struct vfio_uring_device *dev)
{
	return dev->info_ns && dev->info.initial_bytes == 0;
}

static void arm_poll_timer(struct vfio_uring_engine *e)
{
	uint64_t ns = poll_ns(e);
	struct io_uring_sqe *sqe;

	if (e->src.poll_timer.in_flight || !e->src.live || vu_engine_failed(e))
		return;
	e->src.poll_ts.tv_sec = (long long)(ns / 1000000000u);
	e->src.poll_ts.tv_nsec = (long long)(ns % 1000000000u);
	sqe = vu_engine_get_sqe(e);
	io_uring_prep_timeout(sqe, &e->src.poll_ts, 0, 0);
	vu_op_submitted(e, &e->src.poll_timer, sqe);
}

/* Asks the device for its pre-copy state. 0, or <0 when the engine failed (by it or in it). */
static int ask(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vfio_uring_precopy_info info;
	int ret;

	memset(&info, 0, sizeof(info));
	ret = dev->precopy_info(dev->opaque, &info);
	if (vu_engine_failed(e))
		return -ECANCELED; /* the callback cancelled the migration */
	if (ret < 0) {
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_PRECOPY_INFO, ret,
			       "precopy_info callback failed: %s", strerror(-ret));
		return ret;
	}
	if (info.flags & VFIO_URING_PRECOPY_F_REINIT)
		dev->reinits++;
	/* With REINIT (or a driver that raises it anyway) initial_bytes may rise again. */
	dev->info = info;
	dev->info_ns = vu_now_ns();
	return 0;
}

/* Microseconds to move `bytes` at `rate` bytes per second (0: no rate). */
static uint64_t time_us(uint64_t bytes, uint64_t rate)
{
	return rate ? (uint64_t)((unsigned __int128)bytes * 1000000u / rate) : 0;
}

/* Whether a stop-copy of est_us is short enough; unknown (no rate yet) is not, under a limit. */
static bool within_downtime(const struct vfio_uring_engine *e, uint64_t bytes, bool rate_known,
			    uint64_t est_us)
{
	if (!e->opts.precopy_downtime_ms || !bytes)
		return true;
	return rate_known && est_us <= (uint64_t)e->opts.precopy_downtime_ms * 1000u;
}

void vu_precopy_device_status(const struct vfio_uring_device *dev,
			      struct vfio_uring_precopy_status *st)
{
	const struct vfio_uring_engine *e = dev->engine;

	memset(st, 0, sizeof(*st));
	if (!dev->precopy_info)
		return;
	st->devices = 1;
	st->live = is_live(dev);
	st->initial_bytes = dev->info.initial_bytes;
	st->dirty_bytes = dev->info.dirty_bytes;
	st->stop_copy_bytes = dev->info.stop_copy_bytes ? dev->info.stop_copy_bytes
							: dev->info.initial_bytes + dev->info.dirty_bytes;
	st->precopy_bytes = dev->precopy_bytes;
	if (dev->read_busy_ns)
		st->read_rate = (uint64_t)((unsigned __int128)dev->read_timed_bytes * 1000000000u /
					   dev->read_busy_ns);
	st->est_stop_copy_us = time_us(st->stop_copy_bytes, st->read_rate);
	if (time_us(st->stop_copy_bytes, e->src.rate_limit) > st->est_stop_copy_us)
		st->est_stop_copy_us = time_us(st->stop_copy_bytes, e->src.rate_limit);
	st->ready = initial_done(dev) &&
		    within_downtime(e, st->stop_copy_bytes, st->read_rate || e->src.rate_limit,
				    st->est_stop_copy_us);
	st->devices_pending = !st->ready;
	st->reinits = dev->reinits;
}

/*
 * Sums over the devices. Devices are read in parallel, so the slowest sets the time; under a
 * stop-copy cap, so may the bytes of every device plus the packets already queued.
 */
void vu_precopy_engine_status(const struct vfio_uring_engine *e,
			      struct vfio_uring_precopy_status *st)
{
	uint64_t link_us;

	memset(st, 0, sizeof(*st));
	if (e->opts.side != VFIO_URING_SOURCE)
		return;
	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_precopy_status d;

		vu_precopy_device_status(e->devices[i], &d);
		if (!d.devices)
			continue;
		st->devices++;
		st->devices_pending += d.devices_pending;
		st->initial_bytes += d.initial_bytes;
		st->dirty_bytes += d.dirty_bytes;
		st->stop_copy_bytes += d.stop_copy_bytes;
		st->precopy_bytes += d.precopy_bytes;
		st->reinits += d.reinits;
		if (d.read_rate && (!st->read_rate || d.read_rate < st->read_rate))
			st->read_rate = d.read_rate;
		if (d.est_stop_copy_us > st->est_stop_copy_us)
			st->est_stop_copy_us = d.est_stop_copy_us;
	}
	link_us = time_us(st->stop_copy_bytes + e->src.ready, e->src.rate_limit);
	if (link_us > st->est_stop_copy_us)
		st->est_stop_copy_us = link_us;
	st->ready = st->devices && !st->devices_pending &&
		    within_downtime(e, st->stop_copy_bytes, true, st->est_stop_copy_us);
	st->live = e->src.live;
}

/* Reports a change of readiness to the caller. */
static void update_readiness(struct vfio_uring_engine *e)
{
	struct vfio_uring_precopy_status st;

	if (vu_engine_failed(e))
		return;
	vu_precopy_engine_status(e, &st);
	if ((bool)st.ready == e->src.precopy_ready)
		return;
	e->src.precopy_ready = st.ready;
	if (e->opts.precopy_ready)
		e->opts.precopy_ready(e, e->opts.precopy_opaque, &st);
}

static void wake(struct vfio_uring_device *dev)
{
	vu_source_set_state(dev, VU_SRC_IDLE);
	vu_source_device_pump(dev);
}

void vu_precopy_start(struct vfio_uring_engine *e)
{
	/* stop_copy() before start: no live phase. */
	for (unsigned i = 0; i < e->n_devices && !e->src.live; i++)
		e->src.live = is_live(e->devices[i]);
	if (!e->src.live)
		return;
	/* Nothing is in flight yet: every device can be asked. */
	for (unsigned i = 0; i < e->n_devices; i++)
		if (is_live(e->devices[i]) && ask(e->devices[i]))
			return;
	update_readiness(e);
	arm_poll_timer(e);
}

void vu_precopy_read_empty(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	vu_source_set_state(dev, VU_SRC_PRECOPY_WAIT);
	if (e->src.stop_copy) { /* stop_copy() came while the read was in flight */
		wake(dev);
		return;
	}
	/*
	 * Ask now (a device typically finds nothing just after its initial bytes: readiness
	 * without a poll's delay), but read again only at the next poll, so that a device whose
	 * report and reads disagree is not read in a loop.
	 */
	if (ask(dev))
		return;
	update_readiness(e);
	arm_poll_timer(e);
}

void vu_precopy_read_data(struct vfio_uring_device *dev, uint64_t bytes, uint64_t now)
{
	struct vfio_uring_engine *e = dev->engine;

	dev->precopy_bytes += bytes;
	if (e->src.stop_copy || now - dev->info_ns < poll_ns(e))
		return;
	if (ask(dev))
		return;
	update_readiness(e);
}

void vu_precopy_timer_done(struct vfio_uring_engine *e, int res)
{
	(void)res; /* -ETIME when it expired, -ECANCELED by stop_copy() or a failure */
	if (vu_engine_failed(e) || !e->src.live)
		return;
	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (!is_live(dev) || dev->io.in_flight)
			continue;
		if (ask(dev))
			return;
		if (dev->src_state == VU_SRC_PRECOPY_WAIT &&
		    (dev->info.initial_bytes || dev->info.dirty_bytes))
			wake(dev);
		if (vu_engine_failed(e))
			return;
	}
	update_readiness(e);
	arm_poll_timer(e);
}

void vu_precopy_set_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second)
{
	e->src.precopy_rate_limit = bytes_per_second;
	if (e->src.live)
		vu_source_rate_changed(e);
}

void vu_precopy_stop_copy(struct vfio_uring_engine *e)
{
	if (e->src.stop_copy)
		return;
	e->src.stop_copy = true;
	if (!vu_engine_started(e))
		return; /* vu_precopy_start() applies it */
	e->src.live = false;
	/* The progress timeout runs from here: before it, an idle device was no stall. */
	e->last_progress_ns = vu_now_ns();
	/* Devices waiting for the poll read at once: their reads are stop-copy reads now. */
	for (unsigned i = 0; i < e->n_devices && !vu_engine_failed(e); i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (dev->state == VFIO_URING_DEVICE_ACTIVE && dev->src_state == VU_SRC_PRECOPY_WAIT)
			wake(dev);
	}
	if (vu_engine_failed(e))
		return;
	vu_engine_cancel_op(e, &e->src.poll_timer);
	vu_source_stop_watching(e); /* from here the sends see a failed destination */
	vu_source_rate_changed(e); /* the live phase's cap gives way to the stop-copy one */
}
