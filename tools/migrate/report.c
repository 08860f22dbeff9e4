/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: what the user sees: progress lines while the engine runs (stderr), and
 * the summary (stdout): one row per device saying what happened to it, then the first error,
 * naming the devices it kept from migrating.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate.h"

/* Runs the engine to the end, printing progress against MIG_DATA_SIZE. */
int mig_run_engine(struct mig_session *s)
{
	const struct mig_options *o = s->o;
	uint64_t total = 0, last_done = 0;
	double last_print = 0, last_progress = now_s();

	for (unsigned i = 0; i < s->ndev; i++)
		total += s->devs[i].data_size;
	for (;;) {
		int ret = vfio_uring_engine_run(s->engine, 200);
		uint64_t done = 0;
		for (unsigned i = 0; i < s->ndev; i++) {
			struct vfio_uring_device_status st;
			if (s->devs[i].dev && vfio_uring_device_get_status(s->devs[i].dev, &st, sizeof(st)) == 0)
				done += st.data_bytes;
		}
		double t = now_s();
		if (done != last_done) {
			last_done = done;
			last_progress = t;
		}
		if (!o->quiet && (ret != -ETIMEDOUT || t - last_print >= 1.0)) {
			if (total)
				fprintf(stderr, "progress: %llu / %llu bytes (%.0f%% of MIG_DATA_SIZE)\n",
					(unsigned long long)done, (unsigned long long)total,
					100.0 * (double)done / (double)total);
			else
				fprintf(stderr, "progress: %llu bytes\n", (unsigned long long)done);
			last_print = t;
		}
		if (ret != -ETIMEDOUT)
			return ret;
		if (o->timeout_s && t - last_progress > o->timeout_s) {
			vfio_uring_engine_cancel(s->engine);
			return -ETIMEDOUT;
		}
	}
}

static bool migrated(const struct mig_device *d)
{
	return d->fate == MIG_SAVED || d->fate == MIG_LOADED;
}

/* "  error for A, B: why": every device the error kept from migrating. */
static void print_error(const struct mig_session *s)
{
	const struct mig_device *only = NULL;
	const char *why = s->why[0] ? s->why : strerror(-s->result);
	unsigned n = 0;

	printf("  error");
	for (unsigned i = 0; i < s->ndev; i++) {
		if (migrated(&s->devs[i]))
			continue;
		printf("%s%s", n ? ", " : " for ", s->devs[i].name);
		only = &s->devs[i];
		n++;
	}
	/* one device, and the message starts with its name: do not say it twice */
	if (n == 1) {
		size_t nl = strlen(only->name);
		if (strncmp(why, only->name, nl) == 0 && why[nl] == ':' && why[nl + 1] == ' ')
			why += nl + 2;
	}
	printf(": %s\n", why);
}

void mig_summary(const struct mig_session *s)
{
	const struct mig_options *o = s->o;
	struct vfio_uring_engine_stats es = { 0 };
	double secs = now_s() - s->t0;

	if (s->engine)
		vfio_uring_engine_get_stats(s->engine, &es, sizeof(es));
	printf("%s summary: %s over %u channel(s) in %.3f s\n", o->listen ? "load" : "save",
	       s->result == 0 ? "OK" : "FAILED", o->channels, secs);
	printf("  %-40s %-10s %10s %10s %8s  %s\n", "device", "state", "data", "MIG_DATA", "packets",
	       "outcome");
	for (unsigned i = 0; i < s->ndev; i++) {
		const struct mig_device *d = &s->devs[i];
		struct vfio_uring_device_status st = { 0 };
		enum vfio_uring_vfio_state vs = VFIO_URING_VFIO_ERROR;
		const char *state = "-";
		if (d->dev)
			vfio_uring_device_get_status(d->dev, &st, sizeof(st));
		if (d->vfio)
			state = vfio_uring_vfio_get_state(d->vfio, &vs) == 0 ?
					vfio_uring_vfio_state_name(vs) : "?";
		printf("  %-40s %-10s %10llu %10llu %8llu  %s\n", d->name, state,
		       (unsigned long long)st.data_bytes, (unsigned long long)d->data_size,
		       (unsigned long long)st.packets, d->outcome);
		if (o->listen && d->config_received)
			printf("  %-40s config blob %zu bytes received%s%s\n", "", d->config_len,
			       d->fate == MIG_LOADED && d->config_path[0] ? ", written to " : "",
			       d->fate == MIG_LOADED ? d->config_path : "");
		else if (!o->listen && d->dev && d->config_path[0])
			printf("  %-40s config blob %zu bytes from %s\n", "", d->config_len,
			       d->config_path);
		struct vfio_uring_precopy_status pc = { 0 };
		if (!o->listen && d->dev &&
		    vfio_uring_device_get_precopy_status(d->dev, &pc, sizeof(pc)) == 0 && pc.devices)
			printf("  %-40s precopy %llu bytes live, %s%s\n", "",
			       (unsigned long long)pc.precopy_bytes,
			       pc.ready ? "ready" : "not ready",
			       vfio_uring_vfio_precopy_v2(d->vfio) ? ", PRECOPY_INFOv2" : "");
	}
	if (s->engine)
		printf("  wire %llu bytes, %llu packets, %.1f MB/s\n", (unsigned long long)es.wire_bytes,
		       (unsigned long long)es.packets, secs > 0 ? (double)es.wire_bytes / secs / 1e6 : 0);
	if (s->precopy_ran)
		printf("  precopy: %s after %.3f s, %llu bytes live, stop-copy estimate %llu bytes\n",
		       s->precopy.ready ? "ready" : "NOT ready (--precopy-max-ms)", s->precopy_s,
		       (unsigned long long)s->precopy.precopy_bytes,
		       (unsigned long long)s->precopy.stop_copy_bytes);
	if (s->result != 0)
		print_error(s);
	fflush(stdout);
}
