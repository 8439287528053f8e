#!/usr/bin/env bash
# Description: what an NBD client was told is durable survives kill -9 of both daemons: an 8 MiB
# write followed by a flush (protocols C, B and A), and FUA writes without any flush (protocols
# C and A); both disks hold every such byte.  After each kill, detach removes what the dead
# daemons left behind and both boxes attach again.
# SPDX-License-Identifier: GPL-2.0
#
# Clients: nbdcopy --flush sends one NBD_CMD_FLUSH after its writes; -v shows the flush's reply
# (libnbd "nbd_flush: leave: ret=0").  No stock client sets NBD_CMD_FLAG_FUA (nbdcopy never does,
# fio's nbd engine passes flags 0 to nbd_aio_pwrite), so FUA writes come from an nbdkit proxy:
# nbdkit --filter=fua fuamode=force sets FUA on every write it forwards to the export and turns
# client flushes into no-ops; a log filter behind it records what went to xdpmirror.
#
# What kill -9 can and cannot show: the disk images are files, so bytes that reached the
# secondary's page cache survive the kill even without an fsync.  The test therefore checks
# that the primary never completes a flush (or a FUA write) before the secondary has the bytes;
# it cannot simulate a power cut.  Protocol A is the sharp case: its writes complete once sent,
# so only the flush (which in every protocol waits for the secondary's FLUSH_ACK, protocol.md
# §7.5) promises that the secondary has them.
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
# No stock client sends FUA: the FUA cases need nbdkit's fua and log filters (make deps).
require_nbdkit_filters fua log
pair_up d --disk-size 32M
SIZE=$((8 << 20))

# crash: kill -9 both daemons at once and wait until they are dead.
crash() {
	kill -9 "$PPID_D" "$SPID_D" || fail "kill -9 the daemons"
	wait_until 5 gone "$PPID_D" || fail "primary daemon $PPID_D survived kill -9"
	wait_until 5 gone "$SPID_D" || fail "secondary daemon $SPID_D survived kill -9"
	# They are this shell's children (attach_box runs them in the background): reap them.
	wait "$PPID_D" "$SPID_D" 2>/dev/null
}

# up [attach options]: attach both boxes and note the daemons' pids.
up() {
	mirror_up "$@"
	PPID_D=$(status_json "$P" | jq .daemon.pid)
	SPID_D=$(status_json "$S" | jq .daemon.pid)
	if ! [ "$PPID_D" -gt 0 ] 2>/dev/null || ! [ "$SPID_D" -gt 0 ] 2>/dev/null; then
		fail "daemon pids: '$PPID_D' '$SPID_D'"
	fi
}

# cleanup_after_crash: detach must remove the state the killed daemons left.
cleanup_after_crash() {
	local dev
	for dev in "$P" "$S"; do
		"$XM" detach --dev "$dev" || fail "detach $dev after kill -9"
		[ ! -e "/sys/fs/bpf/xdpmirror/$dev" ] || fail "$dev: pins left after detach: $(ls "/sys/fs/bpf/xdpmirror/$dev")"
		if [ -e "/run/xdpmirror/$dev.lock" ] || [ -e "/run/xdpmirror/$dev.ctl" ]; then
			fail "$dev: run files left after detach: $(ls /run/xdpmirror/)"
		fi
		"$XM" status --dev "$dev" >/dev/null 2>&1 && fail "$dev: status still answers after detach"
	done
	# The XDP program was attached through a link owned by the daemon: it died with it.
	xdp_attached primary && fail "$P: XDP program still attached"
	xdp_attached secondary && fail "$S: XDP program still attached"
	# A killed primary cannot remove its NBD socket; the next attach replaces it (nbd.c).
	[ -S "/run/xdpmirror/$P.sock" ] && log "(stale /run/xdpmirror/$P.sock left; attach replaces it)"
	return 0
}

# copy_failed WHAT [LOG]: the client failed; say whether a daemon died under it.
copy_failed() {
	[ -n "${2:-}" ] && grep -v '^libnbd: debug' "$2" | tail -3
	gone "$PPID_D" && fail "$1 failed: the primary daemon died (see primary.log)"
	gone "$SPID_D" && fail "$1 failed: the secondary daemon died (see secondary.log)"
	fail "$1 failed"
}

# check_region WHAT SRC: both disks hold SRC at offset 0.
check_region() {
	cmp -n "$SIZE" "$2" "$XM_SECONDARY_DISK" ||
		fail "$1: the secondary lost bytes the client was told are durable"
	cmp -n "$SIZE" "$2" "$XM_PRIMARY_DISK" ||
		fail "$1: the primary lost bytes the client was told are durable"
}

# flush_case PROTOCOL: case (a), an 8 MiB write followed by a flush, then kill -9.
flush_case() {
	local proto=$1 t0 t1
	log "protocol $proto: nbdcopy --flush, then kill -9 both daemons"
	up --protocol "$proto"
	head -c "$SIZE" /dev/urandom >"$WORK/in.img"
	t0=$EPOCHREALTIME
	nbdcopy -v --flush "$WORK/in.img" "$(nbd_uri)" 2>"$WORK/nbdcopy.log" ||
		copy_failed "protocol $proto: nbdcopy --flush" "$WORK/nbdcopy.log"
	crash
	t1=$EPOCHREALTIME
	grep -q 'nbd_flush: leave: ret=0' "$WORK/nbdcopy.log" ||
		fail "protocol $proto: the client saw no successful flush"
	grep -q 'nbd_flush: leave: error' "$WORK/nbdcopy.log" && fail "protocol $proto: a flush failed"
	log "protocol $proto: write + flush + kill in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	check_region "protocol $proto, flush" "$WORK/in.img"
	cleanup_after_crash
}

# fua_case PROTOCOL: case (b), FUA writes and no flush at all, then kill -9.
fua_case() {
	local proto=$1 writes
	log "protocol $proto: FUA writes (nbdkit fua filter, fuamode=force), no flush, then kill -9"
	up --protocol "$proto"
	head -c "$SIZE" /dev/urandom >"$WORK/in.img"
	rm -f "$WORK/fua.log"
	nbdcopy "$WORK/in.img" -- [ nbdkit --filter=fua --filter=log nbd socket="/run/xdpmirror/$P.sock" \
		fuamode=force logfile="$WORK/fua.log" ] || copy_failed "protocol $proto: nbdcopy through the FUA proxy"
	crash
	# What reached xdpmirror: only FUA writes, each answered without error, and no flush.
	writes=$(grep -c ' Write id=.* fua=1 ' "$WORK/fua.log")
	assert_ge "$writes" 1 "protocol $proto: writes with fua=1 sent to the export"
	grep -q ' Write id=.* fua=0 ' "$WORK/fua.log" && fail "protocol $proto: a write without FUA reached the export"
	grep -q ' Flush id=' "$WORK/fua.log" && fail "protocol $proto: a flush reached the export"
	grep -q 'Write id=.*return=-' "$WORK/fua.log" && fail "protocol $proto: a FUA write failed"
	log "protocol $proto: $writes writes, all fua=1, no flush"
	check_region "protocol $proto, FUA" "$WORK/in.img"
	cleanup_after_crash
}
flush_case C
flush_case B
fua_case C
# Protocol A last.  Its plain writes complete once sent, so only the flush, or FUA (which
# completes under C rules in every protocol, protocol.md §6), vouches for the secondary.
flush_case A
fua_case A

log "attach again after the crashes: the mirror works and detaches cleanly"
up
head -c $((1 << 20)) /dev/urandom >"$WORK/late.img"
nbdcopy --flush "$WORK/late.img" "$(nbd_uri)" || copy_failed "nbdcopy after re-attach"
assert_eq "$(status_json "$P" | jq .daemon.counters.writes_degraded)" 0 "no degraded write after re-attach"
mirror_down
cmp -n $((1 << 20)) "$WORK/late.img" "$XM_SECONDARY_DISK" || fail "secondary after re-attach"
assert_disks_identical "after the crashes and a clean session"
rm -f "$WORK/in.img" "$WORK/late.img"
echo "all checks passed"
