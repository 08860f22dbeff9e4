/* SPDX-License-Identifier: MIT */
/*
 * The source side: per device, one read of the migration data fd in flight at a time into
 * a pool buffer; each completed read becomes one data packet (idx 0, 1, ...); read() == 0
 * ends the stream and the config packet (idx N) follows. Packets go to the channel with
 * the fewest bytes outstanding (see least_loaded_channel); each channel sends one packet
 * at a time, in order, after its handshake.
 *
 * A packet buffer holds the 276-byte header and 12-byte VFIO header in front of the data,
 * so the read lands where the send takes it from: the payload is never copied and a packet
 * leaves in one send.
 *
 * Every slow device reads in parallel: a real VFIO data fd blocks until the device has
 * produced the next piece, so reading devices one after another would cost the sum of their
 * times instead of the longest. Each such device keeps one read in flight whenever the pool
 * has room and the sockets are not backed up. Devices whose reads complete as fast as a
 * memory copy share a small window instead (see source_start).
 *
 * What an ACTIVE device does is its enum vu_src_state (engine.h), changed only by
 * vu_source_set_state(). A device is DONE when its config packet and every data packet have
 * been sent. A pre-copy device streams live first (precopy.c): its reads until stop_copy() make
 * PRECOPY packets, and a read that finds nothing then waits for the poll timer.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "probes.h"

/* A source device's legal transitions (enum vu_src_state): a bit per target state. */
static const unsigned src_transitions[] = {
	[VU_SRC_IDLE] = 1u << VU_SRC_READING | 1u << VU_SRC_WAIT_READ,
	[VU_SRC_READING] = 1u << VU_SRC_IDLE | 1u << VU_SRC_END_OF_STREAM |
			   1u << VU_SRC_PRECOPY_WAIT,
	[VU_SRC_WAIT_READ] = 1u << VU_SRC_READING,
	[VU_SRC_END_OF_STREAM] = 1u << VU_SRC_WAIT_CONFIG | 1u << VU_SRC_SENDING,
	[VU_SRC_WAIT_CONFIG] = 1u << VU_SRC_SENDING,
	[VU_SRC_SENDING] = 0,
	[VU_SRC_PRECOPY_WAIT] = 1u << VU_SRC_IDLE,
};

/* The one way a source device's state changes: asserts the transition, fires device_state. */
void vu_source_set_state(struct vfio_uring_device *dev, enum vu_src_state state)
{
	assert(src_transitions[dev->src_state] & (1u << state));
	VU_PROBE(device_state, (int)VFIO_URING_SOURCE, dev->idstr, dev->instance_id,
		 (int)dev->src_state, (int)state);
	dev->src_state = state;
}

static bool waiting_for_buffer(const struct vfio_uring_device *dev)
{
	return dev->src_state == VU_SRC_WAIT_READ || dev->src_state == VU_SRC_WAIT_CONFIG;
}

static void arm_pace_timer(struct vfio_uring_engine *e, uint64_t now)
{
	struct io_uring_sqe *sqe;
	uint64_t wait = e->src.pace_ns - now;

	if (e->src.pace_timer.in_flight)
		return; /* it fires no later than pace_ns: the channels check again then */
	e->src.pace_ts.tv_sec = (long long)(wait / 1000000000u);
	e->src.pace_ts.tv_nsec = (long long)(wait % 1000000000u);
	sqe = vu_engine_get_sqe(e);
	io_uring_prep_timeout(sqe, &e->src.pace_ts, 0, 0);
	vu_op_submitted(e, &e->src.pace_timer, sqe);
}

/*
 * The bandwidth cap: a virtual clock that each packet moves on by len / rate. A packet may
 * start when the clock is not ahead of now. The clock moves on from where it was, not from
 * now, so that the timer's wake-up latency does not add up packet after packet; but it never
 * lags more than VU_PACE_SLACK_NS behind now, so idle time is not saved up for a burst.
 * Charged once per packet, when its first byte is sent.
 */
#define VU_PACE_SLACK_NS 20000000u /* 20 ms: a timer that wakes late on a busy host */

/* The cap in force: the live phase's while pre-copy devices stream live, else the caller's. */
static uint64_t rate_limit(const struct vfio_uring_engine *e)
{
	return e->src.live ? e->src.precopy_rate_limit : e->src.rate_limit;
}

static bool pace(struct vu_channel *chan, size_t len)
{
	struct vfio_uring_engine *e = chan->engine;
	uint64_t rate = rate_limit(e);
	uint64_t now;

	if (!rate)
		return true;
	now = vu_now_ns();
	if (e->src.pace_ns > now) {
		chan->paced = true;
		arm_pace_timer(e, now);
		return false;
	}
	if (e->src.pace_ns + VU_PACE_SLACK_NS < now)
		e->src.pace_ns = now - VU_PACE_SLACK_NS;
	e->src.pace_ns += (uint64_t)((unsigned __int128)len * 1000000000u / rate);
	return true;
}

static void channel_kick(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len;

	if (chan->io.in_flight || vu_engine_failed(e))
		return;
	if (chan->handshake_pending) {
		data = chan->handshake;
		len = sizeof(chan->handshake);
	} else if (!STAILQ_EMPTY(&chan->send_queue)) {
		data = STAILQ_FIRST(&chan->send_queue)->data;
		len = STAILQ_FIRST(&chan->send_queue)->len;
		if (chan->send_offset == 0 && !pace(chan, len))
			return; /* the pace timer kicks it */
	} else {
		return;
	}
	sqe = vu_engine_get_sqe(e);
	/* MSG_WAITALL: the kernel (5.19+) completes short sends itself; older ones come back short. */
	io_uring_prep_send(sqe, chan->fd, data + chan->send_offset, len - chan->send_offset,
			   MSG_NOSIGNAL | e->msg_waitall);
	vu_op_submitted(e, &chan->io, sqe);
}

/*
 * The channel with the fewest bytes outstanding, up to one packet: a device stays on its
 * previous channel while that one is at most one packet behind the least loaded, so its
 * packets stay in order in one stream whenever that costs no parallelism (the destination
 * then holds fewer packets out of order: less memory, and no reorder stall). Otherwise the
 * least loaded wins, ties broken round-robin so that no socket queue grows deeper than the
 * others (sends complete as soon as data is in the socket buffer, so ties are common).
 */
static struct vu_channel *least_loaded_channel(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vu_channel *best = NULL;

	for (unsigned n = 0; n < e->n_channels; n++) {
		struct vu_channel *chan = &e->channels[(e->src.next_channel + n) % e->n_channels];

		if (!best || chan->outstanding < best->outstanding)
			best = chan;
	}
	if (dev->last_channel && dev->last_channel->outstanding <=
				     best->outstanding + VU_WIRE_PACKET_OVERHEAD + e->src.read_size)
		best = dev->last_channel;
	else
		e->src.next_channel = (best->index + 1) % e->n_channels;
	dev->last_channel = best;
	return best;
}

static void queue_packet(struct vfio_uring_device *dev, struct vu_buf *buf)
{
	struct vu_channel *chan = least_loaded_channel(dev);

	buf->dev = dev;
	STAILQ_INSERT_TAIL(&chan->send_queue, buf, send_link);
	chan->outstanding += buf->len;
	dev->engine->src.ready += buf->len;
	dev->packets_unsent++;
	channel_kick(chan);
}

static void issue_read(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	struct io_uring_sqe *sqe = vu_engine_get_sqe(e);

	dev->read_issued_ns = vu_now_ns();
	dev->read_live = dev->precopy_info && !e->src.stop_copy;
	/* Offset -1: the data fd is a stream read from its current position. */
	io_uring_prep_read(sqe, dev->data_fd, dev->reading->data + VU_WIRE_PACKET_OVERHEAD,
			   (unsigned)e->src.read_size, (uint64_t)-1);
	if (e->opts.flags & VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO)
		sqe->flags |= IOSQE_ASYNC;
	vu_op_submitted(e, &dev->io, sqe);
}

/* Builds and queues the config packet; false when the pool has no room for it yet. */
static bool queue_config(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;
	size_t payload, size;
	struct vu_buf *buf;

	if (!dev->config_saved) {
		dev->config_saved = true;
		dev->config_blob = NULL;
		dev->config_len = 0;
		if (dev->save_config) {
			int ret = dev->save_config(dev->opaque, &dev->config_blob, &dev->config_len);

			if (vu_engine_failed(e))
				return true; /* the callback cancelled the migration */
			if (ret < 0 || (dev->config_len && !dev->config_blob)) {
				ret = ret < 0 ? ret : -EINVAL;
				vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_SAVE_CONFIG, ret,
					       "save_config callback failed: %s", strerror(-ret));
				return true;
			}
		}
	}
	payload = VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING + dev->config_len;
	size = VU_WIRE_HEADER_SIZE + payload;
	if (payload > UINT32_MAX || size > e->pool.max_request) {
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_CONFIG_TOO_BIG, 0,
			       "config blob of %zu bytes does not fit the buffer cap", dev->config_len);
		return true;
	}
	buf = vu_pool_get(&e->pool, size);
	if (!buf)
		return false;
	vu_wire_encode_header(buf->data, dev->idstr, dev->instance_id, (uint32_t)payload);
	vu_wire_encode_vfio_header(buf->data + VU_WIRE_HEADER_SIZE, dev->next_idx,
				   VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	if (dev->config_len)
		memcpy(buf->data + VU_WIRE_PACKET_OVERHEAD + 8, dev->config_blob, dev->config_len);
	vu_wire_frame_config(buf->data + VU_WIRE_PACKET_OVERHEAD, dev->config_len);
	buf->len = size;
	buf->idx = dev->next_idx;
	buf->flags = VU_WIRE_VFIO_FLAG_CONFIG_STATE;
	vu_source_set_state(dev, VU_SRC_SENDING);
	queue_packet(dev, buf);
	return true;
}

/* Starts the device's next step; false when it has to wait for pool space. */
static bool device_step(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	if (vu_engine_failed(e) || dev->state != VFIO_URING_DEVICE_ACTIVE ||
	    dev->src_state == VU_SRC_READING || dev->src_state == VU_SRC_SENDING)
		return true;
	if (dev->src_state == VU_SRC_END_OF_STREAM || dev->src_state == VU_SRC_WAIT_CONFIG)
		return queue_config(dev);
	if (dev->src_state == VU_SRC_PRECOPY_WAIT)
		return true; /* the poll timer or stop_copy() wakes it */
	if (e->src.ready + (dev->reads_fast ? e->src.reading_fast : 0) + VU_WIRE_PACKET_OVERHEAD +
		    e->src.read_size > e->src.ready_limit)
		return false; /* enough packets wait for the sockets, or will at once */
	dev->reading = vu_pool_get(&e->pool, VU_WIRE_PACKET_OVERHEAD + e->src.read_size);
	if (!dev->reading)
		return false;
	if (dev->reads_fast)
		e->src.reading_fast += dev->reading->capacity;
	vu_source_set_state(dev, VU_SRC_READING);
	issue_read(dev);
	return true;
}

static void wait_for_buffer(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	vu_source_set_state(dev, dev->src_state == VU_SRC_END_OF_STREAM ? VU_SRC_WAIT_CONFIG
								   : VU_SRC_WAIT_READ);
	STAILQ_INSERT_TAIL(&e->src.waiting, dev, waiting_link);
}

/* Serves waiting devices in arrival order while the pool has room: fair under backpressure. */
static void serve_waiting_devices(struct vfio_uring_engine *e)
{
	struct vfio_uring_device *dev;

	while ((dev = STAILQ_FIRST(&e->src.waiting))) {
		if (!device_step(dev))
			return;
		STAILQ_REMOVE_HEAD(&e->src.waiting, waiting_link);
	}
}

void vu_source_device_pump(struct vfio_uring_device *dev)
{
	struct vfio_uring_engine *e = dev->engine;

	if (!STAILQ_EMPTY(&e->src.waiting)) { /* others wait for space already: queue behind them */
		if (!waiting_for_buffer(dev))
			wait_for_buffer(dev);
		serve_waiting_devices(e);
		return;
	}
	if (!device_step(dev))
		wait_for_buffer(dev);
}

/*
 * Bytes per read: the configured chunk, unless the cap cannot hold a read buffer for every
 * device plus the backlog of ready packets (QEMU reads min(1 MiB, stop-copy size) per
 * device into memory it does not bound). Smaller reads keep every device reading at once
 * within the cap instead of leaving some devices waiting for a buffer.
 */
static size_t read_size(const struct vfio_uring_engine *e)
{
	size_t share = e->pool.cap / (e->devices_active + e->n_channels + 2);
	size_t fit = share > VU_WIRE_PACKET_OVERHEAD + VU_POOL_GRANULE
			     ? (share - VU_WIRE_PACKET_OVERHEAD) / VU_POOL_GRANULE * VU_POOL_GRANULE
			     : VU_POOL_GRANULE;

	return fit < e->opts.chunk_size ? fit : e->opts.chunk_size;
}

/*
 * A read is fast when it moved its bytes at memory-copy speed, at least 1 GB/s (a 1 MiB
 * read within 1 ms): the data was there, not produced on demand. Real devices produce
 * migration state at hundreds of MB/s; a memfd read takes about 0.1 ms per MiB here. An
 * end-of-stream read (0 bytes) keeps the device's class.
 */
static bool read_was_fast(const struct vfio_uring_device *dev, int res, uint64_t took)
{
	if (res == 0)
		return dev->reads_fast;
	return took <= (uint64_t)res + 50000u; /* 1 ns per byte, plus 50 us for the round trip */
}

/*
 * Watches the channel's peer with a receive that peeks: a destination sends nothing on a
 * channel, so the receive completes only when it closes (0) or resets (<0) the channel, or
 * when the caller's own protocol puts bytes there (a VMM's verdict after the transfer: left
 * unread, for the caller).
 *
 * Only while live (pre-copy): a source may then have nothing to send for as long as the VM
 * runs, and would learn of a failed destination only at its next send. In stop-copy the
 * sends flow and fail first; there a pending receive on every socket cost 5% of the
 * throughput and 10% more CPU per GiB on memfds (measured A/B, 4 pairs of runs).
 */
static void watch_peer(struct vu_channel *chan)
{
	struct vfio_uring_engine *e = chan->engine;
	struct io_uring_sqe *sqe = vu_engine_get_sqe(e);

	io_uring_prep_recv(sqe, chan->fd, &chan->watch_byte, 1, MSG_PEEK);
	vu_op_submitted(e, &chan->watch, sqe);
}

static int source_start(struct vfio_uring_engine *e)
{
	e->src.read_size = read_size(e);
	/*
	 * The window: packets read and waiting for the sockets, one being sent per channel plus
	 * two ready, at least four. Reading far ahead of the sockets gains nothing and costs
	 * cache: a packet read just before it is sent is still in the CPU cache when the send
	 * copies it (the last-level cache here is 32 MiB; a 64 MiB read-ahead made every send
	 * copy come from memory).
	 *
	 * Reads in flight count only for devices that read as fast as a memory copy (memfds,
	 * devices whose state is already in host memory): their data lands at once. A read
	 * blocked on a slow device holds no hot data, and counting it would serialise the
	 * devices (measured: 64 devices at 6 MB/s took 11x as long as a thread per device with
	 * a window of six packets that counted every read); letting fast devices all read at
	 * once instead cost 7% more CPU per GiB on memfds. A device starts out slow (its first
	 * read is issued at once) and is classified by each read's time (see read_was_fast).
	 */
	e->src.ready_limit = (e->n_channels + 2 < 4 ? 4 : e->n_channels + 2) *
			     (VU_WIRE_PACKET_OVERHEAD + e->src.read_size);
	for (unsigned i = 0; i < e->n_channels; i++) {
		struct vu_channel *chan = &e->channels[i];

		STAILQ_INIT(&chan->send_queue); /* here: add_channel() moves the channels */
		chan->watch = (struct vu_op){ .kind = VU_OP_SIDE, .owner = e };
		vu_wire_encode_handshake(chan->handshake, e->opts.uuid, (uint8_t)i);
		chan->handshake_pending = true;
		channel_kick(chan);
	}
	vu_precopy_start(e);
	for (unsigned i = 0; i < e->n_channels && e->src.live && !vu_engine_failed(e); i++)
		watch_peer(&e->channels[i]);
	for (unsigned i = 0; i < e->n_devices; i++)
		if (e->devices[i]->state == VFIO_URING_DEVICE_ACTIVE)
			vu_source_device_pump(e->devices[i]);
	return 0;
}

static void read_done(struct vfio_uring_device *dev, int res)
{
	struct vfio_uring_engine *e = dev->engine;
	struct vu_buf *buf = dev->reading;
	uint64_t now;

	if (res > 0) /* counted even after a failure: the fd has moved by that much */
		dev->data_bytes += (uint64_t)res;
	if (vu_engine_failed(e))
		return; /* teardown returns dev->reading to the pool */
	if (res == -EINTR || res == -EAGAIN) {
		issue_read(dev);
		return;
	}
	if (dev->read_live && (res == -ENOMSG || res == 0)) {
		/* PRE_COPY's temporary end of stream: nothing more for now. */
		dev->reading = NULL;
		if (dev->reads_fast)
			e->src.reading_fast -= buf->capacity;
		vu_pool_put(&e->pool, buf);
		vu_precopy_read_empty(dev);
		return;
	}
	if (res < 0) {
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_DATA_FD_READ, res,
			       "read of the migration data fd failed: %s", strerror(-res));
		return;
	}
	now = vu_now_ns(); /* one clock read per read: its class, its rate, pre-copy's poll */
	dev->reading = NULL;
	if (dev->reads_fast)
		e->src.reading_fast -= buf->capacity;
	dev->reads_fast = read_was_fast(dev, res, now - dev->read_issued_ns);
	if (res == 0) {
		vu_pool_put(&e->pool, buf);
		vu_source_set_state(dev, VU_SRC_END_OF_STREAM);
		vu_source_device_pump(dev);
		return;
	}
	if (dev->next_idx >= VU_WIRE_VFIO_IDX_INVALID - 1) { /* the config packet needs an idx */
		vu_pool_put(&e->pool, buf);
		vu_engine_fail(e, dev, NULL, VFIO_URING_REASON_IDX_EXHAUSTED, 0,
			       "more packets than a u32 idx can number");
		return;
	}
	dev->read_busy_ns += now - dev->read_issued_ns;
	dev->read_timed_bytes += (uint64_t)res;
	buf->flags = dev->read_live ? VU_WIRE_VFIO_FLAG_PRECOPY : 0;
	vu_wire_encode_header(buf->data, dev->idstr, dev->instance_id,
			      VU_WIRE_VFIO_HEADER_SIZE + (uint32_t)res);
	vu_wire_encode_vfio_header(buf->data + VU_WIRE_HEADER_SIZE, dev->next_idx, buf->flags);
	buf->len = VU_WIRE_PACKET_OVERHEAD + (size_t)res;
	buf->idx = dev->next_idx++;
	vu_source_set_state(dev, VU_SRC_IDLE);
	queue_packet(dev, buf);
	if (dev->read_live)
		vu_precopy_read_data(dev, (uint64_t)res, now);
	vu_source_device_pump(dev);
}

static void kick_paced_channels(struct vfio_uring_engine *e)
{
	for (unsigned i = 0; i < e->n_channels; i++) {
		struct vu_channel *chan = &e->channels[i];

		if (chan->paced) {
			chan->paced = false;
			channel_kick(chan);
		}
	}
}

static void watch_done(struct vu_channel *chan, int res)
{
	struct vfio_uring_engine *e = chan->engine;

	/*
	 * Only while RUNNING: after the last device is DONE the destination may close at once
	 * (the sends' completions come before its close), and a failed engine knows already.
	 */
	if (res > 0 || res == -ECANCELED || e->state != VU_ENGINE_RUNNING)
		return;
	if (res == -EINTR || res == -EAGAIN) {
		watch_peer(chan);
		return;
	}
	vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_PEER_CLOSED, res ? res : -EPIPE,
		       "the destination %s the channel during the transfer (it failed or was "
		       "cancelled: its own error says why)",
		       res ? "reset" : "closed");
}

static void side_op_done(struct vu_op *op, int res)
{
	struct vfio_uring_engine *e = op->owner;

	if (op == &e->src.poll_timer) {
		vu_precopy_timer_done(e, res);
		return;
	}
	if (op != &e->src.pace_timer) {
		watch_done((struct vu_channel *)((char *)op - offsetof(struct vu_channel, watch)), res);
		return;
	}
	/* the pace timer */
	(void)res; /* -ETIME when it expired, -ECANCELED when the cap changed: the same next step */
	if (!vu_engine_failed(e))
		kick_paced_channels(e);
}

void vu_source_rate_changed(struct vfio_uring_engine *e)
{
	uint64_t now = vu_now_ns();

	/* The old rate's debt is forgiven: the new one applies from the next packet on. */
	if (e->src.pace_ns > now)
		e->src.pace_ns = now;
	/* Wake the waiting channels now rather than at a time computed for the old rate. */
	if (!vu_engine_failed(e))
		vu_engine_cancel_op(e, &e->src.pace_timer);
}

void vu_source_set_rate_limit(struct vfio_uring_engine *e, uint64_t bytes_per_second)
{
	e->src.rate_limit = bytes_per_second;
	vu_source_rate_changed(e);
}

static void send_done(struct vu_channel *chan, int res)
{
	struct vfio_uring_engine *e = chan->engine;
	struct vfio_uring_device *dev;
	struct vu_buf *buf;
	size_t len;

	if (vu_engine_failed(e))
		return; /* teardown returns the queued buffers */
	if (res == -EINTR || res == -EAGAIN) {
		channel_kick(chan);
		return;
	}
	if (res <= 0) {
		res = res ? res : -EPIPE;
		vu_engine_fail(e, NULL, chan, VFIO_URING_REASON_SOCKET_SEND, res, "send failed: %s",
			       strerror(-res));
		return;
	}
	chan->send_offset += (size_t)res;
	chan->stats.wire_bytes += (uint64_t)res;
	len = chan->handshake_pending ? sizeof(chan->handshake) : STAILQ_FIRST(&chan->send_queue)->len;
	if (chan->send_offset < len) { /* a short send: the rest follows, in order */
		channel_kick(chan);
		return;
	}
	chan->send_offset = 0;
	if (chan->handshake_pending) {
		chan->handshake_pending = false;
		VU_PROBE(handshake_sent, chan->index);
		channel_kick(chan);
		return;
	}
	buf = STAILQ_FIRST(&chan->send_queue);
	STAILQ_REMOVE_HEAD(&chan->send_queue, send_link);
	chan->outstanding -= buf->len;
	e->src.ready -= buf->len;
	chan->stats.packets++;
	dev = buf->dev;
	dev->packets++;
	dev->bytes += buf->len - VU_WIRE_HEADER_SIZE;
	dev->packets_unsent--;
	VU_PROBE(packet_sent, dev->idstr, dev->instance_id, buf->idx, buf->len - VU_WIRE_HEADER_SIZE,
		 chan->index);
	vu_pool_put(&e->pool, buf);
	channel_kick(chan);
	if (dev->src_state == VU_SRC_SENDING && dev->packets_unsent == 0)
		vu_device_done(dev);
	serve_waiting_devices(e);
}

static void release_buffers(struct vfio_uring_engine *e)
{
	struct vu_buf *buf;

	for (unsigned i = 0; i < e->n_devices; i++) {
		struct vfio_uring_device *dev = e->devices[i];

		if (dev->reading)
			vu_pool_put(&e->pool, dev->reading);
		dev->reading = NULL;
	}
	for (unsigned i = 0; i < e->n_channels; i++) {
		struct vu_channel *chan = &e->channels[i];

		while ((buf = STAILQ_FIRST(&chan->send_queue))) {
			STAILQ_REMOVE_HEAD(&chan->send_queue, send_link);
			vu_pool_put(&e->pool, buf);
		}
	}
}

static void source_init(struct vfio_uring_engine *e)
{
	STAILQ_INIT(&e->src.waiting);
	e->src.pace_timer = (struct vu_op){ .kind = VU_OP_SIDE, .owner = e };
	e->src.poll_timer = (struct vu_op){ .kind = VU_OP_SIDE, .owner = e };
}

void vu_source_stop_watching(struct vfio_uring_engine *e)
{
	for (unsigned i = 0; i < e->n_channels; i++)
		vu_engine_cancel_op(e, &e->channels[i].watch);
}

static void source_cancel(struct vfio_uring_engine *e)
{
	vu_engine_cancel_op(e, &e->src.pace_timer);
	vu_engine_cancel_op(e, &e->src.poll_timer);
	vu_source_stop_watching(e);
}

/* Every device DONE: the watches are all that may still be in flight. */
static void source_finish(struct vfio_uring_engine *e)
{
	source_cancel(e);
}

/* While live, an idle device may stay idle for as long as the VM runs: no timeout. */
static bool progress_expected(const struct vfio_uring_engine *e)
{
	return !e->src.live;
}

const struct vu_side_ops vu_source_ops = {
	.device_op = VU_OP_DEVICE_READ,
	.channel_op = VU_OP_CHANNEL_SEND,
	.init = source_init,
	.cancel = source_cancel,
	.start = source_start,
	.device_io_done = read_done,
	.channel_io_done = send_done,
	.side_op_done = side_op_done,
	.finish = source_finish,
	.release_buffers = release_buffers,
	.progress_expected = progress_expected,
};
