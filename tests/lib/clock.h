/* SPDX-License-Identifier: MIT */
/* The monotonic clock, for guards against hangs and for measured intervals. */
#ifndef VFIO_URING_TESTS_CLOCK_H
#define VFIO_URING_TESTS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ms(void)
{
	return now_ns() / 1000000u;
}

#endif /* VFIO_URING_TESTS_CLOCK_H */
