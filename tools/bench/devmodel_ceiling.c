/* SPDX-License-Identifier: MIT */
/*
 * devmodel-ceiling: how fast the device model itself goes, with no engine and no network.
 * N devices, each read (source file) and written (sink file) at once by threads of this
 * process in 1 MiB page-aligned requests; prints the time against the ideal (size/rate),
 * the aggregate throughput and the server's CPU per GiB. Use it to pick a device-bound
 * profile well below what the model sustains on a machine.
 *
 * usage: devmodel-ceiling DEVICES SIZE_MIB [RATE_MIB_S]   (no rate: unpaced)
 * Exit 0, 1 on error, 77 when the model cannot run here.
 */
#include "devmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REQ (1u << 20)

struct worker {
	pthread_t thread;
	int fd;
	bool sink;
	uint64_t size;
	int err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = aligned_alloc(4096, REQ);
	uint64_t done = 0;

	if (!buf) {
		w->err = ENOMEM;
		return NULL;
	}
	memset(buf, 0x5a, REQ);
	while (done < w->size) {
		ssize_t n = w->sink ? write(w->fd, buf, REQ) : read(w->fd, buf, REQ);

		if (n <= 0) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		done += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct devmodel_file *files;
	struct devmodel_stats st;
	struct worker *w;
	struct devmodel *m;
	unsigned n;
	uint64_t size, rate;
	double t0, secs, gib;
	char why[256];

	if (argc < 3) {
		fprintf(stderr, "usage: devmodel-ceiling DEVICES SIZE_MIB [RATE_MIB_S]\n");
		return 2;
	}
	n = (unsigned)atoi(argv[1]);
	size = strtoull(argv[2], NULL, 0) << 20;
	rate = argc > 3 ? strtoull(argv[3], NULL, 0) << 20 : 0;
	if (!n || !size) {
		fprintf(stderr, "devmodel-ceiling: DEVICES and SIZE_MIB must be > 0\n");
		return 2;
	}
	if (devmodel_available(why, sizeof(why))) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	files = calloc(2 * (size_t)n, sizeof(*files));
	w = calloc(2 * (size_t)n, sizeof(*w));
	if (!files || !w)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		int src = memfd_create("ceiling-src", MFD_CLOEXEC);
		int dst = memfd_create("ceiling-dst", MFD_CLOEXEC);

		/* Pages that exist, as the bench's memfds (fallocate: outside the measurement). */
		if (src < 0 || dst < 0 || fallocate(src, 0, 0, (off_t)size) < 0 ||
		    fallocate(dst, 0, 0, (off_t)size) < 0) {
			perror("devmodel-ceiling: memfd");
			return 1;
		}
		files[2 * i] = (struct devmodel_file){ .kind = DEVMODEL_SOURCE, .backing_fd = src,
						       .rate = rate };
		files[2 * i + 1] = (struct devmodel_file){ .kind = DEVMODEL_SINK, .backing_fd = dst,
							   .rate = rate };
	}
	if (devmodel_create(files, 2 * n, &m, why, sizeof(why))) {
		fprintf(stderr, "devmodel-ceiling: %s\n", why);
		return 1;
	}
	for (unsigned i = 0; i < 2 * n; i++) {
		w[i] = (struct worker){ .fd = devmodel_open(m, i), .sink = i % 2, .size = size };
		if (w[i].fd < 0) {
			fprintf(stderr, "devmodel-ceiling: open: %s\n", strerror(-w[i].fd));
			return 1;
		}
	}
	t0 = now_s();
	for (unsigned i = 0; i < 2 * n; i++)
		if (pthread_create(&w[i].thread, NULL, run, &w[i]))
			return 1;
	for (unsigned i = 0; i < 2 * n; i++)
		pthread_join(w[i].thread, NULL);
	secs = now_s() - t0;
	for (unsigned i = 0; i < 2 * n; i++) {
		if (w[i].err) {
			fprintf(stderr, "devmodel-ceiling: file %u: %s\n", i, strerror(w[i].err));
			return 1;
		}
		close(w[i].fd);
	}
	devmodel_destroy(m, &st);
	gib = 2.0 * n * (double)size / (1u << 30);
	printf("%u devices x %llu MiB, each read and written at once, ", n,
	       (unsigned long long)(size >> 20));
	if (rate)
		printf("paced at %llu MiB/s: %.3f s = %.2fx the ideal %.3f s; ",
		       (unsigned long long)(rate >> 20), secs, secs / ((double)size / rate),
		       (double)size / rate);
	else
		printf("unpaced: %.3f s; ", secs);
	printf("%.2f GB/s read + written; server CPU %.2f s = %.3f s per GiB moved; "
	       "at once: %llu reads, %llu writes\n", 2.0 * n * (double)size / secs / 1e9, st.cpu_s,
	       st.cpu_s / gib, (unsigned long long)st.reads_peak,
	       (unsigned long long)st.writes_peak);
	free(files);
	free(w);
	return 0;
}
