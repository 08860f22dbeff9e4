/* SPDX-License-Identifier: MIT */
/*
 * The test programs' assertions, one family:
 *   CHECK(cond, fmt, ...)  records a failure with its place, the condition and a message,
 *                          and goes on, so that a run reports every broken check; main()
 *                          ends with `return check_result();` (0 all held, 1 otherwise).
 *   FAIL(fmt, ...)         a setup step that cannot go on: says why, exits 1.
 *   ASSERT(cond, fmt, ...) an invariant whose breach must stop the process where it is:
 *                          abort(), so that a fuzzer saves the input and a debugger stops.
 * A test that cannot run on this machine exits 77 (skip) and says why.
 */
#ifndef VFIO_URING_TESTS_CHECK_H
#define VFIO_URING_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Failed CHECKs so far, in this process (tests/lib/check.c). */
extern int check_failures;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			check_failures++;                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
		}                                                                      \
	} while (0)

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                                 \
		fputc('\n', stderr);                                                   \
		exit(1);                                                               \
	} while (0)

#define ASSERT(cond, ...)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "ASSERT %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* 0 when every CHECK held, 1 otherwise (and says how many failed). */
int check_result(void);

#endif /* VFIO_URING_TESTS_CHECK_H */
