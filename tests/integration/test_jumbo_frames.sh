#!/usr/bin/env bash
# Description: at MTU 9000 the frags program and multi-buffer AF_XDP deliver whole jumbo mirror
# frames (several UMEM buffers each) to the daemon, which reassembles and CRC-checks them.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
pair_up xmtj --mtu 9000

attach_box primary
# --daemon: returns once attached; the daemon keeps running in the background.
in_box secondary "$XM" attach --role secondary --dev "$XM_SECONDARY_IF" --peer "$XM_PRIMARY_MAC" \
	--disk "$XM_SECONDARY_DISK" --daemon || fail "attach --daemon"
S=$XM_SECONDARY_IF
status_json "$S" | jq -e '.attached' >/dev/null || fail "--daemon: not attached after return"

counters() { status_json "$S" | jq -c .daemon.counters; }
before=$(counters)
# 8900 bytes of payload: a 8962-byte frame, three 4 KiB UMEM chunks on the receiving side.
in_box primary "$TOOLS/xm_rawsend" --dev "$XM_PRIMARY_IF" --dst "$XM_SECONDARY_MAC" \
	--src "$XM_PRIMARY_MAC" --type 7 --payload-len 8900 --count 200 || fail "xm_rawsend jumbo"
in_box primary "$TOOLS/xm_rawsend" --dev "$XM_PRIMARY_IF" --dst "$XM_SECONDARY_MAC" \
	--src "$XM_PRIMARY_MAC" --type 7 --payload-len 8900 --bad-crc --count 10 || fail "xm_rawsend bad"
sleep 0.3
after=$(counters)
d() { echo $(($(jq ".$1" <<<"$after") - $(jq ".$1" <<<"$before"))); }
assert_eq "$(d rx_bad_crc)" 10 "jumbo frames with a flipped last byte caught by CRC32C"
assert_eq "$(d rx_malformed)" 0 "jumbo frames reassembled intact"
assert_ge "$(d rx_frames)" 210 "jumbo frames read from the socket"
assert_eq "$(status_json "$S" | jq .daemon.afxdp.socket.rx_dropped)" 0 "socket rx_dropped"
big=$(bpftool -j map dump pinned "/sys/fs/bpf/xdpmirror/$S/stats" |
	jq '[.[0].formatted.values[].value.rx.ping.bytes] | add')
assert_ge "$big" $((210 * 8962)) "rx.ping bytes count the whole multi-buffer frames"

"$XM" detach --dev "$S" || fail "detach of a --daemon attach"
"$XM" detach --dev "$XM_PRIMARY_IF" || fail "detach primary"
echo "all checks passed"
