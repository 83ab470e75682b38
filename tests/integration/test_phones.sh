#!/usr/bin/env bash
# Real phones through a hot HA pair: two baresip instances (Debian
# baresip-core, headless: ctrl_tcp for control, aubridge for audio) register
# to the VIP, 1001 calls 1002, the callee answers, the active siphad is killed
# with -9, the callee hangs up (the BYE must reach the caller through the new
# active node), and 1001 calls 1002 again.  tests/tools/bsctl holds each
# phone's ctrl_tcp connection: commands in on a FIFO, events out one JSON
# line each.  Phones sit in namespaces c (10.99.0.10) and d (10.99.0.11);
# every process is bounded by timeout(1).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd baresip jq timeout ethtool
BSCTL=${BSCTL:-$T_BUILD/tests/tools/bsctl}
require_bin "$SIPHAD" "$SIPHACTL" "$BSCTL"
[ -f /usr/lib/baresip/modules/ctrl_tcp.so ] && [ -f /usr/lib/baresip/modules/aubridge.so ] ||
	skip "baresip's ctrl_tcp or aubridge module is missing"

ha_lan || { fail "phones: topology" "cannot build namespaces"; finish; }
ns_create d && veth_add d eth0 lan d-br && bridge_port lan br0 d-br ||
	{ fail "phones: topology" "cannot add namespace d"; finish; }
ns_exec d ethtool -K eth0 tx off >/dev/null 2>&1 || true
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
addr_add c eth0 10.99.0.10/24
addr_add d eth0 10.99.0.11/24

# Node ids of their own: XDP pins live under /sys/fs/bpf/sipha/<id>/.
for n in a b; do
	[ $n = a ] && set -- pa primary 10.99.0.1 10.99.0.2 || set -- pb backup 10.99.0.2 10.99.0.1
	ha_conf "$T_TMP/$n.conf" "$@" hot
	printf '1001 = extension\n1002 = extension\n' >>"$T_TMP/$n.conf"
done
rm -rf /sys/fs/bpf/sipha/pa /sys/fs/bpf/sipha/pb
ha_start_pair "phones" || finish

declare -A PHONE_PID=()

# ctrl_listening NS: baresip's ctrl_tcp listens in NS.
ctrl_listening() { [ -n "$(ns_exec "$1" ss -Hltn src 127.0.0.1:4444)" ]; }

# phone NUM NS IP FD: baresip for user NUM in namespace NS, and its bsctl,
# whose commands are written to file descriptor FD; events in $T_TMP/NUM.ev.
phone() {
	local num=$1 ns=$2 ip=$3 fd=$4 dir=$T_TMP/phone-$1
	mkdir -p "$dir"
	cat >"$dir/config" <<EOC
poll_method		epoll
sip_listen		$ip:5060
sip_trans_def		udp
audio_player		aubridge,p$num
audio_source		aubridge,p$num
audio_alert		aubridge,p$num
audio_srate		8000
audio_channels		1
rtp_ports		10000-10100
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_tmp		uuid.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:4444
EOC
	echo "<sip:$num@sipha.test>;auth_pass=none;outbound=\"sip:$HA_VIP:5060\";regint=60;audio_codecs=PCMU;answermode=manual" >"$dir/accounts"
	ip netns exec "$(ns_name "$ns")" timeout -k 2 60 baresip -f "$dir" >"$dir/out" 2>&1 &
	PHONE_PID[$num]=$!
	T_PIDS+=($!)
	if ! wait_until 5 ctrl_listening "$ns"; then
		fail "phones: baresip $num starts" "$(tr -d '\033' <"$dir/out" | tail -n 3 | tr '\n' '|')"
		return 1
	fi
	mkfifo "$dir/in"
	ip netns exec "$(ns_name "$ns")" timeout -k 2 58 "$BSCTL" -T 55 127.0.0.1 4444 \
		<"$dir/in" >"$T_TMP/$num.ev" 2>"$dir/bsctl.err" &
	T_PIDS+=($!)
	eval "exec $fd>\"$dir/in\""
}

# events NUM TYPE: how many events of TYPE phone NUM has reported.
events() { grep -c "\"type\":\"$2\"" "$T_TMP/$1.ev"; }
# ev_at_least NUM TYPE COUNT: for wait_until.
ev_at_least() { [ "$(events "$1" "$2")" -ge "$3" ]; }
# regs_is NODE N
regs_is() { field_is "$1" registrations "$2"; }

phone 1001 c 10.99.0.10 7 || finish
phone 1002 d 10.99.0.11 8 || finish
wait_until 5 regs_is a 2
check_eq "phones: both registered through the VIP" "$(field_of a registrations)" 2
wait_until 3 regs_is b 2
check_eq "phones: the standby has both registrations" "$(field_of b registrations)" 2

# call N: 1001 dials 1002, 1002 answers; PASS/FAIL lines; 1 if not up
call() {
	local n=$1
	echo "dial sip:1002@sipha.test" >&7
	if ! wait_until 5 ev_at_least 1002 CALL_INCOMING "$n"; then
		fail "phones: call $n rings at 1002" "no CALL_INCOMING"
		return 1
	fi
	echo "accept" >&8
	if wait_until 5 ev_at_least 1001 CALL_ESTABLISHED "$n" &&
		wait_until 5 ev_at_least 1002 CALL_ESTABLISHED "$n"; then
		pass "phones: call $n established on both phones"
	else
		fail "phones: call $n established" "caller $(events 1001 CALL_ESTABLISHED), callee $(events 1002 CALL_ESTABLISHED)"
		return 1
	fi
}

# closed_why NUM: the reason of phone NUM's last CALL_CLOSED event.
closed_why() { grep '"type":"CALL_CLOSED"' "$T_TMP/$1.ev" | tail -n 1 | jq -r .param; }

# hangup N FD WHO OTHER: the phone on FD (the WHO) hangs up call N; both
# phones see it closed, and phone OTHER because a BYE reached it.
hangup() {
	local n=$1
	echo "hangup" >&"$2"
	if wait_until 5 ev_at_least 1001 CALL_CLOSED "$n" &&
		wait_until 5 ev_at_least 1002 CALL_CLOSED "$n"; then
		pass "phones: call $n hung up by the $3, both phones closed"
	else
		fail "phones: call $n hung up by the $3" "caller closed $(events 1001 CALL_CLOSED), callee $(events 1002 CALL_CLOSED)"
	fi
	check_eq "phones: call $n: the BYE reached $4" "$(closed_why "$4")" "Connection reset by peer"
}

if call 1; then
	wait_until 3 field_is b calls 1
	check_eq "phones: the standby has the call" "$(field_of b calls)" 1
	kill9 a
	wait_until 5 field_is b state active
	check_eq "phones: the backup is active after kill -9" "$(state_of b)" active
	check_eq "phones: the call survived on the new active node" "$(field_of b calls)" 1
	hangup 1 8 callee 1001
	wait_until 3 field_is b calls 0
	check_eq "phones: no call left after the BYE" "$(field_of b calls)" 0
fi
if call 2; then
	check_eq "phones: the second call is on the new active node" "$(field_of b calls)" 1
	hangup 2 7 caller 1002
fi
check_eq "phones: no call ended any other way" \
	"$(grep -h '"type":"CALL_CLOSED"' "$T_TMP/1001.ev" "$T_TMP/1002.ev" |
		jq -r .param | grep -cv '^Connection reset by \(peer\|user\)$')" 0

# Both phones quit, which unregisters them: the registrar of the new active
# node is the one that answers.
echo "quit" >&7
echo "quit" >&8
exec 7>&- 8>&-
wait_pid "${PHONE_PID[1001]}" 10
wait_pid "${PHONE_PID[1002]}" 10
wait_until 3 regs_is b 0
check_eq "phones: both unregistered at the new active node on quit" "$(field_of b registrations)" 0
ns_exec a ip addr del "$HA_VIP/$HA_VIP_LEN" dev eth0 2>/dev/null
rm -rf /sys/fs/bpf/sipha/pa /sys/fs/bpf/sipha/pb
finish
