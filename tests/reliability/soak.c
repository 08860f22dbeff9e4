/* SPDX-License-Identifier: MIT */
/*
 * Soak: N (default 200) complete migrations back to back in one process, source and
 * destination engines on socketpairs (every fourth on TCP), small devices of varying size,
 * 1-4 channels, 1-3 devices,
 * every fifth with device I/O forced async (io_uring workers, as a real VFIO fd), every
 * seventh on the baseline (5.15) ring setup, every sixth with an empty device (config only). Every migration must complete with identical
 * bytes and configs; the open fd count must be the same after every one; RSS must stay flat
 * after a warm-up.
 * With "failures": N failing migrations instead (cancel, a socket shut down, a hostile bad
 * packet, destroy mid-transfer, in turn), with the same fd and RSS checks.
 * Usage: soak [N [failures]]
 */
#include "hostile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define RL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RL_ASAN 1
#endif
#endif

#define WARMUP 20
#define RSS_SLACK_KIB 4096

/*
 * One failing migration, kind chosen by it: cancel, a socket shut down, a hostile bad packet,
 * destroy mid-transfer. The failure must be reported (or, for destroy, the engines freed).
 */
static void failing_migration(int it, uint32_t seed)
{
	int kind = it % 4;

	if (kind == 2) {
		struct rl_dest_opts o = { .channels = 2, .devices = 2 };
		struct rl_dest d;
		struct rl_buf b[2] = { 0 };
		uint8_t junk[300]; /* more than a header: decoded, rejected */

		rl_buf_handshake(&b[0], rl_uuid, 0);
		rl_buf_handshake(&b[1], rl_uuid, 1);
		rl_buf_packet(&b[0], "0000:01:00.0/vfio", 1, 0, 0, NULL, 5000);
		memset(junk, (int)seed, sizeof(junk));
		rl_buf_raw(&b[1], junk, sizeof(junk));
		if (rl_dest_init(&d, &o) == 0) {
			rl_dest_send(&d, 0, &b[0], RL_END_SHUTDOWN);
			rl_dest_send(&d, 1, &b[1], RL_END_STALL);
			rl_dest_run(&d, 20000);
			CHECK(vfio_uring_engine_error(d.e, NULL) < 0, "iteration %d: no error", it);
			rl_dest_check_none_done(&d);
		}
		rl_dest_fini(&d);
		rl_buf_free(&b[0]);
		rl_buf_free(&b[1]);
		return;
	}
	{
		struct rl_mig_opts o = { .channels = 2, .devices = 2, .dev_size = 300000,
					 .chunk_size = 16384, .seed = seed };
		struct rl_mig m;
		uint64_t at = seed % 400000;
		bool hit = false;

		if (rl_mig_init(&m, &o) == 0) {
			while (rl_mig_step(&m, 10)) {
				struct vfio_uring_engine_stats st;

				vfio_uring_engine_get_stats(m.dst, &st, sizeof(st));
				if (hit || st.wire_bytes < at)
					continue;
				hit = true;
				if (kind == 0)
					vfio_uring_engine_cancel((seed & 1) ? m.src : m.dst);
				else if (kind == 1)
					shutdown(m.ch[seed & 1][seed & 2 ? 1 : 0], SHUT_RDWR);
				else
					break; /* destroy mid-transfer */
			}
			if (kind != 3 && hit)
				rl_mig_check_dest_consistent(&m);
		}
		rl_mig_fini(&m);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	bool failures = argc > 2 && strcmp(argv[2], "failures") == 0;
	int fds0 = count_fds();
	long rss_warm = 0, rss_max = 0;
	uint32_t seed = 4242;
	uint64_t bytes = 0;

	for (int it = 0; it < n; it++) {
		struct rl_mig_opts o = { 0 };
		struct rl_mig m;
		int ret, fds, empty = -1;
		long rss;

		seed = seed * 1664525u + 1013904223u;
		if (failures) {
			failing_migration(it, seed);
			goto measure;
		}
		o.channels = 1 + (int)((seed >> 8) % 4);
		o.devices = 1 + (int)((seed >> 12) % 3);
		o.dev_size = 1 + (seed >> 16) % 200000;
		o.chunk_size = 16384;
		o.tcp = it % 4 == 3;
		if (it % 5 == 1)
			o.flags |= VFIO_URING_ENGINE_F_FORCE_ASYNC_DEVICE_IO;
		if (it % 7 == 2)
			o.flags |= VFIO_URING_ENGINE_F_BASELINE_RING;
		o.seed = (uint32_t)it;
		empty = -1;
		if (it % 6 == 5) { /* a device with no data at all: only its config */
			empty = rl_memfd("rl-empty", 0, 0);
			o.src_fd[0] = empty;
		}
		ret = rl_mig_init(&m, &o);
		CHECK(ret == 0, "iteration %d: setup %d (%s)", it, ret, strerror(-ret));
		if (ret == 0) {
			rl_mig_run(&m, 30000);
			rl_mig_check_complete(&m);
			for (int i = 0; i < m.ndev; i++)
				bytes += m.d[i].size;
		}
		rl_mig_fini(&m);
		if (empty >= 0)
			close(empty);
measure:
		fds = count_fds();
		CHECK(fds == fds0, "iteration %d: %d fds open, %d at start", it, fds, fds0);
		rss = rl_rss_kib();
		if (it == WARMUP)
			rss_warm = rss;
		if (it >= WARMUP && rss > rss_max)
			rss_max = rss;
		if (check_failures) {
			fprintf(stderr, "stopping at iteration %d\n", it);
			break;
		}
		if (it % 50 == 0)
			printf("iteration %d: fds %d rss %ld KiB\n", it, fds, rss);
	}
	printf("%d %smigrations, %llu device bytes; fds %d -> %d; RSS after warm-up %ld KiB, "
	       "max %ld KiB\n",
	       n, failures ? "failing " : "", (unsigned long long)bytes, fds0, count_fds(), rss_warm, rss_max);
#ifdef RL_ASAN
	printf("AddressSanitizer build: RSS includes its quarantine, not checked\n");
#else
	if (n > WARMUP)
		CHECK(rss_max - rss_warm <= RSS_SLACK_KIB,
			 "RSS grew from %ld KiB to %ld KiB after the warm-up", rss_warm, rss_max);
#endif
	return check_result();
}
