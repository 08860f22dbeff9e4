/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: what the tool's files share. One run is one struct mig_session: the
 * options, the devices, the channel sockets, the engine, and the first error. The source
 * (source.c) and the destination (destination.c) each drive a session from top to bottom;
 * the steps they have in common live in channels.c, devices.c, verdict.c and report.c.
 *
 * Every device carries its fate and a line saying what happened to it, so that the summary
 * (report.c) has a truthful row for each device whatever step failed.
 */
#ifndef VFIO_URING_MIGRATE_H
#define VFIO_URING_MIGRATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timing.h" /* now_s */
#include "vfio-uring.h"

#define MIG_MAX_DEVICES 64
#define MIG_WHY_MAX 1280
#define MIG_VERDICT_MSG_MAX 1024

struct mig_options {
	bool listen;            /* destination (--listen) or source (--connect) */
	const char *addr;
	unsigned channels;
	bool precopy;           /* live pre-copy (both sides: the wire extension) */
	unsigned precopy_max_ms; /* source: longest live phase before stopping anyway */
	bool run_after;         /* destination: RUNNING after a good load */
	const char *config_file; /* --config FILE: the one device's blob */
	const char *config_dir;  /* --config-dir DIR: DIR/NAME per device */
	const char *idstr;
	unsigned timeout_s;
	bool quiet;
	uint8_t uuid[16];
};

/* What happened to a device; the summary row says it in words (mig_device.outcome). */
enum mig_fate {
	MIG_NOT_OPENED,  /* never opened: an earlier step failed */
	MIG_UNTOUCHED,   /* opened; the tool never changed its state */
	MIG_SAVED,       /* source: its state was sent and the destination accepted it */
	MIG_LOADED,      /* destination: its state was loaded and the driver accepted it */
	MIG_FAILED,      /* outcome says why and where the device was left */
};

struct mig_device {
	const char *spec;       /* NAME[@GROUP] as given */
	char name[256];
	int group;              /* -1: look it up in sysfs */
	struct vfio_uring_vfio *vfio;
	struct vfio_uring_device *dev; /* registered with the engine */
	uint64_t data_size;     /* MIG_DATA_SIZE, 0 if unknown */
	enum mig_fate fate;
	char outcome[640];      /* for the summary row; "" until something happened */
	char config_path[PATH_MAX]; /* "" without --config / --config-dir */
	void *config;           /* source: read from config_path; destination: as received */
	size_t config_len;
	bool config_received;   /* destination: the load_config callback ran */
};

struct mig_session {
	const struct mig_options *o;
	struct mig_device *devs;
	unsigned ndev;
	int socks[VFIO_URING_MAX_CHANNELS];
	unsigned nsocks;        /* sockets connected or accepted so far */
	struct vfio_uring_engine *engine;
	int result;             /* 0 or the first error */
	/* source, --precopy: the live phase as it ended (at stop-copy) */
	bool precopy_ran;
	double precopy_s;
	struct vfio_uring_precopy_status precopy;
	char why[MIG_WHY_MAX];  /* the first error's text */
	double t0;
};

/* main.c */
/* Records the first error of the run; later ones are its fallout. \return err. */
int mig_fail(struct mig_session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets d's fate and its summary text (printf-style). */
void mig_device_fate(struct mig_device *d, enum mig_fate fate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The library's message about d without the leading "NAME: " (the row names the device). */
const char *mig_vfio_message(const struct mig_device *d);

/* channels.c */
int mig_connect_channels(struct mig_session *s);
int mig_accept_channels(struct mig_session *s);
void mig_close_channels(struct mig_session *s);

/* devices.c */
int mig_open_devices(struct mig_session *s);
void mig_close_devices(struct mig_session *s);
int mig_create_engine(struct mig_session *s, enum vfio_uring_side side);
/*
 * Moves a device and registers it with s->engine, with these options (the side's
 * vfio_uring_vfio_*_add, setting d->dev): 0 or <0, the reason in vfio_uring_vfio_error().
 */
typedef int mig_add_fn(struct mig_session *s, struct mig_device *d,
		       const struct vfio_uring_device_opts *opts);
/*
 * Each device through add, one by one: the first that fails is marked FAILED and fails the
 * run (the ones before it are registered and finish with the engine). 0 or its error.
 */
int mig_add_devices(struct mig_session *s, mig_add_fn *add);
int mig_read_config(struct mig_device *d);
int mig_write_config(const struct mig_device *d);

/* verdict.c: the destination's last word on channel 0 (a tool-level message). */
int mig_send_verdict(int fd, int error, const char *msg);
int mig_recv_verdict(int fd, int timeout_ms, char *msg, size_t msg_len);

/* report.c */
int mig_run_engine(struct mig_session *s);
void mig_summary(const struct mig_session *s);

/*
 * source.c, destination.c: one whole run each, up to the summary (main.c prints it and
 * closes what the run opened). \return 0 or the run's error.
 */
int mig_source_run(struct mig_session *s);
int mig_destination_run(struct mig_session *s);

#endif /* VFIO_URING_MIGRATE_H */
