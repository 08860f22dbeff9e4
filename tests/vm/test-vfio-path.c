/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the VFIO migration state path table (src/vfio_device.c), no device needed.
 *
 * For every combination of migration flags and every (current, target) pair of supported
 * states, walks vu_vfio_next_state() and checks, against an independent model built from the
 * uAPI's direct arcs (../shared/notes/vfio-uapi.md):
 *   - every step is a legal arc for these flags (a state the device lacks is a no-op step);
 *   - the walk reaches the target, and as fast as a breadth-first search over legal arcs;
 *   - no intermediate state starts a save or resume session (STOP_COPY, RESUMING, PRE_COPY*)
 *     except that a PRE_COPY session continues to STOP_COPY;
 *   - unsupported targets, ERROR and unknown states give -EINVAL.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vfio_device.h"

#include "check.h"

#define N VFIO_URING_VFIO_NUM_STATES
#define ERR VFIO_URING_VFIO_ERROR
#define STOP VFIO_URING_VFIO_STOP
#define RUN VFIO_URING_VFIO_RUNNING
#define SC VFIO_URING_VFIO_STOP_COPY
#define RES VFIO_URING_VFIO_RESUMING
#define RP2P VFIO_URING_VFIO_RUNNING_P2P
#define PC VFIO_URING_VFIO_PRE_COPY
#define PCP2P VFIO_URING_VFIO_PRE_COPY_P2P
#define F_SC VFIO_URING_VFIO_MIG_STOP_COPY
#define F_ALL (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY)
#define F_SC_PC (VFIO_URING_VFIO_MIG_STOP_COPY | VFIO_URING_VFIO_MIG_PRE_COPY)


/* The uAPI's direct arcs, for a device with every feature. */
static const int direct_arcs[][2] = {
	{ RUN, RP2P },  { RP2P, RUN },   { RP2P, STOP }, { STOP, RP2P },  { STOP, SC },
	{ SC, STOP },   { STOP, RES },   { RES, STOP },  { RUN, PC },     { RP2P, PCP2P },
	{ PC, PCP2P },  { PCP2P, PC },   { PC, RUN },    { PCP2P, RP2P }, { PCP2P, SC },
};

static bool supported(uint64_t flags, int s)
{
	return vu_vfio_state_supported(flags, (enum vfio_uring_vfio_state)s);
}

static bool is_session(int s)
{
	return s == SC || s == RES || s == PC || s == PCP2P;
}

/* May `s` appear strictly inside a path from `from` to `to`? */
static bool intermediate_ok(int from, int to, int s)
{
	if (!is_session(s))
		return true;
	/* a PRE_COPY session may continue (through the other PRE_COPY state) to STOP_COPY */
	return (from == PC || from == PCP2P) && (s == PC || s == PCP2P) &&
	       (to == SC || to == PC || to == PCP2P);
}

/*
 * The legal arcs for a device with `flags`: direct arcs between supported states, plus
 * "collapsed" arcs a -> c where a -> b -> c, b is a state the device lacks and b could be
 * passed through on the way from a to c (the kernel treats b as a no-op: without P2P,
 * RUNNING -> STOP and PRE_COPY -> STOP_COPY are single arcs).
 */
static void legal_arcs(uint64_t flags, bool arc[N][N])
{
	bool direct[N][N];

	memset(direct, 0, sizeof(direct));
	memset(arc, 0, sizeof(bool) * N * N);
	for (size_t i = 0; i < sizeof(direct_arcs) / sizeof(direct_arcs[0]); i++)
		direct[direct_arcs[i][0]][direct_arcs[i][1]] = true;
	for (int a = 1; a < N; a++) {
		if (!supported(flags, a))
			continue;
		for (int b = 1; b < N; b++) {
			if (!direct[a][b])
				continue;
			if (supported(flags, b)) {
				arc[a][b] = true;
				continue;
			}
			/* only a lacking state that could be passed through anyway collapses */
			for (int c = 1; c < N; c++)
				if (direct[b][c] && c != a && supported(flags, c) &&
				    intermediate_ok(a, c, b))
					arc[a][c] = true;
		}
	}
}

static int bfs_distance(bool arc[N][N], int from, int to)
{
	int dist[N], queue[N], head = 0, tail = 0;

	for (int i = 0; i < N; i++)
		dist[i] = -1;
	dist[from] = 0;
	queue[tail++] = from;
	while (head < tail) {
		int u = queue[head++];
		if (u == to)
			return dist[u];
		if (u != from && !intermediate_ok(from, to, u))
			continue; /* may be reached (if it is the target) but not passed through */
		for (int v = 1; v < N; v++)
			if (arc[u][v] && dist[v] < 0) {
				dist[v] = dist[u] + 1;
				queue[tail++] = v;
			}
	}
	return -1;
}

static void check_flags(uint64_t flags)
{
	bool arc[N][N];

	legal_arcs(flags, arc);
	for (int from = 0; from < N; from++) {
		for (int to = 0; to < N; to++) {
			int first = vu_vfio_next_state(flags, (enum vfio_uring_vfio_state)from,
						       (enum vfio_uring_vfio_state)to);
			if (from == ERR || to == ERR || !supported(flags, from) || !supported(flags, to)) {
				CHECK(first == -EINVAL, "flags 0x%llx %d -> %d gave %d",
				      (unsigned long long)flags, from, to, first);
				continue;
			}
			int cur = from, steps = 0;
			while (cur != to && steps <= N) {
				int next = vu_vfio_next_state(flags, (enum vfio_uring_vfio_state)cur,
							      (enum vfio_uring_vfio_state)to);
				CHECK(next > 0 && next < N, "flags 0x%llx %s -> %s: step from %s gave %d",
				      (unsigned long long)flags, vfio_uring_vfio_state_name(from),
				      vfio_uring_vfio_state_name(to), vfio_uring_vfio_state_name(cur), next);
				if (next <= 0 || next >= N)
					break;
				CHECK(arc[cur][next], "flags 0x%llx %s -> %s: illegal arc %s -> %s",
				      (unsigned long long)flags, vfio_uring_vfio_state_name(from),
				      vfio_uring_vfio_state_name(to), vfio_uring_vfio_state_name(cur),
				      vfio_uring_vfio_state_name(next));
				if (next != to)
					CHECK(intermediate_ok(from, to, next),
					      "flags 0x%llx %s -> %s passes through %s",
					      (unsigned long long)flags, vfio_uring_vfio_state_name(from),
					      vfio_uring_vfio_state_name(to), vfio_uring_vfio_state_name(next));
				cur = next;
				steps++;
			}
			CHECK(cur == to, "flags 0x%llx %s -> %s does not arrive",
			      (unsigned long long)flags, vfio_uring_vfio_state_name(from),
			      vfio_uring_vfio_state_name(to));
			int best = bfs_distance(arc, from, to);
			CHECK(best >= 0 && steps == best, "flags 0x%llx %s -> %s: %d steps, shortest %d",
			      (unsigned long long)flags, vfio_uring_vfio_state_name(from),
			      vfio_uring_vfio_state_name(to), steps, best);
		}
	}
}

/* A few paths spelled out, as the uAPI documents them. */
static void check_known_paths(void)
{
	static const struct {
		uint64_t flags;
		int path[6]; /* from ... to, 0-terminated (ERROR never appears) */
	} cases[] = {
		{ .flags = F_ALL, .path = { RUN, RP2P, STOP, SC, 0 } },
		{ .flags = F_SC, .path = { RUN, STOP, SC, 0 } },
		{ .flags = F_ALL, .path = { PC, PCP2P, SC, 0 } },
		{ .flags = F_SC_PC, .path = { PC, SC, 0 } },
		{ .flags = F_ALL, .path = { SC, STOP, RP2P, RUN, 0 } },
		{ .flags = F_SC, .path = { SC, STOP, RUN, 0 } },
		{ .flags = F_ALL, .path = { RUN, RP2P, STOP, RES, 0 } },
		{ .flags = F_ALL, .path = { RES, STOP, RP2P, RUN, 0 } },
		{ .flags = F_ALL, .path = { PC, RUN, RP2P, STOP, 0 } },
		{ .flags = F_ALL, .path = { RUN, RP2P, PCP2P, 0 } },
		{ .flags = F_ALL, .path = { STOP, RP2P, RUN, PC, 0 } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const int *p = cases[i].path;
		int len = 0;
		while (p[len])
			len++;
		int to = p[len - 1];
		for (int k = 0; k + 1 < len; k++) {
			int next = vu_vfio_next_state(cases[i].flags, (enum vfio_uring_vfio_state)p[k],
						      (enum vfio_uring_vfio_state)to);
			CHECK(next == p[k + 1], "case %zu: from %s to %s expected %s, got %s", i,
			      vfio_uring_vfio_state_name(p[k]), vfio_uring_vfio_state_name(to),
			      vfio_uring_vfio_state_name(p[k + 1]),
			      vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)next));
		}
	}
	CHECK(vu_vfio_next_state(0, RUN, STOP) == -EINVAL, "no STOP_COPY flag must be refused");
	CHECK(vu_vfio_next_state(F_ALL, RUN, (enum vfio_uring_vfio_state)8) == -EINVAL, "state 8 must be refused");
	CHECK(vu_vfio_next_state(F_SC, RUN, RP2P) == -EINVAL, "RUNNING_P2P without P2P");
	CHECK(vu_vfio_next_state(F_SC | VFIO_URING_VFIO_MIG_P2P, RUN, PCP2P) == -EINVAL,
	      "PRE_COPY_P2P without PRE_COPY");
	CHECK(strcmp(vfio_uring_vfio_state_name(VFIO_URING_VFIO_PRE_COPY_P2P), "PRE_COPY_P2P") == 0,
	      "state name");
	CHECK(strcmp(vfio_uring_vfio_state_name((enum vfio_uring_vfio_state)9), "INVALID") == 0,
	      "invalid state name");
}

int main(void)
{
	const uint64_t sc = VFIO_URING_VFIO_MIG_STOP_COPY;

	check_flags(sc);
	check_flags(sc | VFIO_URING_VFIO_MIG_P2P);
	check_flags(sc | VFIO_URING_VFIO_MIG_PRE_COPY);
	check_flags(sc | VFIO_URING_VFIO_MIG_P2P | VFIO_URING_VFIO_MIG_PRE_COPY);
	check_known_paths();
	if (check_result())
		return 1;
	printf("vfio state path table: all checks passed\n");
	return 0;
}
