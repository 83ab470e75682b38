#!/usr/bin/env bash
# Soak: does a hot pair under steady load keep its memory and descriptors
# flat?  A hot pair (a primary, b backup) in network namespaces, the
# integration harness's (tests/integration/lib.sh: ha_lan, ha_conf,
# ha_start_pair), with for DURATION seconds:
#
#   - calls: sipp in namespace c through the VIP, RATE new calls a second,
#     each held HOLD_S seconds (RATE × HOLD_S up at once), answered by a
#     sipp callee in c (DN 3000);
#   - registrations: sipp registering users 1..2000 in turn, 20 a second,
#     Expires 60: each user comes back every 100 s, so its binding is made,
#     refreshed or expired and made again (about 1,200 bound at any time);
#   - a `siphactl switchover` on the active node every SWITCH_S seconds;
#   - every 10 s, for both siphad: RSS (VmRSS), open descriptors
#     (/proc/PID/fd), sipha_heap_bytes, calls and bindings.
#
#   bench/soak.sh [DURATION] [RATE] [HOLD_S] [SWITCH_S]
#   bench/soak.sh 3600 100 10 180        (the default: an hour)
#
# The rule (exit 1 on growth, 2 when too short to judge): warm-up is the
# first max(DURATION / 10, 2 × SWITCH_S + 30) seconds, so that both nodes
# have been active and standby at least once (a node's RSS rises to the
# high-water mark of the role it holds, and glibc keeps it; judging before
# that would take a first turn as active for a leak).  Of the samples after
# it, the first quarter is the baseline and the last quarter the end.  For
# each node, RSS and open descriptors: the median of the end more than 10%
# above the median of the baseline is growth, and the run fails.  The heap
# in use is shown beside (not judged: it follows the calls and transactions
# up at the moment of the sample).
#
# Prints the machine, the date, the command, and one Markdown row per node.
# Both siphad are stopped with SIGTERM at the end (with SIPHAD=
# build/siphad-san, a sanitizer's leak report is printed).  Environment:
#   SOAK_CSV=FILE      keeps the samples (t_s,node,state,rss_kb,fds,
#                      heap_bytes,calls,bindings,smalloc_pool_bytes,
#                      cti_events: the CTI event log's length)
#   SOAK_SMAPS=DIR     keeps each siphad's /proc/PID/smaps and metrics at
#                      every sample (DIR/NODE.T_S, DIR/NODE.T_S.metrics)
#   SOAK_EVENT_LOG_MAX=N  adds [cti] with event_log_max = N (the CTI event
#                      log's bound by count; without [cti] its age bounds it)
# Bounded: every sipp has -m and -timeout, every wait a time-out,
# everything started is killed by PID on exit (lib.sh).
set -u
cd "$(dirname "$0")/.." || exit 2
. tests/integration/lib.sh
require_root
require_bin "$SIPHAD" "$SIPHACTL"
require_cmd sipp jq

T_NAME=soak
DURATION=${1:-3600}
RATE=${2:-100}
HOLD=${3:-10}
SWITCH=${4:-180}
for v in "$DURATION" "$RATE" "$HOLD" "$SWITCH"; do
	if [[ ! $v =~ ^[1-9][0-9]*$ ]]; then
		echo "usage: bench/soak.sh [DURATION] [RATE] [HOLD_S] [SWITCH_S] (whole numbers > 0)" >&2
		exit 2
	fi
done
SAMPLE=10
USERS=2000
REG_RATE=20
SCN=$PWD/tests/integration/scenarios
VIP=$HA_VIP
CSV=$T_TMP/samples.csv

ha_lan || exit 1
addr_add a eth0 10.99.0.1/24 && addr_add b eth0 10.99.0.2/24 && addr_add c eth0 10.99.0.10/24 ||
	exit 1
ha_conf "$T_TMP/a.conf" "soa-$$" primary 10.99.0.1 10.99.0.2 hot
ha_conf "$T_TMP/b.conf" "sob-$$" backup 10.99.0.2 10.99.0.1 hot
sed -i 's/^log_level = .*/log_level = warn/' "$T_TMP/a.conf" "$T_TMP/b.conf"
if [ -n "${SOAK_EVENT_LOG_MAX:-}" ]; then
	for n in a b; do
		printf '[cti]\nlisten = 10.99.0.%s:3000\nevent_log_max = %s\n' \
			"$([ $n = a ] && echo 1 || echo 2)" "$SOAK_EVENT_LOG_MAX" >>"$T_TMP/$n.conf"
	done
fi
ha_start_pair soak || exit 1

# --- load -------------------------------------------------------------------------------
{
	echo SEQUENTIAL
	seq 1 $USERS | sed 's/$/;/'
} >"$T_TMP/users.csv"
C_NS=$(ns_name c)
(cd "$T_TMP" && exec ip netns exec "$C_NS" sipp -sn uas -i 10.99.0.10 -p 5070 -nostdin \
	-timeout $((DURATION + HOLD + 120)) >/dev/null 2>&1) &
T_PIDS+=("$!")
(cd "$T_TMP" && exec ip netns exec "$C_NS" sipp "$VIP:5060" -sn uac -s 3000 -i 10.99.0.10 -p 5073 \
	-m $((RATE * DURATION)) -r "$RATE" -d $((HOLD * 1000)) -l $((RATE * HOLD * 2)) -nostdin \
	-timeout $((DURATION + HOLD + 60)) -trace_stat -fd 10 -stf calls.csv >/dev/null 2>&1) &
UAC=$!
T_PIDS+=("$UAC")
(cd "$T_TMP" && exec ip netns exec "$C_NS" sipp "$VIP:5060" -sf "$SCN/register.xml" -inf "$T_TMP/users.csv" \
	-key expires 60 -key cparam ";x=y" -i 10.99.0.10 -p 5075 -m $((REG_RATE * DURATION)) \
	-r $REG_RATE -nostdin -timeout $((DURATION + 60)) -trace_stat -fd 10 -stf regs.csv \
	>/dev/null 2>&1) &
REG=$!
T_PIDS+=("$REG")

# --- samples ----------------------------------------------------------------------------
sample() { # T NODE
	local f=$T_TMP/.m.$2 pid rss fds
	pid=$(siphad_pid "$2")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return
	fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	metrics_snapshot "$f" "$2" 2>/dev/null || return
	echo "$1,$2,$(state_of "$2"),$rss,$fds,$(metric_from "$f" heap_bytes),$(metric_from "$f" calls),$(metric_from "$f" registrations),$(metric_from "$f" smalloc_pool_bytes),$(metric_from "$f" cti_event_log)" >>"$CSV"
	[ -n "${SOAK_SMAPS:-}" ] && cp "/proc/$pid/smaps" "$SOAK_SMAPS/$2.$1" 2>/dev/null &&
		cp "$f" "$SOAK_SMAPS/$2.$1.metrics"
}

active_node() {
	local n
	for n in a b; do [ "$(state_of $n)" = active ] && echo $n && return; done
}

# switchover: the active node hands over; waits (30 s at most) for the other
# to be active and the old one a standby in sync again.
switchovers=0 switch_fails=0
switchover() {
	local from to
	from=$(active_node)
	[ -n "$from" ] || { switch_fails=$((switch_fails + 1)); return; }
	to=$([ "$from" = a ] && echo b || echo a)
	if ctl -n "$from" switchover >/dev/null 2>&1 && wait_until 30 field_is "$to" state active &&
		wait_until 30 field_is "$from" in_sync true; then
		switchovers=$((switchovers + 1))
	else
		switch_fails=$((switch_fails + 1))
		info "switchover $from -> $to: a $(state_of a), b $(state_of b)"
	fi
}

echo "t_s,node,state,rss_kb,fds,heap_bytes,calls,bindings,smalloc_pool_bytes,cti_events" >"$CSV"
start=$SECONDS
next_switch=$SWITCH
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
	t=$((SECONDS - start))
	sample "$t" a
	sample "$t" b
	if [ "$t" -ge "$next_switch" ]; then
		switchover
		next_switch=$((next_switch + SWITCH))
	fi
	sleep $((SAMPLE - (SECONDS - start - t) % SAMPLE))
done
[ -n "${SOAK_CSV:-}" ] && cp "$CSV" "$SOAK_CSV"
# Both stop by themselves (-m) a little after DURATION: their last
# statistics are then written.
for p in "$UAC" "$REG"; do
	if ! wait_pid "$p" $((HOLD + 60)); then
		kill -TERM "$p" 2>/dev/null
		wait_pid "$p" 10
	fi
done
# Both stopped by SIGTERM (the standby first): with SIPHAD=build/siphad-san
# a leak report of AddressSanitizer at exit is printed here.
for n in b a; do
	stop_siphad "$n" >/dev/null
	san=$(grep -A 12 -E 'ERROR: (Address|Leak)Sanitizer|SUMMARY: ' "$(siphad_log "$n")" | head -n 40)
	[ -n "$san" ] && echo "siphad $n sanitizer report:" && echo "$san"
done
calls_ok=$(stat_of "$T_TMP/calls.csv" 'SuccessfulCall(C)')
calls_bad=$(stat_of "$T_TMP/calls.csv" 'FailedCall(C)')
regs_ok=$(stat_of "$T_TMP/regs.csv" 'SuccessfulCall(C)')
regs_bad=$(stat_of "$T_TMP/regs.csv" 'FailedCall(C)')

# --- the verdict --------------------------------------------------------------------------
WARM=$((DURATION / 10))
[ $((2 * SWITCH + 30)) -gt "$WARM" ] && WARM=$((2 * SWITCH + 30))
# judge NODE COLUMN: "base end pct" of one column (medians, see the header).
judge() {
	awk -F, -v n="$1" -v col="$2" -v warm="$WARM" -v dur="$DURATION" '
		function median(a, k,   i, j, t) {
			for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		NR > 1 && $2 == n && $1 >= warm { t[++m] = $1; v[m] = $col }
		END {
			q = (dur - warm) / 4
			for (i = 1; i <= m; i++) {
				if (t[i] < warm + q) b[++nb] = v[i]
				if (t[i] >= dur - q) e[++ne] = v[i]
			}
			if (!nb || !ne) { print "? ? ?"; exit }
			mb = median(b, nb); me = median(e, ne)
			printf "%.0f %.0f %.1f\n", mb, me, mb ? 100 * (me - mb) / mb : 0
		}' "$CSV"
}

echo "machine: $(nproc) CPUs, $(uname -r), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); date: $(date -u +%F)"
echo "command: bench/soak.sh $DURATION $RATE $HOLD $SWITCH (warm-up ${WARM} s, samples every ${SAMPLE} s)"
echo "calls ok/failed: $calls_ok/$calls_bad; registrations ok/failed: $regs_ok/$regs_bad; switchovers: $switchovers (failed: $switch_fails)"
echo "| node | RSS MB: baseline → end | open fds: baseline → end | heap in use MB: baseline → end | CTI event log: baseline → end | verdict |"
echo "|---|---|---|---|---|---|"
# mb VALUE [UNIT]: VALUE (kB, or UNIT bytes) in MB, "?" stays.
mb() { awk -v k="$1" -v u="${2:-1024}" 'BEGIN { if (k == "?") print "?"; else printf "%.1f", k / u }'; }
grew=0
for n in a b; do
	read -r rb re rp <<<"$(judge $n 4)"
	read -r fb fe fp <<<"$(judge $n 5)"
	read -r hb he hp <<<"$(judge $n 6)"
	read -r eb ee _ <<<"$(judge $n 10)"
	v=flat
	for p in "$rp" "$fp"; do
		if [ "$p" = "?" ]; then
			v="not judged: too few samples after the warm-up"
			[ "$grew" = 0 ] && grew=2
		elif awk -v p="$p" 'BEGIN { exit !(p > 10) }'; then
			v=GROWTH
			grew=1
		fi
	done
	echo "| $n | $(mb "$rb") → $(mb "$re") (${rp}%) | $fb → $fe (${fp}%) | $(mb "$hb" 1048576) → $(mb "$he" 1048576) (${hp}%) | $eb → $ee | $v |"
done
# 0 flat, 1 growth (or a switchover that failed), 2 too short to judge.
[ "$switch_fails" -eq 0 ] || grew=1
exit $grew
