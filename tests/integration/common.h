/* SPDX-License-Identifier: MIT */
/*
 * What the end-to-end programs (transfer.c, slow_devices.c) share: a test device and the
 * engine callbacks that record what happened to it, the channels, the setup of an engine of
 * either side over them, and the byte-for-byte check of a device's data.
 */
#ifndef VFIO_URING_TESTS_INTEGRATION_COMMON_H
#define VFIO_URING_TESTS_INTEGRATION_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio-uring.h"

/* Both sides' UUID. */
extern const uint8_t test_uuid[16];

struct test_device {
	char idstr[64];
	uint64_t size;
	int src_fd, dst_fd;      /* the data fds the source reads and the destination writes */
	int sink_fd;             /* where the destination's bytes land: its size is what was written */
	uint8_t config[600];     /* the config blob the source saves: config_len bytes */
	size_t config_len;
	/* what the destination's callbacks saw */
	unsigned config_loads;
	bool config_intact;      /* the blob loaded is the blob saved */
	bool config_after_data;  /* sink_fd held all size bytes when the config was loaded */
	/* what the done callback saw (either side) */
	unsigned done_calls;
	int done_error;
};

/* A memfd of size pattern bytes, device index's own (FAILs when it cannot make one). */
int test_source_memfd(const char *name, unsigned flags, unsigned index, uint64_t size);

/*
 * n connected channels: AF_UNIX socketpairs (transport "unix") or loopback TCP ("tcp"),
 * accepted in the reverse order of connecting (the handshake's channel id, not the accept
 * order, identifies a channel). FAILs when it cannot connect them.
 */
void test_connect_channels(const char *transport, int *src_socks, int *dst_socks, unsigned n);

/*
 * An engine of opts->side (its uuid set to test_uuid) with `channels` channels, in order,
 * and devs[0..n) as devices with instance ids 0..n-1 and the callbacks above; destination
 * devices are multifd ON and get dev_flags. handles (may be NULL) receives the devices.
 * 0, or the failed call's negated errno with `why` naming it (nothing is left behind).
 */
int test_engine_setup(struct vfio_uring_engine_opts *opts, const int *socks, unsigned channels,
		      struct test_device *devs, unsigned n, unsigned dev_flags,
		      struct vfio_uring_device **handles, struct vfio_uring_engine **out,
		      char *why, size_t why_size);

/* Whether fds a and b hold the same first size bytes; if not, *at is the MiB that differs. */
bool test_same_bytes(int a, int b, uint64_t size, uint64_t *at);

/*
 * VU_TEST_ENGINE_FLAGS=baseline-ring,no-waitall,no-iowq-limits: the engine flags that switch
 * optional kernel features off, for both sides (the meson test setups set it).
 */
unsigned test_env_engine_flags(void);

#endif /* VFIO_URING_TESTS_INTEGRATION_COMMON_H */
