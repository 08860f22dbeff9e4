/* SPDX-License-Identifier: MIT */
/*
 * `threads`: a faithful model of QEMU 10's VFIO multifd device state transfer
 * (hw/vfio/migration-multifd.c, migration/multifd.c, migration/multifd-device-state.c; see
 * the shared notes qemu-multifd.md and docs/perf/threads-baseline.md). Every lock, copy,
 * allocation and free below is one QEMU makes, at the same place; the QEMU function each
 * part models is named next to it.
 *
 * Source
 *   - one save thread per device (vfio_multifd_save_complete_precopy_thread): one packet
 *     buffer allocated per thread, read(data_fd) into it after the 12-byte VFIO header, then
 *     multifd_queue_device_state(): under one global queue_job_mutex, DUPLICATE the packet
 *     into a newly allocated buffer (g_memdup2) and multifd_send() it: under
 *     multifd_send_mutex, wait for a ready channel (channels_ready), take the next idle
 *     channel round-robin, swap send-data objects with it;
 *   - one sender thread per channel (multifd_send_thread): handshake first, then
 *     sendmsg(276-byte header, payload) for each packet it is handed, free the payload
 *     (multifd_send_data_clear), post channels_ready.
 * Destination
 *   - one receiver thread per channel (multifd_recv_thread): handshake check, then per
 *     packet read the 12-byte header, the rest of the device state header, a newly
 *     allocated payload buffer (multifd_device_state_recv's g_malloc), route by (idstr,
 *     instance_id), and under the device's mutex DUPLICATE the data into the device's
 *     buffer array at idx (vfio_load_state_buffer_insert's g_memdup2); the array grows
 *     without bound (QEMU's default); the payload buffer is freed;
 *   - one load thread per device, started at switchover start (vfio_load_bufs_thread): holds
 *     the device's mutex except around each write, writes the buffers strictly in idx
 *     order, frees each after its write, then loads the config under a global lock (BQL).
 * QEMU's semaphores are a count under a mutex and a condition variable (QemuSemaphore in
 * util/qemu-thread-posix.c), and so are these.
 */
#include "pktio.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* QEMU's QemuSemaphore: qemu_sem_post() locks, counts and signals; no sem_t. */
struct qsem {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned count;
};

static void qsem_init(struct qsem *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->count = 0;
}

static void qsem_destroy(struct qsem *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

static void qsem_post(struct qsem *s)
{
	pthread_mutex_lock(&s->lock);
	s->count++;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void qsem_wait(struct qsem *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->count == 0)
		pthread_cond_wait(&s->cond, &s->lock);
	s->count--;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The allocator state of a long-running process, set in each side process of this engine
 * (forked per run, so no other engine sees it). QEMU allocates and frees every packet
 * buffer, as above; what that costs depends on glibc's state, which is not QEMU's design:
 * glibc starts with a 128 KiB mmap threshold, raises it to the size of the largest mmapped
 * block freed so far (up to 32 MiB), and trims an arena with MADV_DONTNEED whenever twice that is
 * free at its top, so that the next packets fault their pages in again. After the first
 * free of a 1 MiB packet (a fresh process, such as a destination QEMU) it trims past 2 MiB;
 * after a free near 32 MiB (e.g. in a source QEMU of a guest near 1 TiB: the VFIO dirty
 * bitmap vfio_container_query_dirty_bitmap() allocates and frees at every sync is 32 KiB per
 * GiB) it keeps packet buffers in its arenas and trims only past 64 MiB. This is that second
 * state, on both sides: a recycled page costs 17-35 us on this VM, where the first state's
 * re-faults cost more than QEMU's copies and would make this baseline measure the VM rather
 * than QEMU. VUB_THREADS_MALLOC=default keeps glibc's fresh-process state
 * (docs/perf/threads-baseline.md has both figures).
 */
static void model_long_running_allocator(void)
{
	const char *mode = getenv("VUB_THREADS_MALLOC");

	if (mode && strcmp(mode, "default") == 0)
		return;
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

/* ---- source ---- */

/* QEMU's MultiFDSendData with a device state payload; the objects are swapped, not freed. */
struct send_data {
	unsigned dev;
	uint8_t *buf;                      /* the g_memdup2 copy: VFIO header + data */
	size_t len;
};

struct send_channel {
	pthread_t thread;
	bool started;
	int fd;
	unsigned id;
	struct qsem sem;                   /* a packet (or quit) is waiting: QEMU's p->sem */
	atomic_bool pending;               /* QEMU's p->pending_job */
	struct send_data *data;            /* QEMU's p->data */
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
	pthread_mutex_t queue_job_mutex;   /* multifd_send_device_state->queue_job_mutex */
	struct send_data *queued;          /* multifd_send_device_state->send_data */
	pthread_mutex_t send_mutex;        /* multifd_send_state->multifd_send_mutex */
	struct qsem channels_ready;
	unsigned next_channel;
	atomic_bool abort;
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
		/* Wake a save thread that may wait for a channel (multifd_send_kick_main). */
		for (unsigned i = 0; i < s->ctx->ndev + s->ctx->nchan; i++)
			qsem_post(&s->channels_ready);
	}
}

/* QEMU's multifd_send_thread(). */
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
	for (;;) {
		struct send_data *d;
		struct iovec iov[2];

		qsem_post(&s->channels_ready);
		qsem_wait(&ch->sem);
		/* A packet handed over before the quit is still sent (QEMU syncs first). */
		if (!atomic_load_explicit(&ch->pending, memory_order_acquire))
			break;
		d = ch->data;
		device_idstr(d->dev, idstr, sizeof(idstr));
		vu_wire_encode_header(hdr, idstr, device_instance_id(d->dev), (uint32_t)d->len);
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ d->buf, d->len };
		err = atomic_load(&s->abort) ? -ECANCELED : pkt_writev_full(ch->fd, iov, 2);
		free(d->buf);                  /* multifd_send_data_clear() */
		d->buf = NULL;
		atomic_store_explicit(&ch->pending, false, memory_order_release);
		if (err) {
			src_fail(s, err, "channel %u: sending a packet", ch->id);
			break;
		}
	}
	return NULL;
}

/* QEMU's multifd_send(): swap *data with the next idle channel's, round-robin. */
static int multifd_send(struct tsrc *s, struct send_data **data)
{
	unsigned n = s->ctx->nchan;
	struct send_channel *ch = NULL;
	struct send_data *tmp;

	if (atomic_load(&s->abort))
		return -ECANCELED;
	pthread_mutex_lock(&s->send_mutex);
	qsem_wait(&s->channels_ready);
	for (unsigned i = 0;; i = (i + 1) % n) {
		struct send_channel *c = &s->ch[(s->next_channel + i) % n];

		if (atomic_load(&s->abort)) {
			pthread_mutex_unlock(&s->send_mutex);
			return -ECANCELED;
		}
		if (!atomic_load_explicit(&c->pending, memory_order_acquire)) {
			ch = c;
			s->next_channel = (ch->id + 1) % n;
			break;
		}
	}
	tmp = *data;
	*data = ch->data;
	ch->data = tmp;
	atomic_store_explicit(&ch->pending, true, memory_order_release);
	qsem_post(&ch->sem);
	pthread_mutex_unlock(&s->send_mutex);
	return 0;
}

/* QEMU's multifd_queue_device_state(): the copy and the hand-over, under one global lock. */
static int multifd_queue_device_state(struct tsrc *s, unsigned dev, const uint8_t *packet,
				      size_t len)
{
	struct send_data *d;
	int err;

	pthread_mutex_lock(&s->queue_job_mutex);
	d = s->queued;
	d->buf = malloc(len);
	if (!d->buf) {
		pthread_mutex_unlock(&s->queue_job_mutex);
		return -ENOMEM;
	}
	memcpy(d->buf, packet, len);           /* g_memdup2: QEMU's extra source copy */
	d->dev = dev;
	d->len = len;
	err = multifd_send(s, &s->queued);
	if (err) {
		free(s->queued->buf);          /* multifd_send_data_clear() */
		s->queued->buf = NULL;
	}
	pthread_mutex_unlock(&s->queue_job_mutex);
	return err;
}

/* QEMU's vfio_multifd_save_complete_precopy_thread(). */
static void *save_thread(void *arg)
{
	struct save_device *sd = arg;
	struct tsrc *s = sd->src;
	struct side_ctx *ctx = s->ctx;
	int fd = ctx->dev_fds[sd->dev];
	/* One packet buffer per thread: VFIO header, then up to one chunk of data. */
	uint8_t *packet = calloc(1, VU_WIRE_VFIO_HEADER_SIZE + ctx->chunk);
	uint8_t blob[BENCH_CONFIG_BLOB_SIZE];
	uint32_t idx = 0;
	size_t blen, plen;
	int err;

	if (!packet) {
		src_fail(s, -ENOMEM, "device %u: packet buffer", sd->dev);
		return NULL;
	}
	while (!atomic_load(&s->abort)) {
		ssize_t n = read(fd, packet + VU_WIRE_VFIO_HEADER_SIZE, ctx->chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			src_fail(s, -errno, "device %u: reading the data fd", sd->dev);
			break;
		}
		if (n == 0)
			break;
		vu_wire_encode_vfio_header(packet, idx++, 0);
		err = multifd_queue_device_state(s, sd->dev, packet,
						 VU_WIRE_VFIO_HEADER_SIZE + (size_t)n);
		if (err) {
			if (err != -ECANCELED)
				src_fail(s, err, "device %u: queueing a packet", sd->dev);
			break;
		}
	}
	free(packet);
	if (atomic_load(&s->abort))
		return NULL;
	/*
	 * The config packet (vfio_save_complete_precopy_thread_config_state): idx N,
	 * CONFIG_STATE, QEMU's framing around the blob, in its own buffer, queued (copied) too.
	 */
	blen = device_config_blob(sd->dev, ctx->cfg->seed, blob, sizeof(blob));
	plen = VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING + blen;
	packet = calloc(1, plen);
	if (!packet) {
		src_fail(s, -ENOMEM, "device %u: config packet", sd->dev);
		return NULL;
	}
	vu_wire_encode_vfio_header(packet, idx, VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	memcpy(packet + VU_WIRE_VFIO_HEADER_SIZE + 8, blob, blen);
	vu_wire_frame_config(packet + VU_WIRE_VFIO_HEADER_SIZE, blen);
	err = multifd_queue_device_state(s, sd->dev, packet, plen);
	if (err && err != -ECANCELED)
		src_fail(s, err, "device %u: queueing the config packet", sd->dev);
	free(packet);
	return NULL;
}

static int threads_src_setup(struct side_ctx *ctx)
{
	struct tsrc *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	model_long_running_allocator();
	ctx->priv = s;
	s->ctx = ctx;
	s->ch = calloc(ctx->nchan, sizeof(*s->ch));
	s->dev = calloc(ctx->ndev, sizeof(*s->dev));
	s->queued = calloc(1, sizeof(*s->queued));
	if (!s->ch || !s->dev || !s->queued)
		return -ENOMEM;
	pthread_mutex_init(&s->queue_job_mutex, NULL);
	pthread_mutex_init(&s->send_mutex, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	qsem_init(&s->channels_ready);
	for (unsigned i = 0; i < ctx->nchan; i++) {
		s->ch[i] = (struct send_channel){ .fd = ctx->chans[i], .id = i, .src = s };
		qsem_init(&s->ch[i].sem);
		s->ch[i].data = calloc(1, sizeof(*s->ch[i].data)); /* multifd_send_data_alloc() */
		if (!s->ch[i].data)
			return -ENOMEM;
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
	/* Every packet is handed over: wake each sender once more to quit after its last. */
	for (unsigned i = 0; i < ctx->nchan; i++)
		qsem_post(&s->ch[i].sem);
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

/*
 * QEMU's vfio_multifd_load_state_buffer(): header checks, then under the device's mutex
 * (load_bufs_mutex) vfio_load_state_buffer_insert(): grow the array, refuse a duplicate idx,
 * copy the data into a new buffer (g_memdup2).
 */
static int load_state_buffer(struct tdst *d, unsigned dev, const uint8_t *payload, size_t len,
			     char *msg, size_t msg_len)
{
	struct load_device *ld = &d->dev[dev];
	struct vu_wire_vfio_header vh;
	int err = vu_wire_decode_vfio_header(payload, len, VU_WIRE_VFIO_FLAGS_QEMU, &vh, msg,
					     msg_len);
	size_t dlen = len - VU_WIRE_VFIO_HEADER_SIZE;
	uint8_t *copy;

	if (err)
		return err;
	pthread_mutex_lock(&ld->lock);
	if (vh.idx >= ld->nbufs) {
		size_t n = ld->nbufs ? ld->nbufs : 16;
		struct load_buffer *nb;

		while (n <= vh.idx)
			n *= 2;
		nb = realloc(ld->bufs, n * sizeof(*nb));
		if (!nb) {
			pthread_mutex_unlock(&ld->lock);
			snprintf(msg, msg_len, "device %u idx %u: out of memory", dev, vh.idx);
			return -ENOMEM;
		}
		memset(nb + ld->nbufs, 0, (n - ld->nbufs) * sizeof(*nb));
		ld->bufs = nb;
		ld->nbufs = n;
	}
	if (ld->bufs[vh.idx].present) {
		pthread_mutex_unlock(&ld->lock);
		snprintf(msg, msg_len, "device %u: idx %u received twice", dev, vh.idx);
		return VU_EVFIO_IDX_DUP;
	}
	if (vh.flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
		if (ld->config_idx != UINT32_MAX) {
			pthread_mutex_unlock(&ld->lock);
			snprintf(msg, msg_len, "device %u: second config packet", dev);
			return VU_EVFIO_CONFIG_DUP;
		}
		ld->config_idx = vh.idx;
	}
	copy = malloc(dlen ? dlen : 1);
	if (!copy) {
		pthread_mutex_unlock(&ld->lock);
		snprintf(msg, msg_len, "device %u idx %u: out of memory", dev, vh.idx);
		return -ENOMEM;
	}
	memcpy(copy, payload + VU_WIRE_VFIO_HEADER_SIZE, dlen); /* QEMU's extra copy */
	ld->bufs[vh.idx] = (struct load_buffer){ copy, dlen, true };
	pthread_cond_signal(&ld->cond);
	pthread_mutex_unlock(&ld->lock);
	return 0;
}

/*
 * QEMU's per-packet header reads in multifd_recv_thread(): the common 12-byte header (an
 * end of stream here is clean), then the rest of the device state header. 0, 1 at a clean
 * end of stream, or an error.
 */
static int recv_device_state_header(int fd, struct vu_wire_header *hdr, uint32_t max,
				    char *msg, size_t len)
{
	enum { COMMON = 12 };
	uint8_t buf[VU_WIRE_HEADER_SIZE];
	size_t got = 0;
	int err;

	while (got < COMMON) {
		ssize_t n = recv(fd, buf + got, COMMON - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			if (got == 0)
				return 1;
			snprintf(msg, len, "truncated packet header");
			return VU_ESTREAM_TRUNCATED;
		}
		got += (size_t)n;
	}
	err = read_full(fd, buf + COMMON, sizeof(buf) - COMMON);
	if (err) {
		snprintf(msg, len, "truncated packet header: %s", strerror(-err));
		return err == -EPIPE ? VU_ESTREAM_TRUNCATED : err;
	}
	return vu_wire_decode_header(buf, hdr, max, msg, len);
}

/* QEMU's multifd_recv_thread() with multifd_device_state_recv(). */
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
		uint8_t *buf;
		int dev;

		err = recv_device_state_header(ch->fd, &hdr, d->max_payload, msg, sizeof(msg));
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
		buf = malloc(hdr.next_packet_size); /* a new payload buffer for every packet */
		if (!buf) {
			err = -ENOMEM;
			snprintf(msg, sizeof(msg), "device %d: out of memory", dev);
			break;
		}
		err = read_full(ch->fd, buf, hdr.next_packet_size);
		if (err) {
			free(buf);
			snprintf(msg, sizeof(msg), "device %d: truncated payload", dev);
			err = err == -EPIPE ? VU_ESTREAM_TRUNCATED : err;
			break;
		}
		err = load_state_buffer(d, (unsigned)dev, buf, hdr.next_packet_size, msg,
					sizeof(msg));
		free(buf);
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

/* The config load (vfio_load_bufs_thread_load_config), under QEMU's big lock. */
static int load_config(struct tdst *d, struct load_device *ld, const struct load_buffer *b)
{
	char msg[160], full[200];
	const uint8_t *blob;
	size_t blen;
	int err = vu_wire_unframe_config(b->data, b->len, &blob, &blen, msg, sizeof(msg));

	if (!err) {
		pthread_mutex_lock(&d->bql);
		ld->config_loads++;
		if (!device_config_check(ld->dev, d->ctx->cfg->seed, blob, blen))
			err = -EBADMSG;
		pthread_mutex_unlock(&d->bql);
	}
	if (err) {
		snprintf(full, sizeof(full), "device %u: config blob: %s", ld->dev,
			 err == -EBADMSG ? "differs from the source's" : msg);
		dst_fail(d, err, full);
	}
	return err;
}

/*
 * QEMU's vfio_load_bufs_thread(): the device's mutex is held throughout except around each
 * write (vfio_load_state_buffer_write), and the written buffer is freed with it held again.
 */
static void *load_thread(void *arg)
{
	struct load_device *ld = arg;
	struct tdst *d = ld->dst;
	int fd = d->ctx->dev_fds[ld->dev];
	uint32_t idx = 0;

	pthread_mutex_lock(&ld->lock);
	while (!atomic_load(&d->abort)) {
		uint8_t *buf;
		size_t len;
		int err;

		if (idx >= ld->nbufs || !ld->bufs[idx].present) {
			pthread_cond_wait(&ld->cond, &ld->lock);
			continue;
		}
		if (idx == ld->config_idx) {
			/* dst_fail() takes this mutex to wake us: let go of it first. */
			struct load_buffer b = ld->bufs[idx];

			pthread_mutex_unlock(&ld->lock);
			if (!load_config(d, ld, &b))
				ld->done = true;
			return NULL;
		}
		buf = ld->bufs[idx].data;
		len = ld->bufs[idx].len;
		ld->bufs[idx].data = NULL;
		pthread_mutex_unlock(&ld->lock);
		err = write_full(fd, buf, len);
		pthread_mutex_lock(&ld->lock);
		free(buf);
		if (err) {
			char full[200];

			pthread_mutex_unlock(&ld->lock);
			snprintf(full, sizeof(full), "device %u idx %u: writing the data fd: %s",
				 ld->dev, idx, strerror(-err));
			dst_fail(d, err, full);
			return NULL;
		}
		idx++;
	}
	pthread_mutex_unlock(&ld->lock);
	return NULL;
}

static int threads_dst_setup(struct side_ctx *ctx)
{
	struct tdst *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	model_long_running_allocator();
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
			for (unsigned i = 0; i < ctx->nchan; i++) {
				if (!s->ch[i].started)
					continue;
				qsem_post(&s->ch[i].sem);
				pthread_join(s->ch[i].thread, NULL);
			}
			for (unsigned i = 0; i < ctx->nchan; i++) {
				if (s->ch[i].data)
					free(s->ch[i].data->buf);
				free(s->ch[i].data);
				qsem_destroy(&s->ch[i].sem);
			}
			qsem_destroy(&s->channels_ready);
		}
		if (s->queued)
			free(s->queued->buf);
		free(s->queued);
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
