#!/usr/bin/env bash
# sipha-load, the project's own load tool, end to end on loopback:
#
#   1. sipha-load --uac against sipha-load --uas directly: 200 calls at
#      100/s, every one ok, none failed, the UAS saw 200 INVITEs and BYEs;
#      --hist writes a histogram gnuplot can read.
#   2. The same through siphad (the B2BUA): caller -> siphad -> sipha-load
#      --uas as DN 3000's route, every call ok, siphad's call table empty
#      afterwards.
#   3. --uac --uas in one process.
#   4. Usage errors exit 2 and name the argument.
#   5. Nobody answers: every call is a timeout failure, INVITEs were
#      retransmitted (timer A), exit status 1 (short T1 keeps this fast).
#   6. probe: OPTIONS every 1 ms for 2 s to a sipha-load --uas that is
#      stopped (SIGSTOP) for 400 ms in the middle: every OPTIONS answered, one
#      gap of about 400 ms; and to siphad: every one answered, no gap to speak
#      of; and to nobody: exit 1, the whole run one open gap.
#   7. TCP (-t t1): directly, with the callee killed and started again
#      mid-run (the caller reconnects; every call ends ok or, if its transaction
#      was on the broken connection, as a transport failure), and
#      through siphad (the route to the callee over TCP).
#   8. Digest: through a siphad with [auth], the caller as extension 1001
#      with the right password (every INVITE challenged 407 and sent again
#      with credentials, every call ok) and a wrong one (403, exit 1); 5
#      users registered with digest (each REGISTER challenged once, all ok),
#      and with a wrong password (every registration failed, exit 1).
#   9. REGISTER: 50 users alone (registrar load mode), every one in siphad's
#      table; a callee that registers 1001 with a short expiry and refreshes
#      it while a caller, which first registers 5 users of its own, calls
#      1001 through siphad (routed to the callee's contact): every call ok.
#  10. OPTIONS and re-INVITE in held calls, through siphad (relayed to the
#      callee): each counted and timed, none failed.
#  11. Record-Route: through Kamailio as a record-routing proxy that refuses
#      in-dialog requests without its Route: ACK, BYE, OPTIONS and re-INVITE
#      follow the route set, every call ok.
#  12. The stateful callee: sipp cancels ringing calls (--ring-ms): 200 to
#      the CANCEL, 487 to the INVITE, ACKed; sipp never ACKs a 200: it is
#      sent again at T1, 2·T1, ... and given up at 64·T1 (counted); a caller
#      with a short T1 against a callee reading every 100 ms: retransmitted
#      INVITEs get the last answer again, every call ok.
#  13. Hold-time distributions: the holds drawn are in range with the right
#      mean; usage errors.
#  14. --max-rate against a callee the caller's own call limit caps at
#      60 calls/s: steps pass below, fail above, the rate found is near 60.
. "$(dirname "$0")/lib.sh"

require_cmd jq ss timeout
LOAD=${SIPHA_LOAD:-$T_BUILD/sipha-load}
require_bin "$LOAD" "$SIPHAD" "$SIPHACTL"

jqt() { jq -e "$@" >/dev/null; }
_udp_bound() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

# uas_start PORT NAME [ARGS...]: a sipha-load UAS on 127.0.0.1:PORT (ARGS
# "-t t1": over TCP), its JSON in $T_TMP/NAME.json when it ends (SIGTERM).
uas_start() {
	local port=$1 name=$2
	shift 2
	run_bg "$LOAD" --uas -i 127.0.0.1 -p "$port" -q --json "$@" >"$T_TMP/$name.json" \
		2>"$T_TMP/$name.err"
	UAS_PID=$!
	if [ "${1:-}" = "-t" ]; then
		wait_until 5 _tcp_bound "$port" || info "UAS not listening on $port after 5 s"
	else
		wait_until 5 _udp_bound "$port" || info "UAS not bound on $port after 5 s"
	fi
}
_tcp_bound() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

uas_stop() { # PID
	kill -TERM "$1" 2>/dev/null
	wait_pid "$1" 10
}

# --- 1. directly ---------------------------------------------------------------------
free_port up || finish
uas_start "$up" uas1
run_bg "$LOAD" --uac -s 3000 -r 100 -m 200 -d 50 -q --json --hist "$T_TMP/h1.dat" \
	"127.0.0.1:$up" >"$T_TMP/uac1.json" 2>"$T_TMP/uac1.err"
wait_pid $! 30
check_eq "load: direct: uac exit status" "$?" 0
uac=$(cat "$T_TMP/uac1.json")
check "load: direct: --json is one object" is_one_json_object <"$T_TMP/uac1.json"
check_eq "load: direct: ok/failed" "$(jq -r '"\(.ok)/\(.failed)"' <<<"$uac")" "200/0"
check "load: direct: setup p50 <= p99 <= max, max > 0" \
	jqt '.setup_us | .p50 <= .p99 and .p99 <= .p999 and .p999 <= .max and .max > 0' <<<"$uac"
check "load: direct: cpu_s is a number" jqt '.cpu_s | type == "number" and . > 0' <<<"$uac"
check_eq "load: direct: histogram holds 200 set-ups" \
	"$(awk '/^#/ || NF == 0 { if (NF == 0) blank++; next } blank == 0 { s += $2 } END { print s + 0 }' "$T_TMP/h1.dat")" 200
uas_stop "$UAS_PID"
check_eq "load: direct: uas invites/acks/byes" \
	"$(jq -r '.uas | "\(.invites)/\(.acks)/\(.byes)"' "$T_TMP/uas1.json")" "200/200/200"

# --- 2. through siphad -----------------------------------------------------------------
free_port sp || finish
free_port up2 || finish
write_config "$T_TMP/s.ini" "$sp" load
sed -i "s|^3000 = .*|3000 = sip:127.0.0.1:$up2|" "$T_TMP/s.ini"
if start_siphad "$T_TMP/s.ini"; then
	uas_start "$up2" uas2
	run_bg "$LOAD" --uac -s 3000 -r 100 -m 200 -d 100 -q --json "127.0.0.1:$sp" \
		>"$T_TMP/uac2.json" 2>"$T_TMP/uac2.err"
	wait_pid $! 40
	check_eq "load: siphad: uac exit status" "$?" 0
	check_eq "load: siphad: ok/failed" "$(jq -r '"\(.ok)/\(.failed)"' "$T_TMP/uac2.json")" "200/0"
	uas_stop "$UAS_PID"
	check_eq "load: siphad: the callee saw 200 INVITEs and 200 BYEs" \
		"$(jq -r '.uas | "\(.invites)/\(.byes)"' "$T_TMP/uas2.json")" "200/200"
	_no_calls() { [ "$(ctl --json calls 2>/dev/null | jq -r '.calls | length')" = 0 ]; }
	check "load: siphad: call table empty afterwards" wait_until 5 _no_calls
	check_eq "load: siphad: sipha_calls_answered counts 200" \
		"$(metric calls_answered 2>/dev/null || echo none)" 200
fi

# --- 3. both in one process ------------------------------------------------------------
free_port up3 || finish
run_bg "$LOAD" --uac --uas -i 127.0.0.1 -p "$up3" -s 3000 -r 200 -m 300 -q --json \
	"127.0.0.1:$up3" >"$T_TMP/both.json" 2>"$T_TMP/both.err"
wait_pid $! 30
check_eq "load: uac+uas: exit status" "$?" 0
check_eq "load: uac+uas: ok/failed/uas byes" \
	"$(jq -r '"\(.ok)/\(.failed)/\(.uas.byes)"' "$T_TMP/both.json")" "300/0/300"

# --- 4. usage errors ---------------------------------------------------------------------
usage_case() { # NAME WANT_IN_STDERR ARGS...
	local name=$1 want=$2 rc
	shift 2
	"$LOAD" "$@" >/dev/null 2>"$T_TMP/usage.err"
	rc=$?
	check_eq "load: usage: $name exits 2" "$rc" 2
	check "load: usage: $name names $want" grep -qF -- "$want" "$T_TMP/usage.err"
}
usage_case "bad rate" "-r" --uac -r fast -m 1 127.0.0.1:5060
usage_case "bad port" "-p" --uas -i 127.0.0.1 -p 70000
usage_case "bad target" "TARGET" --uac -m 1 nowhere:5060
usage_case "unknown option" "--frobnicate" --uac --frobnicate 127.0.0.1
usage_case "no mode" "--uac" -m 1 127.0.0.1
check "load: --help shows an example" sh -c "'$LOAD' --help | grep -q 'example:'"

# --- 5. nobody answers -------------------------------------------------------------------
free_port dead || finish
run_bg "$LOAD" --uac -s 3000 -r 50 -m 5 --timer-t1 10 -q --json "127.0.0.1:$dead" \
	>"$T_TMP/dead.json" 2>"$T_TMP/dead.err"
wait_pid $! 20
check_eq "load: no answer: exit status 1" "$?" 1
check_eq "load: no answer: ok/failed/timeouts" \
	"$(jq -r '"\(.ok)/\(.failed)/\(.failures.timeout)"' "$T_TMP/dead.json")" "0/5/5"
# T1 10 ms, B at 640 ms: A fires at 10, 20, 40, 80, 160, 320 ms: 6 per call
check_eq "load: no answer: INVITEs retransmitted (timer A)" \
	"$(jq -r '.retransmissions' "$T_TMP/dead.json")" 30

# --- 6. probe --------------------------------------------------------------------------
free_port up6 || finish
uas_start "$up6" uas6
run_bg "$LOAD" probe --duration-s 2 --json -q "127.0.0.1:$up6" >"$T_TMP/probe1.json" 2>/dev/null
ppid=$!
sleep 0.6
kill -STOP "$UAS_PID"
sleep 0.4
kill -CONT "$UAS_PID"
wait_pid "$ppid" 10
check_eq "load: probe: exit status" "$?" 0
check_eq "load: probe: every OPTIONS answered" \
	"$(jq -r '"\(.sent)/\(.answered)"' "$T_TMP/probe1.json")" "2000/2000"
gap=$(jq -r .longest_gap_us "$T_TMP/probe1.json")
check "load: probe: the 400 ms stop is the longest gap ($gap us)" \
	test "${gap:-0}" -ge 350000 -a "${gap:-0}" -le 700000
uas_stop "$UAS_PID"
if siphad_alive; then
	run_bg "$LOAD" probe --duration-s 1 --interval-us 2000 --json -q "127.0.0.1:$sp" \
		>"$T_TMP/probe2.json" 2>/dev/null
	wait_pid $! 10
	check_eq "load: probe: siphad answers every OPTIONS" \
		"$(jq -r '"\(.sent - .answered)/\(.open_gap)"' "$T_TMP/probe2.json")" "0/false"
fi
run_bg "$LOAD" probe --duration-s 1 --interval-us 5000 --json -q "127.0.0.1:$dead" \
	>"$T_TMP/probe3.json" 2>/dev/null
wait_pid $! 10
check_eq "load: probe: nobody answers: exit status 1" "$?" 1
check_eq "load: probe: nobody answers: one open gap, nothing answered" \
	"$(jq -r '"\(.answered)/\(.gaps)/\(.open_gap)"' "$T_TMP/probe3.json")" "0/1/true"
usage_case "probe bad interval" "--interval-us" probe --interval-us 5 127.0.0.1
usage_case "bad transport" "-t" --uac -t sctp 127.0.0.1

# --- 7. TCP ------------------------------------------------------------------------------
free_port up7 || finish
uas_start "$up7" uas7a -t t1
run_bg "$LOAD" --uac -t t1 -s 3000 -r 100 -m 300 -d 500 --json "127.0.0.1:$up7" \
	>"$T_TMP/tcp1.json" 2>"$T_TMP/tcp1.err"
cpid=$!
sleep 1
{
	kill -KILL "$UAS_PID"
	wait_pid "$UAS_PID" 5
} 2>/dev/null # no "Killed" line from the shell
sleep 0.3
uas_start "$up7" uas7b -t t1
wait_pid "$cpid" 30
rc=$?
t=$(cat "$T_TMP/tcp1.json")
# Calls whose INVITE or BYE was on the wire when the callee died fail as
# transport errors (their transactions went with the connection); every
# other one ends ok, established calls sending their BYE on the new one.
check_eq "load: tcp: exit status follows the failures" "$rc" \
	"$(jq -r 'if .failed == 0 then 0 else 1 end' <<<"$t")"
check_eq "load: tcp: every call ok or a transport failure" \
	"$(jq -r '"\(.ok + .failures.transport)/\(.failures.timeout)"' <<<"$t")" "300/0"
check "load: tcp: most calls survive the callee's restart ($(jq -r .ok <<<"$t") ok)" \
	jqt '.ok >= 280' <<<"$t"
check "load: tcp: the connection was lost and opened again" \
	jqt '.tcp.lost >= 1 and .tcp.connects >= 2' <<<"$t"
uas_stop "$UAS_PID"
check "load: tcp: the restarted callee got BYEs of calls set up before" \
	jqt '.uas.byes > .uas.invites' "$T_TMP/uas7b.json"
{
	free_port up8 || finish
	free_port sp8 || finish
	write_config "$T_TMP/s8.ini" "$sp8" loadtcp
	sed -i "s|^3000 = .*|3000 = sip:127.0.0.1:$up8;transport=tcp|" "$T_TMP/s8.ini"
	if start_siphad -n tcp "$T_TMP/s8.ini"; then
		uas_start "$up8" uas8 -t t1
		run_bg "$LOAD" --uac -t t1 -s 3000 -r 100 -m 200 -d 100 -q --json "127.0.0.1:$sp8" \
			>"$T_TMP/tcp2.json" 2>"$T_TMP/tcp2.err"
		wait_pid $! 40
		check_eq "load: tcp: through siphad: exit status" "$?" 0
		check_eq "load: tcp: through siphad: ok/failed" \
			"$(jq -r '"\(.ok)/\(.failed)"' "$T_TMP/tcp2.json")" "200/0"
		uas_stop "$UAS_PID"
		check_eq "load: tcp: through siphad: the callee answered over TCP" \
			"$(jq -r '.uas | "\(.invites)/\(.byes)"' "$T_TMP/uas8.json")" "200/200"
	fi
}

# --- 8. digest credentials --------------------------------------------------------------
free_port up9 || finish
free_port sp9 || finish
{
	printf '1001:secret-1001\n'
	for u in 2200 2201 2202 2203 2204; do printf '%s:pw-reg\n' "$u"; done
} >"$T_TMP/users9"
chmod 600 "$T_TMP/users9"
write_config "$T_TMP/s9.ini" "$sp9" loadauth
sed -i "s|^3000 = .*|3000 = sip:127.0.0.1:$up9|" "$T_TMP/s9.ini"
cat >>"$T_TMP/s9.ini" <<EOF
[auth]
realm = sipha.test
users = $T_TMP/users9
ban_after = 0
EOF
if start_siphad -n auth "$T_TMP/s9.ini"; then
	uas_start "$up9" uas9
	run_bg "$LOAD" --uac --user 1001 --password secret-1001 -s 3000 -r 100 -m 100 -q --json \
		"127.0.0.1:$sp9" >"$T_TMP/auth1.json" 2>/dev/null
	wait_pid $! 30
	check_eq "load: digest: right password: exit status" "$?" 0
	check_eq "load: digest: right password: ok/failed/challenges" \
		"$(jq -r '"\(.ok)/\(.failed)/\(.challenges)"' "$T_TMP/auth1.json")" "100/0/100"
	run_bg "$LOAD" --uac --user 1001 --password wrong -s 3000 -r 100 -m 5 -q --json \
		"127.0.0.1:$sp9" >"$T_TMP/auth2.json" 2>/dev/null
	wait_pid $! 30
	check_eq "load: digest: wrong password: exit status" "$?" 1
	check_eq "load: digest: wrong password: failed 5, all 403" \
		"$(jq -r '"\(.ok)/\(.failed)/\(.failures.status["403"])"' "$T_TMP/auth2.json")" "0/5/5"
	uas_stop "$UAS_PID"
	run_bg "$LOAD" --register 5 --users 2200 --password pw-reg -r 100 -q --json \
		"127.0.0.1:$sp9" >"$T_TMP/auth3.json" 2>/dev/null
	wait_pid $! 30
	check_eq "load: digest: REGISTER: exit status" "$?" 0
	check_eq "load: digest: REGISTER: ok/failed/challenges" \
		"$(jq -r '.register | "\(.ok)/\(.failed)/\(.challenges)"' "$T_TMP/auth3.json")" "5/0/5"
	run_bg "$LOAD" --register 5 --users 2200 --password wrong -r 100 -q --json \
		"127.0.0.1:$sp9" >"$T_TMP/auth4.json" 2>/dev/null
	wait_pid $! 30
	check_eq "load: digest: REGISTER, wrong password: exit status" "$?" 1
	check_eq "load: digest: REGISTER, wrong password: ok/failed" \
		"$(jq -r '"\(.ok)/\(.failed)/\(.register.challenges)"' "$T_TMP/auth4.json")" "0/5/5"
fi
usage_case "user without password" "--password" --uac --user 1001 127.0.0.1

# --- 9. REGISTER ------------------------------------------------------------------------
free_port sp10 || finish
free_port up10 || finish
write_config "$T_TMP/s10.ini" "$sp10" loadreg
sed -i "s|^domain = .*|&\nmin_expires = 1|" "$T_TMP/s10.ini"
if start_siphad -n reg "$T_TMP/s10.ini"; then
	run_bg "$LOAD" --register 50 --users 2000 -r 500 -q --json "127.0.0.1:$sp10" \
		>"$T_TMP/reg1.json" 2>"$T_TMP/reg1.err"
	wait_pid $! 20
	check_eq "load: register alone: exit status" "$?" 0
	check_eq "load: register alone: mode/ok/failed/sent" \
		"$(jq -r '"\(.mode)/\(.ok)/\(.failed)/\(.register.sent)"' "$T_TMP/reg1.json")" \
		"reg/50/0/50"
	check_eq "load: register alone: each REGISTER timed" \
		"$(jq -r '.register_us.count' "$T_TMP/reg1.json")" 50
	check_eq "load: register alone: siphad holds users 2000..2049" \
		"$(ctl -n reg --json registrations | jq '[.registrations[].aor |
			select(test("^sip:20[0-4][0-9]@"))] | unique | length')" 50
	# the callee registers 1001 (its own address as Contact) and keeps
	# refreshing it (2 s: at 1.6 s, 3.2 s); the caller registers 2100..2104,
	# then calls 1001, which siphad routes to the callee's binding
	run_bg "$LOAD" --uas -i 127.0.0.1 -p "$up10" --register 1 --users 1001 --reg-expires 2 \
		-q --json "127.0.0.1:$sp10" >"$T_TMP/reg2.json" 2>"$T_TMP/reg2.err"
	UAS_PID=$!
	_bound_1001() { ctl -n reg --json registrations | jq -e --arg c "sip:1001@127.0.0.1:$up10" \
		'.registrations | any(.contact == $c)' >/dev/null; }
	check "load: register: the callee's binding of 1001 is in siphad" wait_until 5 _bound_1001
	run_bg "$LOAD" --uac --register 5 --users 2100 -s 1001 -r 50 -m 150 -d 100 -q --json \
		"127.0.0.1:$sp10" >"$T_TMP/reg3.json" 2>"$T_TMP/reg3.err"
	wait_pid $! 30
	check_eq "load: register then call: exit status" "$?" 0
	check_eq "load: register then call: calls ok/failed, REGISTERs ok" \
		"$(jq -r '"\(.ok)/\(.failed)/\(.register.ok)"' "$T_TMP/reg3.json")" "150/0/5"
	uas_stop "$UAS_PID"
	check_eq "load: register: the registered callee answered every call" \
		"$(jq -r '.uas.invites' "$T_TMP/reg2.json")" 150
	check "load: register: the callee refreshed its binding ($(jq -r \
		'"\(.register_refreshes) refreshes, \(.register.failed) failed"' "$T_TMP/reg2.json"))" \
		jqt '.register_refreshes >= 1 and .register.failed == 0 and .register.ok >= 2' \
		"$T_TMP/reg2.json"
fi
usage_case "register several from a name without a number" "--users" \
	--register 2 --users alice 127.0.0.1
usage_case "register without target" "TARGET" --register 2 --users 1000

# --- 10. OPTIONS and re-INVITE in held calls, through siphad ---------------------------
if siphad_alive; then
	uas_start "$up2" uas10
	# held 300 ms: OPTIONS at 100 and 200 ms, the re-INVITE at 150 ms
	run_bg "$LOAD" --uac -s 3000 -r 50 -m 50 -d 300 --options-every 100 --reinvite-after 150 \
		-q --json "127.0.0.1:$sp" >"$T_TMP/mid.json" 2>"$T_TMP/mid.err"
	wait_pid $! 30
	check_eq "load: mid-call: exit status" "$?" 0
	check_eq "load: mid-call: calls, OPTIONS, re-INVITEs ok/failed" \
		"$(jq -r '"\(.ok)/\(.failed) \(.options.ok)/\(.options.failed) \(.reinvite.ok)/\(.reinvite.failed)"' \
			"$T_TMP/mid.json")" "50/0 100/0 50/0"
	check "load: mid-call: each timed on its own" \
		jqt '.options_us.count == 100 and .reinvite_us.count == 50 and .options_us.max > 0' \
		"$T_TMP/mid.json"
	uas_stop "$UAS_PID"
	check_eq "load: mid-call: the callee got them relayed (invites/acks/other)" \
		"$(jq -r '.uas | "\(.invites)/\(.acks)/\(.other)"' "$T_TMP/uas10.json")" "100/100/100"
fi

# --- 11. Record-Route: through Kamailio -------------------------------------------------
if command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ]; then
	free_port kp || finish
	free_port up11 || finish
	run_bg /usr/sbin/kamailio -DD -E -f "$(cd "$(dirname "$0")" && pwd)/kamailio/rr_proxy.cfg" \
		-A "LISTEN=udp:127.0.0.1:$kp" -A "UAS_URI=\"sip:127.0.0.1:$up11\"" -m 64 -M 8 \
		-P "$T_TMP/kamailio.pid" -w "$T_TMP" -Y "$T_TMP" >"$T_TMP/kamailio.log" 2>&1
	KAM_PID=$!
	check "load: kamailio listens" wait_until 10 _udp_bound "$kp"
	uas_start "$up11" uas11
	run_bg "$LOAD" --uac -s 3000 -r 50 -m 50 -d 200 --options-every 50 --reinvite-after 80 \
		--timer-t1 50 -q --json "127.0.0.1:$kp" >"$T_TMP/rr.json" 2>"$T_TMP/rr.err"
	wait_pid $! 30
	check_eq "load: record-route: exit status" "$?" 0
	check_eq "load: record-route: calls, OPTIONS, re-INVITEs ok through the proxy" \
		"$(jq -r '"\(.ok)/\(.failed) \(.options.ok)/\(.options.failed) \(.reinvite.ok)/\(.reinvite.failed)"' \
			"$T_TMP/rr.json")" "50/0 150/0 50/0"
	uas_stop "$UAS_PID"
	check_eq "load: record-route: the callee got every ACK and BYE via the proxy" \
		"$(jq -r '.uas | "\(.acks)/\(.byes)/\(.ack_timeouts)"' "$T_TMP/uas11.json")" "100/50/0"
	kill -TERM "$KAM_PID" 2>/dev/null
	wait_pid "$KAM_PID" 10
else
	fail "load: record-route" "kamailio is not installed (make deps)"
fi

# --- 12. the stateful callee --------------------------------------------------------------
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
declare -A SP_PID=()
free_port up12 || finish
uas_start "$up12" uas12a --ring-ms 3000
sipp_bg cancel -sf "$SCN/call_uac_cancel.xml" -m 5 -r 10 "127.0.0.1:$up12"
sipp_end cancel 30
check_eq "load: callee: sipp's cancelled calls all went as scripted (200, 487)" \
	"$SIPP_RC/$SIPP_OK" "0/5"
uas_stop "$UAS_PID"
check_eq "load: callee: 5 CANCELs met a ringing INVITE, its 487 ACKed" \
	"$(jq -r '.uas | "\(.cancels)/\(.acks)/\(.ack_timeouts)"' "$T_TMP/uas12a.json")" "5/5/0"
free_port up13 || finish
uas_start "$up13" uas12b --timer-t1 10
sipp_bg noack -sf "$SCN/load_uac_noack.xml" -m 5 -r 10 "127.0.0.1:$up13"
sipp_end noack 30
check_eq "load: callee: sipp's calls without ACK ended" "$SIPP_RC/$SIPP_OK" "0/5"
uas_stop "$UAS_PID"
# T1 10 ms: again at 10, 30, 70, 150, 310, 630 ms; given up at 640 ms
check_eq "load: callee: the 200 sent again 6 times each, then given up" \
	"$(jq -r '.uas | "\(.retransmissions)/\(.ack_timeouts)/\(.byes)"' "$T_TMP/uas12b.json")" \
	"30/5/5"
free_port up14 || finish
uas_start "$up14" uas12c --tick-us 100000
run_bg "$LOAD" --uac -s 3000 -r 100 -m 200 --timer-t1 20 -q --json "127.0.0.1:$up14" \
	>"$T_TMP/rtx.json" 2>"$T_TMP/rtx.err"
wait_pid $! 30
check_eq "load: callee: INVITEs retransmitted to a slow callee: every call ok" \
	"$(jq -r '"\(.ok)/\(.failed)"' "$T_TMP/rtx.json")" "200/0"
uas_stop "$UAS_PID"
check "load: callee: retransmitted INVITEs answered again ($(jq -r .uas.invite_retrans \
	"$T_TMP/uas12c.json")), no second call from them" \
	jqt '.uas.invite_retrans > 0 and .uas.invites == 200 + .uas.invite_retrans' \
	"$T_TMP/uas12c.json"

# --- 13. hold-time distributions ---------------------------------------------------------
free_port up15 || finish
run_bg "$LOAD" --uac --uas -i 127.0.0.1 -p "$up15" -s 3000 -r 300 -m 300 \
	--hold-dist exp:100 -q --json "127.0.0.1:$up15" >"$T_TMP/exp.json" 2>/dev/null
wait_pid $! 30
check_eq "load: hold exp: exit status" "$?" 0
check "load: hold exp:100: $(jq -r '.hold_ms | "mean \(.mean), max \(.max)"' "$T_TMP/exp.json")" \
	jqt '.hold_ms | .count == 300 and .mean > 70 and .mean < 130 and .max <= 2000 and
		.max > 150' "$T_TMP/exp.json"
free_port up16 || finish
run_bg "$LOAD" --uac --uas -i 127.0.0.1 -p "$up16" -s 3000 -r 300 -m 300 \
	--hold-dist uniform:50-150 -q --json "127.0.0.1:$up16" >"$T_TMP/uni.json" 2>/dev/null
wait_pid $! 30
check "load: hold uniform:50-150: $(jq -r '.hold_ms | "min \(.min), mean \(.mean), max \(.max)"' \
	"$T_TMP/uni.json")" \
	jqt '.ok == 300 and (.hold_ms | .min >= 50 and .max <= 150 and .mean > 90 and .mean < 110)' \
	"$T_TMP/uni.json"
usage_case "bad hold distribution" "--hold-dist" --uac --hold-dist exp: 127.0.0.1
usage_case "-d and --hold-dist" "--hold-dist" --uac -d 5 --hold-dist exp:5 127.0.0.1

# --- 14. --max-rate ----------------------------------------------------------------------
# -l 30 calls held 500 ms: at most 60 calls/s can be placed.  From 40/s in
# steps of 2 s: 40 passes, 80 fails, then it bisects towards 60.
free_port up17 || finish
run_bg "$LOAD" --uac --uas -i 127.0.0.1 -p "$up17" -s 3000 --max-rate -r 40 -d 500 -l 30 \
	--step-s 2 -q --json "127.0.0.1:$up17" >"$T_TMP/max.json" 2>"$T_TMP/max.err"
wait_pid $! 40
check_eq "load: max-rate: exit status (a rate was found)" "$?" 0
check "load: max-rate: $(jq -r '.max_rate | "\(.rate) calls/s in \(.steps | length) steps"' \
	"$T_TMP/max.json")" \
	jqt '.max_rate | .rate >= 45 and .rate <= 65 and (.steps | length) >= 3 and
		(.steps[0] | .rate == 40 and .pass) and (.steps[1] | .rate == 80 and (.pass | not))' \
	"$T_TMP/max.json"
check_eq "load: max-rate: no call failed on the way" "$(jq -r .failed "$T_TMP/max.json")" 0
usage_case "max-rate without --uac" "--max-rate" --uas -p 5999 --max-rate

finish
