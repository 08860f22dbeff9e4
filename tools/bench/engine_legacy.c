/* SPDX-License-Identifier: MIT */
/*
 * `legacy`: QEMU's old single-stream way. One channel; the source saves the devices one
 * after another (read a chunk, send it, read the next); the destination loads each packet
 * as it arrives, in stream order. Same packets on the wire as the multifd engines, so only
 * the design differs. The old stream loads as it goes: there is no switchover wait.
 */
#include "pktio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct legacy {
	uint8_t *buf;
	size_t buf_size;
};

static int legacy_setup(struct side_ctx *ctx)
{
	struct legacy *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	ctx->priv = l;
	l->buf_size = VU_WIRE_PACKET_OVERHEAD + (ctx->side == SIDE_SOURCE ? ctx->chunk
									  : pkt_max_payload(ctx->chunk));
	l->buf = malloc(l->buf_size);
	return l->buf ? 0 : -ENOMEM;
}

static int send_packet(int fd, uint8_t *pkt, unsigned dev, uint32_t idx, uint32_t flags,
		       size_t data_len)
{
	char idstr[64];
	struct iovec iov;

	device_idstr(dev, idstr, sizeof(idstr));
	vu_wire_encode_header(pkt, idstr, device_instance_id(dev),
			      (uint32_t)(VU_WIRE_VFIO_HEADER_SIZE + data_len));
	vu_wire_encode_vfio_header(pkt + VU_WIRE_HEADER_SIZE, idx, flags);
	iov = (struct iovec){ pkt, VU_WIRE_PACKET_OVERHEAD + data_len };
	return pkt_writev_full(fd, &iov, 1);
}

static int legacy_src_run(struct side_ctx *ctx)
{
	struct legacy *l = ctx->priv;
	uint8_t *data = l->buf + VU_WIRE_PACKET_OVERHEAD;
	int sock = ctx->chans[0], err;

	err = pkt_send_handshake(sock, ctx->uuid, 0);
	if (err)
		return err;
	for (unsigned d = 0; d < ctx->ndev; d++) {
		uint32_t idx = 0;
		size_t blen;

		for (;;) {
			ssize_t n = read(ctx->dev_fds[d], data, ctx->chunk);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = -errno;
				snprintf(ctx->res->msg, sizeof(ctx->res->msg),
					 "legacy source: device %u: read: %s", d, strerror(errno));
				return err;
			}
			if (n == 0)
				break;
			err = send_packet(sock, l->buf, d, idx++, 0, (size_t)n);
			if (err)
				return err;
		}
		blen = device_config_blob(d, ctx->cfg->seed, data + 8, BENCH_CONFIG_BLOB_SIZE);
		vu_wire_frame_config(data, blen);
		err = send_packet(sock, l->buf, d, idx, VU_WIRE_VFIO_FLAG_CONFIG_STATE,
				  blen + VU_WIRE_CONFIG_FRAMING);
		if (err)
			return err;
	}
	return 0;
}

static int legacy_dst_run(struct side_ctx *ctx, double switchover_at)
{
	struct legacy *l = ctx->priv;
	uint32_t max = pkt_max_payload(ctx->chunk);
	uint32_t *next_idx = calloc(ctx->ndev, sizeof(uint32_t));
	unsigned done = 0, id;
	int sock = ctx->chans[0], err;
	char msg[160];
	bool cfg_ok = true;

	(void)switchover_at;
	if (!next_idx)
		return -ENOMEM;
	err = pkt_recv_handshake(sock, ctx->uuid, 1, msg, sizeof(msg), &id);
	while (!err && done < ctx->ndev) {
		struct vu_wire_header hdr;
		struct vu_wire_vfio_header vh;
		int dev;

		err = pkt_recv_header(sock, &hdr, max, msg, sizeof(msg));
		if (err == 1) {
			err = VU_ESTREAM_ENDED;
			snprintf(msg, sizeof(msg), "stream ended with %u of %u devices loaded", done,
				 ctx->ndev);
			break;
		}
		if (err)
			break;
		dev = pkt_find_device(&hdr, ctx->ndev);
		if (dev < 0) {
			err = dev;
			snprintf(msg, sizeof(msg), "unknown device %.64s", hdr.idstr);
			break;
		}
		err = read_full(sock, l->buf, hdr.next_packet_size);
		if (err) {
			snprintf(msg, sizeof(msg), "device %d: truncated payload", dev);
			break;
		}
		err = vu_wire_decode_vfio_header(l->buf, hdr.next_packet_size,
						 VU_WIRE_VFIO_FLAGS_QEMU, &vh, msg, sizeof(msg));
		if (err)
			break;
		if (vh.idx != next_idx[dev]) {
			err = -EPROTO;
			snprintf(msg, sizeof(msg), "device %d: idx %u out of stream order (want %u)",
				 dev, vh.idx, next_idx[dev]);
			break;
		}
		next_idx[dev]++;
		if (vh.flags & VU_WIRE_VFIO_FLAG_CONFIG_STATE) {
			const uint8_t *blob;
			size_t blen;

			err = vu_wire_unframe_config(l->buf + VU_WIRE_VFIO_HEADER_SIZE,
						     hdr.next_packet_size - VU_WIRE_VFIO_HEADER_SIZE,
						     &blob, &blen, msg, sizeof(msg));
			if (err)
				break;
			cfg_ok &= device_config_check((unsigned)dev, ctx->cfg->seed, blob, blen);
			done++;
			continue;
		}
		err = write_full(ctx->dev_fds[dev], l->buf + VU_WIRE_VFIO_HEADER_SIZE,
				 hdr.next_packet_size - VU_WIRE_VFIO_HEADER_SIZE);
		if (err)
			snprintf(msg, sizeof(msg), "device %d: write: %s", dev, strerror(-err));
	}
	free(next_idx);
	ctx->res->config_ok = cfg_ok && !err;
	if (err)
		snprintf(ctx->res->msg, sizeof(ctx->res->msg), "legacy destination: %s", msg);
	return err;
}

static void legacy_teardown(struct side_ctx *ctx)
{
	struct legacy *l = ctx->priv;

	if (l)
		free(l->buf);
	free(l);
	ctx->priv = NULL;
}

const struct bench_engine_ops engine_legacy_ops = {
	.name = "legacy",
	.src_setup = legacy_setup,
	.src_run = legacy_src_run,
	.dst_setup = legacy_setup,
	.dst_run = legacy_dst_run,
	.teardown = legacy_teardown,
	.uses_one_channel = true,
};
