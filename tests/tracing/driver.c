// SPDX-License-Identifier: MIT
/*
 * tracing-driver: a migration of known size between two processes, for the tracing tests.
 *
 * The parent is the destination, a forked child the source; they talk over AF_UNIX
 * socketpairs (one per channel). Each device's data is a memfd of a known size filled with
 * a pattern; its config blob has a known length. Both processes set up their engines, then
 * the driver prints
 *     pids source=PID destination=PID
 * and waits for a line on stdin ("go") before starting, so that tracers can attach first.
 * At the end it checks the data that arrived and prints one JSON object: each side's
 * library counters (vfio_uring_device_get_status, vfio_uring_engine_get_stats,
 * vfio_uring_engine_get_channel_stats) and the bytes the workload must produce:
 *     per data packet 12 (VFIO header) + chunk; config packet 12 + 8 + config + 8.
 *
 * usage: tracing-driver [-d DEVICES] [-c CHANNELS] [-s BYTES] [-k CHUNK] [-n] [-F]
 *   -s is device 0's size; device i has i * 4099 bytes more (so the last chunks differ);
 *   -n starts at once, without waiting for stdin;
 *   -F the destination's load_config of the last device fails with -EBADMSG: the driver
 *      then prints {"failed":{pid, error, message, idstr, instance_id}} and exits 0 if
 *      the destination failed with exactly that.
 * Exit: 0 when the migration worked and the data and counters are right, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "vfio-uring.h"

#define MAX_DEVICES 16
#define MAX_CHANNELS 32
#define CONFIG_BASE 100

struct device {
	char idstr[64];
	uint32_t instance_id;
	uint64_t size;
	int src_fd;
	int dst_fd;
	uint8_t config[CONFIG_BASE + MAX_DEVICES];
	size_t config_len;
	size_t config_loaded; /* destination: length handed to load_config, +1 */
	struct vfio_uring_device *dev;
};

static struct {
	unsigned ndevices, nchannels;
	uint64_t size;
	size_t chunk;
	bool wait_go;
	bool fail_config;
	struct device devices[MAX_DEVICES];
	int src_socks[MAX_CHANNELS], dst_socks[MAX_CHANNELS];
} w = { .ndevices = 3, .nchannels = 4, .size = 8u << 20, .chunk = 1u << 20, .wait_go = true };

static void fail(const char *side, const char *what, int err)
{
	fprintf(stderr, "tracing-driver %s: %s: %s\n", side, what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint8_t pattern(unsigned dev, uint64_t off)
{
	return (uint8_t)(dev * 131 + off * 7 + (off >> 12));
}

static int make_data_fd(unsigned i, uint64_t size)
{
	static uint8_t buf[1 << 16];
	int fd = memfd_create("tracing-device", MFD_CLOEXEC);

	if (fd < 0)
		fail("setup", "memfd_create", errno);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		for (size_t j = 0; j < n; j++)
			buf[j] = pattern(i, off + j);
		if (write(fd, buf, n) != (ssize_t)n)
			fail("setup", "writing a memfd", errno);
		off += n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		fail("setup", "lseek", errno);
	return fd;
}

/* What the library must count for a device: QEMU's vfio.transferred. */
static uint64_t expected_bytes(const struct device *d, uint64_t *packets)
{
	uint64_t data_packets = (d->size + w.chunk - 1) / w.chunk;

	*packets = data_packets + 1;
	return d->size + 12 * data_packets + 12 + 8 + d->config_len + 8;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct device *d = opaque;

	*data = d->config;
	*len = d->config_len;
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct device *d = opaque;

	if (w.fail_config && d == &w.devices[w.ndevices - 1])
		return -EBADMSG;
	if (len != d->config_len || memcmp(data, d->config, len))
		return -EBADMSG;
	d->config_loaded = len + 1;
	return 0;
}

static void print_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* One side's counters, as a JSON object. */
static void print_side(FILE *f, struct vfio_uring_engine *e, const char *side,
		       uint64_t elapsed_ns)
{
	struct vfio_uring_engine_stats st;
	int err;

	err = vfio_uring_engine_get_stats(e, &st, sizeof(st));
	if (err)
		fail(side, "vfio_uring_engine_get_stats", err);
	fprintf(f, "{\"pid\":%d,\"elapsed_ns\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"packets\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"devices\":[", getpid(),
		elapsed_ns, st.bytes, st.packets, st.wire_bytes);
	for (unsigned i = 0; i < w.ndevices; i++) {
		struct vfio_uring_device_status ds;

		err = vfio_uring_device_get_status(w.devices[i].dev, &ds, sizeof(ds));
		if (err)
			fail(side, "vfio_uring_device_get_status", err);
		fprintf(f, "%s{\"idstr\":", i ? "," : "");
		print_json_string(f, w.devices[i].idstr);
		fprintf(f, ",\"instance_id\":%u,\"state\":\"%s\",\"bytes\":%" PRIu64
			",\"data_bytes\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
			w.devices[i].instance_id, vfio_uring_device_state_name(ds.state), ds.bytes,
			ds.data_bytes, ds.packets);
	}
	fprintf(f, "],\"channels\":[");
	for (unsigned c = 0; c < w.nchannels; c++) {
		struct vfio_uring_channel_stats cs;

		err = vfio_uring_engine_get_channel_stats(e, c, &cs, sizeof(cs));
		if (err)
			fail(side, "vfio_uring_engine_get_channel_stats", err);
		fprintf(f, "%s{\"channel\":%u,\"wire_bytes\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
			c ? "," : "", c, cs.wire_bytes, cs.packets);
	}
	fprintf(f, "]}");
}

static struct vfio_uring_engine *setup_engine(enum vfio_uring_side side)
{
	const char *name = side == VFIO_URING_SOURCE ? "source" : "destination";
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *e;
	int err;

	vfio_uring_engine_opts_init(&eo, side);
	memcpy(eo.uuid, "vfio-uring-trace", 16);
	eo.chunk_size = w.chunk;
	eo.max_packet_size = w.chunk + 64;
	eo.progress_timeout_ms = 30000;
	err = vfio_uring_engine_create(&eo, &e);
	if (err)
		fail(name, "vfio_uring_engine_create", err);
	for (unsigned c = 0; c < w.nchannels; c++) {
		err = vfio_uring_engine_add_channel(e, side == VFIO_URING_SOURCE ? w.src_socks[c]
										 : w.dst_socks[c]);
		if (err < 0)
			fail(name, "vfio_uring_engine_add_channel", err);
	}
	for (unsigned i = 0; i < w.ndevices; i++) {
		struct device *d = &w.devices[i];
		struct vfio_uring_device_opts dopts;

		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = d->idstr;
		dopts.instance_id = d->instance_id;
		dopts.data_fd = side == VFIO_URING_SOURCE ? d->src_fd : d->dst_fd;
		dopts.multifd = VFIO_URING_MULTIFD_ON;
		dopts.save_config = save_config;
		dopts.load_config = load_config;
		dopts.opaque = d;
		err = vfio_uring_engine_add_device(e, &dopts, &d->dev);
		if (err)
			fail(name, "vfio_uring_engine_add_device", err);
	}
	return e;
}

/* Runs the migration; returns how long it took (start to done), for the curious. */
static uint64_t run_engine(struct vfio_uring_engine *e, const char *name)
{
	const char *msg = NULL;
	uint64_t t0 = now_ns();
	int err = vfio_uring_engine_start(e);

	if (err)
		fail(name, "vfio_uring_engine_start", err);
	if (!strcmp(name, "destination")) {
		err = vfio_uring_engine_switchover_start(e);
		if (err)
			fail(name, "vfio_uring_engine_switchover_start", err);
	}
	err = vfio_uring_engine_run(e, -1);
	if (err && w.fail_config)
		return 0; /* the caller checks the error */
	if (err) {
		vfio_uring_engine_error(e, &msg);
		fprintf(stderr, "tracing-driver %s: migration failed: %s (%s)\n", name,
			strerror(-err), msg ? msg : "");
		exit(1);
	}
	return now_ns() - t0;
}

/* Destination: the data fds hold exactly what the source had, and the configs arrived. */
static void check_data(void)
{
	static uint8_t buf[1 << 16];

	for (unsigned i = 0; i < w.ndevices; i++) {
		struct device *d = &w.devices[i];
		uint64_t off = 0;
		ssize_t n;

		if (d->config_loaded != d->config_len + 1) {
			fprintf(stderr, "tracing-driver: %s: config not loaded\n", d->idstr);
			exit(1);
		}
		while ((n = pread(d->dst_fd, buf, sizeof(buf), off)) > 0) {
			for (ssize_t j = 0; j < n; j++)
				if (buf[j] != pattern(i, off + j)) {
					fprintf(stderr, "tracing-driver: %s: wrong byte at %" PRIu64 "\n",
						d->idstr, off + j);
					exit(1);
				}
			off += n;
		}
		if (n < 0)
			fail("destination", "pread", errno);
		if (off != d->size) {
			fprintf(stderr, "tracing-driver: %s: %" PRIu64 " bytes arrived, not %" PRIu64 "\n",
				d->idstr, off, d->size);
			exit(1);
		}
	}
}

static void parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "d:c:s:k:nF")) != -1) {
		switch (c) {
		case 'd':
			w.ndevices = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			w.nchannels = strtoul(optarg, NULL, 0);
			break;
		case 's':
			w.size = strtoull(optarg, NULL, 0);
			break;
		case 'k':
			w.chunk = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			w.wait_go = false;
			break;
		case 'F':
			w.fail_config = true;
			break;
		default:
			fprintf(stderr, "usage: tracing-driver [-d DEVICES] [-c CHANNELS] [-s BYTES] "
				"[-k CHUNK] [-n] [-F]\n");
			exit(2);
		}
	}
	if (!w.ndevices || w.ndevices > MAX_DEVICES || !w.nchannels ||
	    w.nchannels > MAX_CHANNELS || !w.chunk) {
		fprintf(stderr, "tracing-driver: 1-%d devices, 1-%d channels, chunk > 0\n",
			MAX_DEVICES, MAX_CHANNELS);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	int go[2], result[2], status;
	uint64_t total = 0, total_packets = 0, elapsed;
	struct vfio_uring_engine *e;
	char line[64], *json = NULL;
	size_t json_len = 0;
	FILE *out;
	pid_t child;

	parse_args(argc, argv);
	for (unsigned i = 0; i < w.ndevices; i++) {
		struct device *d = &w.devices[i];

		snprintf(d->idstr, sizeof(d->idstr), "0000:00:%02x.0/vfio", 2 + i);
		d->instance_id = i % 2;
		d->size = w.size + i * 4099ull;
		d->config_len = CONFIG_BASE + i;
		for (size_t j = 0; j < d->config_len; j++)
			d->config[j] = (uint8_t)(i + j);
		d->src_fd = make_data_fd(i, d->size);
		d->dst_fd = memfd_create("tracing-device-dst", MFD_CLOEXEC);
		if (d->dst_fd < 0)
			fail("setup", "memfd_create", errno);
	}
	for (unsigned c = 0; c < w.nchannels; c++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			fail("setup", "socketpair", errno);
		w.src_socks[c] = sv[0];
		w.dst_socks[c] = sv[1];
	}
	if (pipe(go) || pipe(result))
		fail("setup", "pipe", errno);
	fflush(stdout);

	child = fork();
	if (child < 0)
		fail("setup", "fork", errno);
	if (child == 0) {
		/* source */
		char c;

		close(go[1]);
		close(result[0]);
		for (unsigned i = 0; i < w.nchannels; i++)
			close(w.dst_socks[i]);
		e = setup_engine(VFIO_URING_SOURCE);
		if (read(go[0], &c, 1) != 1)
			exit(1); /* the destination gave up */
		elapsed = run_engine(e, "source");
		out = fdopen(result[1], "w");
		if (!out)
			fail("source", "fdopen", errno);
		print_side(out, e, "source", elapsed);
		fclose(out);
		vfio_uring_engine_destroy(e);
		exit(0);
	}

	/* destination */
	close(go[0]);
	close(result[1]);
	for (unsigned i = 0; i < w.nchannels; i++)
		close(w.src_socks[i]);
	e = setup_engine(VFIO_URING_DESTINATION);
	printf("pids source=%d destination=%d\n", child, getpid());
	fflush(stdout);
	if (w.wait_go && !fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "tracing-driver: no go on stdin\n");
		kill(child, SIGKILL);
		exit(1);
	}
	if (write(go[1], "g", 1) != 1)
		fail("destination", "starting the source", errno);
	close(go[1]);
	elapsed = run_engine(e, "destination");
	if (w.fail_config) {
		struct device *d = &w.devices[w.ndevices - 1];
		const char *msg = "";
		int err = vfio_uring_engine_error(e, &msg);

		waitpid(child, &status, 0); /* the source may fail too: not our subject */
		printf("{\"failed\":{\"pid\":%d,\"error\":%d,\"message\":", getpid(), err);
		print_json_string(stdout, msg ? msg : "");
		printf(",\"idstr\":\"%s\",\"instance_id\":%u}}\n", d->idstr, d->instance_id);
		vfio_uring_engine_destroy(e);
		return err == -EBADMSG ? 0 : 1;
	}
	check_data();

	/* the source's counters, then its exit status */
	out = open_memstream(&json, &json_len);
	if (!out)
		fail("destination", "open_memstream", errno);
	for (;;) {
		char buf[4096];
		ssize_t n = read(result[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("destination", "reading the source's counters", errno);
		if (n == 0)
			break;
		fwrite(buf, 1, n, out);
	}
	fclose(out);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "tracing-driver: the source failed\n");
		exit(1);
	}

	printf("{\"source\":%s,\"destination\":", json_len ? json : "null");
	print_side(stdout, e, "destination", elapsed);
	printf(",\"expected\":{\"devices\":[");
	for (unsigned i = 0; i < w.ndevices; i++) {
		uint64_t packets, bytes = expected_bytes(&w.devices[i], &packets);

		total += bytes;
		total_packets += packets;
		printf("%s{\"idstr\":\"%s\",\"instance_id\":%u,\"size\":%" PRIu64
		       ",\"config_len\":%zu,\"bytes\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
		       i ? "," : "", w.devices[i].idstr, w.devices[i].instance_id,
		       w.devices[i].size, w.devices[i].config_len, bytes, packets);
	}
	printf("],\"bytes\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"channels\":%u}}\n", total,
	       total_packets, w.nchannels);
	free(json);
	vfio_uring_engine_destroy(e);
	for (unsigned i = 0; i < w.ndevices; i++) {
		close(w.devices[i].src_fd);
		close(w.devices[i].dst_fd);
	}
	for (unsigned c = 0; c < w.nchannels; c++)
		close(w.dst_socks[c]);
	return 0;
}
