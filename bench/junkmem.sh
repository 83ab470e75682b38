#!/usr/bin/env bash
# Does the memory that malformed datagrams cost come back?  One siphad on
# loopback gets ROUNDS rounds of COUNT malformed datagrams (sipjunk, every
# kind, 2,000 a second; the requests among them make server transactions
# that live 64*T1 = 32 s), and after each round waits WAIT_S seconds, past
# the transactions' end.  Printed per moment: RSS (VmRSS), the heap in use
# (sipha_heap_bytes: glibc's mallinfo2 uordblks plus libosip2's blocks in
# core/smalloc), the smalloc pool (sipha_smalloc_pool_bytes, never given
# back), the resident part of the datagram receive buffers (core/loop.c:
# 256 provided buffers of 64 KiB, one malloc of 16.4 MB that the kernel
# fills page by page as datagrams land in it; shown as the resident part
# of the mapping that holds them, the smallest anonymous one of 16.4 MB to
# 1 GB in /proc/PID/smaps, which the kernel may have merged with a
# neighbour) and live transactions.
#
#   bench/junkmem.sh [COUNT] [ROUNDS] [WAIT_S]      (default 20000 2 40)
#
# A leak shows as heap_bytes that stays up after the wait, and grows again
# each round; memory that the allocators keep for reuse shows as RSS that
# stays up once but does not grow in the next round.  SIPHAD=... to measure
# another build (default build/siphad, not the sanitizer one).
set -u
cd "$(dirname "$0")/.." || exit 2
export SIPHAD=${SIPHAD:-$PWD/build/siphad}
. tests/integration/lib.sh
require_bin "$SIPHAD" "$SIPHACTL" "$SIPJUNK"

COUNT=${1:-20000}
ROUNDS=${2:-2}
WAIT=${3:-40}
free_port PORT || finish
write_config "$T_TMP/junk.ini" "$PORT" junkmem
sed -i 's/^state_dir = .*/&\nlog_level = warn/' "$T_TMP/junk.ini"
start_siphad "$T_TMP/junk.ini" || finish

# bufs_kb: the resident kB of the mapping that holds the datagram buffers
# (see above), or "?".
bufs_kb() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { anon = NF == 5 }
		/^Size:/ { size = $2 }
		/^Rss:/ && anon && size >= 16436 && size < 1048576 && (!best || size < best) {
			best = size; rss = $2 }
		END { print best ? rss : "?" }' "/proc/$(siphad_pid)/smaps"
}

row() { # LABEL
	local f=$T_TMP/.m
	metrics_snapshot "$f"
	awk -v l="$1" -v rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$(siphad_pid)/status")" \
		-v heap="$(metric_from "$f" heap_bytes)" -v pool="$(metric_from "$f" smalloc_pool_bytes)" \
		-v bufs="$(bufs_kb)" -v txn="$(metric_from "$f" transactions)" 'BEGIN {
		printf "| %s | %.1f | %.1f | %.1f | %s | %s |\n", l, rss / 1024, heap / 1048576,
			pool / 1048576, bufs == "?" ? "?" : sprintf("%.1f", bufs / 1024), txn }'
}

echo "machine: $(nproc) CPUs, $(uname -r); $(date -u +%F); command: bench/junkmem.sh $COUNT $ROUNDS $WAIT"
echo "| moment | RSS MB | heap in use MB | smalloc pool MB | datagram buffers resident MB | transactions |"
echo "|---|---|---|---|---|---|"
row "idle"
for r in $(seq "$ROUNDS"); do
	"$SIPJUNK" -n "$COUNT" -s "$r" -r 2000 -w 300 -T 120 "127.0.0.1:$PORT" >"$T_TMP/junk$r.out" 2>&1 ||
		info "sipjunk round $r: exit $?"
	row "round $r: right after $COUNT datagrams"
	sleep "$WAIT"
	row "round $r: $WAIT s later"
done
stop_siphad >/dev/null
