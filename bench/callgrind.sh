#!/usr/bin/env bash
# Instructions per REGISTER and per call: the repeatable number to optimise
# against (it does not depend on the machine's load, unlike CPU time).
# siphad (build/siphad, one worker, no HA, no XDP) runs under valgrind
# --tool=callgrind; the flows are those of bench/vs-kamailio.sh, at rates
# slow enough for a server under valgrind (no retransmission):
#
#   register: REGISTERS REGISTERs of a new address of record each, at
#             CG_REG_RATE/s (default 100)
#   calls:    CALLS calls INVITE/100/180/200/ACK, held 1 s, BYE/200, at
#             CG_CALL_RATE/s (default 10)
#
# How: callgrind_control zeroes the server's counters before a flow's sipp
# run and dumps them after it, so a dump holds the instructions (Ir) of
# exactly that run: every message received, parsed, answered and forwarded,
# the timers that ran meanwhile, the loop's idle wake-ups.  The idle part is
# measured alone first (2 s with no traffic) and subtracted at its rate per
# second; what is left, divided by the number of completed REGISTERs or
# calls, is the line printed.  User space only: the kernel's work (system
# calls, UDP) is not counted.  Not in it either: freeing each transaction
# when its 32 s wait ends (Timer J/H/I/K), after the run; CG_DRAIN=1
# measures that too (33 s more per flow).  The count per request depends a
# little on the rates (the timer wheel's ticks are shared by the requests of
# a millisecond): compare numbers taken with the same arguments.
#
#   bench/callgrind.sh [REGISTERS] [CALLS] [TOP]
#
# Defaults 1000 200 0: about 40 s.  CG_SERVER=kamailio measures Kamailio
# instead, all its processes (bench/kamailio/kamailio.cfg, as in
# vs-kamailio.sh); CG_SERVER=both measures both, one after the other, and
# prints the ratios.  TOP > 0 also prints each flow's TOP functions by self Ir
# (callgrind_annotate; of Kamailio's busiest process).  CG_KEEP=DIR keeps
# the dumps there (kcachegrind DIR/siphad-register.PID.out).  Output: one
# line per flow,
#
#   siphad: REGISTER: 183,195 Ir per REGISTER (1000 completed, 0 failed, 0 retransmissions)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

nreg=${1:-1000}
ncall=${2:-200}
top=${3:-0}
reg_rate=${CG_REG_RATE:-100}
call_rate=${CG_CALL_RATE:-10}

for c in valgrind callgrind_control callgrind_annotate; do
	command -v $c >/dev/null || {
		echo "$c is not installed (make deps)" >&2
		exit 1
	}
done
server=${CG_SERVER:-siphad}
if [ "$server" = both ]; then
	# siphad, then Kamailio, then how many times Kamailio's instructions
	# siphad spends
	out=$(mktemp /tmp/sipha-cgboth.XXXXXX)
	trap 'rm -f "$out"' EXIT
	{ CG_SERVER=siphad bench/callgrind.sh "$@" && CG_SERVER=kamailio bench/callgrind.sh "$@"; } | tee "$out"
	awk '$4 == "Ir" { v = $3; gsub(/,/, "", v); ir[$1, $6] = v }
		END {
			n = split("REGISTER call", u, " ")
			for (i = 1; i <= n; i++) if (ir["kamailio:", u[i]] > 0)
				printf "siphad / Kamailio, %s: %.2f× the instructions\n", u[i], ir["siphad:", u[i]] / ir["kamailio:", u[i]]
		}' "$out"
	exit 0
fi
flows_init callgrind 50000
if [ "$server" = kamailio ]; then
	kamailio_args $sport $uport
	cmd=("${kargs[@]}")
else
	cmd=("$B/siphad" -c "$dir/siphad.conf")
fi
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p.out" "${cmd[@]}" >"$dir/valgrind.log" 2>&1 &
vg=$!
pids+=("$vg")
sip_wait $sport $pport 60 || {
	echo "$server under callgrind did not answer; its log:" >&2
	tail -n 20 "$dir/valgrind.log" >&2
	exit 1
}
# every process of the server (Kamailio's main and the children it forked)
mapfile -t procs < <(tree $vg)
pids+=("${procs[@]:1}")
dumps=0

# window CMD...: zeroes the counters of every process of the server, runs
# CMD, dumps them; sets ir (the Ir of the window, all processes), secs (its
# length) and busiest (the dump of the process with the most Ir).
window() {
	local w0 w1 p
	for p in "${procs[@]}"; do callgrind_control -z "$p" >/dev/null 2>&1; done
	w0=$(date +%s.%N)
	"$@"
	w1=$(date +%s.%N)
	for p in "${procs[@]}"; do callgrind_control -d "$p" >/dev/null 2>&1; done
	[ -z "${CG_DEBUG:-}" ] || ls "$dir" >&2
	dumps=$((dumps + 1))
	read -r ir busiest < <(for p in "${procs[@]}"; do
		f=$dir/cg.$p.out.$dumps
		echo "$(awk '/^totals:/ { print $2 }' "$f" 2>/dev/null || echo 0) $f"
	done | awk '{ s += $1; if ($1 >= m) { m = $1; f = $2 } } END { print s + 0, f }')
	secs=$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')
}

# per FLOW OK FAILED RETRANS [WHAT]: the line of one flow from the last window
per() {
	local unit=REGISTER ok=$2 bad=$3 re=$4
	[ "$1" = register ] || unit=call
	awk -v ir="$ir" -v s="$secs" -v idle="$idle" -v ok="$ok" -v bad="$bad" -v re="$re" \
		-v name="$server: $unit${5:-}" -v unit="$unit" 'BEGIN {
			if (ok <= 0) { printf "%s: nothing completed\n", name; exit 1 }
			v = sprintf("%.0f", (ir - idle * s) / ok)
			while (v ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", v)
			printf "%s: %s Ir per %s (%d completed, %d failed, %d retransmissions)\n", name, v, unit, ok, bad, re
			if (re > 0 || bad > 0)
				printf "  NOT CLEAN: retransmissions or failures are counted in; run again on a quieter machine or at a lower CG_*_RATE\n"
		}'
	if [ -n "${CG_KEEP:-}" ]; then
		for p in "${procs[@]}"; do cp "$dir/cg.$p.out.$dumps" "$CG_KEEP/$server-$1${5:+-drain}.$p.out"; done
	fi
	if [ "$top" -gt 0 ]; then
		# (a dump taken mid-run charges main and its callers 100%: left out)
		callgrind_annotate --inclusive=no --threshold=100 "$busiest" 2>/dev/null |
			awk -v top="$top" '/^-+$/ { sep++; next }
				sep >= 4 && NF && !/\(100\.0%\)/ && !/^ *Ir / && n++ < top { print "    " $0 }' || true
	fi
}

# flow FLOW RATE COUNT PORT: one flow measured (and drained)
flow() {
	local ok bad re
	window sipp_flow "$1" "$2" "$3" $sport "$4" "$1.stat"
	read -r ok bad re < <(sipp_stat "$dir/$1.stat" 'SuccessfulCall(C)' 'FailedCall(C)' 'Retransmissions(C)')
	per "$1" "$ok" "$bad" "$re"
	if [ "${CG_DRAIN:-0}" = 1 ]; then
		window sleep 33
		per "$1" "$ok" 0 0 " (timers in the 33 s after)"
	fi
}

window sleep 2
idle=$(awk -v ir="$ir" -v s="$secs" 'BEGIN { printf "%.0f", ir / s }')
echo "$server ($(git rev-parse --short HEAD 2>/dev/null || echo '?'), ${#procs[@]} process(es)) under callgrind; idle $idle Ir/s subtracted"
flow register "$reg_rate" "$nreg" $cport
flow calls "$call_rate" "$ncall" $((cport + 1))
