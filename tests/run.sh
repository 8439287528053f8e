#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs xdpmirror's tests: cmocka unit binaries, then netns integration scripts.  Each test exits
# 0 (pass), 77 (skip) or anything else (fail).  Usage: tests/run.sh [NAME...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logdir=$top/build/test-logs
mkdir -p "$logdir"

# Test namespaces all start with "xmt"; the demo's (xm-*) and a user's are never touched.
cleanup_leftovers() {
	local ns prefix
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^xmt[a-z0-9]*-(primary|secondary)$'); do
		prefix=${ns%-*}
		scripts/pair-setup.sh netns down --prefix "$prefix" >/dev/null 2>&1 || ip netns del "$ns"
	done
	rm -rf /sys/fs/bpf/xdpmirror/xmt* /run/xdpmirror/xmt* /var/tmp/xdpmirror-xmt* 2>/dev/null
	return 0
}

all_tests() {
	local f
	for f in build/tests/test_*; do [ -x "$f" ] && basename "$f"; done
	for f in tests/integration/test_*.sh; do [ -f "$f" ] && basename "$f" .sh; done
}

run_one() {
	local name=$1 cmd
	if [ -x "build/tests/$name" ]; then
		cmd=("build/tests/$name")
	elif [ -f "tests/integration/$name.sh" ]; then
		cmd=(bash "tests/integration/$name.sh")
	else
		echo "unknown test '$name' (see: ls build/tests tests/integration)" >&2
		return 2
	fi
	timeout --kill-after=10 300 "${cmd[@]}" >"$logdir/$name.log" 2>&1
}

if [ $# -gt 0 ]; then
	# Accept "make test TESTS='a b'" as well as separate arguments.
	read -r -a tests <<<"$*"
else
	mapfile -t tests < <(all_tests)
fi

trap 'cleanup_leftovers; exit 130' INT TERM
passed=0 failed=0 skipped=0
failed_names=()
for t in "${tests[@]}"; do
	start=$EPOCHREALTIME
	run_one "$t"
	rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	cleanup_leftovers
	case $rc in
	0) printf 'PASS %-28s %5ss\n' "$t" "$secs"; passed=$((passed + 1)) ;;
	77) printf 'SKIP %-28s %5ss  %s\n' "$t" "$secs" "$(grep -m1 -i skip "$logdir/$t.log" 2>/dev/null)"
	    skipped=$((skipped + 1)) ;;
	*) printf 'FAIL %-28s %5ss  (exit %d, log %s)\n' "$t" "$secs" "$rc" "$logdir/$t.log"
	   sed 's/^/    | /' "$logdir/$t.log" 2>/dev/null | tail -25
	   failed=$((failed + 1)); failed_names+=("$t") ;;
	esac
done
echo
[ $failed -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
