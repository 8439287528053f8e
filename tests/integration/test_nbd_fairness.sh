#!/usr/bin/env bash
# Description: one NBD client never stalls the others (issue 17): four raw-socket clients finish
# the handshake, announce 32 MiB WRITEs, send 64 KiB and stall; meanwhile another client writes and
# flushes 8 MiB, and its writes complete while the four are still connected (they used to freeze
# the export: the announced lengths filled the write budget), with a control-socket client that
# connected and sent nothing beside them.  The four are disconnected after the
# message deadline and counted, no mirror session ends, their partial payloads are written
# nowhere, and the good client's bytes are on the secondary's disk.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
pair_up nf --disk-size 64M
mirror_up
sock=/run/xdpmirror/$P.sock
nbd() { status_json "$P" | jq ".daemon.nbd.$1"; }
sessions0=$(counter "$P" sessions)
STALL_OFF=$((32 << 20))

# stall N: a client that sends a 32 MiB WRITE's header and 64 KiB of 0xEE at STALL_OFF, then waits
# until the server hangs up ("disconnected"; at most 60 s).  Output in $WORK/stall-N.out.
stall() {
	$PY - "$sock" "$STALL_OFF" $((32 << 20)) $((64 << 10)) >"$WORK/stall-$1.out" 2>&1 <<'EOF' &
import socket, struct, sys

path, off, length, sent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(60)


def recvn(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed in the handshake")
        b += c
    return b


recvn(18)                                   # greeting
s.sendall(struct.pack(">I", 3))            # FIXED_NEWSTYLE | NO_ZEROES
s.sendall(struct.pack(">QIIIH", 0x49484156454F5054, 7, 6, 0, 0))  # GO, default export
while True:
    _, _, rtype, rlen = struct.unpack(">QIII", recvn(20))
    recvn(rlen)
    if rtype == 1:
        break
    if rtype & 0x80000000:
        print("GO refused")
        sys.exit(1)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, off, length) + b"\xee" * sent)
print("stalled", flush=True)
try:
    while s.recv(4096):
        pass
except socket.timeout:
    print("still connected after 60 s")
    sys.exit(1)
except ConnectionResetError:
    pass
print("disconnected")
EOF
	STALL_PIDS+=($!)
	track_worker $!
}
stalled() { grep -q stalled "$WORK/stall-$1.out"; }

log "four clients announce 32 MiB WRITEs, send 64 KiB and stall"
STALL_PIDS=()
for i in 1 2 3 4; do stall $i; done
for i in 1 2 3 4; do
	wait_until 5 stalled $i || fail "stalling client $i: $(cat "$WORK/stall-$i.out")"
done
four() { [ "$(nbd connections)" -eq 4 ]; }
wait_until 5 four || fail "NBD connections: $(nbd connections), expected the 4 stalled clients"

log "a control-socket client connects and says nothing meanwhile"
ctl_to0=$(status_json "$P" | jq .daemon.control.request_timeouts)
$PY -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
print("connected", flush=True)
time.sleep(30)' "/run/xdpmirror/$P.ctl" >"$WORK/silent.out" 2>&1 &
track_worker $!
wait_until 5 grep -q connected "$WORK/silent.out" || fail "silent control client: $(cat "$WORK/silent.out")"

log "another client writes and flushes 8 MiB meanwhile"
random_file "$WORK/good.img" $((8 << 20))
timeout 30 nbdcopy --flush "$WORK/good.img" "$(nbd_uri)" ||
	fail "the good client's writes did not complete with four clients stalled"
# It did not wait for the deadline: the four are still there, none dropped yet.
assert_eq "$(nbd request_timeouts)" 0 "clients dropped when the good client was done"
for i in 1 2 3 4; do
	grep -q disconnected "$WORK/stall-$i.out" && fail "stalling client $i was dropped before the good client finished"
done
assert_ge "$(nbd connections)" 4 "NBD connections when the good client was done"

log "the stalled clients are disconnected after the deadline and counted"
dropped() { [ "$(nbd request_timeouts)" -eq 4 ] && [ "$(nbd connections)" -eq 0 ]; }
wait_until 30 dropped || fail "request_timeouts $(nbd request_timeouts), connections $(nbd connections)"
for i in 1 2 3 4; do
	wait "${STALL_PIDS[i - 1]}" || fail "stalling client $i: $(cat "$WORK/stall-$i.out")"
	grep -q disconnected "$WORK/stall-$i.out" || fail "stalling client $i: $(cat "$WORK/stall-$i.out")"
done
assert_eq "$(grep -c 'disconnected (a stalled client)' "$WORK/primary.log")" 4 \
	"log lines for the dropped clients"
is_connected "$P" || fail "the mirror session ended: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(counter "$P" sessions)" "$sessions0" "mirror sessions"
# The silent control client was closed at its deadline, long before the NBD clients' own.
assert_eq "$(($(status_json "$P" | jq .daemon.control.request_timeouts) - ctl_to0))" 1 \
	"silent control clients closed at their deadline"

log "the good client's bytes are on both disks, the stalled payloads nowhere"
wait_until 30 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
cmp -n $((8 << 20)) "$WORK/good.img" "$XM_SECONDARY_DISK" ||
	fail "the secondary's first 8 MiB differ from what the good client wrote"
for d in "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK"; do
	n=$(tail -c +$((STALL_OFF + 1)) "$d" | head -c $((64 << 10)) | tr -d '\0' | wc -c)
	assert_eq "$n" 0 "non-zero bytes where the stalled clients wrote, on $(basename "$d")"
done
mirror_down
assert_disks_identical "after the stalled clients"
