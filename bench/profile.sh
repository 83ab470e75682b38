#!/usr/bin/env bash
# Where a server's CPU goes, per flow: siphad (one worker, no HA, no XDP),
# or Kamailio with PROF_SERVER=kamailio (bench/kamailio/kamailio.cfg, all its
# processes), under `perf record -g` attached to it during the flows of
# bench/vs-kamailio.sh, on loopback, UDP:
#
#   calls:    sipp UAC -> server -> sipp UAS, INVITE/100/180/200/ACK, held
#             1 s, BYE/200, at CALL_RATE calls/s for CALL_SECONDS seconds
#   register: a new address of record per REGISTER, at REG_RATE/s for
#             REG_SECONDS seconds
#
# Prints per flow: the server's CPU per REGISTER or call (schedstat; perf
# attached raises it by about a quarter on this VM: read the shares), the
# self time by DSO (the server's own code, libosip2, libc, kernel, each
# other library) in per cent and in µs per REGISTER or call, and the top
# symbols by self time of the first four.  perf samples cpu-clock (no
# hardware counters in this VM).  Kernel time on loopback is shared
# oddly: a datagram the server sends is delivered to sipp's socket in the
# server's context, one sipp sends is delivered in sipp's.
#
#   bench/profile.sh [CALL_RATE] [CALL_SECONDS] [REG_RATE] [REG_SECONDS] [TOP]
#
# Defaults 1000 5 10000 3 8: about 20 s.  PERF_KEEP=DIR keeps the perf.data
# files there (perf report -i DIR/siphad-calls.data).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

crate=${1:-1000}
csecs=${2:-5}
rrate=${3:-10000}
rsecs=${4:-3}
top=${5:-8}
server=${PROF_SERVER:-siphad}

command -v perf >/dev/null || {
	echo "perf is not installed (make deps)" >&2
	exit 1
}
flows_init profile 38000

# profile FLOW RATE COUNT: a fresh server, perf attached to all its
# processes for the sipp run.
profile() {
	local flow=$1 rate=$2 n=$3 perf c0 c1 ok bad re data=$dir/$1.data
	start_server "$server"
	perf record -q -g -p "$(IFS=,; echo "${procs[*]}")" -o "$data" >/dev/null 2>"$dir/perf.log" &
	perf=$!
	pids+=("$perf")
	sleep 0.5
	c0=$(cpu_ns "${procs[@]}")
	sipp_flow "$flow" "$rate" "$n" $sport $cport run.stat
	c1=$(cpu_ns "${procs[@]}")
	kill -INT $perf
	wait $perf || true
	stop_server
	read -r ok bad re < <(sipp_stat "$dir/run.stat" 'SuccessfulCall(C)' 'FailedCall(C)' 'Retransmissions(C)')
	[ "$ok" -gt 0 ] || {
		echo "$flow: nothing completed" >&2
		exit 1
	}
	report "$flow" "$rate" "$ok" "$bad" "$re" $((c1 - c0)) "$data"
	[ -z "${PERF_KEEP:-}" ] || cp "$data" "$PERF_KEEP/$server-$flow.data"
}

# report FLOW RATE OK FAILED RETRANS CPU_NS DATA: the Markdown of one flow:
# self time by DSO group, then each group's top symbols.
report() {
	local flow=$1 ok=$3 us unit=REGISTER
	[ "$flow" = register ] || unit=call
	us=$(awk -v ns="$6" -v ok="$ok" 'BEGIN { printf "%.1f", ns / 1e3 / ok }')
	echo "### $server, $flow at $2/s: $ok completed, $4 failed, $5 retransmissions; $us CPU-µs per $unit (perf attached)"
	echo
	echo "| DSO | self % | µs per $unit |"
	echo "|---|---|---|"
	perf report -i "$7" --stdio --no-children --sort dso -g none 2>/dev/null |
		awk -v us="$us" -v server="$server" "$dso_group"'
			/^ *[0-9.]+%/ {
				p = $1; sub(/%/, "", p); g = group($2); s[g] += p
				if (g == "other") { od[++n] = $2; op[n] = p }
			}
			END {
				split("server libosip2 libc kernel", o, " ")
				for (i = 1; i <= 4; i++) printf "| %s | %.1f | %.2f |\n", label(o[i]), s[o[i]], s[o[i]] * us / 100
				for (i = 1; i <= n; i++) printf "| %s | %.1f | %.2f |\n", od[i], op[i], op[i] * us / 100
			}'
	echo
	echo "Top $top symbols of each of the four by self time (per cent of all the server's samples):"
	echo
	echo "| DSO | self % | symbol |"
	echo "|---|---|---|"
	perf report -i "$7" --stdio --no-children --sort dso,sym -g none 2>/dev/null |
		awk -v top="$top" -v server="$server" "$dso_group"'
			/^ *[0-9.]+%/ {
				g = group($2); if (g == "other" || n[g]++ >= top) next
				p = $1; $1 = $2 = $3 = ""; sub(/^ +/, "")
				line[g] = line[g] sprintf("| %s | %s | `%s` |\n", label(g), p, $0)
			}
			END { printf "%s%s%s%s", line["server"], line["libosip2"], line["libc"], line["kernel"] }'
	echo
}

# dso_group: awk functions naming the group of a DSO, and a group's label
# ("server": siphad, or Kamailio's binary and its modules, tm.so...)
dso_group='function group(d) {
	if (d ~ /kernel/) return "kernel"
	if (d ~ /^libc[.-]/) return "libc"
	if (d ~ /osip/) return "libosip2"
	if (d == "siphad" || d == "kamailio" || (d ~ /[.]so$/ && d !~ /^lib/)) return "server"
	return "other"
}
function label(g) {
	if (g != "server") return g
	return server == "siphad" ? "siphad" : "kamailio (core and modules)"
}'

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/profile.sh $crate $csecs $rrate $rsecs $top ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
profile register "$rrate" $((rrate * rsecs))
profile calls "$crate" $((crate * csecs))
