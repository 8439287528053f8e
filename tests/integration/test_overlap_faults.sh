#!/usr/bin/env bash
# Description: overlapping writes in flight at once (four fio jobs on the same 1 MiB, random
# offsets and sizes, 16 deep each) while the wire loses 3 % of the frames and reorders a quarter
# of them, both ways.  Overlapping writes wait for each other on the primary (overlap waits), the
# faults are repaired (retransmissions), and the secondary ends with exactly the primary's bytes,
# whichever write came last.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib-wire.sh"
require_root
require_cmd fio bpftool tc
pair_up l --disk-size 32M
wire_up
mirror_up

sessions=$(counter "$P" sessions)
waits0=$(counter "$P" overlap_waits)
retrans0=$(status_json "$P" | jq '.daemon.counters | .tx_retrans_rto + .tx_retrans_fast')
faults to_s 300 0 0 2500
faults to_p 300 0 0 2500
log "4 jobs x 16 deep over the same 1 MiB, under loss and reordering"
# No verify: the jobs overwrite each other on purpose, each 8 MiB in all over the same 1 MiB.
fio --name=overlap --ioengine=nbd --uri="$(nbd_uri)" --direct=1 --rw=randwrite --bsrange=4k-64k \
	--size=1M --io_size=8M --offset=4M --norandommap --randrepeat=0 --iodepth=16 --numjobs=4 \
	--group_reporting --output="$WORK/fio.log" || fail "fio: $(grep -m1 'err=' "$WORK/fio.log")"
faults to_s 0 0 0 0
faults to_p 0 0 0 0
d=$(status_json "$P" | jq -c --argjson r "$retrans0" \
	'.daemon.counters | {overlap_waits, writes, retrans: (.tx_retrans_rto + .tx_retrans_fast - $r)}')
log "  primary: $d; wire: to_s $(injected to_s), to_p $(injected to_p)"
assert_ge "$(($(counter "$P" overlap_waits) - waits0))" 100 "writes that waited for an overlapping one"
assert_ge "$(jq .retrans <<<"$d")" 1 "retransmissions"
assert_ge "$(injected to_s | jq .lost)" 1 "frames lost towards the secondary"
assert_ge "$(injected to_s | jq .released)" 1 "frames reordered towards the secondary"
# A session that ends on a busy box (issue 15) is not this test's subject: it resyncs.
log "  sessions started meanwhile: $(($(counter "$P" sessions) - sessions)), degraded writes: $(counter "$P" writes_degraded), last failure: $(status_json "$P" | jq -c .daemon.replication.last_failure)"
mirror_down
assert_disks_identical "after overlapping writes under loss and reordering"
echo "all checks passed"
