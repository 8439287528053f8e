#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: two simulated boxes in network namespaces, xdpmirror attached on both, mirror frames
# and ordinary traffic on the link, the counters as a user reads them.  DEMO_KEEP=1 leaves the
# boxes running afterwards (remove them with: scripts/pair-setup.sh netns down).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
XM=$top/build/xdpmirror
PAIR=$top/scripts/pair-setup.sh
PREFIX=xm
step() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP)" >&2; exit 1; }
cleanup() {
	local rc=$?
	if [ "${DEMO_KEEP:-0}" != 1 ] || [ $rc -ne 0 ]; then
		"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
	fi
	[ $rc -eq 0 ] || echo "demo: failed (daemon logs were in /var/tmp/xdpmirror-$PREFIX/)" >&2
}
trap cleanup EXIT

step "two boxes: namespaces xm-primary and xm-secondary, joined by a veth pair, no IP addresses"
"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
"$PAIR" netns up --prefix $PREFIX
# shellcheck disable=SC1091
source /var/tmp/xdpmirror-$PREFIX/pair.env

step "xdpmirror attach on both boxes (foreground daemons, here in the background)"
for box in primary secondary; do
	if [ $box = primary ]; then
		dev=$XM_PRIMARY_IF peer=$XM_SECONDARY_MAC disk=$XM_PRIMARY_DISK
	else
		dev=$XM_SECONDARY_IF peer=$XM_PRIMARY_MAC disk=$XM_SECONDARY_DISK
	fi
	echo "  $box: xdpmirror attach --role $box --dev $dev --peer $peer --disk $disk"
	"$PAIR" netns exec $box --prefix $PREFIX -- "$XM" attach --role $box --dev "$dev" \
		--peer "$peer" --disk "$disk" >"/var/tmp/xdpmirror-$PREFIX/$box.log" 2>&1 &
done
for _ in $(seq 100); do
	up=$("$XM" status --json | jq '[.devices[].daemon.peer.reachable] | map(select(.)) | length')
	[ "$up" = 2 ] && break
	sleep 0.05
done
[ "$up" = 2 ] || { echo "demo: the boxes did not see each other" >&2; exit 1; }

step "a burst of 10000 mirror frames from the primary, plus ordinary IPv6 traffic on the same link"
if [ -x "$top/build/tools/xm_rawsend" ]; then
	"$PAIR" netns exec primary --prefix $PREFIX -- "$top/build/tools/xm_rawsend" --dev "$XM_PRIMARY_IF" \
		--dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" --type 7 --count 10000
fi
"$PAIR" netns exec primary --prefix $PREFIX -- ping -6 -q -c 5 -i 0.05 -I "$XM_PRIMARY_IF" \
	"fe80::58:4dff:fe00:2%$XM_PRIMARY_IF" | grep -E 'packets|rtt'
sleep 0.3

step "xdpmirror status"
"$XM" status

step "xdpmirror stats --dev $XM_SECONDARY_IF (per-CPU counters summed, rates over 1 s)"
"$XM" stats --dev "$XM_SECONDARY_IF"

step "the same counters, straight from the pinned map with bpftool (field names from BTF)"
echo "  bpftool map dump pinned /sys/fs/bpf/xdpmirror/$XM_SECONDARY_IF/stats"
bpftool map dump pinned "/sys/fs/bpf/xdpmirror/$XM_SECONDARY_IF/stats" | sed -n '1,40p'
echo "  ..."

if [ "${DEMO_KEEP:-0}" = 1 ]; then
	step "boxes left running (DEMO_KEEP=1); remove with: scripts/pair-setup.sh netns down"
	exit 0
fi
step "xdpmirror detach on both boxes"
"$XM" detach --dev "$XM_PRIMARY_IF"
"$XM" detach --dev "$XM_SECONDARY_IF"
left=$(ls /sys/fs/bpf/xdpmirror 2>/dev/null | grep -c "^$PREFIX" || true)
echo "  detached; pinned state left: $left"
echo
echo "demo: done. Both boxes attached, steered mirror frames into AF_XDP, counted them, detached."
