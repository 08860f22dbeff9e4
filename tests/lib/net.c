/* SPDX-License-Identifier: MIT */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

int tcp_loopback_channels(int *connecting, int *accepting, unsigned n, bool reverse)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	unsigned conn = 0, acc = 0;
	int l, err = 0;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 64) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl)) {
		err = -errno;
		goto out;
	}
	for (; conn < n; conn++) {
		connecting[conn] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connecting[conn] < 0)
			goto fail;
		if (connect(connecting[conn], (struct sockaddr *)&sa, sizeof(sa))) {
			close(connecting[conn]);
			goto fail;
		}
	}
	for (; acc < n; acc++) {
		int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);

		if (a < 0)
			goto fail;
		accepting[reverse ? n - 1 - acc : acc] = a;
	}
	goto out;
fail:
	err = -errno;
	close_all(connecting, conn);
	for (unsigned i = 0; i < acc; i++)
		close(accepting[reverse ? n - 1 - i : i]);
out:
	close(l);
	return err;
}

int connect_pair(int fds[2], bool tcp)
{
	int one = 1, ret;

	if (!tcp)
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) ? -errno : 0;
	ret = tcp_loopback_channels(&fds[1], &fds[0], 1, false);
	if (ret)
		return ret;
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}
