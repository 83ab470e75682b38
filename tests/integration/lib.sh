# Shared harness of sipha's integration tests; every tests/integration/test_*.sh
# sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#   require_root
#   ...
#   pass NAME / fail NAME WHY      one line each, counted by tests/run.sh
#   finish                          exit status: 0 when nothing failed
#
# What it gives a test:
#   $T_TMP                a private temp dir (removed on exit)
#   free_port VAR         a port free for both UDP and TCP, into VAR
#   write_config FILE ...  a minimal siphad config (see the function)
#   start_siphad / stop_siphad / ctl / metric / metrics_snapshot
#   ns_create / ns_exec / veth_add / bridge_add / ...   namespaces for HA tests
#   skip WHY              exit 77, only when the environment cannot run the test
#
# Everything a test starts or creates is recorded here and removed by the EXIT
# trap: processes are killed by the PID we started (and only while they are
# still our children), namespaces by the name we gave them (sipha-t<pid>-NAME),
# never by pattern.  A test waiting on a long command should run it with
# `run_bg CMD; wait_pid $! SECONDS` so that SIGTERM from the runner's timeout is
# acted on at once.
#
# Other helpers: check NAME CMD..., check_eq NAME GOT WANT, info TEXT,
# wait_until SECONDS CMD..., run_bg CMD..., wait_pid PID SECONDS, require_cmd,
# require_bin, config_value FILE SECTION KEY, siphad_alive/pid/log/sock/conf
# [NAME], metric_from FILE NAME, json_get JSON FILTER, is_one_json_object,
# ns_exists, ns_del, veth_add, bridge_add, bridge_port, addr_add, ns_lan;
# for HA pairs: ha_conf, ha_lan, ha_start_pair, field_of, field_is,
# state_of, kill9; stat_of CSV FIELD for sipp statistics.
#
# Environment: SIPHA_BUILD (default <repo>/build), SIPHAD, SIPHACTL, SIPJUNK to
# point at other binaries (e.g. a sanitizer build of siphad), T_KEEP=1 to
# keep the temp dir for inspection.

set -u
set -o pipefail

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_BUILD=${SIPHA_BUILD:-$T_ROOT/build}
SIPHAD=${SIPHAD:-$T_BUILD/siphad}
SIPHACTL=${SIPHACTL:-$T_BUILD/siphactl}
SIPJUNK=${SIPJUNK:-$T_BUILD/tests/tools/sipjunk}
T_NAME=$(basename "$0" .sh)
T_PASSED=0
T_FAILED=0
T_TMP=
T_PIDS=()       # every background PID we started
T_NETNS=()      # full names of namespaces we created
T_LINKS=()      # links we created in the root namespace
T_PORTS=" "     # ports handed out by free_port
T_CLEANED=0
declare -A SD_PID=() SD_SOCK=() SD_LOG=() SD_CONF=() SD_NS=() SD_LISTEN=()

# --- reporting ---------------------------------------------------------------------

pass() {
	T_PASSED=$((T_PASSED + 1))
	echo "PASS $1"
}

# fail NAME WHY
fail() {
	T_FAILED=$((T_FAILED + 1))
	echo "FAIL $1: ${2:-failed}"
}

# check NAME CMD...: PASS when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name" "command failed: $*"
	fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" == "$3" ]; then
		pass "$1"
	else
		fail "$1" "got '$2', want '$3'"
	fi
}

info() {
	echo "# $*"
}

skip() {
	echo "SKIP $T_NAME: $*"
	exit 77
}

require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
}

# require_cmd CMD...: a missing tool is a broken environment (scripts/deps.sh
# installs them all), so it fails rather than skips.
require_cmd() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			fail "$T_NAME: tool $c" "not installed (make deps)"
			finish
		fi
	done
}

# require_bin FILE...: binaries `make` builds.
require_bin() {
	local b
	for b in "$@"; do
		if [ ! -x "$b" ]; then
			fail "$T_NAME: binary $b" "missing; run make first"
			finish
		fi
	done
}

# finish: the last line of every test; exits 1 when something failed.
finish() {
	info "$T_NAME: $T_PASSED passed, $T_FAILED failed"
	[ "$T_FAILED" -eq 0 ] && exit 0
	exit 1
}

# --- time bounds ---------------------------------------------------------------------

# wait_until TIMEOUT_S CMD...: polls CMD every 50 ms; 0 once it succeeds.
wait_until() {
	local to=$1 end
	shift
	end=$(($(date +%s%N) / 1000000 + to * 1000))
	while :; do
		"$@" && return 0
		[ $(($(date +%s%N) / 1000000)) -ge "$end" ] && return 1
		sleep 0.05
	done
}

# run_bg CMD...: starts CMD in the background and records its PID ($!) for cleanup.
run_bg() {
	"$@" &
	T_PIDS+=("$!")
}

# wait_pid PID TIMEOUT_S: waits for a child we started; returns its exit
# status, or 124 when it is still running after TIMEOUT_S.
wait_pid() {
	local pid=$1 to=$2 end
	end=$(($(date +%s) + to))
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie is gone for our purposes; wait reaps it below.
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
		[ "$(date +%s)" -ge "$end" ] && return 124
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
}

# --- ports ------------------------------------------------------------------------------

# port_in_use PORT: anything bound on it, TCP or UDP, any address.
port_in_use() {
	ss -Htuan 2>/dev/null | awk '{print $5}' | grep -qE "[:.]$1\$"
}

# free_port VAR: sets VAR to a port free for UDP and TCP on every address,
# derived from our PID so that tests running at the same time start in
# different places, and never one handed out before in this test.
free_port() {
	local p=$((20000 + ($$ * 37 + ${#T_PORTS} * 11) % 30000)) i
	for ((i = 0; i < 2000; i++)); do
		if [[ $T_PORTS != *" $p "* ]] && ! port_in_use "$p"; then
			T_PORTS+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
		p=$((p + 1))
		[ "$p" -ge 60000 ] && p=20000
	done
	fail "$T_NAME: free port" "none found"
	return 1
}

# --- siphad -----------------------------------------------------------------------------

# write_config FILE PORT [ID] [LISTEN_IP] [DOMAIN]: a minimal config with the
# three DNs tests rely on; append sections with cat >>FILE.  The control
# socket lives in $T_TMP.
write_config() {
	local f=$1 port=$2 id=${3:-t1} ip=${4:-127.0.0.1} domain=${5:-sipha.test}
	cat >"$f" <<EOF
[node]
id = $id
state_dir = $T_TMP/state-$id

[sip]
listen = $ip:$port
domain = $domain

[control]
socket = $T_TMP/$id.sock

[engine]
workers = 1

[dn]
1001 = extension
2000 = routing-point
3000 = sip:127.0.0.1:5999
EOF
}

# config_value FILE SECTION KEY: one value of a config.
config_value() {
	awk -F= -v sec="[$2]" -v key="$3" '/^\[/ { s = $0; gsub(/[ \t]/, "", s) }
		s == sec { k = $1; gsub(/[ \t]/, "", k)
			if (k == key) { v = substr($0, index($0, "=") + 1)
				gsub(/^[ \t]+|[ \t]+$/, "", v); print v; exit } }' "$1"
}

# config_socket FILE: the [control] socket of a config.
config_socket() {
	config_value "$1" control socket
}

# start_siphad [-n NAME] [-N NETNS] CONFIG [SIPHAD ARGS...]
# Starts siphad in the background (in NETNS when given: the short name of a
# namespace made by ns_create), waits until `siphactl status` answers (10 s at
# most).  NAME (default "main") names the instance for ctl/metric/stop.
# Returns 0 when it serves, 1 otherwise (after a FAIL line).
start_siphad() {
	local name=main ns="" conf sock log pid i
	while [ $# -gt 0 ]; do
		case $1 in
		-n) name=$2; shift 2 ;;
		-N) ns=$2; shift 2 ;;
		*) break ;;
		esac
	done
	conf=$1
	shift
	sock=$(config_socket "$conf")
	log=$T_TMP/siphad-$name.log
	: >"$log"
	if [ -n "$ns" ]; then
		ip netns exec "$(ns_name "$ns")" "$SIPHAD" -c "$conf" "$@" 2>>"$log" &
	else
		"$SIPHAD" -c "$conf" "$@" 2>>"$log" &
	fi
	pid=$!
	T_PIDS+=("$pid")
	SD_PID[$name]=$pid SD_SOCK[$name]=$sock SD_LOG[$name]=$log SD_CONF[$name]=$conf
	SD_NS[$name]=$ns
	SD_LISTEN[$name]=$(config_value "$conf" sip listen)

	for ((i = 0; i < 200; i++)); do
		if ! siphad_alive "$name"; then
			wait "$pid" 2>/dev/null
			fail "$T_NAME: start siphad $name" "exited with status $?; log: $(tail -n 5 "$log" | tr '\n' '|')"
			return 1
		fi
		"$SIPHACTL" -s "$sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "$T_NAME: start siphad $name" "not serving after 10 s; log: $(tail -n 5 "$log" | tr '\n' '|')"
	return 1
}

siphad_alive() { # [NAME]
	local pid=${SD_PID[${1:-main}]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]
}

siphad_pid() { echo "${SD_PID[${1:-main}]:-}"; }
siphad_log() { echo "${SD_LOG[${1:-main}]:-}"; }
siphad_sock() { echo "${SD_SOCK[${1:-main}]:-}"; }
siphad_conf() { echo "${SD_CONF[${1:-main}]:-}"; }

_listen_released() {
	local ns=${SD_NS[$1]} l=${SD_LISTEN[$1]}
	[ -n "$l" ] || return 0
	if [ -n "$ns" ]; then
		! ip netns exec "$(ns_name "$ns")" ss -Hltn "sport = :${l##*:}" 2>/dev/null | grep -q .
	else
		! ss -Hltn "sport = :${l##*:}" 2>/dev/null | grep -qF "$l"
	fi
}

# sanitizer_report LOG: prints the first lines of any ASan/UBSan/LSan report.
sanitizer_report() {
	grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer' "$1" 2>/dev/null | head -n 5
}

# stop_siphad [NAME]: SIGTERM by PID, waits 10 s at most, and asserts: exit
# status 0, no sanitizer report in the log, control socket removed.
# Emits PASS/FAIL lines; returns 0 when all held.
stop_siphad() {
	local name=${1:-main} pid rc san ok=0
	pid=${SD_PID[$name]:-}
	if [ -z "$pid" ]; then
		fail "$T_NAME: stop siphad $name" "never started"
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null
	wait_pid "$pid" 10
	rc=$?
	if [ "$rc" -eq 124 ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		fail "$T_NAME: siphad $name exits on SIGTERM" "still running 10 s after SIGTERM (killed)"
		ok=1
	elif [ "$rc" -ne 0 ]; then
		fail "$T_NAME: siphad $name exits 0 on SIGTERM" "exit status $rc; log: $(tail -n 3 "${SD_LOG[$name]}" | tr '\n' '|')"
		ok=1
	else
		pass "$T_NAME: siphad $name exits 0 on SIGTERM"
	fi
	# The kernel may release the sockets of an exited io_uring process a
	# few ms late; a restart must not race that, nor may they outlive it.
	if ! wait_until 2 _listen_released "$name"; then
		fail "$T_NAME: siphad $name releases its SIP port" "${SD_LISTEN[$name]} still listening 2 s after exit"
		ok=1
	fi
	san=$(sanitizer_report "${SD_LOG[$name]}")
	if [ -n "$san" ]; then
		fail "$T_NAME: siphad $name sanitizer-clean" "$(echo "$san" | tr '\n' '|')"
		ok=1
	fi
	if [ -e "${SD_SOCK[$name]}" ]; then
		fail "$T_NAME: siphad $name removes its control socket" "${SD_SOCK[$name]} still exists"
		ok=1
	fi
	unset "SD_PID[$name]"
	return $ok
}

# ctl [-n NAME] ARGS...: siphactl on an instance's socket.
ctl() {
	local name=main
	if [ "${1:-}" = -n ]; then
		name=$2
		shift 2
	fi
	"$SIPHACTL" -s "${SD_SOCK[$name]}" "$@"
}

# metrics_snapshot FILE [NAME]: saves `siphactl metrics`.
metrics_snapshot() {
	ctl -n "${2:-main}" metrics >"$1"
}

# metric_from FILE NAME: one value from a snapshot ("sipha_" prefix optional,
# labels ignored); prints nothing and returns 1 when absent.
metric_from() {
	local m=$2
	[[ $m == sipha_* ]] || m=sipha_$m
	awk -v m="$m" '$0 !~ /^#/ { n = $1; sub(/\{.*/, "", n); if (n == m) { print $2; f = 1; exit } }
		END { exit !f }' "$1"
}

# metric NAME [INSTANCE]: one counter, read now.
metric() {
	local f=$T_TMP/.metric.$$ v
	metrics_snapshot "$f" "${2:-main}" || return 1
	v=$(metric_from "$f" "$1") || return 1
	echo "$v"
}

# json_get JSON FILTER: jq, raw output.
json_get() {
	jq -r "$2" <<<"$1"
}

# is_one_json_object: stdin is exactly one JSON object and nothing else.
is_one_json_object() {
	jq -e -s 'length == 1 and (.[0] | type) == "object"' >/dev/null 2>&1
}

# --- namespaces -----------------------------------------------------------------------
# Names: ns_create web -> namespace sipha-t<pid>-web.  Links live inside our
# namespaces and die with them; root-namespace links are recorded and deleted.

ns_name() {
	echo "sipha-t$$-$1"
}

# ns_create NAME: a namespace with lo up, IPv6 DAD off (addresses usable at
# once), and ip_nonlocal_bind on (a standby may bind the VIP before holding it).
ns_create() {
	local n
	n=$(ns_name "$1")
	ip netns add "$n" || return 1
	T_NETNS+=("$n")
	ip -n "$n" link set lo up
	ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 net.ipv4.ip_nonlocal_bind=1 >/dev/null 2>&1
	return 0
}

# ns_exec NAME CMD...
ns_exec() {
	local n
	n=$(ns_name "$1")
	shift
	ip netns exec "$n" "$@"
}

# _ns_opt NAME: "-n sipha-t<pid>-NAME", or nothing for "-" (root namespace).
_ns_opt() {
	[ "$1" = - ] || echo "-n $(ns_name "$1")"
}

# veth_add NS1 IF1 NS2 IF2: a veth pair with IF1 in NS1 and IF2 in NS2 ("-":
# the root namespace), both up.
veth_add() {
	local ns1=$1 if1=$2 ns2=$3 if2=$4 a b
	a=$([ "$ns1" = - ] || echo "netns $(ns_name "$ns1")")
	b=$([ "$ns2" = - ] || echo "netns $(ns_name "$ns2")")
	# shellcheck disable=SC2086
	ip link add "$if1" $a type veth peer name "$if2" $b || return 1
	[ "$ns1" = - ] && T_LINKS+=("$if1")
	[ "$ns2" = - ] && T_LINKS+=("$if2")
	# shellcheck disable=SC2046
	ip $(_ns_opt "$ns1") link set "$if1" up &&
		ip $(_ns_opt "$ns2") link set "$if2" up
}

# bridge_add NS BR: a bridge in NS, up, no STP delay.
bridge_add() {
	# shellcheck disable=SC2046
	ip $(_ns_opt "$1") link add "$2" type bridge forward_delay 0 stp_state 0 || return 1
	[ "$1" = - ] && T_LINKS+=("$2")
	# shellcheck disable=SC2046
	ip $(_ns_opt "$1") link set "$2" up
}

# bridge_port NS BR IF
bridge_port() {
	# shellcheck disable=SC2046
	ip $(_ns_opt "$1") link set "$3" master "$2"
}

# addr_add NS IF CIDR
addr_add() {
	# shellcheck disable=SC2046
	ip $(_ns_opt "$1") addr add "$3" dev "$2"
}

# ns_lan NAME NS... : a bridge "br0" in a namespace of its own (NAME) and, for
# each NS (created unless it exists), a veth "eth0" in NS plugged into it (bridge side "<NS>-br", so keep
# NS short).  Addresses are the caller's: addr_add NS eth0 10.99.0.1/24.
ns_lan() {
	local hub=$1 ns
	shift
	ns_create "$hub" && bridge_add "$hub" br0 || return 1
	for ns in "$@"; do
		ns_exists "$ns" || ns_create "$ns" || return 1
		veth_add "$ns" eth0 "$hub" "$ns-br" && bridge_port "$hub" br0 "$ns-br" || return 1
	done
}

# ns_exists NAME
ns_exists() {
	ip netns list | awk '{print $1}' | grep -qx "$(ns_name "$1")"
}

# ns_del NAME: removes one namespace now (also done on exit).
ns_del() {
	local n i
	n=$(ns_name "$1")
	ip netns del "$n" 2>/dev/null
	for i in "${!T_NETNS[@]}"; do
		[ "${T_NETNS[$i]}" = "$n" ] && unset "T_NETNS[$i]"
	done
	return 0
}

# --- HA pair ------------------------------------------------------------------------------

# ha_conf FILE ID ROLE OWN_IP PEER_IP [REDUNDANCY] [HEARTBEAT_MS] [TIMEOUT_MS]
# A node of the usual test pair: SIP on $HA_SIP_LISTEN (0.0.0.0:5060), VIP
# $HA_VIP/$HA_VIP_LEN (10.99.0.100/24) on eth0, HA link on OWN_IP:7100 to
# PEER_IP:7100 (IPv6 addresses in brackets), authenticated with the key in
# $T_TMP/ha.key (made once, for both nodes), XDP native on eth0, control
# socket $T_TMP/ID.sock, state in $T_TMP/state-ID, DN 3000 routed to
# $HA_CALLEE.  [dn] is the last section: append more DNs with cat >>FILE.
HA_VIP=${HA_VIP:-10.99.0.100}
HA_VIP_LEN=${HA_VIP_LEN:-24}
HA_SIP_LISTEN=${HA_SIP_LISTEN:-0.0.0.0:5060}
HA_CALLEE=${HA_CALLEE:-10.99.0.10:5070}
ha_conf() {
	# One pre-shared key for the pair (the HA link authenticates).
	if [ ! -s "$T_TMP/ha.key" ]; then
		head -c 32 /dev/urandom >"$T_TMP/ha.key"
		chmod 600 "$T_TMP/ha.key"
	fi
	cat >"$1" <<EOC
[node]
id = $2
role = $3
redundancy = ${6:-hot}
priority = 100
state_dir = $T_TMP/state-$2
log_level = ${HA_LOG_LEVEL:-info}
[sip]
listen = $HA_SIP_LISTEN
domain = sipha.test
[vip]
address = $HA_VIP/$HA_VIP_LEN
interface = eth0
garp_count = 2
[ha]
listen = $4:7100
peer = $5:7100
heartbeat_ms = ${7:-50}
timeout_ms = ${8:-200}
key_file = $T_TMP/ha.key
[xdp]
interface = eth0
mode = native
[control]
socket = $T_TMP/$2.sock
[dn]
3000 = sip:$HA_CALLEE
EOC
}

# ha_lan: the usual LAN of an HA test: namespaces a and b (the nodes) and c
# (the client) on a bridge in namespace lan, each with its eth0 up and no
# address yet (addr_add).  The bridge ends of the nodes get a pass-all XDP
# program (XDP_TX on a veth needs one on the peer, docs/ARCHITECTURE.md §6) and c sends
# with real checksums (frames XDP steers keep them).
ha_lan() {
	local n
	ns_lan lan a b c || return 1
	for n in a b; do
		ns_exec lan ip link set "$n-br" xdp object "$T_BUILD/sipha_xdp.bpf.o" sec xdp ||
			return 1
	done
	ns_exec c ethtool -K eth0 tx off >/dev/null 2>&1 || true
}

# field_of NODE FIELD: one field of `siphactl status --json`; state_of NODE.
field_of() { ctl -n "$1" status --json 2>/dev/null | jq -r ".$2"; }
state_of() { field_of "$1" state; }
# field_is NODE FIELD VALUE: for wait_until, which re-runs its command.
field_is() { [ "$(field_of "$1" "$2")" = "$3" ]; }

# ha_start_pair LABEL: instance a (namespace a, $T_TMP/a.conf) alone until
# active, then b ($T_TMP/b.conf) until it is a standby in sync.  1 on
# failure, after a FAIL line.
ha_start_pair() {
	start_siphad -n a -N a "$T_TMP/a.conf" || return 1
	if ! wait_until 5 field_is a state active; then
		fail "$1: primary active alone" "state $(state_of a)"
		return 1
	fi
	start_siphad -n b -N b "$T_TMP/b.conf" || return 1
	if ! wait_until 5 field_is b peer_connected true || ! field_is b state standby; then
		fail "$1: backup joins as standby" "state $(state_of b), peer_connected $(field_of b peer_connected)"
		return 1
	fi
	if ! wait_until 5 field_is b in_sync true; then
		fail "$1: backup in sync" "in_sync $(field_of b in_sync)"
		return 1
	fi
	return 0
}

# kill9 NAME: kill -9 an instance and reap it.  Disowned first, so bash
# prints no "Killed" line.
kill9() {
	local pid
	pid=$(siphad_pid "$1")
	disown "$pid" 2>/dev/null
	kill -9 "$pid"
	wait_pid "$pid" 5
	unset "SD_PID[$1]"
}

# sipp_bg NAME ARGS...: sipp on 127.0.0.1 in the background (bounded twice:
# -timeout SIPP_TO seconds, default 60, and timeout(1)); its PID in
# SP_PID[NAME], statistics in NAME.stat.csv, errors in NAME.err, its output
# in NAME.out, all in $T_TMP (sipp_end reads them).
sipp_bg() {
	local name=$1
	shift
	(cd "$T_TMP" && exec timeout -k 5 $((${SIPP_TO:-60} + 15)) sipp "$@" -i 127.0.0.1 \
		-nostdin -timeout "${SIPP_TO:-60}s" -timeout_error -recv_timeout 15000 -trace_stat \
		-stf "$name.stat.csv" -trace_err -error_file "$name.err" </dev/null \
		>"$T_TMP/$name.out" 2>&1) &
	SP_PID[$name]=$!
	T_PIDS+=("$!")
}

# sipp_end NAME TIMEOUT_S: waits for a background sipp whose PID is in
# SP_PID[NAME] and whose -trace_stat file is $T_TMP/NAME.stat.csv (killed
# after TIMEOUT_S)
# and sets SIPP_RC, SIPP_OK, SIPP_FAILED, SIPP_RETRANS from its final
# statistics.
sipp_end() {
	local name=$1 to=$2 stat=$T_TMP/$1.stat.csv
	wait_pid "${SP_PID[$name]}" "$to"
	SIPP_RC=$?
	if [ "$SIPP_RC" -eq 124 ]; then
		kill -TERM "${SP_PID[$name]}" 2>/dev/null
		wait_pid "${SP_PID[$name]}" 10
	fi
	read -r SIPP_OK SIPP_FAILED SIPP_RETRANS < <(awk -F';' '
		NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		{ last = $0 }
		END {
			split(last, f, ";")
			print f[h["SuccessfulCall(C)"]] + 0, f[h["FailedCall(C)"]] + 0,
				f[h["Retransmissions(C)"]] + 0
		}' "$stat" 2>/dev/null || echo "0 0 0")
	info "sipp $name: exit $SIPP_RC, successful $SIPP_OK, failed $SIPP_FAILED," \
		"retransmissions $SIPP_RETRANS"
	if [ "$SIPP_RC" -ne 0 ] || [ "$SIPP_FAILED" -ne 0 ]; then
		[ -s "$T_TMP/$name.err" ] && info "sipp $name errors:" \
			"$(grep -v '^$' "$T_TMP/$name.err" | head -n 12 | tr '\n' '|' | cut -c1-1500)"
		[ -s "$T_TMP/$name.out" ] &&
			info "sipp $name output: $(tail -n 3 "$T_TMP/$name.out" | tr '\n' '|')"
	fi
	return 0
}

# stat_of CSV FIELD: the last value of one column of a sipp -trace_stat file.
stat_of() {
	awk -F';' -v f="$2" 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h[f]+0}' "$1"
}

# --- cleanup ---------------------------------------------------------------------------

cleanup() {
	local pid n l name
	[ "$T_CLEANED" -eq 1 ] && return
	T_CLEANED=1
	for pid in "${T_PIDS[@]}"; do
		# Only a process that is still our child: a PID reaped earlier may
		# belong to someone else by now.
		[ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$$" ] || continue
		kill -TERM "$pid" 2>/dev/null
		wait_pid "$pid" 3
		if [ $? -eq 124 ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	if [ "$T_FAILED" -gt 0 ]; then
		for name in "${!SD_LOG[@]}"; do
			[ -s "${SD_LOG[$name]}" ] || continue
			info "--- last lines of siphad $name's log"
			tail -n 20 "${SD_LOG[$name]}" | sed 's/^/# /'
		done
	fi
	for n in "${T_NETNS[@]}"; do
		ip netns del "$n" 2>/dev/null
	done
	for l in "${T_LINKS[@]}"; do
		ip link del "$l" 2>/dev/null
	done
	if [ -n "$T_TMP" ] && [ -d "$T_TMP" ]; then
		if [ "${T_KEEP:-0}" = 1 ]; then
			info "kept $T_TMP"
		else
			rm -rf "$T_TMP"
		fi
	fi
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T_TMP=$(mktemp -d "/tmp/sipha-t$$.XXXXXX") || {
	echo "FAIL $T_NAME: cannot create a temp dir"
	exit 1
}

# --- a node with [auth] and XDP, and a client namespace ------------------------------

# auth_xdp_node LABEL ID PASS1002 BAN_AFTER BAN_MS: namespaces srv and cli
# joined by a veth pair; cli has $ATT_IP (first: tools send from it) and
# $GOOD_IP on its eth0; siphad in srv on $SRV_IP:5060 with XDP native on its
# end, [auth] (md5: sipvicious knows nothing else) over users 1001
# (secret-1001) and 1002 (PASS1002), extensions 1001 and 1002.  Sets
# CLI_NS, CONF, and PIN_HELPER: a process in siphad's mount namespace, where
# its pins are (ip netns exec gives siphad a /sys of its own), for bpftool.
# Ends the test with a FAIL line if any of it cannot be done.
SRV_IP=10.99.0.1
ATT_IP=10.99.0.66
GOOD_IP=10.99.0.2
auth_xdp_node() {
	local label=$1 id=$2
	if ! { ns_create srv && ns_create cli && veth_add srv eth0 cli eth0 &&
		addr_add srv eth0 $SRV_IP/24 && addr_add cli eth0 $ATT_IP/24 &&
		addr_add cli eth0 $GOOD_IP/24; }; then
		fail "$label: build the namespaces" "ip failed"
		finish
	fi
	CLI_NS=$(ns_name cli)
	printf '1001:secret-1001\n1002:%s\n' "$3" >"$T_TMP/users"
	chmod 600 "$T_TMP/users"
	CONF=$T_TMP/$id.ini
	cat >"$CONF" <<EOC
[node]
id = $id
state_dir = $T_TMP/state
[sip]
listen = $SRV_IP:5060
domain = sipha.test
[control]
socket = $T_TMP/$id.sock
[xdp]
interface = eth0
mode = native
[auth]
realm = sipha.test
users = $T_TMP/users
algorithms = md5
ban_after = $4
ban_ms = $5
[dn]
1001 = extension
1002 = extension
EOC
	start_siphad -N srv "$CONF" || finish
	run_bg nsenter -t "$(siphad_pid)" -m sleep 600
	PIN_HELPER=$!
	# nsenter's PID is ours at once, in siphad's mount namespace only once
	# it has entered it: until then its /sys/fs/bpf is the root one.
	if ! wait_until 3 _pin_helper_in; then
		fail "$label: a helper in siphad's mount namespace" "never got there"
		finish
	fi
}
_pin_helper_in() {
	[ "$(readlink "/proc/$PIN_HELPER/ns/mnt")" = "$(readlink "/proc/$(siphad_pid)/ns/mnt")" ]
}
