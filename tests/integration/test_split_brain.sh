#!/usr/bin/env bash
# Description: both boxes write while the link is down (the secondary promoted, then demoted),
# two regions on both sides and others on one side only: the handshake detects split brain on
# both sides and nothing moves while the HELLOs retry; resolve --discard-local on the secondary
# resyncs exactly the regions either box changed, from the survivor, whose disk does not change.
# The safe case (the promoted box wrote nothing) resyncs by itself, again only towards the
# secondary.  The reverse (only the promoted box wrote) is refused as peer-newer on both sides:
# the older primary's data never goes over the newer secondary's by itself.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
require_nbd_ops
pair_up k --disk-size 64M
BLOCK=65536

is_split() { [ "$(connection "$P")" = split-brain ] && [ "$(connection "$S")" = split-brain ]; }
hellos_reach() { counter_reaches "$P" tx_hello "$1"; }

# write_regions URI SEED REGION...: 4 KiB in the middle of each 64 KiB region, through the NBD
# export at URI, new data for each.
write_regions() {
	local uri=$1 seed=$2 r offs=()
	shift 2
	for r in "$@"; do
		offs+=($((r * BLOCK + 8192)))
	done
	nbd_write_at "$uri" "$seed" "${offs[@]}"
}

# apart "PRIMARY REGIONS" "SECONDARY REGIONS": link down, the primary writes, the secondary is
# promoted, writes (or not), is demoted; the link comes back.
apart() {
	in_box secondary ip link set dev "$S" down
	wait_until 2 is_degraded "$P" || fail "primary did not degrade"
	# shellcheck disable=SC2086 # lists of region numbers
	[ -n "$1" ] && write_regions "$(nbd_uri)" 1000 $1
	"$XM" promote --dev "$S" >/dev/null || fail "promote of the cut-off secondary"
	# shellcheck disable=SC2086
	[ -n "$2" ] && write_regions "$(nbd_uri secondary)" 2000 $2
	"$XM" demote --dev "$S" >/dev/null || fail "demote"
	pbits=$(dirty_bits "$P") sbits=$(dirty_bits "$S")
	log "apart: primary changed $pbits region(s), secondary $sbits"
	pdig=$(digest "$XM_PRIMARY_DISK") sdig=$(digest "$XM_SECONDARY_DISK")
	in_box secondary ip link set dev "$S" up
}

mirror_up
random_file "$WORK/base.img" $((16 << 20))
nbdcopy --flush "$WORK/base.img" "$(nbd_uri)" || fail "nbdcopy"
# The sweep clears the base's intent bits (once a second): from then on the bitmaps hold
# exactly the regions written while apart.
wait_until 5 intent_clear "$P" || fail "intent bits not swept: $(status_json "$P" | jq -c .daemon.metadata.bitmap)"

# What an administrator's automation sees: the events stream (docs/events.md) says split brain.
"$XM" events --dev "$P" >"$WORK/events.out" 2>"$WORK/events.err" &
EVENTS=$!
track_worker "$EVENTS"
wait_until 5 eval '[ -s "$WORK/events.out" ]' || fail "events: no state line: $(cat "$WORK/events.err")"

log "both sides write while apart: regions 30 and 31 on both, 10 11 20 on the primary, 40 50 on the secondary"
before=$(counter "$P" tx_resync_bytes)
apart "10 11 20 30 31" "30 31 40 50"
assert_eq "$pbits" 5 "regions the primary changed"
assert_eq "$sbits" 4 "regions the secondary changed"
wait_until 5 is_split || fail "split brain not detected: P=$(connection "$P") S=$(connection "$S")"
split_line() { grep '"type":"split-brain"' "$WORK/events.out" | head -1; }
wait_until 2 eval '[ -n "$(split_line)" ]' || fail "events: no split-brain line: $(tail -3 "$WORK/events.out")"
log "  events: $(split_line)"
kill "$EVENTS" 2>/dev/null
[ "$pdig" != "$sdig" ] || fail "the disks are equal after both wrote"
# HELLOs retry every second while refused: two more rounds, and still nothing may move.
h=$(counter "$P" tx_hello)
wait_until 5 hellos_reach $((h + 2)) || fail "the primary stopped offering HELLOs"
assert_digest "$XM_PRIMARY_DISK" "$pdig" "primary disk in split brain"
assert_digest "$XM_SECONDARY_DISK" "$sdig" "secondary disk in split brain"
wait_until 3 is_split || fail "split brain forgotten: P=$(connection "$P") S=$(connection "$S")"
grep -q "split" <<<"$("$XM" status --dev "$P")" || fail "text status does not say split brain"
assert_eq "$(counter "$P" tx_resync_bytes)" "$before" "resync bytes during split brain"

log "resolve: the secondary's changes go"
"$XM" resolve --dev "$S" --discard-local >/dev/null || fail "resolve"
wait_until 10 in_sync "$P" || fail "no resync after resolve: $(status_json "$P" | jq -c .daemon.replication)"
sent=$(($(counter "$P" tx_resync_bytes) - before))
log "resync sent $sent bytes for the 7 regions either box changed"
assert_eq "$sent" $((7 * BLOCK)) "resync bytes: the union of both bitmaps"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "decision after resolve"
assert_digest "$XM_PRIMARY_DISK" "$pdig" "the survivor after the resync"
assert_disks_identical "after resolve"

log "safe case: the promoted secondary wrote nothing"
wait_until 5 intent_clear "$P" || fail "intent bits not swept"
before=$(counter "$P" tx_resync_bytes)
apart "12 13 60" ""
assert_eq "$sbits" 0 "regions the secondary changed"
wait_until 10 in_sync "$P" || fail "no automatic resync: P=$(connection "$P") S=$(connection "$S")"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "decision"
assert_eq "$(($(counter "$P" tx_resync_bytes) - before))" $((3 * BLOCK)) "resync bytes, safe case"
assert_digest "$XM_PRIMARY_DISK" "$pdig" "the primary after the automatic resync"

log "peer newer: only the promoted secondary wrote"
wait_until 5 intent_clear "$P" || fail "intent bits not swept"
before=$(counter "$P" tx_resync_bytes)
apart "" "70 71"
assert_eq "$pbits" 0 "regions the primary changed"
assert_eq "$sbits" 2 "regions the secondary changed"
is_peer_newer() { [ "$(connection "$P")" = peer-newer ] && [ "$(connection "$S")" = peer-newer ]; }
wait_until 5 is_peer_newer || fail "peer-newer not detected: P=$(connection "$P") S=$(connection "$S")"
h=$(counter "$P" tx_hello)
wait_until 5 hellos_reach $((h + 2)) || fail "the primary stopped offering HELLOs"
assert_digest "$XM_PRIMARY_DISK" "$pdig" "primary disk while the peer is newer"
assert_digest "$XM_SECONDARY_DISK" "$sdig" "secondary disk while it is newer"
assert_eq "$(counter "$P" tx_resync_bytes)" "$before" "resync bytes while the peer is newer"
log "resolve: the secondary's newer changes go after all"
"$XM" resolve --dev "$S" --discard-local >/dev/null || fail "resolve"
wait_until 10 in_sync "$P" || fail "no resync after resolve: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(($(counter "$P" tx_resync_bytes) - before))" $((2 * BLOCK)) "resync bytes, peer newer"
assert_digest "$XM_PRIMARY_DISK" "$pdig" "the primary after the resync"
mirror_down
assert_digest "$XM_PRIMARY_DISK" "$pdig" "the primary after detach"
assert_disks_identical "after peer-newer was resolved"
echo "all checks passed"
