#!/usr/bin/env bash
# Description: at MTU 9000 the frags program and multi-buffer AF_XDP carry 8 KiB of payload per
# DATA frame (three UMEM buffers each on the receiving side): a 24 MiB image written through the
# export lands byte for byte on the secondary's disk; jumbo frames with a broken CRC are caught
# after reassembly.  The secondary is attached with --daemon, which returns once attached.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
pair_up j --mtu 9000 --disk-size 64M
SIZE=$((24 << 20))

in_box secondary "$XM" attach --role secondary --dev "$S" --peer "$XM_PRIMARY_MAC" \
	--disk "$XM_SECONDARY_DISK" --meta "$(box_meta secondary)" --auth-key "$XM_AUTH_KEY" --daemon ||
	fail "attach --daemon"
status_json "$S" | jq -e '.attached' >/dev/null || fail "--daemon: not attached after return"
attach_box primary
wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
wait_until 30 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(status_json "$P" | jq .daemon.replication.max_payload)" 8192 "payload per frame (primary)"
assert_eq "$(status_json "$S" | jq .daemon.replication.max_payload)" 8192 "payload per frame (secondary)"
assert_eq "$(status_json "$S" | jq -r .daemon.writer.layout)" B "secondary's UMEM layout for jumbo frames"

log "a random image through the export, in 8 KiB DATA frames"
frames0=$(bpf_counter "$S" rx.data)
bytes0=$(bpf_bytes "$S" rx.data)
rx0=$(counter "$S" rx_data_bytes)
random_file "$WORK/in.img" $SIZE
nbdcopy --flush "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy"
frames=$(($(bpf_counter "$S" rx.data) - frames0))
bytes=$(($(bpf_bytes "$S" rx.data) - bytes0))
log "  $frames DATA frames, $((bytes / frames)) bytes each on average"
assert_eq "$(($(counter "$S" rx_data_bytes) - rx0))" $SIZE "payload bytes applied on the secondary"
assert_ge "$frames" $((SIZE / 8192)) "DATA frames (8 KiB each)"
assert_ge "$((bytes / frames))" 8192 "bytes per DATA frame: more than one 4 KiB UMEM buffer"
assert_eq "$(status_json "$S" | jq .daemon.afxdp.socket.rx_dropped)" 0 "socket rx_dropped"
assert_eq "$(counter "$S" rx_malformed)" 0 "frames that failed reassembly"
cmp -n $SIZE "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "the secondary does not hold the image"

log "jumbo frames with a flipped last byte are caught by CRC32C after reassembly"
counters() { status_json "$S" | jq -c .daemon.counters; }
before=$(counters)
# 8900 bytes of payload: a 8962-byte frame, three 4 KiB UMEM chunks on the receiving side.
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" \
	--src "$XM_PRIMARY_MAC" --type 7 --payload-len 8900 --count 200 || fail "xm_rawsend jumbo"
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" \
	--src "$XM_PRIMARY_MAC" --type 7 --payload-len 8900 --bad-crc --count 10 || fail "xm_rawsend bad"
d() { echo $(($(counter "$S" "$1") - $(jq ".$1" <<<"$before"))); }
bad_crc_reach() { [ "$(d rx_bad_crc)" -ge 10 ]; }
wait_until 5 bad_crc_reach || fail "jumbo frames with a bad CRC: $(d rx_bad_crc) of 10 caught"
assert_eq "$(d rx_bad_crc)" 10 "jumbo frames with a flipped last byte caught by CRC32C"
assert_eq "$(d rx_malformed)" 0 "jumbo frames reassembled intact"
assert_ge "$(d rx_frames)" 210 "jumbo frames read from the socket"
assert_ge "$(bpf_bytes "$S" rx.ping)" $((210 * 8962)) "rx.ping bytes count the whole multi-buffer frames"

"$XM" detach --dev "$P" || fail "detach primary"
"$XM" detach --dev "$S" || fail "detach of a --daemon attach"
cmp -n $SIZE "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "the secondary lost the image"
assert_disks_identical "after the jumbo writes"
echo "all checks passed"
