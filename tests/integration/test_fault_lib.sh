#!/usr/bin/env bash
# Description: the failing disks of tests/lib-fault.sh fail as they say: on a tmpfs disk with
# enospc_on an O_DIRECT write to a new block gets ENOSPC while a rewrite works, on an eio_disk with
# eio_on every O_DIRECT write gets EIO while reads work, disk_pause holds a write until
# disk_resume, and after enospc_off / eio_off the same writes land, byte for byte.
# SPDX-License-Identifier: GPL-2.0
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/lib-fault.sh
source "$(dirname "$0")/../lib-fault.sh"
require_root
require_fuse
require_nbdkit_filters error pause
require_nbd_ops
pair_up fl --disk-size 8M

# holds PATH OFFSET_KIB SEED: PATH has pattern SEED in the 4 KiB at OFFSET_KIB.
holds() {
	cmp -s <($NBD_OPS pattern 4096 "$3") <(dd if="$1" bs=4096 skip="$(($2 / 4))" count=1 status=none)
}
# write_ok PATH OFFSET_KIB SEED WHAT: the write works and its bytes are there.
write_ok() {
	dd_direct_write "$1" "$2" "$3" || fail "$4: $(cat "$WORK/dd.err")"
	holds "$1" "$2" "$3" || fail "$4: the bytes written are not in $1"
}
# write_fails PATH OFFSET_KIB SEED ERRNO_TEXT WHAT: the write fails with that errno.
write_fails() {
	dd_direct_write "$1" "$2" "$3" && fail "$5: the write succeeded"
	grep -qF "$4" "$WORK/dd.err" || fail "$5: expected '$4', dd said: $(cat "$WORK/dd.err")"
	log "  $5: $(cat "$WORK/dd.err")"
}

log "a tmpfs disk: ENOSPC for new blocks, rewrites work"
tmpfs_disk full 8
img=$TMPFS_DISK
write_ok "$img" 0 1 "a write before the fault"
for round in 1 2; do
	enospc_on full
	write_fails "$img" $((4096 + round * 4)) 2 "No space left on device" "round $round: a new block"
	holds "$img" $((4096 + round * 4)) 2 && fail "round $round: the failed write left its bytes"
	write_ok "$img" 0 $((10 + round)) "round $round: a rewrite of a block the image holds"
	enospc_off full
	write_ok "$img" $((4096 + round * 4)) $((20 + round)) "round $round: the new block after enospc_off"
done

log "an eio_disk: EIO for every write, reads work"
dd if=/dev/zero of="$WORK/eio.img" bs=1M count=8 status=none || fail "cannot make $WORK/eio.img"
eio_disk bad "$WORK/eio.img"
disk=$FUSE_DISK
write_ok "$disk" 0 3 "a write before the fault"
holds "$WORK/eio.img" 0 3 || fail "the write did not reach the image under the FUSE disk"
for round in 1 2; do
	eio_on bad
	write_fails "$disk" 0 $((30 + round)) "Input/output error" "round $round: a rewrite"
	write_fails "$disk" $((4096 + round * 4)) 4 "Input/output error" "round $round: a new block"
	holds "$WORK/eio.img" 0 $((30 + round)) && fail "round $round: the failed write reached the image"
	dd if="$disk" of=/dev/null bs=4096 count=16 iflag=direct status=none 2>"$WORK/dd.err" ||
		fail "round $round: a read failed under eio_on: $(cat "$WORK/dd.err")"
	eio_off bad
	write_ok "$disk" $((4096 + round * 4)) $((40 + round)) "round $round: a write after eio_off"
	holds "$WORK/eio.img" $((4096 + round * 4)) $((40 + round)) ||
		fail "round $round: the write after eio_off did not reach the image"
done

log "an eio_disk stalled: a write waits for disk_resume"
disk_pause bad
dd_direct_write "$disk" 64 5 &
dd_pid=$!
track_worker $dd_pid
running $dd_pid || fail "the write finished on a paused disk"
holds "$WORK/eio.img" 64 5 && fail "a write reached the image while the disk was paused"
disk_resume bad
wait $dd_pid || fail "the write held by the pause failed: $(cat "$WORK/dd.err")"
holds "$WORK/eio.img" 64 5 || fail "the write held by the pause did not reach the image"
echo "all checks passed"
