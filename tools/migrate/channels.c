/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: the TCP channels. The source connects --channels sockets to the
 * destination, which accepts as many; a count that differs between the two sides shows up
 * here (a channel that never comes, one too many, or a connection refused) and is reported
 * as such, before any device is touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate.h"

/* "host:port", "[v6]:port" or "port" (listen only). */
static int resolve(const char *addr, bool passive, struct addrinfo **res)
{
	char host[256] = "", port[32];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };

	if (!colon) {
		if (!passive)
			return EAI_NONAME;
		snprintf(port, sizeof(port), "%s", addr);
	} else {
		size_t hl = (size_t)(colon - addr);
		if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
			addr++;
			hl -= 2;
		}
		if (hl >= sizeof(host))
			return EAI_NONAME;
		memcpy(host, addr, hl);
		host[hl] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
#ifdef VFIO_URING_MIGRATE_NUMERIC_ONLY
	/* Static builds (the test guest): glibc's getaddrinfo needs NSS modules at run time, so
	 * take numeric addresses only and build the one result ourselves. */
	struct {
		struct addrinfo ai;
		struct sockaddr_storage ss;
	} *r = calloc(1, sizeof(*r));
	char *end;
	unsigned long pnum = strtoul(port, &end, 10);
	if (!r)
		return EAI_MEMORY;
	if (*end || pnum > 65535) {
		free(r);
		return EAI_SERVICE;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->ss;
	if (!*host || inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		if (!*host)
			sin->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
		r->ai.ai_addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		r->ai.ai_addrlen = sizeof(*sin6);
	} else {
		free(r);
		return EAI_NONAME;
	}
	r->ai.ai_family = r->ss.ss_family;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_addr = (struct sockaddr *)&r->ss;
	(void)hints;
	*res = &r->ai;
	return 0;
#else
	return getaddrinfo(*host ? host : NULL, port, &hints, res);
#endif
}

static void free_resolved(struct addrinfo *res)
{
#ifdef VFIO_URING_MIGRATE_NUMERIC_ONLY
	free(res); /* the addrinfo is the first member of the block resolve() allocated */
#else
	freeaddrinfo(res);
#endif
}

/* One connection to the first address that takes it; -errno of the last attempt. */
static int connect_one(const struct addrinfo *res)
{
	int err = ECONNREFUSED;

	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return fd;
		}
		err = errno;
		close(fd);
	}
	return -err;
}

int mig_connect_channels(struct mig_session *s)
{
	const struct mig_options *o = s->o;
	struct addrinfo *res;
	int err = resolve(o->addr, false, &res);

	if (err)
		return mig_fail(s, -EINVAL, "channel setup: %s: %s", o->addr, gai_strerror(err));
	for (unsigned i = 0; i < o->channels; i++) {
		int fd = -ECONNREFUSED;
		/* the destination may still be starting: retry for about 5 s */
		for (int attempt = 0; attempt < 100; attempt++) {
			fd = connect_one(res);
			if (fd >= 0)
				break;
			usleep(50 * 1000);
		}
		if (fd < 0) {
			free_resolved(res);
			if (i == 0)
				return mig_fail(s, fd, "channel setup: channel 0: connect to %s: %s",
						o->addr, strerror(-fd));
			/* channels 0..i-1 got through: most likely the destination expects fewer */
			return mig_fail(s, fd,
					"channel setup: channel %u of %u: connect to %s: %s (the "
					"destination took %u: do both sides use --channels %u?)",
					i, o->channels, o->addr, strerror(-fd), i, o->channels);
		}
		s->socks[i] = fd;
		s->nsocks = i + 1;
	}
	free_resolved(res);
	return 0;
}

/*
 * A source with more channels than ours would otherwise go unnoticed until a packet is lost
 * on a channel nobody accepted. The source connects every channel before it sends anything,
 * so once channel 0 has bytes to read (or is closed) an extra connection is already waiting
 * on the listening socket.
 */
static int check_no_extra_channel(struct mig_session *s, int lfd)
{
	const struct mig_options *o = s->o;
	struct pollfd p = { .fd = s->socks[0], .events = POLLIN };

	if (poll(&p, 1, o->timeout_s ? (int)o->timeout_s * 1000 : -1) <= 0)
		return 0; /* nothing came at all: the engine reports that */
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	if (poll(&p, 1, 0) == 1)
		return mig_fail(s, -EPROTO,
				"channel setup: the source opened more than %u channel(s): do both "
				"sides use --channels %u?",
				o->channels, o->channels);
	return 0;
}

int mig_accept_channels(struct mig_session *s)
{
	const struct mig_options *o = s->o;
	struct addrinfo *res;
	int err = resolve(o->addr, true, &res), lfd = -1;

	if (err)
		return mig_fail(s, -EINVAL, "channel setup: %s: %s", o->addr, gai_strerror(err));
	err = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && lfd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), one = 1;
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, (int)o->channels) == 0) {
			lfd = fd;
		} else {
			err = errno;
			close(fd);
		}
	}
	free_resolved(res);
	if (lfd < 0)
		return mig_fail(s, -err, "channel setup: listen on %s: %s", o->addr, strerror(err));
	if (!o->quiet)
		fprintf(stderr, "listening on %s for %u channel(s)\n", o->addr, o->channels);
	for (unsigned i = 0; i < o->channels; i++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int n = poll(&p, 1, o->timeout_s ? (int)o->timeout_s * 1000 : -1);
		if (n <= 0) {
			err = n < 0 ? -errno : -ETIMEDOUT;
			close(lfd);
			if (n < 0)
				return mig_fail(s, err, "channel setup: waiting for channel %u: %s", i,
						strerror(-err));
			if (i == 0)
				return mig_fail(s, err, "channel setup: no source connected within %u s",
						o->timeout_s);
			/* channels 0..i-1 came: most likely the source opens fewer */
			return mig_fail(s, err,
					"channel setup: channel %u of %u never connected (waited %u s after "
					"%u did: do both sides use --channels %u?)",
					i, o->channels, o->timeout_s, i, o->channels);
		}
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			close(lfd);
			return mig_fail(s, err, "channel setup: accepting channel %u: %s", i,
					strerror(-err));
		}
		s->socks[i] = fd;
		s->nsocks = i + 1;
	}
	err = check_no_extra_channel(s, lfd);
	close(lfd);
	return err;
}

void mig_close_channels(struct mig_session *s)
{
	for (unsigned i = 0; i < s->nsocks; i++) {
		if (s->socks[i] >= 0)
			close(s->socks[i]);
		s->socks[i] = -1;
	}
	s->nsocks = 0;
}
