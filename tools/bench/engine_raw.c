/* SPDX-License-Identifier: MIT */
/*
 * `raw`: the transport ceiling. The same bytes from the same fds over the same number of
 * sockets, with no framing, no handshake, no reordering: one thread per connection on each
 * side, read(fd) -> send on the source, recv -> write(fd) on the destination. Both sides
 * compute the same static plan, so nothing on the wire says what goes where:
 *   devices >= connections: whole devices, device d on connection d % C, read as a stream;
 *   devices <  connections: each device cut into contiguous ranges (pread/pwrite), so that
 *                           every connection carries bytes, like the multifd engines.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct raw_unit {
	unsigned dev;
	uint64_t off, len;
	bool stream;      /* whole device: plain read()/write() at the file position */
};

struct raw_conn {
	pthread_t thread;
	bool started;
	struct side_ctx *ctx;
	unsigned id;
	int err;
	char msg[160];
};

static unsigned raw_units(const struct side_ctx *ctx, unsigned conn, struct raw_unit *out,
			  unsigned max)
{
	unsigned n = 0, c = ctx->nchan;

	if (ctx->ndev >= c) {
		for (unsigned d = conn; d < ctx->ndev && n < max; d += c)
			out[n++] = (struct raw_unit){ d, 0, ctx->dev_size, true };
		return n;
	}
	/* Spread the connections over the devices; cut each device into its share. */
	for (unsigned d = 0; d < ctx->ndev; d++) {
		unsigned first = d * c / ctx->ndev, last = (d + 1) * c / ctx->ndev; /* [first,last) */

		if (conn >= first && conn < last && n < max) {
			unsigned k = last - first, i = conn - first;
			uint64_t per = ctx->dev_size / k;
			uint64_t off = per * i;
			uint64_t len = i == k - 1 ? ctx->dev_size - off : per;

			out[n++] = (struct raw_unit){ d, off, len, false };
		}
	}
	return n;
}

static void *raw_thread(void *arg)
{
	struct raw_conn *rc = arg;
	struct side_ctx *ctx = rc->ctx;
	int sock = ctx->chans[rc->id];
	struct raw_unit *units = calloc(ctx->ndev + 1, sizeof(*units));
	unsigned nu = units ? raw_units(ctx, rc->id, units, ctx->ndev + 1) : 0;
	uint8_t *buf = malloc(ctx->chunk);

	if (!buf || !units) {
		free(buf);
		free(units);
		rc->err = -ENOMEM;
		return NULL;
	}
	for (unsigned u = 0; u < nu && !rc->err; u++) {
		int fd = ctx->dev_fds[units[u].dev];
		uint64_t left = units[u].len, off = units[u].off;

		while (left) {
			size_t want = left < ctx->chunk ? (size_t)left : ctx->chunk;
			ssize_t n;

			if (ctx->side == SIDE_SOURCE) {
				n = units[u].stream ? read(fd, buf, want)
						    : pread(fd, buf, want, (off_t)off);
				if (n > 0)
					rc->err = write_full(sock, buf, (size_t)n);
			} else {
				n = recv(sock, buf, want, 0);
				if (n > 0)
					rc->err = units[u].stream
							  ? write_full(fd, buf, (size_t)n)
							  : (pwrite(fd, buf, (size_t)n, (off_t)off) == n
								     ? 0
								     : -EIO);
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 && !rc->err)
				rc->err = n < 0 ? -errno : -EPIPE;
			if (rc->err) {
				snprintf(rc->msg, sizeof(rc->msg), "raw connection %u device %u: %s",
					 rc->id, units[u].dev, strerror(-rc->err));
				break;
			}
			left -= (uint64_t)n;
			off += (uint64_t)n;
		}
	}
	free(buf);
	free(units);
	return NULL;
}

static int raw_setup(struct side_ctx *ctx)
{
	struct raw_conn *rc = calloc(ctx->nchan, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	for (unsigned i = 0; i < ctx->nchan; i++)
		rc[i] = (struct raw_conn){ .ctx = ctx, .id = i };
	ctx->priv = rc;
	return 0;
}

static int raw_run(struct side_ctx *ctx)
{
	struct raw_conn *rc = ctx->priv;
	int err = 0;

	for (unsigned i = 0; i < ctx->nchan; i++) {
		err = -pthread_create(&rc[i].thread, NULL, raw_thread, &rc[i]);
		if (err)
			break;
		rc[i].started = true;
	}
	for (unsigned i = 0; i < ctx->nchan; i++) {
		if (rc[i].started)
			pthread_join(rc[i].thread, NULL);
		rc[i].started = false;
		if (!err && rc[i].err) {
			err = rc[i].err;
			snprintf(ctx->res->msg, sizeof(ctx->res->msg), "%s", rc[i].msg);
		}
	}
	return err;
}

static int raw_dst_run(struct side_ctx *ctx, double switchover_at)
{
	int err;

	(void)switchover_at; /* no framing, no queueing: nothing waits for a switchover */
	err = raw_run(ctx);
	ctx->res->config_ok = !err; /* no config blob travels without framing */
	return err;
}

static void raw_teardown(struct side_ctx *ctx)
{
	free(ctx->priv);
	ctx->priv = NULL;
}

const struct bench_engine_ops engine_raw_ops = {
	.name = "raw",
	.src_setup = raw_setup,
	.src_run = raw_run,
	.dst_setup = raw_setup,
	.dst_run = raw_dst_run,
	.teardown = raw_teardown,
};
