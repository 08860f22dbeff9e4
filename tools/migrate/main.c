/* SPDX-License-Identifier: MIT */
/*
 * vfio-uring-migrate: save the migration state of real VFIO devices and send it over N TCP
 * channels (--connect), or receive it into devices on the other side (--listen). For VFIO
 * driver developers: exercises a driver's migration support without a VMM.
 *
 *   destination:  vfio-uring-migrate --listen [ADDR:]PORT [options] DEVICE...
 *   source:       vfio-uring-migrate --connect HOST:PORT  [options] DEVICE...
 *
 * DEVICE is an mdev UUID or a PCI address (its IOMMU group is found in sysfs), optionally
 * NAME@GROUP. Devices are matched between the two sides by position: device i is sent as
 * idstr "vfio" (or --idstr) with instance id i.
 *
 * This file: the command line, then source.c or destination.c runs the whole migration.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

int mig_fail(struct mig_session *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (s->result != 0)
		return err;
	s->result = err;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return err;
}

void mig_device_fate(struct mig_device *d, enum mig_fate fate, const char *fmt, ...)
{
	va_list ap;

	d->fate = fate;
	va_start(ap, fmt);
	vsnprintf(d->outcome, sizeof(d->outcome), fmt, ap);
	va_end(ap);
}

const char *mig_vfio_message(const struct mig_device *d)
{
	const char *msg = vfio_uring_vfio_error(d->vfio);
	size_t nl = strlen(d->name);

	if (strncmp(msg, d->name, nl) == 0 && msg[nl] == ':' && msg[nl + 1] == ' ')
		return msg + nl + 2;
	return msg;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfio-uring-migrate --connect HOST:PORT [options] DEVICE...\n"
		"       vfio-uring-migrate --listen [ADDR:]PORT [options] DEVICE...\n"
		"DEVICE: mdev UUID or PCI address (group found in sysfs), or NAME@GROUP;\n"
		"        devices are paired between the two sides by position\n"
		"  -c, --channels N       TCP channels (default 2; both sides must agree)\n"
		"  -p, --precopy          live pre-copy, on BOTH sides (a wire extension QEMU lacks).\n"
		"                         Source: devices that have PRE_COPY stream their pre-copy\n"
		"                         data live until ready, then go to STOP_COPY for the rest\n"
		"  -P, --precopy-max-ms N source: stop the live phase after N ms even if not ready\n"
		"                         (default 10000; 0: wait for readiness)\n"
		"  -C, --config FILE      one DEVICE only: its config blob. Source: the blob to send;\n"
		"                         destination: where to write the blob received\n"
		"  -D, --config-dir DIR   a config blob per device, in DIR/NAME (NAME: the DEVICE as\n"
		"                         given on that side, without @GROUP). Source: reads them;\n"
		"                         destination: writes them (creating DIR), each only once\n"
		"                         its device's state was loaded\n"
		"  -r, --run              destination: move the devices to RUNNING after loading\n"
		"  -i, --idstr STR        device idstr on the wire (default \"vfio\")\n"
		"  -u, --uuid HEX32       migration UUID (default zeros; both sides must agree)\n"
		"  -t, --timeout S        give up after S seconds without progress, or waiting for a\n"
		"                         channel or the verdict (default 60; 0: never)\n"
		"  -q, --quiet            no progress lines\n"
		"Config blobs belong to the VMM: the tool carries them unchanged. Without -C or -D\n"
		"the source sends empty ones, which a QEMU destination would reject (it expects its\n"
		"VMState encoding of the device's PCI config, vmstate_vfio_pci_config).\n"
		"Prints a summary with one row per device saying what happened to it (untouched,\n"
		"saved, loaded, resumed, reset...) and the first error, naming the devices it kept\n"
		"from migrating; exit 0 when every device migrated, else 1 (2: bad usage).\n");
}

static int parse_uuid(const char *s, uint8_t out[16])
{
	size_t n = 0;

	for (; *s && n < 32; s++) {
		if (*s == '-')
			continue;
		char c = *s;
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0)
			return -1;
		out[n / 2] = (uint8_t)(n % 2 ? out[n / 2] | v : v << 4);
		n++;
	}
	return n == 32 && !*s ? 0 : -1;
}

/* NAME[@GROUP] -> name, group; and the device's config blob path. */
static int parse_device(struct mig_device *d, const struct mig_options *o)
{
	const char *at = strrchr(d->spec, '@');
	size_t nl = at ? (size_t)(at - d->spec) : strlen(d->spec);

	if (nl == 0 || nl >= sizeof(d->name)) {
		fprintf(stderr, "vfio-uring-migrate: bad device name: %s\n", d->spec);
		return -1;
	}
	memcpy(d->name, d->spec, nl);
	d->name[nl] = '\0';
	d->group = at ? atoi(at + 1) : -1;
	mig_device_fate(d, MIG_NOT_OPENED, "not opened");
	if (o->config_file)
		snprintf(d->config_path, sizeof(d->config_path), "%s", o->config_file);
	if (o->config_dir) {
		/* the name becomes a file name in DIR: it must not lead anywhere else */
		if (strchr(d->name, '/') || !strcmp(d->name, ".") || !strcmp(d->name, "..")) {
			fprintf(stderr, "vfio-uring-migrate: %s: not usable as a file name in %s\n",
				d->name, o->config_dir);
			return -1;
		}
		if ((size_t)snprintf(d->config_path, sizeof(d->config_path), "%s/%s", o->config_dir,
				     d->name) >= sizeof(d->config_path)) {
			fprintf(stderr, "vfio-uring-migrate: %s/%s: path too long\n", o->config_dir,
				d->name);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'k' },
		{ "listen", required_argument, NULL, 'l' },
		{ "channels", required_argument, NULL, 'c' },
		{ "precopy", no_argument, NULL, 'p' },
		{ "precopy-max-ms", required_argument, NULL, 'P' },
		{ "config", required_argument, NULL, 'C' },
		{ "config-dir", required_argument, NULL, 'D' },
		{ "run", no_argument, NULL, 'r' },
		{ "idstr", required_argument, NULL, 'i' },
		{ "uuid", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mig_options o = { .channels = 2, .idstr = "vfio", .timeout_s = 60,
				 .precopy_max_ms = 10000 };
	static struct mig_device devs[MIG_MAX_DEVICES];
	static struct mig_session s;
	int c, have_mode = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:pP:C:D:ri:u:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'l':
			o.listen = c == 'l';
			o.addr = optarg;
			have_mode++;
			break;
		case 'c':
			o.channels = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			o.precopy = true;
			break;
		case 'P':
			o.precopy_max_ms = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'C':
			o.config_file = optarg;
			break;
		case 'D':
			o.config_dir = optarg;
			break;
		case 'r':
			o.run_after = true;
			break;
		case 'i':
			o.idstr = optarg;
			break;
		case 'u':
			if (parse_uuid(optarg, o.uuid) < 0) {
				fprintf(stderr, "vfio-uring-migrate: bad UUID %s\n", optarg);
				return 2;
			}
			break;
		case 't':
			o.timeout_s = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	unsigned ndev = (unsigned)(argc - optind);
	if (have_mode != 1 || ndev == 0 || ndev > MIG_MAX_DEVICES || o.channels == 0 ||
	    o.channels > VFIO_URING_MAX_CHANNELS) {
		usage(stderr);
		return 2;
	}
	if (o.config_file && o.config_dir) {
		fprintf(stderr, "vfio-uring-migrate: --config and --config-dir exclude each other\n");
		return 2;
	}
	if (o.config_file && ndev != 1) {
		fprintf(stderr, "vfio-uring-migrate: --config FILE takes one DEVICE; "
				"use --config-dir DIR for %u devices\n", ndev);
		return 2;
	}
	for (unsigned i = 0; i < ndev; i++) {
		devs[i].spec = argv[optind + (int)i];
		if (parse_device(&devs[i], &o) < 0)
			return 2;
	}
	s.o = &o;
	s.devs = devs;
	s.ndev = ndev;
	for (unsigned i = 0; i < VFIO_URING_MAX_CHANNELS; i++)
		s.socks[i] = -1;
	s.t0 = now_s();
	int ret = o.listen ? mig_destination_run(&s) : mig_source_run(&s);
	/* Whatever step a run stopped at: a row per device, then nothing left open. */
	mig_summary(&s);
	vfio_uring_engine_destroy(s.engine);
	mig_close_channels(&s);
	mig_close_devices(&s);
	for (unsigned i = 0; i < ndev; i++)
		free(devs[i].config);
	return ret == 0 ? 0 : 1;
}
