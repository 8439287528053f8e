# SPDX-License-Identifier: GPL-2.0
# Helpers for integration tests: a simulated pair, daemons, counters, assertions.  Source it.
# Each test picks its own prefix (xmt + letters) so tests never share namespaces.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XM=$TOP/build/xdpmirror
PAIR=$TOP/scripts/pair-setup.sh
TOOLS=$TOP/build/tools

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "-- $*"; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }

# pair_up PREFIX [pair-setup options]: builds the two boxes; removed again when the test exits.
pair_up() {
	XM_TEST_PREFIX=$1
	shift
	trap pair_down EXIT
	"$PAIR" netns up --prefix "$XM_TEST_PREFIX" "$@" >/dev/null || fail "netns up failed"
	# shellcheck disable=SC1090
	source "/var/tmp/xdpmirror-$XM_TEST_PREFIX/pair.env"
}

pair_down() {
	local rc=$?
	# Daemon logs help when something failed; print them before they go.
	if [ $rc -ne 0 ]; then
		for f in /var/tmp/xdpmirror-"$XM_TEST_PREFIX"/*.log; do
			[ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }
		done
	fi
	"$PAIR" netns down --prefix "$XM_TEST_PREFIX" >/dev/null 2>&1
	exit $rc
}

# in_box primary|secondary CMD...: run in that box's netns (host mount namespace: pins visible).
in_box() {
	local box=$1
	shift
	"$PAIR" netns exec "$box" --prefix "$XM_TEST_PREFIX" -- "$@"
}

box_if() { [ "$1" = primary ] && echo "$XM_PRIMARY_IF" || echo "$XM_SECONDARY_IF"; }
box_mac() { [ "$1" = primary ] && echo "$XM_PRIMARY_MAC" || echo "$XM_SECONDARY_MAC"; }
peer_mac() { [ "$1" = primary ] && echo "$XM_SECONDARY_MAC" || echo "$XM_PRIMARY_MAC"; }
box_disk() { [ "$1" = primary ] && echo "$XM_PRIMARY_DISK" || echo "$XM_SECONDARY_DISK"; }
# Each box's metadata file lives with its disk image, so every test starts from new metadata.
box_meta() { echo "/var/tmp/xdpmirror-$XM_TEST_PREFIX/$1.meta"; }

# attach_box primary|secondary [extra attach options]: starts the daemon in the background and
# waits until its control socket answers.
attach_box() {
	local box=$1 i
	shift
	in_box "$box" "$XM" attach --role "$box" --dev "$(box_if "$box")" --peer "$(peer_mac "$box")" \
		--disk "$(box_disk "$box")" --meta "$(box_meta "$box")" "$@" \
		>"/var/tmp/xdpmirror-$XM_TEST_PREFIX/$box.log" 2>&1 &
	for i in $(seq 100); do
		"$XM" status --dev "$(box_if "$box")" >/dev/null 2>&1 && return 0
		kill -0 $! 2>/dev/null || fail "attach $box exited: $(cat "/var/tmp/xdpmirror-$XM_TEST_PREFIX/$box.log")"
		sleep 0.05
	done
	fail "attach $box: daemon did not answer within 5 s"
}

# status_json IF: the device's object from `xdpmirror status --json`.
status_json() { "$XM" status --dev "$1" --json | jq -c '.devices[0]'; }

# bpf_counter IF PATH: frames of one counter summed over CPUs, read the way a user would, with
# bpftool on the pinned map.  PATH is jq syntax under the value, e.g. rx.ping or drop.bad_peer.
bpf_counter() {
	bpftool -j map dump pinned "/sys/fs/bpf/xdpmirror/$1/stats" |
		jq "[.[0].formatted.values[].value.$2.frames] | add"
}

# wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
assert_ge() { [ "$1" -ge "$2" ] || fail "$3: expected >= $2, got $1"; }

# The primary's NBD export as a URI libnbd tools take.
nbd_uri() { echo "nbd+unix:///?socket=/run/xdpmirror/$XM_PRIMARY_IF.sock"; }

# replication_state IF: connected, connecting, degraded, listening, ...
replication_state() { status_json "$1" | jq -r '.daemon.replication.state'; }
is_connected() { [ "$(replication_state "$1")" = connected ]; }
# in_sync IF: the primary has a session and the peer holds the same data (no resync left).
in_sync() { [ "$(status_json "$1" | jq -r .daemon.replication.sync)" = in_sync ]; }

# mirror_up [attach options for both]: attaches both boxes and waits for the session.
mirror_up() {
	attach_box secondary "$@"
	attach_box primary "$@"
	wait_until 5 is_connected "$XM_PRIMARY_IF" || fail "primary did not connect: $(status_json "$XM_PRIMARY_IF")"
	wait_until 5 is_connected "$XM_SECONDARY_IF" || fail "secondary did not connect"
	# New metadata on the secondary means a full sync first; tests start from equal disks.
	wait_until 30 in_sync "$XM_PRIMARY_IF" || fail "initial sync did not finish: $(status_json "$XM_PRIMARY_IF" | jq -c .daemon.replication)"
}

# mirror_down: detaches the primary first (it drains its window), then the secondary.
mirror_down() {
	"$XM" detach --dev "$XM_PRIMARY_IF" || fail "detach primary"
	"$XM" detach --dev "$XM_SECONDARY_IF" || fail "detach secondary"
}

# counter IF NAME: one of the daemon's counters from status --json.
counter() { status_json "$1" | jq ".daemon.counters.$2"; }

# assert_disks_identical WHAT: the secondary's disk holds exactly the primary's bytes.
assert_disks_identical() {
	cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" >/dev/null ||
		fail "$1: disks differ: $(cmp "$XM_PRIMARY_DISK" "$XM_SECONDARY_DISK" | head -1)"
}
