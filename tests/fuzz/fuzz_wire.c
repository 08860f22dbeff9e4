/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the wire decoders (src/wire.c). Every input goes through every decoder:
 * the handshake and header decoders read its first 64 / 276 bytes (zero-padded), the VFIO
 * header decoder and the config unframer read all of it. On success the decoded fields must
 * satisfy the checks that passed, and re-encoding must give back the same bytes; on failure
 * the errno must be one of wire.h's and the message must be a terminated, non-empty string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wire.h"

static const uint8_t uuid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void check_msg(int err, const char *msg, size_t size)
{
	ASSERT(err <= 0, "error message");
	if (err) {
		ASSERT(memchr(msg, '\0', size) != NULL, "error message");
		ASSERT(msg[0] != '\0', "error message");
	}
}

static void handshake(const uint8_t *data, size_t len)
{
	uint8_t in[VU_WIRE_HANDSHAKE_SIZE] = { 0 }, out[VU_WIRE_HANDSHAKE_SIZE];
	struct vu_wire_handshake hs;
	char msg[256];
	unsigned channels = len ? data[len - 1] : 1;
	int err;

	memcpy(in, data, len < sizeof(in) ? len : sizeof(in));
	ASSERT(vu_wire_decode_handshake(in, &hs) == 0, "handshake decoder");
	memset(msg, 'x', sizeof(msg));
	err = vu_wire_check_handshake(&hs, uuid, channels, msg, sizeof(msg));
	check_msg(err, msg, sizeof(msg));
	ASSERT(err == 0 || err == VU_EHS_MAGIC || err == VU_EHS_VERSION || err == VU_EHS_UUID ||
	       err == VU_EHS_CHANNEL_RANGE, "handshake decoder");
	/* with the input's own UUID, only magic, version and range can fail */
	err = vu_wire_check_handshake(&hs, hs.uuid, channels, NULL, 0);
	ASSERT(err != VU_EHS_UUID, "handshake decoder");
	if (err == 0) {
		ASSERT(hs.magic == VU_WIRE_MAGIC && hs.version == VU_WIRE_VERSION, "handshake decoder");
		ASSERT(hs.id < channels, "handshake decoder");
		vu_wire_encode_handshake(out, hs.uuid, hs.id);
		ASSERT(memcmp(out, in, 25) == 0, "handshake decoder"); /* the unused bytes are ignored */
	}
}

static void header(const uint8_t *data, size_t len, uint32_t max)
{
	uint8_t in[VU_WIRE_HEADER_SIZE] = { 0 }, out[VU_WIRE_HEADER_SIZE];
	struct vu_wire_header hdr, again;
	char msg[512];
	int err;

	memcpy(in, data, len < sizeof(in) ? len : sizeof(in));
	memset(msg, 'x', sizeof(msg));
	err = vu_wire_decode_header(in, &hdr, max, msg, sizeof(msg));
	check_msg(err, msg, sizeof(msg));
	ASSERT(err == 0 || err == VU_EPKT_MAGIC || err == VU_EPKT_VERSION ||
	       err == VU_EPKT_NOT_DEVICE_STATE || err == VU_EPKT_SYNC ||
	       err == VU_EPKT_COMPRESSION || err == VU_EPKT_FLAGS || err == VU_EPKT_IDSTR ||
	       err == VU_EPKT_EMPTY || err == VU_EPKT_TOO_BIG, "packet header decoder");
	/* a small message buffer must truncate, never overflow */
	ASSERT(vu_wire_decode_header(in, &hdr, max, msg, 3) == err, "packet header decoder");
	ASSERT(memchr(msg, '\0', 3) != NULL || err == 0, "packet header decoder");
	if (err)
		return;
	ASSERT(hdr.magic == VU_WIRE_MAGIC && hdr.version == VU_WIRE_VERSION, "packet header decoder");
	ASSERT(hdr.flags == VU_WIRE_FLAG_DEVICE_STATE, "packet header decoder");
	ASSERT(hdr.next_packet_size > 0 && hdr.next_packet_size <= max, "packet header decoder");
	ASSERT(memchr(hdr.idstr, '\0', sizeof(hdr.idstr)) != NULL, "packet header decoder");
	vu_wire_encode_header(out, hdr.idstr, hdr.instance_id, hdr.next_packet_size);
	ASSERT(vu_wire_decode_header(out, &again, max, NULL, 0) == 0, "packet header decoder");
	ASSERT(strcmp(again.idstr, hdr.idstr) == 0, "packet header decoder");
	ASSERT(again.instance_id == hdr.instance_id, "packet header decoder");
	ASSERT(again.next_packet_size == hdr.next_packet_size, "packet header decoder");
	ASSERT(memcmp(out, in, 12) == 0 && memcmp(out + 268, in + 268, 8) == 0, "packet header decoder");
}

static void vfio(const uint8_t *data, size_t len)
{
	struct vu_wire_vfio_header vh;
	uint8_t out[VU_WIRE_VFIO_HEADER_SIZE];
	char msg[256];
	int err;

	memset(msg, 'x', sizeof(msg));
	err = vu_wire_decode_vfio_header(data, len, VU_WIRE_VFIO_FLAGS_QEMU, &vh, msg,
					 sizeof(msg));
	check_msg(err, msg, sizeof(msg));
	ASSERT(err == 0 || err == VU_EVFIO_SHORT || err == VU_EVFIO_VERSION ||
	       err == VU_EVFIO_FLAGS || err == VU_EVFIO_IDX_INVALID, "VFIO header decoder");
	ASSERT((err == VU_EVFIO_SHORT) == (len < VU_WIRE_VFIO_HEADER_SIZE), "VFIO header decoder");
	if (err)
		return;
	ASSERT(vh.version == VU_WIRE_VFIO_VERSION && vh.idx != VU_WIRE_VFIO_IDX_INVALID,
	       "VFIO header decoder");
	ASSERT((vh.flags & ~VU_WIRE_VFIO_FLAG_CONFIG_STATE) == 0, "VFIO header decoder");
	vu_wire_encode_vfio_header(out, vh.idx, vh.flags);
	ASSERT(memcmp(out, data, sizeof(out)) == 0, "VFIO header decoder");
}

static void config(const uint8_t *data, size_t len)
{
	const uint8_t *blob = NULL;
	size_t blob_len = 0;
	char msg[256];
	uint8_t *copy;
	int err;

	/* a heap copy of exactly len bytes, so ASan sees any read past the end */
	copy = calloc(1, len ? len : 1);
	ASSERT(copy, "config unframer");
	if (len)
		memcpy(copy, data, len);
	memset(msg, 'x', sizeof(msg));
	err = vu_wire_unframe_config(copy, len, &blob, &blob_len, msg, sizeof(msg));
	check_msg(err, msg, sizeof(msg));
	ASSERT(err == 0 || err == VU_EVFIO_CONFIG_FRAMING, "config unframer");
	if (err == 0) {
		uint8_t *framed = malloc(blob_len + VU_WIRE_CONFIG_FRAMING);

		ASSERT(framed, "config unframer");
		ASSERT(blob == copy + 8 && blob_len == len - VU_WIRE_CONFIG_FRAMING, "config unframer");
		memcpy(framed + 8, blob, blob_len);
		vu_wire_frame_config(framed, blob_len);
		ASSERT(memcmp(framed, copy, len) == 0, "config unframer");
		free(framed);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint8_t *copy = calloc(1, len ? len : 1);

	ASSERT(copy, "input");
	if (len)
		memcpy(copy, data, len);
	handshake(copy, len);
	header(copy, len, 4u << 20);
	header(copy, len, len > 276 ? (uint32_t)len : 1);
	vfio(copy, len);
	config(copy, len);
	/* the payload after a header, as a destination would see it */
	if (len > VU_WIRE_HEADER_SIZE) {
		vfio(copy + VU_WIRE_HEADER_SIZE, len - VU_WIRE_HEADER_SIZE);
		if (len > VU_WIRE_PACKET_OVERHEAD)
			config(copy + VU_WIRE_PACKET_OVERHEAD, len - VU_WIRE_PACKET_OVERHEAD);
	}
	free(copy);
	return 0;
}
