#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds (with clang, -fsanitize=fuzzer,address,undefined) and runs one libFuzzer target for
# a bounded time; fails on any finding (crash, sanitizer report, leak, timeout, abort).
#
#   run-fuzz.sh NAME SECONDS SEED_CORPUS WORKDIR --bin BINARY
#   run-fuzz.sh NAME SECONDS SEED_CORPUS WORKDIR --build TARGET.c -I DIR... -- LIBSOURCES.c...
#
# VU_FUZZ_SECONDS overrides SECONDS; VU_FUZZ_ARGS adds libFuzzer flags (e.g. -jobs=2).
# New inputs go to WORKDIR/corpus (the seed corpus in the source tree is never written);
# a finding is saved as WORKDIR/artifacts/NAME-crash-*, reproduce it with BINARY FILE.
# Exit 77 (skip) when clang or libFuzzer is not available.
set -u
name=$1 secs=${VU_FUZZ_SECONDS:-$2} seeds=$3 work=$4
shift 4
mkdir -p "$work/corpus-$name" "$work/artifacts"
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE)
if [ "$1" = --bin ]; then
	bin=$2
else
	shift
	cc=${FUZZ_CC:-clang}
	if ! command -v "$cc" >/dev/null; then
		echo "SKIP: $cc not found (install clang to run the fuzzers)"
		exit 77
	fi
	probe="$work/probe.c"
	printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
	if ! "$cc" "${flags[@]}" "$probe" -o "$work/probe" 2>"$work/probe.log"; then
		echo "SKIP: $cc cannot build libFuzzer targets:"; cat "$work/probe.log"
		exit 77
	fi
	srcs=() incs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case $1 in -I) incs+=(-I "$2"); shift 2 ;; *) srcs+=("$1"); shift ;; esac
	done
	shift # --
	srcs+=("$@")
	bin="$work/$name"
	echo "building $bin with $cc"
	if ! "$cc" "${flags[@]}" "${incs[@]}" "${srcs[@]}" -luring -lpthread -o "$bin"; then
		echo "FAIL: cannot build the fuzz target $name"
		exit 1
	fi
fi
echo "running $name for $secs s on $seeds"
# detect_leaks: LeakSanitizer runs after inputs that look leaky; rss_limit guards runaway memory.
"$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/$name-" ${VU_FUZZ_ARGS:-} \
	"$work/corpus-$name" "$seeds" 2>"$work/$name.log"
rc=$?
grep -E '^(stat::|Done|INFO: -max_total_time)' "$work/$name.log"
if [ $rc -ne 0 ]; then
	echo "FAIL: $name found a problem (exit $rc); log $work/$name.log, artifacts:"
	ls -1 "$work/artifacts/$name-"* 2>/dev/null
	tail -60 "$work/$name.log"
	exit 1
fi
echo "PASS: $name, no finding in $secs s"
