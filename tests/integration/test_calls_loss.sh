#!/usr/bin/env bash
# Calls through a lossy link: retransmissions (sipp's and sipha's) must
# recover every call.
#
#   namespace cli: sipp A (caller) and sipp B (callee), 10.99.40.1
#        | eth0 - veth - eth0 |   5% packet loss on each end, both ways
#   namespace srv: siphad, 10.99.40.2:5060, DN 3000 -> B
#
# Every SIP message of a call crosses the veth (A -> sipha -> B and back),
# so each direction of each leg loses about 5%.  The loss is netem's
# (`tc qdisc ... netem loss 5%`) where the kernel has it, else an nftables
# netdev ingress rule dropping 5% of IP packets at random on each end (the
# same effect; this is for kernels built without sch_netem).  200 basic calls
# (BYE from A; scenarios call_uac_basic.xml and call_uas_basic.xml);
# asserted: sipp's statistics on both sides show 200 successful and 0
# failed, packets were really dropped, sipha absorbed retransmitted
# requests, and no call is left behind.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ip tc nft timeout
require_bin "$SIPHAD" "$SIPHACTL"

SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
N=200
LOSS=5 # percent
SIPP_TO=120
CLI=10.99.40.1
SRV=10.99.40.2

# lossy NS IF: LOSS% of the packets on IF are dropped (netem on egress, or
# nftables on ingress); sets LOSS_KIND.
lossy() {
	if ns_exec "$1" tc qdisc add dev "$2" root netem loss "$LOSS%" 2>/dev/null; then
		LOSS_KIND=netem
		return 0
	fi
	LOSS_KIND=nftables
	ns_exec "$1" nft -f - <<EOF
table netdev sipha_loss {
	chain in {
		type filter hook ingress device "$2" priority 0; policy accept;
		meta protocol ip numgen random mod 100 < $LOSS counter drop
	}
}
EOF
}

# dropped NS IF: how many packets the loss on IF dropped so far.
dropped() {
	if [ "$LOSS_KIND" = netem ]; then
		ns_exec "$1" tc -s qdisc show dev "$2" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -n 1
	else
		ns_exec "$1" nft list table netdev sipha_loss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
	fi
}

# --- topology -----------------------------------------------------------------------------

ns_create cli || finish
ns_create srv || finish
veth_add cli eth0 srv eth0 || finish
addr_add cli eth0 $CLI/24 || finish
addr_add srv eth0 $SRV/24 || finish
if ! lossy cli eth0 || ! lossy srv eth0; then
	fail "calls_loss: $LOSS% loss on both veth ends" "neither netem nor nftables could be set up"
	finish
fi
pass "calls_loss: $LOSS% loss on both veth ends ($LOSS_KIND)"

CONF=$T_TMP/loss.ini
cat >"$CONF" <<EOF
[node]
id = loss
state_dir = $T_TMP/state-loss

[sip]
listen = $SRV:5060
domain = sipha.test

[control]
socket = $T_TMP/loss.sock

[engine]
workers = 1

[dn]
3000 = sip:$CLI:5070
EOF
start_siphad -N srv "$CONF" || finish

# --- 200 calls ------------------------------------------------------------------------------

# sipp_ns NAME ARGS...: sipp in namespace cli, in the background; statistics
# in NAME.stat.csv.
declare -A SP_PID=()
sipp_ns() {
	local name=$1
	shift
	(cd "$T_TMP" && exec timeout -k 5 $((SIPP_TO + 15)) ip netns exec "$(ns_name cli)" \
		sipp "$@" -i $CLI -nostdin -timeout "${SIPP_TO}s" -timeout_error -trace_stat \
		-stf "$name.stat.csv" -trace_err -error_file "$name.err" </dev/null \
		>"$T_TMP/$name.out" 2>&1) &
	SP_PID[$name]=$!
	T_PIDS+=("$!")
}


_bound() {
	ns_exec cli ss -Hlun "sport = :5070" 2>/dev/null | grep -q .
}

# sipp's built-in uac/uas lose a call now and then under loss (see the
# headers of these two scenarios); these ones do what a real endpoint does.
sipp_ns b -sf "$SCN/call_uas_basic.xml" -p 5070 -m $N
wait_until 5 _bound || info "callee not bound on $CLI:5070 after 5 s"
t0=$(date +%s)
sipp_ns a -sf "$SCN/call_uac_basic.xml" -s 3000 -d 100 -p 5061 -m $N -r 50 -l 100 "$SRV:5060"

sipp_end a $((SIPP_TO + 20))
a_retrans=$SIPP_RETRANS
check_eq "calls_loss: caller sipp exit status" "$SIPP_RC" 0
check_eq "calls_loss: caller completed $N calls, none failed" "$SIPP_OK/$SIPP_FAILED" "$N/0"
# B's last call ends in its 16 s time-wait after the caller's.
sipp_end b 45
b_retrans=$SIPP_RETRANS
check_eq "calls_loss: callee sipp exit status" "$SIPP_RC" 0
check_eq "calls_loss: callee completed $N calls, none failed" "$SIPP_OK/$SIPP_FAILED" "$N/0"
info "calls took $(($(date +%s) - t0)) s"

d_cli=$(dropped cli eth0)
d_srv=$(dropped srv eth0)
info "dropped: ${d_cli:-?} packets on the client end, ${d_srv:-?} on the server end"
check "calls_loss: the client end dropped packets (${d_cli:-none})" test "${d_cli:-0}" -gt 0
check "calls_loss: the server end dropped packets (${d_srv:-none})" test "${d_srv:-0}" -gt 0

_no_calls() {
	[ "$(ctl --json calls 2>/dev/null | jq -r '.calls | length' 2>/dev/null)" = 0 ]
}
# A call whose last message was lost ends by a transaction timeout at worst.
if wait_until 40 _no_calls; then
	pass "calls_loss: siphactl calls is empty afterwards"
else
	fail "calls_loss: siphactl calls is empty afterwards" \
		"$(ctl --json calls | jq -c '[.calls[] | .state] | group_by(.) | map({(.[0]): length}) | add')"
fi

metrics_snapshot "$T_TMP/m"
rx_retrans=$(metric_from "$T_TMP/m" sip_rx_retransmissions)
info "retransmissions: sipha absorbed ${rx_retrans:-?} requests;" \
	"sipp A sent $a_retrans, sipp B $b_retrans"
check "calls_loss: sipha absorbed retransmitted requests (${rx_retrans:-none})" \
	test "${rx_retrans:-0}" -gt 0
check "calls_loss: sipp retransmitted (A $a_retrans, B $b_retrans)" \
	test $((a_retrans + b_retrans)) -gt 0
check_eq "calls_loss: sipha_calls_offered" "$(metric_from "$T_TMP/m" calls_offered)" $N
check_eq "calls_loss: sipha_calls_answered" "$(metric_from "$T_TMP/m" calls_answered)" $N
check_eq "calls_loss: sipha_calls_failed" "$(metric_from "$T_TMP/m" calls_failed)" 0
check_eq "calls_loss: sipha_calls_released" "$(metric_from "$T_TMP/m" calls_released)" $N

stop_siphad
finish
