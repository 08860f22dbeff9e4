// SPDX-License-Identifier: MIT
/* vfio-uring-stat --json: one JSON object per snapshot, one line each. */
#include <stdio.h>
#include <time.h>

#include "vfio-uring-stat.h"

static void json_string(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void print_json(const struct snapshot *s, const struct snapshot *p, bool final)
{
	double dt = p->devs ? s->t - p->t : 0;
	uint64_t tot_bytes[3] = { 0 }, tot_packets[3] = { 0 };
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	printf("{\"time\":%.3f,\"final\":%s,\"interval_s\":%.3f,\"devices\":[",
	       wall.tv_sec + wall.tv_nsec / 1e9, final ? "true" : "false", dt);
	for (size_t i = 0; i < s->ndevs; i++) {
		const struct dev_entry *e = &s->devs[i];
		const struct vus_dev_val *o = prev_dev(p, &e->key);
		double rb = 0, rp = 0;

		if (dt > 0) {
			rb = (e->val.bytes - (o ? o->bytes : 0)) / dt;
			rp = (e->val.packets - (o ? o->packets : 0)) / dt;
		}
		tot_bytes[e->key.side % 3] += e->val.bytes;
		tot_packets[e->key.side % 3] += e->val.packets;
		printf("%s{\"pid\":%u,\"side\":\"%s\",\"idstr\":", i ? "," : "", e->key.pid,
		       side_name(e->key.side));
		json_string(e->key.idstr, sizeof(e->key.idstr));
		printf(",\"instance_id\":%u,\"state\":\"%s\",\"error\":%d,\"bytes\":%llu,"
		       "\"packets\":%llu,\"wire_bytes\":%llu,\"written_bytes\":%llu,"
		       "\"written_packets\":%llu,\"queued_max\":%llu,\"config_len\":%llu,"
		       "\"done_bytes\":%llu,\"elapsed_ns\":%llu,\"bytes_per_s\":%.0f,"
		       "\"packets_per_s\":%.1f,\"avg_bytes_per_s\":%.0f}",
		       e->key.instance_id, dev_state(&e->val), e->val.error,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.packets,
		       (unsigned long long)e->val.wire_bytes,
		       (unsigned long long)e->val.written_bytes,
		       (unsigned long long)e->val.written_packets,
		       (unsigned long long)e->val.queued_max,
		       (unsigned long long)e->val.config_len,
		       (unsigned long long)e->val.done_bytes,
		       (unsigned long long)e->val.elapsed_ns, rb, rp, dev_avg_rate(&e->val));
	}
	printf("],\"channels\":[");
	for (size_t i = 0; i < s->nchans; i++) {
		const struct chan_entry *e = &s->chans[i];
		const struct vus_chan_val *o = prev_chan(p, &e->key);
		double rw = 0, rp = 0;

		if (dt > 0) {
			rw = (e->val.wire_bytes - (o ? o->wire_bytes : 0)) / dt;
			rp = (e->val.packets - (o ? o->packets : 0)) / dt;
		}
		printf("%s{\"pid\":%u,\"side\":\"%s\",\"channel\":%u,\"bytes\":%llu,"
		       "\"wire_bytes\":%llu,\"packets\":%llu,\"handshakes\":%llu,"
		       "\"wire_bytes_per_s\":%.0f,\"packets_per_s\":%.1f}",
		       i ? "," : "", e->key.pid, side_name(e->key.side), e->key.channel,
		       (unsigned long long)e->val.bytes, (unsigned long long)e->val.wire_bytes,
		       (unsigned long long)e->val.packets, (unsigned long long)e->val.handshakes,
		       rw, rp);
	}
	printf("],\"errors\":[");
	for (size_t i = 0; i < s->nerrs; i++) {
		const struct err_entry *e = &s->errs[i];

		printf("%s{\"pid\":%u,\"side\":\"%s\",\"error\":%d,\"count\":%u,\"message\":",
		       i ? "," : "", e->key.pid, side_name(e->key.side), e->val.error,
		       e->val.count);
		json_string(e->val.message, sizeof(e->val.message));
		putchar('}');
	}
	printf("],\"totals\":{\"source\":{\"bytes\":%llu,\"packets\":%llu},"
	       "\"destination\":{\"bytes\":%llu,\"packets\":%llu}}}\n",
	       (unsigned long long)tot_bytes[VUS_SOURCE],
	       (unsigned long long)tot_packets[VUS_SOURCE],
	       (unsigned long long)tot_bytes[VUS_DESTINATION],
	       (unsigned long long)tot_packets[VUS_DESTINATION]);
	fflush(stdout);
}
