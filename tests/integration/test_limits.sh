#!/usr/bin/env bash
# Resource limits (docs/CONFIG.md, "Limits"), on one node on loopback with
# tiny ones: max_calls 5, max_registrations 10, max_transactions 1024,
# tcp_max_per_source 4, [cti] max_clients 2.  Past each:
#
#   calls          an initial INVITE gets 503 with Retry-After: 5 (sipp,
#                  scenarios/full_invite.xml); the held calls end and a
#                  new call goes through again
#   registrations  a REGISTER for an 11th address of record gets 503 with
#                  Retry-After (scenarios/full_register.xml); a refresh of
#                  one already bound still gets 200
#   TCP            30 connections from one address: 26 closed at accept
#   CTI            a third client gets one Error line, then EOF; 40 more too
#   transactions   a 3 s flood of OPTIONS (udpflood): past 1024 live ones
#                  each gets 503 at once, and a REGISTER refreshing a
#                  binding (which max_registrations lets through) gets it
#                  with Retry-After too
#
# Each is counted (its sipha_* counter) and warned of in the log at most
# once a second: every two warnings of one limit are at least ~1 s apart
# (950 ms: the log's wall clock and the loop's clock round apart), however
# many were refused between them.  Bounded: sipp by -timeout and
# timeout(1), udpflood by -T, every wait by wait_until, reads by read -t.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq timeout
UDPFLOOD=${UDPFLOOD:-$T_BUILD/tests/tools/udpflood}
require_bin "$SIPHAD" "$SIPHACTL" "$UDPFLOOD"

SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
SIPP_TO=30
declare -A SP_PID=()

free_port PORT && free_port UAS && free_port CTI || finish
CONF=$T_TMP/limits.ini
write_config "$CONF" "$PORT" tlimits
sed -i -e "s/^domain = .*/&\nmax_calls = 5\nmax_registrations = 10\nmax_transactions = 1024\ntcp_max_per_source = 4/" \
	-e "s/^3000 = sip:127.0.0.1:5999/3000 = sip:127.0.0.1:$UAS/" "$CONF"
cat >>"$CONF" <<EOF

[cti]
listen = 127.0.0.1:$CTI
max_clients = 2
EOF
start_siphad "$CONF" || finish
LOG=$(siphad_log)

metric_is() { [ "$(metric "$1")" = "$2" ]; }
log_mark() { wc -l <"$LOG"; }

# rl_check LABEL FROM PATTERN MIN: the warnings matching PATTERN in the log
# after line FROM: at least MIN of them, each two at least 950 ms apart.
rl_check() {
	local ts n gap
	ts=$(tail -n +$(($2 + 1)) "$LOG" | grep -E "$3" |
		awk '{ split($1, t, "."); printf "%.0f\n", t[1] * 1000 + t[2] }')
	n=$(grep -c . <<<"$ts")
	gap=$(awk 'NR > 1 && (m == "" || $1 - p < m) { m = $1 - p } { p = $1 }
		END { print m == "" ? 1000000 : m }' <<<"$ts")
	if [ "$n" -ge "$4" ] && [ "$gap" -ge 950 ]; then
		pass "$1: warned $n time(s)$([ "$n" -gt 1 ] && echo ", at least $gap ms apart")"
	else
		fail "$1: warned at least $4 times, at most once a second" "$n warnings, closest $gap ms apart"
	fi
}

# sipp_to NAME ARGS...: sipp_bg towards the node, from a port of its own.
sipp_to() {
	local n=$1 sport
	shift
	free_port sport || return 1
	sipp_bg "$n" "$@" -p "$sport" "127.0.0.1:$PORT"
}

# sipp_ok LABEL NAME CALLS: sipp NAME ended with CALLS successful, none failed.
sipp_ok() {
	sipp_end "$2" $((SIPP_TO + 20))
	check_eq "$1 (sipp $2: exit status, successful/failed)" "$SIPP_RC $SIPP_OK/$SIPP_FAILED" "0 $3/0"
}

# users FILE FIRST LAST: a sipp injection file of users FIRST..LAST.
users() {
	{
		echo SEQUENTIAL
		seq "$2" "$3" | sed 's/$/;/'
	} >"$1"
}

# --- calls -------------------------------------------------------------------------------
sipp_bg uas -sn uas -p "$UAS" -m 6
wait_until 5 sh -c "ss -Hlun 'sport = :$UAS' | grep -q ." || info "uas: not bound after 5 s"
sipp_to hold -sn uac -s 3000 -m 5 -r 50 -l 5 -d 6000
if wait_until 10 metric_is calls 5; then
	pass "limits: 5 calls up (max_calls 5)"
else
	fail "limits: 5 calls up (max_calls 5)" "sipha_calls $(metric calls)"
fi
mark=$(log_mark)
sipp_to full -sf "$SCN/full_invite.xml" -s 3000 -m 20 -r 20
sipp_ok "limits: past max_calls an INVITE gets 503 with Retry-After: 5" full 20
check_eq "limits: sipha_calls_overload counts them" "$(metric calls_overload)" 20
check_eq "limits: no call was added" "$(metric calls)" 5
rl_check "limits: max_calls" "$mark" "max_calls \(5\) calls up" 1
sipp_ok "limits: the 5 held calls" hold 5
sipp_to again -sn uac -s 3000 -m 1 -d 0
sipp_ok "limits: below max_calls again, a call goes through" again 1
sipp_ok "limits: the callee" uas 6

# --- registrations -----------------------------------------------------------------------
users "$T_TMP/u10.csv" 1001 1010
users "$T_TMP/u3.csv" 1011 1013
users "$T_TMP/u1.csv" 1001 1001
sipp_to reg -sf "$SCN/register.xml" -inf "$T_TMP/u10.csv" -key expires 600 -key cparam ";x=y" \
	-m 10 -r 50
sipp_ok "limits: 10 addresses of record registered (max_registrations 10)" reg 10
mark=$(log_mark)
sipp_to regfull -sf "$SCN/full_register.xml" -inf "$T_TMP/u3.csv" -m 3 -r 20
sipp_ok "limits: an 11th gets 503 with Retry-After: 5" regfull 3
check_eq "limits: sipha_register_overload counts them" "$(metric register_overload)" 3
check_eq "limits: still 10 (sipha_aors)" "$(metric aors)" 10
rl_check "limits: max_registrations" "$mark" "max_registrations \(10\) reached" 1
sipp_to refresh -sf "$SCN/register.xml" -inf "$T_TMP/u1.csv" -key expires 600 -key cparam ";x=y" \
	-m 1
sipp_ok "limits: one already bound is refreshed at the limit" refresh 1

# --- TCP ---------------------------------------------------------------------------------
mark=$(log_mark)
fds=()
for _ in $(seq 30); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || break
	fds+=("$fd")
done
if wait_until 5 metric_is transport_tcp_refused 26; then
	pass "limits: 30 connections from one address, 26 refused at accept"
else
	fail "limits: 30 connections from one address, 26 refused at accept" \
		"sipha_transport_tcp_refused $(metric transport_tcp_refused)"
fi
check_eq "limits: 4 open" "$(metric tcp_connections)" 4
for fd in "${fds[@]}"; do exec {fd}>&-; done
rl_check "limits: tcp_max_per_source" "$mark" "tcp: connection from .* refused" 1

# --- CTI ---------------------------------------------------------------------------------
exec {c1}<>"/dev/tcp/127.0.0.1/$CTI" && exec {c2}<>"/dev/tcp/127.0.0.1/$CTI"
wait_until 5 metric_is cti_clients 2 || info "cti: $(metric cti_clients) clients, not 2"
mark=$(log_mark)
exec {c3}<>"/dev/tcp/127.0.0.1/$CTI"
line=
read -r -t 5 line <&"$c3"
check_eq "limits: past max_clients a CTI client gets an Error line" \
	"$(jq -c . <<<"$line" 2>/dev/null)" '{"event":"Error","reason":"too many clients (max_clients 2)"}'
read -r -t 5 rest <&"$c3"
check_eq "limits: then the connection is closed (EOF, not a timeout)" "$?/${rest:-}" "1/"
exec {c3}>&-
errors=0
for _ in $(seq 40); do
	exec {c}<>"/dev/tcp/127.0.0.1/$CTI" || break
	read -r -t 5 line <&"$c" && [[ $line == *'"event":"Error"'* ]] && errors=$((errors + 1))
	exec {c}>&-
done
check_eq "limits: 40 more, each an Error line" "$errors" 40
check_eq "limits: sipha_cti_refused counts 41" "$(metric cti_refused)" 41
check_eq "limits: the two clients stay" "$(metric cti_clients)" 2
rl_check "limits: cti max_clients" "$mark" "cti: connection from .* refused" 1
exec {c1}>&- {c2}>&-

# --- transactions ------------------------------------------------------------------------
mark=$(log_mark)
over0=$(metric sip_rx_overload)
run_bg timeout 20 "$UDPFLOOD" -n 24000 -r 8000 -k options -T 15 "127.0.0.1:$PORT" \
	>"$T_TMP/flood.out" 2>&1
wait_pid "$!" 20
check_eq "limits: udpflood sent its 24000 OPTIONS" "$(awk '$1 == "sent" {print $2}' "$T_TMP/flood.out")" 24000
wait_until 10 sh -c "[ \"\$($SIPHACTL -s $(siphad_sock) metrics | awk '/^sipha_transactions/ {print \$2}')\" -ge 1024 ]"
over=$(($(metric sip_rx_overload) - over0))
check "limits: past max_transactions the flood got 503s at once ($over)" test "$over" -ge 10000
check_eq "limits: 1024 transactions live" "$(metric transactions)" 1024
regs0=$(metric register_overload)
sipp_to full_txn -sf "$SCN/full_register.xml" -inf "$T_TMP/u1.csv" -m 1
sipp_ok "limits: a REGISTER refresh while full gets 503 with Retry-After: 5" full_txn 1
check_eq "limits: ... from max_transactions, not max_registrations" \
	"$(($(metric sip_rx_overload) - over0 - over))/$(($(metric register_overload) - regs0))" "1/0"
# The flood lasts 3 s: two warnings at least, a second apart, for thousands.
rl_check "limits: max_transactions" "$mark" "max_transactions \(1024\) live" 2
check "limits: a warning says how many it held back" \
	grep -qE "max_transactions \(1024\) live \([1-9][0-9]* more since the last warning\)" "$LOG"

check_eq "limits: the daemon still answers" "$(ctl status --json | jq -r .node)" tlimits
stop_siphad
finish
