/* SPDX-License-Identifier: MIT */
/*
 * The common part of a side's process: set the engine up, synchronise on the control
 * connection (see bench.h), run, report. The engine files only move the data.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const struct bench_engine_ops *const all_engines[ENGINE_COUNT] = {
	[ENGINE_URING] = &engine_uring_ops,
	[ENGINE_THREADS] = &engine_threads_ops,
	[ENGINE_LEGACY] = &engine_legacy_ops,
	[ENGINE_RAW] = &engine_raw_ops,
};

const struct bench_engine_ops *engine_ops(unsigned engine)
{
	return engine < ENGINE_COUNT ? all_engines[engine] : NULL;
}

const char *engine_name(unsigned engine)
{
	return engine < ENGINE_COUNT ? all_engines[engine]->name : "?";
}

int engine_from_name(const char *name)
{
	for (unsigned i = 0; i < ENGINE_COUNT; i++)
		if (strcmp(all_engines[i]->name, name) == 0)
			return (int)i;
	return -1;
}

static void set_error(struct side_ctx *ctx, int err, const char *what)
{
	if (ctx->res->err)
		return;
	ctx->res->err = err;
	if (!ctx->res->msg[0])
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "%s %s: %s",
			 ctx->side == SIDE_SOURCE ? "source" : "destination", what, strerror(-err));
}

static void shut_channels(struct side_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->nchan; i++)
		shutdown(ctx->chans[i], SHUT_RDWR);
}

static int source_main(struct side_ctx *ctx, const struct bench_engine_ops *ops)
{
	char c = 0;
	int err = ops->src_setup(ctx);

	if (err) {
		set_error(ctx, err, "setup");
		goto out;
	}
	err = ctl_recv(ctx->ctrl, &c);
	if (err || c != 'R') {
		set_error(ctx, err ? err : -ECONNABORTED, "waiting for the destination");
		goto out;
	}
	ctx->res->t0 = now_s();
	err = ctl_send(ctx->ctrl, 'G');
	if (!err)
		err = ops->src_run(ctx);
	if (err) {
		set_error(ctx, err, "transfer");
		shut_channels(ctx); /* the destination sees the failure at once */
	}
	if (ctl_recv(ctx->ctrl, &c) == 0 && c == 'D') {
		ctx->res->t_end = now_s();
	} else {
		ctx->res->dest_failed = true;
		if (!err)
			set_error(ctx, -ECONNABORTED, "destination failed");
	}
out:
	ops->teardown(ctx);
	return ctx->res->err;
}

static int dest_main(struct side_ctx *ctx, const struct bench_engine_ops *ops)
{
	char c = 0;
	int err = ops->dst_setup(ctx);

	if (err) {
		set_error(ctx, err, "setup");
		ctl_send(ctx->ctrl, 'F');
		goto out;
	}
	err = ctl_send(ctx->ctrl, 'R');
	if (!err)
		err = ctl_recv(ctx->ctrl, &c);
	if (err || c != 'G') {
		set_error(ctx, err ? err : -ECONNABORTED, "waiting for the source");
		goto out;
	}
	err = ops->dst_run(ctx, now_s() + ctx->cfg->switchover_delay_ms / 1000.0);
	if (err) {
		set_error(ctx, err, "transfer");
		shut_channels(ctx);
	}
	ctl_send(ctx->ctrl, err ? 'F' : 'D');
out:
	ops->teardown(ctx);
	return ctx->res->err;
}

int side_main(struct side_ctx *ctx)
{
	const struct bench_engine_ops *ops = engine_ops(ctx->engine);

	return ctx->side == SIDE_SOURCE ? source_main(ctx, ops) : dest_main(ctx, ops);
}
