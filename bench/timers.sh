#!/usr/bin/env bash
# The timer wheel at a million pending timers: how long one timer_run()
# takes, the clock advanced 1 ms at a time (tests/tools/timerbench), for the
# old cascading wheel and the current one side by side, in one run.
#
#   bench/timers.sh [MINUTES]      (default: 60 simulated minutes of the mix)
#
# Scenarios (see tests/tools/timerbench.c): "mix", 1,000,000 timers kept
# pending (10 ms heartbeats, SIP timers of 0.5–32 s with churn,
# registrations up to an hour), and "storm", 1,000,000 registrations armed
# at once for one second an hour later, run until all have fired.
#
# Each scenario runs twice in a row with the same seed and each run counts
# with the lower of its two times (PASSES=N for more), which keeps most of
# the machine's hiccups out.  CPU time is the thread's (reading that clock
# adds about 0.5 µs to each CPU figure); wall time around it.
# The old wheel is built from git (OLD_REF, default the last commit with the
# cascading wheel) into the same benchmark program.  TIMERS=N changes the
# count.  Prints the machine, the command, a Markdown table and the raw
# lines.  No root, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
timers=${TIMERS:-1000000}
passes=${PASSES:-2}
old_ref=${OLD_REF:-07303e1dfbd6ff3bc7c94102375d827652745caf}
new=build/tests/tools/timerbench
make -s "$new"
dir=$(mktemp -d /tmp/sipha-timers.XXXXXX)
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/old/core"
git show "$old_ref:userspace/core/timer.h" >"$dir/old/core/timer.h"
git show "$old_ref:userspace/core/timer.c" >"$dir/old/core/timer.c"
# The same program, its "core/timer.h" and timer.c the old ones.
${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -DTIMERBENCH_WHEEL='"cascading"' \
	-I"$dir/old" -Iuserspace tests/tools/timerbench.c "$dir/old/core/timer.c" -o "$dir/old/timerbench"

cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/timers.sh $minutes (TIMERS=$timers PASSES=$passes, old wheel from ${old_ref:0:7}; $(date +%F))"
echo

for sc in mix storm; do
	m=()
	[ "$sc" = storm ] || m=(-m "$minutes")
	"$dir/old/timerbench" -n "$timers" -p "$passes" "${m[@]}" "$sc" >"$dir/out-old-$sc"
	"$new" -n "$timers" -p "$passes" "${m[@]}" "$sc" >"$dir/out-new-$sc"
done

echo "| scenario | wheel | runs (1 ms each) | fired | CPU µs per run: max / p99.9 / p99 / median | runs over 1 ms CPU | wall µs per run: max / p99.9 / mean | runs over 1 ms wall | timer_next() CPU max µs |"
echo "|---|---|---|---|---|---|---|---|---|"
for sc in mix storm; do
	for w in old new; do
		awk '{
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=")
				v[kv[1]] = kv[2]
			}
			printf "| %s | %s | %d | %d | %.0f / %.1f / %.1f / %.1f | %d | %.0f / %.1f / %.2f | %d | %.1f |\n",
				v["scenario"], v["wheel"], v["ticks"], v["fired"], v["cpu_max_us"],
				v["cpu_p999_us"], v["cpu_p99_us"], v["cpu_p50_us"], v["cpu_over_1ms"],
				v["run_max_us"], v["run_p999_us"], v["run_mean_us"], v["run_over_1ms"],
				v["next_cpu_max_us"]
		}' "$dir/out-$w-$sc"
	done
done
echo
for sc in mix storm; do
	paste -d' ' "$dir/out-old-$sc" "$dir/out-new-$sc" | awk -v sc="$sc" '{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "wheel")
				w = kv[2]
			v[w, kv[1]] = kv[2]
		}
		printf "%s: old/new, CPU per run: max %.1fx, p99.9 %.1fx, median %.2fx; wall per run: mean %.2fx\n", sc,
			v["cascading", "cpu_max_us"] / v["current", "cpu_max_us"],
			v["cascading", "cpu_p999_us"] / v["current", "cpu_p999_us"],
			v["cascading", "cpu_p50_us"] / v["current", "cpu_p50_us"],
			v["cascading", "run_mean_us"] / v["current", "run_mean_us"]
	}'
done
echo
for sc in mix storm; do
	for w in old new; do
		echo "raw: $(cat "$dir/out-$w-$sc")"
	done
done
