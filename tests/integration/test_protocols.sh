#!/usr/bin/env bash
# Description: replication protocols A, B and C each mirror an image identically and say which
# runs; when the secondary goes away the primary keeps serving writes, degraded, and counts the
# bytes the secondary misses.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
command -v nbdcopy >/dev/null || skip "nbdcopy missing (make deps)"
pair_up xmtr --disk-size 32M
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX

for proto in A B C; do
	log "protocol $proto"
	mirror_up --protocol "$proto"
	assert_eq "$(status_json "$P" | jq -r .daemon.replication.protocol)" "$proto" "primary runs $proto"
	assert_eq "$(status_json "$S" | jq -r .daemon.replication.protocol)" "$proto" "secondary runs $proto"
	head -c $((8 << 20)) /dev/urandom >"$work/in.img"
	nbdcopy "$work/in.img" "$(nbd_uri)" || fail "nbdcopy with protocol $proto"
	mirror_down
	cmp -n $((8 << 20)) "$work/in.img" "$XM_SECONDARY_DISK" || fail "protocol $proto: secondary differs"
	assert_disks_identical "protocol $proto"
done

log "degraded: the secondary detaches, writes go on"
mirror_up
"$XM" detach --dev "$S" || fail "detach secondary"
wait_until 2 sh -c "[ \"\$($XM status --dev $P --json | jq -r .devices[0].daemon.replication.state)\" = degraded ]" ||
	fail "primary did not notice the secondary left: $(status_json "$P" | jq -c .daemon.replication)"
head -c $((1 << 20)) /dev/urandom >"$work/late.img"
nbdcopy "$work/late.img" "$(nbd_uri)" || fail "a write while degraded failed"
r=$(status_json "$P" | jq .daemon.replication)
assert_ge "$(jq .out_of_sync_bytes <<<"$r")" $((1 << 20)) "degraded writes are counted out of sync"
assert_ge "$(jq .degraded_writes <<<"$r")" 1 "degraded writes"
# The secondary says goodbye (CLOSE), so the primary knows why without waiting for a timeout.
assert_eq "$(jq -r .reason <<<"$r")" "peer detached" "reason"
cmp -n $((1 << 20)) "$work/late.img" "$XM_PRIMARY_DISK" || fail "degraded write not on the primary"
"$XM" detach --dev "$P" || fail "detach primary"
echo "all checks passed"
