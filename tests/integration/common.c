/* SPDX-License-Identifier: MIT */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data.h"
#include "net.h"

const uint8_t test_uuid[16] = { 0x5a, 0x1e, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
				0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d };

int test_source_memfd(const char *name, unsigned flags, unsigned index, uint64_t size)
{
	int fd = pattern_memfd(name, flags, size, 0x9e3779b97f4a7c15ull * (index + 1));

	if (fd < 0)
		FAIL("memfd: %s", strerror(-fd));
	return fd;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct test_device *d = opaque;

	*data = d->config;
	*len = d->config_len;
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct test_device *d = opaque;
	struct stat st;

	d->config_loads++;
	d->config_intact = len == d->config_len && memcmp(data, d->config, len) == 0;
	d->config_after_data = fstat(d->sink_fd, &st) == 0 && (uint64_t)st.st_size == d->size;
	return 0;
}

static void on_done(void *opaque, int error)
{
	struct test_device *d = opaque;

	d->done_calls++;
	d->done_error = error;
}

void test_connect_channels(const char *transport, int *src_socks, int *dst_socks, unsigned n)
{
	int ret;

	if (strcmp(transport, "unix") == 0) {
		for (unsigned i = 0; i < n; i++) {
			int sv[2];

			ret = connect_pair(sv, false);
			if (ret)
				FAIL("socketpair: %s", strerror(-ret));
			src_socks[i] = sv[0];
			dst_socks[i] = sv[1];
		}
		return;
	}
	ret = tcp_loopback_channels(src_socks, dst_socks, n, true);
	if (ret)
		FAIL("loopback TCP: %s", strerror(-ret));
}

int test_engine_setup(struct vfio_uring_engine_opts *opts, const int *socks, unsigned channels,
		      struct test_device *devs, unsigned n, unsigned dev_flags,
		      struct vfio_uring_device **handles, struct vfio_uring_engine **out,
		      char *why, size_t why_size)
{
	bool source = opts->side == VFIO_URING_SOURCE;
	struct vfio_uring_engine *e;
	int ret;

	memcpy(opts->uuid, test_uuid, sizeof(opts->uuid));
	ret = vfio_uring_engine_create(opts, &e);
	if (ret) {
		snprintf(why, why_size, "create: %s", strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < channels; i++) {
		ret = vfio_uring_engine_add_channel(e, socks[i]);
		if (ret != (int)i) {
			snprintf(why, why_size, "add_channel %u returned %d", i, ret);
			vfio_uring_engine_destroy(e);
			return ret < 0 ? ret : -EINVAL;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct vfio_uring_device_opts dopts;

		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = devs[i].idstr;
		dopts.instance_id = i;
		dopts.data_fd = source ? devs[i].src_fd : devs[i].dst_fd;
		if (source) {
			dopts.save_config = save_config;
		} else {
			dopts.multifd = VFIO_URING_MULTIFD_ON;
			dopts.load_config = load_config;
			dopts.flags = dev_flags;
		}
		dopts.done = on_done;
		dopts.opaque = &devs[i];
		ret = vfio_uring_engine_add_device(e, &dopts, handles ? &handles[i] : NULL);
		if (ret) {
			snprintf(why, why_size, "add_device %u: %s", i, strerror(-ret));
			vfio_uring_engine_destroy(e);
			return ret;
		}
	}
	*out = e;
	return 0;
}

bool test_same_bytes(int a, int b, uint64_t size, uint64_t *at)
{
	static uint8_t x[1 << 20], y[1 << 20];

	for (uint64_t off = 0; off < size; off += sizeof(x)) {
		size_t n = size - off < sizeof(x) ? (size_t)(size - off) : sizeof(x);

		if (pread(a, x, n, (off_t)off) != (ssize_t)n || pread(b, y, n, (off_t)off) != (ssize_t)n ||
		    memcmp(x, y, n)) {
			*at = off;
			return false;
		}
	}
	return true;
}

/*
 * VU_TEST_ENGINE_FLAGS=baseline-ring,no-waitall,no-iowq-limits switches optional kernel
 * features off on both sides, so that the whole suite runs on every fallback path (the meson
 * test setups in tests/meson.build set it).
 */
unsigned test_env_engine_flags(void)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {
		{ "baseline-ring", VFIO_URING_ENGINE_F_BASELINE_RING },
		{ "no-waitall", VFIO_URING_ENGINE_F_NO_WAITALL },
		{ "no-iowq-limits", VFIO_URING_ENGINE_F_NO_IOWQ_LIMITS },
	};
	const char *env = getenv("VU_TEST_ENGINE_FLAGS");
	char buf[256];
	unsigned flags = 0;

	if (!env || !*env)
		return 0;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(tok, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			FAIL("VU_TEST_ENGINE_FLAGS: unknown feature \"%s\"", tok);
		flags |= names[i].flag;
	}
	return flags;
}
