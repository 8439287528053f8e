#!/usr/bin/env bash
# Description: a damaged bitmap page never hides a region (issue 17).  The primary writes while
# the secondary is away; with both stopped, one byte of the primary's bitmap page that holds those
# bits is zeroed and one byte of another page of the secondary's is changed.  At the next start
# each box logs the page that failed its checksum, counts it in status, and treats every region
# in it as out of sync: the resync covers those whole pages (and of the page that was not damaged
# only its one written region), in_sync is reached and the disks are byte-equal.  Started again,
# the pages were rewritten and nothing fails.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_nbd_ops
# 4 KiB per bit: 67584 bits, three bitmap pages: 0 covers 0-128 MiB, 1 128-256, 2 256-264.
pair_up bc --disk-size 264M
K=4096 M=$((1 << 20)) PAGE_BITS=32768 BITMAP=8192
OPTS=(--bitmap-block "$K")
bad_pages() { status_json "$1" | jq .daemon.metadata.bitmap.bad_pages; }
# byte_at FILE OFFSET: one byte of a file, as a decimal number.
byte_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
# put_byte FILE OFFSET VALUE: writes one byte in place.
put_byte() { printf '%b' "\\x$(printf %02x "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# logged BOX N: the box's log names bitmap page N as failed, in the documented words.
logged() {
	grep -qF "metadata '$(box_meta "$1")': bitmap page $2 failed its checksum: its regions are marked out of sync" \
		"$WORK/$1.log"
}

mirror_up "${OPTS[@]}"
wait_until 5 intent_clear "$P" || fail "intent bits of the initial sync not swept"

log "the secondary detaches; the primary writes 8 regions at 1 MiB (page 0) and one at 200 MiB (page 1)"
"$XM" detach --dev "$S" || fail "detach secondary"
wait_until 2 is_degraded "$P" || fail "primary did not degrade"
nbd_write_at "$(nbd_uri)" 300 $((M)) $((M + K)) $((M + 2 * K)) $((M + 3 * K)) $((M + 4 * K)) \
	$((M + 5 * K)) $((M + 6 * K)) $((M + 7 * K)) $((200 * M))
assert_eq "$(dirty_bits "$P")" 9 "regions written while the secondary was away"
"$XM" detach --dev "$P" || fail "detach primary"
record=$(digest "$XM_PRIMARY_DISK")

# Bits 256-263 (1 MiB + 0..7 x 4 KiB) are byte 32 of page 0.
assert_eq "$(byte_at "$(box_meta primary)" $((BITMAP + 32)))" 255 "the primary's bitmap byte of those regions"
put_byte "$(box_meta primary)" $((BITMAP + 32)) 0
# The secondary's page 2, a bit of a region nobody wrote.
put_byte "$(box_meta secondary)" $((BITMAP + 2 * 4096 + 100)) 16
log "zeroed the primary's bitmap byte at $((BITMAP + 32)) (page 0); set a bit in the secondary's page 2"

# The primary alone first, so what it loaded is seen before a resync changes it.
attach_box primary "${OPTS[@]}"
p_bad=$(bad_pages "$P") p_dirty=$(dirty_bits "$P")
p_text=$("$XM" status --dev "$P")
before=$(counter "$P" tx_resync_bytes)
attach_box secondary "${OPTS[@]}"
s_bad=$(bad_pages "$S")
wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 30 in_sync "$P" || fail "no resync: $(status_json "$P" | jq -c .daemon.replication)"
assert_disks_identical "after the resync"
sent=$(($(counter "$P" tx_resync_bytes) - before))
log "primary: $p_bad bad page(s), $p_dirty dirty bits at start; secondary: $s_bad bad page(s); resync sent $sent bytes"
logged primary 0 || fail "the primary's log does not name page 0: $(cat "$WORK/primary.log")"
logged secondary 2 || fail "the secondary's log does not name page 2: $(cat "$WORK/secondary.log")"
assert_eq "$(grep -c "failed its checksum" "$WORK/primary.log")" 1 "lines about bad pages (primary)"
assert_eq "$(grep -c "failed its checksum" "$WORK/secondary.log")" 1 "lines about bad pages (secondary)"
assert_eq "$p_bad" 1 "primary: metadata.bitmap.bad_pages"
assert_eq "$s_bad" 1 "secondary: metadata.bitmap.bad_pages"
grep -q "bitmap pages failed checksum *1" <<<"$p_text" || fail "status text: $p_text"
assert_eq "$p_dirty" $((PAGE_BITS + 1)) "primary: page 0 all out of sync, page 1 as stored"
# Page 0 and the secondary's page 2 whole, the one region of page 1.
assert_eq "$sent" $(((PAGE_BITS + 1 + 2048) * K)) "resync bytes"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "handshake decision"
assert_digest "$XM_PRIMARY_DISK" "$record" "the primary's disk after the resync"
mirror_down

log "started again: both pages were rewritten with their checksums"
mirror_up "${OPTS[@]}"
assert_eq "$(bad_pages "$P")" 0 "primary: bad pages after the rewrite"
assert_eq "$(bad_pages "$S")" 0 "secondary: bad pages after the rewrite"
! grep -q "failed its checksum" "$WORK/primary.log" "$WORK/secondary.log" || fail "a page failed again"
mirror_down
assert_disks_identical "after the restart"
echo "all checks passed"
