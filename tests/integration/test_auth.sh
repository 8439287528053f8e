#!/usr/bin/env bash
# Description: the authenticated link (docs/protocol.md §14).  Forged DATA with a valid CRC at the
# live session's next seq never reaches the disk, is counted and ends nothing; frames of every type
# with random tags are dropped alike; a tagged frame copied off the wire is dropped when replayed
# in its session and in the next; a peer with another key, or none, is refused with a clear status
# on both boxes; and a stream of forged liveness frames delays the detection of a stopped peer to
# the ko-timeout at most.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib-wire.sh"
require_root
require_cmd nbdcopy
pair_up au --disk-size 32M --mtu 9000
# The boxes talk through the wire namespace (tests/lib-wire.sh), so a frame can be copied off it.
wire_up
STRAY=$((20 << 20)) # beyond what the test writes: zeros on both disks
# ee_at OFF: bytes of 0xEE in the 512 bytes at OFF on the secondary's disk.
ee_at() { dd if="$XM_SECONDARY_DISK" bs=512 skip=$(($1 / 512)) count=1 status=none | LC_ALL=C tr -dc '\356' | wc -c; }
auth() { status_json "$1" | jq -r ".daemon.auth.$2"; }
moved_by() { [ "$(counter "$1" "$2")" -ge $(($3 + $4)) ]; }
# forge [xm_rawsend options]: 512 bytes of 0xEE as DATA at the secondary's next seq, with the
# primary's MAC and a valid CRC32C.
forge() {
	local sj
	sj=$(status_json "$S")
	in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
		--type 3 --session "$(jq .daemon.replication.session <<<"$sj")" \
		--seq "$(jq .daemon.replication.cumack <<<"$sj")" --arg0 "$STRAY" \
		--payload-len 512 --fill 0xee "$@" || fail "xm_rawsend $*"
}
run_verify() {
	local out
	out=$("$XM" verify --dev "$P" 2>&1) || fail "verify: $out"
	log "  verify: $out"
}

mirror_up
random_file "$WORK/a.img" $((16 << 20))
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy"
wait_until 10 in_sync "$P" || fail "not in sync"
for box in "$P" "$S"; do
	assert_eq "$(auth "$box" enabled)" true "$box: auth enabled"
	assert_eq "$(auth "$box" authenticated)" true "$box: link authenticated"
	assert_eq "$(auth "$box" algorithm)" aes-256-gmac "$box: algorithm"
	assert_eq "$(auth "$box" problem)" none "$box: auth problem"
done
fp=$(auth "$P" key_fingerprint)
assert_eq "$(auth "$S" key_fingerprint)" "$fp" "both boxes show one key fingerprint"
[[ $fp =~ ^[0-9a-f]{16}$ ]] || fail "fingerprint '$fp'"
grep -qi "$(od -An -tx1 "$XM_AUTH_KEY" | tr -d ' \n' | cut -c1-16)" <(status_json "$P") &&
	fail "status shows key bytes"
log "  both boxes: aes-256-gmac, key $fp"

log "forged DATA with a valid CRC at the next seq of the live session: dropped and counted"
ps0=$(counter "$P" sessions) ss0=$(counter "$S" sessions) bad0=$(counter "$S" rx_bad_auth)
forge --count 5
wait_until 3 moved_by "$S" rx_bad_auth "$bad0" 5 || fail "the secondary did not count 5 frames without a tag"
log "  secondary: rx_bad_auth +$(($(counter "$S" rx_bad_auth) - bad0))"

log "frames of every type with a random tag (XM_F_AUTH and 24 random bytes): dropped and counted"
bad0=$(counter "$S" rx_bad_auth) sess=$(status_json "$S" | jq .daemon.replication.session)
for type in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 18; do
	forge --random-tag --type $type --count 3 --session "$sess"
done
pbad0=$(counter "$P" rx_bad_auth)
for type in 2 4 6 8 10 12 14 19; do
	in_box secondary "$TOOLS/xm_rawsend" --dev "$S" --dst "$XM_PRIMARY_MAC" --src "$XM_SECONDARY_MAC" \
		--type $type --session "$sess" --arg0 $((1 << 40)) --random-tag --count 3 ||
		fail "xm_rawsend to the primary"
done
# A HELLO names its session in arg0: of no session here, it is stale rather than bad.
wait_until 3 moved_by "$S" rx_bad_auth "$bad0" 42 || fail "secondary: $(($(counter "$S" rx_bad_auth) - bad0)) of 42 dropped"
wait_until 3 moved_by "$P" rx_bad_auth "$pbad0" 24 || fail "primary: $(($(counter "$P" rx_bad_auth) - pbad0)) of 24 dropped"
assert_eq "$(ee_at $STRAY)" 0 "0xEE bytes on the secondary"
assert_eq "$(counter "$P" sessions)" "$ps0" "primary sessions after the forged frames"
assert_eq "$(counter "$S" sessions)" "$ss0" "secondary sessions after the forged frames"
assert_eq "$(counter "$P" violations)$(counter "$S" violations)" 00 "violations"
is_connected "$P" && is_connected "$S" || fail "the session did not survive"
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy after the forged frames"
wait_until 10 in_sync "$P" || fail "not in sync after the forged frames"
run_verify

log "a tagged frame copied off the wire, replayed in its session and in the next: dropped"
# The injector holds frames back for reordering; the last one it held stays in its map.
got=''
# The copy is taken while DATA flows: a DATA frame, the one frame that writes.
random_file "$WORK/b.img" $((4 << 20))
faults to_s 0 0 0 10000
(while :; do nbdcopy --flush "$WORK/b.img" "$(nbd_uri)" || exit 1; done) &
writer=$!
track_worker $writer
for try in $(seq 100); do
	got=$(wire_last_held to_s "$WORK/old.frame") && [ "$got" = "3 1" ] && break
	got=''
	running $writer || break
done
kill $writer 2>/dev/null
wait $writer 2>/dev/null
faults to_s 0 0 0 0
[ -n "$got" ] || fail "no tagged DATA copied off the wire in $try tries"
log "  copied a tagged DATA frame of $(stat -c %s "$WORK/old.frame") bytes (try $try)"
wait_until 10 in_sync "$P" || fail "not in sync after the copy"
s1=$(status_json "$S" | jq .daemon.replication.session)
rp0=$(counter "$S" rx_replay) wr0=$(counter "$S" rx_data) f0=$(counter "$S" rx_flush)
wire_send to_s "$WORK/old.frame" 3
wait_until 3 moved_by "$S" rx_replay "$rp0" 3 || fail "the frame replayed in its own session was not dropped as a replay"
kill_wait "$(daemon_pid primary)"
attach_box primary
wait_until 10 in_sync "$P" || fail "no new session in sync"
s2=$(status_json "$S" | jq .daemon.replication.session)
[ "$s2" != "$s1" ] || fail "still session $s1"
st0=$(counter "$S" rx_auth_stale) wr0=$(counter "$S" rx_data) f0=$(counter "$S" rx_flush)
wire_send to_s "$WORK/old.frame" 3
wait_until 3 moved_by "$S" rx_auth_stale "$st0" 3 || fail "the frame of session $s1 was not dropped in session $s2"
# The same bytes with the new session's id: the tag does not verify.
$PY - "$WORK/old.frame" "$s2" <<'PY' || fail "rewriting the copied frame"
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("!I", b, 14 + 12, int(sys.argv[2]))
open(sys.argv[1] + ".s2", "wb").write(b)
PY
bad0=$(counter "$S" rx_bad_auth)
wire_send to_s "$WORK/old.frame.s2" 3
wait_until 3 moved_by "$S" rx_bad_auth "$bad0" 3 || fail "the copied frame moved to session $s2 was not dropped"
assert_eq "$(counter "$S" rx_data)$(counter "$S" rx_flush)" "$wr0$f0" "DATA and FLUSH applied from replays"
is_connected "$S" || fail "the session did not survive the replays"
run_verify

log "a HELLO of another protocol revision: refused before anything else, the session kept"
ss0=$(counter "$S" sessions) sess=$(status_json "$S" | jq .daemon.replication.session)
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
	--type 1 --arg0 77 --payload-len 96 --fill 3 || fail "xm_rawsend HELLO"
mismatch() { [[ $(auth "$S" problem) == "protocol version mismatch: the peer speaks revisions 771..771"* ]]; }
wait_until 3 mismatch || fail "secondary's problem: '$(auth "$S" problem)'"
log "  secondary: $(auth "$S" problem)"
assert_eq "$(counter "$S" sessions)" "$ss0" "sessions after the old HELLO"
assert_eq "$(status_json "$S" | jq .daemon.replication.session)" "$sess" "session after the old HELLO"
is_connected "$S" || fail "an untagged HELLO of another revision ended the session"

log "forged liveness: PROBE_ACKs and frames with random tags from the peer's MAC while its daemon is gone"
spid=$(daemon_pid secondary)
kill -STOP "$spid"
at_exit kill -CONT "$spid"
(
	while :; do
		now=$(awk '{ printf "%d", $1 * 1e9 }' /proc/uptime)
		in_box secondary "$TOOLS/xm_rawsend" --dev "$S" --dst "$XM_PRIMARY_MAC" --src "$XM_SECONDARY_MAC" \
			--type 16 --session "$s2" --arg0 "$now" --count 5 >/dev/null 2>&1
		in_box secondary "$TOOLS/xm_rawsend" --dev "$S" --dst "$XM_PRIMARY_MAC" --src "$XM_SECONDARY_MAC" \
			--type 7 --session "$s2" --random-tag --count 5 >/dev/null 2>&1
		sleep 0.005
	done
) &
forger=$!
track_worker "$forger"
t0=$(now_us)
wait_until 6 not_connected "$P" || fail "the primary did not give up on a stopped peer under forged liveness"
took=$(ms_since "$t0")
kill "$forger"; wait "$forger" 2>/dev/null
ko=$(status_json "$P" | jq .daemon.peer.ko_timeout_ms)
log "  peer given up after $took ms (ko-timeout $ko ms): $(status_json "$P" | jq -r .daemon.replication.last_failure.reason)"
assert_le "$took" $((ko + 1500)) "detection under forged liveness"
kill -CONT "$spid"
wait_until 10 in_sync "$P" || fail "no session after the peer came back"

log "a peer with another key: refused, both boxes say why, nothing moves"
"$XM" keygen "$WORK/other.key" >/dev/null || fail "keygen"
ss0=$(counter "$S" sessions) af0=$(counter "$S" auth_failures)
kill_wait "$(daemon_pid primary)"
attach_box primary --auth-key "$WORK/other.key"
both_say() { [[ $(auth "$P" problem) == *"authentication failed"* && $(auth "$S" problem) == *"authentication failed"* ]]; }
wait_until 5 both_say || fail "not both say it: primary '$(auth "$P" problem)', secondary '$(auth "$S" problem)'"
log "  primary: $(auth "$P" problem)"
log "  secondary: $(auth "$S" problem)"
sleep 0.5
assert_eq "$(counter "$S" sessions)" "$ss0" "sessions with the wrong key"
not_connected "$P" || fail "the primary connected with the wrong key"
grep -q "authentication failed" "$WORK/primary.log" || fail "the primary's log does not say it"
grep -q "authentication failed" "$WORK/secondary.log" || fail "the secondary's log does not say it"

log "a peer without a key (--no-auth): refused, both boxes say why"
kill_wait "$(daemon_pid primary)"
attach_box primary --no-auth
no_key() { [[ $(auth "$P" problem) == *"the peer requires a key"* && $(auth "$S" problem) == *"runs without a key (--no-auth)"* ]]; }
wait_until 5 no_key || fail "primary '$(auth "$P" problem)', secondary '$(auth "$S" problem)'"
log "  primary: $(auth "$P" problem)"
log "  secondary: $(auth "$S" problem)"
assert_eq "$(counter "$S" sessions)" "$ss0" "sessions with a peer without a key"
grep -q "frames are not authenticated" "$WORK/primary.log" || fail "--no-auth gave no warning"

log "the right key again: the pair mirrors, nothing was written while it was refused"
kill_wait "$(daemon_pid primary)"
attach_box primary
wait_until 10 in_sync "$P" || fail "not in sync with the right key"
assert_eq "$(ee_at $STRAY)" 0 "0xEE bytes on the secondary at the end"
run_verify
echo "all checks passed"
