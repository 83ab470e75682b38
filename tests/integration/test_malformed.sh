#!/usr/bin/env bash
# Malformed SIP at siphad: 1,000 datagrams of every kind sipjunk knows
# (truncated messages, binary junk, missing mandatory headers, 60 KB headers,
# bad Content-Length, bad versions and schemes, stray and broken responses,
# broken ACKs).  Each datagram must get the answer its kind allows — 400, or
# 505/416 where that is right, or nothing — and be accounted for exactly in
# the daemon's counters; the daemon must keep serving and exit cleanly.  Then
# garbage on TCP: that connection is closed, the framing error counted, and
# other connections are served.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd jq ss
require_bin "$SIPHAD" "$SIPHACTL" "$SIPJUNK"

COUNT=${SIPHA_JUNK_COUNT:-1000}
SEED=${SIPHA_JUNK_SEED:-$(((RANDOM << 15) | RANDOM))}
free_port PORT || finish
CONF=$T_TMP/malformed.ini
write_config "$CONF" "$PORT" tjunk
DST=127.0.0.1:$PORT
start_siphad "$CONF" || finish

check_eq "malformed: well-formed OPTIONS answered before" "$("$SIPJUNK" -o "$DST" 2>&1)" 200

# --- UDP: COUNT datagrams, every one accounted for ------------------------------------

metrics_snapshot "$T_TMP/m0"
info "sipjunk seed $SEED (SIPHA_JUNK_SEED=$SEED reproduces this run)"
"$SIPJUNK" -n "$COUNT" -s "$SEED" -r 2000 -w 300 -T 90 -v "$DST" >"$T_TMP/junk.out" 2>"$T_TMP/junk.err"
rc=$?
metrics_snapshot "$T_TMP/m1"
sed 's/^/# /' "$T_TMP/junk.out"
check_eq "malformed: sipjunk ran to the end" "$rc" 0
[ -s "$T_TMP/junk.err" ] && info "sipjunk stderr: $(head -n 5 "$T_TMP/junk.err" | tr '\n' '|')"

junk() { # FIELD: a number from sipjunk's summary
	awk -v k="$1" '$1 == k && NF == 2 { print $2; f = 1 } END { if (!f) print "missing" }' "$T_TMP/junk.out"
}
answered_code() { # CODE
	awk -v c="$1" '$1 == "answered" && $2 == c { n = $3 } END { print n + 0 }' "$T_TMP/junk.out"
}
delta() { # COUNTER
	local a b
	a=$(metric_from "$T_TMP/m0" "$1") || { echo "missing"; return; }
	b=$(metric_from "$T_TMP/m1" "$1") || { echo "missing"; return; }
	echo $((b - a))
}

sent=$(junk sent)
unanswered=$(junk unanswered)
answered=$(awk '$1 == "answered" { n += $3 } END { print n + 0 }' "$T_TMP/junk.out")
check_eq "malformed: all $COUNT datagrams sent" "$sent" "$COUNT"
check_eq "malformed: no send errors" "$(junk send_errors)" 0
check_eq "malformed: every datagram got the answer its kind allows" "$(junk unexpected)" 0
check_eq "malformed: no datagram answered twice" "$(junk extra)" 0
check_eq "malformed: every answer is a SIP response" "$(answered_code 0)" 0
# Every kind was exercised (the mix is random but 1,000 datagrams over 21
# kinds leaves none out in practice; a smaller SIPHA_JUNK_COUNT may).
if [ "$COUNT" -ge 500 ]; then
	missing=$(awk '$1 == "kind" && $4 == 0 { printf "%s ", $2 }' "$T_TMP/junk.out")
	check_eq "malformed: every kind sent at least once" "$missing" ""
fi

# Answers are what the kinds allow: 400/416/505 for broken requests, 200 for
# the valid 60 KB header (513 would be allowed), nothing else.
other=$(awk '$1 == "answered" && $2 !~ /^(200|400|416|505|513)$/ { printf "%s:%s ", $2, $3 }' "$T_TMP/junk.out")
check_eq "malformed: no answer codes beyond 200/400/416/505/513" "$other" ""

# The daemon's arithmetic, exactly.
d_udp=$(delta transport_udp_in)
d_trunc=$(delta transport_udp_truncated)
d_rx=$(delta sip_rx_messages)
d_req=$(delta sip_rx_requests)
d_resp=$(delta sip_rx_responses)
d_unp=$(delta sip_rx_unparsable)
d_rej=$(delta sip_rx_rejected)
d_ack=$(delta sip_rx_ack_dropped)
d_rdrop=$(delta sip_rx_responses_dropped)
d_tx=$(delta sip_tx_responses)
d_txerr=$(delta sip_tx_errors)
d_opt=$(delta options_answered)
info "deltas: udp_in $d_udp truncated $d_trunc rx $d_rx requests $d_req responses $d_resp" \
	"unparsable $d_unp rejected $d_rej ack_dropped $d_ack responses_dropped $d_rdrop" \
	"tx $d_tx tx_errors $d_txerr options $d_opt"

check_eq "malformed: transport_udp_in counts every datagram" "$d_udp" "$sent"
check_eq "malformed: no datagram truncated by the receive buffers" "$d_trunc" 0
check_eq "malformed: sip_rx_messages counts every datagram" "$d_rx" "$sent"
check_eq "malformed: rx_messages = unparsable + requests + responses" \
	"$d_rx" "$((d_unp + d_req + d_resp))"
check_eq "malformed: sip_tx_responses = answers received" "$d_tx" "$answered"
check_eq "malformed: no response failed to go out" "$d_txerr" 0
check_eq "malformed: rx_messages = answered + unparsable + responses_dropped + ack_dropped + tx_errors" \
	"$d_rx" "$((answered + d_unp + d_rdrop + d_ack + d_txerr))"
check_eq "malformed: unanswered = unparsable + responses_dropped + ack_dropped + tx_errors" \
	"$unanswered" "$((d_unp + d_rdrop + d_ack + d_txerr))"
check_eq "malformed: every response received was dropped" "$d_rdrop" "$d_resp"
check_eq "malformed: error answers = sip_rx_rejected" \
	"$((answered - $(answered_code 200)))" "$d_rej"
check_eq "malformed: 200 answers = options_answered" "$(answered_code 200)" "$d_opt"

# --- still serving --------------------------------------------------------------------

check "malformed: siphad alive after the junk" siphad_alive
ctl_status_ok() { ctl status >/dev/null 2>&1; }
check "malformed: siphactl status answers" ctl_status_ok
check_eq "malformed: well-formed OPTIONS over UDP answered after" "$("$SIPJUNK" -o "$DST" 2>&1)" 200
check_eq "malformed: well-formed OPTIONS over TCP answered after" "$("$SIPJUNK" -o -t "$DST" 2>&1)" 200

# --- TCP: garbage closes that connection only -----------------------------------------

fe0=$(metric transport_tcp_framing_errors)
# A header section without Content-Length cannot be framed (RFC 3261 §18.3).
printf 'GARBAGE\r\nno colon here\r\n\r\n' >"$T_TMP/garbage1"
check_eq "malformed: TCP headers without Content-Length close the connection" \
	"$("$SIPJUNK" -t -w 2000 -f "$T_TMP/garbage1" "$DST" 2>&1)" closed
# Binary junk with a CRLFCRLF in it: the same.
head -c 3000 /dev/urandom >"$T_TMP/garbage2"
printf '\r\n\r\n' >>"$T_TMP/garbage2"
head -c 1000 /dev/urandom >>"$T_TMP/garbage2"
check_eq "malformed: TCP binary junk closes the connection" \
	"$("$SIPJUNK" -t -w 2000 -f "$T_TMP/garbage2" "$DST" 2>&1)" closed
# A header section that never ends, beyond the largest message (64 KB).
{
	printf 'OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nSubject: '
	head -c 70000 /dev/zero | tr '\0' x
} >"$T_TMP/garbage3"
check_eq "malformed: TCP header section over 64 KB closes the connection" \
	"$("$SIPJUNK" -t -w 2000 -f "$T_TMP/garbage3" "$DST" 2>&1)" closed
# A valid request and garbage in one segment: the request is answered before
# the garbage closes the connection (responses already made are not lost).
printf '%s\r\n' "OPTIONS sip:1001@127.0.0.1:$PORT SIP/2.0" \
	"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-mal-tcp-1" "Max-Forwards: 70" \
	"From: <sip:junk@sipha.test>;tag=mal1" "To: <sip:1001@sipha.test>" \
	"Call-ID: mal-tcp-1@127.0.0.1" "CSeq: 1 OPTIONS" "Content-Length: 0" "" \
	"X" "" >"$T_TMP/garbage4"
check_eq "malformed: TCP request then garbage: answered, then closed" \
	"$("$SIPJUNK" -t -w 2000 -f "$T_TMP/garbage4" "$DST" 2>&1)" "200 closed"
fe1=$(metric transport_tcp_framing_errors)
check_eq "malformed: each TCP framing error counted" "$((fe1 - fe0))" 4
check_eq "malformed: TCP served after the framing errors" "$("$SIPJUNK" -o -t "$DST" 2>&1)" 200
check_eq "malformed: UDP served after the framing errors" "$("$SIPJUNK" -o "$DST" 2>&1)" 200
no_tcp_open() { [ "$(metric tcp_connections)" = 0 ]; }
check "malformed: no TCP connection left open" wait_until 2 no_tcp_open

stop_siphad
finish
