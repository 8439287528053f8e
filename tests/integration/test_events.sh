#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: the events stream (docs/events.md): `events --now` prints each device's state as
# one valid JSON line and exits 0; a reader without --dev follows both boxes and picks the
# secondary up again after its detach and attach; two readers on the primary both see the peer
# go within a second of `detach` on the secondary, then its return and a resync's start, progress (at most
# once a second) and end, in the same numbered lines; a reader on the secondary sees `detached`
# and exits 0; a reader that stops reading is cut off once its bound is full (counted), while
# writes and the other readers go on.
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy jq
pair_up ev --disk-size 32M
OPTS=(--resync-rate 4 --initial-sync skip)
DIRTY=$((6 << 20))
mirror_up "${OPTS[@]}"

# Each line a reader prints, with its arrival time (µs) in front: "ARRIVAL JSON".
cat >"$WORK/stamp.py" <<'PY'
import sys, time
for line in sys.stdin:
    print(int(time.time() * 1e6), line, end="", flush=True)
PY
# reader NAME DEV [options]: `events` in the background, stamped into $WORK/NAME.out; its exit
# status goes to $WORK/NAME.rc.
reader() {
	local name=$1 dev=$2
	shift 2
	( ("$XM" events --dev "$dev" "$@"; echo $? >"$WORK/$name.rc") | $PY "$WORK/stamp.py" >"$WORK/$name.out") &
	track_worker $!
	wait_until 5 eval "[ -s '$WORK/$name.out' ]" || fail "$name: no state line"
}
# lines NAME [jq filter]: the reader's JSON lines (without stamps) that match.
lines() { cut -d' ' -f2- "$WORK/$1.out" | jq -c "select(${2:-true})"; }
has() { [ -n "$(lines "$1" "$2")" ]; }
evstat() { status_json "$P" | jq ".daemon.events.$1"; }

log "events --now: one valid JSON line per device with its state, exit 0"
for dev in "$P" "$S"; do
	out=$("$XM" events --dev "$dev" --now) || fail "events --now on $dev: exit $?"
	log "  $out"
	assert_eq "$(wc -l <<<"$out")" 1 "lines of events --now on $dev"
	$PY -c 'import json, sys; json.loads(sys.stdin.read())' <<<"$out" || fail "not JSON: $out"
	assert_eq "$(jq -r '[.type, .dev, .connection, .sync, .disk] | join(" ")' <<<"$out")" \
		"state $dev connected in_sync UpToDate" "state line of $dev"
	jq -e '.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$")' <<<"$out" >/dev/null ||
		fail "time is not RFC 3339 with microseconds: $out"
done
assert_eq "$("$XM" events --dev "$P" --now | jq -r '.role + " " + .peer_disk')" "primary UpToDate" "primary's state"
assert_eq "$("$XM" events --dev "$S" --now | jq -r '.role + " " + (.peer_disk | tostring)')" "secondary null" "secondary's state"
# Other runs' daemons may come and go meanwhile: only ours are looked for.
out=$("$XM" events --now | jq -r "select(.dev == \"$P\" or .dev == \"$S\") | .dev" | sort | tr '\n' ' ')
assert_eq "$out" "$(printf '%s\n' "$P" "$S" | sort | tr '\n' ' ')" "devices of events --now without --dev"
assert_eq "$(evstat readers)" 0 "readers after --now"

log "two readers on the primary, one on the secondary, one without --dev"
reader r1 "$P"
reader r2 "$P"
reader rs "$S"
# Without --dev: every device, and one attached again later (docs/events.md).  It runs until
# stopped; its pid goes to ra.pid for that.
( ("$XM" events & echo $! >"$WORK/ra.pid"; wait $!) | $PY "$WORK/stamp.py" >"$WORK/ra.out") &
track_worker $!
for dev in "$P" "$S"; do
	wait_until 5 has ra ".dev == \"$dev\" and .type == \"state\"" || fail "ra: no state line of $dev"
done
wait_until 2 eval '[ "$(evstat readers)" = 3 ]' || fail "events.readers: $(evstat readers)"

log "detach on the secondary: the primary's readers say the peer is gone within a second"
"$XM" detach --dev "$S" || fail "detach secondary"
t_detach=$(now_us)
gone_line='.type == "connection" and .previous == "connected"'
for r in r1 r2; do
	wait_until 5 has "$r" "$gone_line" || fail "$r: no line saying the peer is gone: $(cat "$WORK/$r.out")"
	t_line=$(grep -m1 '"type":"connection"' "$WORK/$r.out" | cut -d' ' -f1)
	delay_ms=$(((t_line - t_detach) / 1000))
	log "  $r: $(lines "$r" "$gone_line" | head -1) ($delay_ms ms after detach returned)"
	assert_le "$delay_ms" 1000 "$r: ms from detach to the line"
done
wait_until 5 eval '[ -s "$WORK/rs.rc" ]' || fail "the secondary's reader did not end"
assert_eq "$(cat "$WORK/rs.rc")" 0 "exit status of the secondary's reader"
assert_eq "$(lines rs | tail -1 | jq -r .type)" detached "the secondary's reader's last line"

log "the secondary comes back and resyncs what was written without it"
random_file "$WORK/in.img" $DIRTY
nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy while degraded"
attach_box secondary "${OPTS[@]}"
end_line='.type == "resync-end"'
wait_until 20 has r1 "$end_line" || fail "r1: no resync-end: $(cat "$WORK/r1.out")"
wait_until 2 has r2 "$end_line" || fail "r2: no resync-end"
for r in r1 r2; do
	[ "$r" = r1 ] && lines "$r" '.type != "state"' | jq -c 'del(.time, .dev)' | sed 's/^/  /'
	has "$r" '.type == "connection" and .connection == "connected"' || fail "$r: no reconnection line"
	has "$r" '.type == "resync-start"' || fail "$r: no resync-start"
	assert_eq "$(lines "$r" "$end_line" | jq -r .result)" "done" "$r: resync result"
	assert_ge "$(lines "$r" "$end_line" | jq .bytes)" $DIRTY "$r: bytes resynced"
	# start before end, numbers rising one by one
	assert_eq "$(lines "$r" '.type | startswith("resync-")' | jq -r .type | sed -n '1p;$p' | tr '\n' ' ')" \
		"resync-start resync-end " "$r: order of the resync lines"
	seqs=$(lines "$r" '.type != "state"' | jq .seq)
	assert_eq "$(awk 'NR > 1 && $1 != p + 1 { bad = 1 } { p = $1 } END { print bad + 0 }' <<<"$seqs")" 0 "$r: seq numbers one by one"
done
assert_eq "$(lines r1 '.type != "state"' | jq -c 'del(.time)')" "$(lines r2 '.type != "state"' | jq -c 'del(.time)')" "what the two readers were told"
elapsed=$(lines r1 "$end_line" | jq .elapsed_s)
progress=$(lines r1 '.type == "resync-progress"' | wc -l)
log "  the resync took $elapsed s; $progress progress line(s)"
assert_le "$progress" "$(jq -n "$elapsed | floor + 1")" "progress lines (at most one a second)"
[ "$(jq -n "$elapsed >= 1.5")" = true ] && { assert_ge "$progress" 1 "progress lines of a resync of $elapsed s"; }
wait_until 10 in_sync "$P" || fail "not in sync"
log "the reader without --dev: the secondary's detached line, then its state again once back"
ra_s=$(lines ra ".dev == \"$S\"" | jq -r .type | grep -E '^(state|detached)$' | paste -sd' ')
assert_eq "$ra_s" "state detached state" "ra: the secondary's state and detached lines"
has ra ".dev == \"$P\" and .type == \"resync-end\"" || fail "ra: no resync-end of the primary"
log "  ra: the primary's lines: $(lines ra ".dev == \"$P\"" | jq -r .type | sort | uniq -c | paste -sd' ')"
kill "$(cat "$WORK/ra.pid")" 2>/dev/null

log "a reader that stops reading (SIGSTOP) is cut off once its bound is full; writes and the other readers go on"
"$XM" events --dev "$P" --buffer 4K >"$WORK/stopped.out" 2>"$WORK/stopped.err" &
stopped=$!
track_worker "$stopped"
wait_until 5 eval '[ -s "$WORK/stopped.out" ]' || fail "the reader to be stopped printed no state line"
kill -STOP "$stopped"
dropped0=$(evstat dropped) sessions0=$(counter "$P" sessions)
# Writes through the export the whole time, each exit status kept.
random_file "$WORK/data.img" $((2 << 20))
(
	while [ ! -e "$WORK/stop" ]; do
		nbdcopy --flush "$WORK/data.img" "$(nbd_uri)" 2>>"$WORK/nbdcopy.err"
		echo $? >>"$WORK/writes"
	done
) &
writer=$!
track_worker "$writer"
# Lines for the readers: the link goes down and up, each time a handful (connection, disks,
# sync, resync).
cut_off() { [ "$(evstat dropped)" -gt "$dropped0" ]; }
for ((flap = 1; flap <= 20; flap++)); do
	in_box secondary ip link set dev "$S" down
	wait_until 2 is_degraded "$P" || fail "flap $flap: the primary did not degrade"
	in_box secondary ip link set dev "$S" up
	wait_until 5 is_connected "$P" || fail "flap $flap: the primary did not reconnect"
	cut_off && break
done
wait_until 5 cut_off || fail "the stopped reader was not cut off after $flap flaps: $(status_json "$P" | jq -c .daemon.events)"
writes_stopped=$(wc -l <"$WORK/writes")
kill -CONT "$stopped"
wait_until 5 gone "$stopped" || fail "the stopped reader did not end after SIGCONT"
wait "$stopped"
rc=$?
log "  cut off after $flap flaps; it printed $(wc -l <"$WORK/stopped.out") line(s), exit $rc: $(cat "$WORK/stopped.err")"
assert_eq "$rc" 1 "exit status of the reader that fell behind"
jq -e . "$WORK/stopped.out" >/dev/null || fail "the cut-off reader printed something that is not JSON lines"
assert_eq "$(tail -1 "$WORK/stopped.out" | jq -r .type)" events-lost "its last line (SIGCONT within the 2 s it is given)"
grep -q "this reader fell behind and [0-9]* events were lost" "$WORK/stopped.err" || fail "it did not say why it ended"
assert_eq "$(evstat dropped)" $((dropped0 + 1)) "events.dropped"
touch "$WORK/stop"
wait_until 60 gone "$writer" || fail "the writer did not stop"
grep -qv '^0$' "$WORK/writes" && fail "a write failed: $(cat "$WORK/nbdcopy.err")"
log "  $(wc -l <"$WORK/writes") copies of 2 MiB written and flushed meanwhile"
assert_ge "$writes_stopped" 1 "writes completed while the reader was stopped"
assert_eq "$(evstat readers)" 2 "events.readers (r1, r2 still there)"
assert_ge "$(counter "$P" sessions)" $((sessions0 + flap)) "sessions (one per flap)"
assert_eq "$(lines r1 '.type != "state"' | jq -c 'del(.time)')" "$(lines r2 '.type != "state"' | jq -c 'del(.time)')" "what r1 and r2 were told during the flaps"
assert_eq "$(evstat readers_total)" 4 "events.readers_total (r1, r2, the one without --dev, the stopped one)"

log "a verify's result is a line"
wait_until 10 in_sync "$P" || fail "not in sync before the verify"
t0=$(now_us)
"$XM" verify --dev "$P" >/dev/null || fail "verify: exit $?"
log "  verify took $(secs_since "$t0") s"
wait_until 2 has r1 '.type == "verify"' || fail "no verify line"
lines r1 '.type == "verify"' | jq -e '.result == "done" and .regions_differ == 0 and .checked_bytes == 33554432' >/dev/null ||
	fail "the verify line: $(lines r1 '.type == "verify"')"

log "frames with forged tags: one auth-failure line with the counts, not a line per frame"
sess=$(status_json "$P" | jq .daemon.replication.session)
in_box secondary "$TOOLS/xm_rawsend" --dev "$S" --dst "$XM_PRIMARY_MAC" --src "$XM_SECONDARY_MAC" \
	--type 4 --session "$sess" --random-tag --count 5 || fail "xm_rawsend"
wait_until 3 has r1 '.type == "auth-failure"' || fail "no auth-failure line"
assert_eq "$(lines r1 '.type == "auth-failure"' | wc -l)" 1 "auth-failure lines for 5 forged frames"
lines r1 '.type == "auth-failure"' | jq -e '.bad_tag == 5 and .total >= 5' >/dev/null ||
	fail "the auth-failure line: $(lines r1 '.type == "auth-failure"')"
log "  $(lines r1 '.type == "auth-failure"')"

log "a reader that keeps talking after its request is closed (it could wake the loop every pass)"
talk=$(python3 - "/run/xdpmirror/$P.ctl" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"events\n")
first = s.recv(65536)
try:
    for _ in range(64):  # 64 KiB in all, the daemon keeps the first 4 KiB at most
        s.sendall(b"x" * 1024)
except (BrokenPipeError, ConnectionResetError):
    pass
end = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            print("closed" if b'"type":"state"' in first.replace(b" ", b"") else "no state line")
            break
except socket.timeout:
    print("still open")
except ConnectionResetError:
    print("closed")
PY
)
assert_eq "$talk" closed "a talking reader"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.connection)" connected "the primary after it"

log "demote and promote: role lines, and the readers stay through both"
"$XM" demote --dev "$P" >/dev/null || fail "demote"
wait_until 3 has r1 '.type == "role" and .role == "secondary"' || fail "no role line for the demote: $(lines r1 | tail -3)"
"$XM" promote --dev "$P" >/dev/null || fail "promote"
wait_until 3 has r1 '.type == "role" and .role == "primary"' || fail "no role line for the promote: $(lines r1 | tail -3)"
wait_until 10 in_sync "$P" || fail "not in sync after the promote: $(status_json "$P" | jq -c .daemon.replication)"
for r in r1 r2; do
	log "  $r: $(lines "$r" '.type == "role"' | jq -c '[.role, .previous]' | paste -sd' ')"
done

mirror_down
wait_until 5 eval '[ -s "$WORK/r1.rc" ] && [ -s "$WORK/r2.rc" ]' || fail "the primary's readers did not end at detach"
assert_eq "$(cat "$WORK/r1.rc") $(cat "$WORK/r2.rc")" "0 0" "exit status of the primary's readers"
assert_disks_identical "after the events"
echo "all checks passed"
