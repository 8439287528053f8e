#!/usr/bin/env bash
# Description: the primary's --initial-sync policies for a secondary with new metadata: full
# copies the whole disk over random data, skip sends nothing for two zeroed disks, checksum
# resyncs exactly the 5 regions that differ; each ends with identical disks.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
pair_up i --disk-size 64M
SIZE=$((64 << 20)) REGION=65536

# fresh_meta: both boxes start as new boxes (the next handshake is an initial sync).
fresh_meta() {
	rm -f "$(box_meta primary)" "$(box_meta secondary)"
	if [ -e "$(box_meta primary)" ] || [ -e "$(box_meta secondary)" ]; then
		fail "metadata files still there"
	fi
}

# zero_disk PATH: real zeros over the whole image (not a hole), like pair setup writes them.
zero_disk() {
	dd if=/dev/zero of="$1" bs=1M count=$((SIZE >> 20)) conv=notrunc status=none || fail "zeroing $1"
}

# check_secondary_state: after an initial sync the secondary holds the primary's generation.
check_secondary_state() {
	local p s
	p=$(status_json "$P" | jq -c .daemon.metadata)
	s=$(status_json "$S" | jq -c .daemon.metadata)
	assert_eq "$(jq -r .disk_state <<<"$s")" UpToDate "$1: secondary disk state"
	assert_eq "$(jq -r .generations.current <<<"$s")" "$(jq -r .generations.current <<<"$p")" \
		"$1: secondary's current generation is the primary's"
	assert_eq "$(status_json "$S" | jq -r .daemon.replication.sync)" in_sync "$1: secondary sync"
}

log "a) full: the secondary's disk holds random data"
dd if=/dev/urandom of="$XM_SECONDARY_DISK" bs=1M count=$((SIZE >> 20)) conv=notrunc status=none ||
	fail "filling the secondary's disk"
cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" && fail "disks equal before the full sync"
t0=$(now_us)
mirror_up
secs=$(secs_since "$t0")
r=$(status_json "$P" | jq -c .daemon)
log "  in sync after $secs s: decision $(jq -r .replication.decision <<<"$r"), tx_resync $(jq .counters.tx_resync <<<"$r") frames, $(jq .counters.tx_resync_bytes <<<"$r") bytes"
assert_disks_identical "full initial sync"
assert_eq "$(jq -r .replication.decision <<<"$r")" full "full: decision"
assert_eq "$(jq .counters.tx_resync_bytes <<<"$r")" "$SIZE" "full: tx_resync_bytes"
assert_eq "$(jq .replication.out_of_sync_bytes <<<"$r")" 0 "full: out_of_sync_bytes"
assert_eq "$(counter "$S" rx_resync_bytes)" "$SIZE" "full: secondary rx_resync_bytes"
check_secondary_state full
mirror_down
assert_disks_identical "full, after detach"

log "b) skip: new metadata, both disks zeroed, --initial-sync skip"
fresh_meta
zero_disk "$XM_PRIMARY_DISK"
zero_disk "$XM_SECONDARY_DISK"
t0=$(now_us)
mirror_up --initial-sync skip
secs=$(secs_since "$t0")
r=$(status_json "$P" | jq -c .daemon)
log "  in sync after $secs s: decision $(jq -r .replication.decision <<<"$r"), tx_resync_bytes $(jq .counters.tx_resync_bytes <<<"$r")"
assert_eq "$(jq .counters.tx_resync_bytes <<<"$r")" 0 "skip: tx_resync_bytes"
assert_eq "$(jq .counters.tx_resync <<<"$r")" 0 "skip: tx_resync frames"
assert_eq "$(counter "$S" rx_resync_bytes)" 0 "skip: secondary rx_resync_bytes"
check_secondary_state skip
assert_disks_identical "skip initial sync"
mirror_down
assert_disks_identical "skip, after detach"

log "c) checksum: equal disks except 5 regions of the secondary"
fresh_meta
dd if=/dev/urandom of="$XM_PRIMARY_DISK" bs=1M count=$((SIZE >> 20)) conv=notrunc status=none ||
	fail "filling the primary's disk"
dd if="$XM_PRIMARY_DISK" of="$XM_SECONDARY_DISK" bs=1M conv=notrunc status=none || fail "copying the disk"
assert_disks_identical "before the checksum sync"
# Five distinct 64 KiB regions spread over the disk (first, last and three in between).
regions="0 77 512 777 $((SIZE / REGION - 1))"
for n in $regions; do
	dd if=/dev/urandom of="$XM_SECONDARY_DISK" bs=$REGION seek="$n" count=1 conv=notrunc \
		oflag=direct status=none || fail "writing region $n of the secondary"
done
ndiff=$(cmp -l "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" | awk -v r=$REGION '{ print int(($1 - 1) / r) }' | sort -u | wc -l)
assert_eq "$ndiff" 5 "regions that differ before the checksum sync"
t0=$(now_us)
mirror_up --initial-sync checksum
secs=$(secs_since "$t0")
r=$(status_json "$P" | jq -c .daemon)
s=$(status_json "$S" | jq -c .daemon)
log "  in sync after $secs s: decision $(jq -r .replication.decision <<<"$r"), tx_resync_bytes $(jq .counters.tx_resync_bytes <<<"$r"), tx_csumreq $(jq .counters.tx_csumreq <<<"$r"), secondary rx_csumreq $(jq .counters.rx_csumreq <<<"$s"), rx_resync_bytes $(jq .counters.rx_resync_bytes <<<"$s")"
assert_disks_identical "checksum initial sync"
v=$(jq -c .replication.verify <<<"$r")
log "  checksum pass: $v"
assert_eq "$(jq -r .kind <<<"$v")" checksum_sync "checksum: kind of the pass"
assert_eq "$(jq .finished <<<"$v")" true "checksum: pass finished"
assert_ge "$(jq .counters.tx_csumreq <<<"$r")" 1 "checksum: primary tx_csumreq"
assert_ge "$(jq .counters.rx_csumreq <<<"$s")" 1 "checksum: secondary rx_csumreq"
assert_eq "$(jq .regions_differ <<<"$v")" 5 "checksum: regions found differing"
assert_eq "$(jq .regions_equal <<<"$v")" $((SIZE / REGION - 5)) "checksum: regions found equal"
assert_eq "$(jq .counters.tx_resync_bytes <<<"$r")" $((5 * REGION)) "checksum: tx_resync_bytes (5 regions)"
check_secondary_state checksum
mirror_down
assert_disks_identical "checksum, after detach"
echo "all checks passed"
