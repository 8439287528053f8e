#!/usr/bin/env bash
# Description: the primary is killed (kill -9) in the middle of writes; on restart it knows it
# crashed, resyncs only the regions written in the last two sweep intervals (in flight or
# recently written, docs/resync.md §2), and every write an NBD client was told is done (flushed)
# is on both disks.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
command -v fio >/dev/null || skip "fio missing (make deps)"
pair_up xmth --disk-size 128M
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX
BLOCK=65536

mirror_up
head -c $((8 << 20)) /dev/urandom >"$work/flushed.img"
nbdcopy "$work/flushed.img" "$(nbd_uri)" || fail "nbdcopy" # ends with a flush

log "kill -9 of the primary in the middle of writes"
fio --name=load --ioengine=nbd --uri="$(nbd_uri)" --direct=1 --rw=randwrite --bs=64k \
	--iodepth=16 --size=16M --offset=64M --time_based --runtime=5 \
	--output="$work/fio.log" >/dev/null 2>&1 &
fio_pid=$!
sleep 1
kill -9 "$(status_json "$P" | jq .daemon.pid)"
wait "$fio_pid" # fails: the export went away
cmp -n $((8 << 20)) "$work/flushed.img" "$XM_SECONDARY_DISK" ||
	fail "the secondary lost flushed writes"

log "restart of the primary"
"$XM" detach --dev "$P" >/dev/null 2>&1 # leftovers of the killed daemon
attach_box primary
grep -q "did not end cleanly" "$work/primary.log" || fail "the primary does not know it crashed"
wait_until 5 is_connected "$P" || fail "no session after the restart"
wait_until 30 in_sync "$P" || fail "no resync: $(status_json "$P" | jq -c .daemon.replication)"
r=$(status_json "$P" | jq .daemon)
assert_eq "$(jq -r .replication.decision <<<"$r")" bitmap "decision after a primary crash"
sent=$(jq .counters.tx_resync_bytes <<<"$r")
log "resync after the crash: $sent bytes (8 MiB flushed + 16 MiB of load in the last 2 s; disk $XM_DISK_SIZE)"
[ "$sent" -le $((24 << 20)) ] || fail "resync sent more than the regions written"
cmp -n $((8 << 20)) "$work/flushed.img" "$XM_PRIMARY_DISK" || fail "the primary lost flushed writes"
mirror_down
assert_disks_identical "after the primary crash"
echo "all checks passed"
