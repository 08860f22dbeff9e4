#!/usr/bin/env bash
# Fetches Debian's 6.12 kernel image, headers, kbuild and mtty.c into a cache directory,
# without installing anything on the host: `apt-get download` + `dpkg -x`.
# Usage: fetch-kernel.sh CACHE_DIR
# Prints nothing on success except progress on stderr; exit 77 when the packages cannot be
# fetched (no network / no apt), 1 on other errors.
set -euo pipefail
KVER_PKG=${VU_KERNEL_PKG_VERSION:-6.12.117-1~deb12u1}
KABI=${VU_KERNEL_ABI:-6.12.117+deb12}
cache=$1
mkdir -p "$cache/debs" "$cache/root"
cache=$(cd "$cache" && pwd)
stamp="$cache/.fetched-$KABI"
[ -e "$stamp" ] && exit 0

pkgs=(
	"linux-image-$KABI-amd64"
	"linux-headers-$KABI-amd64"
	"linux-headers-$KABI-common"
	"linux-kbuild-$KABI"
	"linux-source-6.12"
)
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
	[ "$p" = linux-source-6.12 ] && continue
	echo "fetch-kernel: unpacking $p" >&2
	dpkg -x "${p}_"*.deb "$cache/root"
done
# mtty.c only (linux-source is 150 MB; extract one member).
mkdir -p "$cache/src"
dpkg-deb --fsys-tarfile linux-source-6.12_*.deb |
	tar -xO --wildcards '*/linux-source-6.12.tar.xz' |
	xz -dc | tar -x -C "$cache/src" --strip-components=3 linux-source-6.12/samples/vfio-mdev/mtty.c
[ -s "$cache/src/mtty.c" ] || { echo "fetch-kernel: mtty.c not found" >&2; exit 1; }
touch "$stamp"
# Everything needed is unpacked: drop the .debs (about 280 MB).
rm -f "$cache"/debs/*.deb
