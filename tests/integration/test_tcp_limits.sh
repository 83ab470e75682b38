#!/usr/bin/env bash
# TCP limits: one address may hold [sip] tcp_max_per_source connections, the
# next is closed at accept; a connection that says nothing SIP within
# tcp_silent_ms is closed; one that keeps sending keep-alives stays; the
# node serves requests all along, over UDP and over a new connection.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd sipp
require_bin "$SIPHAD" "$SIPHACTL"

free_port PORT || finish
CONF=$T_TMP/lim.ini
write_config "$CONF" "$PORT" tlim
sed -i "s/^domain = .*/&\ntcp_max_per_source = 20\ntcp_silent_ms = 1500/" "$CONF"
start_siphad "$CONF" || finish

# One connection that sends a keep-alive every 500 ms, then 30 silent ones,
# all from 127.0.0.1.
(
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	for i in $(seq 8); do printf '\r\n\r\n' >&3; sleep 0.5; done
) &
busy=$!
wait_until 3 sh -c "[ \"\$($SIPHACTL -s $(siphad_sock) metrics | awk '/^sipha_tcp_connections/ {print \$2}')\" = 1 ]"
fds=()
for i in $(seq 30); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || break
	fds+=("$fd")
done
wait_until 3 sh -c "[ \"\$($SIPHACTL -s $(siphad_sock) metrics | awk '/^sipha_transport_tcp_refused/ {print \$2}')\" = 11 ]"
check_eq "tcp limits: the connections past 20 from one address are refused at accept" \
	"$(metric transport_tcp_refused)" 11
check_eq "tcp limits: 20 open" "$(metric tcp_connections)" 20
sleep 2.2
check_eq "tcp limits: the 19 silent ones closed after tcp_silent_ms" "$(metric transport_tcp_timeouts)" 19
check "tcp limits: the one sending keep-alives stays" test "$(metric tcp_connections)" -ge 1
check "tcp limits: its keep-alives were seen" test "$(metric transport_keepalives)" -ge 4
for fd in "${fds[@]}"; do exec {fd}>&-; done
check_eq "tcp limits: the daemon still answers" "$(ctl status --json | jq -r .node)" tlim
wait "$busy" 2>/dev/null
stop_siphad
finish
