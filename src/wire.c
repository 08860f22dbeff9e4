/* SPDX-License-Identifier: MIT */
/* QEMU multifd device-state wire format: see wire.h for the layouts. */
#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Handshake offsets. */
#define HS_MAGIC 0
#define HS_VERSION 4
#define HS_UUID 8
#define HS_ID 24

/* Device-state header offsets. */
#define HDR_MAGIC 0
#define HDR_VERSION 4
#define HDR_FLAGS 8
#define HDR_IDSTR 12
#define HDR_INSTANCE_ID 268
#define HDR_NEXT_PACKET_SIZE 272

/* VFIO device state packet offsets. */
#define VFIO_VERSION 0
#define VFIO_IDX 4
#define VFIO_FLAGS 8

_Static_assert(HDR_NEXT_PACKET_SIZE + 4 == VU_WIRE_HEADER_SIZE, "header layout");
_Static_assert(HDR_IDSTR + VU_WIRE_IDSTR_SIZE == HDR_INSTANCE_ID, "header layout");

static int fail(int err, char *msg, size_t msg_size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int err, char *msg, size_t msg_size, const char *fmt, ...)
{
	if (msg && msg_size) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, msg_size, fmt, ap);
		va_end(ap);
	}
	return err;
}

void vu_wire_encode_handshake(uint8_t out[VU_WIRE_HANDSHAKE_SIZE], const uint8_t uuid[16],
			      uint8_t channel_id)
{
	memset(out, 0, VU_WIRE_HANDSHAKE_SIZE);
	vu_put_be32(out + HS_MAGIC, VU_WIRE_MAGIC);
	vu_put_be32(out + HS_VERSION, VU_WIRE_VERSION);
	memcpy(out + HS_UUID, uuid, 16);
	out[HS_ID] = channel_id;
}

void vu_wire_encode_header(uint8_t out[VU_WIRE_HEADER_SIZE], const char *idstr,
			   uint32_t instance_id, uint32_t next_packet_size)
{
	size_t len = strnlen(idstr, VU_WIRE_IDSTR_SIZE - 1);

	vu_put_be32(out + HDR_MAGIC, VU_WIRE_MAGIC);
	vu_put_be32(out + HDR_VERSION, VU_WIRE_VERSION);
	vu_put_be32(out + HDR_FLAGS, VU_WIRE_FLAG_DEVICE_STATE);
	/* QEMU zero-fills idstr (strncpy into a zeroed packet): same bytes on the wire. */
	memcpy(out + HDR_IDSTR, idstr, len);
	memset(out + HDR_IDSTR + len, 0, VU_WIRE_IDSTR_SIZE - len);
	vu_put_be32(out + HDR_INSTANCE_ID, instance_id);
	vu_put_be32(out + HDR_NEXT_PACKET_SIZE, next_packet_size);
}

void vu_wire_encode_vfio_header(uint8_t out[VU_WIRE_VFIO_HEADER_SIZE], uint32_t idx,
				uint32_t flags)
{
	vu_put_be32(out + VFIO_VERSION, VU_WIRE_VFIO_VERSION);
	vu_put_be32(out + VFIO_IDX, idx);
	vu_put_be32(out + VFIO_FLAGS, flags);
}

void vu_wire_frame_config(uint8_t *out, size_t blob_len)
{
	vu_put_be64(out, VU_WIRE_DEV_CONFIG_STATE);
	vu_put_be64(out + 8 + blob_len, VU_WIRE_END_OF_STATE);
}

int vu_wire_decode_handshake(const uint8_t in[VU_WIRE_HANDSHAKE_SIZE],
			     struct vu_wire_handshake *hs)
{
	hs->magic = vu_get_be32(in + HS_MAGIC);
	hs->version = vu_get_be32(in + HS_VERSION);
	memcpy(hs->uuid, in + HS_UUID, 16);
	hs->id = in[HS_ID];
	/* The unused fields are ignored, as QEMU does: room for future versions. */
	return 0;
}

/* The 8-4-4-4-12 form QEMU prints for -uuid, into 37 bytes. */
static void format_uuid(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

int vu_wire_check_handshake(const struct vu_wire_handshake *hs, const uint8_t uuid[16],
			    unsigned channels, char *msg, size_t msg_size)
{
	if (hs->magic != VU_WIRE_MAGIC)
		return fail(VU_EHS_MAGIC, msg, msg_size,
			    "handshake magic 0x%08x, expected 0x%08x", hs->magic, VU_WIRE_MAGIC);
	if (hs->version != VU_WIRE_VERSION)
		return fail(VU_EHS_VERSION, msg, msg_size, "handshake version %u, expected %u",
			    hs->version, VU_WIRE_VERSION);
	if (memcmp(hs->uuid, uuid, 16) != 0) {
		char want[37], got[37];

		format_uuid(uuid, want);
		format_uuid(hs->uuid, got);
		return fail(VU_EHS_UUID, msg, msg_size,
			    "handshake UUID %s, expected %s (the VM's UUID, as both sides were given it)",
			    got, want);
	}
	if (hs->id >= channels)
		return fail(VU_EHS_CHANNEL_RANGE, msg, msg_size,
			    "handshake channel id %u out of range (%u channels)", hs->id,
			    channels);
	return 0;
}

int vu_wire_decode_header(const uint8_t in[VU_WIRE_HEADER_SIZE], struct vu_wire_header *hdr,
			  uint32_t max_packet_size, char *msg, size_t msg_size)
{
	hdr->magic = vu_get_be32(in + HDR_MAGIC);
	hdr->version = vu_get_be32(in + HDR_VERSION);
	hdr->flags = vu_get_be32(in + HDR_FLAGS);
	hdr->instance_id = vu_get_be32(in + HDR_INSTANCE_ID);
	hdr->next_packet_size = vu_get_be32(in + HDR_NEXT_PACKET_SIZE);

	if (hdr->magic != VU_WIRE_MAGIC)
		return fail(VU_EPKT_MAGIC, msg, msg_size,
			    "packet magic 0x%08x, expected 0x%08x", hdr->magic, VU_WIRE_MAGIC);
	if (hdr->version != VU_WIRE_VERSION)
		return fail(VU_EPKT_VERSION, msg, msg_size, "packet version %u, expected %u",
			    hdr->version, VU_WIRE_VERSION);
	if (!(hdr->flags & VU_WIRE_FLAG_DEVICE_STATE))
		return fail(VU_EPKT_NOT_DEVICE_STATE, msg, msg_size,
			    "packet flags 0x%x: not a device-state packet", hdr->flags);
	if (hdr->flags & VU_WIRE_FLAG_SYNC)
		return fail(VU_EPKT_SYNC, msg, msg_size,
			    "packet flags 0x%x: SYNC set on a device-state packet", hdr->flags);
	if (hdr->flags & VU_WIRE_FLAG_COMPRESSION_MASK)
		return fail(VU_EPKT_COMPRESSION, msg, msg_size,
			    "packet flags 0x%x: compressed device state is not supported",
			    hdr->flags);
	if (hdr->flags & ~(VU_WIRE_FLAG_DEVICE_STATE))
		return fail(VU_EPKT_FLAGS, msg, msg_size, "packet flags 0x%x: unknown bits 0x%x",
			    hdr->flags, hdr->flags & ~VU_WIRE_FLAG_DEVICE_STATE);
	if (in[HDR_IDSTR + VU_WIRE_IDSTR_SIZE - 1] != '\0')
		return fail(VU_EPKT_IDSTR, msg, msg_size, "packet idstr is not NUL-terminated");
	memcpy(hdr->idstr, in + HDR_IDSTR, VU_WIRE_IDSTR_SIZE);
	if (hdr->next_packet_size == 0)
		return fail(VU_EPKT_EMPTY, msg, msg_size,
			    "packet for %s/%u: next_packet_size is 0", hdr->idstr,
			    hdr->instance_id);
	if (hdr->next_packet_size > max_packet_size)
		return fail(VU_EPKT_TOO_BIG, msg, msg_size,
			    "packet for %s/%u: next_packet_size %u above the maximum %u",
			    hdr->idstr, hdr->instance_id, hdr->next_packet_size, max_packet_size);
	return 0;
}

int vu_wire_decode_vfio_header(const uint8_t *in, size_t len, uint32_t known_flags,
			       struct vu_wire_vfio_header *vh, char *msg, size_t msg_size)
{
	if (len < VU_WIRE_VFIO_HEADER_SIZE)
		return fail(VU_EVFIO_SHORT, msg, msg_size,
			    "VFIO packet of %zu bytes, shorter than its %u-byte header", len,
			    VU_WIRE_VFIO_HEADER_SIZE);
	vh->version = vu_get_be32(in + VFIO_VERSION);
	vh->idx = vu_get_be32(in + VFIO_IDX);
	vh->flags = vu_get_be32(in + VFIO_FLAGS);
	if (vh->version != VU_WIRE_VFIO_VERSION)
		return fail(VU_EVFIO_VERSION, msg, msg_size, "VFIO packet version %u, expected %u",
			    vh->version, VU_WIRE_VFIO_VERSION);
	if (vh->flags & ~known_flags)
		return fail(VU_EVFIO_FLAGS, msg, msg_size, "VFIO packet idx %u: unknown flags 0x%x",
			    vh->idx, vh->flags);
	if (vh->idx == VU_WIRE_VFIO_IDX_INVALID)
		return fail(VU_EVFIO_IDX_INVALID, msg, msg_size, "VFIO packet idx %u is invalid",
			    vh->idx);
	return 0;
}

int vu_wire_unframe_config(const uint8_t *data, size_t len, const uint8_t **blob,
			   size_t *blob_len, char *msg, size_t msg_size)
{
	if (len < VU_WIRE_CONFIG_FRAMING)
		return fail(VU_EVFIO_CONFIG_FRAMING, msg, msg_size,
			    "config packet data of %zu bytes cannot hold its two markers", len);
	if (vu_get_be64(data) != VU_WIRE_DEV_CONFIG_STATE)
		return fail(VU_EVFIO_CONFIG_FRAMING, msg, msg_size,
			    "config packet starts with 0x%016llx, expected DEV_CONFIG_STATE",
			    (unsigned long long)vu_get_be64(data));
	if (vu_get_be64(data + len - 8) != VU_WIRE_END_OF_STATE)
		return fail(VU_EVFIO_CONFIG_FRAMING, msg, msg_size,
			    "config packet ends with 0x%016llx, expected END_OF_STATE",
			    (unsigned long long)vu_get_be64(data + len - 8));
	*blob = data + 8;
	*blob_len = len - VU_WIRE_CONFIG_FRAMING;
	return 0;
}
