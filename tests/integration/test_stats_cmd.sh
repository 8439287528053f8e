#!/usr/bin/env bash
# Description: `xdpmirror stats` prints the XDP program's counters as bpftool reads them from the
# pinned map, summed over CPUs: a header, one row per counter in the map's order, zero rows hidden
# except the four totals (all shown with --all); a rate is the change over the interval, so a
# counter moved only before it shows its value at rate 0 and the heartbeats show a rate; --watch
# prints a table per interval, each rate the change since the previous table, and exits 3 when
# the interface is detached; bad options exit 2.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd bpftool
pair_up a --disk-size 16M
N=7

# map_counters IF: "NAME FRAMES BYTES" for every counter of the pinned map, summed over CPUs by
# bpftool and jq, in the map's order, named as stats names them (rx.data, drop.bad_peer, ...).
map_counters() {
	bpftool -j map dump pinned "/sys/fs/bpf/xdpmirror/$1/stats" | jq -r '
		[.[0].formatted.values[].value] as $cpus
		| $cpus[0] | paths(type == "object" and has("frames")) as $p
		| [($p | join(".")), ([$cpus[] | getpath($p).frames] | add), ([$cpus[] | getpath($p).bytes] | add)]
		| @tsv'
}

# check_tables OUTPUT BEFORE AFTER INTERVAL_S [ALL]: every table of a stats output against the
# map read (map_counters) before and after the command ran; prints one line per problem.
# A value lies between the two reads; a rate is at most what the map moved over the interval (the
# command sleeps at least that long) and 0 when the map did not move; with more than one table,
# a rate is 0 exactly when the value did not change since the previous table.  Rows: the map's
# counters in its order, each once; without ALL, zero rows are hidden except the first four.
check_tables() {
	awk -v dev="$S" -v ivl="$4" -v all="${5:-0}" '
	function problem(s) { print "table " t ": " s }
	function end_table(   i, n) {
		if (!t)
			return
		if (!cols)
			problem("no column header")
		for (i = 1; i <= nmap; i++) {
			n = name[i]
			if (n in cf)
				pf[n] = cf[n]
			else if (all || i <= 4 || bf[n] > 0)
				problem(n ": no row; the map had " bf[n] " frames before")
			else
				pf[n] = 0
			pb[n] = (n in cb) ? cb[n] : 0
		}
		delete cf
		delete cb
	}
	FILENAME == ARGV[1] { name[++nmap] = $1; idx[$1] = nmap; bf[$1] = $2; bb[$1] = $3; next }
	FILENAME == ARGV[2] { af[$1] = $2; ab[$1] = $3; next }
	/XDP counters/ {
		end_table()
		t++; cols = 0; last = 0
		if ($0 !~ ("^" dev ": XDP counters, summed over CPUs, rates over [0-9]+[.][0-9] s$"))
			problem("header \"" $0 "\"")
		else if ($(NF - 1) + 0 < ivl)
			problem("rates over " $(NF - 1) " s, less than the interval " ivl " s")
		next
	}
	/^  counter / {
		if ($0 !~ /^  counter +frames +bytes +frames\/s +bytes\/s$/)
			problem("column header \"" $0 "\"")
		cols = 1
		next
	}
	{
		n = $1
		if (!t || NF != 5 || !(n in idx) || $0 !~ /^  [a-z_.]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+$/) {
			problem("not a counter row: \"" $0 "\"")
			next
		}
		if (n in cf)
			problem(n ": two rows")
		else if (idx[n] < last)
			problem(n ": row out of the map order")
		last = idx[n]
		cf[n] = $2; cb[n] = $3
		if (!all && idx[n] > 4 && $2 == 0)
			problem(n ": zero row shown without --all")
		if ($2 < bf[n] || $2 > af[n] || $3 < bb[n] || $3 > ab[n])
			problem(n ": " $2 " frames " $3 " bytes; the map had " bf[n] " " bb[n] " before, " af[n] " " ab[n] " after")
		if ($4 > (af[n] - bf[n]) / ivl + 0.5 || $5 > (ab[n] - bb[n]) / ivl + 0.5)
			problem(n ": " $4 " frames/s " $5 " bytes/s, the map moved " af[n] - bf[n] " " ab[n] - bb[n] " in at least " ivl " s")
		if (t == 1)
			next
		if ($2 < pf[n] || $3 < pb[n])
			problem(n ": went down from " pf[n] " " pb[n] " to " $2 " " $3)
		if (($2 == pf[n] && $4 != 0) || ($3 == pb[n] && $5 != 0))
			problem(n ": " $4 " frames/s " $5 " bytes/s, unchanged since the last table")
		if ($3 > pb[n] && $5 == 0)
			problem(n ": bytes/s 0, moved from " pb[n] " to " $3 " since the last table")
		if ($4 > ($2 - pf[n]) / ivl + 0.5 || $5 > ($3 - pb[n]) / ivl + 0.5)
			problem(n ": " $4 " frames/s " $5 " bytes/s for " $2 - pf[n] " " $3 - pb[n] " since the last table")
	}
	END { end_table(); if (!t) print "no table" }
	' "$2" "$3" "$1"
}

# stats_once WHAT ARGS...: one run of stats on the secondary, checked against the map.
stats_once() {
	local what=$1 all=0 problems
	shift
	[[ " $* " == *" --all "* ]] && all=1
	map_counters "$S" >"$WORK/before"
	"$XM" stats --dev "$S" --interval 500 "$@" >"$WORK/$what" || fail "stats${*:+ $*}: exit $?"
	map_counters "$S" >"$WORK/after"
	problems=$(check_tables "$WORK/$what" "$WORK/before" "$WORK/after" 0.5 $all)
	[ -z "$problems" ] || fail "stats${*:+ $*}: $problems"$'\n'"$(cat "$WORK/$what")"
	assert_eq "$(grep -c "XDP counters" "$WORK/$what")" 1 "tables printed by stats $*"
}
# row FILE NAME: "FRAMES BYTES FRAMES/S BYTES/S" of a counter's row.
row() { awk -v n="$2" '$1 == n { print $2, $3, $4, $5 }' "$1"; }
map_is() { [ "$(bpf_counter "$S" "$1")" = "$2" ]; }

# Heartbeats cross the link both ways; after the initial sync nothing else moves.
mirror_up
assert_eq "$(bpf_counter "$S" drop.bad_peer)" 0 "drop.bad_peer before the test"
assert_eq "$(bpf_counter "$S" drop.not_for_us)" 0 "drop.not_for_us before the test"

log "one table: a counter moved before the interval shows its value at rate 0"
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src 02:00:00:00:00:99 \
	--count $N || fail "xm_rawsend"
wait_until 2 map_is drop.bad_peer $N || fail "drop.bad_peer in the map: expected $N, got $(bpf_counter "$S" drop.bad_peer)"
stats_once table
assert_eq "$(row "$WORK/table" drop.bad_peer)" "$N $(bpf_bytes "$S" drop.bad_peer) 0 0" \
	"drop.bad_peer row (frames bytes frames/s bytes/s)"
read -r _ _ fps bps <<<"$(row "$WORK/table" rx.ping)"
((${fps:-0} > 0 && ${bps:-0} > 0)) || fail "rx.ping: heartbeats every 10 ms, but the row says '$(row "$WORK/table" rx.ping)'"
assert_eq "$(row "$WORK/table" redirect_fail)" "0 0 0 0" "redirect_fail row: a total shows when zero"
[ -z "$(row "$WORK/table" drop.not_for_us)" ] || fail "the zero drop.not_for_us row is shown without --all"

log "--all shows every counter of the map, zero ones too"
stats_once table-all --all
assert_eq "$(grep -c '^  [a-z]' "$WORK/table-all")" $(($(wc -l <"$WORK/before") + 1)) "rows of --all: every counter and the column header"
assert_eq "$(row "$WORK/table-all" drop.not_for_us)" "0 0 0 0" "drop.not_for_us row with --all"

log "--watch: a table per interval; frames moved between two tables show in the later one's rate"
tables() { grep -c "XDP counters" "$1"; }
tables_reach() { [ "$(tables "$1")" -ge "$2" ]; }
# The first table whose drop.not_for_us row shows N frames (0: none yet).
table_with_n() { awk -v n=$N '/XDP counters/ { t++ } $1 == "drop.not_for_us" && $2 == n && !k { k = t } END { print k + 0 }' "$1"; }
shows_n_then() { local k; k=$(table_with_n "$1"); [ "$k" -gt 0 ] && tables_reach "$1" $((k + $2)); }
map_counters "$S" >"$WORK/before"
timeout 60 "$XM" stats --dev "$S" --watch --interval 200 >"$WORK/watch" 2>"$WORK/watch.err" &
wpid=$!
track_worker $wpid
wait_until 10 tables_reach "$WORK/watch" 1 || fail "--watch printed no table: $(cat "$WORK/watch.err")"
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst 02:00:00:00:00:77 --src "$XM_PRIMARY_MAC" \
	--count $N || fail "xm_rawsend"
# Two more tables after the one that shows them, and one beyond that a kill may cut short.
wait_until 10 shows_n_then "$WORK/watch" 3 ||
	fail "--watch never showed drop.not_for_us at $N (map: $(bpf_counter "$S" drop.not_for_us)); output:"$'\n'"$(cat "$WORK/watch")"
stop_pids $wpid
map_counters "$S" >"$WORK/after"
awk -v n="$(tables "$WORK/watch")" '/XDP counters/ { t++ } t < n' "$WORK/watch" >"$WORK/watch-whole"
problems=$(check_tables "$WORK/watch-whole" "$WORK/before" "$WORK/after" 0.2)
[ -z "$problems" ] || fail "stats --watch: $problems"$'\n'"$(cat "$WORK/watch-whole")"
k=$(table_with_n "$WORK/watch-whole")
# The first table was out before the frames were sent.
assert_ge "$k" 2 "the table where drop.not_for_us first shows $N"
log "--watch printed $(tables "$WORK/watch-whole") whole tables, drop.not_for_us reached $N in table $k"

log "bad usage exits 2, a detach ends --watch with exit 3"
for args in "--interval 9" "--interval 3600001" "--colour" "--watch --interval"; do
	# shellcheck disable=SC2086 # the words of one bad command line
	out=$("$XM" stats --dev "$S" $args 2>/dev/null)
	assert_eq "$?" 2 "exit code of stats $args"
	assert_eq "$out" "" "stdout of stats $args"
done
"$XM" stats --interval 100 >/dev/null 2>&1
assert_eq "$?" 2 "exit code of stats without --dev"
assert_eq "$("$XM" stats --dev "$S" --interval 10 | grep -c "XDP counters")" 1 "tables of stats --interval 10"
timeout 60 "$XM" stats --dev "$S" --watch --interval 100 >"$WORK/watch2" 2>"$WORK/watch2.err" &
wpid=$!
track_worker $wpid
wait_until 10 tables_reach "$WORK/watch2" 1 || fail "--watch printed no table: $(cat "$WORK/watch2.err")"
mirror_down
wait_until 5 gone $wpid || fail "stats --watch still running after the detach"
wait $wpid
assert_eq "$?" 3 "exit code of stats --watch when the interface goes"
grep -q "counters went away" "$WORK/watch2.err" || fail "stats --watch said: $(cat "$WORK/watch2.err")"
echo "all checks passed"
