#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: two boxes in namespaces: mirror frames go XDP -> AF_XDP on both sides and are
# counted in the pinned map; other traffic passes; bad frames are dropped under their reason.
source "$(dirname "$0")/../lib.sh"
require_root
pair_up s --disk-size 16M

attach_box primary
attach_box secondary

log "heartbeats cross the link in both directions"
reachable() { [ "$(status_json "$1" | jq -r .daemon.peer.reachable)" = true ]; }
# Re-evaluated on every poll (a $(...) argument to wait_until would be read only once).
bpf_reaches() { [ "$(bpf_counter "$S" "$1")" -ge "$2" ]; }
wait_until 5 reachable "$P" || fail "primary never saw the secondary"
wait_until 5 reachable "$S" || fail "secondary never saw the primary"
for dev in "$P" "$S"; do
	assert_ge "$(bpf_counter "$dev" rx.ping)" 1 "$dev rx.ping via bpftool"
	assert_ge "$(bpf_counter "$dev" rx.pong)" 1 "$dev rx.pong via bpftool"
	j=$(status_json "$dev")
	assert_ge "$(jq .daemon.counters.rx_frames <<<"$j")" 1 "$dev frames read from the AF_XDP socket"
	assert_ge "$(jq .daemon.counters.rx_pong <<<"$j")" 1 "$dev pongs received"
	assert_eq "$(jq -r .daemon.xdp.mode <<<"$j")" native "$dev XDP mode"
	assert_eq "$(jq -r .daemon.afxdp.mode <<<"$j")" copy "$dev AF_XDP mode (veth has no zero-copy)"
	assert_eq "$(jq -r .daemon.afxdp.queues <<<"$j")" 1 "$dev AF_XDP queues"
	assert_eq "$(jq -r .daemon.mtu <<<"$j")" "$XM_MTU" "$dev MTU"
done
assert_eq "$(status_json "$P" | jq -r .daemon.role)" primary "primary role"
assert_eq "$(status_json "$S" | jq -r .daemon.role)" secondary "secondary role"

log "ordinary traffic on the same link still passes"
before=$(bpf_counter "$S" pass)
in_box primary ping -6 -c 3 -i 0.1 -W 2 -I "$P" fe80::58:4dff:fe00:2%"$P" >/dev/null ||
	fail "IPv6 ping across the mirror link failed"
assert_ge "$(($(bpf_counter "$S" pass) - before))" 3 "secondary pass counter after 3 pings"

log "bad frames from the wire are dropped and counted under their reason"
# send_bad REASON [xm_rawsend damage...]: 5 frames from the primary side; the secondary's drop
# counter for REASON must move by exactly 5.
send_bad() {
	local reason=$1 before after
	shift
	before=$(bpf_counter "$S" "drop.$reason")
	in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" \
		--src "$XM_PRIMARY_MAC" --count 5 "$@" || fail "xm_rawsend $*"
	wait_until 2 bpf_reaches "drop.$reason" $((before + 5)) || true
	after=$(bpf_counter "$S" "drop.$reason")
	assert_eq "$((after - before))" 5 "drop.$reason after 5 frames ($*)"
}
send_bad bad_peer --src 02:00:00:00:00:99
send_bad not_for_us --dst 02:00:00:00:00:77
send_bad not_for_us --dst ff:ff:ff:ff:ff:ff
send_bad bad_magic --magic 0x1234
send_bad bad_version --version 2
send_bad bad_type --type 0
send_bad bad_type --type 20 # XM_T_MAX: the first type no revision defines
send_bad bad_type --flags 0x8000
send_bad bad_length --payload-len 64 --claim-len 4000
send_bad bad_length --claim-off 40
send_bad truncated --truncate 30

log "a frame with a bad CRC passes XDP (CRC is userspace's job) and is dropped by the daemon"
before=$(status_json "$S" | jq .daemon.counters.rx_bad_crc)
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
	--type 7 --payload-len 64 --bad-crc --count 5 || fail "xm_rawsend --bad-crc"
wait_until 2 counter_reaches "$S" rx_bad_crc $((before + 5)) ||
	fail "secondary did not count 5 bad CRCs"

log "a VLAN-tagged mirror frame is steered like an untagged one"
# DATA frames of no session: once the initial sync is over nothing else sends DATA, so the
# XDP program's rx.data and the daemon's gate (rx_bad_auth: no tag) count exactly these.
wait_until 10 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
data0=$(bpf_counter "$S" rx.data)
wrong0=$(counter "$S" rx_bad_auth)
bad_before=$(status_json "$S" | jq '.daemon.counters.rx_malformed + .daemon.counters.rx_bad_crc')
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
	--type 3 --session 0xdead --payload-len 512 --vlan 100 --count 5 || fail "xm_rawsend --vlan"
wait_until 2 counter_reaches "$S" rx_bad_auth $((wrong0 + 5)) ||
	fail "VLAN frames at the socket: $(($(counter "$S" rx_bad_auth) - wrong0)) of 5"
assert_eq "$(($(bpf_counter "$S" rx.data) - data0))" 5 "VLAN DATA frames steered by XDP"
assert_eq "$(($(counter "$S" rx_bad_auth) - wrong0))" 5 "VLAN frames judged by the gate"
assert_eq "$(status_json "$S" | jq '.daemon.counters.rx_malformed + .daemon.counters.rx_bad_crc')" \
	"$bad_before" "VLAN frames parsed as valid"

log "a second attach on the same interface is refused"
out=$(in_box secondary "$XM" attach --role secondary --dev "$S" --peer "$XM_PRIMARY_MAC" \
	--disk "$XM_SECONDARY_DISK" --auth-key "$XM_AUTH_KEY" 2>&1)
rc=$?
assert_eq "$rc" 1 "exit code of a second attach"
grep -q "already attached" <<<"$out" || fail "second attach said: $out"

log "detach stops the daemon, removes the program and the pins; the peer notices"
"$XM" detach --dev "$S" || fail "detach secondary"
[ ! -e "/sys/fs/bpf/xdpmirror/$S" ] || fail "pins left after detach"
xdp_attached secondary && fail "XDP still attached after detach"
"$XM" status --dev "$S" >/dev/null
assert_eq $? 3 "status exit code of a detached interface"
unreachable() { [ "$(status_json "$P" | jq -r .daemon.peer.reachable)" = false ]; }
wait_until 2 unreachable || fail "primary still thinks the detached secondary is reachable"

log "kill -9 leaves no program attached; detach removes the leftover pins"
kill_daemon primary
no_xdp() { ! xdp_attached primary; }
wait_until 3 no_xdp || fail "XDP program still attached after kill -9"
[ -e "/sys/fs/bpf/xdpmirror/$P/stats" ] || fail "expected pins to survive kill -9"
"$XM" detach --dev "$P" || fail "detach after kill -9"
[ ! -e "/sys/fs/bpf/xdpmirror/$P" ] || fail "pins left after detach of a killed daemon"
echo "all checks passed"
