#!/usr/bin/env bash
# Description: the application writes to the very regions being resynced.  48 MiB are dirty;
# fio starts writing all over the same 48 MiB (every block once, with verify) while the link is
# still down, and goes on while the resync runs.  Resync chunks and application writes meet in
# the active set (overlap waits), fio reads back what it wrote from the primary, and the
# secondary ends with the primary's bytes: no resync chunk carried older bytes over a newer
# write (a block is written only once, so such a chunk would leave it wrong).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy fio
pair_up w --disk-size 64M
DIRTY=$((48 << 20))

mirror_up --initial-sync skip

log "the secondary's link goes down; $((DIRTY >> 20)) MiB are written"
in_box secondary ip link set dev "$S" down
wait_until 2 is_degraded "$P" || fail "primary did not degrade"
random_file "$WORK/in.img" $DIRTY
nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy"
assert_eq "$(($(dirty_bits "$P") * 65536))" $DIRTY "dirty bytes"

log "fio writes over the same regions; the link comes up under it"
waits0=$(counter "$P" overlap_waits)
w0=$(counter "$P" writes)
fio --name=over --ioengine=nbd --uri="$(nbd_uri)" --direct=1 --rw=randwrite --bsrange=4k-64k \
	--size=$DIRTY --iodepth=16 --rate=32m --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
	--output="$WORK/fio.log" &
FIO=$!
track_worker "$FIO"
wait_until 10 counter_reaches "$P" writes $((w0 + 50)) || fail "fio does not write"
in_box secondary ip link set dev "$S" up
# The writes counter from the very status that first shows the resync running: read on its own,
# it could come after the resync ended (seen under load: "0 writes admitted during the resync").
resync_started() {
	local r
	r=$(status_json "$P" | jq -c '.daemon | [.replication.resync.active, .counters.writes]')
	[ "$(jq '.[0]' <<<"$r")" = true ] || return 1
	w1=$(jq '.[1]' <<<"$r")
}
wait_until 5 resync_started || fail "no resync started: $(status_json "$P" | jq -c .daemon.replication)"
# The resync ends while fio still has work: writes were admitted after it started.
wait_until 20 in_sync "$P" || fail "the resync did not finish: $(status_json "$P" | jq -c .daemon.replication)"
w2=$(counter "$P" writes)
wait "$FIO" || fail "fio with verify: $(grep -E 'err=|verify' "$WORK/fio.log" | head -3)"
grep -qE '^ +READ: .*io=48.0MiB' "$WORK/fio.log" || fail "fio did not read back its 48 MiB: $(grep READ: "$WORK/fio.log")"
waits=$(($(counter "$P" overlap_waits) - waits0))
log "  $((w2 - w1)) writes admitted during the resync; $waits waited for an overlapping resync chunk or write"
assert_ge "$((w2 - w1))" 1 "application writes during the resync"
assert_ge "$waits" 1 "overlap waits"

wait_until 20 in_sync "$P" || fail "out of sync after fio: $(status_json "$P" | jq -c .daemon.replication)"
log "  in sync: $(counter "$P" tx_resync_bytes) resync bytes"
mirror_down
assert_disks_identical "after the resync under writes"
echo "all checks passed"
