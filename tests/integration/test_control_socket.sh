#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: the control socket never holds up the event loop (issue 17): while an NBD client
# writes, one client that connects and sends nothing, then 200 at once, are closed after the
# daemon's deadline or refused "busy" beyond its cap, all counted in status; no session ends, every
# write completes, status still answers; a user who is not root is told "permission denied (run as
# root)", not "not attached".
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy setpriv
pair_up cs --disk-size 32M
mirror_up

CTL=/run/xdpmirror/$P.ctl
ctl() { status_json "$P" | jq ".daemon.control.$1"; }
# silent_clients N READY: N clients connect and send nothing; once all are connected READY
# exists.  Each reads until the daemon closes it; prints "busy=B closed=C open=O other=X": B told
# "error: busy", C closed without a word, O still open after 30 s, X told anything else.
cat >"$WORK/silent.py" <<'PY'
import select, socket, sys, time
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
open(ready, "w").close()
got = {s: b"" for s in socks}
alive = set(socks)
end = time.monotonic() + 30
while alive and time.monotonic() < end:
    for s in select.select(list(alive), [], [], 1)[0]:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            d = b""
        if d:
            got[s] += d
        else:
            alive.discard(s)
busy = [g for g in got.values() if g.startswith(b"error: busy")]
other = [g for g in got.values() if g and not g.startswith(b"error: busy")]
closed = sum(1 for s in socks if s not in alive and not got[s])
print(f"busy={len(busy)} closed={closed} open={len(alive)} other={len(other)}")
for g in sorted(set(busy + other))[:3]:
    print("said:", g.decode(errors="replace").rstrip("\n"))
PY
silent_clients() { $PY "$WORK/silent.py" "$CTL" "$1" "$2"; }
field() { sed -n "s/.*\<$1=\([0-9]*\).*/\1/p" <<<"$2" | head -1; }

# Writes through the export the whole time: 4 MiB and a flush, again and again, each exit status
# kept.
random_file "$WORK/data.img" $((4 << 20))
(
	while [ ! -e "$WORK/stop" ]; do
		nbdcopy --flush "$WORK/data.img" "$(nbd_uri)" 2>>"$WORK/nbdcopy.err"
		echo $? >>"$WORK/writes"
	done
) &
writer=$!
track_worker "$writer"
writes_done() { [ -e "$WORK/writes" ] && [ "$(wc -l <"$WORK/writes")" -ge "$1" ]; }
wait_until 30 writes_done 1 || fail "no write completed: $(cat "$WORK/nbdcopy.err")"

max=$(ctl max_clients) deadline=$(ctl deadline_ms)
log "the daemon serves at most $max control clients, each with $deadline ms to send its request"
assert_ge "$max" 1 "control.max_clients"

log "one client that connects and sends nothing"
t0=$(ctl request_timeouts)
out=$(silent_clients 1 "$WORK/ready1") || fail "silent client: $out"
log "  $out"
assert_eq "$(field closed "$out")" 1 "silent clients the daemon closed"
assert_eq "$(ctl request_timeouts)" $((t0 + 1)) "control.request_timeouts after one silent client"

log "200 clients that connect and send nothing, while the NBD client writes"
t0=$(ctl request_timeouts) r0=$(ctl refused) w0=$(wc -l <"$WORK/writes")
silent_clients 200 "$WORK/ready200" >"$WORK/silent200.out" 2>&1 &
flood=$!
track_worker "$flood"
wait_until 30 test -e "$WORK/ready200" ||
	fail "the daemon did not take 200 connections within 30 s (its loop is held up?): $(cat "$WORK/silent200.out")"
# status answers while the flood holds every slot: told "busy", it asks again until one is free.
st=$("$XM" status --dev "$P" --json) || fail "status during the flood: exit $?"
assert_eq "$(jq -r '.devices[0].daemon.role' <<<"$st")" primary "role in the status during the flood"
wait "$flood" || fail "the 200 clients: $(cat "$WORK/silent200.out")"
out=$(cat "$WORK/silent200.out")
log "  $(tr '\n' ';' <<<"$out")"
busy=$(field busy "$out") closed=$(field closed "$out")
assert_eq "$(field open "$out")" 0 "clients left open after 30 s"
assert_eq "$(field other "$out")" 0 "clients told anything but busy"
assert_eq $((busy + closed)) 200 "clients refused or closed"
assert_ge "$closed" "$max" "silent clients held until the deadline"
assert_ge "$busy" 1 "clients refused beyond the cap"
grep -qE "^said: error: busy \([0-9]+ control clients open, the most it serves at once; try again\)$" <<<"$out" ||
	fail "the refusal is not one line saying busy: $out"
assert_eq "$(ctl request_timeouts)" $((t0 + closed)) "control.request_timeouts after the flood"
assert_ge "$(ctl refused)" $((r0 + busy)) "control.refused after the flood"
assert_eq "$(ctl clients)" 1 "control clients open after the flood (the one asking)"
wait_until 30 writes_done $((w0 + 1)) || fail "no write completed after the flood"
"$XM" status --dev "$P" | grep -E "control socket|refused busy|no request in time"

log "no session ended and every write completed"
touch "$WORK/stop"
wait_until 60 gone "$writer" || fail "the writer did not stop"
wait "$writer"
grep -qv '^0$' "$WORK/writes" && fail "a write failed: $(cat "$WORK/nbdcopy.err")"
log "  $(wc -l <"$WORK/writes") copies of 4 MiB written and flushed"
for dev in "$P" "$S"; do
	assert_eq "$(counter "$dev" sessions)" 1 "$dev: sessions (any other ended one)"
	assert_eq "$(counter "$dev" peer_timeouts)" 0 "$dev: peer timeouts"
done
in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"

log "a user who is not root is told so, not 'not attached'"
nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$XM" "$@"; }
for cmd in status promote; do
	out=$(nobody "$cmd" --dev "$P" 2>&1 >/dev/null)
	rc=$?
	log "  $cmd as nobody: $out (exit $rc)"
	assert_eq "$rc" 1 "exit code of $cmd as nobody"
	assert_eq "$out" "xdpmirror: $cmd '$P': permission denied (run as root)" "$cmd as nobody says"
done
out=$(nobody status --dev "$P" --json 2>/dev/null)
assert_eq "$(jq -r '.devices[0].error' <<<"$out")" "permission denied (run as root)" "status --json as nobody"

mirror_down
assert_disks_identical "after the floods"
echo "all checks passed"
