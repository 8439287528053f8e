#!/usr/bin/env bash
# Description: online verify finds exactly the 3 regions corrupted behind the daemon's back
# (exit 1, offsets in status), verify --mark resyncs them, a third verify finds nothing; a verify
# during a write workload reports no false differences; verify on the secondary is refused.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
require_nbdkit_filters offset
pair_up v --disk-size 64M
REGION=65536 SIZE=$((64 << 20)) WSIZE=$((8 << 20))
BG_PID=''

# run_verify [--mark]: runs verify on the primary; sets VOUT and VRC, logs the output.
run_verify() {
	local t0
	t0=$(now_us)
	VOUT=$("$XM" verify --dev "$P" "$@" 2>&1)
	VRC=$?
	log "  verify $*: exit $VRC in $(secs_since "$t0") s: $VOUT"
}

mirror_up
log "8 MiB of random data through the export"
head -c $WSIZE /dev/urandom >"$WORK/in.img"
nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy"
cmp -n $WSIZE "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "secondary does not hold the written data"
assert_disks_identical "after the write"

log "a verify with equal disks finds nothing"
run_verify
assert_eq "$VRC" 0 "verify exit status with equal disks"
v=$(status_json "$P" | jq -c .daemon.replication.verify)
assert_eq "$(jq .regions_differ <<<"$v")" 0 "regions_differ, equal disks"
assert_eq "$(jq '.regions_equal + .regions_skipped' <<<"$v")" $((SIZE / REGION)) "regions judged or skipped"

# Regions written in the last second still have their intent bits set: verify calls them busy.
# The sweep clears them within a second once the writes are done; wait for it, so the next
# verify judges every region.
wait_until 5 intent_clear "$P" || fail "intent bits not swept: $(status_json "$P" | jq -c .daemon.metadata.bitmap)"

log "corrupt 3 regions of the secondary's disk behind the daemon's back"
# One inside the written 8 MiB, two beyond it (one at the very end of the disk).
regions="37 300 $((SIZE / REGION - 1))"
offsets=()
for n in $regions; do
	dd if=/dev/urandom of="$XM_SECONDARY_DISK" bs=$REGION seek="$n" count=1 conv=notrunc \
		oflag=direct status=none || fail "corrupting region $n"
	offsets+=($((n * REGION)))
done
cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" && fail "disks equal after the corruption"

log "verify finds the 3 regions"
run_verify
assert_eq "$VRC" 1 "verify exit status with 3 corrupted regions"
grep -q 'verify done: 3 region(s) differ' <<<"$VOUT" || fail "verify output: $VOUT"
v=$(status_json "$P" | jq -c .daemon.replication.verify)
log "  status: $v"
assert_eq "$(jq -r .kind <<<"$v")" verify "verify kind"
assert_eq "$(jq .finished <<<"$v")" true "verify finished"
assert_eq "$(jq .running <<<"$v")" false "verify running"
assert_eq "$(jq .regions_differ <<<"$v")" 3 "regions_differ"
assert_eq "$(jq .regions_skipped <<<"$v")" 0 "regions_skipped"
assert_eq "$(jq .regions_equal <<<"$v")" $((SIZE / REGION - 3)) "regions_equal"
for off in "${offsets[@]}"; do
	jq -e --argjson o "$off" 'any(.first_differing_offsets[]; . == $o)' <<<"$v" >/dev/null ||
		fail "offset $off missing from first_differing_offsets $(jq -c .first_differing_offsets <<<"$v")"
done
assert_eq "$(jq '.first_differing_offsets | length' <<<"$v")" 3 "number of first_differing_offsets"
cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" && fail "verify without --mark repaired the disks"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.sync)" in_sync "sync after a plain verify"

log "verify --mark resyncs them"
before=$(counter "$P" tx_resync_bytes)
run_verify --mark
assert_eq "$VRC" 1 "verify --mark exit status (it found 3)"
grep -q 'verify done: 3 region(s) differ' <<<"$VOUT" || fail "verify --mark output: $VOUT"
assert_eq "$(status_json "$P" | jq .daemon.replication.verify.mark)" true "verify.mark"
wait_until 10 in_sync "$P" || fail "not in sync after verify --mark: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 5 eval 'cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK"' ||
	fail "disks differ after verify --mark: $(cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" | head -1)"
resynced=$(($(counter "$P" tx_resync_bytes) - before))
log "  resynced $resynced bytes"
assert_eq "$resynced" $((3 * REGION)) "bytes resynced by verify --mark"

log "a third verify finds nothing"
run_verify
assert_eq "$VRC" 0 "verify exit status after the repair"
grep -q 'verify done: 0 region(s) differ' <<<"$VOUT" || fail "verify output after the repair: $VOUT"
assert_eq "$(status_json "$P" | jq .daemon.replication.verify.regions_differ)" 0 "regions_differ after the repair"

log "verify on the secondary is refused"
out=$("$XM" verify --dev "$S" 2>&1)
rc=$?
log "  exit $rc: $out"
[ "$rc" -ne 0 ] || fail "verify on the secondary succeeded: $out"
grep -qi 'primary' <<<"$out" || fail "verify on the secondary: unclear error: $out"

log "verify while a writer runs over 32..40 MiB: no false differences"
head -c $WSIZE /dev/urandom >"$WORK/bg.img"
rm -f "$WORK/bg.stop"
# nbdkit's offset filter narrows the export to the 8 MiB at 32 MiB; the loop copies the same
# 8 MiB over it again and again until the verify is over, at least twice.
(
	n=0
	while [ ! -e "$WORK/bg.stop" ] || [ $n -lt 2 ]; do
		nbdcopy "$WORK/bg.img" -- [ nbdkit --filter=offset nbd \
			socket="/run/xdpmirror/$P.sock" offset=32M range=8M ] || exit 1
		n=$((n + 1))
	done
	echo $n >"$WORK/bg.count"
) &
BG_PID=$!
at_exit touch "$WORK/bg.stop"
track_worker "$BG_PID"
writes() {
	local j
	j=$(status_json "$P")
	WRITES=$(jq .daemon.counters.writes <<<"$j")
	[[ $WRITES =~ ^[0-9]+$ ]] || fail "status of $P has no write counter: $j"
}
writes
writes0=$WRITES
# Start the verify only once the writer's requests arrive.
wait_until 10 eval 'writes; [ $WRITES -gt $writes0 ]' || fail "the background writer does not write"
writes
writes0=$WRITES
run_verify
writes
writes1=$WRITES
touch "$WORK/bg.stop"
wait "$BG_PID"
rc=$?
BG_PID=''
assert_eq "$rc" 0 "background writer exit status"
log "  background writer: $(cat "$WORK/bg.count") copies, $((writes1 - writes0)) writes during the verify"
assert_ge $((writes1 - writes0)) 1 "writes while the verify ran"
assert_eq "$VRC" 0 "verify exit status during writes"
v=$(status_json "$P" | jq -c .daemon.replication.verify)
log "  status: $v"
assert_eq "$(jq .regions_differ <<<"$v")" 0 "regions_differ during writes"
wait_until 10 in_sync "$P" || fail "not in sync after the writer: $(status_json "$P" | jq -c .daemon.replication)"
mirror_down
cmp -n $WSIZE -i 0:$((32 << 20)) "$WORK/bg.img" "$XM_PRIMARY_DISK" || fail "background data not on the primary"
assert_disks_identical "after verify, repair and writes"
rm -f "$WORK/in.img" "$WORK/bg.img"
echo "all checks passed"
