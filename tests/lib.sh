# SPDX-License-Identifier: GPL-2.0
# Helpers for integration tests: a simulated pair, daemons, counters, waits, assertions and the
# clean-up of everything a test made.  Source it.
#
# Names: every run has its own id (XM_RUN, three characters, set by tests/run.sh or chosen here)
# and every test its own code, so a test's pair is "xm<run><code>" (namespaces xm<run><code>-*,
# interfaces xm<run><code>p0/s0, files in /var/tmp/xdpmirror-xm<run><code>): two runs on one
# machine never touch each other's namespaces, pins, mounts or loop devices.
set -u
set -o pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XM=$TOP/build/xdpmirror
PAIR=$TOP/scripts/pair-setup.sh
TOOLS=$TOP/build/tools
# Python with the distribution's modules (libnbd's bindings), whatever python3 is first in PATH.
PY=/usr/bin/python3
NBD_OPS="$PY $TOP/tests/tools/nbd_ops.py"

# ---- pass, fail, skip ------------------------------------------------------------------------

# XM_TEST_REQUIRE_ALL=1 (.ci/run sets it): a test that cannot run here fails instead of skipping.
require_all() { [ -n "${XM_TEST_REQUIRE_ALL:-}" ] && [ "${XM_TEST_REQUIRE_ALL}" != 0 ]; }
skip() {
	if require_all; then
		echo "FAIL: required test cannot run here (XM_TEST_REQUIRE_ALL): $*" >&2
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "-- $*"; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }
# require_cmd CMD...: each command is installed (make deps installs them all).
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "$c missing (make deps)"
	done
}
# require_nbdkit_filters FILTER...: nbdkit and these filters are installed.
require_nbdkit_filters() {
	local f
	require_cmd nbdkit
	for f in "$@"; do
		nbdkit --filter="$f" null --dump-plugin >/dev/null 2>&1 ||
			skip "nbdkit's $f filter missing (make deps)"
	done
}
require_fuse() {
	require_cmd nbdfuse fusermount3 losetup
	[ -c /dev/fuse ] || skip "no /dev/fuse"
}
require_nbd_ops() { $PY -c 'import nbd' 2>/dev/null || skip "libnbd's Python bindings missing (make deps)"; }

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
assert_ge() { [ "$1" -ge "$2" ] || fail "$3: expected >= $2, got $1"; }
assert_le() { [ "$1" -le "$2" ] || fail "$3: expected <= $2, got $1"; }

# ---- time and waiting ------------------------------------------------------------------------

# now_us: microseconds since the epoch (EPOCHREALTIME always has six decimals).
now_us() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t)); }
# secs_since START_US: seconds since then, two decimals.
secs_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }
ms_since() { echo $((($(now_us) - $1) / 1000)); }
# to_us SECONDS: "2", "0.5" or "1.25" in microseconds.
to_us() {
	local s=$1 i f
	i=${s%%.*} f=0
	[[ $s == *.* ]] && f=${s#*.}000000 && f=${f:0:6}
	echo $((10#${i:-0} * 1000000 + 10#$f))
}

# wait_until SECONDS CMD...: runs CMD every 20 ms until it succeeds; fails after SECONDS (which
# may have decimals).  CMD is run as given: use a function for anything that must be re-read.
wait_until() {
	local deadline=$(($(now_us) + $(to_us "$1")))
	shift
	until "$@"; do
		[ "$(now_us)" -ge "$deadline" ] && return 1
		sleep 0.02
	done
}

# ---- processes, mounts and loop devices ------------------------------------------------------

# running PID: the process exists and is not a zombie.
running() {
	local st
	[ -n "$1" ] || return 1
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $st != Z* ]]
}
gone() { ! running "$1"; }

# kill_wait PID: kill -9 and wait until it is gone (reaped, when it is this shell's child).
kill_wait() {
	kill -9 "$1" 2>/dev/null
	wait_until 5 gone "$1" || fail "process $1 survived kill -9"
	wait "$1" 2>/dev/null
	return 0
}

# Background processes a test starts: workers (writers, clients) stop before anything is
# unmounted; servers (nbdkit, nbdfuse) after.  pair_down stops what is still running.
XM_WORKER_PIDS=() XM_SERVER_PIDS=()
track_worker() { XM_WORKER_PIDS+=("$1"); }
track_server() { XM_SERVER_PIDS+=("$1"); }

# stop_pids PID...: SIGTERM, up to 3 s, then SIGKILL; reaps this shell's children.
stop_pids() {
	local p
	for p in "$@"; do running "$p" && kill "$p" 2>/dev/null; done
	for p in "$@"; do
		wait_until 3 gone "$p" || kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

# is_mounted DIR: also true for a FUSE mount whose server died (stat fails there).
is_mounted() { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# mounts_under DIR: mount points at or below DIR, deepest first, with their filesystem type.
mounts_under() {
	awk -v d="$1" '{ for (i = 7; $i != "-"; i++); if ($5 == d || index($5, d "/") == 1) print length($5), $5, $(i + 1) }' \
		/proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# loops_under DIR: loop devices whose backing file lies below DIR.
loops_under() {
	losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v d="$1/" 'index($2, d) == 1 { print $1 }'
}

# unmount_all_under DIR: filesystems, then loop devices, then FUSE mounts; each may be dead.
unmount_all_under() {
	local dir=$1 mnt type dev
	while read -r mnt type; do
		[[ $type == fuse* ]] && continue
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	done < <(mounts_under "$dir")
	for dev in $(loops_under "$dir"); do
		losetup -d "$dev" 2>/dev/null
	done
	while read -r mnt type; do
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null ||
			umount -l "$mnt" 2>/dev/null
	done < <(mounts_under "$dir")
	return 0
}

# nbd_stack_up DIR URI [losetup options]: nbdfuse serves the export at URI as DIR/fuse/nbd and a
# loop device sits on that file; DIR/mnt is there for a mount.  Sets STACK_PID (nbdfuse) and
# STACK_LOOP.  nbdfuse (libnbd 1.14) may die of an assertion (in_flight >= 1) when its server goes
# away with writes in flight: that is the client, not xdpmirror (its log is DIR/nbdfuse.log).
nbd_stack_up() {
	local dir=$1 uri=$2
	shift 2
	mkdir -p "$dir/fuse" "$dir/mnt"
	nbdfuse "$dir/fuse" "$uri" 2>>"$dir/nbdfuse.log" &
	STACK_PID=$!
	track_server "$STACK_PID"
	wait_until 10 test -e "$dir/fuse/nbd" || fail "nbdfuse: $dir/fuse/nbd did not appear"
	STACK_LOOP=$(losetup -f --show "$@" "$dir/fuse/nbd") || fail "losetup on $dir/fuse/nbd"
}

# nbd_stack_down DIR PID: unmounts what is below DIR, frees the loop device, ends the FUSE mount
# and waits for nbdfuse (PID) to exit; a dead export underneath is fine.
# Returns nbdfuse's exit status (137 when it had to be killed).
nbd_stack_down() {
	unmount_all_under "$1"
	[ -n "${2:-}" ] || return 0
	if ! wait_until 5 gone "$2"; then
		kill -9 "$2" 2>/dev/null
		wait "$2" 2>/dev/null
		return 137
	fi
	wait "$2" 2>/dev/null
}

# fuse_disk NAME IMAGE [--filter=F...] [KEY=VALUE...]: IMAGE served by nbdkit's file plugin through
# the filters, mounted by nbdfuse as $WORK/NAME/fuse/nbd (sets FUSE_DISK): a disk the test can
# slow down (delay), stall (pause) or fail (error).  Its control files are in $WORK/NAME.  Such
# a file wants 4 KiB direct I/O: pair_up with --mtu 9000, so a frame carries whole blocks.
fuse_disk() {
	local name=$1 image=$2 dir=$WORK/$1 a filters=() params=()
	shift 2
	for a in "$@"; do
		case $a in
		--filter=*) filters+=("$a") ;;
		*) params+=("$a") ;;
		esac
	done
	mkdir -p "$dir/fuse"
	nbdkit -f -U "$dir/nbdkit.sock" "${filters[@]}" file "$image" "${params[@]}" \
		2>"$dir/nbdkit.log" &
	track_server $!
	wait_until 5 test -S "$dir/nbdkit.sock" || fail "nbdkit for $name did not start: $(cat "$dir/nbdkit.log")"
	nbdfuse "$dir/fuse" "nbd+unix:///?socket=$dir/nbdkit.sock" 2>"$dir/nbdfuse.log" &
	track_server $!
	wait_until 5 test -e "$dir/fuse/nbd" || fail "nbdfuse for $name did not start: $(cat "$dir/nbdfuse.log")"
	FUSE_DISK=$dir/fuse/nbd
}

# ---- the pair --------------------------------------------------------------------------------

if [ -z "${XM_RUN:-}" ]; then
	# A test run on its own picks a run id nobody uses.
	_chars=abcdefghijklmnopqrstuvwxyz0123456789
	for _ in $(seq 50); do
		XM_RUN=$((RANDOM % 10))${_chars:RANDOM % 36:1}${_chars:RANDOM % 36:1}
		compgen -G "/run/netns/xm$XM_RUN*" >/dev/null || compgen -G "/var/tmp/xdpmirror-xm$XM_RUN*" >/dev/null || break
	done
	export XM_RUN
fi

XM_TEST_PREFIX='' WORK=''
XM_CLEANUP=()
# at_exit CMD...: run at the end of the test, pass or fail, before the pair goes (last first).
at_exit() { XM_CLEANUP+=("$(printf '%q ' "$@")"); }

# pair_up CODE [pair-setup options]: builds the two boxes "xm<run><CODE>"; removed at exit.
pair_up() {
	[[ $1 =~ ^[a-z0-9]{1,3}$ ]] || fail "pair_up: bad test code '$1'"
	XM_TEST_PREFIX=xm$XM_RUN$1
	WORK=/var/tmp/xdpmirror-$XM_TEST_PREFIX
	shift
	trap pair_down EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	"$PAIR" netns up --prefix "$XM_TEST_PREFIX" "$@" >/dev/null || fail "netns up failed"
	# shellcheck disable=SC1090
	source "$WORK/pair.env"
	P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
}

pair_down() {
	local rc=$? i ns
	trap - EXIT
	for ((i = ${#XM_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${XM_CLEANUP[i]}" >/dev/null 2>&1
	done
	stop_pids "${XM_WORKER_PIDS[@]}"
	# Daemon logs help when something failed; print them before they go.
	if [ $rc -ne 0 ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }
		done
	fi
	[ -n "$WORK" ] && unmount_all_under "$WORK"
	stop_pids "${XM_SERVER_PIDS[@]}"
	"$PAIR" netns down --prefix "$XM_TEST_PREFIX" >/dev/null 2>&1
	for ns in $(ip netns list 2>/dev/null | awk -v p="$XM_TEST_PREFIX-" 'index($1, p) == 1 { print $1 }'); do
		ip netns del "$ns"
	done
	exit $rc
}

# in_box primary|secondary CMD...: run in that box's netns (host mount namespace: pins visible).
in_box() {
	local box=$1
	shift
	"$PAIR" netns exec "$box" --prefix "$XM_TEST_PREFIX" -- "$@"
}

box_if() { [ "$1" = primary ] && echo "$XM_PRIMARY_IF" || echo "$XM_SECONDARY_IF"; }
box_ns() { [ "$1" = primary ] && echo "$XM_PRIMARY_NS" || echo "$XM_SECONDARY_NS"; }
box_mac() { [ "$1" = primary ] && echo "$XM_PRIMARY_MAC" || echo "$XM_SECONDARY_MAC"; }
peer_mac() { [ "$1" = primary ] && echo "$XM_SECONDARY_MAC" || echo "$XM_PRIMARY_MAC"; }
box_disk() { [ "$1" = primary ] && echo "$XM_PRIMARY_DISK" || echo "$XM_SECONDARY_DISK"; }
# Each box's metadata file lives with its disk image, so every test starts from new metadata.
box_meta() { echo "$WORK/$1.meta"; }

# attach_box BOX [--role ROLE] [--disk PATH] [extra attach options]: starts BOX's daemon in the
# background (log in $WORK/BOX.log) and waits until its control socket answers.  It uses the
# pair's key (pair-setup.sh netns up made it) unless the options name a key or --no-auth.
attach_box() {
	local box=$1 role=$1 disk pid key=(--auth-key "$XM_AUTH_KEY")
	shift
	disk=$(box_disk "$box")
	while [ $# -gt 0 ]; do
		case $1 in
		--role) role=$2; shift 2 ;;
		--disk) disk=$2; shift 2 ;;
		*) break ;;
		esac
	done
	case " $* " in *" --no-auth "* | *" --auth-key "*) key=() ;; esac
	in_box "$box" "$XM" attach --role "$role" --dev "$(box_if "$box")" --peer "$(peer_mac "$box")" \
		--disk "$disk" --meta "$(box_meta "$box")" "${key[@]}" "$@" >"$WORK/$box.log" 2>&1 &
	pid=$!
	wait_until 5 started "$pid" "$(box_if "$box")"
	answers "$(box_if "$box")" && return 0
	running "$pid" || fail "attach $box exited: $(cat "$WORK/$box.log")"
	fail "attach $box: daemon did not answer within 5 s"
}
# answers IF: a daemon answers on the interface's control socket.
answers() { "$XM" status --dev "$1" >/dev/null 2>&1; }
started() { answers "$2" || ! running "$1"; }

# status_json IF: the device's object from `xdpmirror status --json`.
status_json() { "$XM" status --dev "$1" --json | jq -c '.devices[0]'; }
# counter IF NAME: one of the daemon's counters from status --json.
counter() { status_json "$1" | jq ".daemon.counters.$2"; }
daemon_pid() { status_json "$(box_if "$1")" | jq .daemon.pid; }

# bpf_counter IF PATH: frames of one counter summed over CPUs, read the way a user would, with
# bpftool on the pinned map.  PATH is jq syntax under the value, e.g. rx.ping or drop.bad_peer.
bpf_counter() {
	bpftool -j map dump pinned "/sys/fs/bpf/xdpmirror/$1/stats" |
		jq "[.[0].formatted.values[].value.$2.frames] | add"
}
bpf_bytes() {
	bpftool -j map dump pinned "/sys/fs/bpf/xdpmirror/$1/stats" |
		jq "[.[0].formatted.values[].value.$2.bytes] | add"
}

# replication_state IF: connected, connecting, degraded, listening, ...
replication_state() { status_json "$1" | jq -r '.daemon.replication.state'; }
connection() { status_json "$1" | jq -r .daemon.replication.connection; }
is_connected() { [ "$(replication_state "$1")" = connected ]; }
is_degraded() { [ "$(replication_state "$1")" = degraded ]; }
not_connected() { ! is_connected "$1"; }
# in_sync IF: the primary has a session and the peer holds the same data (no resync left).
in_sync() { [ "$(status_json "$1" | jq -r .daemon.replication.sync)" = in_sync ]; }
resync_active() { [ "$(status_json "$1" | jq .daemon.replication.resync.active)" = true ]; }
dirty_bits() { status_json "$1" | jq .daemon.metadata.bitmap.dirty_bits; }
intent_bits() { status_json "$1" | jq .daemon.metadata.bitmap.intent_bits; }
intent_clear() { [ "$(intent_bits "$1")" = 0 ]; }
disk_state() { status_json "$1" | jq -r .daemon.metadata.disk_state; }
role_of() { status_json "$1" | jq -r .daemon.role; }
# counter_reaches IF NAME N: the counter is at least N.
counter_reaches() { [ "$(counter "$1" "$2")" -ge "$3" ]; }

# mirror_up [attach options for both]: attaches both boxes and waits for the session and the
# initial sync (new metadata on the secondary means a full sync first: tests start equal).
mirror_up() {
	attach_box secondary "$@"
	attach_box primary "$@"
	wait_until 5 is_connected "$P" || fail "primary did not connect: $(status_json "$P")"
	wait_until 5 is_connected "$S" || fail "secondary did not connect"
	wait_until 30 in_sync "$P" || fail "initial sync did not finish: $(status_json "$P" | jq -c .daemon.replication)"
}

# mirror_down: once the pair is in sync, detaches the primary first (it drains its window), then
# the secondary.  (On a loaded box a session may end and resync; detaching before the resync is
# over would leave the secondary behind by design.)
mirror_down() {
	wait_until 30 in_sync "$P" || fail "not in sync before detach: $(status_json "$P" | jq -c .daemon.replication)"
	"$XM" detach --dev "$P" || fail "detach primary"
	"$XM" detach --dev "$S" || fail "detach secondary"
}

# kill_daemon BOX: kill -9 of the box's daemon; returns once it is gone.  What it leaves (pins,
# run files) is removed by the next attach or by `detach`.
kill_daemon() {
	local pid
	pid=$(daemon_pid "$1")
	[[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 0 ] || fail "$1: daemon pid '$pid'"
	kill_wait "$pid"
}

# xdp_attached BOX: an XDP program is attached to the box's interface (fails the test when ip
# itself fails, so a broken check never reads as "not attached").
xdp_attached() {
	local out
	out=$(ip -n "$(box_ns "$1")" -d link show dev "$(box_if "$1")") ||
		fail "ip link show $(box_if "$1") in $(box_ns "$1") failed"
	[[ $out == *prog/xdp* ]]
}

# ---- data ------------------------------------------------------------------------------------

# The NBD export of a box (the primary's by default) as a URI libnbd tools take.
nbd_uri() { echo "nbd+unix:///?socket=/run/xdpmirror/$(box_if "${1:-primary}").sock"; }

# fio_write NAME [--uri URI] FIO-ARGS...: writes through an NBD export (the primary's unless
# --uri); output in $WORK/fio-NAME.log.
fio_write() {
	local name=$1 uri
	uri=$(nbd_uri)
	shift
	[ "${1:-}" = --uri ] && { uri=$2; shift 2; }
	fio --name="$name" --ioengine=nbd --uri="$uri" --direct=1 --randrepeat=0 \
		--output="$WORK/fio-$name.log" "$@" || fail "fio $name: $(tail -5 "$WORK/fio-$name.log")"
}

# nbd_write_at URI SEED OFFSET...: 4 KiB at each offset through the export at URI, then a flush;
# the data is `nbd_ops.py pattern 4096 SEED+OFFSET/4096`, new for every seed and offset.
nbd_write_at() {
	local uri=$1 seed=$2 off ops=()
	shift 2
	for off in "$@"; do
		ops+=("write:$off:4096:$((seed + off / 4096))")
	done
	$NBD_OPS "$uri" "${ops[@]}" flush >"$WORK/nbd-ops.log" 2>&1 ||
		fail "writes at $* through $uri: $(tail -1 "$WORK/nbd-ops.log")"
}

# fio_load NAME FIO-ARGS...: a time-based fio writer in the background (sets FIO_PID) through the
# primary's export until fio_stop; output in $WORK/fio-NAME.log.
fio_load() {
	local name=$1
	shift
	fio --name="$name" --ioengine=nbd --uri="$(nbd_uri)" --direct=1 --randrepeat=0 \
		--time_based --runtime=60 --output="$WORK/fio-$name.log" "$@" &
	FIO_PID=$!
	track_worker "$FIO_PID"
}
# fio_stop NAME PID: ends the writer (SIGINT: fio exits 128) and fails the test if any of its
# I/O failed.
fio_stop() {
	kill -INT "$2" 2>/dev/null
	wait "$2"
	grep -q 'err= 0:' "$WORK/fio-$1.log" || fail "fio $1 failed: $(grep -m1 'err=' "$WORK/fio-$1.log")"
}

# digest PATH: SHA-256 of a whole disk image.
digest() { sha256sum <"$1" | cut -d' ' -f1; }
# assert_digest PATH DIGEST WHAT: the image still holds exactly what it held.
assert_digest() {
	[ "$(digest "$1")" = "$2" ] || fail "$3: $(basename "$1") changed"
}

# assert_disks_identical WHAT: the secondary's disk holds exactly the primary's bytes.
assert_disks_identical() {
	cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" >/dev/null ||
		fail "$1: disks differ: $(cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" 2>&1 | head -1)"
}

# random_file PATH BYTES: fresh random bytes.
random_file() { head -c "$2" /dev/urandom >"$1" || fail "cannot write $1"; }
