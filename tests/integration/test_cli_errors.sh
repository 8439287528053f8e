#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: bad input to every command gets one clear line on stderr and the documented exit
# code (0 ok, 1 failed, 2 usage, 3 not attached), and changes nothing: after every failed attach no
# metadata file and no directory made for it remain, whether it failed before creating them (the
# NBD addresses, another XDP program: checked first) or after (undone).
source "$(dirname "$0")/../lib.sh"
require_root
pair_up c

# The attaches below keep their metadata in a directory that does not exist: a failed attach must
# leave neither the file nor the directories.
NEWDIR=$WORK/new
META=$NEWDIR/meta/primary.meta
# nothing_left CMD...: after a failed CMD, no metadata file and no directory made for it.
nothing_left() {
	[ ! -e "$META" ] || fail "'$*' failed but left its metadata file $META"
	[ ! -e "$NEWDIR" ] || fail "'$*' failed but left the directory $NEWDIR ($(find "$NEWDIR" | tr '\n' ' '))"
}
# expect CODE PATTERN CMD...: CMD exits with CODE and prints a line matching PATTERN on stderr;
# it leaves nothing behind.  What it said stays in $said.
said=''
expect() {
	local code=$1 pattern=$2 out rc
	shift 2
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	said=$out
	[ "$rc" = "$code" ] || fail "'$*': exit $rc, expected $code (said: $out)"
	grep -qE -- "$pattern" <<<"$out" || fail "'$*': said '$out', expected /$pattern/"
	[ "$(wc -l <<<"$out")" -le 2 ] || fail "'$*': more than one line of error: $out"
	nothing_left "$@"
}
in_p() { in_box primary "$XM" "$@"; }
good=(--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" --disk "$XM_PRIMARY_DISK" --meta "$META"
	--auth-key "$XM_AUTH_KEY")

out=$("$XM" 2>&1)
assert_eq $? 2 "exit code without arguments"
grep -q "usage: xdpmirror" <<<"$out" || fail "no usage without arguments: $out"
expect 2 "unknown command 'frobnicate'" "$XM" frobnicate
expect 2 "missing --role" "$XM" attach --dev "$P" --peer "$XM_SECONDARY_MAC" --disk "$XM_PRIMARY_DISK"
expect 2 "missing --disk" "$XM" attach --role primary --dev "$P" --peer "$XM_SECONDARY_MAC"
expect 2 "--role 'boss': not a role" "$XM" attach "${good[@]}" --role boss
expect 2 "--peer 'zz:00:00:00:00:01': not a MAC" "$XM" attach "${good[@]}" --peer zz:00:00:00:00:01
expect 2 "--peer '02:00:00:00:00': not a MAC" "$XM" attach "${good[@]}" --peer 02:00:00:00:00
expect 2 "must be a unicast" "$XM" attach "${good[@]}" --peer ff:ff:ff:ff:ff:ff
expect 2 "--dev 'a/b': not an interface name" "$XM" attach "${good[@]}" --dev a/b
expect 2 "--dev 'waytoolonginterface'" "$XM" attach "${good[@]}" --dev waytoolonginterface
expect 2 "--queues '0'" "$XM" attach "${good[@]}" --queues 0
expect 2 "--ethertype '0x0800'" "$XM" attach "${good[@]}" --ethertype 0x0800
expect 2 "--ping-interval '-5'" "$XM" attach "${good[@]}" --ping-interval -5
expect 2 "unknown option '--colour'" "$XM" attach "${good[@]}" --colour
expect 2 "option '--disk' needs a value" "$XM" attach --role primary --dev "$P" --peer "$XM_SECONDARY_MAC" --disk
expect 2 "unexpected argument 'extra'" "$XM" attach "${good[@]}" extra
expect 2 "--ping-interval 1000 ms is more than a third of --timeout 100 ms" \
	"$XM" attach "${good[@]}" --ping-interval 1000 --timeout 100
printf 'role = primary\ndev = eth1\nrole = secondary\n' >"$WORK/dup.conf"
expect 2 "config '$WORK/dup.conf' line 3: 'role' given twice \(first on line 1\)" \
	"$XM" attach --config "$WORK/dup.conf"

log "keys: attach wants one (or --no-auth said out loud); keygen never overwrites"
expect 2 "missing --auth-key FILE .*or --no-auth" "$XM" attach "${good[@]:0:10}"
expect 2 "--auth-key and --no-auth exclude each other" "$XM" attach "${good[@]}" --no-auth
expect 2 "usage: xdpmirror keygen FILE" "$XM" keygen
expect 1 "keygen: $XM_AUTH_KEY: File exists \(a key is never overwritten\)" "$XM" keygen "$XM_AUTH_KEY"
"$XM" keygen "$WORK/open.key" >/dev/null || fail "keygen of a new file"
chmod 644 "$WORK/open.key"
expect 1 "auth key $WORK/open.key: mode 0644 lets group or others at it" in_p attach "${good[@]}" --auth-key "$WORK/open.key"
head -c 16 /dev/urandom >"$WORK/short.key"
chmod 600 "$WORK/short.key"
expect 1 "auth key $WORK/short.key: 16 bytes, a key is 32" in_p attach "${good[@]}" --auth-key "$WORK/short.key"
expect 1 "auth key /nonexistent.key: No such file" in_p attach "${good[@]}" --auth-key /nonexistent.key
ln -s "$XM_AUTH_KEY" "$WORK/link.key"
expect 1 "auth key $WORK/link.key: Too many levels of symbolic links" in_p attach "${good[@]}" --auth-key "$WORK/link.key"

cfg=$WORK/bad.conf
printf 'role = primary\n# comment\n\ncolour = blue\n' >"$cfg"
expect 2 "config '$cfg' line 4: unknown key 'colour'" "$XM" attach --config "$cfg"
printf 'role = primary\npeer = 01:02\n' >"$cfg"
expect 2 "config '$cfg' line 2: peer '01:02': not a MAC" "$XM" attach --config "$cfg"
expect 2 "config '/nonexistent.conf': No such file" "$XM" attach --config /nonexistent.conf

# checked_first: the last attach failed before it made its metadata.
checked_first() { ! grep -q "created metadata" <<<"$said" || fail "checked only after the metadata was made: $said"; }
expect 1 "attach 'eth9': no such interface" in_p attach "${good[@]}" --dev eth9
expect 1 "disk '/nonexistent': No such file" in_p attach "${good[@]}" --disk /nonexistent
expect 1 "disk '/var/tmp': Is a directory" in_p attach "${good[@]}" --disk /var/tmp
expect 1 "disk '/dev/null': not a block device or regular file" in_p attach "${good[@]}" --disk /dev/null
: >"$WORK/empty.img"
expect 1 "size must be a non-zero multiple" in_p attach "${good[@]}" --disk "$WORK/empty.img"
expect 1 "own MAC address" in_p attach "${good[@]}" --peer "$XM_PRIMARY_MAC"
expect 1 "--queues 4, but the interface has 1 RX queue" in_p attach "${good[@]}" --queues 4
checked_first
ip -n "$XM_PRIMARY_NS" link set dev "$P" down
expect 1 "attach '$P': interface is down" in_p attach "${good[@]}"
ip -n "$XM_PRIMARY_NS" link set dev "$P" up

log "attach checks what it can before it creates its metadata, and undoes it when it fails later"
expect 1 "--nbd-socket '/nonexistent/x.sock': no directory '/nonexistent'" \
	in_p attach "${good[@]}" --nbd-socket /nonexistent/x.sock
checked_first
mkdir "$WORK/notasock"
expect 1 "--nbd-socket '$WORK/notasock': a file that is not a socket is there" \
	in_p attach "${good[@]}" --nbd-socket "$WORK/notasock"
checked_first
PORT=$((20000 + RANDOM % 20000))
in_box primary $PY -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").close(); time.sleep(60)' "$PORT" "$WORK/listening" &
track_worker $!
wait_until 10 test -e "$WORK/listening" || fail "no listener on 127.0.0.1:$PORT"
expect 1 "--nbd-tcp $PORT: Address already in use" in_p attach "${good[@]}" --nbd-tcp "$PORT" --nbd-tcp-insecure
checked_first
ip -n "$XM_PRIMARY_NS" link set dev "$P" xdpdrv obj "$TOP/build/tools/xm_pass.bpf.o" sec xdp.frags ||
	fail "cannot attach another XDP program to $P"
expect 1 "attach '$P': another XDP program is attached" in_p attach "${good[@]}"
checked_first
ip -n "$XM_PRIMARY_NS" link set dev "$P" xdpdrv off
# veth has no zero-copy AF_XDP: this fails after the metadata was made, and undoes it.
expect 1 "cannot create AF_XDP socket on queue 0 \(zerocopy mode\)" in_p attach "${good[@]}" --xsk-mode zerocopy
out=$(in_p attach "${good[@]}" --xsk-mode zerocopy 2>&1)
grep -q "created metadata '$META'" <<<"$out" ||
	fail "the zerocopy attach did not get as far as creating its metadata, so nothing was undone: $out"
nothing_left attach --xsk-mode zerocopy
# The default place, /var/lib/xdpmirror/IF.meta, the same.
defmeta=/var/lib/xdpmirror/$P.meta
[ -d /var/lib/xdpmirror ] || at_exit rmdir /var/lib/xdpmirror
had_dir=$([ -d /var/lib/xdpmirror ] && echo yes)
expect 1 "zerocopy mode" in_p attach "${good[@]:0:8}" --auth-key "$XM_AUTH_KEY" --xsk-mode zerocopy
[ ! -e "$defmeta" ] || fail "a failed attach left $defmeta"
[ -n "$had_dir" ] || [ ! -e /var/lib/xdpmirror ] || fail "a failed attach left /var/lib/xdpmirror"

# None of the failed attaches may leave anything behind.
[ ! -e "/sys/fs/bpf/xdpmirror/$P" ] || fail "a failed attach left pins"
[ ! -e "/run/xdpmirror/$P.lock" ] || fail "a failed attach left its lock file"
xdp_attached primary && fail "a failed attach left XDP attached"

expect 3 "" "$XM" status --dev "$P"
expect 3 "detach '$P': not attached" "$XM" detach --dev "$P"
expect 3 "stats '$P': not attached" "$XM" stats --dev "$P"
expect 2 "missing --dev" "$XM" detach
expect 2 "stats: --interval 'fast'" "$XM" stats --dev "$P" --interval fast
expect 2 "status: '../x': not an interface name" "$XM" status --dev ../x

log "check attaches the real program for a moment and leaves nothing behind"
out=$(in_p check --dev "$P") || fail "check failed: $out"
grep -q "native XDP attach works" <<<"$out" || fail "check said: $out"
[ ! -e "/sys/fs/bpf/xdpmirror/$P" ] || fail "check left pins"
xdp_attached primary && fail "check left XDP attached"
echo "all checks passed"
