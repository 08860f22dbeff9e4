/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-bench: the same workload through every engine, side by side.
 * See bench.h for the run protocol and docs/PERFORMANCE.md for results and method.
 */
#include "stats.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The variants of one configuration: uring once per device mode, the others once. */
static unsigned make_variants(const struct bench_cfg *cfg, struct run_params *out,
			      const struct run_params *base)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->engine_count; i++) {
		unsigned e = cfg->engine_order[i];

		if (e == ENGINE_URING) {
			static const unsigned modes[] = { DEVMODE_ASYNC, DEVMODE_INLINE };

			for (unsigned m = 0; m < 2; m++) {
				if (!(cfg->device_mode & modes[m]))
					continue;
				/* --precopy: stop-copy only, then the same with pre-copy. */
				for (unsigned pre = 0; pre < (cfg->precopy > 0 ? 2u : 1u); pre++) {
					out[n] = *base;
					out[n].engine = e;
					out[n].devmode = modes[m];
					out[n].precopy = pre;
					n++;
				}
			}
		} else {
			/*
			 * raw cuts a device over several connections with pread/pwrite when there
			 * are fewer devices than connections; a device's data fd is a stream (the
			 * model's files are, as VFIO's are), so raw only runs where it reads whole
			 * devices. main() says so once.
			 */
			if (e == ENGINE_RAW && bench_model(cfg) && base->devices < base->channels)
				continue;
			out[n] = *base;
			out[n].engine = e;
			out[n].devmode = 0;
			n++;
		}
	}
	return n;
}

static bool quiet_failure(const struct bench_cfg *cfg, const struct run_stats *st)
{
	/* The documented clean outcome of a delayed switchover: the cap error. */
	return st->cap_error && st->p.engine == ENGINE_URING && cfg->switchover_delay_ms;
}

/*
 * Runs the variants of one configuration, repetitions interleaved (round r runs every
 * variant once, then round r+1): on a shared machine, load that comes and goes then hits
 * every engine alike instead of whichever engine happened to run at that moment.
 */
static int run_variants(const struct bench_cfg *cfg, const struct run_params *v,
			struct run_stats *st, unsigned n, unsigned done_before, unsigned total)
{
	char label[64], name[32];
	bool skip[ENGINE_COUNT + 1] = { false };

	for (unsigned i = 0; i < n; i++) {
		memset(&st[i], 0, sizeof(st[i]));
		st[i].p = v[i];
		st[i].bytes = (uint64_t)v[i].devices * v[i].size;
		st[i].channels_used = engine_ops(v[i].engine)->uses_one_channel ? 1 : v[i].channels;
		st[i].s = calloc(cfg->repeat, sizeof(*st[i].s));
		if (!st[i].s)
			return -ENOMEM;
	}
	for (unsigned r = 0; r < cfg->repeat; r++) {
		for (unsigned i = 0; i < n; i++) {
			struct run_sample *s = &st[i].s[r];
			unsigned k = done_before + r * n + i;

			if (skip[i])
				continue;
			variant_label(&v[i], name, sizeof(name));
			snprintf(label, sizeof(label), "%u/%u %s", k + 1, total, name);
			run_once(cfg, &v[i], s, label, k / (double)total);
			progress_done();
			st[i].n++;
			if (s->err && !(s->err == -ENOBUFS && cfg->switchover_delay_ms))
				fprintf(stderr, "vfio-uring-bench: %s run %u: %s%s\n", name, r + 1,
					strncmp(s->msg, "VERIFICATION", 12) ? "FAILED: " : "",
					s->msg);
			if (s->err == -ENOSYS)
				skip[i] = true; /* the engine is not in this build */
		}
	}
	for (unsigned i = 0; i < n; i++)
		stats_compute(&st[i]);
	return 0;
}

static int run_table(const struct bench_cfg *cfg)
{
	struct run_params base = { .devices = cfg->devices, .size = cfg->size,
				   .channels = cfg->channels, .chunk = cfg->chunk };
	struct run_params v[ENGINE_COUNT + 2];
	struct run_stats st[ENGINE_COUNT + 2];
	unsigned n = make_variants(cfg, v, &base);
	int rc = 0;

	if (run_variants(cfg, v, st, n, 0, n * cfg->repeat))
		return 1;
	for (unsigned i = 0; i < n; i++)
		if (st[i].err && !quiet_failure(cfg, &st[i]))
			rc = 1;
	if (cfg->json)
		report_json(stdout, cfg, st, n);
	else if (!cfg->quiet)
		report_table(stdout, cfg, st, n);
	for (unsigned i = 0; i < n; i++)
		free(st[i].s);
	return rc;
}

static int run_sweep(const struct bench_cfg *cfg)
{
	static const unsigned devs_full[] = { 1, 2, 4, 8, 16, 32, 64 };
	static const unsigned devs_short[] = { 1, 4, 16 };
	static const unsigned chans_full[] = { 1, 2, 4, 8 };
	static const unsigned chans_short[] = { 1, 4 };
	static const size_t chunks_full[] = { 256u << 10, 1u << 20, 4u << 20 };
	static const size_t chunks_short[] = { 256u << 10 };
	const unsigned *devs = cfg->sweep_short ? devs_short : devs_full;
	const unsigned *chans = cfg->sweep_short ? chans_short : chans_full;
	const size_t *chunks = cfg->sweep_short ? chunks_short : chunks_full;
	unsigned ndevs = cfg->sweep_short ? 3 : 7, nchans = cfg->sweep_short ? 2 : 4;
	unsigned nchunks = cfg->sweep_short ? 1 : 3;

	if (cfg->sweep_ndevs) {
		devs = cfg->sweep_devs;
		ndevs = cfg->sweep_ndevs;
	}
	/* The device-bound regime: only the device count matters (the ideal is per device). */
	if (bench_model(cfg))
		nchans = nchunks = 0;
	unsigned npoints = ndevs + nchans + nchunks, n = 0, total, k = 0;
	struct run_params *points = calloc(npoints, sizeof(*points));
	struct run_stats *st;
	const char **kinds;
	int rc = 0;

	if (!points)
		return 1;
	for (unsigned i = 0; i < ndevs; i++)
		points[k++] = (struct run_params){ .devices = devs[i], .channels = cfg->channels,
						   .chunk = cfg->chunk };
	for (unsigned i = 0; i < nchans; i++)
		points[k++] = (struct run_params){ .devices = cfg->devices, .channels = chans[i],
						   .chunk = cfg->chunk };
	for (unsigned i = 0; i < nchunks; i++)
		points[k++] = (struct run_params){ .devices = cfg->devices, .channels = cfg->channels,
						   .chunk = chunks[i] };
	{
		struct run_params tmp[ENGINE_COUNT + 1];

		/* Per point: with the device model, raw runs only at some device counts. */
		total = 0;
		for (unsigned i = 0; i < npoints; i++)
			total += make_variants(cfg, tmp, &points[i]);
	}
	if (!total) {
		fprintf(stderr, "vfio-uring-bench: nothing to sweep\n");
		free(points);
		return 1;
	}
	st = calloc(total, sizeof(*st));
	kinds = calloc(total, sizeof(*kinds));
	if (!st || !kinds)
		return 1;
	for (unsigned i = 0; i < npoints; i++) {
		struct run_params v[ENGINE_COUNT + 1];
		const char *kind = i < ndevs ? "devices" : i < ndevs + nchans ? "channels" : "chunk";
		unsigned nv;

		points[i].size = cfg->sweep_total / points[i].devices;
		points[i].size -= points[i].size % 4096;
		nv = make_variants(cfg, v, &points[i]);
		if (run_variants(cfg, v, &st[n], nv, n * cfg->repeat, total * cfg->repeat))
			return 1;
		for (unsigned j = 0; j < nv; j++) {
			kinds[n] = kind;
			if (st[n].err && !quiet_failure(cfg, &st[n]))
				rc = 1;
			if (!cfg->quiet) {
				char label[48];

				variant_label(&v[j], label, sizeof(label));
				double ideal = device_ideal_s(cfg, &v[j]);
				char vs_ideal[32] = "";

				if (ideal > 0)
					snprintf(vs_ideal, sizeof(vs_ideal), " %7.2fx ideal",
						 st[n].med[FIG_STOP_MS] / 1e3 / ideal);
				fprintf(stderr, "sweep %-8s devices %2u channels %u chunk %5zu KiB %-14s "
						"%6.2f GB/s %6.3f CPU s/GiB%s %s\n",
					kind, v[j].devices, st[n].channels_used, v[j].chunk >> 10, label,
					st[n].med[FIG_GBPS], st[n].med[FIG_CPU_PER_GIB], vs_ideal,
					st[n].verified ? "verified" : "NOT VERIFIED");
			}
			n++;
		}
	}
	report_sweep(cfg, kinds, st, n);
	if (cfg->json)
		report_json(stdout, cfg, st, n);
	for (unsigned i = 0; i < n; i++)
		free(st[i].s);
	free(st);
	free(kinds);
	free(points);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	int rc;

	rc = options_parse(argc, argv, &cfg);
	if (rc)
		return rc == -ENODEV ? 1 : 2; /* the machine cannot run it, or a usage error */
	signal(SIGPIPE, SIG_IGN);
	progress_enabled(&cfg);
	if (bench_model(&cfg) && cfg.engine_count) {
		bool raw = false;

		for (unsigned i = 0; i < cfg.engine_count; i++)
			raw |= cfg.engine_order[i] == ENGINE_RAW;
		if (raw)
			fprintf(stderr, "vfio-uring-bench: note: with the device model, raw runs only "
					"where devices >= channels (it splits a device over connections "
					"with pread/pwrite otherwise; a device's data fd is a stream)\n");
	}
	if (transport_init(&cfg)) {
		transport_cleanup();
		return 1;
	}
	rc = cfg.sweep ? run_sweep(&cfg) : run_table(&cfg);
	transport_cleanup();
	runner_cleanup();
	return rc;
}
