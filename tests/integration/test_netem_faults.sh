#!/usr/bin/env bash
# Description: netem-style faults on the wire (5 % loss, reordering, 5 % duplicates, 2 % bit
# corruption, one at a time, both directions) while nbdcopy writes a random 8-16 MiB region
# through the primary's export: each write succeeds, the session stays up with no degraded write,
# the repair machinery shows in the counters (retransmissions, duplicates, bad CRCs / XDP drops),
# every region reads back through NBD, and the disks end identical.
# SPDX-License-Identifier: GPL-2.0
#
# Where the faults are injected, and why not with netem on the boxes' interfaces:
#  - This kernel has no netem (CONFIG_NET_SCH_NETEM is not set, and there are no modules):
#    `tc qdisc replace dev IF root netem ...` fails with "Specified qdisc kind is unknown".
#  - Even where netem exists, a qdisc on xmtfp0/xmtfs0 never sees xdpmirror's frames.  AF_XDP
#    copy-mode TX (xsk_generic_xmit -> __dev_direct_xmit) bypasses the qdisc and the tc egress
#    hook, and on receive the XDP program redirects to the AF_XDP socket before tc ingress.
#    Checked on this kernel (6.18): after a 4 MiB nbdcopy (4096 DATA frames), a tbf root qdisc
#    on both veth ends counted "Sent 0 pkt", and the injector below on the primary's clsact
#    egress and on the secondary's clsact ingress saw 0 frames.  An ifb device can be created
#    (CONFIG_IFB=y), but redirecting ingress through it would also come after XDP.
#  - What works: a third namespace, the "wire", between the boxes.  The test replaces the
#    primary<->secondary veth with primary<->wire<->secondary (same names, MACs and MTU); the
#    frames then arrive in the wire as ordinary skbs, and a tc BPF program (cls_bpf,
#    direct-action, on each wire end's clsact ingress) forwards them to the other wire end with
#    bpf_redirect, after injecting the fault: drop (loss), bpf_clone_redirect (duplicate), flip
#    one random bit anywhere in the frame (corrupt, like netem), or hold a frame back and send
#    it after 1-8 later frames (reorder).  Rates are per 10000 frames, set per direction in a
#    map; the program also counts what it did, so the test knows the fault really happened.
source "$(dirname "$0")/../lib.sh"
require_root
command -v nbdcopy >/dev/null || skip "nbdcopy missing (make deps)"
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || skip "clang missing (needed for the fault injector)"
command -v bpftool >/dev/null || skip "bpftool missing"

pair_up xmtf --disk-size 80M
P=$XM_PRIMARY_IF S=$XM_SECONDARY_IF
work=/var/tmp/xdpmirror-$XM_TEST_PREFIX
WIRE=$XM_TEST_PREFIX-wire WP=${XM_TEST_PREFIX}wp WS=${XM_TEST_PREFIX}ws

# The wire namespace is this test's own: remove it, then pair_down (which reports the exit code).
wire_down() {
	local rc=$?
	ip netns del "$WIRE" 2>/dev/null
	(exit $rc)
	pair_down
}
trap wire_down EXIT

# --- the fault injector ----------------------------------------------------------------------

cat >"$work/fault.bpf.c" <<'EOF'
// SPDX-License-Identifier: GPL-2.0
/* tc ingress on one wire end: inject a fault, then forward to the other wire end. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MAXLEN 16384 /* > any 9000-MTU frame; a power of two so a mask bounds lengths */
/* 1..MAXLEN, in a form the verifier can follow (callers check the real range first). */
#define BOUNDED(n) ((((n) - 1) & (MAXLEN - 1)) + 1)

struct cfg {
	__u32 out_ifindex; /* where frames go; 0 drops everything */
	__u32 loss, corrupt, dup, reorder; /* per 10000 frames */
	__u32 reorder_gap; /* a held frame goes out after 1..gap later frames */
};
struct stats {
	__u64 seen, lost, corrupted, duplicated, held, released;
};
struct held {
	__u32 len, countdown;
	__u8 data[MAXLEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cfg);
} cfg SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");
/* One frame held back for reordering.  Ingress on a veth end runs on the sending CPU; the
 * daemon sends from one thread, and a torn copy would only be caught as a bad CRC anyway. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct held);
} held SEC(".maps");

static __always_inline int chance(__u32 per10k)
{
	return per10k && bpf_get_prandom_u32() % 10000 < per10k;
}

SEC("tc")
int fault(struct __sk_buff *skb)
{
	__u32 k = 0, len, out;
	struct cfg *c = bpf_map_lookup_elem(&cfg, &k);
	struct stats *st = bpf_map_lookup_elem(&stats, &k);
	struct held *h = bpf_map_lookup_elem(&held, &k);

	if (!c || !st || !h || !c->out_ifindex)
		return TC_ACT_SHOT;
	out = c->out_ifindex;
	__sync_fetch_and_add(&st->seen, 1);
	if (chance(c->loss)) {
		__sync_fetch_and_add(&st->lost, 1);
		return TC_ACT_SHOT;
	}
	if (chance(c->corrupt) && skb->len > 0) {
		__u32 off = bpf_get_prandom_u32() % skb->len;
		__u8 b;

		if (bpf_skb_load_bytes(skb, off, &b, 1) == 0) {
			b ^= 1 << (bpf_get_prandom_u32() & 7);
			if (bpf_skb_store_bytes(skb, off, &b, 1, 0) == 0)
				__sync_fetch_and_add(&st->corrupted, 1);
		}
	}
	if (chance(c->dup) && bpf_clone_redirect(skb, out, 0) == 0)
		__sync_fetch_and_add(&st->duplicated, 1);
	if (h->len) {
		if (h->countdown > 1) {
			h->countdown--;
			return bpf_redirect(out, 0);
		}
		/* Send this frame, then turn the skb into the held one and send that. */
		len = h->len;
		h->len = 0;
		if (bpf_clone_redirect(skb, out, 0) != 0)
			return TC_ACT_SHOT;
		if (len < 14 || len > MAXLEN || bpf_skb_change_tail(skb, len, 0) ||
		    bpf_skb_store_bytes(skb, 0, h->data, BOUNDED(len), 0))
			return TC_ACT_SHOT;
		__sync_fetch_and_add(&st->released, 1);
		return bpf_redirect(out, 0);
	}
	if (chance(c->reorder)) {
		len = skb->len;
		if (len >= 14 && len <= MAXLEN && bpf_skb_load_bytes(skb, 0, h->data, BOUNDED(len)) == 0) {
			h->len = len;
			h->countdown = 1 + bpf_get_prandom_u32() % (c->reorder_gap ? c->reorder_gap : 1);
			__sync_fetch_and_add(&st->held, 1);
			return TC_ACT_SHOT;
		}
	}
	return bpf_redirect(out, 0);
}

char _license[] SEC("license") = "GPL";
EOF
"$CLANG" -O2 -g -target bpf -Wall -idirafter "/usr/include/$(gcc -print-multiarch 2>/dev/null)" \
	-c "$work/fault.bpf.c" -o "$work/fault.bpf.o" || fail "cannot build the fault injector"

in_wire() { ip netns exec "$WIRE" "$@"; }

# Replace the direct veth by primary <-> wire <-> secondary, keeping names, MACs and MTU.
rewire() {
	ip netns del "$WIRE" 2>/dev/null
	ip netns add "$WIRE" || fail "cannot create the wire namespace"
	ip -n "$XM_PRIMARY_NS" link del "$P" || fail "cannot remove the direct veth"
	ip link add "$P" netns "$XM_PRIMARY_NS" type veth peer name "$WP" netns "$WIRE" ||
		fail "cannot create the primary's wire veth"
	ip link add "$S" netns "$XM_SECONDARY_NS" type veth peer name "$WS" netns "$WIRE" ||
		fail "cannot create the secondary's wire veth"
	ip -n "$XM_PRIMARY_NS" link set dev "$P" address "$XM_PRIMARY_MAC" mtu "$XM_MTU" up ||
		fail "cannot bring $P up"
	ip -n "$XM_SECONDARY_NS" link set dev "$S" address "$XM_SECONDARY_MAC" mtu "$XM_MTU" up ||
		fail "cannot bring $S up"
	ip -n "$WIRE" link set dev "$WP" mtu "$XM_MTU" up || fail "cannot bring $WP up"
	ip -n "$WIRE" link set dev "$WS" mtu "$XM_MTU" up || fail "cannot bring $WS up"
}

# attach_injector WIRE_IF: loads the program on its ingress; prints the ids "cfg stats" of the
# maps of that instance.
attach_injector() {
	local dev=$1 prog m ids=()
	in_wire tc qdisc add dev "$dev" clsact || fail "cannot add clsact to $dev"
	in_wire tc filter add dev "$dev" ingress bpf direct-action obj "$work/fault.bpf.o" sec tc ||
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
	bpftool map update id "${CFG[$dir]}" key hex 00 00 00 00 value hex $v ||
		fail "cannot configure the fault injector"
}
ifindex() { in_wire cat "/sys/class/net/$1/ifindex"; }
faults() { # faults DIR LOSS CORRUPT DUP REORDER: rates per 10000, gap fixed at 8
	local out
	[ "$1" = to_s ] && out=$WS_IDX || out=$WP_IDX
	set_fault "$1" "$out" "$2" "$3" "$4" "$5" 8
}
injected() { bpftool -j map lookup id "${STATS[$1]}" key hex 00 00 00 00 | jq -c .formatted.value; }

rewire
declare -A CFG STATS
read -r "CFG[to_s]" "STATS[to_s]" < <(attach_injector "$WP")
read -r "CFG[to_p]" "STATS[to_p]" < <(attach_injector "$WS")
if [ -z "${CFG[to_s]:-}" ] || [ -z "${CFG[to_p]:-}" ]; then fail "fault injector not attached"; fi
WP_IDX=$(ifindex "$WP") WS_IDX=$(ifindex "$WS")
faults to_s 0 0 0 0
faults to_p 0 0 0 0

mirror_up
URI=$(nbd_uri)

# snapshot: both daemons' counters and XDP stats plus the injectors' counts, as one JSON.
snapshot() {
	jq -n --argjson p "$(status_json "$P")" --argjson s "$(status_json "$S")" \
		--argjson is "$(injected to_s)" --argjson ip "$(injected to_p)" \
		'{p: $p.daemon.counters, s: $s.daemon.counters, pstate: $p.daemon.replication.state,
		  sstate: $s.daemon.replication.state,
		  pxdp: ([$p.xdp_stats.drop[].frames] | add), sxdp: ([$s.xdp_stats.drop[].frames] | add),
		  ppass: $p.xdp_stats.pass.frames, spass: $s.xdp_stats.pass.frames,
		  to_s: $is, to_p: $ip}'
}
# delta BEFORE AFTER: every number in AFTER minus the one in BEFORE (states kept from AFTER).
delta() {
	jq -n --argjson a "$1" --argjson b "$2" \
		'def d(x; y): if (y | type) == "object" then reduce (y | keys[]) as $k ({}; .[$k] = d(x[$k]; y[$k]))
		  elif (y | type) == "number" then y - x else y end; d($a; $b)'
}

SLOT=$((16 << 20)) U=$((64 << 10))
declare -a OFF LEN
i=0
# phase NAME "to_s rates" "to_p rates": writes region i under that fault, prints the deltas.
phase() {
	local name=$1 before after t0 t1
	local len=$(((128 + RANDOM % 129) * U))
	local off=$((i * SLOT + RANDOM % ((SLOT - len) / U + 1) * U))
	OFF[i]=$off LEN[i]=$len
	# Only the region is data; nbdcopy --destination-is-zero skips the holes, so the other regions
	# on the export are left alone.
	rm -f "$work/src$i.img"
	truncate -s "$XM_DISK_SIZE" "$work/src$i.img"
	head -c "$len" /dev/urandom |
		dd of="$work/src$i.img" bs=$U seek=$((off / U)) conv=notrunc status=none
	log "$name: $((len >> 10)) KiB at $((off >> 10)) KiB, faults to_s=($2) to_p=($3)"
	before=$(snapshot)
	# shellcheck disable=SC2086 # the rates are separate words on purpose
	faults to_s $2
	# shellcheck disable=SC2086
	faults to_p $3
	t0=$EPOCHREALTIME
	if ! timeout 30 nbdcopy --destination-is-zero "$work/src$i.img" "$URI"; then
		faults to_s 0 0 0 0
		faults to_p 0 0 0 0
		"$XM" status --dev "$P" >/dev/null 2>&1 || fail "$name: nbdcopy failed: the primary daemon is gone"
		fail "$name: nbdcopy failed: $(snapshot)"
	fi
	t1=$EPOCHREALTIME
	faults to_s 0 0 0 0
	faults to_p 0 0 0 0
	after=$(snapshot)
	D=$(delta "$before" "$after")
	log "$name: nbdcopy took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	jq -c '{p: (.p | with_entries(select(.value != 0 and (.key | test("^(tx_retrans|rx_ack|rx_bad|rx_wrong|rx_malformed|tx_data$|sessions|peer_|violations|writes)"))))),
	        s: (.s | with_entries(select(.value != 0 and (.key | test("^(rx_dup|rx_bad|rx_wrong|rx_malformed|rx_out|rx_data$|rx_no|sessions|peer_|violations)"))))),
	        pxdp, sxdp, ppass, spass, to_s, to_p}' <<<"$D" | sed 's/^/   /'
	# The session must have stayed up all along: same session, nothing degraded.
	assert_eq "$(jq -r .pstate <<<"$D")" connected "$name: primary state"
	assert_eq "$(jq -r .sstate <<<"$D")" connected "$name: secondary state"
	assert_eq "$(jq .p.sessions <<<"$D")" 0 "$name: primary sessions started (the session dropped)"
	assert_eq "$(jq '.p.peer_timeouts + .p.peer_stalls + .p.violations + .s.peer_timeouts + .s.violations' <<<"$D")" 0 \
		"$name: sessions ended (peer_timeouts, peer_stalls, violations)"
	assert_eq "$(jq .p.writes_degraded <<<"$D")" 0 "$name: degraded writes"
	assert_ge "$(jq .p.tx_data <<<"$D")" $((len / 8192)) "$name: DATA frames sent"
	# Protocol C: every frame is durable by now, and a seq is applied once, never twice (§5.6).
	assert_eq "$(jq .s.rx_data <<<"$D")" "$(jq .p.tx_data <<<"$D")" \
		"$name: DATA frames applied on the secondary vs sent by the primary"
	i=$((i + 1))
}
retrans() { jq '.p.tx_retrans_rto + .p.tx_retrans_fast' <<<"$D"; }

# The rates after each direction are: loss corrupt dup reorder, per 10000 frames.
# No fault: the reference for the counters below.
phase "no fault" "0 0 0 0" "0 0 0 0"

# 5 % loss both ways: DATA and acks are lost; the primary repairs by RTO or RACK.
phase "loss 5%" "500 0 0 0" "500 0 0 0"
assert_ge "$(jq .to_s.lost <<<"$D")" 1 "loss: frames dropped toward the secondary"
assert_ge "$(retrans)" 1 "loss: retransmissions (tx_retrans_rto + tx_retrans_fast)"
log "loss: $(retrans) retransmissions for $(jq '.to_s.lost + .to_p.lost' <<<"$D") dropped frames" \
	"($(jq .s.rx_dup_done <<<"$D") arrived for frames already durable)"

# Reordering both ways: 25 % of frames go out after 1-8 later ones.
phase "reorder 25%" "0 0 0 2500" "0 0 0 2500"
assert_ge "$(jq .to_s.released <<<"$D")" 1 "reorder: frames sent out of order"

# 5 % duplicates both ways: the secondary sees DATA twice and must not write it twice.
phase "duplicate 5%" "0 0 500 0" "0 0 500 0"
assert_ge "$(jq .to_s.duplicated <<<"$D")" 1 "duplicate: frames duplicated"
# Nearly every injected duplicate is a DATA frame (a few are PINGs), and the secondary must
# recognise each one.
assert_ge "$(jq '.s.rx_dup_done + .s.rx_dup_inflight' <<<"$D")" "$(jq '.to_s.duplicated * 9 / 10 | floor' <<<"$D")" \
	"duplicate: secondary rx_dup_done + rx_dup_inflight vs 90 % of the duplicates sent"

# 2 % corruption both ways: one random bit per hit frame.  Caught by the CRC (rx_bad_crc) or,
# when the header was hit, by the XDP program (drop.*, or pass when the EtherType was hit: not
# counted here, the stack's own traffic also passes); repaired by retransmission.
phase "corrupt 2%" "0 200 0 0" "0 200 0 0"
assert_ge "$(jq .to_s.corrupted <<<"$D")" 1 "corrupt: frames corrupted"
assert_ge "$(jq '.p.rx_bad_crc + .s.rx_bad_crc + .pxdp + .sxdp' <<<"$D")" 1 \
	"corrupt: rx_bad_crc or XDP drops on either side"
assert_ge "$(retrans)" 1 "corrupt: retransmissions"

log "read every region back through NBD"
nbdcopy "$URI" "$work/out.img" || fail "nbdcopy out"
for j in "${!OFF[@]}"; do
	cmp -i "${OFF[j]}:${OFF[j]}" -n "${LEN[j]}" "$work/src$j.img" "$work/out.img" ||
		fail "region $j read back through NBD differs from what was written"
done

mirror_down
for j in "${!OFF[@]}"; do
	cmp -i "${OFF[j]}:${OFF[j]}" -n "${LEN[j]}" "$work/src$j.img" "$XM_SECONDARY_DISK" ||
		fail "region $j differs on the secondary"
done
assert_disks_identical "after loss, reordering, duplicates and corruption"
rm -f "$work"/src*.img "$work/out.img"
echo "all checks passed"
