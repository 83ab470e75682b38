# Shared by the bench/ scripts: a work directory removed on exit with every
# background process the script started (their PIDs in the array pids),
# and siphad's CPU clock ticks from /proc.
#
#   . "$(dirname "$0")/lib.sh"; bench_init NAME BASE_PORT_RANGE_START
# sets dir (a fresh /tmp/sipha-NAME.XXXXXX), base (a port base, varied by
# PID so that two runs do not collide), B=build and pids=(); builds when the
# daemon is missing.
bench_init() {
	B=build
	dir=$(mktemp -d "/tmp/sipha-$1.XXXXXX")
	base=$(($2 + ($$ % 5000)))
	pids=()
	trap bench_cleanup EXIT
	[ -x $B/siphad ] || make -s
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}

# ticks PID: utime + stime of PID, in clock ticks (getconf CLK_TCK a second).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# tree PID: PID and every process below it, one a line (Kamailio forks its
# workers and timers from one main process).
tree() {
	local c
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$c"; done
}

# cpu_ns PID...: time on CPU (user + system) of the processes PID... and all
# their threads, in nanoseconds (the first field of /proc/PID/task/*/schedstat,
# the kernel's sum_exec_runtime: what utime + stime count, without their
# 10 ms ticks).  A process gone is counted as 0.
cpu_ns() {
	local p
	for p; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
		awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# siphad_conf FILE PORT UAS_PORT: siphad on 127.0.0.1:PORT with one worker,
# no HA and no XDP (no [ha], no [xdp]), warnings only, DN 3000 routed to the
# callee at 127.0.0.1:UAS_PORT; its control socket is FILE.sock.
siphad_conf() {
	cat >"$1" <<-EOF2
		[node]
		id = bench
		log_level = warn
		state_dir = $1.state
		[sip]
		listen = 127.0.0.1:$2
		domain = sipha.test
		[control]
		socket = $1.sock
		[engine]
		workers = 1
		[dn]
		3000 = sip:127.0.0.1:$3
	EOF2
}

# sipp_stat CSV FIELD...: the final value of each FIELD (SuccessfulCall(C),
# FailedCall(C), Retransmissions(C)...) of a sipp -trace_stat file, on one
# line; 0 for a file missing.
sipp_stat() {
	local csv=$1
	shift
	awk -F';' -v want="$*" '
		NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		{ last = $0 }
		END {
			n = split(want, w, " "); split(last, f, ";")
			for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), f[h[w[i]]] + 0
			print ""
		}' "$csv" 2>/dev/null || echo "0 0 0"
}

# sip_wait PORT PROBE_PORT SECONDS: waits until the SIP server on
# 127.0.0.1:PORT answers an OPTIONS with 200 (one sipp probe from PROBE_PORT
# every 0.2 s); fails after SECONDS.
sip_wait() {
	local i scen
	scen=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/scenarios/options.xml
	for ((i = 0; i < $3 * 5; i++)); do
		timeout -k 1 2 sipp 127.0.0.1:"$1" -sf "$scen" -m 1 -i 127.0.0.1 -p "$2" \
			-timeout 1 -timeout_error -nostdin >/dev/null 2>&1 </dev/null && return 0
		sleep 0.2
	done
	return 1
}

# sipp_flow FLOW RATE COUNT SERVER_PORT CLIENT_PORT STAT [HOLD_MS]: one sipp
# run of COUNT requests of FLOW at RATE/s against 127.0.0.1:SERVER_PORT from
# CLIENT_PORT, in $dir, its final statistics in $dir/STAT, its errors in
# $dir/STAT.err.  FLOW is calls
# (uac_rtd.xml to DN 3000: INVITE/100/180/200/ACK, held HOLD_MS, default
# 1000, BYE/200) or register (register_unique.xml: a new AoR each).
# Bounded: -m COUNT, sipp's -timeout, and timeout(1) around it.
sipp_flow() {
	local flow=$1 rate=$2 n=$3 hold=${7:-1000} scen bound
	local -a args
	scen=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/scenarios
	bound=$((n * 3 / rate + hold / 1000 + 30))
	if [ "$flow" = calls ]; then
		args=(-sf "$scen/uac_rtd.xml" -s 3000 -d "$hold" -l $((rate * (hold / 1000 + 3))))
	else
		args=(-sf "$scen/register_unique.xml" -l "$rate")
	fi
	rm -f "$dir/$6" "$dir/$6.err"
	(cd "$dir" && timeout -k 5 $bound sipp 127.0.0.1:"$4" "${args[@]}" -r "$rate" -m "$n" \
		-i 127.0.0.1 -p "$5" -nostdin -timeout $((bound - 5)) -trace_stat -stf "$6" \
		-trace_err -error_file "$6.err" </dev/null >/dev/null 2>&1) || true
}

# kamailio_args PORT UAS_PORT: sets the array kargs to the command line of
# Kamailio for the bench: bench/kamailio/kamailio.cfg listening on
# 127.0.0.1:PORT (UDP), the callee at 127.0.0.1:UAS_PORT, in the foreground
# (-DD, its children forked below it), logging to stderr, TLSF allocator
# for shared and private memory (512 and 32 MB), its files in $dir.
# Installs Debian's kamailio package when /usr/sbin/kamailio is missing.
kamailio_args() {
	if ! [ -x /usr/sbin/kamailio ]; then
		echo "installing kamailio (Debian package) ..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y kamailio >/dev/null
		# the package's own service must not keep running (on 5060)
		if [ -d /run/systemd/system ]; then systemctl disable --now kamailio >/dev/null 2>&1 || true; fi
	fi
	kargs=(/usr/sbin/kamailio -DD -E -f "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kamailio/kamailio.cfg"
		-A "LISTEN=udp:127.0.0.1:$1" -A "UAS_URI=\"sip:127.0.0.1:$2\"" -x tlsf -X tlsf -m 512 -M 32
		-P "$dir/kamailio.pid" -w "$dir" -Y "$dir")
}

# flows_init NAME BASE_PORT: bench_init, then the setting of the flows of
# vs-kamailio.sh, profile.sh and callgrind.sh: ports sport (the server),
# uport (the sipp UAS, started here: its PID in uas and pids), pport (the
# readiness probe), cport (the sipp UAC; cport + 1 free too), and siphad's
# config $dir/siphad.conf.
flows_init() {
	command -v sipp >/dev/null || {
		echo "sipp is not installed (make deps)" >&2
		exit 1
	}
	bench_init "$1" "$2"
	sport=$base
	uport=$((base + 1))
	pport=$((base + 2))
	cport=$((base + 3))
	siphad_conf "$dir/siphad.conf" $sport $uport
	(cd "$dir" && exec sipp -sn uas -i 127.0.0.1 -p $uport -nostdin </dev/null >/dev/null 2>&1) &
	uas=$!
	pids=("$uas")
}

# start_server kamailio|siphad: a fresh server on $sport (after
# flows_init); sets spid and procs (every PID of it: Kamailio's main process
# and the children it forked, siphad's one).
start_server() {
	if [ "$1" = kamailio ]; then
		kamailio_args "$sport" "$uport"
		"${kargs[@]}" >>"$dir/kamailio.log" 2>&1 &
	else
		"$B/siphad" -c "$dir/siphad.conf" 2>>"$dir/siphad.log" &
	fi
	spid=$!
	pids=("$uas" "$spid")
	if ! sip_wait "$sport" "$pport" 20; then
		echo "$1 did not answer on 127.0.0.1:$sport; its log:" >&2
		tail -n 20 "$dir/$1.log" >&2
		exit 1
	fi
	mapfile -t procs < <(tree $spid)
	pids=("$uas" "${procs[@]}")
}

# stop_server: SIGTERM to the main process (Kamailio's stops its children),
# then waits up to 10 s for every process of it.
stop_server() {
	local p i
	kill "$spid" 2>/dev/null || true
	for p in "${procs[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$p" 2>/dev/null || continue 2
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
	done
	wait "$spid" 2>/dev/null || true
	pids=("$uas")
}
