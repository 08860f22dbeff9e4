/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the programs that run inside the test guest (statically linked): result lines
 * for the host, and access to an mtty device's UART registers through its VFIO device fd.
 *
 * mtty exposes one 8-register 16550-like UART per port in BAR<port>. Two things of a port
 * travel with its migration state and can be checked on the destination: the scratch register
 * (offset 7) and the loopback FIFO (bytes written to offset 0, TX, are read back from offset 0,
 * RX, in order).
 */
#ifndef VFIO_URING_TESTS_VM_GUEST_H
#define VFIO_URING_TESTS_VM_GUEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "vfio-uring.h"

#define MTTY_PORTS 2
#define MTTY_REG_DATA 0 /* TX on write, RX on read (DLAB clear) */
#define MTTY_REG_FCR 2
#define MTTY_REG_SCR 7
#define MTTY_FCR_CLEAR (0x01 | 0x02 | 0x04) /* FIFO enabled (else 1 byte deep), both cleared */

static int guest_failures;

/* Handles a test opened, closed after it whether it passed or not (see guest_open). */
#define GUEST_MAX_OPEN 16
static struct vfio_uring_vfio *guest_opened[GUEST_MAX_OPEN];

static inline int guest_open(const char *name, struct vfio_uring_vfio **dev)
{
	int ret = vfio_uring_vfio_open_group(-1, name, dev);

	if (ret < 0) {
		printf("  open %s: %s\n", name, strerror(-ret));
		return ret;
	}
	for (int i = 0; i < GUEST_MAX_OPEN; i++)
		if (!guest_opened[i]) {
			guest_opened[i] = *dev;
			break;
		}
	return 0;
}

static inline void guest_close_all(void)
{
	for (int i = 0; i < GUEST_MAX_OPEN; i++) {
		vfio_uring_vfio_close(guest_opened[i]);
		guest_opened[i] = NULL;
	}
}

/* One result line per test, parsed by run-vm.sh on the host. */
static inline void guest_result(const char *test, int rc, const char *fmt, ...)
{
	char why[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (rc == 1)
		guest_failures++;
	printf("VU-TEST %s %s%s%s\n", test, rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL",
	       *why ? " " : "", why);
	fflush(stdout);
}

#define GCHECK(cond, ...)                                                                   \
	do {                                                                                \
		if (!(cond)) {                                                              \
			char where_[640];                                                   \
			snprintf(where_, sizeof(where_), __VA_ARGS__);                      \
			printf("  check failed at %s:%d: %s: %s\n", __FILE__, __LINE__,     \
			       #cond, where_);                                              \
			fflush(stdout);                                                     \
			return 1;                                                           \
		}                                                                           \
	} while (0)

static inline int mtty_bar_offset(int device_fd, unsigned port, uint64_t *offset)
{
	struct vfio_region_info info = { .argsz = sizeof(info),
					 .index = VFIO_PCI_BAR0_REGION_INDEX + port };

	if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
		return -errno;
	*offset = info.offset;
	return 0;
}

static inline int mtty_write(int device_fd, unsigned port, unsigned reg, uint8_t val)
{
	uint64_t off = 0;
	int ret = mtty_bar_offset(device_fd, port, &off);

	if (ret < 0)
		return ret;
	return pwrite(device_fd, &val, 1, (off_t)(off + reg)) == 1 ? 0 : -errno;
}

static inline int mtty_read(int device_fd, unsigned port, unsigned reg, uint8_t *val)
{
	uint64_t off = 0;
	int ret = mtty_bar_offset(device_fd, port, &off);

	if (ret < 0)
		return ret;
	return pread(device_fd, val, 1, (off_t)(off + reg)) == 1 ? 0 : -errno;
}

/* Recognisable contents for port `port` of a device, from a seed. */
static inline uint8_t pattern_scr(unsigned seed, unsigned port)
{
	return (uint8_t)(0xa0 + seed * 4 + port);
}
#define PATTERN_FIFO_LEN 5
static inline uint8_t pattern_fifo(unsigned seed, unsigned port, unsigned i)
{
	return (uint8_t)(0x30 + seed * 16 + port * 8 + i);
}

/* Writes the pattern: scratch register and a few bytes into the (cleared) loopback FIFO. */
static inline int mtty_fill(int device_fd, unsigned seed)
{
	for (unsigned p = 0; p < MTTY_PORTS; p++) {
		int ret = mtty_write(device_fd, p, MTTY_REG_FCR, MTTY_FCR_CLEAR);
		if (!ret)
			ret = mtty_write(device_fd, p, MTTY_REG_SCR, pattern_scr(seed, p));
		for (unsigned i = 0; !ret && i < PATTERN_FIFO_LEN; i++)
			ret = mtty_write(device_fd, p, MTTY_REG_DATA, pattern_fifo(seed, p, i));
		if (ret)
			return ret;
	}
	return 0;
}

/* Clears the scratch registers and FIFOs (so a copy of the pattern must come from elsewhere). */
static inline int mtty_clear(int device_fd)
{
	for (unsigned p = 0; p < MTTY_PORTS; p++) {
		int ret = mtty_write(device_fd, p, MTTY_REG_FCR, MTTY_FCR_CLEAR);
		if (!ret)
			ret = mtty_write(device_fd, p, MTTY_REG_SCR, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Checks (and consumes: RX pops the FIFO) the pattern. Returns 0 when it matches, else 1 and
 * a description in why.
 */
static inline int mtty_check(int device_fd, unsigned seed, char *why, size_t why_len)
{
	for (unsigned p = 0; p < MTTY_PORTS; p++) {
		uint8_t v;
		int ret = mtty_read(device_fd, p, MTTY_REG_SCR, &v);
		if (ret < 0) {
			snprintf(why, why_len, "port %u: reading SCR: %s", p, strerror(-ret));
			return 1;
		}
		if (v != pattern_scr(seed, p)) {
			snprintf(why, why_len, "port %u: SCR 0x%02x, expected 0x%02x", p, v,
				 pattern_scr(seed, p));
			return 1;
		}
		for (unsigned i = 0; i < PATTERN_FIFO_LEN; i++) {
			ret = mtty_read(device_fd, p, MTTY_REG_DATA, &v);
			if (ret < 0 || v != pattern_fifo(seed, p, i)) {
				snprintf(why, why_len, "port %u: FIFO byte %u is 0x%02x, expected 0x%02x",
					 p, i, v, pattern_fifo(seed, p, i));
				return 1;
			}
		}
	}
	return 0;
}

static inline int expect_state(struct vfio_uring_vfio *dev, enum vfio_uring_vfio_state want,
			       char *why, size_t why_len)
{
	enum vfio_uring_vfio_state st;
	int ret = vfio_uring_vfio_get_state(dev, &st);

	if (ret < 0) {
		snprintf(why, why_len, "%s: get_state: %s", vfio_uring_vfio_name(dev), strerror(-ret));
		return 1;
	}
	if (st != want) {
		snprintf(why, why_len, "%s is in %s, expected %s", vfio_uring_vfio_name(dev),
			 vfio_uring_vfio_state_name(st), vfio_uring_vfio_state_name(want));
		return 1;
	}
	return 0;
}

#endif
