// SPDX-License-Identifier: MIT
/* vfio-uring-stat: messages, the clock, names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vfio-uring-stat.h"

void die(const char *fmt, ...)
{
	va_list ap;

	fputs("vfio-uring-stat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void note(const char *fmt, ...)
{
	va_list ap;

	fputs("vfio-uring-stat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *side_name(__u32 side)
{
	return side == VUS_SOURCE ? "source" : side == VUS_DESTINATION ? "destination" : "unknown";
}
