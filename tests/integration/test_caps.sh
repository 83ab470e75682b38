#!/usr/bin/env bash
# Least privilege (docs/SECURITY.md): once up, siphad holds exactly the
# capabilities its configuration needs, in every set (effective, permitted,
# bounding; inheritable and ambient empty), with no_new_privs, and still does
# everything it does after start-up with them.
#
# Part 1: a plain node (no VIP, no XDP) keeps nothing and still answers.
# Part 2: an HA pair with VIP and XDP in namespaces keeps CAP_NET_ADMIN, and
# CAP_BPF only where the kernel checks it for bpf() on open fds (before 6.5,
# with kernel.unprivileged_bpf_disabled set; worked out here from the kernel
# version, not the way siphad probes it).  After the drop: a blocklist entry
# through the control socket (map update), the XDP counters, a switchover (VIP
# removed on one node and added on the other, GARP on the open packet socket),
# a VIP deleted by hand added again, and a clean exit that takes the VIP off
# and detaches XDP.
. "$(dirname "$0")/lib.sh"
require_root
require_cmd jq ip
require_bin "$SIPHAD" "$SIPHACTL"

CAP_NET_ADMIN=12
CAP_BPF=39

# mask CAP...: the hex mask /proc/PID/status shows for these capabilities.
mask() {
	local m=0 c
	for c in "$@"; do
		m=$((m | (1 << c)))
	done
	printf '%016x' "$m"
}

# pstat PID FIELD: one line of /proc/PID/status, value only.
pstat() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# check_caps LABEL NAME MASK: every capability set of siphad NAME.
check_caps() {
	local pid
	pid=$(siphad_pid "$2")
	check_eq "$1: CapEff" "$(pstat "$pid" CapEff)" "$3"
	check_eq "$1: CapPrm" "$(pstat "$pid" CapPrm)" "$3"
	check_eq "$1: CapBnd" "$(pstat "$pid" CapBnd)" "$3"
	check_eq "$1: CapInh" "$(pstat "$pid" CapInh)" "$(mask)"
	check_eq "$1: CapAmb" "$(pstat "$pid" CapAmb)" "$(mask)"
	check_eq "$1: NoNewPrivs" "$(pstat "$pid" NoNewPrivs)" 1
	# Capabilities are per thread: every thread (the HA clock's too) holds
	# the same, once it is running.
	local t bad=0 n=0
	for t in /proc/"$pid"/task/*; do
		n=$((n + 1))
		[ "$(awk '$1 == "CapEff:" || $1 == "CapPrm:" || $1 == "CapBnd:" { print $2 }' \
			"$t/status" | sort -u)" = "$3" ] || bad=$((bad + 1))
	done
	check_eq "$1: the same in all $n threads" "$bad" 0
}

# The kernel checks CAP_BPF for map access through an open fd before 6.5,
# when unprivileged BPF is disabled.
bpf_checked() {
	local maj min
	IFS=. read -r maj min _ <<<"$(uname -r)"
	if [ "$maj" -gt 6 ] || { [ "$maj" -eq 6 ] && [ "${min%%[!0-9]*}" -ge 5 ]; }; then
		return 1
	fi
	[ "$(cat /proc/sys/kernel/unprivileged_bpf_disabled)" != 0 ]
}

# --- part 1: a plain node ------------------------------------------------------------

free_port PORT || finish
write_config "$T_TMP/plain.ini" "$PORT" tcaps
start_siphad "$T_TMP/plain.ini" || finish
check_caps "caps plain" main "$(mask)"
check "caps plain: the log says what is kept" grep -q "caps: keeping none; the rest dropped, the bounding set too" "$(siphad_log)"
opt0=$(metric options_answered)
printf 'OPTIONS sip:tcaps@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-caps1\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:tcaps@127.0.0.1>\r\nCall-ID: caps-1@t\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' \
	>"$T_TMP/options"
# One write, one datagram (bash's printf writes line by line).
cat "$T_TMP/options" >"/dev/udp/127.0.0.1/$PORT"
answered() { [ "$(metric options_answered)" -gt "$opt0" ]; }
check "caps plain: an OPTIONS is still answered" wait_until 3 answered
stop_siphad

# --- part 2: an HA pair with VIP and XDP ---------------------------------------------

if bpf_checked; then
	WANT=$(mask $CAP_NET_ADMIN $CAP_BPF)
	WANT_NAMES=cap_net_admin,cap_bpf
else
	WANT=$(mask $CAP_NET_ADMIN)
	WANT_NAMES=cap_net_admin
fi
info "kernel $(uname -r), unprivileged_bpf_disabled $(cat /proc/sys/kernel/unprivileged_bpf_disabled): expecting $WANT_NAMES"

HA_SIP_LISTEN=10.99.0.100:5060
HA_VIP=10.99.0.100
HA_VIP_LEN=24
HA_CALLEE=10.99.0.10:5070
if ! { ha_lan && addr_add a eth0 10.99.0.1/24 && addr_add b eth0 10.99.0.2/24 &&
	addr_add c eth0 10.99.0.10/24; }; then
	fail "caps ha: topology" "cannot build namespaces"
	finish
fi
ha_conf "$T_TMP/a.conf" a primary 10.99.0.1 10.99.0.2
ha_conf "$T_TMP/b.conf" b backup 10.99.0.2 10.99.0.1
ha_start_pair "caps ha" || finish

vip_count() { ns_exec "$1" ip -br addr show eth0 | grep -c "$HA_VIP/"; }
link_xdp() { ns_exec "$1" ip -j link show dev eth0 | jq -r '.[0].xdp.prog.name // empty'; }

for n in a b; do
	check_caps "caps ha $n" "$n" "$WANT"
	check "caps ha $n: the log names $WANT_NAMES" grep -q "caps: keeping $WANT_NAMES; the rest dropped, the bounding set too" "$(siphad_log "$n")"
done

# A map update and a read through the fds opened before the drop.
check_eq "caps ha: block add after the drop" "$(ctl -n a block add 10.99.0.77/32 --json | jq -r .ok)" true
check_eq "caps ha: block del after the drop" "$(ctl -n a block del 10.99.0.77/32 --json | jq -r .ok)" true
check_eq "caps ha: xdp attached, counters read" \
	"$(ctl -n a xdp --json | jq -r '"\(.attached) \(.counters | has("drop_blocklist"))"')" "true true"

# A switchover: a removes the VIP, b adds it and announces it.
switchover() { ctl -n "$1" switchover >/dev/null; }
check "caps ha: switchover accepted" switchover a
check "caps ha: b active after the switchover" wait_until 5 field_is b state active
check "caps ha: a standby after the switchover" wait_until 5 field_is a state standby
check_eq "caps ha: VIP on b only" "$(vip_count a)/$(vip_count b)" "0/1"
# The takeover's new epoch reached the disk without CAP_DAC_OVERRIDE.
check_eq "caps ha: b persisted its epoch after the drop" "$(tr -dc 0-9 <"$T_TMP/state-b/epoch")" \
	"$(field_of b epoch)"
check "caps ha: b's epoch moved on with the switchover ($(field_of b epoch))" test "$(field_of b epoch)" -ge 2
check_eq "caps ha: no takeover failed for want of a capability" \
	"$(grep -c "Operation not permitted" "$(siphad_log a)" "$(siphad_log b)" | awk -F: '{ s += $2 } END { print s }')" 0
# Removed by hand on the active node: netlink tells b, which adds it again.
ns_exec b ip addr del "$HA_VIP/$HA_VIP_LEN" dev eth0
vip_back() { [ "$(vip_count b)" = 1 ]; }
check "caps ha: a VIP deleted by hand is added again" wait_until 3 vip_back

# Exit: b must take the VIP off and detach XDP with what it kept.
stop_siphad b
check_eq "caps ha: b's VIP gone after exit" "$(vip_count b)" 0
check_eq "caps ha: b's XDP detached after exit" "$(link_xdp b)" ""
stop_siphad a
check_eq "caps ha: a's XDP detached after exit" "$(link_xdp a)" ""
for n in a b; do
	check_eq "caps ha $n: no permission error in the log (epoch file, VIP, maps)" "$(grep -c -e "Operation not permitted" -e "Permission denied" -e "EPERM" "$(siphad_log "$n")")" 0
done
finish
