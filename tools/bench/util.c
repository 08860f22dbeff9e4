/* SPDX-License-Identifier: MIT */
/* Small I/O and clock helpers shared by every engine (read_full/write_full, now_s: tools/common). */
#include "bench.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sleep_until(double t)
{
	for (;;) {
		double left = t - now_s();
		struct timespec ts;

		if (left <= 0)
			return;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

int ctl_send(int fd, char c)
{
	return write_full(fd, &c, 1);
}

int ctl_recv(int fd, char *c)
{
	return read_full(fd, c, 1);
}

void set_sock_opts(int fd)
{
	int one = 1;

	/* Harmless on UNIX sockets (fails with EOPNOTSUPP, ignored). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
