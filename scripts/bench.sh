#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: what a client of the primary's NBD export gets with protocol C, next to references
# measured in the same run on the same machine.  A benchmark, not a test: it fails only when
# something could not be measured, never because a number is low.
#
# Two jobs per target, both fio:
#   seq   1 MiB sequential writes, queue depth 16, time-bounded, one flush at the end
#         (end_fsync=1, counted in the runtime), so every target ends with its data durable.
#   lat   4 KiB random writes at queue depth 1, each followed by a flush (nbd: --fsync=1, an NBD
#         FLUSH; local disk: --fdatasync=1, an fdatasync through io_uring).
#
# What the latency columns mean:
#   w+f p50/p99  the write+flush cycle as the client sees it: one 4 KiB write at a random offset,
#                then a flush, timed together from before the write is sent until the flush's
#                reply has arrived.  fio cannot report this: it keeps the flush ("sync" in its
#                JSON) as a separate histogram and logs no per-I/O flush latency, and percentiles
#                of two histograms do not add.  So a 30-line loop over libnbd (the library
#                fio's nbd engine uses; pwrite + fdatasync on an O_DIRECT fd for the local disk)
#                times each cycle.  Its own overhead (Python, ctypes) is of the order of 10 us per
#                cycle, the same for every target.
#   fio write    fio's write "lat_ns": submit to completion of the write alone.  With protocol C
#                an NBD write completes only once it is durable on both boxes, so for xdpmirror
#                this holds nearly the whole cycle; for the others the durability cost sits in
#                the flush.
#   fio flush    fio's "sync" histogram ("lat_ns" in the JSON, but measured from issue to
#                completion, i.e. a clat) of the flush that follows each write.
#   fio mean     the job's runtime divided by its writes: the mean cycle including fio itself,
#                a cross-check for w+f.
#
# The references:
#   local disk   the primary's disk image itself, O_DIRECT through fio's io_uring engine, no
#                network and no mirror: the floor a mirror cannot beat.
#   nbdkit       a local-only NBD server (nbdkit's file plugin, cache=none, so writes leave the
#                page cache as O_DIRECT ones do) on the same image: the cost of NBD alone.
#                Skipped when nbdkit is not installed.
#
# Everything stays in build/bench/: fio's JSON (TAG-seq.json, TAG-lat.json), the cycle summary
# (TAG-cycle.json), both boxes' status before the seq job, between the jobs and at the end
# (xdpmirror-mtuN-status-0/1/2.json) and the printed table (table.txt).
# Environment: BENCH_MTUS (default "1500 9000"), BENCH_SEQ_SECS (4), BENCH_LAT_SECS (4),
# BENCH_DISK (512M).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
XM=$top/build/xdpmirror
PAIR=$top/scripts/pair-setup.sh
OUT=$top/build/bench
PREFIX=xmb
DIR=/var/tmp/xdpmirror-$PREFIX
MTUS=${BENCH_MTUS:-1500 9000}
SEQ_SECS=${BENCH_SEQ_SECS:-4}
LAT_SECS=${BENCH_LAT_SECS:-4}
DISK=${BENCH_DISK:-512M}
# The latency jobs write inside the first LAT_REGION bytes, the sequential one over the whole disk.
LAT_REGION=256M

die() {
	echo "bench: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
[ -x "$XM" ] || die "$XM missing (run 'make')"
for t in fio jq python3; do
	command -v $t >/dev/null || die "'$t' not found (run 'make deps')"
done

nbdkit_pid=
cleanup() {
	local rc=$?
	[ -z "$nbdkit_pid" ] || kill "$nbdkit_pid" 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		for f in "$DIR"/*.log; do
			[ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }
		done
		echo "bench: failed; fio output is in $OUT/" >&2
	fi
	"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

progress() { printf '  %-7s %s\n' BENCH "$*"; }

# fio_job NAME TARGET-OPTIONS...: runs fio, keeps its JSON in $OUT/NAME.json.
fio_job() {
	local name=$1
	shift
	fio --name="$name" --output-format=json --output="$OUT/$name.json" "$@" \
		>"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log" >&2; die "fio $name failed"; }
	[ "$(jq '.jobs[0].error' "$OUT/$name.json")" = 0 ] || die "fio $name: error $(jq '.jobs[0].error' "$OUT/$name.json")"
	[ -s "$OUT/$name.log" ] || rm -f "$OUT/$name.log"
}

# cycle NAME TARGET: the write+flush cycle, timed per cycle (see the top of this file).  TARGET is
# an NBD URI or a file, opened with O_DIRECT.  Writes a JSON summary to $OUT/NAME.json.
cycle() {
	python3 - "$2" "$(numfmt --from=iec "$LAT_REGION")" "$LAT_SECS" >"$OUT/$1.json" <<'EOF'
import ctypes, json, mmap, os, random, sys, time
target, region, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
warm = 0.5
buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
buf.write(os.urandom(4096))
if "://" in target:
    lib = ctypes.CDLL("libnbd.so.0")
    lib.nbd_create.restype = ctypes.c_void_p
    lib.nbd_connect_uri.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nbd_pwrite.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                               ctypes.c_uint64, ctypes.c_uint32]
    lib.nbd_flush.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.nbd_get_error.restype = ctypes.c_char_p
    h = lib.nbd_create()
    if not h or lib.nbd_connect_uri(h, target.encode()) == -1:
        sys.exit("cycle: %s" % lib.nbd_get_error().decode())
    addr = ctypes.addressof((ctypes.c_char * 4096).from_buffer(buf))
    def cycle(off):
        if lib.nbd_pwrite(h, addr, 4096, off, 0) == -1 or lib.nbd_flush(h, 0) == -1:
            sys.exit("cycle: %s" % lib.nbd_get_error().decode())
else:
    fd = os.open(target, os.O_WRONLY | os.O_DIRECT)
    def cycle(off):
        os.pwrite(fd, buf, off)
        os.fdatasync(fd)
rnd = random.Random(1)
clock = time.perf_counter_ns
lat = []
start = clock() + int(warm * 1e9)
end = start + int(secs * 1e9)
while True:
    t = clock()
    if t >= end:
        break
    cycle(rnd.randrange(region // 4096) * 4096)
    if t >= start:
        lat.append(clock() - t)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
print(json.dumps({"target": target, "cycles": len(lat), "mean_us": sum(lat) / len(lat) / 1000,
                  "p50_us": pct(50), "p99_us": pct(99), "max_us": lat[-1] / 1000}))
EOF
}

# measure TAG TITLE FIO-TARGET-OPTIONS CYCLE-TARGET: the three measurements of one target; adds a
# row to the table.  FIO-TARGET-OPTIONS is one word, split on spaces.  With SNAP_IF set (a running
# primary), its counters are saved before the seq job, between the jobs and after the last one.
ROWS=()
SNAP_IF=
measure() {
	local tag=$1 title=$2 target=$3 ctarget=$4 flush
	# shellcheck disable=SC2206 # split on purpose
	local t=($target)
	[[ $target == *ioengine=nbd* ]] && flush=--fsync=1 || flush=--fdatasync=1
	snap "$tag" 0
	progress "$title: seq write"
	fio_job "$tag-seq" "${t[@]}" --rw=write --bs=1M --iodepth=16 --time_based \
		--runtime="$SEQ_SECS" --end_fsync=1
	snap "$tag" 1
	progress "$title: 4k QD1 write+flush"
	fio_job "$tag-lat" "${t[@]}" --rw=randwrite --bs=4k --iodepth=1 "$flush" --size=$LAT_REGION \
		--ramp_time=0.5 --time_based --runtime="$LAT_SECS" --lat_percentiles=1
	cycle "$tag-cycle" "$ctarget" || die "$title: write+flush cycle failed"
	snap "$tag" 2
	ROWS+=("$tag|$title")
}

# snap TAG N: both boxes' status, plus the CPU seconds both daemons have used so far.
snap() {
	[ -n "$SNAP_IF" ] || return 0
	local f=$OUT/$1-status-$2.json cpu=0 pid
	"$XM" status --json >"$f.tmp"
	for pid in $(jq --arg p "$XM_PRIMARY_IF" --arg s "$XM_SECONDARY_IF" \
		'.devices[] | select(.dev == $p or .dev == $s) | .daemon.pid // empty' "$f.tmp"); do
		# utime + stime, fields 14 and 15 (the name in field 2 has no spaces here).
		cpu=$((cpu + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	jq --arg p "$XM_PRIMARY_IF" --arg s "$XM_SECONDARY_IF" --argjson cpu "$cpu" \
		--argjson hz "$(getconf CLK_TCK)" '{
			primary: (.devices[] | select(.dev == $p)),
			secondary: (.devices[] | select(.dev == $s)),
			daemons_cpu_s: ($cpu / $hz)}' "$f.tmp" >"$f"
	rm -f "$f.tmp"
}

# deltas TAG FROM TO: what the link's counters say about one phase, as one line; a second line
# when the mirror was not whole, because then the numbers are not all protocol C's.
deltas() {
	jq -rn --slurpfile a "$OUT/$1-status-$2.json" --slurpfile b "$OUT/$1-status-$3.json" '
		$a[0] as $x | $b[0] as $y |
		def d($k): ($y.primary.daemon.counters[$k] - $x.primary.daemon.counters[$k]);
		def sd($k): ($y.secondary.daemon.counters[$k] - $x.secondary.daemon.counters[$k]);
		def so($b; $k): ($y[$b].daemon.afxdp.socket[$k] - $x[$b].daemon.afxdp.socket[$k]);
		"retrans rto \(d("tx_retrans_rto")) fast \(d("tx_retrans_fast")) of \(d("tx_data")) DATA" +
		" (secondary got \(sd("rx_dup_done") + sd("rx_dup_inflight")) duplicates), window_full" +
		" \(d("window_full")), tx_ring_full \(d("tx_ring_full")), rx_dropped" +
		" \(so("primary"; "rx_dropped"))/\(so("secondary"; "rx_dropped")), commits" +
		" \(d("commits")) for \(d("commit_writes")) writes, daemons CPU" +
		" \($y.daemons_cpu_s - $x.daemons_cpu_s | . * 10 | round / 10) s" +
		(if d("peer_timeouts") + d("peer_stalls") + d("writes_degraded") + d("sessions") > 0
		    or $y.primary.daemon.replication.out_of_sync_bytes > 0 then
			"\n               WARNING: peer timeouts \(d("peer_timeouts")), stalls" +
			" \(d("peer_stalls")), new sessions \(d("sessions")), degraded writes" +
			" \(d("writes_degraded")), out of sync now" +
			" \($y.primary.daemon.replication.out_of_sync_bytes) bytes"
		 else "" end)'
}

# One row: the numbers from the JSON files, ratios against the floor row's, '|'-separated.
row() {
	local tag=$1 title=$2
	jq -rn --arg title "$title" \
		--slurpfile s "$OUT/$tag-seq.json" --slurpfile l "$OUT/$tag-lat.json" \
		--slurpfile c "$OUT/$tag-cycle.json" \
		--slurpfile fs "$OUT/local-seq.json" --slurpfile fc "$OUT/local-cycle.json" '
		def p($h; $p): ($h.percentile[$p] // 0) / 1000 | round | tostring;
		$s[0].jobs[0].write as $sw | $l[0].jobs[0] as $lj | $c[0] as $cy |
		[$title, ($sw.bw / 1024 | round), ($cy.p50_us | round), ($cy.p99_us | round),
		 p($lj.write.lat_ns; "50.000000") + "/" + p($lj.write.lat_ns; "99.000000"),
		 p($lj.sync.lat_ns; "50.000000") + "/" + p($lj.sync.lat_ns; "99.000000"),
		 ($lj.write.runtime * 1000 / $lj.write.total_ios | round),
		 $sw.bw / $fs[0].jobs[0].write.bw, $cy.p50_us / $fc[0].p50_us] | map(tostring) | join("|")'
}

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/table.txt
NOTES=()
first=1
for mtu in $MTUS; do
	progress "two boxes, MTU $mtu, disks $DISK (prefix $PREFIX)"
	"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
	"$PAIR" netns up --prefix $PREFIX --mtu "$mtu" --disk-size "$DISK" >/dev/null
	# shellcheck disable=SC1091
	source $DIR/pair.env

	if [ $first = 1 ]; then
		# The references use the primary's image before the daemon opens it.
		measure local "local disk (O_DIRECT, floor)" \
			"--ioengine=io_uring --direct=1 --filename=$XM_PRIMARY_DISK" "$XM_PRIMARY_DISK"
		if command -v nbdkit >/dev/null; then
			sock=$DIR/nbdkit.sock
			nbdkit -f -U "$sock" file file="$XM_PRIMARY_DISK" cache=none >"$DIR/nbdkit.log" 2>&1 &
			nbdkit_pid=$!
			for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
			[ -S "$sock" ] || die "nbdkit did not start: $(cat "$DIR/nbdkit.log")"
			measure nbdkit "nbdkit file, local NBD only" \
				"--ioengine=nbd --uri=nbd+unix:///?socket=$sock" "nbd+unix:///?socket=$sock"
			kill "$nbdkit_pid"
			wait "$nbdkit_pid" 2>/dev/null || true
			nbdkit_pid=
		else
			NOTES+=("nbdkit not installed: no local-only NBD row")
		fi
		first=0
	fi

	for box in secondary primary; do
		if [ $box = primary ]; then
			dev=$XM_PRIMARY_IF peer=$XM_SECONDARY_MAC disk=$XM_PRIMARY_DISK
		else
			dev=$XM_SECONDARY_IF peer=$XM_PRIMARY_MAC disk=$XM_SECONDARY_DISK
		fi
		"$PAIR" netns exec $box --prefix $PREFIX -- "$XM" attach --role $box --dev "$dev" \
			--peer "$peer" --disk "$disk" --protocol C >"$DIR/$box.log" 2>&1 &
	done
	for _ in $(seq 100); do
		[ "$("$XM" status --dev "$XM_PRIMARY_IF" --json 2>/dev/null |
			jq -r '.devices[0].daemon.replication.state')" = connected ] && break
		sleep 0.05
	done
	st=$("$XM" status --dev "$XM_PRIMARY_IF" --json | jq -c '.devices[0].daemon')
	[ "$(jq -r .replication.state <<<"$st")" = connected ] ||
		die "MTU $mtu: the primary did not connect to the secondary"
	tag=xdpmirror-mtu$mtu
	uri="nbd+unix:///?socket=/run/xdpmirror/$XM_PRIMARY_IF.sock"
	SNAP_IF=$XM_PRIMARY_IF
	measure "$tag" "xdpmirror C, MTU $mtu" "--ioengine=nbd --uri=$uri" "$uri"
	SNAP_IF=
	NOTES+=("MTU $mtu: AF_XDP $(jq -r .afxdp.mode <<<"$st") mode, durability $(jq -r .durability.mode <<<"$st"), state after the run: $(jq -r .primary.daemon.replication.state "$OUT/$tag-status-2.json")"
		"  seq:         $(deltas "$tag" 0 1)"
		"  write+flush: $(deltas "$tag" 1 2)")
	"$XM" detach --dev "$XM_PRIMARY_IF" >/dev/null
	"$XM" detach --dev "$XM_SECONDARY_IF" >/dev/null
	"$PAIR" netns down --prefix $PREFIX >/dev/null
done

{
	printf '\nxdpmirror bench: %s, %s CPUs, fio %s; protocol C; seq %ss, write+flush %ss\n\n' \
		"$(uname -r)" "$(nproc)" "$(fio --version | sed 's/^fio-//')" "$SEQ_SECS" "$LAT_SECS"
	fmt='%-30s %6s  %6s %6s  %11s %11s %8s  %6s %6s\n'
	# shellcheck disable=SC2059
	printf '%-30s %6s  %13s  %11s %11s %8s  %6s %6s\n' \
		"" "seq" "4k QD1 w+f" "fio write" "fio flush" "fio mean" "seq" "w+f"
	# shellcheck disable=SC2059
	printf "$fmt" "what" "MiB/s" "p50 us" "p99 us" "p50/p99 us" "p50/p99 us" "cycle us" "/floor" "/floor"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r -a c <<<"$(row "${r%%|*}" "${r#*|}")"
		# shellcheck disable=SC2059
		printf "$fmt" "${c[@]:0:7}" "$(printf '%.2fx' "${c[7]}")" "$(printf '%.1fx' "${c[8]}")"
	done
	echo
	echo "seq: 1 MiB writes at QD16 plus one flush at the end.  w+f: a 4 KiB write at QD1 then a"
	echo "flush, timed together per cycle by the client.  fio write/flush: fio's own histograms of"
	echo "the two halves (lat of the write, clat of the flush); fio mean cycle: runtime / writes."
	echo "/floor: ratio to the local disk row (throughput: higher is better; latency: lower is)."
	echo
	for n in "${NOTES[@]}"; do echo "$n"; done
} | tee "$OUT/table.txt"
