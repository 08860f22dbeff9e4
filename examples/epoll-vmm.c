/* SPDX-License-Identifier: MIT */
/*
 * epoll-vmm: a vfio-uring engine inside a VMM's epoll main loop.
 *
 *   epoll-vmm --role destination --port 0      # prints the port it listens on
 *   epoll-vmm --role source --port PORT
 *
 * Each side migrates 4 fake devices (memfds, 16 to 64 MiB) over 3 loopback TCP channels
 * while its loop keeps serving other work, a 10 ms timer. One level-triggered epoll set:
 *
 *   engine fd  vfio_uring_engine_get_fd(): readable when completions are pending; the loop
 *              then calls vfio_uring_engine_process(), which never blocks.
 *   timerfd    the VMM's other work; the largest gap between ticks is printed at the end.
 *   signalfd   SIGINT/SIGTERM cancel the migration. vfio_uring_engine_cancel() is not
 *              async-signal-safe: it is called here in the loop, never in a signal handler.
 *   control    destination: stands in for the VMM's main migration stream, on which the
 *              source announces the switchover -> vfio_uring_engine_switchover_start().
 *
 * The device `done` callbacks only record: the engine may not be re-entered from them. The
 * loop destroys the engine once the outcome is known and every device has reported.
 *
 * Exit status: 0 migrated (the destination also verified every byte and config blob),
 * 1 the migration failed, 2 setup failed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vfio-uring.h>

#include "demo-vmm.h"

enum event_source { EV_ENGINE, EV_TIMER, EV_SIGNAL, EV_CONTROL };

struct vmm {
	struct demo_options opts;
	const char *side;
	struct demo_device devs[DEMO_MAX_DEVICES];
	int control_fd, channel_fds[DEMO_MAX_CHANNELS];
	int epoll_fd, timer_fd, signal_fd;
	struct vfio_uring_engine *engine;
	int result;                 /* the engine's outcome: 0 running, 1 done, < 0 failed */
	unsigned timer_expirations;
	struct demo_loop_stats stats;
};

/* ---- engine callbacks: they run inside an engine call ------------------------------- */

/*
 * Runs inside vfio_uring_engine_process() (also inside _cancel() and _destroy()) when the
 * device leaves ACTIVE. Allowed here: reading status, stats and the error, and cancel().
 * Never process(), run() or destroy(): the engine is in the middle of handling a completion.
 * Record, and let the loop act on it.
 */
static void device_done(void *opaque, int error)
{
	struct demo_device *dev = opaque;

	dev->reported = true;
	dev->error = error;
	/* A real source VMM resumes the device here when error != 0: its state never left. */
}

/* ---- the loop's handlers ------------------------------------------------------------ */

/*
 * Lets the engine work. Called when its fd is readable, and right after every call that
 * changes its state from outside (switchover_start(), cancel()), so that the outcome they
 * may already have decided (every device done, or -ECANCELED) is acted on at once.
 */
static void poll_engine(struct vmm *v)
{
	int ret;

	demo_stats_process_begin(&v->stats);
	ret = vfio_uring_engine_process(v->engine);
	demo_stats_process_end(&v->stats);
	if (ret != 0 && v->result == 0) {
		/*
		 * 1: every device is done. < 0: the migration failed; process() keeps returning
		 * that error while the engine drains what is still in flight, and each device
		 * reports (done callback) once the engine is finished with its data fd.
		 */
		v->result = ret;
		demo_stats_stop(&v->stats);
	}
}

/*
 * The outcome is known (process() returned non-zero) AND every device has reported: after
 * a failure, a device whose read or write was in flight reports only once it completed, and
 * until then the kernel may still use the engine's buffers (destroy() would wait for it).
 */
static bool migration_finished(const struct vmm *v)
{
	if (v->result == 0)
		return false;
	for (unsigned i = 0; i < v->opts.devices; i++)
		if (!v->devs[i].reported)
			return false;
	return true;
}

static void on_timer(struct vmm *v)
{
	uint64_t expirations;

	if (read(v->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* spurious wakeup */
	demo_stats_tick(&v->stats);
	/*
	 * The progress timeout is checked in process(); a stalled engine's fd never becomes
	 * readable, so give it a call once a second.
	 */
	v->timer_expirations += (unsigned)expirations;
	if (v->timer_expirations >= 1000 / DEMO_TICK_MS) {
		v->timer_expirations = 0;
		poll_engine(v);
	}
}

static void on_signal(struct vmm *v)
{
	struct signalfd_siginfo si;
	int ret;

	if (read(v->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	printf("%s: %s: cancelling the migration\n", v->side, strsignal((int)si.ssi_signo));
	/*
	 * Fails every active device with -ECANCELED and shuts the channels down, so that the
	 * peer fails at once too. A no-op once the migration has finished either way.
	 */
	ret = vfio_uring_engine_cancel(v->engine);
	if (ret < 0)
		fprintf(stderr, "%s: cancel: %s\n", v->side, strerror(-ret));
	poll_engine(v);
}

static void on_control(struct vmm *v)
{
	char msg;
	ssize_t n = recv(v->control_fd, &msg, 1, 0);
	int ret;

	if (n == 1 && msg == DEMO_MSG_SWITCHOVER) {
		/* Until now received data was held within the buffer cap; now it goes to the devices. */
		ret = vfio_uring_engine_switchover_start(v->engine);
		if (ret < 0) {
			fprintf(stderr, "%s: switchover_start: %s\n", v->side, strerror(-ret));
			vfio_uring_engine_cancel(v->engine);
		}
		poll_engine(v); /* submits the first writes: see poll_engine() */
		return;
	}
	if (n == 1 || (n < 0 && errno == EINTR))
		return; /* nothing else is defined on this demo's control channel */
	/*
	 * EOF or an error: the source has sent all it will send (or died). The outcome comes
	 * from the engine's own channels either way; stop watching, or level-triggered epoll
	 * would report the EOF forever.
	 */
	if (epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, v->control_fd, NULL) < 0)
		perror("epoll_ctl");
}

static int run_loop(struct vmm *v)
{
	while (!migration_finished(v)) {
		struct epoll_event events[8];
		int n = epoll_wait(v->epoll_fd, events, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			switch (events[i].data.u32) {
			case EV_ENGINE:
				poll_engine(v);
				break;
			case EV_TIMER:
				on_timer(v);
				break;
			case EV_SIGNAL:
				on_signal(v);
				break;
			case EV_CONTROL:
				on_control(v);
				break;
			}
		}
	}
	return 0;
}

/* ---- setup -------------------------------------------------------------------------- */

static int watch(struct vmm *v, int fd, enum event_source what)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = what };

	return epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * SIGINT and SIGTERM are blocked first thing and read from a signalfd in the loop: a signal
 * that arrives during setup waits there and cancels the migration as soon as it runs.
 */
static int setup_loop(struct vmm *v)
{
	struct itimerspec tick = {
		.it_interval = { .tv_nsec = DEMO_TICK_MS * 1000000L },
		.it_value = { .tv_nsec = DEMO_TICK_MS * 1000000L },
	};
	sigset_t signals;
	int ret;

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0)
		return -errno;
	v->signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (v->signal_fd < 0 || v->timer_fd < 0 || v->epoll_fd < 0)
		return -errno;
	if (timerfd_settime(v->timer_fd, 0, &tick, NULL) < 0)
		return -errno;
	ret = watch(v, v->signal_fd, EV_SIGNAL);
	if (!ret)
		ret = watch(v, v->timer_fd, EV_TIMER);
	return ret;
}

static int setup(struct vmm *v)
{
	int ret = setup_loop(v);

	if (!ret)
		ret = demo_devices_create(v->devs, v->opts.devices, v->opts.source);
	if (!ret)
		ret = demo_connect(&v->opts, &v->control_fd, v->channel_fds);
	if (!ret)
		ret = demo_engine_setup(&v->opts, v->devs, v->channel_fds, device_done, &v->engine);
	return ret;
}

/*
 * Called from the thread that runs the loop (the engine's ring accepts submissions only
 * from it). Only once the engine has started is its fd worth watching; the destination
 * also watches the control channel for the switchover.
 */
static int start(struct vmm *v)
{
	int ret = demo_engine_start(&v->opts, v->control_fd, v->engine, &v->stats);

	if (ret >= 0)
		ret = watch(v, ret, EV_ENGINE);
	if (ret >= 0 && !v->opts.source)
		ret = watch(v, v->control_fd, EV_CONTROL);
	if (ret < 0)
		return ret;
	printf("%s: transfer started\n", v->side);
	fflush(stdout); /* the tests wait for this line */
	return 0;
}

static void cleanup(struct vmm *v)
{
	/* The engine never closes the fds it was given: ours to close, after destroy. */
	vfio_uring_engine_destroy(v->engine);
	demo_devices_close(v->devs, v->opts.devices);
	for (unsigned i = 0; i < v->opts.channels; i++)
		if (v->channel_fds[i] >= 0)
			close(v->channel_fds[i]);
	int fds[] = { v->control_fd, v->epoll_fd, v->timer_fd, v->signal_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int main(int argc, char **argv)
{
	struct vmm v = { .control_fd = -1, .epoll_fd = -1, .timer_fd = -1, .signal_fd = -1 };
	int ret, status;

	for (unsigned i = 0; i < DEMO_MAX_CHANNELS; i++)
		v.channel_fds[i] = -1;
	if (demo_parse_options(argc, argv, &v.opts) < 0)
		return 2;
	v.side = v.opts.source ? "source" : "destination";
	ret = setup(&v);
	if (!ret)
		ret = start(&v);
	if (ret < 0) {
		const char *why = "";

		if (v.engine)
			vfio_uring_engine_error(v.engine, &why);
		fprintf(stderr, "%s: setup failed: %s %s\n", v.side, strerror(-ret), why);
		cleanup(&v);
		return 2;
	}

	ret = run_loop(&v);
	if (ret < 0) {
		/* The loop itself broke: give up; destroy() below waits for what is in flight. */
		fprintf(stderr, "%s: epoll_wait: %s\n", v.side, strerror(-ret));
		vfio_uring_engine_cancel(v.engine);
		v.result = v.result ? v.result : ret;
		demo_stats_stop(&v.stats);
	}

	/*
	 * Outside of any engine call, with every device reported: the safe place to tear down.
	 * A VMM's loop goes on, so it stops watching the fd that destroy() will close.
	 */
	if (epoll_ctl(v.epoll_fd, EPOLL_CTL_DEL, vfio_uring_engine_get_fd(v.engine), NULL) < 0)
		perror("epoll_ctl");
	status = demo_report(v.side, v.engine, v.result, v.devs, v.opts.devices, &v.stats);
	if (!v.opts.source && v.result > 0) {
		for (unsigned i = 0; i < v.opts.devices; i++)
			if (demo_device_verify(&v.devs[i]) < 0)
				status = 1;
		if (status == 0)
			printf("%s: verified every byte and config blob\n", v.side);
	}
	cleanup(&v);
	return status;
}
