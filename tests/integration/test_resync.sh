#!/usr/bin/env bash
# Description: the secondary is killed (kill -9) mid-write, later its link goes down mid-write;
# each time the primary degrades within the heartbeat timeout, keeps serving, and after the
# restart or relink resyncs only the dirty regions (bytes sent = dirty bits x granularity) until
# both disks are identical.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
command -v fio >/dev/null || skip "fio missing (make deps)"
pair_up xmtg --disk-size 128M
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX
BLOCK=65536

# fio_write NAME ARGS...: writes through the primary's NBD export.
fio_write() {
	local name=$1
	shift
	fio --name="$name" --ioengine=nbd --uri="$(nbd_uri)" --direct=1 --randrepeat=0 \
		--output="$work/fio-$name.log" "$@" || fail "fio $name: $(tail -5 "$work/fio-$name.log")"
}
is_degraded() { [ "$(replication_state "$P")" = degraded ]; }
dirty_bits() { status_json "$P" | jq .daemon.metadata.bitmap.dirty_bits; }

# check_resync WHAT DIRTY_BITS RESYNC_BYTES_BEFORE: the resync moved exactly the dirty regions.
check_resync() {
	local r sent
	wait_until 30 in_sync "$P" || fail "$1: no resync: $(status_json "$P" | jq -c .daemon.replication)"
	r=$(status_json "$P" | jq .daemon)
	assert_eq "$(jq -r .replication.decision <<<"$r")" bitmap "$1: handshake decision"
	sent=$(($(jq .counters.tx_resync_bytes <<<"$r") - $3))
	log "$1: $2 dirty region(s) = $(($2 * BLOCK)) bytes; resync sent $sent bytes (disk $XM_DISK_SIZE)"
	assert_ge "$sent" 1 "$1: resync sent something"
	[ "$sent" -le $(($2 * BLOCK)) ] || fail "$1: resync sent $sent bytes for $2 dirty regions"
	assert_eq "$(jq .metadata.bitmap.dirty_bits <<<"$r")" 0 "$1: bitmap clean after resync"
}

mirror_up --timeout 50
log "kill -9 of the secondary in the middle of writes"
fio_write load --rw=randwrite --bs=64k --iodepth=8 --size=8M --time_based --runtime=3 &
fio_pid=$!
sleep 1
assert_eq "$(counter "$P" peer_timeouts)" 0 "no false alarm under load"
kill -9 "$(status_json "$S" | jq .daemon.pid)"
wait_until 2 is_degraded || fail "primary did not degrade: $(status_json "$P" | jq -c .daemon.replication)"
f=$(status_json "$P" | jq .daemon.replication.last_failure)
log "failure detected: $(jq -r .reason <<<"$f") after $(jq .silence_ms <<<"$f") ms of silence"
assert_eq "$(jq -r .reason <<<"$f")" "peer timeout" "failure reason"
jq -e '.silence_ms < 100' <<<"$f" >/dev/null || fail "detection took $(jq .silence_ms <<<"$f") ms"
wait "$fio_pid" || fail "writes failed while the secondary died"
fio_write scattered --rw=randwrite --bs=4k --number_ios=200 --size=128M --offset=0
bits=$(dirty_bits)
assert_ge "$bits" 1 "writes while degraded are dirty"
before=$(counter "$P" tx_resync_bytes)
in_box secondary "$XM" detach --dev "$S" >/dev/null 2>&1 # leftovers of the killed daemon
attach_box secondary
check_resync "after kill -9" "$bits" "$before"
assert_disks_identical "after kill -9 and resync"

log "link down in the middle of writes"
fio_write load2 --rw=randwrite --bs=64k --iodepth=8 --size=8M --offset=64M --time_based --runtime=2 &
fio_pid=$!
sleep 0.5
in_box secondary ip link set dev "$S" down
wait_until 2 is_degraded || fail "primary did not degrade on link down"
f=$(status_json "$P" | jq .daemon.replication.last_failure)
log "failure detected: $(jq -r .reason <<<"$f") after $(jq .silence_ms <<<"$f") ms of silence"
jq -e '.silence_ms < 100' <<<"$f" >/dev/null || fail "detection took $(jq .silence_ms <<<"$f") ms"
wait "$fio_pid" || fail "writes failed while the link was down"
bits=$(dirty_bits)
before=$(counter "$P" tx_resync_bytes)
in_box secondary ip link set dev "$S" up
check_resync "after relink" "$bits" "$before"
mirror_down
assert_disks_identical "after link down and resync"
echo "all checks passed"
