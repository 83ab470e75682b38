#!/usr/bin/env bash
# What hot standby costs at scale, in one process (tests/tools/hascale): N
# calls (half established, half ringing) on an active core, the snapshot of
# them encoded in slices as ha/feed.c does (the longest slice is the stall of
# one pacer tick), applied on a standby core, and the standby's takeover
# (calls_take_over) of the ringing half, a slice at once and the rest a
# slice per tick; heap per replicated call.  No network, no root: two sipha
# cores driven through srv_rx().
#
#   bench/hascale.sh [N...]        (default: 1000 10000 100000)
#
# Prints the machine, the command and a Markdown table (medians of three
# runs of each phase; the longest slice and tick are the longest of all
# three), then the raw lines.  Then, unless CALLGRIND=0, one run of
# `hascale 1000` under valgrind --tool=callgrind, with instructions per call
# for each phase.  HASCALE=path uses that binary instead of
# building build/tests/tools/hascale.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HASCALE:-build/tests/tools/hascale}
[ -n "${HASCALE:-}" ] || make -s "$bin"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
dir=$(mktemp -d /tmp/sipha-hascale.XXXXXX)
trap 'rm -rf "$dir"' EXIT

cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
echo "command: bench/hascale.sh ${sizes[*]} ($(date +%F))"
echo
echo "| calls (established + ringing) | snapshot MB | bytes/call est / ring | encode µs/call est / ring | snapshot start ms (calls_hold_all) | slices (objects each) | one slice ms: longest / median | all slices ms | apply ms (µs/call est / ring) | takeover ms: at once / all (slices, longest tick ms) | µs per resumed call | standby heap B/call est / ring / + per resumed | default max_transactions: resumed / released |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
	"$bin" "$n" >"$dir/out-$n"
	awk '{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			v[kv[1]] = kv[2]
		}
		# What delays the first answer, then all of it over the ticks.
		tko = sprintf("%.1f / %.1f (%d, %.2f)", v["takeover_ms"], v["resume_ms"],
			      v["resume_ticks"] + 1, v["resume_tick_max_ms"])
		printf "| %d (%d + %d) | %.1f | %d / %d | %.2f / %.2f | %.2f | %d (%.0f) | %.2f / %.2f | %.1f | %.1f (%.2f / %.2f) | %s | %.1f | %d / %d / %d | %d / %d |\n",
			v["N"], v["est"], v["ring"], v["snap_bytes"] / 1e6, v["bytes_est"],
			v["bytes_ring"], v["encode_est_us"], v["encode_ring_us"], v["hold_ms"],
			v["slices"], v["slice_objs"], v["slice_max_ms"], v["slice_med_ms"],
			v["slices_ms"], v["apply_ms"], v["apply_est_us"], v["apply_ring_us"], tko,
			v["takeover_us"], v["heap_est"], v["heap_ring"], v["heap_resumed"],
			v["default_cap_resumed"], v["default_cap_dropped"]
	}' "$dir/out-$n"
done
echo
for n in "${sizes[@]}"; do
	echo "raw: $(cat "$dir/out-$n")"
done

[ "${CALLGRIND:-1}" != 0 ] || exit 0
echo
if ! command -v valgrind >/dev/null; then
	echo "callgrind: skipped (no valgrind)"
	exit 0
fi
valgrind --tool=callgrind --callgrind-out-file="$dir/cg" "$bin" 1000 >"$dir/cg-line" 2>"$dir/cg-log"
if ! compgen -G "$dir/cg.*" >/dev/null; then
	echo "callgrind: skipped (hascale was built without <valgrind/callgrind.h>)"
	exit 0
fi
echo "callgrind: valgrind --tool=callgrind $bin 1000 (first repetition of each phase)"
echo
echo "| phase | instructions | per call |"
echo "|---|---|---|"
for f in "$dir"/cg.*; do
	printf '%s %s\n' "$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")" \
		"$(sed -n 's/^summary: //p' "$f")"
done | awk -v line="$(cat "$dir/cg-line")" '
	BEGIN {
		n = split(line, f, " ")
		for (i = 1; i <= n; i++) {
			split(f[i], kv, "=")
			v[kv[1]] = kv[2]
		}
		per["encode_est"] = v["est"]; what["encode_est"] = "encode, established"
		per["encode_ring"] = v["ring"]; what["encode_ring"] = "encode, ringing"
		per["slices"] = v["N"] + 1; what["slices"] = "snapshot in slices, with the hand-on (per object)"
		per["apply_est"] = v["est"]; what["apply_est"] = "apply, established"
		per["apply_ring"] = v["ring"]; what["apply_ring"] = "apply, ringing"
		per["takeover"] = v["resumed"]; what["takeover"] = "takeover (per resumed call)"
		order = "encode_est encode_ring slices apply_est apply_ring takeover"
	}
	{ ir[$1] = $2 }
	END {
		n = split(order, o, " ")
		for (i = 1; i <= n; i++)
			if (o[i] in ir)
				printf "| %s | %d | %d |\n", what[o[i]], ir[o[i]], ir[o[i]] / per[o[i]]
	}'
