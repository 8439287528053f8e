#!/usr/bin/env bash
# Description: where a write's time goes (docs/protocol.md §8.7): after N synchronous 4 KiB
# writes and a flush, every stage's histogram in `status --json` counted each of them exactly
# once (the secondary: each DATA frame), and none counted the initial sync's chunks; estimates are
# ordered (min <= p50 <= p99 <= p99.9 <= max) and the buckets add up; a write's reply comes after
# each stage it waits for, so 'answered' holds at least as much time as any of them.  Without the
# peer, writes count in the local stages and none in the remote ones.  Behaviour only: no timings.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_nbd_ops
pair_up l --disk-size 128M
mirror_up
N=24
WRITE_STAGES="intent local_durable remote_sent remote_received remote_durable answered"
REMOTE_STAGES="remote_sent remote_received remote_durable"

lat() { status_json "$1" | jq -c .daemon.latency; }
# count JSON STAGE: how many samples the stage holds
count() { jq ".$2.count" <<<"$1"; }

# well_formed JSON STAGE WHAT: the estimates are ordered and the buckets hold every sample.
well_formed() {
	local h
	h=$(jq -c ".$2" <<<"$1")
	assert_eq "$(jq '.buckets | length' <<<"$h")" 25 "$3: $2: buckets"
	assert_eq "$(jq '.buckets | add' <<<"$h")" "$(jq .count <<<"$h")" "$3: $2: buckets add up to count"
	jq -e '.count > 0 and .min_us <= .p50_us and .p50_us <= .p99_us and .p99_us <= .p999_us and
		.p999_us <= .max_us and .max_us <= .sum_us' <<<"$h" >/dev/null ||
		fail "$3: $2: estimates out of order: $h"
}

log "after the initial sync: nothing timed (resync chunks have no client)"
p0=$(lat "$P") s0=$(lat "$S")
for st in $WRITE_STAGES flush; do
	assert_eq "$(count "$p0" $st)" 0 "primary $st before any client"
done
assert_eq "$(count "$s0" write_durable)" 0 "secondary write_durable after the initial sync"

log "$N synchronous writes of 4 KiB and a flush, protocol C"
offs=()
# One write per 4 MiB extent: each misses the activity log (§8.6), so each waits for its bits.
for ((i = 0; i < N; i++)); do offs+=($(((i << 22) + (i % 8 << 16)))); done
nbd_write_at "$(nbd_uri)" 7 "${offs[@]}"
p1=$(lat "$P") s1=$(lat "$S")
for st in $WRITE_STAGES; do
	assert_eq "$(count "$p1" $st)" $N "primary $st: one sample per write"
	well_formed "$p1" $st primary
done
assert_eq "$(count "$p1" flush)" 1 "primary flush"
well_formed "$p1" flush primary
# The secondary times each DATA frame: a 4 KiB write is ceil(4096 / max_payload) of them.
mp=$(status_json "$P" | jq .daemon.replication.max_payload)
assert_eq "$(count "$s1" write_durable)" $((N * ((4096 + mp - 1) / mp))) "secondary write_durable: one per DATA frame"
well_formed "$s1" write_durable secondary

# Per write, whatever the timings: issued -> sent <= received <= durable; and admitted <= active
# set <= issued -> both copies durable <= replied (C), so answered >= intent + either copy's
# stage.  The sums (and the largest samples) keep that order.
jq -e '.remote_sent.sum_us <= .remote_received.sum_us and
	.remote_received.sum_us <= .remote_durable.sum_us and
	.intent.sum_us + .remote_durable.sum_us <= .answered.sum_us and
	.intent.sum_us + .local_durable.sum_us <= .answered.sum_us and
	.remote_durable.max_us <= .answered.max_us and .local_durable.max_us <= .answered.max_us' \
	<<<"$p1" >/dev/null || fail "a stage holds more time than the reply that waited for it: $p1"

log "the text form: one line per stage"
txt=$("$XM" status --dev "$P") || fail "status"
for label in intent "local durable" "remote durable" "write answered" "flush answered"; do
	grep -qE "^  $label +p50 [0-9]+  p99 [0-9]+  max [0-9]+ us  \(n [0-9]+\)$" <<<"$txt" ||
		fail "status text has no '$label' line: $(grep -A8 '^latency' <<<"$txt")"
done
grep -qE "^  write answered +.*\(n $N\)$" <<<"$txt" || fail "status text: write answered (n $N)"
grep -qE "^  write durable +p50 " <<<"$("$XM" status --dev "$S")" || fail "secondary text: write durable"

log "without the peer: local stages only"
"$XM" detach --dev "$S" || fail "detach secondary"
wait_until 2 is_degraded "$P" || fail "primary did not notice the secondary left"
nbd_write_at "$(nbd_uri)" 9 $((1 << 20)) $((2 << 20)) $((3 << 20))
p2=$(lat "$P")
for st in intent local_durable answered; do
	assert_eq "$(count "$p2" $st)" $((N + 3)) "degraded: primary $st"
done
for st in $REMOTE_STAGES; do
	assert_eq "$(count "$p2" $st)" $N "degraded: primary $st (nothing went to the peer)"
done
assert_eq "$(count "$p2" flush)" 2 "degraded: primary flush"
"$XM" detach --dev "$P" || fail "detach primary"
echo "all checks passed"
