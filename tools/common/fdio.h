/* SPDX-License-Identifier: MIT */
/*
 * Whole-buffer reads and writes for the tools: each returns 0 once all len bytes moved, or
 * a negative errno (EINTR is retried). For sockets, the send/recv variants: no SIGPIPE, and
 * an optional timeout.
 */
#ifndef VFIO_URING_TOOLS_FDIO_H
#define VFIO_URING_TOOLS_FDIO_H

#include <stddef.h>

/* read(): -EPIPE when the file or stream ends first. */
int read_full(int fd, void *buf, size_t len);
/* write(). */
int write_full(int fd, const void *buf, size_t len);
/* send(MSG_NOSIGNAL): a closed peer is -EPIPE, not a signal. */
int send_full(int fd, const void *buf, size_t len);
/*
 * recv(), waiting at most timeout_ms (poll) for each piece (-ETIMEDOUT; -1 waits forever):
 * -ECONNRESET when the peer closes first.
 */
int recv_full(int fd, void *buf, size_t len, int timeout_ms);

#endif /* VFIO_URING_TOOLS_FDIO_H */
