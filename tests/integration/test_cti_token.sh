#!/usr/bin/env bash
# CTI clients authenticated by [cti] tokens_file: a Hello without a token or
# with a wrong one gets an Error and the connection is closed; a request
# before a right Hello is refused; with a right token the client is served.
# A tokens file others can read is refused at start-up.
. "$(dirname "$0")/lib.sh"
require_root
require_bin "$SIPHAD" "$SIPHACTL"

free_port PORT || finish
free_port CTI || finish
TOK=0123456789abcdef-right-token
printf '# desks\n%s\nanother-token-of-16\n' "$TOK" >"$T_TMP/tokens"
chmod 600 "$T_TMP/tokens"
CONF=$T_TMP/tok.ini
write_config "$CONF" "$PORT" ttok
cat >>"$CONF" <<EOC
[cti]
listen = 127.0.0.1:$CTI
tokens_file = $T_TMP/tokens
EOC
start_siphad "$CONF" || finish

# talk LINE...: sends each line on one connection, prints what comes back
# (2 s at most) and "CLOSED" when the server closed it.
talk() {
	local l out
	exec 3<>"/dev/tcp/127.0.0.1/$CTI" || return 1
	for l in "$@"; do printf '%s\n' "$l" >&3; done
	while IFS= read -r -t 2 out <&3; do printf '%s\n' "$out"; done
	[ $? -gt 128 ] || echo CLOSED
	exec 3>&-
}

out=$(talk '{"req":"Hello","ref":1}')
check "cti token: a Hello without a token is refused" grep -q '"authentication failed"' <<<"$out"
check "cti token: and the connection closed" grep -q '^CLOSED' <<<"$out"
out=$(talk '{"req":"Hello","ref":1,"token":"0123456789abcdef-wrong-token"}')
check "cti token: a wrong token is refused and closed" grep -q '"authentication failed"' <<<"$out"
check "cti token: (closed)" grep -q '^CLOSED' <<<"$out"
out=$(talk '{"req":"Monitor","ref":2,"dn":"1001"}' '{"req":"AgentLogin","ref":3,"agent":"x","dn":"1001"}')
check_eq "cti token: requests before Hello are refused" \
	"$(grep -c 'authentication required' <<<"$out")" 2
out=$(talk "{\"req\":\"Hello\",\"ref\":1,\"token\":\"$TOK\"}" '{"req":"Monitor","ref":2,"dn":"1001"}' \
	'{"req":"AgentLogin","ref":3,"agent":"x","dn":"1001"}')
check "cti token: a right token: Hello answered" grep -q '"ok":true,"node":"ttok"' <<<"$out"
check "cti token: then served (Monitor)" grep -q '"ref":2' <<<"$out"
check "cti token: then served (AgentLogin)" grep -q '"ref":3,.*"ok":true' <<<"$out"
check "cti token: failures counted" test "$(metric cti_auth_failures)" -ge 4
stop_siphad

chmod 644 "$T_TMP/tokens"
timeout 10 "$SIPHAD" -c "$CONF" >"$T_TMP/bad.log" 2>&1
check "cti token: a tokens file others can read stops siphad at start" test $? -ne 0
check "cti token: and says why" grep -q "mode 0600" "$T_TMP/bad.log"
finish
