#!/usr/bin/env bash
# SIP digest authentication end to end with sipp (MD5: sipp 3.6 knows no
# SHA-256; SHA-256 is checked in tests/unit/test_auth.c): a REGISTER with the
# right password is challenged then accepted; a wrong one is refused; 1,000
# wrong passwords from one address get it blocked after [auth] ban_after
# failures, every later message of it dropped unanswered and counted, while
# another address still registers.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp
require_bin "$SIPHAD" "$SIPHACTL"
SCN=$(cd "$(dirname "$0")" && pwd)/scenarios

free_port PORT || finish
printf '# extensions\n1001:secret-1001\n1002:secret-1002\n' >"$T_TMP/users"
chmod 600 "$T_TMP/users"
CONF=$T_TMP/auth.ini
write_config "$CONF" "$PORT" tauth
cat >>"$CONF" <<EOC
1002 = extension
[auth]
realm = sipha.test
users = $T_TMP/users
algorithms = md5
ban_after = 10
ban_ms = 60000
EOC
start_siphad "$CONF" || finish

# reg NAME SRC_IP PORT USER PASS [COUNT [RATE]]: sipp's result in RC, stats in NAME.csv
reg() {
	local n=$1 ip=$2 port=$3 user=$4 pass=$5 count=${6:-1} rate=${7:-10}
	(cd "$T_TMP" && timeout 60 sipp -sf "$SCN/register_auth.xml" -s "$user" -au "$user" \
		-ap "$pass" -m "$count" -r "$rate" -i "$ip" -p "$port" -recv_timeout 1000 \
		-timeout 40 -nostdin -trace_stat -stf "$n.csv" "127.0.0.1:$PORT" >/dev/null 2>&1)
	RC=$?
}

free_port P1 || finish
reg right 127.0.0.1 "$P1" 1001 secret-1001
check_eq "auth: the right password registers (challenge, then 200)" "$RC" 0
check_eq "auth: 1001 is registered" "$(ctl status --json | jq .registrations)" 1
reg wrong 127.0.0.1 "$P1" 1002 not-the-password
check "auth: a wrong password is refused" test "$RC" -ne 0
check_eq "auth: nothing registered for it" "$(ctl status --json | jq .registrations)" 1
check_eq "auth: one failure counted" "$(metric auth_failures)" 1

# An attacker at 127.0.0.3 tries 1,000 passwords.
free_port P3 || finish
reg guess 127.0.0.3 "$P3" 1002 guess 1000 200
fails=$(stat_of "$T_TMP/guess.csv" 'FailedCall(C)')
check_eq "auth: none of the 1,000 guesses registered" "$(stat_of "$T_TMP/guess.csv" 'SuccessfulCall(C)')" 0
check_eq "auth: the attacker was blocked once" "$(metric auth_bans)" 1
check_eq "auth: after exactly ban_after failures (plus the earlier one)" "$(metric auth_failures)" 11
check "auth: the rest of its messages were dropped unanswered" test "$(metric auth_banned_dropped)" -ge 900
check_eq "auth: one source blocked now" "$(metric auth_banned)" 1
info "guesses failed: $fails"
# Others are served all along.
free_port P2 || finish
reg other 127.0.0.2 "$P2" 1002 secret-1002
check_eq "auth: another address still registers" "$RC" 0
check_eq "auth: 1002 registered" "$(ctl status --json | jq .registrations)" 2
stop_siphad
finish
