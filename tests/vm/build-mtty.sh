#!/usr/bin/env bash
# Builds mtty.ko out of tree against the kernel headers unpacked by fetch-kernel.sh.
# Usage: build-mtty.sh CACHE_DIR OUT_DIR   (OUT_DIR/mtty.ko)
set -euo pipefail
KABI=${VU_KERNEL_ABI:-6.12.117+deb12}
cache=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
src="$cache/root/usr/src"
[ -e "$out/mtty.ko" ] && [ "$out/mtty.ko" -nt "$cache/src/mtty.c" ] && exit 0
# Debian's -amd64 headers Makefile includes the -common one by absolute /usr/src path: point
# a private copy of the output tree at the unpacked paths instead (no host install needed).
kdir="$out/kbuild-amd64"
rm -rf "$kdir"
mkdir -p "$kdir"
for f in "$src/linux-headers-$KABI-amd64"/* "$src/linux-headers-$KABI-amd64"/.config \
	"$src/linux-headers-$KABI-amd64"/.kernelvariables; do
	ln -s "$f" "$kdir/$(basename "$f")"
done
rm "$kdir/Makefile" "$kdir/scripts" "$kdir/tools"
ln -s "$cache/root/usr/lib/linux-kbuild-$KABI/scripts" "$kdir/scripts"
ln -s "$cache/root/usr/lib/linux-kbuild-$KABI/tools" "$kdir/tools"
echo "include $src/linux-headers-$KABI-common/Makefile" > "$kdir/Makefile"
mdir="$out/mtty-src"
mkdir -p "$mdir"
cp "$cache/src/mtty.c" "$mdir/mtty.c"
echo 'obj-m := mtty.o' > "$mdir/Kbuild"
# No module BTF: it needs pahole, and mtty does not need it.
make -s -C "$kdir" M="$mdir" CONFIG_DEBUG_INFO_BTF_MODULES= modules >&2
cp "$mdir/mtty.ko" "$out/mtty.ko"
