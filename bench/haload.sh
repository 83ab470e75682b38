#!/usr/bin/env bash
# Does the HA clock hold under load?  A hot pair at HEARTBEAT/TIMEOUT in
# network namespaces (the integration harness's), sipp setting up calls
# through the VIP at RATE per second and holding each HOLD_S seconds (so
# RATE × HOLD_S are up at once), and a client listing every call on the
# active node (`siphactl calls --json`) in a loop, all on this machine, for
# SECONDS.  Nothing is killed: every takeover, every peer declared dead or
# gone and every missed heartbeat is a false alarm.
#
#   bench/haload.sh [SECONDS] [HB/TIMEOUT] [RATE] [HOLD_S]
#   bench/haload.sh 600 10/30 1000 20        (the default: issue 14's target)
#
# Prints the machine, the command, and a Markdown row per node: the false
# alarms (takeovers, peer dead, peer gone, HA clock silences, link downs),
# the link heartbeats that were late on the SIP loop and the link silences
# the HA clock forgave, the calls sipp completed and failed, and how many listings
# ran and how long the longest took.  Bounded: sipp stops after its call
# count, everything the harness started is killed by PID on exit.
set -u
cd "$(dirname "$0")/.." || exit 2
. tests/integration/lib.sh
require_root
require_bin "$SIPHAD" "$SIPHACTL"
require_cmd sipp jq

T_NAME=haload
SECS=${1:-600}
TIMERS=${2:-10/30}
RATE=${3:-1000}
HOLD=${4:-20}
case "$SECS/$TIMERS/$RATE/$HOLD" in
*[!0-9/]* | */*/*/*/*/*)
	echo "usage: bench/haload.sh [SECONDS] [HB/TIMEOUT] [RATE] [HOLD_S]" >&2
	exit 2
	;;
esac
HB=${TIMERS%/*}
TO=${TIMERS#*/}
VIP=$HA_VIP
say() { echo "$*" >&2; }

# counters NODE: takeovers peer_dead peer_gone heartbeats_missed downs
# clock_silences silences_forgiven
counters() {
	local f=$T_TMP/.c.$1 m v out=
	metrics_snapshot "$f" "$1" || {
		echo "? ? ? ? ? ? ?"
		return
	}
	for m in ha_takeovers ha_link_peer_dead ha_link_peer_gone ha_link_heartbeats_missed \
		ha_link_downs ha_clock_silences ha_link_silences_forgiven; do
		v=$(metric_from "$f" "$m") || v="?"
		out="$out $v"
	done
	echo "${out# }"
}

ha_lan || exit 1
addr_add a eth0 10.99.0.1/24 && addr_add b eth0 10.99.0.2/24 && addr_add c eth0 10.99.0.10/24 ||
	exit 1
ha_conf "$T_TMP/a.conf" "hla-$$" primary 10.99.0.1 10.99.0.2 hot "$HB" "$TO"
ha_conf "$T_TMP/b.conf" "hlb-$$" backup 10.99.0.2 10.99.0.1 hot "$HB" "$TO"
ha_start_pair haload || exit 1

calls=$((RATE * SECS))
ip netns exec "$(ns_name c)" sipp -sn uas -i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
T_PIDS+=("$!")
(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp "$VIP:5060" -sn uac -s 3000 \
	-i 10.99.0.10 -p 5073 -m "$calls" -r "$RATE" -d $((HOLD * 1000)) \
	-l $((RATE * HOLD * 2)) -nostdin -timeout $((SECS + HOLD + 60)) \
	-trace_stat -fd 1 -stf load.csv >/dev/null 2>&1) &
UAC=$!
T_PIDS+=("$UAC")

a0=$(counters a)
b0=$(counters b)
end=$((SECONDS + SECS + HOLD))
lists=0 longest=0
while [ $SECONDS -lt $end ] && kill -0 "$UAC" 2>/dev/null; do
	t0=${EPOCHREALTIME/./}
	ctl -n a calls --json >/dev/null 2>&1
	t1=${EPOCHREALTIME/./}
	lists=$((lists + 1))
	[ $((t1 - t0)) -gt "$longest" ] && longest=$((t1 - t0))
	sleep 0.2
done
wait_pid "$UAC" $((HOLD + 90))
a1=$(counters a)
b1=$(counters b)
ok=$(stat_of "$T_TMP/load.csv" 'SuccessfulCall(C)')
bad=$(stat_of "$T_TMP/load.csv" 'FailedCall(C)')

delta() { # "x y z" "x' y' z'" -> differences, "?" where unknown
	paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
		awk '{ if ($1 == "?" || $2 == "?") printf "? "; else printf "%d ", $2 - $1 }'
}

echo "machine: $(nproc) CPUs, $(uname -r); command: bench/haload.sh $SECS $TIMERS $RATE $HOLD"
echo "| hb / timeout | calls/s × hold | node | takeovers | peer dead | peer gone | clock silences | link heartbeats missed (forgiven silences) | link downs | calls ok / failed | listings (longest ms) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in a b; do
	d=$(delta "$([ $n = a ] && echo "$a0" || echo "$b0")" "$([ $n = a ] && echo "$a1" || echo "$b1")")
	read -r tk pd pg hm dn cs fg <<<"$d"
	echo "| $TIMERS | $RATE × ${HOLD}s | $n ($(state_of $n)) | $tk | $pd | $pg | $cs | $hm ($fg) | $dn | ${ok:-?} / ${bad:-?} | $lists ($((longest / 1000))) |"
done
