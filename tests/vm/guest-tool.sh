# Runs inside the test guest (busybox sh): tools/vfio-uring-migrate moves two mtty devices
# (A, B) to two others (C, D) over 2 loopback TCP channels, then a failing destination.
# Usage: sh guest-tool.sh A B C D
A=$1 B=$2 C=$3 D=$4
tool=/tests/vfio-uring-migrate-static
result() { echo "VU-TEST $1 $2${3:+ $3}"; }

run_pair() { # name dst_args -- src_args
	name=$1; dargs=$2; sargs=$3
	$tool --listen 127.0.0.1:7777 -c 2 $dargs > /tmp/$name.dst 2>&1 &
	dpid=$!
	$tool --connect 127.0.0.1:7777 -c 2 $sargs > /tmp/$name.src 2>&1
	src_rc=$?
	wait $dpid
	dst_rc=$?
	echo "--- $name: source exit $src_rc"; cat /tmp/$name.src
	echo "--- $name: destination exit $dst_rc"; cat /tmp/$name.dst
}

# 1. two devices, config blob from a file, PRE_COPY on the source, destination to RUNNING.
guest-vfio fill $A 9; guest-vfio fill $B 10; guest-vfio clear $C; guest-vfio clear $D
printf 'config blob for the tool test' > /tmp/cfg.in
rm -f /tmp/cfg.out
run_pair tool "-r -C /tmp/cfg.out $C $D" "-p -C /tmp/cfg.in $A $B"
ok=1; why=
[ $src_rc = 0 ] && [ $dst_rc = 0 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
guest-vfio check $C 9 || { ok=0; why="$why C"; }
guest-vfio check $D 10 || { ok=0; why="$why D"; }
cmp /tmp/cfg.in /tmp/cfg.out || { ok=0; why="$why config"; }
[ "$(guest-vfio state $A)" = STOP ] || { ok=0; why="$why A-not-STOP"; }
[ "$(guest-vfio state $C)" = RUNNING ] || { ok=0; why="$why C-not-RUNNING"; }
grep -q 'save summary: OK' /tmp/tool.src || { ok=0; why="$why no-source-summary"; }
grep -q 'load summary: OK' /tmp/tool.dst || { ok=0; why="$why no-destination-summary"; }
# progress against MIG_DATA_SIZE (2 x 96 bytes for mtty-2 devices)
grep -q 'progress: 192 / 192 bytes (100% of MIG_DATA_SIZE)' /tmp/tool.src || { ok=0; why="$why no-progress"; }
[ $ok = 1 ] && result tool-migrate-2-devices PASS || result tool-migrate-2-devices FAIL "$why"

# 2. the destination fails (another migration UUID): both exit 1, the source devices resume.
guest-vfio fill $A 11
run_pair toolfail "-u 77777777777777777777777777777777 $C $D" "$A $B"
ok=1; why=
[ $src_rc = 1 ] && [ $dst_rc = 1 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
[ "$(guest-vfio state $A)" = RUNNING ] || { ok=0; why="$why A-not-RUNNING"; }
[ "$(guest-vfio state $B)" = RUNNING ] || { ok=0; why="$why B-not-RUNNING"; }
guest-vfio check $A 11 || { ok=0; why="$why A-lost-state"; }
grep -q 'save summary: FAILED' /tmp/toolfail.src || { ok=0; why="$why no-failure-summary"; }
[ $ok = 1 ] && result tool-source-resumes PASS || result tool-source-resumes FAIL "$why"
exit 0
