#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: two simulated boxes in network namespaces joined by a jumbo-frame link, xdpmirror
# attached on both, an ext4 filesystem made and filled with files through the primary's NBD
# export (nbdfuse + a loop device), then the secondary's disk compared with the primary's.
# DEMO_KEEP=1 leaves the boxes running afterwards (remove them with: scripts/pair-setup.sh netns
# down).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
XM=$top/build/xdpmirror
PAIR=$top/scripts/pair-setup.sh
PREFIX=xm
work=/var/tmp/xdpmirror-$PREFIX
fusedir=$work/nbd mnt=$work/mnt
# How much to copy: files under 4 MB from each of these trees, up to the budget per tree.
COPY_TREES=(/usr/share /usr/lib)
COPY_BUDGET=$((40 << 20))
CUR_STEP=''
step() {
	CUR_STEP=$*
	printf '\n==> %s\n' "$*"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

for t in jq bpftool nbdfuse fusermount3 losetup mkfs.ext4 tar; do
	command -v $t >/dev/null || { echo "demo: '$t' not found (run 'make deps')" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP, loop devices)" >&2; exit 1; }

LOOP='' NBDFUSE_PID=''
# is_mounted DIR: true also for a FUSE mount whose daemon died, where stat (and mountpoint) fail.
is_mounted() { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }
nbdfuse_running() {
	local st
	[ -n "$NBDFUSE_PID" ] || return 1
	st=$(ps -o stat= -p "$NBDFUSE_PID" 2>/dev/null) || return 1
	[[ $st != Z* ]]
}
# Undo the filesystem stack from the top: mount, loop device, FUSE mount, nbdfuse.
unstack() {
	if is_mounted "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
	if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; fi
	LOOP=''
	if is_mounted "$fusedir"; then fusermount3 -u "$fusedir" 2>/dev/null || fusermount3 -uz "$fusedir"; fi
	for _ in $(seq 100); do
		nbdfuse_running || break
		sleep 0.05
	done
	if nbdfuse_running; then kill -9 "$NBDFUSE_PID" 2>/dev/null || true; fi
	NBDFUSE_PID=''
}
cleanup() {
	local rc=$? f
	set +e
	unstack
	if [ $rc -ne 0 ]; then
		echo "demo: failed${CUR_STEP:+ at: $CUR_STEP}" >&2
		for f in "$work"/*.log; do
			[ -s "$f" ] && { echo "== $f (last lines)" >&2; tail -8 "$f" >&2; }
		done
	fi
	if [ "${DEMO_KEEP:-0}" != 1 ] || [ $rc -ne 0 ]; then
		"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

step "two boxes: namespaces $PREFIX-primary and $PREFIX-secondary, a veth link at MTU 9000, 256 MiB disks"
"$PAIR" netns down --prefix $PREFIX >/dev/null 2>&1 || true
"$PAIR" netns up --prefix $PREFIX --mtu 9000 --disk-size 256M >/dev/null
# shellcheck disable=SC1091
source $work/pair.env
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF

step "xdpmirror attach on both boxes, wait until the mirror session is connected"
pids=()
for box in secondary primary; do
	if [ $box = primary ]; then
		dev=$P peer=$XM_SECONDARY_MAC disk=$XM_PRIMARY_DISK
	else
		dev=$S peer=$XM_PRIMARY_MAC disk=$XM_SECONDARY_DISK
	fi
	echo "  $box: xdpmirror attach --role $box --dev $dev --peer $peer --disk $disk --auth-key $XM_AUTH_KEY"
	"$PAIR" netns exec $box --prefix $PREFIX -- "$XM" attach --role $box --dev "$dev" \
		--peer "$peer" --disk "$disk" --meta "$work/$box.meta" --auth-key "$XM_AUTH_KEY" \
		>"$work/$box.log" 2>&1 &
	pids+=($!)
	# The secondary listens before the primary says hello: wait for its control socket.
	for _ in $(seq 100); do
		"$XM" status --dev "$dev" >/dev/null 2>&1 && break
		kill -0 $! 2>/dev/null || { echo "demo: attach $box exited" >&2; exit 1; }
		sleep 0.05
	done
done
state() { "$XM" status --dev "$1" --json 2>/dev/null | jq -r '.devices[0].daemon.replication.state // ""' || true; }
for _ in $(seq 200); do
	[ "$(state "$P")" = connected ] && [ "$(state "$S")" = connected ] && break
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || { echo "demo: a daemon exited" >&2; exit 1; }
	done
	sleep 0.05
done
if [ "$(state "$P")" != connected ] || [ "$(state "$S")" != connected ]; then
	echo "demo: no mirror session after 10 s (primary: $(state "$P"), secondary: $(state "$S"))" >&2
	exit 1
fi
"$XM" status --dev "$P" --json | jq -r '.devices[0].daemon.replication |
	"  connected: protocol \(.protocol), \(.max_payload) bytes of data per frame, window \(.window)"'

step "initial sync: the secondary's metadata is new, so every region is copied once"
sync_state() { "$XM" status --dev "$P" --json 2>/dev/null | jq -r '.devices[0].daemon.replication.sync // ""' || true; }
sync_start=$(date +%s.%N)
for _ in $(seq 1200); do
	[ "$(sync_state)" = in_sync ] && break
	sleep 0.05
done
[ "$(sync_state)" = in_sync ] || { echo "demo: initial sync did not finish in 60 s" >&2; exit 1; }
sync_secs=$(awk -v a="$sync_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
"$XM" status --dev "$P" --json | jq -r --arg s "$sync_secs" '.devices[0].daemon |
	"  \(.counters.tx_resync_bytes / 1048576) MiB resynced (decision \(.replication.decision)) in about \($s) s"'

step "primary: nbdfuse turns the NBD export into a file, losetup into a block device"
uri="nbd+unix:///?socket=/run/xdpmirror/$P.sock"
mkdir -p "$fusedir" "$mnt"
nbdfuse "$fusedir" "$uri" >"$work/nbdfuse.log" 2>&1 &
NBDFUSE_PID=$!
for _ in $(seq 200); do
	[ -e "$fusedir/nbd" ] && break
	nbdfuse_running || { echo "demo: nbdfuse exited" >&2; exit 1; }
	sleep 0.05
done
[ -e "$fusedir/nbd" ] || { echo "demo: $fusedir/nbd did not appear" >&2; exit 1; }
LOOP=$(losetup -f --show "$fusedir/nbd")
echo "  $uri -> $fusedir/nbd -> $LOOP"

step "mkfs.ext4 $LOOP, mount it on $mnt"
mkfs.ext4 -q -F "$LOOP"
mount "$LOOP" "$mnt"

# Files to copy: sorted, each tree up to the budget, so every run copies the same set.
list=$work/files.list0
: >"$list"
for tree in "${COPY_TREES[@]}"; do
	total=0
	while IFS= read -r -d '' e; do
		sz=${e%%/*}
		[ $((total + sz)) -le $COPY_BUDGET ] || break
		total=$((total + sz))
		printf '%s\0' "${tree#/}/${e#*/}" >>"$list"
	done < <(cd "$tree" && find . -xdev -type f -size -4M -readable -printf '%s/%P\0' 2>/dev/null | sort -z)
done
nfiles=$(tr -cd '\0' <"$list" | wc -c)
copy_bytes=$( (cd / && xargs -0 stat -c %s <"$list") | awk '{ s += $1 } END { print s + 0 }')
avail=$(($(df -k --output=avail "$mnt" | tail -1) * 1024))
[ "$copy_bytes" -lt $((avail * 9 / 10)) ] ||
	{ echo "demo: $(mib "$copy_bytes") of files do not fit in $(mib "$avail")" >&2; exit 1; }
# Read them once so the timing below measures the mirror, not this machine's disk.
(cd / && xargs -0 cat <"$list" >/dev/null)

step "copy $nfiles files ($(mib "$copy_bytes")) from ${COPY_TREES[*]} into the filesystem, then sync"
before=$("$XM" status --dev "$P" --json | jq '.devices[0].daemon.counters.tx_data_bytes')
t0=$EPOCHREALTIME
tar -C / --null -T "$list" -cf - 2>"$work/tar-read.log" | tar -C "$mnt" -xf - 2>"$work/tar-write.log"
sync -f "$mnt"
t1=$EPOCHREALTIME
after=$("$XM" status --dev "$P" --json | jq '.devices[0].daemon.counters.tx_data_bytes')
copy_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
copy_mirrored=$((after - before))
echo "  done in $copy_secs s"

step "umount, losetup -d, fusermount3 -u (nbdfuse flushes and exits)"
umount "$mnt"
losetup -d "$LOOP"
LOOP=''
fusermount3 -u "$fusedir"
for _ in $(seq 200); do
	nbdfuse_running || break
	sleep 0.05
done
nbdfuse_running && { echo "demo: nbdfuse did not exit after fusermount3 -u" >&2; exit 1; }
wait "$NBDFUSE_PID" || { echo "demo: nbdfuse failed: $(tail -3 "$work/nbdfuse.log")" >&2; exit 1; }
NBDFUSE_PID=''

step "xdpmirror status --dev $P; xdpmirror status --dev $S"
"$XM" status --dev "$P"
"$XM" status --dev "$S"

step "bpftool map dump pinned /sys/fs/bpf/xdpmirror/$S/stats (excerpt: per CPU, field names from BTF)"
bpftool map dump pinned "/sys/fs/bpf/xdpmirror/$S/stats" |
	jq -r '.[0].values[] | "  cpu \(.cpu): \(.value | {seen, redirected, rx: {data: .rx.data}} | tojson)"'

pj=$("$XM" status --dev "$P" --json | jq -c '.devices[0].daemon')
sj=$("$XM" status --dev "$S" --json | jq -c '.devices[0].daemon')
pc() { jq -r ".counters.$1" <<<"$pj"; }
sc() { jq -r ".counters.$1" <<<"$sj"; }
# per_s BYTES SECS: a rate in MiB/s.
per_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f MiB/s", (s > 0) ? b / 1048576 / s : 0 }'; }
summary() {
	echo
	echo "summary"
	printf '  %-12s %s\n' \
		"copy phase" "$nfiles files, $(mib "$copy_bytes") in $copy_secs s with sync: $(per_s "$copy_bytes" "$copy_secs") of files, $(mib "$copy_mirrored") mirrored ($(per_s "$copy_mirrored" "$copy_secs"))" \
		"mirrored" "$(mib "$(pc tx_data_bytes)") in $(pc tx_data) DATA frames in all (mkfs and copy), MTU $XM_MTU" \
		"retransmits" "$(pc tx_retrans_rto) after a timeout, $(pc tx_retrans_fast) fast" \
		"secondary" "$(sc wr_zero_copy) zero-copy writes, $(sc wr_bounce) bounced" \
		"commits" "primary $(pc commits), secondary $(sc commits)" \
		"degraded" "$(pc writes_degraded) writes without the peer, $(jq .replication.out_of_sync_bytes <<<"$pj") bytes out of sync"
}

if [ "${DEMO_KEEP:-0}" = 1 ]; then
	summary
	step "boxes left running (DEMO_KEEP=1); remove with: scripts/pair-setup.sh netns down"
	exit 0
fi

step "xdpmirror detach: the primary first (it drains its window), then the secondary"
"$XM" detach --dev "$P" >/dev/null
"$XM" detach --dev "$S" >/dev/null

step "cmp $XM_PRIMARY_DISK $XM_SECONDARY_DISK"
summary
if ! diff=$(cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" 2>&1); then
	echo "demo: FAILED: the secondary's disk differs from the primary's: ${diff%%$'\n'*}" >&2
	exit 1
fi
echo "secondary identical"
