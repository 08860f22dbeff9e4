#!/bin/bash
# The tables of failure reasons in a document, between the lines
#   <!-- reasons-table: begin ... -->  and  <!-- reasons-table: end -->
# usage: reasons-table.sh GENERATOR DOC check    exit 1 and a diff when the tables are stale
#        reasons-table.sh GENERATOR DOC update   rewrite them from the generator's output
set -eu
gen=$1 doc=$2 mode=$3
want=$("$gen")
grep -q '^<!-- reasons-table: begin' "$doc" && grep -q '^<!-- reasons-table: end' "$doc" ||
	{ echo "FAIL: $doc has no reasons-table markers"; exit 1; }
have=$(awk '/^<!-- reasons-table: end/ {f = 0} f {print} /^<!-- reasons-table: begin/ {f = 1}' "$doc")
case $mode in
check)
	if [ "$have" != "$want" ]; then
		echo "FAIL: the reasons tables in $doc differ from the list in vfio-uring.h:"
		diff <(echo "$have") <(echo "$want") || true
		echo "run: ninja -C <builddir> update-reasons-table"
		exit 1
	fi
	echo "ok: the reasons tables in $doc match the list" ;;
update)
	tmp=$(mktemp)
	awk -v table="$want" '
		/^<!-- reasons-table: end/ {print table; f = 0}
		!f {print}
		/^<!-- reasons-table: begin/ {f = 1}' "$doc" >"$tmp"
	cat "$tmp" >"$doc"
	rm -f "$tmp"
	echo "updated $doc" ;;
*)
	echo "usage: $0 GENERATOR DOC check|update"; exit 2 ;;
esac
