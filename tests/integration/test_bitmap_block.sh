#!/usr/bin/env bash
# Description: the two boxes keep bitmaps of different granularity (--bitmap-block 256K on the
# primary and 4K on the secondary, then 4K and 1M).  After a split brain resolved with
# --discard-local, the primary merges the secondary's bits into its own: every region of the
# primary's granularity that either box wrote is resynced, exactly those bytes and no more, the
# survivor's disk does not change and both disks end identical.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_nbd_ops
pair_up m --disk-size 32M
K=1024 M=$((1 << 20))

is_split() { [ "$(connection "$P")" = split-brain ] && [ "$(connection "$S")" = split-brain ]; }
block_of() { status_json "$1" | jq .daemon.metadata.bitmap.block; }

# round PRIMARY_BLOCK SECONDARY_BLOCK EXPECTED_BYTES: new metadata on both boxes with these
# granularities, an initial sync, then a split brain in which the primary writes 4 KiB at
# 1 MiB + 8 KiB and 5 MiB + 100 KiB, the secondary at 3 MiB + 4 KiB, 5 MiB + 200 KiB and 9 MiB.
round() {
	local pblock=$1 sblock=$2 want=$3 before record
	log "primary --bitmap-block $pblock, secondary --bitmap-block $sblock"
	rm -f "$(box_meta primary)" "$(box_meta secondary)"
	attach_box secondary --bitmap-block "$sblock"
	attach_box primary --bitmap-block "$pblock"
	wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
	wait_until 30 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
	assert_eq "$(block_of "$P")" "$pblock" "primary's bitmap granularity"
	assert_eq "$(block_of "$S")" "$sblock" "secondary's bitmap granularity"
	wait_until 5 intent_clear "$P" || fail "intent bits of the initial sync not swept"

	in_box secondary ip link set dev "$S" down
	wait_until 2 is_degraded "$P" || fail "primary did not degrade"
	nbd_write_at "$(nbd_uri)" 100 $((M + 8 * K)) $((5 * M + 100 * K))
	"$XM" promote --dev "$S" >/dev/null || fail "promote of the cut-off secondary"
	nbd_write_at "$(nbd_uri secondary)" 200 $((3 * M + 4 * K)) $((5 * M + 200 * K)) $((9 * M))
	"$XM" demote --dev "$S" >/dev/null || fail "demote"
	log "  apart: primary $(dirty_bits "$P") dirty bit(s), secondary $(dirty_bits "$S")"
	record=$(digest "$XM_PRIMARY_DISK")
	before=$(counter "$P" tx_resync_bytes)
	in_box secondary ip link set dev "$S" up
	wait_until 5 is_split || fail "split brain not detected: P=$(connection "$P") S=$(connection "$S")"
	"$XM" resolve --dev "$S" --discard-local >/dev/null || fail "resolve"
	wait_until 10 in_sync "$P" || fail "no resync after resolve: $(status_json "$P" | jq -c .daemon.replication)"
	sent=$(($(counter "$P" tx_resync_bytes) - before))
	log "  resync sent $sent bytes"
	assert_eq "$sent" "$want" "resync bytes: the regions either box wrote, at the primary's granularity"
	assert_digest "$XM_PRIMARY_DISK" "$record" "the survivor's disk"
	mirror_down
	assert_digest "$XM_PRIMARY_DISK" "$record" "the survivor's disk after detach"
	assert_disks_identical "after the resync"
}

# 256 KiB regions: 4, 20 (both boxes), 12 and 36.
round 262144 4096 $((4 * 256 * K))
# The secondary's 1 MiB regions [3, 4), [5, 6) and [9, 10) MiB, with the primary's write at
# 5 MiB + 100 KiB inside one of them, plus the primary's 4 KiB at 1 MiB + 8 KiB.
round 4096 1048576 $((3 * M + 4 * K))
echo "all checks passed"
