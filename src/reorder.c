/* SPDX-License-Identifier: MIT */
#include "reorder.h"

#include <errno.h>
#include <stdlib.h>

#include "pool.h"

static size_t hash(unsigned dev_index, uint32_t idx)
{
	uint64_t key = (uint64_t)dev_index << 32 | idx;

	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull; /* murmur3's finalizer: spreads sequential idx values */
	key ^= key >> 33;
	return (size_t)key;
}

static bool matches(const struct vu_buf *buf, unsigned dev_index, uint32_t idx)
{
	return buf->idx == idx && buf->dev_index == dev_index;
}

int vu_reorder_init(struct vu_reorder *r, size_t max_entries)
{
	size_t n = 16;

	/* At most half full, so probe sequences stay short. */
	while (n < 2 * max_entries)
		n *= 2;
	r->slots = calloc(n, sizeof(*r->slots));
	r->mask = n - 1;
	r->count = 0;
	return r->slots ? 0 : -ENOMEM;
}

void vu_reorder_destroy(struct vu_reorder *r)
{
	free(r->slots);
	r->slots = NULL;
}

int vu_reorder_insert(struct vu_reorder *r, struct vu_buf *buf)
{
	size_t i = hash(buf->dev_index, buf->idx) & r->mask;

	if (r->count >= r->mask / 2 + 1)
		return -ENOSPC;
	for (; r->slots[i]; i = (i + 1) & r->mask)
		if (matches(r->slots[i], buf->dev_index, buf->idx))
			return -EEXIST;
	r->slots[i] = buf;
	r->count++;
	return 0;
}

/* Backward-shift deletion: keeps every remaining entry reachable from its home slot. */
static void remove_at(struct vu_reorder *r, size_t hole)
{
	size_t i = hole;

	r->slots[hole] = NULL;
	r->count--;
	for (;;) {
		size_t home;

		i = (i + 1) & r->mask;
		if (!r->slots[i])
			return;
		home = hash(r->slots[i]->dev_index, r->slots[i]->idx) & r->mask;
		/* Move the entry back unless its home lies cyclically in (hole, i]. */
		if (((i - home) & r->mask) >= ((i - hole) & r->mask)) {
			r->slots[hole] = r->slots[i];
			r->slots[i] = NULL;
			hole = i;
		}
	}
}

bool vu_reorder_contains(const struct vu_reorder *r, unsigned dev_index, uint32_t idx)
{
	for (size_t i = hash(dev_index, idx) & r->mask; r->slots[i]; i = (i + 1) & r->mask)
		if (matches(r->slots[i], dev_index, idx))
			return true;
	return false;
}

struct vu_buf *vu_reorder_take(struct vu_reorder *r, unsigned dev_index, uint32_t idx)
{
	for (size_t i = hash(dev_index, idx) & r->mask; r->slots[i]; i = (i + 1) & r->mask) {
		struct vu_buf *buf = r->slots[i];

		if (matches(buf, dev_index, idx)) {
			remove_at(r, i);
			return buf;
		}
	}
	return NULL;
}

struct vu_buf *vu_reorder_take_any(struct vu_reorder *r)
{
	for (size_t i = 0; r->count && i <= r->mask; i++) {
		if (r->slots[i]) {
			struct vu_buf *buf = r->slots[i];

			remove_at(r, i);
			return buf;
		}
	}
	return NULL;
}
