#!/bin/bash
# The static archive defines no global symbol outside vfio_uring_*: linked statically into a
# VMM beside libvhost-user (vu_*) and libvfio-user (vfu_*), nothing of ours can clash.
set -eu
command -v nm >/dev/null || { echo "skip: nm not found"; exit 77; }
globals=$(nm -g --defined-only "$1" | awk 'NF == 3 {print $3}' | sort -u)
bad=$(grep -v '^vfio_uring_' <<<"$globals" || true)
[ -z "$bad" ] || { echo "FAIL: global symbols without the vfio_uring_ prefix:"; echo "$bad"; exit 1; }
echo "ok: $(wc -l <<<"$globals") global symbols, all vfio_uring_*"
