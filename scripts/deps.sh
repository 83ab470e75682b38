#!/usr/bin/env bash
# Install the Debian packages that sipha's build, tests and demo need.
# Idempotent: when everything is present it only asks dpkg and returns.
set -euo pipefail

PKGS=(
	build-essential pkg-config make gcc clang llvm
	libosip2-dev liburing-dev libbpf-dev bpftool
	libmnl-dev libnl-3-dev libnl-route-3-dev libinih-dev libjansson-dev
	libsystemd-dev libcmocka-dev libsodium-dev libcap-dev
	sip-tester sipvicious iproute2 ethtool iputils-arping nftables iptables procps psmisc
	valgrind clang-format jq keepalived baresip-core kamailio
	systemd groff-base man-db curl
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install packages (run: sudo make deps)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Kamailio is a test fixture (test_load.sh: a record-routing proxy it starts
# itself); the package's own service must not keep running on 5060.
if [[ " ${missing[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now kamailio >/dev/null 2>&1 || true
fi
