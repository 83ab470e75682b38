#!/usr/bin/env bash
# Call-rate benchmark: sipp UAC -> siphad (B2BUA) -> sipp UAS, on loopback.
#
#   bench/calls.sh [START_RATE] [MAX_RATE] [SECONDS_PER_STEP]
#
# Doubles the call rate from START_RATE until more than 0.1% of calls fail
# or MAX_RATE is passed.  Per step it reports calls/s offered and completed,
# siphad CPU-seconds per 1,000 calls (utime+stime from /proc), and the
# INVITE->200 response-time percentiles sipp measured.  Bounded: every step
# is a fixed number of calls with a timeout.  Results go to stdout as a
# Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

start=${1:-100}
max=${2:-3200}
secs=${3:-5}
B=build
scen=$(pwd)/bench/scenarios/uac_rtd.xml
dir=$(mktemp -d /tmp/sipha-bench.XXXXXX)
base=$((30000 + ($$ % 10000)))
sip_port=$base
uas_port=$((base + 1))
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

[ -x $B/siphad ] || make -s
cat >"$dir/b.conf" <<EOF
[node]
id = bench
log_level = warn
[sip]
listen = 127.0.0.1:$sip_port
domain = sipha.test
[control]
socket = $dir/ctl.sock
[dn]
3000 = sip:127.0.0.1:$uas_port
EOF

$B/siphad -c "$dir/b.conf" 2>"$dir/siphad.log" &
spid=$!
pids+=($spid)
sipp -sn uas -p $uas_port -i 127.0.0.1 -nostdin >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	$B/siphactl -s "$dir/ctl.sock" status >/dev/null 2>&1 && break
	sleep 0.1
done

cpu_ticks() { awk '{print $14 + $15}' /proc/$spid/stat; }
hz=$(getconf CLK_TCK)

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r)"
echo "command: bench/calls.sh $start $max $secs"
echo
echo "| offered calls/s | completed | failed | calls/s achieved | siphad CPU-s per 1k calls | p50 ms | p90 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
rate=$start
port=$((base + 2))
while [ "$rate" -le "$max" ]; do
	n=$((rate * secs))
	t0=$(cpu_ticks)
	w0=$(date +%s.%N)
	rm -f "$dir"/*_rtt.csv "$dir/stat.csv"
	(cd "$dir" && sipp 127.0.0.1:$sip_port -sf "$scen" -s 3000 -m $n -r $rate -d 0 -l $((rate * 2)) \
		-p $port -nostdin -timeout $((secs * 4 + 10)) -trace_stat -stf stat.csv \
		-trace_rtt -rtt_freq 1 >/dev/null 2>&1) || true
	w1=$(date +%s.%N)
	t1=$(cpu_ticks)
	port=$((port + 1))
	ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]+0}' "$dir/stat.csv")
	bad=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["FailedCall(C)"]+0}' "$dir/stat.csv")
	achieved=$(echo "$ok $w0 $w1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
	cpu=$(echo "$t0 $t1 $hz $ok" | awk '{ if ($4 > 0) printf "%.3f", ($2 - $1) / $3 / $4 * 1000; else print "-" }')
	# rtt rows: Date_ms;response_time_ms;rtd_no — rtd 1 is INVITE->200 (sipp
	# measures whole milliseconds)
	pct=$(cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$3 == 1 && $2 ~ /^[0-9.]+$/ {print $2}' | sort -n |
		awk '{v[NR]=$1} END { if (NR == 0) { print "- - -"; exit }
			printf "%.2f %.2f %.2f", v[int(NR*0.5)+ (NR*0.5==int(NR*0.5)?0:1)], v[int(NR*0.9)+(NR*0.9==int(NR*0.9)?0:1)], v[int(NR*0.99)+(NR*0.99==int(NR*0.99)?0:1)] }')
	read -r p50 p90 p99 <<<"$pct"
	echo "| $rate | $ok | $bad | $achieved | $cpu | $p50 | $p90 | $p99 |"
	total=$((ok + bad))
	if [ "$total" -eq 0 ] || [ $((bad * 1000)) -gt "$total" ]; then
		echo
		echo "stopped: more than 0.1% of calls failed at $rate calls/s"
		break
	fi
	rate=$((rate * 2))
done
$B/siphactl -s "$dir/ctl.sock" metrics | grep -E '^sipha_(calls_|loop_nobufs)' | sed 's/^/    /'
