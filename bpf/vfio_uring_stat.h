/* SPDX-License-Identifier: MIT */
/*
 * Map layouts shared by the BPF programs (vfio_uring_stat.bpf.c) and the tool that reads
 * them (tools/stat/snapshot.c). Include after vmlinux.h (BPF) or <linux/types.h>.
 *
 * Every counter is keyed by the process (tgid) and the side that hit the probe, so one
 * tool can watch a source and a destination, or every VMM using the library, at once.
 */
#ifndef VFIO_URING_STAT_H
#define VFIO_URING_STAT_H

#define VUS_IDSTR_MAX 256 /* as VFIO_URING_IDSTR_MAX, including the NUL */
#define VUS_MSG_MAX 128
#define VUS_MAX_DEVICES 4096
#define VUS_MAX_CHANNELS 4096

enum vus_side {
	VUS_SOURCE = 1,
	VUS_DESTINATION = 2,
};

/* Device flags (vus_dev_val.flags). */
#define VUS_DEV_DONE 0x1u
#define VUS_DEV_FAILED 0x2u
#define VUS_DEV_CONFIG 0x4u

struct vus_dev_key {
	__u32 pid;
	__u32 side;
	__u32 instance_id;
	__u32 pad;             /* zero: keys are compared byte by byte */
	char idstr[VUS_IDSTR_MAX];
};

struct vus_dev_val {
	__u64 bytes;           /* sum of the probes' bytes: 12-byte VFIO header + data per packet */
	__u64 packets;         /* packets sent (source) or received (destination) */
	__u64 wire_bytes;      /* 276-byte header + bytes, per packet */
	__u64 written_bytes;   /* destination: data bytes written to the data fd */
	__u64 written_packets;
	__u64 queued_max;      /* destination: deepest reorder queue seen */
	__u64 done_bytes;      /* device_done: the library's own byte counter */
	__u64 elapsed_ns;      /* device_done: time the device took */
	__u64 config_len;      /* config_loaded */
	__u64 first_ns;        /* bpf_ktime_get_ns() of the first packet */
	__u64 last_ns;         /* ... and of the last */
	__s32 error;           /* error(): negated errno */
	__u32 flags;           /* VUS_DEV_* */
};

struct vus_chan_key {
	__u32 pid;
	__u32 side;
	__u32 channel;
	__u32 pad;
};

struct vus_chan_val {
	__u64 bytes;           /* VFIO header + data of the packets on this channel */
	__u64 wire_bytes;      /* the handshake (64 bytes) + every packet's wire_bytes */
	__u64 packets;
	__u64 handshakes;
};

/* Errors that concern no device (idstr ""), and the last message of each process. */
struct vus_err_key {
	__u32 pid;
	__u32 side;
};

struct vus_err_val {
	__s32 error;
	__u32 count;
	char message[VUS_MSG_MAX];
};

#endif /* VFIO_URING_STAT_H */
