/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test guest: migrations of real mtty devices through the engine and the
 * library's save/load glue, over loopback TCP with 2 channels. The destination runs in a
 * child process (its own VFIO container), the source in the parent.
 * Usage: guest-migrate UUID_A UUID_B
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "guest.h"

#define CHANNELS 2
#define RUN_TIMEOUT_MS 30000

static const char *uuid_a, *uuid_b;
static const char config_blob[] = "config of mtty A";

enum source_kind {
	SOURCE_DEVICE,    /* device A through vfio_uring_vfio_save_add() */
	SOURCE_GARBAGE,   /* 96 bytes of junk: the driver rejects the first write */
	SOURCE_TRUNCATED, /* only A's 24-byte header: the driver rejects RESUMING -> STOP */
};

struct scenario {
	unsigned seed;
	bool precopy;
	bool live; /* with precopy: live pre-copy through the engine (VFIO_URING_ENGINE_F_PRECOPY) */
	enum source_kind source;
	bool dest_wrong_uuid; /* the destination expects another migration: it fails at once */
};

/* What the destination child reports to the parent. */
struct dest_report {
	int engine_result;
	int load_result;
	int state; /* B's state after load_finish */
	unsigned resets;
	int pattern_ok; /* 1 matched, 0 mismatched, -1 not checked */
	int config_ok;
	uint64_t before_switchover; /* live: bytes written to B before switchover start */
	char msg[512];
	char why[512];
};

struct dest_config {
	char blob[64];
	size_t len;
	int calls;
};

static int dest_load_config(void *opaque, const void *data, size_t len)
{
	struct dest_config *c = opaque;

	c->calls++;
	c->len = len;
	memcpy(c->blob, data, len < sizeof(c->blob) ? len : sizeof(c->blob));
	return 0;
}

static int src_save_config(void *opaque, const void **data, size_t *len)
{
	(void)opaque;
	*data = config_blob;
	*len = sizeof(config_blob);
	return 0;
}

static int accept_n(int lfd, int *socks, int n)
{
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		if (poll(&p, 1, 20000) != 1)
			return -ETIMEDOUT;
		socks[i] = accept(lfd, NULL, NULL);
		if (socks[i] < 0)
			return -errno;
	}
	return 0;
}

static void destination(int lfd, const struct scenario *sc, struct dest_report *rep)
{
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_device_opts dopts;
	struct vfio_uring_engine *engine = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_vfio *b;
	struct dest_config cfg = { .calls = 0 };
	const char *emsg = "";
	int socks[CHANNELS] = { -1, -1 };
	enum vfio_uring_vfio_state st = VFIO_URING_VFIO_ERROR;

	rep->pattern_ok = -1;
	rep->engine_result = rep->load_result = -EINPROGRESS;
	if (guest_open(uuid_b, &b) < 0) {
		snprintf(rep->why, sizeof(rep->why), "cannot open B");
		return;
	}
	mtty_clear(vfio_uring_vfio_device_fd(b));
	int ret = accept_n(lfd, socks, CHANNELS);
	if (ret < 0) {
		snprintf(rep->why, sizeof(rep->why), "accept: %s", strerror(-ret));
		return;
	}
	vfio_uring_engine_opts_init(&eo, VFIO_URING_DESTINATION);
	if (sc->dest_wrong_uuid)
		memset(eo.uuid, 0x77, sizeof(eo.uuid));
	eo.progress_timeout_ms = 20000;
	if (sc->live)
		eo.flags |= VFIO_URING_ENGINE_F_PRECOPY;
	ret = vfio_uring_engine_create(&eo, &engine);
	for (int i = 0; ret >= 0 && i < CHANNELS; i++)
		ret = vfio_uring_engine_add_channel(engine, socks[i]);
	if (ret < 0) {
		snprintf(rep->why, sizeof(rep->why), "engine setup: %s", strerror(-ret));
		goto out;
	}
	vfio_uring_device_opts_init(&dopts);
	dopts.idstr = "vfio";
	dopts.instance_id = 0;
	dopts.multifd = VFIO_URING_MULTIFD_ON;
	dopts.load_config = dest_load_config;
	dopts.opaque = &cfg;
	ret = vfio_uring_vfio_load_add(b, engine, &dopts, &edev);
	if (ret < 0) {
		snprintf(rep->why, sizeof(rep->why), "load_add: %s", vfio_uring_vfio_error(b));
		goto out;
	}
	ret = vfio_uring_engine_start(engine);
	/* Live: the pre-copy packets are written while the source VM still runs. */
	for (int waited = 0; sc->live && ret == 0 && waited < RUN_TIMEOUT_MS; waited += 20) {
		struct vfio_uring_device_status ds;
		int r = vfio_uring_engine_run(engine, 20);
		if (r != -ETIMEDOUT)
			ret = r < 0 ? r : -EPROTO; /* done before switchover start cannot be */
		if (vfio_uring_device_get_status(edev, &ds, sizeof(ds)) == 0 && ds.data_bytes >= 24) {
			rep->before_switchover = ds.data_bytes;
			break;
		}
	}
	if (ret == 0)
		ret = vfio_uring_engine_switchover_start(engine);
	if (ret == 0)
		ret = vfio_uring_engine_run(engine, RUN_TIMEOUT_MS);
	rep->engine_result = ret;
	if (ret < 0) {
		vfio_uring_engine_error(engine, &emsg);
		printf("  destination engine: %d: %s\n", ret, emsg ? emsg : "");
	}
	rep->load_result = vfio_uring_vfio_load_finish(b, ret);
	snprintf(rep->msg, sizeof(rep->msg), "%s", vfio_uring_vfio_error(b));
	rep->resets = vfio_uring_vfio_reset_count(b);
	if (vfio_uring_vfio_get_state(b, &st) == 0)
		rep->state = (int)st;
	if (rep->load_result == 0) {
		/* "RUNNING when the caller says so" */
		if (vfio_uring_vfio_set_state(b, VFIO_URING_VFIO_RUNNING) < 0)
			snprintf(rep->why, sizeof(rep->why), "B -> RUNNING: %s", vfio_uring_vfio_error(b));
		rep->pattern_ok = mtty_check(vfio_uring_vfio_device_fd(b), sc->seed, rep->why,
					     sizeof(rep->why)) == 0;
		rep->config_ok = cfg.calls == 1 && cfg.len == sizeof(config_blob) &&
				 memcmp(cfg.blob, config_blob, cfg.len) == 0;
	}
out:
	vfio_uring_engine_destroy(engine);
	for (int i = 0; i < CHANNELS; i++)
		if (socks[i] >= 0)
			close(socks[i]);
}

struct source_report {
	int engine_result;
	int finish_result;
	int state; /* A's state after save_finish */
	/* live pre-copy */
	int live_state;           /* A's state after save_add */
	int precopy_v2;
	struct vfio_uring_precopy_status at_ready, at_end;
	int stop_copy_result;
	int stop_copy_state;      /* A's state after vfio_uring_vfio_stop_copy() */
	bool same_fd;
	uint64_t data_bytes;      /* A's bytes read by the engine */
	char msg[512];
};

/*
 * Live pre-copy, as a VMM: run the engine until it is ready (A's 24 initial bytes moved),
 * "stop the VM": A PRE_COPY -> STOP_COPY, then the engine's stop_copy(), and the rest.
 */
static int run_live(struct vfio_uring_engine *engine, struct vfio_uring_vfio *a,
		    struct source_report *src)
{
	enum vfio_uring_vfio_state st;
	int ret = vfio_uring_engine_start(engine);

	for (int waited = 0; ret == 0 && waited < RUN_TIMEOUT_MS; waited += 20) {
		int r = vfio_uring_engine_run(engine, 20);
		if (r != -ETIMEDOUT)
			return r < 0 ? r : -EPROTO;
		vfio_uring_engine_get_precopy_status(engine, &src->at_ready, sizeof(src->at_ready));
		if (src->at_ready.ready)
			break;
	}
	/*
	 * A read issued before readiness may still be in flight (mtty's read of nothing returns
	 * 0 at once): a little more engine time lets it end, so that the stop-copy bytes cannot
	 * be read as pre-copy ones and precopy_bytes is exactly the initial bytes.
	 */
	for (int i = 0; ret == 0 && i < 5; i++) {
		int r = vfio_uring_engine_run(engine, 20);
		if (r != -ETIMEDOUT)
			return r < 0 ? r : -EPROTO;
	}
	vfio_uring_engine_get_precopy_status(engine, &src->at_ready, sizeof(src->at_ready));
	int fd = vfio_uring_vfio_data_fd(a);
	src->stop_copy_result = vfio_uring_vfio_stop_copy(a);
	src->stop_copy_state = vfio_uring_vfio_get_state(a, &st) == 0 ? (int)st : -1;
	src->same_fd = fd >= 0 && vfio_uring_vfio_data_fd(a) == fd;
	if (src->stop_copy_result < 0) {
		printf("  stop_copy: %s\n", vfio_uring_vfio_error(a));
		vfio_uring_engine_cancel(engine);
		return src->stop_copy_result;
	}
	ret = vfio_uring_engine_stop_copy(engine);
	if (ret == 0)
		ret = vfio_uring_engine_run(engine, RUN_TIMEOUT_MS);
	vfio_uring_engine_get_precopy_status(engine, &src->at_end, sizeof(src->at_end));
	return ret;
}

/* A memfd holding `len` bytes, for a fake source device. */
static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("fake-device", MFD_CLOEXEC);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	return fd;
}

/* A's first 24 bytes (the stream header), through PRE_COPY; A goes back to RUNNING. */
static int header_of(struct vfio_uring_vfio *a, uint8_t *buf, size_t cap)
{
	uint64_t initial = 0;

	if (vfio_uring_vfio_save_precopy(a) < 0 || vfio_uring_vfio_precopy_info(a, &initial, NULL) < 0 ||
	    initial == 0 || initial > cap)
		return -1;
	ssize_t n = read(vfio_uring_vfio_data_fd(a), buf, (size_t)initial);
	if (vfio_uring_vfio_set_state(a, VFIO_URING_VFIO_RUNNING) < 0)
		return -1;
	return (int)n;
}

/*
 * Runs one migration: the destination in a child, the source here. Fills A with the seed's
 * pattern first. On return A is still open in *a_out (for the caller's checks).
 */
static int run_pair(const struct scenario *sc, struct source_report *src, struct dest_report *dst,
		    struct vfio_uring_vfio **a_out)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	int lfd, pipefd[2], socks[CHANNELS] = { -1, -1 }, fake_fd = -1;
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_device_opts dopts;
	struct vfio_uring_engine *engine = NULL;
	struct vfio_uring_device *edev;
	struct vfio_uring_vfio *a;
	const char *emsg = "";

	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	src->engine_result = src->finish_result = -EINPROGRESS;
	if (guest_open(uuid_a, &a) < 0)
		return -1;
	*a_out = a;
	if (mtty_fill(vfio_uring_vfio_device_fd(a), sc->seed) < 0)
		return -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0 || pipe(pipefd) < 0) {
		printf("  loopback socket: %s\n", strerror(errno));
		return -1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct dest_report rep;
		memset(&rep, 0, sizeof(rep));
		close(pipefd[0]);
		destination(lfd, sc, &rep);
		guest_close_all();
		if (write(pipefd[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(2);
		fflush(stdout);
		_exit(0);
	}
	close(pipefd[1]);
	close(lfd);

	for (int i = 0; i < CHANNELS; i++) {
		socks[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (socks[i] < 0 || connect(socks[i], (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			printf("  connect: %s\n", strerror(errno));
			goto wait_child;
		}
	}
	vfio_uring_engine_opts_init(&eo, VFIO_URING_SOURCE);
	eo.chunk_size = 4096;
	eo.progress_timeout_ms = 20000;
	if (sc->live)
		eo.flags |= VFIO_URING_ENGINE_F_PRECOPY;
	int ret = vfio_uring_engine_create(&eo, &engine);
	for (int i = 0; ret >= 0 && i < CHANNELS; i++)
		ret = vfio_uring_engine_add_channel(engine, socks[i]);
	if (ret < 0) {
		printf("  source engine setup: %s\n", strerror(-ret));
		goto wait_child;
	}
	vfio_uring_device_opts_init(&dopts);
	dopts.idstr = "vfio";
	dopts.instance_id = 0;
	dopts.multifd = VFIO_URING_MULTIFD_ON;
	dopts.save_config = src_save_config;
	if (sc->source == SOURCE_DEVICE) {
		if (sc->precopy) {
			uint64_t initial = 0;
			ret = vfio_uring_vfio_save_precopy(a);
			if (ret == 0)
				ret = vfio_uring_vfio_precopy_info(a, &initial, NULL);
			src->precopy_v2 = vfio_uring_vfio_precopy_v2(a);
			printf("  source PRE_COPY: %d, initial_bytes %llu, PRECOPY_INFOv2 %d\n", ret,
			       (unsigned long long)initial, src->precopy_v2);
			if (ret < 0 || initial == 0)
				goto wait_child;
		}
		ret = vfio_uring_vfio_save_add(a, engine, &dopts, &edev);
		if (ret < 0) {
			printf("  save_add: %s\n", vfio_uring_vfio_error(a));
			goto wait_child;
		}
		enum vfio_uring_vfio_state st;
		src->live_state = vfio_uring_vfio_get_state(a, &st) == 0 ? (int)st : -1;
	} else {
		uint8_t bytes[128];
		int n = 96;
		memset(bytes, 0x5a, sizeof(bytes));
		if (sc->source == SOURCE_TRUNCATED)
			n = header_of(a, bytes, sizeof(bytes));
		fake_fd = n > 0 ? memfd_with(bytes, (size_t)n) : -1;
		dopts.data_fd = fake_fd;
		if (fake_fd < 0 || vfio_uring_engine_add_device(engine, &dopts, &edev) < 0) {
			printf("  fake source device setup failed\n");
			goto wait_child;
		}
	}
	if (sc->live) {
		ret = run_live(engine, a, src);
	} else {
		ret = vfio_uring_engine_start(engine);
		if (ret == 0)
			ret = vfio_uring_engine_run(engine, RUN_TIMEOUT_MS);
	}
	struct vfio_uring_device_status ds;
	if (vfio_uring_device_get_status(edev, &ds, sizeof(ds)) == 0)
		src->data_bytes = ds.data_bytes;
	src->engine_result = ret;
	if (ret < 0) {
		vfio_uring_engine_error(engine, &emsg);
		printf("  source engine: %d: %s\n", ret, emsg ? emsg : "");
	}
	/* the stream is out: let the destination see the end of it */
	for (int i = 0; i < CHANNELS; i++)
		shutdown(socks[i], SHUT_WR);

wait_child:
	if (read(pipefd[0], dst, sizeof(*dst)) != (ssize_t)sizeof(*dst)) {
		snprintf(dst->why, sizeof(dst->why), "no report from the destination");
		dst->load_result = -EPIPE;
	}
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	if (sc->source == SOURCE_DEVICE && src->engine_result != -EINPROGRESS) {
		/* The destination's verdict counts too: a failed load resumes the source. */
		int verdict = src->engine_result ? src->engine_result : dst->load_result;
		src->finish_result = vfio_uring_vfio_save_finish(a, verdict);
		snprintf(src->msg, sizeof(src->msg), "%s", vfio_uring_vfio_error(a));
	}
	enum vfio_uring_vfio_state st;
	src->state = vfio_uring_vfio_get_state(a, &st) == 0 ? (int)st : -1;
	vfio_uring_engine_destroy(engine);
	for (int i = 0; i < CHANNELS; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	if (fake_fd >= 0)
		close(fake_fd);
	printf("  source: engine %d, finish %d, A in %s%s%s\n", src->engine_result, src->finish_result,
	       vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)src->state),
	       *src->msg ? ": " : "", src->msg);
	printf("  destination: engine %d, load %d, B in %s, resets %u, pattern %d, config %d%s%s%s%s\n",
	       dst->engine_result, dst->load_result,
	       vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)dst->state), dst->resets,
	       dst->pattern_ok, dst->config_ok, *dst->msg ? ": " : "", dst->msg,
	       *dst->why ? " / " : "", dst->why);
	return 0;
}

static int test_migrate(char *why, size_t len, bool precopy)
{
	struct scenario sc = { .seed = precopy ? 6 : 5, .precopy = precopy };
	struct source_report src;
	struct dest_report dst;
	struct vfio_uring_vfio *a;

	GCHECK(run_pair(&sc, &src, &dst, &a) == 0, "setup");
	GCHECK(src.engine_result == 0, "source engine %d", src.engine_result);
	GCHECK(dst.engine_result == 0 && dst.load_result == 0, "destination %d/%d: %s",
	       dst.engine_result, dst.load_result, dst.msg);
	GCHECK(src.finish_result == 0 && src.state == VFIO_URING_VFIO_STOP,
	       "source finish %d, state %d", src.finish_result, src.state);
	GCHECK(dst.state == VFIO_URING_VFIO_STOP, "B was in state %d after the load", dst.state);
	GCHECK(dst.pattern_ok == 1, "B's registers/FIFO: %s", dst.why);
	GCHECK(dst.config_ok == 1, "config blob");
	(void)why;
	(void)len;
	/* the source device goes back to work for the next test */
	GCHECK(vfio_uring_vfio_set_state(a, VFIO_URING_VFIO_RUNNING) == 0, "%s",
	       vfio_uring_vfio_error(a));
	return 0;
}

static int test_migrate_2ch(char *why, size_t len)
{
	return test_migrate(why, len, false);
}

static int test_migrate_precopy(char *why, size_t len)
{
	return test_migrate(why, len, true);
}

/*
 * Live pre-copy through the engine: A in PRE_COPY is registered live, the engine moves its 24
 * initial bytes while it runs (ready, precopy_bytes 24) and B gets them before switchover
 * start; then A PRE_COPY -> STOP_COPY on the same fd, stop_copy(), the other 72 bytes, and B
 * holds A's registers and FIFO. Debian's 6.12 mtty predates PRECOPY_INFOv2: the opt-in is
 * refused, which must not matter.
 */
static int test_migrate_live(char *why, size_t len)
{
	struct scenario sc = { .seed = 20, .precopy = true, .live = true };
	struct source_report src;
	struct dest_report dst;
	struct vfio_uring_vfio *a;

	(void)why;
	(void)len;
	GCHECK(run_pair(&sc, &src, &dst, &a) == 0, "setup");
	printf("  live: A after save_add %s, at ready: ready %u live %u precopy_bytes %llu "
	       "initial %llu stop_copy_bytes %llu; stop_copy %d -> %s (same fd %d); at end: "
	       "precopy_bytes %llu, data %llu; B before switchover %llu; v2 %d\n",
	       vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)src.live_state),
	       src.at_ready.ready, src.at_ready.live,
	       (unsigned long long)src.at_ready.precopy_bytes,
	       (unsigned long long)src.at_ready.initial_bytes,
	       (unsigned long long)src.at_ready.stop_copy_bytes, src.stop_copy_result,
	       vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)src.stop_copy_state),
	       src.same_fd, (unsigned long long)src.at_end.precopy_bytes,
	       (unsigned long long)src.data_bytes, (unsigned long long)dst.before_switchover,
	       src.precopy_v2);
	GCHECK(src.live_state == VFIO_URING_VFIO_PRE_COPY, "save_add moved A to %d", src.live_state);
	GCHECK(src.at_ready.ready == 1 && src.at_ready.live == 1 && src.at_ready.devices == 1,
	       "not ready while live");
	GCHECK(src.at_ready.precopy_bytes == 24 && src.at_ready.initial_bytes == 0,
	       "precopy_bytes %llu", (unsigned long long)src.at_ready.precopy_bytes);
	GCHECK(src.at_ready.stop_copy_bytes == 96, "stop_copy_bytes (MIG_DATA_SIZE) %llu",
	       (unsigned long long)src.at_ready.stop_copy_bytes);
	GCHECK(dst.before_switchover == 24, "B got %llu bytes before switchover start",
	       (unsigned long long)dst.before_switchover);
	GCHECK(src.stop_copy_result == 0 && src.stop_copy_state == VFIO_URING_VFIO_STOP_COPY &&
	       src.same_fd, "stop_copy %d, state %d", src.stop_copy_result, src.stop_copy_state);
	GCHECK(src.engine_result == 0, "source engine %d", src.engine_result);
	GCHECK(src.at_end.precopy_bytes == 24 && src.at_end.live == 0 && src.data_bytes == 96,
	       "at end: precopy_bytes %llu, data %llu", (unsigned long long)src.at_end.precopy_bytes,
	       (unsigned long long)src.data_bytes);
	GCHECK(dst.engine_result == 0 && dst.load_result == 0, "destination %d/%d: %s",
	       dst.engine_result, dst.load_result, dst.msg);
	GCHECK(src.finish_result == 0 && src.state == VFIO_URING_VFIO_STOP,
	       "source finish %d, state %d", src.finish_result, src.state);
	GCHECK(dst.pattern_ok == 1, "B's registers/FIFO: %s", dst.why);
	GCHECK(dst.config_ok == 1, "config blob");
	GCHECK(vfio_uring_vfio_set_state(a, VFIO_URING_VFIO_RUNNING) == 0, "%s",
	       vfio_uring_vfio_error(a));
	return 0;
}

/* The driver rejects the stream: an error naming B, B reset to RUNNING. */
static int test_rejected(enum source_kind kind)
{
	struct scenario sc = { .seed = 7, .source = kind };
	struct source_report src;
	struct dest_report dst;
	struct vfio_uring_vfio *a;

	GCHECK(run_pair(&sc, &src, &dst, &a) == 0, "setup");
	GCHECK(dst.load_result < 0, "the destination accepted a bad stream");
	GCHECK(strstr(dst.msg, uuid_b) != NULL, "message does not name B: %s", dst.msg);
	GCHECK(dst.state == VFIO_URING_VFIO_RUNNING, "B in state %d, expected RUNNING", dst.state);
	GCHECK(dst.resets >= 1, "B was not reset");
	GCHECK(src.state == VFIO_URING_VFIO_RUNNING, "A in state %d", src.state);
	return 0;
}

static int test_corrupt_stream(char *why, size_t len)
{
	(void)why;
	(void)len;
	return test_rejected(SOURCE_GARBAGE);
}

static int test_truncated_stream(char *why, size_t len)
{
	(void)why;
	(void)len;
	return test_rejected(SOURCE_TRUNCATED);
}

/* The destination fails (wrong migration UUID): the source device resumes with its state. */
static int test_source_resumes(char *why, size_t len)
{
	struct scenario sc = { .seed = 8, .dest_wrong_uuid = true };
	struct source_report src;
	struct dest_report dst;
	struct vfio_uring_vfio *a;

	GCHECK(run_pair(&sc, &src, &dst, &a) == 0, "setup");
	GCHECK(dst.load_result < 0, "the destination should have failed");
	GCHECK(src.finish_result < 0, "save_finish must report the failure");
	GCHECK(src.state == VFIO_URING_VFIO_RUNNING, "A in state %d, expected RUNNING", src.state);
	GCHECK(strstr(src.msg, uuid_a) != NULL, "message does not name A: %s", src.msg);
	int fail = mtty_check(vfio_uring_vfio_device_fd(a), sc.seed, why, len);
	GCHECK(!fail, "A lost its state: %s", why);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(char *, size_t);
	} tests[] = {
		{ "migrate-a-to-b-2ch", test_migrate_2ch },
		{ "migrate-precopy", test_migrate_precopy },
		{ "migrate-precopy-live", test_migrate_live },
		{ "corrupt-stream-rejected", test_corrupt_stream },
		{ "truncated-stream-rejected", test_truncated_stream },
		{ "source-resumes-after-destination-failure", test_source_resumes },
	};
	char why[512];

	if (argc != 3) {
		fprintf(stderr, "usage: %s UUID_A UUID_B\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uuid_a = argv[1];
	uuid_b = argv[2];
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		why[0] = '\0';
		printf("VU-RUN-TEST %s\n", tests[i].name);
		int rc = tests[i].fn(why, sizeof(why));
		guest_close_all();
		guest_result(tests[i].name, rc, rc ? "%s" : NULL, why);
	}
	return guest_failures ? 1 : 0;
}
