#!/usr/bin/env bash
# Instructions per REGISTER and per call in siphad: the repeatable number to
# optimise against (it does not depend on the machine's load, unlike CPU
# time).  siphad (build/siphad, one worker, no HA, no XDP) runs under
# valgrind --tool=callgrind; the flows are those of bench/vs-kamailio.sh, at
# rates slow enough for siphad under valgrind (no retransmission):
#
#   register: REGISTERS REGISTERs of a new address of record each, at
#             CG_REG_RATE/s (default 100)
#   calls:    CALLS calls INVITE/100/180/200/ACK, held 1 s, BYE/200, at
#             CG_CALL_RATE/s (default 10)
#
# The count per request depends a little on the rates (the timer wheel's
# ticks are shared by the requests of a millisecond): compare numbers taken
# with the same arguments.
#
# How: callgrind_control zeroes siphad's counters before a flow's sipp run and
# dumps them after it, so a dump holds the instructions (Ir) of exactly that
# run: every message received, parsed, answered and forwarded, the timers
# that ran meanwhile (retransmission timers cancelled, calls held), the loop's
# idle wake-ups.  The idle part is measured alone first (2 s with no traffic)
# and subtracted at its rate per second; what is left, divided by the number
# of completed REGISTERs or calls, is the line printed.  Not in it: freeing
# each transaction when its 32 s wait ends (Timer J/H/I/K), after the run;
# CG_DRAIN=1 measures that too (33 s more per flow).
#
#   bench/callgrind.sh [REGISTERS] [CALLS] [TOP]
#
# Defaults 1000 200 0: about 40 s.  TOP > 0 also prints each flow's TOP
# functions by self Ir (callgrind_annotate).  CG_KEEP=DIR keeps the dumps
# there (kcachegrind DIR/register.out).  Output: one line per flow,
#
#   REGISTER: 123,456 Ir per REGISTER (2000 completed, 0 failed, 0 retransmissions)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

nreg=${1:-1000}
ncall=${2:-200}
top=${3:-0}
reg_rate=${CG_REG_RATE:-100}
call_rate=${CG_CALL_RATE:-10}

for c in valgrind callgrind_control callgrind_annotate sipp; do
	command -v $c >/dev/null || {
		echo "$c is not installed (make deps)" >&2
		exit 1
	}
done
bench_init callgrind 40000
sport=$base
uport=$((base + 1))
pport=$((base + 2))
cport=$((base + 3))
siphad_conf "$dir/siphad.conf" $sport $uport
(cd "$dir" && exec sipp -sn uas -i 127.0.0.1 -p $uport -nostdin </dev/null >/dev/null 2>&1) &
pids=($!)
valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" $B/siphad -c "$dir/siphad.conf" \
	2>"$dir/valgrind.log" &
vg=$!
pids+=("$vg")
sip_wait $sport $pport 60 || {
	echo "siphad under callgrind did not answer; its log:" >&2
	tail -n 20 "$dir/valgrind.log" >&2
	exit 1
}
dumps=0

# window CMD...: zeroes siphad's counters, runs CMD, dumps them; sets ir (the
# Ir of the window) and secs (its length).
window() {
	local w0 w1
	callgrind_control -z $vg >/dev/null 2>&1
	w0=$(date +%s.%N)
	"$@"
	w1=$(date +%s.%N)
	callgrind_control -d $vg >/dev/null 2>&1
	dumps=$((dumps + 1))
	ir=$(awk '/^totals:/ { print $2 }' "$dir/cg.out.$dumps")
	secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')
}

# per NAME UNIT COUNT_FIELDS...: the line of one flow from the last window
per() {
	local name=$1 unit=$2 ok=$3 bad=$4 re=$5
	awk -v ir="$ir" -v s="$secs" -v idle="$idle" -v ok="$ok" -v bad="$bad" -v re="$re" \
		-v name="$name" -v unit="$unit" 'BEGIN {
			if (ok <= 0) { printf "%s: nothing completed\n", name; exit 1 }
			v = sprintf("%.0f", (ir - idle * s) / ok)
			while (v ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", v)
			printf "%s: %s Ir per %s (%d completed, %d failed, %d retransmissions)\n", name, v, unit, ok, bad, re
			if (re > 0 || bad > 0)
				printf "  NOT CLEAN: retransmissions or failures are counted in; run again on a quieter machine or at a lower CG_*_RATE\n"
		}'
	[ -z "${CG_KEEP:-}" ] || cp "$dir/cg.out.$dumps" "$CG_KEEP/$6.out"
	if [ "$top" -gt 0 ]; then
		# (a dump taken mid-run charges main and its callers 100%: left out)
		callgrind_annotate --inclusive=no --threshold=100 "$dir/cg.out.$dumps" 2>/dev/null |
			awk -v top="$top" '/^-+$/ { sep++; next }
				sep >= 4 && NF && !/\(100\.0%\)/ && n++ < top { print "    " $0 }' || true
	fi
}

# flow NAME UNIT FLOW RATE COUNT PORT: one flow measured (and drained)
flow() {
	local ok bad re
	window sipp_flow "$3" "$4" "$5" $sport "$6" "$3.stat"
	read -r ok bad re < <(sipp_stat "$dir/$3.stat" 'SuccessfulCall(C)' 'FailedCall(C)' 'Retransmissions(C)')
	per "$1" "$2" "$ok" "$bad" "$re" "$3"
	if [ "${CG_DRAIN:-0}" = 1 ]; then
		window sleep 33
		per "$1 (expiry 33 s after)" "$2" "$ok" 0 0 "$3-drain"
	fi
}

window sleep 2
idle=$(awk -v ir="$ir" -v s="$secs" 'BEGIN { printf "%.0f", ir / s }')
echo "siphad $(git rev-parse --short HEAD 2>/dev/null || echo '?') under callgrind; idle $idle Ir/s subtracted"
flow REGISTER REGISTER register "$reg_rate" "$nreg" $cport
flow call call calls "$call_rate" "$ncall" $((cport + 1))
