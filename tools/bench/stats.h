/* SPDX-License-Identifier: MIT */
/* Samples of one run, and the median/min/max over repetitions. */
#ifndef VFIO_URING_BENCH_STATS_H
#define VFIO_URING_BENCH_STATS_H

#include "bench.h"

enum figure {
	FIG_STOP_MS = 0,
	FIG_GBPS,
	FIG_CPU_S,        /* both sides, user + sys, io_uring workers included */
	FIG_SRC_CPU_S,
	FIG_DST_CPU_S,
	FIG_CPU_PER_GIB,
	FIG_SRC_RSS_KIB,
	FIG_DST_RSS_KIB,
	FIG_CTXSW,        /* voluntary + involuntary, both sides */
	FIG_SRC_ENTERS,   /* io_uring_enter calls (uring only) */
	FIG_DST_ENTERS,
	FIG_DST_BUF_PEAK, /* uring destination: most payload bytes held */
	FIG_DEV_CPU_S,    /* the device model's server process (not in FIG_CPU_S) */
	FIG_DEV_READS_PEAK,  /* device model: most reads blocked in it at once */
	FIG_DEV_WRITES_PEAK, /* device model: most writes blocked in it at once */
	FIG_LIVE_MS,      /* --precopy: live phase, start to the stop (0: stop-copy only) */
	FIG_LIVE_BYTES,   /* --precopy: data bytes the devices gave before the stop (all) */
	FIG_SC_BYTES,     /* --precopy: data bytes the devices gave after the stop (all) */
	FIG_READY,        /* --precopy: 1 when the engine was ready at the stop */
	FIG_ENGINE_LIVE_BYTES, /* --precopy: the engine's precopy_bytes (in-flight reads too) */
	FIG_COUNT,
};

struct run_sample {
	int err;
	char msg[256];
	bool verified;
	double fig[FIG_COUNT];
};

struct run_params {
	unsigned engine;
	unsigned devmode;  /* DEVMODE_INLINE / DEVMODE_ASYNC for uring, 0 for the others */
	unsigned devices;
	uint64_t size;
	unsigned channels; /* as configured; legacy uses 1 */
	size_t chunk;
	bool precopy;      /* --precopy: the run with live pre-copy (else stop-copy only) */
};

struct run_stats {
	struct run_params p;
	unsigned channels_used;
	uint64_t bytes;
	unsigned n;
	struct run_sample *s;
	double med[FIG_COUNT], min[FIG_COUNT], max[FIG_COUNT];
	bool verified;     /* every repetition verified */
	int err;           /* first error of any repetition */
	char msg[256];
	bool cap_error;    /* failed cleanly with the buffer cap error (-ENOBUFS) */
};

void stats_compute(struct run_stats *st);
const char *devmode_name(unsigned devmode);
void variant_label(const struct run_params *p, char *out, size_t len);
double device_ideal_s(const struct bench_cfg *cfg, const struct run_params *p);

/* runner.c */
int run_once(const struct bench_cfg *cfg, const struct run_params *p, struct run_sample *out,
	     const char *label, double frac);
void runner_cleanup(void);

/* report.c */
void report_table(FILE *f, const struct bench_cfg *cfg, struct run_stats *st, unsigned n);
void report_json(FILE *f, const struct bench_cfg *cfg, struct run_stats *st, unsigned n);
int report_sweep(const struct bench_cfg *cfg, const char *kinds[], struct run_stats *st,
		 unsigned n);

#endif
