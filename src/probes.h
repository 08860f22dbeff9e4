/* SPDX-License-Identifier: MIT */
/*
 * USDT probes, provider `vfio_uring`. Each probe is a single nop when nobody is attached;
 * built without sys/sdt.h (or with -Dprobes=disabled) they compile to nothing.
 *
 * The probes and their arguments (a stable interface: bpf/ and tools/vfio-uring-stat use it):
 *
 *   handshake_sent(channel)                        source, handshake written to the socket
 *   handshake_accepted(channel, peer_channel_id)   destination, handshake checked
 *   packet_sent(idstr, instance_id, idx, bytes, channel)
 *   packet_received(idstr, instance_id, idx, bytes, channel, queued)
 *   packet_written(idstr, instance_id, idx, data_bytes, wait_ns)
 *   config_loaded(idstr, instance_id, config_len)
 *   device_done(side, idstr, instance_id, bytes, elapsed_ns)
 *   error(side, idstr, instance_id, errno, message)
 *   engine_state(side, from, to)                   the engine's lifecycle (enum vu_engine_state)
 *   channel_state(side, channel, from, to)         destination, a channel's enum vu_recv_state
 *   device_state(side, idstr, instance_id, from, to)  an ACTIVE device's enum vu_src_state
 *                                                  (source) or enum vu_dst_state (destination)
 *
 * bytes = 12-byte VFIO header + data (QEMU's vfio.transferred, and the library's device
 * counter); a packet puts 276 + bytes on its channel; queued = the device's packets
 * waiting after this one arrived (reorder depth); wait_ns = time from the packet's arrival
 * to the end of its write; side = 1 source, 2 destination (enum vfio_uring_side: an
 * integer, because a string in a page the process never touched reads as "" from BPF);
 * idstr is "" in error() when no device is concerned. The *_state probes fire on every
 * transition of a state machine in src/engine.h, from and to being its enum's values.
 *
 * At most six arguments per probe: bpftrace reads arg0..arg5 only on x86_64.
 */
#ifndef VFIO_URING_PROBES_H
#define VFIO_URING_PROBES_H

#ifdef VU_HAVE_PROBES
#define SDT_USE_VARIADIC 1
#include <sys/sdt.h>
#define VU_PROBE(name, ...) STAP_PROBEV(vfio_uring, name, ##__VA_ARGS__)
#else
#define VU_PROBE(name, ...) do { } while (0)
#endif

#endif /* VFIO_URING_PROBES_H */
