# SPDX-License-Identifier: GPL-2.0
# Bash completion for xdpmirror: commands and options as the binary's own --help lists them.
#
# Nothing is listed twice: the commands come from 'xdpmirror --help', a command's options and
# what their values look like from 'xdpmirror CMD --help', read at each TAB, so the completion
# always matches the binary it completes.  Values: a metavar with '|' offers its words; FILE and
# PATH offer files; IF offers the interfaces with a daemon (/run/xdpmirror/IF.ctl), or every
# interface for attach and check; GROUP offers groups.

_xdpmirror_run_dir=/run/xdpmirror

# The commands, one a line: the indented first words of 'xdpmirror --help'.
_xdpmirror_commands() {
	"$1" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'
}

# "OPTION METAVAR" lines (METAVAR empty for a flag) for command $2 ("disk attach" for a
# subcommand), from its usage lines and the rows of its option table.  A word after the option
# is its value when it looks like one: has a '|' or is in capitals (IF, FILE, 0xNNNN, [ADDR:]PORT).
_xdpmirror_options() {
	local bin=$1 cmd=$2 sub=${3:-} line word prev row words
	while IFS= read -r line; do
		row=0
		# Only usage lines (of the subcommand, if any) and option rows name options; the prose
		# around them may mention another command's.
		if [[ $line =~ ^usage:\ |^\ +xdpmirror\  ]]; then
			[ -z "$sub" ] || [[ $line == *"xdpmirror $cmd $sub "* ]] || continue
		elif [[ $line =~ ^\ +--[a-z] ]]; then
			row=1
		else
			continue
		fi
		read -ra words <<<"${line//[\[\]()]/ }"
		prev=''
		for word in "${words[@]}"; do
			if [ -n "$prev" ]; then
				if [[ $word == *'|'* || $word =~ ^(0x)?[A-Z0-9:_]+$ ]]; then
					echo "$prev $word"
				else
					echo "$prev"
				fi
				prev=''
				[ "$row" -eq 0 ] || break
			fi
			[[ $word =~ ^--[a-z][a-z-]*$ ]] && prev=$word
		done
		[ -z "$prev" ] || echo "$prev"
	done < <("$bin" "$cmd" --help 2>/dev/null)
}

# Interfaces with a daemon: the control sockets in the run directory.
_xdpmirror_attached() {
	local f
	for f in "$_xdpmirror_run_dir"/*.ctl; do
		[ -S "$f" ] || continue
		f=${f##*/}
		echo "${f%.ctl}"
	done
}

_xdpmirror() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local bin=${COMP_WORDS[0]} cmd='' sub='' i opts meta line words
	COMPREPLY=()
	# The program as typed ("./build/xdpmirror" too), else the one on PATH.
	command -v "$bin" >/dev/null 2>&1 || bin=xdpmirror

	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=${COMP_WORDS[i]}
			elif [ "$cmd" = disk ] && [ -z "$sub" ]; then
				sub=${COMP_WORDS[i]}
			fi
			;;
		esac
	done

	if [ -z "$cmd" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_xdpmirror_commands "$bin") help" -- "$cur")
		return 0
	fi
	if [ "$cmd" = disk ] && [ -z "$sub" ]; then
		mapfile -t COMPREPLY < <(compgen -W "attach detach" -- "$cur")
		return 0
	fi
	if [ "$cmd" = keygen ]; then
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
	fi

	opts=$(_xdpmirror_options "$bin" "$cmd" "$sub" | sort -u)
	# The value of the option before the cursor.
	meta=$(awk -v o="$prev" '$1 == o && NF > 1 { print $2; exit }' <<<"$opts")
	if [ -n "$meta" ]; then
		case $meta in
		*'|'*) words=${meta//|/ } ;;
		FILE | PATH)
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			return 0
			;;
		IF)
			case $cmd in
			attach | check) words=$(ls /sys/class/net 2>/dev/null) ;;
			*) words=$(_xdpmirror_attached) ;;
			esac
			;;
		GROUP)
			mapfile -t COMPREPLY < <(compgen -g -- "$cur")
			return 0
			;;
		*) return 0 ;; # a number, a MAC, an address: nothing to offer
		esac
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
		return 0
	fi
	words=''
	while read -r line; do
		words+=" ${line%% *}"
	done <<<"$opts"
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	return 0
}

complete -F _xdpmirror xdpmirror
