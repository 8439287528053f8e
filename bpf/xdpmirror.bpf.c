// SPDX-License-Identifier: GPL-2.0
/* XDP program on the dedicated NIC: mirror frames from the peer go to the AF_XDP socket, all else
 * passes.  It also answers the peer's PROBEs itself and records when the peer was last heard
 * (docs/protocol.md §9.1). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpmirror.h"

/* Set by the daemon before load (see xm_bpf_configure() in user/bpf_load.c). */
const volatile __u16 cfg_ethertype = XM_ETH_P_MIRROR;
const volatile __u8 cfg_local_mac[XM_ETH_ALEN];
const volatile __u8 cfg_peer_mac[XM_ETH_ALEN];
/* What turning a PROBE into a PROBE_ACK does to its CRC, big-endian (xm_probe_crc_delta()). */
const volatile __u32 cfg_probe_crc_delta;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xm_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XM_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xm_alive);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} alive SEC(".maps");

struct eth_hdr {
	__u8 dst[XM_ETH_ALEN];
	__u8 src[XM_ETH_ALEN];
	__u16 proto;
};

struct vlan_tag {
	__u16 tci;
	__u16 proto;
};

static __always_inline void count(struct xm_counter *c, __u64 bytes)
{
	c->frames++;
	c->bytes += bytes;
}

static __always_inline int drop(struct xm_stats *s, enum xm_drop_reason why, __u64 bytes)
{
	count((struct xm_counter *)&s->drop + why, bytes);
	return XDP_DROP;
}

static __always_inline int pass(struct xm_stats *s, __u64 bytes)
{
	count(&s->pass, bytes);
	return XDP_PASS;
}

static __always_inline int mac_equal(const __u8 *a, const volatile __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

/* Checks the mirror header; returns the drop reason, or XM_DROP_REASON_MAX when it is sane. */
static __always_inline enum xm_drop_reason check_hdr(const struct xm_hdr *h, __u64 room)
{
	__u64 off, len;

	if (h->magic != bpf_htons(XM_MAGIC))
		return XM_DROP_BAD_MAGIC;
	if (h->version != XM_VERSION)
		return XM_DROP_BAD_VERSION;
	if (h->flags & ~bpf_htons(XM_F_MASK))
		return XM_DROP_BAD_TYPE;
	off = bpf_ntohs(h->payload_off);
	len = bpf_ntohl(h->payload_len);
	if (off < sizeof(*h) || off + len > room)
		return XM_DROP_BAD_LENGTH;
	return XM_DROP_REASON_MAX;
}

/* Sends the PROBE back as a PROBE_ACK: MACs swapped, type changed, CRC adjusted (§9.1). */
static __always_inline int answer_probe(struct xm_stats *s, struct eth_hdr *eth, struct xm_hdr *h,
					__u64 len, __u32 type_idx)
{
	__u8 mac[XM_ETH_ALEN];

	__builtin_memcpy(mac, eth->dst, XM_ETH_ALEN);
	__builtin_memcpy(eth->dst, eth->src, XM_ETH_ALEN);
	__builtin_memcpy(eth->src, mac, XM_ETH_ALEN);
	h->type = XM_T_PROBE_ACK;
	h->crc ^= cfg_probe_crc_delta;
	count(&s->answered, len);
	count((struct xm_counter *)&s->rx + type_idx, len);
	return XDP_TX;
}

SEC("xdp.frags")
int xm_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = bpf_xdp_get_buff_len(ctx);
	struct eth_hdr *eth = data;
	enum xm_drop_reason why;
	struct xm_stats *s;
	struct xm_alive *a;
	struct xm_hdr *h;
	__u32 key = 0, qid, type_idx;
	__u64 off, now;
	__u16 proto;
	int verdict;

	s = bpf_map_lookup_elem(&stats, &key);
	if (!s)
		return XDP_PASS; /* cannot happen for an array map; keeps the verifier happy */
	count(&s->seen, len);

	/* Runt frames cannot be ours; the stack decides what to do with them. */
	if ((void *)(eth + 1) > data_end)
		return pass(s, len);
	proto = eth->proto;
	off = sizeof(*eth);
	if (proto == bpf_htons(XM_ETH_P_8021Q)) {
		struct vlan_tag *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > data_end)
			return pass(s, len);
		proto = tag->proto;
		off += sizeof(*tag);
	}
	if (proto != bpf_htons(cfg_ethertype))
		return pass(s, len);

	/* From here on the frame is ours: deliver it or drop it, never pass it. */
	if (!mac_equal(eth->dst, cfg_local_mac))
		return drop(s, XM_DROP_NOT_FOR_US, len);
	if (!mac_equal(eth->src, cfg_peer_mac))
		return drop(s, XM_DROP_BAD_PEER, len);

	h = data + off;
	if ((void *)(h + 1) > data_end)
		return drop(s, XM_DROP_TRUNCATED, len);
	why = check_hdr(h, len - off);
	if (why != XM_DROP_REASON_MAX)
		return drop(s, why, len);
	/* Checked here, on the value used below, so the verifier sees the index bound. */
	type_idx = (__u32)h->type - XM_T_HELLO;
	if (type_idx >= XM_T_MAX - XM_T_HELLO)
		return drop(s, XM_DROP_BAD_TYPE, len);

	/* The answer's CRC is the probe's changed by a constant: only for a bare header. */
	if (h->type == XM_T_PROBE && h->payload_len)
		return drop(s, XM_DROP_BAD_LENGTH, len);

	/*
	 * Failure detection (docs/protocol.md §9.1), on any RX queue: a PROBE_ACK may land on a
	 * queue without a socket (veth puts an XDP_TX'd frame on the queue of the sending CPU).  No
	 * socket check is needed for liveness either: the program runs only while its daemon holds
	 * the BPF link, which the kernel drops when the daemon exits.
	 */
	a = bpf_map_lookup_elem(&alive, &key);
	if (!a)
		return drop(s, XM_DROP_NO_SOCKET, len); /* cannot happen for an array map */
	now = bpf_ktime_get_ns();
	a->peer_rx_ns = now;
	if (h->type == XM_T_PROBE_ACK) {
		a->probe_echo_ns = bpf_be64_to_cpu(h->arg0);
		a->probe_ack_ns = now;
		count(&s->consumed, len);
		count((struct xm_counter *)&s->rx + type_idx, len);
		return XDP_DROP;
	}
	a->daemon_rx_ns = now;
	if (h->type == XM_T_PROBE)
		return answer_probe(s, eth, h, len, type_idx);

	qid = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks, &qid))
		return drop(s, XM_DROP_NO_SOCKET, len);
	verdict = bpf_redirect_map(&xsks, qid, XDP_DROP);
	if (verdict != XDP_REDIRECT) {
		count(&s->redirect_fail, len);
		return verdict;
	}
	count(&s->redirected, len);
	count((struct xm_counter *)&s->rx + type_idx, len);
	if (h->type == XM_T_DATA && (h->flags & bpf_htons(XM_F_RESYNC)))
		count(&s->rx_resync, len);
	return XDP_REDIRECT;
}

char LICENSE[] SEC("license") = "GPL";
