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
 * After the multifd stream the destination sends a verdict on channel 0 (a tool-level
 * message, not part of QEMU's format): "VUMV" | be32 negated errno | be32 length | message.
 * The source resumes its devices (RUNNING) unless the verdict is 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vfio-uring.h"

#define MAX_DEVICES 64
#define VERDICT_MAGIC "VUMV"
#define VERDICT_MSG_MAX 1024

struct device {
	const char *spec;
	char name[256];
	int group;
	struct vfio_uring_vfio *vfio;
	struct vfio_uring_device *dev;
	uint64_t data_size; /* MIG_DATA_SIZE, 0 if unknown */
	int outcome;
	const char *msg;
	size_t config_len; /* destination: config blob received */
	struct options *o;
};

struct options {
	bool listen;
	const char *addr;
	unsigned channels;
	bool precopy;
	bool run_after;
	const char *config_in;
	const char *config_out;
	const char *idstr;
	unsigned timeout_s;
	bool quiet;
	uint8_t uuid[16];
	void *config;
	size_t config_len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfio-uring-migrate --connect HOST:PORT [options] DEVICE...\n"
		"       vfio-uring-migrate --listen [ADDR:]PORT [options] DEVICE...\n"
		"DEVICE: mdev UUID or PCI address (group found in sysfs), or NAME@GROUP\n"
		"  -c, --channels N     TCP channels (default 2; both sides must agree)\n"
		"  -p, --precopy        source: go through PRE_COPY (when the device has it)\n"
		"  -C, --config FILE    source: config blob sent with each device (default empty);\n"
		"                       destination: write the received config blob there\n"
		"  -r, --run            destination: move the devices to RUNNING after loading\n"
		"  -i, --idstr STR      device idstr on the wire (default \"vfio\")\n"
		"  -u, --uuid HEX32     migration UUID (default zeros; both sides must agree)\n"
		"  -t, --timeout S      give up after S seconds without progress (default 60)\n"
		"  -q, --quiet          no progress lines\n");
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

/* "host:port", "[v6]:port" or "port" (listen only). */
static int resolve(const char *addr, bool passive, struct addrinfo **res)
{
	char host[256] = "", port[32];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };

	if (!colon) {
		if (!passive)
			return EAI_NONAME;
		snprintf(port, sizeof(port), "%s", addr);
	} else {
		size_t hl = (size_t)(colon - addr);
		if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
			addr++;
			hl -= 2;
		}
		if (hl >= sizeof(host))
			return EAI_NONAME;
		memcpy(host, addr, hl);
		host[hl] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
#ifdef VFIO_URING_MIGRATE_NUMERIC_ONLY
	/* Static builds (the test guest): glibc's getaddrinfo needs NSS modules at run time, so
	 * take numeric addresses only and build the one result ourselves. */
	struct {
		struct addrinfo ai;
		struct sockaddr_storage ss;
	} *r = calloc(1, sizeof(*r));
	char *end;
	unsigned long pnum = strtoul(port, &end, 10);
	if (!r)
		return EAI_MEMORY;
	if (*end || pnum > 65535) {
		free(r);
		return EAI_SERVICE;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->ss;
	if (!*host || inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		if (!*host)
			sin->sin_addr.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
		r->ai.ai_addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		r->ai.ai_addrlen = sizeof(*sin6);
	} else {
		free(r);
		return EAI_NONAME;
	}
	r->ai.ai_family = r->ss.ss_family;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_addr = (struct sockaddr *)&r->ss;
	(void)hints;
	*res = &r->ai;
	return 0;
#else
	return getaddrinfo(*host ? host : NULL, port, &hints, res);
#endif
}

static void free_resolved(struct addrinfo *res)
{
#ifdef VFIO_URING_MIGRATE_NUMERIC_ONLY
	free(res); /* the addrinfo is the first member of the block resolve() allocated */
#else
	freeaddrinfo(res);
#endif
}

static int connect_channels(const struct options *o, int *socks)
{
	struct addrinfo *res;
	int err = resolve(o->addr, false, &res);

	if (err) {
		fprintf(stderr, "vfio-uring-migrate: %s: %s\n", o->addr, gai_strerror(err));
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->channels; i++) {
		socks[i] = -1;
		/* the destination may still be starting: retry for a few seconds */
		for (int attempt = 0; attempt < 100 && socks[i] < 0; attempt++) {
			for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
				int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
				if (fd < 0)
					continue;
				if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
					socks[i] = fd;
					break;
				}
				err = errno;
				close(fd);
			}
			if (socks[i] < 0)
				usleep(50 * 1000);
		}
		if (socks[i] < 0) {
			fprintf(stderr, "vfio-uring-migrate: channel %u: connect to %s: %s\n", i, o->addr,
				strerror(err));
			free_resolved(res);
			return -err;
		}
		int one = 1;
		setsockopt(socks[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	free_resolved(res);
	return 0;
}

static int accept_channels(const struct options *o, int *socks)
{
	struct addrinfo *res;
	int err = resolve(o->addr, true, &res), lfd = -1;

	if (err) {
		fprintf(stderr, "vfio-uring-migrate: %s: %s\n", o->addr, gai_strerror(err));
		return -EINVAL;
	}
	for (struct addrinfo *ai = res; ai && lfd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), one = 1;
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, (int)o->channels) == 0)
			lfd = fd;
		else {
			err = errno;
			close(fd);
		}
	}
	free_resolved(res);
	if (lfd < 0) {
		fprintf(stderr, "vfio-uring-migrate: listen on %s: %s\n", o->addr, strerror(err));
		return -err;
	}
	if (!o->quiet)
		fprintf(stderr, "listening on %s for %u channel(s)\n", o->addr, o->channels);
	for (unsigned i = 0; i < o->channels; i++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int n = poll(&p, 1, (int)o->timeout_s * 1000);
		if (n <= 0) {
			fprintf(stderr, "vfio-uring-migrate: no connection for channel %u within %u s\n", i,
				o->timeout_s);
			close(lfd);
			return n < 0 ? -errno : -ETIMEDOUT;
		}
		socks[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (socks[i] < 0) {
			err = errno;
			close(lfd);
			return -err;
		}
	}
	close(lfd);
	return 0;
}

static int save_config(void *opaque, const void **data, size_t *len)
{
	struct device *d = opaque;

	*data = d->o->config;
	*len = d->o->config_len;
	return 0;
}

static int load_config(void *opaque, const void *data, size_t len)
{
	struct device *d = opaque;

	d->config_len = len;
	if (d->o->config_out) {
		FILE *f = fopen(d->o->config_out, "wb");
		if (!f)
			return -errno;
		bool ok = fwrite(data, 1, len, f) == len;
		if (fclose(f) != 0 || !ok)
			return -EIO;
	}
	return 0;
}

static int read_file(const char *path, void **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0 || st.st_size > (64 << 20)) {
		fclose(f);
		return -EFBIG;
	}
	*len = (size_t)st.st_size;
	*data = malloc(*len ? *len : 1);
	if (!*data || fread(*data, 1, *len, f) != *len) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, timeout_ms);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ssize_t n = recv(fd, p, len, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_verdict(int fd, int error, const char *msg)
{
	uint8_t hdr[12];
	uint32_t e = htonl((uint32_t)error), l;
	size_t len = strnlen(msg, VERDICT_MSG_MAX);

	l = htonl((uint32_t)len);
	memcpy(hdr, VERDICT_MAGIC, 4);
	memcpy(hdr + 4, &e, 4);
	memcpy(hdr + 8, &l, 4);
	int ret = write_all(fd, hdr, sizeof(hdr));
	return ret ? ret : write_all(fd, msg, len);
}

static int recv_verdict(int fd, int timeout_ms, char *msg, size_t msg_len)
{
	uint8_t hdr[12];
	uint32_t e, l;
	int ret = read_all(fd, hdr, sizeof(hdr), timeout_ms);

	msg[0] = '\0';
	if (ret < 0) {
		snprintf(msg, msg_len, "no verdict from the destination (%s)", strerror(-ret));
		return ret;
	}
	if (memcmp(hdr, VERDICT_MAGIC, 4) != 0) {
		snprintf(msg, msg_len, "bad verdict from the destination");
		return -EPROTO;
	}
	memcpy(&e, hdr + 4, 4);
	memcpy(&l, hdr + 8, 4);
	l = ntohl(l);
	if (l >= msg_len || l > VERDICT_MSG_MAX) {
		snprintf(msg, msg_len, "bad verdict length from the destination");
		return -EPROTO;
	}
	ret = read_all(fd, msg, l, timeout_ms);
	if (ret < 0) {
		snprintf(msg, msg_len, "truncated verdict from the destination");
		return ret;
	}
	msg[l] = '\0';
	return (int)ntohl(e);
}

/* Runs the engine to the end, printing progress from MIG_DATA_SIZE. */
static int run_engine(struct vfio_uring_engine *engine, struct device *devs, unsigned ndev,
		      const struct options *o)
{
	uint64_t total = 0, last_done = 0;
	double last_print = 0, last_progress = now_s();

	for (unsigned i = 0; i < ndev; i++)
		total += devs[i].data_size;
	for (;;) {
		int ret = vfio_uring_engine_run(engine, 200);
		uint64_t done = 0;
		for (unsigned i = 0; i < ndev; i++) {
			struct vfio_uring_device_status st;
			if (vfio_uring_device_get_status(devs[i].dev, &st, sizeof(st)) == 0)
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
			vfio_uring_engine_cancel(engine);
			return -ETIMEDOUT;
		}
	}
}

static void summary(struct vfio_uring_engine *engine, struct device *devs, unsigned ndev,
		    const struct options *o, int result, const char *why, double secs)
{
	struct vfio_uring_engine_stats es = { 0 };

	if (engine)
		vfio_uring_engine_get_stats(engine, &es, sizeof(es));
	printf("%s summary: %s over %u channel(s) in %.3f s\n", o->listen ? "load" : "save",
	       result == 0 ? "OK" : "FAILED", o->channels, secs);
	printf("  %-40s %-10s %10s %10s %8s  %s\n", "device", "state", "data", "MIG_DATA", "packets",
	       "outcome");
	for (unsigned i = 0; i < ndev; i++) {
		struct device *d = &devs[i];
		struct vfio_uring_device_status st = { 0 };
		enum vfio_uring_vfio_state vs = VFIO_URING_VFIO_ERROR;
		const char *state = "?";
		if (d->dev)
			vfio_uring_device_get_status(d->dev, &st, sizeof(st));
		if (d->vfio && vfio_uring_vfio_get_state(d->vfio, &vs) == 0)
			state = vfio_uring_vfio_state_name(vs);
		printf("  %-40s %-10s %10llu %10llu %8llu  %s\n", d->name, state,
		       (unsigned long long)st.data_bytes, (unsigned long long)d->data_size,
		       (unsigned long long)st.packets,
		       !d->vfio && !d->outcome ? "not opened" :
		       d->outcome == 0 ? "ok" : d->msg && *d->msg ? d->msg : strerror(-d->outcome));
		if (o->listen && d->dev && d->outcome == 0)
			printf("  %-40s config blob %zu bytes\n", "", d->config_len);
	}
	if (engine)
		printf("  wire %llu bytes, %llu packets, %.1f MB/s\n", (unsigned long long)es.wire_bytes,
		       (unsigned long long)es.packets, secs > 0 ? (double)es.wire_bytes / secs / 1e6 : 0);
	if (result != 0)
		printf("  error: %s\n", why && *why ? why : strerror(-result));
	fflush(stdout);
}

static int open_devices(struct device *devs, unsigned ndev, char *why, size_t why_len)
{
	for (unsigned i = 0; i < ndev; i++) {
		struct device *d = &devs[i];
		const char *at = strrchr(d->spec, '@');
		size_t nl = at ? (size_t)(at - d->spec) : strlen(d->spec);
		if (nl >= sizeof(d->name)) {
			snprintf(why, why_len, "device name too long: %s", d->spec);
			return -EINVAL;
		}
		memcpy(d->name, d->spec, nl);
		d->name[nl] = '\0';
		d->group = at ? atoi(at + 1) : -1;
	}
	for (unsigned i = 0; i < ndev; i++) {
		struct device *d = &devs[i];
		int group = d->group >= 0 ? d->group : vfio_uring_vfio_find_group(d->name);
		if (group < 0) {
			snprintf(why, why_len, "%s: no IOMMU group in /sys/bus/{mdev,pci}/devices: %s",
				 d->name, strerror(-group));
			d->outcome = group;
			return group;
		}
		int ret = vfio_uring_vfio_open_group(group, d->name, &d->vfio);
		if (ret < 0) {
			snprintf(why, why_len, "%s: cannot open through /dev/vfio/%d: %s", d->name, group,
				 strerror(-ret));
			d->outcome = ret;
			return ret;
		}
		uint64_t flags = 0;
		vfio_uring_vfio_get_migration_flags(d->vfio, &flags);
		if (vfio_uring_vfio_get_data_size(d->vfio, &d->data_size) < 0)
			d->data_size = 0;
		fprintf(stderr, "%s: migration flags 0x%llx%s%s%s, MIG_DATA_SIZE %llu\n", d->name,
			(unsigned long long)flags,
			flags & VFIO_URING_VFIO_MIG_STOP_COPY ? " STOP_COPY" : "",
			flags & VFIO_URING_VFIO_MIG_P2P ? " P2P" : "",
			flags & VFIO_URING_VFIO_MIG_PRE_COPY ? " PRE_COPY" : "",
			(unsigned long long)d->data_size);
	}
	return 0;
}

/* Chunk size: the device state estimate, rounded up to 4 KiB, between 4 KiB and 1 MiB. */
static size_t pick_chunk(const struct device *devs, unsigned ndev)
{
	uint64_t biggest = 0;

	for (unsigned i = 0; i < ndev; i++)
		if (devs[i].data_size > biggest)
			biggest = devs[i].data_size;
	if (!biggest)
		return VFIO_URING_DEFAULT_CHUNK_SIZE;
	biggest = (biggest + 4095) & ~4095ull;
	return biggest > VFIO_URING_DEFAULT_CHUNK_SIZE ? VFIO_URING_DEFAULT_CHUNK_SIZE : biggest;
}

static int migrate(struct options *o, struct device *devs, unsigned ndev)
{
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_engine *engine = NULL;
	int socks[VFIO_URING_MAX_CHANNELS];
	char why[VERDICT_MSG_MAX + 64] = "";
	const char *emsg = NULL;
	double t0 = now_s();
	int result;

	for (unsigned i = 0; i < o->channels; i++)
		socks[i] = -1;
	result = open_devices(devs, ndev, why, sizeof(why));
	if (result < 0)
		goto out;
	result = o->listen ? accept_channels(o, socks) : connect_channels(o, socks);
	if (result < 0) {
		snprintf(why, sizeof(why), "channels: %s", strerror(-result));
		goto out;
	}
	t0 = now_s();
	vfio_uring_engine_opts_init(&eo, o->listen ? VFIO_URING_DESTINATION : VFIO_URING_SOURCE);
	memcpy(eo.uuid, o->uuid, sizeof(eo.uuid));
	eo.chunk_size = pick_chunk(devs, ndev);
	eo.progress_timeout_ms = o->timeout_s * 1000;
	result = vfio_uring_engine_create(&eo, &engine);
	if (result < 0) {
		snprintf(why, sizeof(why), "creating the engine: %s", strerror(-result));
		goto out;
	}
	for (unsigned i = 0; i < o->channels; i++) {
		result = vfio_uring_engine_add_channel(engine, socks[i]);
		if (result < 0) {
			snprintf(why, sizeof(why), "adding channel %u: %s", i, strerror(-result));
			goto out;
		}
	}
	for (unsigned i = 0; i < ndev; i++) {
		struct device *d = &devs[i];
		struct vfio_uring_device_opts dopts;
		vfio_uring_device_opts_init(&dopts);
		dopts.idstr = o->idstr;
		dopts.instance_id = i;
		dopts.multifd = VFIO_URING_MULTIFD_ON;
		dopts.save_config = save_config;
		dopts.load_config = load_config;
		dopts.opaque = d;
		if (!o->listen && o->precopy) {
			uint64_t initial = 0, dirty = 0;
			result = vfio_uring_vfio_save_precopy(d->vfio);
			if (result == 0)
				vfio_uring_vfio_precopy_info(d->vfio, &initial, &dirty);
			fprintf(stderr, "%s: PRE_COPY %s (initial_bytes %llu, dirty_bytes %llu)\n", d->name,
				result == 0 ? "entered" : vfio_uring_vfio_error(d->vfio),
				(unsigned long long)initial, (unsigned long long)dirty);
			if (result < 0 && result != -EOPNOTSUPP)
				goto out_devices;
		}
		result = o->listen ? vfio_uring_vfio_load_add(d->vfio, engine, &dopts, &d->dev)
				   : vfio_uring_vfio_save_add(d->vfio, engine, &dopts, &d->dev);
		if (result < 0) {
			snprintf(why, sizeof(why), "%s", vfio_uring_vfio_error(d->vfio));
			goto out_devices;
		}
	}
	result = vfio_uring_engine_start(engine);
	if (result == 0 && o->listen)
		result = vfio_uring_engine_switchover_start(engine);
	if (result == 0)
		result = run_engine(engine, devs, ndev, o);
	if (result < 0) {
		vfio_uring_engine_error(engine, &emsg);
		snprintf(why, sizeof(why), "%s", emsg && *emsg ? emsg : strerror(-result));
	}

out_devices:
	if (o->listen) {
		/* RESUMING -> STOP: the driver validates what it received. */
		int verdict = result;
		for (unsigned i = 0; i < ndev; i++) {
			struct device *d = &devs[i];
			if (!d->dev)
				continue;
			d->outcome = vfio_uring_vfio_load_finish(d->vfio, result);
			d->msg = vfio_uring_vfio_error(d->vfio);
			if (d->outcome < 0 && verdict == 0) {
				verdict = d->outcome;
				snprintf(why, sizeof(why), "%s", d->msg);
			}
		}
		result = verdict;
		if (socks[0] >= 0)
			send_verdict(socks[0], result, why);
		if (result == 0 && o->run_after) {
			for (unsigned i = 0; i < ndev; i++)
				if (vfio_uring_vfio_set_state(devs[i].vfio, VFIO_URING_VFIO_RUNNING) < 0) {
					result = -EIO;
					snprintf(why, sizeof(why), "%s", vfio_uring_vfio_error(devs[i].vfio));
				}
		}
	} else {
		if (result == 0) {
			/* Every byte went out; the destination still has to accept it. */
			char vmsg[VERDICT_MSG_MAX + 1];
			shutdown(socks[0], SHUT_WR);
			int v = recv_verdict(socks[0], (int)o->timeout_s * 1000, vmsg, sizeof(vmsg));
			if (v != 0) {
				result = v > 0 ? -EPROTO : v;
				snprintf(why, sizeof(why), "destination: %s", vmsg);
			}
		}
		for (unsigned i = 0; i < ndev; i++) {
			struct device *d = &devs[i];
			if (!d->dev)
				continue;
			d->outcome = vfio_uring_vfio_save_finish(d->vfio, result);
			d->msg = vfio_uring_vfio_error(d->vfio);
		}
	}
out:
	summary(engine, devs, ndev, o, result, why, now_s() - t0);
	vfio_uring_engine_destroy(engine);
	for (unsigned i = 0; i < o->channels; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	for (unsigned i = 0; i < ndev; i++)
		vfio_uring_vfio_close(devs[i].vfio);
	return result;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'k' }, { "listen", required_argument, NULL, 'l' },
		{ "channels", required_argument, NULL, 'c' }, { "precopy", no_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'C' },  { "run", no_argument, NULL, 'r' },
		{ "idstr", required_argument, NULL, 'i' },   { "uuid", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
	};
	struct options o = { .channels = 2, .idstr = "vfio", .timeout_s = 60 };
	struct device devs[MAX_DEVICES];
	const char *config = NULL;
	int c, have_mode = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:pC:ri:u:t:qh", longopts, NULL)) != -1) {
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
		case 'C':
			config = optarg;
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
	if (have_mode != 1 || ndev == 0 || ndev > MAX_DEVICES || o.channels == 0 ||
	    o.channels > VFIO_URING_MAX_CHANNELS) {
		usage(stderr);
		return 2;
	}
	if (config && o.listen) {
		o.config_out = config;
	} else if (config) {
		int ret = read_file(config, &o.config, &o.config_len);
		if (ret < 0) {
			fprintf(stderr, "vfio-uring-migrate: config %s: %s\n", config, strerror(-ret));
			return 2;
		}
	}
	memset(devs, 0, sizeof(devs));
	for (unsigned i = 0; i < ndev; i++) {
		devs[i].spec = argv[optind + (int)i];
		devs[i].o = &o;
	}
	int ret = migrate(&o, devs, ndev);
	free(o.config);
	return ret == 0 ? 0 : 1;
}
