#!/usr/bin/env bash
# Description: replication protocols A, B and C told apart by what each promises.  With the
# secondary's disk stalled (nbdkit's pause filter under it), an A or B write completes and a C
# write waits until the disk moves again; with the secondary daemon stopped (SIGSTOP), an A write
# completes and B and C writes wait.  A FLUSH waits for the secondary's disk in every protocol.
# Each protocol ends with the secondary holding every byte.  When the secondary goes away the
# primary keeps serving writes, degraded, and counts the bytes the secondary misses.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy
require_fuse
require_nbdkit_filters pause
require_nbd_ops
# The FUSE file wants 4 KiB direct I/O: jumbo frames carry whole 4 KiB blocks.
pair_up r --disk-size 16M --mtu 9000
LEN=65536

log "the secondary's disk: its image through nbdkit's pause filter and nbdfuse"
fuse_disk sdisk "$XM_SECONDARY_DISK" --filter=pause pause-control="$WORK/pause.sock"
SDISK=$FUSE_DISK

disk_pause() { $NBD_OPS pause-control "$WORK/pause.sock" p || fail "pausing the secondary's disk"; }
disk_resume() { $NBD_OPS pause-control "$WORK/pause.sock" r || fail "resuming the secondary's disk"; }
# op_done N OP: request N of the client has completed; op_issued: it has been sent.
op_done() { grep -qx "$1 $2 done" "$OPS"; }
op_issued() { grep -qx "$1 $2 issued" "$OPS"; }
# A request that is not complete 0.3 s after the event it waits for has not been completed on
# that event: the check for "it waits" (a wrong completion comes at once).
still_waits() {
	if wait_until 0.3 op_done "$1" "$2"; then
		fail "protocol $proto: $3: request $1 ($2) completed: $(tr '\n' ';' <"$OPS")"
	fi
}
# start_client NAME OP...: the scripted client in the background; its events in $OPS.
start_client() {
	OPS=$WORK/ops-$1.log
	shift
	$NBD_OPS "$(nbd_uri)" "$@" >"$OPS" 2>&1 &
	CLIENT=$!
	track_worker "$CLIENT"
}
finish_client() {
	wait "$CLIENT" || fail "protocol $proto: the client failed: $(tr '\n' ';' <"$OPS")"
}
# same_session WHAT: the session that was up when the test began is still up (a write that only
# completed because the session ended proves nothing about the protocol).
same_session() {
	assert_eq "$(counter "$P" sessions)" "$sessions" "protocol $proto: sessions when $1"
	is_connected "$P" || fail "protocol $proto: not connected when $1"
}
# holds OFF SEED: the secondary's image holds the client's pattern there.
holds() {
	$NBD_OPS pattern $LEN "$2" >"$WORK/pattern"
	cmp -n $LEN -i "0:$1" "$WORK/pattern" "$XM_SECONDARY_DISK" >/dev/null
}

for proto in A B C; do
	log "protocol $proto"
	attach_box secondary --disk "$SDISK" --protocol "$proto" --timeout 5000
	attach_box primary --protocol "$proto" --timeout 5000
	wait_until 5 is_connected "$P" || fail "no session: $(status_json "$P" | jq -c .daemon.replication)"
	wait_until 30 in_sync "$P" || fail "initial sync: $(status_json "$P" | jq -c .daemon.replication)"
	assert_eq "$(status_json "$P" | jq -r .daemon.replication.protocol)" "$proto" "primary runs $proto"
	assert_eq "$(status_json "$S" | jq -r .daemon.replication.protocol)" "$proto" "secondary runs $proto"
	frames=$((LEN / $(status_json "$P" | jq .daemon.replication.max_payload)))
	sessions=$(counter "$P" sessions)

	log "  the secondary's disk stalls: a write, then a flush"
	off=$((8 << 20)) seed=$((RANDOM + 1))
	disk_pause
	rx0=$(counter "$S" rx_data)
	start_client stall-$proto "write:$off:$LEN:$seed" flush
	wait_until 5 counter_reaches "$S" rx_data $((rx0 + frames)) ||
		fail "protocol $proto: the secondary did not receive the write"
	if [ "$proto" = C ]; then
		still_waits 1 write "received but not durable on the secondary"
	else
		# Well before the 2 s write stall would end the session (and complete it degraded).
		wait_until 1 op_done 1 write ||
			fail "protocol $proto: the write waits for the stalled disk: $(tr '\n' ';' <"$OPS")"
		same_session "the write completed"
		wait_until 2 op_issued 2 flush || fail "protocol $proto: no flush issued"
	fi
	still_waits 2 flush "the secondary's disk stalls"
	disk_resume
	wait_until 5 op_done 2 flush || fail "protocol $proto: the flush did not complete after the disk moved"
	finish_client
	holds "$off" "$seed" || fail "protocol $proto: the flushed write is not on the secondary's disk"

	log "  the secondary daemon stops (SIGSTOP): a write"
	off=$((12 << 20)) seed=$((RANDOM + 1))
	spid=$(daemon_pid secondary)
	tx0=$(counter "$P" tx_data)
	kill -STOP "$spid" || fail "SIGSTOP $spid"
	at_exit kill -CONT "$spid"
	start_client stop-$proto "write:$off:$LEN:$seed"
	wait_until 5 counter_reaches "$P" tx_data $((tx0 + frames)) ||
		fail "protocol $proto: the primary did not send the write"
	if [ "$proto" = A ]; then
		wait_until 1 op_done 1 write ||
			fail "protocol A: the write waits for the stopped secondary: $(tr '\n' ';' <"$OPS")"
		same_session "the write completed"
	else
		still_waits 1 write "sent, but the secondary is stopped"
	fi
	kill -CONT "$spid" || fail "SIGCONT $spid"
	wait_until 5 op_done 1 write || fail "protocol $proto: the write did not complete after SIGCONT"
	finish_client
	assert_eq "$(counter "$P" sessions)" "$sessions" "protocol $proto: sessions (the session stayed up)"
	assert_eq "$(counter "$P" writes_degraded)" 0 "protocol $proto: degraded writes"

	random_file "$WORK/in.img" $((4 << 20))
	nbdcopy "$WORK/in.img" "$(nbd_uri)" || fail "nbdcopy with protocol $proto"
	mirror_down
	cmp -n $((4 << 20)) "$WORK/in.img" "$XM_SECONDARY_DISK" || fail "protocol $proto: secondary differs"
	holds $((12 << 20)) "$seed" || fail "protocol $proto: the write is not on the secondary's disk"
	assert_disks_identical "protocol $proto"
done

log "degraded: the secondary detaches, writes go on"
attach_box secondary --disk "$SDISK"
attach_box primary
wait_until 5 is_connected "$P" || fail "no session"
wait_until 30 in_sync "$P" || fail "not in sync"
"$XM" detach --dev "$S" || fail "detach secondary"
wait_until 2 is_degraded "$P" ||
	fail "primary did not notice the secondary left: $(status_json "$P" | jq -c .daemon.replication)"
random_file "$WORK/late.img" $((1 << 20))
nbdcopy "$WORK/late.img" "$(nbd_uri)" || fail "a write while degraded failed"
r=$(status_json "$P" | jq .daemon.replication)
assert_ge "$(jq .out_of_sync_bytes <<<"$r")" $((1 << 20)) "degraded writes are counted out of sync"
assert_ge "$(jq .degraded_writes <<<"$r")" 1 "degraded writes"
# The secondary says goodbye (CLOSE), so the primary knows why without waiting for a timeout.
assert_eq "$(jq -r .reason <<<"$r")" "peer detached" "reason"
cmp -n $((1 << 20)) "$WORK/late.img" "$XM_PRIMARY_DISK" || fail "degraded write not on the primary"
"$XM" detach --dev "$P" || fail "detach primary"
echo "all checks passed"
