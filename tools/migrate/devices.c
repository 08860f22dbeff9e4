/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: the devices and what both sides do with them the same way: open them,
 * register them with an engine, and carry each one's config blob (the VMM's content: with a
 * QEMU peer, QEMU's VMState encoding of the device's PCI config) to or from its own file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migrate.h"

#define MIG_CONFIG_MAX (64u << 20)

int mig_open_devices(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		int group = d->group >= 0 ? d->group : vfio_uring_vfio_find_group(d->name);
		int ret = group;
		if (group < 0) {
			mig_fail(s, ret, "%s: no IOMMU group in /sys/bus/{mdev,pci}/devices: %s",
				 d->name, strerror(-ret));
			mig_device_fate(d, MIG_FAILED, "not opened: no IOMMU group found");
		} else {
			ret = vfio_uring_vfio_open_group(group, d->name, &d->vfio);
			if (ret < 0) {
				mig_fail(s, ret, "%s: cannot open through /dev/vfio/%d: %s", d->name,
					 group, strerror(-ret));
				mig_device_fate(d, MIG_FAILED, "not opened: /dev/vfio/%d: %s", group,
						strerror(-ret));
			}
		}
		if (ret < 0) {
			for (unsigned j = i + 1; j < s->ndev; j++)
				mig_device_fate(&s->devs[j], MIG_NOT_OPENED,
						"not opened (%s failed to open)", d->name);
			return ret;
		}
		mig_device_fate(d, MIG_UNTOUCHED, "untouched");
		uint64_t flags = 0;
		vfio_uring_vfio_get_migration_flags(d->vfio, &flags);
		if (vfio_uring_vfio_get_data_size(d->vfio, &d->data_size) < 0)
			d->data_size = 0;
		fprintf(stderr, "%s: migration flags 0x%llx%s%s%s, MIG_DATA_SIZE %llu\n", d->name,
			(unsigned long long)flags,
			flags & VFIO_URING_VFIO_MIG_STOP_COPY ? " STOP_COPY" : "",
			flags & VFIO_URING_VFIO_MIG_P2P ? " P2P" : "",
			flags & VFIO_URING_VFIO_MIG_PRE_COPY ? " PRE_COPY" : "",
			(unsigned long long)d->data_size);
	}
	return 0;
}

void mig_close_devices(struct mig_session *s)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		vfio_uring_vfio_close(s->devs[i].vfio);
		s->devs[i].vfio = NULL;
	}
}

/* Chunk size: the device state estimate, rounded up to 4 KiB, between 4 KiB and 1 MiB. */
static size_t pick_chunk(const struct mig_session *s)
{
	uint64_t biggest = 0;

	for (unsigned i = 0; i < s->ndev; i++)
		if (s->devs[i].data_size > biggest)
			biggest = s->devs[i].data_size;
	if (!biggest)
		return VFIO_URING_DEFAULT_CHUNK_SIZE;
	biggest = (biggest + 4095) & ~4095ull;
	return biggest > VFIO_URING_DEFAULT_CHUNK_SIZE ? VFIO_URING_DEFAULT_CHUNK_SIZE : biggest;
}

int mig_create_engine(struct mig_session *s, enum vfio_uring_side side)
{
	struct vfio_uring_engine_opts eo;
	int ret;

	vfio_uring_engine_opts_init(&eo, side);
	memcpy(eo.uuid, s->o->uuid, sizeof(eo.uuid));
	eo.chunk_size = pick_chunk(s);
	eo.progress_timeout_ms = s->o->timeout_s * 1000;
	if (s->o->precopy) /* the wire extension: both sides */
		eo.flags |= VFIO_URING_ENGINE_F_PRECOPY;
	ret = vfio_uring_engine_create(&eo, &s->engine);
	if (ret < 0)
		return mig_fail(s, ret, "creating the engine: %s", strerror(-ret));
	for (unsigned i = 0; i < s->nsocks; i++) {
		ret = vfio_uring_engine_add_channel(s->engine, s->socks[i]);
		if (ret < 0)
			return mig_fail(s, ret, "adding channel %u to the engine: %s", i,
					strerror(-ret));
	}
	return 0;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct mig_device *d = opaque;

	*data = d->config;
	*len = d->config_len;
	return 0;
}

/* Kept in memory: the file is written only once the driver accepted the device's state. */
static int load_config(void *opaque, const void *data, size_t len)
{
	struct mig_device *d = opaque;
	void *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(d->config);
	d->config = copy;
	d->config_len = len;
	d->config_received = true;
	return 0;
}

int mig_add_devices(struct mig_session *s, mig_add_fn *add)
{
	for (unsigned i = 0; i < s->ndev; i++) {
		struct mig_device *d = &s->devs[i];
		struct vfio_uring_device_opts opts;

		vfio_uring_device_opts_init(&opts);
		opts.idstr = s->o->idstr;
		opts.instance_id = i;
		opts.multifd = VFIO_URING_MULTIFD_ON;
		opts.save_config = save_config;
		opts.load_config = load_config;
		opts.opaque = d;
		int ret = add(s, d, &opts);
		if (ret < 0) {
			d->dev = NULL;
			mig_device_fate(d, MIG_FAILED, "%s", mig_vfio_message(d));
			return mig_fail(s, ret, "%s", vfio_uring_vfio_error(d->vfio));
		}
	}
	return 0;
}

int mig_read_config(struct mig_device *d)
{
	struct stat st;
	FILE *f;
	int ret = 0;

	if (!d->config_path[0])
		return 0; /* an empty blob */
	f = fopen(d->config_path, "rb");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if (st.st_size > MIG_CONFIG_MAX)
		ret = -EFBIG;
	if (ret == 0) {
		d->config_len = (size_t)st.st_size;
		d->config = malloc(d->config_len ? d->config_len : 1);
		if (!d->config)
			ret = -ENOMEM;
		else if (fread(d->config, 1, d->config_len, f) != d->config_len)
			ret = -EIO;
	}
	fclose(f);
	return ret;
}

int mig_write_config(const struct mig_device *d)
{
	FILE *f;

	if (!d->config_path[0])
		return 0;
	f = fopen(d->config_path, "wb");
	if (!f)
		return -errno;
	bool ok = fwrite(d->config, 1, d->config_len, f) == d->config_len;
	int err = errno;
	if (fclose(f) != 0 && ok) {
		ok = false;
		err = errno;
	}
	return ok ? 0 : -(err ? err : EIO);
}
