#!/usr/bin/env bash
# Description: netem-style faults on the wire (5 % loss, reordering, 5 % duplicates, 2 % bit
# corruption, one at a time, both directions) while nbdcopy writes a random 8-16 MiB region
# through the primary's export: each write succeeds, the session stays up with no degraded write,
# the repair machinery shows in the counters (retransmissions, duplicates, bad CRCs / XDP drops),
# every region reads back through NBD, and the disks end identical.
# SPDX-License-Identifier: GPL-2.0
# The faults are injected by a tc program in a third namespace between the boxes: why, in
# tests/lib-wire.sh.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib-wire.sh"
require_root
require_cmd nbdcopy bpftool tc

pair_up f --disk-size 80M
wire_up
mirror_up
URI=$(nbd_uri)

# snapshot: both daemons' counters and XDP stats plus the injectors' counts, as one JSON.
snapshot() {
	jq -n --argjson p "$(status_json "$P")" --argjson s "$(status_json "$S")" \
		--argjson is "$(injected to_s)" --argjson ip "$(injected to_p)" \
		'{p: $p.daemon.counters, s: $s.daemon.counters, pstate: $p.daemon.replication.state,
		  sstate: $s.daemon.replication.state,
		  pxdp: ([$p.xdp_stats.drop[].frames] | add), sxdp: ([$s.xdp_stats.drop[].frames] | add),
		  ppass: $p.xdp_stats.pass.frames, spass: $s.xdp_stats.pass.frames,
		  to_s: $is, to_p: $ip}'
}
# delta BEFORE AFTER: every number in AFTER minus the one in BEFORE (states kept from AFTER).
delta() {
	jq -n --argjson a "$1" --argjson b "$2" \
		'def d(x; y): if (y | type) == "object" then reduce (y | keys[]) as $k ({}; .[$k] = d(x[$k]; y[$k]))
		  elif (y | type) == "number" then y - x else y end; d($a; $b)'
}

SLOT=$((16 << 20)) U=$((64 << 10))
declare -a OFF LEN
i=0
# phase NAME "to_s rates" "to_p rates": writes region i under that fault, prints the deltas.
phase() {
	local name=$1 before after t0 took
	local len=$(((128 + RANDOM % 129) * U))
	local off=$((i * SLOT + RANDOM % ((SLOT - len) / U + 1) * U))
	OFF[i]=$off LEN[i]=$len
	# Only the region is data; nbdcopy --destination-is-zero skips the holes, so the other regions
	# on the export are left alone.
	rm -f "$WORK/src$i.img"
	truncate -s "$XM_DISK_SIZE" "$WORK/src$i.img"
	head -c "$len" /dev/urandom |
		dd of="$WORK/src$i.img" bs=$U seek=$((off / U)) conv=notrunc status=none
	log "$name: $((len >> 10)) KiB at $((off >> 10)) KiB, faults to_s=($2) to_p=($3)"
	before=$(snapshot)
	# shellcheck disable=SC2086 # the rates are separate words on purpose
	faults to_s $2
	# shellcheck disable=SC2086
	faults to_p $3
	t0=$(now_us)
	if ! timeout 30 nbdcopy --destination-is-zero "$WORK/src$i.img" "$URI"; then
		faults to_s 0 0 0 0
		faults to_p 0 0 0 0
		"$XM" status --dev "$P" >/dev/null 2>&1 || fail "$name: nbdcopy failed: the primary daemon is gone"
		fail "$name: nbdcopy failed: $(snapshot)"
	fi
	took=$(secs_since "$t0")
	faults to_s 0 0 0 0
	faults to_p 0 0 0 0
	after=$(snapshot)
	D=$(delta "$before" "$after")
	log "$name: nbdcopy took $took s"
	jq -c '{p: (.p | with_entries(select(.value != 0 and (.key | test("^(tx_retrans|rx_ack|rx_bad|rx_wrong|rx_malformed|tx_data$|sessions|peer_|violations|writes)"))))),
	        s: (.s | with_entries(select(.value != 0 and (.key | test("^(rx_dup|rx_replay|rx_bad|rx_wrong|rx_malformed|rx_out|rx_data$|rx_no|sessions|peer_|violations)"))))),
	        pxdp, sxdp, ppass, spass, to_s, to_p}' <<<"$D" | sed 's/^/   /'
	# The session must have stayed up all along: same session, nothing degraded.
	assert_eq "$(jq -r .pstate <<<"$D")" connected "$name: primary state"
	assert_eq "$(jq -r .sstate <<<"$D")" connected "$name: secondary state"
	assert_eq "$(jq .p.sessions <<<"$D")" 0 "$name: primary sessions started (the session dropped)"
	assert_eq "$(jq '.p.peer_timeouts + .p.peer_stalls + .p.violations + .s.peer_timeouts + .s.violations' <<<"$D")" 0 \
		"$name: sessions ended (peer_timeouts, peer_stalls, violations)"
	assert_eq "$(jq .p.writes_degraded <<<"$D")" 0 "$name: degraded writes"
	assert_ge "$(jq .p.tx_data <<<"$D")" $((len / 8192)) "$name: DATA frames sent"
	# Protocol C: every frame is durable by now, and a seq is applied once, never twice (§5.6).
	assert_eq "$(jq .s.rx_data <<<"$D")" "$(jq .p.tx_data <<<"$D")" \
		"$name: DATA frames applied on the secondary vs sent by the primary"
	i=$((i + 1))
}
retrans() { jq '.p.tx_retrans_rto + .p.tx_retrans_fast' <<<"$D"; }

# The rates after each direction are: loss corrupt dup reorder, per 10000 frames.
# No fault: the reference for the counters below.
phase "no fault" "0 0 0 0" "0 0 0 0"

# 5 % loss both ways: DATA and acks are lost; the primary repairs by RTO or RACK.
phase "loss 5%" "500 0 0 0" "500 0 0 0"
assert_ge "$(jq .to_s.lost <<<"$D")" 1 "loss: frames dropped toward the secondary"
assert_ge "$(retrans)" 1 "loss: retransmissions (tx_retrans_rto + tx_retrans_fast)"
log "loss: $(retrans) retransmissions for $(jq '.to_s.lost + .to_p.lost' <<<"$D") dropped frames" \
	"($(jq .s.rx_dup_done <<<"$D") arrived for frames already durable)"

# Reordering both ways: 25 % of frames go out after 1-8 later ones.
phase "reorder 25%" "0 0 0 2500" "0 0 0 2500"
assert_ge "$(jq .to_s.released <<<"$D")" 1 "reorder: frames sent out of order"

# 5 % duplicates both ways: the secondary sees DATA twice and must not write it twice.
phase "duplicate 5%" "0 0 500 0" "0 0 500 0"
assert_ge "$(jq .to_s.duplicated <<<"$D")" 1 "duplicate: frames duplicated"
# Nearly every injected duplicate is a DATA frame (a few are PINGs), and the secondary must
# recognise each one: the link's replay window drops an exact copy (rx_replay, §14.4), the
# receiver a retransmission of a frame it has (rx_dup_*).
assert_ge "$(jq '.s.rx_dup_done + .s.rx_dup_inflight + .s.rx_replay' <<<"$D")" "$(jq '.to_s.duplicated * 9 / 10 | floor' <<<"$D")" \
	"duplicate: secondary rx_dup_done + rx_dup_inflight + rx_replay vs 90 % of the duplicates sent"

# 2 % corruption both ways: one random bit per hit frame.  Caught by the tag (rx_bad_auth; the CRC without a key) or,
# when the header was hit, by the XDP program (drop.*, or pass when the EtherType was hit: not
# counted here, the stack's own traffic also passes); repaired by retransmission.
phase "corrupt 2%" "0 200 0 0" "0 200 0 0"
assert_ge "$(jq .to_s.corrupted <<<"$D")" 1 "corrupt: frames corrupted"
assert_ge "$(jq '.p.rx_bad_crc + .s.rx_bad_crc + .p.rx_bad_auth + .s.rx_bad_auth + .pxdp + .sxdp' <<<"$D")" 1 \
	"corrupt: rx_bad_crc, rx_bad_auth (a tagged frame has no CRC) or XDP drops on either side"
assert_ge "$(retrans)" 1 "corrupt: retransmissions"

log "read every region back through NBD"
nbdcopy "$URI" "$WORK/out.img" || fail "nbdcopy out"
for j in "${!OFF[@]}"; do
	cmp -i "${OFF[j]}:${OFF[j]}" -n "${LEN[j]}" "$WORK/src$j.img" "$WORK/out.img" ||
		fail "region $j read back through NBD differs from what was written"
done

mirror_down
for j in "${!OFF[@]}"; do
	cmp -i "${OFF[j]}:${OFF[j]}" -n "${LEN[j]}" "$WORK/src$j.img" "$XM_SECONDARY_DISK" ||
		fail "region $j differs on the secondary"
done
assert_disks_identical "after loss, reordering, duplicates and corruption"
rm -f "$WORK"/src*.img "$WORK/out.img"
echo "all checks passed"
