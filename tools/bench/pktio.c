/* SPDX-License-Identifier: MIT */
#include "pktio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int pkt_writev_full(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int pkt_send_handshake(int fd, const uint8_t uuid[16], unsigned channel)
{
	uint8_t hs[VU_WIRE_HANDSHAKE_SIZE];
	struct iovec iov = { hs, sizeof(hs) };

	vu_wire_encode_handshake(hs, uuid, (uint8_t)channel);
	return pkt_writev_full(fd, &iov, 1);
}

int pkt_recv_handshake(int fd, const uint8_t uuid[16], unsigned nchan, char *msg, size_t len,
		       unsigned *id_out)
{
	uint8_t buf[VU_WIRE_HANDSHAKE_SIZE];
	struct vu_wire_handshake hs;
	int err = read_full(fd, buf, sizeof(buf));

	if (err) {
		snprintf(msg, len, "reading the channel handshake: %s", strerror(-err));
		return err == -EPIPE ? VU_ESTREAM_TRUNCATED : err;
	}
	vu_wire_decode_handshake(buf, &hs);
	err = vu_wire_check_handshake(&hs, uuid, nchan, msg, len);
	if (!err)
		*id_out = hs.id;
	return err;
}

int pkt_recv_header(int fd, struct vu_wire_header *hdr, uint32_t max, char *msg, size_t len)
{
	uint8_t buf[VU_WIRE_HEADER_SIZE];
	ssize_t n;
	int err;

	/* The first read tells a clean end of stream from a truncated header. */
	do
		n = recv(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 1;
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(buf)) {
		err = read_full(fd, buf + n, sizeof(buf) - (size_t)n);
		if (err) {
			snprintf(msg, len, "truncated packet header: %s", strerror(-err));
			return err == -EPIPE ? VU_ESTREAM_TRUNCATED : err;
		}
	}
	return vu_wire_decode_header(buf, hdr, max, msg, len);
}

uint32_t pkt_max_payload(size_t chunk)
{
	size_t m = chunk + 4096;

	return m > VFIO_URING_DEFAULT_MAX_PACKET_SIZE_BENCH ? (uint32_t)m
							    : VFIO_URING_DEFAULT_MAX_PACKET_SIZE_BENCH;
}

int pkt_find_device(const struct vu_wire_header *hdr, unsigned ndev)
{
	unsigned a, b, c;
	char idstr[64];

	/* Parse the device number out of the idstr, then check the exact key. */
	if (sscanf(hdr->idstr, "0000:%x:%x.%x/vfio", &a, &b, &c) == 3) {
		unsigned d = a * 256 + b * 8 + c;

		if (d < ndev) {
			device_idstr(d, idstr, sizeof(idstr));
			if (device_instance_id(d) == hdr->instance_id &&
			    strcmp(idstr, hdr->idstr) == 0)
				return (int)d;
		}
	}
	return VU_EPKT_UNKNOWN_DEVICE;
}
