// SPDX-License-Identifier: MIT
/*
 * vfio-uring-stat: the counters. The probes sum them in BPF hash maps; a snapshot copies
 * the maps into arrays sorted by key, so that the previous snapshot's value of a key (for
 * rates) is a binary search away.
 */
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vfio-uring-stat.h"
#include "vfio_uring_stat.skel.h"

static int cmp_dev(const void *a, const void *b)
{
	const struct vus_dev_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	int c = strncmp(x->idstr, y->idstr, sizeof(x->idstr));
	if (c)
		return c;
	return x->instance_id < y->instance_id ? -1 : x->instance_id > y->instance_id;
}

static int cmp_chan(const void *a, const void *b)
{
	const struct vus_chan_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->channel < y->channel ? -1 : x->channel > y->channel;
}

static int cmp_err(const void *a, const void *b)
{
	const struct vus_err_key *x = a, *y = b;

	if (x->side != y->side)
		return x->side < y->side ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Copies a hash map into an array of (key, value) entries, sorted. */
static void *read_map(int fd, size_t key_size, size_t entry_size, size_t max, size_t *count,
		      int (*cmp)(const void *, const void *))
{
	char *entries = calloc(max, entry_size), *key = NULL, next[sizeof(struct vus_dev_key)];
	size_t n = 0;

	if (!entries)
		die("out of memory");
	while (n < max && bpf_map_get_next_key(fd, key, next) == 0) {
		char *e = entries + n * entry_size;

		memcpy(e, next, key_size);
		key = e;
		/* a key deleted in between (never here: nothing deletes) would just be skipped */
		if (bpf_map_lookup_elem(fd, e, e + key_size) == 0)
			n++;
	}
	qsort(entries, n, entry_size, cmp);
	*count = n;
	return entries;
}

void take_snapshot(struct vfio_uring_stat_bpf *skel, struct snapshot *s)
{
	s->t = now_s();
	s->devs = read_map(bpf_map__fd(skel->maps.devices), sizeof(struct vus_dev_key),
			   sizeof(struct dev_entry), VUS_MAX_DEVICES, &s->ndevs, cmp_dev);
	s->chans = read_map(bpf_map__fd(skel->maps.channels), sizeof(struct vus_chan_key),
			    sizeof(struct chan_entry), VUS_MAX_CHANNELS, &s->nchans, cmp_chan);
	s->errs = read_map(bpf_map__fd(skel->maps.errors), sizeof(struct vus_err_key),
			   sizeof(struct err_entry), 1024, &s->nerrs, cmp_err);
}

void free_snapshot(struct snapshot *s)
{
	free(s->devs);
	free(s->chans);
	free(s->errs);
	memset(s, 0, sizeof(*s));
}

const struct vus_dev_val *prev_dev(const struct snapshot *p, const struct vus_dev_key *k)
{
	const struct dev_entry *e = p->devs ? bsearch(k, p->devs, p->ndevs, sizeof(*e), cmp_dev)
					    : NULL;

	return e ? &e->val : NULL;
}

const struct vus_chan_val *prev_chan(const struct snapshot *p,
					    const struct vus_chan_key *k)
{
	const struct chan_entry *e = p->chans ? bsearch(k, p->chans, p->nchans, sizeof(*e),
							cmp_chan) : NULL;

	return e ? &e->val : NULL;
}

const char *dev_state(const struct vus_dev_val *v)
{
	if (v->flags & VUS_DEV_FAILED)
		return "failed";
	if (v->flags & VUS_DEV_DONE)
		return "done";
	return "active";
}

/* Average over the device's own elapsed time when done, else over the packets seen. */
double dev_avg_rate(const struct vus_dev_val *v)
{
	double secs = v->elapsed_ns ? v->elapsed_ns / 1e9
				    : (v->last_ns > v->first_ns ? (v->last_ns - v->first_ns) / 1e9
								: 0);

	return secs > 0 ? v->bytes / secs : 0;
}
