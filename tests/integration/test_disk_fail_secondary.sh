#!/usr/bin/env bash
# Description: the secondary's disk fills up (ENOSPC on a tmpfs) in the middle of a client's
# writes: the secondary tells the primary at once (CLOSE, docs/protocol.md §15.5), so the primary
# says "peer disk failed" with no session ended by a timeout, and every client write succeeds;
# once the fault is gone `disk attach` on the secondary takes the same disk back, the pair resyncs
# only the regions written without it, and the two disks are equal.
# SPDX-License-Identifier: GPL-2.0
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/lib-fault.sh
source "$(dirname "$0")/../lib-fault.sh"
require_root
require_nbd_ops
SIZE_MB=64
# tmpfs asks for 4 KiB direct I/O (no STATX_DIOALIGN): jumbo frames carry whole blocks.
pair_up ds --mtu 9000 --disk-size ${SIZE_MB}M
# timeout_ends IF: sessions the daemon ended because the peer went quiet (probes, daemon, acks).
timeout_ends() { status_json "$1" | jq '.daemon.counters | .peer_timeouts + .peer_silent + .peer_stalls'; }
reason() { status_json "$1" | jq -r .daemon.replication.reason; }

tmpfs_disk sfull $SIZE_MB
truncate -s ${SIZE_MB}M "$WORK/expect.img"
# Both disks are zeros: no initial sync, so the secondary's image stays sparse and the fault can
# bite (a sync would fill every block of it).
attach_box secondary --disk "$TMPFS_DISK" --initial-sync skip
attach_box primary --initial-sync skip
wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 10 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
assert_le "$(tmpfs_used_bytes "$WORK/sfull")" $((1 << 20)) "bytes the secondary's tmpfs holds after the handshake"
block=$(status_json "$P" | jq .daemon.metadata.bitmap.block)

log "writes before the fault (MiB 0-3)"
write_mib "$WORK/expect.img" 100 0 1 2 3
same_range "$TMPFS_DISK" "$WORK/expect.img" 0 4 || fail "the secondary lacks the writes made before the fault"
ends0=$(timeout_ends "$P") close0=$(counter "$P" rx_close) wd0=$(counter "$P" writes_degraded)

log "the secondary's disk fills up; writes to MiB 4-7, then a rewrite of MiB 1"
enospc_on sfull
write_mib "$WORK/expect.img" 200 4 5 6 7 1
log "  every write succeeded"
wait_until 10 peer_disk_is "$P" Failed ||
	fail "the primary does not say the peer's disk failed: $(status_json "$P" | jq -c .daemon.replication)"
log "  primary: peer_disk $(peer_disk "$P"), reason '$(reason "$P")'"
assert_eq "$(timeout_ends "$P")" "$ends0" "sessions the primary ended by a timeout"
assert_ge "$(counter "$P" rx_close)" $((close0 + 1)) "CLOSE frames the primary received"
# The session's end says "peer disk failed"; the refused reconnect after it names the refusal's cause
# as both boxes do (docs/protocol.md §4.5): "refused by peer: the secondary's disk failed".
r=$(reason "$P")
[[ $r == *"peer disk failed"* || $r == "refused by peer: the secondary's disk failed" ]] ||
	fail "the primary's reason: '$r'"
assert_ge "$(logged "$WORK/primary.log" "peer disk failed")" 1 "'peer disk failed' lines in the primary's log"
assert_eq "$(reason "$S")" "disk failed: No space left on device" "the secondary's reason"
assert_eq "$(local_disk "$S")" failed "the secondary's disk state"
assert_eq "$(logged "$WORK/secondary.log" "disk failed: No space left on device")" 1 \
	"'disk failed' lines in the secondary's log"
log "  secondary: $(grep -F "disk failed: No space" "$WORK/secondary.log")"

log "writes go on without the secondary (MiB 8-9)"
write_mib "$WORK/expect.img" 300 8 9
assert_ge "$(counter "$P" writes_degraded)" $((wd0 + 2)) "the primary's degraded writes"
assert_eq "$(timeout_ends "$P")" "$ends0" "sessions the primary ended by a timeout"
zero_range "$TMPFS_DISK" 4 6 || fail "the full disk holds writes made after it failed"
same_range "$XM_PRIMARY_DISK" "$WORK/expect.img" 0 $SIZE_MB || fail "the primary's disk lacks writes"
bits=$(dirty_bits "$P")
# Every region written from the failure on (MiB 1, 4-9) waits for the resync.
assert_ge "$bits" $((7 * (1 << 20) / block)) "regions out of sync"
sent0=$(counter "$P" tx_resync_bytes)

log "the fault goes off; disk attach of the same path on the secondary"
enospc_off sfull
timeout 20 "$XM" disk attach --dev "$S" >"$WORK/disk-attach.log" 2>&1 ||
	fail "disk attach: $(cat "$WORK/disk-attach.log")"
wait_until 20 in_sync "$P" || fail "no resync: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(local_disk "$S")" attached "the secondary's disk state"
assert_eq "$(peer_disk "$P")" UpToDate "the primary's view of the peer's disk"
st=$(status_json "$P" | jq -c .daemon)
assert_eq "$(jq -r .replication.decision <<<"$st")" bitmap "the handshake's decision"
sent=$(($(jq .counters.tx_resync_bytes <<<"$st") - sent0)) last=$(jq .replication.resync.last.bytes <<<"$st")
log "  $bits dirty regions = $((bits * block)) bytes; the resync sent $sent bytes, the last sync $last (disk $((SIZE_MB << 20)))"
# At least what the secondary missed, at most the dirty regions: much less than the disk.
for b in "$sent" "$last"; do
	assert_ge "$b" $((7 << 20)) "bytes resynced"
	assert_le "$b" $((bits * block)) "bytes resynced"
done
assert_le "$((sent * 4))" $((SIZE_MB << 20)) "bytes resynced x 4"
assert_eq "$(timeout_ends "$P")" "$ends0" "sessions the primary ended by a timeout"

log "mirroring as before"
write_mib "$WORK/expect.img" 400 10 1
mirror_down
cmp "$TMPFS_DISK" "$WORK/expect.img" || fail "the secondary's disk differs from what was written"
cmp "$XM_PRIMARY_DISK" "$TMPFS_DISK" || fail "the disks differ"
echo "all checks passed"
