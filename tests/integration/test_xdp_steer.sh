#!/usr/bin/env bash
# XDP steering of a client with a stale ARP entry, end to end in namespaces:
# a hot-standby pair a/b (XDP native on their eth0) and a client c on one
# bridge; c's neighbour entry for the VIP is pinned to node a's MAC, as a
# phone that never learns the gratuitous ARP would have it.
#
# 1. Manual switchover (siphactl switchover on a) while c keeps sending
#    OPTIONS to a's MAC: optprobe (one request every 10 ms, no retransmission)
#    must get an answer to every request, sipp (OPTIONS with retransmissions)
#    must complete every transaction; a's XDP "steered" counter shows that
#    what reached a after it stepped down went on to b.
# 2. kill -9 of the active daemon on a: its program stays attached and its
#    kernel keeps the VIP.  The dead man's switch must steer c's requests to
#    b once b has taken over, and drop ARP requests for the VIP (b's takeover
#    probe, an arping from c): only b's MAC answers for the VIP.  a's counters
#    are read by map id with bpftool (its pins died with its mount namespace).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ip bpftool arping ethtool clang
OPTPROBE=${OPTPROBE:-$T_BUILD/tests/tools/optprobe}
require_bin "$SIPHAD" "$SIPHACTL" "$OPTPROBE"

VIP=10.99.0.100
C_IP=10.99.0.10
PROBE_MS=10 # optprobe interval
SIPP_RATE=100 # sipp OPTIONS per second
SIPP_N=400 # sipp OPTIONS per run (4 s)

# --- the network ---------------------------------------------------------------------

if ! { ns_lan lan a b c && addr_add a eth0 10.99.0.1/24 && addr_add b eth0 10.99.0.2/24 &&
	addr_add c eth0 $C_IP/24; }; then
	fail "xdp steer: build the namespaces" "ip failed"
	finish
fi
# XDP_TX on a veth delivers only when the peer end has a program too, and a
# frame XDP rewrites keeps the checksum the sender left to offload (docs/ARCHITECTURE.md §6).
# A plain XDP_PASS program is enough there; built here so that the test does
# not depend on what iproute2's loader makes of the real one.
cat >"$T_TMP/xdp_pass.c" <<'EOC'
__attribute__((section("xdp"), used)) int xdp_pass(void *ctx)
{
	return 2; /* XDP_PASS */
}
char _license[] __attribute__((section("license"), used)) = "GPL";
EOC
if ! clang -O2 -g -target bpf -c "$T_TMP/xdp_pass.c" -o "$T_TMP/xdp_pass.o" 2>"$T_TMP/clang.err"; then
	fail "xdp steer: build an XDP_PASS program" "$(head -n 3 "$T_TMP/clang.err" | tr '\n' '|')"
	finish
fi
for n in a b; do
	ns_exec lan ip link set "$n-br" xdp object "$T_TMP/xdp_pass.o" sec xdp 2>"$T_TMP/xdp-$n-br.err"
done
peer_xdp() { # the bridge side of a and b both carry a program
	local n
	for n in a b; do
		ns_exec lan ip -j link show dev "$n-br" | jq -e '.[0].xdp.prog.id' >/dev/null || return 1
	done
}
if ! peer_xdp; then
	fail "xdp steer: XDP program on the bridge side of a and b" \
		"$(cat "$T_TMP"/xdp-*-br.err | tr '\n' '|')"
	finish
fi
if ! ns_exec c ethtool -K eth0 tx off >/dev/null 2>&1; then
	fail "xdp steer: tx checksum offload off on c's eth0" "ethtool failed"
	finish
fi

mac_of() { # NS
	ns_exec "$1" ip -j link show dev eth0 | jq -r '.[0].address'
}
A_MAC=$(mac_of a)
B_MAC=$(mac_of b)
info "a's MAC $A_MAC, b's MAC $B_MAC"

mkconf() { ha_conf "$T_TMP/$1.conf" "$1" "$2" "$3" "$4"; } # NAME ROLE OWN PEER
mkconf a primary 10.99.0.1 10.99.0.2
mkconf b backup 10.99.0.2 10.99.0.1

# sipp: one OPTIONS per call, retransmitted from T1 = 500 ms on (UDP), 200 expected.
cat >"$T_TMP/options.xml" <<'EOX'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS through a failover">
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:steer@[local_ip]:[local_port]>;tag=[pid]steer[call_number]
      To: <sip:[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
EOX

# --- helpers -------------------------------------------------------------------------

field_of() { ctl -n "$1" status --json | jq -r ".$2"; }
field_is() { [ "$(field_of "$1" "$2")" = "$3" ]; }
vip_count() { ns_exec "$1" ip -br addr show eth0 | grep -c "$VIP/"; }

# xc NODE COUNTER: an XDP counter through the daemon.
xc() { ctl -n "$1" xdp --json | jq -r ".counters.$2 // \"missing\""; }
# mc NODE METRIC: a daemon metric, "missing" when absent.
mc() { metric "$2" "$1" || echo missing; }

# ctr_index NAME: the counter's index in the map, from the shared header
# (the only place its order is written).
ctr_index() {
	grep -oE '^[[:space:]]*X\([A-Z0-9_]+, [a-z0-9_]+\)' "$T_ROOT/bpf/sipha_kern_user.h" |
		awk -v n="$1" '{ s = $0; sub(/.*, /, "", s); sub(/\).*/, "", s)
			if (s == n) { print NR - 1; f = 1; exit } } END { exit !f }'
}

# map_of NS MAPNAME: the id of a map of the XDP program on NS's eth0, found
# from the root namespace by program id: it outlives the daemon.
map_of() {
	local prog m
	prog=$(ns_exec "$1" ip -j link show dev eth0 | jq -r '.[0].xdp.prog.id // empty')
	[ -n "$prog" ] || return 1
	for m in $(bpftool -j prog show id "$prog" | jq -r '.map_ids[]?'); do
		if [ "$(bpftool -j map show id "$m" | jq -r .name)" = "$2" ]; then
			echo "$m"
			return 0
		fi
	done
	return 1
}

# mapc MAPID COUNTER: a per-CPU counter summed over the CPUs, read by map id.
mapc() {
	local idx
	idx=$(ctr_index "$2") || { echo missing; return; }
	bpftool -j map lookup id "$1" key $((idx & 255)) $((idx >> 8 & 255)) 0 0 2>/dev/null |
		jq -r 'if .formatted then ([.formatted.values[].value] | add)
			else ([.values[].value | reverse | map(ltrimstr("0x")) | join("")
			| ascii_downcase | explode | reduce .[] as $c (0; . * 16 +
			(if $c >= 97 then $c - 87 else $c - 48 end))] | add) end' 2>/dev/null ||
		echo missing
}

# role_of MAPID: the role map's value, for the log.
role_of() {
	bpftool -j map lookup id "$1" key 0 0 0 0 2>/dev/null | jq -c '.formatted.value // .value'
}

pin_neigh() { # c's entry for the VIP: a's MAC, permanent
	ns_exec c ip neigh replace $VIP lladdr "$A_MAC" dev eth0 nud permanent
}
neigh_is_a() {
	ns_exec c ip -j neigh show $VIP dev eth0 | jq -e --arg m "$A_MAC" \
		'.[0].lladdr == $m and (.[0].state | index("PERMANENT"))' >/dev/null
}

# probe NAME ARGS...: optprobe in c to the VIP; its output in $T_TMP/NAME.out.
probe() {
	local name=$1
	shift
	ip netns exec "$(ns_name c)" "$OPTPROBE" -i $PROBE_MS "$@" $VIP:5060 \
		>"$T_TMP/$name.out" 2>"$T_TMP/$name.err" &
	PROBE_PID=$!
	T_PIDS+=("$PROBE_PID")
}
probe_up() { grep -q '^up ' "$T_TMP/$1.out"; }
# pf NAME FIELD: a number from optprobe's summary line.
pf() {
	awk -v f="$2" '$1 == "armed" || $1 == "below" || $1 == "timeout" { for (i = 1; i < NF; i++)
		if ($i == f) { print $(i + 1); x = 1 } } END { if (!x) print "missing" }' "$T_TMP/$1.out"
}

# sipp_opts NAME PORT: sipp's OPTIONS UAC in c, SIPP_N at SIPP_RATE/s.
sipp_opts() {
	(cd "$T_TMP" && exec ip netns exec "$(ns_name c)" timeout -k 5 60 sipp $VIP:5060 \
		-sf "$T_TMP/options.xml" -i $C_IP -p "$2" -m $SIPP_N -r $SIPP_RATE -l $SIPP_N \
		-nostdin -timeout 40s -timeout_error -trace_stat -stf "$1.csv" -fd 1 \
		-trace_err -error_file "$1.err" >"$1.out" 2>&1) &
	SIPP_PID=$!
	T_PIDS+=("$SIPP_PID")
}
# sf NAME FIELD: a cumulative field of the last line of sipp's statistics.
sf() {
	awk -F';' -v f="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } { l = $0 }
		END { split(l, v, ";"); if (f in h) print v[h[f]] + 0; else print "missing" }' \
		"$T_TMP/$1.csv" 2>/dev/null || echo missing
}

# ip_in_addr_errors NS: IPv4 packets NS's kernel dropped as not for one of
# its addresses (a steered request that arrives before the VIP).
ip_in_addr_errors() {
	# shellcheck disable=SC2016 # awk's own $
	ns_exec "$1" awk '$1 == "Ip:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 }
		else { print $c["InAddrErrors"]; exit } }' /proc/net/snmp
}

in_range() { # VALUE LO HI
	[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}
gt0() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }

# pair: a active, b in sync.  Returns 1 (after a FAIL) when it cannot be built.
pair() {
	rm -rf "$T_TMP/state-a" "$T_TMP/state-b"
	start_siphad -n a -N a "$T_TMP/a.conf" || return 1
	if ! wait_until 5 field_is a state active; then
		fail "xdp steer: $1: a active" "state $(field_of a state)"
		return 1
	fi
	start_siphad -n b -N b "$T_TMP/b.conf" || return 1
	if ! wait_until 5 field_is b in_sync true; then
		fail "xdp steer: $1: b in sync" "state $(field_of b state), in_sync $(field_of b in_sync)"
		return 1
	fi
	return 0
}

# ====================================================================================
# 1. Manual switchover, client pinned to the old active node
# ====================================================================================

switchover() {
	local s=switchover a0 b0 ao0 bo0 aa0 ba0 sent ans
	pair $s || return
	pin_neigh
	check "xdp steer: $s: c's entry for the VIP pinned to a's MAC" neigh_is_a

	a0=$(xc a steered) b0=$(xc b steered) ao0=$(xc a options) bo0=$(xc b options)
	local bb0 bie0
	bb0=$(xc b steer_bounce) bie0=$(ip_in_addr_errors b)
	aa0=$(mc a options_answered) ba0=$(mc b options_answered)

	probe sw-probe -g 3000 -T 30 -A 5
	local ppid=$PROBE_PID
	if ! wait_until 5 probe_up sw-probe; then
		fail "xdp steer: $s: the VIP answers c before the switchover" \
			"$(cat "$T_TMP/sw-probe.err" "$T_TMP/sw-probe.out" | tr '\n' '|')"
		return
	fi
	sipp_opts sw-sipp 5071
	local spid=$SIPP_PID
	sleep 1
	kill -USR1 "$ppid"
	local out rc
	out=$(ctl -n a switchover --json)
	rc=$?
	check_eq "xdp steer: $s: siphactl switchover on a" "$rc $(json_get "$out" .ok)" "0 true"
	wait_until 5 field_is b state active
	wait_until 3 field_is a state standby
	check_eq "xdp steer: $s: b active, a standby" "$(field_of b state)/$(field_of a state)" \
		"active/standby"
	check_eq "xdp steer: $s: VIP on b only" "$(vip_count a)/$(vip_count b)" "0/1"

	# optprobe arms, sees no silence of 3 s and stops 5 s later ("timeout").
	wait_pid "$ppid" 15
	info "$s: optprobe: $(tr '\n' ' ' <"$T_TMP/sw-probe.out")"
	sent=$(pf sw-probe sent) ans=$(pf sw-probe answered)
	check "xdp steer: $s: optprobe sent requests every ${PROBE_MS} ms throughout: $sent" \
		in_range "$sent" 300 100000
	check_eq "xdp steer: $s: every OPTIONS of optprobe answered (answered of sent)" \
		"$ans of $sent" "$sent of $sent"

	wait_pid "$spid" 70
	rc=$?
	local ok bad rtx
	ok=$(sf sw-sipp 'SuccessfulCall(C)') bad=$(sf sw-sipp 'FailedCall(C)')
	rtx=$(sf sw-sipp 'Retransmissions(C)')
	info "$s: sipp: exit $rc, successful $ok, failed $bad, retransmissions $rtx"
	[ "$rc" -ne 0 ] && info "$s: sipp errors: $(grep -v '^$' "$T_TMP/sw-sipp.err" 2>/dev/null |
		head -n 5 | tr '\n' '|')"
	check_eq "xdp steer: $s: every sipp OPTIONS transaction completed (ok/failed)" \
		"$ok/$bad" "$SIPP_N/0"

	# The last requests may still be on their way through the daemons.
	answers_reach() { [ $(($(mc a options_answered) - aa0 + $(mc b options_answered) - ba0)) \
		-ge "$1" ]; }
	wait_until 2 answers_reach $((sent + SIPP_N))
	local da db dao dbo daa dba
	da=$(($(xc a steered) - a0)) db=$(($(xc b steered) - b0))
	dao=$(($(xc a options) - ao0)) dbo=$(($(xc b options) - bo0))
	daa=$(($(mc a options_answered) - aa0)) dba=$(($(mc b options_answered) - ba0))
	info "$s: a: xdp options +$dao, steered +$da, answered +$daa;" \
		"b: xdp options +$dbo, steered +$db, answered +$dba;" \
		"b's kernel dropped $(($(ip_in_addr_errors b) - bie0)) IPv4 packets for an address it lacks"
	check "xdp steer: $s: a's XDP steered what reached it after the switchover: $da" gt0 "$da"
	# Every OPTIONS reached a (pinned MAC); a answered the ones before the
	# switchover, steered the rest.  b steering back is the race between
	# a's demotion and b's takeover; each bounce counts again on both.
	check "xdp steer: $s: a answered or steered every OPTIONS it saw ($daa + $da >= $dao)" \
		test $((daa + da)) -ge "$dao"
	check "xdp steer: $s: b answered OPTIONS after the switchover: $dba" gt0 "$dba"
	check "xdp steer: $s: answers of a and b ($((daa + dba))) = requests of optprobe and sipp" \
		in_range "$((daa + dba))" "$((sent + SIPP_N))" "$((sent + SIPP_N + rtx))"
	# A frame that reaches b while b is still standby must neither loop back
	# to a (steered >> requests) nor be lost (the checks above).
	local t_dem t_act
	t_dem=$(awk '/ha: leaving the active role: switchover/ { print $1; exit }' "$(siphad_log a)")
	t_act=$(awk '/ha: standby -> active/ { print $1; exit }' "$(siphad_log b)")
	info "$s: $((da + db)) XDP_TX for $((sent + SIPP_N + rtx)) requests (b sent $db back to a" \
		"before it was active; b's steer_bounce: $bb0 -> $(xc b steer_bounce));" \
		"a demoted at $t_dem, b active at $t_act"

	info "$s: a's state at the end: $(field_of a state); its log:" \
		"$(grep -oE 'VIP still answered by [0-9a-f:]+; not taking it \([^)]*\)' \
			"$(siphad_log a)" | head -n 1)"
	stop_siphad a
	stop_siphad b
	# The next scenario reuses the instance names: keep these logs (T_KEEP=1).
	cp "$(siphad_log a)" "$T_TMP/switchover-a.log"
	cp "$(siphad_log b)" "$T_TMP/switchover-b.log"
}

# ====================================================================================
# 2. kill -9 of the active daemon, client pinned to it
# ====================================================================================

kill9() {
	local s="kill -9" cmap rmap a0 d0 sent ans gap
	pair kill9 || return
	pin_neigh
	check "xdp steer: $s: c's entry for the VIP pinned to a's MAC" neigh_is_a

	cmap=$(map_of a sxdp_counters)
	rmap=$(map_of a sxdp_role)
	if [ -z "$cmap" ] || [ -z "$rmap" ]; then
		fail "xdp steer: $s: a's counter and role maps found by program id" \
			"counters '$cmap', role '$rmap'"
		return
	fi
	# The id-based reader agrees with the daemon (options is quiet here).
	check_eq "xdp steer: $s: counters by map id = siphactl xdp (options, steered)" \
		"$(mapc "$cmap" options) $(mapc "$cmap" steered)" "$(xc a options) $(xc a steered)"
	a0=$(mapc "$cmap" steered) d0=$(mapc "$cmap" orphan_arp_drop)
	info "$s: a's role before: $(role_of "$rmap")"

	# -g 50: optprobe ends at the first answer after a silence of 50 ms;
	# what it measures is the outage a client with a stale entry sees.
	probe k9-probe -g 50 -T 30 -A 8
	local ppid=$PROBE_PID
	if ! wait_until 5 probe_up k9-probe; then
		fail "xdp steer: $s: the VIP answers c before the kill" \
			"$(cat "$T_TMP/k9-probe.err" "$T_TMP/k9-probe.out" | tr '\n' '|')"
		return
	fi
	sipp_opts k9-sipp 5072
	local spid=$SIPP_PID
	sleep 1
	kill -USR1 "$ppid"
	local t0 t1
	t0=$(date +%s%N)
	kill -9 "$(siphad_pid a)"
	wait_pid "$(siphad_pid a)" 5
	wait_until 5 field_is b state active
	t1=$(date +%s%N)
	info "$s: b active $(((t1 - t0) / 1000000)) ms after the kill"
	check_eq "xdp steer: $s: b active after a's kill -9" "$(field_of b state)" active
	check_eq "xdp steer: $s: VIP on a (left by the dead daemon) and on b" \
		"$(vip_count a)/$(vip_count b)" "1/1"
	check "xdp steer: $s: a's program still attached to its eth0" \
		test -n "$(map_of a sxdp_counters)"
	info "$s: a's role after: $(role_of "$rmap") (bpf clock now: $(awk '{print $1}' /proc/uptime) s)"

	wait_pid "$ppid" 15
	local prc=$?
	info "$s: optprobe: $(tr '\n' ' ' <"$T_TMP/k9-probe.out")"
	gap=$(pf k9-probe gap_ms)
	check_eq "xdp steer: $s: c is answered again after the takeover (optprobe exit)" "$prc" 0
	info "$s: outage seen by the pinned client: $gap ms (sent $(pf k9-probe sent)," \
		"answered $(pf k9-probe answered) up to the first answer after it)"

	local d1
	d1=$(mapc "$cmap" orphan_arp_drop)
	check "xdp steer: $s: a's orphaned program dropped b's ARP probe for the VIP ($d0 -> $d1)" \
		gt0 $((d1 - d0))

	# Steady state: the pinned client, served through a's orphaned program.
	local s0 s1
	s0=$(mapc "$cmap" steered)
	probe k9-steady -g 3000 -T 3
	wait_pid "$PROBE_PID" 10
	s1=$(mapc "$cmap" steered)
	info "$s: steady optprobe: $(tr '\n' ' ' <"$T_TMP/k9-steady.out")"
	sent=$(pf k9-steady sent) ans=$(pf k9-steady answered)
	check "xdp steer: $s: steady optprobe sent requests: $sent" in_range "$sent" 100 100000
	check_eq "xdp steer: $s: after the takeover, every OPTIONS to a's MAC answered" \
		"$ans of $sent" "$sent of $sent"
	check "xdp steer: $s: a's orphaned program steered them ($s0 -> $s1, >= $sent)" \
		test $((s1 - s0)) -ge "$sent"

	wait_pid "$spid" 70
	local rc=$? ok bad rtx
	ok=$(sf k9-sipp 'SuccessfulCall(C)') bad=$(sf k9-sipp 'FailedCall(C)')
	rtx=$(sf k9-sipp 'Retransmissions(C)')
	info "$s: sipp: exit $rc, successful $ok, failed $bad, retransmissions $rtx"
	[ "$rc" -ne 0 ] && info "$s: sipp errors: $(grep -v '^$' "$T_TMP/k9-sipp.err" 2>/dev/null |
		head -n 5 | tr '\n' '|')"
	check_eq "xdp steer: $s: every sipp OPTIONS transaction completed, retransmissions included (ok/failed)" \
		"$ok/$bad" "$SIPP_N/0"
	check "xdp steer: $s: a's steered counter grew ($a0 -> $s1)" gt0 $((s1 - a0))
	# Were b to steer back what a's orphaned program sends it before b is
	# active, the frames would loop between the two: steered >> requests.
	info "$s: a steered $((s1 - a0)) for $(($(pf k9-probe sent) + sent + SIPP_N + rtx))" \
		"requests of c; b's steer_bounce: $(xc b steer_bounce)"

	# ARP: unpinned, c asks for the VIP; only b may answer, a drops each request.
	ns_exec c ip neigh del $VIP dev eth0 2>/dev/null
	d0=$(mapc "$cmap" orphan_arp_drop)
	# -b: broadcasts only (iputils arping goes unicast to the first replier).
	ns_exec c arping -b -I eth0 -c 3 -w 5 $VIP >"$T_TMP/arping.out" 2>&1
	d1=$(mapc "$cmap" orphan_arp_drop)
	info "$s: arping: $(grep -i reply "$T_TMP/arping.out" | tr '\n' '|')"
	local macs
	macs=$(grep -oiE 'reply from [0-9.]+ \[[0-9a-f:]+\]' "$T_TMP/arping.out" |
		grep -oiE '[0-9a-f]{2}(:[0-9a-f]{2}){5}' | tr 'A-F' 'a-f' | sort -u | tr '\n' ' ')
	check_eq "xdp steer: $s: ARP for the VIP answered by b's MAC only" "$macs" "$B_MAC "
	check "xdp steer: $s: a's orphaned program dropped c's 3 ARP requests ($d0 -> $d1)" \
		test $((d1 - d0)) -ge 3

	stop_siphad b
	# The dead daemon's leftovers: its VIP and its program on a's eth0.
	ns_exec a ip addr del $VIP/24 dev eth0 2>/dev/null
	ns_exec a ip link set eth0 xdp off 2>/dev/null
}

switchover
kill9
finish
