/* SPDX-License-Identifier: MIT */
/*
 * Live pre-copy through the VFIO module (vfio_uring_vfio_save_precopy / _save_add on a
 * VFIO_URING_ENGINE_F_PRECOPY engine / _stop_copy) with real engines over a UNIX socketpair
 * and fake VFIO devices on both sides (fake-vfio.h): the source's PRE_COPY data fd is a memfd
 * holding 24 initial bytes, and PRE_COPY(_P2P) -> STOP_COPY appends the other 72, as mtty.
 * The destination runs in a child process (its own fake device).
 *
 *   v2:     the PRECOPY_INFOv2 opt-in works; save_add leaves the device in PRE_COPY; the
 *           engine reads the 24 bytes live and becomes ready (precopy_bytes 24, the handle's
 *           stop_copy_bytes from MIG_DATA_SIZE, a REINIT passed through); the destination
 *           writes exactly those 24 bytes before switchover start; vfio_uring_vfio_stop_copy()
 *           goes PRE_COPY -> PRE_COPY_P2P -> STOP_COPY on the same fd; the rest follows; the
 *           destination holds all 96 bytes in order and the config blob.
 *   no-v2:  the opt-in is refused (ENOTTY), the driver sets garbage flags (REINIT) that must
 *           be ignored, MIG_DATA_SIZE is missing (stop_copy_bytes 0); the VMM moves the device
 *           to STOP_COPY behind the handle's back and the engine runs before stop_copy():
 *           the handle's precopy_info reports zeros instead of failing.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "fake-vfio.h"

#include "check.h"
#include "glue-common.h"

#define CHANNELS 2
#define ALL (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY)
#define INITIAL 24

static uint8_t stream[96];

/* Bytes the destination device has received so far (non-blocking). */
static size_t drain(uint8_t *got, size_t have, size_t cap)
{
	struct pollfd p = { .fd = fake.resume_read, .events = POLLIN };

	while (have < cap && poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		ssize_t n = read(fake.resume_read, got + have, cap - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	return have;
}

/* Child: the destination. Exit code 0 when everything it checked held. */
static int destination(const int *socks)
{
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct glue_user u = { 0 };
	uint8_t got[sizeof(stream) + 8];
	size_t have = 0;

	fake_reset(ALL);
	fake.pipe_mode = true;
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-dst", &dev) == 0, "from_fd");
	struct vfio_uring_engine *e =
		glue_engine_for(VFIO_URING_DESTINATION, socks, CHANNELS, VFIO_URING_ENGINE_F_PRECOPY, 0);
	CHECK(e != NULL, "engine");
	if (!dev || !e)
		return 1;
	glue_opts_for(&o, &u);
	int ret = vfio_uring_vfio_load_add(dev, e, &o, &edev);
	CHECK(ret == 0, "load_add: %s", vfio_uring_vfio_error(dev));
	if (ret == 0)
		ret = vfio_uring_engine_start(e);
	/* the pre-copy bytes are written before switchover start, and nothing else */
	for (int i = 0; ret == 0 && have < INITIAL && i < 1000; i++) {
		int r = vfio_uring_engine_run(e, 10);
		if (r != -ETIMEDOUT && r != 0)
			ret = r;
		have = drain(got, have, sizeof(got));
	}
	CHECK(ret == 0 && have == INITIAL && memcmp(got, stream, INITIAL) == 0,
	      "before switchover start: %zu bytes written (ret %d)", have, ret);
	if (ret == 0)
		ret = vfio_uring_engine_switchover_start(e);
	if (ret == 0)
		ret = vfio_uring_engine_run(e, 10000);
	CHECK(ret == 0, "destination engine %d", ret);
	have = drain(got, have, sizeof(got));
	CHECK(have == sizeof(stream) && memcmp(got, stream, sizeof(stream)) == 0,
	      "device received %zu bytes", have);
	int lf = vfio_uring_vfio_load_finish(dev, ret);
	CHECK(lf == 0 && fake.state == VFIO_URING_VFIO_STOP, "load_finish %d state %d", lf,
	      fake.state);
	CHECK(u.done_calls == 1 && u.config_calls == 1, "user callbacks %d/%d", u.done_calls,
	      u.config_calls);
	vfio_uring_engine_destroy(e);
	vfio_uring_vfio_close(dev);
	return check_failures ? 1 : 0;
}

static struct vfio_uring_precopy_status status_of(struct vfio_uring_engine *e)
{
	struct vfio_uring_precopy_status st;

	memset(&st, 0, sizeof(st));
	vfio_uring_engine_get_precopy_status(e, &st, sizeof(st));
	return st;
}

static void run(bool v2)
{
	int pairs[CHANNELS][2], src_socks[CHANNELS], dst_socks[CHANNELS];
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct glue_user u = { 0 };
	int ret = -EINVAL;

	printf("case %s\n", v2 ? "v2" : "no-v2");
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
		int rc = destination(dst_socks);
		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	for (int i = 0; i < CHANNELS; i++)
		close(dst_socks[i]);

	fake_reset(ALL);
	fake.precopy_memfd = true;
	fake.stream = stream;
	fake.stream_len = sizeof(stream);
	fake.precopy_initial = INITIAL;
	fake.v2_supported = v2;
	fake.reinit_once = v2 ? 1 : 0;
	fake.flags_garbage = !v2;
	fake.no_data_size = !v2;
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-src", &dev) == 0, "from_fd");
	struct vfio_uring_engine *e =
		glue_engine_for(VFIO_URING_SOURCE, src_socks, CHANNELS, VFIO_URING_ENGINE_F_PRECOPY, 0);
	CHECK(e != NULL && dev != NULL, "engine");
	if (!e || !dev)
		goto out;
	CHECK(vfio_uring_vfio_save_precopy(dev) == 0, "save_precopy: %s", vfio_uring_vfio_error(dev));
	CHECK(vfio_uring_vfio_precopy_v2(dev) == (v2 ? 1 : 0) && fake.v2_on == v2, "v2 opt-in %d",
	      vfio_uring_vfio_precopy_v2(dev));
	CHECK(fake.state == VFIO_URING_VFIO_PRE_COPY && fake.narcs == 1, "PRE_COPY, %d arcs",
	      fake.narcs);
	int data_fd = vfio_uring_vfio_data_fd(dev);
	glue_opts_for(&o, &u);
	ret = vfio_uring_vfio_save_add(dev, e, &o, &edev);
	CHECK(ret == 0, "save_add: %s", vfio_uring_vfio_error(dev));
	CHECK(fake.state == VFIO_URING_VFIO_PRE_COPY && fake.narcs == 1,
	      "save_add left the device live: state %d, %d arcs", fake.state, fake.narcs);
	if (ret == 0)
		ret = vfio_uring_engine_start(e);
	struct vfio_uring_precopy_status st = { 0 };
	for (int i = 0; ret == 0 && i < 1000; i++) {
		int r = vfio_uring_engine_run(e, 5);
		if (r != -ETIMEDOUT && r != 0)
			ret = r;
		st = status_of(e);
		/*
		 * Ready, and no read in flight: the engine asks at start, then after a read of 0
		 * (or between reads, when the last report is a poll old), then from its timer only
		 * while no read is in flight and nothing is to read. A third question therefore
		 * comes after the read that found the end of the initial bytes: no read of the
		 * stop-copy part can still count as pre-copy.
		 */
		if (st.ready && fake.precopy_infos >= 3)
			break;
	}
	printf("  ready %u live %u precopy_bytes %llu stop_copy_bytes %llu reinits %llu "
	       "precopy_infos %d\n", st.ready, st.live, (unsigned long long)st.precopy_bytes,
	       (unsigned long long)st.stop_copy_bytes, (unsigned long long)st.reinits,
	       fake.precopy_infos);
	CHECK(ret == 0 && st.ready == 1 && st.live == 1 && st.devices == 1, "ready (ret %d)", ret);
	CHECK(st.precopy_bytes == INITIAL && st.initial_bytes == 0, "precopy_bytes %llu",
	      (unsigned long long)st.precopy_bytes);
	/* v2: MIG_DATA_SIZE (96); without it the engine's fallback initial + dirty (0) */
	CHECK(st.stop_copy_bytes == (v2 ? 96u : 0u), "stop_copy_bytes %llu",
	      (unsigned long long)st.stop_copy_bytes);
	CHECK(st.reinits == (v2 ? 1u : 0u), "reinits %llu", (unsigned long long)st.reinits);

	if (v2) {
		/* Polled every 2 ms, MIG_DATA_SIZE is asked at most every 100 ms (a firmware call). */
		int infos = fake.precopy_infos, sizes = fake.data_size_calls;

		for (int i = 0; ret == 0 && i < 12; i++) {
			int r = vfio_uring_engine_run(e, 5);
			if (r != -ETIMEDOUT && r != 0)
				ret = r;
		}
		CHECK(ret == 0 && fake.precopy_infos - infos >= 5 &&
		      fake.data_size_calls - sizes <= 1,
		      "60 ms live: %d PRECOPY_INFO, %d MIG_DATA_SIZE", fake.precopy_infos - infos,
		      fake.data_size_calls - sizes);
	}
	int before = fake.narcs;
	if (v2) {
		CHECK(vfio_uring_vfio_stop_copy(dev) == 0, "stop_copy: %s", vfio_uring_vfio_error(dev));
		CHECK(fake.narcs == before + 2 &&
		      fake.arcs[before][0] == VFIO_URING_VFIO_PRE_COPY &&
		      fake.arcs[before][1] == VFIO_URING_VFIO_PRE_COPY_P2P &&
		      fake.arcs[before + 1][1] == VFIO_URING_VFIO_STOP_COPY, "stop_copy arcs");
	} else {
		/* the VMM's own ioctl; the engine keeps polling precopy_info meanwhile */
		fake.state = VFIO_URING_VFIO_STOP_COPY;
		fake_precopy_to_stop_copy();
		int infos = fake.precopy_infos;
		for (int i = 0; ret == 0 && i < 10; i++) {
			int r = vfio_uring_engine_run(e, 5);
			if (r != -ETIMEDOUT && r != 0)
				ret = r;
		}
		CHECK(ret == 0 && fake.precopy_infos > infos,
		      "precopy_info after the device left PRE_COPY: engine %d, %d calls", ret,
		      fake.precopy_infos - infos);
		CHECK(vfio_uring_vfio_stop_copy(dev) == -EINVAL, "stop_copy outside PRE_COPY");
	}
	CHECK(vfio_uring_vfio_data_fd(dev) == data_fd, "same data fd");
	if (ret == 0)
		ret = vfio_uring_engine_stop_copy(e);
	if (ret == 0)
		ret = vfio_uring_engine_run(e, 10000);
	CHECK(ret == 0, "source engine %d", ret);
	CHECK(u.done_calls == 1 && u.done_error == 0 && u.config_calls == 1, "callbacks");
	CHECK(fake.state == VFIO_URING_VFIO_STOP && vfio_uring_vfio_data_fd(dev) < 0,
	      "source state %d after done", fake.state);
	st = status_of(e);
	CHECK(st.live == 0 && st.precopy_bytes == INITIAL, "after: live %u precopy_bytes %llu",
	      st.live, (unsigned long long)st.precopy_bytes);
out:
	for (int i = 0; i < CHANNELS; i++)
		shutdown(src_socks[i], SHUT_WR);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "destination checks failed (0x%x)",
	      status);
	if (dev)
		CHECK(vfio_uring_vfio_save_finish(dev, ret) == 0, "save_finish");
	vfio_uring_engine_destroy(e);
	vfio_uring_vfio_close(dev);
	for (int i = 0; i < CHANNELS; i++)
		close(src_socks[i]);
}

/* Without F_PRECOPY a PRE_COPY device is taken to STOP_COPY as before (same fd). */
static void no_extension(void)
{
	struct vfio_uring_vfio *dev = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_device_opts o;
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *e = NULL;
	struct glue_user u = { 0 };

	fake_reset(ALL);
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "fake-src", &dev) == 0, "from_fd");
	vfio_uring_engine_opts_init(&eo, VFIO_URING_SOURCE);
	CHECK(vfio_uring_engine_create(&eo, &e) == 0, "engine");
	if (!dev || !e)
		goto out;
	CHECK(vfio_uring_vfio_save_precopy(dev) == 0 && vfio_uring_vfio_precopy_v2(dev) == 0,
	      "save_precopy");
	glue_opts_for(&o, &u);
	CHECK(vfio_uring_vfio_save_add(dev, e, &o, &edev) == 0, "save_add");
	CHECK(fake.state == VFIO_URING_VFIO_STOP_COPY, "STOP_COPY without the extension: %d",
	      fake.state);
	CHECK(vfio_uring_vfio_stop_copy(dev) == -EINVAL, "stop_copy from STOP_COPY");
out:
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
	run(true);
	run(false);
	no_extension();
	close(fake.fd);
	if (check_result())
		return 1;
	printf("live pre-copy through the VFIO module with fake devices: all checks passed\n");
	return 0;
}
