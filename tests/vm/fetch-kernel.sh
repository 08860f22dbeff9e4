#!/usr/bin/env bash
# Fetches a Debian kernel into a cache directory without installing anything on the host:
# `apt-get download` + `dpkg -x`. Two kinds:
#   full   (default) image, headers, kbuild and mtty.c from linux-source: the 6.12 guest with
#          the mtty sample VFIO driver built out of tree.
#   image  vmlinuz and its config alone (no modules): a guest that needs no module (6.1).
# Usage: fetch-kernel.sh CACHE_DIR [full|image]
# Env: VU_KERNEL_ABI (default 6.12.117+deb12) and VU_KERNEL_PKG_VERSION (default
#      6.12.117-1~deb12u1) choose the kernel: linux-image-$VU_KERNEL_ABI-amd64 at that version.
# Prints nothing on success except progress on stderr; exit 77 when the packages cannot be
# fetched (no network / no apt), 1 on other errors.
set -euo pipefail
KVER_PKG=${VU_KERNEL_PKG_VERSION:-6.12.117-1~deb12u1}
KABI=${VU_KERNEL_ABI:-6.12.117+deb12}
kind=${2:-full}
cache=$1
mkdir -p "$cache/debs" "$cache/root"
cache=$(cd "$cache" && pwd)
# A full fetch includes the image: either stamp satisfies an image fetch.
[ -e "$cache/.fetched-$KABI" ] && exit 0
[ "$kind" = image ] && [ -e "$cache/.fetched-$KABI-image" ] && exit 0

pkgs=("linux-image-$KABI-amd64")
src_pkg=
case $kind in
full)
	src_pkg="linux-source-$(echo "$KABI" | cut -d. -f1,2)"
	pkgs+=("linux-headers-$KABI-amd64" "linux-headers-$KABI-common" "linux-kbuild-$KABI"
	       "$src_pkg")
	;;
image) ;;
*) echo "fetch-kernel: unknown kind $kind" >&2; exit 1 ;;
esac
cd "$cache/debs"
for p in "${pkgs[@]}"; do
	if ! ls "${p}_"*.deb >/dev/null 2>&1; then
		echo "fetch-kernel: downloading $p=$KVER_PKG" >&2
		# apt-get download runs as _apt when it can; make the folder writable for it.
		chmod 777 "$cache/debs" 2>/dev/null || true
		if ! apt-get download -q "$p=$KVER_PKG" >&2; then
			echo "fetch-kernel: cannot download $p=$KVER_PKG (no network or apt lists?)" >&2
			exit 77
		fi
	fi
done
for p in "${pkgs[@]}"; do
	[ "$p" = "$src_pkg" ] && continue
	echo "fetch-kernel: unpacking $p" >&2
	if [ "$kind" = image ]; then # /boot only: the modules are 400 MB nobody loads
		dpkg-deb --fsys-tarfile "${p}_"*.deb | tar -x -C "$cache/root" ./boot
	else
		dpkg -x "${p}_"*.deb "$cache/root"
	fi
done
if [ -n "$src_pkg" ]; then
	# mtty.c only (linux-source is 150 MB; extract one member).
	mkdir -p "$cache/src"
	dpkg-deb --fsys-tarfile "${src_pkg}_"*.deb |
		tar -xO --wildcards "*/$src_pkg.tar.xz" |
		xz -dc | tar -x -C "$cache/src" --strip-components=3 "$src_pkg/samples/vfio-mdev/mtty.c"
	[ -s "$cache/src/mtty.c" ] || { echo "fetch-kernel: mtty.c not found" >&2; exit 1; }
	touch "$cache/.fetched-$KABI"
else
	touch "$cache/.fetched-$KABI-image"
fi
# Everything needed is unpacked: drop the .debs (about 280 MB for a full fetch).
rm -f "$cache"/debs/*.deb
