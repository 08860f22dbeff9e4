/* SPDX-License-Identifier: MIT */
/*
 * Soak: N (default 200) complete migrations back to back in one process, source and
 * destination engines on socketpairs (every fourth on TCP), small devices of varying size,
 * 1-4 channels, 1-3 devices. Every migration must complete with identical bytes and configs;
 * the open fd count must be the same after every one; RSS must stay flat after a warm-up.
 * Usage: soak [N]
 */
#include "hostile.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define RL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RL_ASAN 1
#endif
#endif

#define WARMUP 20
#define RSS_SLACK_KIB 4096

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	int fds0 = rl_count_fds();
	long rss_warm = 0, rss_max = 0;
	uint32_t seed = 4242;
	uint64_t bytes = 0;

	for (int it = 0; it < n; it++) {
		struct rl_mig_opts o = { 0 };
		struct rl_mig m;
		int ret, fds;
		long rss;

		seed = seed * 1664525u + 1013904223u;
		o.channels = 1 + (int)((seed >> 8) % 4);
		o.devices = 1 + (int)((seed >> 12) % 3);
		o.dev_size = 1 + (seed >> 16) % 200000;
		o.chunk_size = 16384;
		o.tcp = it % 4 == 3;
		o.seed = (uint32_t)it;
		ret = rl_mig_init(&m, &o);
		RL_CHECK(ret == 0, "iteration %d: setup %d (%s)", it, ret, strerror(-ret));
		if (ret == 0) {
			rl_mig_run(&m, 30000);
			rl_mig_check_complete(&m);
			for (int i = 0; i < m.ndev; i++)
				bytes += m.d[i].size;
		}
		rl_mig_fini(&m);
		fds = rl_count_fds();
		RL_CHECK(fds == fds0, "iteration %d: %d fds open, %d at start", it, fds, fds0);
		rss = rl_rss_kib();
		if (it == WARMUP)
			rss_warm = rss;
		if (it >= WARMUP && rss > rss_max)
			rss_max = rss;
		if (rl_failures) {
			fprintf(stderr, "stopping at iteration %d\n", it);
			break;
		}
		if (it % 50 == 0)
			printf("iteration %d: fds %d rss %ld KiB\n", it, fds, rss);
	}
	printf("%d migrations, %llu device bytes; fds %d -> %d; RSS after warm-up %ld KiB, "
	       "max %ld KiB\n",
	       n, (unsigned long long)bytes, fds0, rl_count_fds(), rss_warm, rss_max);
#ifdef RL_ASAN
	printf("AddressSanitizer build: RSS includes its quarantine, not checked\n");
#else
	if (n > WARMUP)
		RL_CHECK(rss_max - rss_warm <= RSS_SLACK_KIB,
			 "RSS grew from %ld KiB to %ld KiB after the warm-up", rss_warm, rss_max);
#endif
	return rl_result();
}
