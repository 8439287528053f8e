#!/usr/bin/env bash
# Description: bash completion (completion/xdpmirror.bash), called as bash calls it (COMP_WORDS,
# COMP_CWORD): commands, each command's own options, the words of an option's value, files, and
# the interface of a daemon that really runs (and not of one that does not).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
pair_up cmp
# shellcheck source=completion/xdpmirror.bash
source "$TOP/completion/xdpmirror.bash"
PATH=$TOP/build:$PATH

# complete LINE: what TAB offers at the end of LINE (a trailing space starts a new word), sorted,
# on one line.
complete() {
	read -ra COMP_WORDS <<<"$1"
	[[ $1 == *' ' ]] && COMP_WORDS+=('')
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_xdpmirror
	printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | xargs
}
# offers LINE WANT: TAB at the end of LINE offers exactly WANT.
offers() {
	local got
	got=$(complete "$1")
	[ "$got" = "$2" ] || fail "'$1<TAB>': expected '$2', got '$got'"
	log "  '$1<TAB>' -> $got"
}
# includes LINE WORD...: TAB at the end of LINE offers at least these words.
includes() {
	local line=$1 got w
	shift
	got=" $(complete "$line") "
	for w in "$@"; do
		[[ $got == *" $w "* ]] || fail "'$line<TAB>' does not offer '$w': $got"
	done
}

log "commands"
cmds=$(xdpmirror --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | xargs)
# shellcheck disable=SC2086 # one word per command
includes "xdpmirror " $cmds help
offers "xdpmirror st" "stats status"
offers "xdpmirror de" "demote detach"

log "options of each command, and only of it"
offers "xdpmirror attach --xsk" "--xsk-mode"
offers "xdpmirror promote --" "--dev --force"
offers "xdpmirror verify --dev eth0 --" "--dev --mark"
offers "xdpmirror disk " "attach detach"
offers "xdpmirror disk attach --" "--dev --disk --full"
offers "xdpmirror disk detach --" "--dev"
includes "xdpmirror attach --" --role --peer --auth-key --nbd-tcp-insecure --config --daemon
[[ " $(complete "xdpmirror attach --") " != *" --json "* ]] || fail "attach offers status's --json"

log "values"
offers "xdpmirror attach --xsk-mode " "auto copy zerocopy"
offers "xdpmirror attach --role s" "secondary"
offers "xdpmirror attach --force " "no yes"
offers "xdpmirror check --dev lo --xdp-mode " "native skb"
offers "xdpmirror attach --peer " ""
offers "xdpmirror attach --disk $WORK/prim" "$XM_PRIMARY_DISK"
offers "xdpmirror keygen $WORK/pair.k" "$XM_AUTH_KEY"
includes "xdpmirror attach --dev " lo

log "--dev of a command that talks to a daemon: the interfaces that have one"
attach_box secondary
offers "xdpmirror status --dev $XM_TEST_PREFIX" "$S"
offers "xdpmirror disk attach --dev $XM_TEST_PREFIX" "$S"
"$XM" detach --dev "$S" || fail "detach"
offers "xdpmirror status --dev $XM_TEST_PREFIX" ""
echo "all checks passed"
