/* SPDX-License-Identifier: MIT */
/* Command line. */
#include "bench.h"

#include "devmodel.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void options_usage(FILE *f)
{
	fprintf(f,
"usage: vfio-uring-bench [options]\n"
"Moves N synthetic devices from a source process to a destination process with every\n"
"engine, verifies every byte, and prints a table (ratios to `uring`).\n"
"\n"
"  --engines LIST         uring,threads,legacy,raw (default: all four)\n"
"  --devices N            number of devices (default 8)\n"
"  --size S               bytes per device, K/M/G suffixes (default 256M)\n"
"  --channels N           multifd channels (default 4; legacy always uses 1)\n"
"  --chunk S              bytes per read / data packet (default 1M, as QEMU)\n"
"  --repeat K             repetitions; figures are medians with min..max (default 3)\n"
"  --transport T          tcp (loopback, default) | unix | veth (two netns, root)\n"
"  --device-mode M        inline | async | both (default both): async forces io_uring\n"
"                         worker threads for data fd I/O, like a real VFIO fd\n"
"  --switchover-delay MS  destination starts the switchover MS after the source starts\n"
"  --buffer-cap S         uring engine payload buffer cap (default: library's, 64M)\n"
"  --src-buffer-cap S     uring source's cap only (default: --buffer-cap)\n"
"  --json                 print one JSON object with a \"runs\" list instead of the table\n"
"  --progress / --no-progress   progress bar (default: on a terminal)\n"
"  --quiet                no progress, no table (with --json: JSON only)\n"
"  --timeout S            kill a run after S seconds (default 300)\n"
"  --seed N               content seed (default 1)\n"
"  --listen [ADDR:]PORT   two hosts: be the destination, listen here\n"
"  --connect ADDR:PORT    two hosts: be the source, connect there (same options both sides)\n"
"  --sweep                sweep devices 1..64, channels 1..8 and chunk sizes; write CSV + plot\n"
"  --sweep-out PREFIX     sweep output prefix (default bench-sweep: .csv .png .svg)\n"
"  --sweep-total S        bytes per sweep point, split over the devices (default 1G)\n"
"  --sweep-short          fewer sweep points (for tests)\n"
"  --sweep-devices LIST   device counts of the sweep (default 1,2,4,8,16,32,64)\n"
"  --device-rate RATE     slow devices: every data fd read/write goes through the device\n"
"                         model (FUSE files paced at RATE bytes/s per device, K/M/G;\n"
"                         'unlimited' = the model's own overhead only); needs root and\n"
"                         /dev/fuse. The report adds the device-bound ideal; --sweep then\n"
"                         sweeps the device count only\n"
"  --dst-device-rate RATE destination devices only (default: --device-rate)\n"
"  --device-latency USEC  added to every device read/write request (default 0)\n"
"  --precopy FRACTION     live pre-copy (uring only, needs --device-rate): each device\n"
"                         offers FRACTION of its state as initial bytes while the VM runs\n"
"                         (the rest is its stop-copy part); every configuration runs twice,\n"
"                         stop-copy only and with pre-copy, and the report compares them\n"
"  --dirty-rate RATE      --precopy: dirty bytes per second per device while live (0)\n"
"  --precopy-max-ms T     --precopy: stop at readiness or after T ms (default 10000)\n"
"  --corrupt-for-test     flip one received byte before verifying (tests the verifier)\n"
"  -h, --help\n");
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_engines(const char *s, struct bench_cfg *cfg)
{
	char *copy = strdup(s), *save = NULL, *tok;

	if (!copy)
		return -ENOMEM;
	cfg->engine_count = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int e = engine_from_name(tok);
		bool dup = false;

		if (e < 0) {
			fprintf(stderr, "vfio-uring-bench: unknown engine '%s'\n", tok);
			free(copy);
			return -EINVAL;
		}
		for (unsigned i = 0; i < cfg->engine_count; i++)
			dup |= cfg->engine_order[i] == (unsigned)e;
		if (!dup)
			cfg->engine_order[cfg->engine_count++] = (unsigned)e;
	}
	free(copy);
	return cfg->engine_count ? 0 : -EINVAL;
}

enum {
	OPT_ENGINES = 256, OPT_DEVICES, OPT_SIZE, OPT_CHANNELS, OPT_CHUNK, OPT_REPEAT,
	OPT_TRANSPORT, OPT_DEVMODE, OPT_DELAY, OPT_CAP, OPT_JSON, OPT_PROGRESS, OPT_NOPROGRESS,
	OPT_QUIET, OPT_TIMEOUT, OPT_SEED, OPT_LISTEN, OPT_CONNECT, OPT_SWEEP, OPT_SWEEP_OUT,
	OPT_SWEEP_TOTAL, OPT_SWEEP_SHORT, OPT_CORRUPT, OPT_SRC_CAP, OPT_DEV_RATE, OPT_DST_DEV_RATE,
	OPT_DEV_LATENCY, OPT_SWEEP_DEVS, OPT_PRECOPY, OPT_DIRTY_RATE, OPT_PRECOPY_MAX,
};

static int parse_rate(const char *s, uint64_t *out)
{
	int err;

	if (!strcmp(s, "unlimited")) {
		*out = BENCH_RATE_UNLIMITED;
		return 0;
	}
	err = parse_size(s, out);
	return err ? err : *out ? 0 : -ERANGE;
}

static int parse_devs(const char *s, struct bench_cfg *cfg)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	cfg->sweep_ndevs = 0;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->sweep_ndevs == sizeof(cfg->sweep_devs) / sizeof(cfg->sweep_devs[0]))
			err = -E2BIG;
		else
			err = parse_uint(tok, 1, 4096, &cfg->sweep_devs[cfg->sweep_ndevs++]);
	}
	free(copy);
	return err ? err : cfg->sweep_ndevs ? 0 : -EINVAL;
}

int options_parse(int argc, char **argv, struct bench_cfg *cfg)
{
	static const struct option longopts[] = {
		{ "engines", required_argument, NULL, OPT_ENGINES },
		{ "devices", required_argument, NULL, OPT_DEVICES },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "channels", required_argument, NULL, OPT_CHANNELS },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "transport", required_argument, NULL, OPT_TRANSPORT },
		{ "device-mode", required_argument, NULL, OPT_DEVMODE },
		{ "switchover-delay", required_argument, NULL, OPT_DELAY },
		{ "buffer-cap", required_argument, NULL, OPT_CAP },
		{ "src-buffer-cap", required_argument, NULL, OPT_SRC_CAP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NOPROGRESS },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ "sweep", no_argument, NULL, OPT_SWEEP },
		{ "sweep-out", required_argument, NULL, OPT_SWEEP_OUT },
		{ "sweep-total", required_argument, NULL, OPT_SWEEP_TOTAL },
		{ "sweep-short", no_argument, NULL, OPT_SWEEP_SHORT },
		{ "corrupt-for-test", no_argument, NULL, OPT_CORRUPT },
		{ "device-rate", required_argument, NULL, OPT_DEV_RATE },
		{ "dst-device-rate", required_argument, NULL, OPT_DST_DEV_RATE },
		{ "device-latency", required_argument, NULL, OPT_DEV_LATENCY },
		{ "sweep-devices", required_argument, NULL, OPT_SWEEP_DEVS },
		{ "precopy", required_argument, NULL, OPT_PRECOPY },
		{ "dirty-rate", required_argument, NULL, OPT_DIRTY_RATE },
		{ "precopy-max-ms", required_argument, NULL, OPT_PRECOPY_MAX },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	bool dst_rate_set = false, engines_set = false;
	int c;

	*cfg = (struct bench_cfg){
		.engine_order = { ENGINE_URING, ENGINE_THREADS, ENGINE_LEGACY, ENGINE_RAW },
		.engine_count = ENGINE_COUNT,
		.devices = 8,
		.size = 256ull << 20,
		.channels = 4,
		.chunk = 1u << 20,
		.repeat = 3,
		.transport = TRANSPORT_TCP,
		.device_mode = DEVMODE_BOTH,
		.progress = -1,
		.timeout_s = 300,
		.seed = 1,
		.sweep_prefix = "bench-sweep",
		.sweep_total = 1ull << 30,
		.precopy_max_ms = 10000,
	};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case OPT_ENGINES:
			err = parse_engines(optarg, cfg);
			engines_set = true;
			break;
		case OPT_DEVICES: err = parse_uint(optarg, 1, 4096, &cfg->devices); break;
		case OPT_SIZE: err = parse_size(optarg, &cfg->size); break;
		case OPT_CHANNELS:
			err = parse_uint(optarg, 1, 255, &cfg->channels);
			break;
		case OPT_CHUNK:
			err = parse_size(optarg, &v);
			if (!err && (v < 4096 || v > (64u << 20)))
				err = -ERANGE;
			cfg->chunk = (size_t)v;
			break;
		case OPT_REPEAT: err = parse_uint(optarg, 1, 1000, &cfg->repeat); break;
		case OPT_TRANSPORT:
			if (!strcmp(optarg, "tcp"))
				cfg->transport = TRANSPORT_TCP;
			else if (!strcmp(optarg, "unix"))
				cfg->transport = TRANSPORT_UNIX;
			else if (!strcmp(optarg, "veth"))
				cfg->transport = TRANSPORT_VETH;
			else
				err = -EINVAL;
			break;
		case OPT_DEVMODE:
			if (!strcmp(optarg, "inline"))
				cfg->device_mode = DEVMODE_INLINE;
			else if (!strcmp(optarg, "async"))
				cfg->device_mode = DEVMODE_ASYNC;
			else if (!strcmp(optarg, "both"))
				cfg->device_mode = DEVMODE_BOTH;
			else
				err = -EINVAL;
			break;
		case OPT_DELAY: err = parse_uint(optarg, 0, 3600000, &cfg->switchover_delay_ms); break;
		case OPT_CAP:
			err = parse_size(optarg, &v);
			cfg->buffer_cap = (size_t)v;
			break;
		case OPT_SRC_CAP:
			err = parse_size(optarg, &v);
			cfg->src_buffer_cap = (size_t)v;
			break;
		case OPT_JSON: cfg->json = true; break;
		case OPT_PROGRESS: cfg->progress = 1; break;
		case OPT_NOPROGRESS: cfg->progress = 0; break;
		case OPT_QUIET: cfg->quiet = true; cfg->progress = 0; break;
		case OPT_TIMEOUT: err = parse_uint(optarg, 1, 86400, &cfg->timeout_s); break;
		case OPT_SEED: err = parse_size(optarg, &cfg->seed); break;
		case OPT_LISTEN: cfg->listen = optarg; break;
		case OPT_CONNECT: cfg->connect = optarg; break;
		case OPT_SWEEP: cfg->sweep = true; break;
		case OPT_SWEEP_OUT: cfg->sweep_prefix = optarg; break;
		case OPT_SWEEP_TOTAL: err = parse_size(optarg, &cfg->sweep_total); break;
		case OPT_SWEEP_SHORT: cfg->sweep_short = true; break;
		case OPT_CORRUPT: cfg->corrupt_for_test = true; break;
		case OPT_DEV_RATE: err = parse_rate(optarg, &cfg->device_rate); break;
		case OPT_DST_DEV_RATE:
			err = parse_rate(optarg, &cfg->dst_device_rate);
			dst_rate_set = true;
			break;
		case OPT_DEV_LATENCY:
			err = parse_uint(optarg, 0, 10000000, &cfg->device_latency_us);
			break;
		case OPT_SWEEP_DEVS: err = parse_devs(optarg, cfg); break;
		case OPT_PRECOPY: {
			char *end;

			errno = 0;
			cfg->precopy = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(cfg->precopy > 0) ||
			    !(cfg->precopy < 1))
				err = -ERANGE;
			break;
		}
		case OPT_DIRTY_RATE: err = parse_size(optarg, &cfg->dirty_rate); break;
		case OPT_PRECOPY_MAX:
			err = parse_uint(optarg, 1, 3600000, &cfg->precopy_max_ms);
			break;
		case 'h': options_usage(stdout); exit(0);
		default: options_usage(stderr); return -EINVAL;
		}
		if (err) {
			const char *name = "?";

			for (unsigned i = 0; longopts[i].name; i++)
				if (longopts[i].val == c)
					name = longopts[i].name;
			fprintf(stderr, "vfio-uring-bench: bad value for --%s: '%s'\n", name, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vfio-uring-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (cfg->listen && cfg->connect) {
		fprintf(stderr, "vfio-uring-bench: --listen and --connect exclude each other\n");
		return -EINVAL;
	}
	if ((cfg->listen || cfg->connect) && cfg->sweep) {
		fprintf(stderr, "vfio-uring-bench: --sweep runs on one host\n");
		return -EINVAL;
	}
	if (!dst_rate_set)
		cfg->dst_device_rate = cfg->device_rate;
	if (cfg->precopy > 0) {
		bool uring = false;

		/*
		 * Pre-copy is the uring engine's: threads and legacy have none, and QEMU sends
		 * pre-copy data over its main stream, not multifd. The source's devices are the
		 * model's pre-copy files, so the model is needed.
		 */
		for (unsigned i = 0; i < cfg->engine_count; i++)
			uring |= cfg->engine_order[i] == ENGINE_URING;
		if (engines_set && (!uring || cfg->engine_count > 1))
			fprintf(stderr, "vfio-uring-bench: note: --precopy runs the uring engine "
					"only\n");
		cfg->engine_order[0] = ENGINE_URING;
		cfg->engine_count = 1;
		if (!bench_src_model(cfg)) {
			fprintf(stderr, "vfio-uring-bench: --precopy needs --device-rate (the "
					"source's devices are the model's pre-copy files)\n");
			return -EINVAL;
		}
		if (cfg->listen || cfg->connect || cfg->sweep) {
			fprintf(stderr, "vfio-uring-bench: --precopy runs on one host, without "
					"--sweep\n");
			return -EINVAL;
		}
		if (cfg->switchover_delay_ms) {
			fprintf(stderr, "vfio-uring-bench: --precopy: the switchover starts at the "
					"stop; --switchover-delay does not apply\n");
			return -EINVAL;
		}
	} else if (cfg->dirty_rate) {
		fprintf(stderr, "vfio-uring-bench: --dirty-rate needs --precopy\n");
		return -EINVAL;
	}
	if (cfg->device_latency_us && !bench_model(cfg)) {
		fprintf(stderr, "vfio-uring-bench: --device-latency needs --device-rate or "
				"--dst-device-rate\n");
		return -EINVAL;
	}
	if (bench_model(cfg)) {
		char why[200];

		/* Say it now, not after the first run. */
		if (devmodel_available(why, sizeof(why))) {
			fprintf(stderr, "vfio-uring-bench: --device-rate: the device model cannot "
					"run: %s\n", why);
			return -ENODEV;
		}
	}
	return 0;
}
