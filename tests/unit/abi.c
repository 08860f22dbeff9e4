/* SPDX-License-Identifier: MIT */
/*
 * The stable ABI (vfio-uring.h, "ABI"): a program built against older headers passes
 * smaller structs, one built against newer headers bigger ones, and the library must read
 * and write only the caller's bytes.
 *
 * The "old" structs below are the layouts of the 0.1 tree before its last fields were
 * added (engine max_queued_bytes, device flags, device status packets_queued and reason,
 * engine stats device_io_peak, channel stats packets), as an older program sees them. They sit in
 * buffers followed by canary or trap bytes: canaries must survive every call that writes
 * (init, get_status, get_stats, get_channel_stats); trap bytes lie where the newer fields
 * are, with values that change behaviour if the library read them (create, add_device).
 * Input structs are also passed in exact-size heap blocks, so that an over-read faults under
 * AddressSanitizer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vfio-uring.h"

#include "check.h"

struct old_engine_opts {
	size_t size;
	enum vfio_uring_side side;
	uint8_t uuid[16];
	size_t buffer_cap;
	size_t chunk_size;
	size_t max_packet_size;
	unsigned ring_entries;
	unsigned progress_timeout_ms;
	unsigned flags;
};

struct old_device_opts {
	size_t size;
	const char *idstr;
	uint32_t instance_id;
	int data_fd;
	enum vfio_uring_multifd_mode multifd;
	vfio_uring_save_config_fn save_config;
	vfio_uring_load_config_fn load_config;
	vfio_uring_device_done_fn done;
	void *opaque;
};

struct old_device_status {
	enum vfio_uring_device_state state;
	int error;
	const char *message;
	uint64_t bytes;
	uint64_t data_bytes;
	uint64_t packets;
};

struct old_engine_stats {
	uint64_t bytes;
	uint64_t packets;
	uint64_t wire_bytes;
	uint64_t ring_enters;
	uint64_t completions;
	uint64_t buffer_bytes;
	uint64_t buffer_peak;
	uint64_t buffer_cap;
};

struct old_channel_stats {
	uint64_t wire_bytes;
};

/* A field never moves: every old field is where the current headers have it. */
#define SAME(old, cur, f)                                                              \
	_Static_assert(offsetof(struct old, f) == offsetof(struct cur, f) &&            \
			       sizeof(((struct old *)0)->f) == sizeof(((struct cur *)0)->f), \
		       #cur "." #f " moved")
SAME(old_engine_opts, vfio_uring_engine_opts, size);
SAME(old_engine_opts, vfio_uring_engine_opts, side);
SAME(old_engine_opts, vfio_uring_engine_opts, uuid);
SAME(old_engine_opts, vfio_uring_engine_opts, buffer_cap);
SAME(old_engine_opts, vfio_uring_engine_opts, chunk_size);
SAME(old_engine_opts, vfio_uring_engine_opts, max_packet_size);
SAME(old_engine_opts, vfio_uring_engine_opts, ring_entries);
SAME(old_engine_opts, vfio_uring_engine_opts, progress_timeout_ms);
SAME(old_engine_opts, vfio_uring_engine_opts, flags);
SAME(old_device_opts, vfio_uring_device_opts, size);
SAME(old_device_opts, vfio_uring_device_opts, idstr);
SAME(old_device_opts, vfio_uring_device_opts, instance_id);
SAME(old_device_opts, vfio_uring_device_opts, data_fd);
SAME(old_device_opts, vfio_uring_device_opts, multifd);
SAME(old_device_opts, vfio_uring_device_opts, save_config);
SAME(old_device_opts, vfio_uring_device_opts, load_config);
SAME(old_device_opts, vfio_uring_device_opts, done);
SAME(old_device_opts, vfio_uring_device_opts, opaque);
SAME(old_device_status, vfio_uring_device_status, state);
SAME(old_device_status, vfio_uring_device_status, error);
SAME(old_device_status, vfio_uring_device_status, message);
SAME(old_device_status, vfio_uring_device_status, bytes);
SAME(old_device_status, vfio_uring_device_status, data_bytes);
SAME(old_device_status, vfio_uring_device_status, packets);
SAME(old_engine_stats, vfio_uring_engine_stats, bytes);
SAME(old_engine_stats, vfio_uring_engine_stats, packets);
SAME(old_engine_stats, vfio_uring_engine_stats, wire_bytes);
SAME(old_engine_stats, vfio_uring_engine_stats, ring_enters);
SAME(old_engine_stats, vfio_uring_engine_stats, completions);
SAME(old_engine_stats, vfio_uring_engine_stats, buffer_bytes);
SAME(old_engine_stats, vfio_uring_engine_stats, buffer_peak);
SAME(old_engine_stats, vfio_uring_engine_stats, buffer_cap);
SAME(old_channel_stats, vfio_uring_channel_stats, wire_bytes);

/* The trap bytes lie exactly where the newer fields are. */
_Static_assert(offsetof(struct vfio_uring_engine_opts, max_queued_bytes) ==
		       sizeof(struct old_engine_opts), "trap position");
_Static_assert(offsetof(struct vfio_uring_device_opts, flags) == sizeof(struct old_device_opts),
	       "trap position");

#define CANARY 0xa5
#define TAIL 64 /* canary or trap bytes behind a struct */

/* A struct of `size` bytes followed by TAIL canary bytes, suitably aligned. */
struct guarded {
	_Alignas(16) unsigned char bytes[VFIO_URING_STRUCT_SIZE_MAX + TAIL];
	size_t size;
};

static void *guard(struct guarded *g, size_t size)
{
	memset(g->bytes, CANARY, sizeof(g->bytes));
	g->size = size;
	return g->bytes;
}

static bool canary_intact(const struct guarded *g)
{
	for (size_t i = g->size; i < g->size + TAIL; i++)
		if (g->bytes[i] != CANARY)
			return false;
	return true;
}

/* What an older program's inline vfio_uring_engine_opts_init() did with its own sizeof. */
static void old_engine_opts_init(struct old_engine_opts *o, enum vfio_uring_side side)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->side = side;
	o->buffer_cap = VFIO_URING_DEFAULT_BUFFER_CAP;
	o->chunk_size = VFIO_URING_DEFAULT_CHUNK_SIZE;
	o->max_packet_size = VFIO_URING_DEFAULT_MAX_PACKET_SIZE;
	o->ring_entries = VFIO_URING_DEFAULT_RING_ENTRIES;
	o->progress_timeout_ms = 10000;
}

static void old_device_opts_init(struct old_device_opts *o, const char *idstr, int fd)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->idstr = idstr;
	o->data_fd = fd;
	o->multifd = VFIO_URING_MULTIFD_ON;
}

/* The init functions run in the program and write exactly its sizeof. */
static void test_init_writes_only_the_struct(void)
{
	struct guarded g;
	struct vfio_uring_engine_opts *eo = guard(&g, sizeof(*eo));
	struct vfio_uring_device_opts *dopts;

	vfio_uring_engine_opts_init(eo, VFIO_URING_DESTINATION);
	CHECK(canary_intact(&g), "engine opts init wrote beyond the struct");
	CHECK(eo->size == sizeof(*eo) && eo->side == VFIO_URING_DESTINATION &&
	      eo->max_queued_bytes == 0, "engine opts init");
	dopts = guard(&g, sizeof(*dopts));
	vfio_uring_device_opts_init(dopts);
	CHECK(canary_intact(&g), "device opts init wrote beyond the struct");
	CHECK(dopts->size == sizeof(*dopts) && dopts->data_fd == -1 && dopts->flags == 0,
	      "device opts init");
}

/* Two engines in this thread until both finish (as tests/unit/api.c). */
static void run_pair(struct vfio_uring_engine *src, struct vfio_uring_engine *dst, int *rs, int *rd)
{
	*rs = *rd = 0;
	for (int i = 0; i < 100000 && (!*rs || !*rd); i++) {
		if (!*rs)
			*rs = vfio_uring_engine_process(src);
		if (!*rd)
			*rd = vfio_uring_engine_process(dst);
		if (i > 10)
			usleep(100);
	}
}

/*
 * A migration whose destination engine and device were created from old structs with trap
 * bytes behind them, where the newer fields are: max_queued_bytes 1 (every packet would
 * fail with -ENOBUFS) and device flags CONFIG_LOAD_WAITS (the device would wait for
 * config_load_ready() forever). It completes only if the library took the defaults.
 * Then the outputs, into old structs with canaries and into bigger "newer" ones.
 */
static void test_old_structs_in_a_migration(void)
{
	static const char data[] = "the device state: 32 bytes long";
	struct guarded ge, gd, gs;
	struct old_engine_opts *oeo = guard(&ge, sizeof(*oeo));
	struct old_device_opts *odo = guard(&gd, sizeof(*odo));
	struct vfio_uring_engine_opts eo;
	struct vfio_uring_device_opts dopts;
	struct vfio_uring_engine *src = NULL, *dst = NULL;
	struct vfio_uring_device *sdev = NULL, *ddev = NULL;
	struct vfio_uring_device_status st;
	struct vfio_uring_engine_stats es;
	struct vfio_uring_channel_stats cs;
	int sv[2], rs, rd, sfd = memfd_create("s", 0), dfd = memfd_create("d", 0);
	uint64_t one = 1;
	uint32_t waits = VFIO_URING_DEVICE_F_CONFIG_LOAD_WAITS;

	if (write(sfd, data, sizeof(data)) != (ssize_t)sizeof(data) || lseek(sfd, 0, SEEK_SET) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		CHECK(0, "setup");
		return;
	}
	old_engine_opts_init(oeo, VFIO_URING_DESTINATION);
	memcpy(ge.bytes + sizeof(*oeo), &one, sizeof(one));
	CHECK(vfio_uring_engine_create((const struct vfio_uring_engine_opts *)oeo, &dst) == 0,
	      "create from old opts");
	old_device_opts_init(odo, "dev0", dfd);
	memcpy(gd.bytes + sizeof(*odo), &waits, sizeof(waits));
	CHECK(vfio_uring_engine_add_device(dst, (const struct vfio_uring_device_opts *)odo,
					   &ddev) == 0, "add_device from old opts");

	vfio_uring_engine_opts_init(&eo, VFIO_URING_SOURCE);
	vfio_uring_device_opts_init(&dopts);
	dopts.idstr = "dev0";
	dopts.data_fd = sfd;
	if (!dst || !ddev || vfio_uring_engine_create(&eo, &src) ||
	    vfio_uring_engine_add_device(src, &dopts, &sdev)) {
		CHECK(0, "setup");
		goto out;
	}
	vfio_uring_engine_add_channel(src, sv[0]);
	vfio_uring_engine_add_channel(dst, sv[1]);
	vfio_uring_engine_start(src);
	vfio_uring_engine_start(dst);
	vfio_uring_engine_switchover_start(dst);
	run_pair(src, dst, &rs, &rd);
	CHECK(rs == 1 && rd == 1, "migration done without config_load_ready (defaults, not the "
	      "trap bytes): source %d, destination %d", rs, rd);

	/* Outputs into old, smaller structs: their fields, and not a byte beyond. */
	{
		struct old_device_status *ost = guard(&gs, sizeof(*ost));

		CHECK(vfio_uring_device_get_status(ddev, (struct vfio_uring_device_status *)ost,
						   sizeof(*ost)) == 0, "get_status, old struct");
		CHECK(canary_intact(&gs), "get_status wrote beyond an old struct");
		vfio_uring_device_get_status(ddev, &st, sizeof(st));
		CHECK(ost->state == VFIO_URING_DEVICE_DONE && ost->error == 0 &&
		      ost->bytes == st.bytes && ost->data_bytes == sizeof(data) &&
		      ost->packets == st.packets && ost->packets == 2, "old status fields");
	}
	{
		struct old_engine_stats *oes = guard(&gs, sizeof(*oes));

		CHECK(vfio_uring_engine_get_stats(dst, (struct vfio_uring_engine_stats *)oes,
						  sizeof(*oes)) == 0, "get_stats, old struct");
		CHECK(canary_intact(&gs), "get_stats wrote beyond an old struct");
		vfio_uring_engine_get_stats(dst, &es, sizeof(es));
		CHECK(oes->bytes == es.bytes && oes->packets == 2 && oes->wire_bytes == es.wire_bytes &&
		      oes->buffer_cap == es.buffer_cap && oes->buffer_peak == es.buffer_peak,
		      "old stats fields");
	}
	{
		struct old_channel_stats *ocs = guard(&gs, sizeof(*ocs));

		CHECK(vfio_uring_engine_get_channel_stats(dst, 0, (struct vfio_uring_channel_stats *)ocs,
							  sizeof(*ocs)) == 0, "channel stats, old struct");
		CHECK(canary_intact(&gs), "get_channel_stats wrote beyond an old struct");
		vfio_uring_engine_get_channel_stats(dst, 0, &cs, sizeof(cs));
		CHECK(ocs->wire_bytes == cs.wire_bytes && cs.packets == 2, "old channel stats fields");
	}

	/* Outputs into bigger, newer structs: ours, then zeros where this library knows nothing. */
	{
		unsigned char *p = guard(&gs, sizeof(st) + 16);

		CHECK(vfio_uring_device_get_status(ddev, (struct vfio_uring_device_status *)p,
						   sizeof(st) + 16) == 0, "get_status, newer struct");
		CHECK(canary_intact(&gs), "get_status wrote beyond a newer struct");
		CHECK(memcmp(p, &st, offsetof(struct vfio_uring_device_status, reason) +
					     sizeof(st.reason)) == 0, "newer status: our fields");
		for (size_t i = sizeof(st); i < sizeof(st) + 16; i++)
			CHECK(p[i] == 0, "newer status: byte %zu unknown to the library is 0x%02x", i, p[i]);
		p = guard(&gs, sizeof(es) + 8);
		CHECK(vfio_uring_engine_get_stats(dst, (struct vfio_uring_engine_stats *)p,
						  sizeof(es) + 8) == 0 && canary_intact(&gs) &&
		      memcmp(p, &es, sizeof(es)) == 0 && p[sizeof(es)] == 0 &&
		      p[sizeof(es) + 7] == 0, "get_stats, newer struct");
		p = guard(&gs, sizeof(cs) + 8);
		CHECK(vfio_uring_engine_get_channel_stats(dst, 0, (struct vfio_uring_channel_stats *)p,
							  sizeof(cs) + 8) == 0 && canary_intact(&gs) &&
		      memcmp(p, &cs, sizeof(cs)) == 0 && p[sizeof(cs)] == 0, "channel stats, newer struct");
	}

	/* Sizes that cannot be a struct. */
	CHECK(vfio_uring_device_get_status(ddev, &st, 0) == -EINVAL, "status size 0");
	CHECK(vfio_uring_engine_get_stats(dst, &es, VFIO_URING_STRUCT_SIZE_MAX + 1) == -EINVAL,
	      "stats size too big");
	CHECK(vfio_uring_engine_get_channel_stats(dst, 0, NULL, sizeof(cs)) == -EINVAL,
	      "channel stats NULL");
out:
	vfio_uring_engine_destroy(src);
	vfio_uring_engine_destroy(dst);
	close(sv[0]);
	close(sv[1]);
	close(sfd);
	close(dfd);
}

/* Old structs in heap blocks of exactly their size: an over-read faults under ASan. */
static void test_old_inputs_exact_size(void)
{
	struct old_engine_opts *oeo = malloc(sizeof(*oeo));
	struct old_device_opts *odo = malloc(sizeof(*odo));
	struct vfio_uring_engine *e = NULL;
	int fd = memfd_create("x", 0);

	old_engine_opts_init(oeo, VFIO_URING_SOURCE);
	CHECK(vfio_uring_engine_create((struct vfio_uring_engine_opts *)oeo, &e) == 0, "create");
	old_device_opts_init(odo, "dev0", fd);
	if (e)
		CHECK(vfio_uring_engine_add_device(e, (struct vfio_uring_device_opts *)odo, NULL) == 0,
		      "add_device");
	vfio_uring_engine_destroy(e);
	free(oeo);
	free(odo);
	close(fd);
}

/*
 * A newer program's bigger options: bytes this library does not know are accepted when 0
 * (a newer field at its default) and refused with -E2BIG otherwise.
 */
static void test_newer_inputs(void)
{
	struct guarded g;
	struct vfio_uring_engine_opts *eo = guard(&g, sizeof(*eo) + 16);
	struct vfio_uring_device_opts *dopts;
	struct vfio_uring_engine *e = NULL;
	int fd = memfd_create("x", 0);

	memset(eo, 0, sizeof(*eo) + 16);
	vfio_uring_engine_opts_init(eo, VFIO_URING_SOURCE);
	eo->size = sizeof(*eo) + 16;
	CHECK(vfio_uring_engine_create(eo, &e) == 0, "bigger engine opts, zero tail");
	g.bytes[sizeof(*eo) + 15] = 1;
	CHECK(vfio_uring_engine_create(eo, &e) == -E2BIG, "bigger engine opts, a newer field set");
	eo->size = offsetof(struct vfio_uring_engine_opts, side);
	CHECK(vfio_uring_engine_create(eo, &e) == -EINVAL, "engine opts without side");
	eo->size = VFIO_URING_STRUCT_SIZE_MAX + 1;
	CHECK(vfio_uring_engine_create(eo, &e) == -EINVAL, "engine opts size too big");

	dopts = guard(&g, sizeof(*dopts) + 8);
	memset(dopts, 0, sizeof(*dopts) + 8);
	vfio_uring_device_opts_init(dopts);
	dopts->idstr = "dev0";
	dopts->data_fd = fd;
	dopts->size = sizeof(*dopts) + 8;
	if (e) {
		CHECK(vfio_uring_engine_add_device(e, dopts, NULL) == 0, "bigger device opts, zero tail");
		g.bytes[sizeof(*dopts)] = 1;
		dopts->instance_id = 1;
		CHECK(vfio_uring_engine_add_device(e, dopts, NULL) == -E2BIG,
		      "bigger device opts, a newer field set");
		dopts->size = offsetof(struct vfio_uring_device_opts, data_fd);
		CHECK(vfio_uring_engine_add_device(e, dopts, NULL) == -EINVAL,
		      "device opts without data_fd");
	}
	vfio_uring_engine_destroy(e);
	close(fd);
}

int main(void)
{
	test_init_writes_only_the_struct();
	test_old_structs_in_a_migration();
	test_old_inputs_exact_size();
	test_newer_inputs();
	return check_result();
}
