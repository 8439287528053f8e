#!/usr/bin/env bash
# Description: the operator takes a disk away and puts one back while both daemons run
# (docs/protocol.md §15.4): the primary detached goes on from the peer and `disk attach --full`
# fetches every region; the secondary detached is seen as Failed by the primary at once, and a
# new disk in its place gets a full resync; under --on-io-error pass-on a full disk gives the
# client ENOSPC and stays attached.  Every message of `xdpmirror disk` is shown, and the bytes on
# both disks are compared.
# SPDX-License-Identifier: GPL-2.0
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/lib-fault.sh
source "$(dirname "$0")/../lib-fault.sh"
require_root
require_nbd_ops
pair_up dd --mtu 9000 --disk-size 16M
SIZE_MB=16
truncate -s ${SIZE_MB}M "$WORK/expect.img"

# disk_says EXPECTED ARGS...: `xdpmirror disk ARGS` fails and says EXPECTED.
disk_says() {
	local want=$1 out
	shift
	out=$("$XM" disk "$@" 2>&1) && fail "'disk $*' succeeded: $out"
	[[ $out == *"$want"* ]] || fail "'disk $*' said '$out', not '$want'"
	log "  disk $*: $out"
}

attach_box secondary
attach_box primary
wait_until 30 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
block=$(status_json "$P" | jq .daemon.metadata.bitmap.block)
write_mib "$WORK/expect.img" 10 0 1

log "what 'disk' refuses"
disk_says "a disk is attached (disk detach first)" attach --dev "$P"
disk_says "say attach or detach" --dev "$P"
disk_says "unknown option '--full'" detach --dev "$P" --full
truncate -s 1M "$WORK/small.img"

log "the primary's disk detached: writes and reads go on through the peer"
"$XM" disk detach --dev "$P" >/dev/null || fail "disk detach of the primary"
assert_eq "$(local_disk "$P")" detached "the primary's disk state"
disk_says "no disk is attached" detach --dev "$P"
write_mib "$WORK/expect.img" 20 2 0
rm -f "$WORK/read.img"
nbdcopy "$(nbd_uri primary)" "$WORK/read.img" || fail "reading the export without a disk"
cmp "$WORK/read.img" "$WORK/expect.img" || fail "the export does not read back what was written"
same_range "$XM_SECONDARY_DISK" "$WORK/expect.img" 0 $SIZE_MB || fail "the secondary lacks writes"
same_range "$XM_PRIMARY_DISK" "$WORK/expect.img" 2 1 && fail "the detached disk got a write"
disk_says "is 1048576 bytes: the export needs at least $((SIZE_MB << 20))" attach --dev "$P" --disk "$WORK/small.img"

log "disk attach --full: every region comes from the peer"
c0=$(counter "$P" backfill_bytes)
"$XM" disk attach --dev "$P" --full >/dev/null || fail "disk attach --full"
wait_until 20 local_disk_is "$P" attached || fail "not attached: $(status_json "$P" | jq -c .daemon.disk)"
assert_eq $(($(counter "$P" backfill_bytes) - c0)) $((SIZE_MB << 20)) "bytes fetched by --full"
cmp "$XM_PRIMARY_DISK" "$WORK/expect.img" || fail "the primary's disk after --full"

log "the secondary's disk detached: the primary knows at once and goes on"
t0=$(($(counter "$P" peer_timeouts) + $(counter "$P" peer_silent) + $(counter "$P" peer_stalls)))
"$XM" disk detach --dev "$S" >/dev/null || fail "disk detach of the secondary"
wait_until 5 peer_disk_is "$P" Failed || fail "peer disk: $(peer_disk "$P")"
grep -q "ended: peer disk detached" "$WORK/primary.log" || fail "the primary's log does not say why"
write_mib "$WORK/expect.img" 30 3
assert_eq $(($(counter "$P" peer_timeouts) + $(counter "$P" peer_silent) + $(counter "$P" peer_stalls))) \
	"$t0" "sessions ended by a timeout"

log "a new disk for the secondary: a full resync"
truncate -s ${SIZE_MB}M "$WORK/new.img"
"$XM" disk attach --dev "$S" --disk "$WORK/new.img" >/dev/null || fail "disk attach of a new disk"
grep -q "a new disk: every region is resynced" "$WORK/secondary.log" ||
	fail "the secondary did not take it as a new disk: $(tail -3 "$WORK/secondary.log")"
wait_until 30 in_sync "$P" || fail "no resync: $(status_json "$P" | jq -c .daemon.replication)"
cmp "$WORK/new.img" "$WORK/expect.img" || fail "the new disk after its resync"
assert_eq "$(status_json "$P" | jq .daemon.replication.resync.last.bytes)" $((SIZE_MB << 20)) \
	"bytes of the full resync"
mirror_down
cmp "$XM_PRIMARY_DISK" "$WORK/new.img" || fail "the disks differ"

log "--on-io-error pass-on: a full disk fails the request and stays in use"
tmpfs_disk pfull $SIZE_MB
cp "$XM_PRIMARY_DISK" "$TMPFS_DISK"
rm -f "$(box_meta primary)" "$(box_meta secondary)"
attach_box secondary --disk "$WORK/new.img"
attach_box primary --disk "$TMPFS_DISK" --on-io-error pass-on
wait_until 30 in_sync "$P" || fail "pass-on: initial sync"
assert_eq "$(status_json "$P" | jq -r .daemon.disk.policy)" pass-on "the policy in status"
# The copy allocated every block; a hole punched at MiB 5 is a block the full tmpfs cannot give.
fallocate -p -o $((5 << 20)) -l $((1 << 20)) "$TMPFS_DISK"
enospc_on pfull
synced0=$(logged "$WORK/primary.log" "peer in sync")
for i in 0 1 2 3 4 5 6 7; do
	$NBD_OPS "$(nbd_uri primary)" "write:$(((5 << 20) + i * 131072)):65536:40" >"$WORK/passon.log" 2>&1 &&
		fail "pass-on: the write succeeded on a full disk"
	grep -q "No space left on device" "$WORK/passon.log" || fail "pass-on: $(cat "$WORK/passon.log")"
done
assert_eq "$(local_disk "$P")" attached "pass-on: the disk state"
# Each failed write's region is resynced; the log says so once, not once per write.
wait_until 10 in_sync "$P" || fail "pass-on: not in sync after the failed writes"
assert_le $(($(logged "$WORK/primary.log" "peer in sync") - synced0)) 1 "pass-on: 'peer in sync' lines"
enospc_off pfull
log "all checks passed"
