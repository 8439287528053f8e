# SPDX-License-Identifier: GPL-2.0
# A faulty wire between the two boxes, for tests that need loss, duplicates, corruption or
# reordering.  Source it after lib.sh, then call wire_up after pair_up.
#
# Why not netem on the boxes' interfaces:
#  - This kernel has no netem (CONFIG_NET_SCH_NETEM is not set, and there are no modules):
#    `tc qdisc replace dev IF root netem ...` fails with "Specified qdisc kind is unknown".
#  - Even where netem exists, a qdisc on the boxes' veth ends never sees xdpmirror's frames.
#    AF_XDP copy-mode TX (xsk_generic_xmit -> __dev_direct_xmit) bypasses the qdisc and the tc
#    egress hook, and on receive the XDP program redirects to the AF_XDP socket before tc
#    ingress.  Checked on this kernel (6.18): after a 4 MiB nbdcopy (4096 DATA frames), a tbf root
#    qdisc on both veth ends counted "Sent 0 pkt", and the injector below on the primary's clsact
#    egress and on the secondary's clsact ingress saw 0 frames.  An ifb device can be created
#    (CONFIG_IFB=y), but redirecting ingress through it would also come after XDP.
#  - What works: a third namespace, the "wire", between the boxes.  wire_up replaces the
#    primary<->secondary veth with primary<->wire<->secondary (same names, MACs and MTU); the
#    frames then arrive in the wire as ordinary skbs, and a tc BPF program (tests/bpf/
#    xm_fault.bpf.c: cls_bpf, direct-action, on each wire end's clsact ingress) forwards them to
#    the other wire end with bpf_redirect, after injecting the fault.  Rates are per 10000 frames,
#    set per direction in a map; the program also counts what it did, so a test knows the fault
#    really happened.

FAULT_OBJ=$TOP/build/tools/xm_fault.bpf.o
PASS_OBJ=$TOP/build/tools/xm_pass.bpf.o

in_wire() { ip netns exec "$WIRE" "$@"; }

# attach_injector WIRE_IF: loads the program on its ingress; prints the ids "cfg stats" of the
# maps of that instance.
attach_injector() {
	local dev=$1 prog m ids=()
	in_wire tc qdisc add dev "$dev" clsact || fail "cannot add clsact to $dev"
	in_wire tc filter add dev "$dev" ingress bpf direct-action obj "$FAULT_OBJ" sec tc ||
		fail "cannot attach the fault injector to $dev"
	prog=$(in_wire tc -j filter show dev "$dev" ingress | jq '[.[].options.prog.id | values][0]')
	for m in $(bpftool -j prog show id "$prog" | jq '.map_ids[]'); do
		case $(bpftool -j map show id "$m" | jq -r .name) in
		cfg) ids[0]=$m ;;
		stats) ids[1]=$m ;;
		esac
	done
	if [ -z "${ids[0]:-}" ] || [ -z "${ids[1]:-}" ]; then
		fail "fault injector maps on $dev not found"
	fi
	echo "${ids[@]}"
}

le32() { printf '%02x %02x %02x %02x ' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24)); }

# set_fault DIR OUT_IFINDEX LOSS CORRUPT DUP REORDER GAP (rates per 10000).  DIR: to_s or to_p.
set_fault() {
	local dir=$1 v='' x
	shift
	for x in "$@"; do v+=$(le32 "$x"); done
	# shellcheck disable=SC2086 # the hex bytes are separate words on purpose
	bpftool map update id "${WIRE_CFG[$dir]}" key hex 00 00 00 00 value hex $v ||
		fail "cannot configure the fault injector"
}

# faults DIR LOSS CORRUPT DUP REORDER: rates per 10000 towards the secondary (to_s) or the
# primary (to_p); a reordered frame goes out after 1-8 later ones.
faults() {
	local out
	[ "$1" = to_s ] && out=$WIRE_S_IDX || out=$WIRE_P_IDX
	set_fault "$1" "$out" "$2" "$3" "$4" "$5" 8
}

# injected DIR: what the injector did in that direction, as JSON {seen, lost, corrupted, ...}.
injected() { bpftool -j map lookup id "${WIRE_STATS[$1]}" key hex 00 00 00 00 | jq -c .formatted.value; }

declare -A WIRE_CFG WIRE_STATS

# wire_up: primary <-> wire <-> secondary, keeping names, MACs and MTU, with no fault yet.  Call
# it before the daemons attach.  The wire namespace goes with the pair (pair_down).
wire_up() {
	[ -f "$FAULT_OBJ" ] || fail "$FAULT_OBJ missing (make build-tests)"
	[ -f "$PASS_OBJ" ] || fail "$PASS_OBJ missing (make build-tests)"
	WIRE=$XM_TEST_PREFIX-wire WIRE_P=${XM_TEST_PREFIX}wp WIRE_S=${XM_TEST_PREFIX}ws
	ip netns add "$WIRE" || fail "cannot create the wire namespace"
	ip -n "$XM_PRIMARY_NS" link del "$P" || fail "cannot remove the direct veth"
	ip link add "$P" netns "$XM_PRIMARY_NS" type veth peer name "$WIRE_P" netns "$WIRE" ||
		fail "cannot create the primary's wire veth"
	ip link add "$S" netns "$XM_SECONDARY_NS" type veth peer name "$WIRE_S" netns "$WIRE" ||
		fail "cannot create the secondary's wire veth"
	ip -n "$XM_PRIMARY_NS" link set dev "$P" address "$XM_PRIMARY_MAC" mtu "$XM_MTU" up ||
		fail "cannot bring $P up"
	ip -n "$XM_SECONDARY_NS" link set dev "$S" address "$XM_SECONDARY_MAC" mtu "$XM_MTU" up ||
		fail "cannot bring $S up"
	ip -n "$WIRE" link set dev "$WIRE_P" mtu "$XM_MTU" up || fail "cannot bring $WIRE_P up"
	ip -n "$WIRE" link set dev "$WIRE_S" mtu "$XM_MTU" up || fail "cannot bring $WIRE_S up"
	# A box's XDP program answers PROBEs with XDP_TX, which veth hands to its peer end's NAPI;
	# a wire end without an XDP program has none, and the kernel drops the answers (measured: 0
	# of 139 PROBE_ACKs arrived, also with GRO on).  XDP_PASS gives the ends NAPI and changes
	# nothing else: the frames go on to the injector on tc ingress.
	in_wire ip link set dev "$WIRE_P" xdpdrv obj "$PASS_OBJ" sec xdp.frags ||
		fail "cannot attach XDP_PASS to $WIRE_P"
	in_wire ip link set dev "$WIRE_S" xdpdrv obj "$PASS_OBJ" sec xdp.frags ||
		fail "cannot attach XDP_PASS to $WIRE_S"
	read -r "WIRE_CFG[to_s]" "WIRE_STATS[to_s]" < <(attach_injector "$WIRE_P")
	read -r "WIRE_CFG[to_p]" "WIRE_STATS[to_p]" < <(attach_injector "$WIRE_S")
	if [ -z "${WIRE_CFG[to_s]:-}" ] || [ -z "${WIRE_CFG[to_p]:-}" ]; then
		fail "fault injector not attached"
	fi
	WIRE_P_IDX=$(in_wire cat "/sys/class/net/$WIRE_P/ifindex")
	WIRE_S_IDX=$(in_wire cat "/sys/class/net/$WIRE_S/ifindex")
	faults to_s 0 0 0 0
	faults to_p 0 0 0 0
}

# held_map DIR: the id of the held-frame map of the injector that carries DIR's frames.
held_map() {
	local dev prog m
	[ "$1" = to_s ] && dev=$WIRE_P || dev=$WIRE_S
	prog=$(in_wire tc -j filter show dev "$dev" ingress | jq '[.[].options.prog.id | values][0]')
	for m in $(bpftool -j prog show id "$prog" | jq '.map_ids[]'); do
		[ "$(bpftool -j map show id "$m" | jq -r .name)" = held ] && { echo "$m"; return 0; }
	done
	return 1
}

# wire_last_held DIR FILE: the last frame the injector held back for reordering in DIR (its bytes
# stay in the map after it went out), cut to the mirror frame's length, into FILE: a copy of a
# frame as it was on the wire.  Prints its type and 1 if it is tagged; fails when the map holds
# no mirror frame.
wire_last_held() {
	local id
	id=$(held_map "$1") || fail "no held-frame map for $1"
	bpftool -j map lookup id "$id" key hex 00 00 00 00 | $PY -c '
import json, struct, sys
v = json.load(sys.stdin)["formatted"]["value"]
d = bytes(v["data"])
if len(d) < 14 + 48 or struct.unpack("!H", d[12:14])[0] != 0x88B5:
    sys.exit(1)
flags, off, plen = struct.unpack("!HHI", d[18:26])
n = 14 + off + plen + (24 if flags & 8 else 0)
open(sys.argv[1], "wb").write(d[:n])
print(d[17], 1 if flags & 8 else 0)
' "$2"
}

# wire_send DIR FILE [COUNT]: puts FILE's bytes on the wire towards DIR's box, COUNT times.
wire_send() {
	local dev
	[ "$1" = to_s ] && dev=$WIRE_S || dev=$WIRE_P
	in_wire $PY -c '
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frame = open(sys.argv[2], "rb").read()
for _ in range(int(sys.argv[3])):
    s.send(frame)
' "$dev" "$2" "${3:-1}"
}
