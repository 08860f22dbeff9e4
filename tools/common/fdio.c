/* SPDX-License-Identifier: MIT */
#include "fdio.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

enum io_op { IO_READ, IO_WRITE, IO_SEND, IO_RECV };

/* The one loop: moves len bytes with op, retrying EINTR; eof_err when a read sees the end. */
static int io_full(int fd, uint8_t *p, size_t len, enum io_op op, int timeout_ms, int eof_err)
{
	while (len) {
		ssize_t n;

		if (op == IO_RECV && timeout_ms >= 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int r = poll(&pfd, 1, timeout_ms);

			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		switch (op) {
		case IO_READ: n = read(fd, p, len); break;
		case IO_WRITE: n = write(fd, p, len); break;
		case IO_SEND: n = send(fd, p, len, MSG_NOSIGNAL); break;
		default: n = recv(fd, p, len, 0); break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0 && (op == IO_READ || op == IO_RECV))
			return eof_err;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_full(int fd, void *buf, size_t len)
{
	return io_full(fd, buf, len, IO_READ, -1, -EPIPE);
}

int write_full(int fd, const void *buf, size_t len)
{
	return io_full(fd, (uint8_t *)buf, len, IO_WRITE, -1, 0);
}

int send_full(int fd, const void *buf, size_t len)
{
	return io_full(fd, (uint8_t *)buf, len, IO_SEND, -1, 0);
}

int recv_full(int fd, void *buf, size_t len, int timeout_ms)
{
	return io_full(fd, buf, len, IO_RECV, timeout_ms, -ECONNRESET);
}
