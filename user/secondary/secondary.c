// SPDX-License-Identifier: GPL-2.0
/* The secondary: applies DATA frames to its disk and acknowledges them once durable. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "repl/hello.h"
#include "secondary/internal.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/log.h"

static __u64 right_edge(const struct xm_secondary *s)
{
	/* Every slot has its own staging buffer, so the whole ring is always free to promise. */
	return xm_receiver_right_edge(&s->rcv);
}

static __u64 cumack(const struct xm_secondary *s)
{
	return xm_receiver_cumack(&s->rcv);
}

static void send_ack(struct xm_secondary *s, bool rcvd)
{
	struct xm_frame f = {.type = XM_T_ACK, .session = s->session};
	__u64 cum, sack;

	/* Received-acks (protocol B, and loss detection in every protocol, §6.1): accepted frames,
	 * durable or not. */
	xm_receiver_ack(&s->rcv, rcvd, &cum, &sack);
	if (rcvd)
		f.flags = XM_F_RCVD;
	f.arg0 = cum;
	f.arg1 = sack;
	f.credit = (__u32)(right_edge(s) - cum);
	if (xm_env_send(s->env, &f, NULL, 0, 0)) {
		/* An ack is a snapshot: the next pass sends the newest one (§10.2). */
		if (rcvd)
			s->rcvd_pending = true;
		else
			s->ack_pending = true;
		return;
	}
	ctr(s)->tx_ack++;
}

static void send_flush_ack(struct xm_secondary *s, __u64 seq)
{
	struct xm_frame f = {.type = XM_T_FLUSH_ACK, .session = s->session, .arg0 = seq};

	xm_env_send(s->env, &f, NULL, 0, 0);
}

static int adopt_generation(struct xm_secondary *s, __u64 gen)
{
	struct xm_meta *m = s->env->meta;
	int err;

	if (m->sb.current_gen != gen) {
		m->sb.history[1] = m->sb.history[0];
		m->sb.history[0] = m->sb.current_gen;
	}
	m->sb.current_gen = gen;
	m->sb.bitmap_gen = 0;
	m->sb.disk_state = XM_DISK_UPTODATE;
	xm_bitmap_clear_all(&m->bm);
	m->sb_dirty = true;
	err = xm_env_meta_sync(s->env);
	if (err) {
		fail_disk(s, err);
		return err;
	}
	pr_info("%s: in sync with the primary (generation %016llx)", s->env->cfg->dev,
		(unsigned long long)gen);
	return 0;
}

/* A barrier at the cumulative ack: every earlier write is durable, its commit covered it (§7.5). */
static int pass_barrier(void *ctx, __u64 seq)
{
	struct xm_secondary *s = ctx;
	const struct sslot *sl = &s->ring[xm_receiver_index(&s->rcv, seq)];

	/* A SETGEN: the resync is complete, this disk holds the primary's data (resync.md §4.3). */
	if (sl->setgen && adopt_generation(s, sl->setgen))
		return -1;
	send_flush_ack(s, seq);
	return 0;
}

/* The cumulative ack moves over durable writes and barriers in order. */
static void advance(struct xm_secondary *s)
{
	if (xm_receiver_advance(&s->rcv, pass_barrier, s))
		s->ack_pending = true;
}

void frame_durable(struct xm_secondary *s, __u64 seq)
{
	xm_receiver_durable(&s->rcv, seq);
	s->ack_pending = true;
	advance(s);
}

void fail_disk(struct xm_secondary *s, int err)
{
	if (s->state == S_FAILED)
		return;
	ctr(s)->wr_errors++;
	snprintf(s->reason, sizeof(s->reason), "disk failed: %s", strerror(-err));
	pr_warn("%s: %s; no more acks", s->env->cfg->dev, s->reason);
	s->state = S_FAILED;
}

static void end_session(struct xm_secondary *s, const char *why)
{
	if (s->state == S_CONNECTED)
		pr_info("%s: session %08x ended: %s", s->env->cfg->dev, s->session, why);
	snprintf(s->reason, sizeof(s->reason), "%s", why);
	s->gen++;
	s->ack_pending = s->rcvd_pending = false;
	if (s->state != S_FAILED)
		s->state = writer_idle(s) ? S_LISTEN : S_DRAINING;
}

static void violation(struct xm_secondary *s, const char *what)
{
	char why[128];

	ctr(s)->violations++;
	snprintf(why, sizeof(why), "protocol violation: %s", what);
	end_session(s, why);
}

/* §5.6: what to do with a numbered frame. */
static void on_numbered(struct xm_secondary *s, const struct xm_frame *f, struct xm_xsk *x,
			struct xm_rx_pkt *pkt, const struct xm_span *spans, __u32 n, __u32 hdr_off)
{
	bool barrier = f->type == XM_T_FLUSH || f->type == XM_T_SETGEN;
	struct xm_span pl[XM_MAX_SPANS];
	__u32 np;

	switch (xm_receiver_accept(&s->rcv, f->seq)) {
	case XM_RX_NEW:
		break;
	case XM_RX_DUP_PASSED:
		if (barrier)
			send_flush_ack(s, f->seq);
		/* fall through */
	case XM_RX_DUP_DONE:
		s->ack_pending = true;
		return;
	default: /* a duplicate under way, or beyond the window */
		return;
	}
	if (barrier) {
		if (f->payload_len || (f->type == XM_T_SETGEN && !f->arg0)) {
			ctr(s)->rx_bad_len++;
			return;
		}
		ctr(s)->rx_flush++;
		s->ring[xm_receiver_index(&s->rcv, f->seq)].setgen =
			f->type == XM_T_SETGEN ? f->arg0 : 0;
		xm_receiver_take(&s->rcv, f->seq, XM_RS_BARRIER);
		s->rcvd_pending = true;
		advance(s);
		return;
	}
	if (!f->payload_len || f->payload_len > s->max_payload) {
		ctr(s)->rx_bad_len++;
		violation(s, "DATA length outside 1..max_payload");
		return;
	}
	if (f->arg0 % s->block || f->payload_len % s->block) {
		ctr(s)->rx_unaligned++;
		violation(s, "DATA not aligned to the block size");
		return;
	}
	if (f->arg0 > s->export_size || f->payload_len > s->export_size - f->arg0) {
		ctr(s)->rx_bad_offset++;
		violation(s, "DATA beyond the export");
		return;
	}
	np = xm_spans_slice(spans, n, hdr_off + f->payload_off, f->payload_len, pl, XM_MAX_SPANS);
	if (!np) {
		ctr(s)->rx_bad_len++;
		return;
	}
	if (f->flags & XM_F_RESYNC) {
		ctr(s)->rx_resync++;
		ctr(s)->rx_resync_bytes += f->payload_len;
	}
	writer_apply(s, f->seq, f, x, pkt, pl, np);
	/* Received-acks drive the primary's loss detection in every protocol (§6.1). */
	s->rcvd_pending = true;
}

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
 * this disk is durably Inconsistent and carries the primary's generation.  Returns a refusal.
 */
static __u8 decide(struct xm_secondary *s, const struct xm_hello2 *h, struct xm_hello_gen *ack)
{
	struct xm_meta *m = s->env->meta;
	struct xm_gen_info pri, mine;
	enum xm_sync_decision dec;
	bool discard = s->discard_local;

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
	m->sb_dirty = true;
	if (xm_env_meta_sync(s->env))
		return XM_REFUSE_DISK_FAILED;
	s->discard_local = false;
	if (dec != XM_SYNC_NONE)
		pr_info("%s: %s resync from the primary%s", s->env->cfg->dev,
			xm_sync_decision_name(dec),
			discard ? " (discarding this box's changes)" : "");
	return XM_REFUSE_NONE;
}

/* Why this box refused the primary, for status; logged once per new reason. */
static void refuse_reason(struct xm_secondary *s, __u8 refusal, const struct xm_hello2 *h)
{
	static const char *const texts[XM_REFUSE_MAX] = {
		[XM_REFUSE_VERSION] = "no common protocol revision",
		[XM_REFUSE_BLOCK_SIZE] = "block size larger than a frame's payload (raise the MTU)",
		[XM_REFUSE_PARAM] = "invalid HELLO parameter",
		[XM_REFUSE_ROLE] = "the peer is not a primary",
		[XM_REFUSE_DISK_FAILED] = "this box's disk failed",
		[XM_REFUSE_SPLIT_BRAIN] = "split brain",
		[XM_REFUSE_PEER_NEWER] = "this box has newer data",
		[XM_REFUSE_UNRELATED] = "unrelated data",
	};
	char why[96];

	if (refusal == XM_REFUSE_DISK_SIZE)
		snprintf(why, sizeof(why),
			 "this disk (%llu bytes) is smaller than the primary's (%llu bytes)",
			 (unsigned long long)s->env->disk->size,
			 (unsigned long long)be64toh(h->h.disk_size));
	else
		snprintf(why, sizeof(why), "%s",
			 refusal < XM_REFUSE_MAX && texts[refusal] ? texts[refusal]
								   : "invalid HELLO parameter");
	/* decide() has already said why it refuses to resync. */
	if (refusal != s->last_refusal && refusal != XM_REFUSE_SPLIT_BRAIN &&
	    refusal != XM_REFUSE_PEER_NEWER && refusal != XM_REFUSE_UNRELATED)
		pr_warn("%s: refused the primary: %s", s->env->cfg->dev, why);
	s->last_refusal = refusal;
	/* A failed disk keeps its own reason: the error is what the operator needs to see. */
	if (s->state != S_FAILED)
		snprintf(s->reason, sizeof(s->reason), "refused the primary: %s", why);
}

static void answer_hello(struct xm_secondary *s, const struct xm_frame *f,
			 const struct xm_hello2 *h)
{
	struct xm_frame ack = {.type = XM_T_HELLO_ACK, .session = (__u32)f->arg0};
	struct xm_hello2 mine;
	struct xm_span span = {.data = (const __u8 *)&mine, .len = sizeof(mine)};
	struct xm_hello_gen ack_gen = {0};
	__u32 block = 0, maxp = 0;
	__u64 size = 0;
	__u8 refusal;

	if (s->state == S_CONNECTED && f->arg0 == s->session) {
		/* Our HELLO_ACK was lost: the same answer again, with the current cumack. */
		refusal = XM_REFUSE_NONE;
		ack_gen = s->ack_gen;
	} else {
		refusal = f->payload_len < sizeof(*h) ? XM_REFUSE_VERSION
						      : check_hello(s, &h->h, &block, &maxp, &size);
		if (!refusal)
			refusal = decide(s, h, &ack_gen);
		if (refusal) {
			ctr(s)->rx_bad_hello += refusal == XM_REFUSE_PARAM;
			refuse_reason(s, refusal, h);
		} else {
			s->session = (__u32)f->arg0;
			s->last_refusal = XM_REFUSE_NONE;
			s->gen++;
			xm_receiver_start(&s->rcv, f->seq);
			s->block = block;
			s->max_payload = maxp;
			s->export_size = size;
			s->ack_gen = ack_gen;
			/* We send received-acks, so B runs as B (§6.1). */
			s->protocol = (char)h->h.repl_protocol;
			memcpy(s->peer_uuid, h->h.node_uuid, sizeof(s->peer_uuid));
			s->state = S_CONNECTED;
			s->reason[0] = 0;
			xm_env_liveness_start(s->env, xm_now_ns());
			ctr(s)->sessions++;
			pr_info("%s: session %08x accepted: protocol %c, block %u, %u bytes per "
				"frame, window %u, sync %s",
				s->env->cfg->dev, s->session, s->protocol, s->block, s->max_payload,
				WINDOW, xm_sync_decision_name(s->decision));
		}
	}
	fill_hello(s, &mine, refusal ? (char)s->env->cfg->protocol : s->protocol);
	if (!refusal || ack_gen.decision)
		mine.g = ack_gen;
	ack.arg0 = refusal ? 0 : cumack(s);
	ack.arg1 = refusal;
	ack.credit = refusal ? 0 : (__u32)(right_edge(s) - cumack(s));
	ack.payload_len = sizeof(mine);
	if (!xm_env_send(s->env, &ack, &span, 1, 0))
		ctr(s)->tx_hello++;
}

static void on_hello(struct xm_secondary *s, const struct xm_frame *f, const struct xm_span *spans,
		     __u32 n, __u32 hdr_off)
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
		end_session(s, "the primary started a new session");
	if (s->state == S_DRAINING) {
		/* Old writes may still land; the new session starts after them (§4.2). */
		s->hello_saved = true;
		s->saved_hello = *f;
		s->saved_hello_body = h;
		return;
	}
	answer_hello(s, f, &h);
}

static void secondary_rx(void *r, const struct xm_rx *rx)
{
	struct xm_secondary *s = r;
	const struct xm_frame *f = rx->f;
	const struct xm_span *spans = rx->spans;
	__u32 n = rx->nspans, hdr_off = rx->hdr_off;
	__u64 now = xm_now_ns();

	if (f->type == XM_T_HELLO) {
		on_hello(s, f, spans, n, hdr_off);
		return;
	}
	if (s->state != S_CONNECTED || f->session != s->session || s->stopping) {
		ctr(s)->rx_wrong_session++;
		return;
	}
	switch (f->type) {
	case XM_T_DATA:
	case XM_T_FLUSH:
	case XM_T_SETGEN:
		on_numbered(s, f, rx->xsk, rx->pkt, spans, n, hdr_off);
		break;
	case XM_T_BMREQ:
		on_bmreq(s, f);
		break;
	case XM_T_CSUMREQ:
		on_csumreq(s, f);
		break;
	case XM_T_CLOSE:
		ctr(s)->rx_close++;
		end_session(s, f->arg0 == XM_CLOSE_DEMOTE ? "the primary demoted itself"
							  : "the primary detached");
		break;
	case XM_T_PING:
		if (f->payload_len) {
			ctr(s)->rx_bad_len++;
			break;
		}
		xm_env_answer_ping(s->env, f, cumack(s), (__u32)(right_edge(s) - cumack(s)));
		break;
	case XM_T_PONG:
		if (f->payload_len) {
			ctr(s)->rx_bad_len++;
			break;
		}
		xm_env_take_pong(s->env, f, now);
		break;
	default:
		ctr(s)->rx_unexpected++;
	}
}

static __u64 secondary_tick(void *r, __u64 now)
{
	struct xm_secondary *s = r;
	enum xm_verdict verdict;
	__u64 next = UINT64_MAX;

	if (s->state == S_DRAINING && writer_idle(s)) {
		s->state = S_LISTEN;
		if (s->hello_saved) {
			s->hello_saved = false;
			answer_hello(s, &s->saved_hello, &s->saved_hello_body);
		}
	}
	if (s->state != S_CONNECTED)
		return next;
	verdict = s->stopping ? XM_PEER_ALIVE : xm_env_liveness(s->env, s->session, now);
	if (verdict != XM_PEER_ALIVE) {
		if (verdict == XM_PEER_NOT_ANSWERING)
			ctr(s)->peer_timeouts++;
		else
			ctr(s)->peer_silent++;
		end_session(s, xm_verdict_text(verdict));
		return now;
	}
	if (s->rcvd_pending) {
		s->rcvd_pending = false;
		send_ack(s, true);
	}
	if (s->ack_pending) {
		s->ack_pending = false;
		send_ack(s, false);
	}
	xm_env_heartbeat(s->env, s->session, cumack(s), (__u32)(right_edge(s) - cumack(s)), now);
	next = xm_detector_deadline(s->env->det);
	if (xm_heartbeat_next(s->env->hb) < next)
		next = xm_heartbeat_next(s->env->hb);
	return next;
}

static void secondary_stop(void *r)
{
	struct xm_secondary *s = r;

	s->stopping = true;
}

static bool secondary_drained(const void *r, __u64 now)
{
	const struct xm_secondary *s = r;

	return writer_idle(s) && !s->csum_inflight;
}

static void secondary_finish(void *r, __u64 why)
{
	struct xm_secondary *s = r;
	struct xm_meta *m = s->env->meta;

	if (s->state == S_CONNECTED)
		xm_env_send_close(s->env, s->session, why);
	m->sb.role = XM_ROLE_SECONDARY;
	m->sb_dirty = true;
	xm_env_meta_sync(s->env);
}

static bool secondary_connected(const void *r)
{
	const struct xm_secondary *s = r;

	return s->state == S_CONNECTED;
}

/* resolve --discard-local: the next handshake drops this box's changes; returns the answer. */
static const char *discard_local(struct xm_secondary *s)
{
	s->discard_local = true;
	pr_warn("%s: the next handshake discards this box's changes", s->env->cfg->dev);
	return "ok: this box's changes are discarded at the next handshake";
}

static void secondary_destroy(void *r);

static void *secondary_create(const struct xm_role_env *env)
{
	struct xm_secondary *s = calloc(1, sizeof(*s));
	__u32 block = env->disk->dio_offset_align, mtu_payload;

	if (!s)
		return NULL;
	s->env = env;
	s->state = S_LISTEN;
	snprintf(s->reason, sizeof(s->reason), "waiting for the primary");
	/* UMEM layouts (§7.3): B for jumbo frames, A otherwise; see xm_secondary_headroom(). */
	if (env->mtu >= 4096 + 512) {
		s->layout = "B";
		s->payload_align = 512;
		mtu_payload = env->mtu - (512 - XM_ETH_HLEN);
		s->max_payload_local = mtu_payload < 8192 ? mtu_payload : 8192;
	} else {
		s->layout = "A";
		s->payload_align = 64;
		mtu_payload = env->mtu - (64 - XM_ETH_HLEN);
		s->max_payload_local = mtu_payload < 3584 ? mtu_payload : 3584;
	}
	s->max_payload_local = s->max_payload_local / block * block;
	s->zero_copy_possible =
		env->disk->dio_offset_align <= 512 && env->disk->dio_mem_align <= 512;
	if (xm_receiver_init(&s->rcv, WINDOW, env->ctr) || writer_init(s)) {
		secondary_destroy(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

static void secondary_destroy(void *r)
{
	struct xm_secondary *s = r;

	if (!s)
		return;
	writer_free(s);
	answers_free(s);
	xm_receiver_free(&s->rcv);
	free(s);
}

__u32 xm_secondary_headroom(__u32 mtu)
{
	/* Layout B: data at chunk + 512, payload at frame offset 512 → chunk + 1024, and every
	 * following buffer at chunk + 512.  Layout A: data at chunk + 448, payload at + 64. */
	return mtu >= 4096 + 512 ? 256 : 192;
}

static void secondary_rx_done(void *r)
{
	writer_submit(r);
}

static const char *secondary_control(void *r, const struct xm_ctl_req *req)
{
	if (!strcmp(req->verb, "resolve") && req->discard_local)
		return discard_local(r);
	return NULL;
}

const struct xm_role_ops xm_secondary_role = {
	.role = XM_ROLE_SECONDARY,
	.create = secondary_create,
	.destroy = secondary_destroy,
	.rx = secondary_rx,
	.rx_done = secondary_rx_done,
	.tick = secondary_tick,
	.control = secondary_control,
	.connected = secondary_connected,
	.stop = secondary_stop,
	.drained = secondary_drained,
	.finish = secondary_finish,
	.status = secondary_status,
};
