#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: bad input to every command gets one clear line on stderr and the documented exit
# code (0 ok, 1 failed, 2 usage, 3 not attached), and changes nothing.
source "$(dirname "$0")/../lib.sh"
require_root
pair_up c

# expect CODE PATTERN CMD...: CMD exits with CODE and prints a line matching PATTERN on stderr.
expect() {
	local code=$1 pattern=$2 out rc
	shift 2
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$code" ] || fail "'$*': exit $rc, expected $code (said: $out)"
	grep -qE -- "$pattern" <<<"$out" || fail "'$*': said '$out', expected /$pattern/"
	[ "$(wc -l <<<"$out")" -le 2 ] || fail "'$*': more than one line of error: $out"
}
in_p() { in_box primary "$XM" "$@"; }
good=(--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" --disk "$XM_PRIMARY_DISK" --meta "$(box_meta primary)"
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

expect 1 "attach 'eth9': no such interface" in_p attach "${good[@]}" --dev eth9
expect 1 "disk '/nonexistent': No such file" in_p attach "${good[@]}" --disk /nonexistent
expect 1 "disk '/var/tmp': Is a directory" in_p attach "${good[@]}" --disk /var/tmp
expect 1 "disk '/dev/null': not a block device or regular file" in_p attach "${good[@]}" --disk /dev/null
: >"$WORK/empty.img"
expect 1 "size must be a non-zero multiple" in_p attach "${good[@]}" --disk "$WORK/empty.img"
expect 1 "own MAC address" in_p attach "${good[@]}" --peer "$XM_PRIMARY_MAC"
expect 1 "--queues 4, but the interface has 1 RX queue" in_p attach "${good[@]}" --queues 4
ip -n "$XM_PRIMARY_NS" link set dev "$P" down
expect 1 "attach '$P': interface is down" in_p attach "${good[@]}"
ip -n "$XM_PRIMARY_NS" link set dev "$P" up

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
