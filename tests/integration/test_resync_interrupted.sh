#!/usr/bin/env bash
# Description: a resync interrupted halfway, three ways: the secondary is killed (kill -9), the
# link goes down, the primary is killed (kill -9).  Each time the secondary stays Inconsistent
# and cannot be promoted without --force; the next session resyncs by bitmap, never in full,
# and sends no more than what was left (plus what was in flight); the primary's disk, the data
# of record, never changes; both disks end identical.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
pair_up x --disk-size 64M
# Slow enough to catch it halfway, even on a loaded box: 16 MiB at 4 MiB/s take about four
# seconds (at 8 MiB/s a busy box finished it between the check and the kill).
OPTS=(--resync-rate 4 --initial-sync skip)
DIRTY=$((16 << 20)) CHUNK=$((256 << 10))

# dirty_the_secondary: the secondary's link goes down, the primary writes DIRTY new bytes, the
# link comes back and the resync starts; sets RECORD (the primary's digest).
dirty_the_secondary() {
	in_box secondary ip link set dev "$S" down
	wait_until 2 is_degraded "$P" || fail "primary did not degrade"
	random_file "$WORK/in.img" $DIRTY
	nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy"
	RECORD=$(digest "$XM_PRIMARY_DISK")
	BEFORE=$(counter "$P" tx_resync_bytes)
	in_box secondary ip link set dev "$S" up
}

# halfway: some of the resync is done and more than a quarter is left (the status it saw: R).
halfway() {
	R=$(status_json "$P" | jq -c .daemon.replication.resync)
	[ "$(jq .done_bytes <<<"$R")" -ge $((2 << 20)) ] && [ "$(jq .remaining_bytes <<<"$R")" -ge $((DIRTY / 4)) ]
}

# interrupt_at_halfway: waits for it; sets LEFT to the bytes left plus the chunks in flight, from
# the same status that said halfway.
interrupt_at_halfway() {
	local r
	wait_until 10 halfway || fail "the resync did not get halfway: $(status_json "$P" | jq -c .daemon.replication.resync)"
	r=$R
	LEFT=$(($(jq .remaining_bytes <<<"$r") + $(jq .chunks_active <<<"$r") * CHUNK))
	log "  interrupted after $(jq .done_bytes <<<"$r") bytes, $(jq .remaining_bytes <<<"$r") left, $(jq .chunks_active <<<"$r") chunk(s) in flight"
}

# secondary_inconsistent: the cut-off secondary knows its disk is not a copy yet.
secondary_inconsistent() {
	assert_eq "$(disk_state "$S")" Inconsistent "the secondary's disk state after the interruption"
	out=$("$XM" promote --dev "$S" 2>&1) && fail "an Inconsistent secondary was promoted: $out"
	grep -q Inconsistent <<<"$out" || fail "promote refused without saying why: $out"
}

# resync_finishes WHAT: the next session resyncs by bitmap, at most what was left, and the
# primary's disk is what it was.
resync_finishes() {
	local sent
	wait_until 20 in_sync "$P" || fail "$1: no resync: $(status_json "$P" | jq -c .daemon.replication)"
	assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "$1: decision"
	assert_eq "$(disk_state "$S")" UpToDate "$1: the secondary's disk state"
	sent=$(($(counter "$P" tx_resync_bytes) - AFTER_CUT))
	log "  $1: the resync after the interruption sent $sent bytes ($LEFT were left or in flight)"
	assert_le "$sent" "$LEFT" "$1: bytes resynced after the interruption"
	assert_digest "$XM_PRIMARY_DISK" "$RECORD" "$1: the primary's disk"
	wait_until 5 eval 'cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK"' || assert_disks_identical "$1"
}

mirror_up "${OPTS[@]}"

log "the secondary is killed halfway through a resync"
dirty_the_secondary
interrupt_at_halfway
kill_daemon secondary
wait_until 2 is_degraded "$P" || fail "primary did not notice"
AFTER_CUT=$(counter "$P" tx_resync_bytes)
in_box secondary "$XM" detach --dev "$S" >/dev/null 2>&1 # leftovers of the killed daemon
attach_box secondary "${OPTS[@]}"
# The restarted daemon reads its metadata: Inconsistent until the resync ends (more than half a
# second away at this rate).
assert_eq "$(disk_state "$S")" Inconsistent "the restarted secondary's disk state"
resync_finishes "after kill -9 of the secondary"

log "the link goes down halfway through a resync"
dirty_the_secondary
interrupt_at_halfway
in_box secondary ip link set dev "$S" down
wait_until 2 is_degraded "$P" || fail "primary did not notice"
wait_until 2 not_connected "$S" || fail "the secondary did not notice"
AFTER_CUT=$(counter "$P" tx_resync_bytes)
secondary_inconsistent
in_box secondary ip link set dev "$S" up
resync_finishes "after the link came back"

log "the primary is killed halfway through a resync"
dirty_the_secondary
interrupt_at_halfway
kill_daemon primary
wait_until 2 not_connected "$S" || fail "the secondary did not notice"
secondary_inconsistent
"$XM" detach --dev "$P" >/dev/null 2>&1 # leftovers of the killed daemon
# A crashed primary resyncs every region whose bit is on its disk: what was dirty and not yet
# cleared by a finished chunk, and the recently written ones (docs/resync.md §2).
LEFT=$DIRTY AFTER_CUT=0
attach_box primary "${OPTS[@]}"
wait_until 2 grep -q "did not end cleanly" "$WORK/primary.log" || fail "the primary does not know it crashed"
resync_finishes "after kill -9 of the primary"

mirror_down
assert_digest "$XM_PRIMARY_DISK" "$RECORD" "the primary's disk after detach"
assert_disks_identical "after three interrupted resyncs"
echo "all checks passed"
