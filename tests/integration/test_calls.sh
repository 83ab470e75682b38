#!/usr/bin/env bash
# The B2BUA call engine end to end, sipp as caller (A) and as callee (B):
#
#   A --> siphad (UAS | UAC) --> B
#
# Every flow has a siphad of its own (so that its counters are its own) and
# runs 200 calls (50 for the no-answer flow), with several flows at once.
# For each: A's and B's sipp statistics show every call successful and none
# failed, `siphactl calls` is empty afterwards, and the sipha_calls_*
# counters moved by exactly what the flow implies.
#
# Over UDP: basic call (BYE from A), BYE from B, early media (183 with SDP),
# CANCEL while ringing, B refuses (486, 603, 404), no answer (480 to A,
# CANCEL to B), re-INVITE / UPDATE / OPTIONS / INFO in the dialog, a BYE of
# no dialog (481), routing (unknown DN 404, unregistered extension 480, a
# routing point nobody routes: 180, then 480 after route_timeout_ms), and B
# registered as an extension.  Over TCP: basic,
# BYE from B, CANCEL, refusals, a callee that does not listen (503 at
# once), in-dialog requests, and B registered as an
# extension (its calls must come over the REGISTER's connection).  Last, a
# call to a daemon that has been idle for a few seconds.
#
# Scenarios: tests/integration/scenarios/call_*.xml (their headers say what
# each side checks).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ss timeout
require_bin "$SIPHAD" "$SIPHACTL"

SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
N=200        # calls per flow
N_NOANS=50   # the no-answer flow: each call rings for NOANS_MS
NOANS_MS=1000
RATE=100     # calls/s offered by each caller
LIMIT=100    # concurrent calls per caller
SIPP_TO=45   # sipp's own bound on a run, seconds

declare -A F_PORT=() F_UAS=() F_PROTO=() F_CALLS=() SP_PID=()

# --- one siphad per flow ------------------------------------------------------------

# flow_daemon FLOW PROTO [NO_ANSWER_MS [ROUTE_TIMEOUT_MS]]: starts siphad
# instance FLOW whose static route 3000 leads to the flow's callee port over
# PROTO (udp|tcp); with ROUTE_TIMEOUT_MS it has a CTI server (nobody
# connects) and routing point 2000 gives up after that long.
flow_daemon() {
	local f=$1 proto=$2 na=${3:-} rt=${4:-} port uas conf route cti=""
	free_port port || return 1
	free_port uas || return 1
	route="sip:127.0.0.1:$uas"
	[ "$proto" = tcp ] && route+=";transport=tcp"
	if [ -n "$rt" ]; then
		free_port cti || return 1
		cti="[cti]
listen = 127.0.0.1:$cti
route_timeout_ms = $rt"
	fi
	conf=$T_TMP/$f.ini
	cat >"$conf" <<EOF
[node]
id = $f
state_dir = $T_TMP/state-$f

[sip]
listen = 127.0.0.1:$port
domain = sipha.test
${na:+no_answer_ms = $na}

[control]
socket = $T_TMP/$f.sock

[engine]
workers = 1
$cti

[dn]
1001 = extension
1002 = extension
2000 = routing-point
3000 = $route
EOF
	F_PORT[$f]=$port F_UAS[$f]=$uas F_PROTO[$f]=$proto
	start_siphad -n "$f" "$conf"
}

# --- sipp ------------------------------------------------------------------------------



# sipp_avg_call_ms NAME: the average call length of a finished run, in ms.
sipp_avg_call_ms() {
	awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } { last = $0 }
		END { split(last, f, ";"); split(f[h["CallLength(C)"]], t, ":")
			printf "%d\n", ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] / 1000 }' \
		"$T_TMP/$1.stat.csv" 2>/dev/null
}

# --- flows -----------------------------------------------------------------------------

# flow_start FLOW CALLS [CALLEE ARGS...] -- CALLER ARGS...: starts the callee
# (none when no arguments come before "--") on the flow's callee port, then
# the caller towards the flow's siphad.  In the arguments "@X" stands for the
# scenario file X.
flow_start() {
	local f=$1 calls=$2 a callee=() caller=() cport t=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		a=$1
		[[ $a == @* ]] && a=$SCN/${a#@}
		callee+=("$a")
		shift
	done
	shift
	for a in "$@"; do
		[[ $a == @* ]] && a=$SCN/${a#@}
		caller+=("$a")
	done
	F_CALLS[$f]=$calls
	[ "${F_PROTO[$f]}" = tcp ] && t=(-t t1)
	if [ ${#callee[@]} -gt 0 ]; then
		sipp_bg "$f.b" "${callee[@]}" "${t[@]}" -p "${F_UAS[$f]}" -m "$calls"
		# sipp binds before it reads its scenario's first message; give it a moment
		wait_until 5 _port_bound "${F_UAS[$f]}" "${F_PROTO[$f]}" ||
			info "$f: callee not bound on ${F_UAS[$f]} after 5 s"
	fi
	free_port cport || return 1
	sipp_bg "$f.a" "${caller[@]}" "${t[@]}" -p "$cport" -m "$calls" -r "$RATE" -l "$LIMIT" \
		"127.0.0.1:${F_PORT[$f]}"
}

_port_bound() { # PORT udp|tcp
	if [ "$2" = tcp ]; then
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
	else
		ss -Hlun "sport = :$1" 2>/dev/null | grep -q .
	fi
}

_no_calls() { # FLOW
	[ "$(ctl -n "$1" --json calls 2>/dev/null | jq -r '.calls | length' 2>/dev/null)" = 0 ]
}

# flow_end FLOW [CALLEE_CALLS]: waits for the flow's sipp runs and checks
# both sides (the callee's count defaults to the flow's calls; "-": no
# callee), that the call table empties, and snapshots the metrics into
# $T_TMP/FLOW.metrics for expect.
flow_end() {
	local f=$1 calls=${F_CALLS[$1]} bcalls=${2:-${F_CALLS[$1]}}
	sipp_end "$f.a" $((SIPP_TO + 20))
	check_eq "calls: $f: caller sipp exit status" "$SIPP_RC" 0
	check_eq "calls: $f: caller completed $calls calls, none failed" \
		"$SIPP_OK/$SIPP_FAILED" "$calls/0"
	if [ "$bcalls" != - ] && [ -n "${SP_PID[$f.b]:-}" ]; then
		# The callee ends once it has seen its last call through; give it
		# a little while after the caller, no more.
		sipp_end "$f.b" 15
		check_eq "calls: $f: callee sipp exit status" "$SIPP_RC" 0
		check_eq "calls: $f: callee completed $bcalls calls, none failed" \
			"$SIPP_OK/$SIPP_FAILED" "$bcalls/0"
	fi
	if wait_until 5 _no_calls "$f"; then
		pass "calls: $f: siphactl calls is empty afterwards"
	else
		fail "calls: $f: siphactl calls is empty afterwards" \
			"$(ctl -n "$f" --json calls |
				jq -c '[.calls[] | .state] | group_by(.) | map({(.[0]): length}) | add')"
	fi
	metrics_snapshot "$T_TMP/$f.metrics" "$f"
}

# expect FLOW METRIC VALUE...: each counter of the flow's snapshot equals VALUE.
expect() {
	local f=$1 m v
	shift
	while [ $# -ge 2 ]; do
		m=$1 v=$2
		shift 2
		check_eq "calls: $f: sipha_$m is $v" "$(metric_from "$T_TMP/$f.metrics" "$m")" "$v"
	done
}

# expect_tcp_only FLOW: all of the flow's SIP traffic went over TCP.
expect_tcp_only() {
	local f=$1 tin
	tin=$(metric_from "$T_TMP/$f.metrics" transport_tcp_in)
	check_eq "calls: $f: no SIP over UDP" "$(metric_from "$T_TMP/$f.metrics" transport_udp_in)" 0
	check "calls: $f: SIP over TCP ($tin messages in)" test "${tin:-0}" -ge "${F_CALLS[$f]}"
}

# A callee registered as extension 1001 (over the flow's transport), the
# caller dialing 1001: flow_reg_start FLOW / flow_reg_end FLOW.
flow_reg_start() {
	local f=$1 cparam="" t=()
	[ "${F_PROTO[$f]}" = tcp ] && cparam=";transport=tcp" t=(-t t1)
	# -trace_logs: the registered callee logs how many calls it answered
	sipp_bg "$f.b" -sf "$SCN/call_uas_registered.xml" -oocsf "$SCN/call_uas_registered_ooc.xml" \
		"${t[@]}" -s 1001 -set ncalls "$N" -key cparam "$cparam" -p "${F_UAS[$f]}" -m 1 \
		-trace_logs -log_file "$f.b.log" "127.0.0.1:${F_PORT[$f]}"
	if ! wait_until 10 _registered "$f"; then
		fail "calls: $f: callee registers 1001" "no binding after 10 s"
		return 1
	fi
	pass "calls: $f: callee registers 1001"
	flow_start "$f" "$N" -- -sn uac -s 1001
}

_registered() {
	ctl -n "$1" --json registrations 2>/dev/null |
		jq -e '.registrations | map(select(.aor == "sip:1001@sipha.test")) | length == 1' >/dev/null
}

flow_reg_end() {
	local f=$1 answered
	flow_end "$f" -
	sipp_end "$f.b" 20
	check_eq "calls: $f: registered callee sipp exit status" "$SIPP_RC" 0
	answered=$(sed -n 's/^answered \([0-9]*\).*/\1/p' "$T_TMP/$f.b.log" 2>/dev/null | tail -n 1)
	check_eq "calls: $f: registered callee answered every call" "${answered:-none}" "$N"
	check_eq "calls: $f: callee unregistered" \
		"$(ctl -n "$f" --json registrations | jq -r '.registrations | length')" 0
}

# --- UDP, first half ---------------------------------------------------------------------
# Every flow's daemon is started right before its sipp runs.

info "UDP: basic, BYE from the callee, early media, CANCEL, 486 / 603 / 404 from the callee"
flow_daemon u-idle udp || finish
# Nothing may talk to u-idle from here until its call (a control request
# wakes its event loop too).
idle_out0=$(metric transport_udp_out u-idle)
idle_since=$(date +%s)
flow_daemon u-basic udp || finish
flow_start u-basic $N -sn uas -- -sn uac -s 3000
flow_daemon u-byeb udp || finish
flow_start u-byeb $N -sf @call_uas_bye.xml -- -sf @call_uac_bye.xml -s 3000
flow_daemon u-early udp || finish
flow_start u-early $N -sf @call_uas_early.xml -- -sf @call_uac_early.xml -s 3000
flow_daemon u-cancel udp || finish
flow_start u-cancel $N -sf @call_uas_cancelled.xml -- -sf @call_uac_cancel.xml -s 3000
for code in 486 603 404; do
	flow_daemon "u-$code" udp || finish
	flow_start "u-$code" $N -sf @call_uas_refuse.xml -set code $code -- \
		-sf @call_uac_refused.xml -set want $code -s 3000
done

flow_end u-basic
expect u-basic calls_offered $N calls_ringing $N calls_answered $N calls_failed 0 \
	calls_released $N indialog_relayed $N calls_no_ack 0 calls 0
flow_end u-byeb
expect u-byeb calls_offered $N calls_answered $N calls_failed 0 calls_released $N \
	indialog_relayed $N calls 0
flow_end u-early
expect u-early calls_offered $N calls_ringing $N calls_answered $N calls_failed 0 \
	calls_released $N calls 0
flow_end u-cancel
expect u-cancel calls_offered $N calls_ringing $N calls_cancelled $N calls_answered 0 \
	calls_released $N calls 0
for code in 486 603 404; do
	flow_end "u-$code"
	# the ACK for the error response matched A's transaction: none dropped
	expect "u-$code" calls_offered $N calls_failed $N calls_answered 0 calls_released $N \
		sip_rx_ack_dropped 0 calls 0
done
for f in u-basic u-byeb u-early u-cancel u-486 u-603 u-404; do
	stop_siphad "$f"
done

# --- UDP, second half ----------------------------------------------------------------------

info "UDP: in-dialog requests, 481, routing, no answer, registered callee"
flow_daemon u-indlg udp || finish
flow_start u-indlg $N -sf @call_uas_indialog.xml -- -sf @call_uac_indialog.xml -s 3000
flow_daemon u-481 udp || finish
flow_start u-481 $N -- -sf @call_uac_nodialog.xml -s 3000
# routing: 4999 is no DN, 1002 an extension nobody registered; 2000 a
# routing point nobody routes (180, then 480 after the route timeout)
for r in 404:4999 480:1002; do
	flow_daemon "u-dn${r%%:*}" udp || finish
	flow_start "u-dn${r%%:*}" $N -- -sf @call_uac_refused.xml -set want "${r%%:*}" -s "${r#*:}"
done
flow_daemon u-rp udp "" $NOANS_MS || finish
flow_start u-rp $N_NOANS -- -sf @call_uac_refused.xml -set want 480 -s 2000
flow_daemon u-noans udp $NOANS_MS || finish
flow_start u-noans $N_NOANS -sf @call_uas_cancelled.xml -- \
	-sf @call_uac_refused.xml -set want 480 -s 3000
flow_daemon u-ext udp || finish
flow_reg_start u-ext

flow_end u-indlg
# re-INVITE, UPDATE, OPTIONS, INFO and BYE relayed; none answered by sipha itself
expect u-indlg calls_offered $N calls_answered $N calls_failed 0 calls_released $N \
	indialog_relayed $((5 * N)) options_answered 0 no_dialog 0 calls 0
flow_end u-481
expect u-481 no_dialog $N indialog_relayed 0 calls_offered 0 calls 0
for c in 404 480; do
	flow_end "u-dn$c"
	expect "u-dn$c" calls_offered $N calls_failed $N calls_answered 0 calls_ringing 0 \
		sip_rx_ack_dropped 0 calls 0
done
flow_end u-rp
expect u-rp calls_offered $N_NOANS calls_failed $N_NOANS calls_route_timeout $N_NOANS \
	calls_answered 0 sip_rx_ack_dropped 0 calls 0
flow_end u-noans
expect u-noans calls_offered $N_NOANS calls_ringing $N_NOANS calls_no_answer $N_NOANS \
	calls_answered 0 calls_cancelled 0 calls_released $N_NOANS calls 0
# each call rang for no_answer_ms before the 480: not earlier, not much later
avg=$(sipp_avg_call_ms u-noans.a)
if [ -n "$avg" ] && [ "$avg" -ge $((NOANS_MS - 50)) ] && [ "$avg" -le $((NOANS_MS + 1000)) ]; then
	pass "calls: u-noans: 480 after no_answer_ms ($NOANS_MS ms; average call $avg ms)"
else
	fail "calls: u-noans: 480 after no_answer_ms ($NOANS_MS ms)" "average call ${avg:-?} ms"
fi
flow_reg_end u-ext
expect u-ext calls_offered $N calls_answered $N calls_failed 0 calls_released $N calls 0
for f in u-indlg u-481 u-dn404 u-dn480 u-rp u-noans u-ext; do
	stop_siphad "$f"
done

# --- TCP ---------------------------------------------------------------------------------

info "TCP: basic, BYE from the callee, CANCEL, 486 / 603 / 404, in-dialog requests," \
	"registered callee"
flow_daemon t-basic tcp || finish
flow_start t-basic $N -sn uas -- -sn uac -s 3000
flow_daemon t-byeb tcp || finish
flow_start t-byeb $N -sf @call_uas_bye.xml -- -sf @call_uac_bye.xml -s 3000
flow_daemon t-cancel tcp || finish
flow_start t-cancel $N -sf @call_uas_cancelled.xml -- -sf @call_uac_cancel.xml -s 3000
for code in 486 603 404; do
	flow_daemon "t-$code" tcp || finish
	flow_start "t-$code" $N -sf @call_uas_refuse.xml -set code $code -- \
		-sf @call_uac_refused.xml -set want $code -s 3000
done
# Nobody listens where 3000 leads: the connect is refused and the caller
# hears 503 at once, not a 408 after Timer B's 32 s (beyond sipp's 15 s
# -recv_timeout, which would fail the calls).
flow_daemon t-503 tcp || finish
flow_start t-503 20 -- -sf @call_uac_refused.xml -set want 503 -s 3000
flow_daemon t-indlg tcp || finish
flow_start t-indlg $N -sf @call_uas_indialog.xml -- -sf @call_uac_indialog.xml -s 3000
flow_daemon t-ext tcp || finish
flow_reg_start t-ext

flow_end t-basic
expect t-basic calls_offered $N calls_ringing $N calls_answered $N calls_failed 0 \
	calls_released $N indialog_relayed $N calls 0
expect_tcp_only t-basic
flow_end t-byeb
expect t-byeb calls_offered $N calls_answered $N calls_failed 0 calls_released $N \
	indialog_relayed $N calls 0
expect_tcp_only t-byeb
flow_end t-cancel
expect t-cancel calls_offered $N calls_ringing $N calls_cancelled $N calls_answered 0 \
	calls_released $N calls 0
expect_tcp_only t-cancel
for code in 486 603 404; do
	flow_end "t-$code"
	expect "t-$code" calls_offered $N calls_failed $N calls_answered 0 calls_released $N \
		sip_rx_ack_dropped 0 calls 0
	expect_tcp_only "t-$code"
done
flow_end t-503
expect t-503 calls_offered 20 calls_failed 20 calls_answered 0 calls_released 20 calls 0
expect_tcp_only t-503
flow_end t-indlg
expect t-indlg calls_offered $N calls_answered $N calls_failed 0 calls_released $N \
	indialog_relayed $((5 * N)) options_answered 0 calls 0
expect_tcp_only t-indlg
flow_reg_end t-ext
expect t-ext calls_offered $N calls_answered $N calls_failed 0 calls_released $N calls 0
expect_tcp_only t-ext
# the calls reached the callee over the connection its REGISTER came on
expect t-ext transport_tcp_connects 0
for f in t-basic t-byeb t-cancel t-486 t-603 t-404 t-503 t-indlg t-ext; do
	stop_siphad "$f"
done

# --- a call to a daemon that has been idle ----------------------------------------------
# u-idle has had no request of any kind since it started (the flows above
# took well over 3 s): its event loop slept all along.  The first call must
# go through as any other, with no spurious retransmission: sipha sends A
# 100, 180, 200 (INVITE) and 200 (BYE), and B the INVITE, the ACK and the
# BYE - 7 datagrams.

while [ $(($(date +%s) - idle_since)) -lt 3 ]; do sleep 0.2; done
info "UDP: one call after $(($(date +%s) - idle_since)) s idle"
flow_start u-idle 1 -sn uas -- -sn uac -s 3000
flow_end u-idle
expect u-idle calls_answered 1 calls_released 1
check_eq "calls: u-idle: sipha sent 7 datagrams for the call, no retransmission" \
	"$(($(metric_from "$T_TMP/u-idle.metrics" transport_udp_out) - ${idle_out0:-0}))" 7
stop_siphad u-idle

finish
