#!/usr/bin/env bash
# siphad against Kamailio on the same sipp flows, side by side in one run,
# on loopback, UDP:
#
#   calls:    sipp UAC -> server -> sipp UAS, INVITE/100/180/200/ACK, held
#             1 s, BYE/200, at CALL_RATE calls/s for CALL_SECONDS seconds
#   register: a new address of record per REGISTER (no authentication), at
#             REG_RATE/s for REG_SECONDS seconds
#
# Kamailio is Debian's package (installed here when /usr/sbin/kamailio is
# missing) with bench/kamailio/kamailio.cfg: one UDP worker (children=1), no
# TCP, tm + rr + dialog + registrar/usrloc in memory, TLSF allocator (-x/-X
# tlsf), errors-only logging.  siphad: one worker, no HA, no XDP, warnings
# only.  Each flow runs on a fresh server; the servers alternate which goes
# first from one repetition to the next.
#
# CPU is the time on CPU (user + system) of ALL of a server's processes and
# threads over the sipp run: Kamailio's main process and every process it
# forked (receiver, timers...), siphad's one process with all its threads
# (from /proc/PID/task/*/schedstat, ns precision).  Printed: per run, then
# medians over the repetitions and the ratio siphad / Kamailio in requests
# per CPU-second (Kamailio's CPU per 1,000 over siphad's).
#
#   bench/vs-kamailio.sh [REPEATS] [CALL_RATE] [CALL_SECONDS] [REG_RATE] [REG_SECONDS]
#
# Defaults 3 1000 5 10000 3: about a minute.  Bounded: every
# sipp run has -m, -timeout and runs under timeout(1).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

runs=${1:-3}
crate=${2:-1000}
csecs=${3:-5}
rrate=${4:-10000}
rsecs=${5:-3}

flows_init vskam 36000

# run_flow SERVER FLOW REP: one sipp run against a fresh SERVER; appends
# "flow server rep offered_rate ok failed retrans cpu_ns wall_s processes"
# to results and prints the run's row.
run_flow() {
	local server=$1 flow=$2 rep=$3 rate=$rrate n=$((rrate * rsecs)) c0 c1 w0 w1 ok bad re wall
	if [ "$flow" = calls ]; then rate=$crate n=$((crate * csecs)); fi
	start_server "$server"
	c0=$(cpu_ns "${procs[@]}")
	w0=$(date +%s.%N)
	sipp_flow "$flow" "$rate" $n $sport $cport run.stat
	w1=$(date +%s.%N)
	c1=$(cpu_ns "${procs[@]}")
	read -r ok bad re < <(sipp_stat "$dir/run.stat" 'SuccessfulCall(C)' 'FailedCall(C)' 'Retransmissions(C)')
	stop_server
	wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", b - a }')
	echo "$flow $server $rep $rate $ok $bad $re $((c1 - c0)) $wall ${#procs[@]}" >>"$dir/results"
	awk -v f="$flow" -v s="$server" -v r="$rep" -v rate="$rate" -v ok="$ok" -v bad="$bad" -v re="$re" \
		-v ns=$((c1 - c0)) -v np=${#procs[@]} -v wall="$wall" 'BEGIN {
			printf "| %d | %s | %s | %d | %s | %d | %d | %d | %d | %.3f | %s |\n", r, f, s, rate, wall, ok, bad,
				re, np, ns / 1e9, (ok > 0 ? sprintf("%.4f", ns / 1e9 / ok * 1000) : "-") }'
}

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kamailio: $(/usr/sbin/kamailio -v 2>/dev/null | head -n 1)"
echo "command: bench/vs-kamailio.sh $runs $crate $csecs $rrate $rsecs ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "| run | flow | server | offered /s | sipp s | completed | failed | retrans | processes | CPU-s | CPU-s per 1000 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for ((rep = 1; rep <= runs; rep++)); do
	if ((rep % 2)); then order="kamailio siphad"; else order="siphad kamailio"; fi
	for flow in calls register; do
		for server in $order; do run_flow "$server" "$flow" "$rep"; done
	done
done

# medians per flow and server, and of the per-run ratios; a run is clean
# when no call failed and under 1% of requests were retransmitted (both
# servers' runs of a repetition must be, for its ratio to be clean)
echo
echo "| flow | offered /s | Kamailio CPU-s per 1000 | siphad CPU-s per 1000 | siphad ÷ Kamailio (requests per CPU-s) | runs' ratios | clean runs' ratio | target |"
echo "|---|---|---|---|---|---|---|---|"
awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$5 > 0 {
		per[$1, $2, $3] = $8 / 1e9 / $5 * 1000; rate[$1] = $4; reps[$3] = 1
		clean[$1, $2, $3] = $6 == 0 && $7 * 100 < $5
	}
	END {
		split("calls register", flows, " ")
		for (fi = 1; fi <= 2; fi++) {
			f = flows[fi]; nk = ns = nr = nc = 0; lo = 1e9; hi = 0
			for (r in reps) {
				if ((f, "kamailio", r) in per) k[++nk] = per[f, "kamailio", r]
				if ((f, "siphad", r) in per) s[++ns] = per[f, "siphad", r]
				if ((f, "kamailio", r) in per && (f, "siphad", r) in per) {
					x = per[f, "kamailio", r] / per[f, "siphad", r]
					q[++nr] = x; if (x < lo) lo = x; if (x > hi) hi = x
					if (clean[f, "kamailio", r] && clean[f, "siphad", r]) c[++nc] = x
				}
			}
			if (!nk || !ns) { printf "| %s | - | - | - | - | - | - | 1.5× |\n", f; continue }
			mk = median(k, nk); ms = median(s, ns)
			printf "| %s | %d | %.4f | %.4f | **%.2f×** | %.2f–%.2f (median %.2f) | %s | 1.5× |\n",
				f, rate[f], mk, ms, mk / ms, lo, hi, median(q, nr),
				nc ? sprintf("%.2f× (%d of %d)", median(c, nc), nc, nr) : "none clean"
			delete k; delete s; delete q; delete c
		}
	}' "$dir/results"
echo
echo "CPU counts every process of each server: Kamailio $(awk '$2 == "kamailio" { print $10; exit }' "$dir/results") (main + forked children), siphad 1 (all threads)."
