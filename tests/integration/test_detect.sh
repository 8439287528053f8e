#!/usr/bin/env bash
# Description: real failures are still found fast, each with its cause in status: the link set down
# on one side, kill -9 of the peer's daemon (probes go unanswered), SIGSTOP of the peer's daemon
# (its kernel still answers; found after --ko-timeout).  After each the pair reconnects and the
# secondary's disk equals the primary's.  --realtime runs the loop SCHED_FIFO; --busy-poll makes
# it poll before it sleeps, and the polls find work.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy chrt
pair_up dt --disk-size 32M
KO=500

last_failure() { status_json "$P" | jq -c .daemon.replication.last_failure; }
# detected CAUSE WHAT T0: the primary ended the session for CAUSE; prints the detection time the
# daemon measured (silence before the verdict) and the wall time the test saw.
detected() {
	local f
	wait_until 5 is_degraded "$P" || fail "$2: the primary still says connected after 5 s"
	f=$(last_failure)
	log "  $2: \"$(jq -r .reason <<<"$f")\" after $(jq .silence_ms <<<"$f") ms of silence;" \
		"the test saw it after $(ms_since "$3") ms (T $(status_json "$P" | jq .daemon.peer.detect_timeout_ms) ms)"
	assert_eq "$(jq -r .reason <<<"$f")" "$1" "$2: cause"
	assert_eq "$(status_json "$P" | jq -r .daemon.replication.reason)" "$1" "$2: status reason"
}
reconnect() {
	wait_until 10 is_connected "$P" || fail "$1: no new session: $(status_json "$P" | jq -c .daemon.replication)"
	wait_until 30 in_sync "$P" || fail "$1: no resync: $(status_json "$P" | jq -c .daemon.replication)"
}
write_some() {
	random_file "$WORK/w.img" $((4 << 20))
	nbdcopy --flush "$WORK/w.img" "$(nbd_uri)" || fail "nbdcopy"
}

mirror_up --ko-timeout $KO
write_some

log "the secondary's link goes down"
t0=$(now_us)
in_box secondary ip link set "$S" down || fail "link down"
detected "peer not answering" "link down" "$t0"
sf=$(counter "$P" peer_timeouts)
assert_eq "$sf" 1 "primary's peer_timeouts"
write_some # degraded: marked out of sync
in_box secondary ip link set "$S" up || fail "link up"
reconnect "link up again"

log "kill -9 of the secondary's daemon"
t0=$(now_us)
kill_daemon secondary
detected "peer not answering" "kill -9" "$t0"
attach_box secondary --ko-timeout $KO
reconnect "secondary restarted"

log "SIGSTOP of the secondary's daemon: its kernel answers probes, its daemon sends nothing"
spid=$(daemon_pid secondary)
t0=$(now_us)
kill -STOP "$spid" || fail "SIGSTOP"
at_exit kill -CONT "$spid"
detected "peer daemon not responding" "SIGSTOP" "$t0"
jq -e --argjson ko $KO '.silence_ms < $ko' <<<"$(last_failure)" >/dev/null ||
	fail "the kernel's answers should have kept the silence short: $(last_failure)"
assert_ge "$(status_json "$P" | jq .daemon.counters.peer_silent)" 1 "primary's peer_silent"
kill -CONT "$spid" || fail "SIGCONT"
reconnect "secondary continued"

log "the data: what the primary wrote through all that is on the secondary"
write_some
mirror_down
cmp -n $((4 << 20)) "$WORK/w.img" "$XM_SECONDARY_DISK" || fail "the secondary lacks the last write"
assert_disks_identical "after the failures"

log "--realtime: the loop runs SCHED_FIFO, and the pair mirrors as before"
attach_box secondary --realtime yes
attach_box primary --realtime yes
wait_until 5 is_connected "$P" || fail "no session with --realtime"
for box in primary secondary; do
	pol=$(chrt -p "$(daemon_pid "$box")") || fail "chrt -p"
	[[ $pol == *SCHED_FIFO* ]] || fail "$box with --realtime: $pol"
	assert_eq "$(status_json "$(box_if "$box")" | jq .daemon.loop.realtime)" true "$box: status loop.realtime"
done
write_some
mirror_down
assert_disks_identical "with --realtime"

log "--busy-poll 50: the loops poll before they sleep, the polls find work, the pair mirrors"
attach_box secondary --busy-poll 50
attach_box primary --busy-poll 50
wait_until 5 is_connected "$P" || fail "no session with --busy-poll"
write_some
mirror_down
for box in primary secondary; do
	hits=$(sed -n 's/.*busy polling: \([0-9]*\) polls found work.*/\1/p' "$WORK/$box.log")
	[ -n "$hits" ] || fail "$box: no busy polling report in its log: $(tail -3 "$WORK/$box.log")"
	log "  $box: $(grep -o 'busy polling: .*' "$WORK/$box.log")"
	assert_ge "$hits" 1 "$box: polls that found work"
done
assert_disks_identical "with --busy-poll"
echo "all checks passed"
