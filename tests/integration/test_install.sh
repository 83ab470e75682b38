#!/usr/bin/env bash
# make install / make uninstall, and that what is installed works:
#   1. the tree under DESTDIR: every file, its mode, nothing else;
#   2. the example configuration passes `siphad --check`, lists every key of
#      the schema (core/config_keys.c) in its section, and with every
#      setting uncommented still passes; so does sipha.conf(5)'s example;
#   3. the unit: `systemd-analyze verify` accepts it (when installed), and
#      the installed siphad, run in a namespace with [vip] and [xdp] under
#      the unit's CapabilityBoundingSet and a stand-in NOTIFY_SOCKET, says
#      READY=1, pings WATCHDOG=1 at half the unit's interval, comes back
#      after a kill -9 (the XDP program it left is replaced), says
#      STOPPING=1 and exits 0 on SIGTERM; sipha-bpffs mounts bpffs once;
#   4. the sysctl drop-in names keys the kernel has;
#   5. the man pages render without a warning and name every option of the
#      programs' --help;
#   6. siphactl: help for every command, and bash completion of them;
#   7. make uninstall leaves no file behind.
. "$(dirname "$0")/lib.sh"

require_root
require_cmd groff man setpriv unshare ip
NOTIFYSINK=${NOTIFYSINK:-$T_BUILD/tests/tools/notifysink}
require_bin "$NOTIFYSINK"

D=$T_TMP/dest
PFX=/usr
mk() { make -s -C "$T_ROOT" PREFIX=$PFX DESTDIR="$D" "$@"; }

# --- 1. make install: the tree ----------------------------------------------------------

if ! mk install >"$T_TMP/install.log" 2>&1; then
	fail "install: make install" "$(tail -n 5 "$T_TMP/install.log" | tr '\n' '|')"
	finish
fi
pass "install: make install DESTDIR PREFIX=$PFX"

EXPECT="0755 usr/sbin/siphad
0755 usr/sbin/siphactl
0755 usr/sbin/sipha-load
0755 usr/lib/sipha/sipha-bpffs
0644 etc/sipha/example.conf
0644 usr/lib/systemd/system/siphad@.service
0644 usr/lib/sysctl.d/60-sipha.conf
0644 usr/lib/sysusers.d/sipha.conf
0644 usr/share/bash-completion/completions/siphactl
0644 usr/share/man/man1/sipha-load.1
0644 usr/share/man/man5/sipha.conf.5
0644 usr/share/man/man8/siphactl.8
0644 usr/share/man/man8/siphad.8"
got=$(cd "$D" && find . \( -type f -o -type l \) -printf '%#m %P\n' | sed 's/^0\([0-7]\{4\}\)/\1/' | sort -k2)
if [ "$got" = "$(sort -k2 <<<"$EXPECT")" ]; then
	pass "install: every file, with its mode, and nothing else"
else
	fail "install: every file, with its mode, and nothing else" \
		"$(diff <(sort -k2 <<<"$EXPECT") <(echo "$got") | grep '^[<>]' | tr '\n' '|')"
fi
check "install: the programs are the ones built" cmp -s "$D/usr/sbin/siphad" "$T_BUILD/siphad"
UNIT=$D/usr/lib/systemd/system/siphad@.service
check "install: the unit runs $PFX/sbin/siphad" \
	grep -qx "ExecStart=$PFX/sbin/siphad -c /etc/sipha/%i.conf" "$UNIT"
check "install: no @VARIABLE@ left in the unit" bash -c "! grep -q '@[A-Z]*@' '$UNIT'"
SIPHAD_I=$D/usr/sbin/siphad

# --- 2. the example configuration -------------------------------------------------------

EX=$D/etc/sipha/example.conf
out=$("$SIPHAD_I" --check -c "$EX" 2>&1)
check_eq "install: siphad --check -c example.conf" "$?/$out" "0/$EX: ok"

# Every key of the schema, in its section (as a setting, commented or not).
missing=$(grep -oE '\{ SEC_[A-Z]+, "[a-z_]+"' "$T_ROOT/userspace/core/config_keys.c" |
	sed -E 's/\{ SEC_([A-Z]+), "([a-z_]+)"/\1 \2/' | tr 'A-Z' 'a-z' |
	while read -r sec key; do
		awk -v s="$sec" -v k="$key" '
			/^#?\[[a-z]+\]/ { cur = $0; gsub(/[#\[\] ]/, "", cur) }
			cur == s && $0 ~ "^#?" k " = " { found = 1 }
			END { exit !found }' "$EX" || echo "[$sec] $key"
	done)
check_eq "install: example.conf lists every key in its section" "$missing" ""

# Every setting uncommented, with the files it names made: still good.
mkdir -p "$T_TMP/etc"
head -c 32 /dev/urandom >"$T_TMP/etc/ha.key"
echo "1001:secret" >"$T_TMP/etc/users"
echo "token-0123456789abcdef" >"$T_TMP/etc/cti.tokens"
chmod 600 "$T_TMP/etc/"*
sed -E -e 's/^#([a-z_0-9]+ = |\[)/\1/' -e "s|/etc/sipha/|$T_TMP/etc/|" "$EX" >"$T_TMP/full.conf"
n=$(grep -cE '^(\[[a-z]+\]|[a-z_]+ = )' "$T_TMP/full.conf")
out=$("$SIPHAD_I" --check -c "$T_TMP/full.conf" 2>&1)
check_eq "install: example.conf with all $n settings uncommented passes --check" "$?" 0
[ -n "$out" ] && info "$out"

# The EXAMPLE of sipha.conf(5), key file made.
sed -n '/^\.SH EXAMPLE/,/^\.EE/p' "$T_ROOT/docs/man/sipha.conf.5" | sed -e '/^\./d' -e 's/\\-/-/g' \
	-e "s|/etc/sipha/ha.key|$T_TMP/etc/ha.key|" >"$T_TMP/man.conf"
out=$("$SIPHAD_I" --check -c "$T_TMP/man.conf" 2>&1)
check_eq "install: sipha.conf(5)'s example passes --check" "$?" 0
[ -n "$out" ] && info "$out"

# --- 3. the unit ------------------------------------------------------------------------------

if command -v systemd-analyze >/dev/null 2>&1; then
	# Verified where it would run from, with the paths it names moved into
	# DESTDIR (verify checks that the programs and man pages exist).
	mkdir -p "$T_TMP/units"
	sed -e "s|=$PFX/sbin/|=$D$PFX/sbin/|g" -e "s|+$PFX/lib/sipha/|+$D$PFX/lib/sipha/|g" \
		"$UNIT" >"$T_TMP/units/siphad@.service"
	ln -s siphad@.service "$T_TMP/units/siphad@a.service"
	out=$(cd "$T_TMP/units" && MANPATH=$D/usr/share/man SYSTEMD_LOG_COLOR=0 \
		systemd-analyze verify ./siphad@a.service 2>&1)
	rc=$?
	check_eq "install: systemd-analyze verify siphad@a.service: no complaint" "$rc:$out" "0:"
else
	info "SKIP (not counted): systemd-analyze is not installed (scripts/deps.sh installs systemd)"
fi

# unit_value KEY: a setting of the installed unit.
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
CAPS=$(unit_value CapabilityBoundingSet | tr 'A-Z' 'a-z' | sed -E 's/cap_//g; s/ +/,+/g')
WD=$(unit_value WatchdogSec)
check "install: the unit sets a capability set and a watchdog ($CAPS; $WD)" \
	test -n "$CAPS" -a -n "$WD"
WD_MS=$((${WD%s} * 1000))

# The installed siphad under the unit's bounding set, speaking to a
# stand-in for systemd.  The watchdog is shortened 25 times (0.4 s for
# 10 s) to be seen working in a second.
cat >"$T_TMP/siphad-unit" <<EOF
#!/bin/sh
exec setpriv --bounding-set -all,+$CAPS "$SIPHAD_I" "\$@"
EOF
chmod 755 "$T_TMP/siphad-unit"
WD_TEST_US=$((WD_MS * 1000 / 25))
export NOTIFY_SOCKET=$T_TMP/notify.sock WATCHDOG_USEC=$WD_TEST_US
"$NOTIFYSINK" -T 60 "$NOTIFY_SOCKET" >"$T_TMP/notify" 2>&1 &
T_PIDS+=("$!")
SINK=$!
wait_until 3 test -S "$NOTIFY_SOCKET"

if ! { ns_create u && ns_exec u ip link add eth0 type veth peer name eth1 &&
	ns_exec u ip link set eth0 up && ns_exec u ip link set eth1 up &&
	addr_add u eth0 10.99.0.1/24; }; then
	fail "install: unit: a namespace" "ip failed"
	finish
fi
cat >"$T_TMP/u.conf" <<EOF
[node]
id = tinst
state_dir = $T_TMP/state-tinst
[sip]
listen = 10.99.0.100:5060
domain = sipha.test
[vip]
address = 10.99.0.100/24
interface = eth0
garp_count = 1
[xdp]
interface = eth0
mode = native
[control]
socket = $T_TMP/tinst.sock
EOF
# notes_ge MESSAGE N: the stand-in got MESSAGE at least N times.
notes_ge() { [ "$(grep -c " $1\$" "$T_TMP/notify")" -ge "$2" ]; }
xdp_on() { ns_exec u ip link show eth0 | grep -q 'prog/xdp'; }
vip_on() { ns_exec u ip -br addr show eth0 | grep -q '10.99.0.100/'; }
vip_xdp_on() { vip_on && xdp_on; }
vip_xdp_off() { ! vip_on && ! xdp_on; }

SIPHAD=$T_TMP/siphad-unit
if start_siphad -n u -N u "$T_TMP/u.conf"; then
	check "install: unit: READY=1" wait_until 3 notes_ge READY=1 1
	check "install: unit: the log names the watchdog interval" \
		grep -q "watchdog: telling systemd every $((WD_TEST_US / 2000)) ms" "$(siphad_log u)"
	check "install: unit: the VIP added and XDP attached" vip_xdp_on
	sleep 1
	# Pings at half the interval: never a gap as long as the interval.
	gaps=$(awk '$2 == "WATCHDOG=1" { if (t != "") print $1 - t; t = $1 }' "$T_TMP/notify")
	n=$(wc -l <<<"$gaps")
	maxgap=$(sort -n <<<"$gaps" | tail -n 1)
	check "install: unit: WATCHDOG=1 every $((WD_TEST_US / 2000)) ms ($n gaps, longest ${maxgap} ms)" \
		test "$n" -ge 3 -a "${maxgap:-99999}" -lt $((WD_TEST_US / 1000))
	check "install: unit: only CAP_NET_ADMIN kept" grep -q "caps: keeping cap_net_admin" "$(siphad_log u)"
	# A crash leaves the VIP and the XDP program: the restart (what
	# Restart=on-failure does) must take them over within the bounding set.
	kill9 u
	check "install: unit: kill -9 leaves XDP attached" xdp_on
	if start_siphad -n u -N u "$T_TMP/u.conf"; then
		check "install: unit: restarted after kill -9: READY=1 again" \
			wait_until 3 notes_ge READY=1 2
		check "install: unit: the program a crashed run left is replaced" \
			grep -q "xdp: replacing sipha program" "$(siphad_log u)"
		check "install: unit: no permission refused" \
			bash -c "! grep -qiE 'not permitted|permission denied' '$(siphad_log u)'"
		stop_siphad u
		check "install: unit: STOPPING=1" wait_until 3 notes_ge STOPPING=1 1
		check "install: unit: XDP detached and VIP removed at exit" vip_xdp_off
	fi
fi
SIPHAD=$T_BUILD/siphad
unset NOTIFY_SOCKET WATCHDOG_USEC
kill "$SINK" 2>/dev/null

# sipha-bpffs (ExecStartPre=+): mounts bpffs where there is none, once.
mkdir -p "$T_TMP/bpf"
out=$(unshare -m --propagation private sh -c "'$D/usr/lib/sipha/sipha-bpffs' '$T_TMP/bpf' &&
	'$D/usr/lib/sipha/sipha-bpffs' '$T_TMP/bpf' && stat -f -c %T '$T_TMP/bpf'" 2>&1)
check_eq "install: sipha-bpffs mounts bpffs, then leaves it be" "$out" \
	"sipha-bpffs: mounted bpffs on $T_TMP/bpf
bpf_fs"

# --- 4. sysctl ------------------------------------------------------------------------------

bad=$(sed -n 's/^\([a-z0-9_.]*\) = .*/\1/p' "$D/usr/lib/sysctl.d/60-sipha.conf" |
	while read -r k; do
		[ -e "/proc/sys/${k//.//}" ] || echo "$k"
	done)
check_eq "install: the sysctl drop-in names keys the kernel has" "$bad" ""
check "install: ... among them arp_ignore, arp_announce, ip_nonlocal_bind, rmem_max" \
	test "$(grep -cE '^(net.ipv4.conf.all.arp_ignore|net.ipv4.conf.all.arp_announce|net.ipv4.ip_nonlocal_bind|net.core.rmem_max) = ' \
		"$D/usr/lib/sysctl.d/60-sipha.conf")" -eq 4

# --- 5. man pages ---------------------------------------------------------------------------

for m in man8/siphad.8 man8/siphactl.8 man1/sipha-load.1 man5/sipha.conf.5; do
	f=$D/usr/share/man/$m
	warn=$(groff -man -Tutf8 -ww -z "$f" 2>&1; MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
	check_eq "install: man $m renders without a warning" "$warn" ""
	check "install: man $m has a NAME" bash -c "MANWIDTH=80 man -l '$f' 2>/dev/null | grep -q '^NAME'"
done
# opts_missing PROGRAM PAGE [ARGS]: long options of PROGRAM's help absent from PAGE.
opts_missing() {
	local o
	for o in $("$1" ${3:-} --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
		grep -qF -- "${o//-/\\-}" "$2" || echo "$o"
	done
}
check_eq "install: siphad.8 names every option of siphad --help" \
	"$(opts_missing "$SIPHAD_I" "$D/usr/share/man/man8/siphad.8")" ""
check_eq "install: sipha-load.1 names every option of sipha-load --help" \
	"$(opts_missing "$D/usr/sbin/sipha-load" "$D/usr/share/man/man1/sipha-load.1")" ""
check_eq "install: sipha-load.1 names every option of sipha-load probe --help" \
	"$(opts_missing "$D/usr/sbin/sipha-load" "$D/usr/share/man/man1/sipha-load.1" probe)" ""

# --- 6. siphactl: help and completion ---------------------------------------------------------

CTL=$D/usr/sbin/siphactl
CMDS=$("$CTL" --help | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
check "install: siphactl --help lists commands ($(echo $CMDS))" test "$(wc -w <<<"$CMDS")" -ge 10
bad=
for c in $CMDS; do
	a=$("$CTL" help "$c" 2>&1) || bad+=" $c(help)"
	b=$("$CTL" "$c" --help 2>&1) || bad+=" $c(--help)"
	[ "$a" = "$b" ] && [[ ${a%%$'\n'*} == "usage: siphactl "*" $c"* ]] && [ "$(wc -l <<<"$a")" -ge 3 ] ||
		bad+=" $c"
	grep -qE "^\.(B|BR) $c( |$)" "$D/usr/share/man/man8/siphactl.8" || bad+=" $c(man)"
done
check_eq "install: siphactl help CMD = CMD --help for every command, each in siphactl.8" "$bad" ""
"$CTL" help nosuch >/dev/null 2>&1
check_eq "install: siphactl help of an unknown command is a usage error" "$?" 2

# complete WORDS...: what _siphactl offers for the last word.
complete_() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _siphactl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$D/usr/share/bash-completion/completions/siphactl" "$@" |
		sort | tr '\n' ' ' | sed 's/ $//'
}
check_eq "install: completion: every command" "$(complete_ siphactl '')" "$(echo $CMDS | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "install: completion: sw" "$(complete_ siphactl -s /run/x.sock sw)" switchover
check_eq "install: completion: block's verbs" "$(complete_ siphactl block '')" "add del"
check_eq "install: completion: block's prefix is not completed" "$(complete_ siphactl block add '')" ""
check_eq "install: completion: help's commands" "$(complete_ siphactl help st)" status
check_eq "install: completion: options" "$(complete_ siphactl --)" "--help --json"
check_eq "install: completion: -c completes configurations" "$(complete_ siphactl -c "$D/etc/sipha/ex")" \
	"$D/etc/sipha/example.conf"

# --- 7. make uninstall --------------------------------------------------------------------------

if mk uninstall >"$T_TMP/uninstall.log" 2>&1; then
	pass "install: make uninstall"
else
	fail "install: make uninstall" "$(tail -n 5 "$T_TMP/uninstall.log" | tr '\n' '|')"
fi
check_eq "install: make uninstall leaves no file" "$(cd "$D" && find . \( -type f -o -type l \) | sort | tr '\n' ' ')" ""
check "install: ... nor sipha's directories" test ! -e "$D/etc/sipha" -a ! -e "$D/usr/lib/sipha"

finish
