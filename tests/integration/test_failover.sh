#!/usr/bin/env bash
# Description: failover with a real filesystem: ext4 on the primary's export, 30 fsynced files,
# kill -9 of the primary under a running writer; the secondary is promoted, its export holds a
# clean ext4 (after journal replay) with every fsynced file intact; the old primary comes back
# as a secondary and is resynced from the bitmap, not in full, towards itself only: the new
# primary's disk is the same before and after, and both disks end identical.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_fuse
require_cmd mkfs.ext4 e2fsck dumpe2fs sha256sum
pair_up o --disk-size 128M
SIZE=$((128 << 20))
src=$WORK/src
# Stack 1: the original primary's export; stack 2: the promoted secondary's export.
ST1=$WORK/stack1 ST2=$WORK/stack2 PID1='' PID2='' WRITER_PID=''

mirror_up

log "promote while the primary is connected is refused"
out=$("$XM" promote --dev "$S" 2>&1)
rc=$?
log "  exit $rc: $out"
[ "$rc" -ne 0 ] || fail "promote with a connected primary succeeded: $out"
grep -qi connected <<<"$out" || fail "promote refused without saying why: $out"
assert_eq "$(role_of "$S")" secondary "role after the refused promote"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.sync)" in_sync "primary after the refused promote"

log "ext4 on the primary's export; 30 files, fsynced"
mkdir -p "$src"
for i in $(seq -w 1 30); do
	random_file "$src/f$i" "$(shuf -i 10240-1048576 -n 1)"
done
(cd "$src" && sha256sum f*) >"$WORK/sums"
nbd_stack_up "$ST1" "$(nbd_uri)"
PID1=$STACK_PID
assert_eq "$(stat -c %s "$ST1/fuse/nbd")" "$SIZE" "size of the FUSE file"
mkfs.ext4 -q -F "$STACK_LOOP" || fail "mkfs.ext4"
mount "$STACK_LOOP" "$ST1/mnt" || fail "mount $STACK_LOOP"
mkdir "$ST1/mnt/files" "$ST1/mnt/more" || fail "mkdir in the filesystem"
cp "$src"/f* "$ST1/mnt/files/" || fail "copying the files"
sync "$ST1"/mnt/files/f* || fail "fsync of the files"
sync -f "$ST1/mnt" || fail "syncfs"
(cd "$ST1/mnt/files" && sha256sum --quiet -c "$WORK/sums") || fail "files differ on the primary"
# Let the sweep clear the bits of regions both boxes have (once a second): what the failover
# resyncs is then what was written around the crash, not the whole mkfs and copy.
wait_until 5 intent_clear "$P" || fail "intent bits not swept: $(status_json "$P" | jq -c .daemon.metadata.bitmap)"

log "a writer keeps writing (fsync per file) while the primary is killed"
(
	n=0
	while :; do
		dd if=/dev/urandom of="$ST1/mnt/more/m$n" bs=64K count=$((1 + n % 8)) conv=fsync status=none || exit 0
		n=$((n + 1))
	done
) 2>/dev/null &
WRITER_PID=$!
track_worker "$WRITER_PID"
w0=$(counter "$P" writes)
wait_until 5 counter_reaches "$P" writes $((w0 + 20)) || fail "the writer does not write"
log "  kill -9 the primary daemon after $(($(counter "$P" writes) - w0)) writes, $(intent_bits "$P") intent bits set"
kill_daemon primary
t_kill=$(now_us)

log "tear down the dead export's filesystem, loop device and FUSE mount"
stop_pids "$WRITER_PID"
nbd_stack_down "$ST1" "$PID1"
is_mounted "$ST1/mnt" && fail "$ST1/mnt still mounted"
is_mounted "$ST1/fuse" && fail "$ST1/fuse still mounted"
"$XM" detach --dev "$P" || fail "detach of the killed primary"

log "promote the secondary"
wait_until 5 not_connected "$S" ||
	fail "the secondary still sees a connected primary: $(status_json "$S" | jq -c .daemon.replication)"
log "  the secondary noticed the loss after $(secs_since "$t_kill") s: $(status_json "$S" | jq -c '.daemon.replication | {state, connection}')"
assert_eq "$(disk_state "$S")" UpToDate "secondary's disk state before promote"
t0=$(now_us)
out=$("$XM" promote --dev "$S" 2>&1) || fail "promote: $out"
log "  promote took $(secs_since "$t0") s ($(secs_since "$t_kill") s after the kill): $out"
assert_eq "$(role_of "$S")" primary "role after promote"
[ -S "/run/xdpmirror/$S.sock" ] || fail "the promoted box serves no NBD socket"

log "the promoted export: journal replay, e2fsck -fn, every fsynced file intact"
nbd_stack_up "$ST2" "$(nbd_uri secondary)"
PID2=$STACK_PID
# The filesystem was in use when its box died, so its journal needs replaying (what mount does)
# before a check can expect it consistent.  A read-only check before the replay is only logged.
e2fsck -fn "$STACK_LOOP" >"$WORK/fsck-before-replay.out" 2>&1
log "  e2fsck -fn before the journal replay: exit $?"
if grep -q needs_recovery <<<"$(dumpe2fs -h "$STACK_LOOP" 2>/dev/null)"; then
	e2fsck -E journal_only -y "$STACK_LOOP" >"$WORK/replay.out" 2>&1
	rc=$?
	log "  journal replayed (e2fsck -E journal_only exit $rc)"
	[ $rc -le 1 ] || { cat "$WORK/replay.out"; fail "journal replay"; }
fi
e2fsck -fn "$STACK_LOOP" >"$WORK/fsck.out" 2>&1 || { cat "$WORK/fsck.out"; fail "e2fsck -fn on the promoted export"; }
log "  e2fsck: $(tail -1 "$WORK/fsck.out")"
mount -o ro "$STACK_LOOP" "$ST2/mnt" || fail "mount the promoted export read-only"
(cd "$ST2/mnt/files" && sha256sum --quiet -c "$WORK/sums") || fail "fsynced files differ after failover"
log "  all $(wc -l <"$WORK/sums") files match; $(find "$ST2/mnt/more" -type f | wc -l) files of the writer survived"
nbd_stack_down "$ST2" "$PID2"
is_mounted "$ST2/mnt" && fail "$ST2/mnt still mounted"

# The new primary's disk as its users left it: the resync must not change it.
new_primary=$(digest "$XM_SECONDARY_DISK")
log "the old primary comes back as a secondary"
t0=$(now_us)
attach_box primary --role secondary
wait_until 30 in_sync "$S" || fail "new primary not in sync: $(status_json "$S" | jq -c .daemon.replication)"
r=$(status_json "$S" | jq -c .daemon)
resynced=$(jq .counters.tx_resync_bytes <<<"$r")
log "  in sync after $(secs_since "$t0") s: decision $(jq -r .replication.decision <<<"$r"), $resynced bytes resynced"
assert_eq "$(role_of "$P")" secondary "old primary's role"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "old primary's decision"
assert_eq "$(disk_state "$P")" UpToDate "old primary's disk state"
assert_eq "$(jq -r .replication.decision <<<"$r")" bitmap "decision after failover"
assert_ge "$resynced" 1 "resynced bytes"
[ "$resynced" -lt $((SIZE / 4)) ] || fail "resync moved $resynced bytes: not much less than the disk ($SIZE)"
"$XM" detach --dev "$S" || fail "detach the new primary"
"$XM" detach --dev "$P" || fail "detach the new secondary"
assert_digest "$XM_SECONDARY_DISK" "$new_primary" "the new primary's disk after the resync"
assert_disks_identical "after failover and resync"
echo "all checks passed"
