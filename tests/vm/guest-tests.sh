# Sourced by the guest's /init; A B C D are four mtty-2 device UUIDs when mtty is loaded.
# Each program prints "VU-TEST name PASS|FAIL|SKIP ..." lines; its exit code is reported too.
run() {
	name=$1; shift
	echo "VU-RUN $name $*"
	"$@"
	echo "VU-RC $name $?"
}
[ -x /tests/guest-probe ] && run guest-probe guest-probe
if [ -n "${A:-}" ]; then
	[ -x /tests/guest-vfio ] && run guest-vfio guest-vfio $A $B
	[ -x /tests/guest-migrate ] && run guest-migrate guest-migrate $A $B
	[ -e /tests/guest-tool.sh ] && run guest-tool sh /tests/guest-tool.sh $A $B $C $D
fi
[ -e /tests/transfer-cases.txt ] && run transfer-cases sh /tests/guest-transfer.sh /tests/transfer-cases.txt
