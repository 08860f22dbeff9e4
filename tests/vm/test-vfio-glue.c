/* SPDX-License-Identifier: MIT */
/*
 * The save/load glue (vfio_uring_vfio_save_add/_finish, _load_add/_finish) with real engines
 * over a UNIX socketpair (2 channels) and fake VFIO devices on both sides (fake-vfio.h, pipes
 * as data fds), on the host, so that the sanitizer build covers it too. The destination runs
 * in a child process (each process has its own fake device).
 *
 *   ok:        source RUNNING -> P2P -> STOP -> STOP_COPY, stream sent, STOP_COPY -> STOP;
 *              destination -> RESUMING, bytes written in order, RESUMING -> STOP, config blob.
 *   rejected:  the destination driver refuses RESUMING -> STOP: an error naming the device,
 *              the device reset to RUNNING; the source, told so, goes back to RUNNING.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fake-vfio.h"

#include "check.h"
#include "glue-common.h"

#define CHANNELS 2


#define ALL (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY)

static uint8_t stream[3000];

/* Child: the destination. Exit code 0 when everything it checked held. */
static int destination(const int *socks, bool reject)
{
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct glue_user u = { 0 };
	uint8_t got[sizeof(stream) + 1];

	fake_reset(ALL);
	fake.pipe_mode = true;
	if (reject) {
		fake.fail_from = VFIO_URING_VFIO_RESUMING;
		fake.fail_to = VFIO_URING_VFIO_STOP;
		fake.fail_errno = EINVAL;
		fake.fail_leave = VFIO_URING_VFIO_RESUMING;
	}
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-dst", &dev) == 0, "from_fd");
	struct vfio_uring_engine *e =
		glue_engine_for(VFIO_URING_DESTINATION, socks, CHANNELS, 0, 1000); /* several packets */
	CHECK(e != NULL, "engine");
	if (!dev || !e)
		return 1;
	glue_opts_for(&o, &u);
	int ret = vfio_uring_vfio_load_add(dev, e, &o, &edev);
	CHECK(ret == 0, "load_add: %s", vfio_uring_vfio_error(dev));
	CHECK(fake.state == VFIO_URING_VFIO_RESUMING, "state %d", fake.state);
	if (ret == 0) {
		ret = vfio_uring_engine_start(e);
		if (ret == 0)
			ret = vfio_uring_engine_switchover_start(e);
		if (ret == 0)
			ret = vfio_uring_engine_run(e, 10000);
		CHECK(ret == 0, "destination engine %d", ret);
	}
	/* the bytes reached the device's data fd, in order */
	ssize_t n = read(fake.resume_read, got, sizeof(got));
	CHECK(n == (ssize_t)sizeof(stream) && memcmp(got, stream, sizeof(stream)) == 0,
	      "device received %zd bytes", n);
	int lf = vfio_uring_vfio_load_finish(dev, ret);
	const char *msg = vfio_uring_vfio_error(dev);
	CHECK(u.done_calls == 1 && u.config_calls == 1, "user callbacks %d/%d", u.done_calls,
	      u.config_calls);
	if (!reject) {
		CHECK(lf == 0 && fake.state == VFIO_URING_VFIO_STOP, "load_finish %d state %d: %s", lf,
		      fake.state, msg);
		CHECK(vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_RUNNING) == 0, "-> RUNNING");
	} else {
		printf("destination reported: %s\n", msg);
		CHECK(lf == -EINVAL, "load_finish %d", lf);
		CHECK(strstr(msg, "fake-dst") && strstr(msg, "rejected") &&
		      strstr(msg, "reset to RUNNING"), "message: %s", msg);
		CHECK(fake.resets == 1 && fake.state == VFIO_URING_VFIO_RUNNING, "resets %d state %d",
		      fake.resets, fake.state);
	}
	vfio_uring_engine_destroy(e);
	vfio_uring_vfio_close(dev);
	return check_failures ? 1 : 0;
}

static void run(bool reject)
{
	int pairs[CHANNELS][2], src_socks[CHANNELS], dst_socks[CHANNELS];
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct glue_user u = { 0 };

	for (int i = 0; i < CHANNELS; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) < 0) {
			CHECK(0, "socketpair");
			return;
		}
		src_socks[i] = pairs[i][0];
		dst_socks[i] = pairs[i][1];
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < CHANNELS; i++)
			close(src_socks[i]);
		int rc = destination(dst_socks, reject);
		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	for (int i = 0; i < CHANNELS; i++)
		close(dst_socks[i]);

	fake_reset(ALL);
	fake.pipe_mode = true;
	fake.stream = stream;
	fake.stream_len = sizeof(stream);
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-src", &dev) == 0, "from_fd");
	struct vfio_uring_engine *e =
		glue_engine_for(VFIO_URING_SOURCE, src_socks, CHANNELS, 0, 1000); /* several packets */
	CHECK(e != NULL, "engine");
	glue_opts_for(&o, &u);
	int ret = dev && e ? vfio_uring_vfio_save_add(dev, e, &o, &edev) : -EINVAL;
	CHECK(ret == 0, "save_add: %s", dev ? vfio_uring_vfio_error(dev) : "");
	static const int path[][2] = { { VFIO_URING_VFIO_RUNNING, VFIO_URING_VFIO_RUNNING_P2P },
				       { VFIO_URING_VFIO_RUNNING_P2P, VFIO_URING_VFIO_STOP },
				       { VFIO_URING_VFIO_STOP, VFIO_URING_VFIO_STOP_COPY } };
	CHECK(fake.narcs == 3, "%d arcs", fake.narcs);
	for (int i = 0; i < 3 && i < fake.narcs; i++)
		CHECK(fake.arcs[i][0] == path[i][0] && fake.arcs[i][1] == path[i][1], "arc %d", i);
	if (ret == 0) {
		ret = vfio_uring_engine_start(e);
		if (ret == 0)
			ret = vfio_uring_engine_run(e, 10000);
		CHECK(ret == 0, "source engine %d", ret);
		/* the done callback already ended the session */
		CHECK(u.done_calls == 1 && u.done_error == 0 && u.config_calls == 1, "callbacks");
		CHECK(fake.state == VFIO_URING_VFIO_STOP && vfio_uring_vfio_data_fd(dev) < 0,
		      "source state %d after done", fake.state);
	}
	for (int i = 0; i < CHANNELS; i++)
		shutdown(src_socks[i], SHUT_WR);
	int status = 0;
	waitpid(pid, &status, 0);
	bool dest_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	CHECK(dest_ok, "destination checks failed (status 0x%x)", status);
	/* the destination's verdict: rejected -> the source resumes */
	int verdict = reject ? -EINVAL : 0;
	int sf = dev ? vfio_uring_vfio_save_finish(dev, ret ? ret : verdict) : -EINVAL;
	if (!reject) {
		CHECK(sf == 0 && fake.state == VFIO_URING_VFIO_STOP, "save_finish %d state %d", sf,
		      fake.state);
	} else {
		printf("source reported: %s\n", vfio_uring_vfio_error(dev));
		CHECK(sf == -EINVAL && fake.state == VFIO_URING_VFIO_RUNNING,
		      "save_finish %d state %d", sf, fake.state);
		CHECK(strstr(vfio_uring_vfio_error(dev), "fake-src") != NULL, "message names the source");
		CHECK(fake.resets == 0, "the source needs no reset");
	}
	vfio_uring_engine_destroy(e);
	vfio_uring_vfio_close(dev);
	for (int i = 0; i < CHANNELS; i++)
		close(src_socks[i]);
}

/* save_add on a device that cannot reach STOP_COPY goes back to RUNNING. */
static void save_add_failure(void)
{
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct glue_user u = { 0 };

	fake_reset(ALL);
	fake.fail_from = VFIO_URING_VFIO_STOP;
	fake.fail_to = VFIO_URING_VFIO_STOP_COPY;
	fake.fail_errno = ENOMEM;
	fake.fail_leave = VFIO_URING_VFIO_STOP;
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-src", &dev) == 0, "from_fd");
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *e = NULL;
	vfio_uring_engine_opts_init(&eo, VFIO_URING_SOURCE);
	CHECK(vfio_uring_engine_create(&eo, &e) == 0, "engine");
	glue_opts_for(&o, &u);
	int ret = dev && e ? vfio_uring_vfio_save_add(dev, e, &o, &edev) : 0;
	CHECK(ret == -ENOMEM, "save_add %d", ret);
	CHECK(fake.state == VFIO_URING_VFIO_RUNNING, "back in RUNNING, state %d", fake.state);
	if (dev)
		printf("save_add reported: %s\n", vfio_uring_vfio_error(dev));
	vfio_uring_engine_destroy(e);
	vfio_uring_vfio_close(dev);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 7 + 3);
	fake.fd = eventfd(0, EFD_CLOEXEC);
	if (fake.fd < 0)
		return 77;
	run(false);
	run(true);
	save_add_failure();
	close(fake.fd);
	if (check_result())
		return 1;
	printf("save/load glue with fake devices and real engines: all checks passed\n");
	return 0;
}
