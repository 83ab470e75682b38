#!/usr/bin/env bash
# Call set-up latency (INVITE sent -> 200 received) through siphad and
# through Kamailio at the same rate, measured by sipha-load and drawn with
# gnuplot into docs/img/setup_latency.png:
#
#   sipha-load --uac -> server -> sipha-load --uas, UDP on loopback,
#   INVITE/100/180/200/ACK, held HOLD_MS, BYE/200, RATE calls/s for
#   SECONDS seconds, each server fresh, one after the other.
#
# Both sipha-load processes run with --tick-us 0 (each datagram handled as
# it comes), so that neither adds its batching tick to the time measured;
# the caller takes each 200's time from the kernel's receive timestamp.
# The servers are those of bench/vs-kamailio.sh: siphad with one worker, no
# HA, no XDP; Kamailio (Debian's package, installed when missing) with
# bench/kamailio/kamailio.cfg (tm, rr, dialog, one UDP worker).  Kamailio
# record-routes: the caller sends its ACK and BYE along the route set.
#
# The plot: the distribution function of the set-up times of each server
# (fraction of calls set up within x microseconds, x on a log scale), from
# the histograms sipha-load writes with --hist (index 0, set-up).  The
# script prints the percentiles of each run (sipha-load --json) as Markdown
# for docs/BENCHMARKS.md.  gnuplot (gnuplot-nox) is installed when missing.
#
#   bench/plot_setup.sh [RATE] [SECONDS] [HOLD_MS] [PNG]
#
# Defaults 1000 10 1000 docs/img/setup_latency.png: about 40 s.  Bounded:
# every sipha-load run has -m and runs under timeout(1).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rate=${1:-1000}
secs=${2:-10}
hold=${3:-1000}
png=${4:-docs/img/setup_latency.png}
n=$((rate * secs))
bound=$((secs + hold / 1000 + 60))

if ! command -v gnuplot >/dev/null; then
	echo "installing gnuplot-nox (Debian package) ..." >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
fi
command -v sipp >/dev/null || { echo "sipp is not installed (make deps)" >&2; exit 1; }
bench_init plotsetup 44000
[ -x $B/sipha-load ] || make -s $B/sipha-load
sport=$base
uport=$((base + 1))
pport=$((base + 2))
cport=$((base + 3))
siphad_conf "$dir/siphad.conf" $sport $uport
timeout $((bound * 3)) $B/sipha-load --uas -i 127.0.0.1 -p $uport --tick-us 0 -q >/dev/null 2>&1 &
uas=$!
pids=("$uas")

# measure SERVER: one run through a fresh SERVER; its histograms in
# $dir/SERVER.dat, its JSON in $dir/SERVER.json
measure() {
	start_server "$1"
	timeout $bound $B/sipha-load --uac -i 127.0.0.1 -p $cport -s 3000 -r $rate -m $n -d $hold \
		--tick-us 0 -q --json --hist "$dir/$1.dat" 127.0.0.1:$sport >"$dir/$1.json" 2>/dev/null ||
		true
	stop_server
	jq -r --arg s "$1" '"| \($s) | \(.ok) | \(.failed) | \(.setup_us | "\(.p50) | \(.p90) | \(.p99) | \(.p999) | \(.max)") |"' \
		"$dir/$1.json"
}

# cdf SERVER: "value_us fraction" lines, the set-up block of SERVER.dat
# cumulated (each bucket counted at its low edge)
cdf() {
	awk '/^#/ { next } NF == 0 { if (seen) exit; next } { seen = 1; v[++k] = $1; c[k] = $2; t += $2 }
		END { for (i = 1; i <= k; i++) { s += c[i]; print v[i], s / t } }' "$dir/$1.dat" >"$dir/$1.cdf"
}

echo "machine: $(nproc) CPUs, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r)"
echo "command: bench/plot_setup.sh $rate $secs $hold $png ($n calls per server, hold $hold ms, $(date -u +%F))"
echo
echo "| server | calls ok | failed | set-up p50 us | p90 | p99 | p99.9 | max |"
echo "|---|---|---|---|---|---|---|---|"
measure siphad
measure kamailio
cdf siphad
cdf kamailio
mkdir -p "$(dirname "$png")"
gnuplot <<GP
set terminal pngcairo size 900,540 font "sans,11"
set output "$png"
set title "Call set-up time (INVITE -> 200), $rate calls/s for $secs s, hold $hold ms, UDP loopback\nmeasured by sipha-load (kernel receive timestamps), $(date -u +%F)"
set xlabel "set-up time (microseconds, log scale)"
set ylabel "fraction of calls set up within x"
set logscale x
set yrange [0:1.02]
set grid xtics mxtics ytics
set key right bottom
plot "$dir/siphad.cdf" using 1:2 with steps lw 2 title "siphad (B2BUA, 1 worker)", \
     "$dir/kamailio.cdf" using 1:2 with steps lw 2 title "Kamailio 5.6 (proxy: tm, rr, dialog)"
GP
echo
echo "plot: $png"
