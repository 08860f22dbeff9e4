/* SPDX-License-Identifier: MIT */
/*
 * The destination side (destination.c), driven deterministically: destination.c is included
 * here and its neighbours in engine.c are stubs, so completions are scripted (bytes copied
 * where a receive's SQE points, a write completed with the length the test chooses) instead
 * of coming from sockets and a ring.
 *
 * The memory policy: parking when a packet does not fit, flow control before switchover
 * (parked channels wait, nothing fails), the reserve that lets the packet filling a device's
 * next gap pass the parked ones, parked channels resuming as writes free room, and the stall
 * that no write can resolve after switchover failing with BUFFER_CAP.
 *
 * The state machines, every transition asserted where it happens: a device's (enum
 * vu_dst_state: RECEIVING <-> WRITING, RECEIVING (-> WAIT_CALLER) -> LOADING, then DONE or
 * FAILED) and a channel's (enum vu_recv_state: HANDSHAKE -> HEADER -> (PARKED ->) PAYLOAD ->
 * HEADER, HEADER -> CLOSED; a close anywhere else fails).
 *
 * One meson test per case (dest-policy-NAME); the cases are listed in dest_policy_cases.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/destination.c"

#include "cases.h"
#include "check.h"

/* ---- stubs of engine.c ---- */

static struct io_uring_sqe sqe_slot;

struct submitted {
	struct vu_op *op;
	struct io_uring_sqe sqe;
};
static struct submitted submitted[64];
static enum vfio_uring_reason failed_reason;
static char failed_message[VU_MESSAGE_SIZE];
static struct vfio_uring_device *failed_dev;  /* the device and channel the failure names */
static struct vu_channel *failed_chan;
static int failed_err;                        /* the call's errno, 0 for a reason's own */

uint64_t vu_now_ns(void)
{
	return 0;
}

const char *vu_side_name(const struct vfio_uring_engine *e)
{
	(void)e;
	return "destination";
}

struct io_uring_sqe *vu_engine_get_sqe(struct vfio_uring_engine *e)
{
	(void)e;
	memset(&sqe_slot, 0, sizeof(sqe_slot));
	return &sqe_slot;
}

void vu_op_submitted(struct vfio_uring_engine *e, struct vu_op *op, struct io_uring_sqe *sqe)
{
	io_uring_sqe_set_data(sqe, op);
	op->in_flight = true;
	e->in_flight++;
	if (op->kind == VU_OP_DEVICE_WRITE)
		e->device_io++;
	for (size_t i = 0; i < sizeof(submitted) / sizeof(submitted[0]); i++) {
		if (!submitted[i].op || submitted[i].op == op) {
			submitted[i] = (struct submitted){ op, *sqe };
			return;
		}
	}
	abort();
}

void vu_engine_set_state(struct vfio_uring_engine *e, enum vu_engine_state state)
{
	e->state = state;
}

void vu_engine_fail(struct vfio_uring_engine *e, struct vfio_uring_device *dev,
		    struct vu_channel *chan, enum vfio_uring_reason reason, int err,
		    const char *fmt, ...)
{
	va_list ap;

	if (e->state == VU_ENGINE_FAILED)
		return;
	e->state = VU_ENGINE_FAILED;
	failed_reason = reason;
	failed_dev = dev;
	failed_chan = chan;
	failed_err = err;
	va_start(ap, fmt);
	vsnprintf(failed_message, sizeof(failed_message), fmt, ap);
	va_end(ap);
}

/* As engine.c: the last device DONE makes the engine FINISHING and calls the side's finish. */
void vu_device_done(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	dev->state = VFIO_URING_DEVICE_DONE;
	e->ops->device_stopped(dev);
	if (--e->devices_active == 0 && e->state == VU_ENGINE_RUNNING) {
		e->state = VU_ENGINE_FINISHING;
		e->ops->finish(e);
	}
}

/* ---- a scripted engine ---- */

#define DATA 16384u /* every data packet's payload */
#define MAX_PACKET (DATA + VU_WIRE_VFIO_HEADER_SIZE)

/* Log of the packets whose writes completed, in order. */
static uint32_t written[16];
static unsigned n_written;

/* What the device's load_config callback saw, and what it returns. */
static struct {
	unsigned calls;
	int ret;
	size_t len;
	uint8_t blob[64];
} loads;

static int scripted_load_config(void *opaque, const void *data, size_t len)
{
	(void)opaque;
	loads.calls++;
	loads.len = len;
	memcpy(loads.blob, data, len < sizeof(loads.blob) ? len : sizeof(loads.blob));
	return loads.ret;
}

static struct vfio_uring_engine *engine_new(unsigned channels, size_t cap)
{
	struct vfio_uring_engine *e = calloc(1, sizeof(*e));
	struct vfio_uring_device *dev = calloc(1, sizeof(*dev));

	memset(submitted, 0, sizeof(submitted));
	memset(&loads, 0, sizeof(loads));
	n_written = 0;
	failed_reason = VFIO_URING_REASON_NONE;
	failed_message[0] = '\0';
	failed_dev = NULL;
	failed_chan = NULL;
	failed_err = 0;
	vfio_uring_engine_opts_init(&e->opts, VFIO_URING_DESTINATION);
	e->opts.buffer_cap = cap;
	e->opts.max_packet_size = MAX_PACKET;
	e->ops = &vu_destination_ops;
	e->state = VU_ENGINE_RUNNING;
	e->ops->init(e);
	if (vu_pool_init(&e->pool, cap, MAX_PACKET) ||
	    vu_reorder_init(&e->reorder, vu_pool_max_buffers(&e->pool)))
		abort();
	e->channels = calloc(channels, sizeof(*e->channels));
	e->n_channels = channels;
	for (unsigned i = 0; i < channels; i++)
		e->channels[i] = (struct vu_channel){ .engine = e, .index = i, .fd = -1,
						     .io = { .kind = VU_OP_CHANNEL_RECV,
							     .owner = &e->channels[i] } };
	e->devices = calloc(1, sizeof(*e->devices));
	e->devices[0] = dev;
	e->n_devices = 1;
	*dev = (struct vfio_uring_device){ .engine = e, .data_fd = -1, .instance_id = 7,
					   .state = VFIO_URING_DEVICE_ACTIVE,
					   .config_idx = VU_WIRE_VFIO_IDX_INVALID,
					   .stopcopy_idx_min = VU_WIRE_VFIO_IDX_INVALID,
					   .load_config = scripted_load_config,
					   .io = { .kind = VU_OP_DEVICE_WRITE, .owner = dev } };
	strcpy(dev->idstr, "0000:00:01.0/vfio");
	e->devices_active = 1;
	CHECK(e->ops->start(e) == 0, "start");
	return e;
}

static void engine_free(struct vfio_uring_engine *e)
{
	e->state = VU_ENGINE_FAILED; /* teardown: what the engine does before release_buffers */
	e->ops->release_buffers(e);
	CHECK(vu_pool_destroy(&e->pool) == 0, "every buffer back in the pool");
	vu_reorder_destroy(&e->reorder);
	free(e->devices[0]);
	free(e->devices);
	free(e->channels);
	free(e);
}

static struct io_uring_sqe *pending(struct vu_op *op)
{
	for (size_t i = 0; i < sizeof(submitted) / sizeof(submitted[0]) && submitted[i].op; i++)
		if (submitted[i].op == op)
			return op->in_flight ? &submitted[i].sqe : NULL;
	return NULL;
}

/*
 * Completes the channel's receive with the first len of these bytes: all it asked for
 * (whole), or less (a short receive, or 0: the peer closed the connection).
 */
static void receive(struct vu_channel *chan, const void *bytes, size_t len, bool whole)
{
	struct vfio_uring_engine *e = chan->engine;
	struct io_uring_sqe *sqe = pending(&chan->io);

	CHECK(sqe && sqe->opcode == IORING_OP_RECV && (whole ? sqe->len == len : sqe->len > len),
	      "channel %u: a receive of %s%zu bytes in flight (%u)", chan->index,
	      whole ? "" : "more than ", len, sqe ? sqe->len : 0);
	if (!sqe || (whole ? sqe->len != len : sqe->len <= len))
		return;
	if (len)
		memcpy((void *)(uintptr_t)sqe->addr, bytes, len);
	chan->io.in_flight = false;
	e->in_flight--;
	e->ops->channel_io_done(chan, (int)len);
}

/* Completes the channel's receive with these bytes (exactly what it asked for). */
static void deliver(struct vu_channel *chan, const void *bytes, size_t len)
{
	receive(chan, bytes, len, true);
}

/* The peer closes the connection: the receive in flight returns 0. */
static void peer_close(struct vu_channel *chan)
{
	receive(chan, NULL, 0, false);
}

/* The size of the receive in flight on the channel (0: none). */
static size_t receiving(struct vu_channel *chan)
{
	struct io_uring_sqe *sqe = pending(&chan->io);

	return sqe && sqe->opcode == IORING_OP_RECV ? sqe->len : 0;
}

static void handshake(struct vu_channel *chan)
{
	uint8_t hs[VU_WIRE_HANDSHAKE_SIZE];

	vu_wire_encode_handshake(hs, chan->engine->opts.uuid, (uint8_t)chan->index);
	deliver(chan, hs, sizeof(hs));
}

/* The headers of data packet idx with VFIO flags (the payload follows with payload()). */
static void headers_flags(struct vu_channel *chan, uint32_t idx, uint32_t flags)
{
	struct vfio_uring_device *dev = chan->engine->devices[0];
	uint8_t h[VU_WIRE_PACKET_OVERHEAD];

	vu_wire_encode_header(h, dev->idstr, dev->instance_id, MAX_PACKET);
	vu_wire_encode_vfio_header(h + VU_WIRE_HEADER_SIZE, idx, flags);
	deliver(chan, h, sizeof(h));
}

static void headers(struct vu_channel *chan, uint32_t idx)
{
	headers_flags(chan, idx, 0);
}

static void payload(struct vu_channel *chan)
{
	static uint8_t data[DATA];

	deliver(chan, data, sizeof(data));
}

/* The config packet idx, whose blob is the string `blob`: both headers, then its data. */
static void config_packet(struct vu_channel *chan, uint32_t idx, const char *blob)
{
	struct vfio_uring_device *dev = chan->engine->devices[0];
	size_t len = VU_WIRE_CONFIG_FRAMING + strlen(blob);
	uint8_t h[VU_WIRE_PACKET_OVERHEAD], data[VU_WIRE_CONFIG_FRAMING + 64];

	vu_wire_encode_header(h, dev->idstr, dev->instance_id,
			      (uint32_t)(VU_WIRE_VFIO_HEADER_SIZE + len));
	vu_wire_encode_vfio_header(h + VU_WIRE_HEADER_SIZE, idx, VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	deliver(chan, h, sizeof(h));
	memcpy(data + 8, blob, strlen(blob));
	vu_wire_frame_config(data, strlen(blob));
	deliver(chan, data, len);
}

/* Completes the device's write with n bytes (0: all it asked for); false when none was in flight. */
static bool write_some(struct vfio_uring_device *dev, unsigned n)
{
	struct vfio_uring_engine *e = dev->engine;
	struct io_uring_sqe *sqe = pending(&dev->io);
	uint32_t idx;
	bool whole;

	if (!sqe || sqe->opcode != IORING_OP_WRITE)
		return false;
	idx = dev->writing->idx;
	n = n ? n : sqe->len;
	whole = dev->write_offset + n == dev->writing->len;
	dev->io.in_flight = false;
	e->in_flight--;
	e->device_io--;
	e->ops->device_io_done(dev, (int)n);
	if (whole && n_written < sizeof(written) / sizeof(written[0]))
		written[n_written++] = idx;
	return true;
}

/* Completes the device's write in full; false when none was in flight. */
static bool complete_write(struct vfio_uring_device *dev)
{
	return write_some(dev, 0);
}

/*
 * cap 64 KiB, one channel, reserve = one largest packet (16 KiB + 12 bytes): packets that do
 * not fill the device's next gap (idx 0) may use the rest of the cap. Two fit, the third
 * parks its channel. Before switchover that is flow control: the channel waits, nothing fails.
 * After switchover nothing can be written (idx 0 is behind the parked packet in the same
 * stream) and no other channel can bring it: the stall no write can resolve fails at once.
 */
static void park_then_stall(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];

	handshake(chan);
	CHECK(chan->recv_state == VU_RECV_HEADER, "handshake accepted: %d", chan->recv_state);
	for (uint32_t idx = 1; idx <= 2; idx++) {
		headers(chan, idx);
		CHECK(chan->recv_state == VU_RECV_PAYLOAD, "idx %u: its payload is received", idx);
		payload(chan);
	}
	CHECK(e->devices[0]->queued == 2, "two packets queued: %u", e->devices[0]->queued);
	headers(chan, 3);
	CHECK(chan->recv_state == VU_RECV_PARKED && e->dst.parked == 1 && !chan->io.in_flight,
	      "idx 3 does not fit beside the reserve: the channel parks (state %d)",
	      chan->recv_state);
	CHECK(e->state == VU_ENGINE_RUNNING, "before switchover parking is flow control: %s",
	      failed_message);
	CHECK(!pending(&e->devices[0]->io), "nothing is written before switchover");

	e->ops->switchover(e);
	CHECK(e->state == VU_ENGINE_FAILED && failed_reason == VFIO_URING_REASON_BUFFER_CAP,
	      "after switchover the stall fails with BUFFER_CAP (reason %d: %s)", failed_reason,
	      failed_message);
	engine_free(e);
}

/*
 * Two channels, reserve = min(2 x (16 KiB + 12), cap / 2) = 32 KiB. Channel 0 carries idx 1,
 * 2 and parks on idx 4; channel 1 brings idx 0, the device's next gap, which may use the
 * reserve and so passes the parked channel. After switchover each write frees a buffer;
 * the second frees enough for channel 0 to resume. Idx 3 comes last, on channel 1: it fills
 * the gap, and the device's packets are written in order of idx.
 */
static void reserve_and_resume(void)
{
	struct vfio_uring_engine *e = engine_new(2, 64 << 10);
	struct vfio_uring_device *dev = e->devices[0];
	struct vu_channel *c0 = &e->channels[0], *c1 = &e->channels[1];
	unsigned writes = 0;

	CHECK(e->dst.reserve == 32 << 10, "reserve %zu", e->dst.reserve);
	handshake(c0);
	handshake(c1);
	headers(c0, 1);
	payload(c0);
	headers(c0, 2);
	payload(c0);
	headers(c0, 4);
	CHECK(c0->recv_state == VU_RECV_PARKED, "channel 0 parks on idx 4 (%d)", c0->recv_state);
	headers(c1, 0);
	CHECK(c1->recv_state == VU_RECV_PAYLOAD,
	      "idx 0 fills the gap: it takes the reserve while channel 0 is parked (%d)",
	      c1->recv_state);
	payload(c1);
	CHECK(dev->next_missing_idx == 3 && dev->queued == 3, "idx 0..2 here: next gap %u",
	      dev->next_missing_idx);
	CHECK(c0->recv_state == VU_RECV_PARKED && e->state == VU_ENGINE_RUNNING,
	      "before switchover channel 0 stays parked and nothing fails");

	e->ops->switchover(e);
	CHECK(dev->dst_state == VU_DST_WRITING, "switchover writes idx 0 (%d)", dev->dst_state);
	CHECK(c0->recv_state == VU_RECV_PARKED && e->state == VU_ENGINE_RUNNING,
	      "a write in flight: still parked, and no stall (%s)", failed_message);
	CHECK(complete_write(dev), "write of idx 0");
	writes++;
	CHECK(c0->recv_state == VU_RECV_PARKED, "one write does not free room for idx 4 yet");
	CHECK(complete_write(dev), "write of idx 1");
	writes++;
	CHECK(c0->recv_state == VU_RECV_PAYLOAD && e->dst.parked == 0,
	      "two writes free room: channel 0 resumes (%d)", c0->recv_state);
	payload(c0);
	while (complete_write(dev))
		writes++;
	CHECK(writes == 3 && dev->next_write_idx == 3, "idx 0..2 written, idx 3 missing (%u, %u)",
	      writes, dev->next_write_idx);
	headers(c1, 3);
	payload(c1);
	while (complete_write(dev))
		writes++;
	CHECK(writes == 5 && dev->next_write_idx == 5 && dev->queued == 0,
	      "idx 0..4 written in order (%u writes, next %u)", writes, dev->next_write_idx);
	CHECK(e->state == VU_ENGINE_RUNNING && e->pool.in_use == 0, "no failure, no buffer held");
	engine_free(e);
}

/*
 * A channel's cycle, asserted at each step with the size of the receive it posts:
 * HANDSHAKE (64) -> HEADER (both headers, 288) -> PAYLOAD (the data) -> HEADER (288).
 * Before switchover the packet is only held: the device stays RECEIVING.
 */
static void channel_cycle(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	CHECK(chan->recv_state == VU_RECV_HANDSHAKE && receiving(chan) == VU_WIRE_HANDSHAKE_SIZE,
	      "a new channel receives its handshake (%d, %zu)", chan->recv_state, receiving(chan));
	handshake(chan);
	CHECK(chan->recv_state == VU_RECV_HEADER && receiving(chan) == VU_WIRE_PACKET_OVERHEAD,
	      "then both headers (%d, %zu)", chan->recv_state, receiving(chan));
	headers(chan, 0);
	CHECK(chan->recv_state == VU_RECV_PAYLOAD && receiving(chan) == DATA,
	      "then the data (%d, %zu)", chan->recv_state, receiving(chan));
	payload(chan);
	CHECK(chan->recv_state == VU_RECV_HEADER && receiving(chan) == VU_WIRE_PACKET_OVERHEAD,
	      "then the next headers (%d, %zu)", chan->recv_state, receiving(chan));
	CHECK(dev->queued == 1 && dev->dst_state == VU_DST_RECEIVING && !pending(&dev->io),
	      "before switchover the packet is held, not written (%u, %d)", dev->queued,
	      dev->dst_state);
	CHECK(e->state == VU_ENGINE_RUNNING, "no failure: %s", failed_message);
	engine_free(e);
}

/*
 * After switchover, idx 1 arrives before idx 0: it is held (RECEIVING, nothing written);
 * idx 0 is written first (RECEIVING -> WRITING -> RECEIVING), then idx 1.
 */
static void out_of_order(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	e->ops->switchover(e);
	handshake(chan);
	headers(chan, 1);
	payload(chan);
	CHECK(dev->dst_state == VU_DST_RECEIVING && dev->queued == 1 && !pending(&dev->io),
	      "idx 1 is held until idx 0 is here (%d)", dev->dst_state);
	headers(chan, 0);
	payload(chan);
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing && dev->writing->idx == 0,
	      "idx 0 is written first (%d)", dev->dst_state);
	CHECK(complete_write(dev), "write of idx 0");
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing && dev->writing->idx == 1,
	      "then idx 1 (%d)", dev->dst_state);
	CHECK(complete_write(dev), "write of idx 1");
	CHECK(dev->dst_state == VU_DST_RECEIVING && dev->queued == 0 && !pending(&dev->io),
	      "both written: RECEIVING again (%d)", dev->dst_state);
	CHECK(n_written == 2 && written[0] == 0 && written[1] == 1, "written in order of idx");
	CHECK(e->state == VU_ENGINE_RUNNING && e->pool.in_use == 0, "no failure, no buffer held");
	engine_free(e);
}

/*
 * The pre-copy extension: PRECOPY packets are written before switchover start, in order;
 * the first stop-copy packet waits for it.
 */
static void precopy_before_switchover(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	e->opts.flags |= VFIO_URING_ENGINE_F_PRECOPY;
	handshake(chan);
	headers_flags(chan, 0, VU_WIRE_VFIO_FLAG_PRECOPY);
	payload(chan);
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing && dev->writing->idx == 0,
	      "PRECOPY idx 0 is written before switchover start (%d)", dev->dst_state);
	headers(chan, 2);
	payload(chan);
	headers_flags(chan, 1, VU_WIRE_VFIO_FLAG_PRECOPY);
	payload(chan);
	CHECK(complete_write(dev), "write of idx 0");
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing && dev->writing->idx == 1,
	      "then PRECOPY idx 1 (%d)", dev->dst_state);
	CHECK(complete_write(dev), "write of idx 1");
	CHECK(dev->dst_state == VU_DST_RECEIVING && dev->queued == 1 && !pending(&dev->io),
	      "stop-copy idx 2 waits for switchover start (%d)", dev->dst_state);
	e->ops->switchover(e);
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing && dev->writing->idx == 2,
	      "switchover writes idx 2 (%d)", dev->dst_state);
	CHECK(complete_write(dev), "write of idx 2");
	CHECK(n_written == 3 && written[2] == 2, "written in order of idx");
	CHECK(e->state == VU_ENGINE_RUNNING && e->pool.in_use == 0, "no failure, no buffer held");
	engine_free(e);
}

/* A short write is continued at its offset, in the same WRITING state. */
static void short_write(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];
	struct io_uring_sqe *sqe;
	struct vu_buf *buf;

	e->ops->switchover(e);
	handshake(chan);
	headers(chan, 0);
	payload(chan);
	buf = dev->writing;
	sqe = pending(&dev->io);
	CHECK(buf && sqe && sqe->len == DATA && sqe->addr == (uintptr_t)buf->data,
	      "the whole packet is written at once");
	CHECK(write_some(dev, 1000), "a write in flight");
	sqe = pending(&dev->io);
	CHECK(dev->dst_state == VU_DST_WRITING && dev->writing == buf && sqe &&
	      sqe->addr == (uintptr_t)buf->data + 1000 && sqe->len == DATA - 1000,
	      "after 1000 bytes the rest is written from offset 1000 (%d, %u)", dev->dst_state,
	      sqe ? sqe->len : 0);
	CHECK(complete_write(dev), "the rest");
	CHECK(dev->dst_state == VU_DST_RECEIVING && dev->data_bytes == DATA && n_written == 1,
	      "written once in full (%d, %llu)", dev->dst_state,
	      (unsigned long long)dev->data_bytes);
	engine_free(e);
}

/*
 * The config packet (idx 2) arrives first; it is loaded only once switchover has started and
 * idx 0 and 1 are written: RECEIVING -> LOADING, with the blob as sent, then DONE.
 */
static void config_loads_last(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	handshake(chan);
	config_packet(chan, 2, "config-blob");
	CHECK(dev->config && dev->config_idx == 2, "the config packet is held");
	headers(chan, 0);
	payload(chan);
	headers(chan, 1);
	payload(chan);
	CHECK(loads.calls == 0 && dev->dst_state == VU_DST_RECEIVING,
	      "all here, but before switchover nothing is written or loaded (%d)", dev->dst_state);
	e->ops->switchover(e);
	CHECK(complete_write(dev), "write of idx 0");
	CHECK(loads.calls == 0 && dev->dst_state == VU_DST_WRITING, "idx 1 is written next");
	CHECK(complete_write(dev), "write of idx 1");
	CHECK(loads.calls == 1 && loads.len == strlen("config-blob") &&
	      memcmp(loads.blob, "config-blob", loads.len) == 0,
	      "loaded once, after the last write, with the blob as sent (%u calls)", loads.calls);
	CHECK(dev->dst_state == VU_DST_LOADING && dev->state == VFIO_URING_DEVICE_DONE,
	      "LOADING, then DONE (%d, %d)", dev->dst_state, dev->state);
	CHECK(n_written == 2 && written[0] == 0 && written[1] == 1, "data written in order");
	CHECK(e->state == VU_ENGINE_FINISHING && e->pool.in_use == 0,
	      "the last device done: the engine finishes, no buffer held (%d)", e->state);
	engine_free(e);
}

/*
 * CONFIG_LOAD_WAITS: everything is here and written, the device waits in WAIT_CALLER (and
 * is all the engine awaits) until vu_destination_config_load_ready(): then LOADING, DONE.
 */
static void config_load_waits(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	dev->config_load_waits = true;
	e->ops->switchover(e);
	handshake(chan);
	headers(chan, 0);
	payload(chan);
	config_packet(chan, 1, "cfg");
	CHECK(complete_write(dev), "write of idx 0");
	CHECK(dev->dst_state == VU_DST_WAIT_CALLER && loads.calls == 0 &&
	      e->ops->only_caller_awaited(e),
	      "written and config here: waits for the caller (%d)", dev->dst_state);
	CHECK(vu_destination_config_load_ready(dev) == 0, "config_load_ready");
	CHECK(dev->dst_state == VU_DST_LOADING && loads.calls == 1 &&
	      dev->state == VFIO_URING_DEVICE_DONE && e->dst.waiting_for_caller == 0,
	      "then LOADING and DONE (%d, %u calls)", dev->dst_state, loads.calls);
	CHECK(vu_destination_config_load_ready(dev) == 0 && loads.calls == 1,
	      "a second call loads nothing");
	engine_free(e);
}

/* load_config fails: the device fails with LOAD_CONFIG and the callback's errno. */
static void load_config_fails(void)
{
	struct vfio_uring_engine *e = engine_new(1, 64 << 10);
	struct vu_channel *chan = &e->channels[0];
	struct vfio_uring_device *dev = e->devices[0];

	loads.ret = -EIO;
	e->ops->switchover(e);
	handshake(chan);
	config_packet(chan, 0, "bad");
	CHECK(loads.calls == 1 && dev->dst_state == VU_DST_LOADING, "loaded (%d)", dev->dst_state);
	CHECK(e->state == VU_ENGINE_FAILED && failed_reason == VFIO_URING_REASON_LOAD_CONFIG &&
	      failed_dev == dev && failed_err == -EIO,
	      "fails the device with LOAD_CONFIG, -EIO (reason %d, err %d: %s)", failed_reason,
	      failed_err, failed_message);
	CHECK(dev->state == VFIO_URING_DEVICE_ACTIVE, "not DONE: engine.c reports it FAILED");
	engine_free(e);
}

/*
 * Every device done, the peers close both channels at a packet boundary: each is CLOSED
 * and nothing fails. A close before every device is done, with another channel open, is
 * CLOSED too; the last one fails what is missing with STREAM_ENDED (close_early).
 */
static void close_after_done(void)
{
	struct vfio_uring_engine *e = engine_new(2, 64 << 10);
	struct vu_channel *c0 = &e->channels[0], *c1 = &e->channels[1];
	struct vfio_uring_device *dev = e->devices[0];

	e->ops->switchover(e);
	handshake(c0);
	handshake(c1);
	config_packet(c0, 0, "cfg");
	CHECK(dev->state == VFIO_URING_DEVICE_DONE && e->state == VU_ENGINE_FINISHING,
	      "the device is done (%d, %d)", dev->state, e->state);
	peer_close(c0);
	peer_close(c1);
	CHECK(c0->recv_state == VU_RECV_CLOSED && c1->recv_state == VU_RECV_CLOSED &&
	      e->dst.channels_open == 0, "both CLOSED (%d, %d)", c0->recv_state, c1->recv_state);
	CHECK(e->state == VU_ENGINE_FINISHING, "nothing fails: %s", failed_message);
	engine_free(e);
}

static void close_early(void)
{
	struct vfio_uring_engine *e = engine_new(2, 64 << 10);
	struct vu_channel *c0 = &e->channels[0], *c1 = &e->channels[1];
	struct vfio_uring_device *dev = e->devices[0];

	handshake(c0);
	handshake(c1);
	headers(c0, 0);
	payload(c0);
	peer_close(c0);
	CHECK(c0->recv_state == VU_RECV_CLOSED && e->state == VU_ENGINE_RUNNING,
	      "one channel closed at a boundary, another open: CLOSED (%d)", c0->recv_state);
	peer_close(c1);
	CHECK(c1->recv_state == VU_RECV_CLOSED && e->state == VU_ENGINE_FAILED &&
	      failed_reason == VFIO_URING_REASON_STREAM_ENDED && failed_dev == dev,
	      "every channel closed before the config packet: STREAM_ENDED (reason %d: %s)",
	      failed_reason, failed_message);
	engine_free(e);
}

/* The peer closes before the handshake, inside the headers, inside the data: each fails. */
static void close_mid_packet(void)
{
	static const struct {
		unsigned headers;     /* 0: close before the handshake; 1: during the headers */
		size_t received;      /* bytes received of what the close interrupts */
		enum vfio_uring_reason reason;
		const char *message;
	} closes[] = {
		{ 0, 0, VFIO_URING_REASON_STREAM_ENDED, "connection closed before the handshake" },
		{ 1, 100, VFIO_URING_REASON_STREAM_TRUNCATED,
		  "connection closed after 100 of 288 bytes of a packet header" },
		{ 2, 1000, VFIO_URING_REASON_STREAM_TRUNCATED,
		  "connection closed after 1000 of 16384 bytes of a packet payload" },
	};
	static uint8_t bytes[DATA];

	for (size_t i = 0; i < sizeof(closes) / sizeof(closes[0]); i++) {
		struct vfio_uring_engine *e = engine_new(1, 64 << 10);
		struct vu_channel *chan = &e->channels[0];

		if (closes[i].headers) {
			handshake(chan);
			if (closes[i].headers == 2)
				headers(chan, 0);
			receive(chan, bytes, closes[i].received, false);
		}
		peer_close(chan);
		CHECK(e->state == VU_ENGINE_FAILED && failed_reason == closes[i].reason &&
		      failed_chan == chan && strcmp(failed_message, closes[i].message) == 0,
		      "close %zu: reason %d: %s", i, failed_reason, failed_message);
		CHECK(closes[i].headers < 2 || failed_dev == e->devices[0],
		      "inside the data the failure names the device");
		engine_free(e);
	}
}

#define CASE(f) TEST_CASE(f)
static const struct test_case cases[] = {
#include "dest_policy_cases.h"
};

int main(int argc, char **argv)
{
	int rc = run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv, true);

	return rc == CASES_RAN ? check_result() : rc;
}
