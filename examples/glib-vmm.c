/* SPDX-License-Identifier: MIT */
/*
 * glib-vmm: a vfio-uring engine inside a GLib main loop, the loop QEMU runs on.
 *
 *   glib-vmm --role destination --port 0       # prints the port it listens on
 *   glib-vmm --role source --port PORT
 *
 * The same migration as epoll-vmm.c (4 memfd devices, 3 loopback TCP channels, a 10 ms
 * timer), the GLib way:
 *
 *   engine fd  g_unix_fd_add(fd, G_IO_IN): GLib polls it (level-triggered) and calls
 *              on_engine(), which calls vfio_uring_engine_process(); it never blocks.
 *   timer      g_timeout_add(10 ms): the VMM's other work.
 *   signals    g_unix_signal_add(SIGINT/SIGTERM): GLib turns a signal into a main-loop
 *              callback through its own wakeup fd; there vfio_uring_engine_cancel() is safe.
 *   control    destination: g_unix_fd_add on the control socket, the stand-in for the main
 *              migration stream, on which the source announces the switchover.
 *   teardown   g_idle_add() once the outcome is known and every device has reported. That
 *              is often decided inside a device `done` callback, i.e. inside process(),
 *              where the engine must not be destroyed; the idle callback runs after it.
 *
 * Exit status: 0 migrated (the destination also verified every byte and config blob),
 * 1 the migration failed, 2 setup failed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <vfio-uring.h>

#include "demo-vmm.h"

struct vmm {
	struct demo_options opts;
	const char *side;
	struct demo_device devs[DEMO_MAX_DEVICES];
	int control_fd, channel_fds[DEMO_MAX_CHANNELS];
	struct vfio_uring_engine *engine;
	GMainLoop *loop;
	guint engine_watch, control_watch, timer, sigint_watch, sigterm_watch, teardown_idle;
	int result;         /* the engine's outcome: 0 running, 1 done, < 0 failed */
	unsigned ticks_since_poll;
	int exit_status;
	struct demo_loop_stats stats;
};

static gboolean teardown(gpointer data);

/*
 * Teardown waits for the outcome (process() returned non-zero) AND every device's report:
 * after a failure, a device whose read or write was in flight reports only once it has
 * completed, and until then the kernel may still use the engine's buffers.
 */
static void schedule_teardown_when_finished(struct vmm *v)
{
	if (v->result == 0 || v->teardown_idle)
		return;
	for (unsigned i = 0; i < v->opts.devices; i++)
		if (!v->devs[i].reported)
			return;
	/* At default priority, not g_idle_add()'s lower one, so a busy loop cannot starve it. */
	v->teardown_idle = g_idle_add_full(G_PRIORITY_DEFAULT, teardown, v, NULL);
}

/* ---- engine callbacks: they run inside an engine call ------------------------------- */

/*
 * Runs inside vfio_uring_engine_process() (also inside _cancel() and _destroy()) when the
 * device leaves ACTIVE. Allowed here: reading status, stats and the error, and cancel().
 * Not allowed: process(), run(), destroy(). So the teardown goes to an idle callback.
 */
static void device_done(void *opaque, int error)
{
	struct demo_device *dev = opaque;

	dev->reported = true;
	dev->error = error;
	/* A real source VMM resumes the device here when error != 0: its state never left. */
	schedule_teardown_when_finished(dev->vmm);
}

/* ---- main-loop callbacks ------------------------------------------------------------ */

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
		/* 1: every device is done; < 0: failed, and still draining what is in flight. */
		v->result = ret;
		demo_stats_stop(&v->stats);
	}
	schedule_teardown_when_finished(v);
}

static gboolean on_engine(gint fd, GIOCondition condition, gpointer data)
{
	(void)fd;
	(void)condition;
	poll_engine(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_tick(gpointer data)
{
	struct vmm *v = data;

	demo_stats_tick(&v->stats);
	/*
	 * The progress timeout is checked in process(); a stalled engine's fd never becomes
	 * readable, so give it a call once a second.
	 */
	if (++v->ticks_since_poll >= 1000 / DEMO_TICK_MS) {
		v->ticks_since_poll = 0;
		poll_engine(v);
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
	struct vmm *v = data;
	int ret;

	printf("%s: signal: cancelling the migration\n", v->side);
	/* Fails every active device with -ECANCELED and shuts the channels down: the peer fails too. */
	ret = vfio_uring_engine_cancel(v->engine);
	if (ret < 0)
		fprintf(stderr, "%s: cancel: %s\n", v->side, strerror(-ret));
	poll_engine(v);
	return G_SOURCE_CONTINUE;
}

static gboolean on_control(gint fd, GIOCondition condition, gpointer data)
{
	struct vmm *v = data;
	char msg;
	ssize_t n = recv(fd, &msg, 1, 0);
	int ret;

	(void)condition;
	if (n == 1 && msg == DEMO_MSG_SWITCHOVER) {
		/* Until now received data was held within the buffer cap; now it goes to the devices. */
		ret = vfio_uring_engine_switchover_start(v->engine);
		if (ret < 0) {
			fprintf(stderr, "%s: switchover_start: %s\n", v->side, strerror(-ret));
			vfio_uring_engine_cancel(v->engine);
		}
		poll_engine(v); /* submits the first writes: see poll_engine() */
		return G_SOURCE_CONTINUE;
	}
	if (n == 1 || (n < 0 && errno == EINTR))
		return G_SOURCE_CONTINUE; /* nothing else is defined on this demo's control channel */
	/* EOF or error: the source has sent all it will send (or died); the engine's channels tell. */
	v->control_watch = 0;
	return G_SOURCE_REMOVE;
}

/* Runs from the main loop, outside of any engine call: the one safe place to destroy. */
static gboolean teardown(gpointer data)
{
	struct vmm *v = data;

	v->teardown_idle = 0;
	v->exit_status = demo_report(v->side, v->engine, v->result, v->devs, v->opts.devices,
				     &v->stats);
	if (!v->opts.source && v->result > 0) {
		for (unsigned i = 0; i < v->opts.devices; i++)
			if (demo_device_verify(&v->devs[i]) < 0)
				v->exit_status = 1;
		if (v->exit_status == 0)
			printf("%s: verified every byte and config blob\n", v->side);
	}
	/* The fd GLib polls belongs to the engine: stop watching it before destroying it. */
	g_source_remove(v->engine_watch);
	v->engine_watch = 0;
	vfio_uring_engine_destroy(v->engine);
	v->engine = NULL;
	/* A VMM's loop goes on; the demo's ends with the migration. */
	g_main_loop_quit(v->loop);
	return G_SOURCE_REMOVE;
}

/* ---- setup -------------------------------------------------------------------------- */

static int setup(struct vmm *v)
{
	int ret = demo_devices_create(v->devs, v->opts.devices, v->opts.source);

	for (unsigned i = 0; i < v->opts.devices; i++)
		v->devs[i].vmm = v; /* device_done schedules the teardown of this VMM */
	if (!ret)
		ret = demo_connect(&v->opts, &v->control_fd, v->channel_fds);
	if (!ret)
		ret = demo_engine_setup(&v->opts, v->devs, v->channel_fds, device_done, &v->engine);
	return ret;
}

/*
 * Called from the thread that runs this GMainContext (the engine's ring accepts submissions
 * only from it); in QEMU that is the main loop thread (or an iothread's). The destination
 * also watches the control channel for the switchover.
 */
static int start(struct vmm *v)
{
	int ret = demo_engine_start(&v->opts, v->control_fd, v->engine, &v->stats);

	if (ret < 0)
		return ret;
	v->engine_watch = g_unix_fd_add(ret, G_IO_IN, on_engine, v);
	if (!v->opts.source)
		v->control_watch = g_unix_fd_add(v->control_fd, G_IO_IN, on_control, v);
	printf("%s: transfer started\n", v->side);
	fflush(stdout); /* the tests wait for this line */
	return 0;
}

static void cleanup(struct vmm *v)
{
	guint *watches[] = { &v->engine_watch, &v->control_watch, &v->timer, &v->sigint_watch,
			     &v->sigterm_watch, &v->teardown_idle };

	for (size_t i = 0; i < sizeof(watches) / sizeof(watches[0]); i++)
		if (*watches[i])
			g_source_remove(*watches[i]);
	/* The engine never closes the fds it was given: ours to close, after destroy. */
	vfio_uring_engine_destroy(v->engine);
	demo_devices_close(v->devs, v->opts.devices);
	for (unsigned i = 0; i < v->opts.channels; i++)
		if (v->channel_fds[i] >= 0)
			close(v->channel_fds[i]);
	if (v->control_fd >= 0)
		close(v->control_fd);
	if (v->loop)
		g_main_loop_unref(v->loop);
}

int main(int argc, char **argv)
{
	struct vmm v = { .control_fd = -1 };
	int ret;

	for (unsigned i = 0; i < DEMO_MAX_CHANNELS; i++)
		v.channel_fds[i] = -1;
	if (demo_parse_options(argc, argv, &v.opts) < 0)
		return 2;
	v.side = v.opts.source ? "source" : "destination";
	v.loop = g_main_loop_new(NULL, FALSE);
	/* First thing: a signal that comes during setup is then served once the loop runs. */
	v.sigint_watch = g_unix_signal_add(SIGINT, on_signal, &v);
	v.sigterm_watch = g_unix_signal_add(SIGTERM, on_signal, &v);
	v.timer = g_timeout_add(DEMO_TICK_MS, on_tick, &v);

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
	g_main_loop_run(v.loop);
	cleanup(&v);
	return v.exit_status;
}
