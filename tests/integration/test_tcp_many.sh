#!/usr/bin/env bash
# 10,000 idle TCP connections from 50 loopback addresses (200 each, under the
# default tcp_max_per_source of 256) while the node keeps serving: all are
# accepted and held, none is refused or dropped, 100 calls over UDP all
# succeed meanwhile, an OPTIONS over a new TCP connection is answered, and
# when the holder goes the node counts them all closed.  tcp_silent_ms is
# raised so that the silent-connection timeout (test_tcp_limits.sh) does not
# end them during the test.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp
TCPIDLE=${TCPIDLE:-$T_BUILD/tests/tools/tcpidle}
require_bin "$SIPHAD" "$SIPHACTL" "$TCPIDLE"

N=10000
declare -A SP_PID=()
CALLS=100

# Both sides need more than 10,000 files; children inherit this.
ulimit -Hn 65536 2>/dev/null
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((N + 1000)) ]; then
	fail "tcp many: RLIMIT_NOFILE" "$(ulimit -n) is too small for $N connections"
	finish
fi

free_port PORT || finish
free_port UAS_PORT || finish
CONF=$T_TMP/many.ini
write_config "$CONF" "$PORT" tmany
sed -i "s/^domain = .*/&\ntcp_silent_ms = 600000/; s|^3000 = .*|3000 = sip:127.0.0.1:$UAS_PORT|" "$CONF"
start_siphad "$CONF" || finish

run_bg "$TCPIDLE" -n $N -s 127.0.1.1 -k 50 -T 50 "127.0.0.1:$PORT" >"$T_TMP/idle.out" \
	2>"$T_TMP/idle.err"
IDLE_PID=$!
opened() { grep -q '^ms ' "$T_TMP/idle.out"; }
if ! wait_until 30 opened; then
	fail "tcp many: $N connections opened within 30 s" "$(cat "$T_TMP/idle.out" "$T_TMP/idle.err" | tr '\n' ' ')"
	finish
fi
idle() { awk -v k="$1" '$1 == k { print $2 }' "$T_TMP/idle.out"; }
info "tcpidle: $(tr '\n' ' ' <"$T_TMP/idle.out") $(tr '\n' ' ' <"$T_TMP/idle.err")"
check_eq "tcp many: $N connections open at the client" "$(idle open)" $N
all_in() { [ "$(metric tcp_connections)" = $N ]; }
check "tcp many: siphad holds all $N" wait_until 15 all_in
check_eq "tcp many: $N accepted, none refused" \
	"$(metric transport_tcp_accepted) $(metric transport_tcp_refused)" "$N 0"

# Calls meanwhile.
run_bg sipp -sn uas -i 127.0.0.1 -p "$UAS_PORT" -nostdin >"$T_TMP/uas.out" 2>&1
UAS_PID=$!
uas_up() { ss -Hlun "sport = :$UAS_PORT" | grep -q .; }
wait_until 5 uas_up
sipp_bg uac "127.0.0.1:$PORT" -sn uac -s 3000 -m $CALLS -r 50 -d 0 -l $CALLS
sipp_end uac 60
check_eq "tcp many: $CALLS calls successful with $N connections held" "$SIPP_OK $SIPP_FAILED" "$CALLS 0"

# A new TCP connection is served.
free_port OPT_PORT || finish
printf 'OPTIONS sip:tmany@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%s;branch=z9hG4bK-many1\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:tmany@127.0.0.1>\r\nCall-ID: many-1@t\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' \
	"$OPT_PORT" >"$T_TMP/options"
answer=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"'; cat "$1" >&3; head -n 1 <&3' _ "$T_TMP/options" | tr -d '\r')
check_eq "tcp many: an OPTIONS over a new TCP connection is answered" "$answer" "SIP/2.0 200 OK"
check_eq "tcp many: still $N idle ones (+1 at most)" \
	"$(($(metric tcp_connections) - N <= 1 && $(metric tcp_connections) >= N))" 1

kill -TERM "$IDLE_PID"
wait_pid "$IDLE_PID" 10
check_eq "tcp many: no idle connection was closed by siphad" "$(idle peer_closed)" 0
none() { [ "$(metric tcp_connections)" = 0 ]; }
check "tcp many: siphad counts them all closed" wait_until 15 none
check_eq "tcp many: no accept error logged" "$(grep -c 'accept' "$(siphad_log)")" 0
kill -TERM "$UAS_PID" 2>/dev/null
wait_pid "$UAS_PID" 5
stop_siphad
finish
