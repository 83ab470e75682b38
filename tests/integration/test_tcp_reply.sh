#!/usr/bin/env bash
# RFC 3261 §18.2.2 over TCP: a caller closes the connection its INVITE came
# on once it has the 100 Trying; the answer must then reach it over a NEW
# connection sipha opens to the request's source IP at its top Via's port
# (not to the closed connection's ephemeral source port).
#
# One process plays both ends (tests/tools/tcpreply/, main.c's header says what
# it checks): the caller over TCP (listening on the port its Via names) and
# the callee of DN 3000 over UDP.  Here: the tool saw every step, the call
# ended (siphactl calls is empty), and sipha opened exactly one connection
# (to the caller; the callee is UDP) and accepted exactly one (the caller's).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd jq ss timeout
TCPREPLY=${TCPREPLY:-$T_BUILD/tests/tools/tcpreply}
require_bin "$SIPHAD" "$SIPHACTL" "$TCPREPLY"

free_port PORT || finish   # siphad
free_port CALLER || finish # the caller's TCP listening port (its Via)
free_port CALLEE || finish # the callee, UDP
CONF=$T_TMP/tcpreply.ini
cat >"$CONF" <<EOF
[node]
id = ttr
state_dir = $T_TMP/state-ttr

[sip]
listen = 127.0.0.1:$PORT
domain = sipha.test

[control]
socket = $T_TMP/ttr.sock

[engine]
workers = 1

[dn]
3000 = sip:127.0.0.1:$CALLEE
EOF
start_siphad "$CONF" || finish

_no_calls() {
	[ "$(ctl --json calls 2>/dev/null | jq -r '.calls | length' 2>/dev/null)" = 0 ]
}

# The tool bounds itself (-T 12); timeout(1) and wait_pid bound it again.
run_bg timeout -k 2 15 "$TCPREPLY" -T 12 "$PORT" "$CALLER" "$CALLEE" \
	>"$T_TMP/tcpreply.out" 2>&1
wait_pid $! 20
rc=$?
if [ "$rc" -eq 0 ]; then
	pass "tcp_reply: answer over a new connection to the Via port ($(head -n 1 "$T_TMP/tcpreply.out"))"
else
	fail "tcp_reply: answer over a new connection to the Via port" "tcpreply exit $rc"
	sed 's/^/# /' "$T_TMP/tcpreply.out"
fi

if wait_until 5 _no_calls; then
	pass "tcp_reply: siphactl calls is empty afterwards"
else
	fail "tcp_reply: siphactl calls is empty afterwards" \
		"$(ctl --json calls | jq -c '[.calls[] | .state]')"
fi
metrics_snapshot "$T_TMP/metrics"
m() { metric_from "$T_TMP/metrics" "$1"; }
check_eq "tcp_reply: sipha opened one TCP connection (to the caller's Via port)" \
	"$(m transport_tcp_connects)" 1
check_eq "tcp_reply: sipha accepted one TCP connection (the caller's first)" \
	"$(m transport_tcp_accepted)" 1
check_eq "tcp_reply: the call was answered and released" \
	"$(m calls_answered)/$(m calls_released)/$(m calls_failed)" "1/1/0"
check_eq "tcp_reply: no failed TCP write" "$(m transport_tcp_send_errors)" 0

stop_siphad
finish
