#!/usr/bin/env bash
# Description: the primary's disk fails in the middle of a client's writes, once full (ENOSPC on a
# tmpfs) and once broken (EIO from nbdkit's error filter): every write still succeeds and every
# read returns what was written (docs/protocol.md §15.3), status says the disk failed and why, the
# log says so once, the secondary holds every byte; once the fault is gone `disk attach` takes the
# same disk back (syncing, then attached), fetches exactly the regions it missed, and the two
# disks are equal.
# SPDX-License-Identifier: GPL-2.0
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/lib-fault.sh
source "$(dirname "$0")/../lib-fault.sh"
require_root
require_fuse
require_nbdkit_filters error pause
require_nbd_ops
require_cmd nbdcopy
# The FUSE disk wants 4 KiB direct I/O: jumbo frames carry whole blocks.
pair_up dp --mtu 9000 --disk-size 32M
SIZE_MB=32

# run_case KIND: the whole story with the primary's disk on one fault (enospc or eio).
run_case() {
	local kind=$1 disk image errtext st block stale fetched c0 attach_pid
	case $kind in
	enospc)
		tmpfs_disk pfull $SIZE_MB
		disk=$TMPFS_DISK image=$TMPFS_DISK errtext="No space left on device"
		;;
	eio)
		eio_disk pbad "$XM_PRIMARY_DISK"
		disk=$FUSE_DISK image=$XM_PRIMARY_DISK errtext="Input/output error"
		;;
	esac
	fault() {
		case $kind in
		enospc) "enospc_$1" pfull ;;
		eio) "eio_$1" pbad ;;
		esac
	}
	rm -f "$(box_meta primary)" "$(box_meta secondary)" "$WORK/expect.img"
	truncate -s ${SIZE_MB}M "$WORK/expect.img"
	attach_box secondary
	attach_box primary --disk "$disk"
	wait_until 5 is_connected "$P" || fail "$kind: no session: $(status_json "$P" | jq -c .daemon.replication)"
	wait_until 30 in_sync "$P" || fail "$kind: initial sync: $(status_json "$P" | jq -c .daemon.replication)"
	block=$(status_json "$P" | jq .daemon.metadata.bitmap.block)

	log "$kind: writes before the fault (MiB 0-3)"
	write_mib "$WORK/expect.img" 100 0 1 2 3
	log "$kind: the fault goes on; writes to MiB 4-7, then a rewrite of MiB 1"
	fault on
	write_mib "$WORK/expect.img" 200 4 5 6 7 1
	log "  every write succeeded"
	st=$(status_json "$P" | jq -c .daemon)
	assert_eq "$(jq -r .disk.state <<<"$st")" failed "$kind: the primary's disk state"
	[[ $(jq -r .disk.error <<<"$st") == *"$errtext"* ]] ||
		fail "$kind: disk.error is '$(jq -r .disk.error <<<"$st")', not about '$errtext'"
	log "  disk: $(jq -c .disk <<<"$st")"
	assert_eq "$(jq .counters.disk_failures <<<"$st")" 1 "$kind: disk_failures"
	assert_eq "$(logged "$WORK/primary.log" "disk failed")" 1 "$kind: 'disk failed' lines in the log"
	assert_eq "$(logged "$WORK/primary.log" "disk failed: $errtext")" 1 "$kind: the log line's cause"
	log "  log: $(grep -F "disk failed" "$WORK/primary.log")"
	# What was written from the failure on, and only that, is missing locally: MiB 1 and 4-7.
	stale=$(jq .disk.stale_regions <<<"$st")
	assert_eq "$stale" $((5 * (1 << 20) / block)) "$kind: stale regions (MiB 1 and 4-7)"
	zero_range "$image" 4 4 || fail "$kind: the failed disk holds writes made after it failed"
	same_range "$image" "$WORK/expect.img" 1 1 &&
		fail "$kind: the failed disk holds the rewrite made after it failed"
	same_range "$XM_SECONDARY_DISK" "$WORK/expect.img" 0 8 ||
		fail "$kind: the secondary's disk lacks writes: $(cmp -n $((8 << 20)) "$XM_SECONDARY_DISK" "$WORK/expect.img" 2>&1)"

	log "$kind: reads through the export come from the secondary"
	in_sync "$P" || fail "$kind: the peer is not UpToDate: $(status_json "$P" | jq -c .daemon.replication)"
	c0=$(counter "$P" remote_reads)
	rm -f "$WORK/read.img"
	nbdcopy "$(nbd_uri primary)" "$WORK/read.img" 2>"$WORK/nbdcopy.err" ||
		fail "$kind: reading the export failed: $(tail -1 "$WORK/nbdcopy.err")"
	cmp "$WORK/read.img" "$WORK/expect.img" || fail "$kind: the export does not read back what was written"
	assert_ge "$(counter "$P" remote_reads)" $((c0 + 1)) "$kind: remote reads"
	assert_eq "$(local_disk "$P")" failed "$kind: the disk state after the reads"

	log "$kind: the fault goes off; disk attach of the same path"
	fault off
	# A stalled disk holds the back-fill's writes, so 'syncing' is seen for sure (eio_disk only).
	[ "$kind" = eio ] && disk_pause pbad
	timeout 20 "$XM" disk attach --dev "$P" >"$WORK/disk-attach.log" 2>&1 &
	attach_pid=$!
	track_worker $attach_pid
	if [ "$kind" = eio ]; then
		wait_until 5 local_disk_is "$P" syncing ||
			fail "$kind: not syncing: $(status_json "$P" | jq -c .daemon.disk) $(cat "$WORK/disk-attach.log")"
		assert_ge "$(status_json "$P" | jq .daemon.disk.stale_regions)" 1 "$kind: stale regions while syncing"
		disk_resume pbad
	fi
	wait $attach_pid || fail "$kind: disk attach: $(cat "$WORK/disk-attach.log")"
	wait_until 20 local_disk_is "$P" attached ||
		fail "$kind: the disk did not come back: $(status_json "$P" | jq -c .daemon.disk)"
	wait_until 10 in_sync "$P" || fail "$kind: not in sync: $(status_json "$P" | jq -c .daemon.replication)"
	st=$(status_json "$P" | jq -c .daemon)
	assert_eq "$(jq .disk.stale_regions <<<"$st")" 0 "$kind: stale regions once attached"
	fetched=$(grep -oE 'disk in sync with the peer: fetched [0-9]+ bytes' "$WORK/primary.log" | grep -oE '[0-9]+')
	log "  $(grep -F 'disk in sync with the peer' "$WORK/primary.log")"
	assert_eq "$fetched" $((stale * block)) "$kind: bytes fetched (the stale regions)"
	assert_eq "$(jq .counters.backfill_bytes <<<"$st")" $((stale * block)) "$kind: backfill_bytes"
	zero_range "$image" 4 4 && fail "$kind: the disk did not get the regions it missed"

	log "$kind: mirroring as before"
	write_mib "$WORK/expect.img" 300 8 1
	mirror_down
	cmp "$image" "$WORK/expect.img" || fail "$kind: the primary's disk differs from what was written"
	cmp "$image" "$XM_SECONDARY_DISK" || fail "$kind: the disks differ"
	log "$kind: the disks are equal"
}

run_case enospc
run_case eio
echo "all checks passed"
