#!/usr/bin/env bash
# Description: handshake refusals, each named on both sides in the same words (status --json,
# status text and the daemon logs; only "refused by peer" / "refused the primary" / "refused the
# peer" says which side refused) and none of them moving data: a secondary whose disk is smaller than the
# primary's export refuses it, two boxes that both run as primary refuse each other, and a
# secondary whose disk has failed ends the session and refuses the primary's reconnect.  The
# refused primary serves its NBD export on, degraded, counting what it writes out of sync; no
# DATA crosses while refused, and neither disk changes but by its own box's NBD client.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_fuse
require_nbdkit_filters error
require_nbd_ops
# The failing disk is a FUSE file, which wants 4 KiB direct I/O: jumbo frames carry 4 KiB blocks.
pair_up u --disk-size 16M --mtu 9000
SIZE=$((16 << 20))
LEN=65536

reason() { status_json "$1" | jq -r .daemon.replication.reason; }
is_refused() { [ "$(connection "$1")" = refused ]; }
both_refused() { is_refused "$P" && is_refused "$S"; }
hellos_reach() { counter_reaches "$1" tx_hello "$2"; }
# cause REASON: a refusal's cause, without the prefix that says who refused.
cause() { sed -E 's/^(refused by peer|refused the primary|refused the peer): //' <<<"$1"; }
# same_cause WHAT P-REASON S-REASON: both boxes name one cause.
same_cause() {
	log "  $1: primary says '$2', secondary says '$3'"
	assert_eq "$(cause "$3")" "$(cause "$2")" "$1: the secondary's cause against the primary's"
}
ROLE_CAUSE="both boxes claim the same role"
# peer_is_primary IF: of two primaries, each refuses the other's HELLO ("refused the peer") and is
# refused in turn ("refused by peer"), once a second each: the status shows whichever came last,
# with one cause.
peer_is_primary() {
	local r
	r=$(reason "$1")
	[ "$r" = "refused the peer: $ROLE_CAUSE" ] || [ "$r" = "refused by peer: $ROLE_CAUSE" ] ||
		fail "$1's reason: expected the peer to be a primary, got '$r'"
}
# more_hellos IF: the box sends two more HELLOs (a refused primary retries once a second).
more_hellos() {
	local h
	h=$(counter "$1" tx_hello)
	wait_until 5 hellos_reach "$1" $((h + 2)) || fail "$1 stopped offering HELLOs (tx_hello stays near $h)"
}
# text_says IF TEXT: the text status shows TEXT.
text_says() {
	local out
	out=$("$XM" status --dev "$1") || fail "status --dev $1 failed"
	[[ $out == *"$2"* ]] || fail "text status of $1 does not say '$2': $(grep "reason" <<<"$out")"
}
# logged_once BOX TEXT: the box's daemon log says TEXT, once (a refusal repeats every second).
logged_once() {
	local n
	n=$(grep -cF -- "$2" "$WORK/$1.log")
	assert_eq "$n" 1 "$1's log lines saying '$2'"
}
# no_data_crossed: neither XDP program has seen a DATA frame, and neither daemon sent one.
no_data_crossed() {
	assert_eq "$(bpf_counter "$P" rx.data)" 0 "DATA frames that reached the primary's box"
	assert_eq "$(bpf_counter "$S" rx.data)" 0 "DATA frames that reached the secondary's box"
	assert_eq "$(counter "$P" tx_data)" 0 "DATA frames the primary sent"
	assert_eq "$(counter "$S" tx_data)" 0 "DATA frames the secondary's box sent"
}
# nbd_write BOX OFF SEED: a write of LEN bytes and a flush through the box's export.
nbd_write() {
	$NBD_OPS "$(nbd_uri "$1")" "write:$2:$LEN:$3" flush >"$WORK/ops.log" 2>&1 ||
		fail "write at $2 through the $1's export: $(tr '\n' ';' <"$WORK/ops.log")"
}
# add_write IMAGE OFF SEED: IMAGE gets what nbd_write OFF SEED writes (an expected image).
add_write() {
	$NBD_OPS pattern $LEN "$3" | dd of="$1" bs=4096 seek=$(($2 / 4096)) conv=notrunc status=none ||
		fail "cannot build $1"
}
# same_image DISK EXPECTED WHAT: the disk holds exactly the expected bytes.
same_image() {
	cmp "$1" "$2" >/dev/null || fail "$3: $(basename "$1") is not as expected: $(cmp "$1" "$2" 2>&1 | head -1)"
}
# Every case starts from new metadata: the previous case's degraded writes would otherwise make
# the next handshake a split brain or peer-newer refusal, not the one under test.
new_metadata() { rm -f "$(box_meta primary)" "$(box_meta secondary)"; }

log "the secondary's disk is smaller than the primary's"
SMALL=$WORK/small.img
random_file "$SMALL" $((SIZE / 2))
sdig=$(digest "$SMALL")
cp "$XM_PRIMARY_DISK" "$WORK/expect-p.img"
attach_box secondary --disk "$SMALL"
attach_box primary
wait_until 5 is_refused "$P" || fail "the primary was not refused: $(status_json "$P" | jq -c .daemon.replication)"
small_cause="the secondary's disk ($((SIZE / 2)) bytes) is smaller than the export ($SIZE bytes)"
want_p="refused by peer: $small_cause"
want_s="refused the primary: $small_cause"
same_cause "a smaller disk" "$(reason "$P")" "$(reason "$S")"
assert_eq "$(reason "$P")" "$want_p" "primary's reason"
# The secondary set its reason before it sent the refusal the primary has seen.
assert_eq "$(reason "$S")" "$want_s" "secondary's reason"
more_hellos "$P"
wait_until 2 is_refused "$P" || fail "the primary is no longer refused: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(counter "$P" sessions)" 0 "primary's sessions"
assert_eq "$(counter "$S" sessions)" 0 "secondary's sessions"
text_says "$P" "$want_p"
text_says "$S" "$want_s"
logged_once primary "$want_p"
logged_once secondary "$want_s"
off=$((4 << 20)) seed=$((RANDOM + 1))
nbd_write primary $off $seed
add_write "$WORK/expect-p.img" $off $seed
r=$(status_json "$P" | jq .daemon.replication)
assert_ge "$(jq .out_of_sync_bytes <<<"$r")" $LEN "bytes out of sync after a refused write"
assert_ge "$(jq .degraded_writes <<<"$r")" 1 "degraded writes"
no_data_crossed
"$XM" detach --dev "$P" || fail "detach primary"
"$XM" detach --dev "$S" || fail "detach secondary"
same_image "$XM_PRIMARY_DISK" "$WORK/expect-p.img" "the refused primary's disk"
assert_digest "$SMALL" "$sdig" "the smaller disk that refused"

log "both boxes run as primary"
new_metadata
cp "$XM_PRIMARY_DISK" "$WORK/expect-p.img"
cp "$XM_SECONDARY_DISK" "$WORK/expect-s.img"
attach_box primary
attach_box secondary --role primary
wait_until 5 both_refused || fail "the primaries did not refuse each other: P=$(connection "$P") S=$(connection "$S")"
more_hellos "$P"
more_hellos "$S"
same_cause "two primaries" "$(reason "$P")" "$(reason "$S")"
for dev in "$P" "$S"; do
	peer_is_primary "$dev"
	assert_eq "$(counter "$dev" sessions)" 0 "$dev's sessions"
	out=$("$XM" status --dev "$dev") || fail "status --dev $dev"
	[[ $out =~ reason\ +refused\ (the\ peer|by\ peer):\ both\ boxes\ claim\ the\ same\ role ]] ||
		fail "text status of $dev does not say the peer is a primary: $(grep "reason" <<<"$out")"
done
logged_once primary "refused by peer: $ROLE_CAUSE"
logged_once secondary "refused by peer: $ROLE_CAUSE"
poff=$((2 << 20)) pseed=$((RANDOM + 1)) soff=$((6 << 20)) sseed=$((RANDOM + 40000))
nbd_write primary $poff $pseed
nbd_write secondary $soff $sseed
add_write "$WORK/expect-p.img" $poff $pseed
add_write "$WORK/expect-s.img" $soff $sseed
assert_ge "$(counter "$P" writes_degraded)" 1 "primary's degraded writes"
assert_ge "$(counter "$S" writes_degraded)" 1 "second primary's degraded writes"
no_data_crossed
"$XM" detach --dev "$P" || fail "detach primary"
"$XM" detach --dev "$S" || fail "detach the second primary"
same_image "$XM_PRIMARY_DISK" "$WORK/expect-p.img" "the first primary's disk"
same_image "$XM_SECONDARY_DISK" "$WORK/expect-s.img" "the second primary's disk"

log "the secondary's disk fails: its image through nbdkit's error filter and nbdfuse"
new_metadata
TRIGGER=$WORK/disk-fails
fuse_disk sdisk "$XM_SECONDARY_DISK" --filter=error error=EIO error-pwrite-rate=1 \
	error-pwrite-file="$TRIGGER"
attach_box secondary --disk "$FUSE_DISK"
attach_box primary
wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 30 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
assert_disks_identical "after the initial sync"
sdig=$(digest "$XM_SECONDARY_DISK")
cp "$XM_PRIMARY_DISK" "$WORK/expect-p.img"

touch "$TRIGGER"
off=$((8 << 20)) seed=$((RANDOM + 1))
t0=$(now_us)
$NBD_OPS "$(nbd_uri)" "write:$off:$LEN:$seed" flush >"$WORK/ops-failed.log" 2>&1
rc=$?
log "the client of the write the secondary's disk failed saw, after $(secs_since "$t0") s: $(tr '\n' ';' <"$WORK/ops-failed.log") exit $rc"
[ $rc -eq 0 ] || fail "the write the secondary's disk failed did not complete on the primary: $(tr '\n' ';' <"$WORK/ops-failed.log")"
add_write "$WORK/expect-p.img" $off $seed
wait_until 5 is_refused "$P" || fail "the primary's reconnect was not refused: $(status_json "$P" | jq -c .daemon.replication)"
failed_cause="the secondary's disk failed"
assert_eq "$(reason "$P")" "refused by peer: $failed_cause" "primary's reason"
assert_eq "$(replication_state "$S")" failed "secondary's state"
# The failed box keeps the error as its reason while it refuses the primary's HELLOs.
reason_s=$(reason "$S")
assert_eq "$reason_s" "disk failed: Input/output error" "secondary's reason"
assert_ge "$(counter "$S" wr_errors)" 1 "secondary's disk write errors"
assert_ge "$(status_json "$P" | jq .daemon.replication.out_of_sync_bytes)" $LEN "bytes out of sync after the secondary's disk failed"
# A failed disk stays failed: no later HELLO starts a session.
sessions=$(counter "$P" sessions)
more_hellos "$P"
wait_until 2 is_refused "$P" || fail "the primary is no longer refused: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(counter "$P" sessions)" "$sessions" "sessions after the disk failed"
text_says "$P" "refused by peer: $failed_cause"
text_says "$S" "$reason_s"
logged_once primary "refused by peer: $failed_cause"
logged_once secondary "refused the primary: $failed_cause"
# The failed box's status keeps its error; its log names the refusal as the primary does.
same_cause "a failed disk" "$(reason "$P")" "$(grep -o "refused the primary: .*" "$WORK/secondary.log" | head -1)"
grep -qF "disk failed: Input/output error" "$WORK/secondary.log" ||
	fail "the secondary's log does not say its disk failed: $(tail -3 "$WORK/secondary.log")"
log "  refused: a write goes to the primary's disk only"
tx0=$(counter "$P" tx_data) rx0=$(bpf_counter "$S" rx.data) wd0=$(counter "$P" writes_degraded)
off=$((10 << 20)) seed=$((RANDOM + 1))
nbd_write primary $off $seed
add_write "$WORK/expect-p.img" $off $seed
assert_ge "$(counter "$P" writes_degraded)" $((wd0 + 1)) "degraded writes"
assert_eq "$(counter "$P" tx_data)" "$tx0" "DATA frames sent while refused"
assert_eq "$(bpf_counter "$S" rx.data)" "$rx0" "DATA frames that reached the secondary while refused"
"$XM" detach --dev "$P" || fail "detach primary"
"$XM" detach --dev "$S" || fail "detach secondary"
same_image "$XM_PRIMARY_DISK" "$WORK/expect-p.img" "the primary's disk"
assert_digest "$XM_SECONDARY_DISK" "$sdig" "the failed disk"
echo "all checks passed"
