#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Set up an xdpmirror pair: two simulated boxes in network namespaces, or one real box's NIC and config.
set -Eeuo pipefail

PROG=$(basename "$0")

# Fixed, locally administered MACs so simulated pairs (and their IPv6 link-local addresses) are
# the same on every run.
readonly NETNS_PRIMARY_MAC=02:58:4d:00:00:01
readonly NETNS_SECONDARY_MAC=02:58:4d:00:00:02
readonly NETNS_DEFAULT_PREFIX=xm
readonly NETNS_DEFAULT_SIZE=64M
# Same places as XM_PIN_ROOT and XM_RUN_DIR in include/xdpmirror.h.
readonly PIN_ROOT=/sys/fs/bpf/xdpmirror
readonly RUN_DIR=/run/xdpmirror
readonly CONFIG_DIR=/etc/xdpmirror
readonly UNIT_FILE=/etc/systemd/system/xdpmirror@.service
# Where 'make install' may have put the unit (UNITDIR: PREFIX/lib/systemd/system).
readonly UNIT_DIRS=(/etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system
	/lib/systemd/system)
# XM_MAX_QUEUES: the XDP program's XSKMAP has this many slots.
readonly MAX_QUEUES=64

DRY_RUN=0
# 'netns up' prints its own summary instead of one line per file.
QUIET_WRITES=0

usage() {
	cat <<EOF
Usage:
  $PROG netns up [--prefix P] [--mtu N] [--disk-size SIZE] [--queues N]
  $PROG netns down [--prefix P]
  $PROG netns exec primary|secondary [--prefix P] -- CMD [ARGS...]
  $PROG --role primary|secondary --dev IF --disk PATH --peer MAC
        [--mtu N | --jumbo] [--config FILE] [--auth-key FILE] [--install-unit] [--dry-run]
        [--xdpmirror PATH]

Simulated pair on one machine (root):
  netns up      create namespaces P-primary and P-secondary joined by a veth pair
                (Pp0 <-> Ps0, MACs $NETNS_PRIMARY_MAC / $NETNS_SECONDARY_MAC, no IPv4),
                zero-filled disk images, the pair's key (pair.key) and an env file, all
                under /var/tmp/xdpmirror-P/
  netns down    kill everything in both namespaces, delete them, remove their pins,
                run-time files and /var/tmp/xdpmirror-P/ (safe to repeat)
  netns exec    run CMD in a box's network namespace, keeping the host's mount
                namespace so /sys/fs/bpf pins stay visible

  --prefix P        namespace/interface prefix: 'xm' plus up to 6 of [a-z0-9] (default $NETNS_DEFAULT_PREFIX)
  --mtu N           MTU of both veth ends (default 1500)
  --disk-size SIZE  bytes per disk image, suffix K, M or G allowed (default $NETNS_DEFAULT_SIZE)
  --queues N        RX and TX queues of each veth end, 1-64 (default 1)

A real box (root, unless --dry-run):
  check the NIC (driver, queues, MTU, native XDP), set the MTU, mount bpffs, make the
  pair's key on the first box (copy it to the second before running there) and write
  the configuration that 'xdpmirror attach --config' reads

  --role R          primary or secondary
  --dev IF          the NIC that faces the peer
  --disk PATH       the block device (or file) to mirror
  --peer MAC        the peer NIC's MAC address
  --mtu N           set the NIC's MTU to N
  --jumbo           same as --mtu 9000
  --config FILE     where to write the configuration (default $CONFIG_DIR/IF.conf)
  --auth-key FILE   the pair's shared key (default $CONFIG_DIR/IF.key); made with
                    'xdpmirror keygen' when missing, used as it is when present
  --install-unit    make xdpmirror@.service available (the one 'make install' put in place,
                    else $UNIT_FILE from the source tree) and reload systemd
  --dry-run         print what would be done ('would: ...'), change nothing
  --xdpmirror PATH  the xdpmirror binary (default: on PATH, else build/xdpmirror)

  -h, --help        show this help
EOF
}

# --- messages and errors -------------------------------------------------------------------

# Environment errors (something on the machine is wrong): exit 1.
die() {
	echo "pair-setup: $*" >&2
	exit 1
}

# Usage errors (the command line is wrong): exit 2.
die_usage() {
	echo "pair-setup: $*" >&2
	exit 2
}

warn() {
	echo "pair-setup: warning: $*" >&2
}

# A command that fails without a message of ours still gets one line that says what failed.
# Only the top-level shell reports, so a failure inside $(...) is not reported twice; SIGPIPE
# (status 141) is a reader such as 'head' leaving early, not a failure.
on_error() {
	[ "$1" -ne 141 ] && [ "$BASH_SUBSHELL" -eq 0 ] || return 0
	echo "pair-setup: command failed: $2" >&2
}
trap 'on_error $? "$BASH_COMMAND"' ERR

need_root() {
	[ "$(id -u)" -eq 0 ] || die "$1: must run as root${2:+ ($2)}"
}

need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || die "'$t' not found (run 'make deps')"
	done
}

# Option values may be given as '--opt VALUE'; fail clearly when VALUE is missing.
need_value() {
	[ "$2" -ge 2 ] || die_usage "option '$1' needs a value"
}

# --- side effects: everything that changes the machine goes through these two -------------

# Run a command, or in dry-run mode only say what would run.
run() {
	if [ "$DRY_RUN" -eq 1 ]; then
		echo "would: $(printf '%q ' "$@" | sed 's/ $//')"
		return 0
	fi
	"$@"
}

# Write stdin to a file (mode $2, default 0644) atomically, so a reader never sees half a
# file; in dry-run mode show the content instead.
write_file() {
	local path=$1 mode=${2:-0644} dir tmp
	dir=$(dirname "$path")
	if [ "$DRY_RUN" -eq 1 ]; then
		[ -d "$dir" ] || echo "would: mkdir -p $(printf '%q' "$dir")"
		echo "would: write $path:"
		sed 's/^./    &/'
		return 0
	fi
	mkdir -p "$dir"
	tmp=$(mktemp "$path.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$path"
	[ "$QUIET_WRITES" -eq 1 ] || echo "wrote $path"
}

# --- validation helpers --------------------------------------------------------------------

# Parse SIZE with an optional K/M/G suffix (powers of 1024) into SIZE_BYTES.
parse_size() {
	local s=$1 n unit mult
	[[ $s =~ ^([0-9]{1,15})([KkMmGg]?)$ ]] || die_usage "bad size '$s' (try 64M)"
	n=$((10#${BASH_REMATCH[1]}))
	unit=${BASH_REMATCH[2]^^}
	case $unit in
	K) mult=1024 ;;
	M) mult=$((1024 * 1024)) ;;
	G) mult=$((1024 * 1024 * 1024)) ;;
	*) mult=1 ;;
	esac
	SIZE_BYTES=$((n * mult))
	# Disks are opened with O_DIRECT, which works in whole blocks.
	if [ "$SIZE_BYTES" -le 0 ] || [ $((SIZE_BYTES % 4096)) -ne 0 ]; then
		die_usage "bad size '$s' (must be a positive multiple of 4096 bytes)"
	fi
}

check_mtu() {
	if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || [ "$((10#$1))" -lt 68 ] || [ "$((10#$1))" -gt 65535 ]; then
		die_usage "bad mtu '$1' (68..65535)"
	fi
}

# --- mode 1: a simulated pair in network namespaces ----------------------------------------

check_prefix() {
	[[ $1 =~ ^xm[a-z0-9]{0,6}$ ]] ||
		die_usage "netns: bad prefix '$1' (must start with 'xm', <= 8 chars)"
}

netns_exists() {
	[ -e "/run/netns/$1" ]
}

# Wait until the IPv6 link-local address of interface $2 in namespace $1 has left DAD
# ('tentative'), so callers can ping it as soon as 'up' returns.  Returns 1 after 3 s.
wait_link_local() {
	local ns=$1 ifname=$2 i out
	for ((i = 0; i < 30; i++)); do
		out=$(ip -n "$ns" -6 addr show dev "$ifname" scope link 2>/dev/null || true)
		if [[ $out == *inet6* && $out != *tentative* ]]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# PIDs in namespace $1 except this script's own, so a 'down' run from inside the box finishes.
netns_pids_but_self() {
	ip netns pids "$1" 2>/dev/null | grep -vx "$$" || true
}

# Kill every process in namespace $1: SIGTERM, up to 3 s for a clean exit, then SIGKILL.
netns_kill_all() {
	local ns=$1 pids i
	pids=$(netns_pids_but_self "$ns")
	[ -n "$pids" ] || return 0
	echo "$pids" | xargs -r kill 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		pids=$(netns_pids_but_self "$ns")
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	echo "$pids" | xargs -r kill -9 2>/dev/null || true
}

# Remove everything 'netns up' and the daemons it hosts may have left; missing parts are fine.
netns_teardown() {
	local p=$1 ns ifname removed=()
	for ns in "$p-primary" "$p-secondary"; do
		netns_exists "$ns" || continue
		netns_kill_all "$ns"
		ip netns del "$ns"
		removed+=("$ns")
	done
	for ifname in "${p}p0" "${p}s0"; do
		rm -rf "${PIN_ROOT:?}/$ifname"
		rm -f "$RUN_DIR/$ifname".*
	done
	if [ -d "/var/tmp/xdpmirror-$p" ]; then
		rm -rf "/var/tmp/xdpmirror-$p"
		removed+=("/var/tmp/xdpmirror-$p")
	fi
	[ ${#removed[@]} -eq 0 ] || echo "removed ${removed[*]}"
}

# Bring one box's end of the veth up with its fixed MAC and the MTU.
netns_box_up() {
	local ns=$1 ifname=$2 mac=$3 mtu=$4
	# The link has exactly two fixed, distinct MACs: duplicate address detection cannot find
	# anything and only delays the link-local address by a second or two.  Best effort: the
	# wait below copes if the sysctl is missing.
	nsenter --net="/run/netns/$ns" sysctl -qw "net.ipv6.conf.$ifname.accept_dad=0" \
		>/dev/null 2>&1 || true
	ip -n "$ns" link set dev lo up
	ip -n "$ns" link set dev "$ifname" address "$mac" mtu "$mtu" up
}

# Fill a disk image with real zeros: O_DIRECT into holes or unwritten extents is slow and
# needs metadata updates on every first write, which defeats durability tests.
make_disk() {
	local path=$1 bytes=$2
	rm -f "$path"
	dd if=/dev/zero of="$path" bs=1M count="$bytes" iflag=count_bytes status=none
}

netns_up() {
	local prefix=$NETNS_DEFAULT_PREFIX mtu=1500 size=$NETNS_DEFAULT_SIZE queues=1
	while [ $# -gt 0 ]; do
		case $1 in
		--prefix) need_value "$1" $#; prefix=$2; shift ;;
		--prefix=*) prefix=${1#*=} ;;
		--mtu) need_value "$1" $#; mtu=$2; shift ;;
		--mtu=*) mtu=${1#*=} ;;
		--disk-size) need_value "$1" $#; size=$2; shift ;;
		--disk-size=*) size=${1#*=} ;;
		--queues) need_value "$1" $#; queues=$2; shift ;;
		--queues=*) queues=${1#*=} ;;
		-h | --help) usage; exit 0 ;;
		-*) die_usage "unknown option '$1'" ;;
		*) die_usage "netns up: unexpected argument '$1'" ;;
		esac
		shift
	done
	check_prefix "$prefix"
	check_mtu "$mtu"
	if ! [[ $queues =~ ^[0-9]{1,2}$ ]] || [ "$((10#$queues))" -lt 1 ] || [ "$((10#$queues))" -gt 64 ]; then
		die_usage "netns up: bad queue count '$queues' (1..64)"
	fi
	mtu=$((10#$mtu))
	parse_size "$size"
	need_root "netns"
	need_tools ip nsenter dd

	local pns=$prefix-primary sns=$prefix-secondary pif=${prefix}p0 sif=${prefix}s0
	local dir=/var/tmp/xdpmirror-$prefix ns
	for ns in "$pns" "$sns"; do
		if netns_exists "$ns"; then
			die "netns: namespace '$ns' already exists (run '$PROG netns down --prefix $prefix' first)"
		fi
	done

	# From here on, a failure tears down whatever was built so the next 'up' starts clean.
	# shellcheck disable=SC2064 # expand the prefix now, the trap runs after we return
	trap "netns_teardown $(printf '%q' "$prefix") >/dev/null 2>&1 || true" EXIT

	ip netns add "$pns"
	ip netns add "$sns"
	ip link add "$pif" netns "$pns" numrxqueues "$queues" numtxqueues "$queues" type veth \
		peer name "$sif" netns "$sns" numrxqueues "$queues" numtxqueues "$queues"
	netns_box_up "$pns" "$pif" "$NETNS_PRIMARY_MAC" "$mtu"
	netns_box_up "$sns" "$sif" "$NETNS_SECONDARY_MAC" "$mtu"

	mkdir -p "$dir"
	make_disk "$dir/primary.img" "$SIZE_BYTES"
	make_disk "$dir/secondary.img" "$SIZE_BYTES"
	sync "$dir/primary.img" "$dir/secondary.img"
	# Both simulated boxes share the host's file system, so one key file serves both.
	find_xdpmirror ''
	[ -n "$XDPMIRROR" ] || die "netns up: xdpmirror binary not found for the pair's key (run 'make')"
	"$XDPMIRROR" keygen "$dir/pair.key" >/dev/null

	# Values are quoted with %q so the file is safe to source whatever they contain.
	{
		printf '# xdpmirror simulated pair, written by %s netns up\n' "$PROG"
		printf 'XM_PREFIX=%q\n' "$prefix"
		printf 'XM_PRIMARY_NS=%q\n' "$pns"
		printf 'XM_SECONDARY_NS=%q\n' "$sns"
		printf 'XM_PRIMARY_IF=%q\n' "$pif"
		printf 'XM_SECONDARY_IF=%q\n' "$sif"
		printf 'XM_PRIMARY_MAC=%q\n' "$NETNS_PRIMARY_MAC"
		printf 'XM_SECONDARY_MAC=%q\n' "$NETNS_SECONDARY_MAC"
		printf 'XM_PRIMARY_DISK=%q\n' "$dir/primary.img"
		printf 'XM_SECONDARY_DISK=%q\n' "$dir/secondary.img"
		printf 'XM_MTU=%q\n' "$mtu"
		printf 'XM_QUEUES=%q\n' "$queues"
		printf 'XM_DISK_SIZE=%q\n' "$SIZE_BYTES"
		printf 'XM_AUTH_KEY=%q\n' "$dir/pair.key"
	} | QUIET_WRITES=1 write_file "$dir/pair.env"

	# IPv6 needs an MTU of at least 1280; below that there is no link-local address to wait for.
	if [ -d /proc/sys/net/ipv6 ] && [ "$mtu" -ge 1280 ]; then
		wait_link_local "$pns" "$pif" ||
			warn "netns: IPv6 link-local address on '$pif' not ready after 3 s"
		wait_link_local "$sns" "$sif" ||
			warn "netns: IPv6 link-local address on '$sif' not ready after 3 s"
	fi

	trap - EXIT
	echo "pair '$prefix' is up (mtu $mtu, disks $SIZE_BYTES bytes each):"
	printf '  %-9s  %-17s  %-10s  %s  %s\n' \
		primary "$pns" "$pif" "$NETNS_PRIMARY_MAC" "$dir/primary.img" \
		secondary "$sns" "$sif" "$NETNS_SECONDARY_MAC" "$dir/secondary.img"
	echo "  key        $dir/pair.key (attach --auth-key)"
	echo "  env file   $dir/pair.env"
	echo "  run in a box: $PROG netns exec primary --prefix $prefix -- CMD"
}

netns_down() {
	local prefix=$NETNS_DEFAULT_PREFIX
	while [ $# -gt 0 ]; do
		case $1 in
		--prefix) need_value "$1" $#; prefix=$2; shift ;;
		--prefix=*) prefix=${1#*=} ;;
		-h | --help) usage; exit 0 ;;
		-*) die_usage "unknown option '$1'" ;;
		*) die_usage "netns down: unexpected argument '$1'" ;;
		esac
		shift
	done
	check_prefix "$prefix"
	need_root "netns"
	need_tools ip
	netns_teardown "$prefix"
}

netns_exec() {
	local prefix=$NETNS_DEFAULT_PREFIX box=''
	[ $# -gt 0 ] || die_usage "netns exec: which box? (primary or secondary)"
	case $1 in
	primary | secondary) box=$1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die_usage "netns exec: bad box '$1' (primary or secondary)" ;;
	esac
	# Options end at '--' or at the first word that is not an option (the command).
	while [ $# -gt 0 ]; do
		case $1 in
		--) shift; break ;;
		--prefix) need_value "$1" $#; prefix=$2; shift ;;
		--prefix=*) prefix=${1#*=} ;;
		-h | --help) usage; exit 0 ;;
		-*) die_usage "unknown option '$1'" ;;
		*) break ;;
		esac
		shift
	done
	[ $# -gt 0 ] || die_usage "netns exec: no command given (... -- CMD [ARGS...])"
	check_prefix "$prefix"
	need_root "netns"
	need_tools nsenter
	local ns=$prefix-$box
	netns_exists "$ns" ||
		die "netns: namespace '$ns' does not exist (run '$PROG netns up --prefix $prefix' first)"
	# Not 'ip netns exec': it mounts a fresh /sys, which hides the bpffs pins under /sys/fs/bpf.
	exec nsenter --net="/run/netns/$ns" -- "$@"
}

netns_main() {
	[ $# -gt 0 ] || die_usage "netns: missing command (up, down or exec)"
	local cmd=$1
	shift
	case $cmd in
	up) netns_up "$@" ;;
	down) netns_down "$@" ;;
	exec) netns_exec "$@" ;;
	-h | --help) usage; exit 0 ;;
	*) die_usage "netns: unknown command '$cmd' (up, down or exec)" ;;
	esac
}

# --- mode 2: a real box --------------------------------------------------------------------

# The xdpmirror binary: --xdpmirror, else on PATH, else next to this script in a build tree.
# Sets XDPMIRROR to an absolute path, or to "" when there is none.
find_xdpmirror() {
	local want=$1 cand
	XDPMIRROR=
	if [ -n "$want" ]; then
		cand=$want
	elif cand=$(command -v xdpmirror); then
		:
	else
		cand=$(dirname "$0")/../build/xdpmirror
	fi
	if [ -f "$cand" ] && [ -x "$cand" ]; then
		XDPMIRROR=$(realpath "$cand")
	fi
}

# The driver's largest MTU: netlink reports it ('maxmtu N' in 'ip -d link'); 0 means no limit.
# Prints nothing when unknown.
max_mtu_of() {
	local dev=$1 m
	if [ -r "/sys/class/net/$dev/max_mtu" ]; then
		m=$(<"/sys/class/net/$dev/max_mtu")
	else
		m=$(ip -d link show dev "$dev" 2>/dev/null | grep -o 'maxmtu [0-9]*' | head -1 |
			cut -d' ' -f2 || true)
	fi
	if [ -n "$m" ] && [ "$m" -gt 0 ]; then
		echo "$m"
	fi
}

# Print the NIC report.  Nothing here changes the machine, except that 'xdpmirror check' may
# attach and detach XDP for a moment, which is the only honest test of native support.
nic_report() {
	local dev=$1 sys=/sys/class/net/$1 driver=virtual rxq txq mtu maxmtu xdp out
	if [ -e "$sys/device/driver" ]; then
		driver=$(basename "$(readlink "$sys/device/driver")")
	fi
	rxq=$(find "$sys/queues" -maxdepth 1 -name 'rx-*' 2>/dev/null | wc -l)
	txq=$(find "$sys/queues" -maxdepth 1 -name 'tx-*' 2>/dev/null | wc -l)
	mtu=$(<"$sys/mtu")
	maxmtu=$(max_mtu_of "$dev")

	if [ -z "$XDPMIRROR" ]; then
		xdp="unknown (xdpmirror not found)"
		warn "xdpmirror binary not found, native XDP not checked (build it or pass --xdpmirror PATH)"
	elif [ "$(id -u)" -ne 0 ]; then
		xdp="not checked (needs root)"
	elif out=$("$XDPMIRROR" check --dev "$dev" 2>&1); then
		xdp=yes
	else
		xdp="no${out:+: $(echo "$out" | head -1)}"
	fi

	echo "$dev:"
	echo "  driver      $driver"
	echo "  queues      $rxq rx, $txq tx"
	echo "  mtu         $mtu${maxmtu:+ (driver max $maxmtu)}"
	echo "  native XDP  $xdp"
	if [ "$rxq" -gt "$MAX_QUEUES" ]; then
		warn "'$dev' has $rxq rx queues; the XDP program serves only $MAX_QUEUES (reduce with 'ethtool -L $dev combined $MAX_QUEUES')"
	fi
}

# Set the MTU unless it already is; refuse what the driver cannot do before touching the NIC.
set_mtu() {
	local dev=$1 want=$2 cur maxmtu
	cur=$(<"/sys/class/net/$dev/mtu")
	if [ "$cur" -eq "$want" ]; then
		echo "mtu of '$dev' is already $want"
		return 0
	fi
	maxmtu=$(max_mtu_of "$dev")
	if [ -n "$maxmtu" ] && [ "$want" -gt "$maxmtu" ]; then
		die "'$dev': mtu $want is larger than the driver's maximum $maxmtu"
	fi
	if [ "$want" -gt 9000 ]; then
		warn "mtu $want: xdpmirror frames use at most 9000 bytes of it"
	fi
	run ip link set dev "$dev" mtu "$want"
	[ "$DRY_RUN" -eq 1 ] || echo "mtu of '$dev' set to $want (was $cur)"
}

# The unit 'make install' installed, else the source tree's template written to UNIT_FILE with
# the binary that was found; either way the same unit (systemd/xdpmirror@.service.in).
write_unit() {
	local dir template
	for dir in "${UNIT_DIRS[@]}"; do
		if [ -f "$dir/xdpmirror@.service" ] && [ "$dir/xdpmirror@.service" != "$UNIT_FILE" ]; then
			echo "using the installed unit $dir/xdpmirror@.service"
			[ ! -f "$UNIT_FILE" ] || warn "$UNIT_FILE overrides it (remove it to use the installed one)"
			run systemctl daemon-reload
			return 0
		fi
	done
	template=$(dirname "$0")/../systemd/xdpmirror@.service.in
	[ -f "$template" ] ||
		die "--install-unit: no xdpmirror@.service installed and no source tree here (run 'make install')"
	sed "s|@XDPMIRROR@|$XDPMIRROR|g" "$template" | write_file "$UNIT_FILE"
	run systemctl daemon-reload
}

box_main() {
	local role='' dev='' disk='' peer='' mtu='' jumbo=0 config='' install_unit=0 xdpmirror_opt=''
	local key=''
	while [ $# -gt 0 ]; do
		case $1 in
		--role) need_value "$1" $#; role=$2; shift ;;
		--role=*) role=${1#*=} ;;
		--dev) need_value "$1" $#; dev=$2; shift ;;
		--dev=*) dev=${1#*=} ;;
		--disk) need_value "$1" $#; disk=$2; shift ;;
		--disk=*) disk=${1#*=} ;;
		--peer) need_value "$1" $#; peer=$2; shift ;;
		--peer=*) peer=${1#*=} ;;
		--mtu) need_value "$1" $#; mtu=$2; shift ;;
		--mtu=*) mtu=${1#*=} ;;
		--jumbo) jumbo=1 ;;
		--config) need_value "$1" $#; config=$2; shift ;;
		--config=*) config=${1#*=} ;;
		--auth-key) need_value "$1" $#; key=$2; shift ;;
		--auth-key=*) key=${1#*=} ;;
		--install-unit) install_unit=1 ;;
		--dry-run) DRY_RUN=1 ;;
		--xdpmirror) need_value "$1" $#; xdpmirror_opt=$2; shift ;;
		--xdpmirror=*) xdpmirror_opt=${1#*=} ;;
		-h | --help) usage; exit 0 ;;
		-*) die_usage "unknown option '$1'" ;;
		*) die_usage "unexpected argument '$1'" ;;
		esac
		shift
	done

	# Usage errors first (exit 2), then what the machine has to offer (exit 1).
	[ -n "$role" ] || die_usage "missing --role (primary or secondary)"
	[ -n "$dev" ] || die_usage "missing --dev IF"
	[ -n "$disk" ] || die_usage "missing --disk PATH"
	[ -n "$peer" ] || die_usage "missing --peer MAC"
	case $role in
	primary | secondary) ;;
	*) die_usage "bad role '$role' (primary or secondary)" ;;
	esac
	[[ $peer =~ ^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$ ]] ||
		die_usage "bad peer MAC '$peer' (expected xx:xx:xx:xx:xx:xx)"
	peer=${peer,,}
	# The XDP program matches the peer as a frame's source address, which is never multicast.
	(((16#${peer:0:2} & 1) == 0)) || die_usage "bad peer MAC '$peer' (multicast; use the peer NIC's own address)"
	if [ -n "$mtu" ] && [ "$jumbo" -eq 1 ]; then
		die_usage "--mtu and --jumbo exclude each other"
	fi
	[ "$jumbo" -eq 0 ] || mtu=9000
	if [ -n "$mtu" ]; then
		check_mtu "$mtu"
		mtu=$((10#$mtu))
	fi
	[[ $dev != */* && $dev != . && $dev != .. ]] || die_usage "bad interface name '$dev'"
	[ -n "$config" ] || config=$CONFIG_DIR/$dev.conf
	[ -n "$key" ] || key=$CONFIG_DIR/$dev.key

	[ -e "/sys/class/net/$dev" ] || die "'$dev': no such interface"
	[ -e "$disk" ] || die "'$disk': no such disk"
	[ -b "$disk" ] || [ -f "$disk" ] || die "'$disk': not a block device or regular file"
	# The daemon runs from systemd with cwd /: keep symlinks (/dev/disk/by-id/... is the
	# stable name) but make the path absolute.
	disk=$(realpath -s "$disk")
	local own_mac
	own_mac=$(<"/sys/class/net/$dev/address")
	[ "$peer" != "$own_mac" ] || die_usage "peer MAC '$peer' is the address of '$dev' itself"
	[ "$DRY_RUN" -eq 1 ] || need_root "$dev" "or use --dry-run"
	need_tools ip

	find_xdpmirror "$xdpmirror_opt"
	if [ -n "$xdpmirror_opt" ] && [ -z "$XDPMIRROR" ]; then
		warn "'$xdpmirror_opt': not an executable file"
	fi
	if [ "$install_unit" -eq 1 ] && [ -z "$XDPMIRROR" ]; then
		die "--install-unit: xdpmirror binary not found (run 'make install' or pass --xdpmirror PATH)"
	fi

	nic_report "$dev"

	[ -z "$mtu" ] || set_mtu "$dev" "$mtu"

	# xdpmirror pins its maps here; some distributions do not mount bpffs by default.
	if ! mountpoint -q /sys/fs/bpf; then
		run mount -t bpf bpf /sys/fs/bpf
		[ "$DRY_RUN" -eq 1 ] || echo "mounted bpffs at /sys/fs/bpf"
	fi

	# The pair's key: made on the first box, copied to the second (docs/protocol.md §14.2).
	key=$(realpath -m "$key")
	if [ -e "$key" ]; then
		echo "using the key in $key (it must be the same file as on the peer)"
	elif [ "$DRY_RUN" -eq 1 ]; then
		echo "would: xdpmirror keygen $(printf '%q' "$key")"
	else
		[ -n "$XDPMIRROR" ] || die "no key at '$key' and no xdpmirror binary to make one"
		mkdir -p "$(dirname "$key")"
		"$XDPMIRROR" keygen "$key"
		echo "copy it to the peer before running pair-setup there, e.g.:"
		echo "  scp -p $key root@PEER:$key"
	fi

	write_file "$config" <<EOF
# xdpmirror configuration for $dev, written by pair-setup.sh on $(date '+%Y-%m-%d %H:%M:%S %z')
role = $role
dev = $dev
peer = $peer
disk = $disk
auth-key = $key
EOF

	if [ "$install_unit" -eq 1 ]; then
		write_unit
		if [ "$config" != "$CONFIG_DIR/$dev.conf" ]; then
			warn "the unit reads $CONFIG_DIR/$dev.conf, not '$config'"
		fi
		echo "to start mirroring now and at boot: systemctl enable --now xdpmirror@$dev"
	elif [ -n "$XDPMIRROR" ]; then
		echo "to start mirroring: $XDPMIRROR attach --config $config"
	fi
}

# --- main ----------------------------------------------------------------------------------

main() {
	if [ $# -eq 0 ]; then
		usage >&2
		exit 2
	fi
	case $1 in
	-h | --help) usage ;;
	netns) shift; netns_main "$@" ;;
	-*) box_main "$@" ;;
	*) die_usage "unknown command '$1' (try '$PROG --help')" ;;
	esac
}

main "$@"
