#!/usr/bin/env bash
# [metrics] listen (server/metrics_http.c): GET /metrics over HTTP gives the
# text of `siphactl metrics` (same metric names and help; values move), and
# the endpoint is bounded: 404 for another path, 405 for another method
# (with Allow), 400 for a request that is not HTTP, a head over 4 KiB
# answered 431 and closed at once, 50 requests at once all served, a 65th
# connection while 64 are open closed at accept, a silent or half-sent
# request closed after 5 s (not before).  Throughout, an OPTIONS every 10 ms
# (sipha-load probe) is answered: the HTTP side never holds up SIP.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd curl jq
LOAD=${LOAD:-$T_BUILD/sipha-load}
TCPIDLE=${TCPIDLE:-$T_BUILD/tests/tools/tcpidle}
require_bin "$SIPHAD" "$SIPHACTL" "$LOAD" "$TCPIDLE"

free_port PORT || finish
free_port MPORT || finish
CONF=$T_TMP/metrics.ini
write_config "$CONF" "$PORT" tmh
printf '\n[metrics]\nlisten = 127.0.0.1:%s\n' "$MPORT" >>"$CONF"
start_siphad "$CONF" || finish
BASE=http://127.0.0.1:$MPORT
URL=$BASE/metrics

# SIP throughout: stopped (SIGTERM) and read at the end.
run_bg "$LOAD" probe --duration-s 120 --interval-us 10000 --json -q "127.0.0.1:$PORT" \
	>"$T_TMP/probe.json" 2>/dev/null
PROBE=$!

# names FILE: the metric names and their HELP/TYPE lines, sorted, no values.
names() {
	sed -E 's/^([a-z_]+)\{[^}]*\} .*/\1/' "$1" | sort
}

# --- 1. GET /metrics: the text of siphactl metrics ----------------------------------------

curl -sS --max-time 5 -D "$T_TMP/h1" -o "$T_TMP/b1" "$URL"
check_eq "metrics http: GET /metrics: curl exit status" "$?" 0
ctl metrics >"$T_TMP/ctl"
check_eq "metrics http: status line" "$(head -n1 "$T_TMP/h1" | tr -d '\r')" "HTTP/1.1 200 OK"
hdr() { # FILE NAME: one header's value
	awk -v n="$2" 'BEGIN { IGNORECASE = 1 } { sub(/\r$/, "") }
		tolower($0) ~ "^" tolower(n) ":" { sub(/^[^:]*: */, ""); print; exit }' "$1"
}
check_eq "metrics http: Prometheus text content type" "$(hdr "$T_TMP/h1" Content-Type)" \
	"text/plain; version=0.0.4; charset=utf-8"
check_eq "metrics http: Content-Length is the body's" "$(hdr "$T_TMP/h1" Content-Length)" \
	"$(stat -c %s "$T_TMP/b1")"
check_eq "metrics http: Connection: close" "$(hdr "$T_TMP/h1" Connection)" close
n=$(grep -c '^# TYPE sipha_' "$T_TMP/b1")
check "metrics http: the body holds metrics ($n)" test "$n" -gt 40
if cmp -s <(names "$T_TMP/b1") <(names "$T_TMP/ctl"); then
	pass "metrics http: the same names, HELP and TYPE lines as siphactl metrics"
else
	fail "metrics http: the same names, HELP and TYPE lines as siphactl metrics" \
		"$(diff <(names "$T_TMP/b1") <(names "$T_TMP/ctl") | head -n 5 | tr '\n' '|')"
fi
check "metrics http: node label" grep -q '^sipha_calls{node="tmh"} [0-9]' "$T_TMP/b1"

# HEAD: the headers only; a query string is ignored.
curl -sS --max-time 5 -I -o "$T_TMP/h2" "$URL?x=1"
check_eq "metrics http: HEAD /metrics?x=1: 200" "$(head -n1 "$T_TMP/h2" | tr -d '\r')" "HTTP/1.1 200 OK"

# --- 2. other paths, methods, not HTTP -------------------------------------------------------

code() { curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@"; }
check_eq "metrics http: GET / is 404" "$(code "$BASE/")" 404
check_eq "metrics http: GET /metricsx is 404" "$(code "$BASE/metricsx")" 404
check_eq "metrics http: POST /metrics is 405" "$(code -X POST -d x=1 "$URL")" 405
curl -s --max-time 5 -X DELETE -D "$T_TMP/h3" -o /dev/null "$URL"
check_eq "metrics http: 405 names the methods allowed" "$(hdr "$T_TMP/h3" Allow)" "GET, HEAD"

# raw TIMEOUT_S REQUEST...: sends the bytes on a new connection and reads until
# the server closes; the answer in RAW, how long it took in RAW_MS, and
# RAW_RC 124 when the read ended by the timeout rather than by the server
# (0, or 1 for a reset).
raw() {
	local to=$1 t0 fd
	shift
	t0=$(date +%s%N)
	exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" || { RAW_RC=1; RAW=; return; }
	[ $# -gt 0 ] && printf '%s' "$@" >&"$fd" 2>/dev/null
	RAW=$(timeout "$to" cat <&"$fd" 2>/dev/null | tr -d '\r')
	RAW_RC=$?
	RAW_MS=$((($(date +%s%N) - t0) / 1000000))
	exec {fd}>&-
}
raw 3 $'garbage\r\n\r\n'
check_eq "metrics http: not HTTP is 400" "${RAW%%$'\n'*}" "HTTP/1.1 400 Bad Request"
raw 3 $'GET /metrics HTTP/2.0\r\n\r\n'
check_eq "metrics http: HTTP/2.0 is 400" "${RAW%%$'\n'*}" "HTTP/1.1 400 Bad Request"

# --- 3. a head over 4 KiB: 431 and closed at once -------------------------------------------

raw 3 $'GET /metrics HTTP/1.1\r\nX-Big: '"$(head -c 6000 /dev/zero | tr '\0' a)"
check "metrics http: an oversized request is closed at once (${RAW_MS} ms)" \
	test "$RAW_RC" -ne 124 -a "$RAW_MS" -lt 2000
check_eq "metrics http: ... answered 431" "${RAW%%$'\n'*}" "HTTP/1.1 431 Request Header Fields Too Large"

# --- 4. 50 requests at once -------------------------------------------------------------------

pids=()
for i in $(seq 1 50); do
	run_bg curl -s --max-time 15 -o "$T_TMP/c$i" -w '%{http_code}' "$URL" >"$T_TMP/c$i.code"
	pids+=("$!")
done
for p in "${pids[@]}"; do
	wait_pid "$p" 20
done
ok=0
for i in $(seq 1 50); do
	[ "$(cat "$T_TMP/c$i.code")" = 200 ] && cmp -s <(names "$T_TMP/c$i") <(names "$T_TMP/b1") &&
		ok=$((ok + 1))
done
check_eq "metrics http: 50 requests at once, all served in full" "$ok" 50

# --- 5. at most 64 connections; silent ones closed after 5 s -----------------------------------

# 64 connections that send nothing, held 2 s: all are open, none is closed
# early, and meanwhile one more is closed at accept.
"$TCPIDLE" -n 64 -s 127.0.0.1 -T 2 "127.0.0.1:$MPORT" >"$T_TMP/idle64" 2>&1 &
T_PIDS+=("$!")
IDLE=$!
wait_until 5 grep -q '^open 64' "$T_TMP/idle64"
check "metrics http: 64 silent connections open" grep -q '^open 64' "$T_TMP/idle64"
sleep 0.3 # let the daemon accept them all
raw 3 $'GET /metrics HTTP/1.1\r\n\r\n'
check "metrics http: a 65th connection is closed at once, unanswered (${RAW_MS} ms)" \
	test "$RAW_RC" -ne 124 -a -z "$RAW" -a "$RAW_MS" -lt 2000
wait_pid "$IDLE" 10
check "metrics http: none of the 64 closed within 2 s" grep -q '^peer_closed 0' "$T_TMP/idle64"
wait_until 3 bash -c "[ \"\$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' '$URL')\" = 200 ]"
check_eq "metrics http: served again once they are gone" "$(code "$URL")" 200

# A silent connection and a half-sent request: each closed 5 s after it
# was accepted (MH_TIMEOUT_MS), not before and not much after.
(raw 9 && echo "$RAW_RC $RAW_MS" >"$T_TMP/silent") &
T_PIDS+=("$!")
(raw 9 'GET /metr' && echo "$RAW_RC $RAW_MS" >"$T_TMP/half") &
T_PIDS+=("$!")
wait_until 12 test -s "$T_TMP/silent" -a -s "$T_TMP/half"
for k in silent half; do
	read -r rc ms <"$T_TMP/$k" 2>/dev/null || { rc=x ms=0; }
	check "metrics http: a $k connection closed after the 5 s timeout ($rc, ${ms} ms)" \
		test "$rc" != 124 -a "$ms" -ge 4800 -a "$ms" -lt 7500
done

# --- SIP all along ------------------------------------------------------------------------------

kill -TERM "$PROBE" 2>/dev/null
wait_pid "$PROBE" 10
check_eq "metrics http: every OPTIONS answered throughout" \
	"$(jq -r 'if .sent > 500 then "\(.sent - .answered)/\(.open_gap)" else "only \(.sent) sent" end' \
		"$T_TMP/probe.json")" "0/false"
gap=$(jq -r .longest_gap_us "$T_TMP/probe.json")
check "metrics http: SIP never held up for 300 ms (longest gap ${gap} us)" test "${gap:-999999999}" -lt 300000

stop_siphad
finish
