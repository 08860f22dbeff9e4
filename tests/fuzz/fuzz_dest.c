/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a real destination engine (public API) with 2 channels and 3 devices
 * (the third with multifd OFF) fed the fuzz input through socketpairs, one thread: the
 * harness writes without blocking, polls and calls vfio_uring_engine_process() until the
 * engine finishes. All channels are shut down after their bytes, so the engine must end:
 * done, or a clean error. A hang (10 s), a crash, a sanitizer report, a leaked fd or a
 * broken invariant aborts.
 *
 * Scale: each byte, allocation and syscall costs time (docs/RELIABILITY.md, "Fuzzing"), so
 * the sizes are small: payloads up to 16 KiB (was 256 KiB), a 64 KiB cap (was 1 MiB; with
 * mode bit 2 16 KiB, was 64 KiB: one largest packet either way), at most 64 KiB per
 * channel (was 1 MiB), and a 16 KiB send buffer on the harness's end of each socketpair,
 * so a channel's bytes still arrive in several pieces (as 1 MiB did through the default
 * 208 KiB). A 16-entry ring: the destination has a handful of operations in flight, and a
 * 256-entry ring costs more to map and unmap. The data fds and the stream buffers are kept
 * across executions.
 *
 * Input: byte 0 = mode.
 *   mode bit 0 clear, raw: bytes 1-2 (big-endian) are how many of the remaining bytes go to
 *     channel 0; channel 1 gets the rest.
 *   mode bit 0 set, ops: both channels get a valid handshake, then each op appends bytes:
 *     op%6 0: data packet     [ch|dev] idx len16            (len16 % 16373 bytes of pattern
 *                                                            data: never above the max)
 *          1: config packet   [ch|dev] idx bloblen
 *          2: raw bytes       [ch] n bytes...
 *          3: header only     [ch|dev] next_packet_size32 flags8
 *          4: VFIO packet     [ch|dev] version8 idx32 flags32 len8
 *          5: end channel     [ch]    (nothing more is written to it)
 *     A packet that does not fit in the channel's 64 KiB is left out whole.
 *   mode bit 1: call switchover_start only after every byte was sent and every channel shut
 *     down, or once the engine stopped taking bytes (until then packets stay queued within
 *     the cap; a full cap stops the channels, flow control, until switchover start)
 *   mode bit 2: a small buffer cap (16 KiB: one largest packet) instead of 64 KiB
 *   mode bit 3: VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO (writes in io_uring workers)
 *   mode bit 4: VFIO_URING_ENGINE_F_BASELINE_RING
 *   mode bit 5, raw mode only: VFIO_URING_ENGINE_F_PRECOPY (the pre-copy extension: PRECOPY
 *              packets accepted and written before switchover start; the ops oracle assumes
 *              the plain QEMU wire, so it is not combined with it)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "fds.h"
#include "net.h"
#include "vfio-uring.h"
#include "wire.h"

#define NCH 2
#define NDEV 3
#define STREAM_MAX (64u << 10)    /* bytes per channel the ops may generate */
#define MAX_PACKET (16u << 10)    /* the engine's max_packet_size */
#define CAP (64u << 10)           /* its buffer_cap */
#define SMALL_CAP (16u << 10)     /* mode bit 2: one largest packet, four 4 KiB granules */
#define MAX_DATA (MAX_PACKET - VU_WIRE_VFIO_HEADER_SIZE) /* the largest len of op 0 */
#define SNDBUF 8192               /* SO_SNDBUF of the harness's ends; the kernel doubles it */
#define RING_ENTRIES 16

static const uint8_t uuid[16] = { 0xfa, 0xce, 0xb0, 0x0c, 1, 2, 3, 4,
				  5, 6, 7, 8, 9, 10, 11, 12 };
static const char *const idstrs[NDEV + 1] = { "0000:03:00.0/vfio", "0000:03:00.1/vfio",
					      "0000:03:00.2/vfio", "unknown/vfio" };

/* The bytes for one channel; p is reused by every execution (no allocation per run). */
struct stream {
	uint8_t *p;
	size_t len, off;
	bool ended;
};

struct dev {
	int fd;
	int config_calls;
	int done_calls;
	int done_error;
};

/*
 * The data of generated packets depends on device and idx, so order is checkable: byte i
 * of packet (dev, idx) is i * 7 + (i >> 8) + idx * 31 + dev * 101 (mod 256). Adding 256 to
 * i adds 1, so that is byte i + 256 * (idx * 31 + dev * 101 mod 256) of the one table
 * below: a packet's data is one memcpy (the byte loop, instrumented by the fuzzer, took a
 * sixth of all the time).
 */
#define PATTERN_LEN (STREAM_MAX + 256 * 256)
static uint8_t pattern_table[PATTERN_LEN];

static const uint8_t *pattern(int dev, uint32_t idx)
{
	static bool ready;

	for (size_t i = 0; !ready && i < PATTERN_LEN; i++)
		pattern_table[i] = (uint8_t)(i * 7 + (i >> 8));
	ready = true;
	return pattern_table + 256 * (uint8_t)(idx * 31 + (uint32_t)dev * 101);
}

/* Appends n bytes of p; false if the stream is full. */
static bool put(struct stream *s, const void *p, size_t n)
{
	if (!n)
		return true;
	if (s->ended || s->len + n > STREAM_MAX)
		return false;
	memcpy(s->p + s->len, p, n);
	s->len += n;
	return true;
}

/*
 * What ops mode sent, for an order oracle: per device and idx below 256, how many data
 * packets with that idx were generated and the length of the last; the config idx. A DONE
 * device whose idx 0..N-1 were each sent exactly once must hold exactly their patterns, in
 * order. Raw bytes and crafted headers (ops 2, 3) can form packets the oracle cannot know:
 * then it is off.
 */
struct oracle {
	bool off;
	uint8_t count[NDEV][256];
	uint32_t len[NDEV][256];
	int config_count[NDEV];
	uint32_t config_idx[NDEV];
};

static struct oracle oracle;

struct reader {
	const uint8_t *p;
	size_t len, off;
};

static uint32_t take(struct reader *r, int bytes)
{
	uint32_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | (r->off < r->len ? r->p[r->off++] : 0);
	return v;
}

static void packet(struct stream *s, int dev, uint32_t version, uint32_t idx, uint32_t flags,
		   size_t len, const uint8_t *data)
{
	uint8_t buf[VU_WIRE_HEADER_SIZE + VU_WIRE_VFIO_HEADER_SIZE];

	vu_wire_encode_header(buf, idstrs[dev], (uint32_t)dev,
			      (uint32_t)(VU_WIRE_VFIO_HEADER_SIZE + len));
	vu_wire_encode_vfio_header(buf + VU_WIRE_HEADER_SIZE, idx, flags);
	vu_put_be32(buf + VU_WIRE_HEADER_SIZE, version);
	if (s->ended || s->len + sizeof(buf) + len > STREAM_MAX)
		return; /* all or nothing: a cut packet would be raw bytes */
	put(s, buf, sizeof(buf));
	put(s, data ? data : pattern(dev, idx), len);
	if (dev >= NDEV || version != VU_WIRE_VFIO_VERSION || idx >= 256 ||
	    (flags & ~VU_WIRE_VFIO_FLAG_CONFIG_STATE))
		return; /* rejected by the engine: nothing to expect */
	if (flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
		oracle.config_count[dev]++;
		oracle.config_idx[dev] = idx;
	} else {
		if (oracle.count[dev][idx] < 255)
			oracle.count[dev][idx]++;
		oracle.len[dev][idx] = (uint32_t)len;
	}
}

/* Device dev is DONE: check its data fd against the oracle. */
static void check_order(int dev, int fd)
{
	uint32_t n = oracle.config_idx[dev];
	size_t total = 0, size, off = 0;
	struct stat sb;
	uint8_t *got;

	if (oracle.off || oracle.config_count[dev] != 1)
		return;
	for (uint32_t i = 0; i < n; i++) {
		if (oracle.count[dev][i] != 1)
			return; /* ambiguous (or impossible: then DONE itself is wrong, see below) */
		total += oracle.len[dev][i];
	}
	ASSERT(fstat(fd, &sb) == 0, "fstat");
	size = (size_t)sb.st_size;
	ASSERT(size == total, "DONE device %d holds %zu bytes, its packets 0..%u carry %zu", dev,
	       size, n - 1, total);
	got = malloc(size ? size : 1);
	ASSERT(got && pread(fd, got, size, 0) == (ssize_t)size, "pread");
	for (uint32_t i = 0; i < n; off += oracle.len[dev][i++]) {
		const uint8_t *want = pattern(dev, i);

		if (memcmp(got + off, want, oracle.len[dev][i]) == 0)
			continue;
		for (uint32_t k = 0; k < oracle.len[dev][i]; k++)
			ASSERT(got[off + k] == want[k],
			       "DONE device %d: byte %zu (packet idx %u, offset %u) out of order", dev,
			       off + k, i, k);
	}
	free(got);
}

static void build_ops(struct stream *s, const uint8_t *data, size_t len)
{
	struct reader r = { data, len, 0 };

	for (int c = 0; c < NCH; c++) {
		uint8_t hs[VU_WIRE_HANDSHAKE_SIZE];

		vu_wire_encode_handshake(hs, uuid, (uint8_t)c);
		put(&s[c], hs, sizeof(hs));
	}
	while (r.off < r.len) {
		uint32_t op = take(&r, 1) % 6, sel = take(&r, 1);
		struct stream *st = &s[sel & 1];
		int dev = (int)((sel >> 1) % (NDEV + 1));

		switch (op) {
		case 0: {
			uint32_t idx = take(&r, 1), n = take(&r, 2) % (MAX_DATA + 1);

			packet(st, dev, 0, idx, 0, n, NULL);
			break;
		}
		case 1: {
			uint32_t idx = take(&r, 1), n = take(&r, 1);
			uint8_t blob[16 + 255];

			memset(blob + 8, 0xcf, n);
			vu_wire_frame_config(blob, n);
			packet(st, dev, 0, idx, VU_WIRE_VFIO_FLAG_CONFIG_STATE, n + 16, blob);
			break;
		}
		case 2: {
			uint32_t n = take(&r, 1);

			if (n > r.len - r.off)
				n = (uint32_t)(r.len - r.off);
			if (n)
				oracle.off = true;
			put(st, r.p + r.off, n);
			r.off += n;
			break;
		}
		case 3: {
			uint8_t h[VU_WIRE_HEADER_SIZE];
			uint32_t size = take(&r, 4), flags = take(&r, 1);

			vu_wire_encode_header(h, idstrs[dev], (uint32_t)dev, size);
			vu_put_be32(h + 8, flags << 1 ^ VU_WIRE_FLAG_DEVICE_STATE);
			oracle.off = true;
			put(st, h, sizeof(h));
			break;
		}
		case 4: {
			uint32_t version = take(&r, 1), idx = take(&r, 4), flags = take(&r, 4);
			uint32_t n = take(&r, 1);

			packet(st, dev, version, idx, flags, n, NULL);
			break;
		}
		default:
			st->ended = true;
			break;
		}
	}
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct dev *d = opaque;

	(void)data;
	(void)len;
	d->config_calls++;
	return 0;
}

static void done(void *opaque, int error)
{
	struct dev *d = opaque;

	d->done_calls++;
	d->done_error = error;
}

/*
 * The data fds, kept across executions and emptied before each: as fresh as new memfds
 * (size 0, file position 0) without creating and closing three per execution.
 */
static int data_fd(int i)
{
	static int fds[NDEV] = { -1, -1, -1 };

	if (fds[i] < 0)
		fds[i] = memfd_create("fuzz-dest", MFD_CLOEXEC);
	ASSERT(fds[i] >= 0, "memfd");
	ASSERT(ftruncate(fds[i], 0) == 0 && lseek(fds[i], 0, SEEK_SET) == 0, "empty the memfd");
	return fds[i];
}

/*
 * ASan's defaults (ASAN_OPTIONS overrides them). Its 256 MiB quarantine of freed memory
 * means every allocation lands on memory not touched for about 10^4 executions (an
 * execution allocates about 20 KB): page faults and cache misses made executions 1.4 times
 * slower. 16 MiB still holds several hundred executions' frees, so a use after free
 * within an execution, or across a few, is still caught.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *e = NULL;
	struct vfio_uring_device *devs[NDEV];
	struct vfio_uring_engine_stats stats;
	static uint8_t stream_bytes[NCH][STREAM_MAX];
	struct stream s[NCH];
	struct dev d[NDEV];
	int socks[NCH][2];
	uint8_t mode = len ? data[0] : 0;
	int fds0, rc = 0, ret;
	uint64_t deadline;
	const char *msg = NULL;
	bool switched;
	unsigned stalled_rounds = 0;
	uint64_t last_wire_bytes = 0;

	memset(s, 0, sizeof(s));
	memset(d, 0, sizeof(d));
	for (int c = 0; c < NCH; c++)
		s[c].p = stream_bytes[c];
	for (int i = 0; i < NDEV; i++)
		d[i].fd = data_fd(i);
	fds0 = count_fds();
	ASSERT(fds0 >= 0, "/proc/self/fd");
	memset(&oracle, 0, sizeof(oracle));
	oracle.off = !(mode & 1);
	if (mode & 1) {
		build_ops(s, data + 1, len ? len - 1 : 0);
	} else if (len >= 3) {
		size_t rest = len - 3, cut = (size_t)data[1] << 8 | data[2];

		cut = cut < rest ? cut : rest;
		put(&s[0], data + 3, cut);
		put(&s[1], data + 3 + cut, rest - cut);
	}

	vfio_uring_engine_opts_init(&eo, VFIO_URING_DESTINATION);
	memcpy(eo.uuid, uuid, 16);
	eo.max_packet_size = MAX_PACKET;
	eo.buffer_cap = (mode & 4) ? SMALL_CAP : CAP;
	eo.ring_entries = RING_ENTRIES;
	if (mode & 8)
		eo.flags |= VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	if (mode & 16)
		eo.flags |= VFIO_URING_ENGINE_F_BASELINE_RING;
	if ((mode & 32) && !(mode & 1))
		eo.flags |= VFIO_URING_ENGINE_F_PRECOPY;
	ret = vfio_uring_engine_create(&eo, &e);
	ASSERT(ret == 0, "engine_create %d", ret);
	for (int c = 0; c < NCH; c++) {
		ASSERT(connect_pair(socks[c], false) == 0, "sp");
		fcntl(socks[c][1], F_SETFL, O_NONBLOCK);
		ASSERT(setsockopt(socks[c][1], SOL_SOCKET, SO_SNDBUF, &(int){ SNDBUF },
				  sizeof(int)) == 0, "SO_SNDBUF");
		ASSERT(vfio_uring_engine_add_channel(e, socks[c][0]) == c, "add_channel");
	}
	for (int i = 0; i < NDEV; i++) {
		struct vfio_uring_device_opts o;

		vfio_uring_device_opts_init(&o);
		o.idstr = idstrs[i];
		o.instance_id = (uint32_t)i;
		o.data_fd = d[i].fd;
		o.multifd = i == 2 ? VFIO_URING_MULTIFD_OFF : VFIO_URING_MULTIFD_AUTO;
		o.load_config = load_config;
		o.done = done;
		o.opaque = &d[i];
		ASSERT(vfio_uring_engine_add_device(e, &o, &devs[i]) == 0, "add_device");
	}
	ASSERT(vfio_uring_engine_start(e) == 0, "start");
	if (!(mode & 2))
		ASSERT(vfio_uring_engine_switchover_start(e) == 0, "switchover");
	switched = !(mode & 2);

	deadline = now_ms() + 10000;
	while (rc == 0) {
		struct pollfd pfd[NCH + 1];
		int n = 0;

		for (int c = 0; c < NCH; c++) {
			struct stream *st = &s[c];

			while (st->off < st->len) {
				ssize_t w = send(socks[c][1], st->p + st->off, st->len - st->off,
						 MSG_NOSIGNAL | MSG_DONTWAIT);

				if (w <= 0)
					break;
				st->off += (size_t)w;
			}
			if (st->off < st->len && errno != EAGAIN)
				st->off = st->len; /* the engine shut the channel down */
			if (st->off == st->len && st->off != SIZE_MAX) {
				shutdown(socks[c][1], SHUT_WR);
				st->off = st->len = SIZE_MAX; /* done */
			}
			if (st->len != SIZE_MAX)
				pfd[n++] = (struct pollfd){ .fd = socks[c][1], .events = POLLOUT };
		}
		if (!switched && (n == 0 || stalled_rounds >= 2)) {
			/*
			 * A complete stream may wait for switchover: everything is sent now, or the
			 * engine stopped receiving because its cap is full (it waits for switchover).
			 */
			ASSERT(vfio_uring_engine_switchover_start(e) == 0, "late switchover");
			switched = true;
		}
		pfd[n++] = (struct pollfd){ .fd = vfio_uring_engine_get_fd(e), .events = POLLIN };
		poll(pfd, (nfds_t)n, 5);
		rc = vfio_uring_engine_process(e);
		ASSERT(vfio_uring_engine_get_stats(e, &stats, sizeof(stats)) == 0, "stats");
		stalled_rounds = stats.wire_bytes == last_wire_bytes ? stalled_rounds + 1 : 0;
		last_wire_bytes = stats.wire_bytes;
		ASSERT(now_ms() < deadline, "HANG: the engine did not finish in 10 s (mode %u)",
		       mode);
	}

	/* invariants */
	ASSERT(rc == 1 || rc < 0, "process returned %d", rc);
	ret = vfio_uring_engine_error(e, &msg);
	ASSERT(vfio_uring_engine_get_stats(e, &stats, sizeof(stats)) == 0, "stats");
	ASSERT(stats.buffer_peak <= stats.buffer_cap, "buffer peak %llu above the cap %llu",
	       (unsigned long long)stats.buffer_peak, (unsigned long long)stats.buffer_cap);
	if (rc < 0) {
		ASSERT(ret == rc, "engine_error %d but process %d", ret, rc);
		ASSERT(msg && msg[0], "no message for error %d", rc);
		ASSERT(vfio_uring_engine_process(e) == rc, "process changed its result");
		ret = vfio_uring_engine_run(e, 0);
		ASSERT(ret == rc, "run(e, 0) returned %d after process() %d", ret, rc);
	} else {
		ASSERT(ret == 0, "done with error %d", ret);
		ASSERT(switched, "done without switchover_start");
	}
	for (int i = 0; i < NDEV; i++) {
		struct vfio_uring_device_status st;
		struct stat sb;

		ASSERT(vfio_uring_device_get_status(devs[i], &st, sizeof(st)) == 0, "status");
		ASSERT(fstat(d[i].fd, &sb) == 0, "fstat");
		ASSERT(d[i].done_calls <= 1 && d[i].config_calls <= 1, "device %d: done %d config %d",
		       i, d[i].done_calls, d[i].config_calls);
		if (i == 2) {
			ASSERT(st.state != VFIO_URING_DEVICE_DONE && sb.st_size == 0 &&
				       d[i].config_calls == 0,
			       "multifd OFF device state %d, %lld bytes", st.state,
			       (long long)sb.st_size);
			continue;
		}
		/* a failed device may have had a write complete in the kernel, not yet reaped */
		ASSERT((uint64_t)sb.st_size >= st.data_bytes, "device %d: %lld bytes in the fd, %llu counted",
		       i, (long long)sb.st_size, (unsigned long long)st.data_bytes);
		if (st.state == VFIO_URING_DEVICE_DONE)
			ASSERT((uint64_t)sb.st_size == st.data_bytes, "DONE device %d: %lld bytes, %llu counted",
			       i, (long long)sb.st_size, (unsigned long long)st.data_bytes);
		if (st.state == VFIO_URING_DEVICE_DONE)
			check_order(i, d[i].fd);
		if (st.state == VFIO_URING_DEVICE_DONE)
			ASSERT(d[i].config_calls == 1 && d[i].done_calls == 1 && d[i].done_error == 0,
			       "device %d DONE: config %d done %d/%d", i, d[i].config_calls,
			       d[i].done_calls, d[i].done_error);
		else
			ASSERT(d[i].config_calls == 0 && (d[i].done_calls == 0 || d[i].done_error < 0),
			       "device %d %s: config %d done %d/%d", i,
			       vfio_uring_device_state_name(st.state), d[i].config_calls,
			       d[i].done_calls, d[i].done_error);
		if (rc == 1)
			ASSERT(st.state == VFIO_URING_DEVICE_DONE, "engine done, device %d %s", i,
			       vfio_uring_device_state_name(st.state));
	}

	vfio_uring_engine_destroy(e);
	for (int c = 0; c < NCH; c++) {
		close(socks[c][0]);
		close(socks[c][1]);
	}
	ASSERT(count_fds() == fds0, "fd leak: %d before, %d after", fds0, count_fds());
	return 0;
}
