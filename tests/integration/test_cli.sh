#!/usr/bin/env bash
# The command contracts of docs/ARCHITECTURE.md §5: siphactl's exit codes and --json
# shapes, siphad's config errors and its clean exit; and a self-test of
# lib.sh's namespace helpers (a LAN of namespaces, siphad in one of them,
# everything removed on exit), which the HA tests build on.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd jq ss ip
require_bin "$SIPHAD" "$SIPHACTL" "$SIPJUNK"

free_port PORT || finish
CONF=$T_TMP/cli.ini
write_config "$CONF" "$PORT" tcli
DST=127.0.0.1:$PORT

# run_ctl ARGS...: siphactl with stdout, stderr and exit status in OUT, ERR, RC.
run_ctl() {
	"$SIPHACTL" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	RC=$?
	OUT=$(cat "$T_TMP/out")
	ERR=$(cat "$T_TMP/err")
}

# json_check NAME JQ_EXPR: OUT is exactly one JSON object and EXPR holds for it.
json_check() {
	if ! is_one_json_object <"$T_TMP/out"; then
		fail "$1" "not exactly one JSON object: $(head -c 200 "$T_TMP/out")"
	elif ! jq -e "$2" >/dev/null 2>&1 <"$T_TMP/out"; then
		fail "$1" "$2 does not hold for $(head -c 300 "$T_TMP/out")"
	else
		pass "$1"
	fi
}

# --- siphad: configuration errors -------------------------------------------------------

# bad_config NAME FILE LINE KEY: siphad -c FILE exits 2 with exactly one line
# "FILE:LINE: KEY: reason" on stderr (KEY as a substring of the key field).
bad_config() {
	local name=$1 f=$2 line=$3 key=$4 err rc
	err=$(timeout 10 "$SIPHAD" -c "$f" 2>&1 >/dev/null)
	rc=$?
	check_eq "cli: siphad $name: exit 2" "$rc" 2
	check_eq "cli: siphad $name: one line on stderr" "$(printf '%s\n' "$err" | grep -c .)" 1
	if [[ $err =~ ^"$f":$line:\ ([^:]*):\ .+$ ]] && [[ ${BASH_REMATCH[1]} == *"$key"* ]]; then
		pass "cli: siphad $name: names file, line $line and key $key"
	else
		fail "cli: siphad $name: names file, line $line and key $key" "stderr: $err"
	fi
	timeout 10 "$SIPHAD" -t -c "$f" >/dev/null 2>&1
	check_eq "cli: siphad -t $name: exit 2" "$?" 2
}

B=$T_TMP/bad
write_config "$B.1" "$PORT" tbad
sed -i 's/^domain = .*/&\nbogus_key = 1/' "$B.1" # [sip] gains an unknown key
bad_config "unknown key" "$B.1" "$(grep -n '^bogus_key' "$B.1" | cut -d: -f1)" bogus_key

write_config "$B.2" "$PORT" tbad
printf '[nosuchsection]\nx = 1\n' >>"$B.2"
bad_config "unknown section" "$B.2" "$(grep -n '^\[nosuchsection\]' "$B.2" | cut -d: -f1)" nosuchsection

write_config "$B.3" "$PORT" tbad
sed -i 's/^listen = .*/listen = 127.0.0.1:99999/' "$B.3"
bad_config "bad port" "$B.3" "$(grep -n '^listen' "$B.3" | cut -d: -f1)" listen

write_config "$B.4" "$PORT" tbad
sed -i 's/^1001 = extension/1001 = nonsense/' "$B.4"
bad_config "bad DN kind" "$B.4" "$(grep -n '^1001' "$B.4" | cut -d: -f1)" 1001

# A missing required section is reported at line 0 (config.h).
write_config "$B.5" "$PORT" tbad
sed -i '/^\[control\]/,/^socket/d' "$B.5"
bad_config "missing [control]" "$B.5" 0 control

# --help and -h print the usage on stdout and exit 0; an unknown option is a usage error.
for h in --help -h; do
	out=$(timeout 10 "$SIPHAD" $h 2>/dev/null)
	check_eq "cli: siphad $h: exit 0" "$?" 0
	check "cli: siphad $h: prints the usage" grep -q '^usage: siphad' <<<"$out"
done
timeout 10 "$SIPHAD" --no-such-option >/dev/null 2>&1
check_eq "cli: siphad --no-such-option: exit 2" "$?" 2
out=$(timeout 10 "$SIPHAD" --check --config "$CONF" 2>&1)
check_eq "cli: siphad --check --config GOOD: exit 0" "$?" 0

err=$(timeout 10 "$SIPHAD" -c "$T_TMP/does-not-exist.ini" 2>&1 >/dev/null)
check_eq "cli: siphad with a missing config file: exit 2" "$?" 2
check_eq "cli: siphad with a missing config file: one line naming it" \
	"$(printf '%s\n' "$err" | grep -c "^$T_TMP/does-not-exist.ini")" 1

timeout 10 "$SIPHAD" -t -c "$CONF" >/dev/null 2>&1
check_eq "cli: siphad -t with a good config: exit 0" "$?" 0
timeout 10 "$SIPHAD" >/dev/null 2>&1
check_eq "cli: siphad without -c: exit 2" "$?" 2

# --- siphactl without a daemon ------------------------------------------------------

run_ctl -s "$T_TMP/nobody.sock" status
check_eq "cli: siphactl, no daemon: exit 3" "$RC" 3
check "cli: siphactl, no daemon: says so on stderr" test -n "$ERR"
run_ctl -s "$T_TMP/nobody.sock" status --json
check_eq "cli: siphactl --json, no daemon: exit 3" "$RC" 3
if [ -z "$OUT" ] || is_one_json_object <"$T_TMP/out"; then
	pass "cli: siphactl --json, no daemon: nothing but one JSON object on stdout"
else
	fail "cli: siphactl --json, no daemon: nothing but one JSON object on stdout" "$OUT"
fi
run_ctl
check_eq "cli: siphactl without a command: exit 2" "$RC" 2
run_ctl -s
check_eq "cli: siphactl -s without its argument: exit 2" "$RC" 2
run_ctl --no-such-option status
check_eq "cli: siphactl with an unknown option: exit 2" "$RC" 2

# --- siphactl with a daemon -----------------------------------------------------------

start_siphad "$CONF" || finish
SOCK=$(siphad_sock)

run_ctl -s "$SOCK" status --json
check_eq "cli: status --json: exit 0" "$RC" 0
json_check "cli: status --json: every contract field with its type" '
	(.node | type == "string") and (.role == "primary" or .role == "backup") and
	(.state == "active" or .state == "standby" or .state == "isolated") and
	(.redundancy == "hot" or .redundancy == "warm" or .redundancy == "none") and
	(.epoch | type == "number") and (.peer_connected | type == "boolean") and
	(.in_sync | type == "boolean") and (.sync_lag | type == "number") and
	(.calls | type == "number") and (.registrations | type == "number") and
	(.workers | type == "number")'
json_check "cli: status --json: values of a lone node" '
	.node == "tcli" and .role == "primary" and .state == "active" and
	.peer_connected == false and .calls == 0 and .registrations == 0 and .workers >= 1 and
	.redundancy == "none" and .ha == false'
run_ctl -s "$SOCK" status
check_eq "cli: status (text): exit 0" "$RC" 0
check "cli: status (text): names the node" grep -q tcli "$T_TMP/out"
check "cli: status (text): a node without [ha] says it is alone" \
	grep -q 'alone (no HA)' "$T_TMP/out"
if grep -qE 'standby|not in sync|^peer' "$T_TMP/out"; then
	fail "cli: status (text): a node alone names no standby, peer or sync" "$OUT"
else
	pass "cli: status (text): a node alone names no standby, peer or sync"
fi
run_ctl -c "$CONF" status --json
check_eq "cli: -c CONFIG finds the socket" "$RC/$(jq -r .node "$T_TMP/out" 2>/dev/null)" 0/tcli

# One binding, so that the registrations list has an element to check.
printf '%s\r\n' "REGISTER sip:sipha.test SIP/2.0" \
	"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-cli-1;rport" "Max-Forwards: 70" \
	"From: <sip:1001@sipha.test>;tag=cli1" "To: <sip:1001@sipha.test>" \
	"Call-ID: cli-1@127.0.0.1" "CSeq: 1 REGISTER" "Contact: <sip:1001@127.0.0.1:5999>" \
	"Expires: 600" "Content-Length: 0" "" >"$T_TMP/reg"
check_eq "cli: a REGISTER for 1001 accepted" "$("$SIPJUNK" -f "$T_TMP/reg" "$DST" 2>&1)" 200
run_ctl -s "$SOCK" registrations --json
check_eq "cli: registrations --json: exit 0" "$RC" 0
json_check "cli: registrations --json: list of {aor, contact, expires}" '
	(.registrations | type == "array") and
	all(.registrations[]; (.aor | type == "string") and (.contact | type == "string") and
		(.expires | type == "number"))'
json_check "cli: registrations --json: the binding made" '
	.registrations == [{aor: "sip:1001@sipha.test", contact: "sip:1001@127.0.0.1:5999"} +
		{expires: .registrations[0].expires}] and .registrations[0].expires <= 600 and
	.registrations[0].expires > 590'
run_ctl -s "$SOCK" status --json
json_check "cli: status --json counts it" '.registrations == 1'

run_ctl -s "$SOCK" calls --json
check_eq "cli: calls --json: exit 0" "$RC" 0
json_check "cli: calls --json: list of {id, state, from, to, dn}" '
	(.calls | type == "array") and
	all(.calls[]; (.id | type == "string") and (.from | type == "string") and
		(.to | type == "string") and (.dn | type == "string") and
		([.state] | inside(["dialing", "ringing", "established", "queued", "released"])))'
run_ctl -s "$SOCK" agents --json
check_eq "cli: agents --json: exit 0" "$RC" 0
json_check "cli: agents --json: list of {agent, dn, state}" '
	(.agents | type == "array") and
	all(.agents[]; (.agent | type == "string") and (.dn | type == "string") and
		(.state | type == "string"))'
run_ctl -s "$SOCK" xdp --json
check_eq "cli: xdp --json: exit 0" "$RC" 0
json_check "cli: xdp --json: attached, mode, counters" '
	(.attached | type == "boolean") and (.mode | type == "string") and
	(.counters | type == "object") and all(.counters[]; type == "number")'
json_check "cli: xdp --json: not attached without [xdp]" '.attached == false'

run_ctl -s "$SOCK" metrics
check_eq "cli: metrics: exit 0" "$RC" 0
check_eq "cli: metrics: every sample line is Prometheus text" \
	"$(grep -v '^#' "$T_TMP/out" | grep -vE '^sipha_[a-z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9]+(\.[0-9]+)?$' | head -n 3)" ""
missing=
for m in sip_rx_messages sip_rx_unparsable sip_rx_rejected sip_rx_responses_dropped \
	sip_tx_responses register_ok transport_udp_in transport_tcp_framing_errors; do
	metric_from "$T_TMP/out" "$m" >/dev/null || missing+="$m "
done
check_eq "cli: metrics: the counters tests rely on" "$missing" ""
check_eq "cli: metrics: every sample has # TYPE" \
	"$(awk '/^# TYPE/ { t[$3] = 1; next } !/^#/ { n = $1; sub(/\{.*/, "", n); if (!(n in t)) print n }' "$T_TMP/out" | head -n 3)" ""

# Refusals and usage errors with a daemon.
run_ctl -s "$SOCK" no-such-command
check_eq "cli: unknown command: exit 2" "$RC" 2
run_ctl -s "$SOCK" no-such-command --json
check_eq "cli: unknown command --json: exit 2" "$RC" 2
json_check "cli: unknown command --json: one JSON object" 'type == "object"'
# The control socket: 0660 from its creation; through it, a user who is
# neither root nor in the sipha group may read but not change the node
# (SO_PEERCRED).  The test opens the socket's mode to let "nobody" in.
check_eq "cli: the control socket is created 0660" "$(stat -c %a "$SOCK")" 660
if command -v setpriv >/dev/null; then
	chmod 0666 "$SOCK"
	chmod o+x "$(dirname "$SOCK")"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$SIPHACTL" -s "$SOCK" "$@"; }
	out=$(as_nobody status --json 2>/dev/null)
	check_eq "cli: an unprivileged user may read (status)" "$?/$(jq -r .node <<<"$out")" 0/tcli
	err=$(as_nobody block add 10.66.0.0/16 2>&1 >/dev/null)
	check_eq "cli: an unprivileged user may not block: exit 1" "$?" 1
	check "cli: and is told why" grep -q "not permitted" <<<"$err"
	err=$(as_nobody switchover 2>&1 >/dev/null)
	check_eq "cli: an unprivileged user may not switch over: exit 1" "$?" 1
	check "cli: and is told why" grep -q "not permitted" <<<"$err"
	chmod 0660 "$SOCK"
	chmod o-x "$(dirname "$SOCK")"
else
	fail "cli: control socket permissions" "setpriv (util-linux) not installed"
fi

run_ctl -s "$SOCK" switchover
check_eq "cli: switchover without [ha]: exit 1" "$RC" 1
run_ctl -s "$SOCK" switchover --json
check_eq "cli: switchover --json without [ha]: exit 1" "$RC" 1
json_check "cli: switchover --json without [ha]: one JSON object, not ok" '.ok == false'
run_ctl -s "$SOCK" block add 192.0.2.0/24
check_eq "cli: block add without XDP: exit 1" "$RC" 1
run_ctl -s "$SOCK" block add 192.0.2.0/24 --json
check_eq "cli: block add --json without XDP: exit 1" "$RC" 1
json_check "cli: block add --json without XDP: ok false" '.ok == false'
run_ctl -s "$SOCK" block
check_eq "cli: block without arguments: exit 2" "$RC" 2
run_ctl -s "$SOCK" block frob 192.0.2.0/24
check_eq "cli: block with an unknown operation: exit 2" "$RC" 2

# A second daemon on the same control socket must not take it over.
"$SIPHAD" -c "$CONF" 2>"$T_TMP/second.log" &
second=$!
T_PIDS+=("$second")
wait_pid "$second" 10
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
	pass "cli: a second siphad on the same socket and port exits non-zero ($rc)"
else
	fail "cli: a second siphad on the same socket and port exits non-zero" "exit $rc"
	kill -KILL "$second" 2>/dev/null
fi
run_ctl -s "$SOCK" status --json
check_eq "cli: the first siphad still owns its socket" "$RC/$(jq -r .node "$T_TMP/out" 2>/dev/null)" 0/tcli

stop_siphad # exit 0 on SIGTERM, socket removed, no sanitizer report
run_ctl -s "$SOCK" status
check_eq "cli: siphactl after the daemon stopped: exit 3" "$RC" 3

# --- lib.sh namespaces: a LAN, siphad inside it, cleanup -----------------------------

if ns_lan lan a b; then
	pass "cli: ns_lan builds namespaces a and b on a bridge"
else
	fail "cli: ns_lan builds namespaces a and b on a bridge" "ip failed"
fi
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
check "cli: namespace a has its address" \
	bash -c "ip -n $(ns_name a) -4 addr show dev eth0 | grep -q 'inet 10.99.0.1/24'"
check_eq "cli: namespaces are named sipha-t<pid>-NAME" \
	"$(ip netns list | awk '{print $1}' | grep -c "^sipha-t$$-\(lan\|a\|b\)\$")" 3
NSCONF=$T_TMP/ns.ini
write_config "$NSCONF" 5060 tns 10.99.0.1
if start_siphad -n ns -N a "$NSCONF"; then
	check_eq "cli: siphad in namespace a answers OPTIONS from namespace b" \
		"$(ns_exec b "$SIPJUNK" -o 10.99.0.1:5060 2>&1)" 200
	check_eq "cli: and over TCP" "$(ns_exec b "$SIPJUNK" -o -t 10.99.0.1:5060 2>&1)" 200
	stop_siphad ns
fi
# The vip command's contract needs a [vip]; whether and when a lone node
# adds it is the HA tests' business, only the shape is checked here.
cat >>"$NSCONF" <<EOF

[vip]
address = 10.99.0.100/24
interface = eth0
EOF
if start_siphad -n nsvip -N a "$NSCONF"; then
	run_ctl -s "$(siphad_sock nsvip)" vip --json
	check_eq "cli: vip --json: exit 0" "$RC" 0
	json_check "cli: vip --json: address, interface, expected, present" '
		.address == "10.99.0.100/24" and .interface == "eth0" and
		(.expected | type == "boolean") and (.present | type == "boolean")'
	run_ctl -s "$(siphad_sock nsvip)" vip
	check_eq "cli: vip (text): exit 0" "$RC" 0
	stop_siphad nsvip
fi
ns_del a
ns_del b
ns_del lan
check_eq "cli: ns_del removes the namespaces" "$(ip netns list | grep -c "^sipha-t$$-")" 0

# The EXIT trap of lib.sh, in a child test killed half-way: its namespace,
# root-namespace veth and background process must all be gone afterwards.
child=$T_TMP/child.sh
cat >"$child" <<EOF
. "$T_ROOT/tests/integration/lib.sh"
ns_create x || exit 1
veth_add - "st$$" x eth0 || exit 1
run_bg sleep 300
echo "ns \$(ns_name x) pid \${T_PIDS[0]} tmp \$T_TMP"
sleep 300 &
wait \$!
EOF
bash "$child" >"$T_TMP/child.out" 2>&1 &
cpid=$!
T_PIDS+=("$cpid")
wait_until 10 grep -q '^ns ' "$T_TMP/child.out"
read -r _ cns _ cbg _ ctmp <"$T_TMP/child.out"
kill -TERM "$cpid"
wait_pid "$cpid" 10
check_eq "cli: a test killed with SIGTERM exits 143" "$?" 143
check "cli: its namespace is removed" bash -c "! ip netns list | grep -q '^$cns\\b'"
check "cli: its root-namespace veth is removed" bash -c "! ip link show st$$ >/dev/null 2>&1"
check "cli: its background process is stopped" bash -c "! kill -0 $cbg 2>/dev/null"
check "cli: its temp dir is removed" test ! -e "$ctmp"

finish
