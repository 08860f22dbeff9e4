/* SPDX-License-Identifier: MIT */
/*
 * Slow devices, end to end: N devices whose data fds behave like VFIO migration data fds
 * (the bench's device model, tools/bench/devmodel.h: every read or write blocks in the
 * kernel for latency + bytes/rate), moved by a source engine in a child process and a
 * destination engine in this one over C loopback TCP channels.
 *
 * Checks: every byte arrives; the engines read (source) and write (destination) every
 * device at once: the stats' device_io_peak equals N on both sides. A device-bound
 * transfer is only as fast as its devices if they all work in parallel.
 *
 * usage: slow_devices --devices N [--size S] [--rate R] [--channels C]
 *   (S, R with K/M/G suffixes; R in bytes per second per device, both sides)
 * Exits 77 when the machine cannot mount the model (no /dev/fuse, not root).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "common.h"
#include "data.h"
#include "devmodel.h"
#include "vfio-uring.h"

#define MAX_CHANNELS 16

struct config {
	unsigned devices, channels;
	uint64_t size, rate;
};


/* What the source process reports back (a MAP_SHARED page). */
struct source_report {
	int err;
	char msg[200];
	uint64_t device_io_peak;
	uint64_t data_bytes;
};

static struct config cfg;
/* A device's src_fd and dst_fd are the model's files in front of its bytes: src_mem[i], sink_fd. */
static struct test_device *devs;
static int *src_mem;

/* A buffer cap that lets every device have a chunk in flight at once, with room to spare. */
static size_t buffer_cap(void)
{
	return (size_t)(cfg.devices + 8) * VFIO_URING_DEFAULT_CHUNK_SIZE;
}

static void run_source(const int *socks, struct source_report *rep)
{
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine_stats st;
	struct vfio_uring_engine *e;
	const char *msg = NULL;
	char why[256];
	int ret;

	vfio_uring_engine_opts_init(&opts, VFIO_URING_SOURCE);
	opts.buffer_cap = buffer_cap();
	opts.flags = VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	opts.progress_timeout_ms = 60000;
	ret = test_engine_setup(&opts, socks, cfg.channels, devs, cfg.devices, 0, NULL, &e,
				why, sizeof(why));
	if (ret) {
		rep->err = ret;
		snprintf(rep->msg, sizeof(rep->msg), "source: %.180s", why);
		return;
	}
	ret = vfio_uring_engine_start(e);
	if (!ret)
		ret = vfio_uring_engine_run(e, 120000);
	if (ret) {
		vfio_uring_engine_error(e, &msg);
		rep->err = ret;
		snprintf(rep->msg, sizeof(rep->msg), "source: %s (%s)", strerror(-ret),
			 msg ? msg : "");
	}
	vfio_uring_engine_get_stats(e, &st, sizeof(st));
	rep->device_io_peak = st.device_io_peak;
	vfio_uring_engine_destroy(e);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "devices", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "channels", required_argument, NULL, 'c' },
		{ 0 },
	};
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine_stats est;
	struct vfio_uring_engine *e;
	struct devmodel_file *files;
	struct devmodel_stats mst;
	struct devmodel *model;
	struct source_report *rep;
	int src_socks[MAX_CHANNELS], dst_socks[MAX_CHANNELS];
	const char *msg = NULL;
	char why[256];
	double t0, secs, per_device;
	int opt, ret, status;
	pid_t child;

	cfg = (struct config){ .devices = 8, .channels = 4, .size = 1u << 20, .rate = 2u << 20 };
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'd': cfg.devices = (unsigned)atoi(optarg); break;
		case 's': cfg.size = parse_size(optarg); break;
		case 'r': cfg.rate = parse_size(optarg); break;
		case 'c': cfg.channels = (unsigned)atoi(optarg); break;
		default: return 2;
		}
	}
	if (!cfg.devices || cfg.devices > 1024 || !cfg.channels || cfg.channels > MAX_CHANNELS ||
	    !cfg.size || !cfg.rate || cfg.size % VFIO_URING_DEFAULT_CHUNK_SIZE)
		FAIL("bad arguments (--size a whole number of 1 MiB chunks)");
	if (devmodel_available(why, sizeof(why))) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	alarm(120); /* a hang is a failure, not a stuck CI */

	devs = calloc(cfg.devices, sizeof(*devs));
	src_mem = calloc(cfg.devices, sizeof(*src_mem));
	files = calloc(2 * (size_t)cfg.devices, sizeof(*files));
	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!devs || !src_mem || !files || rep == MAP_FAILED)
		FAIL("out of memory");
	memset(rep, 0, sizeof(*rep));
	for (unsigned i = 0; i < cfg.devices; i++) {
		struct test_device *d = &devs[i];

		snprintf(d->idstr, sizeof(d->idstr), "0000:%02x:%02x.0/vfio", 1 + i / 32, i % 32);
		d->size = cfg.size;
		src_mem[i] = test_source_memfd("slow-src", MFD_CLOEXEC, i, cfg.size);
		d->sink_fd = memfd_create("slow-dst", MFD_CLOEXEC);
		if (d->sink_fd < 0)
			FAIL("memfd: %s", strerror(errno));
		d->config_len = 64;
		fill_pattern(d->config, d->config_len, 0xc0ffee + i);
		files[2 * i] = (struct devmodel_file){
			.kind = DEVMODEL_SOURCE, .backing_fd = src_mem[i], .rate = cfg.rate };
		files[2 * i + 1] = (struct devmodel_file){
			.kind = DEVMODEL_SINK, .backing_fd = d->sink_fd, .rate = cfg.rate };
	}
	ret = devmodel_create(files, 2 * cfg.devices, &model, why, sizeof(why));
	free(files);
	if (ret)
		FAIL("device model: %s (%s)", why, strerror(-ret));
	for (unsigned i = 0; i < cfg.devices; i++) {
		devs[i].src_fd = devmodel_open(model, 2 * i);
		devs[i].dst_fd = devmodel_open(model, 2 * i + 1);
		if (devs[i].src_fd < 0 || devs[i].dst_fd < 0)
			FAIL("opening device %u's model files: %s", i,
			    strerror(-(devs[i].src_fd < 0 ? devs[i].src_fd : devs[i].dst_fd)));
	}
	test_connect_channels("tcp", src_socks, dst_socks, cfg.channels);

	t0 = (double)now_ns() * 1e-9;
	child = fork();
	if (child < 0)
		FAIL("fork: %s", strerror(errno));
	if (child == 0) {
		for (unsigned i = 0; i < cfg.channels; i++)
			close(dst_socks[i]);
		run_source(src_socks, rep);
		_exit(rep->err ? 1 : 0);
	}
	for (unsigned i = 0; i < cfg.channels; i++)
		close(src_socks[i]);

	vfio_uring_engine_opts_init(&opts, VFIO_URING_DESTINATION);
	/* Room for every packet of every device: they all arrive before the switchover. */
	opts.buffer_cap = (size_t)cfg.devices * (cfg.size + VFIO_URING_DEFAULT_CHUNK_SIZE) +
			  buffer_cap();
	opts.flags = VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	opts.progress_timeout_ms = 60000;
	ret = test_engine_setup(&opts, dst_socks, cfg.channels, devs, cfg.devices, 0, NULL, &e,
				why, sizeof(why));
	if (ret)
		FAIL("destination: %s", why);
	/*
	 * The switchover starts once every packet is in, so that every device has data to write
	 * at the same moment: the peak then measures the engine's writes, not how the devices'
	 * reads happened to be staggered in time on a loaded machine (with the switchover at
	 * once, 43 of 64 writes overlapped under a load of 10).
	 */
	ret = vfio_uring_engine_start(e);
	while (!ret) {
		ret = vfio_uring_engine_run(e, 20);
		if (ret != -ETIMEDOUT)
			break;
		ret = vfio_uring_engine_get_stats(e, &est, sizeof(est));
		if (!ret && est.packets == (uint64_t)cfg.devices * (cfg.size / VFIO_URING_DEFAULT_CHUNK_SIZE + 1))
			break;
	}
	if (!ret)
		ret = vfio_uring_engine_switchover_start(e);
	if (!ret)
		ret = vfio_uring_engine_run(e, 120000);
	if (ret) {
		vfio_uring_engine_error(e, &msg);
		FAIL("destination: %s (%s)", strerror(-ret), msg ? msg : "");
	}
	secs = (double)now_ns() * 1e-9 - t0;
	vfio_uring_engine_get_stats(e, &est, sizeof(est));
	vfio_uring_engine_destroy(e);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("source process failed: %s", rep->msg[0] ? rep->msg : "no report");

	for (unsigned i = 0; i < cfg.devices; i++) {
		close(devs[i].src_fd);
		close(devs[i].dst_fd);
	}
	ret = devmodel_destroy(model, &mst);
	CHECK(ret == 0, "the device model's server did not exit cleanly: %s", strerror(-ret));

	/* Every byte, every device. */
	for (unsigned i = 0; i < cfg.devices; i++) {
		struct test_device *d = &devs[i];
		off_t end = lseek(d->sink_fd, 0, SEEK_END);
		uint64_t at;

		CHECK(end == (off_t)cfg.size, "device %u: %lld bytes on the destination, %llu sent",
		      i, (long long)end, (unsigned long long)cfg.size);
		CHECK(test_same_bytes(src_mem[i], d->sink_fd, cfg.size, &at),
		      "device %u: data differs in the MiB at %llu", i, (unsigned long long)at);
		CHECK(d->done_calls == 1 && d->done_error == 0,
		      "device %u: done called %u times, error %d", i, d->done_calls, d->done_error);
		CHECK(d->config_loads == 1 && d->config_intact && d->config_after_data,
		      "device %u: config loaded %u times, intact %d, after data %d", i,
		      d->config_loads, d->config_intact, d->config_after_data);
	}

	per_device = (double)cfg.size / (double)cfg.rate;
	printf("%u devices x %llu bytes at %llu B/s per device, %u channels: %.2f s "
	       "(one device alone: %.2f s to read + %.2f s to write)\n",
	       cfg.devices, (unsigned long long)cfg.size, (unsigned long long)cfg.rate,
	       cfg.channels, secs, per_device, per_device);
	printf("device_io_peak: source %llu, destination %llu (want %u on both); "
	       "the model saw up to %llu reads and %llu writes blocked at once\n",
	       (unsigned long long)rep->device_io_peak, (unsigned long long)est.device_io_peak,
	       cfg.devices, (unsigned long long)mst.reads_peak,
	       (unsigned long long)mst.writes_peak);
	CHECK(mst.read_bytes == cfg.devices * cfg.size && mst.write_bytes == cfg.devices * cfg.size,
	      "the model moved %llu bytes in, %llu out", (unsigned long long)mst.read_bytes,
	      (unsigned long long)mst.write_bytes);
	CHECK(rep->device_io_peak == cfg.devices,
	      "source: %llu device reads in flight at most, want all %u devices read at once",
	      (unsigned long long)rep->device_io_peak, cfg.devices);
	CHECK(est.device_io_peak == cfg.devices,
	      "destination: %llu device writes in flight at most, want all %u devices written "
	      "at once", (unsigned long long)est.device_io_peak, cfg.devices);
	for (unsigned i = 0; i < cfg.devices; i++) {
		close(src_mem[i]);
		close(devs[i].sink_fd);
	}
	free(src_mem);
	free(devs);
	munmap(rep, sizeof(*rep));
	return check_result();
}
