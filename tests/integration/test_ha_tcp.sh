#!/usr/bin/env bash
# HA pair in namespaces, calls over TCP across a kill -9 of the active node.
#
# A caller and a callee (sipp in namespace c) reach each other only through
# the VIP, over TCP: DNs 3000 and 3001 both route to the callee with
# transport=tcp.  20 calls are established and replicated, then held for
# 4 s; in the hold each party drops its connection and opens a new one to
# the VIP, and then every call is torn down with BYE, half by the caller
# (DN 3000), half by the callee (3001).  Each BYE must get its 200 end to
# end, and sipp must count no failed call on either side.
#
#   reconnect  the control: no failure, the parties reconnect to the same
#              active node.  A BYE towards the caller, whose flows have
#              closed, must go to its Contact.
#   failover   the active node is killed with -9 early in the hold; its
#              connections die with it.  The node that takes over has no
#              connection to either party: it must accept the parties' new
#              connections and match them to the replicated dialogs, open
#              connections of its own to the Contact of the party a relayed
#              BYE goes to (RFC 3261 §18: the old flow is gone), and take a
#              response on a connection other than its request's.
#
# What sipp (3.6.1, read in its source and tried here) can and cannot do
# decides the shape of the parties:
#  - With -t t1, a connection the peer closed (FIN) is only marked dead;
#    sipp reconnects (-max_reconnect, -reconnect_sleep) only after a send on
#    it has failed, and the call whose message that was fails.  A t1 caller
#    loses one call to every failover, whatever the server does.
#  - sipp sends everything of a call, responses included, on the socket the
#    call began on.  A t1 callee that gets a BYE on a connection the new
#    node opened answers on the dead one: the answer is lost, the call
#    fails, and it cannot reopen an accepted socket.
#  - With -t tn a call can drop its socket (<closecon/>) and connect anew
#    (<setdest>): both parties do so in the hold, before they send anything,
#    to their dialog's remote target, the VIP (a UA that notices its flow is
#    gone).  -reconnect_close false keeps the calls when their connection
#    closes.  With tn, [local_port] is the call's own socket's port, gone
#    after the reconnection: the caller's Contact names its listening port.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq ethtool ss
require_bin "$SIPHAD" "$SIPHACTL"
if [ ! -f "$T_BUILD/sipha_xdp.bpf.o" ]; then
	fail "ha_tcp: $T_BUILD/sipha_xdp.bpf.o" "missing; run make first"
	finish
fi

T_NAME=ha_tcp
S=ha_tcp
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
VIP=10.99.0.100
CALLS=20
HOLD_MS=4000 # a call's hold: the kill -9 and the takeover happen in it
HA_CALLEE="10.99.0.10:5070;transport=tcp"

vip_on() { ns_exec "$1" ip -br addr show eth0 | grep -c "$VIP/"; }
established() { ctl -n "$1" calls --json | jq '[.calls[] | select(.state == "established")] | length'; }
established_is() { [ "$(established "$1")" = "$2" ]; }
# peers_of_port PORT: the remote addresses of c's established TCP
# connections on local port PORT, sorted and unique
peers_of_port() {
	ns_exec c ss -Htn state established "( sport = :$1 )" | awk '{print $4}' |
		sed 's/:[0-9]*$//' | sort -u | tr '\n' ' '
}
listening() { ns_exec c ss -Hltn "( sport = :$1 )" | grep -q .; }
# done_calls CSV: successful + failed calls so far
done_calls() {
	echo $(($(stat_of "$1" 'SuccessfulCall(C)') + $(stat_of "$1" 'FailedCall(C)')))
}
done_calls_ge() { [ "$(done_calls "$1")" -ge "$2" ]; }
# ends_ok NAME: both parties' view of run NAME, "successful/failed" each
ends_ok() {
	local f
	for f in uac uas; do
		printf '%s/%s ' "$(stat_of "$T_TMP/$1-$f.csv" 'SuccessfulCall(C)')" \
			"$(stat_of "$T_TMP/$1-$f.csv" 'FailedCall(C)')"
	done
}

# calls_start NAME CALLER_PORT: the callee (port 5070) and the caller in c,
# in the background ($UAS_PID, $UAC_PID), statistics and errors in
# $T_TMP/NAME-{uac,uas}.{csv,err}; returns once every call is established
# on the active node a and replicated to b (FAIL line otherwise).
calls_start() {
	# ip netns exec itself, not ns_exec: $! must be sipp's PID
	ip netns exec "$(ns_name c)" sipp -sf "$SCN/ha_tcp_uas.xml" -t tn -max_socket 100 \
		-i 10.99.0.10 -p 5070 -d $HOLD_MS -reconnect_close false -nostdin \
		-trace_stat -fd 1 -stf "$T_TMP/$1-uas.csv" \
		-trace_err -error_file "$T_TMP/$1-uas.err" >/dev/null 2>&1 &
	UAS_PID=$!
	T_PIDS+=("$UAS_PID")
	# the node connects to the callee at the first INVITE: not before it listens
	wait_until 3 listening 5070
	(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp "$VIP:5060" -sf "$SCN/ha_tcp_uac.xml" \
		-inf "$T_TMP/dns.csv" -key listen_port "$2" -t tn -max_socket 100 -i 10.99.0.10 \
		-p "$2" -m $CALLS -r 40 -d $HOLD_MS -reconnect_close false -nostdin -timeout 25 \
		-trace_stat -fd 1 -stf "$T_TMP/$1-uac.csv" \
		-trace_err -error_file "$T_TMP/$1-uac.err" >/dev/null 2>&1) &
	UAC_PID=$!
	T_PIDS+=("$UAC_PID")
	wait_until 5 established_is a $CALLS
	wait_until 3 established_is b $CALLS
	check_eq "$S $1: $CALLS calls established over TCP and replicated" \
		"$(established a)/$(established b)" "$CALLS/$CALLS"
	check_eq "$S $1: the callee's connection comes from the VIP" "$(peers_of_port 5070)" "$VIP "
}

# calls_end NAME NODE: waits for both parties, checks that every call
# ended with BYE/200 on both sides and none is left on NODE.
calls_end() {
	local f
	wait_pid "$UAC_PID" 30
	# the callee's statistics are written once a second (-fd 1)
	wait_until 3 done_calls_ge "$T_TMP/$1-uas.csv" $CALLS
	check_eq "$S $1: every call ends with BYE/200 (successful/failed: caller, callee)" \
		"$(ends_ok "$1")" "$CALLS/0 $CALLS/0 "
	check_eq "$S $1: siphactl calls on $2 is empty" "$(ctl -n "$2" calls --json | jq '.calls | length')" 0
	check_eq "$S $1: the callee's connections are all with the VIP" "$(peers_of_port 5070)" "$VIP "
	kill "$UAS_PID" 2>/dev/null
	wait "$UAS_PID" 2>/dev/null
	if [ "$T_FAILED" -gt 0 ]; then
		for f in "$1-uac.err" "$1-uas.err"; do
			[ -s "$T_TMP/$f" ] && info "--- $f" && head -c 2000 "$T_TMP/$f" | sed 's/^/# /'
		done
	fi
}

if ! ha_lan || ! addr_add a eth0 10.99.0.1/24 || ! addr_add b eth0 10.99.0.2/24 ||
	! addr_add c eth0 10.99.0.10/24; then
	fail "$S: topology" "cannot build namespaces"
	finish
fi
ha_conf "$T_TMP/a.conf" a primary 10.99.0.1 10.99.0.2
ha_conf "$T_TMP/b.conf" b backup 10.99.0.2 10.99.0.1
echo "3001 = sip:$HA_CALLEE" | tee -a "$T_TMP/a.conf" >>"$T_TMP/b.conf"
printf 'SEQUENTIAL\n3000;\n3001;\n' >"$T_TMP/dns.csv"
ha_start_pair "$S" || finish

# 1. The control: the parties drop their connections in the hold and open
# new ones to the same, living, active node.  The caller's flows close
# (the callee's accepted socket stays open in sipp, and with it the node's
# connection to the callee): a BYE to the caller must go to its Contact,
# not to the port a closed flow came from.
calls_start reconnect 5071
c0=$(metric transport_tcp_connects a)
calls_end reconnect a
check_eq "$S reconnect: the active opened one connection, to the caller's Contact" \
	"$(($(metric transport_tcp_connects a) - c0))" 1
wait_until 3 field_is b calls 0
check_eq "$S reconnect: the standby follows the ends of the calls" "$(field_of b calls)" 0

# 2. The failover: the node the parties' connections go to dies.
calls_start failover 5073
check_eq "$S failover: no SIP over UDP on the active node" "$(metric transport_udp_in a)" 0
t0=$(date +%s%N)
kill9 a
wait_until 5 field_is b state active
t1=$(date +%s%N)
check_eq "$S failover: the backup is active after kill -9, with the VIP" \
	"$(state_of b)/$(vip_on b)" active/1
info "takeover seen by the CLI after $(((t1 - t0) / 1000000)) ms"
# nothing reconnected before the takeover: the hold is long enough
check_eq "$S failover: the new active starts with no connection" \
	"$(metric transport_tcp_accepted b)/$(metric transport_tcp_connects b)" 0/0
calls_end failover b
# Each party reconnected once per call; the node opened one connection to
# each party's Contact and sent every relayed BYE on it.
check_eq "$S failover: the new active accepted the parties' new connections" \
	"$(metric transport_tcp_accepted b)" $((2 * CALLS))
check_eq "$S failover: and opened one to each party's Contact" \
	"$(metric transport_tcp_connects b)" 2
check_eq "$S failover: no SIP over UDP on the new active" "$(metric transport_udp_in b)" 0

stop_siphad b
finish
