#!/usr/bin/env bash
# Description: hostile input on all faces: bad NBD requests get the protocol's error answer (or a
# disconnect) without disturbing other clients; forged mirror frames are dropped, and DATA beyond
# the export ends the session without touching the disk; the pair reconnects and mirrors on;
# garbage on the control socket gets an error line and idle control clients are closed.  The pair
# runs --no-auth so the forged frames reach the role's own checks (a buggy peer holds the key);
# with a key they never get that far (test_auth).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
[ -x "$TOOLS/xm_nbdpoke" ] || fail "build/tools/xm_nbdpoke missing (make build-tests)"
pair_up b --disk-size 64M
mirror_up --no-auth
poke() { "$TOOLS/xm_nbdpoke" --socket "/run/xdpmirror/$P.sock" "$@"; }
nbd() { status_json "$P" | jq ".daemon.nbd.$1"; }
pid=$(status_json "$P" | jq .daemon.pid)
# Bytes of 0xEE in a file: the forged frames below carry only 0xEE, nothing else writes it.
count_ee() { LC_ALL=C tr -dc '\356' <"$1" | wc -c; }

log "NBD: each malformed request gets its error reply or a disconnect"
bad0=$(nbd bad_requests) err0=$(nbd error_replies)
for sc in bad-magic beyond-end read-beyond oversized unaligned bad-type bad-flags zero-length \
	half-request write-read; do
	out=$(poke --hold 100 "$sc") || fail "xm_nbdpoke $sc: $out"
	echo "   $out"
done
# One per refused request: bad-magic 1, beyond-end 2, read-beyond 2, oversized 1, bad-type 1,
# bad-flags 2, zero-length 2; every one but bad-magic is answered with an error.  Unaligned
# requests are served (docs/protocol.md §8.4).
assert_eq "$(($(nbd bad_requests) - bad0))" 11 "bad_requests after the scenarios"
assert_eq "$(($(nbd error_replies) - err0))" 10 "error_replies after the scenarios"

log "NBD: a half-sent request and a bad-magic client do not hold up a third client"
poke --hold 1500 half-request >"$WORK/half.out" 2>&1 &
half=$!
half_sent() { grep -q "sent half" "$WORK/half.out"; }
wait_until 2 half_sent || fail "the half-request client did not send its half request: $(cat "$WORK/half.out")"
out=$(poke bad-magic) || fail "bad-magic client: $out"
echo "   $out"
t0=$(now_us)
out=$(poke --offset $((8 << 20)) --len $((1 << 20)) write-read) || fail "third client: $out"
echo "   $out ($(ms_since "$t0") ms)"
kill -0 $half 2>/dev/null || fail "the half-request client finished before the third client"
wait $half || fail "half-request client: $(cat "$WORK/half.out")"
sed 's/^/   /' "$WORK/half.out"
closed() { [ "$(nbd connections)" -eq 0 ]; }
wait_until 2 closed || fail "NBD connections still open: $(nbd connections)"
kill -0 "$pid" || fail "primary daemon died"
is_connected "$P" || fail "primary lost the mirror during the NBD checks"

log "frames: forged DATA from the primary's box is dropped where it should be"
sj=$(status_json "$S")
sess=$(jq .daemon.replication.session <<<"$sj")
cum=$(jq .daemon.replication.cumack <<<"$sj")
esize=$(jq .daemon.replication.export_size <<<"$sj")
block=$(jq .daemon.replication.block_size <<<"$sj")
assert_eq "$esize" "$XM_DISK_SIZE" "secondary's export size"
assert_eq "$block" 512 "negotiated block size"
disk_bytes=$(stat -c %s "$XM_SECONDARY_DISK")
assert_eq "$(count_ee "$XM_SECONDARY_DISK")" 0 "0xEE bytes on the secondary before the frames"
viol0=$(jq .daemon.counters.violations <<<"$sj")
# data SEQ ARG0 [xm_rawsend options]: 512 bytes of 0xEE as DATA of the current session.
data() {
	local seq=$1 off=$2
	shift 2
	in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" \
		--src "$XM_PRIMARY_MAC" --type 3 --session "$sess" --seq "$seq" --arg0 "$off" \
		--payload-len 512 --fill 0xee "$@" || fail "xm_rawsend $*"
}
# moved IF COUNTER BEFORE: the daemon counter moved by at least 5 (polled with wait_until).
moved() { [ "$(counter "$1" "$2")" -ge $(($3 + 5)) ]; }
bpf_moved() { [ "$(bpf_counter "$1" "$2")" -ge $(($3 + 5)) ]; }

before=$(bpf_counter "$S" drop.bad_peer)
data $((cum + 1)) 0 --src 02:00:00:00:00:99 --count 5
wait_until 2 bpf_moved "$S" drop.bad_peer "$before" || true
assert_eq "$(($(bpf_counter "$S" drop.bad_peer) - before))" 5 "drop.bad_peer after 5 frames"

before=$(counter "$S" rx_bad_crc)
data $((cum + 1)) 0 --bad-crc --count 5
wait_until 2 moved "$S" rx_bad_crc "$before" || fail "secondary did not count 5 bad CRCs"

before=$(counter "$S" rx_wrong_session)
data $((cum + 1)) 0 --session $((sess % 0xffffffff + 1)) --count 5
wait_until 2 moved "$S" rx_wrong_session "$before" || fail "secondary did not count rx_wrong_session"

sj=$(status_json "$S")
assert_eq "$(jq -r .daemon.replication.state <<<"$sj")" connected "secondary state after drops"
assert_eq "$(jq .daemon.replication.session <<<"$sj")" "$sess" "session after drops"
assert_eq "$(jq .daemon.counters.violations <<<"$sj")" "$viol0" "violations after drops"

log "frames: DATA beyond the export is a violation; the primary reconnects by itself"
psess=$(status_json "$P" | jq .daemon.replication.session)
assert_eq "$psess" "$sess" "primary and secondary agree on the session"
psessions=$(counter "$P" sessions) ssessions=$(counter "$S" sessions)
bad_off=$(counter "$S" rx_bad_offset)
t0=$(now_us)
data $((cum + 5)) "$esize"
reconnected() {
	local pj
	pj=$(status_json "$P")
	[ "$(jq -r .daemon.replication.state <<<"$pj")" = connected ] &&
		[ "$(jq .daemon.counters.sessions <<<"$pj")" -gt "$psessions" ]
}
wait_until 3 reconnected || fail "primary did not reconnect: $(status_json "$P" | jq -c .daemon.replication)"
echo "   primary connected again $(ms_since "$t0") ms after the frame"
sj=$(status_json "$S")
assert_eq "$(jq .daemon.counters.rx_bad_offset <<<"$sj")" $((bad_off + 1)) "rx_bad_offset"
assert_eq "$(jq .daemon.counters.violations <<<"$sj")" $((viol0 + 1)) "secondary violations"
assert_eq "$(counter "$P" sessions)" $((psessions + 1)) "primary sessions"
assert_eq "$(jq .daemon.counters.sessions <<<"$sj")" $((ssessions + 1)) "secondary sessions"
wait_until 2 is_connected "$S" || fail "secondary not connected again"
nsess=$(status_json "$S" | jq .daemon.replication.session)
[ "$nsess" != "$sess" ] || fail "secondary still in the old session $sess"
assert_eq "$(status_json "$P" | jq .daemon.replication.session)" "$nsess" "new session on both"

log "frames: nothing reached the secondary's disk"
assert_eq "$(stat -c %s "$XM_SECONDARY_DISK")" "$disk_bytes" "secondary disk size"
assert_eq "$(count_ee "$XM_SECONDARY_DISK")" 0 "0xEE bytes on the secondary"
assert_eq "$(status_json "$P" | jq .daemon.replication.out_of_sync_bytes)" 0 "out of sync bytes"
assert_disks_identical "after the forged frames"
kill -0 "$pid" || fail "primary daemon died"

log "control socket: garbage gets an error line, idle clients cannot take every slot"
ctl_path="/run/xdpmirror/$P.ctl"
/usr/bin/python3 - "$ctl_path" >"$WORK/ctl.out" 2>&1 <<'PY' || fail "control socket: $(cat "$WORK/ctl.out")"
import socket, sys, time
path = sys.argv[1]

def ask(line, timeout=2.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    out = b""
    try:  # a daemon with no free slot closes the connection at once; a full backlog: EAGAIN
        s.connect(path)
        s.sendall(line)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError, BrokenPipeError, BlockingIOError):
        pass
    s.close()
    return out.decode(errors="replace")

for line, want in [(b"frobnicate\n", "error: unknown request"),
                   (b"\xff\xfe\x00\x01garbage\n", "error: unknown request"),
                   (b"status a b c d e\n", "error: too many words"),
                   (b"status mark\n", "error: 'status' takes no 'mark'"),
                   (b"\n", "error: empty request"),
                   (b"promote\n", "error: not a secondary"),
                   (b"resolve discard-local\n", "error: only a secondary")]:
    got = ask(line)
    if not got.startswith(want):
        sys.exit(f"{line!r}: answered {got!r}, expected {want!r}")
# More idle clients than the daemon has slots: each is accepted and sends nothing.
idle = []
for _ in range(24):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    idle.append(s)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    if ask(b"status\n", 1.0).startswith("{"):
        break
    time.sleep(0.2)
else:
    sys.exit("no status answer while idle control clients were open")
# The daemon closed the idle ones (EOF), they did not hold their slots.
for s in idle[:16]:
    s.settimeout(5)
    if s.recv(1) != b"":
        sys.exit("an idle control client got data")
print("ok")
PY
kill -0 "$pid" || fail "primary daemon died"

log "a real write after all that is mirrored"
head -c $((4 << 20)) /dev/urandom >"$WORK/in.img"
nbdcopy "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy in"
assert_eq "$(status_json "$P" | jq .daemon.counters.writes_degraded)" 0 "degraded writes"
mirror_down
cmp -n $((4 << 20)) "$WORK/in.img" "$XM_PRIMARY_DISK" || fail "primary does not hold the image"
assert_disks_identical "after the final nbdcopy"
rm -f "$WORK/in.img"
echo "all checks passed"
