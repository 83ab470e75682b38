#!/usr/bin/env bash
# Via received= and rport (RFC 3261 §18.2.1, RFC 3581 §4) on the wire: sipp
# plays a client behind a NAT (its Via names 192.0.2.7, its packets come from
# 127.0.0.1) and checks, in scenarios/options_via_nat.xml, that the answers
# of a transaction (200) and of a stateless rejection (420) carry
# received=127.0.0.1, that an empty ;rport comes back as rport=<sipp's port>,
# and that a client whose sent-by is right gets no received=.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp timeout
require_bin "$SIPHAD" "$SIPHACTL"

free_port PORT || finish
free_port SPORT || finish
CONF=$T_TMP/via.ini
write_config "$CONF" "$PORT" tvr
start_siphad "$CONF" || finish

sed -e 's/@VIA_HOST@/192.0.2.7/g' -e 's/@SRC@/127.0.0.1/g' -e "s/@RPORT@/$SPORT/g" \
	"$T_ROOT/tests/integration/scenarios/options_via_nat.xml" >"$T_TMP/via_nat.xml"
(cd "$T_TMP" && timeout -k 2 20 sipp -sf via_nat.xml -i 127.0.0.1 -p "$SPORT" -m 1 \
	-timeout 15 -timeout_error -nostdin -trace_err 127.0.0.1:"$PORT" \
	>"$T_TMP/sipp.out" 2>"$T_TMP/sipp.err") &
T_PIDS+=($!)
wait_pid $! 25
rc=$?
if [ "$rc" -eq 0 ]; then
	pass "via: received= and rport= in a 200, a stateless 420, none when sent-by is right"
else
	fail "via: received= and rport= in answers" "sipp exit $rc"
	grep -v '^$' "$T_TMP"/*errors.log "$T_TMP/sipp.err" 2>/dev/null | head -n 12 | sed 's/^/# /'
fi
check "via: siphad still alive" siphad_alive
finish
