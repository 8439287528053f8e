#!/usr/bin/env bash
# Description: the man pages keep up with the programs: every command 'xdpmirror --help' lists has
# its section in xdpmirror(8) ("## CMD"), every long option a command's --help names is
# documented there (attach's under ATTACH OPTIONS), and every option and netns command of
# 'pair-setup.sh --help' is in xdpmirror-pair-setup(8).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
[ -x "$XM" ] || fail "build/xdpmirror missing (make)"
page=$TOP/man/xdpmirror.8.scd setup_page=$TOP/man/xdpmirror-pair-setup.8.scd

# section FILE HEADING: the lines under HEADING up to the next heading of any level.
section() { awk -v h="$2" '$0 == h { on = 1; next } /^#/ { on = 0 } on' "$1"; }
# long_options: every --option a help text names, but --help itself.
long_options() { grep -oE -- '--[a-z][a-z-]*[a-z]' | grep -vx -- '--help' | sort -u; }

missing=()
commands=$("$XM" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(wc -w <<<"$commands")" -ge 11 ] || fail "xdpmirror --help lists too few commands: $commands"
for cmd in $commands; do
	text=$(section "$page" "## $cmd")
	[ -n "$text" ] || { missing+=("command '$cmd' (no '## $cmd' section)"); continue; }
	[ "$cmd" != attach ] || text=$(section "$page" "# ATTACH OPTIONS")
	for opt in $("$XM" "$cmd" --help | long_options); do
		grep -qF -- "*$opt*" <<<"$text" || missing+=("$cmd $opt")
	done
done
log "xdpmirror(8): $(wc -w <<<"$commands") commands checked"

for opt in $("$PAIR" --help | long_options); do
	grep -qF -- "*$opt*" "$setup_page" || missing+=("pair-setup $opt")
done
for sub in up down exec; do
	grep -qF -- "*netns $sub*" "$setup_page" || missing+=("pair-setup netns $sub")
done
log "xdpmirror-pair-setup(8): $("$PAIR" --help | long_options | wc -l) options checked"

[ ${#missing[@]} -eq 0 ] || fail "not in the man pages: ${missing[*]}"
echo "all checks passed"
