#!/usr/bin/env bash
# One garbage flood dropped several ways, side by side, with legitimate calls
# running through siphad during each flood:
#
#   xdp-native   sipha's XDP program, native mode on the server's veth
#                (counted as drop_non_sip)
#   xdp-generic  the same program in generic (skb) mode
#   nft-ingress  nftables, netdev family, ingress hook of the same veth
#   nft-input    nftables, inet family, input hook (after routing: the usual
#                host firewall)
#   siphad       no filter: siphad receives the datagrams and drops them as
#                unparsable (sip_rx_unparsable); what its socket cannot take
#                the kernel drops (UDP RcvbufErrors)
#   no-flood     the calls alone, for comparison
#
#   bench/xdp_drop.sh [COUNT] [ROUNDS] [CALLS] [CALL_RATE]   (default 2000000 3 200 50)
#
# The flood: COUNT datagrams of 200 random bytes whose first byte is 0xff
# (udpflood -k garbage), to port 5060, as fast as one sender goes.  Both nft
# rules drop exactly those: `udp dport 5060 @th,64,8 0xff counter drop` (the
# first payload byte); sipha's XDP program classifies every datagram (method,
# response, keep-alive, unknown-method shape) and drops what is none of them.
# Every way runs ROUNDS times, interleaved; the table shows medians (and the
# range of the server CPU), the calls of all rounds pooled.
#
# Topology (namespaces sipha-t<pid>-srv and -cli, one veth pair, 10.99.0.0/24):
# the server end has GRO on and threaded NAPI and the client end TSO off, so
# every datagram's receive work — the XDP program included — runs in one
# kernel thread ("napi/eth0-N") whose CPU time /proc shows.  Server side
# (that thread and siphad) is pinned to CPU 1, client side (udpflood, sipp
# UAC and UAS) to CPU 0.  The client veth has a pfifo qdisc deeper than the
# sender's socket buffer, so the sender is held back (veth backpressure,
# Linux >= 6.15) instead of losing datagrams in the veth ring; datagrams lost
# anyway are counted (qdisc and veth drop counters).
#
# Per way: the sender's rate; datagrams dropped by the filter per second of
# the sender's run; server CPU-seconds (NAPI thread + siphad, utime + stime
# from /proc) per million datagrams and datagrams dropped per server
# CPU-second; the sender's own CPU per million; how busy each CPU was (this
# includes anything else running on the machine); and the legitimate calls
# (sipp UAC -> siphad -> sipp UAS with bench/scenarios/uac_rtd.xml):
# successful / failed / retransmissions and INVITE->200 response times.
#
# Bounded in count and time; removes its namespaces and processes on exit.
. "$(dirname "$0")/../tests/integration/lib.sh"

COUNT=${1:-2000000}
ROUNDS=${2:-3}
CALLS=${3:-200}
CALL_RATE=${4:-50}
UDPFLOOD=${UDPFLOOD:-$T_BUILD/tests/tools/udpflood}
SCEN=$T_ROOT/bench/scenarios/uac_rtd.xml
SRV_IP=10.99.0.1
CLI_IP=10.99.0.2
UAS_PORT=5070
HZ=$(getconf CLK_TCK)
FLOODS=(xdp-native xdp-generic nft-ingress nft-input siphad)
RES=$T_TMP/results # one line per flood run
CRES=$T_TMP/calls # one line per sipp run

die() {
	echo "xdp_drop: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server and client are pinned apart)"
for c in sipp nft jq taskset ethtool tc; do
	command -v $c >/dev/null || die "$c not installed"
done
for b in "$SIPHAD" "$SIPHACTL" "$UDPFLOOD"; do
	[ -x "$b" ] || die "$b missing: make first"
done
[ -f "$SCEN" ] || die "$SCEN missing"
[[ $COUNT =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ && $CALLS =~ ^[0-9]+$ && $CALL_RATE =~ ^[0-9]+$ ]] ||
	die "usage: bench/xdp_drop.sh [COUNT] [ROUNDS] [CALLS] [CALL_RATE]"
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || die "ROUNDS: 1..20"

# --- the network -----------------------------------------------------------------------

ns_create srv && ns_create cli && veth_add srv eth0 cli eth0 &&
	addr_add srv eth0 $SRV_IP/24 && addr_add cli eth0 $CLI_IP/24 ||
	die "cannot build the namespaces"
SRV_NS=$(ns_name srv)
CLI_NS=$(ns_name cli)
# A qdisc deeper than the sender's socket buffer: the sender blocks instead
# of losing datagrams in the veth ring.
ip netns exec "$CLI_NS" tc qdisc replace dev eth0 root pfifo limit 10000 || die "tc"
# veth hands a datagram to the peer's NAPI only when GRO is on at the
# receiver and the sender has no TSO; otherwise, without XDP, the receive
# work would run inside the sender's system call, on the sender's CPU.
ip netns exec "$CLI_NS" ethtool -K eth0 tso off >/dev/null || die "ethtool -K tso off"
napi_before=$(ps -eo pid=,comm= | awk '$2 ~ /^napi\// { print $1 }' | sort)
ip netns exec "$SRV_NS" ethtool -K eth0 gro on >/dev/null || die "ethtool -K gro on"
ip netns exec "$SRV_NS" sh -c 'echo 1 >/sys/class/net/eth0/threaded' || die "threaded NAPI"

# napi_pin: the NAPI threads of the server veth (those that were not there
# before we made it; attaching or detaching XDP may replace them), pinned to
# CPU 1; their PIDs in NAPI_PIDS.
napi_pin() {
	local p
	NAPI_PIDS=()
	for _ in $(seq 50); do
		mapfile -t NAPI_PIDS < <(comm -13 <(echo "$napi_before") \
			<(ps -eo pid=,comm= | awk '$2 ~ /^napi\/eth0-/ { print $1 }' | sort))
		[ ${#NAPI_PIDS[@]} -gt 0 ] && break
		sleep 0.1
	done
	[ ${#NAPI_PIDS[@]} -gt 0 ] || die "no NAPI thread for the server veth"
	for p in "${NAPI_PIDS[@]}"; do
		taskset -p -c 1 "$p" >/dev/null || die "cannot pin NAPI thread $p"
	done
}

# ticks PID...: utime + stime of processes (all their threads), in clock ticks.
ticks() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || v=0
		t=$((t + v))
	done
	echo $t
}

# cpu_busy CPU: non-idle ticks of one CPU from /proc/stat.
cpu_busy() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# link_drops: datagrams lost between the sender and the server's filters:
# the client qdisc's drops and both veth ends' drop counters.
link_drops() {
	local q r t
	q=$(ip netns exec "$CLI_NS" tc -s qdisc show dev eth0 | awk '{
		for (i = 1; i < NF; i++) if ($i == "(dropped") { v = $(i + 1); sub(",", "", v); n += v } }
		END { print n + 0 }')
	r=$(ip -n "$SRV_NS" -j -s link show dev eth0 | jq '.[0].stats64.rx.dropped')
	t=$(ip -n "$CLI_NS" -j -s link show dev eth0 | jq '.[0].stats64.tx.dropped')
	echo $((q + r + t))
}

udp_rcvbuf_errors() {
	ip netns exec "$SRV_NS" awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 }
		else print $c["RcvbufErrors"] }' /proc/net/snmp
}

conf() { # FILE MODE
	cat >"$1" <<EOF
[node]
id = xb$$
state_dir = $T_TMP/state
log_level = warn

[sip]
listen = $SRV_IP:5060
domain = sipha.test

[control]
socket = $T_TMP/bench.sock

[engine]
workers = 1
EOF
	case $2 in
	xdp-native) printf '\n[xdp]\ninterface = eth0\nmode = native\n' >>"$1" ;;
	xdp-generic) printf '\n[xdp]\ninterface = eth0\nmode = generic\n' >>"$1" ;;
	esac
	printf '\n[dn]\n3000 = sip:%s:%s\n' $CLI_IP $UAS_PORT >>"$1"
}

nft_setup() { # MODE
	case $1 in
	nft-ingress)
		ip netns exec "$SRV_NS" nft -f - <<'EOF'
table netdev sipha_bench {
	chain ingress {
		type filter hook ingress device "eth0" priority -500;
		udp dport 5060 @th,64,8 0xff counter drop
	}
}
EOF
		;;
	nft-input)
		ip netns exec "$SRV_NS" nft -f - <<'EOF'
table inet sipha_bench {
	chain input {
		type filter hook input priority filter;
		udp dport 5060 @th,64,8 0xff counter drop
	}
}
EOF
		;;
	esac
}

nft_count() {
	ip netns exec "$SRV_NS" nft -j list ruleset |
		jq '[.nftables[] | .rule? // empty | .expr[] | .counter? // empty | .packets] | add // 0'
}

# dropped MODE: what the filter of MODE has dropped so far.
dropped() {
	case $1 in
	xdp-*) ctl -n "$1" xdp --json | jq .counters.drop_non_sip ;;
	nft-*) nft_count ;;
	siphad) metric sip_rx_unparsable "$1" ;;
	*) echo 0 ;;
	esac
}

# The UAS answers every call on the static route of DN 3000.
run_bg ip netns exec "$CLI_NS" taskset -c 0 sipp -sn uas -i $CLI_IP -p $UAS_PORT -nostdin \
	>"$T_TMP/uas.out" 2>&1
UAS_PID=$!

# run_mode MODE ROUND: one siphad, one sipp UAC run, and (but for no-flood)
# one flood; appends to RES and CRES.
run_mode() {
	local mode=$1 round=$2 dir=$T_TMP/$1.$2 spid uac fpid rc d0 d1 r0 r1 l0 l1 n0 n1 s0 s1
	local a0 a1 b0 b1 ok fail re
	mkdir -p "$dir"
	conf "$dir/siphad.ini" "$mode"
	start_siphad -n "$mode" -N srv "$dir/siphad.ini" >&2 || die "siphad ($mode) did not start"
	spid=$(siphad_pid "$mode")
	taskset -a -p -c 1 "$spid" >/dev/null
	nft_setup "$mode" || die "nft ($mode)"
	napi_pin

	d0=$(dropped "$mode")
	r0=$(udp_rcvbuf_errors)
	l0=$(link_drops)
	n0=$(ticks "${NAPI_PIDS[@]}")
	s0=$(ticks "$spid")
	a0=$(cpu_busy 0)
	b0=$(cpu_busy 1)

	(cd "$dir" && exec ip netns exec "$CLI_NS" taskset -c 0 timeout -k 5 120 sipp \
		$SRV_IP:5060 -sf "$SCEN" -s 3000 -i $CLI_IP -p 5061 -m "$CALLS" -r "$CALL_RATE" \
		-l "$CALLS" -d 0 -nostdin -timeout 100s -timeout_error -trace_stat -stf stat.csv \
		-trace_rtt -rtt_freq 1 >"$dir/uac.out" 2>&1) &
	uac=$!
	T_PIDS+=("$uac")

	if [ "$mode" != no-flood ]; then
		# The sender's CPU: its wrapper's cutime + cstime once it is reaped.
		run_bg ip netns exec "$CLI_NS" taskset -c 0 bash -c \
			'"$@" >"$0"; rc=$?; read -r -a s </proc/$$/stat
			echo "cpu_ticks $((s[15] + s[16]))" >>"$0"; exit $rc' \
			"$dir/flood.out" "$UDPFLOOD" -n "$COUNT" -k garbage -l 200 -T 120 $SRV_IP:5060
		fpid=$!
		wait_pid "$fpid" 150
		rc=$?
		[ "$rc" -eq 0 ] || echo "xdp_drop: udpflood ($mode) exit $rc" >&2
		n1=$(ticks "${NAPI_PIDS[@]}")
		s1=$(ticks "$spid")
		a1=$(cpu_busy 0)
		b1=$(cpu_busy 1)
		sleep 0.5 # what is queued drains
		d1=$(dropped "$mode")
		r1=$(udp_rcvbuf_errors)
		l1=$(link_drops)
		echo "# $mode round $round: $(tr '\n' ' ' <"$dir/flood.out")" >&2
		# mode round sent secs dropped sockdrops lost napi siphad sender cpu0 cpu1
		echo "$mode $round $(awk '$1 == "sent" { print $2 }' "$dir/flood.out")" \
			"$(awk '$1 == "elapsed_s" { print $2 }' "$dir/flood.out")" \
			$((d1 - d0)) $((r1 - r0)) $((l1 - l0)) $((n1 - n0)) $((s1 - s0)) \
			"$(awk '$1 == "cpu_ticks" { print $2 }' "$dir/flood.out")" \
			$((a1 - a0)) $((b1 - b0)) >>"$RES"
	fi
	wait_pid "$uac" 150 || echo "xdp_drop: sipp ($mode round $round) did not finish cleanly" >&2
	read -r ok fail re < <(awk -F';' '
		NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		{ last = $0 }
		END { split(last, f, ";")
			print f[h["SuccessfulCall(C)"]] + 0, f[h["FailedCall(C)"]] + 0,
				f[h["Retransmissions(C)"]] + 0 }' "$dir/stat.csv" 2>/dev/null || echo "0 0 0")
	echo "$mode $round $ok $fail $re" >>"$CRES"
	# rtt rows: Date_ms;response_time_ms;rtd_no — rtd 1 is INVITE->200
	cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$3 == 1 && $2 ~ /^[0-9.]+$/ { print $2 }' \
		>>"$T_TMP/rtt.$mode"
	ip netns exec "$SRV_NS" nft flush ruleset
	stop_siphad "$mode" >&2
}

for ((r = 1; r <= ROUNDS; r++)); do
	for m in no-flood "${FLOODS[@]}"; do
		run_mode "$m" "$r"
	done
done
kill -TERM "$UAS_PID" 2>/dev/null
wait_pid "$UAS_PID" 5 || kill -KILL "$UAS_PID" 2>/dev/null

# median MODE COLUMN-EXPRESSION: the median over rounds of an awk expression
# of a RES line ($3 sent, $4 secs, $5 dropped, $6 socket drops, $7 lost,
# $8 NAPI ticks, $9 siphad ticks, $10 sender ticks, $11/$12 CPU 0/1 ticks).
median() {
	awk -v m="$1" -v hz="$HZ" "\$1 == m { print ($2) }" "$RES" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

range() { # MODE EXPRESSION: min-max over rounds
	awk -v m="$1" -v hz="$HZ" "\$1 == m { print ($2) }" "$RES" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.2f–%.2f", v[1], v[NR] }'
}

f0() { printf '%.0f' "$1"; }
f2() { printf '%.2f' "$1"; }

echo "machine: $(nproc) vCPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
	"Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"); siphad built -O2 -g;" \
	"load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/xdp_drop.sh $COUNT $ROUNDS $CALLS $CALL_RATE ($(date +%F))"
echo
echo "Flood of $COUNT garbage datagrams (200 bytes, first byte 0xff) to port 5060, one sender;" \
	"median of $ROUNDS rounds (server CPU: median and range):"
echo
echo "| dropped by | sender pps | dropped by the filter | dropped/s | socket drops | lost before the filter | NAPI thread CPU-s / 1M | siphad CPU-s / 1M | server CPU-s / 1M (range) | dropped per server CPU-s | sender CPU-s / 1M | CPU 0 / CPU 1 busy |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for m in "${FLOODS[@]}"; do
	srv='($8 + $9) / hz / ($3 / 1e6)'
	echo "| $m | $(f0 "$(median "$m" '$3 / $4')") | $(f0 "$(median "$m" '$5')")" \
		"| $(f0 "$(median "$m" '$5 / $4')") | $(f0 "$(median "$m" '$6')") | $(f0 "$(median "$m" '$7')")" \
		"| $(f2 "$(median "$m" '$8 / hz / ($3 / 1e6)')") | $(f2 "$(median "$m" '$9 / hz / ($3 / 1e6)')")" \
		"| $(f2 "$(median "$m" "$srv")") ($(range "$m" "$srv"))" \
		"| $(f0 "$(median "$m" '($8 + $9) > 0 ? $5 / (($8 + $9) / hz) : 0')")" \
		"| $(f2 "$(median "$m" '$10 / hz / ($3 / 1e6)')")" \
		"| $(f0 "$(median "$m" '100 * $11 / hz / $4')")% / $(f0 "$(median "$m" '100 * $12 / hz / $4')")% |"
done
echo
echo "Legitimate calls during each flood ($ROUNDS x $CALLS calls at $CALL_RATE/s," \
	"sipp UAC -> siphad -> sipp UAS; INVITE->200 in whole ms, all rounds pooled):"
echo
echo "| flood dropped by | successful | failed | retransmissions | p50 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|"
for m in no-flood "${FLOODS[@]}"; do
	read -r ok fail re < <(awk -v m="$m" '$1 == m { o += $3; f += $4; r += $5 } END { print o + 0, f + 0, r + 0 }' "$CRES")
	read -r p50 p99 pmax < <(sort -g "$T_TMP/rtt.$m" 2>/dev/null | awk '{ v[NR] = $1 }
		END { if (NR == 0) { print "- - -"; exit }
			i = int(NR * 0.5 + 0.999); j = int(NR * 0.99 + 0.999)
			print v[i < 1 ? 1 : i], v[j < 1 ? 1 : j], v[NR] }')
	echo "| $m | $ok / $((ROUNDS * CALLS)) | $fail | $re | $p50 | $p99 | $pmax |"
done
exit 0
