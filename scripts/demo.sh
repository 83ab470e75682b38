#!/usr/bin/env bash
# `make demo`: the whole story of sipha in network namespaces on this machine.
#
#   two nodes (a: primary, b: backup) in hot standby behind a VIP,
#   a caller and a callee (sipp) on the same LAN,
#   calls placed through the VIP, the active node killed with kill -9,
#   and what survived: "calls kept: N/N" and the measured outage.
#
# Everything lives in namespaces named sipha-demo-<pid>-*, with addresses
# 10.99.0.0/24 that exist only inside them, and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

B=$(pwd)/build
CALLS=${CALLS:-30}
P=sipha-demo-$$
tmp=$(mktemp -d /tmp/sipha-demo.XXXXXX)
pids=()

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in a b c lan; do ip netns del "$P-$n" 2>/dev/null || true; done
	rm -rf /sys/fs/bpf/sipha/demo-a-$$ /sys/fs/bpf/sipha/demo-b-$$ "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (namespaces, XDP)" >&2; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

bold "a LAN in namespaces: nodes a (10.99.0.1) and b (10.99.0.2), client c (10.99.0.10), VIP 10.99.0.100"
ip netns add "$P-lan"
ns lan ip link add br0 type bridge forward_delay 0 stp_state 0
ns lan ip link set br0 up
i=1
for n in a b c; do
	ip netns add "$P-$n"
	ns $n ip link set lo up
	ip link add eth0 netns "$P-$n" type veth peer name "$n-br" netns "$P-lan"
	ns lan ip link set "$n-br" master br0 up
	ns $n ip link set eth0 up
	ns $n sysctl -qw net.ipv4.ip_nonlocal_bind=1
	# XDP_TX on a veth needs a program on the peer end (docs/ARCHITECTURE.md §6)
	ns lan ip link set "$n-br" xdp object "$B/sipha_xdp.bpf.o" sec xdp 2>/dev/null || true
done
ns a ip addr add 10.99.0.1/24 dev eth0
ns b ip addr add 10.99.0.2/24 dev eth0
ns c ip addr add 10.99.0.10/24 dev eth0
ns c ethtool -K eth0 tx off >/dev/null 2>&1 || true

# The pair's pre-shared key: the HA link authenticates every frame with it.
head -c 32 /dev/urandom >"$tmp/ha.key"
chmod 600 "$tmp/ha.key"
conf() { # NODE ROLE OWN PEER
	cat >"$tmp/$1.conf" <<EOF
[node]
id = demo-$1-$$
role = $2
redundancy = hot
state_dir = $tmp/state-$1
[sip]
listen = 0.0.0.0:5060
domain = sipha.test
[vip]
address = 10.99.0.100/24
interface = eth0
[ha]
listen = $3:7100
peer = $4:7100
heartbeat_ms = 50
timeout_ms = 200
key_file = $tmp/ha.key
[xdp]
interface = eth0
mode = native
[control]
socket = $tmp/$1.sock
[dn]
3000 = sip:10.99.0.10:5070
EOF
}
conf a primary 10.99.0.1 10.99.0.2
conf b backup 10.99.0.2 10.99.0.1
ctl() { local n=$1; shift; "$B/siphactl" -s "$tmp/$n.sock" "$@"; }
field() { ctl "$1" status --json 2>/dev/null | jq -r ".$2"; }
wait_field() { # NODE FIELD VALUE SECONDS
	for _ in $(seq $(($4 * 20))); do
		[ "$(field "$1" "$2")" = "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

bold "starting siphad a (primary) and b (backup)"
ip netns exec "$P-a" "$B/siphad" -c "$tmp/a.conf" 2>"$tmp/a.log" &
pids+=($!)
apid=$!
wait_field a state active 5 || { echo "a did not become active"; tail "$tmp/a.log"; exit 1; }
ip netns exec "$P-b" "$B/siphad" -c "$tmp/b.conf" 2>"$tmp/b.log" &
pids+=($!)
wait_field b in_sync true 5 || { echo "b did not get in sync"; tail "$tmp/b.log"; exit 1; }
for n in a b; do
	printf '%s: %s\n' "$n" "$(ctl $n status --json | jq -c '{state, epoch, peer_connected, in_sync, calls}')"
done
echo "VIP held by: $(for n in a b; do ns $n ip -br addr show eth0 | grep -q 10.99.0.100 && echo $n; done)"

bold "placing $CALLS calls through the VIP (sipp caller and callee in c, calls last 8 s)"
# straight through ip netns exec (not a shell function), so $! is sipp itself
ip netns exec "$P-c" sipp -sn uas -i 10.99.0.10 -p 5070 -nostdin >/dev/null 2>&1 &
pids+=($!)
(cd "$tmp" && exec ip netns exec "$P-c" sipp 10.99.0.100:5060 -sn uac -s 3000 -i 10.99.0.10 -p 5071 -m "$CALLS" \
	-r 20 -d 8000 -nostdin -timeout 60 -trace_stat -stf uac.csv >/dev/null 2>&1) &
uac=$!
pids+=($uac)
wait_field a calls "$CALLS" 10 || true
wait_field b calls "$CALLS" 3 || true
echo "calls on a (active): $(field a calls)   replicated on b (standby): $(field b calls)"

bold "kill -9 of the active node a"
t0=$(date +%s%N)
{ kill -9 "$apid" && wait "$apid"; } 2>/dev/null || true
wait_field b state active 5 || true
t1=$(date +%s%N)
echo "b: $(ctl b status --json | jq -c '{state, epoch, calls, takeovers}')"
echo "outage (kill -9 to b active): $(((t1 - t0) / 1000000)) ms"
echo "VIP now on: $(ns b ip -br addr show eth0 | grep -q 10.99.0.100 && echo b)"

bold "the callers hang up (BYE through the VIP, now b)"
wait "$uac" || true
ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]+0}' "$tmp/uac.csv")
echo
echo "calls kept: $ok/$CALLS"
echo "calls left on b: $(field b calls)"
