/* SPDX-License-Identifier: MIT */
/* Device data for the tests: sizes from the command line, reproducible byte patterns. */
#ifndef VFIO_URING_TESTS_DATA_H
#define VFIO_URING_TESTS_DATA_H

#include <stddef.h>
#include <stdint.h>

/* "64K", "1M", "2G", or a plain number (strtoull base 0). */
uint64_t parse_size(const char *s);

/* The next xorshift64 value of the state *s (never 0 unless *s is 0). */
uint64_t xorshift64(uint64_t *s);

/* len bytes of xorshift64 words from seed (the last one cut): the same seed, the same bytes. */
void fill_pattern(uint8_t *buf, size_t len, uint64_t seed);

/* A memfd of size bytes of fill_pattern(seed). The fd, or -errno. */
int pattern_memfd(const char *name, unsigned flags, uint64_t size, uint64_t seed);

#endif /* VFIO_URING_TESTS_DATA_H */
