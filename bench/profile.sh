#!/usr/bin/env bash
# Where siphad's CPU goes, per flow: siphad (one worker, no HA, no XDP) under
# `perf record -g` (attached to its process) during the flows of
# bench/vs-kamailio.sh, on loopback, UDP:
#
#   calls:    sipp UAC -> siphad -> sipp UAS, INVITE/100/180/200/ACK, held
#             1 s, BYE/200, at CALL_RATE calls/s for CALL_SECONDS seconds
#   register: a new address of record per REGISTER, at REG_RATE/s for
#             REG_SECONDS seconds
#
# Prints per flow: siphad's CPU per REGISTER or call (schedstat, with perf
# attached: a few per cent above the unprofiled figure), the self time by DSO
# (kernel, libc, libosip2, siphad, other) in per cent and in µs per REGISTER
# or call, and each DSO's top symbols by self time.  perf samples cpu-clock (no hardware counters in
# this VM).  Kernel time on loopback is shared oddly: a datagram siphad sends
# is delivered to sipp's socket in siphad's context, one sipp sends is
# delivered to siphad's in sipp's.
#
#   bench/profile.sh [CALL_RATE] [CALL_SECONDS] [REG_RATE] [REG_SECONDS] [TOP]
#
# Defaults 1000 5 10000 3 8 (TOP symbols of each DSO group): about 20 s.  PERF_KEEP=DIR keeps the perf.data
# files there (perf report -i DIR/calls.data).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

crate=${1:-1000}
csecs=${2:-5}
rrate=${3:-10000}
rsecs=${4:-3}
top=${5:-8}

command -v perf >/dev/null || {
	echo "perf is not installed (make deps)" >&2
	exit 1
}
flows_init profile 38000

# profile FLOW RATE COUNT: a fresh siphad, perf attached for the sipp run.
profile() {
	local flow=$1 rate=$2 n=$3 spid perf c0 c1 ok bad re data=$dir/$1.data
	$B/siphad -c "$dir/siphad.conf" 2>>"$dir/siphad.log" &
	spid=$!
	pids=("$uas" "$spid")
	sip_wait $sport $pport 20 || {
		echo "siphad did not answer" >&2
		exit 1
	}
	perf record -q -g -p $spid -o "$data" >/dev/null 2>"$dir/perf.log" &
	perf=$!
	pids=("$uas" "$spid" "$perf")
	sleep 0.5
	c0=$(cpu_ns $spid)
	sipp_flow "$flow" "$rate" "$n" $sport $cport run.stat
	c1=$(cpu_ns $spid)
	kill -INT $perf
	wait $perf || true
	kill $spid
	wait $spid || true
	pids=("$uas")
	read -r ok bad re < <(sipp_stat "$dir/run.stat" 'SuccessfulCall(C)' 'FailedCall(C)' 'Retransmissions(C)')
	[ "$ok" -gt 0 ] || {
		echo "$flow: nothing completed" >&2
		exit 1
	}
	report "$flow" "$rate" "$ok" "$bad" "$re" $((c1 - c0)) "$data"
	[ -z "${PERF_KEEP:-}" ] || cp "$data" "$PERF_KEEP/$flow.data"
}

# report FLOW RATE OK FAILED RETRANS CPU_NS DATA: the Markdown of one flow:
# self time by DSO group, then each group's top symbols.
report() {
	local flow=$1 ok=$3 us unit=REGISTER
	[ "$flow" = register ] || unit=call
	us=$(awk -v ns="$6" -v ok="$ok" 'BEGIN { printf "%.1f", ns / 1e3 / ok }')
	echo "### $flow at $2/s: $ok completed, $4 failed, $5 retransmissions; siphad $us CPU-µs per $unit (perf attached)"
	echo
	echo "| DSO | self % | µs per $unit |"
	echo "|---|---|---|"
	perf report -i "$7" --stdio --no-children --sort dso -g none 2>/dev/null |
		awk -v us="$us" "$dso_group"'
			/^ *[0-9.]+%/ {
				p = $1; sub(/%/, "", p); g = group($2); s[g] += p
				if (g == "other") od = od (od ? ", " : "") $2
			}
			END {
				n = split("siphad libosip2 libc kernel other", o, " ")
				for (i = 1; i <= n; i++)
					printf "| %s | %.1f | %.2f |\n", o[i] (o[i] == "other" ? " (" od ")" : ""), s[o[i]], s[o[i]] * us / 100
			}'
	echo
	echo "Top $top symbols of each by self time (per cent of all of siphad's samples):"
	echo
	echo "| DSO | self % | symbol |"
	echo "|---|---|---|"
	perf report -i "$7" --stdio --no-children --sort dso,sym -g none 2>/dev/null |
		awk -v top="$top" "$dso_group"'
			/^ *[0-9.]+%/ {
				g = group($2); if (n[g]++ >= top) next
				p = $1; d = $2; $1 = $2 = $3 = ""; sub(/^ +/, "")
				line[g] = line[g] sprintf("| %s | %s | `%s` |\n", (g == "other" ? d : g), p, $0)
			}
			END { printf "%s%s%s%s%s", line["siphad"], line["libosip2"], line["libc"], line["kernel"], line["other"] }'
	echo
}

# dso_group: an awk function naming the group of a DSO
dso_group='function group(d) {
	if (d ~ /kernel/) return "kernel"
	if (d ~ /^libc[.-]/) return "libc"
	if (d ~ /osip/) return "libosip2"
	if (d == "siphad") return "siphad"
	return "other"
}'

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/profile.sh $crate $csecs $rrate $rsecs $top ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
profile register "$rrate" $((rrate * rsecs))
profile calls "$crate" $((crate * csecs))
