/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test guest (statically linked): prints what the running kernel's io_uring
 * offers that the engine probes for or could use, as "VU-PROBE what result" lines, and one
 * "VU-TEST io_uring-probe PASS|FAIL" line: FAIL when the kernel lacks something the engine
 * requires (the opcodes, IORING_FEAT_RW_CUR_POS) or the engine cannot create its ring.
 *
 * Also measured, because the engine relies on it being either way: whether a MSG_WAITALL
 * recv or send on a stream socket comes back short (older kernels) or is completed by the
 * kernel (5.18 recv / 5.19 send, 5.15.90 stable).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engine.h"

#define OP(name) [IORING_OP_##name] = #name
static const char *const op_names[] = {
	OP(NOP), OP(READV), OP(WRITEV), OP(FSYNC), OP(READ_FIXED), OP(WRITE_FIXED), OP(POLL_ADD),
	OP(POLL_REMOVE), OP(SYNC_FILE_RANGE), OP(SENDMSG), OP(RECVMSG), OP(TIMEOUT),
	OP(TIMEOUT_REMOVE), OP(ACCEPT), OP(ASYNC_CANCEL), OP(LINK_TIMEOUT), OP(CONNECT),
	OP(FALLOCATE), OP(OPENAT), OP(CLOSE), OP(FILES_UPDATE), OP(STATX), OP(READ), OP(WRITE),
	OP(FADVISE), OP(MADVISE), OP(SEND), OP(RECV), OP(OPENAT2), OP(EPOLL_CTL), OP(SPLICE),
	OP(PROVIDE_BUFFERS), OP(REMOVE_BUFFERS), OP(TEE), OP(SHUTDOWN), OP(RENAMEAT), OP(UNLINKAT),
	OP(MKDIRAT), OP(SYMLINKAT), OP(LINKAT), OP(MSG_RING), OP(FSETXATTR), OP(SETXATTR),
	OP(FGETXATTR), OP(GETXATTR), OP(SOCKET), OP(URING_CMD), OP(SEND_ZC), OP(SENDMSG_ZC),
};
#undef OP

/* IORING_FEAT_* bits; later ones are named from the kernel's uapi header (liburing 2.3 stops at 12). */
static const char *const feat_names[] = {
	"SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY", "FAST_POLL",
	"POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP",
	"LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
};

static const struct {
	unsigned flags;
	const char *name;
} setups[] = {
	{ 0, "none" },
	{ IORING_SETUP_R_DISABLED, "R_DISABLED" },
	{ IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL" },
	{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
	{ IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "COOP_TASKRUN|TASKRUN_FLAG" },
	{ IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED, "SINGLE_ISSUER|R_DISABLED" },
	{ IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN" },
	{ 1u << 16, "NO_SQARRAY(6.6)" }, /* a later flag, to show what "too new" looks like */
};

static int failures;

static void require(int ok, const char *what)
{
	if (!ok) {
		printf("VU-PROBE missing %s\n", what);
		failures++;
	}
}

static void probe_opcodes(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	char line[2048];
	size_t n = 0;

	if (!p) {
		printf("VU-PROBE opcodes IORING_REGISTER_PROBE failed\n");
		failures++;
		return;
	}
	printf("VU-PROBE opcodes last_op %u (%u known to liburing 2.3)\n", p->last_op,
	       (unsigned)IORING_OP_LAST - 1);
	line[0] = 0;
	for (unsigned op = 0; op <= p->last_op && op < p->ops_len; op++) {
		const char *name = op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : NULL;

		if (!(p->ops[op].flags & IO_URING_OP_SUPPORTED))
			n += (size_t)snprintf(line + n, sizeof(line) - n, " !%u", op);
		else if (name)
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", name);
		else
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %u", op);
		if (n >= sizeof(line))
			break;
	}
	printf("VU-PROBE opcodes supported:%s\n", line);
	require(io_uring_opcode_supported(p, IORING_OP_READ), "opcode READ");
	require(io_uring_opcode_supported(p, IORING_OP_WRITE), "opcode WRITE");
	require(io_uring_opcode_supported(p, IORING_OP_SEND), "opcode SEND");
	require(io_uring_opcode_supported(p, IORING_OP_RECV), "opcode RECV");
	require(io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL), "opcode ASYNC_CANCEL");
	io_uring_free_probe(p);
}

static void probe_features(const struct io_uring *ring)
{
	char line[512] = "";
	size_t n = 0;

	for (unsigned b = 0; b < 32; b++) {
		if (!(ring->features & (1u << b)))
			continue;
		if (b < sizeof(feat_names) / sizeof(feat_names[0]))
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", feat_names[b]);
		else
			n += (size_t)snprintf(line + n, sizeof(line) - n, " bit%u", b);
	}
	printf("VU-PROBE features 0x%x:%s\n", ring->features, line);
	require(ring->features & IORING_FEAT_RW_CUR_POS, "IORING_FEAT_RW_CUR_POS");
}

static void probe_setup_flags(void)
{
	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		struct io_uring ring;
		int ret = io_uring_queue_init(8, &ring, setups[i].flags);

		printf("VU-PROBE setup %-28s %s\n", setups[i].name, ret == 0 ? "accepted" : strerror(-ret));
		if (ret == 0)
			io_uring_queue_exit(&ring);
	}
}

static void probe_registers(struct io_uring *ring)
{
	unsigned limits[2] = { 0, 0 };
	int ret = io_uring_register_iowq_max_workers(ring, limits);

	if (ret < 0)
		printf("VU-PROBE register IOWQ_MAX_WORKERS %s\n", strerror(-ret));
	else
		printf("VU-PROBE register IOWQ_MAX_WORKERS ok (bounded %u, unbounded %u)\n", limits[0],
		       limits[1]);

	struct io_uring disabled;

	ret = io_uring_queue_init(8, &disabled, IORING_SETUP_R_DISABLED);
	if (ret == 0) {
		ret = (int)syscall(__NR_io_uring_register, disabled.ring_fd,
				   IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		printf("VU-PROBE register ENABLE_RINGS %s\n", ret == 0 ? "ok" : strerror(errno));
		io_uring_queue_exit(&disabled);
	}
}

/*
 * Stream sockets: one recv of 64 KiB with MSG_WAITALL while only 1 KiB has arrived; then
 * one send of 4 MiB with MSG_WAITALL into a socket whose buffer holds far less. "retried"
 * means the kernel completed the whole length, "short" that it returned part of it.
 */
static void probe_waitall(struct io_uring *ring)
{
	static char buf[4 << 20];
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_recv(sqe, sv[0], buf, 64 << 10, MSG_WAITALL);
	io_uring_submit(ring);
	if (write(sv[1], buf, 1024) != 1024)
		return;
	usleep(100 * 1000);
	if (io_uring_peek_cqe(ring, &cqe) == 0) {
		printf("VU-PROBE MSG_WAITALL recv short (%d of %d bytes)\n", cqe->res, 64 << 10);
		io_uring_cqe_seen(ring, cqe);
	} else {
		for (size_t left = (64 << 10) - 1024; left;) {
			ssize_t w = write(sv[1], buf, left);

			if (w <= 0)
				return;
			left -= (size_t)w;
		}
		io_uring_wait_cqe(ring, &cqe);
		printf("VU-PROBE MSG_WAITALL recv %s (%d of %d bytes)\n",
		       cqe->res == 64 << 10 ? "retried" : "short", cqe->res, 64 << 10);
		io_uring_cqe_seen(ring, cqe);
	}

	sqe = io_uring_get_sqe(ring);
	io_uring_prep_send(sqe, sv[0], buf, sizeof(buf), MSG_WAITALL | MSG_NOSIGNAL);
	io_uring_submit(ring);
	/* Drain the peer until the send completes; give up after a second without progress. */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	for (int idle = 0;;) {
		static char sink[64 << 10];
		ssize_t r;

		if (io_uring_peek_cqe(ring, &cqe) == 0) {
			printf("VU-PROBE MSG_WAITALL send %s (%d of %zu bytes)\n",
			       cqe->res == (int)sizeof(buf) ? "retried" : "short", cqe->res, sizeof(buf));
			io_uring_cqe_seen(ring, cqe);
			break;
		}
		r = read(sv[1], sink, sizeof(sink));
		if (r > 0) {
			idle = 0;
		} else if (++idle > 100) {
			printf("VU-PROBE MSG_WAITALL send: no completion\n");
			break;
		} else {
			usleep(10 * 1000);
		}
	}
	close(sv[0]);
	close(sv[1]);
}

/* The ring the engine itself ends up with on this kernel, and with the baseline flag. */
static void probe_engine(void)
{
	for (int baseline = 0; baseline < 2; baseline++) {
		struct vfio_uring_engine_opts opts;
		struct vfio_uring_engine *e;
		int ret;

		vfio_uring_engine_opts_init(&opts, VFIO_URING_SOURCE);
		if (baseline)
			opts.flags |= VFIO_URING_ENGINE_F_BASELINE_RING;
		ret = vfio_uring_engine_create(&opts, &e);
		if (ret) {
			printf("VU-PROBE engine%s create failed: %s\n", baseline ? " (baseline)" : "",
			       strerror(-ret));
			failures++;
			continue;
		}
		printf("VU-PROBE engine%s ring flags 0x%x%s%s\n", baseline ? " (baseline)" : "",
		       e->ring_flags, e->ring_flags & IORING_SETUP_SINGLE_ISSUER ? " SINGLE_ISSUER" : "",
		       e->ring_flags & IORING_SETUP_R_DISABLED ? " R_DISABLED" : "");
		vfio_uring_engine_destroy(e);
	}
}

int main(void)
{
	struct io_uring ring;
	struct utsname u;
	int ret;

	uname(&u);
	printf("VU-PROBE kernel %s %s\n", u.release, u.version);
	ret = io_uring_queue_init(64, &ring, 0);
	if (ret) {
		printf("VU-PROBE io_uring_setup failed: %s\n", strerror(-ret));
		printf("VU-TEST io_uring-probe FAIL\n");
		return 1;
	}
	probe_opcodes(&ring);
	probe_features(&ring);
	probe_setup_flags();
	probe_registers(&ring);
	probe_waitall(&ring);
	io_uring_queue_exit(&ring);
	probe_engine();
	printf("VU-TEST io_uring-probe %s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
