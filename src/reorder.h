/* SPDX-License-Identifier: MIT */
/*
 * Destination reorder table: the packets received ahead of their turn, for all devices of
 * an engine, keyed by (device, idx).
 *
 * An open-addressing hash table (linear probing, backward-shift deletion) sized once at
 * start for the most buffers the pool can hold, so it never grows and never allocates per
 * packet. A hostile source choosing sparse or huge idx values gains nothing: every entry is
 * a pool buffer, and the pool is capped. Lookups of the next idx to write and duplicate
 * checks are O(1).
 */
#ifndef VFIO_URING_REORDER_H
#define VFIO_URING_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vu_buf;

struct vu_reorder {
	struct vu_buf **slots;
	size_t mask;        /* slots - 1 (a power of two) */
	size_t count;
};

int vu_reorder_init(struct vu_reorder *r, size_t max_entries);
void vu_reorder_destroy(struct vu_reorder *r);
/* Inserts buf (keyed by buf->dev_index, buf->idx): 0, or -EEXIST, or -ENOSPC when full. */
int vu_reorder_insert(struct vu_reorder *r, struct vu_buf *buf);
bool vu_reorder_contains(const struct vu_reorder *r, unsigned dev_index, uint32_t idx);
/* Removes and returns the packet (dev_index, idx), or NULL. */
struct vu_buf *vu_reorder_take(struct vu_reorder *r, unsigned dev_index, uint32_t idx);
/* Removes and returns any entry (for teardown), or NULL when empty. */
struct vu_buf *vu_reorder_take_any(struct vu_reorder *r);

#endif /* VFIO_URING_REORDER_H */
