/* SPDX-License-Identifier: MIT */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'K': case 'k': v <<= 10; break;
	case 'M': case 'm': v <<= 20; break;
	case 'G': case 'g': v <<= 30; break;
	default: break;
	}
	return v;
}

uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift64(&seed);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

int pattern_memfd(const char *name, unsigned flags, uint64_t size, uint64_t seed)
{
	int fd = memfd_create(name, flags);
	uint8_t *map;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	if (size) {
		map = mmap(NULL, size, PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			goto fail;
		fill_pattern(map, size, seed);
		munmap(map, size);
	}
	return fd;
fail:
	{
		int err = -errno;

		close(fd);
		return err;
	}
}
