/* SPDX-License-Identifier: MIT */
/*
 * The version: the library's runtime vfio_uring_version() equals the headers' macros (both
 * come from meson.build's project version), and VFIO_URING_CHECK_VERSION() means "the
 * headers are at least this version".
 */
#include <stdio.h>
#include <string.h>

#include "vfio-uring.h"

#include "check.h"

/* Usable in #if, and true for the headers' own version. */
#if !VFIO_URING_CHECK_VERSION(VFIO_URING_VERSION_MAJOR, VFIO_URING_VERSION_MINOR, \
			      VFIO_URING_VERSION_PATCH)
#error "VFIO_URING_CHECK_VERSION() is false for the headers' own version"
#endif
#if !VFIO_URING_CHECK_VERSION(0, 2, 0)
#error "these headers are 0.2.0 or newer"
#endif

int main(void)
{
	const int major = VFIO_URING_VERSION_MAJOR, minor = VFIO_URING_VERSION_MINOR,
		  patch = VFIO_URING_VERSION_PATCH;
	char want[64];
	unsigned ma, mi, pa;
	int n = 0;

	snprintf(want, sizeof(want), "%d.%d.%d", major, minor, patch);
	CHECK(strcmp(VFIO_URING_VERSION_STRING, want) == 0, "VFIO_URING_VERSION_STRING %s, macros say %s",
	      VFIO_URING_VERSION_STRING, want);
	CHECK(strcmp(vfio_uring_version(), want) == 0, "vfio_uring_version() %s, headers %s",
	      vfio_uring_version(), want);
	CHECK(sscanf(vfio_uring_version(), "%u.%u.%u%n", &ma, &mi, &pa, &n) == 3 &&
	      (size_t)n == strlen(vfio_uring_version()) && (int)ma == major && (int)mi == minor &&
	      (int)pa == patch, "vfio_uring_version() parses as MAJOR.MINOR.PATCH of the macros");

	/* At least: every older version, never a newer one. */
	CHECK(VFIO_URING_CHECK_VERSION(0, 0, 0), "0.0.0");
	CHECK(VFIO_URING_CHECK_VERSION(major, minor, 0), "this minor's first patch");
	CHECK(!VFIO_URING_CHECK_VERSION(major, minor, patch + 1), "next patch");
	CHECK(!VFIO_URING_CHECK_VERSION(major, minor + 1, 0), "next minor");
	CHECK(!VFIO_URING_CHECK_VERSION(major + 1, 0, 0), "next major");
	if (minor > 0)
		CHECK(VFIO_URING_CHECK_VERSION(major, minor - 1, 999), "an older minor, any patch");
	if (major > 0)
		CHECK(VFIO_URING_CHECK_VERSION(major - 1, 999, 999), "an older major, any minor");
	return check_result();
}
