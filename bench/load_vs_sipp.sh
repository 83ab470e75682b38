#!/usr/bin/env bash
# sipha-load against sipp 3.6.1 on the same flow, each tool calling itself
# on loopback (no siphad): a caller (UAC) and a callee (UAS) process each,
#
#   INVITE -> 180 -> 200 -> ACK, hold HOLD_MS, BYE -> 200
#
# RATE calls/s for SECONDS seconds.  Each process runs under /usr/bin/time;
# its user + system CPU seconds are summed per tool, and the script prints
# calls completed per CPU-second of (UAC + UAS) for each tool and the ratio
# sipha-load / sipp.  sipha-load runs twice: with its default --tick-us 1000
# (reads and writes batched once per millisecond while busy) and with
# --tick-us 0 (each datagram handled as it comes).  Bounded: a fixed number of calls, every process under
# `timeout`.  Output is Markdown for docs/BENCHMARKS.md.
#
#   bench/load_vs_sipp.sh [RATE] [SECONDS] [HOLD_MS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rate=${1:-1000}
secs=${2:-10}
hold=${3:-1000}
runs=${4:-1}
n=$((rate * secs))
bound=$((secs + hold / 1000 + 60))

bench_init loadvs 41000
[ -x $B/sipha-load ] || make -s $B/sipha-load
command -v sipp >/dev/null || { echo "sipp is not installed (make deps)" >&2; exit 1; }

# cpu FILE: "user sys" from /usr/bin/time -> their sum
cpu() { tail -n 1 "$1" | awk '{ printf "%.2f", $1 + $2 }'; }

# sipp_run I: one sipp UAS + UAC run; sets SIPP_OK SIPP_FAIL SIPP_CPU_UAC SIPP_CPU_UAS
sipp_run() {
	local i=$1 up=$((base + 10 * $1)) cp=$((base + 10 * $1 + 1)) d=$dir/sipp$1 upid
	mkdir -p "$d"
	(cd "$d" && exec timeout $bound /usr/bin/time -f "%U %S" -o uas.time \
		sipp -sn uas -i 127.0.0.1 -p $up -m $n -nostdin >/dev/null 2>&1) &
	upid=$!
	pids+=($upid)
	sleep 0.5
	(cd "$d" && timeout $bound /usr/bin/time -f "%U %S" -o uac.time \
		sipp -sn uac -i 127.0.0.1 -p $cp -s 3000 -r $rate -m $n -d $hold \
		-l $((rate * (hold / 1000 + 5))) -nostdin -trace_stat -stf stat.csv \
		127.0.0.1:$up >/dev/null 2>&1) || true
	wait $upid || true
	SIPP_OK=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]+0}' "$d/stat.csv")
	SIPP_FAIL=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["FailedCall(C)"]+0}' "$d/stat.csv")
	SIPP_CPU_UAC=$(cpu "$d/uac.time")
	SIPP_CPU_UAS=$(cpu "$d/uas.time")
}

# load_run I TICK_US: the same with sipha-load (both sides --tick-us TICK_US);
# sets LOAD_OK LOAD_FAIL LOAD_CPU_UAC LOAD_CPU_UAS LOAD_P50 LOAD_P99
load_run() {
	local up=$((base + 10 * $1 + 5 + $2 / 1000)) d=$dir/load$1-$2 upid
	mkdir -p "$d"
	timeout $bound /usr/bin/time -f "%U %S" -o "$d/uas.time" \
		$B/sipha-load --uas -i 127.0.0.1 -p $up -m $n -q --tick-us $2 >/dev/null 2>&1 &
	upid=$!
	pids+=($upid)
	sleep 0.5
	timeout $bound /usr/bin/time -f "%U %S" -o "$d/uac.time" \
		$B/sipha-load --uac -i 127.0.0.1 -s 3000 -r $rate -m $n -d $hold -q --json --tick-us $2 \
		127.0.0.1:$up >"$d/uac.json" 2>/dev/null || true
	wait $upid || true
	LOAD_OK=$(jq -r .ok "$d/uac.json")
	LOAD_FAIL=$(jq -r .failed "$d/uac.json")
	LOAD_P50=$(jq -r .setup_us.p50 "$d/uac.json")
	LOAD_P99=$(jq -r .setup_us.p99 "$d/uac.json")
	LOAD_CPU_UAC=$(cpu "$d/uac.time")
	LOAD_CPU_UAS=$(cpu "$d/uas.time")
}

per_cpu() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { c = a + b; printf "%.0f", (c > 0 ? n / c : 0) }'; }

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r)"
echo "command: bench/load_vs_sipp.sh $rate $secs $hold $runs ($n calls per run, hold $hold ms)"
echo "sipp: $(sipp -v 2>&1 | sed -n 's/.*\(SIPp v[^ ]*\).*/\1/p' | head -1)"
echo
echo "| run | tool | calls ok | failed | CPU-s UAC | CPU-s UAS | calls per CPU-second |"
echo "|---|---|---|---|---|---|---|"
sum_sipp=0 sum_load=0 sum_load0=0
for ((r = 1; r <= runs; r++)); do
	sipp_run $r
	s=$(per_cpu "$SIPP_OK" "$SIPP_CPU_UAC" "$SIPP_CPU_UAS")
	echo "| $r | sipp 3.6.1 | $SIPP_OK | $SIPP_FAIL | $SIPP_CPU_UAC | $SIPP_CPU_UAS | $s |"
	load_run $r 1000
	l=$(per_cpu "$LOAD_OK" "$LOAD_CPU_UAC" "$LOAD_CPU_UAS")
	echo "| $r | sipha-load (default, --tick-us 1000) | $LOAD_OK | $LOAD_FAIL | $LOAD_CPU_UAC | $LOAD_CPU_UAS | $l |"
	p_tick="p50 $LOAD_P50 us, p99 $LOAD_P99 us"
	load_run $r 0
	l0=$(per_cpu "$LOAD_OK" "$LOAD_CPU_UAC" "$LOAD_CPU_UAS")
	echo "| $r | sipha-load --tick-us 0 | $LOAD_OK | $LOAD_FAIL | $LOAD_CPU_UAC | $LOAD_CPU_UAS | $l0 |"
	p_0="p50 $LOAD_P50 us, p99 $LOAD_P99 us"
	sum_sipp=$((sum_sipp + s))
	sum_load=$((sum_load + l))
	sum_load0=$((sum_load0 + l0))
done
echo
awk -v s=$sum_sipp -v l=$sum_load -v z=$sum_load0 -v r=$runs 'BEGIN {
	printf "mean calls per CPU-second: sipp %.0f, sipha-load %.0f (ratio %.1fx), sipha-load --tick-us 0 %.0f (ratio %.1fx)\n",
		s / r, l / r, (s > 0 ? l / s : 0), z / r, (s > 0 ? z / s : 0) }'
echo "sipha-load set-up INVITE->200 in the last run (the callee's tick adds to it): default $p_tick; --tick-us 0 $p_0"
