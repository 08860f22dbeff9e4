/* SPDX-License-Identifier: MIT */
/*
 * The test programs' one assertion: CHECK(cond, fmt, ...) records a failure with its place,
 * the condition and a message, and goes on, so a run reports every broken check. main()
 * ends with `return check_result();`: 0 when all held, 1 otherwise (77 is for skips).
 */
#ifndef VFIO_URING_TESTS_CHECK_H
#define VFIO_URING_TESTS_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			check_failures++;                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
		}                                                                      \
	} while (0)

static inline int check_result(void)
{
	if (check_failures)
		fprintf(stderr, "%d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}

#endif /* VFIO_URING_TESTS_CHECK_H */
