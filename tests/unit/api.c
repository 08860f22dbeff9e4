/* SPDX-License-Identifier: MIT */
/*
 * The public API's contract: argument checks, the multifd switch (ON/OFF/AUTO, sampled at
 * start), statistics and reset, cancel, and two engines in one thread over a socketpair.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vfio-uring.h"

#include "check.h"


static struct vfio_uring_engine *engine(enum vfio_uring_side side)
{
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine *e = NULL;
	int ret;

	vfio_uring_engine_opts_init(&opts, side);
	opts.progress_timeout_ms = 10000;
	ret = vfio_uring_engine_create(&opts, &e);
	if (ret) {
		fprintf(stderr, "create: %s\n", strerror(-ret));
		exit(1);
	}
	return e;
}

static struct vfio_uring_device *device(struct vfio_uring_engine *e, const char *idstr, int fd,
					enum vfio_uring_multifd_mode mode)
{
	struct vfio_uring_device_opts o;
	struct vfio_uring_device *dev = NULL;

	vfio_uring_device_opts_init(&o);
	o.idstr = idstr;
	o.data_fd = fd;
	o.multifd = mode;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == 0, "add_device %s", idstr);
	return dev;
}

static enum vfio_uring_device_state state(const struct vfio_uring_device *dev)
{
	struct vfio_uring_device_status st;

	vfio_uring_device_get_status(dev, &st, sizeof(st));
	return st.state;
}

/* Runs two engines in this thread until both finish; returns their results. */
static void run_pair(struct vfio_uring_engine *src, struct vfio_uring_engine *dst, int *rs, int *rd)
{
	*rs = *rd = 0;
	for (int i = 0; i < 100000 && (!*rs || !*rd); i++) {
		if (!*rs)
			*rs = vfio_uring_engine_process(src);
		if (!*rd)
			*rd = vfio_uring_engine_process(dst);
		if (i > 10)
			usleep(100);
	}
	/* drain anything still in flight after a failure */
	if (*rs < 0)
		*rs = vfio_uring_engine_run(src, 5000);
	if (*rd < 0)
		*rd = vfio_uring_engine_run(dst, 5000);
}

static void test_create_args(void)
{
	struct vfio_uring_engine_opts o;
	struct vfio_uring_engine *e;

	vfio_uring_engine_opts_init(&o, VFIO_URING_SOURCE);
	CHECK(o.buffer_cap == 64u << 20 && o.chunk_size == 1u << 20 && o.size == sizeof(o),
	      "defaults");
	o.chunk_size = 0;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "chunk 0");
	vfio_uring_engine_opts_init(&o, VFIO_URING_SOURCE);
	o.chunk_size = o.buffer_cap;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "chunk + headers above the cap");
	vfio_uring_engine_opts_init(&o, VFIO_URING_DESTINATION);
	o.max_packet_size = o.buffer_cap + 1;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "max packet above the cap");
	vfio_uring_engine_opts_init(&o, VFIO_URING_DESTINATION);
	o.side = 7;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "side");
	vfio_uring_engine_opts_init(&o, VFIO_URING_DESTINATION);
	o.flags = 1u << 30;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "unknown flag");
	vfio_uring_engine_opts_init(&o, VFIO_URING_DESTINATION);
	o.size = 8;
	CHECK(vfio_uring_engine_create(&o, &e) == -EINVAL, "opts size too small");
	CHECK(vfio_uring_engine_create(NULL, &e) == -EINVAL, "NULL opts");
	vfio_uring_engine_destroy(NULL);
}

static void test_registration(void)
{
	struct vfio_uring_engine *e = engine(VFIO_URING_SOURCE);
	struct vfio_uring_device_opts o;
	struct vfio_uring_device *dev;
	int sv[2], memfd = memfd_create("x", 0);
	char long_id[300];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	CHECK(vfio_uring_engine_add_channel(e, memfd) == -ENOTSOCK, "memfd is not a socket");
	CHECK(vfio_uring_engine_add_channel(e, -1) == -EBADF, "bad fd");
	CHECK(vfio_uring_engine_add_channel(e, sv[0]) == 0, "channel 0");
	vfio_uring_device_opts_init(&o);
	o.data_fd = memfd;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == -EINVAL, "NULL idstr");
	o.idstr = "";
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == -EINVAL, "empty idstr");
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = 0;
	o.idstr = long_id;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == -EINVAL, "idstr of 299 bytes");
	long_id[255] = 0;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == 0, "idstr of 255 bytes");
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == -EEXIST, "same idstr and instance");
	o.instance_id = 1;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == 0, "same idstr, other instance");
	CHECK(strcmp(vfio_uring_device_idstr(dev), long_id) == 0 &&
	      vfio_uring_device_instance_id(dev) == 1, "accessors");
	o.data_fd = -1;
	o.instance_id = 2;
	CHECK(vfio_uring_engine_add_device(e, &o, &dev) == -EINVAL, "no data fd");
	CHECK(vfio_uring_engine_switchover_start(e) == -EINVAL, "switchover on a source");
	CHECK(vfio_uring_engine_process(e) == -EINVAL, "process before start");
	vfio_uring_engine_destroy(e);
	close(sv[0]);
	close(sv[1]);
	close(memfd);
}

static void test_multifd_switch(void)
{
	struct vfio_uring_engine *e;
	struct vfio_uring_device *a, *b;
	struct vfio_uring_device_status st;
	const char *msg;
	int fd = memfd_create("x", 0);

	/* No channel: AUTO means OFF; ON is an error at start naming the device. */
	e = engine(VFIO_URING_SOURCE);
	a = device(e, "auto-dev", fd, VFIO_URING_MULTIFD_AUTO);
	b = device(e, "on-dev", fd, VFIO_URING_MULTIFD_ON);
	CHECK(vfio_uring_engine_start(e) == -EINVAL, "ON without a channel");
	vfio_uring_engine_error(e, &msg);
	CHECK(strstr(msg, "on-dev") != NULL, "message names the device: %s", msg);
	CHECK(vfio_uring_device_set_multifd(b, VFIO_URING_MULTIFD_OFF) == 0, "switch before start");
	CHECK(vfio_uring_engine_start(e) == 0, "start");
	CHECK(state(a) == VFIO_URING_DEVICE_NOT_MULTIFD && state(b) == VFIO_URING_DEVICE_NOT_MULTIFD,
	      "AUTO without channels and OFF are left to the caller");
	vfio_uring_device_get_status(a, &st, sizeof(st));
	CHECK(strcmp(vfio_uring_device_state_name(st.state), "not-multifd") == 0, "state name");
	CHECK(vfio_uring_device_set_multifd(a, VFIO_URING_MULTIFD_ON) == -EBUSY, "switch after start");
	CHECK(vfio_uring_engine_run(e, 1000) == 0, "nothing to move: done at once");
	CHECK(vfio_uring_engine_start(e) == -EBUSY, "second start");
	vfio_uring_engine_destroy(e);
	close(fd);
}

static void test_pair_and_stats(void)
{
	struct vfio_uring_engine *src = engine(VFIO_URING_SOURCE), *dst = engine(VFIO_URING_DESTINATION);
	struct vfio_uring_device *s_on, *s_off, *d_on, *d_off;
	struct vfio_uring_engine_stats st;
	struct vfio_uring_channel_stats cs;
	int sv[2], rs, rd;
	int src_fd = memfd_create("s", 0), dst_fd = memfd_create("d", 0), other = memfd_create("o", 0);

	if (write(src_fd, "hello, device", 13) != 13)
		exit(1);
	lseek(src_fd, 0, SEEK_SET);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	vfio_uring_engine_add_channel(src, sv[0]);
	vfio_uring_engine_add_channel(dst, sv[1]);
	s_on = device(src, "dev-on", src_fd, VFIO_URING_MULTIFD_AUTO);
	s_off = device(src, "dev-off", other, VFIO_URING_MULTIFD_OFF);
	d_on = device(dst, "dev-on", dst_fd, VFIO_URING_MULTIFD_ON);
	d_off = device(dst, "dev-off", other, VFIO_URING_MULTIFD_OFF);
	CHECK(vfio_uring_engine_start(src) == 0 && vfio_uring_engine_start(dst) == 0, "start");
	CHECK(vfio_uring_engine_get_fd(dst) >= 0, "pollable fd");
	vfio_uring_engine_switchover_start(dst);
	run_pair(src, dst, &rs, &rd);
	CHECK(rs == 1 && rd == 1, "both done: %d %d", rs, rd);
	CHECK(vfio_uring_engine_reason(src) == VFIO_URING_REASON_NONE &&
	      vfio_uring_engine_reason(dst) == VFIO_URING_REASON_NONE &&
	      vfio_uring_engine_reason(NULL) == VFIO_URING_REASON_NONE, "no failure, no reason");
	CHECK(state(s_on) == VFIO_URING_DEVICE_DONE && state(d_on) == VFIO_URING_DEVICE_DONE &&
	      state(s_off) == VFIO_URING_DEVICE_NOT_MULTIFD && state(d_off) == VFIO_URING_DEVICE_NOT_MULTIFD,
	      "states");
	CHECK(lseek(dst_fd, 0, SEEK_END) == 13, "13 bytes arrived");
	vfio_uring_engine_get_stats(dst, &st, sizeof(st));
	/* data packet 12 + 13, config packet 12 + 16 (empty blob) */
	CHECK(st.packets == 2 && st.bytes == 53 && st.wire_bytes == 64 + 2 * 276 + 53,
	      "destination stats %llu %llu %llu", (unsigned long long)st.packets,
	      (unsigned long long)st.bytes, (unsigned long long)st.wire_bytes);
	CHECK(vfio_uring_engine_get_channel_stats(src, 0, &cs, sizeof(cs)) == 0 && cs.packets == 2 &&
	      cs.wire_bytes == st.wire_bytes, "source channel stats");
	CHECK(vfio_uring_engine_get_channel_stats(src, 1, &cs, sizeof(cs)) == -ENOENT, "no channel 1");
	vfio_uring_engine_reset_stats(src);
	vfio_uring_engine_get_stats(src, &st, sizeof(st));
	CHECK(st.packets == 0 && st.bytes == 0 && st.wire_bytes == 0, "reset");
	vfio_uring_engine_destroy(src);
	vfio_uring_engine_destroy(dst);
	close(sv[0]);
	close(sv[1]);
	close(src_fd);
	close(dst_fd);
	close(other);
}

/* A packet for a device whose destination switch is OFF is an error naming it. */
static void test_packet_for_off_device(void)
{
	struct vfio_uring_engine *src = engine(VFIO_URING_SOURCE), *dst = engine(VFIO_URING_DESTINATION);
	struct vfio_uring_device *d;
	struct vfio_uring_device_status st;
	const char *msg;
	int sv[2], rs, rd, fd = memfd_create("x", 0);

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	vfio_uring_engine_add_channel(src, sv[0]);
	vfio_uring_engine_add_channel(dst, sv[1]);
	device(src, "gpu0", fd, VFIO_URING_MULTIFD_ON);
	device(src, "nic0", fd, VFIO_URING_MULTIFD_ON);
	d = device(dst, "gpu0", fd, VFIO_URING_MULTIFD_OFF);
	device(dst, "nic0", fd, VFIO_URING_MULTIFD_ON); /* keeps the destination waiting */
	vfio_uring_engine_start(src);
	vfio_uring_engine_start(dst);
	vfio_uring_engine_switchover_start(dst);
	run_pair(src, dst, &rs, &rd);
	CHECK(rd == -EPERM && vfio_uring_engine_reason(dst) == VFIO_URING_REASON_PKT_NOT_MULTIFD,
	      "destination error %d, reason %s", rd,
	      vfio_uring_reason_name(vfio_uring_engine_reason(dst)));
	vfio_uring_engine_error(dst, &msg);
	CHECK(strstr(msg, "gpu0") && strstr(msg, "channel 0") && strstr(msg, "destination"),
	      "message: %s", msg);
	vfio_uring_device_get_status(d, &st, sizeof(st));
	CHECK(st.state == VFIO_URING_DEVICE_NOT_MULTIFD && st.reason == VFIO_URING_REASON_NONE,
	      "the OFF device is untouched");
	vfio_uring_engine_destroy(src);
	vfio_uring_engine_destroy(dst);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

static int done_error = 1;

static void on_done(void *opaque, int error)
{
	(void)opaque;
	done_error = error;
}

/* Cancel mid-transfer: the device fails with -ECANCELED, its done callback says so. */
static void test_cancel(void)
{
	struct vfio_uring_engine *src = engine(VFIO_URING_SOURCE);
	struct vfio_uring_device_opts o;
	struct vfio_uring_device *dev;
	struct vfio_uring_device_status st;
	int sv[2], fd = memfd_create("big", 0);

	if (ftruncate(fd, 64 << 20))
		exit(1);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv); /* nobody reads sv[1]: the sends block */
	vfio_uring_engine_add_channel(src, sv[0]);
	vfio_uring_device_opts_init(&o);
	o.idstr = "nic0";
	o.data_fd = fd;
	o.done = on_done;
	vfio_uring_engine_add_device(src, &o, &dev);
	vfio_uring_engine_start(src);
	CHECK(vfio_uring_engine_run(src, 200) == -ETIMEDOUT, "blocked transfer times out the run call");
	CHECK(vfio_uring_engine_cancel(src) == 0, "cancel");
	CHECK(vfio_uring_engine_run(src, 5000) == -ECANCELED, "run after cancel");
	vfio_uring_device_get_status(dev, &st, sizeof(st));
	CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -ECANCELED && done_error == -ECANCELED,
	      "device failed with -ECANCELED (%d, %d)", st.error, done_error);
	CHECK(vfio_uring_engine_reason(src) == VFIO_URING_REASON_CANCELLED &&
	      st.reason == VFIO_URING_REASON_FALLOUT, "reasons: engine %s, device %s",
	      vfio_uring_reason_name(vfio_uring_engine_reason(src)), vfio_uring_reason_name(st.reason));
	vfio_uring_engine_destroy(src);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

/* A peer that sends nothing: the progress timeout fails the run and names what stalled. */
static void test_progress_timeout_names_the_wait(void)
{
	struct vfio_uring_engine_opts opts;
	struct vfio_uring_engine *dst;
	struct vfio_uring_device *dev;
	struct vfio_uring_device_status st;
	const char *msg;
	int sv[2], fd = memfd_create("d", 0);

	vfio_uring_engine_opts_init(&opts, VFIO_URING_DESTINATION);
	opts.progress_timeout_ms = 200;
	CHECK(vfio_uring_engine_create(&opts, &dst) == 0, "create");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv); /* sv[0] stays silent */
	vfio_uring_engine_add_channel(dst, sv[1]);
	dev = device(dst, "nic0", fd, VFIO_URING_MULTIFD_ON);
	vfio_uring_engine_start(dst);
	vfio_uring_engine_switchover_start(dst); /* the timeout runs from switchover start */
	CHECK(vfio_uring_engine_run(dst, 5000) == -ETIMEDOUT, "run fails with -ETIMEDOUT");
	vfio_uring_engine_error(dst, &msg);
	CHECK(strstr(msg, "no progress for 200 ms") && strstr(msg, "channel 0 (receive)"),
	      "message names the stalled channel: %s", msg);
	vfio_uring_device_get_status(dev, &st, sizeof(st));
	CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -ECANCELED &&
	      st.reason == VFIO_URING_REASON_FALLOUT, "device failed as a consequence (%d, %s)",
	      st.error, vfio_uring_reason_name(st.reason));
	CHECK(vfio_uring_engine_reason(dst) == VFIO_URING_REASON_PROGRESS_TIMEOUT, "engine reason %s",
	      vfio_uring_reason_name(vfio_uring_engine_reason(dst)));
	vfio_uring_engine_destroy(dst);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

int main(void)
{
	test_create_args();
	test_registration();
	test_multifd_switch();
	test_pair_and_stats();
	test_packet_for_off_device();
	test_cancel();
	test_progress_timeout_names_the_wait();
	return check_result();
}
