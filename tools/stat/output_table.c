// SPDX-License-Identifier: MIT
/* vfio-uring-stat: the table, redrawn every interval on a terminal, and the final summary. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vfio-uring-stat.h"

void print_table(const struct snapshot *s, const struct snapshot *p, bool final)
{
	double dt = p->devs ? s->t - p->t : 0;
	uint64_t tot_bytes[3] = { 0 }, tot_packets[3] = { 0 };
	char when[32];
	time_t wall = time(NULL);

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
	if (cfg.tty && !final)
		fputs("\033[H\033[2J", stdout);
	if (final)
		printf("\n%s  vfio-uring-stat: final summary (avg MB/s over each device's "
		       "transfer)\n", when);
	else
		printf("%s  vfio-uring-stat (every %us)\n", when, cfg.interval_s);
	printf("%-11s %7s %-28s %5s %15s %9s %9s %9s %5s %-6s\n", "SIDE", "PID", "DEVICE",
	       "INST", "BYTES", "PACKETS", final ? "AVG_MB/s" : "MB/s", final ? "" : "PKT/s",
	       "QMAX", "STATE");
	for (size_t i = 0; i < s->ndevs; i++) {
		const struct dev_entry *e = &s->devs[i];
		const struct vus_dev_val *o = prev_dev(p, &e->key);
		char rb[16] = "-", rp[16] = "", q[8] = "-";

		if (final) {
			snprintf(rb, sizeof(rb), "%.1f", dev_avg_rate(&e->val) / 1e6);
		} else if (dt > 0) {
			snprintf(rb, sizeof(rb), "%.1f",
				 (e->val.bytes - (o ? o->bytes : 0)) / dt / 1e6);
			snprintf(rp, sizeof(rp), "%.0f",
				 (e->val.packets - (o ? o->packets : 0)) / dt);
		}
		if (e->key.side == VUS_DESTINATION)
			snprintf(q, sizeof(q), "%llu", (unsigned long long)e->val.queued_max);
		tot_bytes[e->key.side % 3] += e->val.bytes;
		tot_packets[e->key.side % 3] += e->val.packets;
		printf("%-11s %7u %-28.*s %5u %15llu %9llu %9s %9s %5s %-6s", side_name(e->key.side),
		       e->key.pid, VUS_IDSTR_MAX, e->key.idstr, e->key.instance_id,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.packets, rb,
		       rp, q, dev_state(&e->val));
		if (e->val.error)
			printf(" %s", strerror(-e->val.error));
		putchar('\n');
	}
	printf("%-11s %7s %-5s %15s %15s %9s %9s %9s\n", "SIDE", "PID", "CHAN", "BYTES",
	       "WIRE_BYTES", "PACKETS", final ? "" : "MB/s", final ? "" : "PKT/s");
	for (size_t i = 0; i < s->nchans; i++) {
		const struct chan_entry *e = &s->chans[i];
		const struct vus_chan_val *o = prev_chan(p, &e->key);
		char rw[16] = "", rp[16] = "";

		if (!final && dt > 0) {
			snprintf(rw, sizeof(rw), "%.1f",
				 (e->val.wire_bytes - (o ? o->wire_bytes : 0)) / dt / 1e6);
			snprintf(rp, sizeof(rp), "%.0f",
				 (e->val.packets - (o ? o->packets : 0)) / dt);
		}
		printf("%-11s %7u %-5u %15llu %15llu %9llu %9s %9s\n", side_name(e->key.side),
		       e->key.pid, e->key.channel, (unsigned long long)e->val.bytes,
		       (unsigned long long)e->val.wire_bytes, (unsigned long long)e->val.packets,
		       rw, rp);
	}
	for (unsigned side = VUS_SOURCE; side <= VUS_DESTINATION; side++)
		if (tot_packets[side])
			printf("total %-11s bytes %llu packets %llu\n", side_name(side),
			       (unsigned long long)tot_bytes[side],
			       (unsigned long long)tot_packets[side]);
	for (size_t i = 0; i < s->nerrs; i++)
		printf("error %s pid %u: %s (%d), %u probe hit(s); first: %s\n",
		       side_name(s->errs[i].key.side), s->errs[i].key.pid,
		       strerror(-s->errs[i].val.error), s->errs[i].val.error,
		       s->errs[i].val.count,
		       s->errs[i].val.message[0] ? s->errs[i].val.message : "(unreadable)");
	fflush(stdout);
}
