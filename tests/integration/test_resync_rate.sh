#!/usr/bin/env bash
# Description: --resync-rate caps a resync: 24 MiB of dirty regions at 8 MiB/s take at least the
# time the token bucket allows (a lower bound, which load cannot break), status reports the cap
# and a rate within it, and the resync still ends with identical disks.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
pair_up t --disk-size 64M
RATE=8 DIRTY=$((24 << 20))
# The bucket holds at most 4 chunks of 256 KiB (primary.c): that much may go at once.
BURST=$((1 << 20))

# Both images are zeros from pair-setup: no initial full sync at the capped rate.
mirror_up --resync-rate $RATE --initial-sync skip
assert_eq "$(status_json "$P" | jq .daemon.replication.resync.rate_limit_mib)" $RATE "rate limit in status"

log "the secondary's link goes down; $((DIRTY >> 20)) MiB are written"
in_box secondary ip link set dev "$S" down
wait_until 2 is_degraded "$P" || fail "primary did not degrade"
random_file "$WORK/in.img" $DIRTY
nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy"
dirty=$(($(dirty_bits "$P") * 65536))
assert_eq "$dirty" $DIRTY "dirty bytes"
before=$(counter "$P" tx_resync_bytes)

log "link up: the resync runs at $RATE MiB/s at most"
t0=$(now_us)
in_box secondary ip link set dev "$S" up
wait_until 2 resync_active "$P" || fail "no resync started: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 30 in_sync "$P" || fail "resync did not finish: $(status_json "$P" | jq -c .daemon.replication.resync)"
took_us=$(($(now_us) - t0))
secs=$(secs_since "$t0")
sent=$(($(counter "$P" tx_resync_bytes) - before))
min_us=$(((DIRTY - BURST) * 1000000 / (RATE << 20)))
log "  $sent bytes in $secs s (at least $((min_us / 1000)) ms at $RATE MiB/s)"
assert_eq "$sent" $DIRTY "resync bytes"
assert_ge "$took_us" "$min_us" "resync time in microseconds: the cap did not hold"
last=$(status_json "$P" | jq .daemon.replication.resync.last)
log "  status resync.last: $last"
assert_eq "$(jq .bytes <<<"$last")" $DIRTY "resync.last.bytes"
assert_le "$(jq .rate_bytes_per_s <<<"$last")" $((RATE * 1153434)) "resync.last.rate_bytes_per_s (cap + 10 %)"
mirror_down
cmp -n $DIRTY "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "the secondary does not hold the data"
assert_disks_identical "after the capped resync"
echo "all checks passed"
