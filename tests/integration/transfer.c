/* SPDX-License-Identifier: MIT */
/*
 * End to end: a source engine in a child process and a destination engine in this one,
 * connected by real sockets (loopback TCP or UNIX stream), moving pseudo-random device
 * state from memfds to memfds.
 *
 * Checks: every byte on the destination equals the source; each config blob arrives intact,
 * exactly once, after all of its device's data; nothing is written to any destination data
 * fd before switchover start (observed with fstat while packets are already queued); the
 * counters follow QEMU's semantics on both sides.
 *
 * usage: transfer --transport tcp|unix --devices N --channels C --sizes S[,S...]
 *                 [--chunk BYTES] [--src-cap BYTES] [--dst-cap BYTES] [--async]
 *                 [--baseline-ring] [--late-switchover MS] [--config-gate before|after]
 *                 [--rate-limit R[,R2@MS]]
 *
 * --late-switchover MS: the destination runs MS ms before switchover start, as when QEMU's
 * source starts sending before the destination's VMM has seen the switchover command; with a
 * small --dst-cap the channels must stop receiving (flow control), hold no more than the cap,
 * fail nothing, and the migration completes once the switchover starts.
 * --rate-limit R[,R2@MS]: the source's bandwidth cap (bytes/s), changed to R2 after MS ms;
 * the source checks its send time is within 10% of what the caps allow.
 * --config-gate: every destination device waits for config_load_ready(), given before the
 * switchover (before) or once run() says only that is missing (after).
 * Sizes take K/M/G suffixes; device i gets sizes[i % count].
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "common.h"
#include "data.h"
#include "vfio-uring.h"

#define MAX_DEVICES 64
#define MAX_CHANNELS 16

struct config {
	const char *transport;
	unsigned devices, channels;
	uint64_t sizes[16];
	unsigned n_sizes;
	size_t chunk, src_cap, dst_cap;
	unsigned flags;
	unsigned late_switchover_ms;
	uint64_t rate, rate2;          /* source bandwidth cap, and the cap after rate2_ms */
	unsigned rate2_ms;
	const char *config_gate;
};

static struct config cfg;
static struct test_device devs[MAX_DEVICES];

/* The source's bytes per read: the chunk, or less when the cap cannot hold one per device
 * (the rule documented at vfio_uring_engine_opts.chunk_size). */
static uint64_t read_size(void)
{
	uint64_t share = cfg.src_cap / (cfg.devices + cfg.channels + 2);
	uint64_t fit = share > 288 + 4096 ? (share - 288) / 4096 * 4096 : 4096;

	return fit < cfg.chunk ? fit : cfg.chunk;
}

/*
 * The bandwidth cap's accuracy: the send time must be within 10% of what the cap(s) allow for
 * the bytes sent (packets pace; the 64-byte handshakes do not).
 */
static void check_rate(struct vfio_uring_engine *e, uint64_t t0, uint64_t t_change,
		       uint64_t wire_at_change)
{
	struct vfio_uring_engine_stats st;
	uint64_t elapsed = now_ms() - t0, paced;
	double expect_ms;

	vfio_uring_engine_get_stats(e, &st, sizeof(st));
	paced = st.wire_bytes - 64ull * cfg.channels;
	if (cfg.rate2_ms)
		expect_ms = (double)(t_change - t0) +
			    (double)(st.wire_bytes - wire_at_change) * 1e3 / (double)cfg.rate2;
	else
		expect_ms = (double)paced * 1e3 / (double)cfg.rate;
	printf("rate limit: %llu bytes in %llu ms (%.1f MB/s), %.0f ms expected: %.3fx\n",
	       (unsigned long long)paced, (unsigned long long)elapsed,
	       (double)paced / (double)elapsed / 1e3, expect_ms, (double)elapsed / expect_ms);
	if ((double)elapsed < 0.9 * expect_ms || (double)elapsed > 1.1 * expect_ms)
		FAIL("source: %llu ms for %llu bytes, %.0f ms expected from the cap (+-10%%)",
		     (unsigned long long)elapsed, (unsigned long long)paced, expect_ms);
}

static int run_source(const int *socks)
{
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine *e;
	struct vfio_uring_device *handles[MAX_DEVICES];
	struct vfio_uring_engine_stats st;
	uint64_t t0, t_change = 0, wire_at_change = 0;
	const char *msg;
	char why[256];
	int ret;

	vfio_uring_engine_opts_init(&opts, VFIO_URING_SOURCE);
	opts.chunk_size = cfg.chunk;
	opts.buffer_cap = cfg.src_cap;
	opts.flags = cfg.flags;
	opts.progress_timeout_ms = 60000;
	ret = test_engine_setup(&opts, socks, cfg.channels, devs, cfg.devices, 0, handles, &e,
				why, sizeof(why));
	if (ret)
		FAIL("source: %s", why);
	if (cfg.rate && (ret = vfio_uring_engine_set_rate_limit(e, cfg.rate)))
		FAIL("source: set_rate_limit: %s", strerror(-ret));
	t0 = now_ms();
	ret = vfio_uring_engine_start(e);
	if (ret)
		FAIL("source: start: %s", strerror(-ret));
	if (cfg.rate2_ms) {
		ret = vfio_uring_engine_run(e, (int)cfg.rate2_ms);
		if (ret != -ETIMEDOUT)
			FAIL("source: run returned %d before the rate change", ret);
		vfio_uring_engine_get_stats(e, &st, sizeof(st));
		wire_at_change = st.wire_bytes;
		t_change = now_ms();
		vfio_uring_engine_set_rate_limit(e, cfg.rate2);
	}
	ret = vfio_uring_engine_run(e, 120000);
	if (ret) {
		vfio_uring_engine_error(e, &msg);
		FAIL("source: run: %s (%s)", strerror(-ret), msg);
	}
	if (cfg.rate)
		check_rate(e, t0, t_change, wire_at_change);
	for (unsigned i = 0; i < cfg.devices; i++) {
		struct vfio_uring_device_status st;
		uint64_t chunks = (devs[i].size + read_size() - 1) / read_size();

		vfio_uring_device_get_status(handles[i], &st, sizeof(st));
		if (st.state != VFIO_URING_DEVICE_DONE || devs[i].done_calls != 1 || devs[i].done_error)
			FAIL("source: device %u: state %s, done called %u times", i,
			     vfio_uring_device_state_name(st.state), devs[i].done_calls);
		/* QEMU's accounting: 12-byte VFIO header + data per packet, config packet included. */
		if (st.packets != chunks + 1 ||
		    st.bytes != devs[i].size + 12 * (chunks + 1) + 16 + devs[i].config_len ||
		    st.data_bytes != devs[i].size)
			FAIL("source: device %u: packets %llu bytes %llu data %llu", i,
			     (unsigned long long)st.packets, (unsigned long long)st.bytes,
			     (unsigned long long)st.data_bytes);
	}
	vfio_uring_engine_destroy(e);
	return 0;
}

/* Config gate, closed: every data byte is written, no config was loaded, no device is done. */
static void check_all_written_no_config(void)
{
	for (unsigned i = 0; i < cfg.devices; i++) {
		struct stat st;

		if (fstat(devs[i].dst_fd, &st) < 0 || (uint64_t)st.st_size != devs[i].size)
			FAIL("device %u: %lld of %llu bytes written while the config gate is closed", i,
			     (long long)st.st_size, (unsigned long long)devs[i].size);
		if (devs[i].config_loads || devs[i].done_calls)
			FAIL("device %u: config loaded %u times, done %u times with the gate closed", i,
			     devs[i].config_loads, devs[i].done_calls);
	}
}

static void check_nothing_written(void)
{
	for (unsigned i = 0; i < cfg.devices; i++) {
		struct stat st;

		if (fstat(devs[i].dst_fd, &st) < 0 || st.st_size != 0)
			FAIL("device %u: %lld bytes written before switchover start", i,
			     (long long)st.st_size);
	}
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "devices", required_argument, NULL, 'd' },
		{ "channels", required_argument, NULL, 'c' },
		{ "sizes", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'k' },
		{ "src-cap", required_argument, NULL, 'S' },
		{ "dst-cap", required_argument, NULL, 'D' },
		{ "async", no_argument, NULL, 'a' },
		{ "baseline-ring", no_argument, NULL, 'b' },
		{ "late-switchover", required_argument, NULL, 'L' },
		{ "config-gate", required_argument, NULL, 'g' },
		{ "rate-limit", required_argument, NULL, 'r' },
		{ 0 },
	};
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine *e;
	struct vfio_uring_device *handles[MAX_DEVICES];
	struct vfio_uring_engine_stats est;
	int src_socks[MAX_CHANNELS], dst_socks[MAX_CHANNELS];
	uint64_t total_packets = 0, total_bytes = 0, queued_before = 0;
	const char *msg;
	char why[256];
	uint64_t at;
	int opt, ret, status;
	pid_t child;

	cfg = (struct config){ .transport = "tcp", .devices = 1, .channels = 1,
			       .chunk = VFIO_URING_DEFAULT_CHUNK_SIZE,
			       .src_cap = VFIO_URING_DEFAULT_BUFFER_CAP,
			       .dst_cap = VFIO_URING_DEFAULT_BUFFER_CAP };
	cfg.flags = test_env_engine_flags();
	if (cfg.flags)
		printf("engine flags from VU_TEST_ENGINE_FLAGS: 0x%x\n", cfg.flags);
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case 't': cfg.transport = optarg; break;
		case 'd': cfg.devices = (unsigned)atoi(optarg); break;
		case 'c': cfg.channels = (unsigned)atoi(optarg); break;
		case 'k': cfg.chunk = parse_size(optarg); break;
		case 'S': cfg.src_cap = parse_size(optarg); break;
		case 'D': cfg.dst_cap = parse_size(optarg); break;
		case 'a': cfg.flags |= VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO; break;
		case 'b': cfg.flags |= VFIO_URING_ENGINE_F_BASELINE_RING; break;
		case 'L': cfg.late_switchover_ms = (unsigned)atoi(optarg); break;
		case 'g': cfg.config_gate = optarg; break;
		case 'r': {
			char *second = strchr(optarg, ',');

			cfg.rate = parse_size(optarg);
			if (second) {
				char *at = strchr(second, '@');

				if (!at)
					FAIL("--rate-limit R,R2@MS");
				cfg.rate2 = parse_size(second + 1);
				cfg.rate2_ms = (unsigned)atoi(at + 1);
			}
			break;
		}
		case 's':
			for (char *tok = strtok(optarg, ","); tok && cfg.n_sizes < 16; tok = strtok(NULL, ","))
				cfg.sizes[cfg.n_sizes++] = parse_size(tok);
			break;
		default: return 2;
		}
	}
	if (!cfg.devices || cfg.devices > MAX_DEVICES || !cfg.channels ||
	    cfg.channels > MAX_CHANNELS || !cfg.n_sizes)
		FAIL("bad arguments");
	alarm(600); /* a hang is a failure, not a stuck CI */

	for (unsigned i = 0; i < cfg.devices; i++) {
		struct test_device *d = &devs[i];
		uint64_t seed = 0xc0ffee + i;
		uint64_t chunks;

		d->size = cfg.sizes[i % cfg.n_sizes];
		snprintf(d->idstr, sizeof(d->idstr), "0000:00:%02x.0/vfio", i + 3);
		d->src_fd = test_source_memfd("src", 0, i, d->size);
		d->dst_fd = d->sink_fd = memfd_create("dst", 0);
		d->config_len = 1 + (i * 37) % sizeof(d->config);
		for (size_t j = 0; j < d->config_len; j++)
			d->config[j] = (uint8_t)xorshift64(&seed);
		chunks = (d->size + read_size() - 1) / read_size();
		total_packets += chunks + 1;
		total_bytes += d->size + 12 * (chunks + 1) + 16 + d->config_len;
	}
	test_connect_channels(cfg.transport, src_socks, dst_socks, cfg.channels);

	child = fork();
	if (child == 0) {
		for (unsigned i = 0; i < cfg.channels; i++)
			close(dst_socks[i]);
		exit(run_source(src_socks));
	}
	for (unsigned i = 0; i < cfg.channels; i++)
		close(src_socks[i]);

	vfio_uring_engine_opts_init(&opts, VFIO_URING_DESTINATION);
	opts.buffer_cap = cfg.dst_cap;
	opts.max_packet_size = cfg.chunk + 4096 > (4u << 20) ? cfg.chunk + 4096 : 4u << 20;
	if (opts.max_packet_size > opts.buffer_cap)
		opts.max_packet_size = opts.buffer_cap;
	opts.flags = cfg.flags;
	opts.progress_timeout_ms = 60000;
	ret = test_engine_setup(&opts, dst_socks, cfg.channels, devs, cfg.devices,
				cfg.config_gate ? VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS : 0, handles, &e,
				why, sizeof(why));
	if (ret)
		FAIL("destination: %s", why);
	ret = vfio_uring_engine_start(e);
	if (ret)
		FAIL("destination: start: %s", strerror(-ret));

	/*
	 * Before switchover: drive the engine from a poll() loop, as a VMM would, until packets
	 * are queued (all of them, or as many as a quarter of the cap holds; or for
	 * --late-switchover ms), then look at the data fds: nothing may have been written.
	 */
	{
		uint64_t want = total_packets;
		uint64_t fit = cfg.dst_cap / 4 / (cfg.chunk + 4096);
		uint64_t late_until = now_ms() + cfg.late_switchover_ms;

		if (fit < want)
			want = fit ? fit : 1;
		for (;;) {
			struct pollfd pfd = { .fd = vfio_uring_engine_get_fd(e), .events = POLLIN };
			uint64_t now = now_ms();
			int wait_ms = cfg.late_switchover_ms ? (now < late_until ? (int)(late_until - now) : 0)
							     : 60000;

			if (poll(&pfd, 1, wait_ms) < 0 || (!cfg.late_switchover_ms && pfd.revents == 0)) {
				vfio_uring_engine_get_stats(e, &est, sizeof(est));
				FAIL("destination: poll timed out before switchover (%llu of %llu packets)",
				     (unsigned long long)est.packets, (unsigned long long)want);
			}
			ret = vfio_uring_engine_process(e);
			if (ret < 0) {
				vfio_uring_engine_error(e, &msg);
				FAIL("destination: before switchover: %s", msg);
			}
			vfio_uring_engine_get_stats(e, &est, sizeof(est));
			if (cfg.late_switchover_ms ? now_ms() >= late_until : est.packets >= want)
				break;
		}
		queued_before = est.packets;
		if (est.buffer_peak > est.buffer_cap)
			FAIL("destination: buffer peak %llu above cap %llu before switchover",
			     (unsigned long long)est.buffer_peak, (unsigned long long)est.buffer_cap);
		check_nothing_written();
		for (unsigned i = 0; i < cfg.devices; i++)
			if (devs[i].config_loads)
				FAIL("device %u: config loaded before switchover", i);
	}
	if (cfg.config_gate && strcmp(cfg.config_gate, "before") == 0 &&
	    (ret = vfio_uring_engine_config_load_ready(e)))
		FAIL("destination: config_load_ready: %s", strerror(-ret));
	vfio_uring_engine_switchover_start(e);
	ret = vfio_uring_engine_run(e, 120000);
	if (cfg.config_gate && strcmp(cfg.config_gate, "after") == 0) {
		/* Everything is in and written; only the caller's word is missing. */
		if (ret != -EAGAIN)
			FAIL("destination: run returned %d, expected -EAGAIN (waiting for the gate)", ret);
		check_all_written_no_config();
		for (unsigned i = 0; i < cfg.devices; i++)
			if ((ret = vfio_uring_device_config_load_ready(handles[i])))
				FAIL("device %u: config_load_ready: %s", i, strerror(-ret));
		ret = vfio_uring_engine_run(e, 120000);
	}
	if (ret) {
		vfio_uring_engine_error(e, &msg);
		FAIL("destination: run: %s (%s)", strerror(-ret), msg);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("source process failed");

	for (unsigned i = 0; i < cfg.devices; i++) {
		struct test_device *d = &devs[i];
		struct vfio_uring_device_status st;
		struct stat sb;

		vfio_uring_device_get_status(handles[i], &st, sizeof(st));
		if (st.state != VFIO_URING_DEVICE_DONE || d->done_calls != 1 || d->done_error)
			FAIL("device %u: state %s (%s)", i, vfio_uring_device_state_name(st.state),
			     st.message);
		if (d->config_loads != 1 || !d->config_intact || !d->config_after_data)
			FAIL("device %u: config loaded %u times, intact %d, after data %d", i,
			     d->config_loads, d->config_intact, d->config_after_data);
		if (fstat(d->dst_fd, &sb) < 0 || (uint64_t)sb.st_size != d->size)
			FAIL("device %u: %lld bytes written, expected %llu", i, (long long)sb.st_size,
			     (unsigned long long)d->size);
		if (!test_same_bytes(d->src_fd, d->dst_fd, d->size, &at))
			FAIL("device %u: data differs in the MiB at %llu", i, (unsigned long long)at);
		if (st.data_bytes != d->size)
			FAIL("device %u: data_bytes %llu", i, (unsigned long long)st.data_bytes);
	}
	vfio_uring_engine_get_stats(e, &est, sizeof(est));
	if (est.packets != total_packets || est.bytes != total_bytes)
		FAIL("destination: packets %llu/%llu bytes %llu/%llu", (unsigned long long)est.packets,
		     (unsigned long long)total_packets, (unsigned long long)est.bytes,
		     (unsigned long long)total_bytes);
	{
		uint64_t wire = 0;

		for (unsigned i = 0; i < cfg.channels; i++) {
			struct vfio_uring_channel_stats cs;

			vfio_uring_engine_get_channel_stats(e, i, &cs, sizeof(cs));
			wire += cs.wire_bytes;
		}
		if (wire != est.wire_bytes ||
		    wire != 64ull * cfg.channels + 276 * total_packets + total_bytes)
			FAIL("destination: wire bytes %llu", (unsigned long long)wire);
	}
	if (est.buffer_peak > est.buffer_cap)
		FAIL("destination: buffer peak %llu above cap %llu", (unsigned long long)est.buffer_peak,
		     (unsigned long long)est.buffer_cap);
	vfio_uring_engine_destroy(e);
	printf("ok: %s, %u devices, %u channels, %llu packets (%llu queued before switchover), "
	       "%llu bytes\n", cfg.transport, cfg.devices, cfg.channels,
	       (unsigned long long)total_packets, (unsigned long long)queued_before,
	       (unsigned long long)total_bytes);
	return 0;
}
