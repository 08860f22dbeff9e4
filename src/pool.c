/* SPDX-License-Identifier: MIT */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>

/*
 * One class per 4 KiB step: at most 4 KiB of a buffer is wasted, whatever the chunk size
 * (coarser classes made a 64 KiB + 12 byte payload cost 128 KiB of the cap). The class
 * array is one pointer per step of the largest request: 8 KiB for a 4 MiB maximum.
 */
static size_t class_size(size_t len)
{
	return (len + VU_POOL_GRANULE - 1) / VU_POOL_GRANULE * VU_POOL_GRANULE;
}

static unsigned class_index(size_t size)
{
	return (unsigned)(size / VU_POOL_GRANULE) - 1;
}

int vu_pool_init(struct vu_pool *pool, size_t cap, size_t max_request)
{
	*pool = (struct vu_pool){ .cap = cap, .max_request = max_request };
	if (max_request == 0 || class_size(max_request) > cap)
		return -EINVAL;
	pool->n_classes = class_index(class_size(max_request)) + 1;
	pool->free_lists = calloc(pool->n_classes, sizeof(*pool->free_lists));
	return pool->free_lists ? 0 : -ENOMEM;
}

static void release(struct vu_pool *pool, struct vu_buf *buf)
{
	pool->allocated -= buf->capacity;
	free(buf->data);
	free(buf);
}

/* Frees cached buffers of other classes until `need` more bytes fit under the cap. */
static void make_room(struct vu_pool *pool, size_t need)
{
	for (unsigned c = 0; c < pool->n_classes && pool->allocated + need > pool->cap; c++) {
		while (pool->free_lists[c] && pool->allocated + need > pool->cap) {
			struct vu_buf *buf = pool->free_lists[c];

			pool->free_lists[c] = buf->next;
			release(pool, buf);
		}
	}
}

struct vu_buf *vu_pool_get(struct vu_pool *pool, size_t len)
{
	size_t size;
	unsigned c;
	struct vu_buf *buf;

	if (len == 0 || len > pool->max_request)
		return NULL;
	size = class_size(len);
	c = class_index(size);
	buf = pool->free_lists[c];
	if (buf) {
		pool->free_lists[c] = buf->next;
	} else {
		/* Not the hot path: at most cap / size allocations per class over a transfer. */
		if (pool->allocated + size > pool->cap)
			make_room(pool, size);
		if (pool->allocated + size > pool->cap)
			return NULL;
		buf = malloc(sizeof(*buf));
		if (!buf)
			return NULL;
		if (posix_memalign((void **)&buf->data, VU_POOL_GRANULE, size)) {
			free(buf);
			return NULL;
		}
		buf->capacity = size;
		pool->allocated += size;
		if (pool->allocated > pool->peak)
			pool->peak = pool->allocated;
	}
	buf->next = NULL;
	buf->len = 0;
	buf->dev = NULL;
	buf->dev_index = 0;
	buf->idx = 0;
	buf->flags = 0;
	buf->arrival_ns = 0;
	pool->in_use += buf->capacity;
	pool->buffers_in_use++;
	return buf;
}

void vu_pool_put(struct vu_pool *pool, struct vu_buf *buf)
{
	unsigned c = class_index(buf->capacity);

	pool->in_use -= buf->capacity;
	pool->buffers_in_use--;
	buf->next = pool->free_lists[c];
	pool->free_lists[c] = buf;
}

unsigned vu_pool_destroy(struct vu_pool *pool)
{
	unsigned leaked = pool->buffers_in_use;

	for (unsigned c = 0; pool->free_lists && c < pool->n_classes; c++) {
		while (pool->free_lists[c]) {
			struct vu_buf *buf = pool->free_lists[c];

			pool->free_lists[c] = buf->next;
			release(pool, buf);
		}
	}
	free(pool->free_lists);
	pool->free_lists = NULL;
	return leaked;
}

size_t vu_pool_max_buffers(const struct vu_pool *pool)
{
	return pool->cap / VU_POOL_GRANULE;
}
