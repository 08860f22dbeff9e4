/* SPDX-License-Identifier: MIT */
/*
 * The embedding contract that docs/EMBEDDING.md states, one behaviour per case: what a VMM
 * may call from the engine's callbacks, when callbacks run inside cancel() and destroy(),
 * when the engine's fd wakes a poller, and which thread may drive the engine.
 *
 * Two engines run in this thread, connected by AF_UNIX socketpairs; devices are memfds.
 * usage: contract CASE | --list    exit 0 pass, 1 fail, 77 skip. The cases: contract_cases.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "vfio-uring.h"

#include "cases.h"
#include "check.h"
#include "net.h"

#define MAX_DEVICES 4
#define CHANNELS 2
enum { SRC, DST };

enum action { NOTHING, CANCEL };

struct pair;

struct dev_ctx {
	struct pair *pair;
	int side;
	unsigned index;
	unsigned done_calls;
	int done_error;
	unsigned loads;
};

struct pair {
	struct vfio_uring_engine *e[2];
	struct vfio_uring_device *dev[2][MAX_DEVICES];
	struct dev_ctx ctx[2][MAX_DEVICES];
	int data_fd[2][MAX_DEVICES];
	int sock[CHANNELS][2];
	unsigned n;
	int result[2];
	/* what the callbacks do */
	enum action in_done[2];   /* in the done callback of ... */
	unsigned in_done_call;    /* ... the n-th device to report on that side (1-based) */
	enum action in_load;      /* destination: in device 0's load_config */
	unsigned reported[2];
	int action_ret;
	bool acted;
};

static const char *const side_name[] = { "source", "destination" };

static void act(struct pair *p, int side)
{
	p->acted = true;
	p->action_ret = vfio_uring_engine_cancel(p->e[side]);
}

static void on_done(void *opaque, int error)
{
	struct dev_ctx *c = opaque;
	struct pair *p = c->pair;
	struct vfio_uring_device_status st;

	c->done_calls++;
	c->done_error = error;
	p->reported[c->side]++;
	/* Reading status is allowed here; it must agree with what the callback is told. */
	CHECK(vfio_uring_device_get_status(p->dev[c->side][c->index], &st, sizeof(st)) == 0, "get_status");
	CHECK(st.state == (error ? VFIO_URING_DEVICE_FAILED : VFIO_URING_DEVICE_DONE) &&
	      st.error == error, "%s device %u: done(%d) but status %s %d", side_name[c->side],
	      c->index, error, vfio_uring_device_state_name(st.state), st.error);
	if (p->in_done[c->side] != NOTHING && p->reported[c->side] == p->in_done_call)
		act(p, c->side);
}

static int on_load(void *opaque, const void *data, size_t len)
{
	struct dev_ctx *c = opaque;

	(void)data;
	(void)len;
	c->loads++;
	if (c->index == 0 && c->pair->in_load != NOTHING)
		act(c->pair, DST);
	return 0;
}

static const char config_blob[] = "config";

static int on_save(void *opaque, const void **data, size_t *len)
{
	(void)opaque;
	*data = config_blob;
	*len = sizeof(config_blob);
	return 0;
}

/* Source devices of the given sizes (MiB), destination devices empty; nothing started. */
static void pair_init(struct pair *p, unsigned n, const unsigned *mib)
{
	memset(p, 0, sizeof(*p));
	p->n = n;
	for (int side = SRC; side <= DST; side++) {
		struct vfio_uring_engine_opts opts;
		int ret;

		vfio_uring_engine_opts_init(&opts, side == SRC ? VFIO_URING_SOURCE
							       : VFIO_URING_DESTINATION);
		opts.progress_timeout_ms = 10000;
		ret = vfio_uring_engine_create(&opts, &p->e[side]);
		if (ret) {
			fprintf(stderr, "create: %s\n", strerror(-ret));
			exit(1);
		}
	}
	for (unsigned c = 0; c < CHANNELS; c++) {
		if (connect_pair(p->sock[c], false) < 0) {
			perror("socketpair");
			exit(1);
		}
		CHECK(vfio_uring_engine_add_channel(p->e[SRC], p->sock[c][0]) >= 0, "add_channel");
		CHECK(vfio_uring_engine_add_channel(p->e[DST], p->sock[c][1]) >= 0, "add_channel");
	}
	for (unsigned i = 0; i < n; i++) {
		for (int side = SRC; side <= DST; side++) {
			struct vfio_uring_device_opts o;
			char idstr[32];
			int fd = memfd_create("contract", MFD_CLOEXEC);

			if (fd < 0 || (side == SRC && ftruncate(fd, (off_t)mib[i] << 20) < 0)) {
				perror("memfd");
				exit(1);
			}
			p->data_fd[side][i] = fd;
			p->ctx[side][i] = (struct dev_ctx){ .pair = p, .side = side, .index = i };
			snprintf(idstr, sizeof(idstr), "dev%u", i);
			vfio_uring_device_opts_init(&o);
			o.idstr = idstr;
			o.data_fd = fd;
			o.done = on_done;
			o.opaque = &p->ctx[side][i];
			if (side == SRC)
				o.save_config = on_save;
			else
				o.load_config = on_load;
			CHECK(vfio_uring_engine_add_device(p->e[side], &o, &p->dev[side][i]) == 0,
			      "add_device");
		}
	}
}

static void pair_start(struct pair *p)
{
	CHECK(vfio_uring_engine_start(p->e[SRC]) == 0, "start source");
	CHECK(vfio_uring_engine_start(p->e[DST]) == 0, "start destination");
}

static bool side_finished(const struct pair *p, int side)
{
	return p->result[side] != 0 && p->reported[side] >= p->n;
}

/* One round of the VMM's loop for both engines: wait for either fd, process both. */
static void pair_step(struct pair *p, int timeout_ms)
{
	struct pollfd pfd[2];

	for (int side = SRC; side <= DST; side++)
		pfd[side] = (struct pollfd){ .fd = vfio_uring_engine_get_fd(p->e[side]),
					     .events = POLLIN };
	poll(pfd, 2, timeout_ms);
	for (int side = SRC; side <= DST; side++) {
		int ret = vfio_uring_engine_process(p->e[side]);

		if (p->result[side] == 0)
			p->result[side] = ret;
	}
}

/* Runs until both sides have an outcome and every device has reported, or 20 s pass. */
static void pair_run(struct pair *p)
{
	for (int i = 0; i < 2000 && !(side_finished(p, SRC) && side_finished(p, DST)); i++)
		pair_step(p, 10);
}

static void pair_destroy(struct pair *p)
{
	for (int side = SRC; side <= DST; side++) {
		vfio_uring_engine_destroy(p->e[side]);
		for (unsigned i = 0; i < p->n; i++)
			close(p->data_fd[side][i]);
	}
	for (unsigned c = 0; c < CHANNELS; c++) {
		close(p->sock[c][0]);
		close(p->sock[c][1]);
	}
}

static void check_reported_once(const struct pair *p, int side)
{
	for (unsigned i = 0; i < p->n; i++)
		CHECK(p->ctx[side][i].done_calls == 1, "%s device %u: done called %u times",
		      side_name[side], i, p->ctx[side][i].done_calls);
}

/* ---- cases -------------------------------------------------------------------------- */

/*
 * cancel() from a device's done callback is allowed: the device that just finished stays
 * DONE, the others fail with -ECANCELED, each reports once, and the peer fails too.
 */
static void cancel_in_done(void)
{
	static const unsigned mib[] = { 1, 32 };
	struct pair p;

	pair_init(&p, 2, mib);
	p.in_done[SRC] = CANCEL;
	p.in_done_call = 1;
	vfio_uring_engine_switchover_start(p.e[DST]);
	pair_start(&p);
	pair_run(&p);
	CHECK(p.acted && p.action_ret == 0, "cancel in done returned %d", p.action_ret);
	CHECK(p.result[SRC] == -ECANCELED, "source result %d", p.result[SRC]);
	CHECK(p.result[DST] < 0, "destination result %d: the peer must fail", p.result[DST]);
	CHECK(p.ctx[SRC][0].done_error == 0, "the device that finished: %d", p.ctx[SRC][0].done_error);
	CHECK(p.ctx[SRC][1].done_error == -ECANCELED, "the other device: %d",
	      p.ctx[SRC][1].done_error);
	check_reported_once(&p, SRC);
	check_reported_once(&p, DST);
	pair_destroy(&p);
	check_reported_once(&p, SRC); /* destroy() reports nothing twice */
}

/*
 * cancel() from the LAST device's done callback: every device is DONE, all data was sent,
 * so the peer succeeds; cancel() should then be the no-op it is once the engine finished.
 * (Until 0.2 the engine marked itself finished only after the last done callback returned,
 * so this cancel failed an engine whose devices were all DONE while the peer succeeded.)
 */
static void cancel_in_last_done(void)
{
	static const unsigned mib[] = { 1 };
	struct pair p;

	pair_init(&p, 1, mib);
	p.in_done[SRC] = CANCEL;
	p.in_done_call = 1;
	vfio_uring_engine_switchover_start(p.e[DST]);
	pair_start(&p);
	pair_run(&p);
	CHECK(p.acted && p.action_ret == 0, "cancel in done returned %d", p.action_ret);
	CHECK(p.result[DST] == 1, "destination result %d", p.result[DST]);
	CHECK(p.result[SRC] == p.result[DST], "source result %d but destination %d: the sides "
	      "disagree", p.result[SRC], p.result[DST]);
	check_reported_once(&p, SRC);
	pair_destroy(&p);
}

/*
 * cancel() from load_config(), which then returns 0: the device must report exactly once.
 * (Until 0.2 load_config's return of 0 then completed it as well: done(-ECANCELED) twice and
 * the engine's count of active devices wrapped.)
 */
static void cancel_in_load_config(void)
{
	static const unsigned mib[] = { 1, 1 };
	struct vfio_uring_device_status st;
	struct pair p;

	pair_init(&p, 2, mib);
	p.in_load = CANCEL;
	vfio_uring_engine_switchover_start(p.e[DST]);
	pair_start(&p);
	pair_run(&p);
	CHECK(p.acted && p.action_ret == 0, "cancel in load_config returned %d", p.action_ret);
	CHECK(p.result[DST] == -ECANCELED, "destination result %d", p.result[DST]);
	check_reported_once(&p, DST);
	vfio_uring_device_get_status(p.dev[DST][0], &st, sizeof(st));
	CHECK(st.state == VFIO_URING_DEVICE_FAILED && st.error == -ECANCELED,
	      "device 0 ends %s %d after reporting %d", vfio_uring_device_state_name(st.state),
	      st.error, p.ctx[DST][0].done_error);
	pair_destroy(&p);
}

/*
 * cancel() from the loop mid-transfer: every device reports once with -ECANCELED (those with
 * nothing in flight before cancel() returns), process() returns -ECANCELED, the peer fails.
 */
static void cancel_from_loop(void)
{
	static const unsigned mib[] = { 16, 16, 16 };
	struct vfio_uring_engine_stats st = { 0 };
	struct pair p;

	pair_init(&p, 3, mib);
	vfio_uring_engine_switchover_start(p.e[DST]);
	pair_start(&p);
	for (int i = 0; i < 2000 && st.packets < 8; i++) {
		pair_step(&p, 10);
		vfio_uring_engine_get_stats(p.e[DST], &st, sizeof(st));
	}
	CHECK(p.result[SRC] == 0 && p.result[DST] == 0, "finished before the cancel");
	CHECK(vfio_uring_engine_cancel(p.e[SRC]) == 0, "cancel");
	pair_run(&p);
	CHECK(p.result[SRC] == -ECANCELED, "source result %d", p.result[SRC]);
	CHECK(p.result[DST] < 0, "destination result %d: the peer must fail", p.result[DST]);
	for (unsigned i = 0; i < p.n; i++)
		CHECK(p.ctx[SRC][i].done_error == -ECANCELED, "source device %u: %d", i,
		      p.ctx[SRC][i].done_error);
	check_reported_once(&p, SRC);
	check_reported_once(&p, DST);
	pair_destroy(&p);
}

/*
 * destroy() mid-transfer, without cancel(): it reports every active device (-ECANCELED)
 * from inside destroy(), so the callbacks' opaque must stay valid until destroy() returns.
 */
static void destroy_reports_devices(void)
{
	static const unsigned mib[] = { 16, 16 };
	struct vfio_uring_engine_stats st = { 0 };
	struct pair p;

	pair_init(&p, 2, mib);
	vfio_uring_engine_switchover_start(p.e[DST]);
	pair_start(&p);
	for (int i = 0; i < 2000 && st.packets < 4; i++) {
		pair_step(&p, 10);
		vfio_uring_engine_get_stats(p.e[DST], &st, sizeof(st));
	}
	CHECK(p.reported[SRC] == 0, "source devices reported before destroy");
	vfio_uring_engine_destroy(p.e[SRC]);
	p.e[SRC] = NULL;
	CHECK(p.reported[SRC] == p.n, "destroy() reported %u of %u devices", p.reported[SRC], p.n);
	for (unsigned i = 0; i < p.n; i++)
		CHECK(p.ctx[SRC][i].done_error == -ECANCELED, "source device %u: %d", i,
		      p.ctx[SRC][i].done_error);
	check_reported_once(&p, SRC);
	pair_destroy(&p);
}

/* Source done, every packet queued at the destination before its switchover. */
/* The source has sent everything and the destination holds it, waiting for switchover. */
static void queue_everything(struct pair *p)
{
	static const unsigned mib[] = { 1 };
	struct vfio_uring_engine_stats st = { 0 };

	pair_init(p, 1, mib);
	pair_start(p);
	for (int i = 0; i < 2000 && (p->result[SRC] == 0 || st.packets < 2); i++) {
		pair_step(p, 10);
		vfio_uring_engine_get_stats(p->e[DST], &st, sizeof(st));
	}
	CHECK(p->result[SRC] == 1 && st.packets == 2, "source %d, %llu packets queued",
	      p->result[SRC], (unsigned long long)st.packets);
}

static void queue_everything_before_switchover(struct pair *p)
{
	queue_everything(p);
	CHECK(vfio_uring_engine_switchover_start(p->e[DST]) == 0, "switchover_start");
}

/* The documented pattern: process() right after switchover_start(), then the loop. */
static void switchover_then_process(void)
{
	struct pair p;

	queue_everything_before_switchover(&p);
	p.result[DST] = vfio_uring_engine_process(p.e[DST]);
	pair_run(&p);
	CHECK(p.result[DST] == 1, "destination result %d", p.result[DST]);
	pair_destroy(&p);
}

/*
 * A loop that just waits for the engine's fd after switchover_start() must be woken.
 * (Until 0.2 switchover_start() only queued the first writes: with every packet already
 * received nothing else completed, the fd never became readable and such a VMM waited
 * forever.)
 */
static void switchover_wakes_fd(void)
{
	struct pollfd pfd;
	struct pair p;

	queue_everything_before_switchover(&p);
	pfd = (struct pollfd){ .fd = vfio_uring_engine_get_fd(p.e[DST]), .events = POLLIN };
	CHECK(poll(&pfd, 1, 2000) == 1, "the engine's fd stayed quiet for 2 s after "
	      "switchover_start()");
	pair_run(&p);
	CHECK(p.result[DST] == 1, "destination result %d", p.result[DST]);
	pair_destroy(&p);
}

static struct vfio_uring_engine *other_thread_engine;
static int other_thread_ret;

static void *other_thread(void *arg)
{
	(void)arg;
	vfio_uring_engine_switchover_start(other_thread_engine);
	other_thread_ret = vfio_uring_engine_process(other_thread_engine);
	return NULL;
}

/*
 * The ring takes submissions only from the thread that called start() (SINGLE_ISSUER,
 * Linux 6.0): a submission from another thread fails the migration with -EEXIST instead of
 * racing. (Reaping alone is not checked by the kernel: this is a safety net, not a license.)
 */
static void wrong_thread(void)
{
	struct utsname u;
	unsigned major = 0;
	const char *why;
	pthread_t t;
	struct pair p;

	if (uname(&u) == 0)
		major = (unsigned)strtoul(u.release, NULL, 10);
	if (major < 6) {
		printf("SKIP: kernel %s has no IORING_SETUP_SINGLE_ISSUER (6.0)\n", u.release);
		exit(77);
	}
	/*
	 * The other thread starts the switchover: the writes it queues must be submitted at
	 * once, from that thread, which the kernel refuses.
	 */
	queue_everything(&p);
	other_thread_engine = p.e[DST];
	if (pthread_create(&t, NULL, other_thread, NULL) != 0) {
		perror("pthread_create");
		exit(1);
	}
	pthread_join(t, NULL);
	CHECK(other_thread_ret == -EEXIST, "process() from another thread returned %d",
	      other_thread_ret);
	CHECK(vfio_uring_engine_error(p.e[DST], &why) == -EEXIST, "engine error: %s", why);
	pair_destroy(&p);
}

#define CASE(f) TEST_CASE(f)
static const struct test_case cases[] = {
#include "contract_cases.h"
};

int main(int argc, char **argv)
{
	int rc = run_cases(cases, ARRAY_SIZE(cases), argc, argv, false);

	return rc == CASES_RAN ? check_result() : rc;
}
