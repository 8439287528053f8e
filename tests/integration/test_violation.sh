#!/usr/bin/env bash
# Description: a session that ends on a protocol violation never ends in "sync none": forged DATA
# lands on the secondary's disk and its ack (a SACK for a frame the primary never sent) ends the
# session on the primary; the next session resyncs the regions the secondary wrote in it, and
# verify finds nothing different.  The same when the secondary finds the violation (DATA beyond
# the export) after a stray write.  The pair runs --no-auth: with a key the forged frames never
# land (test_auth), but a buggy peer can still break the protocol, and that must end the same way.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
pair_up vi --disk-size 32M
BLOCK=65536
STRAY1=$((20 << 20)) STRAY2=$((24 << 20)) # beyond the image the test writes: zeros on both
# ee_at OFF: bytes of 0xEE in the 512 bytes at OFF on the secondary's disk (the forged frames
# carry only 0xEE).
ee_at() { dd if="$XM_SECONDARY_DISK" bs=512 skip=$(($1 / 512)) count=1 status=none | LC_ALL=C tr -dc '\356' | wc -c; }

# forge SEQ_AHEAD OFFSET [xm_rawsend options]: 512 bytes of 0xEE as DATA of the current session,
# SEQ_AHEAD frames past the secondary's cumulative ack, sent with the primary's MAC.
forge() {
	local sj
	sj=$(status_json "$S")
	in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
		--type 3 --session "$(jq .daemon.replication.session <<<"$sj")" \
		--seq $(($(jq .daemon.replication.cumack <<<"$sj") + $1)) --arg0 "$2" \
		--payload-len 512 --fill 0xee "${@:3}" || fail "xm_rawsend"
}
# new_session SESSIONS0: the primary has had a session more than SESSIONS0 and is in sync again.
new_session() { [ "$(counter "$P" sessions)" -gt "$1" ] && in_sync "$P"; }
run_verify() {
	local out rc
	out=$("$XM" verify --dev "$P" 2>&1)
	rc=$?
	log "  verify: exit $rc: $out"
	assert_eq "$rc" 0 "verify exit status"
}
# after_violation WHAT SESSIONS0 RESYNC0 STRAY: the next session resynced what the secondary wrote,
# the stray bytes at STRAY among it.
after_violation() {
	local pj sent
	wait_until 10 new_session "$2" || fail "$1: no new session in sync: $(status_json "$P" | jq -c .daemon.replication)"
	pj=$(status_json "$P" | jq .daemon)
	assert_eq "$(jq -r .replication.decision <<<"$pj")" bitmap "$1: the new session's decision"
	assert_eq "$(jq .replication.peer_suspect <<<"$pj")" false "$1: peer_suspect once resynced"
	sent=$(($(jq .counters.tx_resync_bytes <<<"$pj") - $3))
	log "  $1: resync sent $sent bytes"
	assert_ge "$sent" $BLOCK "$1: resync of the stray region"
	assert_eq "$(ee_at "$4")" 0 "$1: 0xEE bytes left on the secondary"
	run_verify
}

mirror_up --no-auth
random_file "$WORK/a.img" $((16 << 20))
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy"
wait_until 10 in_sync "$P" || fail "not in sync"
assert_eq "$(ee_at $STRAY1)$(ee_at $STRAY2)" 00 "0xEE bytes on the secondary at first"

log "forged DATA in the window: the secondary writes it, the primary sees an ack for an unsent frame"
s0=$(counter "$P" sessions) v0=$(counter "$P" violations) r0=$(counter "$P" tx_resync_bytes)
forge 5 $STRAY1
wait_until 5 counter_reaches "$P" violations $((v0 + 1)) || fail "the primary saw no violation"
log "  primary: $(status_json "$P" | jq -c .daemon.replication.last_failure)"
grep -q "protocol violation" "$WORK/primary.log" || fail "the primary's log names no violation"
after_violation "violation found by the primary" "$s0" "$r0" $STRAY1
grep -qE "the primary ended the last session on a protocol violation; the [0-9]+ region\(s\)" \
	"$WORK/secondary.log" || fail "the secondary's log does not say what it resyncs"

log "a stray write, then DATA beyond the export: the secondary finds the violation itself"
s0=$(counter "$P" sessions) r0=$(counter "$P" tx_resync_bytes) sv0=$(counter "$S" violations)
# The stray frame is ahead of the cumulative ack: it is written, the next one ends the session
# before the primary sees its ack.
forge 700 $STRAY2
landed() { [ "$(ee_at $STRAY2)" = 512 ]; }
wait_until 5 landed || fail "the stray write did not land"
forge 701 "$XM_DISK_SIZE"
wait_until 5 counter_reaches "$S" violations $((sv0 + 1)) || fail "the secondary saw no violation"
after_violation "violation found by the secondary" "$s0" "$r0" $STRAY2
grep -qE "the session ended on a protocol violation; the [0-9]+ region\(s\)" "$WORK/secondary.log" ||
	fail "the secondary's log does not say what it resyncs"

log "the data: the primary's image, on both disks"
mirror_down
cmp -n $((16 << 20)) "$WORK/a.img" "$XM_SECONDARY_DISK" || fail "the secondary lacks the image"
assert_disks_identical "after both violations"

log "a cleanly detached primary starts clean (its last metadata write was not skipped)"
attach_box primary
grep -q "did not end cleanly" "$WORK/primary.log" && fail "restart after a clean detach: $(cat "$WORK/primary.log")"
assert_eq "$(status_json "$P" | jq .daemon.replication.peer_suspect)" false "peer_suspect after restart"
"$XM" detach --dev "$P" || fail "detach"
echo "all checks passed"
