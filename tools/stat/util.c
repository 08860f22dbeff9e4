// SPDX-License-Identifier: MIT
/* vfio-uring-stat: messages, names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

const char *side_name(__u32 side)
{
	return side == VUS_SOURCE ? "source" : side == VUS_DESTINATION ? "destination" : "unknown";
}
