/* SPDX-License-Identifier: MIT */
/*
 * Programs with several test cases, one meson test per case. A program keeps its case list
 * in one file of CASE(name) lines, which both the program (an X-macro #include) and its
 * meson.build (fs.read) read:
 *
 *     #define CASE(f) TEST_CASE(f)
 *     static const struct test_case cases[] = {
 *     #include "my_cases.h"
 *     };
 *     ...
 *     int rc = run_cases(cases, ARRAY_SIZE(cases), argc, argv, true);
 *     return rc == CASES_RAN ? check_result() : rc;
 *
 * `prog --list` prints the names, one per line.
 */
#ifndef VFIO_URING_TESTS_CASES_H
#define VFIO_URING_TESTS_CASES_H

#include <stdbool.h>
#include <stddef.h>

struct test_case {
	const char *name;
	void (*run)(void);
};

#define TEST_CASE(f) { #f, f },
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* What run_cases returns when it ran cases (any other value is the exit status). */
#define CASES_RAN (-1)

/*
 * argv[1] NAME: runs that case ("== NAME" first); `--list`: prints the names (returns 0);
 * no argument: every case in order when all_by_default, else a usage error. Returns
 * CASES_RAN, or the exit status (0 listed, 2 usage or unknown case).
 */
int run_cases(const struct test_case *cases, size_t n, int argc, char **argv,
	      bool all_by_default);

#endif /* VFIO_URING_TESTS_CASES_H */
