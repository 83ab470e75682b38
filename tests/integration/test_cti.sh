#!/usr/bin/env bash
# The CTI server (docs/CTI.md) of one node, on loopback: clients are
# tests/tools/cticlient (each reads commands from a FIFO, $T_TMP/NAME.in,
# and logs every line it receives to $T_TMP/NAME.out), the stranger is
# tests/tools/ctijunk, callers and callees are sipp.  Three daemons:
#
#   main  route_timeout_ms 10 s.  Hello and Monitor answers; requests that
#         cannot be read (Error, ref echoed, no seq); refs echoed exactly;
#         agents (login on an extension, refusals: routing point, second
#         login, DN taken, not logged in; ready / not ready / logout;
#         siphactl agents); the same ref twice (carried out once, answered
#         once per connection, the logged answer on another connection of
#         the client); DeviceState of extension 1001 as sipp registers it,
#         a call from routing point 2000 routed to it (ringing, busy, idle;
#         its agent busy, then in the state asked for meanwhile); 50 calls
#         queued on 2000 (siphactl: queued) routed by a client, half to the
#         registered 1001, half to a SIP URI, every call's events in order;
#         CANCEL of a queued call; ReleaseCall of a queued, an established
#         and a ringing call; RouteCall refusals; Hello since_seq 0 replays
#         exactly what a monitor saw (and the client's own answers), since_seq
#         beyond last_seq an Error; 2,000 malformed lines, request lines of
#         8192 / 8193 / 9000 bytes, then the daemon still serves.
#   tmo   route_timeout_ms 600, no default route, event_log_ms 1000: 480
#         and "route timeout" at 600 ms; since_seq older than the log: a
#         "gap:" Error and nothing streamed until Hello without since_seq;
#         Hello since_seq on a connection already streamed to sends no seq
#         twice; StopMonitor.
#   lim   route_timeout_ms 500, default_route 3000, client_queue_max 64 KiB,
#         max_clients 3, 300 more extensions.  The default route at 500 ms;
#         a client that does not read is cut off (400 calls)
#         while another is served with no gap; 256 Monitors per connection;
#         a fourth connection gets an Error line and is closed at once.
#
# The daemons are $SIPHAD (tests/run.sh: the sanitizer build); stop_siphad
# fails on a sanitizer report.  Everything is bounded: sipp by -timeout and
# timeout(1), clients by -t, every wait by wait_until.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd sipp jq ss timeout mkfifo
CTICLIENT=${CTICLIENT:-$T_BUILD/tests/tools/cticlient}
CTIJUNK=${CTIJUNK:-$T_BUILD/tests/tools/ctijunk}
require_bin "$SIPHAD" "$SIPHACTL" "$CTICLIENT" "$CTIJUNK"

# A client that died must not kill the script when it is sent a command.
trap '' PIPE

SCN=$(cd "$(dirname "$0")" && pwd)/scenarios
SIPP_TO=30
N=50
declare -A SP_PID=() CL_PID=() CL_FD=() D_SIP=() D_CTI=()

# --- daemons, sipp, clients ------------------------------------------------------------

# cti_daemon NAME ROUTE3000_PORT [CTI KEY=VALUE...]: siphad with [cti].
cti_daemon() {
	local n=$1 uas=$2 sip cti kv
	shift 2
	free_port sip || return 1
	free_port cti || return 1
	D_SIP[$n]=$sip D_CTI[$n]=$cti
	cat >"$T_TMP/$n.ini" <<EOF
[node]
id = $n
state_dir = $T_TMP/state-$n

[sip]
listen = 127.0.0.1:$sip
domain = sipha.test

[control]
socket = $T_TMP/$n.sock

[engine]
workers = 1

[cti]
listen = 127.0.0.1:$cti
$(for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done)

[dn]
1001 = extension
1002 = extension
2000 = routing-point
3000 = sip:127.0.0.1:$uas
${DN_EXTRA:-}
EOF
	start_siphad -n "$n" "$T_TMP/$n.ini"
}


_udp_bound() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

# uas_start NAME PORT CALLS [ARGS...]: a callee, bound before it returns.
uas_start() {
	local n=$1 p=$2 m=$3
	shift 3
	sipp_bg "$n" "$@" -p "$p" -m "$m"
	wait_until 5 _udp_bound "$p" || info "$n: not bound on $p after 5 s"
}

# uac_start NAME DAEMON CALLS DN ARGS...: a caller towards a daemon.
uac_start() {
	local n=$1 d=$2 m=$3 dn=$4 port
	shift 4
	free_port port || return 1
	sipp_bg "$n" "$@" -s "$dn" -p "$port" -m "$m" -r 100 -l 250 "127.0.0.1:${D_SIP[$d]}"
}

# sipp_ok LABEL NAME CALLS: sipp NAME ended with CALLS successful, none failed.
sipp_ok() {
	sipp_end "$2" $((SIPP_TO + 20))
	check_eq "$1: sipp $2 exit status" "$SIPP_RC" 0
	check_eq "$1: sipp $2 completed $3 calls, none failed" "$SIPP_OK/$SIPP_FAILED" "$3/0"
}

# client NAME DAEMON ARGS...: a cticlient with commands from the FIFO
# $T_TMP/NAME.in (cmd NAME ...) and its output in $T_TMP/NAME.out.
client() {
	local n=$1 d=$2 fd
	shift 2
	rm -f "$T_TMP/$n.in"
	mkfifo "$T_TMP/$n.in" || return 1
	"$CTICLIENT" -t 85 "$@" "127.0.0.1:${D_CTI[$d]}" <"$T_TMP/$n.in" >"$T_TMP/$n.out" \
		2>"$T_TMP/$n.err" &
	CL_PID[$n]=$!
	T_PIDS+=("$!")
	exec {fd}>"$T_TMP/$n.in"
	CL_FD[$n]=$fd
}

cmd() { # NAME COMMAND...
	echo "${*:2}" >&"${CL_FD[$1]}"
}

# client_end NAME: quit, wait (5 s), and the SUMMARY fields into SUM[].
declare -A SUM=()
client_end() {
	local n=$1 kv
	cmd "$n" quit 2>/dev/null
	eval "exec ${CL_FD[$n]}>&-"
	wait_pid "${CL_PID[$n]}" 5 || kill -TERM "${CL_PID[$n]}" 2>/dev/null
	SUM=()
	for kv in $(grep -m1 ' SUMMARY ' "$T_TMP/$n.out" | cut -d' ' -f4-); do
		SUM[${kv%%=*}]=${kv#*=}
	done
}

# evs NAME: the JSON lines client NAME received, compact, in arrival order.
evs() {
	awk '$1 ~ /^[0-9]$/ { sub(/^[0-9]+ [0-9]+ /, ""); print }' "$T_TMP/$1.out" |
		jq -c -R 'fromjson? // empty'
}
# count NAME JQ_COND: how many received lines satisfy JQ_COND.
count() { evs "$1" | jq -s "map(select($2)) | length"; }
has() { [ "$(count "$1" "$2")" -ge "${3:-1}" ]; }
# answer NAME REF: the answers to ref REF (a string), one a line.
answer() { evs "$1" | jq -c --arg r "$2" 'select(.ref == $r)'; }
# wait_ev NAME JQ_COND [N] [SECONDS]: waits for N lines satisfying JQ_COND.
wait_ev() { wait_until "${4:-10}" has "$1" "$2" "${3:-1}"; }
# queued_ids DAEMON: ids of the calls siphactl shows queued.
queued_ids() { ctl -n "$1" --json calls | jq -r '.calls[] | select(.state == "queued") | .id'; }
_nqueued() { [ "$(queued_ids "$1" | wc -l)" -ge "$2" ]; }
_status() { ctl -n "$1" status >/dev/null; }
_no_calls() { [ "$(ctl -n "$1" --json calls 2>/dev/null | jq '.calls | length')" = 0 ]; }
_metric_ge() { [ "$(metric "$2" "$1" 2>/dev/null || echo 0)" -ge "$3" ]; } # DAEMON NAME MIN

# call_order NAME [CALLS...]: every call seen by client NAME (or the ones
# listed) has exactly Queued RouteRequest Dialing [Ringing] Established
# Released, with increasing seq; prints the calls that do not.
call_order() {
	local n=$1
	shift
	evs "$n" | jq -s -r --arg only "$*" '
		map(select(.call and .seq)) | group_by(.call)[]
		| select(.[0].call as $c | $only == "" or ($only | split(" ") | index($c)))
		| { c: .[0].call, e: (map(.event) | join(" ")), s: map(.seq) }
		| select((.e | test("^Queued RouteRequest Dialing (Ringing )?Established Released$") | not)
			or .s != (.s | sort) or (.s | unique | length) != (.s | length))
		| "\(.c): \(.e)"'
}

# lat_ms NAME FROM TO: the least and the most time in ms (client NAME's
# clock) from event FROM to event TO of one call, over its calls.
lat_ms() {
	awk -v a="\"event\":\"$2\"" -v b="\"event\":\"$3\"" '
		$1 ~ /^[0-9]$/ && match($0, /"call":"[0-9]+"/) {
			c = substr($0, RSTART, RLENGTH)
			if (index($0, a)) {
				t[c] = $2
			} else if (index($0, b) && (c in t)) {
				d = int(($2 - t[c]) / 1000)
				if (n++ == 0 || d < lo) lo = d
				if (d > hi) hi = d
			}
		}
		END { print lo + 0, hi + 0 }' "$T_TMP/$1.out"
}

# ======================================================================================
# main
# ======================================================================================
free_port UAS || finish
free_port REG || finish
cti_daemon main "$UAS" route_timeout_ms=10000 || finish
info "main: SIP ${D_SIP[main]}, CTI ${D_CTI[main]}"

# --- monitors, agents ------------------------------------------------------------------

client desk main -c desk -r d -m 1001 -m 1002 -m 2000
if ! wait_ev desk '.state == "active" and .client == "desk"'; then
	fail "cti: Hello answered" "$(tail -n 3 "$T_TMP/desk.out" | tr '\n' '|')"
	finish
fi
pass "cti: Hello answered (state active, client desk)"
check_eq "cti: Hello answer {ok, node, state, last_seq, first_seq, client, ref}" \
	"$(evs desk | jq -c 'select(.client == "desk") | [.ok, .node, .state, .last_seq, .first_seq, .ref]')" \
	'[true,"main","active",0,1,"hello"]'
check "cti: Monitor 1001 answered with its device state, unregistered" \
	has desk '.ok == true and .dn == "1001" and .device == "unregistered"'
check "cti: Monitor of a routing point answered without device" \
	has desk '.ok == true and .dn == "2000" and (has("device") | not)'
cmd desk 'raw 0 {"req":"Monitor","dn":"3000","ref":"m3000"}'
cmd desk 'raw 0 {"req":"Monitor","dn":"4999","ref":"m4999"}'
wait_ev desk '.ref == "m4999"'
check_eq "cti: Monitor of a static route refused (no seq)" \
	"$(answer desk m3000 | jq -r '[.event, (.seq // "none")] | join(" ")')" "Error none"
check_eq "cti: Monitor of an unknown DN refused" "$(answer desk m4999 | jq -r .event)" Error
# A request that cannot be read: an Error with its ref when the ref could be
# read, no seq.
cmd desk 'raw 0 {"req":"Monitor","dn":1001,"ref":"bad1"}'
cmd desk 'raw 0 {"req":"Nonsense","ref":{"x":1}}'
cmd desk 'raw 0 {"req":"AgentLogin","agent":"a1","dn":"1001","ref":"bad2","extra":true}'
wait_ev desk '.ref == "bad2"'
check_eq "cti: unreadable requests: Error, ref echoed when readable, no seq" \
	"$(evs desk | jq -c 'select(.event == "Error" and (.seq | not) and (.ref == "bad1" or .ref == "bad2" or (.reason | test("ref"))))| .ref' | tr '\n' ' ')" \
	'"bad1" null "bad2" '

req() { # CLIENT REF JSON-FIELDS: a request with an explicit ref
	cmd "$1" "req {\"ref\":\"$2\",$3}"
}
req desk ag1 '"req":"AgentLogin","agent":"a1","dn":"1001"'
req desk ag2 '"req":"AgentLogin","agent":"a2","dn":"2000"'
req desk ag3 '"req":"AgentLogin","agent":"a1","dn":"1002"'
req desk ag4 '"req":"AgentLogin","agent":"a2","dn":"1001"'
req desk ag5 '"req":"AgentReady","agent":"a1"'
req desk ag6 '"req":"AgentNotReady","agent":"a1","reason":"lunch"'
req desk ag7 '"req":"AgentReady","agent":"a1"'
req desk ag8 '"req":"AgentLogin","agent":"a2","dn":"1002"'
req desk ag9 '"req":"AgentLogout","agent":"a2"'
req desk ag10 '"req":"AgentReady","agent":"a9"'
cmd desk 'req {"ref":4711,"req":"AgentNotReady","agent":"a2"}'
cmd desk 'req {"ref":"4711","req":"AgentNotReady","agent":"a2"}'
cmd desk 'req {"ref":"q\"\u00e9\\","req":"AgentNotReady","agent":"a2"}'
wait_ev desk '.ref == "ag10"' || fail "cti: agent requests answered" "no answer to ag10"
wait_ev desk '.ref == "q\"é\\"'
check_eq "cti: refs echoed exactly: integer 4711, string \"4711\", escapes (distinct requests)" \
	"$(evs desk | jq -c 'select(.ref == 4711 or .ref == "4711" or .ref == "q\"é\\") | .ref' | tr '\n' ' ')" \
	'4711 "4711" "q\"é\\" '
ans() { answer desk "$1" | jq -r '[(.ok // .event), .req, (.seq | type), (.reason // "")] | join(" ")'; }
check_eq "cti: AgentLogin on an extension: ok, answered through the log" "$(ans ag1)" \
	"true AgentLogin number "
check_eq "cti: AgentLogin on a routing point refused" "$(ans ag2)" \
	"Error AgentLogin number dn is not an extension"
check_eq "cti: second AgentLogin of the same agent refused" "$(ans ag3)" \
	"Error AgentLogin number agent already logged in"
check_eq "cti: AgentLogin on a DN another agent holds refused" "$(ans ag4)" \
	"Error AgentLogin number another agent is logged in on this dn"
check_eq "cti: AgentReady / NotReady / Ready / Login / Logout ok" \
	"$(for r in ag5 ag6 ag7 ag8 ag9; do answer desk $r | jq -r .ok; done | tr '\n' ' ')" \
	"true true true true true "
check_eq "cti: AgentReady of an agent not logged in refused" "$(ans ag10)" \
	"Error AgentReady number agent not logged in"
check_eq "cti: AgentState events of a1, in order" \
	"$(evs desk | jq -r 'select(.event == "AgentState" and .agent == "a1") | .state + (if .reason then "/" + .reason else "" end)' | tr '\n' ' ')" \
	"not_ready ready not_ready/lunch ready "
check_eq "cti: AgentState events of a2 (on 1002, then logged out)" \
	"$(evs desk | jq -r 'select(.event == "AgentState" and .agent == "a2") | .dn + ":" + .state' | tr '\n' ' ')" \
	"1002:not_ready 1002:logged_out "
check "cti: an answer's seq comes after its AgentState's" \
	test "$(answer desk ag5 | jq .seq)" -gt \
	"$(evs desk | jq -s '[.[] | select(.event == "AgentState" and .state == "ready")][0].seq')"
ag=$(ctl -n main --json agents)
check_eq "cti: siphactl agents: contract fields {agent, dn, state} of every agent" \
	"$(jq -c '[.agents[] | [has("agent"), has("dn"), has("state")] | all] | all' <<<"$ag")" true
check_eq "cti: siphactl agents: a1 ready on 1001, a2 logged out" \
	"$(jq -r '[.agents[] | select(.agent == "a1" or .agent == "a2") | "\(.agent):\(.dn):\(.state)"] | sort | join(" ")' <<<"$ag")" \
	"a1:1001:ready a2::logged_out"

# The same request twice with one ref: carried out once; this connection
# gets its answer once (docs/CTI.md: a connection never receives a seq
# twice), another connection of the same client gets the logged answer.
dup0=$(metric cti_duplicates main)
req desk dupag '"req":"AgentLogin","agent":"a3","dn":"1002"'
req desk dupag '"req":"AgentLogin","agent":"a3","dn":"1002"'
wait_ev desk '.ref == "dupag"'
wait_until 3 _metric_ge main cti_duplicates $((dup0 + 1))
check_eq "cti: same ref twice: sipha_cti_duplicates +1" "$(($(metric cti_duplicates main) - dup0))" 1
check_eq "cti: same ref twice on one connection: answered once, ok" \
	"$(answer desk dupag | jq -r .ok | tr '\n' ' ')" "true "
check_eq "cti: same ref twice: carried out once (one AgentState)" \
	"$(count desk '.event == "AgentState" and .agent == "a3"')" 1

# --- DeviceState of a registered extension; one call routed to it ---------------------

# The registered callee answers 1 + N/2 calls (this one and half of the N below).
sipp_bg reg -sf "$SCN/call_uas_registered.xml" -oocsf "$SCN/call_uas_registered_ooc.xml" \
	-s 1001 -set ncalls $((1 + N / 2)) -key cparam "" -p "$REG" -m 1 -trace_logs \
	-log_file reg.log "127.0.0.1:${D_SIP[main]}"
check "cti: registering 1001 makes its device idle" \
	wait_ev desk '.event == "DeviceState" and .dn == "1001" and .state == "idle"'

uac_start one main 1 2000 -sf "$SCN/call_uac_basic.xml" -d 1500
wait_ev desk '.event == "RouteRequest"'
id=$(evs desk | jq -r 'select(.event == "RouteRequest") | .call' | tail -n 1)
check_eq "cti: siphactl calls shows the call queued on 2000" \
	"$(ctl -n main --json calls | jq -r --arg id "$id" '.calls[] | select(.id == $id) | "\(.state) \(.dn)"')" \
	"queued 2000"
check_eq "cti: Queued carries call, dn, rp, from, to" \
	"$(evs desk | jq -r --arg id "$id" 'select(.event == "Queued" and .call == $id) | [.dn, .rp, (.from | test("^sip:caller@")), (.to | test("^sip:2000@"))] | join(" ")')" \
	"2000 2000 true true"
req desk dupr "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"1001\""
req desk dupr "\"req\":\"RouteCall\",\"call\":$id,\"target\":\"1001\""
wait_ev desk '.ref == "dupr"'
check_eq "cti: RouteCall twice with one ref: answered once, ok" \
	"$(answer desk dupr | jq -r '[.ok, .req] | join(" ")' | tr '\n' '|')" "true RouteCall|"
# Not ready asked while busy: the agent goes there when the call ends.
wait_ev desk ".event == \"Established\" and .call == \"$id\""
check_eq "cti: agent a1 busy while 1001 is on the call (siphactl agents)" \
	"$(ctl -n main --json agents | jq -r '.agents[] | select(.agent == "a1") | .state')" busy
req desk nr1 '"req":"AgentNotReady","agent":"a1","reason":"wrapup"'
wait_ev desk '.ref == "nr1"'
check_eq "cti: AgentNotReady while busy: ok" "$(answer desk nr1 | jq -r '.ok // .reason')" true
sipp_ok "cti: call routed to registered 1001" one 1
wait_ev desk ".event == \"Released\" and .call == \"$id\"" 1 5
check_eq "cti: call routed to 1001: events in order, Dialing once" "$(call_order desk "$id")" ""
now=$(date +%s%3N)
check_eq "cti: events carry ts, wall-clock ms (within 60 s of now)" \
	"$(evs desk | jq -s --argjson now "$now" '[.[] | select(.call) | .ts - $now | fabs < 60000] | all')" true
check_eq "cti: call routed to 1001: Dialing/Established name 1001 (rp 2000)" \
	"$(evs desk | jq -r --arg id "$id" 'select(.call == $id and (.event == "Dialing" or .event == "Established")) | "\(.dn)/\(.rp)"' | sort -u)" \
	"1001/2000"
check_eq "cti: DeviceState of 1001: idle, ringing, busy, idle" \
	"$(evs desk | jq -r 'select(.event == "DeviceState" and .dn == "1001") | .state' | tr '\n' ' ')" \
	"idle ringing busy idle "
# The same client on another connection sends both again (as after a
# failover): the logged answers, same seq, nothing carried out again.
client desk2 main -c desk -r d2
wait_ev desk2 '.state == "active"'
req desk2 dupag '"req":"AgentLogin","agent":"a3","dn":"1002"'
req desk2 dupr "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"1001\""
wait_ev desk2 '.ref == "dupr"'
check_eq "cti: same ref from another connection of the client: the logged answers, same seq" \
	"$(answer desk2 dupag; answer desk2 dupr)" "$(answer desk dupag; answer desk dupr)"
client_end desk2
check_eq "cti: RouteCall sent three times with one ref: one Dialing" \
	"$(count desk ".event == \"Dialing\" and .call == \"$id\"")" 1
check_eq "cti: agent a1: ready before the call, busy during it, not ready (asked meanwhile) after" \
	"$(evs desk | jq -r 'select(.event == "AgentState" and .agent == "a1") | .state' | uniq | tail -n 3 | tr '\n' ' ')/$(evs desk | jq -r 'select(.event == "AgentState" and .agent == "a1") | .reason' | tail -n 1)" \
	"ready busy not_ready /wrapup"
req desk rd2 '"req":"AgentReady","agent":"a1"'
wait_ev desk '.ref == "rd2"'

# --- N calls queued, then routed by a client -------------------------------------------

client router main -c router -r r -m 2000
wait_ev router '.state == "active"'
uas_start uas "$UAS" $((N / 2)) -sn uas
uac_start many main $N 2000 -sf "$SCN/call_uac_basic.xml" -d 200
if wait_until 15 _nqueued main $N; then
	pass "cti: $N calls queued on 2000 (siphactl calls: state queued)"
else
	fail "cti: $N calls queued on 2000" "$(queued_ids main | wc -l) queued"
fi
check "cti: Queued and RouteRequest of each reached the router" \
	wait_ev router '.event == "RouteRequest"' $N
cmd router "autoroute 1001,sip:uas@127.0.0.1:$UAS"
sipp_ok "cti: $N routed calls" many $N
sipp_ok "cti: $N routed calls (callee on a SIP URI)" uas $((N / 2))
sipp_end reg 20
check_eq "cti: registered callee sipp exit status" "$SIPP_RC" 0
check_eq "cti: registered callee answered every call routed to 1001" \
	"$(sed -n 's/^answered \([0-9]*\).*/\1/p' "$T_TMP/reg.log" 2>/dev/null | tail -n 1)" $((1 + N / 2))
if wait_until 5 _no_calls main; then
	pass "cti: siphactl calls is empty afterwards"
else
	fail "cti: siphactl calls is empty afterwards" "$(ctl -n main --json calls | jq -c '[.calls[].state]')"
fi
wait_ev desk '.event == "Released"' $((N + 1)) 5
check_eq "cti: all $((N + 1)) calls seen through Released by the desk" \
	"$(count desk '.event == "Released" and .cause == "BYE answered"')" $((N + 1))
check_eq "cti: every call's events in order (Queued RouteRequest Dialing Ringing? Established Released, seq increasing)" \
	"$(call_order desk | head -n 5 | tr '\n' '|')" ""
check_eq "cti: half the calls went to 1001, half to the URI (Dialing dn)" \
	"$(evs router | jq -r 'select(.event == "Dialing") | .dn' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" \
	"1001:$((N / 2)) 2000:$((N / 2)) "
check_eq "cti: agent a1 back to ready after the calls" \
	"$(ctl -n main --json agents | jq -r '.agents[] | select(.agent == "a1") | .state')" ready
wait_ev desk '.event == "DeviceState" and .dn == "1001" and .state == "unregistered"' 1 5
check_eq "cti: 1001 unregistered at the end, idle before" \
	"$(evs desk | jq -r 'select(.event == "DeviceState" and .dn == "1001") | .state' | tail -n 2 | tr '\n' ' ')" \
	"idle unregistered "

# --- CANCEL, ReleaseCall, RouteCall refusals -----------------------------------------

cmd router "autoroute off"
wait_until 5 grep -q ' autoroute off' "$T_TMP/router.out"
uac_start cancel main 5 2000 -sf "$SCN/call_uac_cancel.xml"
sipp_ok "cti: CANCEL of queued calls" cancel 5
check "cti: CANCEL of a queued call: Released, cause \"cancelled by caller\" (5)" \
	wait_ev desk '.event == "Released" and .cause == "cancelled by caller"' 5 5

uac_start relq main 1 2000 -sf "$SCN/call_uac_refused.xml" -set want 480
wait_ev desk '.event == "Queued"' $((N + 1 + 5 + 1))
id=$(evs desk | jq -r 'select(.event == "Queued") | .call' | tail -n 1)
req desk rc1 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"4999\""
req desk rc2 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"1002\""
req desk rc3 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"2000\""
req desk rc4 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"sip:nohost.invalid\""
req desk rc5 '"req":"RouteCall","call":"987654321","target":"1001"'
req desk rq1 "\"req\":\"ReleaseCall\",\"call\":\"$id\""
req desk rq2 '"req":"ReleaseCall","call":987654321'
wait_ev desk '.ref == "rq2"'
check_eq "cti: RouteCall refusals (unknown DN, unregistered, routing point, no IP, no call)" \
	"$(for r in rc1 rc2 rc3 rc4 rc5; do answer desk $r | jq -r '.event + ":" + .reason'; done | tr '\n' '|')" \
	"Error:unknown dn|Error:target not registered|Error:target is a routing point|Error:target unreachable (an IP address is needed)|Error:no such call|"
check_eq "cti: ReleaseCall of a queued call ok; of no call refused" \
	"$(answer desk rq1 | jq -r '.ok // .event') $(answer desk rq2 | jq -r '.event + ":" + .reason')" \
	"true Error:no such call"
check_eq "cti: ReleaseCall of a queued call: Released \"released by CTI\"" \
	"$(evs desk | jq -r --arg id "$id" 'select(.call == $id) | .event + (if .cause then ":" + .cause else "" end)' | tr '\n' ' ')" \
	"Queued RouteRequest Released:released by CTI "
sipp_ok "cti: ReleaseCall of a queued call (caller hears 480)" relq 1

uas_start uasrel "$UAS" 1 -sn uas
uac_start relest main 1 2000 -sf "$SCN/call_uac_bye.xml"
wait_ev desk '.event == "Queued"' $((N + 1 + 5 + 2))
id=$(evs desk | jq -r 'select(.event == "Queued") | .call' | tail -n 1)
req desk rt1 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"sip:uas@127.0.0.1:$UAS\""
wait_ev desk ".event == \"Established\" and .call == \"$id\""
req desk rq3 "\"req\":\"ReleaseCall\",\"call\":\"$id\""
wait_ev desk '.ref == "rq3"'
check_eq "cti: ReleaseCall of an established call ok" "$(answer desk rq3 | jq -r '.ok // .reason')" true
wait_ev desk ".event == \"Released\" and .call == \"$id\"" 1 5
check_eq "cti: ReleaseCall of an established call: Released \"released by CTI\"" \
	"$(evs desk | jq -r --arg id "$id" 'select(.call == $id and .event == "Released") | .cause')" \
	"released by CTI"
sipp_ok "cti: ReleaseCall of an established call (caller gets BYE)" relest 1
sipp_ok "cti: ReleaseCall of an established call (callee gets BYE)" uasrel 1
uas_start uasring "$UAS" 1 -sf "$SCN/call_uas_cancelled.xml"
uac_start relring main 1 2000 -sf "$SCN/call_uac_refused.xml" -set want 480
wait_ev desk '.event == "Queued"' $((N + 1 + 5 + 3))
id=$(evs desk | jq -r 'select(.event == "Queued") | .call' | tail -n 1)
req desk rt2 "\"req\":\"RouteCall\",\"call\":\"$id\",\"target\":\"sip:uas@127.0.0.1:$UAS\""
wait_ev desk ".event == \"Ringing\" and .call == \"$id\""
req desk rq4 "\"req\":\"ReleaseCall\",\"call\":\"$id\""
wait_ev desk '.ref == "rq4"'
check_eq "cti: ReleaseCall of a ringing call: ok, Released \"released by CTI\"" \
	"$(answer desk rq4 | jq -r '.ok // .reason') $(evs desk | jq -r --arg id "$id" 'select(.call == $id and .event == "Released") | .cause')" \
	"true released by CTI"
sipp_ok "cti: ReleaseCall of a ringing call (caller hears 480)" relring 1
sipp_ok "cti: ReleaseCall of a ringing call (callee gets CANCEL)" uasring 1
wait_until 5 _no_calls main || fail "cti: no calls left after the releases" "$(ctl -n main calls)"

# --- Hello since_seq: a late client gets exactly what it would have seen ------------------

client late main -c late -r l -m 1001 -m 1002 -m 2000 --since 0
wait_ev late '.state == "active"'
last=$(evs late | jq -r 'select(.client == "late") | .last_seq')
sleep 0.3
evs desk | jq -c 'select(.seq and (has("ref") | not))' >"$T_TMP/desk.events"
evs late | jq -c 'select(.seq)' >"$T_TMP/late.events"
check "cti: since_seq 0 replays events ($(wc -l <"$T_TMP/late.events"))" \
	test "$(wc -l <"$T_TMP/late.events")" -gt $((N * 5))
if cmp -s "$T_TMP/desk.events" "$T_TMP/late.events"; then
	pass "cti: since_seq 0 replay = what a monitor of the same DNs saw, in order, nothing twice"
else
	fail "cti: since_seq 0 replay = what a monitor of the same DNs saw" \
		"$(diff "$T_TMP/desk.events" "$T_TMP/late.events" | head -n 4 | tr '\n' '|')"
fi
cmd late "raw 0 {\"req\":\"Hello\",\"client\":\"late\",\"since_seq\":$((last + 1000)),\"ref\":\"far\"}"
wait_ev late '.ref == "far"'
check_eq "cti: since_seq beyond last_seq: Error" \
	"$(answer late far | jq -r '.event + " " + (.reason | test("newer") | tostring)')" "Error true"
client_end late
check_eq "cti: the late client: no duplicates, no disorder" "${SUM[dups]:-?}/${SUM[disorder]:-?}" 0/0
# The same with desk's name: its own answers are replayed too.
client deskr main -c desk -r dr -m 1001 -m 1002 -m 2000 --since 0
wait_ev deskr '.state == "active"'
sleep 0.3
evs desk | jq -c 'select(.seq)' >"$T_TMP/desk.all"
evs deskr | jq -c 'select(.seq)' >"$T_TMP/deskr.all"
if cmp -s "$T_TMP/desk.all" "$T_TMP/deskr.all"; then
	pass "cti: since_seq 0 with the client's name: its answers too ($(grep -c '"ref"' "$T_TMP/deskr.all")), in order"
else
	fail "cti: since_seq 0 with the client's name: its answers too" \
		"$(diff "$T_TMP/desk.all" "$T_TMP/deskr.all" | head -n 4 | tr '\n' '|')"
fi
client_end deskr

# --- attacked by a stranger ------------------------------------------------------------

seq0=$(metric cti_last_seq main)
SEED=${SIPHA_CTI_SEED:-$RANDOM}
info "junk seed $SEED (SIPHA_CTI_SEED=$SEED reproduces it)"
timeout 60 "$CTIJUNK" -n 2000 -S "$SEED" -T 50 "127.0.0.1:${D_CTI[main]}" >"$T_TMP/junk.out"
grep '^#' "$T_TMP/junk.out" | head -n 5
j=$(grep '^JUNK' "$T_TMP/junk.out")
info "$j"
check_eq "cti: 2000 malformed lines each answered with an Error or a close" \
	"$(sed 's/.*sent=\([0-9]*\) errors=\([0-9]*\) closed=\([0-9]*\) other=\([0-9]*\) silent=\([0-9]*\).*/\1 \2 \3 \4 \5/' <<<"$j" |
		awk '{print $1, $2 + $3, $4, $5}')" "2000 2000 0 0"
check_eq "cti: malformed lines are not logged (sipha_cti_last_seq unchanged)" \
	"$(metric cti_last_seq main)" "$seq0"
check_eq "cti: a line over 8192 bytes without newline: Error, then closed" \
	"$(sed 's/.*open_after_long=\([0-9]*\).*/\1/' <<<"$j")" 0
# docs/CTI.md: "A request line is at most 8192 bytes; a longer one gets an
# Error and the connection is closed" (here with its newline, unlike the
# 100 KB lines above): 8192 bytes served, 8193 and 9000 refused and closed.
pad() { printf '%*s' "$1" ''; } # N spaces
for len in 8192 8193 9000; do
	client "long$len" main -c "long$len"
	wait_ev "long$len" '.state == "active"'
	# {"req":"Hello","ref":"L"<spaces>}: 25 bytes and the spaces
	cmd "long$len" "raw 0 {\"req\":\"Hello\",\"ref\":\"L\"$(pad $((len - 25)))}"
	wait_ev "long$len" '.ref == "L" or .event == "Error"' 1 5
	wait_until 1 grep -q '^- [0-9]* closed 0' "$T_TMP/long$len.out"
	got="$(count "long$len" '.ref == "L" and .ok')/$(count "long$len" '.event == "Error"')/$(grep -c '^- [0-9]* closed 0' "$T_TMP/long$len.out")"
	if [ "$len" = 8192 ]; then
		check_eq "cti: a request line of 8192 bytes is served (answers/Errors/closes)" "$got" 1/0/0
	else
		check_eq "cti: a request line of $len bytes: Error, then closed (answers/Errors/closes)" "$got" 0/1/1
	fi
	client_end "long$len"
done
check "cti: siphactl status answers after the junk" _status main
client fresh main -c fresh -m 2000
check "cti: a new client is served after the junk" wait_ev fresh '.state == "active"'
client_end fresh
cmd desk 'req {"req":"Monitor","dn":"1002","ref":"still"}'
check "cti: the desk client is still served" wait_ev desk '.ref == "still"'

client_end router
check_eq "cti: router: every RouteCall answered, no dup, no disorder" \
	"${SUM[routed]:-?}/${SUM[answered]:-?}/${SUM[unanswered]:-?}/${SUM[dups]:-?}/${SUM[disorder]:-?}" \
	"$N/$N/0/0/0"
client_end desk
check_eq "cti: desk: no seq twice, in order, every request answered" \
	"${SUM[dups]:-?}/${SUM[disorder]:-?}/${SUM[unanswered]:-?}" "0/0/0"
stop_siphad main

# ======================================================================================
# tmo: no route in time, 480; a short event log
# ======================================================================================
free_port UAS2 || finish
cti_daemon tmo "$UAS2" route_timeout_ms=600 event_log_ms=1000 || finish
client watch tmo -c watch -m 2000 -m 1001
wait_ev watch '.state == "active"'
uac_start tmo tmo 5 2000 -sf "$SCN/call_uac_refused.xml" -set want 480
sipp_ok "cti: route timeout" tmo 5
wait_ev watch '.event == "Released"' 5 5
check_eq "cti: route timeout: Released \"route timeout\" for each call" \
	"$(count watch '.event == "Released" and .cause == "route timeout"')" 5
check_eq "cti: route timeout: Queued RouteRequest Released, nothing else" \
	"$(evs watch | jq -s -r 'map(select(.call)) | group_by(.call)[] | map(.event) | join(" ")' | sort -u)" \
	"Queued RouteRequest Released"
read -r lo hi < <(lat_ms watch Queued Released)
check "cti: route timeout: each call released route_timeout_ms 600 after Queued ($lo..$hi ms)" \
	test "$lo" -ge 550 -a "$hi" -le 2000
# The log keeps 1 s: after 1.5 s and one more event, since_seq 0 is a gap.
sleep 1.5
cmd watch 'req {"req":"AgentLogin","agent":"b1","dn":"1001"}'
wait_ev watch '.event == "AgentState" and .agent == "b1"'
client gap tmo -c gap -m 1001 --since 0
wait_ev gap '.event == "Error"'
check "cti: since_seq older than the log: Error \"gap: ...\"" has gap '.event == "Error" and (.reason | startswith("gap:"))'
cmd watch 'req {"req":"AgentReady","agent":"b1"}'
wait_ev watch '.event == "AgentState" and .state == "ready"'
sleep 0.2
check_eq "cti: after a gap Error nothing is streamed" "$(count gap '.event == "AgentState"')" 0
cmd gap "hello 0"
wait_ev gap '.state == "active"'
cmd watch 'req {"req":"AgentNotReady","agent":"b1"}'
check "cti: Hello without since_seq goes on from now" \
	wait_ev gap '.event == "AgentState" and .state == "not_ready"' 1 5
client_end gap

# A client that comes back (cut off, say) monitors again, then asks for what
# it missed with Hello {since_seq}.  Its connection is live from the start
# (the node is active), so an event between its Monitor and its Hello
# reaches it live; docs/CTI.md: "a connection never receives the same seq
# twice", so the replay must not bring that one again.
client re tmo -c re -m 1001
wait_ev re '.state == "active"'
s0=$(evs re | jq -r 'select(.client == "re") | .last_seq')
cmd watch 'req {"req":"AgentLogout","agent":"b1"}'
wait_ev re '.event == "AgentState" and .state == "logged_out"'
cmd re "hello 0 $s0"
wait_ev re '.ref == "hello"' 2
sleep 0.2
check_eq "cti: Hello since_seq after events already streamed to the connection: no seq twice" \
	"$(evs re | jq -s -r '[.[] | .seq // empty] | group_by(.) | map(select(length > 1) | "seq \(.[0]) x\(length)") | join(", ")')" ""
# StopMonitor: no more events of that DN.
cmd re 'req {"req":"StopMonitor","dn":"1001","ref":"sm"}'
wait_ev re '.ref == "sm"'
check_eq "cti: StopMonitor answered {ok, dn}" "$(answer re sm | jq -c '[.ok, .dn]')" '[true,"1001"]'
n0=$(count re '.event')
cmd watch 'req {"req":"AgentLogin","agent":"b1","dn":"1001"}'
wait_ev watch '.event == "AgentState" and .state == "not_ready"' 2
sleep 0.2
check_eq "cti: after StopMonitor the DN's events no longer come" "$(count re '.event')" "$n0"
client_end re
client_end watch
stop_siphad tmo

# ======================================================================================
# lim: default route, a client that does not read, max_clients
# ======================================================================================
free_port UAS3 || finish
DN_EXTRA=$(for ((i = 5000; i < 5300; i++)); do echo "$i = extension"; done)
cti_daemon lim "$UAS3" route_timeout_ms=500 default_route=3000 client_queue_max=65536 \
	max_clients=3 || finish
DN_EXTRA=
NF=400
client see lim -c see -m 2000 -m 5000 --ready s1:5000
wait_ev see '.state == "active"'
wait_ev see '.ref and .req == "AgentReady"'
check_eq "cti: --ready: agent s1 logged in and ready on 5000 (siphactl agents)" \
	"$(ctl -n lim --json agents | jq -r '.agents[] | "\(.agent):\(.dn):\(.state)"')" "s1:5000:ready"
uas_start uas3 "$UAS3" $((NF + 5)) -sn uas
uac_start dflt lim 5 2000 -sf "$SCN/call_uac_basic.xml"
sipp_ok "cti: default route" dflt 5
wait_ev see '.event == "Released"' 5 5
check_eq "cti: default route: every call Queued RouteRequest Dialing Ringing? Established Released" \
	"$(call_order see)" ""
read -r lo hi < <(lat_ms see Queued Dialing)
check "cti: default route: each call dialed route_timeout_ms 500 after Queued ($lo..$hi ms)" \
	test "$lo" -ge 450 -a "$hi" -le 2000

# The client that does not read monitors 2000 through NF calls: their
# events (some 550 KB) pass what the kernel holds for it (the server's send
# buffer is 64 KiB, doubled by the kernel, its own receive buffer 4 KiB) and
# client_queue_max: it is cut off, while the other client is served all
# along.
client slow lim -c slow -m 2000 --no-read --rcvbuf 4096
wait_until 5 _metric_ge lim cti_clients 2
uac_start flood lim $NF 2000 -sf "$SCN/call_uac_basic.xml"
sipp_ok "cti: $NF calls while a client does not read" flood $NF
if wait_until 20 _metric_ge lim cti_slow_clients 1; then
	pass "cti: a client that does not read is disconnected (sipha_cti_slow_clients $(metric cti_slow_clients lim))"
else
	fail "cti: a client that does not read is disconnected" "sipha_cti_slow_clients $(metric cti_slow_clients lim)"
fi
sipp_ok "cti: callee of the default route" uas3 $((NF + 5))
check "cti: the reading client got every call through Released" \
	wait_ev see '.event == "Released"' $((NF + 5)) 10
check_eq "cti: the reading client: every call in order" "$(call_order see | head -n 3)" ""
check_eq "cti: slow client gone (sipha_cti_clients)" "$(metric cti_clients lim)" 1

# 256 monitored DNs per connection: the 257th Monitor is refused.
client c2 lim -c c2
wait_ev c2 '.state == "active"'
for ((i = 5000; i < 5257; i++)); do
	cmd c2 "req {\"req\":\"Monitor\",\"dn\":\"$i\",\"ref\":$i}"
done
wait_ev c2 '.ref == 5256'
check_eq "cti: 256 Monitors per connection, the 257th refused (ok/Error)" \
	"$(count c2 '.ok and .dn and .ref >= 5000')/$(count c2 '.ref == 5256 and .event == "Error"')" \
	"256/1"
client c3 lim -c c3
wait_ev c3 '.state == "active"'
refused0=$(metric cti_refused lim)
client c4 lim -c c4
if wait_until 5 grep -q '^- [0-9]* closed 0' "$T_TMP/c4.out"; then
	pass "cti: max_clients 3: a fourth connection is closed at once"
else
	fail "cti: max_clients 3: a fourth connection is closed at once" "$(tail -n 2 "$T_TMP/c4.out" | tr '\n' '|')"
fi
check_eq "cti: max_clients: no Hello answer to the fourth" "$(count c4 '.state')" 0
check_eq "cti: max_clients: the fourth got one Error line before the close" \
	"$(evs c4 | jq -r 'select(.event == "Error") | .reason')" "too many clients (max_clients 3)"
check_eq "cti: max_clients: sipha_cti_refused +1" "$(($(metric cti_refused lim) - refused0))" 1
for c in c2 c3 c4; do client_end "$c"; done
client_end see
# see monitors 2000 and 5000 and is the only client whose requests are
# logged (its --ready ones): every event of lim is filed under one of them
# (no call involves an extension) or is its own answer, so no gap either.
check_eq "cti: the reading client: no gap, no dup, no disorder" \
	"${SUM[gaps]:-?}/${SUM[dups]:-?}/${SUM[disorder]:-?}" "0/0/0"
check "cti: slow client logged as cut off" grep -q "does not read" "$(siphad_log lim)"
stop_siphad lim

finish
