#!/usr/bin/env bash
# TCP framing that resumes where it stopped: an OPTIONS with a body sent one
# byte at a time (each its own segment) is answered once, whole; two
# requests in one write are both answered; a header section that never ends
# (64 KiB without a blank line) closes the connection.
. "$(dirname "$0")/lib.sh"
require_root
require_bin "$SIPHAD" "$SIPHACTL"

free_port PORT || finish
write_config "$T_TMP/drip.ini" "$PORT" tdrip
start_siphad "$T_TMP/drip.ini" || finish

opt() { # CALL-ID BODY
	printf 'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' \
		"$1" "$1" "${#2}" "$2"
}
answers() { grep -c '^SIP/2.0 200' "$1" 2>/dev/null || true; }

# One byte a segment: framing is tried again only when a line ends or the
# announced body is in, and the message is delivered once.
msg=$(opt drip1 "hello body")
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
for ((i = 0; i < ${#msg}; i++)); do
	printf '%s' "${msg:i:1}" >&3
	sleep 0.002
done
timeout 2 cat <&3 >"$T_TMP/drip.out" # cat writes as it reads: nothing lost at the timeout
exec 3>&-
check_eq "tcp drip: a request sent byte by byte is answered once" "$(answers "$T_TMP/drip.out")" 1
check_eq "tcp drip: and counted once" "$(metric transport_tcp_in)" 1

# Two requests in one write: both answered.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
{
	opt two1 ""
	opt two2 "x"
} >&3
timeout 2 cat <&3 >"$T_TMP/two.out"
exec 3>&-
check_eq "tcp drip: two requests in one write, two answers" "$(answers "$T_TMP/two.out")" 2

# No end of headers in 64 KiB: the connection is closed as unframeable.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
{
	printf 'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Long: '
	head -c 70000 /dev/zero | tr '\0' 'a'
} >&3 2>/dev/null
timeout 3 cat <&3 >/dev/null
exec 3>&-
check "tcp drip: an endless header section is refused" test "$(metric transport_tcp_framing_errors)" -ge 1
check_eq "tcp drip: the daemon still serves" "$(ctl status --json | jq -r .node)" tdrip
stop_siphad
finish
