#!/bin/busybox sh
# /init of the test guest (busybox): with mtty.ko in the initramfs, load the VFIO modules and
# mtty and create four mtty devices; run the test programs, print one result line per
# program, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/tests
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp && mount -t tmpfs tmp /tmp
ip link set lo up
echo; echo "VU-BOOTED $(cut -d' ' -f1 /proc/uptime) $(uname -r)"
if [ -e /lib/modules/mtty.ko ]; then
	for m in vfio vfio_iommu_type1 mdev mtty; do
		insmod /lib/modules/$m.ko || { echo "VU-FATAL insmod $m failed"; poweroff -f; }
	done
	types=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
	for i in 1 2 3 4; do
		echo "11111111-0000-0000-0000-00000000000$i" > $types/create ||
			{ echo "VU-FATAL cannot create mtty device $i"; poweroff -f; }
	done
	A=11111111-0000-0000-0000-000000000001
	B=11111111-0000-0000-0000-000000000002
	C=11111111-0000-0000-0000-000000000003
	D=11111111-0000-0000-0000-000000000004
	ls -l /dev/vfio
fi
. /tests/guest-tests.sh
echo "VU-DONE $(cut -d' ' -f1 /proc/uptime)"
poweroff -f
