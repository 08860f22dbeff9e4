#!/usr/bin/env bash
# The `vm` suite's guest tests: boots a Debian kernel under QEMU TCG and runs the static test
# programs inside (facts: ../shared/notes/real-vfio-vm.md). Two uses (tests/vm/meson.build):
#   guest      Debian 12's 6.12 kernel with the mtty sample VFIO driver: the VFIO tests.
#   guest-6.1  Debian 12's own 6.1 kernel, no module: an io_uring probe and the library's
#              integration cases (tests/integration/transfer) on an older kernel.
# Usage: run-vm.sh [--kernel ABI=PKGVERSION] [--no-mtty] [--transfer-cases INTRO_TESTS_JSON]
#                  SRCDIR WORKDIR PROGRAM...
#   --kernel          linux-image-ABI-amd64 at PKGVERSION (default 6.12.117+deb12=6.12.117-1~deb12u1,
#                     or $VU_KERNEL_ABI=$VU_KERNEL_PKG_VERSION)
#   --no-mtty         fetch the image alone, no headers, no mtty.ko, no VFIO modules
#   --transfer-cases  run the transfer cases of suite integration found in meson's
#                     introspection (transfer-cases.py); each must report PASS
#   PROGRAM: statically linked programs/scripts copied to /tests in the guest.
# Env: VU_VM_CACHE (default SRCDIR/tests/vm/cache) holds the downloaded kernel packages;
#      VU_VM_TIMEOUT (default 240) seconds for the guest.
# Exit: 0 all guest tests passed, 1 a failure, 77 the machine cannot run it (says why).
set -uo pipefail
kernel=${VU_KERNEL_ABI:-6.12.117+deb12}=${VU_KERNEL_PKG_VERSION:-6.12.117-1~deb12u1}
mtty=1
intro=
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--no-mtty) mtty=0; shift ;;
	--transfer-cases) intro=$2; shift 2 ;;
	*) break ;;
	esac
done
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
shift 2
cache=${VU_VM_CACHE:-$src/tests/vm/cache}
export VU_KERNEL_ABI=${kernel%%=*} VU_KERNEL_PKG_VERSION=${kernel#*=}
KVER="$VU_KERNEL_ABI-amd64"
t0=$(date +%s.%N)

skip() { echo "SKIP: $*"; exit 77; }
elapsed() { echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}'; }

# 1. host tools (deps/vm.list); install them if we are root, else skip.
need_install=0
for t in qemu-system-x86_64 cpio xz make gzip dpkg-deb apt-get; do
	command -v $t >/dev/null || need_install=1
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need_install=1
if [ $need_install = 1 ]; then
	if [ "$(id -u)" = 0 ] && [ -x "$src/scripts/install-deps" ]; then
		echo "installing deps/vm.list"
		"$src/scripts/install-deps" vm >/dev/null 2>"$work/install-deps.log" ||
			skip "installing deps/vm.list failed: $(tail -3 "$work/install-deps.log")"
	else
		skip "missing host tools (qemu-system-x86, busybox-static, cpio, kmod, xz-utils); run scripts/install-deps vm as root"
	fi
fi
[ $mtty = 0 ] || command -v x86_64-linux-gnu-gcc-12 >/dev/null ||
	skip "gcc-12 (the guest kernel's compiler) is missing"

# 2. kernel image (+ headers, mtty.c): apt-get download + dpkg -x, the host is not touched.
"$src/tests/vm/fetch-kernel.sh" "$cache" $([ $mtty = 1 ] && echo full || echo image) || {
	rc=$?
	[ $rc = 77 ] && skip "cannot download the Debian kernel packages for $KVER ($VU_KERNEL_PKG_VERSION)"
	echo "fetching the kernel packages failed"
	exit 1
}
echo "kernel packages ready ($(elapsed) s)"

# 3. mtty.ko out of tree.
if [ $mtty = 1 ]; then
	"$src/tests/vm/build-mtty.sh" "$cache" "$work" 2>"$work/mtty-build.log" || {
		cat "$work/mtty-build.log"
		echo "building mtty.ko failed"
		exit 1
	}
	echo "mtty.ko built ($(elapsed) s)"
fi

# 4. initramfs: busybox, modules and mtty.ko (with mtty), test programs, transfer cases.
root="$work/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,lib/modules}
cp /bin/busybox "$root/bin/busybox"
if [ $mtty = 1 ]; then
	mods="$cache/root/lib/modules/$KVER/kernel"
	for m in drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 drivers/vfio/mdev/mdev; do
		xz -dc "$mods/$m.ko.xz" > "$root/lib/modules/$(basename $m).ko" || exit 1
	done
	cp "$work/mtty.ko" "$root/lib/modules/mtty.ko"
fi
cp "$src/tests/vm/guest-init.sh" "$root/init"
cp "$src/tests/vm/guest-tests.sh" "$root/tests/guest-tests.sh"
chmod +x "$root/init"
for p in "$@"; do
	[ -e "$p" ] || { echo "missing test program $p"; exit 1; }
	cp "$p" "$root/tests/"
done
cases=
if [ -n "$intro" ]; then
	cases="$work/transfer-cases.txt"
	python3 "$src/tests/vm/transfer-cases.py" "$intro" "$cases" || exit 1
	[ -x "$root/tests/transfer" ] || { echo "--transfer-cases needs the transfer program"; exit 1; }
	cp "$cases" "$root/tests/transfer-cases.txt"
	echo "$(grep -vc '^#' "$cases") transfer cases from $intro"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.cpio.gz" || exit 1
echo "initramfs ready ($(elapsed) s)"

# 5. boot (TCG: /dev/kvm here cannot run an unmodified kernel).
log="$work/console.log"
boot0=$(date +%s.%N)
timeout "${VU_VM_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp 2 \
	-nographic -no-reboot -nic none -monitor none -serial "file:$log" \
	-kernel "$cache/root/boot/vmlinuz-$KVER" -initrd "$work/initramfs.cpio.gz" \
	-append 'console=ttyS0 quiet panic=-1' </dev/null >"$work/qemu.out" 2>&1
qrc=$?
boot_s=$(echo "$(date +%s.%N) $boot0" | awk '{printf "%.1f", $1 - $2}')
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g; s/\r$//' "$log" > "$work/console.txt"
cat "$work/console.txt"
echo "---- guest ran $boot_s s (qemu exit $qrc); total $(elapsed) s"
[ $qrc = 124 ] && { echo "FAIL: the guest timed out"; exit 1; }
grep -aq 'VU-BOOTED' "$work/console.txt" || { cat "$work/qemu.out"; echo "FAIL: the guest did not boot"; exit 1; }
grep -aq '^VU-FATAL' "$work/console.txt" && { echo "FAIL: guest setup failed"; exit 1; }
grep -aq '^VU-DONE' "$work/console.txt" || { echo "FAIL: the guest did not finish"; exit 1; }
pass=$(grep -ac '^VU-TEST .* PASS' "$work/console.txt")
fail=$(grep -ac '^VU-TEST .* FAIL' "$work/console.txt")
skipn=$(grep -ac '^VU-TEST .* SKIP' "$work/console.txt")
badrc=$(grep -a '^VU-RC ' "$work/console.txt" | awk '$3 != 0 && $3 != 77' | wc -l)
# Every transfer case must have reported: a case that never ran is a failure, not a pass.
missing=0
if [ -n "$cases" ]; then
	for name in $(grep -v '^#' "$cases" | cut -d' ' -f1); do
		grep -aq "^VU-TEST $name \(PASS\|FAIL\)" "$work/console.txt" && continue
		echo "FAIL: transfer case $name did not report"
		missing=$((missing + 1))
	done
fi
echo "guest tests: $pass passed, $fail failed, $skipn skipped, $missing missing; programs failing: $badrc"
[ "$fail" = 0 ] && [ "$badrc" = 0 ] && [ "$missing" = 0 ] && [ "$pass" -gt 0 ] || exit 1
exit 0
