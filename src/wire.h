/* SPDX-License-Identifier: MIT */
/*
 * QEMU 10 multifd device-state wire format: encode and decode, no I/O.
 *
 * Every integer is big-endian and every struct packed, so this module works on byte arrays
 * and never casts them to C structs. Layouts (offsets in bytes):
 *
 *   channel handshake, 64 bytes, first on every channel (QEMU MultiFDInit_t)
 *     0 magic u32 = 0x11223344 | 4 version u32 = 1 | 8 uuid u8[16] | 24 id u8 |
 *     25 unused1 u8[7] | 32 unused2 u64[4]
 *
 *   device-state packet header, 276 bytes (QEMU MultiFDPacketDeviceState_t)
 *     0 magic u32 | 4 version u32 = 1 | 8 flags u32 = DEVICE_STATE (0x40) |
 *     12 idstr char[256], NUL-terminated | 268 instance_id u32 | 272 next_packet_size u32
 *
 *   payload: VFIO device state packet (QEMU VFIODeviceStatePacket), next_packet_size bytes
 *     0 version u32 = 0 | 4 idx u32 | 8 flags u32 (bit 0 CONFIG_STATE) | 12 data
 *
 *   config packet data: be64 DEV_CONFIG_STATE | config blob | be64 END_OF_STATE
 *
 * Each check a destination makes has its own negated errno and failure reason
 * (VFIO_URING_REASONS_WIRE in vfio-uring.h), so that a caller, a test or an operator can
 * tell them apart without parsing the message.
 */
#ifndef VFIO_URING_WIRE_H
#define VFIO_URING_WIRE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reasons.h"

#define VU_WIRE_MAGIC 0x11223344u
#define VU_WIRE_VERSION 1u
#define VU_WIRE_HANDSHAKE_SIZE 64u
#define VU_WIRE_HEADER_SIZE 276u
#define VU_WIRE_IDSTR_SIZE 256u
#define VU_WIRE_VFIO_HEADER_SIZE 12u
/* Everything in front of a data packet's data: what a source reserves at a buffer's start. */
#define VU_WIRE_PACKET_OVERHEAD (VU_WIRE_HEADER_SIZE + VU_WIRE_VFIO_HEADER_SIZE)

#define VU_WIRE_FLAG_SYNC 0x1u
#define VU_WIRE_FLAG_COMPRESSION_MASK (0x1fu << 1)
#define VU_WIRE_FLAG_DEVICE_STATE 0x40u

#define VU_WIRE_VFIO_VERSION 0u
#define VU_WIRE_VFIO_FLAG_CONFIG_STATE 0x1u
/*
 * vfio-uring's pre-copy extension (VFIO_URING_ENGINE_F_PRECOPY): a data packet read while the
 * VM ran. The top bit, far from the bits QEMU allocates from the bottom; a QEMU destination
 * (and ours without the extension) rejects it as an unknown flag.
 */
#define VU_WIRE_VFIO_FLAG_PRECOPY 0x80000000u
#define VU_WIRE_VFIO_FLAGS_QEMU VU_WIRE_VFIO_FLAG_CONFIG_STATE
#define VU_WIRE_VFIO_IDX_INVALID UINT32_MAX

#define VU_WIRE_DEV_CONFIG_STATE 0xffffffffef100002ull
#define VU_WIRE_END_OF_STATE 0xffffffffef100001ull
#define VU_WIRE_CONFIG_FRAMING 16u /* the two markers around the config blob */

/*
 * The destination's checks and their errnos (VU_EHS_MAGIC, ..., VU_ESTREAM_ENDED) are
 * generated in reasons.h from the list of failure reasons in vfio-uring.h
 * (VFIO_URING_REASONS_WIRE), where each check's meaning is written.
 */

struct vu_wire_handshake {
	uint32_t magic;
	uint32_t version;
	uint8_t uuid[16];
	uint8_t id;
};

struct vu_wire_header {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	char idstr[VU_WIRE_IDSTR_SIZE];
	uint32_t instance_id;
	uint32_t next_packet_size;
};

struct vu_wire_vfio_header {
	uint32_t version;
	uint32_t idx;
	uint32_t flags;
};

/* Encoders write exactly the structure's size into out; idstr must be shorter than 256. */
void vu_wire_encode_handshake(uint8_t out[VU_WIRE_HANDSHAKE_SIZE], const uint8_t uuid[16],
			      uint8_t channel_id);
void vu_wire_encode_header(uint8_t out[VU_WIRE_HEADER_SIZE], const char *idstr,
			   uint32_t instance_id, uint32_t next_packet_size);
void vu_wire_encode_vfio_header(uint8_t out[VU_WIRE_VFIO_HEADER_SIZE], uint32_t idx,
				uint32_t flags);
/* The config packet's data: writes the markers around a blob already at out + 8. */
void vu_wire_frame_config(uint8_t *out, size_t blob_len);

/*
 * Decoders parse and check in the order QEMU does; they return 0 or the errno of the first
 * failed check (VU_E* above), and write a message naming the cause into msg (may be NULL).
 */
int vu_wire_decode_handshake(const uint8_t in[VU_WIRE_HANDSHAKE_SIZE],
			     struct vu_wire_handshake *hs);
/* Checks magic, version, uuid and channel range (duplicates are the caller's to track). */
int vu_wire_check_handshake(const struct vu_wire_handshake *hs, const uint8_t uuid[16],
			    unsigned channels, char *msg, size_t msg_size);
int vu_wire_decode_header(const uint8_t in[VU_WIRE_HEADER_SIZE], struct vu_wire_header *hdr,
			  uint32_t max_packet_size, char *msg, size_t msg_size);
/* known_flags: VU_WIRE_VFIO_FLAGS_QEMU, or with VU_WIRE_VFIO_FLAG_PRECOPY for the extension. */
int vu_wire_decode_vfio_header(const uint8_t *in, size_t len, uint32_t known_flags,
			       struct vu_wire_vfio_header *vh, char *msg, size_t msg_size);
/* Finds the blob inside a config packet's data; checks both markers. */
int vu_wire_unframe_config(const uint8_t *data, size_t len, const uint8_t **blob,
			   size_t *blob_len, char *msg, size_t msg_size);

static inline void vu_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t vu_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void vu_put_be64(uint8_t *p, uint64_t v)
{
	vu_put_be32(p, (uint32_t)(v >> 32));
	vu_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t vu_get_be64(const uint8_t *p)
{
	return (uint64_t)vu_get_be32(p) << 32 | vu_get_be32(p + 4);
}

#endif /* VFIO_URING_WIRE_H */
