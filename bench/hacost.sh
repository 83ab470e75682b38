#!/usr/bin/env bash
# What hot standby costs: the same call load through a node alone, through
# an active node with a warm standby (HA link, no replication), and with a
# hot standby (every call change — created, ringing, answered, ACKed,
# released — and every registration streamed).  On loopback, one run, side
# by side.
#
#   bench/hacost.sh [CALLS] [RATE]
#
# Reports siphad CPU-seconds per 1,000 calls on the active node (and on the
# standby), the largest sync_lag seen (records sent but not yet acknowledged,
# sampled every 50 ms), and failed calls.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-6000}
rate=${2:-500}
. "$(dirname "$0")/lib.sh"
bench_init hacost 45000

conf() { # NAME SIPPORT HA(own) HA(peer) REDUNDANCY|none|hotkey ROLE
	local red=$5
	[ "$red" = hotkey ] && red=hot
	{
		printf '[node]\nid = %s\nrole = %s\nlog_level = warn\nstate_dir = %s\n' "$1" "$6" "$dir/st-$1"
		[ "$5" != none ] && printf 'redundancy = %s\n' "$red"
		printf '[sip]\nlisten = 127.0.0.1:%s\ndomain = sipha.test\n' "$2"
		printf '[control]\nsocket = %s/%s.sock\n' "$dir" "$1"
		[ "$5" != none ] && printf '[ha]\nlisten = 127.0.0.1:%s\npeer = 127.0.0.1:%s\nheartbeat_ms = 50\ntimeout_ms = 200\n' "$3" "$4"
		[ "$5" = hotkey ] && printf 'key_file = %s/ha.key\n' "$dir"
		printf '[dn]\n3000 = sip:127.0.0.1:%s\n' "$((base + 9))"
	} >"$dir/$1.conf"
}
hz=$(getconf CLK_TCK)

sipp -sn uas -p $((base + 9)) -i 127.0.0.1 -nostdin >/dev/null 2>&1 &
pids+=($!)

echo "machine: $(nproc) CPUs, $(uname -r); command: bench/hacost.sh $n $rate"
echo
echo "| setup | calls ok | failed | active CPU-s per 1k calls | standby CPU-s per 1k calls | max sync_lag |"
echo "|---|---|---|---|---|---|"
port=$((base + 20))
head -c 32 /dev/urandom >"$dir/ha.key"
chmod 600 "$dir/ha.key"
for mode in none warm hot hotkey; do
	rm -rf "$dir"/st-* "$dir"/*.sock
	conf a $base $((base + 1)) $((base + 2)) $mode primary
	$B/siphad -c "$dir/a.conf" 2>"$dir/a-$mode.log" &
	apid=$!
	pids+=($apid)
	bpid=
	if [ $mode != none ]; then
		conf b $((base + 5)) $((base + 2)) $((base + 1)) $mode backup
		sleep 0.3
		$B/siphad -c "$dir/b.conf" 2>"$dir/b-$mode.log" &
		bpid=$!
		pids+=($bpid)
	fi
	for _ in $(seq 100); do
		s=$($B/siphactl -s "$dir/a.sock" status --json 2>/dev/null || true)
		if [ $mode = none ]; then [ -n "$s" ] && break; fi
		[ "$(jq -r .peer_connected <<<"${s:-{\}}")" = true ] && break
		sleep 0.05
	done
	a0=$(ticks $apid)
	b0=$([ -n "$bpid" ] && ticks $bpid || echo 0)
	(cd "$dir" && exec sipp 127.0.0.1:$base -sn uac -s 3000 -m "$n" -r "$rate" -d 200 -p $port \
		-nostdin -timeout 120 -trace_stat -stf "uac-$mode.csv" >/dev/null 2>&1) &
	uac=$!
	maxlag=0
	while kill -0 $uac 2>/dev/null; do
		lag=$($B/siphactl -s "$dir/a.sock" status --json 2>/dev/null | jq -r '.sync_lag // 0')
		[ "${lag:-0}" -gt "$maxlag" ] && maxlag=$lag
		sleep 0.05
	done
	wait $uac || true
	port=$((port + 1))
	a1=$(ticks $apid)
	b1=$([ -n "$bpid" ] && ticks $bpid || echo 0)
	ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]+0}' "$dir/uac-$mode.csv")
	bad=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["FailedCall(C)"]+0}' "$dir/uac-$mode.csv")
	acpu=$(awk -v d=$((a1 - a0)) -v hz=$hz -v n=$ok 'BEGIN{printf "%.3f", n ? d / hz / n * 1000 : 0}')
	bcpu=$([ -n "$bpid" ] && awk -v d=$((b1 - b0)) -v hz=$hz -v n=$ok 'BEGIN{printf "%.3f", n ? d / hz / n * 1000 : 0}' || echo -)
	case $mode in
	none) label="alone (no [ha])" ;;
	hotkey) label="hot standby, authenticated link ([ha] key_file)" ;;
	*) label="$mode standby" ;;
	esac
	echo "| $label | $ok | $bad | $acpu | $bcpu | $([ "${mode#hot}" != "$mode" ] && echo $maxlag || echo -) |"
	kill $apid ${bpid:-} 2>/dev/null || true
	wait $apid ${bpid:-} 2>/dev/null || true
done
