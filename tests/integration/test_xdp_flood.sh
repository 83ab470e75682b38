#!/usr/bin/env bash
# XDP under a flood, end to end in namespaces: siphad in namespace "srv" with
# its XDP program attached in native mode to its veth end, sipp (UAC and UAS)
# and the flood senders in namespace "cli" on the other end.
#
# Part 1: 200 calls through siphad at 50/s while 200,000 datagrams hit port
# 5060 — garbage and plain text from the caller's own address (XDP must drop
# them as drop_non_sip) and well-formed OPTIONS from a second address put on
# the blocklist with `siphactl block add` (drop_blocklist).  Every call must
# succeed, every datagram must be accounted for in the XDP counters, nothing
# of the flood may reach siphad (sip_rx_unparsable does not move, and what
# siphad received equals what XDP passed), and on SIGTERM siphad must exit 0,
# detach the program and remove its pins.
# Part 2: per-source rate limits: invite_rate/register_rate 5/s, burst 10;
# a burst of initial INVITEs from one source is cut to about the bucket,
# in-dialog INVITEs from it are not limited, another source is unaffected.
#
# The pins live in siphad's mount namespace (`ip netns exec` gives it its own
# /sys, and siphad mounts bpffs there), so a helper process holds that mount
# namespace open and the test looks through /proc/HELPER/root.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ip nsenter ss
UDPFLOOD=${UDPFLOOD:-$T_BUILD/tests/tools/udpflood}
require_bin "$SIPHAD" "$SIPHACTL" "$UDPFLOOD"

CALLS=200
CALL_RATE=50
JUNK=150000 # garbage + text from the caller's address
BLOCKED=50000 # OPTIONS from the blocklisted address
SRV_IP=10.99.0.1
CLI_IP=10.99.0.2
BAD_IP=10.99.0.66 # blocklisted flood source
RL_A=10.99.0.70 # rate-limit sources
RL_B=10.99.0.71
RL_R=10.99.0.72
UAS_PORT=5070
UAC_PORT=5061

# --- the network ---------------------------------------------------------------------

if ! { ns_create srv && ns_create cli && veth_add srv eth0 cli eth0 &&
	addr_add srv eth0 $SRV_IP/24 && addr_add cli eth0 $CLI_IP/24 &&
	addr_add cli eth0 $BAD_IP/24 && addr_add cli eth0 $RL_A/24 &&
	addr_add cli eth0 $RL_B/24 && addr_add cli eth0 $RL_R/24; }; then
	fail "xdp flood: build the namespaces" "ip failed"
	finish
fi
SRV_NS=$(ns_name srv)
CLI_NS=$(ns_name cli)

# conf FILE ID [XDP LINES...]: siphad on SRV_IP:5060 with XDP native on eth0.
conf() {
	local f=$1 id=$2 l
	shift 2
	cat >"$f" <<EOF
[node]
id = $id
state_dir = $T_TMP/state-$id

[sip]
listen = $SRV_IP:5060
domain = sipha.test

[control]
socket = $T_TMP/$id.sock

[engine]
workers = 1

[xdp]
interface = eth0
mode = native
EOF
	for l in "$@"; do
		echo "$l" >>"$f"
	done
	cat >>"$f" <<EOF

[dn]
3000 = sip:$CLI_IP:$UAS_PORT
EOF
}

# xdp_snap FILE [NAME]: the XDP counters as one JSON object.
xdp_snap() {
	ctl -n "${2:-main}" xdp --json | jq -c .counters >"$1"
}

# xdelta A B COUNTER: growth of an XDP counter between two snapshots.
xdelta() {
	jq -n -r --slurpfile a "$1" --slurpfile b "$2" --arg k "$3" \
		'if ($a[0][$k] == null or $b[0][$k] == null) then "missing" else $b[0][$k] - $a[0][$k] end'
}

# mdelta A B METRIC: growth of a siphad metric between two snapshots.
mdelta() {
	local a b
	a=$(metric_from "$1" "$3") || { echo missing; return; }
	b=$(metric_from "$2" "$3") || { echo missing; return; }
	echo $((b - a))
}

# link_xdp: "NAME MODE" of the XDP program on srv's eth0, "" when none
# (mode 1 is the driver, i.e. native, mode).
link_xdp() {
	ip -n "$SRV_NS" -j link show dev eth0 | jq -r '.[0].xdp // empty | "\(.prog.name) \(.mode)"'
}

# flood NAME ARGS...: udpflood in cli, to SRV_IP:5060, in the background;
# its summary goes to $T_TMP/NAME.out.  Sets FLOOD_PID.
flood() {
	local name=$1
	shift
	run_bg ip netns exec "$CLI_NS" "$UDPFLOOD" -T 60 "$@" $SRV_IP:5060 \
		>"$T_TMP/$name.out" 2>"$T_TMP/$name.err"
	FLOOD_PID=$!
}

# flood_wait NAME PID: waits (bounded); sets FLOOD_RC.
flood_wait() {
	wait_pid "$2" 90
	FLOOD_RC=$?
	[ -s "$T_TMP/$1.err" ] && info "udpflood $1: $(head -n 3 "$T_TMP/$1.err" | tr '\n' '|')"
}

# fl NAME FIELD [KEY]: a number from a udpflood summary ("kind garbage", ...).
fl() {
	awk -v f="$2" -v k="${3:-}" '$1 == f && (k == "" ? NF == 2 : $2 == k) { print $NF; x = 1 }
		END { if (!x) print "missing" }' "$T_TMP/$1.out"
}

# pins_dir ID: the pin directory as seen through the helper's mount namespace.
pins_dir() {
	echo "/proc/$PIN_HELPER/root/sys/fs/bpf/sipha/$1"
}

# hold_mounts NAME: a helper in siphad NAME's mount namespace, so its bpffs
# (and the pins in it) can be inspected, also after siphad exits.
hold_mounts() {
	run_bg nsenter -t "$(siphad_pid "$1")" -m sleep 300
	PIN_HELPER=$!
}

release_mounts() {
	kill -TERM "$PIN_HELPER" 2>/dev/null
	wait_pid "$PIN_HELPER" 5
}

# stop_and_check NAME ID: SIGTERM, exit 0 (stop_siphad), then the program is
# off the link and the pins are gone.
stop_and_check() {
	local name=$1 id=$2
	stop_siphad "$name"
	check_eq "xdp flood: $name: XDP detached from eth0 after exit" "$(link_xdp)" ""
	if [ -e "$(pins_dir "$id")" ]; then
		fail "xdp flood: $name: pins removed after exit" \
			"$(ls "$(pins_dir "$id")" 2>&1 | tr '\n' ' ')"
	else
		pass "xdp flood: $name: pins removed after exit"
	fi
	release_mounts
}

# ====================================================================================
# Part 1: calls through a flood
# ====================================================================================

ID=xf$$
CONF=$T_TMP/flood.ini
conf "$CONF" "$ID"
start_siphad -N srv "$CONF" || finish
hold_mounts main

check_eq "xdp flood: program attached natively to eth0" "$(link_xdp)" "sipha_xdp 1"
check_eq "xdp flood: siphactl xdp: attached, native" \
	"$(ctl xdp --json | jq -r '"\(.attached) \(.mode)"')" "true native"
missing=
for p in sxdp_counters sxdp_config sxdp_role sxdp_block4 sxdp_block6 sxdp_rate; do
	[ -e "$(pins_dir $ID)/$p" ] || missing+="$p "
done
check_eq "xdp flood: maps pinned under /sys/fs/bpf/sipha/$ID" "$missing" ""

check_eq "xdp flood: block add $BAD_IP/32" "$(ctl block add $BAD_IP/32 --json | jq -r .ok)" true

# The UAS: the static route of DN 3000.
run_bg ip netns exec "$CLI_NS" sipp -sn uas -i $CLI_IP -p $UAS_PORT -nostdin \
	>"$T_TMP/uas.out" 2>&1
UAS_PID=$!
uas_up() {
	ip netns exec "$CLI_NS" ss -Hlun "sport = :$UAS_PORT" | grep -q .
}
if ! wait_until 10 uas_up; then
	fail "xdp flood: sipp UAS listening" "not bound after 10 s"
	finish
fi

xdp_snap "$T_TMP/x0"
metrics_snapshot "$T_TMP/m0"

# The calls and the flood at once: calls over ~4 s, the flood over ~3.5 s.
run_bg ip netns exec "$CLI_NS" timeout -k 5 120 sipp $SRV_IP:5060 -sn uac -s 3000 \
	-i $CLI_IP -p $UAC_PORT -m $CALLS -r $CALL_RATE -l $CALLS -d 0 -nostdin \
	-timeout 100s -timeout_error -trace_stat -stf "$T_TMP/uac.stat.csv" \
	-trace_err -error_file "$T_TMP/uac.err" >"$T_TMP/uac.out" 2>&1
UAC_PID=$!
flood junk -n $JUNK -r 40000 -k garbage,text -l 300 -s $CLI_IP
JUNK_PID=$FLOOD_PID
flood blocked -n $BLOCKED -r 14000 -k options -s $BAD_IP
BLOCKED_PID=$FLOOD_PID

flood_wait junk "$JUNK_PID"
JUNK_RC=$FLOOD_RC
flood_wait blocked "$BLOCKED_PID"
BLOCKED_RC=$FLOOD_RC
wait_pid "$UAC_PID" 130
UAC_RC=$?
info "junk: $(tr '\n' ' ' <"$T_TMP/junk.out")"
info "blocked: $(tr '\n' ' ' <"$T_TMP/blocked.out")"

read -r UAC_OK UAC_FAILED UAC_RETRANS < <(awk -F';' '
	NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
	{ last = $0 }
	END {
		split(last, f, ";")
		print f[h["SuccessfulCall(C)"]] + 0, f[h["FailedCall(C)"]] + 0,
			f[h["Retransmissions(C)"]] + 0
	}' "$T_TMP/uac.stat.csv" 2>/dev/null || echo "0 0 0")
info "sipp uac: exit $UAC_RC, successful $UAC_OK, failed $UAC_FAILED, retransmissions $UAC_RETRANS"
[ "$UAC_RC" -ne 0 ] && [ -s "$T_TMP/uac.err" ] &&
	info "sipp uac errors: $(grep -v '^$' "$T_TMP/uac.err" | head -n 6 | tr '\n' '|')"

check_eq "xdp flood: junk sender ran to the end" "$JUNK_RC" 0
check_eq "xdp flood: blocklisted sender ran to the end" "$BLOCKED_RC" 0
check_eq "xdp flood: $JUNK junk datagrams sent" "$(fl junk sent)" $JUNK
check_eq "xdp flood: $BLOCKED blocklisted datagrams sent" "$(fl blocked sent)" $BLOCKED
check_eq "xdp flood: sipp exit status" "$UAC_RC" 0
check_eq "xdp flood: $CALLS calls successful" "$UAC_OK" $CALLS
check_eq "xdp flood: no failed call" "$UAC_FAILED" 0

# Retransmissions of the UAS's 200 and sipp's own may add a few messages;
# the counters settle once the last transaction is answered.
sleep 1
xdp_snap "$T_TMP/x1"
metrics_snapshot "$T_TMP/m1"
d() { xdelta "$T_TMP/x0" "$T_TMP/x1" "$1"; }
info "xdp deltas: $(jq -n -c --slurpfile a "$T_TMP/x0" --slurpfile b "$T_TMP/x1" \
	'$b[0] | with_entries(.value -= $a[0][.key]) | with_entries(select(.value != 0))')"

# The flood, datagram for datagram.
check_eq "xdp flood: non_sip = junk sent" "$(d non_sip)" $JUNK
check_eq "xdp flood: drop_non_sip = junk sent" "$(d drop_non_sip)" $JUNK
check_eq "xdp flood: drop_blocklist = blocklisted sent" "$(d drop_blocklist)" $BLOCKED
check_eq "xdp flood: blocklisted OPTIONS not classified (blocklist first)" "$(d options)" 0
check_eq "xdp flood: no rate-limit drop without limits" "$(d drop_ratelimit)" 0
check_eq "xdp flood: nothing steered" "$(d steered)" 0
check_eq "xdp flood: no unknown method, no keep-alive" "$(d unknown_method) $(d keepalive)" "0 0"

# The calls: each INVITE, ACK and BYE of the UAC, and the UAS's 180, 200 and
# BYE 200 (sipp's retransmissions are the only slack).
in_range() { # VALUE LO HI
	[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}
for m in invite ack bye; do
	v=$(d $m)
	check "xdp flood: $m = $CALLS (+ sipp's $UAC_RETRANS retransmissions at most): $v" \
		in_range "$v" $CALLS $((CALLS + UAC_RETRANS))
done
v=$(d response)
check "xdp flood: response >= 3 per call from the UAS: $v" in_range "$v" $((3 * CALLS)) $((10 * CALLS))

# What XDP passed is exactly what siphad received.
m() { mdelta "$T_TMP/m0" "$T_TMP/m1" "$1"; }
passed_sip=$(jq -n -r --slurpfile a "$T_TMP/x0" --slurpfile b "$T_TMP/x1" '
	["invite","ack","bye","cancel","register","options","subscribe","notify","refer",
	 "info","update","prack","message","publish","response","unknown_method"]
	| map($b[0][.] - $a[0][.]) | add')
check_eq "xdp flood: siphad received what XDP passed (sip_rx_messages)" "$(m sip_rx_messages)" \
	"$passed_sip"
check_eq "xdp flood: transport_udp_in = what XDP passed" "$(m transport_udp_in)" "$passed_sip"
check_eq "xdp flood: sip_rx_unparsable did not grow" "$(m sip_rx_unparsable)" 0
check_eq "xdp flood: calls answered" "$(m calls_answered)" $CALLS
check "xdp flood: siphad alive after the flood" siphad_alive

# block del: the same source is served again.
check_eq "xdp flood: block del $BAD_IP/32" "$(ctl block del $BAD_IP/32 --json | jq -r .ok)" true
xdp_snap "$T_TMP/x2"
opt0=$(metric options_answered)
flood unblocked -n 10 -r 1000 -k options -s $BAD_IP
flood_wait unblocked "$FLOOD_PID"
ten_answered() { [ $(($(metric options_answered) - opt0)) -eq 10 ]; }
check "xdp flood: after block del, 10 OPTIONS from $BAD_IP answered" wait_until 5 ten_answered
xdp_snap "$T_TMP/x3"
check_eq "xdp flood: after block del, counted as options, not dropped" \
	"$(xdelta "$T_TMP/x2" "$T_TMP/x3" options) $(xdelta "$T_TMP/x2" "$T_TMP/x3" drop_blocklist)" \
	"10 0"

kill -TERM "$UAS_PID" 2>/dev/null
wait_pid "$UAS_PID" 5 >/dev/null || { kill -KILL "$UAS_PID" 2>/dev/null; wait "$UAS_PID" 2>/dev/null; }

stop_and_check main "$ID"

# ====================================================================================
# Part 2: per-source rate limits
# ====================================================================================

RID=xr$$
RCONF=$T_TMP/rate.ini
conf "$RCONF" "$RID" "invite_rate = 5" "register_rate = 5" "burst = 10"
start_siphad -n rl -N srv "$RCONF" || finish
hold_mounts rl
check_eq "xdp rate: program attached again after a clean exit" "$(link_xdp)" "sipha_xdp 1"

rs() { xdp_snap "$T_TMP/r$1" rl; }
rd() { xdelta "$T_TMP/r$1" "$T_TMP/r$2" "$3"; }

# 200 initial INVITEs from A as fast as they go: the bucket (10) and what
# 5/s refills in the time they take pass, the rest is dropped.
N=200
rs 0
metrics_snapshot "$T_TMP/rm0" rl
flood rlA -n $N -k invite -s $RL_A
flood_wait rlA "$FLOOD_PID"
rs 1
A_END=$(date +%s%N)
check_eq "xdp rate: $N INVITEs sent from $RL_A" "$(fl rlA sent)" $N
secs=$(fl rlA elapsed_s)
allowed=$(awk -v s="$secs" 'BEGIN { printf "%d", 10 + int(s * 5) + 1 }')
dropped=$(rd 0 1 drop_ratelimit)
info "rate: $N INVITEs in $secs s: drop_ratelimit $dropped (at most $allowed may pass)"
check_eq "xdp rate: every INVITE counted" "$(rd 0 1 invite)" $N
check "xdp rate: at least $((N - allowed)) of $N INVITEs dropped: $dropped" \
	in_range "$dropped" $((N - allowed)) $((N - 10))
passed=$((N - dropped))
reached() { [ $(($(metric sip_rx_requests rl) - $(metric_from "$T_TMP/rm0" sip_rx_requests))) -ge "$passed" ]; }
wait_until 3 reached
metrics_snapshot "$T_TMP/rm1" rl
check_eq "xdp rate: siphad received exactly the INVITEs that passed" \
	"$(mdelta "$T_TMP/rm0" "$T_TMP/rm1" sip_rx_requests)" "$passed"

# In-dialog INVITEs (To-tag) from A, whose bucket is empty: not limited.
flood rlA2 -n 20 -k reinvite -s $RL_A
flood_wait rlA2 "$FLOOD_PID"
rs 2
check_eq "xdp rate: 20 in-dialog INVITEs from $RL_A pass" \
	"$(rd 1 2 invite) $(rd 1 2 drop_ratelimit)" "20 0"

# A is still limited: of 10 more initial INVITEs only what 5/s refilled
# since its burst ended may pass (plus one for rounding).
flood rlA3 -n 10 -k invite -s $RL_A
flood_wait rlA3 "$FLOOD_PID"
rs 3
gap_ms=$((($(date +%s%N) - A_END) / 1000000))
refill=$((gap_ms * 5 / 1000 + 1))
dropped=$(rd 2 3 drop_ratelimit)
info "rate: $gap_ms ms after the burst, 10 more INVITEs from $RL_A: drop_ratelimit $dropped"
check "xdp rate: $RL_A still limited: at least $((10 - refill)) of 10 more INVITEs dropped: $dropped" \
	in_range "$dropped" $((10 - refill)) 10

# Another source is unaffected: its burst of 10 passes whole.
flood rlB -n 10 -k invite -s $RL_B
flood_wait rlB "$FLOOD_PID"
rs 4
check_eq "xdp rate: $RL_B unaffected: 10 INVITEs, none dropped" \
	"$(rd 3 4 invite) $(rd 3 4 drop_ratelimit)" "10 0"

# REGISTERs have their own limit.
flood rlR -n 100 -k register -s $RL_R
flood_wait rlR "$FLOOD_PID"
rs 5
secs=$(fl rlR elapsed_s)
allowed=$(awk -v s="$secs" 'BEGIN { printf "%d", 10 + int(s * 5) + 1 }')
dropped=$(rd 4 5 drop_ratelimit)
info "rate: 100 REGISTERs in $secs s: drop_ratelimit $dropped"
check_eq "xdp rate: every REGISTER counted" "$(rd 4 5 register)" 100
check "xdp rate: at least $((100 - allowed)) of 100 REGISTERs dropped: $dropped" \
	in_range "$dropped" $((100 - allowed)) 90

check "xdp rate: siphad alive" siphad_alive rl
stop_and_check rl "$RID"

finish
