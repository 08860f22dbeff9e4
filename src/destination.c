/* SPDX-License-Identifier: MIT */
/*
 * The destination side.
 *
 * Channels: each receives its handshake, then header, payload, header, payload, ... one
 * receive in flight at a time (enum vu_recv_state). A payload is received straight into a
 * pool buffer of exactly next_packet_size bytes, checked against the maximum before the
 * buffer is taken. Every check QEMU's destination makes is made here, plus the ones it
 * misses (a second config packet, data beyond or after the config packet), each with its
 * own errno and reason (VFIO_URING_REASONS_WIRE in vfio-uring.h).
 *
 * Devices: packets wait in the reorder table until their idx is next; one write of the
 * data fd in flight per device, partial writes continued. Nothing is written before
 * switchover_start(), except pre-copy data (VFIO_URING_ENGINE_F_PRECOPY): packets with the
 * extension's PRECOPY flag, which precede every other packet of their device, are written
 * as they come. When packets 0..N-1 are written and config packet N has arrived, the config
 * blob is loaded (once) and the device is DONE.
 *
 * Memory is bounded by flow control, not by failing valid migrations. Every payload counts
 * against the pool's cap. A channel whose next packet does not fit stops receiving
 * ("parked") until a write frees a buffer: its data waits in the socket buffers and TCP
 * backpressure slows the source. Before switchover start nothing but pre-copy data is
 * written, so parked channels wait for it (QEMU's source starts sending before the
 * destination's VMM has seen the switchover command). The engine owns its sockets, so it
 * can do what QEMU's receive threads, which also carry RAM, cannot; a caller who wants QEMU
 * 10.1's fail-fast limit (x-migration-max-queued-buffers-size) sets max_queued_bytes.
 *
 * Progress: packets that do not fill a device's next gap (its lowest idx not received yet)
 * may not use the last `reserve` bytes of the cap (one largest packet per channel): those
 * are kept for the packets that let a device's writes advance, so out-of-order packets
 * cannot fill the pool while the packets everything waits for sit behind them in the
 * sockets. If, after switchover start, every channel is parked and no write is in flight,
 * nothing will ever free a buffer: the migration fails instead of hanging.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "probes.h"

/* A channel's legal transitions (enum vu_recv_state): a bit per target state. */
static const unsigned recv_transitions[] = {
	[VU_RECV_HANDSHAKE] = 1u << VU_RECV_HEADER,
	[VU_RECV_HEADER] = 1u << VU_RECV_PAYLOAD | 1u << VU_RECV_PARKED | 1u << VU_RECV_CLOSED,
	[VU_RECV_PAYLOAD] = 1u << VU_RECV_HEADER,
	[VU_RECV_PARKED] = 1u << VU_RECV_PAYLOAD,
	[VU_RECV_CLOSED] = 0,
};

/* The one way a channel's receive state changes: asserts the transition, fires channel_state. */
static void set_recv_state(struct vu_channel *chan, enum vu_recv_state state)
{
	assert(recv_transitions[chan->recv_state] & (1u << state));
	VU_PROBE(channel_state, (int)chan->engine->opts.side, chan->index, (int)chan->recv_state,
		 (int)state);
	chan->recv_state = state;
}

/* A destination device's legal transitions (enum vu_dst_state): a bit per target state. */
static const unsigned dst_transitions[] = {
	[VU_DST_RECEIVING] = 1u << VU_DST_WRITING | 1u << VU_DST_WAIT_CALLER | 1u << VU_DST_LOADING,
	[VU_DST_WRITING] = 1u << VU_DST_RECEIVING,
	[VU_DST_WAIT_CALLER] = 1u << VU_DST_LOADING,
	[VU_DST_LOADING] = 0, /* the device is DONE or FAILED next */
};

/* The one way a destination device's state changes: asserts it, fires device_state. */
static void set_dst_state(struct vfio_uring_device *dev, enum vu_dst_state state)
{
	assert(dst_transitions[dev->dst_state] & (1u << state));
	VU_PROBE(device_state, (int)VFIO_URING_DESTINATION, dev->idstr, dev->instance_id,
		 (int)dev->dst_state, (int)state);
	dev->dst_state = state;
}

static void post_recv(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct io_uring_sqe *sqe;
	uint8_t *dst;
	size_t need;

	switch (chan->recv_state) {
	case VU_RECV_HANDSHAKE:
		dst = chan->handshake;
		need = sizeof(chan->handshake);
		break;
	case VU_RECV_HEADER:
		dst = chan->header;
		need = sizeof(chan->header);
		break;
	case VU_RECV_PAYLOAD:
		dst = chan->payload->data;
		need = chan->payload->len;
		break;
	default:
		return;
	}
	sqe = vu_engine_get_sqe(e);
	/* MSG_WAITALL: the kernel retries short receives itself (5.19+); older ones return short. */
	io_uring_prep_recv(sqe, chan->fd, dst + chan->received, need - chan->received,
			   e->msg_waitall);
	vu_op_submitted(e, &chan->io, sqe);
}

static size_t recv_size(const struct vu_channel *chan)
{
	switch (chan->recv_state) {
	case VU_RECV_HANDSHAKE: return sizeof(chan->handshake);
	case VU_RECV_HEADER: return sizeof(chan->header);
	case VU_RECV_PAYLOAD: return chan->payload->len;
	default: return 0;
	}
}

static const char *recv_what(const struct vu_channel *chan)
{
	switch (chan->recv_state) {
	case VU_RECV_HANDSHAKE: return "handshake";
	case VU_RECV_HEADER: return "packet header";
	case VU_RECV_PAYLOAD: return "packet payload";
	default: return "packet";
	}
}

static struct vfio_uring_device *find_device(struct vfio_uring_engine *e, const char *idstr,
					     uint32_t instance_id)
{
	for (unsigned i = 0; i < e->n_devices; i++)
		if (e->devices[i]->instance_id == instance_id &&
		    strcmp(e->devices[i]->idstr, idstr) == 0)
			return e->devices[i];
	return NULL;
}

/*
 * Every data packet 0..config_idx-1 and the config packet are here (or written): data idx
 * are distinct and below config_idx, so counting them is enough.
 */
/* The VFIO packet flags this destination accepts: QEMU's, and the pre-copy extension's. */
static uint32_t known_vfio_flags(const struct vfio_uring_engine *e)
{
	return VU_WIRE_VFIO_FLAGS_QEMU |
	       (e->opts.flags & VFIO_URING_ENGINE_F_PRECOPY ? VU_WIRE_VFIO_FLAG_PRECOPY : 0);
}

/*
 * Whether the device's next packet may be written now: after switchover start every packet
 * may; before it only pre-copy packets. Every PRECOPY idx is below every other idx of the
 * device (check_order), so the next idx is a pre-copy packet when one at or above it was
 * received.
 */
static bool may_write_next(const struct vfio_uring_device *dev)
{
	return dev->engine->dst.switchover || dev->next_write_idx < dev->precopy_idx_end;
}

static bool device_complete(const struct vfio_uring_device *dev)
{
	return dev->config_idx != VU_WIRE_VFIO_IDX_INVALID &&
	       dev->queued + dev->next_write_idx == dev->config_idx;
}

static void issue_write(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct io_uring_sqe *sqe = vu_engine_get_sqe(e);
	struct vu_buf *buf = dev->writing;

	io_uring_prep_write(sqe, dev->data_fd, buf->data + dev->write_offset,
			    (unsigned)(buf->len - dev->write_offset), (uint64_t)-1);
	if (e->opts.flags & VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO)
		sqe->flags |= IOSQE_ASYNC;
	vu_op_submitted(e, &dev->io, sqe);
}

static void load_config(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vu_buf *buf = dev->config;
	const uint8_t *blob;
	size_t blob_len;
	int ret = 0;

	set_dst_state(dev, VU_DST_LOADING);
	/* Checked on arrival; cannot fail here. */
	vu_wire_unframe_config(buf->data, buf->len, &blob, &blob_len, NULL, 0);
	if (dev->load_config)
		ret = dev->load_config(dev->opaque, blob, blob_len);
	dev->config = NULL;
	vu_pool_put(&e->pool, buf);
	if (vu_engine_failed(e))
		return; /* the callback cancelled the migration: the device is FAILED already */
	if (ret < 0) {
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_LOAD_CONFIG, ret,
			       "load_config callback failed: %s", strerror(-ret));
		return;
	}
	VU_PROBE(config_loaded, dev->idstr, dev->instance_id, blob_len);
	vu_device_done(dev);
}

/* Writes the device's next packet if it is here; loads the config after the last one. */
static void device_pump(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vu_buf *buf;

	if (vu_engine_failed(e) || dev->state != VFIO_URING_DEVICE_ACTIVE ||
	    dev->dst_state != VU_DST_RECEIVING)
		return; /* WAIT_CALLER: every packet is written already */
	while (may_write_next(dev) &&
	       (buf = vu_reorder_take(&e->reorder, dev->index, dev->next_write_idx))) {
		dev->queued--;
		dev->next_write_idx++;
		if (buf->len) {
			dev->writing = buf;
			dev->write_offset = 0;
			set_dst_state(dev, VU_DST_WRITING);
			issue_write(dev);
			return;
		}
		/* A data packet without data: nothing to write. */
		VU_PROBE(packet_written, dev->idstr, dev->instance_id, buf->idx, 0,
			 vu_now_ns() - buf->arrival_ns);
		vu_pool_put(&e->pool, buf);
	}
	if (!e->dst.switchover || !dev->config || dev->next_write_idx != dev->config_idx)
		return;
	if (dev->config_load_waits && !dev->config_load_ready) {
		set_dst_state(dev, VU_DST_WAIT_CALLER);
		e->dst.waiting_for_caller++;
		return;
	}
	load_config(dev);
}

int vu_destination_config_load_ready(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	dev->config_load_ready = true;
	if (dev->dst_state == VU_DST_WAIT_CALLER && dev->state == VFIO_URING_DEVICE_ACTIVE &&
	    !vu_engine_failed(e)) {
		e->dst.waiting_for_caller--;
		load_config(dev);
	}
	return dev->error;
}

static void park(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;

	set_recv_state(chan, VU_RECV_PARKED);
	TAILQ_INSERT_TAIL(&e->dst.parked_channels, chan, parked_link);
	e->dst.parked++;
}

static void on_payload(struct vu_channel *chan);

/*
 * Takes the buffer for the data of the packet whose headers were just received and starts
 * receiving it; false when it must wait for pool space.
 */
static bool take_payload_buffer(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct vfio_uring_device *dev = chan->target;
	size_t len = chan->hdr.next_packet_size - VU_WIRE_VFIO_HEADER_SIZE;
	size_t charge = ((len ? len : 1) + VU_POOL_GRANULE - 1) / VU_POOL_GRANULE * VU_POOL_GRANULE;
	bool fills_gap = chan->vh.idx == dev->next_missing_idx;
	struct vu_buf *buf;

	if (!fills_gap && e->pool.in_use + charge + e->dst.reserve > e->pool.cap)
		return false;
	buf = vu_pool_get(&e->pool, len ? len : 1); /* an empty packet still holds its idx */
	if (!buf)
		return false;
	buf->len = len;
	buf->dev = dev;
	buf->dev_index = dev->index;
	buf->idx = chan->vh.idx;
	buf->flags = chan->vh.flags;
	chan->payload = buf;
	set_recv_state(chan, VU_RECV_PAYLOAD);
	if (len)
		post_recv(chan);
	else
		on_payload(chan);
	return true;
}

/*
 * Resumes parked channels that can get a buffer now (a device's next packet may use the
 * reserve, so it can pass the ones ahead of it). A stall is certain only when every open
 * channel is parked and no write is in flight: a channel still receiving may be bringing
 * the very packet everything waits for. Then nothing will ever free a buffer: fail rather
 * than hang.
 */
static void buffers_freed(struct vfio_uring_engine *e)
{
	struct vu_channel *chan, *next;

	for (chan = TAILQ_FIRST(&e->dst.parked_channels); chan && !vu_engine_failed(e); chan = next) {
		next = TAILQ_NEXT(chan, parked_link);
		if (take_payload_buffer(chan)) {
			TAILQ_REMOVE(&e->dst.parked_channels, chan, parked_link);
			e->dst.parked--;
		}
	}
	if (e->dst.switchover && e->dst.parked && e->dst.parked == e->dst.channels_open &&
	    !vu_engine_failed(e) && e->device_io == 0)
		vu_engine_fail(e, TAILQ_FIRST(&e->dst.parked_channels)->target,
			       TAILQ_FIRST(&e->dst.parked_channels),
			       VFIO_URING_REASON_BUFFER_CAP, 0,
			       "buffer cap of %zu bytes is full of packets waiting for earlier ones "
			       "(%zu bytes held) and every channel waits for room: no write can free any",
			       e->pool.cap, e->pool.in_use);
}

static void on_handshake(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct vu_wire_handshake hs;
	char msg[VU_MESSAGE_SIZE / 2];
	int ret;

	vu_wire_decode_handshake(chan->handshake, &hs);
	ret = vu_wire_check_handshake(&hs, e->opts.uuid, e->n_channels, msg, sizeof(msg));
	if (ret) {
		vu_engine_fail(e, NULL, chan, vu_wire_reason(ret), ret, "%s", msg);
		return;
	}
	if (e->dst.channel_ids_seen[hs.id / 64] & (1ull << (hs.id % 64))) {
		vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_HS_CHANNEL_DUP, 0,
			       "handshake channel id %u already seen on another channel", hs.id);
		return;
	}
	e->dst.channel_ids_seen[hs.id / 64] |= 1ull << (hs.id % 64);
	VU_PROBE(handshake_accepted, chan->index, hs.id);
	set_recv_state(chan, VU_RECV_HEADER);
	if (!vu_engine_finishing(e)) /* all devices done already: this channel carries nothing more */
		post_recv(chan);
}

/*
 * Checks a packet's (idx, flags) against what its device has already seen: on arrival of
 * its headers (to fail before taking a buffer) and again once its data is in (another
 * channel may have delivered a packet meanwhile). 0 or a VU_EVFIO_* errno.
 */
static int check_order(const struct vfio_uring_device *dev, const struct vu_wire_vfio_header *vh,
		       char *msg, size_t size)
{
	if (vh->flags & VU_WIRE_VFIO_FLAG_PRECOPY) {
		if (vh->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
			snprintf(msg, size, "config packet idx %u with the PRECOPY flag", vh->idx);
			return VU_EVFIO_PRECOPY_ORDER;
		}
		if (vh->idx >= dev->stopcopy_idx_min) {
			snprintf(msg, size, "PRECOPY packet idx %u after stop-copy packet idx %u",
				 vh->idx, dev->stopcopy_idx_min);
			return VU_EVFIO_PRECOPY_ORDER;
		}
	} else if (vh->idx < dev->precopy_idx_end) {
		snprintf(msg, size, "%s packet idx %u below PRECOPY packet idx %u",
			 vh->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE ? "config" : "stop-copy", vh->idx,
			 dev->precopy_idx_end - 1);
		return VU_EVFIO_PRECOPY_ORDER;
	}
	if (vh->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
		if (dev->config_idx != VU_WIRE_VFIO_IDX_INVALID) {
			snprintf(msg, size, "second config packet (idx %u, first was idx %u)",
				 vh->idx, dev->config_idx);
			return VU_EVFIO_CONFIG_DUP;
		}
		if (dev->data_idx_end > vh->idx) {
			snprintf(msg, size,
				 "config packet idx %u, but data packet idx %llu was received",
				 vh->idx, (unsigned long long)dev->data_idx_end - 1);
			return VU_EVFIO_DATA_AFTER_CONFIG;
		}
		return 0;
	}
	if (dev->config_idx != VU_WIRE_VFIO_IDX_INVALID && vh->idx > dev->config_idx) {
		snprintf(msg, size, "data packet idx %u beyond the config packet's idx %u", vh->idx,
			 dev->config_idx);
		return VU_EVFIO_IDX_BEYOND_CONFIG;
	}
	if (vh->idx == dev->config_idx || vh->idx < dev->next_write_idx ||
	    vu_reorder_contains(&dev->engine->reorder, dev->index, vh->idx)) {
		snprintf(msg, size, "duplicate packet idx %u", vh->idx);
		return VU_EVFIO_IDX_DUP;
	}
	return 0;
}

static void on_header(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct vfio_uring_device *dev;
	char msg[VU_MESSAGE_SIZE / 2];
	int ret;

	ret = vu_wire_decode_header(chan->header, &chan->hdr, (uint32_t)e->opts.max_packet_size,
				    msg, sizeof(msg));
	if (ret) {
		vu_engine_fail(e, NULL, chan, vu_wire_reason(ret), ret, "%s", msg);
		return;
	}
	dev = find_device(e, chan->hdr.idstr, chan->hdr.instance_id);
	if (!dev) {
		vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_PKT_UNKNOWN_DEVICE, 0,
			       "packet for unknown device %s/%u", chan->hdr.idstr,
			       chan->hdr.instance_id);
		return;
	}
	if (dev->state == VFIO_URING_DEVICE_NOT_MULTIFD) {
		vu_engine_fail(e, dev, chan, VFIO_URING_REASON_PKT_NOT_MULTIFD, 0,
			       "device-state packet for a device whose multifd switch is OFF");
		return;
	}
	ret = vu_wire_decode_vfio_header(chan->header + VU_WIRE_HEADER_SIZE,
					 chan->hdr.next_packet_size, known_vfio_flags(e), &chan->vh,
					 msg, sizeof(msg));
	if (!ret)
		ret = check_order(dev, &chan->vh, msg, sizeof(msg));
	if (ret) {
		vu_engine_fail(e, dev, chan, vu_wire_reason(ret), ret, "%s", msg);
		return;
	}
	chan->target = dev;
	if (e->opts.max_queued_bytes &&
	    e->pool.in_use + chan->hdr.next_packet_size - VU_WIRE_VFIO_HEADER_SIZE >
		    e->opts.max_queued_bytes) {
		vu_engine_fail(e, dev, chan, VFIO_URING_REASON_MAX_QUEUED_BYTES, 0,
			       "a %u-byte packet would exceed max_queued_bytes of %zu bytes "
			       "(%zu bytes queued)%s", chan->hdr.next_packet_size,
			       e->opts.max_queued_bytes, e->pool.in_use,
			       e->dst.switchover ? "" : " before switchover start");
		return;
	}
	if (take_payload_buffer(chan))
		return;
	park(chan);
	buffers_freed(e);
}

static void on_payload(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct vfio_uring_device *dev = chan->target;
	struct vu_buf *buf = chan->payload;
	char msg[VU_MESSAGE_SIZE / 2];
	enum vfio_uring_reason reason = VFIO_URING_REASON_NONE;
	const uint8_t *blob;
	size_t blob_len;
	int ret;

	chan->payload = NULL;
	buf->arrival_ns = vu_now_ns();
	ret = check_order(dev, &chan->vh, msg, sizeof(msg));
	if (!ret && (buf->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE))
		ret = vu_wire_unframe_config(buf->data, buf->len, &blob, &blob_len, msg, sizeof(msg));
	if (ret)
		reason = vu_wire_reason(ret);
	else if (!(buf->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) &&
		 vu_reorder_insert(&e->reorder, buf)) { /* cannot happen: sized for the whole pool */
		reason = VFIO_URING_REASON_BUFFER_CAP;
		snprintf(msg, sizeof(msg), "reorder table full");
	}
	if (ret || reason) {
		vu_pool_put(&e->pool, buf);
		vu_engine_fail(e, dev, chan, reason, ret, "%s", msg);
		return;
	}
	if (buf->flags & VU_WIRE_VFIO_FLAG_PRECOPY) {
		if (buf->idx >= dev->precopy_idx_end)
			dev->precopy_idx_end = buf->idx + 1; /* < UINT32_MAX: checked by the decoder */
	} else if (buf->idx < dev->stopcopy_idx_min) {
		dev->stopcopy_idx_min = buf->idx;
	}
	if (buf->flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
		dev->config = buf;
		dev->config_idx = buf->idx;
	} else {
		dev->queued++;
		if (buf->idx >= dev->data_idx_end)
			dev->data_idx_end = (uint64_t)buf->idx + 1;
		/* Packets received ahead of it are in the reorder table: step over them too. */
		while (dev->next_missing_idx < VU_WIRE_VFIO_IDX_INVALID &&
		       vu_reorder_contains(&e->reorder, dev->index, dev->next_missing_idx))
			dev->next_missing_idx++;
	}
	dev->packets++;
	dev->bytes += VU_WIRE_VFIO_HEADER_SIZE + buf->len;
	chan->stats.packets++;
	VU_PROBE(packet_received, dev->idstr, dev->instance_id, buf->idx,
		 VU_WIRE_VFIO_HEADER_SIZE + buf->len, chan->index, dev->queued);
	set_recv_state(chan, VU_RECV_HEADER);
	post_recv(chan);
	device_pump(dev);
}

static void on_eof(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;

	if (chan->recv_state == VU_RECV_HEADER && chan->received >= VU_WIRE_HEADER_SIZE) {
		/* A packet shorter than its VFIO header ends the stream: report what it is. */
		char msg[VU_MESSAGE_SIZE / 2];
		int ret = vu_wire_decode_header(chan->header, &chan->hdr,
						(uint32_t)e->opts.max_packet_size, msg, sizeof(msg));

		if (!ret)
			ret = vu_wire_decode_vfio_header(chan->header + VU_WIRE_HEADER_SIZE,
							 chan->hdr.next_packet_size,
							 known_vfio_flags(e), &chan->vh, msg,
							 sizeof(msg));
		if (ret && ret != VU_EVFIO_VERSION && ret != VU_EVFIO_FLAGS &&
		    ret != VU_EVFIO_IDX_INVALID) {
			vu_engine_fail(e, ret == VU_EVFIO_SHORT ? find_device(e, chan->hdr.idstr,
									      chan->hdr.instance_id) : NULL,
				       chan, vu_wire_reason(ret), ret, "%s", msg);
			return;
		}
	}
	if (chan->received || chan->recv_state == VU_RECV_PAYLOAD) {
		vu_engine_fail(e, chan->target, chan, VFIO_URING_REASON_STREAM_TRUNCATED, 0,
			       "connection closed after %zu of %zu bytes of a %s", chan->received,
			       recv_size(chan), recv_what(chan));
		return;
	}
	if (chan->recv_state == VU_RECV_HANDSHAKE) {
		vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_STREAM_ENDED, 0,
			       "connection closed before the handshake");
		return;
	}
	set_recv_state(chan, VU_RECV_CLOSED);
	e->dst.channels_open--;
	if (e->dst.parked)
		buffers_freed(e); /* the channels left may all be parked now */
	if (vu_engine_finishing(e) || e->dst.channels_open || vu_engine_failed(e))
		return;
	/* Every channel is closed: whatever is not here by now never will be. */
	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (dev->state == VFIO_URING_DEVICE_ACTIVE && !device_complete(dev)) {
			if (dev->config_idx == VU_WIRE_VFIO_IDX_INVALID)
				vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_STREAM_ENDED, 0,
					       "every channel closed before the config packet arrived "
					       "(%llu packets received)", (unsigned long long)dev->packets);
			else
				vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_STREAM_ENDED, 0,
					       "every channel closed with packets missing before idx %u",
					       dev->config_idx);
			return;
		}
	}
}

static void recv_done(struct vu_channel *chan, int res)
{
	struct vfio_uring_engine *e = chan->engine;

	if (vu_engine_failed(e))
		return; /* teardown returns chan->payload */
	if (res == -ECANCELED && vu_engine_finishing(e))
		return; /* the receive finish() cancelled */
	if (res == -EINTR || res == -EAGAIN) {
		post_recv(chan);
		return;
	}
	if (res < 0) {
		vu_engine_fail(e, chan->target, chan, VFIO_URING_REASON_SOCKET_RECV, res,
			       "receive failed: %s", strerror(-res));
		return;
	}
	if (res == 0) {
		on_eof(chan);
		return;
	}
	if (vu_engine_finishing(e) && chan->recv_state != VU_RECV_HANDSHAKE) {
		vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_PKT_MAGIC, 0,
			       "%d unexpected bytes after every device was done", res);
		return;
	}
	chan->received += (size_t)res;
	chan->stats.wire_bytes += (uint64_t)res;
	if (chan->received < recv_size(chan)) {
		post_recv(chan);
		return;
	}
	chan->received = 0;
	switch (chan->recv_state) {
	case VU_RECV_HANDSHAKE:
		on_handshake(chan);
		break;
	case VU_RECV_HEADER:
		on_header(chan);
		break;
	case VU_RECV_PAYLOAD:
		on_payload(chan);
		break;
	default:
		__builtin_unreachable();
	}
}

static void write_done(struct vfio_uring_device *dev, int res)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vu_buf *buf = dev->writing;

	if (vu_engine_failed(e))
		return; /* teardown returns dev->writing */
	if (res == -EINTR || res == -EAGAIN) {
		issue_write(dev);
		return;
	}
	if (res <= 0) {
		res = res ? res : -EIO;
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_DATA_FD_WRITE, res,
			       "write of packet idx %u to the migration data fd failed: %s", buf->idx,
			       strerror(-res));
		return;
	}
	dev->write_offset += (size_t)res;
	dev->data_bytes += (uint64_t)res;
	if (dev->write_offset < buf->len) { /* partial write: the rest follows, in order */
		issue_write(dev);
		return;
	}
	VU_PROBE(packet_written, dev->idstr, dev->instance_id, buf->idx, buf->len,
		 vu_now_ns() - buf->arrival_ns);
	dev->writing = NULL;
	set_dst_state(dev, VU_DST_RECEIVING);
	vu_pool_put(&e->pool, buf);
	device_pump(dev);
	buffers_freed(e);
}

static void switchover_pump(struct vfio_uring_engine *e);

static void destination_init(struct vfio_uring_engine *e)
{
	TAILQ_INIT(&e->dst.parked_channels);
}

static void device_init(struct vfio_uring_device *dev, const struct vfio_uring_device_opts *opts)
{
	dev->config_load_waits = opts->flags & VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS;
	dev->config_idx = VU_WIRE_VFIO_IDX_INVALID;
	dev->stopcopy_idx_min = VU_WIRE_VFIO_IDX_INVALID;
}

static int destination_start(struct vfio_uring_engine *e)
{
	e->dst.channels_open = e->n_channels;
	e->dst.reserve = e->n_channels * e->opts.max_packet_size;
	if (e->dst.reserve > e->pool.cap / 2)
		e->dst.reserve = e->pool.cap / 2;
	for (unsigned i = 0; i < e->n_channels; i++)
		post_recv(&e->channels[i]); /* its handshake: a new channel's recv_state is 0 */
	if (e->dst.switchover)
		switchover_pump(e);
	return 0;
}

/* switchover_start(), before or after start */
static void switchover(struct vfio_uring_engine *e)
{
	if (e->dst.switchover)
		return;
	e->dst.switchover = true;
	/* The progress timeout runs from here: before it, waiting is the caller's choice. */
	e->last_progress_ns = vu_now_ns();
	if (vu_engine_started(e) && !vu_engine_failed(e))
		switchover_pump(e);
}

static void switchover_pump(struct vfio_uring_engine *e)
{
	for (unsigned i = 0; i < e->n_devices && !vu_engine_failed(e); i++)
		device_pump(e->devices[i]);
	/* Channels parked before it resume as writes free room, or the stall is certain now. */
	if (e->dst.parked && !vu_engine_failed(e))
		buffers_freed(e);
}

static void finish(struct vfio_uring_engine *e)
{
	/*
	 * Cancel the header receives still waiting on channels. A channel whose handshake has
	 * not arrived yet keeps waiting for it: every channel must have been a valid one.
	 */
	for (unsigned i = 0; i < e->n_channels; i++) {
		struct vu_channel *chan = &e->channels[i];
		struct io_uring_sqe *sqe;

		if (!chan->io.in_flight || chan->recv_state == VU_RECV_HANDSHAKE)
			continue;
		sqe = vu_engine_get_sqe(e);
		io_uring_prep_cancel(sqe, &chan->io, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
}

static void release_buffers(struct vfio_uring_engine *e)
{
	struct vu_buf *buf;

	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (dev->writing)
			vu_pool_put(&e->pool, dev->writing);
		if (dev->config)
			vu_pool_put(&e->pool, dev->config);
		dev->writing = dev->config = NULL;
	}
	for (unsigned i = 0; i < e->n_channels; i++) {
		struct vu_channel *chan = &e->channels[i];

		if (chan->payload)
			vu_pool_put(&e->pool, chan->payload);
		chan->payload = NULL;
	}
	if (e->reorder.slots)
		while ((buf = vu_reorder_take_any(&e->reorder)))
			vu_pool_put(&e->pool, buf);
}

/* Before switchover start, waiting is the caller's choice: the progress timeout runs from it. */
static bool progress_expected(const struct vfio_uring_engine *e)
{
	return e->dst.switchover;
}

/* Every device left waits for config_load_ready(). */
static bool only_caller_awaited(const struct vfio_uring_engine *e)
{
	return e->devices_active && e->dst.waiting_for_caller == e->devices_active;
}

/* A device that fails while its config load waits is no longer the caller's to release. */
static void device_stopped(struct vfio_uring_device *dev)
{
	if (dev->dst_state == VU_DST_WAIT_CALLER)
		dev->engine->dst.waiting_for_caller--;
}

static unsigned packets_queued(const struct vfio_uring_device *dev)
{
	return dev->queued;
}

static const char *channel_waits(const struct vu_channel *chan)
{
	return chan->recv_state == VU_RECV_PARKED ? "parked" : NULL;
}

const struct vu_side_ops vu_destination_ops = {
	.device_op = VU_OP_DEVICE_WRITE,
	.channel_op = VU_OP_CHANNEL_RECV,
	.init = destination_init,
	.device_init = device_init,
	.start = destination_start,
	.device_io_done = write_done,
	.channel_io_done = recv_done,
	.switchover = switchover,
	.finish = finish,
	.device_stopped = device_stopped,
	.packets_queued = packets_queued,
	.release_buffers = release_buffers,
	.only_caller_awaited = only_caller_awaited,
	.progress_expected = progress_expected,
	.channel_waits = channel_waits,
};
