# Sourced by the guest's /init with A B C D set to four mtty-2 device UUIDs.
# Each program prints "VU-TEST name PASS|FAIL|SKIP ..." lines; its exit code is reported too.
run() {
	name=$1; shift
	echo "VU-RUN $name $*"
	"$@"
	echo "VU-RC $name $?"
}
[ -x /tests/guest-vfio ] && run guest-vfio guest-vfio $A $B
[ -x /tests/guest-migrate ] && run guest-migrate guest-migrate $A $B
[ -e /tests/guest-tool.sh ] && run guest-tool sh /tests/guest-tool.sh $A $B $C $D
