#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: xdpmirror next to the limits of the link and the disk and next to a TCP mirror built
# from stock QEMU parts, all measured in this one run on the same veth pair and the same disk
# images.  A benchmark, not a test: it fails only when something could not be measured, never
# because a number is low.  docs/performance.md explains every column and what limits us.
#
# What runs, in order (two boxes = two network namespaces joined by a veth pair):
#   link   build/tools/xm_linkperf: raw AF_XDP frames of the full MTU from one namespace to the
#          other through our XDP program, copy mode, as fast as one sender goes: no mirror over
#          this link can move more frames.  Its bytes/s are counted as the mirror payload those
#          frames could carry (max_payload per frame), so it compares with the MiB/s rows.
#          Then its round trip: xm_linkperf ping/pong on the same veth, one frame out and a bare
#          header back at QD1 (a mirror's write and its ack), BENCH_RTT_COUNT round trips each:
#          62-byte frames with both sides asleep in poll() between frames as the daemon is
#          (link.rtt_us, the one the targets use), the same spinning on the rings (the wakeups'
#          share), and DATA frames carrying 4 KiB (the wire cost of a 4 KiB write; below MTU
#          4144 the largest payload one frame holds, link.rtt_data_payload).
#   disk   fio, io_uring, O_DIRECT, on the primary's image: no mirror can write faster.  And
#          disk2: the cycle (below) on the primary's image while it runs on the secondary's too.
#   peer   qemu-storage-daemon: file node + nbd node over TCP to qemu-nbd serving the secondary's
#          image, blockdev-mirror sync=full copy-mode=write-blocking, NBD export on a Unix socket
#          (scripts/bench-peer.sh).  Measured after the job is ready.  Its default: qemu-nbd
#          --cache=none (PEER_SECONDARY_CACHE), where the secondary's image never sees a flush.
#   peerds the same peer with --cache=directsync on the secondary (O_DIRECT|O_DSYNC): every
#          write durable there before it is acknowledged, the durability of protocol C.
#   xdpmirror  protocol C, through its NBD export.
# Workloads (fio's nbd engine for peer and xdpmirror):
#   seq    1 MiB sequential writes, QD16, time-bounded, end_fsync=1 (the final flush counts)
#   qd1    4 KiB random writes, QD1, a flush after each (nbd: --fsync=1, an NBD FLUSH; disk:
#          --fdatasync=1); IOPS from fio
#   cycle  the same write+flush pair timed together per cycle by the client, for p50, p99 and
#          p99.9: fio keeps write and flush in separate histograms, and percentiles of two
#          histograms do not add.  A 30-line loop over libnbd (the library fio's nbd engine
#          uses) times BENCH_CYCLES of them (10000: p99.9 rests on the 10 slowest), or as many
#          as fit in BENCH_CYCLE_SECS (60); SYS.cycles says how many.
#   qd32   4 KiB random writes, QD32, time-bounded, end_fsync=1; IOPS
# and per system: CPU seconds per GiB written in seq (the mirror's daemons on both boxes; and the
# whole machine, which adds the client and the kernel's softirq work), peak RSS of the daemons,
# the initial full sync, a resync after a disconnect, and a byte comparison of both images.
#
# Results in bench-results/ (override with BENCH_OUT): numbers.txt (every number, key=value),
# table.txt, results.csv, bench.png, fio's JSON and each system's logs.  Environment: BENCH_MTU
# (9000), BENCH_DISK (1G), BENCH_SECS (4 per workload), BENCH_DIRTY (512M written while the
# secondary is away), BENCH_CYCLES (10000), BENCH_CYCLE_SECS (60), BENCH_RTT_COUNT (20000),
# BENCH_PREFIX (xmb: the pair's namespaces, interfaces and /var/tmp/xdpmirror-PREFIX), BENCH_PIN
# (0; see below).
#
# Two boxes on one machine share its CPUs, and unpinned the scheduler often packs both boxes'
# daemons and the client on one CPU, which two real boxes never do.  With BENCH_PIN=1 every system
# runs as two boxes of one CPU each would: the primary box (its daemon or qemu-storage-daemon, the
# client: fio and the cycle loop, the link sender, the disk row's fio) on CPU 0, the secondary box
# (its daemon or qemu-nbd, the link receiver) on CPU 1.  What the kernel does on behalf of a box
# is not pinned: veth runs the receiver's NAPI in the sender's softirq, on the sender's CPU, and
# the disk's completions run where the host's interrupt lands.  Off by default: on a 2-CPU machine
# one CPU per box starves the throughput rows (the client and the primary's daemon share one CPU),
# the peer's most (docs/performance.md).  numbers.txt records it as pin=.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
XM=$top/build/xdpmirror
LINKPERF=$top/build/tools/xm_linkperf
PAIR=$top/scripts/pair-setup.sh
OUT=${BENCH_OUT:-$top/bench-results}
PREFIX=${BENCH_PREFIX:-xmb}
DIR=/var/tmp/xdpmirror-$PREFIX
MTU=${BENCH_MTU:-9000}
DISK=${BENCH_DISK:-1G}
SECS=${BENCH_SECS:-4}
DIRTY=${BENCH_DIRTY:-512M}
CYCLES=${BENCH_CYCLES:-10000}
CYCLE_SECS=${BENCH_CYCLE_SECS:-60}
RTT_COUNT=${BENCH_RTT_COUNT:-20000}
CPUS=$(nproc) # before any pinning: nproc counts the CPUs this process may run on
PIN=${BENCH_PIN:-0}
LAT_REGION=256M # the 4 KiB jobs write inside the first LAT_REGION bytes

die() {
	echo "bench: $*" >&2
	exit 1
}
progress() { printf '  %-7s %s\n' BENCH "$*"; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP)"
[ -x "$XM" ] && [ -x "$LINKPERF" ] || die "build first ('make bench' builds what it needs)"
for t in fio jq python3 qemu-storage-daemon qemu-nbd gnuplot cmp; do
	command -v $t >/dev/null || die "'$t' not found (run 'make bench-deps')"
done
# shellcheck source=scripts/bench-peer.sh
source "$top/scripts/bench-peer.sh"

# ON_SECONDARY_CPU: the prefix for what runs on the secondary box (BENCH_PIN, above).  The bench
# itself, and so everything else it starts, stays on CPU 0.
ON_SECONDARY_CPU=()
if [ "$PIN" = 1 ]; then
	[ "$CPUS" -ge 2 ] || die "BENCH_PIN=1 needs 2 CPUs"
	taskset -p -c 0 $$ >/dev/null || die "cannot pin the bench to CPU 0"
	ON_SECONDARY_CPU=(taskset -c 1)
	PEER_SECONDARY_PREFIX=(taskset -c 1)
fi

bg_pids=()
cleanup() {
	local rc=$?
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	peer_down >/dev/null 2>&1 || true
	if [ $rc -ne 0 ]; then
		for f in "$OUT"/*.log; do
			[ -s "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }
		done
		echo "bench: failed; everything measured so far is in $OUT/" >&2
	fi
	"$PAIR" netns down --prefix "$PREFIX" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- measuring helpers ----------------------------------------------------------------------

# R[key]=value: every number the table, the CSV and the plot use.
declare -A R

# cpu_ticks PID...: user + system ticks of these processes, all their threads (io_uring workers
# included: they are threads of the process).
cpu_ticks() {
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $t
}
# busy_ticks: ticks the whole machine spent not idle (iowait counts as idle).
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# peak_rss_mib PID...: sum of VmHWM.
peak_rss_mib() {
	local k=0 p
	for p in "$@"; do
		k=$((k + $(awk '/^VmHWM/{print $2}' "/proc/$p/status")))
	done
	echo "scale=1; $k / 1024" | bc
}
HZ=$(getconf CLK_TCK)

# fio_job NAME OPTIONS...: fio's JSON in $OUT/NAME.json; fails on any fio error.
fio_job() {
	local name=$1
	shift
	fio --name="$name" --output-format=json --output="$OUT/$name.json" "$@" \
		>"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log" >&2; die "fio $name failed"; }
	[ "$(jq '.jobs[0].error' "$OUT/$name.json")" = 0 ] ||
		die "fio $name: error $(jq '.jobs[0].error' "$OUT/$name.json")"
	[ -s "$OUT/$name.log" ] || rm -f "$OUT/$name.log"
}

# cycle NAME TARGET: write+flush cycles timed one by one (see the top); TARGET is an NBD URI or
# a file (O_DIRECT + fdatasync).  JSON summary in $OUT/NAME.json.
cycle() {
	python3 - "$2" "$(numfmt --from=iec "$LAT_REGION")" "$CYCLES" "$CYCLE_SECS" \
		>"$OUT/$1.json" <<'EOF'
import ctypes, json, mmap, os, random, sys, time
target, region, count, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
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
while len(lat) < count:
    t = clock()
    if t >= end:
        break
    cycle(rnd.randrange(region // 4096) * 4096)
    if t >= start:
        lat.append(clock() - t)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
print(json.dumps({"target": target, "cycles": len(lat), "mean_us": sum(lat) / len(lat) / 1000,
                  "p50_us": pct(50), "p99_us": pct(99), "p999_us": pct(99.9),
                  "max_us": lat[-1] / 1000}))
EOF
}

# workloads SYS PIDS FIO-TARGET... : the four workloads against one system; R[SYS.*] filled.
# PIDS (space-separated, may be empty) are the daemons whose CPU and memory count.
workloads() {
	local sys=$1 pids=$2 c0 b0 c1 b1 gib flush=--fdatasync=1 ctarget='' a
	shift 2
	# shellcheck disable=SC2206 # pids split on purpose
	local pa=($pids)
	for a in "$@"; do
		case $a in
		--uri=*) ctarget=${a#--uri=} flush=--fsync=1 ;;
		--filename=*) ctarget=${a#--filename=} ;;
		esac
	done
	progress "$sys: seq 1M QD16"
	c0=$(cpu_ticks "${pa[@]}")
	b0=$(busy_ticks)
	fio_job "$sys-seq" "$@" --rw=write --bs=1M --iodepth=16 --time_based --runtime="$SECS" \
		--end_fsync=1
	c1=$(cpu_ticks "${pa[@]}")
	b1=$(busy_ticks)
	R[$sys.seq]=$(jq '.jobs[0].write.bw / 1024 | round' "$OUT/$sys-seq.json")
	gib=$(jq '.jobs[0].write.io_bytes / 1073741824' "$OUT/$sys-seq.json")
	if [ ${#pa[@]} -gt 0 ]; then
		R[$sys.cpu]=$(echo "scale=2; ($c1 - $c0) / $HZ / $gib" | bc)
	fi
	R[$sys.syscpu]=$(echo "scale=2; ($b1 - $b0) / $HZ / $gib" | bc)
	progress "$sys: 4k QD1 write+flush"
	fio_job "$sys-qd1" "$@" --rw=randwrite --bs=4k --iodepth=1 "$flush" --size=$LAT_REGION \
		--ramp_time=0.5 --time_based --runtime="$SECS"
	R[$sys.qd1]=$(jq '.jobs[0].write.iops | round' "$OUT/$sys-qd1.json")
	cycle "$sys-cycle" "$ctarget" || die "$sys: write+flush cycle failed"
	R[$sys.p50]=$(jq '.p50_us | round' "$OUT/$sys-cycle.json")
	R[$sys.p99]=$(jq '.p99_us | round' "$OUT/$sys-cycle.json")
	R[$sys.p999]=$(jq '.p999_us | round' "$OUT/$sys-cycle.json")
	R[$sys.cycles]=$(jq '.cycles' "$OUT/$sys-cycle.json")
	[ "${R[$sys.cycles]}" -ge "$CYCLES" ] ||
		progress "$sys: only ${R[$sys.cycles]} of $CYCLES cycles in ${CYCLE_SECS}s"
	progress "$sys: 4k QD32 random writes"
	fio_job "$sys-qd32" "$@" --rw=randwrite --bs=4k --iodepth=32 --size=$LAT_REGION \
		--ramp_time=0.5 --time_based --runtime="$SECS" --end_fsync=1
	R[$sys.qd32]=$(jq '.jobs[0].write.iops | round' "$OUT/$sys-qd32.json")
	if [ ${#pa[@]} -gt 0 ]; then
		R[$sys.rss]=$(peak_rss_mib "${pa[@]}")
	fi
}

# ---- the pair -------------------------------------------------------------------------------

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/table.txt "$OUT"/results.csv "$OUT"/bench.png
progress "two boxes, MTU $MTU, disks $DISK (prefix $PREFIX)"
"$PAIR" netns down --prefix "$PREFIX" >/dev/null 2>&1 || true
"$PAIR" netns up --prefix "$PREFIX" --mtu "$MTU" --disk-size "$DISK" >/dev/null
# shellcheck disable=SC1091
source "$DIR/pair.env"
# Every frame tagged with the pair's key, as users run it (docs/protocol.md §14).
BENCH_AUTH=(--auth-key "$XM_AUTH_KEY")
# Fully allocated images: a sparse file's first write to a block allocates it, and the first
# system to run would pay for that.  The primary holds random data for the initial syncs.
dd if=/dev/urandom of="$XM_PRIMARY_DISK" bs=1M count=$((XM_DISK_SIZE >> 20)) conv=notrunc \
	status=none
dd if=/dev/zero of="$XM_SECONDARY_DISK" bs=1M count=$((XM_DISK_SIZE >> 20)) conv=notrunc \
	status=none
sync

# ---- link ceiling ---------------------------------------------------------------------------

progress "link: raw AF_XDP frames, MTU $MTU, ${SECS}s"
"$PAIR" netns exec secondary --prefix "$PREFIX" -- "${ON_SECONDARY_CPU[@]}" "$LINKPERF" rx --dev "$XM_SECONDARY_IF" \
	--secs "$SECS" >"$OUT/link-rx.json" 2>"$OUT/link-rx.log" &
rx_pid=$!
bg_pids+=("$rx_pid")
sleep 0.5 # the receiver attaches its program and binds first
"$PAIR" netns exec primary --prefix "$PREFIX" -- "$LINKPERF" tx --dev "$XM_PRIMARY_IF" \
	--dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" --secs "$((SECS + 1))" \
	>"$OUT/link-tx.json" 2>"$OUT/link-tx.log" || die "link: sender failed"
wait "$rx_pid" || die "link: receiver failed"
bg_pids=()
R[link.fps]=$(jq '.fps | round' "$OUT/link-rx.json")
R[link.bps]=$(jq '.bytes_per_s | round' "$OUT/link-rx.json")
R[link.frame]=$(jq '.frame_len' "$OUT/link-rx.json")
R[link.mode]=$(jq -r '.mode' "$OUT/link-rx.json")

# link_rtt NAME [PING-ARGS...]: pong on the secondary, ping from the primary, R[link.NAME_*].
link_rtt() {
	local name=$1 pong_args=() pong_pid
	shift
	[[ " $* " == *" --spin "* ]] && pong_args=(--spin)
	"$PAIR" netns exec secondary --prefix "$PREFIX" -- "${ON_SECONDARY_CPU[@]}" "$LINKPERF" pong --dev "$XM_SECONDARY_IF" \
		--peer "$XM_PRIMARY_MAC" --secs 120 "${pong_args[@]}" >"$OUT/link-$name-pong.json" \
		2>"$OUT/link-$name-pong.log" &
	pong_pid=$!
	bg_pids+=("$pong_pid")
	# ping repeats its first frame until pong has attached and answers.
	"$PAIR" netns exec primary --prefix "$PREFIX" -- "$LINKPERF" ping --dev "$XM_PRIMARY_IF" \
		--dst "$XM_SECONDARY_MAC" --count "$RTT_COUNT" --secs 100 "$@" \
		>"$OUT/link-$name.json" 2>"$OUT/link-$name.log" || die "link $name: ping failed"
	wait "$pong_pid" || die "link $name: pong failed"
	bg_pids=()
	R[link.${name}_us]=$(jq '.p50_us * 10 | round / 10' "$OUT/link-$name.json")
	R[link.${name}_p99_us]=$(jq '.p99_us * 10 | round / 10' "$OUT/link-$name.json")
	R[link.${name}_p999_us]=$(jq '.p999_us * 10 | round / 10' "$OUT/link-$name.json")
	R[link.${name}_count]=$(jq '.round_trips' "$OUT/link-$name.json")
	R[link.${name}_lost]=$(jq '.lost' "$OUT/link-$name.json")
	[ -s "$OUT/link-$name.log" ] || rm -f "$OUT/link-$name.log"
	[ -s "$OUT/link-$name-pong.log" ] || rm -f "$OUT/link-$name-pong.log"
}
R[link.rtt_data_payload]=$((MTU - 48 < 4096 ? MTU - 48 : 4096)) # 48: the mirror header
progress "link: round trip at QD1, AF_XDP ping-pong, $RTT_COUNT each: asleep, spinning, DATA"
link_rtt rtt
link_rtt rtt_spin --spin
link_rtt rtt_data --payload "${R[link.rtt_data_payload]}"

# ---- disk ceiling ---------------------------------------------------------------------------

workloads disk "" --ioengine=io_uring --direct=1 --filename="$XM_PRIMARY_DISK"
# Both boxes' images live on this machine's one virtual disk, so a mirror's two write+fdatasync
# run on it at once, which two real boxes never do.  disk2: the cycle on the primary's image while
# the same cycle runs on the secondary's, as context for the floor (the targets keep the disk row).
progress "disk: write+flush cycles on both images at once (they share one virtual disk)"
cycle disk2-secondary "$XM_SECONDARY_DISK" &
bg_pids+=($!)
cycle disk2 "$XM_PRIMARY_DISK" || die "disk2: write+flush cycle failed"
wait "${bg_pids[@]}" || die "disk2: write+flush cycle on the secondary's image failed"
bg_pids=()
for k in p50 p99 p999; do R[disk2.$k]=$(jq ".${k}_us | round" "$OUT/disk2.json"); done

# ---- the peer -------------------------------------------------------------------------------

# peer_row SYS CACHE: the peer with qemu-nbd --cache=CACHE on the secondary, all workloads.
peer_row() {
	local sys=$1
	PEER_SECONDARY_CACHE=$2
	R[$sys.cache]=$2
	progress "$sys: qemu-storage-daemon + qemu-nbd (cache=$2) over TCP, initial full mirror"
	peer_up "$OUT/$sys" || die "$sys: the peer did not start"
	R[$sys.fullsync]=$(echo "scale=0; $PEER_SYNC_BYTES / $PEER_SYNC_SECS / 1048576" | bc)
	workloads "$sys" "$PEER_PIDS" --ioengine=nbd --uri="$PEER_URI"
}
peer_row peer "${PEER_SECONDARY_CACHE:-none}"
progress "peer: resync after a disconnect (a new full mirror: QEMU keeps no dirty map here)"
peer_resync || die "peer resync failed"
R[peer.resync]=$(echo "scale=0; $PEER_RESYNC_BYTES / $PEER_RESYNC_SECS / 1048576" | bc)
R[peer.resync_bytes]=$PEER_RESYNC_BYTES
peer_down
if peer_verify; then R[peer.equal]=yes; else R[peer.equal]=NO; fi
# Its resync is the same new full mirror as the initial sync: not measured twice.
peer_row peerds directsync
peer_down
if peer_verify; then R[peerds.equal]=yes; else R[peerds.equal]=NO; fi

# ---- xdpmirror ------------------------------------------------------------------------------

# attach BOX [ARGS...]: starts one box's daemon in its namespace.
attach() {
	local box=$1 dev peer disk cpu=()
	shift
	if [ "$box" = primary ]; then
		dev=$XM_PRIMARY_IF peer=$XM_SECONDARY_MAC disk=$XM_PRIMARY_DISK
	else
		dev=$XM_SECONDARY_IF peer=$XM_PRIMARY_MAC disk=$XM_SECONDARY_DISK
		cpu=("${ON_SECONDARY_CPU[@]}")
	fi
	"$PAIR" netns exec "$box" --prefix "$PREFIX" -- "${cpu[@]}" "$XM" attach --role "$box" --dev "$dev" \
		--peer "$peer" --disk "$disk" --meta "$DIR/$box.meta" --protocol C \
		"${BENCH_AUTH[@]}" "$@" \
		>>"$OUT/xdpmirror-$box.log" 2>&1 &
}
pstatus() { "$XM" status --dev "$XM_PRIMARY_IF" --json | jq -c '.devices[0].daemon'; }
# wait_in_sync SECS: until the primary says in_sync.
wait_in_sync() {
	local i
	for ((i = 0; i < $1 * 50; i++)); do
		[ "$(pstatus 2>/dev/null | jq -r .replication.sync 2>/dev/null)" = in_sync ] && return 0
		sleep 0.02
	done
	return 1
}

progress "xdpmirror: attach both boxes, initial full sync"
rm -f "$DIR"/*.meta
attach secondary
attach primary --initial-sync full
wait_in_sync 120 || die "xdpmirror: no initial sync: $(pstatus)"
st=$(pstatus)
R[xdpmirror.fullsync]=$(jq '.replication.resync.last.rate_bytes_per_s / 1048576 | round' <<<"$st")
R[xdpmirror.mode]=$(jq -r .afxdp.mode <<<"$st")
R[xdpmirror.payload]=$(jq .replication.max_payload <<<"$st")
xm_pids="$(jq .pid <<<"$st") $("$XM" status --dev "$XM_SECONDARY_IF" --json | jq '.devices[0].daemon.pid')"
"$XM" status --json >"$OUT/xdpmirror-status-0.json"
workloads xdpmirror "$xm_pids" --ioengine=nbd \
	--uri="nbd+unix:///?socket=/run/xdpmirror/$XM_PRIMARY_IF.sock"
"$XM" status --json >"$OUT/xdpmirror-status-1.json"

progress "xdpmirror: resync after a disconnect ($DIRTY written while the secondary is away)"
"$XM" detach --dev "$XM_SECONDARY_IF" >/dev/null
fio_job xdpmirror-dirty --ioengine=nbd --uri="nbd+unix:///?socket=/run/xdpmirror/$XM_PRIMARY_IF.sock" \
	--rw=write --bs=1M --iodepth=16 --size="$DIRTY" --offset=0
attach secondary
wait_in_sync 120 || die "xdpmirror: no resync: $(pstatus)"
st=$(pstatus)
R[xdpmirror.resync]=$(jq '.replication.resync.last.rate_bytes_per_s / 1048576 | round' <<<"$st")
R[xdpmirror.resync_bytes]=$(jq '.replication.resync.last.bytes' <<<"$st")
"$XM" status --json >"$OUT/xdpmirror-status-2.json"
"$XM" detach --dev "$XM_PRIMARY_IF" >/dev/null
"$XM" detach --dev "$XM_SECONDARY_IF" >/dev/null
if cmp -s "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK"; then R[xdpmirror.equal]=yes; else R[xdpmirror.equal]=NO; fi

# The cost of authentication (docs/protocol.md §14): the same seq workload on the same pair,
# frames in clear with their CRC32C (--no-auth), against the tagged run above.
progress "xdpmirror --no-auth: seq 1M QD16, for the cost of the tags"
BENCH_AUTH=(--no-auth)
attach secondary
attach primary
wait_in_sync 120 || die "xdpmirror --no-auth: not in sync: $(pstatus)"
st=$(pstatus)
noauth_pids="$(jq .pid <<<"$st") $("$XM" status --dev "$XM_SECONDARY_IF" --json | jq '.devices[0].daemon.pid')"
# shellcheck disable=SC2206 # pids split on purpose
na=($noauth_pids)
c0=$(cpu_ticks "${na[@]}")
fio_job noauth-seq --ioengine=nbd --uri="nbd+unix:///?socket=/run/xdpmirror/$XM_PRIMARY_IF.sock" \
	--rw=write --bs=1M --iodepth=16 --time_based --runtime="$SECS" --end_fsync=1
c1=$(cpu_ticks "${na[@]}")
R[noauth.seq]=$(jq '.jobs[0].write.bw / 1024 | round' "$OUT/noauth-seq.json")
gib=$(jq '.jobs[0].write.io_bytes / 1073741824' "$OUT/noauth-seq.json")
R[noauth.cpu]=$(echo "scale=2; ($c1 - $c0) / $HZ / $gib" | bc)
"$XM" detach --dev "$XM_PRIMARY_IF" >/dev/null
"$XM" detach --dev "$XM_SECONDARY_IF" >/dev/null

# ---- the report -----------------------------------------------------------------------------

# The link ceiling in the units of the other rows: payload bytes its frames could carry.
R[link.seq]=$((${R[link.fps]} * ${R[xdpmirror.payload]} / 1048576))
R[link.resync]=${R[link.seq]}
R[kernel]=$(uname -r)
R[cpus]=$CPUS
R[pin]=$PIN
R[fio]=$(fio --version | sed 's/^fio-//')
R[mtu]=$MTU
R[disk_size]=$DISK
R[secs]=$SECS
R[dirty]=$DIRTY
R[cycles_asked]=$CYCLES
for k in "${!R[@]}"; do echo "$k=${R[$k]}"; done | sort >"$OUT/numbers.txt"
"$top/scripts/bench-report.py" "$OUT" | tee "$OUT/table.txt"
