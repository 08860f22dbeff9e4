/* SPDX-License-Identifier: MIT */
/*
 * A scripted fake VFIO migration device for host tests: link with -Wl,--wrap=ioctl and
 * ioctl() on fake.fd (or on a data fd it handed out) is answered here, following the uAPI's
 * arcs; failures can be injected per arc.
 */
#ifndef VFIO_URING_TESTS_VM_FAKE_VFIO_H
#define VFIO_URING_TESTS_VM_FAKE_VFIO_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfio_device.h"

/* ---- the fake device ---- */
static struct {
	int fd;
	uint64_t flags;
	int state;
	int arcs[32][2];
	int narcs;
	int resets;
	int data_fds[8]; /* handed out */
	int ndata;
	/* failure injection: the arc fail_from -> fail_to fails with fail_errno, leaving the
	 * device in fail_leave */
	int fail_from, fail_to, fail_errno, fail_leave;
	bool new_fd_on_continue; /* PRE_COPY_P2P -> STOP_COPY hands out a new fd */
	bool no_data_size;
	/* pipe mode: a save session's fd is a pipe holding `stream` (then EOF); a resume
	 * session's fd is the write end of a pipe whose read end is kept in resume_read */
	bool pipe_mode;
	const uint8_t *stream;
	size_t stream_len;
	int resume_read;
	/* pre-copy mode: a PRE_COPY session's fd is a memfd holding stream[0, precopy_initial)
	 * (read at its position; its end reads 0: "nothing for now"); PRE_COPY(_P2P) ->
	 * STOP_COPY appends the rest of `stream`. */
	bool precopy_memfd;
	int precopy_fd;
	size_t precopy_initial;
	bool v2_supported, v2_on; /* PRECOPY_INFOv2 */
	int reinit_once;          /* with v2 on: report REINIT at this many PRECOPY_INFOs */
	bool flags_garbage;       /* PRECOPY_INFO sets REINIT in flags whatever the opt-in */
	int precopy_infos;        /* PRECOPY_INFO calls (answered or refused) */
	int data_size_calls;      /* MIG_DATA_SIZE calls */
} fake;

static void fake_reset(uint64_t flags)
{
	memset(&fake.arcs, 0, sizeof(fake.arcs));
	fake.narcs = fake.resets = fake.ndata = 0;
	fake.flags = flags;
	fake.state = VFIO_URING_VFIO_RUNNING;
	fake.fail_from = fake.fail_to = -1;
	fake.new_fd_on_continue = fake.no_data_size = fake.pipe_mode = false;
	fake.resume_read = -1;
	fake.precopy_memfd = fake.v2_supported = fake.v2_on = fake.flags_garbage = false;
	fake.precopy_fd = -1;
	fake.precopy_initial = 0;
	fake.reinit_once = fake.precopy_infos = 0;
}

static bool fake_is_data_fd(int fd)
{
	for (int i = 0; i < fake.ndata; i++)
		if (fake.data_fds[i] == fd)
			return true;
	return false;
}

static int new_data_fd(int to)
{
	int fd = -1, p[2];

	if (fake.precopy_memfd &&
	    (to == VFIO_URING_VFIO_PRE_COPY || to == VFIO_URING_VFIO_PRE_COPY_P2P)) {
		fd = memfd_create("fake-precopy", MFD_CLOEXEC);
		if (fd >= 0 && (write(fd, fake.stream, fake.precopy_initial) !=
				(ssize_t)fake.precopy_initial || lseek(fd, 0, SEEK_SET) != 0)) {
			close(fd);
			fd = -1;
		}
		fake.precopy_fd = fd;
	} else if (!fake.pipe_mode) {
		fd = eventfd(0, EFD_CLOEXEC);
	} else if (pipe2(p, O_CLOEXEC) == 0 && to == VFIO_URING_VFIO_RESUMING) {
		fake.resume_read = p[0];
		fd = p[1];
	} else if (fake.stream_len <= 65536 &&
		   write(p[1], fake.stream, fake.stream_len) == (ssize_t)fake.stream_len) {
		close(p[1]);
		fd = p[0];
	}
	if (fake.ndata < 8)
		fake.data_fds[fake.ndata++] = fd;
	return fd;
}

/* The stop-copy part of a pre-copy session: the rest of the stream, after what is there. */
static void fake_precopy_to_stop_copy(void)
{
	size_t rest = fake.stream_len - fake.precopy_initial;

	if (pwrite(fake.precopy_fd, fake.stream + fake.precopy_initial, rest,
		   (off_t)fake.precopy_initial) != (ssize_t)rest)
		fake.precopy_fd = -1; /* the test sees a short stream */
}

static int fake_feature(struct vfio_device_feature *f)
{
	uint32_t id = f->flags & VFIO_DEVICE_FEATURE_MASK;

	if (id == VFIO_DEVICE_FEATURE_MIGRATION && (f->flags & VFIO_DEVICE_FEATURE_GET)) {
		struct vfio_device_feature_migration m = { .flags = fake.flags };
		memcpy(f->data, &m, sizeof(m));
		return 0;
	}
	if (id == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE && (f->flags & VFIO_DEVICE_FEATURE_GET)) {
		fake.data_size_calls++;
		if (fake.no_data_size)
			return errno = ENOTTY, -1;
		struct vfio_device_feature_mig_data_size s = { .stop_copy_length = 96 };
		memcpy(f->data, &s, sizeof(s));
		return 0;
	}
	if (id == VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 && (f->flags & VFIO_DEVICE_FEATURE_SET)) {
		if (!fake.v2_supported)
			return errno = ENOTTY, -1;
		if (!(f->flags & VFIO_DEVICE_FEATURE_PROBE))
			fake.v2_on = true;
		return 0;
	}
	if (id != VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)
		return errno = ENOTTY, -1;
	struct vfio_device_feature_mig_state st;
	memcpy(&st, f->data, sizeof(st));
	if (f->flags & VFIO_DEVICE_FEATURE_GET) {
		st.device_state = (uint32_t)fake.state;
		st.data_fd = -1;
		memcpy(f->data, &st, sizeof(st));
		return 0;
	}
	int from = fake.state, to = (int)st.device_state;
	if (fake.narcs < 32) {
		fake.arcs[fake.narcs][0] = from;
		fake.arcs[fake.narcs][1] = to;
		fake.narcs++;
	}
	if (from == fake.fail_from && to == fake.fail_to) {
		fake.state = fake.fail_leave;
		return errno = fake.fail_errno, -1;
	}
	if (from == VFIO_URING_VFIO_ERROR)
		return errno = EINVAL, -1;
	st.data_fd = -1;
	if ((from == VFIO_URING_VFIO_STOP && (to == VFIO_URING_VFIO_STOP_COPY ||
					      to == VFIO_URING_VFIO_RESUMING)) ||
	    (from == VFIO_URING_VFIO_RUNNING && to == VFIO_URING_VFIO_PRE_COPY) ||
	    (from == VFIO_URING_VFIO_RUNNING_P2P && to == VFIO_URING_VFIO_PRE_COPY_P2P) ||
	    (fake.new_fd_on_continue && from == VFIO_URING_VFIO_PRE_COPY_P2P &&
	     to == VFIO_URING_VFIO_STOP_COPY))
		st.data_fd = new_data_fd(to);
	if (fake.precopy_memfd && fake.precopy_fd >= 0 && to == VFIO_URING_VFIO_STOP_COPY &&
	    (from == VFIO_URING_VFIO_PRE_COPY || from == VFIO_URING_VFIO_PRE_COPY_P2P))
		fake_precopy_to_stop_copy();
	fake.state = to;
	memcpy(f->data, &st, sizeof(st));
	return 0;
}

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);

	if (fd == fake.fd && req == VFIO_DEVICE_FEATURE)
		return fake_feature(arg);
	if (fd == fake.fd && req == VFIO_DEVICE_RESET) {
		fake.resets++;
		fake.state = VFIO_URING_VFIO_RUNNING;
		return 0;
	}
	if (fake_is_data_fd(fd) && req == VFIO_MIG_GET_PRECOPY_INFO) {
		struct vfio_precopy_info *info = arg;
		fake.precopy_infos++;
		if (fake.state != VFIO_URING_VFIO_PRE_COPY && fake.state != VFIO_URING_VFIO_PRE_COPY_P2P)
			return errno = EINVAL, -1;
		info->initial_bytes = 24;
		info->dirty_bytes = 0;
		if (fake.precopy_memfd && fd == fake.precopy_fd) {
			off_t pos = lseek(fd, 0, SEEK_CUR);
			info->initial_bytes = pos >= 0 && (size_t)pos < fake.precopy_initial
						      ? fake.precopy_initial - (size_t)pos : 0;
		}
		/* flags: the caller's unless v2 is on (then REINIT when the driver has new data) */
		if (fake.v2_on) {
			info->flags = 0;
			if (fake.reinit_once > 0) {
				fake.reinit_once--;
				info->flags = VFIO_PRECOPY_INFO_REINIT;
			}
		}
		if (fake.flags_garbage)
			info->flags |= VFIO_PRECOPY_INFO_REINIT;
		return 0;
	}
	return __real_ioctl(fd, req, arg);
}

#endif
