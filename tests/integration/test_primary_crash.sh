#!/usr/bin/env bash
# Description: the primary is killed (kill -9) in the middle of writes; on restart it knows it
# crashed, resyncs exactly the extents of its activity log (docs/protocol.md §8.6: the load's four
# 4 MiB extents, whose intent bits were on disk before any write into them), and every write an
# NBD client was told is done (flushed) is on both disks.  The restarted primary's disk is the
# data of record: the resync does not change it.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd fio nbdcopy
pair_up h --disk-size 128M
BLOCK=65536

mirror_up
random_file "$WORK/flushed.img" $((8 << 20))
nbdcopy "$WORK/flushed.img" "$(nbd_uri)" || fail "nbdcopy" # ends with a flush

log "kill -9 of the primary in the middle of writes"
fio_load load --rw=randwrite --bs=64k --iodepth=16 --size=16M --offset=64M 2>/dev/null
w0=$(counter "$P" writes)
# writes_in_flight: the load has been running a while and has writes in the active set now.
writes_in_flight() {
	local r
	r=$(status_json "$P" | jq -c '.daemon | [.counters.writes, .replication.active_writes]')
	[ "$(jq '.[0]' <<<"$r")" -ge $((w0 + 100)) ] && [ "$(jq '.[1]' <<<"$r")" -ge 1 ]
}
wait_until 10 writes_in_flight || fail "the load does not keep writes in flight: $(status_json "$P" | jq -c .daemon.replication)"
# The nbdcopy's two extents age out of the log after 2 s idle; the load keeps its four (64-80 MiB).
al_is_the_load() { [ "$(status_json "$P" | jq .daemon.activity_log.extents)" = 4 ]; }
wait_until 10 al_is_the_load || fail "activity log: $(status_json "$P" | jq -c .daemon.activity_log)"
al_bytes=$(status_json "$P" | jq .daemon.activity_log.crash_resync_bytes)
assert_eq "$al_bytes" $((16 << 20)) "what a crash now would resync (activity_log.crash_resync_bytes)"
kill_daemon primary
wait "$FIO_PID" # fails: the export went away
cmp -n $((8 << 20)) "$WORK/flushed.img" "$XM_SECONDARY_DISK" ||
	fail "the secondary lost flushed writes"
record=$(digest "$XM_PRIMARY_DISK")

log "restart of the primary"
"$XM" detach --dev "$P" >/dev/null 2>&1 # leftovers of the killed daemon
attach_box primary
wait_until 2 grep -q "did not end cleanly" "$WORK/primary.log" || fail "the primary does not know it crashed"
wait_until 5 is_connected "$P" || fail "no session after the restart"
wait_until 30 in_sync "$P" || fail "no resync: $(status_json "$P" | jq -c .daemon.replication)"
r=$(status_json "$P" | jq .daemon)
assert_eq "$(jq -r .replication.decision <<<"$r")" bitmap "decision after a primary crash"
sent=$(jq .counters.tx_resync_bytes <<<"$r")
log "resync after the crash: $sent bytes (the activity log's 4 extents of 4 MiB; disk $XM_DISK_SIZE)"
assert_eq "$sent" "$al_bytes" "bytes resynced after the crash: the activity log's extents"
cmp -n $((8 << 20)) "$WORK/flushed.img" "$XM_PRIMARY_DISK" || fail "the primary lost flushed writes"
assert_digest "$XM_PRIMARY_DISK" "$record" "the restarted primary's disk after the resync"
mirror_down
assert_disks_identical "after the primary crash"
echo "all checks passed"
