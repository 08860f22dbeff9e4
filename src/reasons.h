/* SPDX-License-Identifier: MIT */
/*
 * Failure reasons inside the library: each reason's errno and the wire checks' errnos, all
 * expanded from the one list in vfio-uring.h (VFIO_URING_REASONS).
 */
#ifndef VFIO_URING_REASONS_H
#define VFIO_URING_REASONS_H

#include <errno.h>

#include "vfio-uring.h"

/*
 * VU_E<reason>: the negated errno of each wire check, what the decoders in wire.c return
 * (VU_EHS_MAGIC, VU_EPKT_MAGIC, ..., VU_ESTREAM_ENDED).
 */
#define VU_WIRE_ERRNO_(name, value, err, side, meaning) VU_E##name = -(err),
enum { VFIO_URING_REASONS_WIRE(VU_WIRE_ERRNO_) };
#undef VU_WIRE_ERRNO_

/*
 * The wire check a decoder's errno stands for (VFIO_URING_REASON_NONE for another errno).
 * The checks' errnos are distinct by construction: two equal ones would be duplicate case
 * labels here, a compile error.
 */
static inline enum vfio_uring_reason vu_wire_reason(int err)
{
	switch (err) {
#define VU_WIRE_REASON_(name, value, e, side, meaning) \
	case -(e):                                     \
		return VFIO_URING_REASON_##name;
	VFIO_URING_REASONS_WIRE(VU_WIRE_REASON_)
#undef VU_WIRE_REASON_
	default:
		return VFIO_URING_REASON_NONE;
	}
}

/* The reason's negated errno; 0 for NONE and for reasons that carry the failed call's own. */
static inline int vu_reason_errno(enum vfio_uring_reason reason)
{
	switch (reason) {
#define VU_REASON_ERRNO_(name, value, e, side, meaning) \
	case VFIO_URING_REASON_##name:                  \
		return -(e);
	VFIO_URING_REASONS(VU_REASON_ERRNO_)
#undef VU_REASON_ERRNO_
	case VFIO_URING_REASON_NONE:
		break;
	}
	return 0;
}

#endif /* VFIO_URING_REASONS_H */
