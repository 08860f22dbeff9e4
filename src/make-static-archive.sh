#!/bin/sh
# Builds the installed static library: links every object of IN.a into one relocatable
# object, makes its hidden symbols local, and archives it as OUT.a. Only vfio_uring_* stays
# global, so nothing of ours can clash in a statically linked VMM.
# usage: make-static-archive.sh IN.a OUT.a   (IN.a may be a thin archive)
set -eu
in=$1 out=$2
tmp=$out.prelink.o
${LD:-ld} -r -o "$tmp" --whole-archive "$in" --no-whole-archive
${OBJCOPY:-objcopy} --localize-hidden "$tmp"
rm -f "$out"
${AR:-ar} rcs "$out" "$tmp"
rm -f "$tmp"
