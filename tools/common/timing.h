/* SPDX-License-Identifier: MIT */
/* The tools' clock. */
#ifndef VFIO_URING_TOOLS_TIMING_H
#define VFIO_URING_TOOLS_TIMING_H

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

#endif /* VFIO_URING_TOOLS_TIMING_H */
