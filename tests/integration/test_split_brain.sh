#!/usr/bin/env bash
# Description: both boxes write while the link is down (the secondary promoted, then demoted):
# the handshake detects split brain on both sides every time and nothing moves; resolve
# --discard-local on the secondary resyncs both boxes' changed regions from the survivor.  The
# safe case (the promoted box wrote nothing) resyncs by itself.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
command -v fio >/dev/null || skip "fio missing (make deps)"
pair_up xmtk --disk-size 64M
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX
BLOCK=65536

# fio_write URI NAME ARGS...: scattered 4 KiB writes through an NBD export.
fio_write() {
	local uri=$1 name=$2
	shift 2
	fio --name="$name" --ioengine=nbd --uri="$uri" --direct=1 --randrepeat=0 --rw=randwrite \
		--bs=4k --output="$work/fio-$name.log" "$@" || fail "fio $name: $(tail -5 "$work/fio-$name.log")"
}
s_uri() { echo "nbd+unix:///?socket=/run/xdpmirror/$S.sock"; }
is_degraded() { [ "$(replication_state "$P")" = degraded ]; }
connection() { status_json "$1" | jq -r .daemon.replication.connection; }
is_split() { [ "$(connection "$P")" = split-brain ] && [ "$(connection "$S")" = split-brain ]; }
bits() { status_json "$1" | jq .daemon.metadata.bitmap.dirty_bits; }

# apart WRITES_ON_SECONDARY: link down, the primary writes, the secondary is promoted, writes
# (or not), is demoted; the link comes back.
apart() {
	in_box secondary ip link set dev "$S" down
	wait_until 2 is_degraded || fail "primary did not degrade"
	fio_write "$(nbd_uri)" pwrites --number_ios=40 --size=64M
	"$XM" promote --dev "$S" >/dev/null || fail "promote of the cut-off secondary"
	[ "$1" -gt 0 ] && fio_write "$(s_uri)" swrites --number_ios="$1" --size=64M
	"$XM" demote --dev "$S" >/dev/null || fail "demote"
	pbits=$(bits "$P") sbits=$(bits "$S")
	log "apart: primary changed $pbits region(s), secondary $sbits"
	in_box secondary ip link set dev "$S" up
}

mirror_up
head -c $((16 << 20)) /dev/urandom >"$work/base.img"
nbdcopy "$work/base.img" "$(nbd_uri)" || fail "nbdcopy"

log "both sides write while apart"
apart 30
wait_until 5 is_split || fail "split brain not detected: P=$(connection "$P") S=$(connection "$S")"
ps=$(md5sum <"$XM_PRIMARY_DISK") ss=$(md5sum <"$XM_SECONDARY_DISK")
sleep 1.5 # HELLOs retry every second: still nothing may move
assert_eq "$(md5sum <"$XM_PRIMARY_DISK")" "$ps" "primary disk untouched in split brain"
assert_eq "$(md5sum <"$XM_SECONDARY_DISK")" "$ss" "secondary disk untouched in split brain"
is_split || fail "split brain forgotten: P=$(connection "$P") S=$(connection "$S")"
"$XM" status --dev "$P" | grep -q "split" || fail "text status does not say split brain"

log "resolve: the secondary's changes go"
before=$(counter "$P" tx_resync_bytes)
"$XM" resolve --dev "$S" --discard-local >/dev/null || fail "resolve"
wait_until 10 in_sync "$P" || fail "no resync after resolve: $(status_json "$P" | jq -c .daemon.replication)"
sent=$(($(counter "$P" tx_resync_bytes) - before))
log "resync sent $sent bytes for $pbits + $sbits changed region(s)"
[ "$sent" -le $(((pbits + sbits) * BLOCK)) ] || fail "resync sent more than both bitmaps"
assert_ge "$sent" $((pbits * BLOCK / 2)) "resync covered the changes"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "decision after resolve"
assert_disks_identical "after resolve"

log "safe case: the promoted secondary wrote nothing"
apart 0
wait_until 10 in_sync "$P" || fail "no automatic resync: P=$(connection "$P") S=$(connection "$S")"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "decision"
mirror_down
assert_disks_identical "after the safe case"
echo "all checks passed"
