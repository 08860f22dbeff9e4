/* SPDX-License-Identifier: MIT */
/*
 * VFIO device module, internal part: the uAPI definitions Debian 12's linux/vfio.h (6.1)
 * lacks, and the migration state path table (exposed here for the unit test).
 */
#ifndef VFIO_URING_VFIO_DEVICE_H
#define VFIO_URING_VFIO_DEVICE_H

#include <stdint.h>
#include <linux/types.h>
#include <linux/vfio.h>

#include "vfio-uring.h"

/*
 * Added in Linux 6.2 (PRE_COPY, precopy info) and 6.3 (MIG_DATA_SIZE); values and layouts
 * from the uAPI (include/uapi/linux/vfio.h). Guarded so that newer headers win.
 */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

/*
 * PRECOPY_INFOv2 (kernels since early 2026): a device feature the VMM opts in to with a SET
 * without data (PROBE|SET probes it). After the opt-in, VFIO_MIG_GET_PRECOPY_INFO reports
 * VFIO_PRECOPY_INFO_REINIT in flags when initial_bytes rose again; without it flags only echo
 * what userspace passed in.
 */
#ifndef VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2
#define VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 12
#endif
#ifndef VFIO_PRECOPY_INFO_REINIT
#define VFIO_PRECOPY_INFO_REINIT (1 << 0)
#endif

/*
 * The next state to SET on the way from `cur` to `target` for a device with migration
 * flags `flags` (VFIO_URING_VFIO_MIG_*). Returns `target` itself when it is one arc away,
 * or -EINVAL when cur or target is ERROR, out of range, or not supported by the flags.
 * cur == target returns cur.
 */
int vu_vfio_next_state(uint64_t flags, enum vfio_uring_vfio_state cur,
		       enum vfio_uring_vfio_state target);

/* Whether `state` exists for a device with these flags. */
int vu_vfio_state_supported(uint64_t flags, enum vfio_uring_vfio_state state);

#endif /* VFIO_URING_VFIO_DEVICE_H */
