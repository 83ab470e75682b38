#!/usr/bin/env bash
# Registrar end to end with sipp as the client: 1,000 users register over
# UDP, the bindings are exactly those (AoR and Contact), 100 unregister, a
# few register over TCP, refreshes do not duplicate, and the RFC 3261 §10.3
# limits hold (423 with Min-Expires below the minimum).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ss
require_bin "$SIPHAD" "$SIPHACTL" "$SIPJUNK"

SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
N=1000
free_port PORT || finish
free_port SPORT || finish # sipp, UDP
free_port TPORT || finish # sipp, TCP
CONF=$T_TMP/register.ini
write_config "$CONF" "$PORT" treg
DST=127.0.0.1:$PORT
start_siphad "$CONF" || finish

# users FILE FIRST COUNT: a sipp injection file of users FIRST..FIRST+COUNT-1.
users() {
	{
		echo SEQUENTIAL
		seq "$2" $(($2 + $3 - 1)) | sed 's/$/;/'
	} >"$1"
}

# run_sipp NAME SCENARIO CSV CALLS [SIPP ARGS...]: runs sipp to the end
# (bounded), sets SIPP_RC, SIPP_OK, SIPP_FAILED, SIPP_RETRANS from its final
# statistics.
run_sipp() {
	local name=$1 scn=$2 csv=$3 calls=$4 stat
	shift 4
	stat=$T_TMP/$name.stat.csv
	(cd "$T_TMP" && timeout -k 5 90 sipp -sf "$scn" -inf "$csv" -i 127.0.0.1 -m "$calls" \
		-r 200 -l 200 -timeout 60s -timeout_error -nostdin -trace_stat -stf "$stat" \
		-trace_err -error_file "$T_TMP/$name.err" "$@" "$DST" \
		</dev/null >"$T_TMP/$name.out" 2>&1)
	SIPP_RC=$?
	read -r SIPP_OK SIPP_FAILED SIPP_RETRANS < <(awk -F';' '
		NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		{ last = $0 }
		END {
			split(last, f, ";")
			print f[h["SuccessfulCall(C)"]] + 0, f[h["FailedCall(C)"]] + 0,
				f[h["Retransmissions(C)"]] + 0
		}' "$stat" 2>/dev/null || echo "0 0 0")
	info "sipp $name: exit $SIPP_RC, successful $SIPP_OK, failed $SIPP_FAILED, retransmissions $SIPP_RETRANS"
	if [ "$SIPP_RC" -ne 0 ] && [ -s "$T_TMP/$name.err" ]; then
		info "sipp $name errors: $(grep -v '^$' "$T_TMP/$name.err" | head -n 8 | tr '\n' '|')"
	fi
}

# bindings: the registrations as "AOR CONTACT EXPIRES" lines, sorted.
bindings() {
	ctl --json registrations | jq -r '.registrations[] | "\(.aor) \(.contact) \(.expires)"' | sort
}

status_regs() {
	ctl --json status | jq -r .registrations
}

# --- 1,000 users over UDP -----------------------------------------------------------

ok0=$(metric register_ok)
users "$T_TMP/users.csv" 100000 $N
run_sipp reg "$SCN/register.xml" "$T_TMP/users.csv" $N -p "$SPORT" -key expires 3600 -key cparam ""
check_eq "register: sipp exit status" "$SIPP_RC" 0
check_eq "register: $N registrations successful" "$SIPP_OK" $N
check_eq "register: no failed registration" "$SIPP_FAILED" 0

bindings >"$T_TMP/b1"
check_eq "register: $N bindings listed" "$(wc -l <"$T_TMP/b1")" $N
seq 100000 $((100000 + N - 1)) | awk -v p="$SPORT" '{ printf "sip:%s@sipha.test sip:%s@127.0.0.1:%s\n", $1, $1, p }' |
	sort >"$T_TMP/want1"
check_eq "register: every AoR with exactly its Contact" \
	"$(cut -d' ' -f1,2 "$T_TMP/b1" | diff - "$T_TMP/want1" | head -n 4 | tr '\n' '|')" ""
check_eq "register: every binding expires within the requested hour" \
	"$(awk '$3 < 3500 || $3 > 3600' "$T_TMP/b1" | head -n 3 | tr '\n' '|')" ""
check_eq "register: status counts $N registrations" "$(status_regs)" $N
# A retransmitted REGISTER may be processed again (same Call-ID and CSeq:
# harmless), so register_ok may exceed N by sipp's retransmissions.
ok=$(($(metric register_ok) - ok0))
if [ "$ok" -ge $N ] && [ "$ok" -le $((N + SIPP_RETRANS)) ]; then
	pass "register: register_ok counts $N (+ retransmissions: $((ok - N)))"
else
	fail "register: register_ok counts $N" "$ok, with $SIPP_RETRANS retransmissions"
fi
check_eq "register: registrations gauge" "$(metric registrations)" $N

# --- refresh: the same users again change nothing but the expiry ------------------

users "$T_TMP/refresh.csv" 100500 50
run_sipp refresh "$SCN/register.xml" "$T_TMP/refresh.csv" 50 -p "$SPORT" -key expires 3600 -key cparam ""
check_eq "register: 50 refreshes successful" "$SIPP_RC/$SIPP_OK/$SIPP_FAILED" "0/50/0"
check_eq "register: a refresh adds no binding" "$(status_regs)" $N

# --- 100 users unregister (Expires: 0) ---------------------------------------------

users "$T_TMP/unreg.csv" 100000 100
run_sipp unreg "$SCN/unregister.xml" "$T_TMP/unreg.csv" 100 -p "$SPORT" -key cparam ""
check_eq "register: sipp unregister exit status" "$SIPP_RC" 0
check_eq "register: 100 unregistrations successful" "$SIPP_OK" 100
check_eq "register: no failed unregistration" "$SIPP_FAILED" 0
bindings >"$T_TMP/b2"
check_eq "register: $((N - 100)) bindings remain" "$(wc -l <"$T_TMP/b2")" $((N - 100))
check_eq "register: the unregistered users are gone, the others intact" \
	"$(cut -d' ' -f1,2 "$T_TMP/b2" | diff - <(sed -n '101,$p' "$T_TMP/want1" | sort) | head -n 4 | tr '\n' '|')" ""
check_eq "register: status counts $((N - 100))" "$(status_regs)" $((N - 100))

# --- Expires limits (RFC 3261 §10.3 step 7) -------------------------------------------

# reg_file FILE USER EXPIRES: a REGISTER for USER with one Contact.
reg_file() {
	printf '%s\r\n' "REGISTER sip:sipha.test SIP/2.0" \
		"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-exp-$2-$3;rport" \
		"Max-Forwards: 70" \
		"From: <sip:$2@sipha.test>;tag=exp$3" \
		"To: <sip:$2@sipha.test>" \
		"Call-ID: exp-$2-$3@127.0.0.1" \
		"CSeq: 1 REGISTER" \
		"Contact: <sip:$2@127.0.0.1:5999>" \
		"Expires: $3" \
		"Content-Length: 0" "" >"$1"
}

reg_file "$T_TMP/exp30" 300001 30
check_eq "register: Expires below the minimum answered 423" \
	"$("$SIPJUNK" -S "$T_TMP/exp30.ans" -f "$T_TMP/exp30" "$DST" 2>&1)" 423
check_eq "register: 423 carries Min-Expires: 60" \
	"$(tr -d '\r' <"$T_TMP/exp30.ans" | sed -n 's/^Min-Expires: *//Ip')" 60
check_eq "register: a refused REGISTER binds nothing" \
	"$(bindings | grep -c '^sip:300001@')" 0

reg_file "$T_TMP/exp60" 300002 60
check_eq "register: Expires 60 (the minimum) accepted" \
	"$("$SIPJUNK" -f "$T_TMP/exp60" "$DST" 2>&1)" 200
exp=$(bindings | awk '$1 == "sip:300002@sipha.test" { print $3 }')
if [ -n "$exp" ] && [ "$exp" -le 60 ] && [ "$exp" -ge 55 ]; then
	pass "register: binding with Expires 60 listed with about 60 s left ($exp)"
else
	fail "register: binding with Expires 60 listed with about 60 s left" "expires '$exp'"
fi
# Expiry itself is the unit test's (test_registrar): no 60 s wait here.

# --- a few users over TCP -------------------------------------------------------------

users "$T_TMP/tcp.csv" 200000 5
run_sipp tcp "$SCN/register.xml" "$T_TMP/tcp.csv" 5 -t t1 -p "$TPORT" -key expires 3600 \
	-key cparam ";transport=tcp"
check_eq "register: TCP registrations successful" "$SIPP_RC/$SIPP_OK/$SIPP_FAILED" "0/5/0"
check_eq "register: TCP bindings with their transport" \
	"$(bindings | awk '$1 ~ /^sip:2000/ { print $1, $2 }' | tr '\n' '|')" \
	"$(for u in 200000 200001 200002 200003 200004; do printf 'sip:%s@sipha.test sip:%s@127.0.0.1:%s;transport=tcp|' $u $u "$TPORT"; done)"
check_eq "register: status counts every binding" "$(status_regs)" $((N - 100 + 1 + 5))
check "register: TCP messages arrived over TCP" test "$(metric transport_tcp_in)" -ge 5

stop_siphad
finish
