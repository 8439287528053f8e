#!/usr/bin/env bash
# Description: on a NIC with two RX queues the daemon opens an AF_XDP socket on each by default and
# the mirror works; a mirror frame arriving on RX queue 1 reaches the daemon through its queue-1
# socket, and with --queues 1 the same frame finds no socket and is dropped as drop.no_socket.
# veth hands a frame to the peer's RX queue numbered like the TX queue it left on, and the daemon
# sends on queue 0 only, so the frames for queue 1 come from xm_rawsend --queue 1 (AF_XDP).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy ethtool
pair_up q --queues 2 --disk-size 32M

# copy_image NAME: a random image through the primary's export, then until the secondary holds it
# all (on a loaded machine a peer timeout may end the session; the resync then catches up).
copy_image() {
	random_file "$WORK/$1.img" "$XM_DISK_SIZE"
	nbdcopy --flush "$WORK/$1.img" "$(nbd_uri primary)" || fail "nbdcopy $1"
	wait_until 30 in_sync "$P" || fail "$1 image: $(status_json "$P" | jq -c .daemon.replication)"
}
queues() { status_json "$1" | jq .daemon.afxdp.queues; }
# rxq1 NAME: veth's own counter of the secondary's RX queue 1 (ethtool -S), e.g. xdp_redirect.
rxq1() { in_box secondary ethtool -S "$S" | awk -v k="rx_queue_1_$1:" '$1 == k { print $2 }'; }
bpf_reaches() { [ "$(bpf_counter "$S" "$1")" -ge "$2" ]; }
# send_q1: 5 DATA frames of no session, sent on the primary's TX queue 1.  The primary's TX queue 1
# must be free: AF_XDP allows one socket per queue.
send_q1() {
	in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
		--type 3 --session 0xdead --payload-len 512 --count 5 --queue 1 || fail "xm_rawsend --queue 1"
}

log "without --queues both daemons serve both RX queues; the mirror works"
mirror_up
assert_eq "$(queues "$P")" 2 "primary's AF_XDP sockets"
assert_eq "$(queues "$S")" 2 "secondary's AF_XDP sockets"
copy_image first
mirror_down
cmp "$WORK/first.img" "$XM_SECONDARY_DISK" || fail "the secondary does not hold the first image"

log "a frame on the secondary's RX queue 1 reaches its daemon through the queue-1 socket"
# The secondary alone: nothing else sends DATA, and the primary's TX queue 1 is free.  A frame of
# no session is counted by XDP (rx.data), then dropped by the daemon's gate (rx_bad_auth: no tag).
attach_box secondary
redirect0=$(rxq1 xdp_redirect)
data0=$(bpf_counter "$S" rx.data)
bad0=$(counter "$S" rx_bad_auth)
send_q1
wait_until 5 counter_reaches "$S" rx_bad_auth $((bad0 + 5)) ||
	fail "frames from RX queue 1 at the daemon: $(($(counter "$S" rx_bad_auth) - bad0)) of 5"
assert_eq "$(($(rxq1 xdp_redirect) - redirect0))" 5 "frames redirected on RX queue 1 (veth's ethtool -S)"
assert_eq "$(($(bpf_counter "$S" rx.data) - data0))" 5 "DATA frames steered by XDP"
assert_eq "$(($(counter "$S" rx_bad_auth) - bad0))" 5 "frames judged by the gate"
"$XM" detach --dev "$S" || fail "detach secondary"

log "with --queues 1 the same frames find no socket on RX queue 1 and are dropped"
# The primary's --queues 1 also leaves its TX queue 1 to xm_rawsend.
mirror_up --queues 1
assert_eq "$(queues "$P")" 1 "primary's AF_XDP sockets with --queues 1"
assert_eq "$(queues "$S")" 1 "secondary's AF_XDP sockets with --queues 1"
drops0=$(rxq1 xdp_drops)
nosock0=$(bpf_counter "$S" drop.no_socket)
data0=$(bpf_counter "$S" rx.data)
send_q1
wait_until 5 bpf_reaches drop.no_socket $((nosock0 + 5)) ||
	fail "drop.no_socket: $(($(bpf_counter "$S" drop.no_socket) - nosock0)) of 5"
assert_eq "$(($(bpf_counter "$S" drop.no_socket) - nosock0))" 5 "frames without a socket"
# veth's own count of drops on queue 1 also holds PROBE_ACKs the program took (XDP_DROP): veth
# puts an answer on the queue of the CPU that sent it.
assert_ge "$(($(rxq1 xdp_drops) - drops0))" 5 "frames dropped on RX queue 1 (veth's ethtool -S)"
# rx_wrong_session is no witness here: a peer timeout under load makes the primary's pings count.
assert_eq "$(($(bpf_counter "$S" rx.data) - data0))" 0 "DATA frames steered to a socket"

log "one socket on each side still mirrors"
copy_image second
mirror_down
cmp "$WORK/second.img" "$XM_SECONDARY_DISK" || fail "the secondary does not hold the second image"
assert_disks_identical "after both images"
echo "all checks passed"
