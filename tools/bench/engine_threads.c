/* SPDX-License-Identifier: MIT */
/*
 * `threads`: a faithful model of QEMU 10's VFIO multifd device state transfer
 * (hw/vfio/migration-multifd.c, migration/multifd*.c; see shared notes qemu-multifd.md).
 *
 * Source
 *   - one save thread per device: read(data_fd, chunk) into the device's read buffer, then
 *     DUPLICATE it into a newly allocated packet (QEMU's multifd_queue_device_state copies
 *     the data), then multifd_send(): under one global mutex, wait for a ready channel
 *     (channels_ready semaphore), take the next idle channel round-robin, hand it the packet;
 *   - one sender thread per channel: handshake first, then writev(276-byte header, payload)
 *     for each packet it is handed, free it, post channels_ready.
 * Destination
 *   - one receiver thread per channel: handshake check, then per packet read header and
 *     payload into the channel's buffer, route by (idstr, instance_id), and DUPLICATE the
 *     data into the device's buffer array at idx (QEMU's g_memdup2 in
 *     vfio_multifd_load_state_buffer); the array grows without bound (QEMU's default);
 *   - one load thread per device, started at switchover start: writes the buffers strictly
 *     in idx order (partial writes continued), then loads the config under a global lock
 *     (QEMU's BQL).
 */
#include "pktio.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct queued_packet {
	unsigned dev;
	size_t len;       /* VFIO header + data */
	uint8_t payload[]; /* 12-byte VFIO header, then the data */
};

/* ---- source ---- */

struct send_channel {
	pthread_t thread;
	bool started;
	int fd;
	unsigned id;
	sem_t sem;                         /* a packet (or quit) is waiting */
	atomic_bool pending;               /* QEMU's p->pending_job */
	struct queued_packet *pkt;
	struct tsrc *src;
};

struct save_device {
	pthread_t thread;
	bool started;
	unsigned dev;
	struct tsrc *src;
};

struct tsrc {
	struct side_ctx *ctx;
	pthread_mutex_t send_mutex;        /* QEMU's multifd_send_mutex */
	sem_t channels_ready;
	unsigned next_channel;
	atomic_bool abort;
	atomic_bool quit;
	pthread_mutex_t err_lock;
	int err;
	char msg[200];
	struct send_channel *ch;
	struct save_device *dev;
};

static void src_fail(struct tsrc *s, int err, const char *fmt, unsigned who)
{
	pthread_mutex_lock(&s->err_lock);
	if (!s->err) {
		s->err = err;
		snprintf(s->msg, sizeof(s->msg), fmt, who);
		snprintf(s->msg + strlen(s->msg), sizeof(s->msg) - strlen(s->msg), ": %s",
			 strerror(-err));
	}
	pthread_mutex_unlock(&s->err_lock);
	if (!atomic_exchange(&s->abort, true)) {
		/* Wake every save thread that may wait for a channel. */
		for (unsigned i = 0; i < s->ctx->ndev + s->ctx->nchan; i++)
			sem_post(&s->channels_ready);
	}
}

static void *sender_thread(void *arg)
{
	struct send_channel *ch = arg;
	struct tsrc *s = ch->src;
	uint8_t hdr[VU_WIRE_HEADER_SIZE];
	char idstr[64];
	int err = pkt_send_handshake(ch->fd, s->ctx->uuid, ch->id);

	if (err) {
		src_fail(s, err, "channel %u: sending the handshake", ch->id);
		return NULL;
	}
	sem_post(&s->channels_ready);
	for (;;) {
		struct queued_packet *pkt;
		struct iovec iov[2];

		sem_wait(&ch->sem);
		if (!atomic_load_explicit(&ch->pending, memory_order_acquire)) {
			if (atomic_load(&s->quit) || atomic_load(&s->abort))
				break;
			continue;
		}
		pkt = ch->pkt;
		ch->pkt = NULL;
		device_idstr(pkt->dev, idstr, sizeof(idstr));
		vu_wire_encode_header(hdr, idstr, device_instance_id(pkt->dev), (uint32_t)pkt->len);
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ pkt->payload, pkt->len };
		err = atomic_load(&s->abort) ? -ECANCELED : pkt_writev_full(ch->fd, iov, 2);
		free(pkt);
		atomic_store_explicit(&ch->pending, false, memory_order_release);
		if (err) {
			src_fail(s, err, "channel %u: sending a packet", ch->id);
			break;
		}
		sem_post(&s->channels_ready);
	}
	return NULL;
}

/* QEMU's multifd_send(): hand the packet to the next idle channel, round-robin. */
static int multifd_send(struct tsrc *s, struct queued_packet *pkt)
{
	unsigned n = s->ctx->nchan;
	struct send_channel *ch = NULL;

	pthread_mutex_lock(&s->send_mutex);
	sem_wait(&s->channels_ready);
	if (atomic_load(&s->abort)) {
		pthread_mutex_unlock(&s->send_mutex);
		free(pkt);
		return -ECANCELED;
	}
	for (unsigned i = 0;; i = (i + 1) % n) {
		struct send_channel *c = &s->ch[(s->next_channel + i) % n];

		if (!atomic_load_explicit(&c->pending, memory_order_acquire)) {
			ch = c;
			s->next_channel = (ch->id + 1) % n;
			break;
		}
	}
	ch->pkt = pkt;
	atomic_store_explicit(&ch->pending, true, memory_order_release);
	sem_post(&ch->sem);
	pthread_mutex_unlock(&s->send_mutex);
	return 0;
}

static void *save_thread(void *arg)
{
	struct save_device *sd = arg;
	struct tsrc *s = sd->src;
	struct side_ctx *ctx = s->ctx;
	int fd = ctx->dev_fds[sd->dev];
	uint8_t *buf = malloc(ctx->chunk);  /* QEMU's migration->data_buffer */
	uint8_t blob[BENCH_CONFIG_BLOB_SIZE];
	struct queued_packet *pkt;
	uint32_t idx = 0;
	size_t blen;

	if (!buf) {
		src_fail(s, -ENOMEM, "device %u: read buffer", sd->dev);
		return NULL;
	}
	while (!atomic_load(&s->abort)) {
		ssize_t n = read(fd, buf, ctx->chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			src_fail(s, -errno, "device %u: reading the data fd", sd->dev);
			break;
		}
		if (n == 0)
			break;
		pkt = malloc(sizeof(*pkt) + VU_WIRE_VFIO_HEADER_SIZE + (size_t)n);
		if (!pkt) {
			src_fail(s, -ENOMEM, "device %u: queueing a packet", sd->dev);
			break;
		}
		pkt->dev = sd->dev;
		pkt->len = VU_WIRE_VFIO_HEADER_SIZE + (size_t)n;
		vu_wire_encode_vfio_header(pkt->payload, idx++, 0);
		memcpy(pkt->payload + VU_WIRE_VFIO_HEADER_SIZE, buf, (size_t)n); /* QEMU's copy */
		if (multifd_send(s, pkt))
			break;
	}
	free(buf);
	if (atomic_load(&s->abort))
		return NULL;
	/* The config packet: idx N, CONFIG_STATE, QEMU's framing around the blob. */
	blen = device_config_blob(sd->dev, ctx->cfg->seed, blob, sizeof(blob));
	pkt = malloc(sizeof(*pkt) + VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING + blen);
	if (!pkt) {
		src_fail(s, -ENOMEM, "device %u: config packet", sd->dev);
		return NULL;
	}
	pkt->dev = sd->dev;
	pkt->len = VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING + blen;
	vu_wire_encode_vfio_header(pkt->payload, idx, VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	memcpy(pkt->payload + VU_WIRE_VFIO_HEADER_SIZE + 8, blob, blen);
	vu_wire_frame_config(pkt->payload + VU_WIRE_VFIO_HEADER_SIZE, blen);
	multifd_send(s, pkt);
	return NULL;
}

static int threads_src_setup(struct side_ctx *ctx)
{
	struct tsrc *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	ctx->priv = s;
	s->ctx = ctx;
	s->ch = calloc(ctx->nchan, sizeof(*s->ch));
	s->dev = calloc(ctx->ndev, sizeof(*s->dev));
	if (!s->ch || !s->dev)
		return -ENOMEM;
	pthread_mutex_init(&s->send_mutex, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	sem_init(&s->channels_ready, 0, 0);
	for (unsigned i = 0; i < ctx->nchan; i++) {
		s->ch[i] = (struct send_channel){ .fd = ctx->chans[i], .id = i, .src = s };
		sem_init(&s->ch[i].sem, 0, 0);
	}
	for (unsigned d = 0; d < ctx->ndev; d++)
		s->dev[d] = (struct save_device){ .dev = d, .src = s };
	return 0;
}

static int threads_src_run(struct side_ctx *ctx)
{
	struct tsrc *s = ctx->priv;
	int err;

	for (unsigned i = 0; i < ctx->nchan; i++) {
		err = pthread_create(&s->ch[i].thread, NULL, sender_thread, &s->ch[i]);
		if (err) {
			src_fail(s, -err, "channel %u: creating the sender thread", i);
			break;
		}
		s->ch[i].started = true;
	}
	for (unsigned d = 0; d < ctx->ndev && !atomic_load(&s->abort); d++) {
		err = pthread_create(&s->dev[d].thread, NULL, save_thread, &s->dev[d]);
		if (err) {
			src_fail(s, -err, "device %u: creating the save thread", d);
			break;
		}
		s->dev[d].started = true;
	}
	for (unsigned d = 0; d < ctx->ndev; d++)
		if (s->dev[d].started)
			pthread_join(s->dev[d].thread, NULL);
	atomic_store(&s->quit, true);
	for (unsigned i = 0; i < ctx->nchan; i++)
		sem_post(&s->ch[i].sem);
	for (unsigned i = 0; i < ctx->nchan; i++)
		if (s->ch[i].started)
			pthread_join(s->ch[i].thread, NULL);
	for (unsigned i = 0; i < ctx->nchan; i++)
		s->ch[i].started = false;
	if (s->err)
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "threads source: %s", s->msg);
	return s->err;
}

/* ---- destination ---- */

struct load_buffer {
	uint8_t *data;
	size_t len;
	bool present;
};

struct load_device {
	pthread_t thread;
	bool started;
	unsigned dev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct load_buffer *bufs;          /* indexed by idx, grows without limit */
	size_t nbufs;
	uint32_t config_idx;               /* UINT32_MAX until the config packet arrived */
	unsigned config_loads;
	bool done;
	struct tdst *dst;
};

struct recv_channel {
	pthread_t thread;
	bool started;
	int fd;
	unsigned pos;
	uint8_t *buf;                      /* QEMU's per-channel receive buffer */
	struct tdst *dst;
};

struct tdst {
	struct side_ctx *ctx;
	pthread_mutex_t bql;               /* config loads run under QEMU's big lock */
	pthread_mutex_t err_lock;
	atomic_bool abort;
	int err;
	char msg[200];
	bool *channel_seen;
	atomic_uint receivers_live;
	struct recv_channel *ch;
	struct load_device *dev;
	uint32_t max_payload;
};

static void dst_fail(struct tdst *d, int err, const char *msg)
{
	pthread_mutex_lock(&d->err_lock);
	if (!d->err) {
		d->err = err;
		snprintf(d->msg, sizeof(d->msg), "%s", msg);
	}
	pthread_mutex_unlock(&d->err_lock);
	atomic_store(&d->abort, true);
	for (unsigned i = 0; i < d->ctx->ndev; i++) {
		pthread_mutex_lock(&d->dev[i].lock);
		pthread_cond_broadcast(&d->dev[i].cond);
		pthread_mutex_unlock(&d->dev[i].lock);
	}
}

/* QEMU's vfio_multifd_load_state_buffer(): checks, then a copy into the buffer array. */
static int load_state_buffer(struct tdst *d, unsigned dev, const uint8_t *payload, size_t len,
			     char *msg, size_t msg_len)
{
	struct load_device *ld = &d->dev[dev];
	struct vu_wire_vfio_header vh;
	int err = vu_wire_decode_vfio_header(payload, len, &vh, msg, msg_len);
	size_t dlen = len - VU_WIRE_VFIO_HEADER_SIZE;
	uint8_t *copy;

	if (err)
		return err;
	copy = malloc(dlen ? dlen : 1);
	if (!copy) {
		snprintf(msg, msg_len, "device %u idx %u: out of memory", dev, vh.idx);
		return -ENOMEM;
	}
	memcpy(copy, payload + VU_WIRE_VFIO_HEADER_SIZE, dlen); /* QEMU's g_memdup2 */
	pthread_mutex_lock(&ld->lock);
	if (vh.idx >= ld->nbufs) {
		size_t n = ld->nbufs ? ld->nbufs : 16;
		struct load_buffer *nb;

		while (n <= vh.idx)
			n *= 2;
		nb = realloc(ld->bufs, n * sizeof(*nb));
		if (!nb) {
			pthread_mutex_unlock(&ld->lock);
			free(copy);
			return -ENOMEM;
		}
		memset(nb + ld->nbufs, 0, (n - ld->nbufs) * sizeof(*nb));
		ld->bufs = nb;
		ld->nbufs = n;
	}
	if (ld->bufs[vh.idx].present) {
		pthread_mutex_unlock(&ld->lock);
		free(copy);
		snprintf(msg, msg_len, "device %u: idx %u received twice", dev, vh.idx);
		return VU_EVFIO_IDX_DUP;
	}
	if (vh.flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
		if (ld->config_idx != UINT32_MAX) {
			pthread_mutex_unlock(&ld->lock);
			free(copy);
			snprintf(msg, msg_len, "device %u: second config packet", dev);
			return VU_EVFIO_CONFIG_DUP;
		}
		ld->config_idx = vh.idx;
	}
	ld->bufs[vh.idx] = (struct load_buffer){ copy, dlen, true };
	pthread_cond_signal(&ld->cond);
	pthread_mutex_unlock(&ld->lock);
	return 0;
}

static void *receiver_thread(void *arg)
{
	struct recv_channel *ch = arg;
	struct tdst *d = ch->dst;
	struct side_ctx *ctx = d->ctx;
	char msg[160], full[200];
	unsigned id;
	int err = pkt_recv_handshake(ch->fd, ctx->uuid, ctx->nchan, msg, sizeof(msg), &id);

	if (!err) {
		pthread_mutex_lock(&d->err_lock);
		if (d->channel_seen[id]) {
			err = VU_EHS_CHANNEL_DUP;
			snprintf(msg, sizeof(msg), "channel id %u seen twice", id);
		}
		d->channel_seen[id] = true;
		pthread_mutex_unlock(&d->err_lock);
	}
	while (!err && !atomic_load(&d->abort)) {
		struct vu_wire_header hdr;
		int dev;

		err = pkt_recv_header(ch->fd, &hdr, d->max_payload, msg, sizeof(msg));
		if (err == 1) {
			err = 0;
			break;
		}
		if (err)
			break;
		dev = pkt_find_device(&hdr, ctx->ndev);
		if (dev < 0) {
			err = dev;
			snprintf(msg, sizeof(msg), "unknown device %.64s instance %u", hdr.idstr,
				 hdr.instance_id);
			break;
		}
		err = read_full(ch->fd, ch->buf, hdr.next_packet_size);
		if (err) {
			snprintf(msg, sizeof(msg), "device %d: truncated payload", dev);
			err = err == -EPIPE ? VU_ESTREAM_TRUNCATED : err;
			break;
		}
		err = load_state_buffer(d, (unsigned)dev, ch->buf, hdr.next_packet_size, msg,
					sizeof(msg));
	}
	if (err && !atomic_load(&d->abort)) {
		snprintf(full, sizeof(full), "channel %u: %s", ch->pos, msg);
		dst_fail(d, err, full);
	}
	if (atomic_fetch_sub(&d->receivers_live, 1) == 1 && !atomic_load(&d->abort)) {
		/* Every channel ended: any device not complete now never will be. */
		bool all_done = true;

		for (unsigned i = 0; i < ctx->ndev; i++) {
			pthread_mutex_lock(&d->dev[i].lock);
			all_done &= d->dev[i].config_idx != UINT32_MAX;
			pthread_mutex_unlock(&d->dev[i].lock);
		}
		if (!all_done)
			dst_fail(d, VU_ESTREAM_ENDED, "every channel closed before all devices arrived");
	}
	return NULL;
}

/* QEMU's vfio_load_bufs_thread(). */
static void *load_thread(void *arg)
{
	struct load_device *ld = arg;
	struct tdst *d = ld->dst;
	struct side_ctx *ctx = d->ctx;
	int fd = ctx->dev_fds[ld->dev];
	char msg[160];

	for (uint32_t idx = 0;; idx++) {
		struct load_buffer b;
		bool is_config;
		int err;

		pthread_mutex_lock(&ld->lock);
		while (!atomic_load(&d->abort) && (idx >= ld->nbufs || !ld->bufs[idx].present))
			pthread_cond_wait(&ld->cond, &ld->lock);
		if (atomic_load(&d->abort)) {
			pthread_mutex_unlock(&ld->lock);
			return NULL;
		}
		b = ld->bufs[idx];
		ld->bufs[idx].data = NULL;
		is_config = idx == ld->config_idx;
		pthread_mutex_unlock(&ld->lock);
		if (is_config) {
			const uint8_t *blob;
			size_t blen;

			err = vu_wire_unframe_config(b.data, b.len, &blob, &blen, msg, sizeof(msg));
			if (!err) {
				pthread_mutex_lock(&d->bql);
				ld->config_loads++;
				if (!device_config_check(ld->dev, ctx->cfg->seed, blob, blen))
					err = -EBADMSG;
				pthread_mutex_unlock(&d->bql);
			}
			free(b.data);
			if (err) {
				char full[200];

				snprintf(full, sizeof(full), "device %u: config blob: %s", ld->dev,
					 err == -EBADMSG ? "differs from the source's" : msg);
				dst_fail(d, err, full);
				return NULL;
			}
			ld->done = true;
			return NULL;
		}
		err = write_full(fd, b.data, b.len);
		free(b.data);
		if (err) {
			char full[200];

			snprintf(full, sizeof(full), "device %u idx %u: writing the data fd: %s",
				 ld->dev, idx, strerror(-err));
			dst_fail(d, err, full);
			return NULL;
		}
	}
}

static int threads_dst_setup(struct side_ctx *ctx)
{
	struct tdst *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	ctx->priv = d;
	d->ctx = ctx;
	d->max_payload = pkt_max_payload(ctx->chunk);
	pthread_mutex_init(&d->bql, NULL);
	pthread_mutex_init(&d->err_lock, NULL);
	d->channel_seen = calloc(ctx->nchan, sizeof(bool));
	d->ch = calloc(ctx->nchan, sizeof(*d->ch));
	d->dev = calloc(ctx->ndev, sizeof(*d->dev));
	if (!d->channel_seen || !d->ch || !d->dev)
		return -ENOMEM;
	for (unsigned i = 0; i < ctx->ndev; i++) {
		struct load_device *ld = &d->dev[i];

		ld->dev = i;
		ld->dst = d;
		ld->config_idx = UINT32_MAX;
		pthread_mutex_init(&ld->lock, NULL);
		pthread_cond_init(&ld->cond, NULL);
	}
	atomic_store(&d->receivers_live, ctx->nchan);
	for (unsigned i = 0; i < ctx->nchan; i++) {
		struct recv_channel *ch = &d->ch[i];

		ch->fd = ctx->chans[i];
		ch->pos = i;
		ch->dst = d;
		ch->buf = malloc(d->max_payload);
		if (!ch->buf)
			return -ENOMEM;
		err = pthread_create(&ch->thread, NULL, receiver_thread, ch);
		if (err)
			return -err;
		ch->started = true;
	}
	return 0;
}

static int threads_dst_run(struct side_ctx *ctx, double switchover_at)
{
	struct tdst *d = ctx->priv;
	bool ok = true;
	int err;

	/* The load threads start at switchover, as in QEMU; until then everything queues. */
	sleep_until(switchover_at);
	for (unsigned i = 0; i < ctx->ndev; i++) {
		err = pthread_create(&d->dev[i].thread, NULL, load_thread, &d->dev[i]);
		if (err) {
			dst_fail(d, -err, "creating a load thread");
			break;
		}
		d->dev[i].started = true;
	}
	for (unsigned i = 0; i < ctx->ndev; i++) {
		if (d->dev[i].started)
			pthread_join(d->dev[i].thread, NULL);
		d->dev[i].started = false;
		ok &= d->dev[i].done && d->dev[i].config_loads == 1;
	}
	ctx->res->config_ok = ok && !d->err;
	if (d->err)
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "threads destination: %s", d->msg);
	return d->err;
}

static void threads_teardown(struct side_ctx *ctx)
{
	if (!ctx->priv)
		return;
	if (ctx->side == SIDE_SOURCE) {
		struct tsrc *s = ctx->priv;

		if (s->ch) {
			atomic_store(&s->abort, true);
			atomic_store(&s->quit, true);
			for (unsigned i = 0; i < ctx->nchan; i++) {
				if (!s->ch[i].started)
					continue;
				sem_post(&s->ch[i].sem);
				pthread_join(s->ch[i].thread, NULL);
			}
		}
		free(s->ch);
		free(s->dev);
		free(s);
	} else {
		struct tdst *d = ctx->priv;

		if (d->dev)
			dst_fail(d, d->err ? d->err : -ECANCELED, "teardown");
		/* Unblock the receivers (their peer may still hold the connections open). */
		for (unsigned i = 0; i < ctx->nchan; i++)
			shutdown(ctx->chans[i], SHUT_RDWR);
		for (unsigned i = 0; d->ch && i < ctx->nchan; i++) {
			if (d->ch[i].started)
				pthread_join(d->ch[i].thread, NULL);
			free(d->ch[i].buf);
		}
		for (unsigned i = 0; d->dev && i < ctx->ndev; i++) {
			if (d->dev[i].started)
				pthread_join(d->dev[i].thread, NULL);
			for (size_t j = 0; j < d->dev[i].nbufs; j++)
				free(d->dev[i].bufs[j].data);
			free(d->dev[i].bufs);
		}
		free(d->ch);
		free(d->dev);
		free(d->channel_seen);
		free(d);
	}
	ctx->priv = NULL;
}

const struct bench_engine_ops engine_threads_ops = {
	.name = "threads",
	.src_setup = threads_src_setup,
	.src_run = threads_src_run,
	.dst_setup = threads_dst_setup,
	.dst_run = threads_dst_run,
	.teardown = threads_teardown,
};
