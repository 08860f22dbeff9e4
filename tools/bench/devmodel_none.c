/* SPDX-License-Identifier: MIT */
/* The device model's API in a build without libfuse3: every call says so. */
#include "devmodel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int devmodel_available(char *why, size_t why_len)
{
	snprintf(why, why_len, "this build has no device model (libfuse3-dev was missing)");
	return -ENOSYS;
}

int devmodel_create(const struct devmodel_file *files, unsigned n, struct devmodel **out,
		    char *err, size_t err_len)
{
	(void)files;
	(void)n;
	*out = NULL;
	return err ? devmodel_available(err, err_len) : -ENOSYS;
}

int devmodel_open(const struct devmodel *m, unsigned i)
{
	(void)m;
	(void)i;
	return -ENOSYS;
}

const char *devmodel_path(const struct devmodel *m, unsigned i)
{
	(void)m;
	(void)i;
	return NULL;
}

void devmodel_get_stats(const struct devmodel *m, struct devmodel_stats *st)
{
	(void)m;
	memset(st, 0, sizeof(*st));
}

int devmodel_destroy(struct devmodel *m, struct devmodel_stats *final)
{
	(void)m;
	if (final)
		memset(final, 0, sizeof(*final));
	return 0;
}

int devmodel_precopy_info(const struct devmodel *m, unsigned i, struct devmodel_precopy_info *out)
{
	(void)m;
	(void)i;
	memset(out, 0, sizeof(*out));
	return -ENOSYS;
}

int devmodel_precopy_reinit(const struct devmodel *m, unsigned i, uint64_t bytes)
{
	(void)m;
	(void)i;
	(void)bytes;
	return -ENOSYS;
}

int devmodel_stop_copy(const struct devmodel *m, unsigned i)
{
	(void)m;
	(void)i;
	return -ENOSYS;
}

int devmodel_stream_length(const struct devmodel *m, unsigned i, uint64_t *len)
{
	(void)m;
	(void)i;
	*len = 0;
	return -ENOSYS;
}
