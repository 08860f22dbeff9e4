// SPDX-License-Identifier: MIT
/*
 * BPF side of vfio-uring-stat: USDT handlers for the library's vfio_uring probes
 * (src/probes.h) that sum bytes and packets per device and per channel in hash maps.
 * The tool reads the maps once per interval; nothing is sent per packet to user space.
 *
 * Each handler runs in the thread of the engine that hit the probe. An engine is
 * single-threaded, but one process may run several engines, so the sums are atomic.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "vfio_uring_stat.h"

#define HANDSHAKE_BYTES 64 /* QEMU's MultiFDInit_t, first on every channel */
#define HEADER_BYTES 276   /* QEMU's MultiFDPacketDeviceState_t, before every payload */

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VUS_MAX_DEVICES);
	__type(key, struct vus_dev_key);
	__type(value, struct vus_dev_val);
} devices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VUS_MAX_CHANNELS);
	__type(key, struct vus_chan_key);
	__type(value, struct vus_chan_val);
} channels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct vus_err_key);
	__type(value, struct vus_err_val);
} errors SEC(".maps");

/* The device key is 272 bytes: too big to build on the 512-byte stack next to the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vus_dev_key);
} scratch SEC(".maps");

static __always_inline __u32 current_pid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/* The device's counters, created zeroed on first sight; NULL only if the map is full. */
static __always_inline struct vus_dev_val *device(__u32 side, const char *idstr,
						  __u32 instance_id)
{
	static const struct vus_dev_val zero;
	struct vus_dev_val *val;
	struct vus_dev_key *key;
	__u32 slot = 0;

	key = bpf_map_lookup_elem(&scratch, &slot);
	if (!key)
		return NULL;
	__builtin_memset(key, 0, sizeof(*key));
	key->pid = current_pid();
	key->side = side;
	key->instance_id = instance_id;
	bpf_probe_read_user_str(key->idstr, sizeof(key->idstr), idstr);

	val = bpf_map_lookup_elem(&devices, key);
	if (val)
		return val;
	bpf_map_update_elem(&devices, key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&devices, key);
}

static __always_inline struct vus_chan_val *channel(__u32 side, __u32 chan)
{
	static const struct vus_chan_val zero;
	struct vus_chan_key key = { .pid = current_pid(), .side = side, .channel = chan };
	struct vus_chan_val *val;

	val = bpf_map_lookup_elem(&channels, &key);
	if (val)
		return val;
	bpf_map_update_elem(&channels, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&channels, &key);
}

static __always_inline void count_packet(__u32 side, const char *idstr, __u32 instance_id,
					 __u64 bytes, __u32 chan, __u64 wire_bytes,
					 __u64 queued)
{
	struct vus_chan_val *c;
	struct vus_dev_val *d;
	__u64 now = bpf_ktime_get_ns();

	d = device(side, idstr, instance_id);
	if (d) {
		__sync_fetch_and_add(&d->bytes, bytes);
		__sync_fetch_and_add(&d->packets, 1);
		__sync_fetch_and_add(&d->wire_bytes, wire_bytes);
		if (!d->first_ns)
			d->first_ns = now;
		d->last_ns = now;
		if (queued > d->queued_max)
			d->queued_max = queued;
	}
	c = channel(side, chan);
	if (c) {
		__sync_fetch_and_add(&c->bytes, bytes);
		__sync_fetch_and_add(&c->wire_bytes, wire_bytes);
		__sync_fetch_and_add(&c->packets, 1);
	}
}

SEC("usdt")
int BPF_USDT(handshake_sent, __u32 chan)
{
	struct vus_chan_val *c = channel(VUS_SOURCE, chan);

	if (c) {
		__sync_fetch_and_add(&c->wire_bytes, HANDSHAKE_BYTES);
		__sync_fetch_and_add(&c->handshakes, 1);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(handshake_accepted, __u32 chan, __u32 peer_channel_id)
{
	struct vus_chan_val *c = channel(VUS_DESTINATION, chan);

	(void)peer_channel_id;
	if (c) {
		__sync_fetch_and_add(&c->wire_bytes, HANDSHAKE_BYTES);
		__sync_fetch_and_add(&c->handshakes, 1);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(packet_sent, const char *idstr, __u32 instance_id, __u32 idx, __u64 bytes,
	     __u32 chan)
{
	(void)idx;
	count_packet(VUS_SOURCE, idstr, instance_id, bytes, chan, HEADER_BYTES + bytes, 0);
	return 0;
}

SEC("usdt")
int BPF_USDT(packet_received, const char *idstr, __u32 instance_id, __u32 idx, __u64 bytes,
	     __u32 chan, __u64 queued)
{
	(void)idx;
	count_packet(VUS_DESTINATION, idstr, instance_id, bytes, chan, HEADER_BYTES + bytes,
		     queued);
	return 0;
}

SEC("usdt")
int BPF_USDT(packet_written, const char *idstr, __u32 instance_id, __u32 idx,
	     __u64 data_bytes, __u64 wait_ns)
{
	struct vus_dev_val *d = device(VUS_DESTINATION, idstr, instance_id);

	(void)idx;
	(void)wait_ns;
	if (d) {
		__sync_fetch_and_add(&d->written_bytes, data_bytes);
		__sync_fetch_and_add(&d->written_packets, 1);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(config_loaded, const char *idstr, __u32 instance_id, __u64 config_len)
{
	struct vus_dev_val *d = device(VUS_DESTINATION, idstr, instance_id);

	if (d) {
		d->config_len = config_len;
		d->flags |= VUS_DEV_CONFIG;
	}
	return 0;
}

/* device_done: the library's own byte counter and the time the device took. */
static __always_inline void done(__u32 side, const char *idstr, __u32 instance_id,
				 __u64 bytes, __u64 elapsed_ns)
{
	struct vus_dev_val *d = device(side, idstr, instance_id);

	if (d) {
		d->done_bytes = bytes;
		d->elapsed_ns = elapsed_ns;
		d->flags |= VUS_DEV_DONE;
	}
}

/* device_done(side, idstr, instance_id, bytes, elapsed_ns): side is enum vfio_uring_side. */
SEC("usdt")
int BPF_USDT(device_done, int side, const char *idstr, __u32 instance_id, __u64 bytes,
	     __u64 elapsed_ns)
{
	if (side == VUS_SOURCE || side == VUS_DESTINATION)
		done(side, idstr, instance_id, bytes, elapsed_ns);
	return 0;
}

/*
 * The side is an integer (enum vfio_uring_side). The message string may sit in a page the
 * process never touched, which a BPF program cannot fault in: it then reads as "".
 */
SEC("usdt")
int BPF_USDT(error, int side, const char *idstr, __u32 instance_id, int err,
	     const char *message)
{
	struct vus_err_key ekey = { .pid = current_pid() };
	struct vus_err_val *e;
	struct vus_dev_val *d;
	char first = 0;

	bpf_probe_read_user(&first, 1, idstr);
	if (side == VUS_SOURCE || side == VUS_DESTINATION)
		ekey.side = side;

	e = bpf_map_lookup_elem(&errors, &ekey);
	if (!e) {
		static const struct vus_err_val zero;

		bpf_map_update_elem(&errors, &ekey, &zero, BPF_NOEXIST);
		e = bpf_map_lookup_elem(&errors, &ekey);
		if (!e)
			return 0;
	}
	if (!e->count++) {
		e->error = err;
		bpf_probe_read_user_str(e->message, sizeof(e->message), message);
	}

	if (!first || !ekey.side)
		return 0;
	d = device(ekey.side, idstr, instance_id);
	if (d) {
		if (!d->error)
			d->error = err;
		d->flags |= VUS_DEV_FAILED;
	}
	return 0;
}
