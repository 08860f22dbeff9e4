// SPDX-License-Identifier: MIT
/* vfio-uring-stat: messages, names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vfio-uring-stat.h"

static void vnote(const char *fmt, va_list ap)
{
	fputs("vfio-uring-stat: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
	exit(1);
}

void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

const char *side_name(__u32 side)
{
	return side == VUS_SOURCE ? "source" : side == VUS_DESTINATION ? "destination" : "unknown";
}
