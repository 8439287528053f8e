#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages xdpmirror needs to build, test and demo (with 'bench': and to run
# the benchmark; with 'fuzz': and to fuzz); only the missing ones.
set -euo pipefail

# Build: compiler, BPF toolchain, libraries.  Test/demo: cmocka, NBD clients (libnbd-bin has
# nbdinfo, nbdcopy and nbdfuse; python3-libnbd lets a test script single requests; nbdkit sends
# FUA writes, pauses or fails a disk, and is the bench's local NBD peer), FUSE, fio, tc; the NBD
# export's TLS is GnuTLS (psktool, in gnutls-bin, makes its key files); --metrics-listen is
# libmicrohttpd, and test_metrics parses the metrics with python3-prometheus-client and fetches
# them with curl.  Install: sd_notify
# (libsystemd-dev), the man pages' source format (scdoc); test_install renders them (man-db) and
# checks the unit (systemd-analyze, in systemd).
PKGS=(
	libsystemd-dev scdoc man-db systemd
	clang llvm gcc make pkg-config
	libbpf-dev libxdp-dev bpftool libelf-dev zlib1g-dev liburing-dev libjson-c-dev libssl-dev
	libgnutls28-dev gnutls-bin libmicrohttpd-dev
	libcmocka-dev
	iproute2 iputils-ping ethtool kmod
	libnbd-bin python3-libnbd nbdkit fuse3 fio e2fsprogs util-linux jq python3
	python3-prometheus-client curl
)

# make bench also needs the peer (qemu-storage-daemon, qemu-nbd) and the plot.
if [ "${1:-}" = bench ]; then
	PKGS+=(qemu-system-common qemu-utils gnuplot-nox bc)
fi

# make fuzz also needs clang's libFuzzer and sanitizer runtimes (only recommended by clang).
if [ "${1:-}" = fuzz ]; then
	PKGS+=(libclang-rt-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "xdpmirror: deps: missing packages: ${missing[*]} (run 'make deps' as root)" >&2
	exit 1
fi
echo "  DEPS    installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; a failed update still lets cached lists work.
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
