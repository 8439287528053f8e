// SPDX-License-Identifier: GPL-2.0
/* The primary as a role: handshake, sessions, numbered frames through the sender, what it
 * receives, timers (docs/protocol.md §4, §5). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "primary/internal.h"
#include "repl/hello.h"
#include "primary/primary.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runstate.h"

/* docs/protocol.md §4.1, §5.4, §9 */
#define HELLO_RETRY_NS	 (10 * NS_PER_MS)
#define REFUSED_RETRY_NS (1000 * NS_PER_MS)
#define DETACH_DRAIN_NS	 (5000 * NS_PER_MS)

static __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

/* ---- numbered frames (§5): the sender's callbacks ---- */

/* Payload bytes of frame k of a write: max_payload, or what is left for the last one. */
static __u32 frame_len(const struct xm_primary *p, const struct pwrite *w, __u32 k)
{
	__u32 left = w->len - k * p->max_payload;

	return left < p->max_payload ? left : p->max_payload;
}

static int transmit(void *ctx, __u64 seq, const struct xm_sender_slot *s, __u64 tag)
{
	struct xm_primary *p = ctx;
	struct xm_frame f = {.session = p->session, .seq = seq};
	const struct pflush *fl = s->item;
	struct xm_span payload;

	if (s->kind == SLOT_DATA) {
		const struct pwrite *w = s->item;
		__u32 start = s->frame * p->max_payload;

		payload.data = w->buf + start;
		payload.len = frame_len(p, w, s->frame);
		f.type = XM_T_DATA;
		f.flags = (w->fua ? XM_F_FUA : 0) | (w->resync ? XM_F_RESYNC : 0);
		f.payload_off = (__u16)p->payload_off;
		f.payload_len = payload.len;
		f.arg0 = w->off + start;
		return xm_env_send(p->env, &f, &payload, 1, tag);
	}
	f.type = fl && fl->setgen ? XM_T_SETGEN : XM_T_FLUSH;
	f.arg0 = fl ? fl->setgen : 0;
	return xm_env_send(p->env, &f, NULL, 0, tag);
}

static void frame_sent(void *ctx, struct xm_sender_slot *s)
{
	if (s->kind == SLOT_DATA)
		write_event(s->item, WE_FRAME_SENT, 0);
}

static void frame_received(void *ctx, struct xm_sender_slot *s)
{
	if (s->kind == SLOT_DATA)
		write_event(s->item, WE_FRAME_RCVD, 0);
}

static void frame_durable(void *ctx, struct xm_sender_slot *s)
{
	struct xm_primary *p = ctx;
	struct pflush *fl = s->item;

	if (s->kind == SLOT_DATA) {
		write_event(s->item, WE_FRAME_DURABLE, 0);
		return;
	}
	if (!fl)
		return;
	s->item = NULL;
	if (fl->setgen)
		setgen_done(p, fl->setgen);
	else
		flush_answer(p, fl);
	free(fl);
}

/* A FLUSH in flight when the session ends is answered: every write before it is durable
 * locally, and the peer's copy of what it lacks is marked out of sync (§4.6, §7.5). */
static void forget_frame(void *ctx, struct xm_sender_slot *s)
{
	struct pflush *fl = s->item;

	if (s->kind != SLOT_FLUSH || !fl)
		return;
	if (fl->req)
		flush_answer(ctx, fl);
	free(fl);
}

static const struct xm_sender_ops sender_ops = {
	.transmit = transmit,
	.sent = frame_sent,
	.received = frame_received,
	.durable = frame_durable,
};

/* Gives the next seq to a queued FLUSH or DATA frame and sends it; false when nothing goes. */
static bool send_new(struct xm_primary *p, __u64 now)
{
	struct pflush *fl = NULL;
	struct pwrite *w = NULL;

	if (!xm_sender_has_room(&p->snd))
		return false;
	if (!xm_list_empty(&p->flushq))
		fl = xm_container_of(p->flushq.next, struct pflush, node);
	else if (!xm_list_empty(&p->sendq))
		w = xm_container_of(p->sendq.next, struct pwrite, send_node);
	else if (!xm_list_empty(&p->rsendq) && p->rs_frames < rs_share(p))
		/* Resync gets what application writes leave (rs_share). */
		w = xm_container_of(p->rsendq.next, struct pwrite, send_node);
	else
		return false;
	if (fl) {
		if (xm_sender_send(&p->snd, fl, 0, SLOT_FLUSH, now))
			return false; /* counted in tx_ring_full; the next pass tries again */
		xm_list_del(&fl->node);
		ctr(p)->tx_flush++;
		return true;
	}
	if (xm_sender_send(&p->snd, w, w->next_frame, SLOT_DATA, now))
		return false;
	ctr(p)->tx_data++;
	ctr(p)->tx_data_bytes += frame_len(p, w, w->next_frame);
	if (w->resync) {
		p->rs_frames++;
		ctr(p)->tx_resync++;
		ctr(p)->tx_resync_bytes += frame_len(p, w, w->next_frame);
	}
	if (++w->next_frame == w->nframes)
		write_event(w, WE_ALL_SENT, 0);
	return true;
}

static void pump(struct xm_primary *p, __u64 now)
{
	unsigned int budget = 256;

	while (budget-- && send_new(p, now))
		;
	if (!xm_sender_window_open(&p->snd) &&
	    (!xm_list_empty(&p->sendq) || !xm_list_empty(&p->flushq) || !xm_list_empty(&p->rsendq)))
		ctr(p)->window_full++;
}

/* ---- the session (§4) ---- */

void end_session(struct xm_primary *p, const char *why, __u64 now)
{
	struct xm_list *pos, *tmp;

	if (p->state == P_CONNECTED)
		pr_info("%s: session %08x ended: %s", p->env->cfg->dev, p->session, why);
	snprintf(p->reason, sizeof(p->reason), "%s", why);
	/* Unacked frames are forgotten; the remote copy of their ranges is unknown (§4.6). */
	xm_sender_reset(&p->snd, forget_frame);
	xm_list_for_each_safe(pos, tmp, &p->flushq)
	{
		struct pflush *fl = xm_container_of(pos, struct pflush, node);

		xm_list_del(&fl->node);
		if (fl->req)
			flush_answer(p, fl);
		free(fl);
	}
	if (p->state == P_CONNECTED) {
		snprintf(p->fail_reason, sizeof(p->fail_reason), "%s", why);
		p->fail_silence_ns = xm_detector_silence(p->env->det, now);
		p->fail_at_ns = now;
	}
	p->phase = PH_NONE;
	p->rs_frames = 0;
	csum_abort(p);
	p->state = P_DISCONNECTED;
	p->gen++;
	p->hello_due = now;
	writes_session_ended(p);
	diskless_session_ended(p);
}

static void on_suspect_durable(struct xm_meta_waiter *w, int err)
{
	struct xm_primary *p = xm_container_of(w, struct xm_primary, suspect_wait);

	if (err)
		xm_env_meta_failed(p->env, err);
	p->suspect_committing = false;
}

/*
 * The peer may hold what we never sent (docs/resync.md §8a): the next HELLO, sent once that is
 * durable, asks it to count what it wrote in this session as out of sync.
 */
static void violation(struct xm_primary *p, const char *what, __u64 now)
{
	char why[128];

	ctr(p)->violations++;
	snprintf(why, sizeof(why), "protocol violation: %s", what);
	end_session(p, why, now);
	p->m->sb.flags |= XM_MF_PEER_SUSPECT;
	p->m->sb_dirty = true;
	if (!p->suspect_committing) {
		p->suspect_committing = true;
		p->suspect_wait.done = on_suspect_durable;
		xm_meta_commit(p->m, &p->suspect_wait);
	}
}

static void fill_hello(struct xm_primary *p, struct xm_hello2 *h)
{
	const struct xm_role_env *env = p->env;
	__u32 block = env->disk->dio_offset_align;
	const struct xm_hello_offer offer = {
		.role = XM_ROLE_PRIMARY,
		.protocol = (char)env->cfg->protocol,
		.max_payload = (env->mtu - (__u32)sizeof(struct xm_hdr)) / block * block,
		.window = SEND_RING / 2,
		.payload_align = 64,
		.gen_flags = p->m->sb.flags & XM_MF_PEER_SUSPECT ? XM_HG_PEER_SUSPECT : 0,
	};

	xm_hello_fill(env, &offer, h);
}

static void send_hello(struct xm_primary *p, __u64 now)
{
	struct xm_frame f = {.type = XM_T_HELLO, .seq = 1};
	struct xm_hello2 h;
	struct xm_span span = {.data = (const __u8 *)&h, .len = sizeof(h)};
	__u32 id = 0;

	if (p->state != P_HELLO_SENT) {
		while (!id || id == p->session)
			if (getrandom(&id, sizeof(id), 0) != sizeof(id))
				id = (__u32)now ^ (__u32)(now >> 32);
		p->session = id;
		p->state = P_HELLO_SENT;
	}
	fill_hello(p, &h);
	f.arg0 = p->session;
	f.payload_len = sizeof(h);
	if (!xm_env_send(p->env, &f, &span, 1, 0)) {
		ctr(p)->tx_hello++;
		p->hello_sent_ns = now;
	}
	p->hello_due = now + HELLO_RETRY_NS;
}

/* The status reason of a refused handshake: PREFIX and the cause in the words the secondary uses
 * for it (repl/hello.h), from the secondary's HELLO h (its disk size, its block). */
static void refusal_reason(struct xm_primary *p, const char *prefix, __u8 code,
			   const struct xm_hello *h)
{
	__u32 block, maxp;
	__u64 export_size = 0;
	char why[106];

	/* The export as the secondary measured it: the primary's disk in the larger block. */
	if (h->block_size || p->env->disk->dio_offset_align)
		xm_hello_terms(be32toh(h->block_size), p->env->disk->dio_offset_align, 0, 0,
			       p->env->disk->size, &block, &maxp, &export_size);
	xm_refusal_cause(code, be64toh(h->disk_size), export_size, why, sizeof(why));
	snprintf(p->reason, sizeof(p->reason), "%s: %s", prefix, why);
}

static bool is_pow2(__u32 v)
{
	return v && !(v & (v - 1));
}

static void on_hello_ack(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp,
			 __u32 n, __u32 hdr_off, __u64 now)
{
	struct xm_hello2 h2;
	struct xm_hello h;
	__u32 block, maxp, align, mtu_payload, payload_off;
	__u64 export_size;
	__u8 refusal;

	if (f->session != p->session || p->state == P_DISCONNECTED) {
		ctr(p)->rx_wrong_session++;
		return;
	}
	if (p->state == P_CONNECTED) {
		ctr(p)->rx_dup_hello_ack++;
		return;
	}
	if (p->state == P_REFUSED) {
		ctr(p)->rx_wrong_session++;
		return;
	}
	if (f->payload_len < sizeof(h2)) {
		ctr(p)->rx_bad_hello++;
		return;
	}
	xm_spans_copy(sp, n, hdr_off + f->payload_off, sizeof(h2), &h2);
	h = h2.h;
	if (f->arg1) {
		refusal_reason(p, "refused by peer", f->arg1 < 256 ? (__u8)f->arg1 : 255, &h);
		if (p->refusal != f->arg1)
			pr_warn("%s: %s", p->env->cfg->dev, p->reason);
		p->refusal = (__u8)(f->arg1 < 256 ? f->arg1 : 255);
		p->peer_disk_failed = f->arg1 == XM_REFUSE_DISK_FAILED;
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	/* Repeat the secondary's checks (§4.3): both sides must agree. */
	if (!memcmp(h.node_uuid, p->env->node_uuid, sizeof(h.node_uuid))) {
		refusal_reason(p, "refused the peer", XM_REFUSE_SAME_NODE, &h);
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	align = be16toh(h.payload_align);
	refusal = h.role != XM_ROLE_SECONDARY ? XM_REFUSE_ROLE : XM_REFUSE_PARAM;
	if (!is_pow2(align) || align > 4096 || h.role != XM_ROLE_SECONDARY || !f->credit)
		goto incompatible;
	payload_off = ((XM_ETH_HLEN + (__u32)sizeof(struct xm_hdr) + align - 1) / align) * align -
		      XM_ETH_HLEN;
	mtu_payload = p->env->mtu > payload_off ? p->env->mtu - payload_off : 0;
	refusal = xm_hello_terms(be32toh(h.block_size), p->env->disk->dio_offset_align,
				 be32toh(h.max_payload), mtu_payload, p->env->disk->size, &block,
				 &maxp, &export_size);
	if (!refusal && (!is_pow2(block) || block > 65536))
		refusal = XM_REFUSE_PARAM;
	if (!refusal && be64toh(h.disk_size) < export_size)
		refusal = XM_REFUSE_DISK_SIZE;
	if (refusal)
		goto incompatible;
	p->payload_off = payload_off;
	p->export_size = export_size;
	p->block = block;
	p->max_payload = maxp;
	p->window = f->credit < SEND_RING / 2 ? f->credit : SEND_RING / 2;
	p->running = (char)h.repl_protocol;
	if (p->running != 'A' && p->running != 'B' && p->running != 'C')
		p->running = 'C';
	memcpy(p->peer_uuid, h.node_uuid, sizeof(p->peer_uuid));
	xm_sender_start(&p->snd, f->arg0, p->window);
	xm_env_liveness_start(p->env, now);
	p->state = P_CONNECTED;
	p->reason[0] = 0;
	p->refusal = 0;
	p->peer_disk_failed = false;
	ctr(p)->sessions++;
	pr_info("%s: session %08x connected: protocol %c, block %u, %u bytes per frame, window %u, "
		"sync %s",
		p->env->cfg->dev, p->session, p->running, p->block, p->max_payload, p->window,
		xm_sync_decision_name(h2.g.decision));
	session_start(p, &h2.g, now);
	return;
incompatible:
	/* The secondary accepted what this box cannot: the same words it would have refused in. */
	refusal_reason(p, "refused the peer", refusal, &h);
	p->state = P_REFUSED;
	p->hello_due = now + REFUSED_RETRY_NS;
}

/* ---- acknowledgements (§5) ---- */

static void on_ack_info(struct xm_primary *p, __u64 cum, __u64 sack, bool has_sack, bool rcvd_only,
			__u32 credit, __u64 now)
{
	const char *why;

	if (xm_sender_ack(&p->snd, cum, sack, has_sack, rcvd_only, credit, now, &why))
		violation(p, why, now);
}

static void on_flush_ack(struct xm_primary *p, const struct xm_frame *f, __u64 now)
{
	struct xm_sender_slot *s = xm_sender_find(&p->snd, f->arg0);

	if (!s) {
		if (f->arg0 >= xm_sender_next(&p->snd)) {
			ctr(p)->rx_ack_invalid++;
			violation(p, "FLUSH_ACK for an unsent FLUSH", now);
		} else {
			ctr(p)->rx_dup_flush_ack++;
		}
		return;
	}
	if (s->kind != SLOT_FLUSH) {
		ctr(p)->rx_ack_invalid++;
		violation(p, "FLUSH_ACK for a DATA frame", now);
		return;
	}
	if (s->durable) {
		ctr(p)->rx_dup_flush_ack++;
		return;
	}
	xm_sender_durable(&p->snd, s);
}

/* ---- the role (repl/role.h) ---- */

static void primary_rx(void *r, const struct xm_rx *rx)
{
	struct xm_primary *p = r;
	const struct xm_frame *f = rx->f;
	const struct xm_span *spans = rx->spans;
	__u32 nspans = rx->nspans, hdr_off = rx->hdr_off;
	__u64 now = xm_now_ns();

	if (f->type == XM_T_HELLO) {
		/* Another primary (§4.1): refuse, change nothing. */
		struct xm_frame ack = {
			.type = XM_T_HELLO_ACK, .session = (__u32)f->arg0, .arg1 = XM_REFUSE_ROLE};
		struct xm_hello2 h;
		struct xm_span span = {.data = (const __u8 *)&h, .len = sizeof(h)};

		ctr(p)->rx_unexpected++;
		if (p->state != P_CONNECTED) {
			char why[64];

			xm_refusal_cause(XM_REFUSE_ROLE, 0, 0, why, sizeof(why));
			snprintf(p->reason, sizeof(p->reason), "refused the peer: %s", why);
		}
		fill_hello(p, &h);
		ack.payload_len = sizeof(h);
		xm_env_send(p->env, &ack, &span, 1, 0);
		return;
	}
	if (f->type == XM_T_HELLO_ACK) {
		on_hello_ack(p, f, spans, nspans, hdr_off, now);
		return;
	}
	if (p->state != P_CONNECTED || f->session != p->session) {
		ctr(p)->rx_wrong_session++;
		return;
	}
	if (f->type == XM_T_BITMAP) {
		on_bitmap(p, f, spans, nspans, hdr_off, now);
		return;
	}
	if (f->type == XM_T_CSUM) {
		on_csum(p, f, spans, nspans, hdr_off);
		return;
	}
	if (f->type == XM_T_READ_DATA) {
		on_read_data(p, f, spans, nspans, hdr_off);
		return;
	}
	if (f->payload_len) {
		ctr(p)->rx_bad_len++;
		return;
	}
	switch (f->type) {
	case XM_T_CLOSE:
		ctr(p)->rx_close++;
		/* A failed disk: the peer's disk is Failed until a session proves otherwise. */
		p->peer_disk_failed =
			f->arg0 == XM_CLOSE_DISK_FAILED || f->arg0 == XM_CLOSE_DISK_DETACHED;
		end_session(p,
			    f->arg0 == XM_CLOSE_PROMOTE		? "peer promoted itself"
			    : f->arg0 == XM_CLOSE_DISK_FAILED	? "peer disk failed"
			    : f->arg0 == XM_CLOSE_DISK_DETACHED ? "peer disk detached"
								: "peer detached",
			    now);
		break;
	case XM_T_ACK:
		ctr(p)->rx_ack++;
		on_ack_info(p, f->arg0, f->arg1, true, f->flags & XM_F_RCVD, f->credit, now);
		break;
	case XM_T_FLUSH_ACK:
		on_flush_ack(p, f, now);
		break;
	case XM_T_PING:
		xm_env_answer_ping(p->env, f, 0, SEND_RING / 2);
		if (f->arg1)
			on_ack_info(p, f->arg1, 0, false, false, f->credit, now);
		break;
	case XM_T_PONG:
		xm_env_take_pong(p->env, f, now);
		if (f->arg1)
			on_ack_info(p, f->arg1, 0, false, false, f->credit, now);
		break;
	default:
		ctr(p)->rx_unexpected++;
	}
}

static void primary_tx_done(void *r, __u64 tag)
{
	struct xm_primary *p = r;

	if (p->state == P_CONNECTED)
		xm_sender_tx_done(&p->snd, tag);
}

static __u64 primary_tick(void *r, __u64 now)
{
	struct xm_primary *p = r;
	__u64 next = UINT64_MAX, ko = (__u64)p->env->cfg->ko_ms * NS_PER_MS;
	enum xm_verdict verdict;
	__u64 oldest, rto;

	xm_meta_flush_start(p->m);
	xm_nbd_server_tick(p->nbd, now);
	if (p->state != P_CONNECTED) {
		if (!p->stopping && now >= p->hello_due && !p->suspect_committing)
			send_hello(p, now);
		return p->stopping ? next : p->hello_due;
	}
	verdict = xm_env_liveness(p->env, p->session, now);
	if (verdict != XM_PEER_ALIVE) {
		if (verdict == XM_PEER_NOT_ANSWERING)
			ctr(p)->peer_timeouts++;
		else
			ctr(p)->peer_silent++;
		end_session(p, xm_verdict_text(verdict), now);
		return now;
	}
	/* The peer's daemon runs but finishes nothing: its disk hangs (DRBD's ko-count). */
	oldest = xm_sender_oldest_tx(&p->snd);
	if (oldest && now > oldest && now - oldest > p->ack_wait_max_ns)
		p->ack_wait_max_ns = now - oldest; /* how close a loaded peer came to ko */
	if (oldest && now > oldest && now - oldest >= ko) {
		ctr(p)->peer_stalls++;
		end_session(p, "peer stalled", now);
		return now;
	}
	xm_sender_tick(&p->snd, now);
	sync_work(p, now);
	diskless_tick(p, now);
	pump(p, now);
	xm_env_heartbeat(p->env, p->session, 0, SEND_RING / 2, now);
	next = min_u64(next, xm_detector_deadline(p->env->det));
	next = min_u64(next, xm_heartbeat_next(p->env->hb));
	if (oldest)
		next = min_u64(next, oldest + ko);
	rto = xm_sender_deadline(&p->snd);
	if (rto)
		next = min_u64(next, rto);
	/* More to send and room for it: come straight back after the completions. */
	if (xm_sender_window_open(&p->snd) &&
	    (!xm_list_empty(&p->sendq) || !xm_list_empty(&p->flushq) ||
	     (!xm_list_empty(&p->rsendq) && p->rs_frames < rs_share(p))))
		next = now;
	if (p->phase == PH_BITMAP_XFER)
		next = min_u64(next, p->bm_due);
	if (p->cj.active || p->phase == PH_RESYNC)
		next = min_u64(next, now + NS_PER_MS);
	if (p->synced)
		next = min_u64(next, p->last_sweep_ns + SWEEP_NS);
	return next;
}

static void primary_stop(void *r)
{
	struct xm_primary *p = r;

	p->stopping = true;
	p->stop_ns = xm_now_ns();
	if (p->nbd) {
		xm_nbd_server_stop(p->nbd);
		p->nbd = NULL;
	}
}

static bool primary_drained(const void *r, __u64 now)
{
	const struct xm_primary *p = r;

	/* A healthy pair drains its window in well under the limit (§4.1 detach).  A metadata
	 * write that names p in its waiter always ends first. */
	if (p->suspect_committing)
		return false;
	return (!p->nactive && !p->m->flushing && !csum_reading(p)) ||
	       now - p->stop_ns >= DETACH_DRAIN_NS;
}

static void on_finish_durable(struct xm_meta_waiter *w, int err)
{
	struct xm_primary *p = xm_container_of(w, struct xm_primary, finish_wait);

	if (err)
		xm_env_meta_failed(p->env, err);
	p->finishing = false;
}

static void primary_finish(void *r, __u64 why)
{
	struct xm_primary *p = r;
	struct xm_meta *m = p->m;

	if (p->state == P_CONNECTED) {
		xm_env_send_close(p->env, p->session, why);
		if (p->synced)
			sweep(p, false); /* written with the superblock below */
	}
	m->sb.flags &= ~XM_MF_PRIMARY_ACTIVE;
	m->sb.role = XM_ROLE_PRIMARY;
	m->sb_dirty = true;
	p->finishing = true;
	p->finish_wait.done = on_finish_durable;
	xm_meta_commit(m, &p->finish_wait);
}

static bool primary_finished(const void *r)
{
	const struct xm_primary *p = r;

	return !p->finishing;
}

static void on_meta_flushed(struct xm_meta *m, int err, void *ctx)
{
	meta_flushed(ctx, err);
}

/* Before the first request: this box is a primary, and a crash from now on shows at restart.  The
 * flag reaches the disk in the first metadata cycle, before any write's bits (write.c). */
static void mark_active(struct xm_primary *p)
{
	struct xm_meta *m = p->m;

	xm_meta_set_loop(m, p->env->loop, on_meta_flushed, p);
	if (m->sb.flags & XM_MF_PRIMARY_ACTIVE)
		pr_warn("%s: the last primary run did not end cleanly: %llu region(s) may differ "
			"from the peer and will be resynced",
			p->env->cfg->dev, (unsigned long long)m->bm.oos_count);
	else if (m->bm.oos_count)
		pr_info("%s: %llu region(s) out of sync with the peer", p->env->cfg->dev,
			(unsigned long long)m->bm.oos_count);
	if (m->sb.disk_state != XM_DISK_UPTODATE) {
		pr_warn("%s: forced: this disk was %s and is now the data of record",
			p->env->cfg->dev, xm_disk_state_name(m->sb.disk_state));
		m->sb.disk_state = XM_DISK_UPTODATE;
	}
	m->sb.flags |= XM_MF_PRIMARY_ACTIVE;
	m->sb.role = XM_ROLE_PRIMARY;
	m->sb_dirty = true;
	xm_meta_flush_start(m);
}

static void primary_free(struct xm_primary *p)
{
	xm_meta_set_loop(p->m, p->env->loop, NULL, NULL);
	diskless_free(p);
	xm_actlog_free(&p->al);
	xm_sender_free(&p->snd);
	free(p);
}

static void *primary_create(const struct xm_role_env *env)
{
	struct xm_primary *p = calloc(1, sizeof(*p));
	struct xm_nbd_config nc = {0};
	static const struct xm_nbd_ops ops = {.submit = on_nbd_request};
	int err;

	if (!p)
		return NULL;
	p->env = env;
	p->m = env->meta;
	err = xm_sender_init(&p->snd, SEND_RING, &sender_ops, p, env->ctr);
	if (err) {
		free(p);
		errno = -err;
		return NULL;
	}
	xm_list_init(&p->active);
	xm_list_init(&p->waiting);
	xm_list_init(&p->sendq);
	xm_list_init(&p->flushq);
	xm_list_init(&p->rsendq);
	xm_list_init(&p->intent_wait);
	if (diskless_init(p) || xm_actlog_init(&p->al, env->meta->bm.nbits << env->meta->bm.shift,
					       env->meta->bm.shift)) {
		primary_free(p);
		errno = ENOMEM;
		return NULL;
	}
	mark_active(p);
	p->state = P_DISCONNECTED;
	snprintf(p->reason, sizeof(p->reason), "never connected");
	p->hello_due = xm_now_ns();
	if (env->cfg->nbd_socket[0])
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s", env->cfg->nbd_socket);
	else
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s/%s.sock", XM_RUN_DIR, env->cfg->dev);
	nc.unix_path = p->nbd_path;
	nc.unix_group = env->cfg->nbd_group;
	nc.unix_gid = (gid_t)env->cfg->nbd_gid;
	nc.tcp_port = env->cfg->nbd_tcp_port;
	nc.tcp_addr = env->cfg->nbd_tcp_addr[0] ? env->cfg->nbd_tcp_addr : NULL;
	nc.tls_psk_file = env->cfg->nbd_tls_psk[0] ? env->cfg->nbd_tls_psk : NULL;
	nc.export_name = env->cfg->dev;
	nc.min_block = env->disk->dio_offset_align < 512 ? 512 : env->disk->dio_offset_align;
	nc.size = env->disk->size / nc.min_block * nc.min_block;
	nc.pref_block = 4096 > nc.min_block ? 4096 : nc.min_block;
	nc.max_block = NBD_MAX_REQUEST;
	p->nbd = xm_nbd_server_start(env->loop, &nc, &ops, p);
	if (!p->nbd) {
		err = errno;
		pr_warn("attach '%s': cannot serve NBD on '%s': %s", env->cfg->dev, p->nbd_path,
			strerror(err));
		primary_free(p);
		errno = err;
		return NULL;
	}
	return p;
}

static void primary_destroy(void *r)
{
	struct xm_primary *p = r;

	if (!p)
		return;
	if (p->nbd)
		xm_nbd_server_stop(p->nbd);
	/* Writes still active after the drain limit stay allocated: the loop is gone, and their
	 * completions never arrive.  The process exits next. */
	primary_free(p);
}

static const char *primary_control(void *r, const struct xm_ctl_req *req)
{
	if (!strcmp(req->verb, "verify"))
		return start_verify(r, req->mark);
	return NULL;
}

static bool primary_connected(const void *r)
{
	const struct xm_primary *p = r;

	return p->state == P_CONNECTED;
}

const struct xm_role_ops xm_primary_role = {
	.role = XM_ROLE_PRIMARY,
	.create = primary_create,
	.destroy = primary_destroy,
	.rx = primary_rx,
	.tx_done = primary_tx_done,
	.tick = primary_tick,
	.control = primary_control,
	.connected = primary_connected,
	.stop = primary_stop,
	.drained = primary_drained,
	.finish = primary_finish,
	.finished = primary_finished,
	.disk_changed = primary_disk_changed,
	.status = primary_status,
};
