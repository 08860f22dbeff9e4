/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test guest: the VFIO device module alone (no engine) against two real
 * mtty devices. Usage: guest-vfio UUID_A UUID_B
 * Helpers for shell tests: guest-vfio fill|check UUID SEED, guest-vfio clear|state UUID
 */
#include <fcntl.h>
#include <stdlib.h>

#include "guest.h"

static const char *uuid_a, *uuid_b;

#define open_dev guest_open

static int is_session(enum vfio_uring_vfio_state s)
{
	return s == VFIO_URING_VFIO_STOP_COPY || s == VFIO_URING_VFIO_RESUMING ||
	       s == VFIO_URING_VFIO_PRE_COPY || s == VFIO_URING_VFIO_PRE_COPY_P2P;
}

/* Reads the data fd until EOF (STOP_COPY) or ENOMSG (PRE_COPY, nothing more for now). */
static ssize_t read_stream(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n == 0)
			return (ssize_t)got;
		if (n < 0)
			return errno == ENOMSG ? (ssize_t)got : -errno;
		got += (size_t)n;
		if (got == cap)
			return (ssize_t)got;
	}
}

static int test_open_and_query(char *why, size_t len)
{
	struct vfio_uring_vfio *dev;
	uint64_t flags = 0, size = 0;

	GCHECK(open_dev(uuid_a, &dev) == 0, "open");
	vfio_uring_vfio_get_migration_flags(dev, &flags);
	int ret = vfio_uring_vfio_get_data_size(dev, &size);
	printf("  %s: migration flags 0x%llx, MIG_DATA_SIZE %llu (ret %d), group %d\n",
	       vfio_uring_vfio_name(dev), (unsigned long long)flags, (unsigned long long)size, ret,
	       vfio_uring_vfio_find_group(uuid_a));
	GCHECK(flags == (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P |
			 VFIO_URING_VFIO_MIG_PRE_COPY), "flags 0x%llx", (unsigned long long)flags);
	GCHECK(ret == 0 && size > 0, "data size");
	int fail = expect_state(dev, VFIO_URING_VFIO_RUNNING, why, len);
	GCHECK(!fail, "%s", why);
	/* from_fd: the caller keeps the device fd */
	struct vfio_uring_vfio *alias;
	GCHECK(vfio_uring_vfio_from_fd(vfio_uring_vfio_device_fd(dev), NULL, &alias) == 0, "from_fd");
	uint64_t f2;
	vfio_uring_vfio_get_migration_flags(alias, &f2);
	GCHECK(f2 == flags, "from_fd flags");
	vfio_uring_vfio_close(alias);
	GCHECK(fcntl(vfio_uring_vfio_device_fd(dev), F_GETFD) >= 0, "from_fd closed the caller's fd");
	GCHECK(vfio_uring_vfio_from_fd(-1, NULL, &alias) == -EBADF, "from_fd(-1)");
	GCHECK(vfio_uring_vfio_open_group(-1, "no-such-device", &alias) == -ENOENT, "bad name");
	return 0;
}

static int test_state_walk(char *why, size_t len)
{
	static const enum vfio_uring_vfio_state walk[] = {
		VFIO_URING_VFIO_RUNNING_P2P, VFIO_URING_VFIO_STOP,      VFIO_URING_VFIO_RUNNING,
		VFIO_URING_VFIO_PRE_COPY,    VFIO_URING_VFIO_PRE_COPY_P2P, VFIO_URING_VFIO_RUNNING_P2P,
		VFIO_URING_VFIO_PRE_COPY,    VFIO_URING_VFIO_STOP,      VFIO_URING_VFIO_STOP_COPY,
		VFIO_URING_VFIO_RUNNING,     VFIO_URING_VFIO_STOP_COPY, VFIO_URING_VFIO_RUNNING_P2P,
		VFIO_URING_VFIO_PRE_COPY_P2P, VFIO_URING_VFIO_STOP_COPY, VFIO_URING_VFIO_RUNNING,
		VFIO_URING_VFIO_STOP,        VFIO_URING_VFIO_RESUMING,
	};
	struct vfio_uring_vfio *dev;

	GCHECK(open_dev(uuid_a, &dev) == 0, "open");
	for (size_t i = 0; i < sizeof(walk) / sizeof(walk[0]); i++) {
		int ret = vfio_uring_vfio_set_state(dev, walk[i]);
		GCHECK(ret == 0, "-> %s: %s", vfio_uring_vfio_state_name(walk[i]),
		       vfio_uring_vfio_error(dev));
		int fail = expect_state(dev, walk[i], why, len);
		GCHECK(!fail, "%s", why);
		GCHECK((vfio_uring_vfio_data_fd(dev) >= 0) == is_session(walk[i]),
		       "in %s data fd %d", vfio_uring_vfio_state_name(walk[i]),
		       vfio_uring_vfio_data_fd(dev));
	}
	/* ERROR is not a target */
	GCHECK(vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_ERROR) == -EINVAL, "ERROR target");
	/* RESUMING with nothing written: the driver refuses RESUMING -> STOP; we say where */
	int ret = vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_RUNNING);
	printf("  empty resume -> RUNNING: %d: %s\n", ret, vfio_uring_vfio_error(dev));
	GCHECK(ret < 0, "an empty resume must be refused");
	GCHECK(strstr(vfio_uring_vfio_error(dev), uuid_a) != NULL, "message names the device");
	GCHECK(vfio_uring_vfio_reset(dev) == 0, "reset");
	int fail = expect_state(dev, VFIO_URING_VFIO_RUNNING, why, len);
	GCHECK(!fail, "after reset: %s", why);
	GCHECK(vfio_uring_vfio_data_fd(dev) < 0, "reset closes the data fd");
	return 0;
}

static int test_precopy(char *why, size_t len)
{
	struct vfio_uring_vfio *dev;
	uint64_t initial = 0, dirty = 0, size = 0;
	uint8_t buf[4096];

	GCHECK(open_dev(uuid_a, &dev) == 0, "open");
	GCHECK(vfio_uring_vfio_get_data_size(dev, &size) == 0, "size");
	GCHECK(vfio_uring_vfio_precopy_info(dev, &initial, &dirty) == -EINVAL, "info without session");
	GCHECK(vfio_uring_vfio_save_precopy(dev) == 0, "%s", vfio_uring_vfio_error(dev));
	GCHECK(vfio_uring_vfio_precopy_info(dev, &initial, &dirty) == 0, "%s",
	       vfio_uring_vfio_error(dev));
	printf("  PRE_COPY: initial_bytes %llu dirty_bytes %llu\n", (unsigned long long)initial,
	       (unsigned long long)dirty);
	GCHECK(initial > 0 && initial < size, "initial %llu", (unsigned long long)initial);
	int fd = vfio_uring_vfio_data_fd(dev);
	ssize_t n = read_stream(fd, buf, sizeof(buf));
	GCHECK(n == (ssize_t)initial, "read %zd of %llu initial bytes", n, (unsigned long long)initial);
	GCHECK(vfio_uring_vfio_precopy_info(dev, &initial, &dirty) == 0 && initial == 0,
	       "initial after reading %llu", (unsigned long long)initial);
	GCHECK(vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_STOP_COPY) == 0, "%s",
	       vfio_uring_vfio_error(dev));
	GCHECK(vfio_uring_vfio_data_fd(dev) == fd, "PRE_COPY -> STOP_COPY keeps the data fd");
	ssize_t rest = read_stream(fd, buf + n, sizeof(buf) - (size_t)n);
	printf("  STOP_COPY after PRE_COPY: %zd more bytes (total %zd, MIG_DATA_SIZE %llu)\n", rest,
	       n + rest, (unsigned long long)size);
	GCHECK(rest > 0 && (uint64_t)(n + rest) == size, "rest %zd", rest);
	GCHECK(vfio_uring_vfio_set_state(dev, VFIO_URING_VFIO_RUNNING) == 0, "%s",
	       vfio_uring_vfio_error(dev));
	int fail = expect_state(dev, VFIO_URING_VFIO_RUNNING, why, len);
	GCHECK(!fail, "%s", why);
	return 0;
}

/* A to B by hand (the data fds directly): proves the register checks before the engine. */
static int test_manual_copy(char *why, size_t len)
{
	struct vfio_uring_vfio *a, *b;
	uint8_t buf[4096];

	GCHECK(open_dev(uuid_a, &a) == 0 && open_dev(uuid_b, &b) == 0, "open");
	GCHECK(mtty_fill(vfio_uring_vfio_device_fd(a), 3) == 0, "fill A");
	GCHECK(mtty_clear(vfio_uring_vfio_device_fd(b)) == 0, "clear B");
	GCHECK(vfio_uring_vfio_set_state(a, VFIO_URING_VFIO_STOP_COPY) == 0, "%s",
	       vfio_uring_vfio_error(a));
	ssize_t n = read_stream(vfio_uring_vfio_data_fd(a), buf, sizeof(buf));
	GCHECK(n > 0, "read %zd", n);
	GCHECK(vfio_uring_vfio_set_state(b, VFIO_URING_VFIO_RESUMING) == 0, "%s",
	       vfio_uring_vfio_error(b));
	GCHECK(write(vfio_uring_vfio_data_fd(b), buf, (size_t)n) == n, "write: %s", strerror(errno));
	GCHECK(vfio_uring_vfio_set_state(b, VFIO_URING_VFIO_RUNNING) == 0, "%s",
	       vfio_uring_vfio_error(b));
	GCHECK(vfio_uring_vfio_set_state(a, VFIO_URING_VFIO_RUNNING) == 0, "%s",
	       vfio_uring_vfio_error(a));
	int fail = mtty_check(vfio_uring_vfio_device_fd(b), 3, why, len);
	GCHECK(!fail, "B: %s", why);
	return 0;
}

/* Garbage into RESUMING: the driver rejects the write; a reset brings the device back. */
static int test_garbage_rejected(char *why, size_t len)
{
	struct vfio_uring_vfio *b;
	uint8_t junk[96];

	memset(junk, 0x5a, sizeof(junk));
	GCHECK(open_dev(uuid_b, &b) == 0, "open");
	GCHECK(vfio_uring_vfio_set_state(b, VFIO_URING_VFIO_RESUMING) == 0, "%s",
	       vfio_uring_vfio_error(b));
	ssize_t n = write(vfio_uring_vfio_data_fd(b), junk, sizeof(junk));
	int err = errno;
	printf("  garbage write: %zd (%s)\n", n, n < 0 ? strerror(err) : "accepted");
	GCHECK(n < 0, "the driver accepted garbage");
	GCHECK(vfio_uring_vfio_reset(b) == 0, "reset");
	int fail = expect_state(b, VFIO_URING_VFIO_RUNNING, why, len);
	GCHECK(!fail, "%s", why);
	return 0;
}

/* Shell helpers: prints what it did; exit 0 ok, 1 mismatch/failure. */
static int helper(int argc, char **argv)
{
	struct vfio_uring_vfio *dev;
	char why[512] = "";
	unsigned seed = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
	int rc = 0;

	if (guest_open(argv[2], &dev) < 0)
		return 1;
	int fd = vfio_uring_vfio_device_fd(dev);
	if (!strcmp(argv[1], "fill")) {
		rc = mtty_fill(fd, seed) == 0 ? 0 : 1;
	} else if (!strcmp(argv[1], "clear")) {
		rc = mtty_clear(fd) == 0 ? 0 : 1;
	} else if (!strcmp(argv[1], "check")) {
		rc = mtty_check(fd, seed, why, sizeof(why));
		printf("%s: pattern %u %s%s\n", argv[2], seed, rc ? "MISMATCH: " : "ok", why);
	} else {
		enum vfio_uring_vfio_state st;
		rc = vfio_uring_vfio_get_state(dev, &st) == 0 ? 0 : 1;
		printf("%s\n", rc ? "?" : vfio_uring_vfio_state_name(st));
	}
	guest_close_all();
	return rc;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(char *, size_t);
	} tests[] = {
		{ "vfio-open-query", test_open_and_query },
		{ "vfio-state-walk", test_state_walk },
		{ "vfio-precopy", test_precopy },
		{ "vfio-manual-copy", test_manual_copy },
		{ "vfio-garbage-rejected", test_garbage_rejected },
	};
	char why[512];

	if (argc >= 3 && (!strcmp(argv[1], "fill") || !strcmp(argv[1], "check") ||
			  !strcmp(argv[1], "clear") || !strcmp(argv[1], "state")))
		return helper(argc, argv);
	if (argc != 3) {
		fprintf(stderr, "usage: %s UUID_A UUID_B\n", argv[0]);
		return 2;
	}
	uuid_a = argv[1];
	uuid_b = argv[2];
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		why[0] = '\0';
		int rc = tests[i].fn(why, sizeof(why));
		guest_close_all();
		guest_result(tests[i].name, rc, rc ? "%s" : NULL, why);
	}
	return guest_failures ? 1 : 0;
}
