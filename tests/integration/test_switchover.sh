#!/usr/bin/env bash
# Description: a planned switchover.  The primary is demoted while an NBD client has its export
# open and fio writes through it: every write the client was told is done is on both disks, the
# open connection is closed (the client's next request fails), and the two disks are identical
# the moment the demote is over.  The other box is then promoted: the handshake finds nothing to
# resync, the new primary's export serves the same bytes, and its writes reach the old primary.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy fio
require_nbd_ops
pair_up y --disk-size 64M

mirror_up

log "an open NBD connection: one write done, then it waits"
$NBD_OPS "$(nbd_uri)" write:$((40 << 20)):65536:7 "hold:$WORK/go" write:$((41 << 20)):65536:8 \
	>"$WORK/client.log" 2>&1 &
CLIENT=$!
track_worker "$CLIENT"
acked() { grep -qx "1 write done" "$WORK/client.log"; }
wait_until 5 acked || fail "the client's first write: $(cat "$WORK/client.log")"

log "fio writes; the primary is demoted under it"
w0=$(counter "$P" writes)
fio_load load --rw=randwrite --bs=4k --iodepth=16 --size=32M 2>/dev/null
wait_until 10 counter_reaches "$P" writes $((w0 + 200)) || fail "fio does not write"
out=$("$XM" demote --dev "$P" 2>&1) || fail "demote: $out"
log "  $out"
is_secondary() { [ "$(role_of "$1")" = secondary ]; }
wait_until 10 is_secondary "$P" || fail "the primary did not become a secondary: $(status_json "$P" | jq -c .daemon)"
wait "$FIO_PID"
log "  fio ended with exit $? (its export went away)"
[ -S "/run/xdpmirror/$P.sock" ] && fail "the demoted box still serves its NBD socket"
touch "$WORK/go"
wait "$CLIENT" && fail "the open connection still took a write after the demote: $(cat "$WORK/client.log")"
grep -q "^3 write error" "$WORK/client.log" || fail "the client's second write: $(cat "$WORK/client.log")"
log "  the open client: $(tail -1 "$WORK/client.log")"
$NBD_OPS pattern 65536 7 >"$WORK/acked.img"
cmp -n 65536 -i 0:$((40 << 20)) "$WORK/acked.img" "$XM_SECONDARY_DISK" ||
	fail "the write acknowledged before the demote is not on the secondary"
assert_disks_identical "right after the demote"
both=$(digest "$XM_PRIMARY_DISK")

log "the other box is promoted; the old primary follows it"
not_primary_connected() { [ "$(replication_state "$S")" != connected ]; }
wait_until 5 not_primary_connected || fail "the secondary still has a session with the demoted box"
out=$("$XM" promote --dev "$S" 2>&1) || fail "promote: $out"
wait_until 5 is_connected "$S" || fail "no session after the switch: $(status_json "$S" | jq -c .daemon.replication)"
wait_until 10 in_sync "$S" || fail "not in sync after the switch: $(status_json "$S" | jq -c .daemon.replication)"
r=$(status_json "$S" | jq -c .daemon)
log "  new primary: decision $(jq -r .replication.decision <<<"$r"), $(jq .counters.tx_resync_bytes <<<"$r") bytes resynced"
assert_eq "$(jq -r .replication.decision <<<"$r")" none "handshake decision after a planned switchover"
assert_eq "$(jq .counters.tx_resync_bytes <<<"$r")" 0 "bytes resynced after a planned switchover"
assert_digest "$XM_SECONDARY_DISK" "$both" "the new primary's disk after the handshake"
nbdcopy "$(nbd_uri secondary)" "$WORK/export.img" || fail "reading the new primary's export"
cmp "$WORK/export.img" "$XM_PRIMARY_DISK" || fail "the new primary's export differs from the old primary's disk"

log "writes through the new primary reach the old one"
random_file "$WORK/late.img" $((8 << 20))
nbdcopy --flush "$WORK/late.img" "$(nbd_uri secondary)" || fail "nbdcopy through the new primary"
cmp -n $((8 << 20)) "$WORK/late.img" "$XM_PRIMARY_DISK" || fail "the old primary does not hold the new writes"
"$XM" detach --dev "$S" || fail "detach the new primary"
"$XM" detach --dev "$P" || fail "detach the new secondary"
assert_disks_identical "after the switchover"
echo "all checks passed"
