#!/usr/bin/env bash
# Description: NBD WRITE_ZEROES is written on the primary and mirrored as DATA (4 KiB, 1 MiB, a
# length that is no multiple of the frame payload, the last bytes of the export): both disks hold
# zeros there and nothing else changes. TRIM is acknowledged and ignored on both disks
# (docs/protocol.md §5.1, §8.4): nothing is sent and the old data stays. WRITE_ZEROES while
# degraded dirties only its regions and the resync brings the zeros to the secondary without
# changing the primary.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
require_nbd_ops
pair_up z --disk-size 32M
BLOCK=65536 SIZE=$XM_DISK_SIZE
ZEROED=() TRIMMED=()

# nbd_do OP...: zero:OFF:LEN and trim:OFF:LEN through the primary's export, then a flush; each
# zero is applied to $WORK/expected.img too, the image both disks must end up holding.
nbd_do() {
	local op kind off len
	$NBD_OPS "$(nbd_uri)" "$@" flush >"$WORK/ops.log" || fail "nbd ops $*: $(tail -1 "$WORK/ops.log")"
	for op in "$@"; do
		IFS=: read -r kind off len <<<"$op"
		if [ "$kind" = zero ]; then
			ZEROED+=("$off+$len")
			dd if=/dev/zero of="$WORK/expected.img" bs=512 seek=$((off / 512)) \
				count=$((len / 512)) conv=notrunc status=none || fail "dd into expected.img"
		else
			TRIMMED+=("$off+$len")
		fi
	done
}

# where OFF: the range a byte offset lies in, for fail messages.
where() {
	local r
	for r in "${ZEROED[@]}"; do
		(($1 >= ${r%+*} && $1 < ${r%+*} + ${r#*+})) && { echo "in zeroed range $r"; return; }
	done
	for r in "${TRIMMED[@]}"; do
		(($1 >= ${r%+*} && $1 < ${r%+*} + ${r#*+})) && { echo "in trimmed range $r"; return; }
	done
	echo "outside every zeroed and trimmed range"
}

bytes_at() { od -An -tx1 -j "$2" -N 8 "$1" | xargs; }
# check_disk IMAGE EXPECTED WHAT: the disk image holds exactly the expected bytes.
check_disk() {
	local out at
	out=$(cmp "$2" "$1" 2>&1) && return 0
	at=$(sed -n 's/.* differ: byte \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$at" ] || fail "$3: cmp $2 $1: $out"
	at=$((at - 1))
	fail "$3: $(basename "$1") differs at offset $at ($(where $at)): expected" \
		"$(bytes_at "$2" $at), got $(bytes_at "$1" $at)"
}

# regions OP...: how many bitmap regions the zero ops touch.
regions() {
	local op kind off len
	for op in "$@"; do
		IFS=: read -r kind off len <<<"$op"
		[ "$kind" = zero ] && seq $((off / BLOCK)) $(((off + len - 1) / BLOCK))
	done | sort -u | wc -l
}

# A session lost on a busy machine would resend or resync and blur the exact DATA counts below.
mirror_up --timeout 1000
M=$(status_json "$P" | jq .daemon.replication.max_payload)
[ "$M" -gt 512 ] || fail "max_payload $M: no length is both a block multiple and not a payload multiple"
random_file "$WORK/base.img" "$SIZE"
nbdcopy --flush "$WORK/base.img" "$(nbd_uri)" || fail "nbdcopy"
wait_until 10 in_sync "$P" || fail "not in sync after nbdcopy: $(status_json "$P" | jq -c .daemon.replication)"
cp "$WORK/base.img" "$WORK/expected.img"
check_disk "$XM_PRIMARY_DISK" "$WORK/expected.img" "after nbdcopy"
check_disk "$XM_SECONDARY_DISK" "$WORK/expected.img" "after nbdcopy"

log "TRIM is acknowledged and ignored: no DATA, both disks keep the old data"
d0=$(counter "$P" tx_data)
nbd_do trim:$((2 << 20)):$((256 << 10)) trim:$((5 << 20)):$BLOCK trim:$(((12 << 20) + 512)):512 \
	trim:$((SIZE - BLOCK)):$((BLOCK - 4096))
assert_eq "$(($(counter "$P" tx_data) - d0))" 0 "DATA frames sent for TRIMs"
check_disk "$XM_PRIMARY_DISK" "$WORK/expected.img" "after TRIM"
check_disk "$XM_SECONDARY_DISK" "$WORK/expected.img" "after TRIM"

log "WRITE_ZEROES goes to both disks as DATA frames (max_payload $M)"
zeros=(zero:12288:4096 zero:$((4 << 20)):$((1 << 20)) zero:$(((8 << 20) + 512)):$((5 * M + 512))
	zero:$((SIZE - 3 * M - 512)):$((3 * M + 512)))
bytes=0 frames=0
for op in "${zeros[@]}"; do
	len=${op##*:}
	bytes=$((bytes + len)) frames=$((frames + (len + M - 1) / M))
done
w0=$(counter "$P" writes) d0=$(counter "$P" tx_data) b0=$(counter "$P" tx_data_bytes)
rx0=$(counter "$S" rx_data_bytes)
nbd_do "${zeros[@]}"
assert_eq "$(($(counter "$P" writes) - w0))" ${#zeros[@]} "NBD writes admitted for ${#zeros[@]} WRITE_ZEROES"
assert_eq "$(($(counter "$P" tx_data) - d0))" $frames "DATA frames sent for the zeroes"
assert_eq "$(($(counter "$P" tx_data_bytes) - b0))" $bytes "DATA payload bytes sent for the zeroes"
assert_eq "$(($(counter "$S" rx_data_bytes) - rx0))" $bytes "DATA payload bytes the secondary applied"
check_disk "$XM_PRIMARY_DISK" "$WORK/expected.img" "after WRITE_ZEROES"
check_disk "$XM_SECONDARY_DISK" "$WORK/expected.img" "after WRITE_ZEROES"

log "WRITE_ZEROES while degraded: local only, dirty regions, the resync brings the zeros over"
# Only the regions written while apart may be dirty: the sweep first clears the intent bits.
wait_until 5 intent_clear "$P" || fail "intent bits not swept: $(status_json "$P" | jq -c .daemon.metadata.bitmap)"
in_box secondary ip link set dev "$S" down
wait_until 5 is_degraded "$P" || fail "primary did not degrade: $(status_json "$P" | jq -c .daemon.replication)"
cp "$WORK/expected.img" "$WORK/secondary-expected.img"
apart=(zero:$(((20 << 20) + 32768)):$(((200 << 10) + 512)) zero:$((24 << 20)):4096
	"trim:$((26 << 20)):$BLOCK")
w0=$(counter "$P" writes_degraded)
nbd_do "${apart[@]}"
assert_eq "$(($(counter "$P" writes_degraded) - w0))" 2 "degraded writes for 2 WRITE_ZEROES and a TRIM"
bits=$(dirty_bits "$P")
assert_eq "$bits" "$(regions "${apart[@]}")" "dirty regions after the degraded zeroes"
check_disk "$XM_PRIMARY_DISK" "$WORK/expected.img" "primary while degraded"
check_disk "$XM_SECONDARY_DISK" "$WORK/secondary-expected.img" "secondary while its link is down"
record=$(digest "$XM_PRIMARY_DISK")
r0=$(counter "$P" tx_resync_bytes)
in_box secondary ip link set dev "$S" up
wait_until 10 in_sync "$P" || fail "no resync after link up: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(status_json "$P" | jq -r .daemon.replication.decision)" bitmap "handshake decision"
assert_eq "$(($(counter "$P" tx_resync_bytes) - r0))" $((bits * BLOCK)) "resync bytes for $bits dirty regions"
assert_digest "$XM_PRIMARY_DISK" "$record" "the primary after the resync"
check_disk "$XM_SECONDARY_DISK" "$WORK/expected.img" "secondary after the resync"
mirror_down
check_disk "$XM_PRIMARY_DISK" "$WORK/expected.img" "primary after detach"
assert_disks_identical "after detach"
echo "all checks passed"
