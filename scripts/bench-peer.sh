# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# The bench's reference mirror ("the peer"): a synchronous mirror over TCP built from stock QEMU
# parts, on the same two network namespaces and disk images as xdpmirror.  Sourced, functions
# only.
#
#   secondary namespace   qemu-nbd serves the secondary's image on TCP (PEER_SECONDARY_IP)
#   primary namespace     qemu-storage-daemon (qsd) with
#                           peer-src   file node on the primary's image
#                           peer-dst   nbd node, a TCP client of that qemu-nbd
#                           peer       NBD export of peer-src on a Unix socket, writable
#                           mirror     blockdev-mirror peer-src -> peer-dst, sync=full,
#                                      copy-mode=write-blocking, started over QMP
#
# The mirror job inserts its filter node above peer-src and takes over peer-src's parents,
# the export among them, so every client write goes through the filter: written to the
# primary's image, then to the secondary over NBD, and only then acknowledged.  Both images
# are opened with O_DIRECT (cache=none), raw, like xdpmirror's disks.  QEMU's filter sends a
# client's flush to the source only, never to the target (block/mirror.c,
# bdrv_mirror_top_flush): the secondary's image gets O_DIRECT writes but no fdatasync unless
# PEER_SECONDARY_CACHE=directsync.
#
# Needs (from pair.env, sourced by the caller): XM_PRIMARY_NS XM_SECONDARY_NS XM_PRIMARY_IF
# XM_SECONDARY_IF XM_PRIMARY_DISK XM_SECONDARY_DISK.  Root, qemu-storage-daemon, qemu-nbd,
# qemu-img and qemu-io (qemu-utils), python3, jq, ip.
#
# Functions:
#   peer_up DIR     start qemu-nbd and qsd, run the initial full copy until the job is ready;
#                   on failure: a message, the daemons' logs, everything torn down, status 1
#   peer_resync     what a QEMU user does after the target was away: cancel the job and start
#                   a new sync=full mirror, timed until ready.  With this setup (no
#                   reconnect-delay, on-target-error=report) a lost target ends the job and
#                   its in-memory dirty bitmap with it, and 7.2 keeps nothing to resume from
#   peer_check_sync prove that a write through the export reaches the secondary's image
#                   before it is acknowledged (job paused, so no background copy can help)
#   peer_down       cancel the job, quit qsd, stop qemu-nbd, remove the IPv4 addresses;
#                   safe to repeat and after a failed peer_up
#   peer_verify     compare both images (O_DIRECT reads); status 1 if they differ
#
# Settings (set before peer_up to change):
#   PEER_PRIMARY_IP PEER_SECONDARY_IP PEER_PREFIXLEN   10.231.0.1, 10.231.0.2, 30: on the veth
#                   ends only, inside the two namespaces
#   PEER_NBD_PORT   qemu-nbd's TCP port (10809)
#   PEER_SECONDARY_CACHE  qemu-nbd --cache (none: O_DIRECT, like the primary's file node)
#   PEER_TIMEOUT    seconds a full copy may take until ready (120)
#   PEER_SECONDARY_PREFIX  an array put before qemu-nbd's command (the bench's CPU pinning:
#                   taskset -c 1); empty by default
#
# Results (set by the functions):
#   PEER_DIR        DIR given to peer_up: logs (peer-qsd.log, peer-nbd.log), sockets, pid files
#   PEER_URI        nbd+unix:///peer?socket=DIR/peer-nbd.sock, for fio's nbd engine and libnbd
#   PEER_PIDS       "QSD_PID NBD_PID": read CPU and peak RSS from /proc/PID/{stat,status}
#                   before peer_down, which clears it
#   PEER_QSD_PID PEER_NBD_PID  the same, one by one
#   PEER_QMP_SOCK PEER_NBD_SOCK  qsd's QMP socket and NBD export socket
#   PEER_AIO        io_uring or native: what the image files are opened with
#   PEER_QSD_CMD PEER_NBD_CMD  the two daemons' command lines, shell-quoted, for the record
#   PEER_SYNC_SECS PEER_SYNC_BYTES      initial full copy: seconds from the job running to
#                   BLOCK_JOB_READY (the daemon's own event timestamps), bytes copied
#   PEER_RESYNC_SECS PEER_RESYNC_BYTES  the same for peer_resync's new full copy

PEER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEER_QMP=$PEER_LIB_DIR/qmp.py
: "${PEER_PRIMARY_IP:=10.231.0.1}"
: "${PEER_SECONDARY_IP:=10.231.0.2}"
: "${PEER_PREFIXLEN:=30}"
: "${PEER_NBD_PORT:=10809}"
: "${PEER_SECONDARY_CACHE:=none}"
: "${PEER_TIMEOUT:=120}"
[ -n "${PEER_SECONDARY_PREFIX+x}" ] || PEER_SECONDARY_PREFIX=()
# Names inside qsd and qemu-nbd.
PEER_JOB=peer-mirror
PEER_EXPORT=peer
PEER_NBD_EXPORT=peer-secondary

PEER_DIR=${PEER_DIR:-}
PEER_URI=${PEER_URI:-}
PEER_PIDS=${PEER_PIDS:-}
PEER_QSD_PID=${PEER_QSD_PID:-}
PEER_NBD_PID=${PEER_NBD_PID:-}
PEER_QMP_SOCK=${PEER_QMP_SOCK:-}
PEER_NBD_SOCK=${PEER_NBD_SOCK:-}
PEER_AIO=${PEER_AIO:-}
PEER_QSD_CMD=${PEER_QSD_CMD:-}
PEER_NBD_CMD=${PEER_NBD_CMD:-}
PEER_SYNC_SECS=${PEER_SYNC_SECS:-}
PEER_SYNC_BYTES=${PEER_SYNC_BYTES:-}
PEER_RESYNC_SECS=${PEER_RESYNC_SECS:-}
PEER_RESYNC_BYTES=${PEER_RESYNC_BYTES:-}
# Where peer_up put the addresses, so peer_down removes them even if pair.env changed since.
PEER_ADDR_NS=${PEER_ADDR_NS:-}

_peer_err() {
	echo "bench-peer: $*" >&2
}

# The last lines of both daemons' logs, after a failure.
_peer_show_logs() {
	local f
	for f in "$PEER_DIR/peer-nbd.log" "$PEER_DIR/peer-qsd.log"; do
		[ -s "$f" ] || continue
		echo "== $f" >&2
		tail -n 20 "$f" >&2
	done
}

# A command line as one string a shell can run again; words that need no quotes get none, so
# QEMU's comma-separated options stay readable.
_peer_cmdline() {
	local w out=''
	for w in "$@"; do
		if [[ $w =~ ^[][A-Za-z0-9_./=:,@+%-]+$ ]]; then
			out+=" $w"
		else
			out+=" $(printf '%q' "$w")"
		fi
	done
	printf '%s' "${out# }"
}

# A comma in a QEMU option value is written twice.
_peer_optval() {
	printf '%s' "${1//,/,,}"
}

# True while PID runs the program COMM (as /proc shows it, cut to 15 characters); a zombie
# has exited, and a recycled pid runs something else.
# Builtins only: the stop loops below call this every 10 ms.
_peer_alive() {
	local pid=$1 comm=$2 name stat
	[ -n "$pid" ] || return 1
	{ read -r name <"/proc/$pid/comm" && read -r stat <"/proc/$pid/stat"; } 2>/dev/null ||
		return 1
	[ "$name" = "${comm:0:15}" ] || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Wait up to SECS (in 10 ms steps) for PID to stop running COMM.
_peer_wait_gone() {
	local pid=$1 comm=$2 secs=$3 i
	for ((i = 0; i < secs * 100; i++)); do
		_peer_alive "$pid" "$comm" || return 0
		sleep 0.01
	done
	return 1
}

# Stop PID (running COMM): the caller has asked it nicely already, or not at all.  SIGTERM
# after GRACE seconds, SIGKILL 3 s later.  Status 1 only if it survives SIGKILL.
_peer_stop() {
	local pid=$1 comm=$2 grace=$3
	_peer_alive "$pid" "$comm" || return 0
	_peer_wait_gone "$pid" "$comm" "$grace" && return 0
	kill "$pid" 2>/dev/null || true
	_peer_wait_gone "$pid" "$comm" 3 && return 0
	_peer_err "$comm (pid $pid) ignored SIGTERM, killing it"
	kill -9 "$pid" 2>/dev/null || true
	_peer_wait_gone "$pid" "$comm" 3 && return 0
	_peer_err "$comm (pid $pid) does not die"
	return 1
}

# The pid in FILE, if any.
_peer_pidfile() {
	local p
	[ -s "$1" ] || return 0
	p=$(tr -dc 0-9 <"$1")
	printf '%s' "$p"
}

_peer_qmp() {
	python3 "$PEER_QMP" "$PEER_QMP_SOCK" "$@"
}

# Start the mirror job and wait until it is ready; prints qmp.py's JSON summary.
_peer_mirror() {
	_peer_qmp mirror --job "$PEER_JOB" --device peer-src --target peer-dst --sync full \
		--copy-mode write-blocking --timeout "$PEER_TIMEOUT"
}

# Set PEER_AIO: io_uring if this QEMU build and kernel can use it on the image, else native.
# qemu-img opens the image the way the daemons will, so a failure shows here and not as a
# daemon that dies at start.
_peer_pick_aio() {
	local img=$1
	if qemu-img info --image-opts \
		"driver=file,filename=$(_peer_optval "$img"),cache.direct=on,aio=io_uring" \
		>/dev/null 2>&1; then
		PEER_AIO=io_uring
	else
		PEER_AIO=native
	fi
}

peer_up() {
	local dir=${1:?peer_up: DIR missing} v t
	for v in XM_PRIMARY_NS XM_SECONDARY_NS XM_PRIMARY_IF XM_SECONDARY_IF XM_PRIMARY_DISK \
		XM_SECONDARY_DISK; do
		[ -n "${!v:-}" ] || { _peer_err "peer_up: $v not set (source pair.env first)"; return 1; }
	done
	for t in qemu-storage-daemon qemu-nbd qemu-img qemu-io python3 jq ip; do
		command -v "$t" >/dev/null || { _peer_err "peer_up: '$t' not found"; return 1; }
	done
	if _peer_alive "$PEER_QSD_PID" qemu-storage-daemon ||
		_peer_alive "$PEER_NBD_PID" qemu-nbd; then
		_peer_err "peer_up: the peer is already up (pids $PEER_PIDS); peer_down first"
		return 1
	fi
	mkdir -p "$dir" || return 1
	PEER_DIR=$(cd "$dir" && pwd) || return 1
	PEER_QMP_SOCK=$PEER_DIR/peer-qmp.sock
	PEER_NBD_SOCK=$PEER_DIR/peer-nbd.sock
	# sun_path holds 107 characters and a NUL.
	if [ ${#PEER_QMP_SOCK} -gt 107 ] || [ ${#PEER_NBD_SOCK} -gt 107 ]; then
		_peer_err "peer_up: '$PEER_DIR' is too long for a Unix socket path"
		return 1
	fi
	PEER_URI='' PEER_PIDS='' PEER_QSD_PID='' PEER_NBD_PID=''
	PEER_SYNC_SECS='' PEER_SYNC_BYTES='' PEER_RESYNC_SECS='' PEER_RESYNC_BYTES=''
	if ! _peer_up; then
		_peer_show_logs
		peer_down >/dev/null 2>&1 || true
		return 1
	fi
}

# The body of peer_up; every step checks its own status, because a caller's 'set -e' does not
# reach into a function called from a condition.
_peer_up() {
	local d=$PEER_DIR out i
	local -a nbd qsd
	rm -f "$PEER_QMP_SOCK" "$PEER_NBD_SOCK" "$d/peer-nbd.pid" "$d/peer-qsd.pid"
	: >"$d/peer-nbd.log" && : >"$d/peer-qsd.log" || return 1
	_peer_pick_aio "$XM_PRIMARY_DISK"

	# IPv4 on the two veth ends only; 'replace' so an address left by a killed run is no error.
	PEER_ADDR_NS="$XM_PRIMARY_NS $XM_PRIMARY_IF $PEER_PRIMARY_IP"
	PEER_ADDR_NS+=" $XM_SECONDARY_NS $XM_SECONDARY_IF $PEER_SECONDARY_IP"
	ip -n "$XM_PRIMARY_NS" addr replace "$PEER_PRIMARY_IP/$PEER_PREFIXLEN" \
		dev "$XM_PRIMARY_IF" || { _peer_err "peer_up: cannot add $PEER_PRIMARY_IP"; return 1; }
	ip -n "$XM_SECONDARY_NS" addr replace "$PEER_SECONDARY_IP/$PEER_PREFIXLEN" \
		dev "$XM_SECONDARY_IF" || { _peer_err "peer_up: cannot add $PEER_SECONDARY_IP"; return 1; }

	# --fork: the parent exits only once the server listens (or has failed), so no polling.
	# --persistent: a client that reconnects (qsd's nbd node) finds the server still there.
	nbd=(qemu-nbd --fork --pid-file="$d/peer-nbd.pid" --persistent --format=raw
		--cache="$PEER_SECONDARY_CACHE" --aio="$PEER_AIO" --bind="$PEER_SECONDARY_IP"
		--port="$PEER_NBD_PORT" --export-name="$PEER_NBD_EXPORT" "$XM_SECONDARY_DISK")
	nbd=("${PEER_SECONDARY_PREFIX[@]}" "${nbd[@]}")
	PEER_NBD_CMD=$(_peer_cmdline ip netns exec "$XM_SECONDARY_NS" "${nbd[@]}")
	echo "+ $PEER_NBD_CMD" >>"$d/peer-nbd.log"
	if ! timeout 30 ip netns exec "$XM_SECONDARY_NS" "${nbd[@]}" \
		</dev/null >>"$d/peer-nbd.log" 2>&1; then
		_peer_err "peer_up: qemu-nbd did not start"
		PEER_NBD_PID=$(_peer_pidfile "$d/peer-nbd.pid")
		return 1
	fi
	PEER_NBD_PID=$(_peer_pidfile "$d/peer-nbd.pid")
	_peer_alive "$PEER_NBD_PID" qemu-nbd ||
		{ _peer_err "peer_up: qemu-nbd is not running (pid file: '$PEER_NBD_PID')"; return 1; }

	# The monitor comes last: QMP answers once every node and the export exist.
	qsd=(qemu-storage-daemon
		--blockdev "driver=file,node-name=peer-src,filename=$(_peer_optval "$XM_PRIMARY_DISK"),cache.direct=on,aio=$PEER_AIO"
		--blockdev "driver=nbd,node-name=peer-dst,server.type=inet,server.host=$PEER_SECONDARY_IP,server.port=$PEER_NBD_PORT,export=$PEER_NBD_EXPORT"
		--nbd-server "addr.type=unix,addr.path=$(_peer_optval "$PEER_NBD_SOCK")"
		--export "type=nbd,id=peer-export,node-name=peer-src,name=$PEER_EXPORT,writable=on"
		--pidfile "$d/peer-qsd.pid"
		--chardev "socket,id=peer-qmp,path=$(_peer_optval "$PEER_QMP_SOCK"),server=on,wait=off"
		--monitor chardev=peer-qmp)
	PEER_QSD_CMD=$(_peer_cmdline ip netns exec "$XM_PRIMARY_NS" "${qsd[@]}")
	echo "+ $PEER_QSD_CMD" >>"$d/peer-qsd.log"
	# Started from a command substitution, qsd is not this shell's child: a caller's plain
	# 'wait' does not block on it, and no zombie is left for us to reap.  'ip netns exec'
	# execs the daemon, so $! is qsd's pid.
	PEER_QSD_PID=$(ip netns exec "$XM_PRIMARY_NS" "${qsd[@]}" \
		</dev/null >>"$d/peer-qsd.log" 2>&1 & echo $!)
	if ! _peer_qmp wait --timeout 30 --pid "$PEER_QSD_PID" 2>>"$d/peer-qsd.log"; then
		_peer_err "peer_up: qemu-storage-daemon did not come up"
		return 1
	fi
	for ((i = 0; i < 100; i++)); do
		[ -S "$PEER_NBD_SOCK" ] && break
		sleep 0.01
	done
	[ -S "$PEER_NBD_SOCK" ] || { _peer_err "peer_up: no export socket $PEER_NBD_SOCK"; return 1; }
	PEER_PIDS="$PEER_QSD_PID $PEER_NBD_PID"

	if ! out=$(_peer_mirror 2>>"$d/peer-qsd.log"); then
		_peer_err "peer_up: the mirror job failed: $(tail -n 1 "$d/peer-qsd.log")"
		return 1
	fi
	echo "mirror ready: $out" >>"$d/peer-qsd.log"
	PEER_SYNC_SECS=$(jq -r .secs <<<"$out") && PEER_SYNC_BYTES=$(jq -r .bytes <<<"$out") ||
		return 1
	PEER_URI="nbd+unix:///$PEER_EXPORT?socket=$PEER_NBD_SOCK"
}

peer_resync() {
	local out
	PEER_RESYNC_SECS='' PEER_RESYNC_BYTES=''
	_peer_alive "$PEER_QSD_PID" qemu-storage-daemon ||
		{ _peer_err "peer_resync: the peer is not up"; return 1; }
	if ! _peer_qmp cancel --job "$PEER_JOB" 2>>"$PEER_DIR/peer-qsd.log"; then
		_peer_err "peer_resync: cancelling the job failed: $(tail -n 1 "$PEER_DIR/peer-qsd.log")"
		return 1
	fi
	if ! out=$(_peer_mirror 2>>"$PEER_DIR/peer-qsd.log"); then
		_peer_err "peer_resync: the new mirror job failed: $(tail -n 1 "$PEER_DIR/peer-qsd.log")"
		_peer_show_logs
		return 1
	fi
	echo "resync ready: $out" >>"$PEER_DIR/peer-qsd.log"
	PEER_RESYNC_SECS=$(jq -r .secs <<<"$out") && PEER_RESYNC_BYTES=$(jq -r .bytes <<<"$out")
}

# Write 4 KiB of random data through the export with the job paused, then read the same block
# from the secondary's image with O_DIRECT the moment the write has returned.  A paused job
# copies nothing in the background, so only the write-blocking path can have put it there.
# Changes one block on both disks (at OFFSET, default 0).
peer_check_sync() {
	local off=${1:-0} pat rc=0
	_peer_alive "$PEER_QSD_PID" qemu-storage-daemon ||
		{ _peer_err "peer_check_sync: the peer is not up"; return 1; }
	# qemu-io splits its -c command on spaces, so the pattern file's path must have none.
	pat=$(mktemp /tmp/peer-check.XXXXXX) || return 1
	head -c 4096 /dev/urandom >"$pat"
	_peer_qmp exec block-job-pause "{\"device\": \"$PEER_JOB\"}" >/dev/null || rc=1
	if [ $rc -eq 0 ]; then
		qemu-io -f raw -c "write -q -s $pat $off 4k" "$PEER_URI" || rc=1
		if [ $rc -eq 0 ] && ! cmp -s "$pat" <(dd if="$XM_SECONDARY_DISK" iflag=direct,skip_bytes \
			skip="$off" bs=4096 count=1 status=none); then
			_peer_err "peer_check_sync: the write at $off is not in the secondary's image"
			rc=1
		fi
		_peer_qmp exec block-job-resume "{\"device\": \"$PEER_JOB\"}" >/dev/null || rc=1
	fi
	rm -f "$pat"
	return $rc
}

peer_down() {
	local rc=0 qsd nbd ns ifname ip
	qsd=${PEER_QSD_PID:-}
	nbd=${PEER_NBD_PID:-}
	# After a failed start the pid may only be in the pid file.
	if [ -n "$PEER_DIR" ]; then
		[ -n "$qsd" ] || qsd=$(_peer_pidfile "$PEER_DIR/peer-qsd.pid")
		[ -n "$nbd" ] || nbd=$(_peer_pidfile "$PEER_DIR/peer-nbd.pid")
	fi
	if _peer_alive "$qsd" qemu-storage-daemon; then
		# A ready mirror's cancel copies what is still dirty, so the secondary is whole.
		_peer_qmp cancel --job "$PEER_JOB" --timeout 30 2>>"$PEER_DIR/peer-qsd.log" ||
			{ _peer_err "peer_down: cancel failed"; rc=1; }
		_peer_qmp quit --timeout 10 2>>"$PEER_DIR/peer-qsd.log" ||
			_peer_err "peer_down: QMP quit failed, stopping qemu-storage-daemon with signals"
		_peer_stop "$qsd" qemu-storage-daemon 10 || rc=1
	fi
	# Its client is gone; --persistent keeps it waiting for another, so it needs a signal.
	if _peer_alive "$nbd" qemu-nbd; then
		kill "$nbd" 2>/dev/null || true
		_peer_stop "$nbd" qemu-nbd 5 || rc=1
	fi
	# shellcheck disable=SC2086 # triples of words on purpose
	set -- $PEER_ADDR_NS
	while [ $# -ge 3 ]; do
		ns=$1 ifname=$2 ip=$3
		shift 3
		[ -e "/run/netns/$ns" ] || continue
		if ip -n "$ns" -4 addr show dev "$ifname" 2>/dev/null | grep -q "inet $ip/"; then
			ip -n "$ns" addr del "$ip/$PEER_PREFIXLEN" dev "$ifname" || rc=1
		fi
	done
	PEER_ADDR_NS=
	if [ -n "$PEER_DIR" ]; then
		rm -f "$PEER_QMP_SOCK" "$PEER_NBD_SOCK" "$PEER_DIR/peer-nbd.pid" \
			"$PEER_DIR/peer-qsd.pid"
	fi
	PEER_QSD_PID='' PEER_NBD_PID='' PEER_PIDS='' PEER_URI=''
	return $rc
}

# Both images, read with O_DIRECT so the page cache cannot answer for the disk.
peer_verify() {
	local a=${XM_PRIMARY_DISK:?} b=${XM_SECONDARY_DISK:?} out
	if _peer_alive "${PEER_QSD_PID:-}" qemu-storage-daemon; then
		_peer_err "peer_verify: the peer still runs; comparing anyway (writers must be idle)"
	fi
	if [ "$(stat -c %s "$a")" != "$(stat -c %s "$b")" ]; then
		_peer_err "peer_verify: $a and $b differ in size"
		return 1
	fi
	if ! out=$(cmp <(dd if="$a" iflag=direct bs=1M status=none) \
		<(dd if="$b" iflag=direct bs=1M status=none) 2>&1); then
		# cmp names the process substitutions' /dev/fd paths; only the place is of use.
		_peer_err "peer_verify: $a and $b differ${out:+ (from ${out#* differ: })}"
		return 1
	fi
}
