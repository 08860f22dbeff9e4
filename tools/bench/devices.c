/* SPDX-License-Identifier: MIT */
/*
 * Synthetic devices: deterministic pseudo-random content per device (xoshiro-style
 * generator seeded from the run seed and the device number), a config blob per device, and
 * a fast strong hash (XXH64's algorithm) to verify every byte.
 *
 * A file's digest is the chain of XXH64 over 1 MiB blocks at 1 MiB-aligned offsets
 * (each block hashed with the previous block's hash as seed): a source can compute it while
 * generating, a destination by reading its sink back, both without holding the data.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void device_idstr(unsigned dev, char *out, size_t len)
{
	/* QEMU's VFIO idstr looks like "0000:00:04.0/vfio". */
	snprintf(out, len, "0000:%02x:%02x.%x/vfio", dev / 256, (dev / 8) % 32, dev % 8);
}

uint32_t device_instance_id(unsigned dev)
{
	return dev & 1; /* vary it a little: (idstr, instance_id) is the key */
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Content is a pure function of (seed, dev, offset): each 8-byte word at offset o is
 * splitmix64's output for counter o/8, so any block can be produced independently.
 */
void device_fill_block(unsigned dev, uint64_t seed, uint64_t offset, uint8_t *buf, size_t len)
{
	uint64_t base = seed ^ ((uint64_t)(dev + 1) * 0xd1342543de82ef95ull);
	uint64_t word = offset / 8;
	size_t skip = offset % 8, i = 0;

	while (i < len) {
		uint64_t x = base + word * 0x9e3779b97f4a7c15ull;
		uint64_t v = splitmix64(&x);
		size_t n = 8 - skip;

		if (n > len - i)
			n = len - i;
		memcpy(buf + i, (uint8_t *)&v + skip, n);
		i += n;
		skip = 0;
		word++;
	}
}

size_t device_config_blob(unsigned dev, uint64_t seed, uint8_t *out, size_t len)
{
	char head[48];
	size_t n;

	if (len < BENCH_CONFIG_BLOB_SIZE)
		return 0;
	n = (size_t)snprintf(head, sizeof(head), "config-space dev %u msix ", dev);
	memcpy(out, head, n);
	device_fill_block(dev, ~seed, 0, out + n, BENCH_CONFIG_BLOB_SIZE - n);
	return BENCH_CONFIG_BLOB_SIZE;
}

bool device_config_check(unsigned dev, uint64_t seed, const void *blob, size_t len)
{
	uint8_t want[BENCH_CONFIG_BLOB_SIZE];

	device_config_blob(dev, seed, want, sizeof(want));
	return len == sizeof(want) && memcmp(blob, want, len) == 0;
}

/* XXH64. */
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t xround(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t xmerge(uint64_t acc, uint64_t v)
{
	acc ^= xround(0, v);
	return acc * P1 + P4;
}

uint64_t hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data, *end = p + len;
	uint64_t h;

	if (len >= 32) {
		uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
		const uint8_t *limit = end - 32;

		do {
			v1 = xround(v1, rd64(p));
			v2 = xround(v2, rd64(p + 8));
			v3 = xround(v3, rd64(p + 16));
			v4 = xround(v4, rd64(p + 24));
			p += 32;
		} while (p <= limit);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = xmerge(h, v1);
		h = xmerge(h, v2);
		h = xmerge(h, v3);
		h = xmerge(h, v4);
	} else {
		h = seed + P5;
	}
	h += len;
	while (p + 8 <= end) {
		h ^= xround(0, rd64(p));
		h = rotl64(h, 27) * P1 + P4;
		p += 8;
	}
	if (p + 4 <= end) {
		h ^= (uint64_t)rd32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
	}
	while (p < end) {
		h ^= (*p++) * P5;
		h = rotl64(h, 11) * P1;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

static uint64_t digest_init(void)
{
	return 0x76667569ull; /* any constant */
}

int device_create_source(unsigned dev, uint64_t size, uint64_t seed, int *fd_out,
			 uint64_t *digest_out)
{
	char name[32];
	uint8_t *buf;
	uint64_t off = 0, h = digest_init();
	int fd, err = 0;

	snprintf(name, sizeof(name), "bench-src-%u", dev);
	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(BENCH_HASH_BLOCK);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < size) {
		size_t n = size - off < BENCH_HASH_BLOCK ? (size_t)(size - off) : BENCH_HASH_BLOCK;

		device_fill_block(dev, seed, off, buf, n);
		h = hash64(buf, n, h);
		err = write_full(fd, buf, n);
		if (err)
			break;
		off += n;
	}
	free(buf);
	if (err) {
		close(fd);
		return err;
	}
	*fd_out = fd;
	*digest_out = h;
	return 0;
}

int device_expected_digest(unsigned dev, uint64_t size, uint64_t seed, uint64_t *digest_out)
{
	uint8_t *buf = malloc(BENCH_HASH_BLOCK);
	uint64_t off = 0, h = digest_init();

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t n = size - off < BENCH_HASH_BLOCK ? (size_t)(size - off) : BENCH_HASH_BLOCK;

		device_fill_block(dev, seed, off, buf, n);
		h = hash64(buf, n, h);
		off += n;
	}
	free(buf);
	*digest_out = h;
	return 0;
}

int fd_digest(int fd, uint64_t *size_out, uint64_t *digest_out)
{
	struct stat st;
	uint8_t *buf;
	uint64_t off = 0, h = digest_init();

	if (fstat(fd, &st) < 0)
		return -errno;
	buf = malloc(BENCH_HASH_BLOCK);
	if (!buf)
		return -ENOMEM;
	while (off < (uint64_t)st.st_size) {
		uint64_t left = (uint64_t)st.st_size - off;
		size_t want = left < BENCH_HASH_BLOCK ? (size_t)left : BENCH_HASH_BLOCK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		if ((size_t)n != want) {
			free(buf);
			return -EIO;
		}
		h = hash64(buf, want, h);
		off += want;
	}
	free(buf);
	*size_out = (uint64_t)st.st_size;
	*digest_out = h;
	return 0;
}

int memfd_sink(unsigned dev)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "bench-dst-%u", dev);
	fd = memfd_create(name, MFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
