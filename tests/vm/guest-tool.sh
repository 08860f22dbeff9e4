# Runs inside the test guest (busybox sh): tools/vfio-uring-migrate moves mtty devices (A, B)
# to others (C, D) over loopback TCP channels, with per-device config blobs; then failures:
# a failing destination, and channel counts that differ between the two sides, where every
# summary row must say what happened to its device and every error line name its devices.
# Usage: sh guest-tool.sh A B C D
A=$1 B=$2 C=$3 D=$4
tool=/tests/vfio-uring-migrate-static
result() { echo "VU-TEST $1 $2${3:+ $3}"; }

run_pair() { # name dst_args src_args
	name=$1; dargs=$2; sargs=$3
	$tool --listen 127.0.0.1:7777 $dargs > /tmp/$name.dst 2>&1 &
	dpid=$!
	$tool --connect 127.0.0.1:7777 $sargs > /tmp/$name.src 2>&1
	src_rc=$?
	wait $dpid
	dst_rc=$?
	echo "--- $name: source exit $src_rc"; cat /tmp/$name.src
	echo "--- $name: destination exit $dst_rc"; cat /tmp/$name.dst
}
# row FILE DEVICE ERE: DEVICE's summary row in FILE matches ERE
row() { grep "^  $2 " "$1" | grep -qE "$3"; }
# rows FILE ERE DEVICE...: every DEVICE's row matches ERE
rows() { f=$1; re=$2; shift 2; for dv in "$@"; do row "$f" "$dv" "$re" || return 1; done; }

# 1. two devices, a config blob each (they differ) from a directory, live pre-copy (-p on
#    both sides: each device's 24 initial bytes move while it runs, then STOP_COPY), the
#    destination writes each blob to its own file and moves the devices to RUNNING.
guest-vfio fill $A 9; guest-vfio fill $B 10; guest-vfio clear $C; guest-vfio clear $D
rm -rf /tmp/cfgsrc /tmp/cfgdst; mkdir /tmp/cfgsrc
printf 'config blob of A\000\001\377' > /tmp/cfgsrc/$A
printf 'config blob of B, a longer one: 0123456789abcdef\000' > /tmp/cfgsrc/$B
run_pair tool "-c 2 -p -r --config-dir /tmp/cfgdst $C $D" "-c 2 -p --config-dir /tmp/cfgsrc $A $B"
ok=1; why=
[ $src_rc = 0 ] && [ $dst_rc = 0 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
guest-vfio check $C 9 || { ok=0; why="$why C"; }
guest-vfio check $D 10 || { ok=0; why="$why D"; }
cmp /tmp/cfgsrc/$A /tmp/cfgdst/$C || { ok=0; why="$why config-A-C"; }
cmp /tmp/cfgsrc/$B /tmp/cfgdst/$D || { ok=0; why="$why config-B-D"; }
[ "$(ls /tmp/cfgdst | wc -l)" = 2 ] || { ok=0; why="$why config-dir-files"; }
[ "$(guest-vfio state $A)" = STOP ] || { ok=0; why="$why A-not-STOP"; }
[ "$(guest-vfio state $C)" = RUNNING ] || { ok=0; why="$why C-not-RUNNING"; }
grep -q 'save summary: OK' /tmp/tool.src || { ok=0; why="$why no-source-summary"; }
grep -q 'load summary: OK' /tmp/tool.dst || { ok=0; why="$why no-destination-summary"; }
rows /tmp/tool.src 'saved' $A $B || { ok=0; why="$why source-rows"; }
rows /tmp/tool.dst 'loaded.*RUNNING' $C $D || { ok=0; why="$why destination-rows"; }
# progress against MIG_DATA_SIZE (2 x 96 bytes for mtty-2 devices)
grep -q 'progress: 192 / 192 bytes (100% of MIG_DATA_SIZE)' /tmp/tool.src || { ok=0; why="$why no-progress"; }
# the live phase: ready, 2 x 24 initial bytes live, then each device 24 of its 96 bytes live
grep -qE '^  precopy: ready after [0-9.]+ s, 48 bytes live, stop-copy estimate 192 bytes$' /tmp/tool.src ||
	{ ok=0; why="$why no-precopy-summary"; }
[ "$(grep -cE '^ +precopy 24 bytes live, ready$' /tmp/tool.src)" = 2 ] || { ok=0; why="$why precopy-rows"; }
[ $ok = 1 ] && result tool-migrate-2-devices PASS || result tool-migrate-2-devices FAIL "$why"

# 2. one device, its config blob in a file given as such (--config FILE).
guest-vfio fill $A 16; guest-vfio clear $C
printf 'the one device config blob' > /tmp/one.in; rm -f /tmp/one.out
run_pair toolone "-c 1 --config /tmp/one.out $C" "-c 1 --config /tmp/one.in $A"
ok=1; why=
[ $src_rc = 0 ] && [ $dst_rc = 0 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
guest-vfio check $C 16 || { ok=0; why="$why C"; }
cmp /tmp/one.in /tmp/one.out || { ok=0; why="$why config"; }
[ "$(guest-vfio state $C)" = STOP ] || { ok=0; why="$why C-not-STOP"; }
[ $ok = 1 ] && result tool-config-file-1-device PASS || result tool-config-file-1-device FAIL "$why"

# 3. the destination fails (another migration UUID): both exit 1, the source devices resume.
guest-vfio fill $A 11; guest-vfio fill $B 17
run_pair toolfail "-c 2 -u 77777777777777777777777777777777 $C $D" "-c 2 $A $B"
ok=1; why=
[ $src_rc = 1 ] && [ $dst_rc = 1 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
[ "$(guest-vfio state $A)" = RUNNING ] || { ok=0; why="$why A-not-RUNNING"; }
[ "$(guest-vfio state $B)" = RUNNING ] || { ok=0; why="$why B-not-RUNNING"; }
guest-vfio check $A 11 || { ok=0; why="$why A-lost-state"; }
grep -q 'save summary: FAILED' /tmp/toolfail.src || { ok=0; why="$why no-failure-summary"; }
rows /tmp/toolfail.src 'resumed \(RUNNING\)' $A $B || { ok=0; why="$why source-rows"; }
rows /tmp/toolfail.dst 'reset to RUNNING' $C $D || { ok=0; why="$why destination-rows"; }
grep -q "^  error for $A, $B: " /tmp/toolfail.src || { ok=0; why="$why source-error-line"; }
grep -q "^  error for $C, $D: destination: channel 0: handshake UUID" /tmp/toolfail.dst ||
	{ ok=0; why="$why destination-error-line"; }
[ $ok = 1 ] && result tool-source-resumes PASS || result tool-source-resumes FAIL "$why"

# 4. channel counts differ, the destination expects more: it gives up on channel setup
#    before touching its devices (their state is intact) and tells the source, whose devices
#    were saved and resume.
guest-vfio fill $A 12; guest-vfio fill $B 13; guest-vfio fill $C 14; guest-vfio fill $D 15
run_pair toolch3 "-c 3 -t 2 $C $D" "-c 2 $A $B"
ok=1; why=
[ $src_rc = 1 ] && [ $dst_rc = 1 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
rows /tmp/toolch3.dst '^  [^ ]+ +RUNNING +0 +96 +0  untouched$' $C $D || { ok=0; why="$why destination-rows"; }
grep -q "^  error for $C, $D: channel setup: channel 2 of 3 never connected" /tmp/toolch3.dst ||
	{ ok=0; why="$why destination-error-line"; }
rows /tmp/toolch3.src 'RUNNING .*migration failed after the save.*; device resumed \(RUNNING\)$' $A $B ||
	{ ok=0; why="$why source-rows"; }
grep -q "^  error for $A, $B: destination: channel setup: channel 2 of 3 never connected" /tmp/toolch3.src ||
	{ ok=0; why="$why source-error-line"; }
for p in "$A 12" "$B 13" "$C 14" "$D 15"; do guest-vfio check $p || { ok=0; why="$why state-$p"; }; done
[ $ok = 1 ] && result tool-channels-destination-expects-more PASS ||
	result tool-channels-destination-expects-more FAIL "$why"

# 5. channel counts differ, the source opens more: the destination sees the extra connection
#    before touching its devices; the source's devices resume.
guest-vfio fill $A 18; guest-vfio fill $C 19
run_pair toolch1 "-c 2 $C $D" "-c 3 $A $B"
ok=1; why=
[ $src_rc = 1 ] && [ $dst_rc = 1 ] || { ok=0; why="exit codes $src_rc/$dst_rc"; }
rows /tmp/toolch1.dst '^  [^ ]+ +RUNNING +0 +96 +0  untouched$' $C $D || { ok=0; why="$why destination-rows"; }
grep -q "^  error for $C, $D: channel setup: the source opened more than 2 channel" /tmp/toolch1.dst ||
	{ ok=0; why="$why destination-error-line"; }
rows /tmp/toolch1.src 'RUNNING .*device resumed \(RUNNING\)$' $A $B || { ok=0; why="$why source-rows"; }
grep -q "^  error for $A, $B: " /tmp/toolch1.src || { ok=0; why="$why source-error-line"; }
guest-vfio check $A 18 || { ok=0; why="$why A-lost-state"; }
guest-vfio check $C 19 || { ok=0; why="$why C-touched"; }
[ $ok = 1 ] && result tool-channels-source-opens-more PASS ||
	result tool-channels-source-opens-more FAIL "$why"
exit 0
