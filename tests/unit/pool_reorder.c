/* SPDX-License-Identifier: MIT */
/* The buffer pool's cap accounting and reuse, and the reorder table against a reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#include "check.h"


static void test_pool_cap(void)
{
	struct vu_pool pool;
	struct vu_buf *b[64];
	unsigned n = 0;

	CHECK(vu_pool_init(&pool, 1 << 20, 2 << 20) == -EINVAL, "max request above the cap");
	CHECK(vu_pool_init(&pool, 1 << 20, 64 << 10) == 0, "init");
	/* 100 KiB requests take 100 KiB (a multiple of 4 KiB): ten fit in 1 MiB. */
	while (n < 64 && (b[n] = vu_pool_get(&pool, 100 << 10)))
		n++;
	CHECK(n == 0, "requests above max_request are refused (got %u)", n);
	while (n < 64 && (b[n] = vu_pool_get(&pool, 60 << 10)))
		n++;
	CHECK(n == 17, "60 KiB buffers in a 1 MiB cap: %u", n);
	CHECK(pool.allocated <= pool.cap && pool.in_use == pool.allocated, "accounting");
	CHECK(vu_pool_get(&pool, 8192) == NULL, "17 x 60 KiB + 8 KiB does not fit in 1 MiB");

	/* Reuse: a freed buffer comes back for the same class without allocating. */
	size_t allocated = pool.allocated;
	struct vu_buf *again;

	vu_pool_put(&pool, b[--n]);
	again = vu_pool_get(&pool, 60 << 10);
	CHECK(again == b[n] && pool.allocated == allocated, "free list reuse");
	b[n++] = again;

	/* A smaller class needs room: free buffers of other classes are released for it. */
	for (unsigned i = 0; i < 4; i++)
		vu_pool_put(&pool, b[--n]);
	struct vu_buf *small = vu_pool_get(&pool, 8192); /* 17 x 60 KiB + 8 KiB > 1 MiB */

	CHECK(small && small->capacity == 8192 && pool.allocated <= pool.cap, "make room");
	vu_pool_put(&pool, small);
	while (n)
		vu_pool_put(&pool, b[--n]);
	CHECK(vu_pool_destroy(&pool) == 0, "nothing leaked");
	CHECK(pool.peak <= pool.cap, "peak within cap");
}

static void test_reorder(void)
{
	enum { DEVICES = 5, PER_DEVICE = 3000 };
	struct vfio_uring_device devs[DEVICES];
	static struct vu_buf bufs[DEVICES * PER_DEVICE];
	static char present[DEVICES * PER_DEVICE];
	struct vu_reorder r;
	unsigned seed = 12345;

	memset(devs, 0, sizeof(devs));
	for (unsigned d = 0; d < DEVICES; d++)
		devs[d].index = d;
	CHECK(vu_reorder_init(&r, DEVICES * PER_DEVICE) == 0, "init");
	for (unsigned i = 0; i < DEVICES * PER_DEVICE; i++) {
		bufs[i].dev = &devs[i % DEVICES];
		bufs[i].dev_index = devs[i % DEVICES].index;
		/* sparse, huge idx values: the table does not care */
		bufs[i].idx = (i / DEVICES) * 2654435761u % 0xfffffff0u;
	}
	/* Random inserts and removals against a reference bitmap. */
	for (unsigned step = 0; step < 200000; step++) {
		unsigned i;

		seed = seed * 1103515245 + 12345;
		i = (seed >> 8) % (DEVICES * PER_DEVICE);
		if (present[i]) {
			struct vu_buf *got = vu_reorder_take(&r, bufs[i].dev->index, bufs[i].idx);

			CHECK(got == &bufs[i], "take %u", i);
			present[i] = 0;
		} else {
			CHECK(!vu_reorder_contains(&r, bufs[i].dev->index, bufs[i].idx), "absent %u", i);
			CHECK(vu_reorder_insert(&r, &bufs[i]) == 0, "insert %u", i);
			present[i] = 1;
			CHECK(vu_reorder_insert(&r, &bufs[i]) == -EEXIST, "duplicate %u", i);
		}
		if (check_failures > 10)
			break;
	}
	for (unsigned i = 0; i < DEVICES * PER_DEVICE; i++)
		CHECK(vu_reorder_contains(&r, bufs[i].dev->index, bufs[i].idx) == !!present[i],
		      "final state %u", i);
	while (vu_reorder_take_any(&r))
		;
	CHECK(r.count == 0, "emptied");
	vu_reorder_destroy(&r);
}

int main(void)
{
	test_pool_cap();
	test_reorder();
	return check_result();
}
