#!/usr/bin/env bash
# HA pair in namespaces: roles at start-up, hot-standby replication, and a
# kill -9 of the active node with calls up: the standby takes the VIP and
# every BYE completes through it.  Then the same with warm standby: the
# calls are gone (481) and new calls work.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios

ns_lan lan a b c || { fail "ha: topology" "cannot build namespaces"; finish; }
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
addr_add c eth0 10.99.0.10/24
# XDP_TX on a veth needs a program on the peer end too (docs/ARCHITECTURE.md §6).
for n in a b; do ns_exec lan ip link set "$n-br" xdp object build/sipha_xdp.bpf.o sec xdp 2>/dev/null || true; done
ns_exec c ethtool -K eth0 tx off >/dev/null 2>&1 || true

mkconf() { ha_conf "$T_TMP/$1.conf" "$1" "$2" "$3" "$4" "$5"; } # NAME ROLE OWN PEER REDUNDANCY

vip_on() { ns_exec "$1" ip -br addr show eth0 | grep -q 10.99.0.100; }

# run REDUNDANCY: one failover round; echoes nothing, reports PASS/FAIL
run() {
	local red=$1 calls=20
	mkconf a primary 10.99.0.1 10.99.0.2 "$red"
	mkconf b backup 10.99.0.2 10.99.0.1 "$red"
	rm -rf "$T_TMP/state-a" "$T_TMP/state-b"
	start_siphad -n a -N a "$T_TMP/a.conf" || return
	wait_until 5 field_is a state active
	check_eq "ha $red: primary active alone" "$(state_of a)" active
	start_siphad -n b -N b "$T_TMP/b.conf" || return
	wait_until 5 field_is b peer_connected true
	check_eq "ha $red: backup standby" "$(state_of b)" standby
	check_eq "ha $red: VIP on the primary only" \
		"$(ns_exec a ip -br addr show eth0 | grep -c 10.99.0.100)/$(ns_exec b ip -br addr show eth0 | grep -c 10.99.0.100)" "1/0"
	if [ "$red" = hot ]; then
		wait_until 5 field_is b in_sync true
		check_eq "ha hot: standby in sync" "$(field_of b in_sync)" true
		# someone deletes the VIP on the active node: netlink tells, it comes back
		ns_exec a ip addr del 10.99.0.100/24 dev eth0
		wait_until 3 vip_on a
		check "ha hot: a VIP deleted by hand is added again" vip_on a
	fi

	# ip netns exec itself, not the ns_exec function: $! must be sipp's PID
	ip netns exec "$(ns_name c)" sipp -sn uas -i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
	local uas=$!
	T_PIDS+=("$uas")
	(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 3000 -i 10.99.0.10 -p 5071 \
		-m $calls -r 20 -d 6000 -nostdin -timeout 40 -trace_stat -stf "uac-$red.csv" \
		>/dev/null 2>&1) &
	local uac=$!
	T_PIDS+=("$uac")
	wait_until 8 field_is a calls $calls
	check_eq "ha $red: $calls calls up on the active node" "$(field_of a calls)" $calls
	if [ "$red" = hot ]; then
		wait_until 3 field_is b calls $calls
		check_eq "ha hot: the standby has every call" "$(field_of b calls)" $calls
	fi

	if [ "$red" = hot ]; then
		# a phone registers through the VIP before the failure
		printf 'SEQUENTIAL\n1001;\n' >"$T_TMP/user.csv"
		(cd "$T_TMP" && ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 \
			-sf "$SCN/register.xml" -inf "$T_TMP/user.csv" -m 1 \
			-i 10.99.0.10 -p 5090 -key expires 600 -key cparam "" -nostdin -timeout 10 \
			>/dev/null 2>&1)
		wait_until 3 field_is b registrations 1
		check_eq "ha hot: the standby has the registration" "$(field_of b registrations)" 1
	fi
	local t0 t1
	t0=$(date +%s%N)
	kill9 a
	wait_until 5 field_is b state active
	t1=$(date +%s%N)
	check_eq "ha $red: backup active after kill -9" "$(state_of b)" active
	info "takeover seen by the CLI after $(((t1 - t0) / 1000000)) ms"
	check_eq "ha $red: VIP on the backup" "$(ns_exec b ip -br addr show eth0 | grep -c 10.99.0.100)" 1
	wait_pid "$uac" 60
	local ok bad
	ok=$(stat_of "$T_TMP/uac-$red.csv" 'SuccessfulCall(C)')
	bad=$(stat_of "$T_TMP/uac-$red.csv" 'FailedCall(C)')
	if [ "$red" = hot ]; then
		check_eq "ha hot: every call ends with BYE/200 through the new active node" "$ok/$bad" "$calls/0"
		check_eq "ha hot: no call left on the new active node" "$(field_of b calls)" 0
		# the registration still routes: a call to 1001 reaches the phone
		ip netns exec "$(ns_name c)" sipp -sn uas -i 10.99.0.10 -p 5090 -nostdin >/dev/null 2>&1 &
		local phone=$!
		T_PIDS+=("$phone")
		(cd "$T_TMP" && ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 1001 \
			-i 10.99.0.10 -p 5091 -m 5 -r 10 -d 100 -nostdin -timeout 20 -trace_stat \
			-stf uac-1001.csv >/dev/null 2>&1)
		ok=$(stat_of "$T_TMP/uac-1001.csv" 'SuccessfulCall(C)')
		check_eq "ha hot: a phone registered before the takeover gets calls after it" "$ok" 5
		kill "$phone" 2>/dev/null
		wait "$phone" 2>/dev/null
	else
		check_eq "ha warm: calls of the dead node are lost (481 to their BYE)" "$ok" 0
		check "ha warm: the new active node answered 481" test "$(metric no_dialog b)" -ge 1
		(cd "$T_TMP" && ns_exec c sipp 10.99.0.100:5060 -sn uac -s 3000 -i 10.99.0.10 -p 5072 \
			-m 10 -r 10 -d 100 -nostdin -timeout 20 -trace_stat -stf "uac-after.csv" >/dev/null 2>&1)
		ok=$(stat_of "$T_TMP/uac-after.csv" 'SuccessfulCall(C)')
		check_eq "ha warm: new calls after the takeover succeed" "$ok" 10
	fi
	kill "$uas" 2>/dev/null
	wait "$uas" 2>/dev/null
	stop_siphad b
	# the killed node's program stays on its link: no VIP answers from it
	ns_exec a ip addr del 10.99.0.100/24 dev eth0 2>/dev/null
	ns_exec a ip link set eth0 xdp off 2>/dev/null
	rm -rf /sys/fs/bpf/sipha/a
}

# The active node's service interface loses its carrier: it hands over.
run_carrier() {
	mkconf a primary 10.99.0.1 10.99.0.2 hot
	mkconf b backup 10.99.0.2 10.99.0.1 hot
	rm -rf "$T_TMP/state-a" "$T_TMP/state-b"
	start_siphad -n a -N a "$T_TMP/a.conf" || return
	wait_until 5 field_is a state active
	start_siphad -n b -N b "$T_TMP/b.conf" || return
	wait_until 5 field_is b in_sync true
	ns_exec lan ip link set a-br down
	wait_until 5 field_is b state active
	check_eq "ha carrier: the backup takes over when the active loses its carrier" \
		"$(field_of b state)/$(field_of a state)" "active/standby"
	check "ha carrier: VIP moved to the backup" vip_on b
	check "ha carrier: and left the old active" sh -c "! ip netns exec $(ns_name a) ip -br addr show eth0 | grep -q 10.99.0.100"
	ns_exec lan ip link set a-br up
	stop_siphad a
	stop_siphad b
}

# Hot standby, calls being set up: the active node dies while every call
# rings (PHASE ringing: the callee sent 180 and answers 3 s later) or before
# the callee said anything (PHASE dialing: it waits 3 s, then rings and
# answers).  The node that takes over resends its INVITE to each callee (a
# retransmission to them) and the callees' answers connect the calls.
run_setup() {
	local phase=$1 calls=20 ok bad
	mkconf a primary 10.99.0.1 10.99.0.2 hot
	mkconf b backup 10.99.0.2 10.99.0.1 hot
	rm -rf "$T_TMP/state-a" "$T_TMP/state-b"
	start_siphad -n a -N a "$T_TMP/a.conf" || return
	wait_until 5 field_is a state active
	start_siphad -n b -N b "$T_TMP/b.conf" || return
	wait_until 5 field_is b in_sync true
	ip netns exec "$(ns_name c)" sipp -sf "$SCN/ha_uas_$phase.xml" -d 3000 \
		-i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
	local uas=$!
	T_PIDS+=("$uas")
	(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp 10.99.0.100:5060 -sn uac -s 3000 \
		-i 10.99.0.10 -p 5071 -m $calls -r 40 -d 1000 -nostdin -timeout 40 -trace_stat \
		-stf "uac-$phase.csv" >/dev/null 2>&1) &
	local uac=$!
	T_PIDS+=("$uac")
	wait_until 3 field_is b calls $calls
	check_eq "ha $phase: the standby knows every call being set up" "$(field_of b calls)" $calls
	check_eq "ha $phase: all of them $phase" \
		"$(ctl -n b calls --json | jq --arg s "$phase" '[.calls[] | select(.state == $s)] | length')" $calls
	kill9 a
	wait_until 5 field_is b state active
	check "ha $phase: the new active resumed all $calls calls" \
		grep -qE "active \(peer (dead|process gone)\), $calls calls \($calls being set up\)" "$(siphad_log b)"
	wait_pid "$uac" 40
	ok=$(stat_of "$T_TMP/uac-$phase.csv" 'SuccessfulCall(C)')
	bad=$(stat_of "$T_TMP/uac-$phase.csv" 'FailedCall(C)')
	check_eq "ha $phase: calls answered after the takeover connect and end cleanly" "$ok/$bad" "$calls/0"
	check_eq "ha $phase: nothing left on the new active node" "$(field_of b calls)" 0
	kill "$uas" 2>/dev/null
	wait "$uas" 2>/dev/null
	stop_siphad b
	ns_exec a ip addr del 10.99.0.100/24 dev eth0 2>/dev/null
	ns_exec a ip link set eth0 xdp off 2>/dev/null
}

T_NAME=ha
run hot
run warm
run_carrier
run_setup ringing
run_setup dialing
finish
