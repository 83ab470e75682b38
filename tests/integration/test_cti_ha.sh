#!/usr/bin/env bash
# The contact-centre layer across a failover, in namespaces: a hot pair
# (a primary, b backup) behind the VIP, a CTI client (tests/tools/cticlient)
# connected to both nodes, sipp callers and callees and a busy-lamp watcher
# in namespace c.
#
# kill -9: 50 calls wait on routing point 2000 (nobody routes them); an
# agent is logged in and ready; a RouteCall goes to the active node and the
# active node is killed at once.  The backup takes over; the client, told by
# NodeState, asks for what it missed (Hello since_seq) and sends again the
# requests it had no answer to (same ref).  Then it routes every queued call
# to 3000: all 50 connect and end.  The agent is still ready; the client's
# event stream has no gap, no duplicate and nothing out of order; every
# request it sent is answered exactly once.
#
# Busy lamps: a watcher subscribed to extension 1001 (dialog package) sees a
# call to 1001 before the failover and another after it, seven NOTIFYs with
# versions 0..6 in order (idle, early, confirmed, idle, early, confirmed,
# idle), the last three from the node that took over.
#
# Switchover: the same client through `siphactl switchover` with calls
# being queued and routed meanwhile: no event lost, none twice.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq
CTI=$T_BUILD/tests/tools/cticlient
require_bin "$SIPHAD" "$CTI"
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
CALLS=50

ha_lan || { fail "cti ha: topology" "cannot build namespaces"; finish; }
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
addr_add c eth0 10.99.0.10/24

mkconf() { # NAME ROLE OWN PEER
	ha_conf "$T_TMP/$1.conf" "$1" "$2" "$3" "$4" hot
	cat >>"$T_TMP/$1.conf" <<EOC
1001 = extension
2000 = routing-point
[cti]
listen = 0.0.0.0:3000
route_timeout_ms = 60000
EOC
}
mkconf a primary 10.99.0.1 10.99.0.2
mkconf b backup 10.99.0.2 10.99.0.1
ha_start_pair "cti ha" || finish

# The client, driven through a FIFO; everything it hears in cti.out.
mkfifo "$T_TMP/cti.in"
ip netns exec "$(ns_name c)" "$CTI" -c desk -m 2000 -m 1001 -t 100 \
	10.99.0.1:3000 10.99.0.2:3000 <"$T_TMP/cti.in" >"$T_TMP/cti.out" 2>"$T_TMP/cti.err" &
CLIENT=$!
T_PIDS+=("$CLIENT")
exec 7>"$T_TMP/cti.in"
cmd() { echo "$*" >&7; }
out_has() { grep -q -- "$1" "$T_TMP/cti.out"; }
count_of() { grep -c -- "$1" "$T_TMP/cti.out" 2>/dev/null || true; }

if wait_until 5 out_has '"state":"active"'; then
	pass "cti ha: the client says Hello to both nodes and finds the active one"
else
	fail "cti ha: the client finds the active node" "$(tail -n 5 "$T_TMP/cti.out")"
fi
# Its two answers come in either order: wait for the standby's too.
wait_until 5 out_has '"state":"standby"'
check "cti ha: the standby answers Hello as standby" out_has '"state":"standby"'

agent_of() { ctl -n "$1" agents --json | jq -r '.agents[] | select(.agent == "ag1") | .state'; }
agent_is() { [ "$(agent_of "$1")" = "$2" ]; }
cmd login ag1 1001
cmd ready ag1
wait_until 5 agent_is a ready
check_eq "cti ha: agent ag1 ready on the active node" "$(agent_of a)" ready
wait_until 3 agent_is b ready
check_eq "cti ha: and on the standby" "$(agent_of b)" ready

# The phone of 1001 registers, then answers calls on the port it registered
# from; its watcher subscribes.
printf 'SEQUENTIAL\n1001;\n' >"$T_TMP/user.csv"
(cd "$T_TMP" && ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sf "$SCN/register.xml" \
	-inf "$T_TMP/user.csv" -m 1 -i 10.99.0.10 -p 5090 -key expires 600 -key cparam "" \
	-nostdin -timeout 10 >/dev/null 2>&1)
wait_until 3 field_is b registrations 1
check_eq "cti ha: 1001 registered, on both nodes" "$(field_of a registrations)/$(field_of b registrations)" 1/1
ip netns exec "$(ns_name c)" sipp -sn uas -i 10.99.0.10 -p 5090 -nostdin >/dev/null 2>&1 &
PHONE=$!
T_PIDS+=("$PHONE")
(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 \
	-sf "$SCN/subscribe_dialog.xml" -s 1001 -m 1 -i 10.99.0.10 -p 5095 -nostdin -timeout 60 \
	-trace_msg -message_file "$T_TMP/watch.msg" -trace_stat -stf watch.csv \
	>/dev/null 2>"$T_TMP/watch.err") &
WATCH=$!
T_PIDS+=("$WATCH")
notifies() { grep -c '^NOTIFY sip:watcher' "$T_TMP/watch.msg" 2>/dev/null || echo 0; }
wait_until 5 sh -c "[ \$(grep -c '^NOTIFY sip:watcher' $T_TMP/watch.msg 2>/dev/null) -ge 1 ] 2>/dev/null"
# A call to 1001 through the VIP before the failover: early, confirmed, idle.
(cd "$T_TMP" && ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 1001 \
	-i 10.99.0.10 -p 5096 -m 1 -d 300 -nostdin -timeout 20 >/dev/null 2>&1)
wait_until 5 sh -c "[ \$(grep -c '^NOTIFY sip:watcher' $T_TMP/watch.msg 2>/dev/null) -ge 4 ] 2>/dev/null"
check_eq "cti ha: the watcher got 4 NOTIFYs before the failover" "$(notifies)" 4
wait_until 3 field_is b subscriptions 1
check_eq "cti ha: the standby has the subscription" "$(field_of b subscriptions)" 1

# The callee of 3000 and 50 callers to the routing point.
# A callee that answers a retransmitted INVITE (the one the new active
# resends for a call routed just before the kill) with its 200 again.
ip netns exec "$(ns_name c)" sipp -sf "$SCN/call_uas_basic.xml" -i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
UAS=$!
T_PIDS+=("$UAS")
(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 2000 \
	-i 10.99.0.10 -p 5071 -m $CALLS -r 50 -d 1000 -nostdin -timeout 60 -trace_stat \
	-stf uac.csv >/dev/null 2>&1) &
UAC=$!
T_PIDS+=("$UAC")
queued_on() { [ "$(ctl -n "$1" calls --json | jq '[.calls[] | select(.state == "queued")] | length')" = "$2" ]; }
wait_until 10 queued_on a $CALLS
check "cti ha: $CALLS calls queued on the active node" queued_on a $CALLS
wait_until 3 queued_on b $CALLS
check "cti ha: and replicated, queued, on the standby" queued_on b $CALLS
wait_until 5 sh -c "[ \$(grep -c '\"event\":\"RouteRequest\"' $T_TMP/cti.out) -ge $CALLS ]"
check_eq "cti ha: the client got a RouteRequest for each" "$(count_of '"event":"RouteRequest"')" $CALLS

# One RouteCall, and the active node dies at once.
first=$(grep -o '"event":"RouteRequest"[^}]*"call":"[0-9]*"' "$T_TMP/cti.out" | head -n 1 |
	sed 's/.*"call":"\([0-9]*\)"/\1/')
cmd route "$first" 3000
kill9 a
wait_until 5 field_is b state active
check_eq "cti ha: backup active after kill -9" "$(state_of b)" active
wait_until 5 out_has '"event":"NodeState","node":"b","state":"active"'
check "cti ha: the new active tells the client (NodeState)" out_has '"event":"NodeState","node":"b"'

# Route the rest from the new active.
cmd autoroute 3000
wait_pid "$UAC" 60
ok=$(stat_of "$T_TMP/uac.csv" 'SuccessfulCall(C)')
bad=$(stat_of "$T_TMP/uac.csv" 'FailedCall(C)')
check_eq "cti ha: all $CALLS queued calls routed and connected across the failover" "$ok/$bad" "$CALLS/0"
check_eq "cti ha: no call left" "$(field_of b calls)" 0
check_eq "cti ha: agent ag1 still ready on the new active" "$(agent_of b)" ready

# The busy lamp after the failover: a second call to 1001.
(cd "$T_TMP" && ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 1001 \
	-i 10.99.0.10 -p 5097 -m 1 -d 300 -nostdin -timeout 20 >/dev/null 2>&1)
wait_pid "$WATCH" 20
versions=$(grep -o 'version="[0-9]*"' "$T_TMP/watch.msg" | tr -dc '0-9\n' | tr '\n' ' ')
states=$(awk '/^NOTIFY sip:watcher/ { n++; s[n] = "idle" } /<state>/ { gsub(/.*<state>|<\/state>.*/, ""); s[n] = $0 }
	END { for (i = 1; i <= n; i++) printf "%s ", s[i] }' "$T_TMP/watch.msg")
check_eq "cti ha: NOTIFY versions 0..7 in order, none repeated" "$versions" "0 1 2 3 4 5 6 7 "
check_eq "cti ha: busy lamp states through both calls" "$states" \
	"idle early confirmed idle early confirmed idle idle "
check_eq "cti ha: the watcher's scenario completed (unsubscribed)" \
	"$(stat_of "$T_TMP/watch.csv" 'SuccessfulCall(C)')" 1

# The client's own account of its stream.
cmd quit
wait_pid "$CLIENT" 10
summary=$(grep ' SUMMARY ' "$T_TMP/cti.out" | tail -n 1)
info "client: $summary"
for k in gaps dups disorder unanswered; do
	check_eq "cti ha: client stream: $k=0" "$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<"$summary")" 0
done
ref=$(grep -o "sent [01] {\"req\":\"RouteCall\"[^}]*\"call\":\"$first\"[^}]*}" "$T_TMP/cti.out" |
	head -n 1 | grep -o '"ref":"[^"]*"')
check_eq "cti ha: the RouteCall sent before the kill is answered once, by its ref" \
	"$(grep -c "^[01] [0-9]* {\"ref\":${ref#\"ref\":}," "$T_TMP/cti.out")" 1
exec 7>&-

# --- switchover under load ---------------------------------------------------------
# a comes back as standby; calls are queued and routed (auto) while the
# operator hands the active role back to a: nothing lost, nothing twice.
rm -rf /sys/fs/bpf/sipha/a
ns_exec a ip addr del 10.99.0.100/24 dev eth0 2>/dev/null
start_siphad -n a -N a "$T_TMP/a.conf" || finish
wait_until 10 field_is a in_sync true
check_eq "cti ha: the old primary is back as a standby in sync" "$(state_of a)/$(field_of a in_sync)" standby/true
mkfifo "$T_TMP/cti2.in"
ip netns exec "$(ns_name c)" "$CTI" -c desk2 -m 2000 --auto-route 3000 -t 60 \
	10.99.0.1:3000 10.99.0.2:3000 <"$T_TMP/cti2.in" >"$T_TMP/cti2.out" 2>&1 &
CLIENT2=$!
T_PIDS+=("$CLIENT2")
exec 8>"$T_TMP/cti2.in"
wait_until 5 sh -c "grep -q '\"state\":\"active\"' $T_TMP/cti2.out"
(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 2000 \
	-i 10.99.0.10 -p 5072 -m 100 -r 25 -d 500 -nostdin -timeout 60 -trace_stat \
	-stf uac2.csv >/dev/null 2>&1) &
UAC2=$!
T_PIDS+=("$UAC2")
sleep 2
ctl -n b switchover >/dev/null
wait_until 5 field_is a state active
check_eq "cti ha: switchover: a active again" "$(state_of a)" active
wait_pid "$UAC2" 60
ok=$(stat_of "$T_TMP/uac2.csv" 'SuccessfulCall(C)')
bad=$(stat_of "$T_TMP/uac2.csv" 'FailedCall(C)')
check_eq "cti ha: switchover: 100 calls queued and routed across it" "$ok/$bad" "100/0"
echo quit >&8
exec 8>&-
wait_pid "$CLIENT2" 10
summary=$(grep ' SUMMARY ' "$T_TMP/cti2.out" | tail -n 1)
info "client 2: $summary"
for k in gaps dups disorder unanswered; do
	check_eq "cti ha: switchover: client stream: $k=0" \
		"$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<"$summary")" 0
done
stop_siphad a
stop_siphad b
finish
