#!/usr/bin/env bash
# `make demo`: a first look at sipha on this machine, on loopback only.
#
# What it shows today: one siphad node, a SIP phone registering (sipp), calls
# placed through the B2BUA to a callee (sipp UAS behind a static route), and
# the daemon's own view through siphactl.  The two-node HA pair with a
# failover joins this script when the HA engine lands (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

B=build
dir=$(mktemp -d /tmp/sipha-demo.XXXXXX)
base=$((20000 + ($$ % 20000)))
sip_port=$base
uas_port=$((base + 1))
uac_port=$((base + 2))
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cat >"$dir/a.conf" <<EOF
[node]
id = demo
[sip]
listen = 127.0.0.1:$sip_port
domain = sipha.test
[control]
socket = $dir/ctl.sock
[dn]
1001 = extension
3000 = sip:127.0.0.1:$uas_port
EOF

step "config ($dir/a.conf)"
cat "$dir/a.conf"

step "starting siphad on 127.0.0.1:$sip_port"
$B/siphad -c "$dir/a.conf" 2>"$dir/siphad.log" &
pids+=($!)
for _ in $(seq 50); do
	$B/siphactl -s "$dir/ctl.sock" status >/dev/null 2>&1 && break
	sleep 0.1
done
$B/siphactl -s "$dir/ctl.sock" status

step "a phone registers as extension 1001 (sipp)"
cat >"$dir/reg.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send><![CDATA[
REGISTER sip:sipha.test SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1001@sipha.test>;tag=[pid]reg[call_number]
To: <sip:1001@sipha.test>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:1001@[local_ip]:[local_port]>
Expires: 600
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
EOF
sipp 127.0.0.1:$sip_port -sf "$dir/reg.xml" -m 1 -p $uac_port -nostdin -timeout 10 \
	-trace_err -error_file "$dir/reg.err" >/dev/null 2>&1 && echo "registered"
$B/siphactl -s "$dir/ctl.sock" registrations

step "a callee answers on DN 3000 (sipp UAS at 127.0.0.1:$uas_port)"
sipp -sn uas -p $uas_port -i 127.0.0.1 -nostdin >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

step "20 calls to 3000 through sipha (sipp UAC, 10 calls/s, 1 s each)"
sipp 127.0.0.1:$sip_port -sn uac -s 3000 -m 20 -r 10 -d 1000 -p $((base + 3)) -nostdin \
	-timeout 30 -trace_stat -stf "$dir/uac.csv" >/dev/null 2>&1 || true
ok=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["SuccessfulCall(C)"]}' "$dir/uac.csv" 2>/dev/null || echo "?")
bad=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} END{print $h["FailedCall(C)"]}' "$dir/uac.csv" 2>/dev/null || echo "?")
echo "calls: $ok successful, $bad failed"
$B/siphactl -s "$dir/ctl.sock" calls

step "what siphad counted"
$B/siphactl -s "$dir/ctl.sock" metrics | grep -E '^sipha_(calls_|register_ok|sip_rx_messages|sip_tx_responses)' || true

step "stopping siphad (SIGTERM)"
kill -TERM "${pids[0]}"
wait "${pids[0]}" && echo "siphad exited 0"
pids=("${pids[@]:1}")
echo
echo "Next: the HA pair (two nodes in namespaces, a VIP, kill -9 of the active node) joins"
echo "this demo with the HA engine; see README.md."
