#!/usr/bin/env bash
# Digest authentication across a failover, in namespaces: a hot pair with
# [auth] (the same users file) and the same [ha] key_file, whose HMAC nonces
# need no replication.  A phone (sipp, scenarios/ha_register_auth.xml) is
# challenged by the active node; the active is killed (kill -9) before the
# phone answers; the answer, with the dead node's nonce, reaches the node
# that took over and is accepted (200), and the binding is there.  A wrong
# password through the new active still gets 403.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp jq
require_bin "$SIPHAD" "$SIPHACTL"
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios

ha_lan || { fail "auth ha: topology" "cannot build namespaces"; finish; }
addr_add a eth0 10.99.0.1/24
addr_add b eth0 10.99.0.2/24
addr_add c eth0 10.99.0.10/24
printf '1001:secret-1001\n' >"$T_TMP/users"
chmod 600 "$T_TMP/users"
for n in a b; do
	ha_conf "$T_TMP/$n.conf" "$n" "$([ $n = a ] && echo primary || echo backup)" \
		"10.99.0.$([ $n = a ] && echo 1 || echo 2)" "10.99.0.$([ $n = a ] && echo 2 || echo 1)"
	# [auth] goes before [dn], the last section of ha_conf's file.
	sed -i "/^\[dn\]/i [auth]\nrealm = sipha.test\nusers = $T_TMP/users\nalgorithms = md5" \
		"$T_TMP/$n.conf"
done
ha_start_pair "auth ha" || finish

(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" sipp -sf "$SCN/ha_register_auth.xml" \
	-s 1001 -au 1001 -ap secret-1001 -m 1 -i 10.99.0.10 -p 5062 -timeout 20 -nostdin \
	-trace_stat -stf fo.csv "$HA_VIP:5060" >/dev/null 2>&1) &
UAC=$!
T_PIDS+=("$UAC")
challenged() { [ "$(metric auth_challenges a 2>/dev/null || echo 0)" -ge 1 ]; }
wait_until 3 challenged
check "auth ha: the active challenged the phone" test "$(metric auth_challenges a)" -ge 1
kill9 a # the phone is in its 2 s pause, its answer not sent
wait_until 5 field_is b state active
check_eq "auth ha: nothing registered before the failover" "$(field_of b registrations)" 0
check_eq "auth ha: the backup took over" "$(state_of b)" active
wait_pid "$UAC" 25
check_eq "auth ha: the answer with the dead node's nonce is accepted (sipp ok/failed)" \
	"$(stat_of "$T_TMP/fo.csv" 'SuccessfulCall(C)')/$(stat_of "$T_TMP/fo.csv" 'FailedCall(C)')" 1/0
check_eq "auth ha: the phone is registered on the new active" "$(field_of b registrations)" 1
check_eq "auth ha: one authentication, no failure, on the new active" \
	"$(metric auth_ok b)/$(metric auth_failures b)" 1/0

(cd "$T_TMP" && timeout 30 ip netns exec "$(ns_name c)" sipp -sf "$SCN/register_auth.xml" \
	-s 1001 -au 1001 -ap wrong -m 1 -i 10.99.0.10 -p 5063 -timeout 10 -nostdin \
	-trace_stat -stf bad.csv "$HA_VIP:5060" >/dev/null 2>&1)
check_eq "auth ha: a wrong password through the new active fails" \
	"$(stat_of "$T_TMP/bad.csv" 'FailedCall(C)')" 1
check_eq "auth ha: ... counted" "$(metric auth_failures b)" 1
finish
