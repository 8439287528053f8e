#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs xdpmirror's tests: cmocka unit binaries, then netns integration scripts.  Each test exits
# 0 (pass), 77 (skip) or anything else (fail); one that runs longer than XM_TEST_TIMEOUT seconds
# (default 300) is killed and fails.  Usage: tests/run.sh [NAME...]
#
# XM_TEST_REQUIRE_ALL=1 (.ci/run sets it): a skip is a failure, and the tests fail themselves
# instead of skipping, so nothing that cannot run where CI runs passes for having been skipped.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logdir=$top/build/test-logs
mkdir -p "$logdir"

# lib.sh picks this run's id (XM_RUN) and exports it: every test's namespaces, interfaces and
# files start with xm<id>, so two runs on one machine never collide, and the clean-up below
# touches only what this run made.
# shellcheck source=tests/lib.sh
source "$top/tests/lib.sh"
set +o pipefail

require_all_tests() { [ -n "${XM_TEST_REQUIRE_ALL:-}" ] && [ "$XM_TEST_REQUIRE_ALL" != 0 ]; }

# What a test killed by its timeout may have left: its processes, mounts, loop devices,
# namespaces, pins and files.
cleanup_leftovers() {
	local ns prefix dir
	pkill -9 -f "xdpmirror-xm$XM_RUN" 2>/dev/null
	for dir in /var/tmp/xdpmirror-xm"$XM_RUN"*; do
		[ -d "$dir" ] && unmount_all_under "$dir"
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^xm$XM_RUN[a-z0-9]*-"); do
		prefix=${ns%%-*}
		scripts/pair-setup.sh netns down --prefix "$prefix" >/dev/null 2>&1
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf /sys/fs/bpf/xdpmirror/xm"$XM_RUN"* /run/xdpmirror/xm"$XM_RUN"* /var/tmp/xdpmirror-xm"$XM_RUN"* 2>/dev/null
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
	timeout --kill-after=10 "${XM_TEST_TIMEOUT:-300}" "${cmd[@]}" >"$logdir/$name.log" 2>&1
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
if require_all_tests; then
	echo "run xm$XM_RUN: every test must run (XM_TEST_REQUIRE_ALL): a skip is a failure"
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: the suite needs root (namespaces, XDP, AF_XDP); running as $(id -un)"
		exit 1
	fi
fi
suite_start=$(now_us)
for t in "${tests[@]}"; do
	start=$(now_us)
	run_one "$t"
	rc=$?
	secs=$(secs_since "$start")
	cleanup_leftovers
	if [ $rc = 77 ] && require_all_tests; then
		printf 'FAIL %-28s %6ss  skipped, and every test must run here: %s\n' "$t" "$secs" \
			"$(grep -m1 -i skip "$logdir/$t.log" 2>/dev/null)"
		failed=$((failed + 1)); failed_names+=("$t")
		continue
	fi
	case $rc in
	0) printf 'PASS %-28s %6ss\n' "$t" "$secs"; passed=$((passed + 1)) ;;
	77) printf 'SKIP %-28s %6ss  %s\n' "$t" "$secs" "$(grep -m1 -i skip "$logdir/$t.log" 2>/dev/null)"
	    skipped=$((skipped + 1)) ;;
	*) printf 'FAIL %-28s %6ss  (exit %d, log %s)\n' "$t" "$secs" "$rc" "$logdir/$t.log"
	   sed 's/^/    | /' "$logdir/$t.log" 2>/dev/null | tail -25
	   failed=$((failed + 1)); failed_names+=("$t") ;;
	esac
done
echo
[ $failed -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed, $skipped skipped in $(secs_since "$suite_start") s"
[ $failed -eq 0 ]
