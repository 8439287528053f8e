// SPDX-License-Identifier: GPL-2.0
/* Description: the tests' fault injector, tc ingress on one end of the "wire" namespace between
 * the boxes: drop, duplicate, corrupt or reorder a frame, then forward it to the other wire end. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MAXLEN 16384 /* > any 9000-MTU frame; a power of two so a mask bounds lengths */
/* 1..MAXLEN, in a form the verifier can follow (callers check the real range first). */
#define BOUNDED(n) ((((n)-1) & (MAXLEN - 1)) + 1)

struct cfg {
	__u32 out_ifindex;		   /* where frames go; 0 drops everything */
	__u32 loss, corrupt, dup, reorder; /* per 10000 frames */
	__u32 reorder_gap;		   /* a held frame goes out after 1..gap later frames */
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
		if (len >= 14 && len <= MAXLEN &&
		    bpf_skb_load_bytes(skb, 0, h->data, BOUNDED(len)) == 0) {
			h->len = len;
			h->countdown =
				1 + bpf_get_prandom_u32() % (c->reorder_gap ? c->reorder_gap : 1);
			__sync_fetch_and_add(&st->held, 1);
			return TC_ACT_SHOT;
		}
	}
	return bpf_redirect(out, 0);
}

char _license[] SEC("license") = "GPL";
