# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Disks that fail on demand, for the tests of a failing disk (docs/protocol.md §15): a tmpfs image
# whose writes to new blocks get ENOSPC, and an image behind nbdkit's error filter whose writes get
# EIO.  Source it after lib.sh, and call its functions after pair_up (everything lives in $WORK).
#
# Why these two:
#  - ENOSPC: the daemon opens its disk O_DIRECT (user/store/disk.c); tmpfs takes O_DIRECT since
#    6.6 (checked on 6.18: open, fcntl(F_SETFL, O_DIRECT) and dd oflag=direct work).  An image
#    that is sparse on a tmpfs whose size is cut down to what it already uses fails every write
#    that needs a new page with ENOSPC, and rewrites of pages it holds still work: a disk that is
#    full, as thin provisioning makes one.  No loop device or filler file is needed; `mount -o
#    remount,size=` changes the limit both ways (tmpfs refuses a size below its use, never
#    one equal to it).  A size of 0 would mean "no limit", so the mount always holds a 4 KiB
#    reserve file and its use is never 0.  tmpfs reports no STATX_DIOALIGN, so the daemon takes
#    4 KiB blocks there: pair_up with --mtu 9000 (at 1500 the handshake is refused: "block size
#    larger than a frame's payload").
#  - EIO: nbdkit's error filter, switched by the existence of a file (error-pwrite-file=), with
#    nbdkit's pause filter in front of it so a test can also stall the disk.  nbdfuse makes the
#    export a file the daemon opens O_DIRECT, and passes the NBD error on as the write's errno.
#    Only writes fail (error-pwrite-*): reads and flushes keep working.  Like any fuse_disk, the
#    file wants 4 KiB direct I/O: pair_up with --mtu 9000.

declare -gA XM_TMPFS_BYTES=()

# tmpfs_disk NAME SIZE_MB: a tmpfs at $WORK/NAME holding a sparse SIZE_MB image (sets TMPFS_DISK).
tmpfs_disk() {
	local name=$1 mb=$2 dir=$WORK/$1
	mkdir -p "$dir" || fail "mkdir $dir"
	# Room for the image and its reserve, then some; huge=never: allocation is page by page.
	XM_TMPFS_BYTES[$name]=$(((mb + 1) << 20))
	mount -t tmpfs -o "size=${XM_TMPFS_BYTES[$name]},mode=0700,huge=never" "xm-$name" "$dir" ||
		fail "mount tmpfs on $dir"
	at_exit umount -l "$dir"
	head -c 4096 /dev/zero >"$dir/reserve" || fail "cannot write $dir/reserve"
	truncate -s "${mb}M" "$dir/disk.img" || fail "truncate $dir/disk.img"
	# shellcheck disable=SC2034 # for the test that sources this
	TMPFS_DISK=$dir/disk.img
}

# tmpfs_used_bytes DIR: the bytes the tmpfs at DIR holds right now.
tmpfs_used_bytes() { stat -f -c '%S %b %f' "$1" | awk '{ print $1 * ($2 - $3) }'; }

# tmpfs_cap DIR: its size becomes what it uses (fails if a write raced the remount).
tmpfs_cap() { mount -o remount,size="$(tmpfs_used_bytes "$1")" "$1" 2>/dev/null; }

# enospc_on NAME: writes to blocks of NAME's image that hold no data yet fail with ENOSPC.
enospc_on() {
	wait_until 5 tmpfs_cap "$WORK/$1" || fail "enospc_on $1: cannot cap the tmpfs at its use"
}

# enospc_off NAME: NAME's tmpfs gets its room back; every write works again.
enospc_off() {
	mount -o remount,size="${XM_TMPFS_BYTES[$1]}" "$WORK/$1" || fail "enospc_off $1: remount"
}

# eio_disk NAME IMAGE: IMAGE behind nbdkit's pause and error filters as $WORK/NAME/fuse/nbd (sets
# FUSE_DISK); eio_on/eio_off fail its writes, disk_pause/disk_resume stall all its requests.
eio_disk() {
	local dir=$WORK/$1
	fuse_disk "$1" "$2" --filter=pause --filter=error pause-control="$dir/pause.sock" \
		error=EIO error-pwrite-rate=1 error-pwrite-file="$dir/eio.on"
	# A test that fails while the disk is stalled must not leave requests hanging.
	at_exit "$PY" "$TOP/tests/tools/nbd_ops.py" pause-control "$dir/pause.sock" r
}

# eio_on NAME: every write to NAME's disk fails with EIO (nbdkit checks the file per request).
eio_on() { touch "$WORK/$1/eio.on" || fail "eio_on $1"; }

# eio_off NAME: writes to NAME's disk work again.
eio_off() { rm -f "$WORK/$1/eio.on" || fail "eio_off $1"; }

# disk_pause NAME: requests to NAME's eio_disk wait (returns once those in flight are done).
disk_pause() { $NBD_OPS pause-control "$WORK/$1/pause.sock" p || fail "disk_pause $1"; }

# disk_resume NAME: requests to NAME's eio_disk go on.
disk_resume() { $NBD_OPS pause-control "$WORK/$1/pause.sock" r || fail "disk_resume $1"; }

# dd_direct_write PATH OFFSET_KIB SEED: one 4 KiB O_DIRECT write of pattern SEED at OFFSET_KIB,
# as the daemon writes; dd's stderr (with the errno's text) in $WORK/dd.err.
dd_direct_write() {
	$NBD_OPS pattern 4096 "$3" |
		dd of="$1" bs=4096 count=1 seek="$(($2 / 4))" iflag=fullblock oflag=direct conv=notrunc \
			status=none 2>"$WORK/dd.err"
}

# ---- what the tests of a failing disk check ---------------------------------------------------

# local_disk IF: the daemon's own disk: attached, failed, detached or syncing (§15.1).
local_disk() { status_json "$1" | jq -r .daemon.disk.state; }
local_disk_is() { [ "$(local_disk "$1")" = "$2" ]; }
# peer_disk IF: what the primary knows of the peer's disk: UpToDate, Inconsistent, DUnknown, Failed.
peer_disk() { status_json "$1" | jq -r .daemon.replication.peer_disk; }
peer_disk_is() { [ "$(peer_disk "$1")" = "$2" ]; }

# write_mib EXPECT SEED MIB...: one connection writes 1 MiB at each MIB offset through the
# primary's export (pattern SEED+i for the i-th), then flushes; every request must succeed.
# EXPECT, an image of the disk's size, gets the same bytes.
write_mib() {
	local expect=$1 seed=$2 m i=0 ops=()
	shift 2
	for m in "$@"; do
		ops+=("write:$((m << 20)):$((1 << 20)):$((seed + i))")
		i=$((i + 1))
	done
	$NBD_OPS "$(nbd_uri primary)" "${ops[@]}" flush >"$WORK/write-mib.log" 2>&1 ||
		fail "a client's write failed: $(grep -m1 error "$WORK/write-mib.log" || tail -1 "$WORK/write-mib.log")"
	i=0
	for m in "$@"; do
		$NBD_OPS pattern $((1 << 20)) $((seed + i)) |
			dd of="$expect" bs=1M seek="$m" conv=notrunc iflag=fullblock status=none ||
			fail "cannot write $expect"
		i=$((i + 1))
	done
}

# same_range A B FROM_MIB N_MIB: the two files hold the same bytes in that range.
same_range() {
	cmp -s <(dd if="$1" bs=1M skip="$3" count="$4" status=none) \
		<(dd if="$2" bs=1M skip="$3" count="$4" status=none)
}
# zero_range PATH FROM_MIB N_MIB: the range holds only zeros.
zero_range() { same_range "$1" /dev/zero "$2" "$3"; }

# logged LOGFILE TEXT: how many lines of the log hold TEXT (0 when none).
logged() { grep -cF -- "$2" "$1"; }
