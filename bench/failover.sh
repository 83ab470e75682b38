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
#
# Side by side (issue 14): IMPL and FAILURE switch to a second table, one row
# per setting, implementation and failure kind:
#
#   IMPL="sipha keepalived" FAILURE="kill9 stop linkdown poweroff" \
#       bench/failover.sh 3 10/30
#
# FAILURE (one or more; kill9 when only IMPL is set), done to the active node:
#   kill9     kill -9 of its siphad (sipha: the death watch; keepalived: the
#             track file below)
#   stop      kill -STOP of its siphad (a hung process); with keepalived also
#             of both keepalived processes, VRRP child first (a hung speaker)
#   linkdown  `ip link set eth0 down` inside its namespace
#   poweroff  its veth set down from the bridge side (a-br/b-br in namespace
#             lan): the node vanishes from the LAN
# The kills are one builtin kill on PIDs looked up beforehand, the link
# changes an `ip -batch` started beforehand in the right namespace, so the
# failure happens within microseconds of the stamp the survivor's times are
# counted from.  Afterwards the failed node's processes are killed (kill -9,
# by PID) first, then its link is restored, it pings its peer (the survivor
# relearns its MAC: after a failed resolution a kernel may not ask again for
# a second, and VRRP unicast adverts would not reach the node), and it is
# restarted as the standby (BACKUP).  Killing first means a node never comes
# back with its old process still running: that is a rebooted node, and the
# measurement is over by then.  The failed node is whichever is active
# before each run.
#
# IMPL (one or more; sipha when only FAILURE is set):
#   sipha       the hot pair above, [ha] heartbeat_ms/timeout_ms = the setting.
#   keepalived  the same LAN and the same SIP server without sipha's HA: on
#               each node a siphad with no [ha], [vip] or [xdp] (it listens on
#               0.0.0.0:5060 and answers OPTIONS sent to any address) and
#               keepalived 2.2.7 (kaconf below): VRRPv3, unicast peers,
#               advert_int = the heartbeat, both nodes state BACKUP with
#               priority 254 and nopreempt (no fail-back: the first started
#               becomes MASTER), garp_master_delay 0, garp_master_repeat 2
#               (sipha's garp_count), and a track_file (weight 0) that goes
#               to 1 the moment the node's siphad exits, so that a dead
#               siphad puts the instance in FAULT at once: the equivalent of
#               sipha's death watch.  track_process, the obvious choice,
#               cannot work here (kaconf says why).  keepalived 2.2.7 takes
#               advert_int in seconds with VRRPv3's centisecond grain: 0.01
#               is the shortest it accepts ("0.005 ... not valid! ... -
#               ignoring", and then it keeps its 1 s default), so keepalived
#               rows are made only for heartbeats that are multiples of 10
#               ms.  The timeout column is VRRP's Master_Down_Interval, 3 ×
#               advert + skew ((256 − 254) / 256 × advert); TIMEOUT_MS is not
#               used.  keepalived runs in the foreground in the node's
#               namespace (-n -l -G -D -P, its own -f/-p/-r files), and this
#               script stamps each line of its log (µs) as it reads it.
#
# Per run one line on stderr; per row: the client's outage (optprobe's gap,
# last answer before the failure to the first after it; OPTIONS every
# PROBE_MS, default 1 here) min/median/max, and from the survivor's log the
# medians of failure → peer declared dead (sipha: "peer ... is dead", "peer
# silent ...: dead", "closed the link with no goodbye", "the peer's heartbeats
# stopped"; keepalived: "Receive
# advertisement timeout", "received priority 0") and failure → active
# (sipha: "-> active", stamped to the millisecond; keepalived: "Entering
# MASTER STATE").  The outage is the first silence after the failure of
# GAP_MS or more: by default 3 ms for kill9 and the heartbeat for the other
# kinds (cmp_run).  LOGS=DIR keeps the nodes' logs of every run there;
# LOG_LEVEL sets siphad's.
#
# An outage shorter than GAP_MS is a measurement too, not a missing run:
# when the client saw answers after the failure but no silence of GAP_MS
# within the prober's window (-A), the run counts with the longest silence
# between two answers that began before the failure or less than GAP_MS
# after it (optprobe's "below" line; the failed node stops answering at
# once, so the failover's silence begins there, and a hiccup seconds later
# is not taken for it).  That silence is an upper bound of the outage,
# under GAP_MS, and its end is the first answer after the failover.  The
# rule is the client's alone, the same for both implementations and all
# failure kinds; such runs are marked "under GAP_MS" on stderr and counted
# in the runs column.  A run with no answer at all after the failure is
# still not counted.

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
# The side-by-side table when IMPL or FAILURE is set, else the table above.
CMP=0
[ -n "${IMPL:-}${FAILURE:-}" ] && CMP=1
read -r -a IMPLS <<<"${IMPL:-sipha}"
read -r -a FAILURES <<<"${FAILURE:-kill9}"
PROBE_MS=${PROBE_MS:-1} # the client's OPTIONS interval
# GAP_MS: the shortest silence that counts as the outage (default: 3
# intervals; side by side, 3 ms for kill9 and the heartbeat for the other
# failures, cmp_run)
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
for x in "${IMPLS[@]}"; do
	case $x in
	sipha) ;;
	keepalived) require_cmd keepalived ;;
	*) echo "IMPL: sipha or keepalived, not '$x'" >&2; exit 2 ;;
	esac
done
for x in "${FAILURES[@]}"; do
	case $x in
	kill9 | stop | linkdown | poweroff) ;;
	*) echo "FAILURE: kill9, stop, linkdown or poweroff, not '$x'" >&2; exit 2 ;;
	esac
done

pins_del() {
	rm -rf "/sys/fs/bpf/sipha/$ID_A" "/sys/fs/bpf/sipha/$ID_B"
	rmdir /sys/fs/bpf/sipha 2>/dev/null
	return 0
}
# keepalived first: its VRRP child is not ours to reap, and a stopped one
# would ignore the harness's SIGTERM.
trap 'declare -F ka_reap_all >/dev/null && ka_reap_all; cleanup; pins_del' EXIT

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
log_level = ${LOG_LEVEL:-info}
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

# probe_line FILE: optprobe's measurement, the first silence of GAP_MS or
# more ("armed") or, failing that, the longest shorter one ("below"; see
# the header); empty when there was none.
probe_line() { grep -E '^(armed|below) ' "$1"; }

# one_run ACTIVE: kill -9 ACTIVE under the prober; sets RESULT to
# "FAILOVER_MS SILENCE_MS CLI_MS DEAD_MS VIP_MS ACTIVE_MS ANSWER_MS STEERED
# BELOW" (BELOW 1: no silence of GAP_MS, the longest one instead; not in a
# subshell: it reaps the node).
one_run() {
	local act=$1 sby=${OTHER[$1]} out=$T_TMP/probe.out probe pid t_kill t_cli line first gap
	local st0 st1 log dead vip active
	: >"$out"
	ip netns exec "$(ns_name c)" "$PROBE" -i "$PROBE_MS" -g "${GAP_MS:-$((3 * PROBE_MS))}" -T 30 -A 10 "$VIP:5060" >"$out" 2>&1 &
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
	line=$(probe_line "$out")
	if [ -z "$line" ]; then
		say "no answer after the kill: $(cat "$out")"
		return 1
	fi
	st1=$(steered "$sby")
	first=$(awk '{print $6}' <<<"$line")
	gap=$(awk '{print $8}' <<<"$line")
	log=$(siphad_log "$sby")
	# The first verdict after the kill: the death watch or the silence.
	dead=$(log_us "$log" 'ha: (peer .* is dead|.* closed the link with no goodbye|the peer.s heartbeats stopped)' "$t_kill")
	vip=$(log_us "$log" 'vip: .* added')
	active=$(log_us "$log" 'ha: .* -> active')
	RESULT=$(awk -v f="$first" -v k="$t_kill" -v g="$gap" -v c="$t_cli" -v d="$dead" \
		-v v="$vip" -v a="$active" -v s=$((st1 - st0)) \
		-v b="$([[ $line == below* ]] && echo 1 || echo 0)" 'BEGIN {
			printf "%.1f %.1f %.0f %.0f %.0f %.0f %.1f %d %d\n", (f / 1000 - k) / 1000, g,
				(c - k) / 1000, (d - k) / 1000, (v - d) / 1000, (a - v) / 1000,
				(f / 1000 - a) / 1000, s, b }')
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
		read -r f g c d v a x st b <<<"$RESULT"
		say "hb $hb / timeout $to, run $i, kill -9 of $act: first answer after $f ms" \
			"(client's silence $g ms$([ "$b" = 1 ] && echo ", under GAP_MS: the longest one");" \
			"dead declared at $d, VIP added +$v, active +$a," \
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
		"$n$([ "$n" -lt "$RUNS" ] && echo " of $RUNS")$(awk '$9 == 1 { n++ }
			END { if (n) printf " (%d under GAP_MS)", n }' "$res")" \
		"$(cut -d' ' -f1 "$res" | sort -n | head -n 1)" \
		"$(cut -d' ' -f1 "$res" | median)" \
		"$(cut -d' ' -f1 "$res" | sort -n | tail -n 1)" \
		"$(cut -d' ' -f4 "$res" | median)" \
		"$(awk '{ print $5 + $6 }' "$res" | median)" \
		"$(cut -d' ' -f7 "$res" | median)"
	[ "$n" -eq "$RUNS" ]
}

# --- side by side: failure kinds, keepalived ------------------------------------

declare -A KA_PID=() KA_LOG=() KA_STAMP=() KA_WATCH=()

# ka_sdconf NODE: siphad alone, for keepalived to move the VIP to: no [ha],
# [vip] or [xdp]; SIP on every address.
ka_sdconf() {
	cat >"$T_TMP/ka-$1.conf" <<EOC
[node]
id = ${ID[$1]}
state_dir = $T_TMP/state-${ID[$1]}
log_level = ${LOG_LEVEL:-info}
[sip]
listen = 0.0.0.0:5060
domain = sipha.test
[control]
socket = $T_TMP/${ID[$1]}.sock
[dn]
3000 = sip:10.99.0.10:5070
EOC
}

# kaconf NODE ADVERT_MS: the node's keepalived.  It tracks its siphad with a
# track_file that ka_watch sets to 1 the moment siphad exits, not with
# track_process: that one listens to the kernel's process-event connector,
# which exists only in the initial network namespace (in a node's namespace
# keepalived 2.2.7 logs "Failed to set/clear process event listen - errno
# 111" and keeps the instance in FAULT for good).  Same signal, same moment:
# the process's exit.
kaconf() {
	local n=$1 adv
	adv=$(awk -v m="$2" 'BEGIN { printf "%.2f", m / 1000 }')
	cat >"$T_TMP/ka-$n.kconf" <<EOC
global_defs {
	router_id ka-$n-$$
	vrrp_version 3
}
track_file siphad_$n {
	file "$T_TMP/ka-$n.dead"
	weight 0
	init_file 0 overwrite
}
vrrp_instance sipha_$n {
	state BACKUP
	nopreempt
	interface eth0
	virtual_router_id 51
	priority 254
	advert_int $adv
	unicast_src_ip ${IP[$n]}
	unicast_peer {
		${IP[${OTHER[$n]}]}
	}
	virtual_ipaddress {
		$VIP/24 dev eth0
	}
	garp_master_delay 0
	garp_master_repeat 2
	garp_master_refresh 0
	track_file {
		siphad_$n
	}
}
EOC
}

# ka_vrrp_pid NODE: the PID of the node's keepalived VRRP child (from its -r
# file), only while it is a keepalived process reading this node's config.
ka_vrrp_pid() {
	local p
	p=$(cat "$T_TMP/ka-$1.vpid" 2>/dev/null) || return 1
	[ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$T_TMP/ka-$1.kconf" &&
		echo "$p"
}

# ka_start NODE: keepalived in the node's namespace, in the foreground; each
# line of its log is stamped (µs, CLOCK_REALTIME) as it is read.
ka_start() {
	local n=$1 fifo=$T_TMP/ka-$1.fifo log=$T_TMP/ka-$1.log
	rm -f "$fifo" "$T_TMP/ka-$n.pid" "$T_TMP/ka-$n.vpid"
	mkfifo "$fifo" || return 1
	KA_LOG[$n]=$log
	(exec <"$fifo"; while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done >>"$log") &
	KA_STAMP[$n]=$!
	T_PIDS+=("$!")
	ip netns exec "$(ns_name "$n")" keepalived -f "$T_TMP/ka-$n.kconf" -p "$T_TMP/ka-$n.pid" \
		-r "$T_TMP/ka-$n.vpid" -n -l -G -D -P >"$fifo" 2>&1 </dev/null &
	KA_PID[$n]=$!
	T_PIDS+=("$!")
	wait_until 5 ka_vrrp_pid "$n" >/dev/null || { say "keepalived $n: no VRRP process"; return 1; }
}

# ka_stop NODE [SIGNAL]: keepalived's two processes, by PID, then reaped.
ka_stop() {
	local n=$1 sig=${2:-TERM} v p
	v=$(ka_vrrp_pid "$n")
	p=${KA_PID[$n]:-}
	[ -n "$p" ] && disown "$p" 2>/dev/null
	[ -n "$v" ] && kill "-$sig" "$v" 2>/dev/null
	[ -n "$p" ] && kill "-$sig" "$p" 2>/dev/null
	if [ -n "$p" ]; then
		wait_pid "$p" 5
		if [ $? -eq 124 ]; then
			kill -KILL "$p" 2>/dev/null
			wait_pid "$p" 2
		fi
	fi
	v=$(ka_vrrp_pid "$n") && kill -KILL "$v" 2>/dev/null
	[ -n "${KA_STAMP[$n]:-}" ] && wait_pid "${KA_STAMP[$n]}" 2
	if [ -n "${KA_WATCH[$n]:-}" ]; then
		kill "${KA_WATCH[$n]}" 2>/dev/null
		wait_pid "${KA_WATCH[$n]}" 2
	fi
	unset "KA_PID[$n]" "KA_STAMP[$n]" "KA_WATCH[$n]"
	return 0
}

# ka_watch NODE: sets the node's track file to 1 the moment its siphad exits
# (a pidfd, pidfd_open being syscall 434 on every architecture; perl-base is
# in every Debian system).  Started before keepalived, ends by itself.
ka_watch() {
	echo 0 >"$T_TMP/ka-$1.dead"
	perl -e '$fd = syscall(434, $ARGV[0] + 0, 0); die "pidfd_open: $!\n" if $fd < 0;
		vec($r = "", $fd, 1) = 1; select($r, undef, undef, undef);
		open(F, ">", $ARGV[1]) or die "$ARGV[1]: $!\n"; print F "1\n"; close(F)' \
		"$(siphad_pid "$1")" "$T_TMP/ka-$1.dead" &
	KA_WATCH[$1]=$!
	T_PIDS+=("$!")
}

# ka_reap_all: on exit, both nodes' keepalived killed by PID (also when
# stopped by FAILURE=stop).
ka_reap_all() {
	local n
	for n in a b; do
		[ -n "${KA_PID[$n]:-}" ] && ka_stop "$n" KILL
	done
	return 0
}

# ka_state NODE: the node's last VRRP state in its log (MASTER, BACKUP, FAULT).
ka_state() {
	sed -nE 's/.*[Ee]ntering (MASTER|BACKUP|FAULT) (STATE|state).*/\1/p' "${KA_LOG[$1]}" 2>/dev/null | tail -n 1
}
ka_state_is() { [ "$(ka_state "$1")" = "$2" ]; }

# ka_node_up NODE WANT: siphad then keepalived on NODE, until WANT (MASTER or
# BACKUP).
ka_node_up() {
	KA_LOG[$1]=$T_TMP/ka-$1.log
	: >"${KA_LOG[$1]}"
	start_siphad -n "$1" -N "$1" "$T_TMP/ka-$1.conf" >&2 && ka_watch "$1" && ka_start "$1" &&
		wait_until 5 ka_state_is "$1" "$2"
}

# stamp_us LOG REGEX SINCE_US: the first line of a keepalived log (stamped in
# µs by ka_start) matching REGEX at or after SINCE_US.
stamp_us() {
	grep -E "$2" "$1" | awk -v s="$3" '$1 + 0 >= s + 0 { print $1; exit }'
}

# fail_pids IMPL KIND NODE: the PIDs fail_node signals, found beforehand so
# that the failure itself is one builtin kill (a PID lookup forks).
fail_pids() {
	FAIL_PIDS=$(siphad_pid "$3")
	if [ "$1" = keepalived ] && [ "$2" = stop ]; then
		# The VRRP speaker first, then its parent, then siphad.
		FAIL_PIDS="$(ka_vrrp_pid "$3") ${KA_PID[$3]} $FAIL_PIDS"
	fi
}

# fail_prep KIND NODE: for a link failure, an `ip -batch` already running in
# the right namespace, reading its command from fd IP_FD, so that the link
# goes down the moment the command is written, not after a fork and exec.
fail_prep() {
	local ns=$2 cmd="link set eth0 down"
	IP_FD=
	case $1 in
	linkdown) ;;
	poweroff) ns=lan cmd="link set $2-br down" ;;
	*) return 0 ;;
	esac
	IP_CMD=$cmd
	exec {IP_FD}> >(exec ip -n "$(ns_name "$ns")" -batch - >"$T_TMP/ip.out" 2>&1)
	IP_PID=$!
	T_PIDS+=("$IP_PID")
}

# fail_node KIND: causes the failure (fail_pids and fail_prep first).
fail_node() {
	case $1 in
	kill9)
		# shellcheck disable=SC2086
		kill -9 $FAIL_PIDS
		;;
	stop)
		# shellcheck disable=SC2086
		kill -STOP $FAIL_PIDS
		;;
	linkdown | poweroff)
		echo "$IP_CMD" >&"$IP_FD"
		;;
	esac
}

# fail_done: ends the `ip -batch` of fail_prep.
fail_done() {
	[ -n "$IP_FD" ] || return 0
	exec {IP_FD}>&-
	wait_pid "$IP_PID" 5
	[ -s "$T_TMP/ip.out" ] && say "ip: $(cat "$T_TMP/ip.out")"
	IP_FD=
}

# restore_node IMPL KIND NODE: kills what is left of the failed node (kill -9
# by PID), brings its link back and restarts it as the standby / backup.
restore_node() {
	local impl=$1 kind=$2 n=$3 pid
	# The failed node's logs, for LOGS (its restart truncates them).
	cp "$(siphad_log "$n")" "$T_TMP/siphad-$n.failed.log" 2>/dev/null
	[ "$impl" = keepalived ] && cp "${KA_LOG[$n]}" "$T_TMP/ka-$n.failed.log" 2>/dev/null
	pid=$(siphad_pid "$n")
	if [ -n "$pid" ]; then
		disown "$pid" 2>/dev/null
		kill -9 "$pid" 2>/dev/null
		wait_pid "$pid" 5
		unset "SD_PID[$n]"
	fi
	if [ "$impl" = keepalived ]; then
		ka_stop "$n" KILL
		# A rebooted node has no VIP; keepalived -9 leaves it on eth0.
		ns_exec "$n" ip addr del "$VIP/24" dev eth0 2>/dev/null
	fi
	case $kind in
	linkdown) ns_exec "$n" ip link set eth0 up ;;
	poweroff) ns_exec lan ip link set "$n-br" up ;;
	esac
	# While the node was away the survivor's kernel failed to resolve its
	# address, and may not ask again for a second: let the node speak first
	# (the survivor learns its MAC from the ARP request), as a booting node
	# would long before its HA software starts.
	wait_until 3 ns_exec "$n" ping -c 1 -W 1 -q "${IP[${OTHER[$n]}]}" >/dev/null 2>&1
	wait_until 5 released "$n" || { say "$n's sockets linger"; return 1; }
	if [ "$impl" = keepalived ]; then
		ka_node_up "$n" BACKUP || { say "$n: keepalived not BACKUP: $(ka_state "$n")"; return 1; }
	else
		join "$n" || { say "$n does not rejoin as standby"; return 1; }
	fi
}

# node_state IMPL NODE: for messages.
node_state() {
	if [ "$1" = keepalived ]; then
		ka_state "$2"
	else
		field_of "$2" state
	fi
}

# is_active IMPL NODE
is_active() {
	if [ "$1" = keepalived ]; then
		ka_state_is "$2" MASTER
	else
		field_is "$2" state active
	fi
}

# is_standby IMPL NODE: a standby in sync / a keepalived BACKUP.
is_standby() {
	if [ "$1" = keepalived ]; then
		ka_state_is "$2" BACKUP
	else
		field_is "$2" state standby && field_is "$2" in_sync true
	fi
}

# cmp_run IMPL KIND: one failure of the active node under the prober; sets
# RESULT to "GAP_MS FAILURE->DEAD_MS FAILURE->ACTIVE_MS BELOW" (BELOW 1: the
# outage was under GAP_MS, GAP_MS is the longest silence) and ACT to the
# node that failed.
cmp_run() {
	local impl=$1 kind=$2 act sby out=$T_TMP/probe.out probe t_fail line gap
	local log dead active
	for act in a b ""; do
		[ -n "$act" ] && is_active "$impl" "$act" && is_standby "$impl" "${OTHER[$act]}" && break
	done
	if [ -z "$act" ]; then
		say "$impl: no active + standby pair before the run: a $(node_state "$impl" a), b $(node_state "$impl" b)"
		return 1
	fi
	ACT=$act
	sby=${OTHER[$act]}
	: >"$out"
	# The outage is the first silence of GAP_MS or more after the failure:
	# 3 ms for kill -9; for the others a heartbeat (advert) interval, which
	# no real outage of theirs is shorter than (it lasts at least timeout −
	# heartbeat) and which a scheduling hiccup of the loaded machine
	# between the arming and the failure rarely reaches.
	gap=${GAP_MS:-$([ "$kind" = kill9 ] && echo 3 || echo "$HB")}
	ip netns exec "$(ns_name c)" "$PROBE" -i "$PROBE_MS" -g "$gap" -T 30 -A 3 "$VIP:5060" >"$out" 2>&1 &
	probe=$!
	T_PIDS+=("$probe")
	if ! wait_until 3 grep -q '^up ' "$out"; then
		say "the VIP does not answer OPTIONS: $(cat "$out")"
		kill "$probe" 2>/dev/null
		wait_pid "$probe" 2
		return 1
	fi
	disown "$(siphad_pid "$act")" 2>/dev/null # reaped without a "Killed" line
	fail_pids "$impl" "$kind" "$act"
	fail_prep "$kind" "$act"
	sleep 0.2
	# The roles again: a false takeover since the last look (the restarted
	# node taking the VIP from a live active) would make this run measure
	# something else.
	if ! is_active "$impl" "$act" || ! is_standby "$impl" "$sby"; then
		say "$impl: the roles changed before the failure: $act $(node_state "$impl" "$act")," \
			"$sby $(node_state "$impl" "$sby"); run not counted"
		kill "$probe" 2>/dev/null
		wait_pid "$probe" 2
		fail_done
		return 2
	fi
	kill -USR1 "$probe"
	t_fail=$(now_us)
	fail_node "$kind"
	wait_until 5 is_active "$impl" "$sby"
	fail_done
	wait_pid "$probe" 15
	line=$(probe_line "$out")
	if [ "$impl" = keepalived ]; then
		log=${KA_LOG[$sby]}
		dead=$(stamp_us "$log" 'Receive advertisement timeout|received priority 0' "$t_fail")
		active=$(stamp_us "$log" '[Ee]ntering MASTER STATE' "$t_fail")
	else
		log=$(siphad_log "$sby")
		dead=$(log_us "$log" 'ha: (peer .* is dead|peer silent for .*: dead|.* closed the link with no goodbye|the peer.s heartbeats stopped)' "$t_fail")
		active=$(log_us "$log" 'ha: .* -> active' "$t_fail")
	fi
	restore_node "$impl" "$kind" "$act" || return 1
	if [ -z "$line" ]; then
		say "no answer after the failure: $(cat "$out")"
		return 1
	fi
	gap=$(awk '{print $8}' <<<"$line")
	RESULT=$(awk -v k="$t_fail" -v g="$gap" -v d="$dead" -v a="$active" \
		-v b="$([[ $line == below* ]] && echo 1 || echo 0)" 'BEGIN {
		printf "%.1f %s %s %d\n", g, (d == "" ? "-" : sprintf("%.1f", (d - k) / 1000)),
			(a == "" ? "-" : sprintf("%.1f", (a - k) / 1000)), b }')
}

# cmp_cell IMPL KIND HB/TIMEOUT: RUNS failures of one kind; prints the row.
cmp_cell() {
	local impl=$1 kind=$2 hb=${3%/*} to=${3#*/} i retries res n n_d n_a n_b shown_to
	res=$T_TMP/runs-$impl-$kind-${3/\//-}
	HB=$hb
	: >"$res"
	topo_up || { say "cannot build namespaces"; return 1; }
	if [ "$impl" = keepalived ]; then
		shown_to=$(awk -v h="$hb" 'BEGIN { printf "%.1f", 3 * h + 2 * h / 256 }')
		ka_sdconf a
		ka_sdconf b
		kaconf a "$hb"
		kaconf b "$hb"
		rm -rf "$T_TMP/state-$ID_A" "$T_TMP/state-$ID_B"
		ka_node_up a MASTER && ka_node_up b BACKUP ||
			{ say "the keepalived pair does not come up: a $(ka_state a), b $(ka_state b)"; cmp_down; return 1; }
	else
		shown_to=$to
		mkconf a "$hb" "$to"
		mkconf b "$hb" "$to"
		rm -rf "$T_TMP/state-$ID_A" "$T_TMP/state-$ID_B"
		start_siphad -n a -N a "$T_TMP/a.conf" >&2 && wait_until 5 field_is a state active &&
			join b || { say "the pair does not come up"; cmp_down; return 1; }
	fi
	for ((i = 1, retries = 0; i <= RUNS; i++)); do
		cmp_run "$impl" "$kind"
		case $? in
		0) ;;
		2)
			keep_logs "$impl-$kind-$hb-$i-changed"
			retries=$((retries + 1))
			[ "$retries" -le "$RUNS" ] && { i=$((i - 1)); continue; }
			break
			;;
		*) keep_logs "$impl-$kind-$hb-$i"; break ;;
		esac
		keep_logs "$impl-$kind-$hb-$i"
		echo "$RESULT" >>"$res"
		read -r g d a b <<<"$RESULT"
		say "$impl $kind, $hb / $shown_to, run $i, $ACT failed: client's silence" \
			"$g ms$([ "$b" = 1 ] && echo " (under GAP_MS: the longest one)");" \
			"survivor declared it dead at $d ms, active at $a ms"
	done
	cmp_down
	n=$(wc -l <"$res")
	if [ "$n" -eq 0 ]; then
		echo "| $impl | $kind | $hb | $shown_to | 0 of $RUNS | - | - | - | - | - |"
		return 1
	fi
	n_d=$(awk '$2 != "-"' "$res" | wc -l)
	n_a=$(awk '$3 != "-"' "$res" | wc -l)
	n_b=$(awk '$4 == 1' "$res" | wc -l)
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$impl" "$kind" "$hb" "$shown_to" \
		"$n$([ "$n" -lt "$RUNS" ] && echo " of $RUNS")$([ "$n_b" -gt 0 ] &&
			echo " ($n_b under GAP_MS)")$([ "$retries" -gt 0 ] &&
			echo " (+$retries not counted: roles changed before the failure)")" \
		"$(cut -d' ' -f1 "$res" | sort -n | head -n 1)" \
		"$(cut -d' ' -f1 "$res" | median)" \
		"$(cut -d' ' -f1 "$res" | sort -n | tail -n 1)" \
		"$(awk '$2 != "-" { print $2 }' "$res" | median)$([ "$n_d" -lt "$n" ] && echo " ($n_d runs)")" \
		"$(awk '$3 != "-" { print $3 }' "$res" | median)$([ "$n_a" -lt "$n" ] && echo " ($n_a runs)")"
	[ "$n" -eq "$RUNS" ]
}

# keep_logs TAG: with LOGS=DIR, the nodes' logs so far are copied there.
keep_logs() {
	local f
	[ -n "${LOGS:-}" ] || return 0
	mkdir -p "$LOGS" || return 0
	for f in "$T_TMP"/siphad-*.log "$T_TMP"/ka-*.log "$T_TMP/probe.out"; do
		[ -e "$f" ] && cp "$f" "$LOGS/$1-${f##*/}"
	done
	return 0
}

# cmp_down: stops both nodes (keepalived first, so it moves nothing while
# siphad goes) and removes the namespaces.
cmp_down() {
	local n
	for n in a b; do
		[ -n "${KA_PID[$n]:-}" ] && ka_stop "$n"
	done
	topo_down
}

say "machine: $(nproc) CPUs, $(uname -r); command: $([ "$CMP" -eq 1 ] &&
	echo "IMPL=\"${IMPLS[*]}\" FAILURE=\"${FAILURES[*]}\" ")bench/failover.sh $RUNS ${SETTINGS[*]}"
rc=0
if [ "$CMP" -eq 1 ]; then
	[[ " ${IMPLS[*]} " == *" keepalived "* ]] && say "keepalived: $(keepalived --version 2>&1 | head -n 1)"
	echo "| impl | failure | heartbeat / advert ms | timeout ms | runs | min ms | median ms | max ms | median: failure → peer declared dead | median: failure → survivor active |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for s in "${SETTINGS[@]}"; do
		case $s in
		[0-9]*/[0-9]*) ;;
		*) say "bad setting '$s' (want HEARTBEAT_MS/TIMEOUT_MS)"; rc=2; continue ;;
		esac
		for impl in "${IMPLS[@]}"; do
			if [ "$impl" = keepalived ] && [ $((${s%/*} % 10)) -ne 0 ]; then
				say "keepalived: advert ${s%/*} ms is not a multiple of 10 ms (VRRPv3 centiseconds); skipped"
				continue
			fi
			for kind in "${FAILURES[@]}"; do
				cmp_cell "$impl" "$kind" "$s" || rc=1
			done
		done
	done
	exit $rc
fi
echo "| heartbeat / timeout ms | runs | min ms | median ms | max ms | median: kill → peer declared dead | dead → active (ARP probe, VIP, GARP, XDP) | active → first answer |"
echo "|---|---|---|---|---|---|---|---|"
for s in "${SETTINGS[@]}"; do
	case $s in
	[0-9]*/[0-9]*) setting "$s" || rc=1 ;;
	*) say "bad setting '$s' (want HEARTBEAT_MS/TIMEOUT_MS)"; rc=2 ;;
	esac
done
exit $rc
