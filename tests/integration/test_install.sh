#!/usr/bin/env bash
# Description: make install puts every file in place under DESTDIR and PREFIX (and make uninstall
# takes them away), man renders both pages without a warning, the unit passes systemd-analyze
# verify, and a daemon under a fake systemd notify socket sends READY=1 once it serves, STATUS=
# as its session comes up, WATCHDOG=1 from its event loop (none while the loop is stopped), and
# STOPPING=1 when it detaches.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd man systemd-analyze scdoc python3 taskset chrt
pair_up ins

log "make install DESTDIR=... PREFIX=/usr"
dest=$WORK/dest
make -C "$TOP" -s install DESTDIR="$dest" PREFIX=/usr >"$WORK/install.log" 2>&1 ||
	fail "make install: $(cat "$WORK/install.log")"
want="usr/lib/systemd/system/xdpmirror@.service 644
usr/sbin/xdpmirror 755
usr/sbin/xdpmirror-pair-setup 755
usr/share/bash-completion/completions/xdpmirror 644
usr/share/man/man8/xdpmirror-pair-setup.8 644
usr/share/man/man8/xdpmirror.8 644"
got=$(cd "$dest" && find . -type f -printf '%P %m\n' | LC_ALL=C sort)
assert_eq "$got" "$want" "installed files and modes"
cmp "$dest/usr/sbin/xdpmirror" "$XM" || fail "the installed binary is not build/xdpmirror"
cmp "$dest/usr/sbin/xdpmirror-pair-setup" "$PAIR" || fail "the installed pair-setup differs"
cmp "$dest/usr/share/bash-completion/completions/xdpmirror" "$TOP/completion/xdpmirror.bash" ||
	fail "the installed completion differs"
grep -qx 'ExecStart=/usr/sbin/xdpmirror attach --config /etc/xdpmirror/%I.conf' \
	"$dest/usr/lib/systemd/system/xdpmirror@.service" || fail "the unit's ExecStart: $(grep Exec "$dest"/usr/lib/systemd/system/*)"
"$dest/usr/sbin/xdpmirror" --help | grep -q '^  attach ' || fail "the installed binary does not run"

log "make uninstall removes them"
make -C "$TOP" -s uninstall DESTDIR="$dest" PREFIX=/usr >>"$WORK/install.log" 2>&1 || fail "make uninstall"
left=$(find "$dest" -type f)
[ -z "$left" ] || fail "left after uninstall: $left"

log "man renders both pages without warnings"
for page in xdpmirror.8 xdpmirror-pair-setup.8; do
	MANWIDTH=80 man --warnings -l "$TOP/build/man/$page" >"$WORK/$page.txt" 2>"$WORK/$page.err" ||
		fail "man -l $page failed: $(cat "$WORK/$page.err")"
	[ ! -s "$WORK/$page.err" ] || fail "man -l $page warned: $(cat "$WORK/$page.err")"
	grep -q '^EXIT STATUS' "$WORK/$page.txt" || fail "$page has no EXIT STATUS section"
done
grep -q '^ATTACH OPTIONS' "$WORK/xdpmirror.8.txt" || fail "xdpmirror.8 has no ATTACH OPTIONS"

log "systemd-analyze verify: the unit, installed where its ExecStart exists"
make -C "$TOP" -s install PREFIX="$WORK/prefix" >>"$WORK/install.log" 2>&1 || fail "make install PREFIX"
cp "$WORK/prefix/lib/systemd/system/xdpmirror@.service" "$WORK/xdpmirror@lo.service"
# The device it binds to does not exist without udev; that is the one thing verify may say.
systemd-analyze verify --man=no "$WORK/xdpmirror@lo.service" >"$WORK/verify.txt" 2>&1
grep -v 'sys-subsystem-net-devices-lo.device' "$WORK/verify.txt" | grep -q . &&
	fail "systemd-analyze verify: $(cat "$WORK/verify.txt")"
log "  $(wc -l <"$WORK/verify.txt") line(s) from verify, none but about the device"

log "READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 on a fake notify socket"
sock=$WORK/notify.sock msgs=$WORK/notify.txt
: >"$msgs"
# At READY=1 the listener stops the daemon and looks for the NBD export: it must be there.  On
# the daemon's one CPU and SCHED_FIFO, the listener runs as soon as the message is sent, before
# the daemon can go on.
taskset -c 0 chrt -f 10 "$PY" "$TOP/tests/tools/notify_listen.py" "$sock" "$msgs" "/run/xdpmirror/$P.sock" &
track_server $!
wait_until 5 test -S "$sock" || fail "the listener did not bind $sock"
attach_box secondary
# WATCHDOG_USEC=200 ms: the daemon feeds it every 100 ms.
NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 in_box primary taskset -c 0 "$XM" attach --role primary --dev "$P" \
	--peer "$XM_SECONDARY_MAC" --disk "$XM_PRIMARY_DISK" --meta "$(box_meta primary)" \
	--auth-key "$XM_AUTH_KEY" >"$WORK/primary.log" 2>&1 &
ready() { grep -qx 'READY=1' "$msgs"; }
wait_until 10 ready || fail "no READY=1: $(cat "$msgs") $(cat "$WORK/primary.log")"
# READY=1 comes once the daemon serves: whoever sees it finds the export and the control socket.
# READY=1 comes with the first STATUS=, which names the role that runs.
grep -qx "ready-check: /run/xdpmirror/$P.sock exists; with: STATUS=$P primary, peer not connected, disk attached" \
	"$msgs" || fail "READY=1 before the NBD export listens: $(cat "$msgs")"
answers "$P" || fail "READY=1 but the control socket does not answer"
assert_eq "$(grep -cx 'READY=1' "$msgs")" 1 "READY=1 messages"
assert_eq "$(head -1 "$msgs")" "READY=1" "the first message"
status_up() { grep -q "^STATUS=$P primary, peer connected, disk attached$" "$msgs"; }
wait_until 10 status_up || fail "no STATUS for the session: $(cat "$msgs")"
feeds() { grep -cx 'WATCHDOG=1' "$msgs"; }
fed() { [ "$(feeds)" -ge "$1" ]; }
wait_until 10 fed 5 || fail "fewer than 5 WATCHDOG=1: $(feeds)"

log "a stopped event loop stops feeding the watchdog"
pid=$(daemon_pid primary)
kill -STOP "$pid"
sleep 0.2 # a message the loop sent just before it stopped reaches the file
n=$(feeds)
sleep 1 # five feeding intervals
assert_eq "$(feeds)" "$n" "WATCHDOG=1 while the loop was stopped"
kill -CONT "$pid"
wait_until 5 fed $((n + 2)) || fail "the watchdog was not fed again after SIGCONT"

"$XM" detach --dev "$P" || fail "detach primary"
grep -qx 'STOPPING=1' "$msgs" || fail "no STOPPING=1: $(cat "$msgs")"
grep -c . "$msgs" | xargs -I{} echo "-- {} notify fields, $(feeds) of them WATCHDOG=1"
"$XM" detach --dev "$S" || fail "detach secondary"
echo "all checks passed"
