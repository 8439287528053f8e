#!/usr/bin/env bash
# Description: only the export's owners use it (issue 17): --nbd-tcp without --nbd-tls-psk or
# --nbd-tcp-insecure, or with a PSK file others can read, is refused before anything is made;
# nbdcopy over TLS (nbds://, psktool's key) writes and the bytes land on both disks; a client
# without TLS, with a wrong key or an unknown user is refused and writes nothing; the Unix socket
# is 0660 root:--nbd-group, so 'nobody' is denied and a member of the group writes; without
# --nbd-group it is 0600; --nbd-tcp-insecure serves on [::1] and says so.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy nbdinfo psktool setpriv groupadd groupdel getent
pair_up tl --disk-size 16M
PORT=10809
PSK=$WORK/nbd.psk
URI_TLS="nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$PSK"
psktool -u alice -p "$PSK" >/dev/null || fail "psktool"
GROUP=xm${XM_RUN}tl
groupadd "$GROUP" || fail "groupadd $GROUP"
at_exit groupdel "$GROUP"
GID=$(getent group "$GROUP" | cut -d: -f3)
SOCK=/run/xdpmirror/$P.sock
MIB=$((1 << 20))

# refused CODE PATTERN ATTACH-OPTIONS...: a primary attach exits CODE, says PATTERN, and made
# nothing: no metadata file, no XDP program, no control socket.
refused() {
	local code=$1 pattern=$2 out rc
	shift 2
	out=$(timeout 10 "$PAIR" netns exec primary --prefix "$XM_TEST_PREFIX" -- "$XM" attach \
		--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" --disk "$XM_PRIMARY_DISK" \
		--meta "$(box_meta primary)" --auth-key "$XM_AUTH_KEY" "$@" 2>&1)
	rc=$?
	assert_eq "$rc" "$code" "exit code of attach $*"
	grep -qF -- "$pattern" <<<"$out" || fail "attach $* said: $out"
	log "  $out"
	[ ! -e "$(box_meta primary)" ] || fail "a refused attach created its metadata file"
	xdp_attached primary && fail "a refused attach left an XDP program"
	answers "$P" && fail "a refused attach left a daemon"
	return 0
}
# in_log BOX TEXT: the box's daemon log has TEXT (fixed string); waits for it a little.
log_has() { grep -qF -- "$2" "$WORK/$1.log"; }
in_log() { wait_until 3 log_has "$1" "$2" || fail "$1's log lacks: $2"; }
# raw_client BYTES: a plaintext client in the primary's box: reads the greeting, sends BYTES
# (printf escapes), reads for up to a second and hangs up.  Prints the bytes it got after the
# greeting and "closed" or "open": whether the server had ended the connection by then.
raw_client() {
	in_box primary bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"' || exit 1
		head -c 18 <&3 >/dev/null
		printf "$1" >&3
		timeout 1 cat <&3 >"$2" && end=closed || end=open
		echo "$(wc -c <"$2") $end"' raw "$1" "$WORK/raw.out"
}
FLAGS='\0\0\0\3'
opt() { printf '%s' 'IHAVEOPT\0\0\0\'"$1"'\0\0\0\0'; }

log "--nbd-tcp without TLS is refused"
refused 2 "--nbd-tcp without --nbd-tls-psk FILE: anyone who can connect to the port could read and overwrite the disk (make a key with 'psktool -u USER -p FILE'), or --nbd-tcp-insecure for a lab" \
	--nbd-tcp "127.0.0.1:$PORT"
log "a PSK file others can read"
cp "$PSK" "$WORK/open.psk" && chmod 644 "$WORK/open.psk"
refused 1 "TLS PSK file '$WORK/open.psk': mode 0644 lets group or others at it (chmod 600 $WORK/open.psk)" \
	--nbd-tcp "$PORT" --nbd-tls-psk "$WORK/open.psk"
log "a PSK file that is not psktool's format"
printf 'alice %s\n' "$(cut -d: -f2 "$PSK")" >"$WORK/bad.psk" && chmod 600 "$WORK/bad.psk"
refused 1 "TLS PSK file '$WORK/bad.psk': line 1: want 'user:hexkey' (as psktool writes it)" \
	--nbd-tcp "$PORT" --nbd-tls-psk "$WORK/bad.psk"

log "TLS on 127.0.0.1:$PORT, the Unix socket for group $GROUP"
attach_box secondary
attach_box primary --nbd-tcp "127.0.0.1:$PORT" --nbd-tls-psk "$PSK" --nbd-group "$GROUP"
wait_until 10 in_sync "$P" || fail "not in sync: $(status_json "$P" | jq -c .daemon.replication)"
assert_eq "$(status_json "$P" | jq -r .daemon.nbd.tls)" psk "status: nbd.tls"

log "nbdcopy over TLS as alice: on both disks"
random_file "$WORK/a.img" $((4 * MIB))
in_box primary nbdcopy --flush "$WORK/a.img" "$URI_TLS" || fail "nbdcopy over TLS"
in_log primary "TLS as user 'alice'"
in_box primary nbdcopy "$URI_TLS" "$WORK/back.img" || fail "nbdcopy back over TLS"
cmp -n $((4 * MIB)) "$WORK/a.img" "$WORK/back.img" || fail "read back over TLS differs"
wait_until 10 in_sync "$P" || fail "not in sync after the TLS writes"
cmp -n $((4 * MIB)) "$WORK/a.img" "$XM_SECONDARY_DISK" || fail "the secondary lacks the TLS writes"

log "without TLS: refused, nothing written"
random_file "$WORK/b.img" $MIB
out=$(in_box primary nbdcopy --flush "$WORK/b.img" "nbd://127.0.0.1:$PORT/" 2>&1) &&
	fail "nbdcopy without TLS worked"
log "  nbdcopy: $(head -1 <<<"$out")"
grep -qi "tls" <<<"$out" || fail "the client was not told that TLS is needed: $out"
in_log primary "without TLS refused (this export needs TLS: nbds://USER@HOST:PORT/?tls-psk-file=FILE)"
log "NBD_OPT_EXPORT_NAME without TLS: the connection ends"
assert_eq "$(raw_client "$FLAGS$(opt 1)")" "0 closed" "NBD_OPT_EXPORT_NAME before TLS: bytes back, end"
in_log primary "option 1 without TLS refused"
log "STARTTLS, then the client hangs up"
# The option reply (20 bytes, NBD_REP_ACK); then the server waits for the handshake.
assert_eq "$(raw_client "$FLAGS$(opt 5)")" "20 open" "NBD_OPT_STARTTLS: bytes back, end"
in_log primary "closed by the client during the TLS handshake"

log "a wrong key, an unknown user"
psktool -u alice -p "$WORK/wrong.psk" >/dev/null || fail "psktool"
in_box primary nbdinfo "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$WORK/wrong.psk" >/dev/null 2>&1 &&
	fail "nbdinfo with a wrong key worked"
in_log primary "TLS handshake failed: An illegal parameter has been received. (user 'alice': not this key?)"
# alice's key under a name the server does not know.
sed 's/^alice:/bob:/' "$PSK" >"$WORK/bob.psk" && chmod 600 "$WORK/bob.psk"
in_box primary nbdcopy --flush "$WORK/b.img" "nbds://bob@127.0.0.1:$PORT/?tls-psk-file=$WORK/bob.psk" \
	>/dev/null 2>&1 && fail "nbdcopy as an unknown user worked"
in_log primary "(user 'bob' is not in the PSK file)"
cmp -n $((4 * MIB)) "$WORK/a.img" "$XM_PRIMARY_DISK" || fail "a refused client changed the disk"

log "the Unix socket: 0660 root:$GROUP"
assert_eq "$(stat -c '%a %U %G' "$SOCK")" "660 root $GROUP" "socket mode and owner"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups nbdinfo "$(nbd_uri)" 2>&1) &&
	fail "nobody used the Unix socket"
grep -q "Permission denied" <<<"$out" || fail "nobody was refused, but not by permission: $out"
log "  nobody: $(head -1 <<<"$out")"
random_file "$WORK/c.img" $MIB
setpriv --reuid=nobody --regid=nogroup --groups="$GID" nbdcopy --flush - "$(nbd_uri)" \
	<"$WORK/c.img" || fail "a member of $GROUP could not write through the socket"
wait_until 10 in_sync "$P" || fail "not in sync after the group member's writes"
cmp -n $MIB "$WORK/c.img" "$XM_SECONDARY_DISK" || fail "the secondary lacks the group member's write"
mirror_down
assert_disks_identical "after TLS and Unix socket clients"

log "--nbd-tcp-insecure on [::1]; the Unix socket without --nbd-group"
attach_box primary --nbd-tcp "[::1]:$PORT" --nbd-tcp-insecure
in_log primary "$P: --nbd-tcp-insecure: NBD on TCP port $PORT without TLS; anyone who can connect reads and overwrites the disk"
assert_eq "$(stat -c '%a %U %G' "$SOCK")" "600 root root" "socket mode and owner"
size=$(in_box primary nbdinfo --size "nbd://[::1]:$PORT/") || fail "nbdinfo on [::1] without TLS"
assert_eq "$size" $((16 * MIB)) "export size over [::1]"
"$XM" detach --dev "$P" || fail "detach primary"
echo "all checks passed"
