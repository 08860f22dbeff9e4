/* SPDX-License-Identifier: MIT */
/* Test support for the reliability suite: see hostile.h. */
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

const uint8_t rl_uuid[16] = { 0x5e, 0x1f, 0xab, 0x01, 0x22, 0x33, 0x44, 0x55,
			      0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd };

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		abort();
	}
	return p;
}

/* ---- raw stream builder ------------------------------------------------------------- */

static uint8_t *buf_grow(struct rl_buf *b, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	b->len += n;
	return b->p + b->len - n;
}

void rl_buf_raw(struct rl_buf *b, const void *p, size_t n)
{
	if (n)
		memcpy(buf_grow(b, n), p, n);
}

void rl_buf_fill(struct rl_buf *b, uint8_t byte, size_t n)
{
	if (n)
		memset(buf_grow(b, n), byte, n);
}

void rl_buf_handshake(struct rl_buf *b, const uint8_t uuid[16], uint8_t id)
{
	vu_wire_encode_handshake(buf_grow(b, VU_WIRE_HANDSHAKE_SIZE), uuid, id);
}

void rl_buf_header(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t next_size)
{
	vu_wire_encode_header(buf_grow(b, VU_WIRE_HEADER_SIZE), idstr, inst, next_size);
}

void rl_pattern(uint8_t *out, size_t len, uint32_t idx)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(idx * 131u + i * 7u + (i >> 8) + 1u);
}

void rl_buf_packet(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t idx,
		   uint32_t vflags, const void *data, size_t len)
{
	rl_buf_header(b, idstr, inst, (uint32_t)(VU_WIRE_VFIO_HEADER_SIZE + len));
	vu_wire_encode_vfio_header(buf_grow(b, VU_WIRE_VFIO_HEADER_SIZE), idx, vflags);
	if (data)
		rl_buf_raw(b, data, len);
	else
		rl_pattern(buf_grow(b, len), len, idx);
}

void rl_buf_config(struct rl_buf *b, const char *idstr, uint32_t inst, uint32_t idx,
		   const void *blob, size_t len)
{
	uint8_t *p;

	rl_buf_header(b, idstr, inst,
		      (uint32_t)(VU_WIRE_VFIO_HEADER_SIZE + VU_WIRE_CONFIG_FRAMING + len));
	vu_wire_encode_vfio_header(buf_grow(b, VU_WIRE_VFIO_HEADER_SIZE), idx,
				   VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	p = buf_grow(b, VU_WIRE_CONFIG_FRAMING + len);
	if (len)
		memcpy(p + 8, blob, len);
	vu_wire_frame_config(p, len);
}

void rl_buf_free(struct rl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- writer thread ------------------------------------------------------------------ */

struct rl_writer {
	pthread_t thread;
	int fd;
	uint8_t *p;
	size_t len;
	size_t written;
	enum rl_end end;
};

static void *writer_main(void *arg)
{
	struct rl_writer *w = arg;

	while (w->written < w->len) {
		ssize_t n = send(w->fd, w->p + w->written, w->len - w->written, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the engine shut its end down: that is how it reports failure */
		w->written += (size_t)n;
	}
	if (w->end == RL_END_SHUTDOWN)
		shutdown(w->fd, SHUT_WR);
	return NULL;
}

struct rl_writer *rl_writer_start(int fd, const struct rl_buf *b, enum rl_end end)
{
	struct rl_writer *w = xmalloc(sizeof(*w));

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->len = b->len;
	w->p = xmalloc(b->len);
	if (b->len)
		memcpy(w->p, b->p, b->len);
	w->end = end;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		abort();
	}
	return w;
}

size_t rl_writer_stop(struct rl_writer *w)
{
	size_t written;

	if (!w)
		return 0;
	shutdown(w->fd, SHUT_RDWR); /* unblocks a send the engine never drains */
	pthread_join(w->thread, NULL);
	written = w->written;
	free(w->p);
	free(w);
	return written;
}

/* ---- fds and memory ----------------------------------------------------------------- */

long rl_rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int rl_memfd(const char *name, size_t size, uint32_t seed)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	uint8_t *buf;

	if (fd < 0)
		return -errno;
	if (!size)
		return fd;
	buf = xmalloc(size + 8);
	{
		uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

		for (size_t i = 0; i < size; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(buf + i, &x, 8);
		}
	}
	if (pwrite(fd, buf, size, 0) != (ssize_t)size) {
		free(buf);
		close(fd);
		return -EIO;
	}
	free(buf);
	return fd;
}

size_t rl_fd_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return 0;
	return (size_t)st.st_size;
}

uint8_t *rl_fd_read_all(int fd, size_t *len)
{
	size_t n = rl_fd_size(fd);
	uint8_t *p = xmalloc(n);

	*len = 0;
	if (n && pread(fd, p, n, 0) != (ssize_t)n) {
		free(p);
		return NULL;
	}
	*len = n;
	return p;
}

/* ---- destination fixture ------------------------------------------------------------ */

static int dest_load_config(void *opaque, const void *data, size_t len)
{
	struct rl_dest_dev *dd = opaque;

	dd->config_calls++;
	dd->config_len = len;
	memcpy(dd->config, data, len < sizeof(dd->config) ? len : sizeof(dd->config));
	return dd->config_ret;
}

static void dest_done(void *opaque, int error)
{
	struct rl_dest_dev *dd = opaque;

	dd->done_calls++;
	dd->done_error = error;
}

int rl_dest_init(struct rl_dest *d, const struct rl_dest_opts *o)
{
	struct vfio_uring_engine_opts eo;
	int ret;

	memset(d, 0, sizeof(*d));
	d->fds_before = count_fds();
	d->nch = o->channels ? o->channels : 1;
	d->ndev = o->devices ? o->devices : 1;
	for (int c = 0; c < RL_MAX_CH; c++)
		d->ch[c][0] = d->ch[c][1] = -1;

	vfio_uring_engine_opts_init(&eo, VFIO_URING_DESTINATION);
	memcpy(eo.uuid, rl_uuid, 16);
	if (o->max_packet_size)
		eo.max_packet_size = o->max_packet_size;
	if (o->buffer_cap)
		eo.buffer_cap = o->buffer_cap;
	eo.progress_timeout_ms = o->progress_timeout_ms;
	eo.flags |= o->engine_flags;
	eo.max_queued_bytes = o->max_queued_bytes;
	ret = vfio_uring_engine_create(&eo, &d->e);
	if (ret) {
		fprintf(stderr, "vfio_uring_engine_create: %s\n", strerror(-ret));
		return ret;
	}
	for (int c = 0; c < d->nch; c++) {
		ret = connect_pair(d->ch[c], o->tcp);
		if (ret)
			return ret;
		ret = vfio_uring_engine_add_channel(d->e, d->ch[c][0]);
		if (ret != c) {
			fprintf(stderr, "add_channel: %d\n", ret);
			return ret < 0 ? ret : -EINVAL;
		}
	}
	for (int i = 0; i < d->ndev; i++) {
		struct rl_dest_dev *dd = &d->d[i];
		struct vfio_uring_device_opts dopts;

		snprintf(dd->idstr, sizeof(dd->idstr), "0000:01:00.%d/vfio", i);
		dd->inst = (uint32_t)i + 1;
		if (o->dev_fd[i] > 0) {
			dd->fd = o->dev_fd[i];
		} else {
			dd->fd = rl_memfd("rl-dest", 0, 0);
			dd->own_fd = true;
			if (dd->fd < 0)
				return dd->fd;
		}
		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = dd->idstr;
		dopts.instance_id = dd->inst;
		dopts.data_fd = dd->fd;
		dopts.multifd = o->dev_multifd_off[i] ? VFIO_URING_MULTIFD_OFF
						      : VFIO_URING_MULTIFD_AUTO;
		dopts.load_config = dest_load_config;
		dopts.done = dest_done;
		dopts.opaque = dd;
		if (o->config_load_waits)
			dopts.flags = VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS;
		ret = vfio_uring_engine_add_device(d->e, &dopts, &dd->dev);
		if (ret) {
			fprintf(stderr, "add_device: %s\n", strerror(-ret));
			return ret;
		}
	}
	ret = vfio_uring_engine_start(d->e);
	if (ret) {
		fprintf(stderr, "start: %s\n", strerror(-ret));
		return ret;
	}
	if (!o->no_switchover) {
		ret = vfio_uring_engine_switchover_start(d->e);
		if (ret) {
			fprintf(stderr, "switchover_start: %s\n", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void rl_dest_send(struct rl_dest *d, int ch, const struct rl_buf *b, enum rl_end end)
{
	d->w[ch] = rl_writer_start(d->ch[ch][1], b, end);
}

static int run_guarded(struct vfio_uring_engine *e, int guard_ms)
{
	int rc = vfio_uring_engine_run(e, guard_ms > 0 ? guard_ms : 20000);

	if (rc == -ETIMEDOUT && vfio_uring_engine_error(e, NULL) == 0) {
		fprintf(stderr, "FAIL: engine HANG: no result within the test guard of %d ms\n",
			guard_ms > 0 ? guard_ms : 20000);
		check_failures++;
		vfio_uring_engine_cancel(e);
	}
	return rc;
}

int rl_dest_run(struct rl_dest *d, int guard_ms)
{
	return run_guarded(d->e, guard_ms);
}

void rl_check_error(struct vfio_uring_engine *e, int expect, enum vfio_uring_reason reason,
		    const char *needle1, const char *needle2)
{
	const char *msg = NULL;
	int err = vfio_uring_engine_error(e, &msg);
	enum vfio_uring_reason got = vfio_uring_engine_reason(e);

	if (!msg)
		msg = "(null)";
	printf("engine error %d (%s), reason %s: %s\n", err, strerror(-err),
	       vfio_uring_reason_name(got), msg);
	CHECK(err == expect, "engine error %d (%s), expected %d (%s); message: %s", err,
		 strerror(-err), expect, strerror(-expect), msg);
	CHECK(got == reason, "engine reason %s, expected %s; message: %s",
		 vfio_uring_reason_name(got), vfio_uring_reason_name(reason), msg);
	CHECK(!vu_reason_errno(got) || vu_reason_errno(got) == err,
		 "reason %s carries errno %d, the list gives it %d", vfio_uring_reason_name(got), err,
		 vu_reason_errno(got));
	if (reason == VFIO_URING_REASON_NONE)
		return;
	CHECK(msg[0] != '\0', "empty error message");
	CHECK(strncmp(msg, "source", 6) == 0 || strncmp(msg, "destination", 11) == 0,
		 "message does not name the side: %s", msg);
	if (needle1)
		CHECK(strstr(msg, needle1), "message does not name \"%s\": %s", needle1, msg);
	if (needle2)
		CHECK(strstr(msg, needle2), "message does not name \"%s\": %s", needle2, msg);
}

void rl_check_reason_one_of(struct vfio_uring_engine *e, const enum vfio_uring_reason *allowed,
			    int n, const char *what)
{
	enum vfio_uring_reason got = vfio_uring_engine_reason(e);

	for (int i = 0; i < n; i++)
		if (got == allowed[i])
			return;
	CHECK(0, "%s: reason %s is not one of the expected", what, vfio_uring_reason_name(got));
}

void rl_check_device_reason(struct vfio_uring_engine *e, struct vfio_uring_device *dev,
			    const char *what)
{
	struct vfio_uring_device_status st;

	if (!e || !dev || vfio_uring_device_get_status(dev, &st, sizeof(st)))
		return;
	if (st.state != VFIO_URING_DEVICE_FAILED) {
		CHECK(st.reason == VFIO_URING_REASON_NONE, "%s device %s: state %s with reason %s",
			 what, vfio_uring_device_idstr(dev), vfio_uring_device_state_name(st.state),
			 vfio_uring_reason_name(st.reason));
		return;
	}
	CHECK((st.reason == VFIO_URING_REASON_FALLOUT && st.error == -ECANCELED) ||
			 (st.reason == vfio_uring_engine_reason(e) &&
			  st.error == vfio_uring_engine_error(e, NULL)),
		 "%s device %s FAILED with reason %s error %d; the engine's: %s %d", what,
		 vfio_uring_device_idstr(dev), vfio_uring_reason_name(st.reason), st.error,
		 vfio_uring_reason_name(vfio_uring_engine_reason(e)), vfio_uring_engine_error(e, NULL));
}

void rl_dest_check_none_done(struct rl_dest *d)
{
	for (int i = 0; i < d->ndev; i++) {
		struct rl_dest_dev *dd = &d->d[i];
		struct vfio_uring_device_status st;

		rl_check_device_reason(d->e, dd->dev, "destination");
		CHECK(vfio_uring_device_get_status(dd->dev, &st, sizeof(st)) == 0, "get_status");
		CHECK(st.state != VFIO_URING_DEVICE_DONE, "device %s reported DONE", dd->idstr);
		CHECK(dd->config_calls == 0, "device %s: config loaded %d times", dd->idstr,
			 dd->config_calls);
		CHECK(dd->done_calls <= 1, "device %s: done callback called %d times",
			 dd->idstr, dd->done_calls);
		if (dd->done_calls)
			CHECK(dd->done_error < 0, "device %s: done callback with error %d",
				 dd->idstr, dd->done_error);
	}
}

void rl_dest_check_written(struct rl_dest *d, int i, const void *expect, size_t len)
{
	size_t n;
	uint8_t *p = rl_fd_read_all(d->d[i].fd, &n);

	CHECK(p && n == len, "device %s: %zu bytes written, expected %zu", d->d[i].idstr, n,
		 len);
	if (p && n == len && len)
		CHECK(memcmp(p, expect, len) == 0, "device %s: wrong bytes written",
			 d->d[i].idstr);
	free(p);
}

void rl_dest_check_prefix(struct rl_dest *d, int i, const void *expect, size_t len)
{
	size_t n;
	uint8_t *p = rl_fd_read_all(d->d[i].fd, &n);

	CHECK(p && n <= len, "device %s: %zu bytes written, at most %zu expected",
		 d->d[i].idstr, n, len);
	if (p && n <= len && n)
		CHECK(memcmp(p, expect, n) == 0, "device %s: wrong bytes written",
			 d->d[i].idstr);
	free(p);
}

void rl_check_buffer_peak(struct vfio_uring_engine *e)
{
	struct vfio_uring_engine_stats st;

	CHECK(vfio_uring_engine_get_stats(e, &st, sizeof(st)) == 0, "get_stats");
	printf("buffer peak %llu of cap %llu\n", (unsigned long long)st.buffer_peak,
	       (unsigned long long)st.buffer_cap);
	CHECK(st.buffer_peak <= st.buffer_cap, "buffer peak %llu above the cap %llu",
		 (unsigned long long)st.buffer_peak, (unsigned long long)st.buffer_cap);
}

static void check_fds(int before, const char *what)
{
	int after = count_fds();

	CHECK(after == before, "%s: %d fds open before, %d after (leak)", what, before, after);
}

void rl_dest_fini(struct rl_dest *d)
{
	/* The engine first: destroy must work with writers still blocked on a full socket. */
	vfio_uring_engine_destroy(d->e);
	d->e = NULL;
	for (int c = 0; c < RL_MAX_CH; c++) {
		rl_writer_stop(d->w[c]);
		d->w[c] = NULL;
	}
	for (int c = 0; c < RL_MAX_CH; c++)
		for (int k = 0; k < 2; k++)
			if (d->ch[c][k] >= 0)
				close(d->ch[c][k]);
	for (int i = 0; i < d->ndev; i++)
		if (d->d[i].own_fd)
			close(d->d[i].fd);
	check_fds(d->fds_before, "destination fixture");
}

/* ---- source + destination pair -------------------------------------------------------- */

static int src_save_config(void *opaque, const void **data, size_t *len)
{
	struct rl_mig_dev *md = opaque;

	*data = md->blob;
	*len = md->blob_len;
	return 0;
}

static int mig_load_config(void *opaque, const void *data, size_t len)
{
	struct rl_mig_dev *md = opaque;

	md->config_calls++;
	md->config_ok = len == md->blob_len && memcmp(data, md->blob, len) == 0;
	return md->config_ret;
}

static void mig_src_done(void *opaque, int error)
{
	struct rl_mig_dev *md = opaque;

	md->src_pos_at_done = lseek(md->src_fd, 0, SEEK_CUR);
	md->src_done_calls++;
	md->src_done_error = error;
}

static void mig_dst_done(void *opaque, int error)
{
	struct rl_mig_dev *md = opaque;

	md->dst_done_calls++;
	md->dst_done_error = error;
}

/* FNV-1a of a file's content, 0 when it cannot be read (a directory, /proc/self/mem). */
static uint64_t fd_hash(int fd)
{
	size_t n;
	uint8_t *p = rl_fd_read_all(fd, &n);
	uint64_t h = 1469598103934665603ull;

	if (!p || !n) {
		free(p);
		return 0;
	}
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (size_t i = n & ~(size_t)7; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	free(p);
	return h;
}

int rl_mig_init(struct rl_mig *m, const struct rl_mig_opts *o)
{
	struct vfio_uring_engine_opts so, dopt;
	size_t dev_size = o->dev_size ? o->dev_size : 256 << 10;
	int ret;

	memset(m, 0, sizeof(*m));
	m->fds_before = count_fds();
	m->nch = o->channels ? o->channels : 2;
	m->ndev = o->devices ? o->devices : 2;
	for (int c = 0; c < RL_MAX_CH; c++)
		m->ch[c][0] = m->ch[c][1] = -1;
	for (int i = 0; i < RL_MAX_DEV; i++)
		m->d[i].src_fd = m->d[i].dst_fd = -1;

	vfio_uring_engine_opts_init(&so, VFIO_URING_SOURCE);
	memcpy(so.uuid, rl_uuid, 16);
	so.chunk_size = o->chunk_size ? o->chunk_size : 64 << 10;
	if (o->buffer_cap)
		so.buffer_cap = o->buffer_cap;
	so.progress_timeout_ms = o->progress_timeout_ms;
	so.flags = o->flags;
	vfio_uring_engine_opts_init(&dopt, VFIO_URING_DESTINATION);
	memcpy(dopt.uuid, rl_uuid, 16);
	if (o->buffer_cap)
		dopt.buffer_cap = o->buffer_cap;
	dopt.progress_timeout_ms = o->progress_timeout_ms;
	dopt.flags = o->flags;

	if (!o->no_source) {
		ret = vfio_uring_engine_create(&so, &m->src);
		if (ret)
			return ret;
	}
	if (!o->no_dest) {
		ret = vfio_uring_engine_create(&dopt, &m->dst);
		if (ret)
			return ret;
	}
	for (int c = 0; c < m->nch; c++) {
		if (o->ext_ch[c] > 0) {
			m->ext_ch = true;
			m->ch[c][o->no_dest ? 0 : 1] = o->ext_ch[c];
		} else {
			ret = connect_pair(m->ch[c], o->tcp);
			if (ret)
				return ret;
		}
		if (m->src && vfio_uring_engine_add_channel(m->src, m->ch[c][0]) != c)
			return -EINVAL;
		if (m->dst && vfio_uring_engine_add_channel(m->dst, m->ch[c][1]) != c)
			return -EINVAL;
	}
	for (int i = 0; i < m->ndev; i++) {
		struct rl_mig_dev *md = &m->d[i];
		struct vfio_uring_device_opts dv;

		snprintf(md->idstr, sizeof(md->idstr), "0000:02:00.%d/vfio", i);
		md->inst = (uint32_t)i;
		md->size = dev_size + (size_t)i * 4099;
		md->blob_len = 16 + (size_t)i;
		for (size_t k = 0; k < md->blob_len; k++)
			md->blob[k] = (uint8_t)(0xc0 + i + k);
		if (o->src_fd[i] > 0) {
			md->src_fd = o->src_fd[i];
		} else {
			md->src_fd = rl_memfd("rl-src", md->size, o->seed * 7919u + (uint32_t)i);
			md->own_src = true;
			if (md->src_fd < 0)
				return md->src_fd;
		}
		md->src_pos0 = lseek(md->src_fd, 0, SEEK_CUR);
		md->src_sum = fd_hash(md->src_fd);
		if (o->dst_fd[i] > 0) {
			md->dst_fd = o->dst_fd[i];
		} else {
			md->dst_fd = rl_memfd("rl-dst", 0, 0);
			md->own_dst = true;
			if (md->dst_fd < 0)
				return md->dst_fd;
		}
		if (m->src) {
			vfio_uring_device_opts_init(&dv);
			dv.idstr = md->idstr;
			dv.instance_id = md->inst;
			dv.data_fd = md->src_fd;
			dv.save_config = src_save_config;
			dv.done = mig_src_done;
			dv.opaque = md;
			ret = vfio_uring_engine_add_device(m->src, &dv, &md->src);
			if (ret)
				return ret;
		}
		if (m->dst) {
			vfio_uring_device_opts_init(&dv);
			dv.idstr = md->idstr;
			dv.instance_id = md->inst;
			dv.data_fd = md->dst_fd;
			dv.load_config = mig_load_config;
			dv.done = mig_dst_done;
			dv.opaque = md;
			ret = vfio_uring_engine_add_device(m->dst, &dv, &md->dst);
			if (ret)
				return ret;
		}
	}
	if (m->dst) {
		ret = vfio_uring_engine_start(m->dst);
		if (!ret)
			ret = vfio_uring_engine_switchover_start(m->dst);
		if (ret)
			return ret;
	} else {
		m->dst_rc = 1;
	}
	if (m->src) {
		ret = vfio_uring_engine_start(m->src);
		if (ret)
			return ret;
	} else {
		m->src_rc = 1;
	}
	return 0;
}

/* The header: status.error is "negated errno when FAILED, else 0". */
static void check_status_consistent(struct rl_mig *m, bool source)
{
	for (int i = 0; i < m->ndev; i++) {
		struct vfio_uring_device_status st;

		vfio_uring_device_get_status(source ? m->d[i].src : m->d[i].dst, &st, sizeof(st));
		CHECK((st.error != 0) == (st.state == VFIO_URING_DEVICE_FAILED),
			 "%s device %s: state %s with error %d", source ? "source" : "destination",
			 m->d[i].idstr, vfio_uring_device_state_name(st.state), st.error);
		rl_check_device_reason(source ? m->src : m->dst, source ? m->d[i].src : m->d[i].dst,
				       source ? "source" : "destination");
	}
}

bool rl_mig_step(struct rl_mig *m, int poll_ms)
{
	struct pollfd pfd[2];
	int n = 0;

	if (m->src_rc == 0)
		pfd[n++] = (struct pollfd){ .fd = vfio_uring_engine_get_fd(m->src), .events = POLLIN };
	if (m->dst_rc == 0)
		pfd[n++] = (struct pollfd){ .fd = vfio_uring_engine_get_fd(m->dst), .events = POLLIN };
	if (!n)
		return false;
	poll(pfd, (nfds_t)n, poll_ms);
	if (m->src_rc == 0) {
		m->src_rc = vfio_uring_engine_process(m->src);
		if (m->check_status)
			check_status_consistent(m, true);
	}
	if (m->dst_rc == 0) {
		m->dst_rc = vfio_uring_engine_process(m->dst);
		if (m->check_status)
			check_status_consistent(m, false);
	}
	return m->src_rc == 0 || m->dst_rc == 0;
}

/*
 * process() reports a failure at once while cancelled operations still drain; run() returns
 * only when they are all back. After it no device may still be ACTIVE.
 */
static void drain_failed(struct vfio_uring_engine *e, int rc, struct rl_mig *m, bool source)
{
	int ret;

	if (!e || rc >= 0)
		return;
	ret = vfio_uring_engine_run(e, 20000);
	CHECK(ret == rc, "%s: run() after process() returned %d gives %d",
		 source ? "source" : "destination", rc, ret);
	for (int i = 0; i < m->ndev; i++) {
		struct vfio_uring_device_status st;

		vfio_uring_device_get_status(source ? m->d[i].src : m->d[i].dst, &st, sizeof(st));
		rl_check_device_reason(e, source ? m->d[i].src : m->d[i].dst,
				       source ? "source" : "destination");
		CHECK(st.state != VFIO_URING_DEVICE_ACTIVE,
			 "%s device %s still ACTIVE (error %d) after run() returned %d",
			 source ? "source" : "destination", m->d[i].idstr, st.error, ret);
	}
}

void rl_mig_drain(struct rl_mig *m)
{
	drain_failed(m->src, m->src_rc, m, true);
	drain_failed(m->dst, m->dst_rc, m, false);
}

bool rl_mig_run(struct rl_mig *m, int guard_ms)
{
	uint64_t end = now_ms() + (uint64_t)(guard_ms > 0 ? guard_ms : 20000);

	while (rl_mig_step(m, 10)) {
		if (now_ms() > end) {
			fprintf(stderr, "FAIL: migration HANG: source %d destination %d after %d ms\n",
				m->src_rc, m->dst_rc, guard_ms > 0 ? guard_ms : 20000);
			check_failures++;
			return false;
		}
	}
	rl_mig_drain(m);
	return true;
}

void rl_mig_check_complete(struct rl_mig *m)
{
	CHECK(m->src_rc == 1, "source result %d", m->src_rc);
	CHECK(m->dst_rc == 1, "destination result %d", m->dst_rc);
	for (int i = 0; i < m->ndev; i++) {
		struct rl_mig_dev *md = &m->d[i];
		struct vfio_uring_device_status st;
		size_t n, sn;
		uint8_t *got = rl_fd_read_all(md->dst_fd, &n);
		uint8_t *want = rl_fd_read_all(md->src_fd, &sn);

		CHECK(got && want && n == sn && memcmp(got, want, n) == 0,
			 "device %s: destination has %zu bytes, source %zu, or they differ",
			 md->idstr, n, sn);
		free(got);
		free(want);
		CHECK(md->config_calls == 1 && md->config_ok, "device %s: config %d calls ok %d",
			 md->idstr, md->config_calls, md->config_ok);
		vfio_uring_device_get_status(md->dst, &st, sizeof(st));
		CHECK(st.state == VFIO_URING_DEVICE_DONE, "device %s state %d", md->idstr,
			 st.state);
		vfio_uring_device_get_status(md->src, &st, sizeof(st));
		CHECK(st.state == VFIO_URING_DEVICE_DONE, "source device %s state %d", md->idstr,
			 st.state);
	}
}

void rl_mig_check_dest_consistent(struct rl_mig *m)
{
	for (int i = 0; i < m->ndev && m->dst; i++) {
		struct rl_mig_dev *md = &m->d[i];
		struct vfio_uring_device_status st;
		size_t n, sn;
		uint8_t *got = rl_fd_read_all(md->dst_fd, &n);
		uint8_t *want = rl_fd_read_all(md->src_fd, &sn);

		vfio_uring_device_get_status(md->dst, &st, sizeof(st));
		rl_check_device_reason(m->dst, md->dst, "destination");
		CHECK(md->dst_done_calls <= 1, "device %s: done callback %d times", md->idstr,
			 md->dst_done_calls);
		if (!want || !md->src_sum) {
			/* the source fd cannot be compared: the device must not be DONE */
			CHECK(st.state != VFIO_URING_DEVICE_DONE && md->config_calls == 0,
				 "device %s whose source failed is %s, config calls %d", md->idstr,
				 vfio_uring_device_state_name(st.state), md->config_calls);
		} else if (st.state == VFIO_URING_DEVICE_DONE) {
			CHECK(got && want && n == sn && memcmp(got, want, n) == 0,
				 "DONE device %s holds %zu bytes of %zu or wrong bytes", md->idstr, n,
				 sn);
			CHECK(md->config_calls == 1 && md->config_ok,
				 "DONE device %s: config calls %d ok %d", md->idstr,
				 md->config_calls, md->config_ok);
		} else {
			CHECK(got && want && n <= sn && memcmp(got, want, n) == 0,
				 "device %s holds %zu bytes that are not a prefix of its %zu bytes",
				 md->idstr, n, sn);
			CHECK(md->config_calls == 0 || md->config_ret != 0,
				 "device %s is %s but its config was loaded", md->idstr,
				 vfio_uring_device_state_name(st.state));
			if (md->dst_done_calls)
				CHECK(md->dst_done_error < 0, "device %s: done(0) but state %s",
					 md->idstr, vfio_uring_device_state_name(st.state));
		}
		free(got);
		free(want);
	}
}

uint64_t rl_wire_bytes(struct vfio_uring_engine *e)
{
	struct vfio_uring_engine_stats st;

	if (!e || vfio_uring_engine_get_stats(e, &st, sizeof(st)))
		return 0;
	return st.wire_bytes;
}

void rl_mig_check_source_untouched(struct rl_mig *m)
{
	struct vfio_uring_engine_stats es = { 0 };

	if (!m->src)
		return;
	vfio_uring_engine_get_stats(m->src, &es, sizeof(es));
	for (int i = 0; i < m->ndev; i++) {
		struct rl_mig_dev *md = &m->d[i];
		struct vfio_uring_device_status st;
		off_t pos = lseek(md->src_fd, 0, SEEK_CUR);
		uint64_t moved = (uint64_t)(pos - md->src_pos0);

		if (md->src_sum)
			CHECK(fd_hash(md->src_fd) == md->src_sum,
				 "source device %s: the data fd's content changed", md->idstr);
		if (pos < 0)
			continue;
		vfio_uring_device_get_status(md->src, &st, sizeof(st));
		rl_check_device_reason(m->src, md->src, "source");
		CHECK(pos >= md->src_pos0 && moved >= st.data_bytes &&
				 moved <= st.data_bytes + es.buffer_cap,
			 "source device %s: fd moved %llu bytes, %llu were read (cap %llu)",
			 md->idstr, (unsigned long long)moved, (unsigned long long)st.data_bytes,
			 (unsigned long long)es.buffer_cap);
	}
}

void rl_mig_destroy_engines(struct rl_mig *m)
{
	vfio_uring_engine_destroy(m->src);
	vfio_uring_engine_destroy(m->dst);
	m->src = m->dst = NULL;
}

void rl_mig_check_source_quiet_after_done(struct rl_mig *m)
{
	for (int i = 0; i < m->ndev; i++) {
		struct rl_mig_dev *md = &m->d[i];
		off_t pos = lseek(md->src_fd, 0, SEEK_CUR);

		if (md->src_done_calls != 1 || md->src_done_error == 0 || pos < 0)
			continue;
		printf("source device %s: fd at %lld when done(%d) ran, %lld after destroy\n",
		       md->idstr, (long long)(md->src_pos_at_done - md->src_pos0), md->src_done_error,
		       (long long)(pos - md->src_pos0));
		CHECK(pos == md->src_pos_at_done,
			 "source device %s: the engine read %lld more bytes of the data fd after "
			 "done(%d) told the caller the device failed",
			 md->idstr, (long long)(pos - md->src_pos_at_done), md->src_done_error);
	}
}

void rl_mig_fini(struct rl_mig *m)
{
	vfio_uring_engine_destroy(m->src);
	vfio_uring_engine_destroy(m->dst);
	m->src = m->dst = NULL;
	for (int c = 0; c < RL_MAX_CH && !m->ext_ch; c++)
		for (int k = 0; k < 2; k++)
			if (m->ch[c][k] >= 0)
				close(m->ch[c][k]);
	for (int i = 0; i < m->ndev; i++) {
		if (m->d[i].own_src)
			close(m->d[i].src_fd);
		if (m->d[i].own_dst)
			close(m->d[i].dst_fd);
	}
	check_fds(m->fds_before, "migration pair");
}

void rl_check_fresh_migration(void)
{
	struct rl_mig m;
	struct rl_mig_opts o = { .channels = 2, .devices = 2, .dev_size = 100000,
				 .chunk_size = 16384, .seed = 99 };
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "a fresh migration cannot be set up: %s", strerror(-ret));
	if (ret == 0) {
		rl_mig_run(&m, 20000);
		rl_mig_check_complete(&m);
	}
	rl_mig_fini(&m);
}
