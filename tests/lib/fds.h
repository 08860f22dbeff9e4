/* SPDX-License-Identifier: MIT */
/* The process's open fds, for the tests' "no fd leaked" checks. */
#ifndef VFIO_URING_TESTS_FDS_H
#define VFIO_URING_TESTS_FDS_H

/* How many fds this process has open (not counting the one this function keeps). */
int count_fds(void);

#endif /* VFIO_URING_TESTS_FDS_H */
