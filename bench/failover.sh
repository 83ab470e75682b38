#!/usr/bin/env bash
# Failover time of an HA pair: from `kill -9` of the active siphad to the
# first OPTIONS the VIP answers again, seen by a client that sends one every
# millisecond (tests/tools/optprobe; PROBE_MS sets the interval, GAP_MS the
# silence that counts as an outage, default 3 intervals).  N runs per timer
# setting; the killed node is restarted between runs and joins as standby, so
# the runs alternate between the nodes.  Hot standby, XDP native on the nodes' veths, all in network
# namespaces this script makes (the integration harness's, sipha-t<pid>-*).
#
#   bench/failover.sh [RUNS] [HEARTBEAT_MS/TIMEOUT_MS ...]
#   bench/failover.sh 20 50/200 10/50          (the default)
#   PROBE_MS=5 bench/failover.sh ...            (OPTIONS every 5 ms instead of 1)
#
# Per run one line on stderr: the failover time, the silence the client saw
# (last answer before, first after), and from the survivor's log when it
# declared the peer dead, added the VIP and went active (siphad's log stamps
# are whole milliseconds), and the XDP "steered" count during the run.  Per
# setting one Markdown row on stdout: min/median/max of the failover time
# and the medians of its three parts.
set -u
cd "$(dirname "$0")/.." || exit 2
. tests/integration/lib.sh
require_root
require_bin "$SIPHAD" "$SIPHACTL" "$T_BUILD/tests/tools/optprobe"

T_NAME=failover
RUNS=${1:-20}
shift $(($# > 0 ? 1 : 0))
SETTINGS=("$@")
[ ${#SETTINGS[@]} -eq 0 ] && SETTINGS=(50/200 10/50)
VIP=10.99.0.100
PROBE=$T_BUILD/tests/tools/optprobe
PROBE_MS=${PROBE_MS:-1} # the client's OPTIONS interval
GAP_MS=${GAP_MS:-$((3 * PROBE_MS))} # a silence that long is the outage
ID_A=fa-$$
ID_B=fb-$$
declare -A IP=([a]=10.99.0.1 [b]=10.99.0.2) ID=([a]=$ID_A [b]=$ID_B)
declare -A ROLE=([a]=primary [b]=backup) OTHER=([a]=b [b]=a)

case $RUNS in
'' | *[!0-9]*) echo "usage: bench/failover.sh [RUNS] [HB/TIMEOUT ...]" >&2; exit 2 ;;
esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 200 ]; then
	echo "RUNS: 1..200" >&2
	exit 2
fi

pins_del() {
	rm -rf "/sys/fs/bpf/sipha/$ID_A" "/sys/fs/bpf/sipha/$ID_B"
	rmdir /sys/fs/bpf/sipha 2>/dev/null
	return 0
}
trap 'cleanup; pins_del' EXIT

say() { echo "$*" >&2; }
now_us() { echo "${EPOCHREALTIME/./}"; }
field_is() { [ "$(ctl -n "$1" status --json 2>/dev/null | jq -r ".$2")" = "$3" ]; }
released() {
	! ns_exec "$1" ss -Hltun 2>/dev/null | awk '{print $5}' | grep -qE ':(5060|7100)$'
}

mkconf() { # NODE HB TIMEOUT
	local n=$1
	cat >"$T_TMP/$n.conf" <<EOC
[node]
id = ${ID[$n]}
role = ${ROLE[$n]}
redundancy = hot
priority = 100
state_dir = $T_TMP/state-${ID[$n]}
log_level = info
[sip]
listen = 0.0.0.0:5060
domain = sipha.test
[vip]
address = $VIP/24
interface = eth0
garp_count = 2
[ha]
listen = ${IP[$n]}:7100
peer = ${IP[${OTHER[$n]}]}:7100
heartbeat_ms = $2
timeout_ms = $3
[xdp]
interface = eth0
mode = native
[control]
socket = $T_TMP/${ID[$n]}.sock
[dn]
3000 = sip:10.99.0.10:5070
EOC
}

topo_up() {
	local n
	ns_lan lan a b c || return 1
	addr_add a eth0 10.99.0.1/24 && addr_add b eth0 10.99.0.2/24 &&
		addr_add c eth0 10.99.0.10/24 || return 1
	for n in a b; do
		ns_exec lan ip link set "$n-br" xdp object "$T_BUILD/sipha_xdp.bpf.o" sec xdp ||
			return 1
	done
	ns_exec c ethtool -K eth0 tx off >/dev/null 2>&1 || true
}

topo_down() {
	local n
	for n in a b; do
		siphad_alive "$n" && stop_siphad "$n" >/dev/null
	done
	for n in lan a b c; do
		ns_del "$n"
	done
	pins_del
}

# join NODE: (re)start NODE and wait until it is a standby in sync.
join() {
	start_siphad -n "$1" -N "$1" "$T_TMP/$1.conf" >&2 || return 1
	wait_until 10 field_is "$1" state standby && wait_until 10 field_is "$1" in_sync true
}

# steered NODE: the XDP "steered" counter of a live node
steered() {
	ctl -n "$1" xdp --json 2>/dev/null | jq -r '.counters.steered // 0'
}

# log_us LOG REGEX [SINCE_US]: the time of the last log line matching REGEX,
# in µs, or with SINCE_US the first one stamped in or after SINCE_US's
# millisecond (siphad stamps its lines with CLOCK_REALTIME seconds, to the
# millisecond).
log_us() {
	grep -E "$2" "$1" | awk -v s="${3:-}" '{ split($1, t, "."); v = sprintf("%d%03d000", t[1], t[2]) }
		s == "" { last = v; next }
		v + 999 >= s + 0 { print v; found = 1; exit }
		END { if (s == "" && last != "") print last }'
}

# one_run ACTIVE: kill -9 ACTIVE under the prober; sets RESULT to
# "FAILOVER_MS SILENCE_MS CLI_MS" (not in a subshell: it reaps the node).
one_run() {
	local act=$1 sby=${OTHER[$1]} out=$T_TMP/probe.out probe pid t_kill t_cli line first gap
	local st0 st1 log dead vip active
	: >"$out"
	ip netns exec "$(ns_name c)" "$PROBE" -i "$PROBE_MS" -g "$GAP_MS" -T 30 -A 10 "$VIP:5060" >"$out" 2>&1 &
	probe=$!
	T_PIDS+=("$probe")
	if ! wait_until 3 grep -q '^up ' "$out"; then
		say "the VIP does not answer OPTIONS: $(cat "$out")"
		kill "$probe" 2>/dev/null
		return 1
	fi
	sleep 0.2
	pid=$(siphad_pid "$act")
	disown "$pid" 2>/dev/null # reaped by bash without a "Killed" line
	st0=$(steered "$sby")
	kill -USR1 "$probe"
	t_kill=$(now_us)
	kill -9 "$pid"
	wait_until 5 field_is "$sby" state active
	t_cli=$(now_us)
	wait_pid "$probe" 15
	wait_pid "$pid" 5
	unset "SD_PID[$act]"
	line=$(grep '^armed ' "$out")
	if [ -z "$line" ]; then
		say "no answer after the kill: $(cat "$out")"
		return 1
	fi
	st1=$(steered "$sby")
	first=$(awk '{print $6}' <<<"$line")
	gap=$(awk '{print $8}' <<<"$line")
	log=$(siphad_log "$sby")
	# The first verdict after the kill: the death watch or the silence.
	dead=$(log_us "$log" 'ha: (peer .* is dead|.* closed the link with no goodbye)' "$t_kill")
	vip=$(log_us "$log" 'vip: .* added')
	active=$(log_us "$log" 'ha: .* -> active')
	RESULT=$(awk -v f="$first" -v k="$t_kill" -v g="$gap" -v c="$t_cli" -v d="$dead" \
		-v v="$vip" -v a="$active" -v s=$((st1 - st0)) 'BEGIN {
			printf "%.1f %.1f %.0f %.0f %.0f %.0f %.1f %d\n", (f / 1000 - k) / 1000, g,
				(c - k) / 1000, (d - k) / 1000, (v - d) / 1000, (a - v) / 1000,
				(f / 1000 - a) / 1000, s }')
}

# median of the numbers on stdin
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# setting HB/TIMEOUT: RUNS failovers; prints the table row.
setting() {
	local hb=${1%/*} to=${1#*/} act=a i res=$T_TMP/runs-${1/\//-} n
	: >"$res"
	mkconf a "$hb" "$to"
	mkconf b "$hb" "$to"
	rm -rf "$T_TMP/state-$ID_A" "$T_TMP/state-$ID_B"
	topo_up || { say "cannot build namespaces"; return 1; }
	start_siphad -n a -N a "$T_TMP/a.conf" >&2 && wait_until 5 field_is a state active &&
		join b || { say "the pair does not come up"; topo_down; return 1; }
	for ((i = 1; i <= RUNS; i++)); do
		one_run "$act" || break
		echo "$RESULT" >>"$res"
		read -r f g c d v a x st <<<"$RESULT"
		say "hb $hb / timeout $to, run $i, kill -9 of $act: first answer after $f ms" \
			"(client's silence $g ms; dead declared at $d, VIP added +$v, active +$a," \
			"answered +$x; CLI saw active at $c ms; steered $st)"
		wait_until 5 released "$act" || { say "$act's sockets linger"; break; }
		join "$act" || { say "$act does not rejoin as standby"; break; }
		act=${OTHER[$act]}
	done
	topo_down
	n=$(wc -l <"$res")
	if [ "$n" -eq 0 ]; then
		echo "| $hb / $to | 0 | - | - | - | - | - | - |"
		return 1
	fi
	printf '| %s / %s | %s | %s | %s | %s | %s | %s | %s |\n' "$hb" "$to" \
		"$n$([ "$n" -lt "$RUNS" ] && echo " of $RUNS")" \
		"$(cut -d' ' -f1 "$res" | sort -n | head -n 1)" \
		"$(cut -d' ' -f1 "$res" | median)" \
		"$(cut -d' ' -f1 "$res" | sort -n | tail -n 1)" \
		"$(cut -d' ' -f4 "$res" | median)" \
		"$(awk '{ print $5 + $6 }' "$res" | median)" \
		"$(cut -d' ' -f7 "$res" | median)"
	[ "$n" -eq "$RUNS" ]
}

say "machine: $(nproc) CPUs, $(uname -r); command: bench/failover.sh $RUNS ${SETTINGS[*]}"
echo "| heartbeat / timeout ms | runs | min ms | median ms | max ms | median: kill → peer declared dead | dead → active (ARP probe, VIP, GARP, XDP) | active → first answer |"
echo "|---|---|---|---|---|---|---|---|"
rc=0
for s in "${SETTINGS[@]}"; do
	case $s in
	[0-9]*/[0-9]*) setting "$s" || rc=1 ;;
	*) say "bad setting '$s' (want HEARTBEAT_MS/TIMEOUT_MS)"; rc=2 ;;
	esac
done
exit $rc
