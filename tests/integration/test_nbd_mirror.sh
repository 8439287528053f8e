#!/usr/bin/env bash
# Description: real NBD clients (nbdinfo, nbdcopy, fio with verify, QD1 write+flush) write through
# the primary's export; after each, the secondary's disk equals the primary's byte for byte.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy nbdinfo fio
pair_up n --disk-size 64M
mirror_up
URI=$(nbd_uri)

log "nbdinfo"
info=$(nbdinfo --json "$URI") || fail "nbdinfo"
assert_eq "$(jq '.exports[0]["export-size"]' <<<"$info")" $((64 << 20)) "export size"
assert_eq "$(jq '.exports[0].block_size_minimum' <<<"$info")" 512 "minimum block size"
assert_eq "$(jq '.exports[0].can_flush' <<<"$info")" true "can_flush"
assert_eq "$(jq '.exports[0].can_fua' <<<"$info")" true "can_fua"

log "nbdcopy a random image in and back out"
head -c $((48 << 20)) /dev/urandom >"$WORK/in.img"
nbdcopy "$WORK/in.img" "$URI" || fail "nbdcopy in"
nbdcopy "$URI" "$WORK/out.img" || fail "nbdcopy out"
cmp -n $((48 << 20)) "$WORK/in.img" "$WORK/out.img" || fail "read back differs from what was written"
cmp -n $((48 << 20)) "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "secondary does not hold the image"
rm -f "$WORK/in.img" "$WORK/out.img"

log "fio: random 4k..64k writes with verify, 4 jobs, each on its own 8 MiB"
# Disjoint ranges: jobs sharing a range would overwrite each other's verify headers.
fio --name=mirror --ioengine=nbd --uri="$URI" --rw=randwrite --bsrange=4k-64k --size=8M \
	--offset=16M --offset_increment=8M --iodepth=8 --numjobs=4 --verify=crc32c --verify_fatal=1 \
	--verify_state_save=0 --group_reporting >"$WORK/fio.log" 2>&1 ||
	{ cat "$WORK/fio.log"; fail "fio verify"; }
# The verify phase reads back every byte the four jobs wrote.
grep -E '^ +(READ|WRITE):' "$WORK/fio.log" | sed 's/^ */   /'
grep -qE '^ +READ: .*io=32\.0MiB' "$WORK/fio.log" || fail "fio did not read back 32 MiB to verify"

pc=$(status_json "$P" | jq .daemon.counters)
assert_ge "$(jq .tx_data <<<"$pc")" 1000 "DATA frames sent"
assert_eq "$(jq .writes_degraded <<<"$pc")" 0 "no write went without the peer"
assert_eq "$(status_json "$P" | jq .daemon.replication.out_of_sync_bytes)" 0 "nothing out of sync"
sc=$(status_json "$S" | jq .daemon.counters)
assert_eq "$(jq .rx_bad_offset <<<"$sc")" 0 "no DATA beyond the export"
assert_ge "$(jq '.wr_zero_copy + .wr_bounce' <<<"$sc")" 1000 "writes on the secondary"

log "QD1 write, flush: each flush completes at once (every write was durably acked first)"
log "  and each write, alone on its disk, is durable by RWF_DSYNC without a group fdatasync"
f0=$(counter "$P" tx_flush) l0=$(counter "$P" flushes_local)
sp0=$(counter "$P" solo_writes) ss0=$(counter "$S" solo_writes)
ops=()
for i in $(seq 0 19); do ops+=("write:$(((56 << 20) + i * 4096)):4096:$((i + 1))" flush); done
$NBD_OPS "$URI" "${ops[@]}" >"$WORK/qd1.log" 2>&1 || fail "QD1 write+flush: $(tail -1 "$WORK/qd1.log")"
assert_eq $(($(counter "$P" flushes_local) - l0)) 20 "flushes answered without a round trip"
assert_eq $(($(counter "$P" tx_flush) - f0)) 0 "FLUSH frames sent"
if [ "$(status_json "$P" | jq -r .daemon.durability.mode)" = group ]; then
	assert_eq $(($(counter "$P" solo_writes) - sp0)) 20 "QD1 writes alone on the primary's disk"
	# The secondary counts DATA frames (as commit_writes does): a 4 KiB write is one write of
	# its frames, merged, alone.
	mp=$(status_json "$P" | jq .daemon.replication.max_payload)
	assert_eq $(($(counter "$S" solo_writes) - ss0)) $((20 * ((4096 + mp - 1) / mp))) \
		"DATA frames of QD1 writes alone on the secondary's disk"
else # dsync mode: every write carries RWF_DSYNC, none is counted alone
	assert_eq $(($(counter "$P" solo_writes) - sp0)) 0 "solo writes in dsync mode"
fi

mirror_down
assert_disks_identical "after nbdcopy, fio and the QD1 writes"
echo "all checks passed"
