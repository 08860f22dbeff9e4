# Runs inside the test guest (busybox sh): the library's integration cases, one
# /tests/transfer run per line of the cases file ("name arg arg ...", made on the host by
# transfer-cases.py from meson's introspection; "#" lines say what was scaled for TCG).
# Prints "VU-TEST name PASS|FAIL seconds"; the host checks that every case reported.
# Usage: sh guest-transfer.sh CASES_FILE
uptime_cs() { tr -d . < /proc/uptime | cut -d' ' -f1; } # centiseconds since boot
status=0
while read -r name args; do
	case $name in
	'#'*) echo "VU-NOTE $name $args"; continue ;;
	'') continue ;;
	esac
	t0=$(uptime_cs)
	# The program arms alarm(600) itself; TCG makes a hang cost minutes, so bound it tighter.
	timeout 120 /tests/transfer $args > /tmp/transfer.out 2>&1 </dev/null
	rc=$?
	t1=$(uptime_cs)
	secs=$(( (t1 - t0) / 100 )).$(( (t1 - t0) % 100 / 10 ))
	if [ $rc = 0 ]; then
		echo "VU-TEST $name PASS ${secs}s: $(tail -1 /tmp/transfer.out)"
	else
		echo "VU-TEST $name FAIL ${secs}s (exit $rc): $args"
		sed 's/^/  /' /tmp/transfer.out
		status=1
	fi
done < "$1"
exit $status
