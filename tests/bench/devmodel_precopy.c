/* SPDX-License-Identifier: MIT */
/*
 * The device model's pre-copy files (tools/bench/devmodel.h), read with plain read(2) the
 * way the engine will read a VFIO data fd in PRE_COPY: initial bytes, then ENOMSG when the
 * device has nothing, dirty bytes as the device produces them, the info's counters, then
 * stop-copy streams the rest and read() returns 0. The stream must equal the backing fd's
 * first devmodel_stream_length() bytes.
 *
 * The reads and the info run in a child process (as the engine's source side would) and
 * stop-copy is started by the model's creator (as the VMM would), with the server a third
 * process: the device state must be shared by all three.
 *
 * Timing checks are bounds that hold by construction (production is computed from
 * CLOCK_MONOTONIC, and the server sleeps at least bytes/rate): never more dirty bytes than
 * dirty_rate x elapsed, at least dirty_rate x a sleep, a paced read no faster than its rate.
 * Exits 77 when the machine cannot mount the model (no /dev/fuse, not root).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "data.h"
#include "devmodel.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

enum { F_ONLY_INITIAL, F_DIRTY, F_CAPPED, F_SOURCE, NFILES };

static const struct devmodel_file templates[NFILES] = {
	/* No dirtying: initial bytes, then ENOMSG until a reinit or stop-copy. Paced reads. */
	[F_ONLY_INITIAL] = { .kind = DEVMODEL_PRECOPY, .rate = 8 * MiB, .latency_us = 100,
			     .precopy_initial = 1 * MiB, .stop_copy_bytes = 128 * KiB },
	/* Dirties at 4 MiB/s without a cap. */
	[F_DIRTY] = { .kind = DEVMODEL_PRECOPY, .precopy_initial = 256 * KiB,
		      .dirty_rate = 4 * MiB, .stop_copy_bytes = 256 * KiB },
	/* Dirties fast, at most 32 KiB pending, until the live phase's limit (1 MiB - 64 KiB). */
	[F_CAPPED] = { .kind = DEVMODEL_PRECOPY, .dirty_rate = 10 * MiB, .dirty_max = 32 * KiB,
		       .stop_copy_bytes = 64 * KiB },
	/* A plain source beside them, unchanged. */
	[F_SOURCE] = { .kind = DEVMODEL_SOURCE },
};
static const uint64_t backing_size[NFILES] = { 2 * MiB, 16 * MiB, 1 * MiB, 300 * KiB };

static struct devmodel *model;
static int backing[NFILES];
static int to_parent[2], to_child[2];

/* Child: asks the creator to start stop-copy on file i; its devmodel_stop_copy result. */
static int ask_stop_copy(unsigned i)
{
	int r;

	if (write(to_parent[1], &i, sizeof(i)) != (ssize_t)sizeof(i) ||
	    read(to_child[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		FAIL("pipe to the creator: %s", strerror(errno));
	return r;
}

/* One read(2): bytes, or -errno. */
static ssize_t read1(int fd, uint8_t *buf, size_t len)
{
	ssize_t r;

	do {
		r = read(fd, buf, len);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Stop-copy, then reads to the end: the stream must be the backing fd's first bytes. */
static void finish(unsigned i, int fd, uint8_t *got, uint64_t *total)
{
	struct devmodel_precopy_info info;
	uint64_t len = 0;
	ssize_t r;
	uint8_t *want;

	CHECK(devmodel_stream_length(model, i, &len) == -EBUSY, "file %u: length before stop", i);
	CHECK(ask_stop_copy(i) == 0, "file %u: stop-copy", i);
	CHECK(devmodel_precopy_info(model, i, &info) == -EINVAL, "file %u: info in stop-copy", i);
	CHECK(devmodel_precopy_reinit(model, i, 4096) == -EINVAL, "file %u: reinit in stop-copy", i);
	CHECK(devmodel_stream_length(model, i, &len) == 0, "file %u: length after stop", i);
	CHECK(len >= *total + templates[i].stop_copy_bytes && len <= backing_size[i],
	      "file %u: length %llu, read %llu before stop", i, (unsigned long long)len,
	      (unsigned long long)*total);
	while ((r = read1(fd, got + *total, backing_size[i] + MiB - *total)) > 0)
		*total += (uint64_t)r;
	CHECK(r == 0, "file %u: read in stop-copy: %s", i, strerror((int)-r));
	CHECK(read1(fd, got, 4096) == 0, "file %u: a second end of stream", i);
	CHECK(*total == len, "file %u: read %llu of a stream of %llu", i,
	      (unsigned long long)*total, (unsigned long long)len);
	want = mmap(NULL, backing_size[i], PROT_READ, MAP_SHARED, backing[i], 0);
	if (want == MAP_FAILED)
		FAIL("mmap backing: %s", strerror(errno));
	CHECK(len <= backing_size[i] && !memcmp(got, want, len),
	      "file %u: the stream differs from the backing fd's first bytes", i);
	munmap(want, backing_size[i]);
}

static void check_only_initial(uint8_t *got)
{
	const unsigned i = F_ONLY_INITIAL;
	struct devmodel_precopy_info info;
	uint64_t total = 0, t0;
	ssize_t r;
	int fd;

	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.initial_bytes == 1 * MiB &&
		      info.dirty_bytes == 0 && info.stop_copy_bytes == 1 * MiB + 128 * KiB,
	      "before open: initial %llu dirty %llu stop-copy %llu",
	      (unsigned long long)info.initial_bytes, (unsigned long long)info.dirty_bytes,
	      (unsigned long long)info.stop_copy_bytes);
	fd = devmodel_open(model, i);
	if (fd < 0)
		FAIL("open: %s", strerror(-fd));
	t0 = now_ns();
	r = read1(fd, got, 2 * MiB);
	CHECK(r == (ssize_t)(1 * MiB), "initial read gave %zd, not 1 MiB", r);
	/* 1 MiB at 8 MiB/s: the server paces a pre-copy read as a source's. */
	CHECK(now_ns() - t0 >= 120000000u, "1 MiB at 8 MiB/s took %llu ns",
	      (unsigned long long)(now_ns() - t0));
	total += r > 0 ? (uint64_t)r : 0;
	CHECK(read1(fd, got + total, 4096) == -ENOMSG, "nothing produced: ENOMSG");
	CHECK(read1(fd, got + total, 4096) == -ENOMSG, "still ENOMSG");
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.initial_bytes == 0 &&
		      info.dirty_bytes == 0 && info.stop_copy_bytes == 128 * KiB && !info.flags,
	      "after the initial bytes: initial %llu dirty %llu stop-copy %llu flags %u",
	      (unsigned long long)info.initial_bytes, (unsigned long long)info.dirty_bytes,
	      (unsigned long long)info.stop_copy_bytes, info.flags);
	CHECK(devmodel_precopy_reinit(model, i, 64 * KiB) == 0, "reinit");
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.initial_bytes == 64 * KiB &&
		      info.flags == DEVMODEL_PRECOPY_REINIT,
	      "after reinit: initial %llu flags %u", (unsigned long long)info.initial_bytes,
	      info.flags);
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && !info.flags, "REINIT said twice");
	r = read1(fd, got + total, 1 * MiB);
	CHECK(r == (ssize_t)(64 * KiB), "reinit bytes: read %zd", r);
	total += r > 0 ? (uint64_t)r : 0;
	CHECK(read1(fd, got + total, 4096) == -ENOMSG, "ENOMSG after the reinit bytes");
	finish(i, fd, got, &total);
	CHECK(total == 1 * MiB + 64 * KiB + 128 * KiB, "stream of %llu bytes",
	      (unsigned long long)total);
	close(fd);
}

static void check_dirty(uint8_t *got)
{
	const unsigned i = F_DIRTY;
	const struct devmodel_file *f = &templates[i];
	const uint64_t slack = 4 * KiB;
	struct devmodel_precopy_info info;
	uint64_t total = 0, t_open, produced;
	double el;
	ssize_t r;
	int fd;

	t_open = now_ns(); /* before the open: the device starts no earlier */
	fd = devmodel_open(model, i);
	if (fd < 0)
		FAIL("open: %s", strerror(-fd));
	r = read1(fd, got, 1 * MiB);
	CHECK(r >= (ssize_t)f->precopy_initial, "first read %zd: the initial bytes", r);
	total += r > 0 ? (uint64_t)r : 0;
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.initial_bytes == 0,
	      "initial bytes left: %llu", (unsigned long long)info.initial_bytes);
	sleep_ms(200);
	CHECK(devmodel_precopy_info(model, i, &info) == 0, "info");
	el = (double)(now_ns() - t_open) * 1e-9;
	produced = total + info.initial_bytes + info.dirty_bytes;
	CHECK(info.dirty_bytes > 0, "no dirty bytes after 200 ms");
	CHECK(produced >= f->precopy_initial + (uint64_t)(0.2 * (double)f->dirty_rate * 0.99),
	      "produced %llu after 200 ms at %llu B/s", (unsigned long long)produced,
	      (unsigned long long)f->dirty_rate);
	CHECK(produced <= f->precopy_initial + (uint64_t)(el * (double)f->dirty_rate) + slack,
	      "produced %llu in %.3f s at %llu B/s", (unsigned long long)produced, el,
	      (unsigned long long)f->dirty_rate);
	CHECK(info.stop_copy_bytes == info.initial_bytes + info.dirty_bytes + f->stop_copy_bytes,
	      "stop-copy estimate %llu", (unsigned long long)info.stop_copy_bytes);
	/* The dirty bytes are there to read, and more keep coming while we read. */
	r = read1(fd, got + total, 2 * MiB);
	CHECK(r >= (ssize_t)info.dirty_bytes, "read %zd of %llu dirty bytes", r,
	      (unsigned long long)info.dirty_bytes);
	total += r > 0 ? (uint64_t)r : 0;
	el = (double)(now_ns() - t_open) * 1e-9;
	CHECK(total <= f->precopy_initial + (uint64_t)(el * (double)f->dirty_rate) + slack,
	      "read %llu in %.3f s at %llu B/s", (unsigned long long)total, el,
	      (unsigned long long)f->dirty_rate);
	finish(i, fd, got, &total);
	el = (double)(now_ns() - t_open) * 1e-9;
	CHECK(total <= f->precopy_initial + (uint64_t)(el * (double)f->dirty_rate) + slack +
			       f->stop_copy_bytes,
	      "stream of %llu after %.3f s", (unsigned long long)total, el);
	close(fd);
}

static void check_capped(uint8_t *got)
{
	const unsigned i = F_CAPPED;
	const uint64_t live_cap = 1 * MiB - 64 * KiB;
	struct devmodel_precopy_info info;
	uint64_t total = 0;
	unsigned rounds = 0;
	ssize_t r;
	int fd;

	fd = devmodel_open(model, i);
	if (fd < 0)
		FAIL("open: %s", strerror(-fd));
	sleep_ms(50); /* 500 KiB at 10 MiB/s, but at most 32 KiB pending */
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.dirty_bytes == 32 * KiB &&
		      info.initial_bytes == 0,
	      "pending dirty %llu, not the 32 KiB cap", (unsigned long long)info.dirty_bytes);
	r = read1(fd, got, 1 * MiB);
	CHECK(r == (ssize_t)(32 * KiB), "read %zd at the cap", r);
	total += r > 0 ? (uint64_t)r : 0;
	/* Until the live phase's limit: then nothing more until stop-copy. */
	while (total < live_cap && rounds++ < 200) {
		sleep_ms(10);
		r = read1(fd, got + total, 1 * MiB);
		CHECK(r > 0 && r <= (ssize_t)(32 * KiB), "round %u: read %zd", rounds, r);
		if (r <= 0)
			break;
		total += (uint64_t)r;
	}
	CHECK(total == live_cap, "live phase gave %llu, not %llu", (unsigned long long)total,
	      (unsigned long long)live_cap);
	sleep_ms(10);
	CHECK(read1(fd, got + total, 4096) == -ENOMSG, "ENOMSG at the live phase's limit");
	CHECK(devmodel_precopy_info(model, i, &info) == 0 && info.dirty_bytes == 0 &&
		      info.stop_copy_bytes == 64 * KiB,
	      "at the limit: dirty %llu stop-copy %llu", (unsigned long long)info.dirty_bytes,
	      (unsigned long long)info.stop_copy_bytes);
	finish(i, fd, got, &total);
	CHECK(total == 1 * MiB, "stream of %llu, not the whole backing fd",
	      (unsigned long long)total);
	close(fd);
}

static void check_source(uint8_t *got)
{
	struct devmodel_precopy_info info;
	uint64_t len = 0, total = 0;
	ssize_t r;
	int fd = devmodel_open(model, F_SOURCE);

	if (fd < 0)
		FAIL("open: %s", strerror(-fd));
	CHECK(devmodel_stream_length(model, F_SOURCE, &len) == 0 && len == backing_size[F_SOURCE],
	      "source length %llu", (unsigned long long)len);
	CHECK(devmodel_precopy_info(model, F_SOURCE, &info) == -EINVAL, "info of a source");
	CHECK(devmodel_stop_copy(model, F_SOURCE) == -EINVAL, "stop-copy of a source");
	while ((r = read1(fd, got + total, 1 * MiB)) > 0)
		total += (uint64_t)r;
	CHECK(r == 0 && total == len, "source gave %llu then %zd", (unsigned long long)total, r);
	close(fd);
}

static int child_main(void)
{
	uint8_t *got = malloc(17 * MiB);
	unsigned done = UINT_MAX;

	if (!got)
		FAIL("out of memory");
	check_only_initial(got);
	check_dirty(got);
	check_capped(got);
	check_source(got);
	free(got);
	if (write(to_parent[1], &done, sizeof(done)) != (ssize_t)sizeof(done))
		FAIL("pipe: %s", strerror(errno));
	return check_result();
}

int main(void)
{
	struct devmodel_file files[NFILES];
	char why[256];
	unsigned i;
	int status;
	pid_t child;

	if (devmodel_available(why, sizeof(why))) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	for (i = 0; i < NFILES; i++) {
		backing[i] = pattern_memfd("precopy", MFD_CLOEXEC, backing_size[i],
					   0x9e3779b97f4a7c15ull * (i + 1));
		if (backing[i] < 0)
			FAIL("memfd: %s", strerror(-backing[i]));
		files[i] = templates[i];
		files[i].backing_fd = backing[i];
	}
	{
		/* stop_copy_bytes beyond the backing fd: refused. */
		struct devmodel_file bad = files[F_CAPPED];
		struct devmodel *m;

		bad.stop_copy_bytes = backing_size[F_CAPPED] + 1;
		CHECK(devmodel_create(&bad, 1, &m, why, sizeof(why)) == -EINVAL && !m,
		      "stop_copy_bytes > backing size accepted");
	}
	if (devmodel_create(files, NFILES, &model, why, sizeof(why)))
		FAIL("devmodel_create: %s", why);
	if (pipe2(to_parent, O_CLOEXEC) < 0 || pipe2(to_child, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child < 0)
		FAIL("fork: %s", strerror(errno));
	if (child == 0)
		_exit(child_main());
	/* The VMM's part: start stop-copy when the child asks, from this other process. */
	while (read(to_parent[0], &i, sizeof(i)) == (ssize_t)sizeof(i) && i != UINT_MAX) {
		int r = devmodel_stop_copy(model, i);

		CHECK(devmodel_stop_copy(model, i) == -EALREADY, "file %u: second stop-copy", i);
		if (write(to_child[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			FAIL("pipe: %s", strerror(errno));
	}
	if (waitpid(child, &status, 0) != child)
		FAIL("waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reading process failed (%d)",
	      status);
	CHECK(devmodel_destroy(model, NULL) == 0, "the server did not exit cleanly");
	for (i = 0; i < NFILES; i++)
		close(backing[i]);
	return check_result();
}
