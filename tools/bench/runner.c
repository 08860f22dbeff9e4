/* SPDX-License-Identifier: MIT */
/*
 * One run: fork the destination and the source as separate processes, collect each one's
 * resource usage with wait4(2) (user + sys of every thread, io_uring's kernel workers
 * included, peak RSS, context switches), then verify every byte of every device.
 *
 * The parent creates the devices once per (devices, size) and reuses them: source memfds
 * with their digests, destination memfd sinks truncated before each run. Memfd pages are
 * shared memory the sides never map, so they do not count in the sides' RSS: peak RSS is
 * what each design holds in buffers and threads.
 */
#include "stats.h"

#include "devmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
	unsigned devices;
	uint64_t size, seed;
	uint64_t src_size;   /* source memfds: size, plus room for dirty bytes (--precopy) */
	int *src;            /* source memfds (local, or the source host) */
	uint64_t *digest;    /* expected digest per device */
	int *sink;           /* destination memfds */
	bool have_src, have_sink;
} dc;

static double progress_frac; /* of all runs of this invocation, for the progress bar */
static bool devices_fresh;   /* just created: the next run is a warm-up */
static bool warming_up;      /* names the warm-up's processes apart, for perf */

static void devices_free(void)
{
	for (unsigned d = 0; d < dc.devices; d++) {
		if (dc.src && dc.src[d] >= 0)
			close(dc.src[d]);
		if (dc.sink && dc.sink[d] >= 0)
			close(dc.sink[d]);
	}
	free(dc.src);
	free(dc.sink);
	free(dc.digest);
	memset(&dc, 0, sizeof(dc));
}

void runner_cleanup(void)
{
	devices_free();
}

/*
 * The source memfds' size: the device's state, plus, in pre-copy mode with a dirty rate, the
 * most dirty bytes the live phase can produce (the model's pre-copy file streams a prefix of
 * its backing fd, see devmodel.h; past this room the device stops dirtying).
 */
static uint64_t source_size(const struct bench_cfg *cfg, uint64_t size)
{
	uint64_t extra = 0;

	if (cfg->precopy > 0 && cfg->dirty_rate) {
		extra = (uint64_t)((double)cfg->dirty_rate * cfg->precopy_max_ms / 1000.0);
		extra = (extra + 4095) & ~(uint64_t)4095;
	}
	return size + extra;
}

/* want_src: create source memfds; else only compute the expected digests. */
static int devices_prepare(const struct bench_cfg *cfg, unsigned devices, uint64_t size,
			   bool want_src, bool want_sink)
{
	uint64_t src_size = want_src ? source_size(cfg, size) : size;
	int err;

	if (dc.devices != devices || dc.size != size || dc.seed != cfg->seed ||
	    dc.src_size != src_size ||
	    (want_src && !dc.have_src) || (want_sink && !dc.have_sink)) {
		devices_free();
		dc.devices = devices;
		dc.size = size;
		dc.src_size = src_size;
		dc.seed = cfg->seed;
		dc.src = malloc(devices * sizeof(int));
		dc.sink = malloc(devices * sizeof(int));
		dc.digest = calloc(devices, sizeof(uint64_t));
		if (!dc.src || !dc.sink || !dc.digest)
			return -ENOMEM;
		for (unsigned d = 0; d < devices; d++)
			dc.src[d] = dc.sink[d] = -1;
		for (unsigned d = 0; d < devices; d++) {
			if (want_src)
				err = device_create_source(d, src_size, cfg->seed, &dc.src[d],
							   &dc.digest[d]);
			else
				err = device_expected_digest(d, size, cfg->seed, &dc.digest[d]);
			if (err)
				return err;
			if (want_sink) {
				dc.sink[d] = memfd_sink(d);
				if (dc.sink[d] < 0)
					return dc.sink[d];
			}
		}
		dc.have_src = want_src;
		dc.have_sink = want_sink;
		devices_fresh = true;
	}
	for (unsigned d = 0; d < devices; d++) {
		/* Each run reads every source from its start and fills empty sinks. */
		if (want_src && lseek(dc.src[d], 0, SEEK_SET) < 0)
			return -errno;
		/*
		 * Sinks: fresh zeroed pages allocated here, outside the measurement, so that the
		 * destination writes into memory that exists (like a device) rather than paying
		 * for shmem page allocation; a byte not written stays zero and fails the digest.
		 */
		if (want_sink && (fallocate(dc.sink[d], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    0, (off_t)size) < 0 ||
				  ftruncate(dc.sink[d], (off_t)size) < 0 ||
				  fallocate(dc.sink[d], 0, 0, (off_t)size) < 0 ||
				  lseek(dc.sink[d], 0, SEEK_SET) < 0))
			return -errno;
	}
	return 0;
}

/*
 * The device model for one run (--device-rate): FUSE files in front of this run's memfds,
 * one per device and modelled side. Its server is a process of its own (devmodel.c says
 * why), started before the sides are forked and stopped after both exited, so its CPU is
 * the devices', in neither side's figures.
 */
struct run_model {
	struct devmodel *m;
	int *src_fds;        /* NULL: the source reads the memfds */
	int *dst_fds;        /* NULL: the destination writes the memfds */
	unsigned *src_idx;   /* device -> its source file in the model */
	unsigned n;
};

static uint64_t model_rate(uint64_t rate)
{
	return rate == BENCH_RATE_UNLIMITED ? 0 : rate;
}

static void model_stop(struct run_model *rm, struct run_sample *out)
{
	struct devmodel_stats st;

	for (unsigned d = 0; d < rm->n; d++) {
		if (rm->src_fds && rm->src_fds[d] >= 0)
			close(rm->src_fds[d]);
		if (rm->dst_fds && rm->dst_fds[d] >= 0)
			close(rm->dst_fds[d]);
	}
	free(rm->src_fds);
	free(rm->dst_fds);
	free(rm->src_idx);
	if (rm->m && devmodel_destroy(rm->m, &st) == 0 && out) {
		out->fig[FIG_DEV_CPU_S] = st.cpu_s;
		out->fig[FIG_DEV_READS_PEAK] = (double)st.reads_peak;
		out->fig[FIG_DEV_WRITES_PEAK] = (double)st.writes_peak;
	}
	memset(rm, 0, sizeof(*rm));
}

/*
 * The source's file of a device. In pre-copy mode (--precopy) it is a pre-copy file in
 * both runs of a configuration, so that they read the same device: stop-copy only, it is in
 * stop-copy before the engine opens it (every byte in STOP_COPY, a plain source then); with
 * pre-copy it offers the --precopy share as initial bytes and dirties at --dirty-rate.
 */
static struct devmodel_file source_file(const struct bench_cfg *cfg, const struct run_params *p,
					unsigned d)
{
	struct devmodel_file f = { .kind = DEVMODEL_SOURCE, .backing_fd = dc.src[d],
				   .rate = model_rate(cfg->device_rate),
				   .latency_us = cfg->device_latency_us };
	uint64_t initial = (uint64_t)(cfg->precopy * (double)p->size) & ~(uint64_t)4095;

	if (cfg->precopy > 0) {
		f.kind = DEVMODEL_PRECOPY;
		f.precopy_initial = p->precopy ? initial : 0;
		f.dirty_rate = p->precopy ? cfg->dirty_rate : 0;
		f.stop_copy_bytes = p->size - f.precopy_initial;
	}
	return f;
}

static int model_start(const struct bench_cfg *cfg, const struct run_params *p, bool src,
		       bool dst, struct run_model *rm, char *msg, size_t len)
{
	unsigned devices = p->devices;
	struct devmodel_file *files = calloc(2 * (size_t)devices, sizeof(*files));
	unsigned n = 0;
	int err;

	memset(rm, 0, sizeof(*rm));
	rm->src_fds = src ? malloc(devices * sizeof(int)) : NULL;
	rm->dst_fds = dst ? malloc(devices * sizeof(int)) : NULL;
	rm->src_idx = src ? malloc(devices * sizeof(unsigned)) : NULL;
	if (!files || (src && (!rm->src_fds || !rm->src_idx)) || (dst && !rm->dst_fds)) {
		free(files);
		model_stop(rm, NULL); /* rm->n is 0: no fd to close yet */
		return -ENOMEM;
	}
	rm->n = devices;
	for (unsigned d = 0; d < devices; d++) {
		if (src) {
			rm->src_idx[d] = n;
			files[n++] = source_file(cfg, p, d);
		}
		if (dst)
			files[n++] = (struct devmodel_file){
				.kind = DEVMODEL_SINK, .backing_fd = dc.sink[d],
				.rate = model_rate(cfg->dst_device_rate),
				.latency_us = cfg->device_latency_us };
		if (src)
			rm->src_fds[d] = -1;
		if (dst)
			rm->dst_fds[d] = -1;
	}
	err = devmodel_create(files, n, &rm->m, msg, len);
	free(files);
	/* Stop-copy only: the VM is stopped before the devices are opened. */
	for (unsigned d = 0; !err && src && cfg->precopy > 0 && !p->precopy && d < devices; d++)
		err = devmodel_stop_copy(rm->m, rm->src_idx[d]);
	for (unsigned d = 0, i = 0; !err && d < devices; d++) {
		if (src && (rm->src_fds[d] = devmodel_open(rm->m, i++)) < 0)
			err = rm->src_fds[d];
		if (!err && dst && (rm->dst_fds[d] = devmodel_open(rm->m, i++)) < 0)
			err = rm->dst_fds[d];
		if (err)
			snprintf(msg, len, "device model: opening device %u's file: %s", d,
				 strerror(-err));
	}
	if (err)
		model_stop(rm, NULL);
	return err;
}

static void make_uuid(uint64_t seed, uint8_t uuid[16])
{
	device_fill_block(0xffff, seed, 0, uuid, 16);
}

/*
 * lengths: each device's stream length when it is not the source memfd's whole content
 * (pre-copy files: a prefix of it, known once stopped); NULL: size, with the digests
 * computed when the memfds were made.
 */
static int verify_sinks(unsigned devices, uint64_t size, const uint64_t *lengths, char *msg,
			size_t len)
{
	for (unsigned d = 0; d < devices; d++) {
		uint64_t got_size, got, want = dc.digest[d];
		int err = fd_digest(dc.sink[d], &got_size, &got);

		if (!err && lengths) {
			size = lengths[d];
			err = device_expected_digest(d, size, dc.seed, &want);
		}
		if (err) {
			snprintf(msg, len, "device %u: reading the destination back: %s", d,
				 strerror(-err));
			return err;
		}
		if (got_size != size) {
			snprintf(msg, len, "device %u: destination holds %llu bytes, source %llu", d,
				 (unsigned long long)got_size, (unsigned long long)size);
			return -EIO;
		}
		if (got != want) {
			snprintf(msg, len, "device %u: destination content differs from the source", d);
			return -EIO;
		}
	}
	return 0;
}

static void fill_rusage(struct side_result *r, const struct rusage *ru)
{
	r->cpu_s = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec * 1e-6 +
		   (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec * 1e-6;
	r->maxrss_kib = ru->ru_maxrss;
	r->ctx_switches = ru->ru_nvcsw + ru->ru_nivcsw;
}

static pid_t spawn_side(struct side_ctx *ctx, const int *close_fds, unsigned nclose)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid != 0)
		return pid;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* Named for perf/top: "vub-src-threads", "vub-dst-uring", ... */
	{
		char name[16];

		snprintf(name, sizeof(name), "vub-%s-%s", ctx->side == SIDE_SOURCE ? "src" : "dst",
			 warming_up ? "warmup" : engine_name(ctx->engine));
		prctl(PR_SET_NAME, name);
	}
	for (unsigned i = 0; i < nclose; i++)
		close(close_fds[i]);
	_exit(side_main(ctx) ? 1 : 0);
}

static void fill_sample(const struct run_params *p, const struct side_result *src,
			const struct side_result *dst, struct run_sample *out)
{
	uint64_t bytes = (uint64_t)p->devices * p->size;
	double secs = src->t_end > src->t0 ? src->t_end - src->t0 : 0;

	if (!out->err) {
		/*
		 * The destination's error names the cause (e.g. the buffer cap); prefer it,
		 * unless the source failed before it ever started (then the destination only
		 * saw the control connection close).
		 */
		if (src->err && src->t0 == 0) {
			out->err = src->err;
			snprintf(out->msg, sizeof(out->msg), "%s", src->msg);
		} else if (dst->err) {
			out->err = dst->err;
			snprintf(out->msg, sizeof(out->msg), "%s", dst->msg);
		} else if (src->err) {
			out->err = src->err;
			snprintf(out->msg, sizeof(out->msg), "%s", src->msg);
		} else if (secs <= 0) {
			out->err = -EIO;
			snprintf(out->msg, sizeof(out->msg), "no completion time");
		}
	}
	out->fig[FIG_STOP_MS] = secs * 1e3;
	out->fig[FIG_GBPS] = secs > 0 ? (double)bytes / secs / 1e9 : 0;
	out->fig[FIG_SRC_CPU_S] = src->cpu_s;
	out->fig[FIG_DST_CPU_S] = dst->cpu_s;
	out->fig[FIG_CPU_S] = src->cpu_s + dst->cpu_s;
	out->fig[FIG_CPU_PER_GIB] = bytes ? out->fig[FIG_CPU_S] / ((double)bytes / (1u << 30)) : 0;
	out->fig[FIG_SRC_RSS_KIB] = (double)src->maxrss_kib;
	out->fig[FIG_DST_RSS_KIB] = (double)dst->maxrss_kib;
	out->fig[FIG_CTXSW] = (double)(src->ctx_switches + dst->ctx_switches);
	out->fig[FIG_SRC_ENTERS] = (double)src->ring_enters;
	out->fig[FIG_DST_ENTERS] = (double)dst->ring_enters;
	out->fig[FIG_DST_BUF_PEAK] = (double)dst->buffer_peak;
	out->fig[FIG_SC_BYTES] = (double)bytes;
	if (p->precopy) {
		/* The VM's downtime for the devices: from the stop, not from the start. */
		secs = src->t_end > src->t_stop && src->t_stop > 0 ? src->t_end - src->t_stop : 0;
		out->fig[FIG_STOP_MS] = secs * 1e3;
		out->fig[FIG_LIVE_MS] = src->t_stop > src->t0 ? (src->t_stop - src->t0) * 1e3 : 0;
		out->fig[FIG_ENGINE_LIVE_BYTES] = (double)src->precopy_bytes;
		out->fig[FIG_SC_BYTES] = (double)src->stop_bytes;
		out->fig[FIG_READY] = src->precopy_ready;
	}
}

/*
 * Pre-copy mode: every device's stream length (the model decided it at the stop) into
 * lengths, the bytes before the stop into the sample (stream - what the devices had left at
 * the stop), and the stop-copy rate from them.
 */
static int precopy_lengths(const struct run_params *p, const struct run_model *rm,
			   uint64_t *lengths, struct run_sample *out)
{
	uint64_t total = 0;

	for (unsigned d = 0; d < p->devices; d++) {
		int err = devmodel_stream_length(rm->m, rm->src_idx[d], &lengths[d]);

		if (err) {
			snprintf(out->msg, sizeof(out->msg), "device %u: no stream length: %s", d,
				 strerror(-err));
			return err;
		}
		total += lengths[d];
	}
	if (!p->precopy)
		out->fig[FIG_SC_BYTES] = (double)total;
	out->fig[FIG_LIVE_BYTES] = (double)total - out->fig[FIG_SC_BYTES];
	if (p->precopy && out->fig[FIG_STOP_MS] > 0)
		out->fig[FIG_GBPS] = out->fig[FIG_SC_BYTES] / (out->fig[FIG_STOP_MS] / 1e3) / 1e9;
	return 0;
}

static int run_local(const struct bench_cfg *cfg, const struct run_params *p,
		     struct run_sample *out, const char *label);

static int run_local(const struct bench_cfg *cfg, const struct run_params *p,
		     struct run_sample *out, const char *label)
{
	const struct bench_engine_ops *ops = engine_ops(p->engine);
	unsigned nconn = ops->uses_one_channel ? 1 : p->channels;
	struct side_result *res;
	struct side_ctx sctx, dctx;
	struct conn_set cs;
	pid_t pids[2];
	bool exited[2] = { false, false };
	struct run_model rm = { 0 };
	uint64_t *lengths = NULL; /* pre-copy mode: each device's stream length */
	double start;
	int *close_src, *close_dst, err;

	err = devices_prepare(cfg, p->devices, p->size, true, true);
	if (err) {
		snprintf(out->msg, sizeof(out->msg), "creating the devices: %s", strerror(-err));
		return out->err = err;
	}
	if (devices_fresh) {
		/*
		 * The first transfer after creating the memfds is 2-5x slower for every engine
		 * (the kernel settling GiBs of new shmem pages): one unmeasured raw run first.
		 */
		struct run_params warm = *p;
		struct run_sample ws;

		devices_fresh = false;
		warm.engine = ENGINE_RAW;
		warm.devmode = 0;
		memset(&ws, 0, sizeof(ws));
		warming_up = true;
		run_local(cfg, &warm, &ws, "warm-up");
		warming_up = false;
		progress_done();
		err = devices_prepare(cfg, p->devices, p->size, true, true);
		if (err)
			return out->err = err;
	}
	/* The warm-up settles the memfds' pages: straight to them, at memory speed. */
	if (bench_model(cfg) && !warming_up) {
		err = model_start(cfg, p, bench_src_model(cfg), bench_dst_model(cfg), &rm,
				  out->msg, sizeof(out->msg));
		if (err)
			return out->err = err;
	}
	err = transport_connect_local(cfg, nconn, &cs);
	if (err) {
		model_stop(&rm, NULL);
		snprintf(out->msg, sizeof(out->msg), "connecting: %s", strerror(-err));
		return out->err = err;
	}
	res = mmap(NULL, 2 * sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	close_src = malloc((nconn + 1) * sizeof(int));
	close_dst = malloc((nconn + 1) * sizeof(int));
	if (res == MAP_FAILED || !close_src || !close_dst) {
		conn_set_close(&cs);
		model_stop(&rm, NULL);
		free(close_src);
		free(close_dst);
		return out->err = -ENOMEM;
	}
	memset(res, 0, 2 * sizeof(*res));
	/* Each side closes the other side's ends, so that a dead peer reads as EOF. */
	for (unsigned i = 0; i < nconn; i++) {
		close_src[i] = cs.dst[i];
		close_dst[i] = cs.src[i];
	}
	close_src[nconn] = cs.ctrl[1];
	close_dst[nconn] = cs.ctrl[0];

	dctx = (struct side_ctx){ .side = SIDE_DEST, .cfg = cfg, .engine = p->engine,
				  .async_devio = p->devmode == DEVMODE_ASYNC, .ctrl = cs.ctrl[1],
				  .chans = cs.dst, .nchan = nconn,
				  .dev_fds = rm.dst_fds ? rm.dst_fds : dc.sink,
				  .ndev = p->devices, .dev_size = p->size, .chunk = p->chunk,
				  .res = &res[1] };
	sctx = dctx;
	sctx.side = SIDE_SOURCE;
	sctx.ctrl = cs.ctrl[0];
	sctx.chans = cs.src;
	sctx.dev_fds = rm.src_fds ? rm.src_fds : dc.src;
	sctx.res = &res[0];
	sctx.precopy = dctx.precopy = p->precopy && rm.m;
	sctx.model = rm.m;
	sctx.model_idx = rm.src_idx;
	make_uuid(cfg->seed, dctx.uuid);
	make_uuid(cfg->seed, sctx.uuid);

	start = now_s();
	pids[1] = spawn_side(&dctx, close_dst, nconn + 1);
	pids[0] = pids[1] < 0 ? -1 : spawn_side(&sctx, close_src, nconn + 1);
	conn_set_close(&cs);
	free(close_src);
	free(close_dst);
	if (pids[0] < 0 || pids[1] < 0) {
		if (pids[1] > 0)
			kill(pids[1], SIGKILL);
		out->err = -errno;
		snprintf(out->msg, sizeof(out->msg), "fork failed");
	}
	while ((pids[0] > 0 && !exited[0]) || (pids[1] > 0 && !exited[1])) {
		for (int i = 0; i < 2; i++) {
			struct rusage ru;
			int status;

			if (pids[i] <= 0 || exited[i])
				continue;
			if (wait4(pids[i], &status, WNOHANG, &ru) == pids[i]) {
				exited[i] = true;
				fill_rusage(&res[i], &ru);
				if (WIFSIGNALED(status) && !res[i].err) {
					res[i].err = -EINTR;
					snprintf(res[i].msg, sizeof(res[i].msg),
						 "%s process killed by signal %d",
						 i ? "destination" : "source", WTERMSIG(status));
				}
			}
		}
		if (exited[0] && exited[1])
			break;
		if (now_s() - start > cfg->timeout_s && !out->err) {
			out->err = -ETIMEDOUT;
			snprintf(out->msg, sizeof(out->msg), "run took more than %u s: killed",
				 cfg->timeout_s);
			for (int i = 0; i < 2; i++)
				if (pids[i] > 0 && !exited[i])
					kill(pids[i], SIGKILL);
		}
		progress_update(label, progress_frac, now_s() - start);
		usleep(20 * 1000);
	}
	fill_sample(p, &res[0], &res[1], out);
	if (!out->err && cfg->precopy > 0 && rm.m) {
		lengths = calloc(p->devices, sizeof(*lengths));
		err = lengths ? precopy_lengths(p, &rm, lengths, out) : -ENOMEM;
		if (err)
			out->err = err;
	}
	model_stop(&rm, out); /* every byte is in the memfds once both sides exited */
	out->verified = false;
	if (!out->err && cfg->corrupt_for_test) {
		uint8_t b = 0;
		off_t at = (off_t)(p->size / 2);

		if (pread(dc.sink[0], &b, 1, at) == 1) {
			b ^= 0x01;
			if (pwrite(dc.sink[0], &b, 1, at) != 1)
				perror("vfio-uring-bench: --corrupt-for-test");
		}
	}
	if (!out->err) {
		char msg[200];

		err = verify_sinks(p->devices, p->size, lengths, msg, sizeof(msg));
		if (err) {
			out->err = err;
			snprintf(out->msg, sizeof(out->msg), "VERIFICATION FAILED: %s", msg);
		} else if (!res[1].config_ok) {
			out->err = -EBADMSG;
			snprintf(out->msg, sizeof(out->msg),
				 "VERIFICATION FAILED: a config blob was wrong, missing or repeated");
		} else {
			out->verified = true;
		}
	}
	munmap(res, 2 * sizeof(*res));
	free(lengths);
	return out->err;
}

/*
 * Two hosts: this process runs one side. After the side's process exits, the two parents
 * swap their side_result over the control connection ("VUBR" + the struct; same binary
 * on both hosts), so both can print the whole table.
 */
static int exchange_results(int ctrl, const struct side_result *mine, struct side_result *peer)
{
	static const char magic[4] = { 'V', 'U', 'B', 'R' };
	unsigned matched = 0;
	int err = write_full(ctrl, magic, 4);

	if (!err)
		err = write_full(ctrl, mine, sizeof(*mine));
	/* Skip anything the side processes left unread (a failed run's protocol bytes). */
	while (!err && matched < 4) {
		char c;

		err = read_full(ctrl, &c, 1);
		matched = c == magic[matched] ? matched + 1 : (c == magic[0] ? 1 : 0);
	}
	if (!err)
		err = read_full(ctrl, peer, sizeof(*peer));
	return err;
}

static int run_two_host(const struct bench_cfg *cfg, const struct run_params *p,
			struct run_sample *out, const char *label)
{
	enum bench_side side = cfg->listen ? SIDE_DEST : SIDE_SOURCE;
	const struct bench_engine_ops *ops = engine_ops(p->engine);
	unsigned nconn = ops->uses_one_channel ? 1 : p->channels;
	bool modelled = side == SIDE_SOURCE ? bench_src_model(cfg) : bench_dst_model(cfg);
	struct side_result *res, peer;
	struct run_model rm = { 0 };
	struct side_ctx ctx;
	struct rusage ru;
	int *chans = calloc(nconn, sizeof(int)), ctrl = -1, status, err;
	int *dev_fds;
	pid_t pid;

	if (!chans)
		return out->err = -ENOMEM;
	err = devices_prepare(cfg, p->devices, p->size, side == SIDE_SOURCE, side == SIDE_DEST);
	/* This host models its own side's devices only (the same options on both hosts). */
	if (!err && modelled) {
		err = model_start(cfg, p, side == SIDE_SOURCE, side == SIDE_DEST, &rm,
				  out->msg, sizeof(out->msg));
		if (err) {
			free(chans);
			return out->err = err;
		}
	}
	if (!err)
		err = transport_two_host(cfg, side, nconn, &ctrl, chans);
	if (err) {
		snprintf(out->msg, sizeof(out->msg), "%s: %s",
			 side == SIDE_DEST ? "accepting" : "connecting", strerror(-err));
		model_stop(&rm, NULL);
		free(chans);
		return out->err = err;
	}
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		model_stop(&rm, NULL);
		free(chans);
		return out->err = -ENOMEM;
	}
	dev_fds = side == SIDE_DEST ? (rm.dst_fds ? rm.dst_fds : dc.sink)
				    : (rm.src_fds ? rm.src_fds : dc.src);
	memset(res, 0, sizeof(*res));
	ctx = (struct side_ctx){ .side = side, .cfg = cfg, .engine = p->engine,
				 .async_devio = p->devmode == DEVMODE_ASYNC, .ctrl = ctrl,
				 .chans = chans, .nchan = nconn,
				 .dev_fds = dev_fds, .ndev = p->devices,
				 .dev_size = p->size, .chunk = p->chunk, .res = res };
	make_uuid(cfg->seed, ctx.uuid);
	progress_update(label, progress_frac, 0);
	pid = spawn_side(&ctx, NULL, 0);
	for (unsigned i = 0; i < nconn; i++)
		close(chans[i]);
	free(chans);
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) {
		res->err = -ECHILD;
		snprintf(res->msg, sizeof(res->msg), "side process lost");
	} else {
		fill_rusage(res, &ru);
	}
	{
		struct run_sample mine;

		memset(&mine, 0, sizeof(mine));
		model_stop(&rm, &mine);
		out->fig[FIG_DEV_CPU_S] = mine.fig[FIG_DEV_CPU_S];
		out->fig[FIG_DEV_READS_PEAK] = mine.fig[FIG_DEV_READS_PEAK];
		out->fig[FIG_DEV_WRITES_PEAK] = mine.fig[FIG_DEV_WRITES_PEAK];
	}
	if (side == SIDE_DEST && !res->err) {
		char msg[200];

		if (verify_sinks(p->devices, p->size, NULL, msg, sizeof(msg)) == 0 && res->config_ok) {
			res->verified = true;
		} else {
			res->err = -EIO;
			snprintf(res->msg, sizeof(res->msg), "VERIFICATION FAILED: %s",
				 res->config_ok ? msg : "config blob");
		}
	}
	err = exchange_results(ctrl, res, &peer);
	close(ctrl);
	if (err) {
		snprintf(out->msg, sizeof(out->msg), "exchanging results with the peer: %s",
			 strerror(-err));
		munmap(res, sizeof(*res));
		return out->err = err;
	}
	if (side == SIDE_SOURCE)
		fill_sample(p, res, &peer, out);
	else
		fill_sample(p, &peer, res, out);
	out->verified = !out->err && (side == SIDE_DEST ? res->verified : peer.verified);
	if (!out->err && !out->verified) {
		out->err = -EIO;
		snprintf(out->msg, sizeof(out->msg), "VERIFICATION FAILED on the destination");
	}
	munmap(res, sizeof(*res));
	return out->err;
}

int run_once(const struct bench_cfg *cfg, const struct run_params *p, struct run_sample *out,
	     const char *label, double frac)
{
	progress_frac = frac;
	memset(out, 0, sizeof(*out));
	if (cfg->listen || cfg->connect)
		return run_two_host(cfg, p, out, label);
	return run_local(cfg, p, out, label);
}
