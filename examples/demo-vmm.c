/* SPDX-License-Identifier: MIT */
/*
 * The example VMMs' plumbing (see demo-vmm.h): nothing here is about the event loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, accept4, RUSAGE_THREAD */
#endif
#include "demo-vmm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const uint8_t demo_uuid[16] = { 0xde, 0x30, 0x0e, 0x3a, 0x6d, 0x5b, 0x4c, 0x21,
				0x9a, 0x11, 0x70, 0x0c, 0x55, 0xe1, 0x2b, 0x07 };

int demo_parse_options(int argc, char **argv, struct demo_options *opts)
{
	static const struct option longopts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "devices", required_argument, NULL, 'd' },
		{ "channels", required_argument, NULL, 'c' },
		{ 0 },
	};
	bool role_given = false;
	int c;

	*opts = (struct demo_options){ .devices = 4, .channels = 3 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			role_given = true;
			if (strcmp(optarg, "source") == 0)
				opts->source = true;
			else if (strcmp(optarg, "destination") != 0)
				goto usage;
			break;
		case 'p':
			opts->port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			opts->devices = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			opts->channels = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (role_given && optind == argc && opts->port <= 65535 && (opts->source ? opts->port : 1) &&
	    opts->devices >= 1 && opts->devices <= DEMO_MAX_DEVICES && opts->channels >= 1 &&
	    opts->channels <= DEMO_MAX_CHANNELS)
		return 0;
usage:
	fprintf(stderr, "usage: %s --role destination --port PORT|0 [--devices N] [--channels N]\n"
			"       %s --role source --port PORT [--devices N] [--channels N]\n"
			"The destination prints the port it listens on; start it first.\n",
		argv[0], argv[0]);
	return -EINVAL;
}

/* ---- fake devices ------------------------------------------------------------------- */

/* splitmix64: every 8-byte word of a device is a function of (device, offset). */
static uint64_t pattern_word(unsigned device, uint64_t word)
{
	uint64_t z = ((uint64_t)(device + 1) << 48) + word * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void pattern_fill(unsigned device, uint8_t *p, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += 8) {
		uint64_t w = pattern_word(device, off / 8);

		memcpy(p + off, &w, size - off < 8 ? (size_t)(size - off) : 8);
	}
}

/* 16 to 64 MiB, not a multiple of the 1 MiB chunk, so every device ends with a short packet. */
static uint64_t device_size(unsigned i)
{
	return ((64 - 16 * (uint64_t)(i % 4)) << 20) + 4097 * (uint64_t)i + 13;
}

static size_t config_len(unsigned i)
{
	return 64 + 37 * i; /* config space, MSI-X table...: a few hundred bytes in a real VMM */
}

int demo_devices_create(struct demo_device *devs, unsigned n, bool source)
{
	for (unsigned i = 0; i < n; i++) {
		struct demo_device *d = &devs[i];

		*d = (struct demo_device){ .index = i, .size = device_size(i), .data_fd = -1 };
		snprintf(d->idstr, sizeof(d->idstr), "0000:00:%02x.0/vfio", i + 3);
		d->data_fd = memfd_create(d->idstr, MFD_CLOEXEC);
		if (d->data_fd < 0)
			return -errno;
		if (!source)
			continue; /* the destination's device starts empty: the engine writes it */
		if (ftruncate(d->data_fd, (off_t)d->size) < 0)
			return -errno;
		uint8_t *map = mmap(NULL, d->size, PROT_WRITE, MAP_SHARED, d->data_fd, 0);

		if (map == MAP_FAILED)
			return -errno;
		pattern_fill(i, map, d->size);
		munmap(map, d->size);
		d->config_len = config_len(i);
		pattern_fill(1000 + i, d->config, d->config_len);
	}
	return 0;
}

void demo_devices_close(struct demo_device *devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (devs[i].data_fd >= 0)
			close(devs[i].data_fd);
}

int demo_device_verify(const struct demo_device *d)
{
	uint8_t want[DEMO_CONFIG_MAX];
	const uint8_t *map;
	struct stat st;
	int ret = 0;

	if (fstat(d->data_fd, &st) < 0 || (uint64_t)st.st_size != d->size) {
		printf("%s: %lld bytes written, expected %llu\n", d->idstr, (long long)st.st_size,
		       (unsigned long long)d->size);
		return -EIO;
	}
	map = mmap(NULL, d->size, PROT_READ, MAP_SHARED, d->data_fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	for (uint64_t off = 0; off < d->size && !ret; off += 8) {
		uint64_t w = pattern_word(d->index, off / 8);

		if (memcmp(map + off, &w, d->size - off < 8 ? (size_t)(d->size - off) : 8)) {
			printf("%s: data differs at byte %llu\n", d->idstr, (unsigned long long)off);
			ret = -EIO;
		}
	}
	munmap((void *)map, d->size);
	pattern_fill(1000 + d->index, want, config_len(d->index));
	if (d->config_loads != 1 || d->config_len != config_len(d->index) ||
	    memcmp(d->config, want, d->config_len)) {
		printf("%s: config blob loaded %u times, %zu bytes, %s\n", d->idstr, d->config_loads,
		       d->config_len, d->config_len == config_len(d->index) ? "differs" : "wrong length");
		ret = -EIO;
	}
	return ret;
}

/* ---- connections -------------------------------------------------------------------- */

int demo_listen(unsigned port, int *listen_fd)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	printf("destination: listening on 127.0.0.1 port %u\n", ntohs(addr.sin_port));
	fflush(stdout); /* the tests wait for this line */
	*listen_fd = fd;
	return 0;
}

int demo_accept_all(int listen_fd, int *control_fd, int *channel_fds, unsigned channels)
{
	unsigned accepted = 0;

	while (accepted <= channels) {
		struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
		int fd, n;

		/* Bounded, so that a destination whose source never comes does not wait forever. */
		n = poll(&pfd, 1, DEMO_ACCEPT_TIMEOUT_MS);
		if (n < 0 && errno == EINTR)
			continue; /* a signal handler ran (GLib's): its main loop acts on it later */
		if (n <= 0)
			return n == 0 ? -ETIMEDOUT : -errno;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (accepted == 0)
			*control_fd = fd;
		else
			channel_fds[accepted - 1] = fd;
		accepted++;
	}
	return 0;
}

int demo_connect_all(unsigned port, int *control_fd, int *channel_fds, unsigned channels)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	for (unsigned i = 0; i <= channels; i++) {
		int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		/* The control messages are single bytes that should leave at once. */
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
		    (i == 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)) {
			int err = -errno;

			close(fd);
			return err;
		}
		if (i == 0)
			*control_fd = fd;
		else
			channel_fds[i - 1] = fd;
	}
	return 0;
}

int demo_send_message(int fd, char msg)
{
	/* MSG_NOSIGNAL: a peer that went away is an error to report, not a SIGPIPE. */
	if (send(fd, &msg, 1, MSG_NOSIGNAL) != 1)
		return -errno;
	return 0;
}

/* ---- statistics and the report ------------------------------------------------------ */

uint64_t demo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds this thread has spent runnable but waiting for a CPU; 0 if unknown. */
static uint64_t cpu_wait_ns(const struct demo_loop_stats *s)
{
	unsigned long long run, wait;
	char buf[128];
	ssize_t n;

	if (s->schedstat_fd < 0)
		return 0;
	n = pread(s->schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return sscanf(buf, "%llu %llu", &run, &wait) == 2 ? wait : 0;
}

static void thread_usage(uint64_t *cpu_ns, long *nvcsw)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	*cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
		  ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	*nvcsw = ru.ru_nvcsw;
}

void demo_stats_start(struct demo_loop_stats *s)
{
	*s = (struct demo_loop_stats){ .start_ns = demo_now_ns() };
	s->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	s->last_tick_ns = s->start_ns;
	s->last_tick_wait_ns = cpu_wait_ns(s);
}

static void note_gap(struct demo_loop_stats *s, uint64_t now)
{
	uint64_t wait = cpu_wait_ns(s), gap = now - s->last_tick_ns;
	uint64_t waited = wait - s->last_tick_wait_ns;

	if (gap > s->max_gap_ns)
		s->max_gap_ns = gap;
	if (gap - (waited < gap ? waited : gap) > s->max_gap_own_ns)
		s->max_gap_own_ns = gap - (waited < gap ? waited : gap);
	s->last_tick_ns = now;
	s->last_tick_wait_ns = wait;
}

void demo_stats_tick(struct demo_loop_stats *s)
{
	if (!s->start_ns || s->end_ns)
		return; /* only the ticks while the engine runs count */
	note_gap(s, demo_now_ns());
	s->ticks++;
}

void demo_stats_process_begin(struct demo_loop_stats *s)
{
	s->call_ns = demo_now_ns();
	thread_usage(&s->call_cpu_ns, &s->call_nvcsw);
}

void demo_stats_process_end(struct demo_loop_stats *s)
{
	uint64_t took = demo_now_ns() - s->call_ns, cpu;
	long nvcsw;

	thread_usage(&cpu, &nvcsw);
	s->process_calls++;
	if (took > s->max_process_ns)
		s->max_process_ns = took;
	if (cpu - s->call_cpu_ns > s->max_process_cpu_ns)
		s->max_process_cpu_ns = cpu - s->call_cpu_ns;
	if (nvcsw != s->call_nvcsw) /* a voluntary context switch: the thread slept */
		s->process_sleeps++;
}

void demo_stats_stop(struct demo_loop_stats *s)
{
	if (!s->start_ns || s->end_ns)
		return;
	s->end_ns = demo_now_ns();
	note_gap(s, s->end_ns); /* a stall just before the end counts too */
	if (s->schedstat_fd >= 0)
		close(s->schedstat_fd);
	s->schedstat_fd = -1;
}

int demo_report(const char *side, struct vfio_uring_engine *engine, int result,
		const struct demo_device *devs, unsigned n, const struct demo_loop_stats *s)
{
	struct vfio_uring_engine_stats es = { 0 };
	const char *why = "";

	vfio_uring_engine_get_stats(engine, &es, sizeof(es));
	if (result > 0) {
		printf("%s: migrated %u devices, %llu bytes in %.1f ms, buffers peak %.1f of %.1f MiB\n",
		       side, n, (unsigned long long)es.bytes, (double)(s->end_ns - s->start_ns) / 1e6,
		       (double)es.buffer_peak / (1 << 20), (double)es.buffer_cap / (1 << 20));
	} else {
		vfio_uring_engine_error(engine, &why);
		printf("%s: migration failed: %d (%s): %s\n", side, result, strerror(-result), why);
	}
	printf("%s: timer ticks %u, largest gap %.1f ms, %.1f ms without CPU waits\n", side,
	       s->ticks, (double)s->max_gap_ns / 1e6, (double)s->max_gap_own_ns / 1e6);
	printf("%s: process() calls %u, longest %.1f ms (cpu %.1f ms), slept %u times\n", side,
	       s->process_calls, (double)s->max_process_ns / 1e6,
	       (double)s->max_process_cpu_ns / 1e6, s->process_sleeps);
	for (unsigned i = 0; i < n; i++) {
		struct vfio_uring_device_status st;

		if (vfio_uring_device_get_status(devs[i].handle, &st, sizeof(st)) == 0 &&
		    st.state != VFIO_URING_DEVICE_DONE)
			printf("%s:   %s %s %d %s\n", side, devs[i].idstr,
			       vfio_uring_device_state_name(st.state), st.error, st.message);
	}
	fflush(stdout);
	return result > 0 ? 0 : 1;
}

int demo_connect(const struct demo_options *opts, int *control_fd, int *channel_fds)
{
	int listen_fd = -1, ret;

	if (opts->source)
		return demo_connect_all(opts->port, control_fd, channel_fds, opts->channels);
	ret = demo_listen(opts->port, &listen_fd);
	if (!ret)
		ret = demo_accept_all(listen_fd, control_fd, channel_fds, opts->channels);
	if (listen_fd >= 0)
		close(listen_fd);
	return ret;
}

/* ---- the engine's config callbacks: they run inside an engine call ----------------- */

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct demo_device *dev = opaque;

	*data = dev->config; /* must stay valid until the device is done: it is ours */
	*len = dev->config_len;
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct demo_device *dev = opaque;

	if (len > sizeof(dev->config))
		return -EMSGSIZE; /* a negated errno fails the device, and so the migration */
	memcpy(dev->config, data, len);
	dev->config_len = len;
	dev->config_loads++;
	return 0;
}

int demo_engine_setup(const struct demo_options *opts, struct demo_device *devs,
		      const int *channel_fds, vfio_uring_device_done_fn done,
		      struct vfio_uring_engine **engine)
{
	struct vfio_uring_engine_opts eopts;
	int ret;

	vfio_uring_engine_opts_init(&eopts, opts->source ? VFIO_URING_SOURCE
							 : VFIO_URING_DESTINATION);
	memcpy(eopts.uuid, demo_uuid, sizeof(eopts.uuid));
	eopts.progress_timeout_ms = 10000; /* a peer that stops answering fails us: -ETIMEDOUT */
	/*
	 * A real VFIO data fd cannot do non-blocking I/O, so io_uring always serves it in its
	 * worker threads. Our memfds could be copied inline, inside process(): make them behave
	 * like the real thing. A VMM with real devices does not need this flag.
	 */
	eopts.flags = VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
	ret = vfio_uring_engine_create(&eopts, engine);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < opts->channels; i++) {
		ret = vfio_uring_engine_add_channel(*engine, channel_fds[i]);
		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < opts->devices; i++) {
		struct demo_device *dev = &devs[i];
		struct vfio_uring_device_opts dopts;

		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = dev->idstr;
		dopts.instance_id = 0;
		dopts.data_fd = dev->data_fd;
		if (opts->source)
			dopts.save_config = save_config;
		else
			dopts.load_config = load_config;
		dopts.done = done;
		dopts.opaque = dev;
		ret = vfio_uring_engine_add_device(*engine, &dopts, &dev->handle);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int demo_engine_start(const struct demo_options *opts, int control_fd,
		      struct vfio_uring_engine *engine, struct demo_loop_stats *stats)
{
	int ret;

	if (opts->source) {
		ret = demo_send_message(control_fd, DEMO_MSG_SWITCHOVER);
		if (ret < 0)
			return ret;
	}
	demo_stats_start(stats);
	ret = vfio_uring_engine_start(engine);
	if (ret < 0)
		return ret;
	return vfio_uring_engine_get_fd(engine);
}
