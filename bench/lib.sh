# Shared by the bench/ scripts: a work directory removed on exit with every
# background process the script started (their PIDs in the array pids),
# and siphad's CPU clock ticks from /proc.
#
#   . "$(dirname "$0")/lib.sh"; bench_init NAME BASE_PORT_RANGE_START
# sets dir (a fresh /tmp/sipha-NAME.XXXXXX), base (a port base, varied by
# PID so that two runs do not collide), B=build and pids=(); builds when the
# daemon is missing.
bench_init() {
	B=build
	dir=$(mktemp -d "/tmp/sipha-$1.XXXXXX")
	base=$(($2 + ($$ % 5000)))
	pids=()
	trap bench_cleanup EXIT
	[ -x $B/siphad ] || make -s
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}

# ticks PID: utime + stime of PID, in clock ticks (getconf CLK_TCK a second).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
