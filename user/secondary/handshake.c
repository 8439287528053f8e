// SPDX-License-Identifier: GPL-2.0
/* The secondary's side of the handshake (docs/protocol.md §4.2, docs/resync.md §3): HELLO checks,
 * the decision, and accepting a session once the metadata says so durably. */
#include <endian.h>
#include <string.h>

#include "repl/hello.h"
#include "secondary/internal.h"
#include "util/log.h"

static __u8 check_hello(struct xm_secondary *s, const struct xm_hello *h, __u32 *block, __u32 *maxp,
			__u64 *export_size)
{
	__u8 refusal;

	if (s->state == S_FAILED)
		return XM_REFUSE_DISK_FAILED;
	refusal = xm_hello_check(h);
	if (refusal == XM_REFUSE_VERSION)
		return refusal;
	if (h->role != XM_ROLE_PRIMARY)
		return XM_REFUSE_ROLE;
	/* Two boxes with one identity would compare one history with itself and call it in sync. */
	if (!memcmp(h->node_uuid, s->env->node_uuid, sizeof(h->node_uuid)))
		return XM_REFUSE_SAME_NODE;
	if (refusal)
		return refusal;
	refusal = xm_hello_terms(be32toh(h->block_size), s->env->disk->dio_offset_align,
				 be32toh(h->max_payload), s->max_payload_local,
				 be64toh(h->disk_size), block, maxp, export_size);
	if (refusal)
		return refusal;
	if (s->env->disk->size < *export_size)
		return XM_REFUSE_DISK_SIZE;
	return XM_REFUSE_NONE;
}

static void fill_hello(struct xm_secondary *s, struct xm_hello2 *h, char protocol)
{
	const struct xm_hello_offer offer = {
		.role = XM_ROLE_SECONDARY,
		.protocol = protocol,
		.max_payload = s->max_payload_local,
		.window = WINDOW,
		.payload_align = (__u16)s->payload_align,
	};

	xm_hello_fill(s->env, &offer, h);
}

static __u8 refusal_of(enum xm_sync_decision dec)
{
	switch (dec) {
	case XM_SYNC_SPLIT_BRAIN:
		return XM_REFUSE_SPLIT_BRAIN;
	case XM_SYNC_PEER_NEWER:
		return XM_REFUSE_PEER_NEWER;
	case XM_SYNC_UNRELATED:
		return XM_REFUSE_UNRELATED;
	default:
		return XM_REFUSE_NONE;
	}
}

/*
 * Decides what the session does with the data (docs/resync.md §3); before a resync may start,
 * this disk is Inconsistent and carries the primary's generation (made durable before the
 * HELLO_ACK goes out).  Returns a refusal.
 */
static __u8 decide(struct xm_secondary *s, const struct xm_hello2 *h, struct xm_hello_gen *ack)
{
	struct xm_meta *m = s->env->meta;
	struct xm_gen_info pri, mine;
	enum xm_sync_decision dec;
	bool discard = s->discard_local;

	/* The primary ended the last session on a violation: what we wrote in it is suspect
	 * (docs/resync.md §8a). */
	if (h->g.flags & XM_HG_PEER_SUSPECT)
		written_to_oos(s, "the primary ended the last session on a protocol violation");
	xm_gen_from_wire(&h->g, &pri);
	xm_gen_of_meta(s->env->meta, &mine);
	dec = xm_sync_decide(&pri, &mine, discard);
	if (dec == XM_SYNC_NONE && mine.disk_state != XM_DISK_UPTODATE)
		dec = XM_SYNC_BITMAP; /* nothing to send, but the SETGEN makes it UpToDate */
	xm_gen_to_wire(&mine, m->sb.bitmap_block, discard ? XM_HG_DISCARD_MINE : 0, (__u8)dec, ack);
	if (refusal_of(dec)) {
		if (s->refused_decision != dec)
			pr_warn("%s: %s: no resync (%s)", s->env->cfg->dev,
				xm_sync_decision_name(dec),
				dec == XM_SYNC_SPLIT_BRAIN
					? "both boxes wrote while apart; 'xdpmirror resolve "
					  "--discard-local' on the box whose changes go"
				: dec == XM_SYNC_PEER_NEWER
					? "this box has writes the primary lacks; promote it, or "
					  "'xdpmirror resolve --discard-local' here"
					: "the disks share no history; 'xdpmirror resolve "
					  "--discard-local' here for a full sync");
		s->refused_decision = (__u8)dec;
		return refusal_of(dec);
	}
	s->refused_decision = 0;
	s->decision = (__u8)dec;
	memcpy(m->sb.peer_uuid, h->h.node_uuid, sizeof(m->sb.peer_uuid));
	if (dec != XM_SYNC_NONE) {
		m->sb.disk_state = XM_DISK_INCONSISTENT;
		m->sb.current_gen = pri.current_gen;
	}
	m->sb_dirty = true; /* durable before the HELLO_ACK: start_session() */
	s->discard_local = false;
	if (dec != XM_SYNC_NONE)
		pr_info("%s: %s resync from the primary%s", s->env->cfg->dev,
			xm_sync_decision_name(dec),
			discard ? " (discarding this box's changes)" : "");
	return XM_REFUSE_NONE;
}

/* Why this box refused the primary, for status; logged once per new reason.  The cause is worded
 * as the primary words it (repl/hello.h), so both boxes name the same one. */
static void refuse_reason(struct xm_secondary *s, __u8 refusal, __u64 export_size)
{
	char why[106];

	xm_refusal_cause(refusal, s->env->disk->size, export_size, why, sizeof(why));
	/* decide() has already said why it refuses to resync. */
	if (refusal != s->last_refusal && refusal != XM_REFUSE_SPLIT_BRAIN &&
	    refusal != XM_REFUSE_PEER_NEWER && refusal != XM_REFUSE_UNRELATED)
		pr_warn("%s: refused the primary: %s", s->env->cfg->dev, why);
	s->last_refusal = refusal;
	/* A failed disk keeps its own reason: the error is what the operator needs to see. */
	if (s->state != S_FAILED)
		snprintf(s->reason, sizeof(s->reason), "refused the primary: %s", why);
}

/* The HELLO_ACK for the HELLO whose arg0 is id: the session's answer, or a refusal. */
static void send_hello_ack(struct xm_secondary *s, __u64 id, __u8 refusal,
			   const struct xm_hello_gen *ack_gen)
{
	struct xm_frame ack = {.type = XM_T_HELLO_ACK, .session = (__u32)id};
	struct xm_hello2 mine;
	struct xm_span span = {.data = (const __u8 *)&mine, .len = sizeof(mine)};

	fill_hello(s, &mine, refusal ? (char)s->env->cfg->protocol : s->protocol);
	if (!refusal || ack_gen->decision)
		mine.g = *ack_gen;
	ack.arg0 = refusal ? 0 : cumack(s);
	ack.arg1 = refusal;
	ack.credit = refusal ? 0 : (__u32)(right_edge(s) - cumack(s));
	ack.payload_len = sizeof(mine);
	if (!xm_env_send(s->env, &ack, &span, 1, 0))
		ctr(s)->tx_hello++;
}

/* The metadata holds the decision: the session starts. */
static void start_session(struct xm_secondary *s)
{
	const struct accepting *a = &s->acc;

	s->session = (__u32)a->hello.arg0;
	s->last_refusal = XM_REFUSE_NONE;
	s->gen++;
	xm_receiver_start(&s->rcv, a->hello.seq);
	written_reset(s);
	s->block = a->block;
	s->max_payload = a->max_payload;
	s->export_size = a->export_size;
	s->ack_gen = a->ack_gen;
	/* We send received-acks, so B runs as B (§6.1). */
	s->protocol = (char)a->body.h.repl_protocol;
	memcpy(s->peer_uuid, a->body.h.node_uuid, sizeof(s->peer_uuid));
	s->state = S_CONNECTED;
	s->reason[0] = 0;
	xm_env_liveness_start(s->env, xm_now_ns());
	ctr(s)->sessions++;
	pr_info("%s: session %08x accepted: protocol %c, block %u, %u bytes per frame, window %u, "
		"sync %s",
		s->env->cfg->dev, s->session, s->protocol, s->block, s->max_payload, WINDOW,
		xm_sync_decision_name(s->decision));
	send_hello_ack(s, a->hello.arg0, XM_REFUSE_NONE, &s->ack_gen);
}

static void answer_hello(struct xm_secondary *s, const struct xm_frame *f,
			 const struct xm_hello2 *h);

/* The metadata write that accept() waits for is done (docs/protocol.md §4.2, ACCEPTING). */
static void on_accept_durable(struct xm_meta_waiter *w, int err)
{
	struct xm_secondary *s = xm_container_of(w, struct xm_secondary, acc.wait);

	s->acc.committing = false;
	if (s->state != S_ACCEPTING)
		return; /* failed or stopping meanwhile */
	s->state = S_LISTEN;
	if (err) {
		xm_env_meta_failed(s->env, err);
		refuse_reason(s, XM_REFUSE_DISK_FAILED, 0);
		send_hello_ack(s, s->acc.hello.arg0, XM_REFUSE_DISK_FAILED, &s->acc.ack_gen);
		return;
	}
	if (s->hello_saved || s->stopping) {
		/* The primary moved on to a newer HELLO: that one is answered instead. */
		if (s->hello_saved && !s->stopping) {
			s->hello_saved = false;
			answer_hello(s, &s->saved_hello, &s->saved_hello_body);
		}
		return;
	}
	start_session(s);
}

static void answer_hello(struct xm_secondary *s, const struct xm_frame *f,
			 const struct xm_hello2 *h)
{
	struct xm_hello_gen ack_gen = {0};
	struct accepting *a = &s->acc;
	__u32 block = 0, maxp = 0;
	__u64 size = 0;
	__u8 refusal;

	if (s->state == S_CONNECTED && f->arg0 == s->session) {
		/* Our HELLO_ACK was lost: the same answer again, with the current cumack. */
		send_hello_ack(s, f->arg0, XM_REFUSE_NONE, &s->ack_gen);
		return;
	}
	refusal = f->payload_len < sizeof(*h) ? XM_REFUSE_VERSION
					      : check_hello(s, &h->h, &block, &maxp, &size);
	if (!refusal)
		refusal = decide(s, h, &ack_gen);
	if (refusal) {
		ctr(s)->rx_bad_hello += refusal == XM_REFUSE_PARAM;
		refuse_reason(s, refusal, size);
		send_hello_ack(s, f->arg0, refusal, &ack_gen);
		return;
	}
	/* The answer waits until the decision is durable (start_session); HELLOs wait meanwhile. */
	a->hello = *f;
	a->body = *h;
	a->block = block;
	a->max_payload = maxp;
	a->export_size = size;
	a->ack_gen = ack_gen;
	a->wait.done = on_accept_durable;
	a->committing = true;
	s->state = S_ACCEPTING;
	xm_meta_commit(s->env->meta, &a->wait);
}

void handshake_on_hello(struct xm_secondary *s, const struct xm_frame *f,
			const struct xm_span *spans, __u32 n, __u32 hdr_off)
{
	struct xm_hello2 h = {0};

	if (f->session != 0 || !f->arg0 || f->arg0 > 0xffffffffull) {
		ctr(s)->rx_bad_hello++;
		return;
	}
	if (f->payload_len >= sizeof(h.h))
		xm_spans_copy(spans, n, hdr_off + f->payload_off,
			      f->payload_len < sizeof(h) ? sizeof(h.h) : sizeof(h), &h);
	if (s->stopping)
		return;
	if (s->state == S_CONNECTED && f->arg0 != s->session)
		leave_session(s, "the primary started a new session");
	if (s->state == S_ACCEPTING && f->arg0 == s->acc.hello.arg0)
		return; /* answered once the metadata is durable */
	if (s->state == S_DRAINING || s->state == S_ACCEPTING) {
		/* Old writes may still land; the new session starts after them (§4.2). */
		s->hello_saved = true;
		s->saved_hello = *f;
		s->saved_hello_body = h;
		return;
	}
	answer_hello(s, f, &h);
}

void handshake_tick(struct xm_secondary *s)
{
	if (s->state == S_DRAINING && writer_idle(s)) {
		s->state = S_LISTEN;
		if (s->hello_saved) {
			s->hello_saved = false;
			answer_hello(s, &s->saved_hello, &s->saved_hello_body);
		}
	}
}
