/* SPDX-License-Identifier: MIT */
/* Names of the failure reasons, from the list in vfio-uring.h. */
#include "reasons.h"

const char *vfio_uring_reason_name(enum vfio_uring_reason reason)
{
	switch (reason) {
#define VU_REASON_NAME_(name, value, err, side, meaning) \
	case VFIO_URING_REASON_##name:                   \
		return #name;
	VFIO_URING_REASONS(VU_REASON_NAME_)
#undef VU_REASON_NAME_
	case VFIO_URING_REASON_NONE:
		return "NONE";
	}
	return "unknown";
}
