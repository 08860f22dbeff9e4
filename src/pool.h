/* SPDX-License-Identifier: MIT */
/*
 * Payload buffer pool with a byte cap.
 *
 * Every payload buffer the engine holds comes from here and is accounted against the cap:
 * the bytes of buffers in use plus the bytes of free buffers kept for reuse never exceed
 * it. Sizes are rounded up to a class (a multiple of 4 KiB) and a freed buffer goes to its class's free list, so a steady transfer reuses the same buffers
 * and allocates nothing per I/O. When a request does not fit, free buffers of other classes
 * are released first; if it still does not fit, vu_pool_get() returns NULL and the caller
 * waits (source backpressure; a destination channel parks until a write frees room).
 */
#ifndef VFIO_URING_POOL_H
#define VFIO_URING_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct vfio_uring_device;

struct vu_buf {
	struct vu_buf *next;            /* its class's free list */
	STAILQ_ENTRY(vu_buf) send_link; /* source: its channel's send queue */
	uint8_t *data;
	size_t capacity;                /* the class size: what the cap is charged */
	size_t len;                     /* bytes in use */
	/* what the packet is, while it is one */
	struct vfio_uring_device *dev;
	unsigned dev_index;             /* dev's index: the reorder table's key, with idx */
	uint32_t idx;
	uint32_t flags;
	uint64_t arrival_ns;            /* destination: when it was received */
};

struct vu_pool {
	size_t cap;
	size_t max_request;             /* the largest size vu_pool_get() accepts */
	size_t allocated;               /* bytes of all buffers (in use and free): <= cap */
	size_t in_use;
	size_t peak;                    /* most bytes ever allocated */
	unsigned buffers_in_use;
	unsigned n_classes;
	struct vu_buf **free_lists;     /* one per class */
};

#define VU_POOL_GRANULE 4096u

int vu_pool_init(struct vu_pool *pool, size_t cap, size_t max_request);
/* Releases every free buffer; returns the number of buffers still in use (leaked). */
unsigned vu_pool_destroy(struct vu_pool *pool);
/* A buffer of at least len bytes, or NULL when it would exceed the cap (or len is too big). */
struct vu_buf *vu_pool_get(struct vu_pool *pool, size_t len);
void vu_pool_put(struct vu_pool *pool, struct vu_buf *buf);
/* The number of buffers of the smallest class that fit in the cap: an upper bound on held buffers. */
size_t vu_pool_max_buffers(const struct vu_pool *pool);

#endif /* VFIO_URING_POOL_H */
