/* SPDX-License-Identifier: MIT */
/*
 * What the host tests of the save/load glue share (test-vfio-glue.c, test-vfio-precopy.c):
 * the VMM's own device callbacks, which the glue wraps and must still call, and an engine
 * over the test's socketpairs.
 */
#ifndef VFIO_URING_TESTS_VM_GLUE_COMMON_H
#define VFIO_URING_TESTS_VM_GLUE_COMMON_H

#include <stddef.h>

#include "vfio-uring.h"

/* What the VMM's callbacks saw. */
struct glue_user {
	int done_calls, done_error, config_calls;
};

/* Device options with the VMM's callbacks (config blob "config") and a data fd to ignore. */
void glue_opts_for(struct vfio_uring_device_opts *o, struct glue_user *u);

/*
 * An engine of `side` with `flags` over channels socks[0..n-1]: chunk_size 0 keeps the
 * default. NULL on failure.
 */
struct vfio_uring_engine *glue_engine_for(enum vfio_uring_side side, const int *socks,
					  unsigned n, unsigned flags, size_t chunk_size);

#endif
