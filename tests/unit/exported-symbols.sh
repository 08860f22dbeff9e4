#!/bin/bash
# The shared library exports exactly the functions the public header declares, all with
# the vfio_uring_ prefix (VMMs link libvfio-user's vfu_ and libvhost-user's vu_ beside it).
# usage: exported-symbols.sh LIBRARY.so HEADER
set -eu
lib=$1 header=$2
command -v nm >/dev/null || { echo "skip: nm not found"; exit 77; }
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
# the function's name is the identifier right before "(" (the return type may name a type too)
declared=$(grep -ho '^VFIO_URING_API [^(]*(' "$header" | grep -o '[A-Za-z0-9_]*($' | tr -d '(' | sort -u)
bad=$(grep -v '^vfio_uring_' <<<"$exported" || true)
[ -z "$bad" ] || { echo "FAIL: exported without the vfio_uring_ prefix: $bad"; exit 1; }
not_exported=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$not_exported" ] || { echo "FAIL: declared but not exported: $not_exported"; exit 1; }
not_declared=$(comm -23 <(echo "$exported") <(echo "$declared"))
[ -z "$not_declared" ] || { echo "FAIL: exported but not declared: $not_declared"; exit 1; }
echo "ok: $(wc -l <<<"$exported") functions exported, all declared, all prefixed"
