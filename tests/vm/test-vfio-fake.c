/* SPDX-License-Identifier: MIT */
/*
 * The VFIO device module against a scripted fake device, on the host: what mtty cannot show
 * (it never falls to ERROR, and always has every feature). Linked with -Wl,--wrap=ioctl:
 * ioctl() on the fake device fd or on a data fd it handed out is answered here.
 *
 * Checks: the exact arcs SET for a move with and without P2P; a failed arc that leaves the
 * device in ERROR is recovered with VFIO_DEVICE_RESET and reported with the device's name; a
 * failed arc that leaves the device elsewhere is reported with that state and not reset; a
 * device found in ERROR is reset before moving; data fds are closed when their session ends;
 * a driver that hands a new fd on PRE_COPY_P2P -> STOP_COPY; MIG_DATA_SIZE and PRECOPY_INFO;
 * from_fd leaves the caller's fd open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fake-vfio.h"

#include "check.h"


/* ---- tests ---- */

static bool fd_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

static struct vfio_uring_vfio *open_fake(uint64_t flags)
{
	struct vfio_uring_vfio *dev = NULL;

	fake_reset(flags);
	int ret = vfio_uring_vfio_from_fd(fake.fd, "fake0", &dev);
	CHECK(ret == 0, "from_fd: %d", ret);
	return dev;
}

static void check_arcs(const char *what, const int (*want)[2], int n)
{
	CHECK(fake.narcs == n, "%s: %d arcs, expected %d", what, fake.narcs, n);
	for (int i = 0; i < n && i < fake.narcs; i++)
		CHECK(fake.arcs[i][0] == want[i][0] && fake.arcs[i][1] == want[i][1],
		      "%s: arc %d is %s -> %s, expected %s -> %s", what, i,
		      vfio_uring_vfio_state_name(fake.arcs[i][0]),
		      vfio_uring_vfio_state_name(fake.arcs[i][1]),
		      vfio_uring_vfio_state_name(want[i][0]), vfio_uring_vfio_state_name(want[i][1]));
}

#define R VFIO_URING_VFIO_RUNNING
#define RP VFIO_URING_VFIO_RUNNING_P2P
#define S VFIO_URING_VFIO_STOP
#define SC VFIO_URING_VFIO_STOP_COPY
#define RES VFIO_URING_VFIO_RESUMING
#define PC VFIO_URING_VFIO_PRE_COPY
#define PCP VFIO_URING_VFIO_PRE_COPY_P2P
#define ALL (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY)

static void test_paths(void)
{
	struct vfio_uring_vfio *dev = open_fake(ALL);
	uint64_t flags = 0, size = 0;

	vfio_uring_vfio_get_migration_flags(dev, &flags);
	CHECK(flags == ALL, "flags 0x%llx", (unsigned long long)flags);
	CHECK(vfio_uring_vfio_get_data_size(dev, &size) == 0 && size == 96, "data size %llu",
	      (unsigned long long)size);
	CHECK(vfio_uring_vfio_set_state(dev, SC) == 0, "%s", vfio_uring_vfio_error(dev));
	static const int p2p[][2] = { { R, RP }, { RP, S }, { S, SC } };
	check_arcs("RUNNING -> STOP_COPY with P2P", p2p, 3);
	int data_fd = vfio_uring_vfio_data_fd(dev);
	CHECK(fd_open(data_fd), "STOP_COPY has a data fd");
	fake.narcs = 0;
	CHECK(vfio_uring_vfio_set_state(dev, R) == 0, "%s", vfio_uring_vfio_error(dev));
	static const int back[][2] = { { SC, S }, { S, RP }, { RP, R } };
	check_arcs("STOP_COPY -> RUNNING", back, 3);
	CHECK(!fd_open(data_fd) && vfio_uring_vfio_data_fd(dev) < 0, "the session's fd is closed");
	vfio_uring_vfio_close(dev);
	CHECK(fd_open(fake.fd), "from_fd must not close the caller's fd");

	dev = open_fake(VFIO_URING_VFIO_MIG_STOP_COPY);
	CHECK(vfio_uring_vfio_set_state(dev, SC) == 0, "%s", vfio_uring_vfio_error(dev));
	static const int nop2p[][2] = { { R, S }, { S, SC } };
	check_arcs("RUNNING -> STOP_COPY without P2P", nop2p, 2);
	CHECK(vfio_uring_vfio_set_state(dev, RP) == -EINVAL, "RUNNING_P2P without P2P");
	CHECK(vfio_uring_vfio_save_precopy(dev) == -EOPNOTSUPP, "PRE_COPY without the flag");
	vfio_uring_vfio_close(dev);
}

static void test_precopy(bool new_fd)
{
	struct vfio_uring_vfio *dev = open_fake(ALL);
	uint64_t initial = 0;

	fake.new_fd_on_continue = new_fd;
	CHECK(vfio_uring_vfio_save_precopy(dev) == 0, "%s", vfio_uring_vfio_error(dev));
	int fd = vfio_uring_vfio_data_fd(dev);
	CHECK(vfio_uring_vfio_precopy_info(dev, &initial, NULL) == 0 && initial == 24, "info");
	fake.narcs = 0;
	CHECK(vfio_uring_vfio_set_state(dev, SC) == 0, "%s", vfio_uring_vfio_error(dev));
	static const int cont[][2] = { { PC, PCP }, { PCP, SC } };
	check_arcs("PRE_COPY -> STOP_COPY", cont, 2);
	if (new_fd) {
		CHECK(vfio_uring_vfio_data_fd(dev) != fd && !fd_open(fd),
		      "a new fd replaces (and closes) the old one");
	} else {
		CHECK(vfio_uring_vfio_data_fd(dev) == fd && fd_open(fd), "the session's fd stays");
	}
	CHECK(vfio_uring_vfio_precopy_info(dev, &initial, NULL) < 0, "no info in STOP_COPY");
	/* PRE_COPY -> STOP ends the session through RUNNING, never through STOP_COPY */
	CHECK(vfio_uring_vfio_set_state(dev, R) == 0, "%s", vfio_uring_vfio_error(dev));
	CHECK(vfio_uring_vfio_save_precopy(dev) == 0, "%s", vfio_uring_vfio_error(dev));
	fd = vfio_uring_vfio_data_fd(dev);
	fake.narcs = 0;
	CHECK(vfio_uring_vfio_set_state(dev, S) == 0, "%s", vfio_uring_vfio_error(dev));
	static const int end[][2] = { { PC, R }, { R, RP }, { RP, S } };
	check_arcs("PRE_COPY -> STOP", end, 3);
	CHECK(!fd_open(fd), "PRE_COPY -> RUNNING closes the session's fd");
	vfio_uring_vfio_close(dev);
}

static void test_error_recovery(void)
{
	struct vfio_uring_vfio *dev = open_fake(ALL);
	enum vfio_uring_vfio_state st;

	/* STOP -> STOP_COPY fails and drops the device into ERROR */
	fake.fail_from = S;
	fake.fail_to = SC;
	fake.fail_errno = EIO;
	fake.fail_leave = VFIO_URING_VFIO_ERROR;
	int ret = vfio_uring_vfio_set_state(dev, SC);
	CHECK(ret == -EIO, "ret %d", ret);
	CHECK(fake.resets == 1 && vfio_uring_vfio_reset_count(dev) == 1, "one reset, %d",
	      fake.resets);
	CHECK(vfio_uring_vfio_get_state(dev, &st) == 0 && st == R, "back in RUNNING");
	const char *msg = vfio_uring_vfio_error(dev);
	CHECK(strstr(msg, "fake0") && strstr(msg, "STOP -> STOP_COPY") && strstr(msg, "ERROR") &&
	      strstr(msg, "reset to RUNNING"), "message: %s", msg);
	printf("reported: %s\n", msg);

	/* RUNNING_P2P -> STOP fails, device stays in RUNNING_P2P: reported, not reset */
	fake_reset(ALL);
	fake.fail_from = RP;
	fake.fail_to = S;
	fake.fail_errno = EBUSY;
	fake.fail_leave = RP;
	ret = vfio_uring_vfio_set_state(dev, S);
	msg = vfio_uring_vfio_error(dev);
	CHECK(ret == -EBUSY && fake.resets == 0, "ret %d resets %d", ret, fake.resets);
	CHECK(strstr(msg, "left in RUNNING_P2P") != NULL, "message: %s", msg);

	/* a device found in ERROR is reset before the move */
	fake_reset(ALL);
	fake.state = VFIO_URING_VFIO_ERROR;
	CHECK(vfio_uring_vfio_set_state(dev, S) == 0, "%s", vfio_uring_vfio_error(dev));
	CHECK(fake.resets == 1 && fake.state == S, "resets %d state %d", fake.resets, fake.state);
	CHECK(strstr(vfio_uring_vfio_error(dev), "was in ERROR") != NULL, "message: %s",
	      vfio_uring_vfio_error(dev));

	/* RESUMING -> STOP refused (the driver validates), device stays in RESUMING */
	fake_reset(ALL);
	CHECK(vfio_uring_vfio_set_state(dev, RES) == 0, "%s", vfio_uring_vfio_error(dev));
	int fd = vfio_uring_vfio_data_fd(dev);
	fake.fail_from = RES;
	fake.fail_to = S;
	fake.fail_errno = EINVAL;
	fake.fail_leave = RES;
	CHECK(vfio_uring_vfio_set_state(dev, S) == -EINVAL, "refused");
	CHECK(fd_open(fd), "still RESUMING: the session's fd stays open");
	CHECK(vfio_uring_vfio_reset(dev) == 0 && !fd_open(fd) && vfio_uring_vfio_data_fd(dev) < 0,
	      "a reset closes it");

	fake.no_data_size = true;
	uint64_t size;
	CHECK(vfio_uring_vfio_get_data_size(dev, &size) == -ENOTTY, "no MIG_DATA_SIZE");
	CHECK(vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_ERROR) == -EINVAL, "ERROR target");
	vfio_uring_vfio_close(dev);
}

int main(void)
{
	struct vfio_uring_vfio *dev;

	fake.fd = eventfd(0, EFD_CLOEXEC);
	if (fake.fd < 0)
		return 77;
	test_paths();
	test_precopy(false);
	test_precopy(true);
	test_error_recovery();
	/* a device without migration support */
	fake_reset(0);
	CHECK(vfio_uring_vfio_from_fd(fake.fd, "x", &dev) == -EOPNOTSUPP, "no STOP_COPY flag");
	CHECK(vfio_uring_vfio_from_fd(-1, "x", &dev) == -EBADF, "bad fd");
	close(fake.fd);
	if (check_result())
		return 1;
	printf("vfio device module against a fake device: all checks passed\n");
	return 0;
}
