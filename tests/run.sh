#!/usr/bin/env bash
# Runs every test of sipha and closes with "N passed, N failed[, N skipped]".
#
#   tests/run.sh            all suites
#   tests/run.sh unit bpf   only these suites (unit, bpf, integration)
#
# Counting: a cmocka binary contributes its own test cases (from its
# "[  PASSED  ]"/"[  FAILED  ]" summary); an integration script contributes
# one case per "PASS name"/"FAIL name" line it prints (tests/integration/lib.sh).
# A program that exits non-zero without reporting a failure counts as one
# failure; exit 77 is a skip and never counts as passed.
set -u
cd "$(dirname "$0")/.."
B=build
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf integration)

passed=0 failed=0 skipped=0
failures=()
logdir=$B/test-logs
mkdir -p "$logdir"

account() { # name rc logfile
	local name=$1 rc=$2 log=$3 p f
	if [ "$rc" -eq 77 ]; then
		skipped=$((skipped + 1))
		echo "SKIP  $name: $(tail -n 1 "$log")"
		return
	fi
	p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	p=$((p + $(grep -c '^PASS ' "$log")))
	f=$((f + $(grep -c '^FAIL ' "$log")))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
		echo "FAIL  $name ($p passed, $f failed) — log: $log"
		grep -E '^FAIL |\[  FAILED  \]|\[  ERROR   \]|ERROR:|Sanitizer|runtime error' "$log" | head -20 | sed 's/^/      /'
	else
		echo "ok    $name ($p passed)"
	fi
}

run_one() { # name timeout cmd...
	local name=$1 to=$2
	shift 2
	local log=$logdir/$(echo "$name" | tr '/ ' '__').log
	timeout --kill-after=10 "$to" "$@" >"$log" 2>&1
	account "$name" $? "$log"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export SIPHA_RFC4475_DIR=${SIPHA_RFC4475_DIR:-$(pwd)/tests/data/rfc4475}

for s in "${suites[@]}"; do
	case $s in
	unit)
		for t in $B/tests/unit/test_*; do
			[ -x "$t" ] && run_one "unit/${t##*/}" 300 "$t"
		done
		;;
	bpf)
		mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null
		for t in $B/tests/bpf/test_*; do
			[ -x "$t" ] && run_one "bpf/${t##*/}" 300 "$t"
		done
		;;
	integration)
		# The daemon under test is the sanitizer build; stop_siphad
		# fails a test whose daemon log has a sanitizer report.
		[ -x "$B/siphad-san" ] && export SIPHAD=${SIPHAD:-$B/siphad-san}
		for t in tests/integration/test_*.sh; do
			[ -f "$t" ] && run_one "integration/${t##*/}" 600 bash "$t"
		done
		;;
	*)
		echo "run.sh: unknown suite '$s' (unit, bpf, integration)" >&2
		exit 2
		;;
	esac
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
