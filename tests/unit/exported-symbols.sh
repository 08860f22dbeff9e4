#!/bin/bash
# The shared library exports exactly the functions the public header declares, all with
# the vfio_uring_ prefix (VMMs link libvfio-user's vfu_ and libvhost-user's vu_ beside it),
# each listed by name in the version script and carrying one of its version nodes, and
# nothing else: no data, no unversioned symbol, no node the script does not define.
# usage: exported-symbols.sh LIBRARY.so HEADER VERSION-SCRIPT
set -eu
lib=$1 header=$2 map=$3
command -v nm >/dev/null || { echo "skip: nm not found"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

dynsyms=$(nm -D --defined-only "$lib")
# the version script: its nodes, and the names listed (no wildcard outside "local: *")
nodes=$(grep -o '^VFIO_URING_[0-9]*\.[0-9]* {' "$map" | cut -d' ' -f1 | sort -u)
[ -n "$nodes" ] || fail "no VFIO_URING_x.y node in $map"
listed=$(sed 's,/\*.*\*/,,; /\/\*/,/\*\//d' "$map" | grep -o '^[[:space:]]*vfio_uring_[a-z0-9_]*;' |
	tr -d ' \t;' | sort)
dups=$(uniq -d <<<"$listed")
[ -z "$dups" ] || fail "listed twice in $map: $dups"
wild=$(sed 's,/\*.*\*/,,; /\/\*/,/\*\//d' "$map" | grep '\*' | grep -v '^[[:space:]]*\*;' || true)
[ -z "$wild" ] || fail "a wildcard in $map (list every function by name): $wild"

# every defined dynamic symbol: a function with a default version (name@@NODE), or a node
others=$(awk '$2 != "T" && !($2 == "A" && $3 ~ /^VFIO_URING_[0-9]+\.[0-9]+$/)' <<<"$dynsyms")
[ -z "$others" ] || fail "exported besides versioned functions and version nodes: $others"
unversioned=$(awk '$2 == "T" && $3 !~ /@@VFIO_URING_[0-9]+\.[0-9]+$/ {print $3}' <<<"$dynsyms")
[ -z "$unversioned" ] || fail "exported without a VFIO_URING_x.y version: $unversioned"
used_nodes=$(awk '$2 == "T" {sub(/.*@@/, "", $3); print $3} $2 == "A" {print $3}' <<<"$dynsyms" |
	sort -u)
unknown=$(comm -23 <(echo "$used_nodes") <(echo "$nodes"))
[ -z "$unknown" ] || fail "version nodes not defined in $map: $unknown"

exported=$(awk '$2 == "T" {print $3}' <<<"$dynsyms" | sed 's/@.*//' | sort -u)
# A declaration: VFIO_URING_API, its return type (which may name a vfio_uring_ type), the
# function's name right before "(", possibly over two lines.
declared=$(tr '\n' ' ' <"$header" | grep -o 'VFIO_URING_API [^(;]*(' | grep -o '[A-Za-z0-9_]*($' |
	tr -d '(' | grep '^vfio_uring_' | sort -u)
bad=$(grep -v '^vfio_uring_' <<<"$exported" || true)
[ -z "$bad" ] || fail "exported without the vfio_uring_ prefix: $bad"
not_exported=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$not_exported" ] || fail "declared but not exported: $not_exported"
not_declared=$(comm -23 <(echo "$exported") <(echo "$declared"))
[ -z "$not_declared" ] || fail "exported but not declared: $not_declared"
not_listed=$(comm -23 <(echo "$declared") <(echo "$listed"))
[ -z "$not_listed" ] || fail "declared but not in $map: $not_listed"
stale=$(comm -13 <(echo "$declared") <(echo "$listed"))
[ -z "$stale" ] || fail "in $map but not declared: $stale"
echo "ok: $(wc -l <<<"$exported") functions exported, all declared, all prefixed, all listed" \
	"in $(basename "$map") and versioned ($(echo $nodes))"
