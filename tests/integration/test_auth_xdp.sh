#!/usr/bin/env bash
# The XDP side of an [auth] ban, in namespaces: siphad in "srv" with XDP
# attached natively to its veth end and digest auth on (ban_after 5,
# ban_ms 4000); the attacker and an honest phone in "cli".
#
# 1. The attacker (sipp, wrong password) fails ban_after times: one ban, its
#    address in siphad's pinned IPv4 blocklist (read with bpftool through
#    siphad's mount namespace).
# 2. Then it sends exactly N REGISTERs (udpflood): XDP's drop_blocklist grows
#    by exactly N, while siphad's UDP receive count and its own drop count of
#    banned sources do not move at all.
# 3. Meanwhile the honest phone registers with the right password.
# 4. Once ban_ms has passed the entry leaves the map and the same address
#    is answered again (10 OPTIONS, 10 answers, no XDP drop).
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq ip nsenter bpftool
UDPFLOOD=${UDPFLOOD:-$T_BUILD/tests/tools/udpflood}
require_bin "$SIPHAD" "$SIPHACTL" "$UDPFLOOD"
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios

N=500
BAN_AFTER=5
ID=ta$$
auth_xdp_node "auth xdp" "$ID" secret-1002 $BAN_AFTER 4000
block4() { # entries in the IPv4 blocklist
	nsenter -t "$PIN_HELPER" -m bpftool -j map dump pinned "/sys/fs/bpf/sipha/$ID/sxdp_block4" |
		jq length
}
block4_has() { # ADDR: the /32 of ADDR is in the map
	local hex
	hex=$(printf '"0x%02x",' ${1//./ })
	nsenter -t "$PIN_HELPER" -m bpftool -j map dump pinned "/sys/fs/bpf/sipha/$ID/sxdp_block4" |
		jq -e --arg k "[\"0x20\",\"0x00\",\"0x00\",\"0x00\",${hex%,}]" \
			'any(.[]; (.key | tostring) == ($k | fromjson | tostring))' >/dev/null
}
xsnap() { ctl xdp --json | jq -c .counters >"$1"; }
xdelta() {
	jq -n -r --slurpfile a "$1" --slurpfile b "$2" --arg k "$3" '$b[0][$k] - $a[0][$k]'
}
mdelta() {
	echo $(($(metric_from "$2" "$3") - $(metric_from "$1" "$3")))
}

# reg NAME SRC USER PASS COUNT: sipp REGISTERs with digest from SRC; RC
reg() {
	(cd "$T_TMP" && timeout 30 ip netns exec "$CLI_NS" sipp -sf "$SCN/register_auth.xml" \
		-s "$3" -au "$3" -ap "$4" -m "$5" -r 50 -i "$2" -p 5062 -recv_timeout 1000 \
		-timeout 20 -nostdin -trace_stat -stf "$1.csv" "$SRV_IP:5060" >/dev/null 2>&1)
	RC=$?
}

check_eq "auth xdp: blocklist empty at start" "$(block4)" 0

# 1. ban_after wrong passwords.
reg guess $ATT_IP 1002 not-the-password $BAN_AFTER
check_eq "auth xdp: $BAN_AFTER guesses, none registered" \
	"$(stat_of "$T_TMP/guess.csv" 'SuccessfulCall(C)')" 0
check_eq "auth xdp: $BAN_AFTER failures counted" "$(metric auth_failures)" $BAN_AFTER
check_eq "auth xdp: one ban" "$(metric auth_bans)" 1
check "auth xdp: $ATT_IP/32 in the XDP blocklist" block4_has $ATT_IP
check_eq "auth xdp: and nothing else" "$(block4)" 1
not_in() { ! block4_has "$1"; }
check "auth xdp: $GOOD_IP not in the blocklist" not_in $GOOD_IP

# 2. Exactly N datagrams from the banned address.
sleep 0.5 # sipp's last retransmissions settle
xsnap "$T_TMP/x0"
metrics_snapshot "$T_TMP/m0"
ip netns exec "$CLI_NS" "$UDPFLOOD" -T 20 -n $N -r 5000 -k register -u 1002 -s $ATT_IP \
	$SRV_IP:5060 >"$T_TMP/flood.out" 2>&1
check_eq "auth xdp: $N REGISTERs sent from the banned address" \
	"$(awk '$1 == "sent" { print $2 }' "$T_TMP/flood.out")" $N
sleep 0.3
xsnap "$T_TMP/x1"
metrics_snapshot "$T_TMP/m1"
check_eq "auth xdp: drop_blocklist grew by exactly $N" "$(xdelta "$T_TMP/x0" "$T_TMP/x1" drop_blocklist)" $N
check_eq "auth xdp: none of them classified past the blocklist" \
	"$(xdelta "$T_TMP/x0" "$T_TMP/x1" register)" 0
check_eq "auth xdp: siphad received none of them (transport_udp_in)" \
	"$(mdelta "$T_TMP/m0" "$T_TMP/m1" transport_udp_in)" 0
check_eq "auth xdp: siphad's own drop of banned sources did not move" \
	"$(mdelta "$T_TMP/m0" "$T_TMP/m1" auth_banned_dropped)" 0

# 3. Another source is served during the ban.
reg good $GOOD_IP 1001 secret-1001 1
check_eq "auth xdp: $GOOD_IP registers with the right password during the ban" "$RC" 0
check_eq "auth xdp: 1001 registered" "$(ctl status --json | jq .registrations)" 1
check "auth xdp: $ATT_IP still blocked" block4_has $ATT_IP

# 4. After ban_ms the address is served again.
unbanned() { [ "$(metric auth_banned)" = 0 ] && [ "$(block4)" = 0 ]; }
check "auth xdp: the ban ends after ban_ms (map entry removed)" wait_until 8 unbanned
xsnap "$T_TMP/x2"
opt0=$(metric options_answered)
ip netns exec "$CLI_NS" "$UDPFLOOD" -T 10 -n 10 -r 100 -k options -s $ATT_IP \
	$SRV_IP:5060 >"$T_TMP/after.out" 2>&1
ten() { [ $(($(metric options_answered) - opt0)) -eq 10 ]; }
check "auth xdp: after the ban, 10 OPTIONS from $ATT_IP answered" wait_until 3 ten
xsnap "$T_TMP/x3"
check_eq "auth xdp: after the ban, no blocklist drop" "$(xdelta "$T_TMP/x2" "$T_TMP/x3" drop_blocklist)" 0
reg back $ATT_IP 1002 secret-1002 1
check_eq "auth xdp: $ATT_IP registers with the right password after the ban" "$RC" 0

kill -TERM "$PIN_HELPER" 2>/dev/null
wait_pid "$PIN_HELPER" 5
stop_siphad
finish
