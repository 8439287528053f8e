#!/usr/bin/env bash
# Description: any NBD client works (issue 17): a client that does not negotiate block sizes is
# told minimum 1 and gets its 1-byte write at offset 1 and an unaligned write across blocks done
# (read-modify-write below the NBD server), the neighbouring bytes kept, the bytes on the
# secondary's disk; a client that negotiates is told the export's alignment; two clients writing
# different bytes of one block at once, hundreds of requests in flight each, both keep every byte.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_nbd_ops
pair_up nu --disk-size 32M
mirror_up
nbd() { status_json "$P" | jq ".daemon.nbd.$1"; }
uri=$(nbd_uri)
BLOCK=$((1 << 20)) # the 4 KiB block the two concurrent writers share

log "a client that does not ask for block sizes: 1 byte at offset 1, 3000 bytes at 40960 + 100"
$PY - "$uri" >"$WORK/one.out" 2>&1 <<'EOF' || fail "unaligned client: $(cat "$WORK/one.out")"
import random, sys
import nbd

h = nbd.NBD()
h.set_request_block_size(False)
h.connect_uri(sys.argv[1])
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1, h.get_block_size(nbd.SIZE_MINIMUM)
# Neighbours that are not zeros, so that a read-modify-write that loses them shows.
rnd = random.Random(7)
h.pwrite(rnd.randbytes(4096), 0)
h.pwrite(rnd.randbytes(8192), 40960)
before = h.pread(4096, 0)
h.pwrite(b"\x5a", 1)
h.flush()
after = h.pread(4096, 0)
assert after == before[:1] + b"\x5a" + before[2:], "block 0 after the 1-byte write"
assert h.pread(1, 1) == b"\x5a"
before = h.pread(8192, 40960)
data = rnd.randbytes(3000)
h.pwrite(data, 40960 + 100, nbd.CMD_FLAG_FUA)
after = h.pread(8192, 40960)
assert after == before[:100] + data + before[3100:], "the blocks around the 3000 bytes"
h.shutdown()

# A client that asks for them promises to keep to them, and is told the export's alignment.
h = nbd.NBD()
h.connect_uri(sys.argv[1])
print("minimum when asked:", h.get_block_size(nbd.SIZE_MINIMUM))
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
h.shutdown()
print("ok")
EOF
sed 's/^/   /' "$WORK/one.out"
assert_ge "$(nbd unaligned_requests)" 3 "unaligned requests served"
assert_eq "$(nbd error_replies)" 0 "NBD error replies"
wait_until 30 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
byte=$(od -An -tx1 -j1 -N1 "$XM_SECONDARY_DISK" | tr -d ' ')
assert_eq "$byte" 5a "byte 1 on the secondary's disk"
cmp -n 4096 "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" || fail "block 0 differs between the disks"
cmp -i 40960:40960 -n 8192 "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" ||
	fail "the blocks of the unaligned write differ between the disks"

log "two clients write different bytes of one 4 KiB block at once, 1 byte per request"
# writer PARITY: every byte of the block whose offset has that parity, 64 requests in flight,
# byte value (offset * 7 + PARITY + 1) % 251 + 1 (never 0); then a flush.
writer() {
	$PY - "$uri" "$BLOCK" "$1" >"$WORK/writer-$1.out" 2>&1 <<'EOF' &
import sys
import nbd

uri, block, parity = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.set_request_block_size(False)
h.connect_uri(uri)
todo = [off for off in range(4096) if off % 2 == parity]
cookies = []
while todo or cookies:
    while todo and len(cookies) < 64:
        off = todo.pop()
        cookies.append(h.aio_pwrite(bytes([(off * 7 + parity + 1) % 251 + 1]), block + off))
    h.poll(-1)
    cookies = [c for c in cookies if not h.aio_command_completed(c)]
h.flush()
h.shutdown()
print("wrote 2048 bytes")
EOF
	WRITERS+=($!)
	track_worker $!
}
WRITERS=()
u0=$(nbd unaligned_requests)
writer 0
writer 1
for i in 0 1; do
	wait "${WRITERS[i]}" || fail "writer $i: $(cat "$WORK/writer-$i.out")"
done
assert_ge "$(($(nbd unaligned_requests) - u0))" 4096 "unaligned requests of the two writers"
# check_block IMAGE: every byte of the shared block is the one its writer wrote.
check_block() {
	$PY - "$1" "$BLOCK" <<'EOF'
import sys

with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    got = f.read(4096)
want = bytes((off * 7 + off % 2 + 1) % 251 + 1 for off in range(4096))
lost = [off for off in range(4096) if got[off] != want[off]]
if lost:
    print(f"{len(lost)} bytes lost, first at +{lost[0]}: 0x{got[lost[0]]:02x}, want 0x{want[lost[0]]:02x}")
    sys.exit(1)
EOF
}
out=$(check_block "$XM_PRIMARY_DISK") || fail "the shared block on the primary: $out"
wait_until 30 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
out=$(check_block "$XM_SECONDARY_DISK") || fail "the shared block on the secondary: $out"
is_connected "$P" || fail "the mirror session ended"
assert_eq "$(nbd error_replies)" 0 "NBD error replies"
mirror_down
assert_disks_identical "after the unaligned writes"
