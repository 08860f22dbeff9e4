/* SPDX-License-Identifier: MIT */
/*
 * Transports: the data connections and the control connection of one run.
 *
 *   tcp   loopback TCP (127.0.0.1), one connection per channel
 *   unix  AF_UNIX stream sockets (socketpair)
 *   veth  TCP over a veth pair between two network namespaces created here (root only);
 *         the destination listens in one namespace, the source connects from the other.
 *         Addresses exist only inside those namespaces; transport_cleanup() removes both.
 *   --listen/--connect  TCP between two hosts: the destination listens, the source connects;
 *         the first connection of every run is the control connection.
 *
 * In local mode the parent builds every connection before it forks the two sides, so the
 * sides only ever see connected sockets, like the library's callers.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define VETH_DST_ADDR "10.231.0.1"
#define VETH_SRC_ADDR "10.231.0.2"

/* Process-wide transport state: the tool is one process with one transport. */
static struct {
	bool veth;
	char ns_dst[32], ns_src[32];
	int ns_orig, ns_dst_fd, ns_src_fd;
	int two_host_listen;
} tp = { .ns_orig = -1, .ns_dst_fd = -1, .ns_src_fd = -1, .two_host_listen = -1 };

static int run_cmd(const char *const argv[], bool quiet)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!quiet) {
			fprintf(stderr, "vfio-uring-bench: command failed:");
			for (unsigned i = 0; argv[i]; i++)
				fprintf(stderr, " %s", argv[i]);
			fprintf(stderr, "\n");
		}
		return -EIO;
	}
	return 0;
}

static int open_ns(const char *name)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int veth_setup(void)
{
	char if_dst[16], if_src[16];
	int pid = (int)getpid(), err;

	if (geteuid() != 0) {
		fprintf(stderr, "vfio-uring-bench: --transport veth needs root (network namespaces)\n");
		return -EPERM;
	}
	snprintf(tp.ns_dst, sizeof(tp.ns_dst), "vub-%d-dst", pid);
	snprintf(tp.ns_src, sizeof(tp.ns_src), "vub-%d-src", pid);
	snprintf(if_dst, sizeof(if_dst), "vub%dd", pid % 1000000);
	snprintf(if_src, sizeof(if_src), "vub%ds", pid % 1000000);
	tp.veth = true; /* from here on, cleanup removes what exists */
	{
		const char *a1[] = { "ip", "netns", "add", tp.ns_dst, NULL };
		const char *a2[] = { "ip", "netns", "add", tp.ns_src, NULL };
		const char *a3[] = { "ip", "link", "add", if_dst, "netns", tp.ns_dst, "type", "veth",
				     "peer", "name", if_src, "netns", tp.ns_src, NULL };
		const char *a4[] = { "ip", "-n", tp.ns_dst, "addr", "add", VETH_DST_ADDR "/24",
				     "dev", if_dst, NULL };
		const char *a5[] = { "ip", "-n", tp.ns_src, "addr", "add", VETH_SRC_ADDR "/24",
				     "dev", if_src, NULL };
		const char *a6[] = { "ip", "-n", tp.ns_dst, "link", "set", if_dst, "up", NULL };
		const char *a7[] = { "ip", "-n", tp.ns_src, "link", "set", if_src, "up", NULL };
		const char *a8[] = { "ip", "-n", tp.ns_dst, "link", "set", "lo", "up", NULL };
		const char *a9[] = { "ip", "-n", tp.ns_src, "link", "set", "lo", "up", NULL };
		const char *const *cmds[] = { a1, a2, a3, a4, a5, a6, a7, a8, a9 };

		for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			err = run_cmd(cmds[i], false);
			if (err)
				return err;
		}
	}
	tp.ns_orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	tp.ns_dst_fd = open_ns(tp.ns_dst);
	tp.ns_src_fd = open_ns(tp.ns_src);
	if (tp.ns_orig < 0 || tp.ns_dst_fd < 0 || tp.ns_src_fd < 0)
		return -ENOENT;
	return 0;
}

static void on_signal(int sig)
{
	transport_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

int transport_init(const struct bench_cfg *cfg)
{
	if (cfg->transport != TRANSPORT_VETH || cfg->listen || cfg->connect)
		return 0;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	return veth_setup();
}

void transport_cleanup(void)
{
	if (tp.veth) {
		const char *a1[] = { "ip", "netns", "del", tp.ns_dst, NULL };
		const char *a2[] = { "ip", "netns", "del", tp.ns_src, NULL };

		tp.veth = false;
		/* Deleting a namespace deletes its end of the veth pair, and with it the peer. */
		run_cmd(a1, true);
		run_cmd(a2, true);
	}
	if (tp.ns_orig >= 0)
		close(tp.ns_orig);
	if (tp.ns_dst_fd >= 0)
		close(tp.ns_dst_fd);
	if (tp.ns_src_fd >= 0)
		close(tp.ns_src_fd);
	tp.ns_orig = tp.ns_dst_fd = tp.ns_src_fd = -1;
	if (tp.two_host_listen >= 0)
		close(tp.two_host_listen);
	tp.two_host_listen = -1;
}

/* A socket created while this thread is in namespace ns_fd stays in it. */
static int socket_in_ns(int ns_fd, int domain)
{
	int fd, err = 0;

	if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err = -errno;
	if (ns_fd >= 0 && setns(tp.ns_orig, CLONE_NEWNET) < 0) {
		/* Cannot happen with a valid fd; going on in the wrong namespace would lie. */
		perror("vfio-uring-bench: setns back");
		abort();
	}
	return fd < 0 ? err : fd;
}

static int tcp_pairs(const struct bench_cfg *cfg, unsigned n, struct conn_set *cs)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	bool veth = cfg->transport == TRANSPORT_VETH;
	int lfd, err = 0;

	lfd = socket_in_ns(veth ? tp.ns_dst_fd : -1, AF_INET);
	if (lfd < 0)
		return lfd;
	inet_pton(AF_INET, veth ? VETH_DST_ADDR : "127.0.0.1", &addr.sin_addr);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		err = -errno;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		int c = socket_in_ns(veth ? tp.ns_src_fd : -1, AF_INET), a;

		if (c < 0) {
			err = c;
			goto out;
		}
		/* A blocking connect completes into the listen backlog; accept then takes it. */
		if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			err = -errno;
			close(c);
			goto out;
		}
		a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0) {
			err = -errno;
			close(c);
			goto out;
		}
		set_sock_opts(c);
		set_sock_opts(a);
		cs->src[i] = c;
		cs->dst[i] = a;
		cs->n = i + 1;
	}
out:
	close(lfd);
	return err;
}

int transport_connect_local(const struct bench_cfg *cfg, unsigned n, struct conn_set *cs)
{
	int err = 0;

	memset(cs, 0, sizeof(*cs));
	cs->ctrl[0] = cs->ctrl[1] = -1;
	cs->src = calloc(n, sizeof(int));
	cs->dst = calloc(n, sizeof(int));
	if (!cs->src || !cs->dst) {
		free(cs->src);
		free(cs->dst);
		return -ENOMEM;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cs->ctrl) < 0) {
		err = -errno;
		goto fail;
	}
	if (cfg->transport == TRANSPORT_UNIX) {
		for (unsigned i = 0; i < n; i++) {
			int sv[2];

			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
				err = -errno;
				goto fail;
			}
			cs->src[i] = sv[0];
			cs->dst[i] = sv[1];
			cs->n = i + 1;
		}
	} else {
		err = tcp_pairs(cfg, n, cs);
		if (err)
			goto fail;
	}
	return 0;
fail:
	conn_set_close(cs);
	return err;
}

void conn_set_close(struct conn_set *cs)
{
	for (unsigned i = 0; i < cs->n; i++) {
		close(cs->src[i]);
		close(cs->dst[i]);
	}
	if (cs->ctrl[0] >= 0)
		close(cs->ctrl[0]);
	if (cs->ctrl[1] >= 0)
		close(cs->ctrl[1]);
	free(cs->src);
	free(cs->dst);
	memset(cs, 0, sizeof(*cs));
	cs->ctrl[0] = cs->ctrl[1] = -1;
}

static int split_hostport(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(spec, ':');

	if (!colon) {
		snprintf(host, hlen, "%s", "");
		snprintf(port, plen, "%s", spec);
		return 0;
	}
	if ((size_t)(colon - spec) >= hlen)
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	/* [v6addr]:port */
	if (host[0] == '[') {
		size_t l = strlen(host);

		if (l < 2 || host[l - 1] != ']')
			return -EINVAL;
		memmove(host, host + 1, l - 2);
		host[l - 2] = 0;
	}
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int two_host_listen(const char *spec)
{
	char host[256], port[32];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *ai;
	int fd, one = 1, rc;

	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "vfio-uring-bench: --listen %s: %s\n", spec, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return err;
	}
	freeaddrinfo(ai);
	return fd;
}

static int two_host_connect(const char *spec)
{
	char host[256], port[32];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	double deadline = now_s() + 60;
	int rc, err = -ETIMEDOUT;

	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) || !host[0])
		return -EINVAL;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "vfio-uring-bench: --connect %s: %s\n", spec, gai_strerror(rc));
		return -EINVAL;
	}
	/* The destination may not listen yet: retry for a minute. */
	while (now_s() < deadline) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			err = -errno;
			break;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(ai);
			set_sock_opts(fd);
			return fd;
		}
		err = -errno;
		close(fd);
		usleep(100 * 1000);
	}
	freeaddrinfo(ai);
	return err;
}

/*
 * Two hosts: the control connection first, then n data connections, in connect order
 * (each connect completes before the next starts, so accept returns them in order).
 */
int transport_two_host(const struct bench_cfg *cfg, enum bench_side side, unsigned n,
		       int *ctrl, int *chans)
{
	if (side == SIDE_DEST) {
		if (tp.two_host_listen < 0) {
			tp.two_host_listen = two_host_listen(cfg->listen);
			if (tp.two_host_listen < 0)
				return tp.two_host_listen;
		}
		for (unsigned i = 0; i <= n; i++) {
			int a = accept4(tp.two_host_listen, NULL, NULL, SOCK_CLOEXEC);

			if (a < 0)
				return -errno;
			set_sock_opts(a);
			if (i == 0)
				*ctrl = a;
			else
				chans[i - 1] = a;
		}
		return 0;
	}
	for (unsigned i = 0; i <= n; i++) {
		int c = two_host_connect(cfg->connect);

		if (c < 0)
			return c;
		if (i == 0)
			*ctrl = c;
		else
			chans[i - 1] = c;
	}
	return 0;
}
