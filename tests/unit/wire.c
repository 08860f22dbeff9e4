/* SPDX-License-Identifier: MIT */
/*
 * Wire format: golden bytes written out by hand from QEMU's structs (MultiFDInit_t,
 * MultiFDPacketDeviceState_t, VFIODeviceStatePacket; big-endian, packed), and one test per
 * decoder check with its own errno (that they are distinct: tests/unit/reasons.c).
 */
#include <stdio.h>
#include <string.h>

#include "wire.h"

#include "check.h"

#define QEMU_FLAGS VU_WIRE_VFIO_FLAGS_QEMU /* the plain wire: no pre-copy extension */


static void check_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			CHECK(0, "%s: byte %zu is 0x%02x, expected 0x%02x", what, i, got[i], want[i]);
			return;
		}
	}
}

static void test_handshake_golden(void)
{
	static const uint8_t uuid[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	static const uint8_t want[64] = {
		0x11, 0x22, 0x33, 0x44,                         /* magic */
		0x00, 0x00, 0x00, 0x01,                         /* version 1 */
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* uuid */
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
		0x05,                                           /* id */
		0, 0, 0, 0, 0, 0, 0,                            /* unused1[7] */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* unused2[4] */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t out[64];
	struct vu_wire_handshake hs;
	char msg[256];

	memset(out, 0xa5, sizeof(out));
	vu_wire_encode_handshake(out, uuid, 5);
	check_bytes("handshake", out, want, sizeof(want));

	vu_wire_decode_handshake(want, &hs);
	CHECK(hs.magic == 0x11223344 && hs.version == 1 && hs.id == 5 &&
	      memcmp(hs.uuid, uuid, 16) == 0, "handshake decode");
	CHECK(vu_wire_check_handshake(&hs, uuid, 6, msg, sizeof(msg)) == 0, "valid handshake: %s", msg);
	CHECK(vu_wire_check_handshake(&hs, uuid, 5, msg, sizeof(msg)) == VU_EHS_CHANNEL_RANGE,
	      "channel id 5 of 5 channels");
	hs.uuid[15] ^= 1;
	CHECK(vu_wire_check_handshake(&hs, uuid, 6, msg, sizeof(msg)) == VU_EHS_UUID, "uuid");
	/* The message says what came and what was expected, in QEMU's -uuid form. */
	CHECK(strstr(msg, "UUID 00112233-4455-6677-8899-aabbccddeefe, expected "
			  "00112233-4455-6677-8899-aabbccddeeff") != NULL, "uuid message: %s", msg);
	hs.uuid[15] ^= 1;
	hs.version = 2;
	CHECK(vu_wire_check_handshake(&hs, uuid, 6, msg, sizeof(msg)) == VU_EHS_VERSION, "version");
	hs.magic = 0x44332211;
	CHECK(vu_wire_check_handshake(&hs, uuid, 6, msg, sizeof(msg)) == VU_EHS_MAGIC, "magic");
	CHECK(strstr(msg, "0x44332211") != NULL, "magic message names the value: %s", msg);
}

static void make_header_golden(uint8_t want[276], uint32_t flags, uint32_t size)
{
	static const uint8_t head[12] = { 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1 };

	memset(want, 0, 276);
	memcpy(want, head, 8);
	want[8] = (uint8_t)(flags >> 24);
	want[9] = (uint8_t)(flags >> 16);
	want[10] = (uint8_t)(flags >> 8);
	want[11] = (uint8_t)flags;
	memcpy(want + 12, "0000:00:03.0/vfio", 17);          /* idstr, zero-filled */
	want[268] = 0x00; want[269] = 0x00; want[270] = 0x01; want[271] = 0x02; /* instance 0x102 */
	want[272] = (uint8_t)(size >> 24);
	want[273] = (uint8_t)(size >> 16);
	want[274] = (uint8_t)(size >> 8);
	want[275] = (uint8_t)size;
}

static void test_header_golden(void)
{
	uint8_t want[276], out[276];
	struct vu_wire_header hdr;
	char msg[256];

	make_header_golden(want, 0x40, 0x0010000c); /* 1 MiB + 12 */
	memset(out, 0xa5, sizeof(out));
	vu_wire_encode_header(out, "0000:00:03.0/vfio", 0x102, 0x0010000c);
	check_bytes("header", out, want, sizeof(want));

	CHECK(vu_wire_decode_header(want, &hdr, 4u << 20, msg, sizeof(msg)) == 0, "decode: %s", msg);
	CHECK(hdr.flags == 0x40 && hdr.instance_id == 0x102 && hdr.next_packet_size == 0x0010000c &&
	      strcmp(hdr.idstr, "0000:00:03.0/vfio") == 0, "header fields");
}

static void test_vfio_golden(void)
{
	static const uint8_t data_want[12] = { 0, 0, 0, 0, 0x00, 0x00, 0x01, 0x00, 0, 0, 0, 0 };
	static const uint8_t config_want[12] = { 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1 };
	static const uint8_t framed_want[20] = {
		0xff, 0xff, 0xff, 0xff, 0xef, 0x10, 0x00, 0x02, /* DEV_CONFIG_STATE */
		'c', 'o', 'n', 'f',
		0xff, 0xff, 0xff, 0xff, 0xef, 0x10, 0x00, 0x01, /* END_OF_STATE */
	};
	uint8_t out[20];
	struct vu_wire_vfio_header vh;
	const uint8_t *blob;
	size_t blob_len;
	char msg[256];

	vu_wire_encode_vfio_header(out, 256, 0);
	check_bytes("vfio data header", out, data_want, 12);
	vu_wire_encode_vfio_header(out, 0x12345678, VU_WIRE_VFIO_FLAG_CONFIG_STATE);
	check_bytes("vfio config header", out, config_want, 12);
	CHECK(vu_wire_decode_vfio_header(config_want, 12, QEMU_FLAGS, &vh, msg, sizeof(msg)) == 0 &&
	      vh.idx == 0x12345678 && vh.flags == 1 && vh.version == 0, "vfio decode");

	memcpy(out + 8, "conf", 4);
	vu_wire_frame_config(out, 4);
	check_bytes("config framing", out, framed_want, sizeof(framed_want));
	CHECK(vu_wire_unframe_config(framed_want, 20, &blob, &blob_len, msg, sizeof(msg)) == 0 &&
	      blob_len == 4 && memcmp(blob, "conf", 4) == 0, "unframe");
}

static void test_header_checks(void)
{
	static const struct {
		const char *what;
		uint32_t offset;   /* a be32 field to overwrite, or 0 */
		uint32_t value;
		int want;
	} cases[] = {
		{ "magic", 0, 0xdeadbeef, VU_EPKT_MAGIC },
		{ "version", 4, 2, VU_EPKT_VERSION },
		{ "not device state (RAM packet)", 8, 0x0, VU_EPKT_NOT_DEVICE_STATE },
		{ "SYNC flag", 8, 0x41, VU_EPKT_SYNC },
		{ "compression flag", 8, 0x40 | (1u << 1), VU_EPKT_COMPRESSION },
		{ "unknown flag", 8, 0x40 | (1u << 9), VU_EPKT_FLAGS },
		{ "next_packet_size 0", 272, 0, VU_EPKT_EMPTY },
		{ "next_packet_size above the maximum", 272, (4u << 20) + 1, VU_EPKT_TOO_BIG },
	};
	uint8_t in[276];
	struct vu_wire_header hdr;
	char msg[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_header_golden(in, 0x40, 100);
		vu_put_be32(in + cases[i].offset, cases[i].value);
		CHECK(vu_wire_decode_header(in, &hdr, 4u << 20, msg, sizeof(msg)) == cases[i].want,
		      "%s: got %d", cases[i].what, vu_wire_decode_header(in, &hdr, 4u << 20, NULL, 0));
	}
	make_header_golden(in, 0x40, 4u << 20); /* exactly the maximum is fine */
	CHECK(vu_wire_decode_header(in, &hdr, 4u << 20, msg, sizeof(msg)) == 0, "max size: %s", msg);
	make_header_golden(in, 0x40, 100);
	memset(in + 12, 'x', 256);
	CHECK(vu_wire_decode_header(in, &hdr, 4u << 20, msg, sizeof(msg)) == VU_EPKT_IDSTR,
	      "unterminated idstr");
}

static void test_vfio_checks(void)
{
	uint8_t in[12];
	struct vu_wire_vfio_header vh;
	const uint8_t *blob;
	size_t blob_len;
	char msg[256];
	uint8_t cfg[24];

	vu_wire_encode_vfio_header(in, 1, 0);
	CHECK(vu_wire_decode_vfio_header(in, 11, QEMU_FLAGS, &vh, msg, sizeof(msg)) == VU_EVFIO_SHORT,
	      "short");
	vu_put_be32(in, 1);
	CHECK(vu_wire_decode_vfio_header(in, 12, QEMU_FLAGS, &vh, msg, sizeof(msg)) == VU_EVFIO_VERSION,
	      "version");
	vu_wire_encode_vfio_header(in, 1, 0x2);
	CHECK(vu_wire_decode_vfio_header(in, 12, QEMU_FLAGS, &vh, msg, sizeof(msg)) == VU_EVFIO_FLAGS,
	      "flags");
	/* The pre-copy extension's flag: unknown on the plain wire, known with the extension. */
	vu_wire_encode_vfio_header(in, 3, VU_WIRE_VFIO_FLAG_PRECOPY);
	CHECK(in[8] == 0x80 && in[9] == 0 && in[10] == 0 && in[11] == 0,
	      "PRECOPY is bit 31 of the big-endian flags");
	CHECK(vu_wire_decode_vfio_header(in, 12, QEMU_FLAGS, &vh, msg, sizeof(msg)) == VU_EVFIO_FLAGS,
	      "PRECOPY on the plain wire");
	CHECK(vu_wire_decode_vfio_header(in, 12, QEMU_FLAGS | VU_WIRE_VFIO_FLAG_PRECOPY, &vh, msg,
					 sizeof(msg)) == 0 &&
		      vh.flags == VU_WIRE_VFIO_FLAG_PRECOPY && vh.idx == 3,
	      "PRECOPY with the extension");
	vu_wire_encode_vfio_header(in, UINT32_MAX, 0);
	CHECK(vu_wire_decode_vfio_header(in, 12, QEMU_FLAGS, &vh, msg, sizeof(msg)) ==
		      VU_EVFIO_IDX_INVALID,
	      "idx UINT32_MAX");

	vu_wire_frame_config(cfg, 8);
	CHECK(vu_wire_unframe_config(cfg, 15, &blob, &blob_len, msg, sizeof(msg)) ==
	      VU_EVFIO_CONFIG_FRAMING, "config too short for its markers");
	cfg[0] = 0;
	CHECK(vu_wire_unframe_config(cfg, 24, &blob, &blob_len, msg, sizeof(msg)) ==
	      VU_EVFIO_CONFIG_FRAMING && strstr(msg, "DEV_CONFIG_STATE"), "first marker: %s", msg);
	vu_wire_frame_config(cfg, 8);
	cfg[23] = 0;
	CHECK(vu_wire_unframe_config(cfg, 24, &blob, &blob_len, msg, sizeof(msg)) ==
	      VU_EVFIO_CONFIG_FRAMING && strstr(msg, "END_OF_STATE"), "end marker: %s", msg);
}

int main(void)
{
	test_handshake_golden();
	test_header_golden();
	test_vfio_golden();
	test_header_checks();
	test_vfio_checks();
	return check_result();
}
