/* SPDX-License-Identifier: MIT */
/* Output: the table (with ratios to `uring`), JSON, the sweep's CSV and plot, progress. */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The library's default cap (include/vfio-uring.h), repeated so report.c needs no engine. */
#define VFIO_URING_DEFAULT_BUFFER_CAP_BENCH ((size_t)64 << 20)

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void stats_compute(struct run_stats *st)
{
	double *v = calloc(st->n ? st->n : 1, sizeof(double));

	st->verified = st->n > 0;
	st->err = 0;
	st->msg[0] = 0;
	for (unsigned i = 0; i < st->n; i++) {
		st->verified &= st->s[i].verified;
		if (!st->err && st->s[i].err) {
			st->err = st->s[i].err;
			snprintf(st->msg, sizeof(st->msg), "%s", st->s[i].msg);
		}
	}
	st->cap_error = st->err == -ENOBUFS;
	for (int f = 0; f < FIG_COUNT; f++) {
		unsigned k = 0;

		/* Figures of failed repetitions would mislead: use the good ones, if any. */
		for (unsigned i = 0; i < st->n; i++)
			if (!st->s[i].err)
				v[k++] = st->s[i].fig[f];
		if (!k)
			for (unsigned i = 0; i < st->n; i++)
				v[k++] = st->s[i].fig[f];
		if (!k) {
			st->med[f] = st->min[f] = st->max[f] = 0;
			continue;
		}
		qsort(v, k, sizeof(double), cmp_double);
		st->min[f] = v[0];
		st->max[f] = v[k - 1];
		st->med[f] = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	}
	free(v);
}

const char *devmode_name(unsigned devmode)
{
	return devmode == DEVMODE_ASYNC ? "async" : devmode == DEVMODE_INLINE ? "inline" : "-";
}

void variant_label(const struct run_params *p, char *out, size_t len)
{
	if (p->devmode)
		snprintf(out, len, "%s/%s%s", engine_name(p->engine), devmode_name(p->devmode),
			 p->precopy ? "+pre" : "");
	else
		snprintf(out, len, "%s", engine_name(p->engine));
}

/*
 * The device-bound ideal of a run with the device model: the time the devices alone need.
 * Each device is read at the source rate and written at the destination rate, in chunks,
 * each read or write request costing latency + bytes/rate; with every device busy from start
 * to end, the slower side's whole stream plus one chunk on the faster side (the first chunk
 * must be read before it can be written, the last written after it was read). A delayed
 * switchover holds every destination write until it starts.
 * 0 without a model or with unlimited rates.
 */
double device_ideal_s(const struct bench_cfg *cfg, const struct run_params *p)
{
	double lat = cfg->device_latency_us * 1e-6;
	double chunk = (double)(p->chunk < p->size ? p->chunk : p->size);
	double reqs = p->chunk ? (double)((p->size + p->chunk - 1) / p->chunk) : 0;
	double src = 0, dst = 0, src_chunk = 0, dst_chunk = 0, ideal;
	bool src_paced = bench_src_model(cfg) && cfg->device_rate != BENCH_RATE_UNLIMITED;
	bool dst_paced = bench_dst_model(cfg) && cfg->dst_device_rate != BENCH_RATE_UNLIMITED;

	/* A pre-copy run's stop-copy part depends on what the live phase left: no ideal. */
	if ((!src_paced && !dst_paced) || p->precopy)
		return 0;
	if (src_paced) {
		src = reqs * lat + (double)p->size / (double)cfg->device_rate;
		src_chunk = lat + chunk / (double)cfg->device_rate;
	}
	if (dst_paced) {
		dst = reqs * lat + (double)p->size / (double)cfg->dst_device_rate;
		dst_chunk = lat + chunk / (double)cfg->dst_device_rate;
	}
	ideal = src + dst_chunk > src_chunk + dst ? src + dst_chunk : src_chunk + dst;
	if (cfg->switchover_delay_ms && cfg->switchover_delay_ms / 1000.0 + dst > ideal)
		ideal = cfg->switchover_delay_ms / 1000.0 + dst;
	return ideal;
}

static void rate_str(uint64_t rate, char *out, size_t len)
{
	if (!rate)
		snprintf(out, len, "memfd (no model)");
	else if (rate == BENCH_RATE_UNLIMITED)
		snprintf(out, len, "unpaced");
	else
		snprintf(out, len, "%.1f MiB/s", rate / 1048576.0);
}

/* The reference for ratios: `uring` in async device mode (like a real VFIO fd) if it ran. */
static const struct run_stats *reference(struct run_stats *st, unsigned n,
					 const struct run_params *like)
{
	const struct run_stats *best = NULL;

	for (unsigned i = 0; i < n; i++) {
		if (st[i].p.engine != ENGINE_URING || st[i].err)
			continue;
		if (like && (st[i].p.devices != like->devices || st[i].p.channels != like->channels ||
			     st[i].p.chunk != like->chunk || st[i].p.size != like->size))
			continue;
		if (!best || st[i].p.devmode == DEVMODE_ASYNC)
			best = &st[i];
		if (st[i].p.devmode == DEVMODE_ASYNC)
			break;
	}
	return best;
}

/* ---- progress bar ---- */

static struct {
	bool on;
	bool drawn;
} pg;

bool progress_enabled(const struct bench_cfg *cfg)
{
	pg.on = cfg->progress == 1 || (cfg->progress == -1 && isatty(STDERR_FILENO));
	return pg.on;
}

void progress_update(const char *label, double frac, double elapsed)
{
	char bar[31];
	int fill;

	/* Only for runs longer than a moment: short runs would just flicker. */
	if (!pg.on || (elapsed < 1.0 && !pg.drawn))
		return;
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * 30);
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(30 - fill));
	bar[30] = 0;
	fprintf(stderr, "\r  %-28s [%s] %3d%% %5.1fs", label, bar, (int)(frac * 100), elapsed);
	fflush(stderr);
	pg.drawn = true;
}

void progress_done(void)
{
	if (pg.drawn) {
		fprintf(stderr, "\r%*s\r", 78, "");
		fflush(stderr);
	}
	pg.drawn = false;
}

/* ---- table ---- */

static const char *transport_name(const struct bench_cfg *cfg)
{
	if (cfg->listen || cfg->connect)
		return "tcp (two hosts)";
	return cfg->transport == TRANSPORT_UNIX ? "unix" :
	       cfg->transport == TRANSPORT_VETH ? "veth (two netns)" : "tcp loopback";
}

static void ratio(FILE *f, double v, double ref)
{
	if (ref > 0 && v > 0)
		fprintf(f, " %8.2fx", v / ref);
	else
		fprintf(f, " %9s", "-");
}

/* --precopy: the stop-copy-only run of the same device mode as a pre-copy run. */
static const struct run_stats *stop_copy_only(const struct run_stats *st, unsigned n,
					      const struct run_stats *pre)
{
	for (unsigned i = 0; i < n; i++)
		if (!st[i].p.precopy && st[i].p.engine == pre->p.engine &&
		    st[i].p.devmode == pre->p.devmode && st[i].p.devices == pre->p.devices &&
		    st[i].p.size == pre->p.size)
			return &st[i];
	return NULL;
}

/* B's stop-copy time over A's (medians); NAN when either is missing. */
static double precopy_ratio(const struct run_stats *st, unsigned n, const struct run_stats *s)
{
	const struct run_stats *a = s->p.precopy ? stop_copy_only(st, n, s) : NULL;

	return a && a->med[FIG_STOP_MS] > 0 && s->med[FIG_STOP_MS] > 0
		       ? s->med[FIG_STOP_MS] / a->med[FIG_STOP_MS]
		       : NAN;
}

static void report_precopy(FILE *f, const struct bench_cfg *cfg, struct run_stats *st,
			   unsigned n)
{
	char label[48], rate[32];

	rate_str(cfg->dirty_rate ? cfg->dirty_rate : 0, rate, sizeof(rate));
	fprintf(f, "\npre-copy: %.0f%% of each device's state offered live as initial bytes, "
		   "dirty rate %s per device, stop at readiness or after %u ms.\n"
		   "`+pre` = with pre-copy; the other row = stop-copy only (every byte after the "
		   "stop). stop-copy = the stop to both sides done (the devices' downtime); a `+pre`\n"
		   "row's GB/s above is its stop-copy bytes over that time, its CPU the whole run's\n",
		cfg->precopy * 100, cfg->dirty_rate ? rate : "0", cfg->precopy_max_ms);
	fprintf(f, "%-20s %10s %10s %9s %19s %10s %6s\n", "engine", "live MiB", "stop MiB",
		"live ms", "stop-copy ms", "stop vs", "ready");
	fprintf(f, "%-20s %10s %10s %9s %19s %10s %6s\n", "", "", "", "", "median (min..max)",
		"stop-only", "");
	for (unsigned i = 0; i < n; i++) {
		const struct run_stats *s = &st[i];
		double r = precopy_ratio(st, n, s);
		char a[32], b[16];

		variant_label(&s->p, label, sizeof(label));
		snprintf(a, sizeof(a), "%.0f (%.0f..%.0f)", s->med[FIG_STOP_MS], s->min[FIG_STOP_MS],
			 s->max[FIG_STOP_MS]);
		if (isnan(r))
			snprintf(b, sizeof(b), "-");
		else
			snprintf(b, sizeof(b), "%.2fx", r);
		fprintf(f, "%-20s %10.1f %10.1f %9.0f %19s %10s %6s\n", label,
			s->med[FIG_LIVE_BYTES] / 1048576.0, s->med[FIG_SC_BYTES] / 1048576.0,
			s->med[FIG_LIVE_MS], a, b,
			!s->p.precopy ? "-" : s->min[FIG_READY] > 0 ? "yes" : "NO");
	}
}

void report_table(FILE *f, const struct bench_cfg *cfg, struct run_stats *st, unsigned n)
{
	const struct run_stats *ref = reference(st, n, NULL);
	bool model = bench_model(cfg);
	double ideal = n ? device_ideal_s(cfg, &st[0].p) : 0;
	char label[48];

	if (!n)
		return;
	fprintf(f, "\nvfio-uring-bench: %u devices x %.0f MiB = %.2f GiB, %u channels, chunk %zu KiB, "
		   "%s, %u repetition%s\n",
		st[0].p.devices, st[0].p.size / 1048576.0,
		(double)st[0].bytes / (1u << 30), st[0].p.channels, st[0].p.chunk >> 10,
		transport_name(cfg), cfg->repeat, cfg->repeat > 1 ? "s (median, min..max)" : "");
	if (cfg->switchover_delay_ms)
		fprintf(f, "switchover delayed by %u ms on the destination\n", cfg->switchover_delay_ms);
	if (model) {
		char a[32], b[32];

		rate_str(cfg->device_rate, a, sizeof(a));
		rate_str(cfg->dst_device_rate, b, sizeof(b));
		fprintf(f, "device model (FUSE, tools/bench/devmodel.c): per device, source %s, "
			   "destination %s, latency %u us per request\n", a, b,
			cfg->device_latency_us);
		if (ideal > 0)
			fprintf(f, "device-bound ideal: %.0f ms (the slower side's whole stream + one "
				   "chunk on the other; `ideal` = stop-copy / this)\n", ideal * 1e3);
	}
	if (cfg->buffer_cap || cfg->src_buffer_cap)
		fprintf(f, "uring buffer cap: destination %zu KiB, source %zu KiB\n",
			(cfg->buffer_cap ? cfg->buffer_cap : VFIO_URING_DEFAULT_BUFFER_CAP_BENCH) >> 10,
			(cfg->src_buffer_cap ? cfg->src_buffer_cap :
			 cfg->buffer_cap ? cfg->buffer_cap : VFIO_URING_DEFAULT_BUFFER_CAP_BENCH) >> 10);
	fprintf(f, "\n%-16s %3s %19s %19s", "engine", "ch", "stop-copy ms", "GB/s");
	if (ideal > 0)
		fprintf(f, " %7s", "ideal");
	fprintf(f, " %7s %8s %8s %8s %9s %9s", "CPU s", "CPU/GiB", "srcRSS", "dstRSS", "ctxsw",
		"enters");
	if (model)
		fprintf(f, " %7s %9s", "dev CPU", "dev peak");
	fprintf(f, " %3s\n", "ok");
	fprintf(f, "%-16s %3s %19s %19s", "", "", "median (min..max)", "median (min..max)");
	if (ideal > 0)
		fprintf(f, " %7s", "x");
	fprintf(f, " %7s %8s %8s %8s %9s %9s", "src+dst", "s", "MiB", "MiB", "src+dst", "src+dst");
	if (model)
		fprintf(f, " %7s %9s", "s", "rd/wr");
	fprintf(f, " %3s\n", "");
	for (unsigned i = 0; i < n; i++) {
		const struct run_stats *s = &st[i];
		char a[32], b[32];

		variant_label(&s->p, label, sizeof(label));
		if (s->med[FIG_STOP_MS] > 0) {
			snprintf(a, sizeof(a), "%.0f (%.0f..%.0f)", s->med[FIG_STOP_MS],
				 s->min[FIG_STOP_MS], s->max[FIG_STOP_MS]);
			snprintf(b, sizeof(b), "%.2f (%.2f..%.2f)", s->med[FIG_GBPS], s->min[FIG_GBPS],
				 s->max[FIG_GBPS]);
		} else {
			snprintf(a, sizeof(a), "failed");
			snprintf(b, sizeof(b), "-");
		}
		fprintf(f, "%-16s %3u %19s %19s", label, s->channels_used, a, b);
		if (ideal > 0 && s->med[FIG_STOP_MS] > 0 && !s->p.precopy)
			fprintf(f, " %7.2f", s->med[FIG_STOP_MS] / 1e3 / ideal);
		else if (ideal > 0)
			fprintf(f, " %7s", "-");
		fprintf(f, " %7.2f %8.3f %8.1f %8.1f %9.0f ", s->med[FIG_CPU_S],
			s->med[FIG_CPU_PER_GIB], s->med[FIG_SRC_RSS_KIB] / 1024,
			s->med[FIG_DST_RSS_KIB] / 1024, s->med[FIG_CTXSW]);
		if (s->p.engine == ENGINE_URING)
			fprintf(f, "%9.0f", s->med[FIG_SRC_ENTERS] + s->med[FIG_DST_ENTERS]);
		else
			fprintf(f, "%9s", "-");
		if (model) {
			char peak[24];

			snprintf(peak, sizeof(peak), "%.0f/%.0f", s->med[FIG_DEV_READS_PEAK],
				 s->med[FIG_DEV_WRITES_PEAK]);
			fprintf(f, " %7.2f %9s", s->med[FIG_DEV_CPU_S], peak);
		}
		fprintf(f, " %3s\n", s->verified ? "yes" : s->cap_error ? "cap" : "NO");
	}
	if (ref) {
		variant_label(&ref->p, label, sizeof(label));
		fprintf(f, "\nratio to %s (engine / %s; GB/s above 1 = faster, the rest above 1 = "
			   "more)\n", label, label);
		fprintf(f, "%-16s %9s %9s %9s %9s %9s %9s %9s\n", "engine", "stop-copy", "GB/s",
			"CPU s", "CPU/GiB", "srcRSS", "dstRSS", "ctxsw");
		for (unsigned i = 0; i < n; i++) {
			const struct run_stats *s = &st[i];
			static const int figs[] = { FIG_STOP_MS, FIG_GBPS, FIG_CPU_S, FIG_CPU_PER_GIB,
						    FIG_SRC_RSS_KIB, FIG_DST_RSS_KIB, FIG_CTXSW };

			variant_label(&s->p, label, sizeof(label));
			fprintf(f, "%-16s", label);
			for (unsigned k = 0; k < sizeof(figs) / sizeof(figs[0]); k++)
				ratio(f, s->med[figs[k]], ref->med[figs[k]]);
			fprintf(f, "\n");
		}
	}
	if (cfg->precopy > 0)
		report_precopy(f, cfg, st, n);
	for (unsigned i = 0; i < n; i++) {
		if (!st[i].err)
			continue;
		variant_label(&st[i].p, label, sizeof(label));
		if (st[i].cap_error)
			fprintf(f, "\n%s: failed cleanly with the buffer cap error (ENOBUFS): %s\n",
				label, st[i].msg);
		else
			fprintf(f, "\n%s: FAILED: %s (%s)\n", label, st[i].msg, strerror(-st[i].err));
	}
	fprintf(f, "\n");
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/*
 * Whole numbers (bytes, counts) exactly: "%.6g" printed a 67108864-byte buffer peak as
 * 6.71089e+07, which reads back 36 bytes above the 64 MiB cap it equals.
 */
static void json_num(FILE *f, double v)
{
	if (!isfinite(v))
		fprintf(f, "null");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53 */
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.6g", v);
}

/* `, "name": v` */
static void json_field(FILE *f, const char *name, double v)
{
	fprintf(f, ", \"%s\": ", name);
	json_num(f, v);
}

void report_json(FILE *f, const struct bench_cfg *cfg, struct run_stats *st, unsigned n)
{
	const struct run_stats *ref = reference(st, n, NULL);
	char label[48];

	fprintf(f, "{\n  \"tool\": \"vfio-uring-bench\",\n  \"config\": {\"transport\": ");
	json_str(f, transport_name(cfg));
	fprintf(f, ", \"repeat\": %u, \"switchover_delay_ms\": %u, \"buffer_cap\": %zu, "
		   "\"src_buffer_cap\": %zu, \"seed\": %llu",
		cfg->repeat, cfg->switchover_delay_ms, cfg->buffer_cap, cfg->src_buffer_cap,
		(unsigned long long)cfg->seed);
	/* Rates in bytes/s per device: 0 = plain memfds, -1 = the model unpaced. */
	fprintf(f, ", \"device_rate\": %lld, \"dst_device_rate\": %lld, \"device_latency_us\": %u",
		cfg->device_rate == BENCH_RATE_UNLIMITED ? -1 : (long long)cfg->device_rate,
		cfg->dst_device_rate == BENCH_RATE_UNLIMITED ? -1 : (long long)cfg->dst_device_rate,
		cfg->device_latency_us);
	if (cfg->precopy > 0)
		fprintf(f, ", \"precopy_fraction\": %g, \"dirty_rate\": %llu, \"precopy_max_ms\": %u",
			cfg->precopy, (unsigned long long)cfg->dirty_rate, cfg->precopy_max_ms);
	fprintf(f, "},\n");
	if (ref) {
		variant_label(&ref->p, label, sizeof(label));
		fprintf(f, "  \"reference\": ");
		json_str(f, label);
		fprintf(f, ",\n");
	}
	fprintf(f, "  \"runs\": [");
	for (unsigned i = 0; i < n; i++) {
		const struct run_stats *s = &st[i];
		static const struct {
			const char *name;
			int fig;
		} figs[] = {
			{ "throughput_gbps", FIG_GBPS }, { "stop_copy_ms", FIG_STOP_MS },
			{ "cpu_s", FIG_CPU_S }, { "src_cpu_s", FIG_SRC_CPU_S },
			{ "dst_cpu_s", FIG_DST_CPU_S }, { "cpu_s_per_gib", FIG_CPU_PER_GIB },
			{ "src_peak_rss_kib", FIG_SRC_RSS_KIB },
			{ "dst_peak_rss_kib", FIG_DST_RSS_KIB },
			{ "context_switches", FIG_CTXSW }, { "src_ring_enters", FIG_SRC_ENTERS },
			{ "dst_ring_enters", FIG_DST_ENTERS },
			{ "dst_buffer_peak_bytes", FIG_DST_BUF_PEAK },
			{ "device_cpu_s", FIG_DEV_CPU_S },
			{ "device_reads_peak", FIG_DEV_READS_PEAK },
			{ "device_writes_peak", FIG_DEV_WRITES_PEAK },
		};
		double ideal = device_ideal_s(cfg, &s->p);

		fprintf(f, "%s\n    {\"engine\": \"%s\", \"device_mode\": \"%s\", \"devices\": %u, "
			   "\"channels\": %u, \"channels_used\": %u, \"chunk\": %zu, \"size\": %llu, "
			   "\"bytes\": %llu, \"repetitions\": %u",
			i ? "," : "", engine_name(s->p.engine), devmode_name(s->p.devmode),
			s->p.devices, s->p.channels, s->channels_used, s->p.chunk,
			(unsigned long long)s->p.size, (unsigned long long)s->bytes, s->n);
		for (unsigned k = 0; k < sizeof(figs) / sizeof(figs[0]); k++)
			json_field(f, figs[k].name, s->med[figs[k].fig]);
		fprintf(f, ", \"min\": {\"throughput_gbps\": ");
		json_num(f, s->min[FIG_GBPS]);
		json_field(f, "stop_copy_ms", s->min[FIG_STOP_MS]);
		fprintf(f, "}, \"max\": {\"throughput_gbps\": ");
		json_num(f, s->max[FIG_GBPS]);
		json_field(f, "stop_copy_ms", s->max[FIG_STOP_MS]);
		fprintf(f, "}, \"ideal_ms\": ");
		json_num(f, ideal > 0 ? ideal * 1e3 : NAN);
		json_field(f, "ratio_to_ideal",
			   ideal > 0 && s->med[FIG_STOP_MS] > 0 ? s->med[FIG_STOP_MS] / 1e3 / ideal
								 : NAN);
		if (ref && ref != s) {
			fprintf(f, ", \"ratio_to_reference\": {\"throughput\": ");
			json_num(f, ref->med[FIG_GBPS] > 0 ? s->med[FIG_GBPS] / ref->med[FIG_GBPS] : NAN);
			json_field(f, "cpu_s_per_gib",
				   ref->med[FIG_CPU_PER_GIB] > 0
					   ? s->med[FIG_CPU_PER_GIB] / ref->med[FIG_CPU_PER_GIB]
					   : NAN);
			fprintf(f, "}");
		}
		if (cfg->precopy > 0) {
			/*
			 * stop_copy_ms above is the stop to the end; live_* the phase before it
			 * (0 in the stop-copy-only run); the ratio is this run's stop-copy over the
			 * stop-copy-only run's (medians), for a pre-copy run.
			 */
			fprintf(f, ", \"precopy\": %s, \"live_ms\": ", s->p.precopy ? "true" : "false");
			json_num(f, s->med[FIG_LIVE_MS]);
			json_field(f, "live_bytes", s->med[FIG_LIVE_BYTES]);
			json_field(f, "stop_copy_bytes", s->med[FIG_SC_BYTES]);
			json_field(f, "engine_precopy_bytes", s->med[FIG_ENGINE_LIVE_BYTES]);
			json_field(f, "live_bytes_min", s->min[FIG_LIVE_BYTES]);
			json_field(f, "live_bytes_max", s->max[FIG_LIVE_BYTES]);
			fprintf(f, ", \"precopy_ready\": %s, \"stop_copy_ratio_to_stop_copy_only\": ",
				s->p.precopy && s->min[FIG_READY] > 0 ? "true" : "false");
			json_num(f, precopy_ratio(st, n, s));
		}
		fprintf(f, ", \"verified\": %s, \"error\": ", s->verified ? "true" : "false");
		if (s->err) {
			json_str(f, s->msg);
			fprintf(f, ", \"errno\": %d", -s->err);
		} else {
			fprintf(f, "null");
		}
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
}

/* ---- sweep: CSV and gnuplot ---- */

int report_sweep(const struct bench_cfg *cfg, const char *kinds[], struct run_stats *st,
		 unsigned n)
{
	bool paced = n && device_ideal_s(cfg, &st[0].p) > 0;
	char path[512], label[48];
	FILE *f;
	int status;

	snprintf(path, sizeof(path), "%s.csv", cfg->sweep_prefix);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "vfio-uring-bench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "sweep,engine,device_mode,devices,channels,chunk,bytes,throughput_gbps,"
		   "throughput_min,throughput_max,stop_copy_ms,cpu_s,cpu_s_per_gib,"
		   "src_peak_rss_kib,dst_peak_rss_kib,context_switches,ring_enters,verified,"
		   "ideal_ms,ratio_to_ideal,device_cpu_s\n");
	for (unsigned i = 0; i < n; i++) {
		const struct run_stats *s = &st[i];

		fprintf(f, "%s,%s,%s,%u,%u,%zu,%llu,%.4f,%.4f,%.4f,%.2f,%.4f,%.4f,%.0f,%.0f,%.0f,%.0f,%d,",
			kinds[i], engine_name(s->p.engine), devmode_name(s->p.devmode), s->p.devices,
			s->channels_used, s->p.chunk, (unsigned long long)s->bytes, s->med[FIG_GBPS],
			s->min[FIG_GBPS], s->max[FIG_GBPS], s->med[FIG_STOP_MS], s->med[FIG_CPU_S],
			s->med[FIG_CPU_PER_GIB], s->med[FIG_SRC_RSS_KIB], s->med[FIG_DST_RSS_KIB],
			s->med[FIG_CTXSW], s->med[FIG_SRC_ENTERS] + s->med[FIG_DST_ENTERS],
			s->verified);
		{
			double ideal = device_ideal_s(cfg, &s->p);

			if (ideal > 0 && s->med[FIG_STOP_MS] > 0)
				fprintf(f, "%.2f,%.4f,%.4f\n", ideal * 1e3,
					s->med[FIG_STOP_MS] / 1e3 / ideal, s->med[FIG_DEV_CPU_S]);
			else
				fprintf(f, ",,%.4f\n", s->med[FIG_DEV_CPU_S]);
		}
	}
	fclose(f);
	fprintf(stderr, "vfio-uring-bench: wrote %s\n", path);

	/* The plot: throughput and CPU per GiB against devices, one line per engine. */
	snprintf(path, sizeof(path), "%s.gp", cfg->sweep_prefix);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	{
		const char *variants[16];
		unsigned nv = 0;

		for (unsigned i = 0; i < n; i++) {
			bool seen = false;

			if (strcmp(kinds[i], "devices"))
				continue;
			variant_label(&st[i].p, label, sizeof(label));
			for (unsigned k = 0; k < nv; k++)
				seen |= !strcmp(variants[k], label);
			if (!seen && nv < 16)
				variants[nv++] = strdup(label);
		}
		for (unsigned k = 0; k < nv; k++) {
			fprintf(f, "$d%u << EOD\n", k);
			for (unsigned i = 0; i < n; i++) {
				variant_label(&st[i].p, label, sizeof(label));
				if (!strcmp(kinds[i], "devices") && !strcmp(label, variants[k]) &&
				    !st[i].err) {
					double ideal = device_ideal_s(cfg, &st[i].p);

					fprintf(f, "%u %.4f %.4f %.4f %.4f\n", st[i].p.devices,
						st[i].med[FIG_GBPS], st[i].med[FIG_CPU_PER_GIB],
						st[i].med[FIG_STOP_MS] / 1e3,
						ideal > 0 ? st[i].med[FIG_STOP_MS] / 1e3 / ideal : 0);
				}
			}
			fprintf(f, "EOD\n");
		}
		if (paced) {
			/* The ideal per device count (one line, from the first engine's points). */
			fprintf(f, "$ideal << EOD\n");
			for (unsigned i = 0; i < n; i++) {
				variant_label(&st[i].p, label, sizeof(label));
				if (!strcmp(kinds[i], "devices") && nv && !strcmp(label, variants[0]))
					fprintf(f, "%u %.4f\n", st[i].p.devices,
						device_ideal_s(cfg, &st[i].p));
			}
			fprintf(f, "EOD\n");
		}
		for (int out = 0; out < 2; out++) {
			fprintf(f, "set terminal %s size 1100,500%s\n",
				out ? "svg" : "pngcairo", out ? " dynamic" : "");
			fprintf(f, "set output '%s.%s'\n", cfg->sweep_prefix, out ? "svg" : "png");
			fprintf(f, "set multiplot layout 1,2 title 'vfio-uring-bench sweep: %.0f MiB "
				   "per point, %u channels, %s'\n",
				cfg->sweep_total / 1048576.0, cfg->channels, transport_name(cfg));
			fprintf(f, "set logscale x 2\nset xlabel 'devices'\nset grid\nset key below horizontal\n"
				   "set yrange [0:*]\n");
			if (paced) {
				char a[32], b[32];

				rate_str(cfg->device_rate, a, sizeof(a));
				rate_str(cfg->dst_device_rate, b, sizeof(b));
				/* Device-bound: time against the ideal, and the ratio to it. */
				fprintf(f, "set label 1 'devices paced at %s (source), %s (destination)' "
					   "at graph 0.02, graph 0.95\n", a, b);
				fprintf(f, "set ylabel 'stop-copy seconds'\nplot $ideal using 1:2 with "
					   "lines dt 2 lw 2 lc rgb 'black' title 'device-bound ideal'");
				for (unsigned k = 0; k < nv; k++)
					fprintf(f, ", $d%u using 1:4 with linespoints lw 2 lc %u title '%s'",
						k, k + 1, variants[k]);
				fprintf(f, "\nunset label 1\nset logscale y 2\nset yrange [*:*]\n"
					   "set ylabel 'stop-copy / ideal (1 = device-bound)'\nplot ");
				for (unsigned k = 0; k < nv; k++)
					fprintf(f, "%s$d%u using 1:5 with linespoints lw 2 lc %u title '%s'",
						k ? ", " : "", k, k + 1, variants[k]);
				fprintf(f, "\nunset logscale y\nunset multiplot\n");
				continue;
			}
			for (int panel = 0; panel < 2; panel++) {
				fprintf(f, "set ylabel '%s'\nplot ",
					panel ? "CPU seconds per GiB (both sides)" : "throughput GB/s");
				for (unsigned k = 0; k < nv; k++)
					fprintf(f, "%s$d%u using 1:%d with linespoints lw 2 title '%s'",
						k ? ", " : "", k, panel ? 3 : 2, variants[k]);
				fprintf(f, "\n");
			}
			fprintf(f, "unset multiplot\n");
		}
		for (unsigned k = 0; k < nv; k++)
			free((void *)variants[k]);
	}
	fclose(f);
	{
		pid_t pid = fork();

		if (pid == 0) {
			execlp("gnuplot", "gnuplot", path, (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "vfio-uring-bench: gnuplot failed or missing (apt-get install "
					"gnuplot-nox); the script is %s\n", path);
			return 0;
		}
	}
	fprintf(stderr, "vfio-uring-bench: wrote %s.png and %s.svg\n", cfg->sweep_prefix,
		cfg->sweep_prefix);
	return 0;
}
