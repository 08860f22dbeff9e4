/* SPDX-License-Identifier: MIT */
#include "glue-common.h"

#include <errno.h>
#include <string.h>

static const char blob[] = "config";

static void user_done(void *opaque, int error)
{
	struct glue_user *u = opaque;

	u->done_calls++;
	u->done_error = error;
}

static int user_save_config(void *opaque, const void **data, size_t *len)
{
	struct glue_user *u = opaque;

	u->config_calls++;
	*data = blob;
	*len = sizeof(blob);
	return 0;
}

static int user_load_config(void *opaque, const void *data, size_t len)
{
	struct glue_user *u = opaque;

	u->config_calls++;
	return len == sizeof(blob) && memcmp(data, blob, len) == 0 ? 0 : -EBADMSG;
}

void glue_opts_for(struct vfio_uring_device_opts *o, struct glue_user *u)
{
	vfio_uring_device_opts_init(o);
	o->idstr = "vfio";
	o->multifd = VFIO_URING_MULTIFD_ON;
	o->save_config = user_save_config;
	o->load_config = user_load_config;
	o->done = user_done;
	o->opaque = u;
	o->data_fd = 12345; /* ignored: the session's fd is used */
}

struct vfio_uring_engine *glue_engine_for(enum vfio_uring_side side, const int *socks,
					  unsigned n, unsigned flags, size_t chunk_size)
{
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *e = NULL;

	vfio_uring_engine_opts_init(&eo, side);
	if (chunk_size)
		eo.chunk_size = chunk_size;
	eo.progress_timeout_ms = 10000;
	eo.flags = flags;
	eo.precopy_poll_ms = 2;
	if (vfio_uring_engine_create(&eo, &e) < 0)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		if (vfio_uring_engine_add_channel(e, socks[i]) < 0) {
			vfio_uring_engine_destroy(e);
			return NULL;
		}
	return e;
}
