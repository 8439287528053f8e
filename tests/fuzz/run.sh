#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs each fuzz target (build/fuzz/<target>, from `make fuzz`) for RUNS inputs, starting from its
# committed corpus tests/fuzz/corpus/<target>/.  New inputs go to build/fuzz/corpus/<target>/,
# never into the committed corpus; a crash goes to build/fuzz/artifacts/<target>/ and the log to
# build/fuzz/logs/<target>.log.  Prints executions and time per target; fails if any crashed.
# Usage: tests/fuzz/run.sh RUNS TARGET...
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
if [ $# -lt 2 ]; then
	echo "usage: tests/fuzz/run.sh RUNS TARGET..." >&2
	exit 2
fi
runs=$1
shift

# Seconds since a `date +%s%N` stamp, with one decimal.
secs_since() { echo "$(( ($(date +%s%N) - $1) / 100000000 ))" | sed 's/.$/.&/; s/^\./0./'; }

failed=()
for t in "$@"; do
	new=build/fuzz/corpus/$t
	art=build/fuzz/artifacts/$t
	log=build/fuzz/logs/$t.log
	mkdir -p "$new" "$art" build/fuzz/logs
	start=$(date +%s%N)
	# The first directory gets what the run finds; the committed corpus is only read.
	"build/fuzz/$t" -runs="$runs" -timeout=30 -print_final_stats=1 \
		-artifact_prefix="$art/" "$new" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	secs=$(secs_since "$start")
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		printf 'PASS %-18s %10s execs in %7ss (%s/s), %s, %s inputs in %s\n' "$t" \
			"${execs:-?}" "$secs" "${rate:-?}" "${cov:-cov: ?}" \
			"$(find "$new" -type f | wc -l)" "$new"
	else
		printf 'FAIL %-18s exit %d after %ss; log %s, reproducer in %s/\n' "$t" "$rc" \
			"$secs" "$log" "$art"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_|fake loop|artifact_prefix|Test unit written)' \
			"$log" | sed 's/^/    | /' | head -20
		failed+=("$t")
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "crashed: ${failed[*]}"; exit 1; }
