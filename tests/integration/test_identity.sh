#!/usr/bin/env bash
# Description: one identity and one daemon per box (issue 17): a primary whose metadata is a copy of
# the secondary's (a cloned box) is refused on both sides, never "in sync"; a metadata file or a
# disk image another daemon holds, and a mounted block device, are refused at attach with a clear
# message; the pair then mirrors as before and the disks are equal.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy mkfs.ext4 losetup
pair_up id --disk-size 32M
reason() { status_json "$1" | jq -r .daemon.replication.reason; }
# refused WHAT PATTERN DISK META: a primary attach with that disk and metadata exits 1 within 10 s
# (one that wrongly starts fails instead of hanging) and says PATTERN.
refused() {
	local out rc
	out=$(timeout 10 "$PAIR" netns exec primary --prefix "$XM_TEST_PREFIX" -- "$XM" attach \
		--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" --disk "$3" --meta "$4" \
		--auth-key "$XM_AUTH_KEY" 2>&1)
	rc=$?
	assert_eq "$rc" 1 "exit code with $1"
	grep -q "$2" <<<"$out" || fail "attach said: $out"
	log "  $out"
}

mirror_up
random_file "$WORK/a.img" $((8 << 20))
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy"
mirror_down

log "a cloned box: the primary's metadata is a copy of the secondary's"
cp "$(box_meta primary)" "$WORK/primary.meta.own"
cp "$(box_meta secondary)" "$(box_meta primary)"
attach_box secondary
attach_box primary
same() { [[ $(reason "$P") == *"this box's identity (node UUID): cloned metadata?"* &&
	$(reason "$S") == *"this box's identity (node UUID): cloned metadata?"* ]]; }
wait_until 5 same || fail "primary '$(reason "$P")', secondary '$(reason "$S")'"
log "  primary: $(reason "$P")"
log "  secondary: $(reason "$S")"
sleep 0.3
assert_eq "$(counter "$P" sessions)" 0 "sessions with a cloned identity"
in_sync "$P" && fail "the primary says in_sync with a cloned identity"
"$XM" detach --dev "$P" || fail "detach primary"
cp "$WORK/primary.meta.own" "$(box_meta primary)"

log "a metadata file another daemon holds"
truncate -s 32M "$WORK/other.img"
refused "a metadata file in use" "in use by another daemon (one metadata file per box)" \
	"$WORK/other.img" "$(box_meta secondary)"

log "a disk image another daemon holds"
refused "a disk in use" "disk '$XM_SECONDARY_DISK' is in use: mounted, or attached by another daemon" \
	"$XM_SECONDARY_DISK" "$WORK/third.meta"
[ ! -e "$WORK/third.meta" ] || fail "a refused attach created its metadata file"

log "a mounted block device"
truncate -s 32M "$WORK/fs.img"
mkfs.ext4 -q -F "$WORK/fs.img" || fail "mkfs"
loop=$(losetup --find --show "$WORK/fs.img") || fail "losetup"
at_exit losetup -d "$loop"
mkdir -p "$WORK/mnt"
mount "$loop" "$WORK/mnt" || fail "mount"
at_exit umount "$WORK/mnt"
refused "a mounted block device" "disk '$loop' is in use: mounted, or attached by another daemon" \
	"$loop" "$WORK/fourth.meta"
umount "$WORK/mnt" || fail "umount"

log "the pair with its own identities mirrors again"
attach_box primary
wait_until 10 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
random_file "$WORK/b.img" $((4 << 20))
nbdcopy --flush "$WORK/b.img" "$(nbd_uri)" || fail "nbdcopy"
mirror_down
cmp -n $((4 << 20)) "$WORK/b.img" "$XM_SECONDARY_DISK" || fail "the secondary lacks the last writes"
assert_disks_identical "after the refusals"
echo "all checks passed"
