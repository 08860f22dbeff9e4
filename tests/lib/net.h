/* SPDX-License-Identifier: MIT */
/* Connected stream sockets for migration channels: AF_UNIX socketpairs or loopback TCP. */
#ifndef VFIO_URING_TESTS_NET_H
#define VFIO_URING_TESTS_NET_H

#include <stdbool.h>

/*
 * n TCP connections over 127.0.0.1 through one listening socket: connecting[i] is the i-th
 * to connect; accepting[] holds the accepted ends in accept order, or in the reverse of it
 * when reverse (so that the order of the two sides differs: the handshake's channel id, not
 * the order, must identify a channel). All fds close-on-exec. 0, or -errno (nothing left
 * open).
 */
int tcp_loopback_channels(int *connecting, int *accepting, unsigned n, bool reverse);

/*
 * Both ends of one connected stream: a socketpair, or when tcp a loopback TCP connection
 * with TCP_NODELAY on both ends (fds[0] the accepted end, fds[1] the connecting one).
 * 0 or -errno.
 */
int connect_pair(int fds[2], bool tcp);

#endif /* VFIO_URING_TESTS_NET_H */
