#!/usr/bin/env bash
# Description: a busy box is not a dead peer: mirrored writes (nbdcopy --flush of 8 MiB every
# 0.5 s) while CPU hogs and a disk hog load both boxes; at default settings no session ends, and
# the secondary holds what the primary holds.  `make soak` runs it for minutes (XM_SOAK_SECONDS,
# XM_SOAK_CPU_HOGS, XM_SOAK_DISK_HOG=0|1).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
SECONDS_TO_RUN=${XM_SOAK_SECONDS:-30}
CPU_HOGS=${XM_SOAK_CPU_HOGS:-8}
DISK_HOG=${XM_SOAK_DISK_HOG:-1}
[[ $SECONDS_TO_RUN =~ ^[0-9]+$ && $CPU_HOGS =~ ^[0-9]+$ && $DISK_HOG =~ ^[01]$ ]] ||
	fail "XM_SOAK_SECONDS, XM_SOAK_CPU_HOGS: numbers; XM_SOAK_DISK_HOG: 0 or 1"
pair_up sk --disk-size 64M
mirror_up

log "load: $CPU_HOGS CPU hogs, disk hog ${DISK_HOG/1/on}, ${SECONDS_TO_RUN} s of writes"
for ((i = 0; i < CPU_HOGS; i++)); do
	bash -c 'while :; do :; done' &
	track_worker $!
done
if [ "$DISK_HOG" = 1 ]; then
	# Writes and syncs to the file system that holds both disk images and their metadata.
	bash -c "while :; do dd if=/dev/zero of='$WORK/hog.img' bs=1M count=256 conv=fdatasync status=none; done" &
	track_worker $!
fi
for i in 0 1 2 3; do
	random_file "$WORK/w$i.img" $((8 << 20))
done
start=$(now_us)
n=0
while [ $(($(now_us) - start)) -lt $((SECONDS_TO_RUN * 1000000)) ]; do
	last=$WORK/w$((n % 4)).img
	nbdcopy --flush "$last" "$(nbd_uri)" || fail "nbdcopy $n"
	n=$((n + 1))
	sleep 0.5
done
stop_pids "${XM_WORKER_PIDS[@]}"
XM_WORKER_PIDS=()
pkill -f "of=$WORK/hog.img" 2>/dev/null
rm -f "$WORK/hog.img"
log "$n copies of 8 MiB in $(secs_since "$start") s"

for dev in "$P" "$S"; do
	sj=$(status_json "$dev")
	log "  $dev: sessions $(jq .daemon.counters.sessions <<<"$sj"), peer timeouts" \
		"$(jq .daemon.counters.peer_timeouts <<<"$sj"), failure: $(jq -c .daemon.replication.last_failure <<<"$sj")"
	log "  $dev: loop $(jq -c .daemon.loop <<<"$sj")"
	log "  $dev: detector $(jq -c .daemon.peer <<<"$sj")"
done
log "  $P: longest wait for a durable ack $(status_json "$P" | jq .daemon.replication.ack_wait_max_ms) ms"
for dev in "$P" "$S"; do
	assert_eq "$(counter "$dev" sessions)" 1 "$dev: sessions (every end of a session is a flap)"
	assert_eq "$(counter "$dev" peer_timeouts)" 0 "$dev: peer timeouts"
done
assert_eq "$(counter "$P" writes_degraded)" 0 "writes acknowledged without the secondary"
mirror_down
cmp -n $((8 << 20)) "$last" "$XM_SECONDARY_DISK" || fail "the secondary does not hold the last copy"
assert_disks_identical "after the soak"
echo "all checks passed"
