#!/usr/bin/env bash
# HA pair in namespaces with an IPv6 VIP: everything IPv6 (ULA fd99::/64,
# the HA link too).  20 calls over UDP through the VIP, kill -9 of the
# active node: the standby's neighbour-solicitation probe gets no answer
# (the dead node's XDP drops solicitations for the VIP once its heartbeat
# stamp is stale), it adds the VIP and sends unsolicited neighbour
# advertisements, so the client's neighbour cache moves to it before the
# client sends anything; every BYE completes through it and a new call
# succeeds.  Then the killed node restarts, finds the VIP still on its
# interface, joins as standby and drops it: the VIP on exactly one node.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq ethtool bpftool nft
require_bin "$SIPHAD" "$SIPHACTL"
if [ ! -f "$T_BUILD/sipha_xdp.bpf.o" ]; then
	fail "ha_v6: $T_BUILD/sipha_xdp.bpf.o" "missing; run make first"
	finish
fi

T_NAME=ha_v6
S=ha_v6
VIP=fd99::100
CALLS=20
HA_VIP=$VIP
HA_VIP_LEN=64
HA_SIP_LISTEN="[::]:5060"
HA_CALLEE="[fd99::10]:5070"

# vip_on NS: how many times the VIP is on NS's eth0 (0 or 1)
vip_on() { ns_exec "$1" ip -br -6 addr show eth0 | grep -c "$VIP/"; }
holders() { echo "$(vip_on a)/$(vip_on b)"; }
holders_are() { [ "$(holders)" = "$1" ]; }
mac_of() { ns_exec "$1" cat /sys/class/net/eth0/address; }
# vip_mac: the link-layer address c's neighbour cache has for the VIP
vip_mac() { ns_exec c ip -6 neigh show "$VIP" dev eth0 | awk '{for(i=1;i<NF;i++) if ($i == "lladdr") print $(i+1)}'; }
vip_mac_is() { [ "$(vip_mac)" = "$1" ]; }
# orphan_drops NS: the orphan_arp_drop counter (ARP requests and neighbour
# solicitations for the VIP dropped) of the XDP program on NS's eth0.  A
# killed node's program stays attached with its maps; its pins are gone
# with its mount namespace (ip netns exec), so the map is found by the
# program's map ids.
orphan_drops() {
	local idx prog map m
	idx=$(grep -o 'X([A-Z0-9_]*, [a-z0-9_]*)' "$T_ROOT/bpf/sipha_kern_user.h" |
		awk '/orphan_arp_drop/ { print NR - 1 }')
	prog=$(ns_exec "$1" ip -j link show eth0 | jq '.[0].xdp.prog.id // empty')
	[ -n "$prog" ] && [ -n "$idx" ] || return 1
	map=$(for m in $(bpftool -j prog show id "$prog" | jq '.map_ids[]'); do
		bpftool -j map show id "$m"
	done | jq -s '.[] | select(.name == "sxdp_counters") | .id')
	[ -n "$map" ] || return 1
	bpftool -j map lookup id "$map" key "$idx" 0 0 0 | jq '[.formatted.values[].value] | add'
}
# from_counters: "<SIP datagrams c got from the VIP>/<from anywhere else>"
from_counters() {
	local n
	for n in vip other; do
		ns_exec c nft -j list counter inet sipha_src "$n" | jq -j '.nftables[] | .counter.packets // empty'
		[ "$n" = vip ] && printf /
	done
}
uas_listening() { ns_exec c ss -Hlun "( sport = :5070 )" | grep -q .; }
from_vip_only() { [[ $(from_counters) =~ ^[1-9][0-9]*/0$ ]]; }

# uac NAME PORT CALLS RATE DURATION_MS: a UAC in c to the VIP over UDP, in
# the background; its PID in UAC_PID, its statistics in $T_TMP/NAME.csv.
uac() {
	(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp "[$VIP]:5060" -sn uac -s 3000 \
		-i fd99::10 -p "$2" -m "$3" -r "$4" -d "$5" -nostdin -timeout 40 -trace_stat -fd 1 \
		-stf "$1.csv" >/dev/null 2>&1) &
	UAC_PID=$!
	T_PIDS+=("$UAC_PID")
}

if ! ha_lan || ! addr_add a eth0 fd99::1/64 || ! addr_add b eth0 fd99::2/64 ||
	! addr_add c eth0 fd99::10/64; then
	fail "$S: topology" "cannot build namespaces"
	finish
fi
# Every SIP datagram the client gets must come from the VIP (sipp, like
# many endpoints, answers to the source of a packet, not to its Via).
if ! ns_exec c nft -f - <<EON; then
table inet sipha_src {
	counter vip {}
	counter other {}
	chain in {
		type filter hook input priority 0; policy accept;
		udp sport 5060 ip6 saddr $VIP counter name "vip"
		udp sport 5060 ip6 saddr != $VIP counter name "other"
	}
}
EON
	fail "$S: nft counters in c" "nft failed"
	finish
fi
ha_conf "$T_TMP/a.conf" a primary "[fd99::1]" "[fd99::2]"
ha_conf "$T_TMP/b.conf" b backup "[fd99::2]" "[fd99::1]"
ha_start_pair "$S" || finish
check_eq "$S: VIP on the primary only" "$(holders)" 1/0

ip netns exec "$(ns_name c)" sipp -sn uas -i fd99::10 -p 5070 -nostdin >/dev/null 2>&1 &
uas=$!
T_PIDS+=("$uas")
wait_until 3 uas_listening
uac calls 5071 $CALLS 20 5000
wait_until 8 field_is a calls $CALLS
wait_until 3 field_is b calls $CALLS
check_eq "$S: $CALLS calls up through the IPv6 VIP and replicated" \
	"$(field_of a calls)/$(field_of b calls)" "$CALLS/$CALLS"
check_eq "$S: the client's neighbour cache has the primary for the VIP" "$(vip_mac)" "$(mac_of a)"

t0=$(date +%s%N)
kill9 a
wait_until 5 field_is b state active
t1=$(date +%s%N)
check_eq "$S: the backup is active after kill -9, with the VIP" "$(state_of b)/$(vip_on b)" active/1
info "takeover seen by the CLI after $(((t1 - t0) / 1000000)) ms"
# The calls are on hold (-d 5000): the client sends nothing now, so only
# an unsolicited advertisement can move its cache.
wait_until 1 vip_mac_is "$(mac_of b)"
check_eq "$S: unsolicited NA: the client's cache has the new active for the VIP" \
	"$(vip_mac)" "$(mac_of b)"
# A fresh solicitation reaches both nodes (multicast): the dead node's
# kernel still has the VIP, only its XDP program keeps it from answering.
d0=$(orphan_drops a)
check "$S: the standby's solicitations for the VIP were dropped by the dead node's XDP (${d0:-?})" \
	test "${d0:-0}" -ge 1
ns_exec c ip -6 neigh flush dev eth0
# a datagram to the discard port makes the kernel solicit the VIP
ns_exec c bash -c "echo >/dev/udp/$VIP/9" 2>/dev/null
wait_until 2 vip_mac_is "$(mac_of b)"
check_eq "$S: a new solicitation is answered by the new active" "$(vip_mac)" "$(mac_of b)"
d1=$(orphan_drops a)
check "$S: the dead node's XDP dropped it ($d0 -> $d1 solicitations dropped)" \
	test "${d1:-0}" -gt "${d0:-0}"

wait_pid "$UAC_PID" 40
check_eq "$S: every call ends with BYE/200 through the new active" \
	"$(stat_of "$T_TMP/calls.csv" 'SuccessfulCall(C)')/$(stat_of "$T_TMP/calls.csv" 'FailedCall(C)')" \
	"$CALLS/0"
uac after 5072 5 10 100
wait_pid "$UAC_PID" 20
check_eq "$S: a new call after the takeover succeeds" \
	"$(stat_of "$T_TMP/after.csv" 'SuccessfulCall(C)')/$(stat_of "$T_TMP/after.csv" 'FailedCall(C)')" \
	"5/0"
check_eq "$S: no call left on the new active" "$(field_of b calls)" 0
check "$S: the client got SIP from the VIP only (from the VIP/elsewhere: $(from_counters))" \
	from_vip_only

# The killed node still has the VIP on its interface; restarted, it asks
# the peer, joins as standby and drops it.
check_eq "$S: VIP on both kernels while the old active is dead" "$(holders)" 1/1
start_siphad -n a -N a "$T_TMP/a.conf" || finish
wait_until 5 field_is a peer_connected true
wait_until 3 holders_are 0/1
check_eq "$S: the restarted node joins as standby, the survivor stays active" \
	"$(state_of a)/$(state_of b)" standby/active
check_eq "$S: the VIP is on exactly one node at the end" "$(holders)" 0/1

kill "$uas" 2>/dev/null
wait "$uas" 2>/dev/null
stop_siphad a
stop_siphad b
finish
