#!/usr/bin/env bash
# What the contact-centre layer costs, side by side in one run on loopback:
#
#   plain     sipp UAC -> siphad -> DN 3000 (static route) -> sipp UAS
#   queued    the same calls dialed to routing point 2000, each routed to
#             3000 by one CTI client (RouteRequest -> RouteCall)
#   monitored queued, and CLIENTS more CTI clients monitoring 2000 (every
#             call's Queued, RouteRequest, Dialing, Ringing, Established,
#             Released reaches each of them)
#
#   bench/cti.sh [CALLS] [RATE] [CLIENTS]      (defaults 3000 300 100)
#
# Reports siphad CPU-seconds per 1,000 calls (utime + stime from /proc),
# failed calls, the CTI events delivered (all clients) and per second, and
# the fewest and most events one monitoring client got (equal when nobody
# fell behind).  Loopback only; every process ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3000}
rate=${2:-300}
clients=${3:-100}
. "$(dirname "$0")/lib.sh"
bench_init cti 40000
[ -x $B/tests/tools/ctimon ] || make -s

cat >"$dir/a.conf" <<EOF
[node]
id = a
log_level = warn
state_dir = $dir/st
[sip]
listen = 127.0.0.1:$base
domain = sipha.test
[control]
socket = $dir/a.sock
[cti]
listen = 127.0.0.1:$((base + 1))
route_timeout_ms = 30000
max_clients = $((clients + 16))
[dn]
2000 = routing-point
3000 = sip:127.0.0.1:$((base + 9))
EOF
hz=$(getconf CLK_TCK)

sipp -sn uas -p $((base + 9)) -i 127.0.0.1 -nostdin >/dev/null 2>&1 &
pids+=($!)

echo "machine: $(nproc) CPUs, $(uname -r); command: bench/cti.sh $n $rate $clients"
echo
echo "| setup | calls ok | failed | siphad CPU-s per 1k calls | CTI events delivered | events/s | per monitoring client (min/max) |"
echo "|---|---|---|---|---|---|---|"
port=$((base + 20))
for mode in plain queued monitored; do
	rm -rf "$dir/st" "$dir/a.sock"
	$B/siphad -c "$dir/a.conf" 2>"$dir/a-$mode.log" &
	apid=$!
	pids+=($apid)
	for _ in $(seq 100); do
		$B/siphactl -s "$dir/a.sock" status >/dev/null 2>&1 && break
		sleep 0.05
	done
	dn=3000
	mon=
	if [ $mode != plain ]; then
		dn=2000
		nc=1
		[ $mode = monitored ] && nc=$((clients + 1))
		$B/tests/tools/ctimon -n $nc -m 2000 -r 3000 -t $((n / rate + 60)) -q 4000 \
			127.0.0.1:$((base + 1)) >"$dir/mon-$mode.out" 2>&1 &
		mon=$!
		pids+=($mon)
		for _ in $(seq 100); do
			grep -q '^ready' "$dir/mon-$mode.out" 2>/dev/null && break
			sleep 0.05
		done
	fi
	a0=$(ticks $apid)
	(cd "$dir" && exec sipp 127.0.0.1:$base -sn uac -s $dn -m "$n" -r "$rate" -d 200 -p $port \
		-nostdin -timeout 120 -trace_stat -stf "uac-$mode.csv" >/dev/null 2>&1) || true
	a1=$(ticks $apid)
	ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]+0}' "$dir/uac-$mode.csv")
	bad=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["FailedCall(C)"]+0}' "$dir/uac-$mode.csv")
	cpu=$(awk -v t=$((a1 - a0)) -v hz="$hz" -v ok="$ok" 'BEGIN{printf "%.3f", ok ? t / hz / ok * 1000 : 0}')
	events=- eps=- mm=-
	if [ -n "$mon" ]; then
		wait "$mon" 2>/dev/null || true
		line=$(tail -n 1 "$dir/mon-$mode.out")
		events=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$line")
		eps=$(sed -n 's/.*events_per_s=\([0-9]*\).*/\1/p' <<<"$line")
		mm="$(sed -n 's/.* min=\([0-9]*\) max=\([0-9]*\).*/\1 \/ \2/p' <<<"$line")"
	fi
	echo "| $mode | $ok | $bad | $cpu | $events | $eps | $mm |"
	kill "$apid" 2>/dev/null || true
	wait "$apid" 2>/dev/null || true
done
