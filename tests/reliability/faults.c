/* SPDX-License-Identifier: MIT */
/*
 * Faults during a transfer, with real fds, sockets and processes: a source data fd that fails
 * reads, a destination data fd that fails writes (/dev/full), a peer killed with SIGKILL at
 * random points, sockets shut down mid-packet, stalled peers hitting the progress timeout,
 * and the caller cancelling or destroying mid-transfer. After each: the expected error, no
 * destination device DONE without all its bytes and config, the source fds moved no further
 * than what was read, no fd leak, a clean destroy, and a new migration in the same process.
 *
 * Usage: faults CASE. RL_SEED=n changes the random kill points (printed).
 */
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (4u << 20) /* device size when a transfer must still be running at the fault */
#define KILL_ROUNDS 10

static uint32_t rng_state = 20261126;

static uint32_t rng(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

static void check_one_of(int err, const int *allowed, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (err == allowed[i])
			return;
	CHECK(0, "%s: error %d (%s) is not one of the expected", what, err, strerror(-err));
}

/*
 * The source side's view after its peer failed: a send failed (or, in a live pre-copy
 * phase, the channel's watch saw the peer close or reset it first); an errno from the socket.
 */
static void check_peer_gone(struct vfio_uring_engine *src, int rc)
{
	static const int errnos[] = { -EPIPE, -ECONNRESET, -ENOTCONN, -ESHUTDOWN };
	static const enum vfio_uring_reason reasons[] = { VFIO_URING_REASON_SOCKET_SEND,
							  VFIO_URING_REASON_PEER_CLOSED };

	check_one_of(rc, errnos, 4, "source");
	rl_check_reason_one_of(src, reasons, 2, "source");
}

/*
 * The destination's view after its source failed: the stream cut inside a packet or between
 * packets (EOF), or a receive failed because the socket was reset (TCP): the errno alone
 * (ECONNRESET) cannot tell the first from the last, the reason can.
 */
static void check_source_gone(struct vfio_uring_engine *dst, int rc)
{
	static const int errnos[] = { -ECONNRESET, -ENOLINK };
	static const enum vfio_uring_reason reasons[] = { VFIO_URING_REASON_STREAM_TRUNCATED,
							  VFIO_URING_REASON_STREAM_ENDED,
							  VFIO_URING_REASON_SOCKET_RECV };

	check_one_of(rc, errnos, 2, "destination");
	rl_check_reason_one_of(dst, reasons, 3, "destination");
	CHECK(vfio_uring_engine_reason(dst) != VFIO_URING_REASON_SOCKET_RECV || rc == -ECONNRESET,
		 "a failed receive with %d", rc);
}

static void check_source_failed_cleanly(struct rl_mig *m)
{
	for (int i = 0; i < m->ndev; i++) {
		struct vfio_uring_device_status st;

		vfio_uring_device_get_status(m->d[i].src, &st, sizeof(st));
		CHECK(m->d[i].src_done_calls <= 1, "source device %s: done called %d times",
			 m->d[i].idstr, m->d[i].src_done_calls);
		if (st.state == VFIO_URING_DEVICE_FAILED)
			CHECK(st.error < 0 && m->d[i].src_done_calls == 1 &&
					 m->d[i].src_done_error == st.error,
				 "source device %s FAILED %d, done calls %d error %d", m->d[i].idstr,
				 st.error, m->d[i].src_done_calls, m->d[i].src_done_error);
	}
	rl_mig_check_source_untouched(m);
}

/* ---- data fd errors ----------------------------------------------------------------- */

static void source_read_error_at_start(void)
{
	int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG, .src_fd = { dir } };
	struct rl_mig m;
	struct vfio_uring_device_status st;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == -EISDIR, "source result %d", m.src_rc);
		rl_check_error(m.src, -EISDIR, VFIO_URING_REASON_DATA_FD_READ, m.d[0].idstr, NULL);
		vfio_uring_device_get_status(m.d[0].src, &st, sizeof(st));
		CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -EISDIR &&
				 st.reason == VFIO_URING_REASON_DATA_FD_READ,
			 "device state %d error %d reason %s", st.state, st.error,
			 vfio_uring_reason_name(st.reason));
		CHECK(m.d[0].src_done_calls == 1 && m.d[0].src_done_error == -EISDIR,
			 "done callback %d calls error %d", m.d[0].src_done_calls,
			 m.d[0].src_done_error);
		check_source_failed_cleanly(&m);
		CHECK(m.dst_rc < 0, "destination result %d", m.dst_rc);
		rl_mig_check_dest_consistent(&m);
	}
	rl_mig_fini(&m);
	close(dir);
	rl_check_fresh_migration();
}

/*
 * /proc/self/mem positioned 3 pages before an unmapped page: the first read returns those
 * 12 KiB (a short read), the next fails with EIO, a real error in the middle of a stream.
 */
static void source_read_error_mid(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, (size_t)pg * 4, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
	struct rl_mig m;
	struct vfio_uring_device_status st;
	int ret;

	if (map == MAP_FAILED || fd < 0) {
		printf("SKIP: no /proc/self/mem\n");
		exit(RL_SKIP);
	}
	memset(map, 0x5a, (size_t)pg * 3);
	munmap(map + pg * 3, (size_t)pg);
	lseek(fd, (off_t)(uintptr_t)map, SEEK_SET);
	o.src_fd[1] = fd;
	ret = rl_mig_init(&m, &o);
	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == -EIO, "source result %d", m.src_rc);
		rl_check_error(m.src, -EIO, VFIO_URING_REASON_DATA_FD_READ, m.d[1].idstr, NULL);
		vfio_uring_device_get_status(m.d[1].src, &st, sizeof(st));
		printf("device read %llu bytes before EIO\n", (unsigned long long)st.data_bytes);
		CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -EIO &&
				 st.reason == VFIO_URING_REASON_DATA_FD_READ,
			 "device state %d error %d reason %s", st.state, st.error,
			 vfio_uring_reason_name(st.reason));
		check_source_failed_cleanly(&m);
		CHECK(m.dst_rc < 0, "destination result %d", m.dst_rc);
		/* the destination compares with the mapping's bytes only for a prefix: skip */
		for (int i = 0; i < m.ndev; i++) {
			vfio_uring_device_get_status(m.d[i].dst, &st, sizeof(st));
			CHECK(st.state != VFIO_URING_DEVICE_DONE || i == 0,
				 "destination device %d DONE", i);
		}
	}
	rl_mig_fini(&m);
	close(fd);
	munmap(map, (size_t)pg * 3);
	rl_check_fresh_migration();
}

static void dest_enospc(void)
{
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG, .dst_fd = { full } };
	struct rl_mig m;
	struct vfio_uring_device_status st;
	int ret;

	if (full < 0) {
		printf("SKIP: no /dev/full\n");
		exit(RL_SKIP);
	}
	ret = rl_mig_init(&m, &o);
	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		rl_mig_run(&m, 20000);
		CHECK(m.dst_rc == -ENOSPC, "destination result %d", m.dst_rc);
		rl_check_error(m.dst, -ENOSPC, VFIO_URING_REASON_DATA_FD_WRITE, m.d[0].idstr, NULL);
		vfio_uring_device_get_status(m.d[0].dst, &st, sizeof(st));
		CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -ENOSPC &&
				 st.reason == VFIO_URING_REASON_DATA_FD_WRITE,
			 "device state %d error %d reason %s", st.state, st.error,
			 vfio_uring_reason_name(st.reason));
		CHECK(m.d[0].config_calls == 0, "config loaded");
		CHECK(m.src_rc < 0, "source result %d", m.src_rc);
		check_source_failed_cleanly(&m);
		vfio_uring_device_get_status(m.d[1].dst, &st, sizeof(st));
		CHECK(st.state != VFIO_URING_DEVICE_DONE || m.d[1].config_ok,
			 "device 1 DONE without its config");
	}
	rl_mig_fini(&m);
	close(full);
	rl_check_fresh_migration();
}

static void dest_load_config_error(void)
{
	struct rl_mig_opts o = { .devices = 2, .dev_size = 100000 };
	struct rl_mig m;
	struct vfio_uring_device_status st;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		m.d[1].config_ret = -EIO;
		rl_mig_run(&m, 20000);
		CHECK(m.dst_rc == -EIO, "destination result %d", m.dst_rc);
		rl_check_error(m.dst, -EIO, VFIO_URING_REASON_LOAD_CONFIG, m.d[1].idstr, NULL);
		vfio_uring_device_get_status(m.d[1].dst, &st, sizeof(st));
		CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -EIO &&
				 st.reason == VFIO_URING_REASON_LOAD_CONFIG,
			 "device state %d error %d reason %s", st.state, st.error,
			 vfio_uring_reason_name(st.reason));
		CHECK(m.d[1].dst_done_calls == 1 && m.d[1].dst_done_error == -EIO,
			 "done %d %d", m.d[1].dst_done_calls, m.d[1].dst_done_error);
		rl_mig_check_dest_consistent(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

/* ---- peers killed with SIGKILL -------------------------------------------------------- */

/* In a child: run one side of the migration on the given sockets, then _exit. */
static pid_t spawn_side(bool source, int *socks, int nch)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct rl_mig_opts o = { .channels = nch, .devices = 2, .dev_size = BIG,
					 .no_dest = source, .no_source = !source, .seed = 7 };
		struct rl_mig m;

		for (int c = 0; c < nch; c++)
			o.ext_ch[c] = socks[c];
		if (rl_mig_init(&m, &o) == 0)
			rl_mig_run(&m, 60000);
		_exit(0);
	}
	return pid;
}

static void kill_side(bool kill_source)
{
	uint64_t total = 2ull * BIG + 4099 + 400000; /* roughly the stream's size */
	int done = 0, failed = 0;

	for (int round = 0; round < KILL_ROUNDS; round++) {
		int pairs[2][2], peer[2];
		struct rl_mig_opts o = { .channels = 2, .devices = 2, .dev_size = BIG,
					 .no_source = kill_source, .no_dest = !kill_source, .seed = 7 };
		struct rl_mig m;
		uint64_t at = rng() % total;
		int fds0 = count_fds(), ret, status;
		pid_t pid;
		bool killed = false;

		for (int c = 0; c < 2; c++) {
			/* odd rounds over TCP: the kill resets or closes real connections */
			CHECK(connect_pair(pairs[c], round & 1) == 0, "connect");
			peer[c] = pairs[c][0];
			o.ext_ch[c] = pairs[c][1];
		}
		pid = spawn_side(kill_source, peer, 2);
		CHECK(pid > 0, "fork");
		for (int c = 0; c < 2; c++)
			close(peer[c]);
		ret = rl_mig_init(&m, &o);
		CHECK(ret == 0, "setup %d", ret);
		while (ret == 0) {
			struct vfio_uring_engine *e = kill_source ? m.dst : m.src;

			if (!killed && rl_wire_bytes(e) >= at) {
				kill(pid, SIGKILL);
				killed = true;
			}
			if (!rl_mig_step(&m, 10))
				break;
		}
		if (ret == 0)
			rl_mig_drain(&m);
		if (!killed)
			kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (ret == 0) {
			int rc = kill_source ? m.dst_rc : m.src_rc;

			printf("round %d (%s): kill the %s after %llu bytes: %d (%s)\n", round,
			       (round & 1) ? "TCP" : "UNIX", kill_source ? "source" : "destination",
			       (unsigned long long)at, rc,
			       rc < 0 ? strerror(-rc) : "done");
			if (rc == 1) {
				done++;
			} else {
				failed++;
				struct vfio_uring_engine *e = kill_source ? m.dst : m.src;

				if (kill_source)
					check_source_gone(e, rc);
				else
					check_peer_gone(e, rc);
				rl_check_error(e, rc, vfio_uring_engine_reason(e), "channel", NULL);
			}
			if (kill_source)
				rl_mig_check_dest_consistent(&m);
			else
				check_source_failed_cleanly(&m);
		}
		rl_mig_fini(&m);
		for (int c = 0; c < 2; c++)
			close(pairs[c][1]);
		CHECK(count_fds() == fds0, "round %d leaked fds", round);
	}
	printf("%d rounds: %d completed before the kill took effect, %d failed cleanly\n",
	       KILL_ROUNDS, done, failed);
	rl_check_fresh_migration();
}

static void kill_source(void)
{
	kill_side(true);
}

static void kill_destination(void)
{
	kill_side(false);
}

/* ---- sockets shut down mid-transfer --------------------------------------------------- */

static void shutdown_mid_packet_to_dest(void)
{
	/* Crafted: a packet cut in the middle by shutdown(SHUT_RDWR) of the sender. */
	struct rl_dest_opts dopts = { .channels = 1 };
	struct rl_dest d;
	struct rl_buf b = { 0 };
	int ret;

	rl_buf_handshake(&b, rl_uuid, 0);
	rl_buf_packet(&b, "0000:01:00.0/vfio", 1, 0, 0, NULL, 5000);
	b.len -= 2000;
	ret = rl_dest_init(&d, &dopts);
	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		CHECK(send(d.ch[0][1], b.p, b.len, MSG_NOSIGNAL) == (ssize_t)b.len, "send");
		shutdown(d.ch[0][1], SHUT_RDWR);
		rl_dest_run(&d, 20000);
		rl_check_error(d.e, VU_ESTREAM_TRUNCATED, VFIO_URING_REASON_STREAM_TRUNCATED, "channel 0",
			       NULL);
		rl_dest_check_none_done(&d);
		rl_dest_check_written(&d, 0, NULL, 0);
	}
	rl_dest_fini(&d);
	rl_buf_free(&b);

	/* Real: the source's socket of channel 1 is shut down under a running transfer. */
	for (int round = 0; round < 3; round++) {
		struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
		struct rl_mig m;
		/*
		 * While channel 1 still has data to send: shutdown() delivers what is queued, so
		 * once the source has handed all of channel 1's data to the kernel the migration
		 * rightly succeeds. Each channel carries about half of the 2 x BIG bytes; the cut
		 * comes in the first half of that, and channel 1's socket buffers are kept small
		 * so that the kernel cannot hold the rest (with default buffers CI saw a cut at
		 * 2.7 MB succeed: several MB were queued already).
		 */
		uint64_t at = 100000 + rng() % (BIG / 2 - 100000);
		bool cut = false;
		int small = 64 << 10;

		ret = rl_mig_init(&m, &o);
		CHECK(ret == 0, "setup %d", ret);
		if (ret == 0) {
			setsockopt(m.ch[1][0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			setsockopt(m.ch[1][1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		}
		while (ret == 0) {
			if (!cut && rl_wire_bytes(m.dst) >= at) {
				shutdown(m.ch[1][0], SHUT_RDWR);
				cut = true;
			}
			if (!rl_mig_step(&m, 10))
				break;
		}
		if (ret == 0)
			rl_mig_drain(&m);
		printf("cut after %llu: source %d destination %d\n", (unsigned long long)at,
		       m.src_rc, m.dst_rc);
		if (ret == 0 && cut) {
			CHECK(m.src_rc < 0 && m.dst_rc < 0, "source %d destination %d", m.src_rc,
				 m.dst_rc);
			check_source_gone(m.dst, m.dst_rc);
			rl_mig_check_dest_consistent(&m);
			check_source_failed_cleanly(&m);
		}
		rl_mig_fini(&m);
	}
	rl_check_fresh_migration();
}

static void shutdown_dest_socket_under_source(void)
{
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
	struct rl_mig m;
	bool cut = false;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	while (ret == 0) {
		if (!cut && rl_wire_bytes(m.dst) >= BIG / 2) {
			shutdown(m.ch[0][1], SHUT_RDWR);
			cut = true;
		}
		if (!rl_mig_step(&m, 10))
			break;
	}
	if (ret == 0)
		rl_mig_drain(&m);
	if (ret == 0) {
		printf("source %d destination %d\n", m.src_rc, m.dst_rc);
		CHECK(m.src_rc < 0 && m.dst_rc < 0, "source %d destination %d", m.src_rc,
			 m.dst_rc);
		check_source_gone(m.dst, m.dst_rc);
		rl_mig_check_dest_consistent(&m);
		check_source_failed_cleanly(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

/* ---- stalled peers: the progress timeout ---------------------------------------------- */

static void stalled_source_timeout(void)
{
	for (int variant = 0; variant < 3; variant++) {
		struct rl_dest_opts o = { .channels = 2, .progress_timeout_ms = 300 };
		struct rl_dest d;
		struct rl_buf b[2] = { 0 };
		int ret;

		/* 0: silent from the start; 1: after the handshake; 2: mid-packet */
		if (variant >= 1) {
			rl_buf_handshake(&b[0], rl_uuid, 0);
			rl_buf_handshake(&b[1], rl_uuid, 1);
		}
		if (variant == 2) {
			rl_buf_packet(&b[0], "0000:01:00.0/vfio", 1, 0, 0, NULL, 3000);
			b[0].len -= 1000;
		}
		ret = rl_dest_init(&d, &o);
		CHECK(ret == 0, "setup %d", ret);
		if (ret == 0) {
			rl_dest_send(&d, 0, &b[0], RL_END_STALL);
			rl_dest_send(&d, 1, &b[1], RL_END_STALL);
			ret = rl_dest_run(&d, 20000);
			printf("variant %d: %d\n", variant, ret);
			rl_check_error(d.e, -ETIMEDOUT, VFIO_URING_REASON_PROGRESS_TIMEOUT, NULL, NULL);
			rl_dest_check_none_done(&d);
			rl_dest_check_written(&d, 0, NULL, 0);
		}
		rl_dest_fini(&d);
		rl_buf_free(&b[0]);
		rl_buf_free(&b[1]);
	}
	rl_check_fresh_migration();
}

static void stalled_reader_timeout(void)
{
	/* A destination that accepted the connection and never reads. */
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG, .no_dest = true,
				 .progress_timeout_ms = 300 };
	struct rl_mig m;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == -ETIMEDOUT, "source result %d", m.src_rc);
		rl_check_error(m.src, -ETIMEDOUT, VFIO_URING_REASON_PROGRESS_TIMEOUT, NULL, NULL);
		check_source_failed_cleanly(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

/* ---- the caller cancels or destroys ------------------------------------------------- */

static void cancel_side(bool dest)
{
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
	struct rl_mig m;
	bool cancelled = false;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	while (ret == 0) {
		if (!cancelled && rl_wire_bytes(m.dst) >= BIG / 3) {
			int rc = vfio_uring_engine_cancel(dest ? m.dst : m.src);

			CHECK(rc == 0 || rc == -ECANCELED, "cancel returned %d", rc);
			cancelled = true;
		}
		if (!rl_mig_step(&m, 10))
			break;
	}
	if (ret == 0)
		rl_mig_drain(&m);
	if (ret == 0) {
		printf("source %d destination %d\n", m.src_rc, m.dst_rc);
		rl_check_error(dest ? m.dst : m.src, -ECANCELED, VFIO_URING_REASON_CANCELLED, NULL,
			       NULL);
		CHECK((dest ? m.dst_rc : m.src_rc) == -ECANCELED, "cancelled side %d",
			 dest ? m.dst_rc : m.src_rc);
		CHECK(m.src_rc < 0 && m.dst_rc < 0, "source %d destination %d", m.src_rc,
			 m.dst_rc);
		if (dest)
			check_peer_gone(m.src, m.src_rc);
		else
			check_source_gone(m.dst, m.dst_rc);
		rl_mig_check_dest_consistent(&m);
		check_source_failed_cleanly(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

static void cancel_destination(void)
{
	cancel_side(true);
}

static void cancel_source(void)
{
	cancel_side(false);
}

static void cancel_before_any_data(void)
{
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
	struct rl_mig m;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		CHECK(vfio_uring_engine_cancel(m.src) <= 0, "cancel source");
		CHECK(vfio_uring_engine_cancel(m.dst) <= 0, "cancel destination");
		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == -ECANCELED && m.dst_rc == -ECANCELED, "source %d dest %d",
			 m.src_rc, m.dst_rc);
		rl_check_error(m.src, -ECANCELED, VFIO_URING_REASON_CANCELLED, NULL, NULL);
		rl_check_error(m.dst, -ECANCELED, VFIO_URING_REASON_CANCELLED, NULL, NULL);
		rl_mig_check_dest_consistent(&m);
		check_source_failed_cleanly(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

static void destroy_mid_transfer(void)
{
	for (int round = 0; round < 5; round++) {
		struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
		struct rl_mig m;
		uint64_t at = rng() % BIG;
		int ret = rl_mig_init(&m, &o);

		CHECK(ret == 0, "setup %d", ret);
		while (ret == 0 && rl_wire_bytes(m.dst) < at && rl_mig_step(&m, 10))
			;
		/* destroy with reads, writes, sends and receives in flight */
		rl_mig_fini(&m);
	}
	rl_check_fresh_migration();
}

/*
 * Regression (engine bug found here, fixed in 33a73fa): a failed source device's
 * data_bytes ("bytes read from the data fd") must count every read that consumed bytes of
 * the data fd, including reads that completed while the failure drained them; otherwise
 * the caller cannot tell how much of the device's stream was consumed.
 */
static void source_data_bytes_counts_every_read(void)
{
	for (int round = 0; round < 60; round++) {
		int variant = round & 1;
		struct rl_mig_opts o = { .devices = 2, .dev_size = BIG };
		struct rl_mig m;
		bool hit = false;
		int ret = rl_mig_init(&m, &o);

		CHECK(ret == 0, "setup %d", ret);
		while (ret == 0) {
			if (!hit && rl_wire_bytes(m.dst) >= BIG / 2) {
				if (variant == 0)
					shutdown(m.ch[0][1], SHUT_RDWR);
				else
					vfio_uring_engine_cancel(m.src);
				hit = true;
			}
			if (!rl_mig_step(&m, 10))
				break;
		}
		if (ret == 0)
			rl_mig_drain(&m);
		printf("variant %d: source %d destination %d\n", variant, m.src_rc, m.dst_rc);
		/* process() reports the failure at once; run() returns when the drain is over */
		if (ret == 0) {
			/*
			 * process() says 1 for done where run() says 0: a source that sent its last
			 * byte into the socket buffers before the cut has legitimately finished.
			 */
			int rr = vfio_uring_engine_run(m.src, 20000);

			CHECK(rr == m.src_rc || (rr == 0 && m.src_rc == 1),
				 "run after failure returned %d, process() %d", rr, m.src_rc);
		}
		for (int i = 0; i < m.ndev && ret == 0; i++) {
			struct vfio_uring_device_status st;
			off_t pos = lseek(m.d[i].src_fd, 0, SEEK_CUR);

			vfio_uring_device_get_status(m.d[i].src, &st, sizeof(st));
			printf("device %s: fd moved %lld, data_bytes %llu\n", m.d[i].idstr,
			       (long long)(pos - m.d[i].src_pos0), (unsigned long long)st.data_bytes);
			CHECK((uint64_t)(pos - m.d[i].src_pos0) == st.data_bytes,
				 "source device %s (%s, error %d): the fd moved %lld bytes but "
				 "data_bytes says %llu were read",
				 m.d[i].idstr, vfio_uring_device_state_name(st.state), st.error,
				 (long long)(pos - m.d[i].src_pos0), (unsigned long long)st.data_bytes);
		}
		rl_mig_fini(&m);
	}
}

/*
 * Regression (engine bug found here, fixed in 33a73fa; it was a race, caught in most runs):
 * once the source tells the caller a device failed (done(error), the point where a VMM
 * resumes the device), the engine must not read that device's data fd any more. The engine
 * called every device's done callback first and cancelled after, so a read already running
 * in an io_uring worker completed afterwards and consumed up to a chunk of device state the
 * VMM believed untouched. Failures: the peer's socket shut down, the
 * caller's cancel, another device's read error; 45 rounds at random points.
 */
static void source_fd_quiet_after_failure(void)
{
	for (int round = 0; round < 45; round++) {
		int variant = round % 3;
		int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		/* reads in io_uring's workers, as with a real VFIO data fd: truly in flight */
		struct rl_mig_opts o = { .devices = 3, .dev_size = 4 * BIG, .chunk_size = 1 << 20,
					 .flags = VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO };
		struct rl_mig m;
		uint64_t at = BIG / 4 + rng() % BIG;
		bool hit = false;
		int ret;

		if (variant == 2)
			o.src_fd[2] = dir;
		ret = rl_mig_init(&m, &o);
		CHECK(ret == 0, "setup %d", ret);
		while (ret == 0) {
			if (!hit && rl_wire_bytes(m.dst) >= at) {
				if (variant == 0)
					shutdown(m.ch[0][1], SHUT_RDWR);
				else if (variant == 1)
					vfio_uring_engine_cancel(m.src);
				hit = true;
			}
			if (!rl_mig_step(&m, 10))
				break;
		}
		if (ret == 0)
			rl_mig_drain(&m);
		printf("round %d: source %d destination %d\n", round, m.src_rc, m.dst_rc);
		rl_mig_destroy_engines(&m);
		rl_mig_check_source_quiet_after_done(&m);
		rl_mig_fini(&m);
		close(dir);
	}
	rl_check_fresh_migration();
}

/* ---- data fds that read or write in short pieces -------------------------------------- */

struct pipe_io {
	int fd;
	uint8_t *buf;
	size_t len, done;
};

/* Feeds buf into fd in uneven pieces (1..7000 bytes), then closes fd: a device's stream. */
static void *feeder(void *arg)
{
	struct pipe_io *io = arg;
	uint32_t x = 1;

	while (io->done < io->len) {
		size_t n;
		ssize_t w;

		x = x * 1103515245u + 12345u;
		n = 1 + (x >> 16) % 7000;
		if (n > io->len - io->done)
			n = io->len - io->done;
		w = write(io->fd, io->buf + io->done, n);
		if (w <= 0)
			break;
		io->done += (size_t)w;
	}
	close(io->fd);
	return NULL;
}

/* Drains fd in 3000-byte reads into buf until EOF. */
static void *drainer(void *arg)
{
	struct pipe_io *io = arg;

	for (;;) {
		ssize_t r;

		if (io->done + 3000 > io->len) {
			io->len = io->len ? io->len * 2 : 1 << 20;
			io->buf = realloc(io->buf, io->len);
		}
		r = read(io->fd, io->buf + io->done, 3000);
		if (r <= 0)
			break;
		io->done += (size_t)r;
	}
	return NULL;
}

/* The source reads a pipe fed in uneven pieces: short reads, and EOF ends the stream. */
static void source_short_reads(void)
{
	int p[2];
	struct pipe_io io = { 0 };
	pthread_t t;
	struct rl_mig_opts o = { .devices = 2, .dev_size = 200000 };
	struct rl_mig m;
	int ret;

	CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
	io.fd = p[1];
	io.len = 300001;
	io.buf = malloc(io.len);
	rl_pattern(io.buf, io.len, 77);
	pthread_create(&t, NULL, feeder, &io);
	o.src_fd[0] = p[0];
	ret = rl_mig_init(&m, &o);
	m.fds_before--; /* the feeder closes the pipe's write end during the run */
	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		size_t n;
		uint8_t *got;

		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == 1 && m.dst_rc == 1, "source %d destination %d", m.src_rc,
			 m.dst_rc);
		got = rl_fd_read_all(m.d[0].dst_fd, &n);
		CHECK(got && n == io.len && memcmp(got, io.buf, n) == 0,
			 "device 0 received %zu bytes of %zu, or wrong bytes", n, io.len);
		CHECK(m.d[0].config_calls == 1 && m.d[0].config_ok, "config");
		free(got);
	}
	rl_mig_fini(&m);
	pthread_join(t, NULL);
	close(p[0]);
	free(io.buf);
	rl_check_fresh_migration();
}

/* The destination writes a socket with a tiny send buffer, drained 3000 bytes at a time. */
static void dest_short_writes(void)
{
	int sp[2], small = 4096;
	struct pipe_io io = { 0 };
	pthread_t t;
	struct rl_mig_opts o = { .devices = 2, .dev_size = 300000 };
	struct rl_mig m;
	int ret;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "socketpair");
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	io.fd = sp[1];
	pthread_create(&t, NULL, drainer, &io);
	o.dst_fd[1] = sp[0];
	ret = rl_mig_init(&m, &o);
	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		size_t n;
		uint8_t *want;

		rl_mig_run(&m, 20000);
		CHECK(m.src_rc == 1 && m.dst_rc == 1, "source %d destination %d", m.src_rc,
			 m.dst_rc);
		shutdown(sp[0], SHUT_WR);
		pthread_join(t, NULL);
		want = rl_fd_read_all(m.d[1].src_fd, &n);
		CHECK(want && io.done == n && memcmp(io.buf, want, n) == 0,
			 "device 1 wrote %zu bytes of %zu, or wrong bytes", io.done, n);
		CHECK(m.d[1].config_calls == 1 && m.d[1].config_ok, "config");
		free(want);
	} else {
		shutdown(sp[0], SHUT_WR);
		pthread_join(t, NULL);
	}
	rl_mig_fini(&m);
	close(sp[0]);
	close(sp[1]);
	free(io.buf);
	rl_check_fresh_migration();
}

/* A source device whose save_config fails: that device fails with its errno. */
static int failing_save_config(void *opaque, const void **data, size_t *len)
{
	(void)opaque;
	(void)data;
	(void)len;
	return -EIO;
}

static void source_save_config_error(void)
{
	struct vfio_uring_engine_opts so;
	struct vfio_uring_device_opts dv;
	struct vfio_uring_engine *e = NULL;
	struct vfio_uring_device *dev = NULL;
	struct vfio_uring_device_status st;
	int sp[2], fd = rl_memfd("rl-src", 100000, 3), fds0 = count_fds(), ret;
	struct rl_buf none = { 0 };
	struct rl_writer *drain;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "socketpair");
	drain = rl_writer_start(sp[1], &none, RL_END_STALL); /* keeps the peer open */
	vfio_uring_engine_opts_init(&so, VFIO_URING_SOURCE);
	memcpy(so.uuid, rl_uuid, 16);
	so.chunk_size = 16384;
	CHECK(vfio_uring_engine_create(&so, &e) == 0, "create");
	CHECK(vfio_uring_engine_add_channel(e, sp[0]) == 0, "channel");
	vfio_uring_device_opts_init(&dv);
	dv.idstr = "0000:04:00.0/vfio";
	dv.data_fd = fd;
	dv.save_config = failing_save_config;
	CHECK(vfio_uring_engine_add_device(e, &dv, &dev) == 0, "device");
	CHECK(vfio_uring_engine_start(e) == 0, "start");
	/* the peer never reads: 100 KB fit in the socket buffers */
	ret = vfio_uring_engine_run(e, 20000);
	CHECK(ret == -EIO, "run %d", ret);
	rl_check_error(e, -EIO, VFIO_URING_REASON_SAVE_CONFIG, "0000:04:00.0/vfio",
		       "save_config");
	vfio_uring_device_get_status(dev, &st, sizeof(st));
	CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -EIO &&
			 st.reason == VFIO_URING_REASON_SAVE_CONFIG, "state %d error %d reason %s",
		 st.state, st.error, vfio_uring_reason_name(st.reason));
	vfio_uring_engine_destroy(e);
	rl_writer_stop(drain);
	close(sp[0]);
	close(sp[1]);
	CHECK(count_fds() == fds0, "fd leak");
	close(fd);
	rl_check_fresh_migration();
}

/*
 * Regression (engine bug found by fuzz_dest, fixed in 33a73fa): once the engine failed,
 * vfio_uring_engine_run() must return the engine's error like vfio_uring_engine_process()
 * does, also while cancelled operations are still draining; it returned -ETIMEDOUT ("the
 * transfer goes on") when its timeout passed during the drain.
 */
static void run_reports_error_while_draining(void)
{
	/* A source whose peer never reads: sends stay in flight. */
	struct rl_mig_opts o = { .devices = 2, .dev_size = BIG, .no_dest = true };
	struct rl_mig m;
	int ret = rl_mig_init(&m, &o);

	CHECK(ret == 0, "setup %d", ret);
	if (ret == 0) {
		int rc = vfio_uring_engine_run(m.src, 200);
		int pr;

		CHECK(rc == -ETIMEDOUT && vfio_uring_engine_error(m.src, NULL) == 0,
			 "a stalled source without progress timeout: run %d", rc);
		CHECK(vfio_uring_engine_cancel(m.src) <= 0, "cancel");
		rc = vfio_uring_engine_run(m.src, 0);
		pr = vfio_uring_engine_process(m.src);
		printf("after cancel: run(e, 0) %d, process %d\n", rc, pr);
		CHECK(pr == -ECANCELED, "process returned %d after cancel", pr);
		CHECK(rc == -ECANCELED, "run(e, 0) returned %d (%s) after cancel, not -ECANCELED",
			 rc, strerror(-rc));
		rc = vfio_uring_engine_run(m.src, 5000);
		CHECK(rc == -ECANCELED, "run(e, 5000) returned %d after cancel", rc);
		check_source_failed_cleanly(&m);
	}
	rl_mig_fini(&m);
	rl_check_fresh_migration();
}

/*
 * Regression (engine bug found here, fixed in 68206f3): the header says a device's
 * status.error is "negated errno when FAILED, else 0". A failed engine keeps a device ACTIVE
 * until its read or write of the data fd is back, and meanwhile
 * vfio_uring_device_get_status() reported state ACTIVE with the error already set. Checked after every process() call around failures (cancel, socket
 * shut down; device I/O forced async so reads and writes are truly in flight).
 */
static void status_consistent_while_draining(void)
{
	for (int round = 0; round < 30; round++) {
		struct rl_mig_opts o = { .devices = 2, .dev_size = 4 * BIG, .chunk_size = 1 << 20,
					 .flags = VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO };
		struct rl_mig m;
		uint64_t at = BIG / 4 + rng() % BIG;
		bool hit = false;
		int ret = rl_mig_init(&m, &o);

		CHECK(ret == 0, "setup %d", ret);
		m.check_status = true;
		while (ret == 0) {
			if (!hit && rl_wire_bytes(m.dst) >= at) {
				if (round % 3 == 0)
					vfio_uring_engine_cancel(m.src);
				else if (round % 3 == 1)
					vfio_uring_engine_cancel(m.dst);
				else
					shutdown(m.ch[0][0], SHUT_RDWR);
				hit = true;
			}
			if (!rl_mig_step(&m, 10))
				break;
		}
		if (ret == 0)
			rl_mig_drain(&m);
		rl_mig_fini(&m);
		if (check_failures)
			break;
	}
	rl_check_fresh_migration();
}

#define CASE(f) TEST_CASE(f)
static const struct test_case cases[] = {
#include "faults_cases.h"
};

int main(int argc, char **argv)
{
	const char *seed = getenv("RL_SEED");
	int fds0 = count_fds(), rc;

	if (argc > 1 && strcmp(argv[1], "--list") == 0)
		return run_cases(cases, ARRAY_SIZE(cases), argc, argv, true);
	if (seed)
		rng_state = (uint32_t)strtoul(seed, NULL, 0);
	printf("RL_SEED=%u\n", rng_state);
	rc = run_cases(cases, ARRAY_SIZE(cases), argc, argv, true);
	if (rc != CASES_RAN)
		return rc;
	CHECK(count_fds() == fds0, "fds open at start %d, at end %d", fds0, count_fds());
	return check_result();
}
