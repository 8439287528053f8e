// SPDX-License-Identifier: GPL-2.0
/* The reliable sender: window, acks, RTT, RTO with backoff and RACK (docs/protocol.md §5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repl/sender.h"
#include "util/clock.h"

/* Floor: a loaded 2-vCPU VM delays acks by up to ~1 ms with nothing lost (make demo showed 0.5%
 * spurious timeouts at 200 µs); RACK repairs real losses well before this. */
#define RTO_MIN_NS     (1 * NS_PER_MS)
#define RTO_INITIAL_NS (2 * NS_PER_MS)
#define RTO_MAX_NS     (10 * NS_PER_MS)
#define RTO_SLACK_NS   (20 * NS_PER_US)
/* A tag is the session generation above the sequence number. */
#define TAG_SEQ_BITS 48

static struct xm_sender_slot *slot(const struct xm_sender *s, __u64 seq)
{
	return &s->ring[seq & (s->ring_size - 1)];
}

static __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

int xm_sender_init(struct xm_sender *s, __u32 ring_size, const struct xm_sender_ops *ops, void *ctx,
		   struct xm_counters *ctr)
{
	memset(s, 0, sizeof(*s));
	if (!ring_size || ring_size & (ring_size - 1))
		return -EINVAL;
	s->ring = calloc(ring_size, sizeof(*s->ring));
	if (!s->ring)
		return -ENOMEM;
	s->ring_size = ring_size;
	s->ops = ops;
	s->ctx = ctx;
	s->ctr = ctr;
	return 0; /* rto stays 0 (shown in status) until xm_sender_start */
}

void xm_sender_free(struct xm_sender *s)
{
	free(s->ring);
	s->ring = NULL;
}

void xm_sender_start(struct xm_sender *s, __u64 first, __u32 credit)
{
	s->una = s->nxt = first;
	s->right_edge = first + credit;
	s->srtt = s->rttvar = s->min_rtt = 0;
	s->rto = s->rto_base = RTO_INITIAL_NS;
	s->rto_deadline = 0;
}

void xm_sender_reset(struct xm_sender *s, void (*forget)(void *ctx, struct xm_sender_slot *slot))
{
	__u64 seq;

	/* Unacked frames are forgotten; the remote copy of what they carried is unknown (§4.6). */
	for (seq = s->una; seq < s->nxt; seq++) {
		if (forget && slot(s, seq)->kind)
			forget(s->ctx, slot(s, seq));
		memset(slot(s, seq), 0, sizeof(struct xm_sender_slot));
	}
	s->gen++;
	s->una = s->nxt = s->right_edge = 0;
	s->rto_deadline = 0;
}

bool xm_sender_has_room(const struct xm_sender *s)
{
	return s->nxt < s->right_edge && s->nxt - s->una < s->ring_size;
}

static __u64 tag_of(const struct xm_sender *s, __u64 seq)
{
	return (__u64)(s->gen & 0xffff) << TAG_SEQ_BITS | seq;
}

static int transmit(struct xm_sender *s, __u64 seq, __u64 now)
{
	struct xm_sender_slot *sl = slot(s, seq);
	int err = s->ops->transmit(s->ctx, seq, sl, tag_of(s, seq));

	if (err)
		return err;
	if (!sl->first_tx_ns)
		sl->first_tx_ns = now;
	sl->last_tx_ns = now;
	return 0;
}

static void arm_rto(struct xm_sender *s, __u64 now)
{
	s->rto_deadline = s->una < s->nxt ? now + s->rto : 0;
}

int xm_sender_send(struct xm_sender *s, void *item, __u32 frame, __u8 kind, __u64 now)
{
	struct xm_sender_slot *sl = slot(s, s->nxt);
	int err;

	if (!xm_sender_has_room(s))
		return -ENOBUFS;
	memset(sl, 0, sizeof(*sl));
	sl->item = item;
	sl->frame = frame;
	sl->kind = kind;
	err = transmit(s, s->nxt, now);
	if (err) {
		memset(sl, 0, sizeof(*sl));
		return err;
	}
	if (s->una == s->nxt)
		s->rto_deadline = now + s->rto;
	s->nxt++;
	return 0;
}

static void mark_sent(struct xm_sender *s, struct xm_sender_slot *sl)
{
	if (sl->sent)
		return;
	sl->sent = true;
	s->ops->sent(s->ctx, sl);
}

static void mark_rcvd(struct xm_sender *s, struct xm_sender_slot *sl)
{
	mark_sent(s, sl);
	if (sl->rcvd)
		return;
	sl->rcvd = true;
	s->ops->received(s->ctx, sl);
}

void xm_sender_durable(struct xm_sender *s, struct xm_sender_slot *sl)
{
	mark_rcvd(s, sl);
	if (sl->durable)
		return;
	sl->durable = true;
	s->ops->durable(s->ctx, sl);
}

struct xm_sender_slot *xm_sender_find(struct xm_sender *s, __u64 seq)
{
	return seq >= s->una && seq < s->nxt ? slot(s, seq) : NULL;
}

void xm_sender_tx_done(struct xm_sender *s, __u64 tag)
{
	__u64 seq = tag & ((1ull << TAG_SEQ_BITS) - 1);

	/* Protocol A completes on this: the first transmission has left the box (§6). */
	if ((tag >> TAG_SEQ_BITS) != (s->gen & 0xffff) || seq < s->una || seq >= s->nxt)
		return;
	mark_sent(s, slot(s, seq));
}

static void rtt_sample(struct xm_sender *s, __u64 r)
{
	__u64 var;

	if (!s->min_rtt || r < s->min_rtt)
		s->min_rtt = r;
	if (!s->srtt) {
		s->srtt = r;
		s->rttvar = r / 2;
	} else {
		__u64 diff = s->srtt > r ? s->srtt - r : r - s->srtt;

		s->rttvar = (3 * s->rttvar + diff) / 4;
		s->srtt = (7 * s->srtt + r) / 8;
	}
	var = 4 * s->rttvar > RTO_SLACK_NS ? 4 * s->rttvar : RTO_SLACK_NS;
	s->rto = s->srtt + var;
	if (s->rto < RTO_MIN_NS)
		s->rto = RTO_MIN_NS;
	if (s->rto > RTO_MAX_NS)
		s->rto = RTO_MAX_NS;
	s->rto_base = s->rto;
}

static void retransmit(struct xm_sender *s, __u64 seq, __u64 now, bool fast)
{
	struct xm_sender_slot *sl = slot(s, seq);

	if (transmit(s, seq, now))
		return; /* the RTO tries again */
	sl->retransmitted = true;
	if (fast) {
		sl->rack_retx = true;
		s->ctr->tx_retrans_fast++;
	} else {
		s->ctr->tx_retrans_rto++;
	}
}

/* What one ack tells about frames not known to be received before: for RTT and RACK. */
struct ack_news {
	__u64 newest_tx; /* latest send time among those sent only once */
	__u64 sample;	 /* RTT of the most recently sent one that was never retransmitted */
	__u64 sample_sent;
};

static void note_received(struct xm_sender_slot *sl, struct ack_news *n, __u64 now)
{
	if (sl->rcvd || sl->durable || !sl->kind)
		return;
	/* Only frames sent once say when they left: an ack for a retransmitted frame may stem from
	 * its first copy, and its new send time would make everything sent before it look lost. */
	if (sl->retransmitted)
		return;
	if (sl->first_tx_ns > n->newest_tx)
		n->newest_tx = sl->first_tx_ns;
	if (sl->first_tx_ns > n->sample_sent) {
		n->sample_sent = sl->first_tx_ns;
		n->sample = now - sl->first_tx_ns;
	}
}

static void ack_one(struct xm_sender *s, __u64 seq, bool rcvd_only, struct ack_news *n, __u64 now)
{
	struct xm_sender_slot *sl = slot(s, seq);

	note_received(sl, n, now);
	if (rcvd_only)
		mark_rcvd(s, sl);
	else
		xm_sender_durable(s, sl);
}

/*
 * Loss detection and RTT use the received information: a frame the peer has accepted is never
 * lost, however long its disk takes (§5.4, §5.5, §6.1).
 */
int xm_sender_ack(struct xm_sender *s, __u64 cum, __u64 sack, bool has_sack, bool rcvd_only,
		  __u32 credit, __u64 now, const char **why)
{
	struct ack_news n = {0};
	__u64 seq;
	int i;

	if (cum > s->nxt) {
		s->ctr->rx_ack_invalid++;
		*why = "ack for unsent frames";
		return -EPROTO;
	}
	if (has_sack && sack && cum + 1 + 63 - __builtin_clzll(sack) >= s->nxt) {
		s->ctr->rx_ack_invalid++;
		*why = "selective ack for unsent frames";
		return -EPROTO;
	}
	if (cum < s->una && !rcvd_only)
		s->ctr->rx_ack_stale++;
	if (cum + credit > s->right_edge)
		s->right_edge = cum + credit;
	for (seq = s->una; seq < cum; seq++)
		ack_one(s, seq, rcvd_only, &n, now);
	for (i = 0; has_sack && i < 64; i++) {
		seq = cum + 1 + (__u64)i;
		if ((sack >> i & 1) && seq >= s->una)
			ack_one(s, seq, rcvd_only, &n, now);
	}
	if (!rcvd_only && cum > s->una) {
		for (seq = s->una; seq < cum; seq++)
			memset(slot(s, seq), 0, sizeof(struct xm_sender_slot));
		s->una = cum;
		s->rto = s->rto_base; /* backoff ends when the window moves */
		arm_rto(s, now);
	}
	if (n.sample)
		rtt_sample(s, n.sample);
	/* RACK (§5.5): a frame sent well before one that arrived, and not arrived itself, is lost.
	 */
	if (n.newest_tx) {
		/* RFC 8985's min_RTT/4: a window of srtt/4 spans more frames than the 64 a SACK
		 * reports, and a hole would then wait for the RTO. */
		__u64 reo = s->min_rtt / 4 > RTO_SLACK_NS ? s->min_rtt / 4 : RTO_SLACK_NS;

		for (seq = s->una; seq < s->nxt; seq++) {
			struct xm_sender_slot *sl = slot(s, seq);

			if (!sl->rcvd && !sl->durable && !sl->rack_retx &&
			    sl->last_tx_ns + reo < n.newest_tx)
				retransmit(s, seq, now, true);
		}
	}
	return 0;
}

__u64 xm_sender_tick(struct xm_sender *s, __u64 now)
{
	if (s->rto_deadline && now >= s->rto_deadline) {
		__u64 seq;

		/* Only the oldest frame that is not known to be there (§5.4). */
		for (seq = s->una; seq < s->nxt; seq++)
			if (!slot(s, seq)->durable && !slot(s, seq)->rcvd)
				break;
		if (seq < s->nxt)
			retransmit(s, seq, now, false);
		s->rto = min_u64(2 * s->rto, RTO_MAX_NS);
		arm_rto(s, now);
	}
	return s->rto_deadline;
}

__u64 xm_sender_oldest_tx(const struct xm_sender *s)
{
	return s->una < s->nxt ? slot(s, s->una)->first_tx_ns : 0;
}
