#!/usr/bin/env bash
# Strangers on the HA link, in namespaces: a hot pair (a active, b standby,
# the link authenticated with [ha] key_file) and an attacker who has read
# docs/HA-PROTOCOL.md (tests/tools/haforge).  From a third host it claims to
# be b, active, with a huge epoch; from b's own address (the attacker shares
# b's namespace, as one spoofing b's IP would) it does the same without the
# key, with a random AUTH, and with an absurd epoch.  Each attempt is closed
# and counted; the pair's state never moves: a stays active with the VIP, b
# stays its standby in sync, the epoch is unchanged, calls go on.  Forged
# HA clock datagrams (UDP, same port) from b's address and from the third
# host are refused and counted.  Then a
# node with a key meets one without: the link never comes up, and says why.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq
FORGE=$T_BUILD/tests/tools/haforge
require_bin "$SIPHAD" "$FORGE"

ha_lan || { fail "ha forge: topology" "cannot build namespaces"; finish; }
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
addr_add c eth0 10.99.0.10/24
ha_conf "$T_TMP/a.conf" a primary 10.99.0.1 10.99.0.2
ha_conf "$T_TMP/b.conf" b backup 10.99.0.2 10.99.0.1
ha_start_pair "ha forge" || finish

vip_on() { ns_exec "$1" ip -br addr show eth0 | grep -q 10.99.0.100; }
epoch0=$(field_of a epoch)
ip netns exec "$(ns_name c)" sipp -sn uas -i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
UAS=$!
T_PIDS+=("$UAS")
(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 3000 \
	-i 10.99.0.10 -p 5071 -m 40 -r 10 -d 3000 -nostdin -timeout 30 -trace_stat -stf uac.csv \
	>/dev/null 2>&1) &
UAC=$!
T_PIDS+=("$UAC")
sleep 1

# forge NAME NS ARGS...: one attempt from namespace NS; the node must close it.
forge() {
	local name=$1 ns=$2 out
	shift 2
	out=$(ip netns exec "$(ns_name "$ns")" "$FORGE" "$@" 2>&1)
	if [ $? -eq 0 ]; then
		pass "ha forge: $name: closed ($out)"
	else
		fail "ha forge: $name: closed" "$out"
	fi
}
forge "from a third host, as b, active, epoch 10^6" c 10.99.0.1:7100
forge "from b's address, no key, as b" b -s 10.99.0.2 -i b -e 1 10.99.0.1:7100
forge "from b's address, a nonce and a random AUTH" b -s 10.99.0.2 -i b -e 1 -n -a \
	10.99.0.1:7100
forge "from b's address, epoch 2^63" b -s 10.99.0.2 -i b -n -a -e 9223372036854775808 \
	10.99.0.1:7100
forge "against the standby, from a's address, no key" a -s 10.99.0.1 -i a -e 1 10.99.0.2:7100
forge "against the standby, from a's address, a random AUTH" a -s 10.99.0.1 -i a -e 1 -n -a \
	10.99.0.2:7100

# The HA clock (UDP, same port): a well-formed heartbeat with a made-up tag
# from b's address, and a copy from a third host; 20 of each.
clock_forge() { # NS: 20 datagrams to a's clock, one write (one datagram) each
	ns_exec "$1" bash -c 'for i in $(seq 20); do
		printf "SHC1\0\0\0\0\0\0\0\0\0\0\0\xb1\0\0\0\0\x7f\xff\xff\xf0\0\0\0\0\0\0\0\0ABCDEFGHIJKLMNOP" \
			>/dev/udp/10.99.0.1/7100
	done'
}
refused0=$(metric ha_clock_refused a)
clock_forge b
clock_forge c
sleep 0.2
check_eq "ha forge: 40 forged clock datagrams refused by a" \
	"$(($(metric ha_clock_refused a) - refused0))" 40
check_eq "ha forge: a's clock still hears b" "$(metric ha_clock_silences a)" 0

check_eq "ha forge: strangers counted on a" "$(metric ha_link_strangers a)" 1
check "ha forge: authentication failures counted on a" test "$(metric ha_link_auth_failures a)" -ge 2
check "ha forge: authentication failures counted on b" test "$(metric ha_link_auth_failures b)" -ge 2
check_eq "ha forge: a still active, b its standby in sync" \
	"$(state_of a)/$(state_of b)/$(field_of b in_sync)" active/standby/true
check_eq "ha forge: the epoch did not move" "$(field_of a epoch)/$(field_of b epoch)" \
	"$epoch0/$epoch0"
check "ha forge: the VIP stayed on a" vip_on a
check "ha forge: and never went to b" sh -c "! ip netns exec $(ns_name b) ip -br addr show eth0 | grep -q 10.99.0.100"
check_eq "ha forge: the link never went down" "$(metric ha_link_downs a)/$(metric ha_link_downs b)" 0/0
wait_pid "$UAC" 40
check_eq "ha forge: every call went through meanwhile" \
	"$(stat_of "$T_TMP/uac.csv" 'SuccessfulCall(C)')/$(stat_of "$T_TMP/uac.csv" 'FailedCall(C)')" \
	40/0
grep -q "not the peer" "$(siphad_log a)"
check_eq "ha forge: a logged the stranger" "$?" 0
grep -q "authentication failures so far" "$(siphad_log a)"
check_eq "ha forge: a logged the failed authentication" "$?" 0
grep -q "peer claims epoch" "$(siphad_log a)"
check_eq "ha forge: a logged the absurd epoch" "$?" 0

# A key on one side only: never up, both say why.
stop_siphad b
stop_siphad a
sed -i '/^key_file/d' "$T_TMP/b.conf"
rm -rf "$T_TMP/state-a" "$T_TMP/state-b"
start_siphad -n a -N a "$T_TMP/a.conf" || finish
start_siphad -n b -N b "$T_TMP/b.conf" || finish
sleep 1.5
check_eq "ha forge: a node with a key and one without never link" \
	"$(field_of a peer_connected)/$(field_of b peer_connected)" false/false
check "ha forge: the node without a key says the link is not authenticated" \
	grep -q "not authenticated" "$(siphad_log b)"
check "ha forge: the keyed node refuses the unkeyed one" \
	grep -q "does not authenticate" "$(siphad_log a)"
stop_siphad b
stop_siphad a
finish
