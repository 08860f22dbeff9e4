/* SPDX-License-Identifier: MIT */
/*
 * The destination's memory policy, driven deterministically: destination.c is included here
 * and its neighbours in engine.c are stubs, so completions are scripted (bytes copied where
 * a receive's SQE points, a write completed with its whole length) instead of coming from
 * sockets and a ring. Covered: parking when a packet does not fit, flow control before
 * switchover (parked channels wait, nothing fails), the reserve that lets the packet filling
 * a device's next gap pass the parked ones, parked channels resuming as writes free room,
 * and the stall that no write can resolve after switchover failing with BUFFER_CAP.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/destination.c"

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

	(void)dev, (void)chan, (void)err;
	if (e->state == VU_ENGINE_FAILED)
		return;
	e->state = VU_ENGINE_FAILED;
	failed_reason = reason;
	va_start(ap, fmt);
	vsnprintf(failed_message, sizeof(failed_message), fmt, ap);
	va_end(ap);
}

void vu_device_done(struct vfio_uring_device *dev)
{
	dev->state = VFIO_URING_DEVICE_DONE;
	dev->engine->devices_active--;
}

/* ---- a scripted engine ---- */

#define DATA 16384u /* every data packet's payload */
#define MAX_PACKET (DATA + VU_WIRE_VFIO_HEADER_SIZE)

static struct vfio_uring_engine *engine_new(unsigned channels, size_t cap)
{
	struct vfio_uring_engine *e = calloc(1, sizeof(*e));
	struct vfio_uring_device *dev = calloc(1, sizeof(*dev));

	memset(submitted, 0, sizeof(submitted));
	failed_reason = VFIO_URING_REASON_NONE;
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

/* Completes the channel's receive with these bytes (exactly what it asked for). */
static void deliver(struct vu_channel *chan, const void *bytes, size_t len)
{
	struct vfio_uring_engine *e = chan->engine;
	struct io_uring_sqe *sqe = pending(&chan->io);

	CHECK(sqe && sqe->opcode == IORING_OP_RECV && sqe->len == len,
	      "channel %u: a receive of %zu bytes in flight (%u)", chan->index, len,
	      sqe ? sqe->len : 0);
	if (!sqe || sqe->len != len)
		return;
	memcpy((void *)(uintptr_t)sqe->addr, bytes, len);
	chan->io.in_flight = false;
	e->in_flight--;
	e->ops->channel_io_done(chan, (int)len);
}

static void handshake(struct vu_channel *chan)
{
	uint8_t hs[VU_WIRE_HANDSHAKE_SIZE];

	vu_wire_encode_handshake(hs, chan->engine->opts.uuid, (uint8_t)chan->index);
	deliver(chan, hs, sizeof(hs));
}

/* The headers of data packet idx (the payload follows with payload()). */
static void headers(struct vu_channel *chan, uint32_t idx)
{
	struct vfio_uring_device *dev = chan->engine->devices[0];
	uint8_t h[VU_WIRE_PACKET_OVERHEAD];

	vu_wire_encode_header(h, dev->idstr, dev->instance_id, MAX_PACKET);
	vu_wire_encode_vfio_header(h + VU_WIRE_HEADER_SIZE, idx, 0);
	deliver(chan, h, sizeof(h));
}

static void payload(struct vu_channel *chan)
{
	static uint8_t data[DATA];

	deliver(chan, data, sizeof(data));
}

/* Completes the device's write in full; false when none was in flight. */
static bool complete_write(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct io_uring_sqe *sqe = pending(&dev->io);

	if (!sqe || sqe->opcode != IORING_OP_WRITE)
		return false;
	dev->io.in_flight = false;
	e->in_flight--;
	e->device_io--;
	e->ops->device_io_done(dev, (int)sqe->len);
	return true;
}

/*
 * cap 64 KiB, one channel, reserve = one largest packet (16 KiB + 12 bytes): packets that do
 * not fill the device's next gap (idx 0) may use the rest of the cap. Two fit, the third
 * parks its channel. Before switchover that is flow control: the channel waits, nothing fails.
 * After switchover nothing can be written (idx 0 is behind the parked packet in the same
 * stream) and no other channel can bring it: the stall no write can resolve fails at once.
 */
static void test_park_then_stall(void)
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
static void test_reserve_and_resume(void)
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

int main(void)
{
	test_park_then_stall();
	test_reserve_and_resume();
	return check_result();
}
