/* SPDX-License-Identifier: MIT */
/* Blocking packet I/O on the QEMU multifd wire format, for the thread-based engines. */
#ifndef VFIO_URING_BENCH_PKTIO_H
#define VFIO_URING_BENCH_PKTIO_H

#include "bench.h"
#include "wire.h"

#include <sys/uio.h>

#define VFIO_URING_DEFAULT_MAX_PACKET_SIZE_BENCH (4u << 20)

/* Writes a whole iovec, continuing short writes (MSG_NOSIGNAL: a dead peer is an error). */
int pkt_writev_full(int fd, struct iovec *iov, int iovcnt);
int pkt_send_handshake(int fd, const uint8_t uuid[16], unsigned channel);
/* Reads and checks a handshake; seen[] (nchan entries) tracks duplicates (caller locks). */
int pkt_recv_handshake(int fd, const uint8_t uuid[16], unsigned nchan, char *msg, size_t len,
		       unsigned *id_out);
/*
 * Reads one packet header: 0, 1 at a clean end of stream (EOF before the first byte),
 * or a negated errno.
 */
int pkt_recv_header(int fd, struct vu_wire_header *hdr, uint32_t max, char *msg, size_t len);
uint32_t pkt_max_payload(size_t chunk);

/* Device lookup by (idstr, instance_id) over the bench's synthetic devices. */
int pkt_find_device(const struct vu_wire_header *hdr, unsigned ndev);

#endif
