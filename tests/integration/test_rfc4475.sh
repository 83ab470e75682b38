#!/usr/bin/env bash
# RFC 4475 torture messages replayed at siphad: each file once as a UDP
# datagram, then once over a TCP connection of its own, each answer checked
# against tests/data/rfc4475/INDEX.md (encoded below), and the
# daemon healthy at the end (exit 0 on SIGTERM, no sanitizer report).
#
# The config serves domain example.com, the domain of the torture REGISTERs,
# so that their "200" expectations are testable; DN 1001 is an extension with
# nobody registered, and none of the INVITEs' users is a DN (404/480).
. "$(dirname "$0")/lib.sh"

require_root
require_cmd jq ss
require_bin "$SIPHAD" "$SIPHACTL" "$SIPJUNK"

DIR=${SIPHA_RFC4475_DIR:-$T_ROOT/tests/data/rfc4475}
[ -f "$DIR/INDEX.md" ] || {
	fail "rfc4475: corpus" "no INDEX.md in $DIR (set SIPHA_RFC4475_DIR)"
	finish
}

# file: allowed outcomes over UDP | over TCP | headers the answer must carry.
# An outcome is sipjunk's line: status codes in order, "none", "closed";
# alternatives are separated by "|".  "none" is INDEX.md's "drop".  Over TCP a
# message that cannot be framed (Content-Length missing, negative or given
# twice) must close the connection; one whose Content-Length exceeds what was
# sent leaves the framer waiting ("none").  Over TCP dblreq.dat is three
# things: the REGISTER, a CRLF, then its INVITE, whose body runs 5 octets past
# its Content-Length ("C" CRLF CRLF, a message without Content-Length): both
# requests are answered, then the unframeable rest closes the connection.
EXPECT=(
	# 3.1.1 valid messages (wsinv's To has a tag: a request inside a dialog
	# sipha does not have, whose normal answer is 481, RFC 3261 §12.2.2)
	"wsinv.dat       481              481              -"
	"intmeth.dat     405|501          405|501          Allow"
	"esc01.dat       404|480          404|480          -"
	"escnull.dat     200              200              -"
	"esc02.dat       405|501          405|501          Allow"
	"lwsdisp.dat     200              200              -"
	"longreq.dat     404|480          404|480          -"
	"dblreq.dat      200              200_404_closed|200_480_closed -"
	"semiuri.dat     200              200              -"
	"transports.dat  200              200              -"
	"mpart01.dat     405|501          405|501          Allow"
	"unreason.dat    none             none             -"
	"noreason.dat    none             none             -"
	# 3.1.2 invalid messages
	"badinv01.dat    400|none         400|none         -"
	"clerr.dat       400|none         none             -"
	"ncl.dat         400|none         closed|400_closed -"
	"scalar02.dat    400              400              -"
	"scalarlg.dat    none             none             -"
	"quotbal.dat     400|none         400|none         -"
	"ltgtruri.dat    400              400              -"
	"lwsruri.dat     400              400              -"
	"lwsstart.dat    400|404|480      400|404|480      -"
	"trws.dat        400|200          400|200          -"
	"escruri.dat     400|404|480      400|404|480      -"
	"baddate.dat     400|404|480      400|404|480      -"
	"regbadct.dat    200|400          200|400          -"
	"badaspec.dat    400|200          400|200          -"
	"baddn.dat       400|200          400|200          -"
	"badvers.dat     505              505              -"
	"mismatch01.dat  400              400              -"
	"mismatch02.dat  400              400              -"
	"bigcode.dat     none             none             -"
	# 3.2 transaction layer
	"badbranch.dat   200              200              -"
	# 3.3 application layer
	"insuf.dat       400              400              -"
	"unkscm.dat      416              416              -"
	"novelsc.dat     416              416              -"
	"unksm2.dat      400|403|404      400|403|404      -"
	"bext01.dat      420              420              Unsupported"
	"invut.dat       415              415              Accept"
	"regaut01.dat    200              200              -"
	"multi01.dat     400              400              -"
	"mcl01.dat       400              closed|400_closed -"
	"bcast.dat       none             none             -"
	"zeromf.dat      200              200              -"
	"cparam01.dat    200              200              -"
	"cparam02.dat    200              200              -"
	"regescrt.dat    200              200              -"
	"sdp01.dat       406              406              -"
	# 3.4 backward compatibility
	"inv2543.dat     404|480          closed|400_closed -"
)

# Order: every REGISTER after every other request, on a daemon of their own,
# so that no INVITE finds a user the torture REGISTERs bound (sip:user@...):
# the INVITEs must get the unknown-user answer, never be forwarded to a
# contact in example.com.  Files whose top Via, branch and method repeat an
# earlier file's (RFC 3261 §17.2.3 makes them retransmissions of that file's
# transaction) also start on a fresh daemon: RFC 4475 means each message as a
# test of its own.
FRESH_BEFORE=" cparam02.dat regescrt.dat unkscm.dat "
ORDERED=()
for line in "${EXPECT[@]}"; do
	[[ $(head -c 9 "$DIR/${line%% *}" 2>/dev/null) == "REGISTER " ]] || ORDERED+=("$line")
done
first_register=
for line in "${EXPECT[@]}"; do
	if [[ $(head -c 9 "$DIR/${line%% *}" 2>/dev/null) == "REGISTER " ]]; then
		ORDERED+=("$line")
		[ -n "$first_register" ] || first_register=${line%% *}
	fi
done
FRESH_BEFORE+="$first_register "

free_port PORT || finish
CONF=$T_TMP/rfc4475.ini
write_config "$CONF" "$PORT" t4475 127.0.0.1 example.com
DST=127.0.0.1:$PORT

# Every file in the corpus has an expectation, and every expectation a file.
listed=$(printf '%s\n' "${EXPECT[@]}" | awk '{print $1}' | sort | tr '\n' ' ')
present=$(cd "$DIR" && printf '%s\n' *.dat | sort | tr '\n' ' ')
check_eq "rfc4475: table covers the corpus" "$listed" "$present"

# header_value FILE NAME: the first value of a header (long or compact form,
# folded lines joined), with surrounding blanks removed.
header_value() {
	tr -d '\r' <"$1" | awk -v want="$2" -v short="${3:-}" '
		NR > 1 && $0 == "" { exit }
		NR > 1 {
			if (/^[ \t]/) { if (cur != "") val = val " " $0; next }
			if (cur != "") exit
			n = $0; sub(/[ \t]*:.*/, "", n)
			if (tolower(n) == tolower(want) || (short != "" && tolower(n) == short)) {
				cur = n; val = $0; sub(/^[^:]*:[ \t]*/, "", val)
			}
		}
		END { if (cur != "") print val }' | sed 's/[ \t]*$//'
}

# post_check FILE: what an answer must hold beyond its code.
post_check() {
	local f=$1 r
	r=$(ctl --json registrations) || {
		fail "rfc4475: $f: registrations" "siphactl failed"
		return
	}
	case $f in
	escnull.dat)
		# Escaped NULs stay escaped: nothing cut at a C-string NUL.
		check_eq "rfc4475: escnull: both %00 contacts bound to the full AoR" \
			"$(jq -r '[.registrations[] | select(.aor == "sip:null-%00-null@example.com") | .contact] | sort | join(" ")' <<<"$r")" \
			"sip:%00%00@host5.example.com sip:%00@host5.example.com"
		;;
	dblreq.dat)
		check_eq "rfc4475: dblreq: the REGISTER was processed" \
			"$(jq -r '[.registrations[] | select(.aor == "sip:j.user@example.com") | .contact] | join(" ")' <<<"$r")" \
			"sip:j.user@host.example.com"
		;;
	cparam01.dat)
		# Outside <>, ";unknownparam" is a header parameter, not the URI's.
		check_eq "rfc4475: cparam01: parameter not part of the stored URI" \
			"$(jq -r '[.registrations[] | select(.aor == "sip:watson@example.com") | .contact] | join(" ")' <<<"$r")" \
			"sip:+19725552222@gw1.example.net"
		;;
	cparam02.dat)
		check_eq "rfc4475: cparam02: URI parameter kept in the stored URI" \
			"$(jq -r '[.registrations[] | select(.aor == "sip:watson@example.com") | .contact] | join(" ")' <<<"$r")" \
			"sip:+19725552222@gw1.example.net;unknownparam"
		;;
	regescrt.dat)
		check_eq "rfc4475: regescrt: contact stored as given" \
			"$(jq -r '[.registrations[] | select(.aor == "sip:user@example.com") | .contact] | join(" ")' <<<"$r")" \
			"sip:user@example.com?Route=%3Csip:sip.example.com%3E"
		;;
	esac
}

# replay PROTO FILE UDP_EXPECT TCP_EXPECT HEADERS
replay() {
	local proto=$1 f=$2 want got ans=$T_TMP/answer hdr cid rcid opt=
	if [ "$proto" = tcp ]; then
		want=$4
		opt=-t
	else
		want=$3
	fi
	want=${want//_/ }
	rm -f "$ans"
	got=$("$SIPJUNK" $opt -w 600 -S "$ans" -f "$DIR/$f" "$DST" 2>&1)
	if [[ "|$want|" == *"|$got|"* ]]; then
		pass "rfc4475 $proto: $f -> $got"
	else
		fail "rfc4475 $proto: $f" "got '$got', INDEX.md allows '$want'"
	fi
	# An answer echoes the Call-ID in full (nothing truncated silently)
	# and carries the headers INDEX.md asks for.
	if [ -s "$ans" ] && [ "$f" != multi01.dat ]; then
		cid=$(header_value "$DIR/$f" Call-ID i)
		rcid=$(header_value "$ans" Call-ID i)
		check_eq "rfc4475 $proto: $f: Call-ID echoed" "$rcid" "$cid"
	fi
	if [ -s "$ans" ] && [ "$5" != - ]; then
		for hdr in ${5//,/ }; do
			if [ -n "$(header_value "$ans" "$hdr")" ]; then
				pass "rfc4475 $proto: $f: answer has $hdr"
			else
				fail "rfc4475 $proto: $f: answer has $hdr" "missing"
			fi
		done
	fi
	[[ $got =~ ^2 ]] && post_check "$f"
	if ! siphad_alive; then
		fail "rfc4475 $proto: siphad alive after $f" "it died; restarting for the rest"
		start_siphad "$CONF" || finish
	fi
}

# round PROTO: every file, on a daemon started for the round; returns after
# checking the daemon still serves and stopping it.
round() {
	local proto=$1 line f u t h n=0 before after
	start_siphad "$CONF" || finish
	before=$(metric sip_rx_messages)
	for line in "${ORDERED[@]}"; do
		read -r f u t h <<<"$line"
		if [[ $FRESH_BEFORE == *" $f "* ]]; then
			stop_siphad
			start_siphad "$CONF" || finish
			before=$(metric sip_rx_messages)
			n=0
		fi
		replay "$proto" "$f" "$u" "$t" "$h"
		n=$((n + 1))
	done
	# Healthy afterwards: a normal OPTIONS is answered on both transports.
	check_eq "rfc4475 $proto: OPTIONS over UDP answered afterwards" \
		"$("$SIPJUNK" -o "$DST" 2>&1)" 200
	check_eq "rfc4475 $proto: OPTIONS over TCP answered afterwards" \
		"$("$SIPJUNK" -o -t "$DST" 2>&1)" 200
	after=$(metric sip_rx_messages)
	if [ "$proto" = udp ]; then
		# One message per datagram (dblreq's trailing INVITE is not a
		# message of its own), plus the two OPTIONS.
		check_eq "rfc4475 udp: every datagram counted once" "$((after - before))" \
			"$((n + 2))"
	fi
	stop_siphad
}

round udp
round tcp
finish
