#!/usr/bin/env bash
# Description: the secondary is killed (kill -9) mid-write, later its link goes down mid-write;
# each time the primary degrades within the heartbeat timeout, keeps serving, and after the
# restart or relink resyncs only the dirty regions (bytes sent = dirty bits x granularity) until
# both disks are identical, and the primary's disk, the data of record, is not changed by it.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd fio
pair_up g --disk-size 128M
BLOCK=65536 TIMEOUT_MS=50

# load_running W0: the background load has written and has writes in flight right now.
load_running() {
	local r
	r=$(status_json "$P" | jq -c '.daemon | [.counters.writes, .replication.active_writes]')
	[ "$(jq '.[0]' <<<"$r")" -ge $(($1 + 50)) ] && [ "$(jq '.[1]' <<<"$r")" -ge 1 ]
}

# check_failure: the primary says why the session ended and how long the peer had been silent:
# never less than the detector's timeout T (docs/protocol.md §9.2; a busy peer is not declared
# dead early).
check_failure() {
	local f t
	f=$(status_json "$P" | jq .daemon.replication.last_failure)
	t=$(status_json "$P" | jq .daemon.peer.detect_timeout_ms)
	log "failure detected: $(jq -r .reason <<<"$f") after $(jq .silence_ms <<<"$f") ms of silence (T $t ms)"
	assert_eq "$(jq -r .reason <<<"$f")" "peer not answering" "failure reason"
	jq -e --argjson t "$t" '.silence_ms >= $t' <<<"$f" >/dev/null ||
		fail "declared dead after $(jq .silence_ms <<<"$f") ms of silence (T $t ms)"
}

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

mirror_up --timeout $TIMEOUT_MS
log "kill -9 of the secondary in the middle of writes"
w0=$(counter "$P" writes)
fio_load load --rw=randwrite --bs=64k --iodepth=8 --size=8M
wait_until 10 load_running "$w0" || fail "the load does not write"
assert_eq "$(counter "$P" peer_timeouts)" 0 "no false alarm under load"
kill_daemon secondary
wait_until 2 is_degraded "$P" || fail "primary did not degrade: $(status_json "$P" | jq -c .daemon.replication)"
check_failure
# Writes go on while the secondary is dead: the load keeps going, then stops by itself.
w1=$(counter "$P" writes)
wait_until 10 counter_reaches "$P" writes $((w1 + 50)) || fail "writes stopped while the secondary was dead"
fio_stop load "$FIO_PID"
fio_write scattered --rw=randwrite --bs=4k --number_ios=200 --size=128M --offset=0
bits=$(dirty_bits "$P")
assert_ge "$bits" 1 "writes while degraded are dirty"
before=$(counter "$P" tx_resync_bytes)
record=$(digest "$XM_PRIMARY_DISK")
in_box secondary "$XM" detach --dev "$S" >/dev/null 2>&1 # leftovers of the killed daemon
attach_box secondary
check_resync "after kill -9" "$bits" "$before"
assert_digest "$XM_PRIMARY_DISK" "$record" "the primary after the resync"
assert_disks_identical "after kill -9 and resync"

log "link down in the middle of writes"
w0=$(counter "$P" writes)
fio_load load2 --rw=randwrite --bs=64k --iodepth=8 --size=8M --offset=64M
wait_until 10 load_running "$w0" || fail "the second load does not write"
in_box secondary ip link set dev "$S" down
wait_until 2 is_degraded "$P" || fail "primary did not degrade on link down"
check_failure
w1=$(counter "$P" writes)
wait_until 10 counter_reaches "$P" writes $((w1 + 50)) || fail "writes stopped while the link was down"
fio_stop load2 "$FIO_PID"
bits=$(dirty_bits "$P")
before=$(counter "$P" tx_resync_bytes)
record=$(digest "$XM_PRIMARY_DISK")
in_box secondary ip link set dev "$S" up
check_resync "after relink" "$bits" "$before"
assert_digest "$XM_PRIMARY_DISK" "$record" "the primary after the resync"
mirror_down
assert_disks_identical "after link down and resync"
echo "all checks passed"
