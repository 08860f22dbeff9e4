/* SPDX-License-Identifier: MIT */
/*
 * VFIO device module: the migration uAPI v2 on a real VFIO device fd, and the glue that
 * saves or loads one through an engine.
 *
 * State moves go one arc at a time (one VFIO_DEVICE_FEATURE SET per arc) rather than asking
 * the kernel for the whole move: we then know exactly which arc failed, which arc returned a
 * data fd, and which state the device is left in.
 */
#include "vfio_device.h"
#include "engine.h" /* vu_device_opts_read */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VU_VFIO_NAME_MAX 128
#define VU_VFIO_MSG_MAX 512

enum vu_vfio_role {
	VU_ROLE_NONE = 0,
	VU_ROLE_SAVE,
	VU_ROLE_LOAD,
};

struct vfio_uring_vfio {
	char name[VU_VFIO_NAME_MAX];
	int device_fd;
	int group_fd;     /* -1 unless opened through the group path */
	int container_fd; /* -1 unless opened through the group path */
	bool owns_device_fd;
	uint64_t mig_flags;
	int data_fd; /* the open session's data fd, owned; -1 when none */
	unsigned resets;
	char msg[VU_VFIO_MSG_MAX];

	/* save/load glue */
	enum vu_vfio_role role;
	bool outcome_known;   /* the done work (STOP / RUNNING / validation) has run */
	int outcome;          /* its result */
	struct vfio_uring_device_opts user; /* the caller's callbacks and opaque */

	/* live pre-copy through an engine (VFIO_URING_ENGINE_F_PRECOPY) */
	bool precopy_v2;      /* the PRECOPY_INFOv2 opt-in worked: REINIT is reported */
	bool precopy_live;    /* registered live and not yet moved out of PRE_COPY(_P2P) */
	bool no_data_size;    /* MIG_DATA_SIZE is missing: not asked again */
	uint64_t data_size;   /* its last answer ... */
	uint64_t data_size_ns; /* ... and when (vu_now_ns; 0: never) */
	bool fd_pinned;       /* the engine reads data_fd: a new fd on an arc must not replace it */
	bool fd_refused;      /* a driver handed a new fd while pinned (closed, not used) */
};

static const char *const state_names[VFIO_URING_VFIO_NUM_STATES] = {
	[VFIO_URING_VFIO_ERROR] = "ERROR",
	[VFIO_URING_VFIO_STOP] = "STOP",
	[VFIO_URING_VFIO_RUNNING] = "RUNNING",
	[VFIO_URING_VFIO_STOP_COPY] = "STOP_COPY",
	[VFIO_URING_VFIO_RESUMING] = "RESUMING",
	[VFIO_URING_VFIO_RUNNING_P2P] = "RUNNING_P2P",
	[VFIO_URING_VFIO_PRE_COPY] = "PRE_COPY",
	[VFIO_URING_VFIO_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

VFIO_URING_API const char *vfio_uring_vfio_state_name(enum vfio_uring_vfio_state state)
{
	if ((unsigned)state >= VFIO_URING_VFIO_NUM_STATES)
		return "INVALID";
	return state_names[state];
}

/* ---- the path table ---------------------------------------------------------------------- */

#define S_ERR VFIO_URING_VFIO_ERROR
#define S_STOP VFIO_URING_VFIO_STOP
#define S_RUN VFIO_URING_VFIO_RUNNING
#define S_SC VFIO_URING_VFIO_STOP_COPY
#define S_RES VFIO_URING_VFIO_RESUMING
#define S_RP2P VFIO_URING_VFIO_RUNNING_P2P
#define S_PC VFIO_URING_VFIO_PRE_COPY
#define S_PCP2P VFIO_URING_VFIO_PRE_COPY_P2P

/*
 * next_step[cur][target]: the next state on the shortest path from cur to target for a device
 * with every feature (STOP_COPY | P2P | PRE_COPY). It only uses the uAPI's direct arcs:
 *   RUNNING <-> RUNNING_P2P <-> STOP, STOP -> STOP_COPY, STOP_COPY -> STOP,
 *   STOP -> RESUMING, RESUMING -> STOP, RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P,
 *   PRE_COPY <-> PRE_COPY_P2P, PRE_COPY -> RUNNING, PRE_COPY_P2P -> RUNNING_P2P,
 *   PRE_COPY_P2P -> STOP_COPY (same data fd).
 * and never starts a session (STOP_COPY, RESUMING, a PRE_COPY state) on the way to another
 * state. Leaving a session state always ends that session first, except PRE_COPY* ->
 * STOP_COPY, which continues it. ERROR is a dead end here (only VFIO_DEVICE_RESET leaves it).
 */
static const uint8_t next_step[VFIO_URING_VFIO_NUM_STATES][VFIO_URING_VFIO_NUM_STATES] = {
	[S_STOP] = {
		[S_STOP] = S_STOP, [S_RUN] = S_RP2P, [S_SC] = S_SC, [S_RES] = S_RES,
		[S_RP2P] = S_RP2P, [S_PC] = S_RP2P, [S_PCP2P] = S_RP2P, [S_ERR] = S_ERR,
	},
	[S_RUN] = {
		[S_STOP] = S_RP2P, [S_RUN] = S_RUN, [S_SC] = S_RP2P, [S_RES] = S_RP2P,
		[S_RP2P] = S_RP2P, [S_PC] = S_PC, [S_PCP2P] = S_RP2P, [S_ERR] = S_ERR,
	},
	[S_SC] = {
		[S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_SC] = S_SC, [S_RES] = S_STOP,
		[S_RP2P] = S_STOP, [S_PC] = S_STOP, [S_PCP2P] = S_STOP, [S_ERR] = S_ERR,
	},
	[S_RES] = {
		[S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_SC] = S_STOP, [S_RES] = S_RES,
		[S_RP2P] = S_STOP, [S_PC] = S_STOP, [S_PCP2P] = S_STOP, [S_ERR] = S_ERR,
	},
	[S_RP2P] = {
		[S_STOP] = S_STOP, [S_RUN] = S_RUN, [S_SC] = S_STOP, [S_RES] = S_STOP,
		[S_RP2P] = S_RP2P, [S_PC] = S_RUN, [S_PCP2P] = S_PCP2P, [S_ERR] = S_ERR,
	},
	[S_PC] = {
		[S_STOP] = S_RUN, [S_RUN] = S_RUN, [S_SC] = S_PCP2P, [S_RES] = S_RUN,
		[S_RP2P] = S_RUN, [S_PC] = S_PC, [S_PCP2P] = S_PCP2P, [S_ERR] = S_ERR,
	},
	[S_PCP2P] = {
		[S_STOP] = S_RP2P, [S_RUN] = S_RP2P, [S_SC] = S_SC, [S_RES] = S_RP2P,
		[S_RP2P] = S_RP2P, [S_PC] = S_PC, [S_PCP2P] = S_PCP2P, [S_ERR] = S_ERR,
	},
	[S_ERR] = {
		[S_STOP] = S_ERR, [S_RUN] = S_ERR, [S_SC] = S_ERR, [S_RES] = S_ERR,
		[S_RP2P] = S_ERR, [S_PC] = S_ERR, [S_PCP2P] = S_ERR, [S_ERR] = S_ERR,
	},
};

/* The migration flags a state needs (STOP_COPY is mandatory, so it stands for "always"). */
static const uint64_t state_needs[VFIO_URING_VFIO_NUM_STATES] = {
	[S_ERR] = VFIO_URING_VFIO_MIG_STOP_COPY,
	[S_STOP] = VFIO_URING_VFIO_MIG_STOP_COPY,
	[S_RUN] = VFIO_URING_VFIO_MIG_STOP_COPY,
	[S_SC] = VFIO_URING_VFIO_MIG_STOP_COPY,
	[S_RES] = VFIO_URING_VFIO_MIG_STOP_COPY,
	[S_RP2P] = VFIO_URING_VFIO_MIG_P2P,
	[S_PC] = VFIO_URING_VFIO_MIG_PRE_COPY,
	[S_PCP2P] = VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY,
};

int vu_vfio_state_supported(uint64_t flags, enum vfio_uring_vfio_state state)
{
	if ((unsigned)state >= VFIO_URING_VFIO_NUM_STATES)
		return 0;
	return (flags & state_needs[state]) == state_needs[state];
}

int vu_vfio_next_state(uint64_t flags, enum vfio_uring_vfio_state cur,
		       enum vfio_uring_vfio_state target)
{
	if (!(flags & VFIO_URING_VFIO_MIG_STOP_COPY) || cur == S_ERR || target == S_ERR ||
	    !vu_vfio_state_supported(flags, cur) || !vu_vfio_state_supported(flags, target))
		return -EINVAL;
	/*
	 * A state the device lacks is a no-op step: skip through it as the kernel does (without
	 * P2P, RUNNING -> RUNNING_P2P -> STOP is the single arc RUNNING -> STOP; without P2P,
	 * PRE_COPY -> PRE_COPY_P2P -> STOP_COPY is PRE_COPY -> STOP_COPY).
	 */
	unsigned next = next_step[cur][target];
	for (int guard = 0; !vu_vfio_state_supported(flags, next); guard++) {
		if (guard >= VFIO_URING_VFIO_NUM_STATES)
			return -EINVAL;
		next = next_step[next][target];
	}
	return (int)next;
}

/* ---- helpers ----------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static void set_msg(struct vfio_uring_vfio *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dev->msg, sizeof(dev->msg), fmt, ap);
	va_end(ap);
}

static void close_data_fd(struct vfio_uring_vfio *dev)
{
	if (dev->data_fd >= 0) {
		close(dev->data_fd);
		dev->data_fd = -1;
	}
	dev->fd_pinned = false;
	dev->precopy_live = false;
}

/* One VFIO_DEVICE_FEATURE call with an 8-byte-aligned payload of up to 16 bytes. */
static int device_feature(int device_fd, uint32_t flags, void *payload, size_t len)
{
	union {
		struct vfio_device_feature hdr;
		uint64_t align[(sizeof(struct vfio_device_feature) + 16 + 7) / 8];
	} buf;

	if (len > 16)
		return -EINVAL;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.argsz = (uint32_t)(sizeof(struct vfio_device_feature) + len);
	buf.hdr.flags = flags;
	if (len)
		memcpy(buf.hdr.data, payload, len);
	if (ioctl(device_fd, VFIO_DEVICE_FEATURE, &buf) < 0)
		return -errno;
	if (len)
		memcpy(payload, buf.hdr.data, len);
	return 0;
}

static int query_migration(struct vfio_uring_vfio *dev)
{
	struct vfio_device_feature_migration mig = { 0 };
	int ret = device_feature(dev->device_fd,
				 VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
				 &mig, sizeof(mig));
	if (ret < 0) {
		set_msg(dev, "%s: no VFIO migration support (FEATURE_MIGRATION: %s)", dev->name,
			strerror(-ret));
		return ret == -ENOTTY || ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	if (!(mig.flags & VFIO_MIGRATION_STOP_COPY)) {
		set_msg(dev, "%s: migration flags 0x%llx lack STOP_COPY", dev->name,
			(unsigned long long)mig.flags);
		return -EOPNOTSUPP;
	}
	dev->mig_flags = mig.flags & (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P |
				      VFIO_URING_VFIO_MIG_PRE_COPY);
	return 0;
}

static struct vfio_uring_vfio *handle_new(const char *name)
{
	struct vfio_uring_vfio *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->device_fd = dev->group_fd = dev->container_fd = dev->data_fd = -1;
	return dev;
}

/* ---- opening ----------------------------------------------------------------------------- */

VFIO_URING_API int vfio_uring_vfio_find_group(const char *name)
{
	static const char *const buses[] = { "/sys/bus/mdev/devices", "/sys/bus/pci/devices" };
	char path[PATH_MAX], link[PATH_MAX];

	if (!name || !*name || strchr(name, '/'))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/iommu_group", buses[i], name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		const char *base = strrchr(link, '/');
		base = base ? base + 1 : link;
		char *end;
		long group = strtol(base, &end, 10);
		if (*end || end == base || group < 0 || group > INT_MAX)
			return -EINVAL;
		return (int)group;
	}
	return -ENOENT;
}

VFIO_URING_API int vfio_uring_vfio_open_group(int group, const char *name,
					      struct vfio_uring_vfio **out)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_uring_vfio *dev;
	char path[64];
	int ret;

	if (!name || !out)
		return -EINVAL;
	if (group < 0) {
		group = vfio_uring_vfio_find_group(name);
		if (group < 0)
			return group;
	}
	dev = handle_new(name);
	if (!dev)
		return -ENOMEM;
	dev->owns_device_fd = true;

	dev->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (dev->container_fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (ioctl(dev->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		ret = -EPROTONOSUPPORT;
		goto fail;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	dev->group_fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->group_fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (ioctl(dev->group_fd, VFIO_GROUP_GET_STATUS, &status) < 0) {
		ret = -errno;
		goto fail;
	}
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		ret = -EPERM;
		goto fail;
	}
	if (ioctl(dev->group_fd, VFIO_GROUP_SET_CONTAINER, &dev->container_fd) < 0) {
		ret = -errno;
		goto fail;
	}
	if (ioctl(dev->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0)
		ret = ioctl(dev->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
	else if (ioctl(dev->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0)
		ret = ioctl(dev->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU);
	else
		ret = -1, errno = ENODEV;
	if (ret < 0) {
		ret = -errno;
		goto fail;
	}
	dev->device_fd = ioctl(dev->group_fd, VFIO_GROUP_GET_DEVICE_FD, name);
	if (dev->device_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = query_migration(dev);
	if (ret < 0)
		goto fail;
	*out = dev;
	return 0;
fail:
	vfio_uring_vfio_close(dev);
	return ret;
}

VFIO_URING_API int vfio_uring_vfio_from_fd(int device_fd, const char *name,
					   struct vfio_uring_vfio **out)
{
	char fallback[32];
	struct vfio_uring_vfio *dev;
	int ret;

	if (!out)
		return -EINVAL;
	if (device_fd < 0 || fcntl(device_fd, F_GETFD) < 0)
		return -EBADF;
	if (!name) {
		snprintf(fallback, sizeof(fallback), "fd %d", device_fd);
		name = fallback;
	}
	dev = handle_new(name);
	if (!dev)
		return -ENOMEM;
	dev->device_fd = device_fd;
	ret = query_migration(dev);
	if (ret < 0) {
		free(dev);
		return ret;
	}
	*out = dev;
	return 0;
}

VFIO_URING_API void vfio_uring_vfio_close(struct vfio_uring_vfio *dev)
{
	if (!dev)
		return;
	close_data_fd(dev);
	if (dev->owns_device_fd && dev->device_fd >= 0)
		close(dev->device_fd);
	if (dev->group_fd >= 0)
		close(dev->group_fd);
	if (dev->container_fd >= 0)
		close(dev->container_fd);
	free(dev);
}

VFIO_URING_API const char *vfio_uring_vfio_name(const struct vfio_uring_vfio *dev)
{
	return dev->name;
}

VFIO_URING_API int vfio_uring_vfio_device_fd(const struct vfio_uring_vfio *dev)
{
	return dev->device_fd;
}

VFIO_URING_API int vfio_uring_vfio_data_fd(const struct vfio_uring_vfio *dev)
{
	return dev->data_fd;
}

VFIO_URING_API const char *vfio_uring_vfio_error(const struct vfio_uring_vfio *dev)
{
	return dev->msg;
}

VFIO_URING_API unsigned vfio_uring_vfio_reset_count(const struct vfio_uring_vfio *dev)
{
	return dev->resets;
}

/* ---- queries ----------------------------------------------------------------------------- */

VFIO_URING_API int vfio_uring_vfio_get_migration_flags(const struct vfio_uring_vfio *dev,
						       uint64_t *flags)
{
	if (!dev || !flags)
		return -EINVAL;
	*flags = dev->mig_flags;
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_get_data_size(struct vfio_uring_vfio *dev, uint64_t *bytes)
{
	struct vfio_device_feature_mig_data_size size = { 0 };
	int ret;

	if (!dev || !bytes)
		return -EINVAL;
	ret = device_feature(dev->device_fd,
			     VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
			     &size, sizeof(size));
	if (ret < 0) {
		set_msg(dev, "%s: MIG_DATA_SIZE: %s", dev->name, strerror(-ret));
		return ret;
	}
	*bytes = size.stop_copy_length;
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_get_state(struct vfio_uring_vfio *dev,
					     enum vfio_uring_vfio_state *state)
{
	struct vfio_device_feature_mig_state st = { .data_fd = -1 };
	int ret;

	if (!dev || !state)
		return -EINVAL;
	ret = device_feature(dev->device_fd,
			     VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			     &st, sizeof(st));
	if (ret < 0) {
		set_msg(dev, "%s: reading the migration state: %s", dev->name, strerror(-ret));
		return ret;
	}
	if (st.device_state >= VFIO_URING_VFIO_NUM_STATES) {
		set_msg(dev, "%s: unknown migration state %u", dev->name, st.device_state);
		return -EPROTO;
	}
	*state = (enum vfio_uring_vfio_state)st.device_state;
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_precopy_info(struct vfio_uring_vfio *dev,
						uint64_t *initial_bytes, uint64_t *dirty_bytes)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };

	if (!dev)
		return -EINVAL;
	if (dev->data_fd < 0) {
		set_msg(dev, "%s: PRECOPY_INFO: no save session open", dev->name);
		return -EINVAL;
	}
	if (ioctl(dev->data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info) < 0) {
		int err = errno;
		set_msg(dev, "%s: PRECOPY_INFO: %s", dev->name, strerror(err));
		return -err;
	}
	if (initial_bytes)
		*initial_bytes = info.initial_bytes;
	if (dirty_bytes)
		*dirty_bytes = info.dirty_bytes;
	return 0;
}

/* ---- state moves ------------------------------------------------------------------------- */

VFIO_URING_API int vfio_uring_vfio_reset(struct vfio_uring_vfio *dev)
{
	if (!dev)
		return -EINVAL;
	/* A reset ends every session; the kernel disables the old data fd. */
	close_data_fd(dev);
	dev->precopy_live = false;
	if (ioctl(dev->device_fd, VFIO_DEVICE_RESET) < 0)
		return -errno;
	dev->resets++;
	return 0;
}

static bool arc_ends_session(enum vfio_uring_vfio_state from, enum vfio_uring_vfio_state to)
{
	switch (from) {
	case S_SC:
	case S_RES:
		return to != from;
	case S_PC:
	case S_PCP2P:
		return to != S_PC && to != S_PCP2P && to != S_SC;
	default:
		return false;
	}
}

/* One arc. A new data fd replaces none (a session can only start from a session-less state). */
static int set_one(struct vfio_uring_vfio *dev, enum vfio_uring_vfio_state from,
		   enum vfio_uring_vfio_state to)
{
	struct vfio_device_feature_mig_state st = { .device_state = (uint32_t)to, .data_fd = -1 };
	int ret = device_feature(dev->device_fd,
				 VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				 &st, sizeof(st));
	if (ret < 0)
		return ret;
	if (to != S_PC && to != S_PCP2P)
		dev->precopy_live = false;
	if (arc_ends_session(from, to))
		close_data_fd(dev);
	if (st.data_fd >= 0) {
		/*
		 * PRE_COPY_P2P -> STOP_COPY continues the session; a driver may hand the fd again.
		 * While an engine reads the old fd it stays: the engine cannot switch fds.
		 */
		if (dev->fd_pinned && dev->data_fd >= 0 && dev->data_fd != st.data_fd) {
			close(st.data_fd);
			dev->fd_refused = true;
			return 0;
		}
		if (dev->data_fd >= 0 && dev->data_fd != st.data_fd)
			close_data_fd(dev);
		dev->data_fd = st.data_fd;
	}
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_set_state(struct vfio_uring_vfio *dev,
					     enum vfio_uring_vfio_state target)
{
	enum vfio_uring_vfio_state cur, left;
	int ret;

	if (!dev)
		return -EINVAL;
	dev->msg[0] = '\0';
	if (target == S_ERR || !vu_vfio_state_supported(dev->mig_flags, target)) {
		set_msg(dev, "%s: cannot move to %s (migration flags 0x%llx)", dev->name,
			vfio_uring_vfio_state_name(target), (unsigned long long)dev->mig_flags);
		return -EINVAL;
	}
	ret = vfio_uring_vfio_get_state(dev, &cur);
	if (ret < 0)
		return ret;
	if (cur == S_ERR) {
		ret = vfio_uring_vfio_reset(dev);
		if (ret < 0) {
			set_msg(dev, "%s: device is in ERROR and VFIO_DEVICE_RESET failed: %s",
				dev->name, strerror(-ret));
			return ret;
		}
		/* kept even on success: the caller should know the device lost its state */
		set_msg(dev, "%s: device was in ERROR; reset to RUNNING before moving to %s",
			dev->name, vfio_uring_vfio_state_name(target));
		cur = S_RUN;
	}
	while (cur != target) {
		int next = vu_vfio_next_state(dev->mig_flags, cur, target);
		if (next < 0) {
			set_msg(dev, "%s: no path from %s to %s", dev->name,
				vfio_uring_vfio_state_name(cur), vfio_uring_vfio_state_name(target));
			return next;
		}
		ret = set_one(dev, cur, (enum vfio_uring_vfio_state)next);
		if (ret == 0) {
			cur = (enum vfio_uring_vfio_state)next;
			continue;
		}
		/* The uAPI: after a failed SET the device is in the start state, anywhere on the
		 * path, or ERROR. Find out; ERROR (or not knowing) is recovered with a reset. */
		if (vfio_uring_vfio_get_state(dev, &left) == 0 && left != S_ERR) {
			if (arc_ends_session(cur, left))
				close_data_fd(dev);
			set_msg(dev, "%s: %s -> %s failed: %s; device left in %s", dev->name,
				vfio_uring_vfio_state_name(cur),
				vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)next),
				strerror(-ret), vfio_uring_vfio_state_name(left));
			return ret;
		}
		int rret = vfio_uring_vfio_reset(dev);
		set_msg(dev, "%s: %s -> %s failed: %s; device fell to ERROR, %s", dev->name,
			vfio_uring_vfio_state_name(cur),
			vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)next), strerror(-ret),
			rret == 0 ? "reset to RUNNING" : "and VFIO_DEVICE_RESET failed");
		return ret;
	}
	return 0;
}

/* ---- save and load through an engine ----------------------------------------------------- */

/* Source done: ok -> STOP (the session ends), failed -> RUNNING (the guest resumes). */
static int save_outcome(struct vfio_uring_vfio *dev, int error)
{
	char why[VU_VFIO_MSG_MAX];

	if (dev->outcome_known) {
		/* Already STOP after a good save; a later failure (the destination's) resumes. */
		if (error < 0 && dev->outcome == 0) {
			dev->outcome = error;
			int ret = vfio_uring_vfio_set_state(dev, S_RUN);
			snprintf(why, sizeof(why), "%s", dev->msg);
			set_msg(dev, "%s: migration failed after the save (%s); device %s", dev->name,
				strerror(-error), ret == 0 ? "resumed (RUNNING)" : why);
		}
		return dev->outcome;
	}
	dev->outcome_known = true;
	if (error == 0) {
		int ret = vfio_uring_vfio_set_state(dev, S_STOP);
		dev->outcome = ret;
		return ret;
	}
	dev->outcome = error;
	int ret = vfio_uring_vfio_set_state(dev, S_RUN);
	snprintf(why, sizeof(why), "%s", dev->msg);
	set_msg(dev, "%s: save failed (%s); device %s", dev->name, strerror(-error),
		ret == 0 ? "resumed (RUNNING)" : why);
	return error;
}

/* Destination done: ok -> RESUMING -> STOP (the driver validates); failed -> reset. */
static int load_outcome(struct vfio_uring_vfio *dev, int error)
{
	if (dev->outcome_known)
		return dev->outcome;
	dev->outcome_known = true;
	if (error == 0) {
		int ret = vfio_uring_vfio_set_state(dev, S_STOP);
		if (ret == 0) {
			dev->outcome = 0;
			return 0;
		}
		char why[VU_VFIO_MSG_MAX];
		snprintf(why, sizeof(why), "%s", dev->msg);
		int rret = vfio_uring_vfio_reset(dev);
		set_msg(dev, "%s: device rejected the migration state (%s); %s", dev->name, why,
			rret == 0 ? "device reset to RUNNING" : "VFIO_DEVICE_RESET failed too");
		dev->outcome = ret;
		return ret;
	}
	int rret = vfio_uring_vfio_reset(dev);
	set_msg(dev, "%s: load failed (%s); %s", dev->name, strerror(-error),
		rret == 0 ? "device reset to RUNNING" : "VFIO_DEVICE_RESET failed too");
	dev->outcome = error;
	return error;
}

static int wrap_save_config(void *opaque, const void **data, size_t *len)
{
	struct vfio_uring_vfio *dev = opaque;

	if (dev->user.save_config)
		return dev->user.save_config(dev->user.opaque, data, len);
	*data = NULL;
	*len = 0;
	return 0;
}

static int wrap_load_config(void *opaque, const void *data, size_t len)
{
	struct vfio_uring_vfio *dev = opaque;

	if (dev->user.load_config)
		return dev->user.load_config(dev->user.opaque, data, len);
	return 0;
}

#define VU_DATA_SIZE_MAX_AGE_NS 100000000u /* 100 ms */

static bool in_precopy(enum vfio_uring_vfio_state state)
{
	return state == S_PC || state == S_PCP2P;
}

/*
 * The engine's precopy_info for a device registered live: GET_PRECOPY_INFO on the data fd,
 * MIG_DATA_SIZE for the stop-copy estimate. A device no longer in a PRE_COPY state (the VMM
 * moved it on before telling the engine) reports zeros: the engine is about to stop_copy().
 */
static int wrap_precopy_info(void *opaque, struct vfio_uring_precopy_info *info)
{
	struct vfio_uring_vfio *dev = opaque;
	struct vfio_precopy_info pi = { .argsz = sizeof(pi), .flags = 0 };
	enum vfio_uring_vfio_state state;

	if (!dev->precopy_live || dev->data_fd < 0)
		return 0;
	if (ioctl(dev->data_fd, VFIO_MIG_GET_PRECOPY_INFO, &pi) < 0) {
		int err = errno;
		if (vfio_uring_vfio_get_state(dev, &state) == 0 && !in_precopy(state)) {
			dev->precopy_live = false;
			return 0;
		}
		set_msg(dev, "%s: PRECOPY_INFO: %s", dev->name, strerror(err));
		return -err;
	}
	info->initial_bytes = pi.initial_bytes;
	info->dirty_bytes = pi.dirty_bytes;
	/* Without the v2 opt-in flags only echo our 0; never trust them then. */
	if (dev->precopy_v2 && (pi.flags & VFIO_PRECOPY_INFO_REINIT))
		info->flags |= VFIO_URING_PRECOPY_F_REINIT;
	/*
	 * The engine asks every poll (10 ms); a driver may answer MIG_DATA_SIZE with a firmware
	 * command, and an estimate 100 ms old is as good.
	 */
	if (!dev->no_data_size && vu_now_ns() - dev->data_size_ns >= VU_DATA_SIZE_MAX_AGE_NS) {
		struct vfio_device_feature_mig_data_size size = { 0 };
		int ret = device_feature(dev->device_fd,
					 VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
					 &size, sizeof(size));
		if (ret == 0) {
			dev->data_size = size.stop_copy_length;
			dev->data_size_ns = vu_now_ns();
		} else if (ret == -ENOTTY || ret == -EOPNOTSUPP || ret == -EINVAL) {
			dev->no_data_size = true; /* 0: the engine uses initial + dirty */
		}
	}
	info->stop_copy_bytes = dev->no_data_size ? 0 : dev->data_size;
	return 0;
}

static void wrap_done(void *opaque, int error)
{
	struct vfio_uring_vfio *dev = opaque;

	if (dev->role == VU_ROLE_SAVE)
		save_outcome(dev, error);
	else if (dev->role == VU_ROLE_LOAD)
		load_outcome(dev, error);
	if (dev->user.done)
		dev->user.done(dev->user.opaque, error);
}

static int add_to_engine(struct vfio_uring_vfio *dev, struct vfio_uring_engine *engine,
			 const struct vfio_uring_device_opts *opts, bool live,
			 struct vfio_uring_device **out)
{
	struct vfio_uring_device_opts o;
	int ret = vu_device_opts_read(&o, opts); /* the caller's size (vfio-uring.h "ABI") */

	if (ret)
		return ret;
	dev->user = o;
	o.data_fd = dev->data_fd;
	o.save_config = wrap_save_config;
	o.load_config = wrap_load_config;
	o.done = wrap_done;
	o.precopy_info = live ? wrap_precopy_info : NULL;
	o.opaque = dev;
	return vfio_uring_engine_add_device(engine, &o, out);
}

static int check_glue_args(struct vfio_uring_vfio *dev, struct vfio_uring_engine *engine,
			   const struct vfio_uring_device_opts *opts)
{
	struct vfio_uring_device_opts o;
	int ret;

	if (!dev || !engine)
		return -EINVAL;
	ret = vu_device_opts_read(&o, opts); /* checked before the device changes state */
	if (ret)
		return ret;
	if (dev->role != VU_ROLE_NONE && !dev->outcome_known) {
		set_msg(dev, "%s: already registered with an engine", dev->name);
		return -EBUSY;
	}
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_save_precopy(struct vfio_uring_vfio *dev)
{
	enum vfio_uring_vfio_state cur;
	int ret;

	if (!dev)
		return -EINVAL;
	if (!(dev->mig_flags & VFIO_URING_VFIO_MIG_PRE_COPY)) {
		set_msg(dev, "%s: no PRE_COPY support (migration flags 0x%llx)", dev->name,
			(unsigned long long)dev->mig_flags);
		return -EOPNOTSUPP;
	}
	ret = vfio_uring_vfio_get_state(dev, &cur);
	if (ret < 0)
		return ret;
	/*
	 * Opt in to PRECOPY_INFOv2 before the session starts, so that the whole session reports
	 * REINIT. A kernel or driver without it refuses (ENOTTY, EINVAL...): not an error, the
	 * session then simply never reports REINIT. Already in PRE_COPY: the session's choice
	 * was made when it started.
	 */
	if (!in_precopy(cur))
		dev->precopy_v2 = device_feature(dev->device_fd,
						 VFIO_DEVICE_FEATURE_SET |
						 VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2,
						 NULL, 0) == 0;
	return vfio_uring_vfio_set_state(dev, S_PC);
}

VFIO_URING_API int vfio_uring_vfio_precopy_v2(const struct vfio_uring_vfio *dev)
{
	return dev && dev->precopy_v2 ? 1 : 0;
}

/* Source, live: a device in PRE_COPY(_P2P) registered with a pre-copy engine as it is. */
static int save_add_live(struct vfio_uring_vfio *dev, struct vfio_uring_engine *engine,
			 const struct vfio_uring_device_opts *opts, struct vfio_uring_device **out)
{
	int ret;

	if (dev->data_fd < 0) {
		set_msg(dev, "%s: in PRE_COPY without a data fd (not entered through this handle)",
			dev->name);
		return -EPROTO;
	}
	dev->role = VU_ROLE_SAVE;
	dev->outcome_known = false;
	dev->outcome = 0;
	dev->precopy_live = true;
	dev->data_size_ns = 0; /* a new session: ask MIG_DATA_SIZE afresh */
	dev->fd_pinned = true;
	dev->fd_refused = false;
	ret = add_to_engine(dev, engine, opts, true, out);
	if (ret < 0) {
		dev->role = VU_ROLE_NONE;
		dev->precopy_live = false;
		dev->fd_pinned = false;
		set_msg(dev, "%s: adding to the engine: %s", dev->name, strerror(-ret));
	}
	return ret;
}

VFIO_URING_API int vfio_uring_vfio_stop_copy(struct vfio_uring_vfio *dev)
{
	enum vfio_uring_vfio_state cur;
	int old_fd, ret;

	if (!dev)
		return -EINVAL;
	ret = vfio_uring_vfio_get_state(dev, &cur);
	if (ret < 0)
		return ret;
	if (!in_precopy(cur) || dev->data_fd < 0) {
		set_msg(dev, "%s: stop_copy from %s%s: needs a PRE_COPY session", dev->name,
			vfio_uring_vfio_state_name(cur), dev->data_fd < 0 ? " without a data fd" : "");
		return -EINVAL;
	}
	old_fd = dev->data_fd;
	/* The path table's shortest path: PRE_COPY -> PRE_COPY_P2P -> STOP_COPY with P2P. */
	ret = vfio_uring_vfio_set_state(dev, S_SC);
	if (ret < 0)
		return ret;
	if (dev->fd_refused || dev->data_fd != old_fd) {
		set_msg(dev, "%s: the driver handed a new data fd on the way to STOP_COPY; the engine "
			"reads the old one", dev->name);
		return -EPROTO;
	}
	return 0;
}

VFIO_URING_API int vfio_uring_vfio_save_add(struct vfio_uring_vfio *dev,
					    struct vfio_uring_engine *engine,
					    const struct vfio_uring_device_opts *opts,
					    struct vfio_uring_device **out)
{
	char why[VU_VFIO_MSG_MAX];
	enum vfio_uring_vfio_state cur;
	int ret = check_glue_args(dev, engine, opts);

	if (ret < 0)
		return ret;
	/* A pre-copy engine takes a device in PRE_COPY live; the engine is the library's own. */
	if (engine->opts.side == VFIO_URING_SOURCE &&
	    (engine->opts.flags & VFIO_URING_ENGINE_F_PRECOPY) &&
	    vfio_uring_vfio_get_state(dev, &cur) == 0 && in_precopy(cur)) {
		ret = save_add_live(dev, engine, opts, out);
		if (ret == 0)
			return 0;
		snprintf(why, sizeof(why), "%s", dev->msg);
		int rret = vfio_uring_vfio_set_state(dev, S_RUN);
		set_msg(dev, "%s; device %s", why, rret == 0 ? "back in RUNNING" : "could not resume");
		return ret;
	}
	ret = vfio_uring_vfio_set_state(dev, S_SC);
	if (ret == 0 && dev->data_fd < 0) {
		set_msg(dev, "%s: in STOP_COPY without a data fd", dev->name);
		ret = -EPROTO;
	}
	if (ret == 0) {
		dev->role = VU_ROLE_SAVE;
		dev->outcome_known = false;
		dev->outcome = 0;
		ret = add_to_engine(dev, engine, opts, false, out);
		if (ret == 0)
			return 0;
		dev->role = VU_ROLE_NONE;
		snprintf(why, sizeof(why), "%s: adding to the engine: %s", dev->name, strerror(-ret));
	} else {
		snprintf(why, sizeof(why), "%s", dev->msg);
	}
	/* Back to RUNNING: a save that did not start must not leave the guest stopped. */
	int rret = vfio_uring_vfio_set_state(dev, S_RUN);
	set_msg(dev, "%s; device %s", why, rret == 0 ? "back in RUNNING" : "could not resume");
	return ret;
}

VFIO_URING_API int vfio_uring_vfio_save_finish(struct vfio_uring_vfio *dev, int result)
{
	if (!dev || dev->role != VU_ROLE_SAVE)
		return -EINVAL;
	return save_outcome(dev, result);
}

VFIO_URING_API int vfio_uring_vfio_load_add(struct vfio_uring_vfio *dev,
					    struct vfio_uring_engine *engine,
					    const struct vfio_uring_device_opts *opts,
					    struct vfio_uring_device **out)
{
	int ret = check_glue_args(dev, engine, opts);

	if (ret < 0)
		return ret;
	/* RESUMING is only entered from STOP; go there first so a failure says where. */
	ret = vfio_uring_vfio_set_state(dev, S_STOP);
	if (ret == 0)
		ret = vfio_uring_vfio_set_state(dev, S_RES);
	if (ret == 0 && dev->data_fd < 0) {
		set_msg(dev, "%s: in RESUMING without a data fd", dev->name);
		ret = -EPROTO;
	}
	if (ret < 0)
		return ret;
	dev->role = VU_ROLE_LOAD;
	dev->outcome_known = false;
	dev->outcome = 0;
	ret = add_to_engine(dev, engine, opts, false, out);
	if (ret < 0) {
		dev->role = VU_ROLE_NONE;
		vfio_uring_vfio_reset(dev);
		set_msg(dev, "%s: adding to the engine: %s; device reset to RUNNING", dev->name,
			strerror(-ret));
	}
	return ret;
}

VFIO_URING_API int vfio_uring_vfio_load_finish(struct vfio_uring_vfio *dev, int result)
{
	if (!dev || dev->role != VU_ROLE_LOAD)
		return -EINVAL;
	return load_outcome(dev, result);
}
