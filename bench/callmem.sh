#!/usr/bin/env bash
# Heap per call: N concurrent calls held through sipha, heap in use
# (sipha_heap_bytes) measured while the set-up transactions live and after
# they have ended (64*T1 = 32 s), against the idle daemon.
#
#   bench/callmem.sh [CALLS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rate=${2:-2000}
B=build
dir=$(mktemp -d /tmp/sipha-mem.XXXXXX)
base=$((40000 + ($$ % 10000)))
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
[ -x $B/siphad ] || make -s
cat >"$dir/m.conf" <<EOF2
[node]
id = mem
log_level = warn
[sip]
listen = 127.0.0.1:$base
domain = sipha.test
[control]
socket = $dir/ctl.sock
[dn]
3000 = sip:127.0.0.1:$((base + 1))
EOF2
$B/siphad -c "$dir/m.conf" 2>"$dir/siphad.log" &
pids+=($!)
sipp -sn uas -p $((base + 1)) -i 127.0.0.1 -nostdin >/dev/null 2>&1 &
pids+=($!)
ctl() { $B/siphactl -s "$dir/ctl.sock" "$@"; }
for _ in $(seq 50); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
gauge() { ctl metrics | awk -v m="sipha_$1" '$1 ~ "^"m"[{]" {print $2}'; }
h0=$(gauge heap_bytes)
ramp=$((n / rate + 1))
hold=$((ramp + 45))
timeout $((hold + 60)) sipp 127.0.0.1:$base -sn uac -s 3000 -m "$n" -r "$rate" -l "$n" \
	-d $((hold * 1000)) -p $((base + 2)) -nostdin -timeout $((hold + 50)) >/dev/null 2>&1 &
cp=$!
echo "machine: $(nproc) CPUs, $(uname -r); command: bench/callmem.sh $n $rate"
echo "| seconds | calls | transactions | heap bytes | heap per call |"
echo "|---|---|---|---|---|"
prev=0
for t in $((ramp + 2)) $((ramp + 40)); do
	sleep $((t - prev))
	prev=$t
	c=$(gauge calls)
	x=$(gauge transactions)
	h=$(gauge heap_bytes)
	echo "| $t | $c | $x | $h | $(((h - h0) / (c > 0 ? c : 1))) |"
done
wait $cp || true
