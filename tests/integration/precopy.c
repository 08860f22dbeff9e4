/* SPDX-License-Identifier: MIT */
/*
 * Live pre-copy end to end (VFIO_URING_ENGINE_F_PRECOPY): a source and a destination engine
 * in this process, driven from one poll loop as a VMM would, over loopback TCP channels.
 *
 * Each device is a memfd that behaves like a VFIO data fd in PRE_COPY: the engine reads it
 * at its file position; at the end of what the "device" has produced a read returns 0 (the
 * temporary end of stream, which the engine must not take for the end); the test appends
 * dirty bytes at a rate while live, and its precopy_info reports initial_bytes (left of the
 * first `initial` bytes) and dirty_bytes (produced and not read) from the file's position.
 * At the stop the test appends the stop-copy part and calls stop_copy(): the stream then
 * ends at the file's end.
 *
 * Cases (precopy_cases.h; run one with `precopy NAME`, list them with --list):
 *   initial  initial bytes only: readiness comes once they are read; the destination writes
 *            them before switchover start; the stop-copy part follows in the same stream.
 *   small_cap initial with a destination cap of 4 packets: the pre-copy data (6 MiB) flows
 *            through it before switchover start, the peak stays within it.
 *   dirty    dirty bytes at 4 MiB/s per device for 0.5 s: they move live, readiness is
 *            reached within the downtime limit.
 *   overrun  a 2 MiB/s link (the cap in both phases) and 8 MiB/s of dirty bytes: the
 *            estimate grows and readiness is never reached; the VMM sees it and stops anyway.
 *   live_cap the live phase's cap (4 MiB/s) holds while live and lifts at stop_copy(): in
 *            1 s live the channels carry no more than the cap allows; the rest (about 20 MiB)
 *            moves far faster than the cap would let it.
 *   reinit   after readiness a device reports new initial bytes (REINIT): readiness goes back
 *            to 0, then 1 again once they are read.
 *   cancel_in_ready  cancel() from the precopy_ready callback: both sides fail, each device
 *            reports once (CANCELLED on the source).
 *   info_fails a precopy_info callback returns -EIO: that device fails with PRECOPY_INFO and
 *            its errno, the message names it, the other device falls out.
 *   wire     the bytes on the wire, captured from a source: with the extension on but no
 *            live phase (no pre-copy device, or stop_copy() before start) they are the plain
 *            QEMU stream byte for byte; with a live phase, the same bytes but for bit 31 of
 *            the VFIO flags of the packets read live.
 *   wire_off the destination without the extension rejects the first PRECOPY packet
 *            (VFIO_FLAGS) and both sides fail: the source, with nothing left to send, from
 *            its channels' watch (PEER_CLOSED).
 *   device_model  the bench's device model instead of memfds (tools/bench/devmodel.h): reads block
 *            at the device's rate in io_uring's workers and fail with ENOMSG when nothing is
 *            produced, as a VFIO data fd in PRE_COPY; initial bytes, dirty bytes at a rate,
 *            the model's stop-copy. Exits 77 without /dev/fuse or root.
 * Every case but wire_off checks every byte and the config blob on the destination.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cases.h"
#include "check.h"
#include "clock.h"
#include "common.h"
#include "data.h"
#include "devmodel.h"
#include "net.h"
#include "vfio-uring.h"

#define DEVICES 2
#define CHANNELS 2

struct device {
	char idstr[32];
	int src_fd, dst_fd;
	int ref_fd;              /* the stream the destination must end up with: src_fd, or the
				    model's backing memfd */
	uint64_t initial_end;    /* the stream's first initial_end bytes are initial bytes */
	uint64_t produced;       /* bytes in the source memfd: the stream so far */
	uint64_t rng;
	uint64_t reinit_bytes;   /* new initial bytes the device makes at its next report */
	uint8_t config[40];
	unsigned config_loads;
	bool config_intact;
	struct vfio_uring_device *src_dev, *dst_dev;
	int done_error;
	unsigned done_calls;
};

static struct device devs[DEVICES];
static struct devmodel *model; /* the devmodel case: the devices' data fds are its files */
static size_t dst_cap;         /* the destination's buffer cap (0: the default) */
static struct vfio_uring_engine *src, *dst;
static unsigned ready_calls, ready_now;
static bool cancel_when_ready;  /* cancel-in-ready: the callback cancels the migration */
static int info_error;          /* info-fails: device 1's precopy_info returns this */

/* Appends n pseudo-random bytes to the device's stream. */
static void produce(struct device *d, uint64_t n)
{
	uint8_t buf[65536];

	while (n) {
		size_t chunk = n < sizeof(buf) ? (size_t)n : sizeof(buf);

		for (size_t i = 0; i < chunk; i += 8) {
			uint64_t v = xorshift64(&d->rng);

			memcpy(buf + i, &v, chunk - i < 8 ? chunk - i : 8);
		}
		if (pwrite(d->src_fd, buf, chunk, (off_t)d->produced) != (ssize_t)chunk)
			FAIL("pwrite: %s", strerror(errno));
		d->produced += chunk;
		n -= chunk;
	}
}

/* The model's own report (the devmodel case). */
static int model_precopy_info(void *opaque, struct vfio_uring_precopy_info *info)
{
	struct device *d = opaque;
	struct devmodel_precopy_info mi;
	int ret = devmodel_precopy_info(model, (unsigned)(d - devs), &mi);

	if (ret)
		return ret;
	info->initial_bytes = mi.initial_bytes;
	info->dirty_bytes = mi.dirty_bytes;
	info->stop_copy_bytes = mi.stop_copy_bytes;
	info->flags = mi.flags & DEVMODEL_PRECOPY_REINIT ? VFIO_URING_PRECOPY_F_REINIT : 0;
	return 0;
}

static int precopy_info(void *opaque, struct vfio_uring_precopy_info *info)
{
	struct device *d = opaque;
	off_t pos = lseek(d->src_fd, 0, SEEK_CUR);

	if (pos < 0)
		return -errno;
	if (info_error && d == &devs[1])
		return info_error;
	if (d->reinit_bytes) {
		/*
		 * The device reconfigures while it reports: the engine sees REINIT before it can
		 * read the new bytes (it asks only when no read is in flight).
		 */
		produce(d, d->reinit_bytes);
		d->initial_end = d->produced;
		d->reinit_bytes = 0;
		info->flags = VFIO_URING_PRECOPY_F_REINIT;
	}
	info->initial_bytes = (uint64_t)pos < d->initial_end ? d->initial_end - (uint64_t)pos : 0;
	info->dirty_bytes =
		d->produced - ((uint64_t)pos > d->initial_end ? (uint64_t)pos : d->initial_end);
	return 0;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct device *d = opaque;

	*data = d->config;
	*len = sizeof(d->config);
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct device *d = opaque;

	d->config_loads++;
	d->config_intact = len == sizeof(d->config) && memcmp(data, d->config, len) == 0;
	return 0;
}

static void on_done(void *opaque, int error)
{
	struct device *d = opaque;

	d->done_calls++;
	d->done_error = error;
}

static void on_ready(struct vfio_uring_engine *e, void *opaque,
		     const struct vfio_uring_precopy_status *st)
{
	(void)opaque;
	CHECK(e == src, "the callback names its engine");
	ready_calls++;
	ready_now = st->ready;
	if (cancel_when_ready)
		CHECK(vfio_uring_engine_cancel(e) == 0, "cancel from precopy_ready");
}

static void setup(bool dst_extension, unsigned downtime_ms)
{
	struct vfio_uring_engine_opts so, dso;
	int src_socks[CHANNELS], dst_socks[CHANNELS];

	vfio_uring_engine_opts_init(&so, VFIO_URING_SOURCE);
	memcpy(so.uuid, test_uuid, 16);
	so.flags = VFIO_URING_ENGINE_F_PRECOPY | test_env_engine_flags();
	/* The model's files, like VFIO data fds, are read in io-wq (as slow_devices.c does). */
	if (model)
		so.flags |= VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	so.chunk_size = 256 << 10;
	so.precopy_ready = on_ready;
	so.precopy_poll_ms = 5;
	so.precopy_downtime_ms = downtime_ms;
	so.progress_timeout_ms = 20000;
	vfio_uring_engine_opts_init(&dso, VFIO_URING_DESTINATION);
	memcpy(dso.uuid, test_uuid, 16);
	dso.flags = (dst_extension ? VFIO_URING_ENGINE_F_PRECOPY : 0) | test_env_engine_flags();
	dso.progress_timeout_ms = 20000;
	if (dst_cap) {
		dso.buffer_cap = dst_cap;
		dso.max_packet_size = (256 << 10) + 12; /* one chunk and its VFIO header */
	}
	ASSERT(vfio_uring_engine_create(&so, &src) == 0, "source");
	ASSERT(vfio_uring_engine_create(&dso, &dst) == 0, "destination");
	ASSERT(tcp_loopback_channels(src_socks, dst_socks, CHANNELS, false) == 0, "channels");
	for (unsigned i = 0; i < CHANNELS; i++) {
		ASSERT(vfio_uring_engine_add_channel(src, src_socks[i]) == (int)i, "src channel");
		ASSERT(vfio_uring_engine_add_channel(dst, dst_socks[i]) == (int)i, "dst channel");
	}
	for (unsigned i = 0; i < DEVICES; i++) {
		struct device *d = &devs[i];
		struct vfio_uring_device_opts o;

		snprintf(d->idstr, sizeof(d->idstr), "0000:00:%02x.0/vfio", i + 1);
		if (!model)
			d->src_fd = d->ref_fd = memfd_create("src", MFD_CLOEXEC);
		d->dst_fd = memfd_create("dst", MFD_CLOEXEC);
		ASSERT(d->src_fd >= 0 && d->dst_fd >= 0, "memfd");
		d->rng = 0x9e3779b97f4a7c15ull * (i + 1);
		for (size_t k = 0; k < sizeof(d->config); k++)
			d->config[k] = (uint8_t)(i * 31 + k);
		vfio_uring_device_opts_init(&o);
		o.idstr = d->idstr;
		o.instance_id = i;
		o.opaque = d;
		o.done = on_done;
		o.data_fd = d->src_fd;
		o.save_config = save_config;
		o.precopy_info = model ? model_precopy_info : precopy_info;
		ASSERT(vfio_uring_engine_add_device(src, &o, &d->src_dev) == 0, "src device");
		o.data_fd = d->dst_fd;
		o.save_config = NULL;
		o.precopy_info = NULL;
		o.load_config = load_config;
		ASSERT(vfio_uring_engine_add_device(dst, &o, &d->dst_dev) == 0, "dst device");
	}
}

/* One turn of a VMM's loop: waits up to ms for either engine, then processes both. */
static void turn(int ms)
{
	struct pollfd p[2] = { { .fd = vfio_uring_engine_get_fd(src), .events = POLLIN },
			       { .fd = vfio_uring_engine_get_fd(dst), .events = POLLIN } };

	poll(p, 2, ms);
	vfio_uring_engine_process(src);
	vfio_uring_engine_process(dst);
}

static struct vfio_uring_device_status status(const struct vfio_uring_device *dev)
{
	struct vfio_uring_device_status st;

	ASSERT(vfio_uring_device_get_status(dev, &st, sizeof(st)) == 0, "status");
	return st;
}

static struct vfio_uring_precopy_status precopy_status(void)
{
	struct vfio_uring_precopy_status st;

	ASSERT(vfio_uring_engine_get_precopy_status(src, &st, sizeof(st)) == 0, "precopy status");
	return st;
}

/*
 * The live phase: turns the loop for ms milliseconds while every device produces dirty bytes
 * at rate bytes per second (0: none); stops early when until_ready and readiness came.
 */
static uint64_t dirty_t0; /* when the devices started producing dirty bytes */

static void live_phase(unsigned ms, uint64_t rate, bool until_ready)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;

	while (now_ns() < end && !(until_ready && ready_now)) {
		turn(2);
		if (rate)
			for (unsigned i = 0; i < DEVICES; i++) {
				uint64_t due = (now_ns() - dirty_t0) * rate / 1000000000u;

				if (due > devs[i].produced - devs[i].initial_end)
					produce(&devs[i], due - (devs[i].produced - devs[i].initial_end));
			}
		CHECK(vfio_uring_engine_error(src, NULL) == 0 && vfio_uring_engine_error(dst, NULL) == 0,
		      "no failure while live");
		if (check_failures)
			FAIL("live phase failed");
	}
}

/* Waits (the loop turning) until the destination has written every byte the source read live. */
static void wait_destination_caught_up(void)
{
	uint64_t deadline = now_ms() + 10000;

	for (;;) {
		bool all = true;

		for (unsigned i = 0; i < DEVICES; i++)
			all &= status(devs[i].dst_dev).data_bytes == status(devs[i].src_dev).data_bytes;
		if (all)
			return;
		if (now_ms() > deadline)
			FAIL("the destination did not write the pre-copy data before switchover start");
		turn(2);
	}
}

/* The stop: the stop-copy part appended, stop_copy(), switchover start, then to the end. */
static void stop_and_finish(uint64_t stop_copy_bytes)
{
	uint64_t deadline = now_ms() + 30000;
	int rs = 0, rd = 0;

	for (unsigned i = 0; i < DEVICES; i++)
		if (model)
			CHECK(devmodel_stop_copy(model, i) == 0, "the model's stop-copy");
		else
			produce(&devs[i], stop_copy_bytes + i * 4097);
	CHECK(vfio_uring_engine_stop_copy(src) == 0, "stop_copy");
	CHECK(vfio_uring_engine_switchover_start(dst) == 0, "switchover_start");
	while (now_ms() < deadline) {
		turn(5);
		rs = vfio_uring_engine_process(src);
		rd = vfio_uring_engine_process(dst);
		if ((rs != 0 && rd != 0) || rs < 0 || rd < 0)
			break;
	}
	CHECK(rs == 1 && rd == 1, "both sides done (source %d, destination %d)", rs, rd);
	for (unsigned i = 0; i < DEVICES; i++) {
		struct device *d = &devs[i];
		uint64_t at = 0;

		if (model)
			CHECK(devmodel_stream_length(model, i, &d->produced) == 0, "stream length");
		CHECK(status(d->dst_dev).data_bytes == d->produced,
		      "device %u: %llu bytes written, the stream had %llu", i,
		      (unsigned long long)status(d->dst_dev).data_bytes,
		      (unsigned long long)d->produced);
		CHECK(test_same_bytes(d->ref_fd, d->dst_fd, d->produced, &at),
		      "device %u: bytes differ in MiB %llu", i, (unsigned long long)at);
		CHECK(d->config_loads == 1 && d->config_intact, "device %u: config loaded once, intact", i);
	}
}

static void teardown(void)
{
	vfio_uring_engine_destroy(src);
	vfio_uring_engine_destroy(dst);
	for (unsigned i = 0; i < DEVICES && devs[i].dst_fd > 0; i++) { /* set up (not wire) */
		close(devs[i].src_fd);
		close(devs[i].dst_fd);
		if (devs[i].ref_fd != devs[i].src_fd)
			close(devs[i].ref_fd);
	}
	if (model)
		CHECK(devmodel_destroy(model, NULL) == 0, "the model's server exits cleanly");
}

static void start(uint64_t initial)
{
	for (unsigned i = 0; i < DEVICES && !model; i++) {
		produce(&devs[i], initial + i * 1000);
		devs[i].initial_end = devs[i].produced;
	}
	dirty_t0 = now_ns();
	ASSERT(vfio_uring_engine_start(dst) == 0, "start destination");
	ASSERT(vfio_uring_engine_start(src) == 0, "start source");
}

static void initial(void)
{
	struct vfio_uring_precopy_status st;

	setup(true, 0);
	start(3 << 20);
	live_phase(10000, 0, true);
	st = precopy_status();
	CHECK(ready_calls == 1 && ready_now, "readiness reported once (%u calls)", ready_calls);
	CHECK(st.ready && st.devices == DEVICES && st.devices_pending == 0 && st.live,
	      "ready %u devices %u pending %u live %u", st.ready, st.devices, st.devices_pending,
	      st.live);
	CHECK(st.initial_bytes == 0 && st.dirty_bytes == 0, "nothing left: %llu initial, %llu dirty",
	      (unsigned long long)st.initial_bytes, (unsigned long long)st.dirty_bytes);
	CHECK(st.precopy_bytes == devs[0].produced + devs[1].produced,
	      "every initial byte read live (%llu)", (unsigned long long)st.precopy_bytes);
	wait_destination_caught_up();
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK(status(devs[i].dst_dev).data_bytes == devs[i].initial_end,
		      "device %u: its initial bytes written before switchover start", i);
	stop_and_finish(1 << 20);
	st = precopy_status();
	CHECK(!st.live && st.precopy_bytes == devs[0].initial_end + devs[1].initial_end,
	      "live %u, precopy bytes %llu", st.live, (unsigned long long)st.precopy_bytes);
}

static void small_cap(void)
{
	struct vfio_uring_engine_stats st;

	dst_cap = 4 * (260 << 10); /* 4 packets of a chunk, each charged in 4 KiB granules */
	initial();
	ASSERT(vfio_uring_engine_get_stats(dst, &st, sizeof(st)) == 0, "stats");
	CHECK(st.buffer_peak <= dst_cap, "buffer peak %llu within the cap %zu",
	      (unsigned long long)st.buffer_peak, dst_cap);
}

static void dirty(void)
{
	struct vfio_uring_precopy_status st;

	setup(true, 500);
	start(1 << 20);
	live_phase(500, 4 << 20, false);
	st = precopy_status();
	CHECK(st.ready && ready_now, "ready within the downtime limit (est %llu us)",
	      (unsigned long long)st.est_stop_copy_us);
	CHECK(st.precopy_bytes > devs[0].initial_end + devs[1].initial_end + (1 << 20),
	      "dirty bytes moved live: %llu bytes", (unsigned long long)st.precopy_bytes);
	CHECK(st.read_rate > 0, "a read rate was measured");
	stop_and_finish(256 << 10);
}

static void overrun(void)
{
	struct vfio_uring_precopy_status early, late;

	setup(true, 200);
	/* The link: 2 MiB/s in both phases, 8 MiB/s of dirty bytes per device. */
	CHECK(vfio_uring_engine_set_rate_limit(src, 2 << 20) == 0, "cap");
	CHECK(vfio_uring_engine_set_precopy_rate_limit(src, 2 << 20) == 0, "live cap");
	start(1 << 20);
	live_phase(600, 8 << 20, false);
	early = precopy_status();
	live_phase(600, 8 << 20, false);
	late = precopy_status();
	CHECK(!late.ready && ready_calls == 0, "never ready (%u calls)", ready_calls);
	CHECK(late.devices_pending == DEVICES, "both devices pending (%u)", late.devices_pending);
	CHECK(late.stop_copy_bytes > early.stop_copy_bytes,
	      "the estimate grows: %llu then %llu bytes", (unsigned long long)early.stop_copy_bytes,
	      (unsigned long long)late.stop_copy_bytes);
	CHECK(late.est_stop_copy_us > 200000, "estimated stop-copy %llu us is over the limit",
	      (unsigned long long)late.est_stop_copy_us);
	/* The VMM sees it and stops anyway, lifting the cap for the stop-copy. */
	CHECK(vfio_uring_engine_set_rate_limit(src, 0) == 0, "cap lifted");
	stop_and_finish(64 << 10);
}

static void live_cap(void)
{
	struct vfio_uring_engine_stats stats;
	uint64_t t0, live_ns, stop_ms, allowed;

	setup(true, 0);
	CHECK(vfio_uring_engine_set_precopy_rate_limit(src, 4 << 20) == 0, "live cap");
	t0 = now_ns();
	start(4 << 20);
	live_phase(1000, 0, false);
	live_ns = now_ns() - t0;
	ASSERT(vfio_uring_engine_get_stats(src, &stats, sizeof(stats)) == 0, "stats");
	/* The cap's bytes for the time, its 20 ms of slack, a packet started at the end. */
	allowed = (4u << 20) * (live_ns / 1000000u) / 1000u + (4u << 20) / 50u + (256u << 10) +
		  2 * 4096u;
	CHECK(stats.wire_bytes <= allowed && stats.wire_bytes >= (3u << 20),
	      "the live phase kept to its cap: %llu bytes in %llu ms (at most %llu)",
	      (unsigned long long)stats.wire_bytes, (unsigned long long)(live_ns / 1000000u),
	      (unsigned long long)allowed);
	t0 = now_ms();
	stop_and_finish(8 << 20);
	stop_ms = now_ms() - t0;
	CHECK(stop_ms < 2500, "the stop-copy ran uncapped: %llu ms for about 20 MiB (5 s at the cap)",
	      (unsigned long long)stop_ms);
}

static void reinit(void)
{
	struct vfio_uring_precopy_status st;

	setup(true, 0);
	start(512 << 10);
	live_phase(10000, 0, true);
	CHECK(ready_now && ready_calls == 1, "ready first");
	/* Device 1 reconfigures: new initial bytes, reported with REINIT. */
	devs[1].reinit_bytes = 300 << 10;
	live_phase(2000, 0, false);
	st = precopy_status();
	CHECK(ready_calls == 3 && ready_now, "ready, not ready, ready again (%u calls)", ready_calls);
	CHECK(st.reinits == 1, "one REINIT counted (%llu)", (unsigned long long)st.reinits);
	stop_and_finish(100 << 10);
}

/* Turns the loop until both engines have failed and every device has reported FAILED. */
static void run_until_failed(void)
{
	uint64_t deadline = now_ms() + 10000;

	while (now_ms() < deadline) {
		bool all = vfio_uring_engine_error(src, NULL) < 0 &&
			   vfio_uring_engine_error(dst, NULL) < 0;

		for (unsigned i = 0; i < DEVICES; i++)
			all &= status(devs[i].src_dev).state == VFIO_URING_DEVICE_FAILED &&
			       status(devs[i].dst_dev).state == VFIO_URING_DEVICE_FAILED;
		if (all)
			return;
		turn(5);
	}
	CHECK(0, "both sides and every device failed within 10 s");
}

/* cancel() from precopy_ready: the source fails CANCELLED, each device reports once. */
static void cancel_in_ready(void)
{
	setup(true, 0);
	cancel_when_ready = true;
	start(1 << 20);
	run_until_failed();
	CHECK(ready_calls == 1, "readiness reported once (%u)", ready_calls);
	CHECK(vfio_uring_engine_reason(src) == VFIO_URING_REASON_CANCELLED, "source reason %s",
	      vfio_uring_reason_name(vfio_uring_engine_reason(src)));
	for (unsigned i = 0; i < DEVICES; i++) {
		CHECK(devs[i].done_calls == 2, "device %u: done once per side (%u calls)", i,
		      devs[i].done_calls);
		CHECK(status(devs[i].src_dev).error == -ECANCELED, "device %u: source error %d", i,
		      status(devs[i].src_dev).error);
	}
}

/* precopy_info fails: that device fails with PRECOPY_INFO and the callback's errno. */
static void info_fails(void)
{
	struct vfio_uring_device_status st;
	const char *msg = "";

	setup(true, 0);
	info_error = -EIO;
	start(1 << 20);
	run_until_failed();
	CHECK(vfio_uring_engine_reason(src) == VFIO_URING_REASON_PRECOPY_INFO &&
	      vfio_uring_engine_error(src, &msg) == -EIO,
	      "source: reason %s, error %d", vfio_uring_reason_name(vfio_uring_engine_reason(src)),
	      vfio_uring_engine_error(src, NULL));
	CHECK(strstr(msg, devs[1].idstr) && strstr(msg, "precopy_info"), "message: %s", msg);
	st = status(devs[1].src_dev);
	CHECK(st.reason == VFIO_URING_REASON_PRECOPY_INFO && st.error == -EIO,
	      "the device that failed: reason %s", vfio_uring_reason_name(st.reason));
	st = status(devs[0].src_dev);
	CHECK(st.reason == VFIO_URING_REASON_FALLOUT, "the other device: reason %s",
	      vfio_uring_reason_name(st.reason));
}

enum capture_mode { PLAIN, FLAG_ONLY, STOPPED_BEFORE_START, LIVE };

/* Everything a source puts on its one channel for a 3 MiB device, in the given mode. */
static uint8_t *capture(enum capture_mode mode, size_t *len)
{
	struct vfio_uring_engine_opts so;
	struct vfio_uring_device_opts o;
	struct device d = { .initial_end = 3 << 20 };
	size_t cap = 8 << 20, n = 0;
	uint8_t *buf = malloc(cap);
	uint64_t deadline = now_ms() + 20000;
	int sv[2], ret = 0;
	bool stopped = false;

	ASSERT(buf && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	d.src_fd = d.ref_fd = pattern_memfd("src", 0, 3 << 20, 0x77);
	d.produced = 3 << 20;
	ASSERT(d.src_fd >= 0, "memfd");
	vfio_uring_engine_opts_init(&so, VFIO_URING_SOURCE);
	memcpy(so.uuid, test_uuid, 16);
	so.chunk_size = 256 << 10;
	so.flags = (mode == PLAIN ? 0 : VFIO_URING_ENGINE_F_PRECOPY) | test_env_engine_flags();
	so.precopy_poll_ms = 2;
	ASSERT(vfio_uring_engine_create(&so, &src) == 0, "source");
	ASSERT(vfio_uring_engine_add_channel(src, sv[0]) == 0, "channel");
	vfio_uring_device_opts_init(&o);
	o.idstr = "0000:00:03.0/vfio";
	o.data_fd = d.src_fd;
	o.opaque = &d;
	o.save_config = save_config;
	o.precopy_info = mode == STOPPED_BEFORE_START || mode == LIVE ? precopy_info : NULL;
	ASSERT(vfio_uring_engine_add_device(src, &o, &d.src_dev) == 0, "device");
	if (mode == STOPPED_BEFORE_START)
		ASSERT(vfio_uring_engine_stop_copy(src) == 0, "stop_copy before start");
	ASSERT(vfio_uring_engine_start(src) == 0, "start");
	while (now_ms() < deadline) {
		struct pollfd p[2] = { { .fd = vfio_uring_engine_get_fd(src), .events = POLLIN },
				       { .fd = sv[1], .events = POLLIN } };
		ssize_t got;

		poll(p, 2, 2);
		ret = vfio_uring_engine_process(src);
		while ((got = recv(sv[1], buf + n, cap - n, MSG_DONTWAIT)) > 0)
			n += (size_t)got;
		/* Live: every byte read, the device waits for more; the VMM stops the VM. */
		if (mode == LIVE && !stopped && status(d.src_dev).data_bytes == d.produced) {
			stopped = true;
			ASSERT(vfio_uring_engine_stop_copy(src) == 0, "stop_copy");
		}
		if (ret != 0)
			break;
	}
	CHECK(ret == 1, "the source finished (%d)", ret);
	vfio_uring_engine_destroy(src);
	src = NULL;
	close(sv[0]); /* the peer's EOF after the last byte */
	while (n < cap) {
		ssize_t got = recv(sv[1], buf + n, cap - n, 0);

		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(sv[1]);
	close(d.src_fd);
	*len = n;
	return buf;
}

/* Clears the PRECOPY bit of every packet's VFIO flags; returns how many packets had it. */
static unsigned clear_precopy_flags(uint8_t *p, size_t len)
{
	unsigned flagged = 0;

	for (size_t off = 64; off + 288 <= len;) {
		uint32_t size = (uint32_t)p[off + 272] << 24 | (uint32_t)p[off + 273] << 16 |
				(uint32_t)p[off + 274] << 8 | p[off + 275];
		uint8_t *vflags = p + off + 276 + 8; /* big-endian: bit 31 is the first byte's top */

		flagged += (vflags[0] & 0x80) != 0;
		vflags[0] &= 0x7f;
		off += 276 + size;
	}
	return flagged;
}

static void wire(void)
{
	size_t plain_len, len;
	uint8_t *plain = capture(PLAIN, &plain_len), *other;

	/* handshake + 12 packets of 256 KiB + the config packet */
	CHECK(plain_len == 64 + 12 * (288 + (256 << 10)) + 288 + 16 + sizeof(devs[0].config),
	      "the plain stream's length: %zu", plain_len);
	other = capture(FLAG_ONLY, &len);
	CHECK(len == plain_len && memcmp(other, plain, len) == 0,
	      "the extension on, no pre-copy device: QEMU's bytes exactly");
	free(other);
	other = capture(STOPPED_BEFORE_START, &len);
	CHECK(len == plain_len && memcmp(other, plain, len) == 0,
	      "a pre-copy device stopped before start: QEMU's bytes exactly");
	free(other);
	other = capture(LIVE, &len);
	CHECK(len == plain_len, "live: the same length (%zu)", len);
	if (len == plain_len) {
		CHECK(clear_precopy_flags(other, len) == 12, "live: every data packet has PRECOPY");
		CHECK(memcmp(other, plain, len) == 0, "live: the same bytes but for that bit");
	}
	free(other);
	free(plain);
}

static void wire_off(void)
{
	uint64_t deadline = now_ms() + 10000;
	const char *msg = "";

	setup(false, 0);
	start(1 << 20);
	while (now_ms() < deadline && vfio_uring_engine_error(dst, NULL) == 0)
		turn(5);
	CHECK(vfio_uring_engine_reason(dst) == VFIO_URING_REASON_VFIO_FLAGS,
	      "a destination without the extension rejects PRECOPY packets: reason %s",
	      vfio_uring_reason_name(vfio_uring_engine_reason(dst)));
	vfio_uring_engine_error(dst, &msg);
	CHECK(strstr(msg, "unknown flags 0x80000000") != NULL, "message: %s", msg);
	/* The source learns it from its channels' watch, though it has nothing to send. */
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && vfio_uring_engine_error(src, NULL) == 0)
		turn(5);
	CHECK(vfio_uring_engine_error(src, NULL) < 0, "the source fails too");
	CHECK(vfio_uring_engine_reason(src) == VFIO_URING_REASON_PEER_CLOSED ||
	      vfio_uring_engine_reason(src) == VFIO_URING_REASON_SOCKET_SEND,
	      "the source's reason: %s", vfio_uring_reason_name(vfio_uring_engine_reason(src)));
	/* A device is FAILED once its read in flight has drained. */
	deadline = now_ms() + 5000;
	while (now_ms() < deadline && (status(devs[0].src_dev).state == VFIO_URING_DEVICE_ACTIVE ||
				       status(devs[1].src_dev).state == VFIO_URING_DEVICE_ACTIVE))
		turn(5);
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK(status(devs[i].src_dev).state == VFIO_URING_DEVICE_FAILED,
		      "source device %u FAILED (resumable)", i);
}

static void device_model(void)
{
	struct devmodel_file files[DEVICES];
	struct vfio_uring_precopy_status st;
	char why[256];

	if (devmodel_available(why, sizeof(why))) {
		printf("SKIP: %s\n", why);
		exit(77);
	}
	for (unsigned i = 0; i < DEVICES; i++) {
		devs[i].ref_fd = pattern_memfd("backing", 0, 8 << 20, 0x51ull * (i + 1));
		ASSERT(devs[i].ref_fd >= 0, "backing memfd");
		/* 2 MiB initial, 1 MiB/s dirty, 1 MiB more at the stop, read at 16 MiB/s. */
		files[i] = (struct devmodel_file){ .kind = DEVMODEL_PRECOPY,
						   .backing_fd = devs[i].ref_fd,
						   .rate = 16 << 20,
						   .precopy_initial = 2 << 20,
						   .dirty_rate = 1 << 20,
						   .stop_copy_bytes = 1 << 20 };
	}
	ASSERT(devmodel_create(files, DEVICES, &model, why, sizeof(why)) == 0, "model: %s", why);
	for (unsigned i = 0; i < DEVICES; i++) {
		devs[i].src_fd = devmodel_open(model, i);
		ASSERT(devs[i].src_fd >= 0, "open the model's file %u", i);
	}
	setup(true, 0);
	start(0);
	live_phase(10000, 0, true);
	CHECK(ready_now && ready_calls == 1, "ready once the initial bytes are read");
	live_phase(300, 0, false); /* dirty bytes keep coming and move live */
	st = precopy_status();
	CHECK(st.precopy_bytes > 2 * (2 << 20), "initial and dirty bytes moved live: %llu",
	      (unsigned long long)st.precopy_bytes);
	CHECK(st.read_rate > (4 << 20) && st.read_rate < (40 << 20),
	      "the measured read rate is about the device's 16 MiB/s: %llu B/s",
	      (unsigned long long)st.read_rate);
	wait_destination_caught_up();
	stop_and_finish(0);
}

#define CASE(f) TEST_CASE(f)
static const struct test_case cases[] = {
#include "precopy_cases.h"
};

int main(int argc, char **argv)
{
	int rc = run_cases(cases, ARRAY_SIZE(cases), argc, argv, false);

	if (rc != CASES_RAN)
		return rc;
	teardown();
	return check_result();
}
