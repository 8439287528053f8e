#!/usr/bin/env bash
# Description: real NBD clients (nbdinfo, nbdcopy, fio with verify) write through the primary's
# export; after each, the secondary's disk equals the primary's byte for byte.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
command -v nbdcopy >/dev/null || skip "nbdcopy missing (make deps)"
pair_up xmtn --disk-size 64M
mirror_up
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
URI=$(nbd_uri)
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX

log "nbdinfo"
info=$(nbdinfo --json "$URI") || fail "nbdinfo"
assert_eq "$(jq '.exports[0]["export-size"]' <<<"$info")" $((64 << 20)) "export size"
assert_eq "$(jq '.exports[0].block_size_minimum' <<<"$info")" 512 "minimum block size"
assert_eq "$(jq '.exports[0].can_flush' <<<"$info")" true "can_flush"
assert_eq "$(jq '.exports[0].can_fua' <<<"$info")" true "can_fua"

log "nbdcopy a random image in and back out"
head -c $((48 << 20)) /dev/urandom >"$work/in.img"
nbdcopy "$work/in.img" "$URI" || fail "nbdcopy in"
nbdcopy "$URI" "$work/out.img" || fail "nbdcopy out"
cmp -n $((48 << 20)) "$work/in.img" "$work/out.img" || fail "read back differs from what was written"
cmp -n $((48 << 20)) "$work/in.img" "$XM_SECONDARY_DISK" || fail "secondary does not hold the image"
rm -f "$work/in.img" "$work/out.img"

log "fio: random 4k..64k writes with verify, 4 jobs"
fio --name=mirror --ioengine=nbd --uri="$URI" --rw=randwrite --bsrange=4k-64k --size=32M \
	--offset=16M --iodepth=8 --numjobs=4 --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
	--group_reporting >"$work/fio.log" 2>&1 || { cat "$work/fio.log"; fail "fio verify"; }

pc=$(status_json "$P" | jq .daemon.counters)
assert_ge "$(jq .tx_data <<<"$pc")" 1000 "DATA frames sent"
assert_eq "$(jq .writes_degraded <<<"$pc")" 0 "no write went without the peer"
assert_eq "$(status_json "$P" | jq .daemon.replication.out_of_sync_bytes)" 0 "nothing out of sync"
sc=$(status_json "$S" | jq .daemon.counters)
assert_eq "$(jq .rx_bad_offset <<<"$sc")" 0 "no DATA beyond the export"
assert_ge "$(jq '.wr_zero_copy + .wr_bounce' <<<"$sc")" 1000 "writes on the secondary"

mirror_down
assert_disks_identical "after nbdcopy and fio"
echo "all checks passed"
