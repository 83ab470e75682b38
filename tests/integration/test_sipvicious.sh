#!/usr/bin/env bash
# sipvicious (Debian's 0.3.3) against a node with [auth], in namespaces:
# siphad in "srv" with XDP on its veth end, the tools in "cli".
#
# - svwar scans extensions 995..1010 (1001 and 1002 exist, as users and as
#   extensions) with REGISTER, with REGISTER --force, with OPTIONS and with
#   INVITE: each scan must report every extension alike or none at all.
# - svcrack tries a wordlist without the password against extension 1002: no
#   password found, nothing authenticated, the source banned after ban_after
#   failures and in the XDP blocklist, its further attempts dropped by XDP;
#   another address of the same namespace still registers.
#
# [auth] offers MD5 only: svcrack 0.3.3 knows nothing else and fails on a
# SHA-256 challenge offered first.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd svwar svcrack sipp jq ip nsenter bpftool
require_bin "$SIPHAD" "$SIPHACTL"
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios

BAN_AFTER=5
ID=tv$$
auth_xdp_node sipvicious "$ID" Zq7-secret-1002 $BAN_AFTER 60000

# sv NAME TOOL ARGS...: a sipvicious tool in cli, bounded; output in NAME.out.
# Its session files go to $T_TMP (HOME).
sv() {
	local name=$1
	shift
	HOME=$T_TMP timeout -k 2 40 ip netns exec "$CLI_NS" "$@" "udp://$SRV_IP:5060" \
		>"$T_TMP/$name.out" 2>&1
}

# rows NAME: the "| ext | auth |" rows of svwar's result table.
rows() {
	awk -F'|' 'NF == 4 && $2 ~ /^ *[0-9]+ *$/ { gsub(/ /, "", $2); gsub(/ /, "", $3); print $2, $3 }' \
		"$T_TMP/$1.out"
}

# alike NAME: none reported, or all 16 with one and the same answer.
alike() {
	local n kinds
	n=$(rows "$1" | wc -l)
	kinds=$(rows "$1" | awk '{ print $2 }' | sort -u | wc -l)
	info "svwar $1: $n extensions reported ($(rows "$1" | tr '\n' ' '))"
	[ "$n" -eq 0 ] || { [ "$n" -eq 16 ] && [ "$kinds" -eq 1 ]; }
}

sv war_register svwar -e 995-1010 -m REGISTER --maximumtime 3
check "sipvicious: svwar REGISTER scan ran" grep -q . "$T_TMP/war_register.out"
check "sipvicious: svwar REGISTER scan tells no extension apart" alike war_register
sv war_force svwar --force -e 995-1010 -m REGISTER --maximumtime 3
check "sipvicious: svwar --force REGISTER scan tells no extension apart" alike war_force
opt0=$(metric options_answered)
sv war_options svwar -e 995-1010 -m OPTIONS --maximumtime 3
opt=$(($(metric options_answered) - opt0))
check "sipvicious: svwar's OPTIONS were answered ($opt)" test "$opt" -ge 1
check "sipvicious: svwar OPTIONS scan tells no extension apart" alike war_options
# Every initial INVITE from an untrusted source is challenged, whoever it
# names: an extension and a made-up one get the same 407.
sv war_invite svwar -e 995-1010 -m INVITE --maximumtime 3
check "sipvicious: svwar INVITE scan ran" grep -q . "$T_TMP/war_invite.out"
check "sipvicious: svwar INVITE scan tells no extension apart" alike war_invite
check_eq "sipvicious: scans are no failed authentications" "$(metric auth_failures)" 0
# Why it found nothing: a made-up extension got the very challenge a real one
# gets, so svwar cannot tell, and says so.
check "sipvicious: svwar saw an unknown extension challenged like a known one" \
	grep -q "authentication request for an unknown extension" "$T_TMP/war_register.out"
check "sipvicious: svwar --force saw the same 401 for every extension" \
	grep -q "Bad user = SIP/2.0 401" "$T_TMP/war_force.out"

# svcrack: 12 wrong passwords for 1002.
for i in $(seq 1 12); do echo "guess-$i"; done >"$T_TMP/words"
x0=$(ctl xdp --json | jq .counters.drop_blocklist)
sv crack svcrack -u 1002 -d "$T_TMP/words" --maximumtime 3
info "svcrack: $(grep -v '^$' "$T_TMP/crack.out" | tail -n 2 | tr '\n' '|')"
# It ends saying so, or, once the ban silences the node before its last
# words, that no response came any more.
check "sipvicious: svcrack ran and found nothing" \
	grep -qE "found nothing|since we last received a response" "$T_TMP/crack.out"
check_eq "sipvicious: svcrack reports no password" "$(grep -c 'Zq7-secret-1002' "$T_TMP/crack.out")" 0
check_eq "sipvicious: nothing authenticated" "$(metric auth_ok)" 0
check_eq "sipvicious: $BAN_AFTER failures, then the ban" "$(metric auth_failures) $(metric auth_bans)" \
	"$BAN_AFTER 1"
check "sipvicious: the ban names svcrack's address" grep -q "auth: $ATT_IP blocked" "$(siphad_log)"
block4_att() {
	nsenter -t "$PIN_HELPER" -m bpftool -j map dump pinned "/sys/fs/bpf/sipha/$ID/sxdp_block4" |
		jq -e 'length == 1 and (.[0].key | .[0:8] == ["0x20", "0x00", "0x00", "0x00", "0x0a", "0x63", "0x00", "0x42"])' >/dev/null
}
check "sipvicious: $ATT_IP/32 is the only entry of the XDP blocklist" block4_att
x1=$(ctl xdp --json | jq .counters.drop_blocklist)
check "sipvicious: svcrack's later attempts dropped by XDP ($((x1 - x0)))" test $((x1 - x0)) -ge 1
check_eq "sipvicious: none reached siphad's own banned-drop" "$(metric auth_banned_dropped)" 0

(cd "$T_TMP" && timeout 30 ip netns exec "$CLI_NS" sipp -sf "$SCN/register_auth.xml" -s 1001 \
	-au 1001 -ap secret-1001 -m 1 -i $GOOD_IP -p 5062 -recv_timeout 1000 -timeout 20 \
	-nostdin "$SRV_IP:5060" >/dev/null 2>&1)
check_eq "sipvicious: another address registers meanwhile" "$?" 0

kill -TERM "$PIN_HELPER" 2>/dev/null
wait_pid "$PIN_HELPER" 5
stop_siphad
finish
