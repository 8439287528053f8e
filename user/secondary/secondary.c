// SPDX-License-Identifier: GPL-2.0
/* The secondary: applies DATA frames to its disk and acknowledges them once durable. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "secondary/internal.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/log.h"

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

static void advance(struct xm_secondary *s);

/* The metadata of a SETGEN is durable (or failed): the barrier may pass (resync.md §4.3). */
static void on_setgen_durable(struct xm_meta_waiter *w, int err)
{
	struct xm_secondary *s = xm_container_of(w, struct xm_secondary, setgen.wait);

	if (err) {
		xm_env_meta_failed(s->env, err);
		s->setgen.state = SG_NONE;
		fail_disk(s, err, "metadata write");
		return;
	}
	/* Of an ended session: the generation is adopted all the same, but nobody waits. */
	s->setgen.state = s->setgen.gen == s->gen ? SG_DONE : SG_NONE;
	if (!s->setgen.starting)
		advance(s);
}

/* The resync is complete: this disk holds the primary's data at generation gen.  The FLUSH_ACK
 * waits until the metadata says so durably. */
static void adopt_generation(struct xm_secondary *s, __u64 seq, __u64 gen)
{
	struct xm_meta *m = s->env->meta;

	if (m->sb.current_gen != gen) {
		m->sb.history[1] = m->sb.history[0];
		m->sb.history[0] = m->sb.current_gen;
	}
	m->sb.current_gen = gen;
	m->sb.bitmap_gen = 0;
	m->sb.disk_state = XM_DISK_UPTODATE;
	m->sb.flags &= ~XM_MF_DISK_FAILED; /* whatever the disk missed, it holds now */
	xm_bitmap_clear_all(&m->bm);
	m->sb_dirty = true;
	s->setgen.state = SG_WRITING;
	s->setgen.seq = seq;
	s->setgen.gen = s->gen;
	s->setgen.wait.done = on_setgen_durable;
	s->setgen.starting = true;
	xm_meta_commit(m, &s->setgen.wait);
	s->setgen.starting = false;
	xm_env_note(s->env, XM_NOTE_SYNC_DONE);
}

/* A barrier at the cumulative ack: every earlier write is durable, its commit covered it (§7.5). */
static int pass_barrier(void *ctx, __u64 seq)
{
	struct xm_secondary *s = ctx;
	const struct sslot *sl = &s->ring[xm_receiver_index(&s->rcv, seq)];

	/* A SETGEN: the resync is complete, this disk holds the primary's data (resync.md §4.3). */
	if (sl->setgen) {
		if (s->setgen.state == SG_NONE)
			adopt_generation(s, seq, sl->setgen);
		if (s->setgen.state != SG_DONE || s->setgen.seq != seq || s->state == S_FAILED)
			return -1; /* still writing (or an older one is) */
		s->setgen.state = SG_NONE;
		pr_info("%s: in sync with the primary (generation %016llx)", s->env->cfg->dev,
			(unsigned long long)sl->setgen);
	}
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

/* The disk is gone (failed or detached): CLOSE with why, no more acks, HELLOs refused until
 * disk attach, and a restart on this metadata does not trust the disk (§15.4, §15.5). */
static void leave_disk(struct xm_secondary *s, __u64 close_reason)
{
	/* The primary learns it within a round trip, not a timeout. */
	if (s->state == S_CONNECTED)
		xm_env_send_close(s->env, s->session, close_reason);
	if (s->state != S_FAILED) {
		s->gen++;
		s->ack_pending = s->rcvd_pending = false;
		s->state = S_FAILED;
	}
	xm_meta_set_flag(s->env->meta, XM_MF_DISK_FAILED, true);
}

void fail_disk(struct xm_secondary *s, int err, const char *what)
{
	if (s->state == S_FAILED)
		return;
	ctr(s)->wr_errors++;
	if (xm_disk_health_fail(s->env->health, err, what))
		ctr(s)->disk_failures++;
	snprintf(s->reason, sizeof(s->reason), "disk failed: %s", strerror(-err));
	pr_warn("%s: %s (%s); no more acks, the primary is told at once", s->env->cfg->dev,
		s->reason, what);
	leave_disk(s, XM_CLOSE_DISK_FAILED);
}

void written_reset(struct xm_secondary *s)
{
	const struct xm_bitmap *bm = &s->env->meta->bm;

	memset(s->written, 0, (bm->nbits + 63) / 64 * sizeof(__u64));
	s->written_valid = true;
}

void written_mark(struct xm_secondary *s, __u64 off, __u64 len)
{
	const struct xm_bitmap *bm = &s->env->meta->bm;
	__u64 bit, end;

	if (!len)
		return;
	end = (off + len - 1) / bm->block;
	for (bit = off / bm->block; bit <= end && bit < bm->nbits; bit++)
		s->written[bit / 64] |= 1ull << (bit % 64);
}

void written_to_oos(struct xm_secondary *s, const char *why)
{
	struct xm_meta *m = s->env->meta;
	__u64 bit, n = 0;

	if (!s->written_valid) {
		/* No record of the last session (this daemon started since): any region may. */
		xm_bitmap_mark_all_oos(&m->bm);
		pr_warn("%s: %s; no record of what this box wrote then: every region is resynced",
			s->env->cfg->dev, why);
	} else {
		for (bit = 0; bit < m->bm.nbits; bit++) {
			if (!(s->written[bit / 64] & (1ull << (bit % 64))))
				continue;
			xm_bitmap_mark_oos(&m->bm, bit * m->bm.block, m->bm.block);
			n++;
		}
		pr_warn("%s: %s; the %llu region(s) this box wrote in it are resynced",
			s->env->cfg->dev, why, (unsigned long long)n);
	}
	/* Recorded once: the bitmap holds it now, until a resync clears it. */
	written_reset(s);
	m->sb_dirty = true;
	xm_meta_flush_start(m);
}

void leave_session(struct xm_secondary *s, const char *why)
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
	leave_session(s, why);
	written_to_oos(s, "the session ended on a protocol violation");
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
	written_mark(s, f->arg0, f->payload_len);
	writer_apply(s, f->seq, f, x, pkt, pl, np);
	/* Received-acks drive the primary's loss detection in every protocol (§6.1). */
	s->rcvd_pending = true;
}

static void secondary_rx(void *r, const struct xm_rx *rx)
{
	struct xm_secondary *s = r;
	const struct xm_frame *f = rx->f;
	const struct xm_span *spans = rx->spans;
	__u32 n = rx->nspans, hdr_off = rx->hdr_off;
	__u64 now = xm_now_ns();

	if (f->type == XM_T_HELLO) {
		handshake_on_hello(s, f, spans, n, hdr_off);
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
	case XM_T_READ_REQ:
		on_read_req(s, f);
		break;
	case XM_T_CLOSE:
		ctr(s)->rx_close++;
		leave_session(s, f->arg0 == XM_CLOSE_DEMOTE ? "the primary demoted itself"
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

	handshake_tick(s);
	if (s->state != S_CONNECTED)
		return next;
	verdict = s->stopping ? XM_PEER_ALIVE : xm_env_liveness(s->env, s->session, now);
	if (verdict != XM_PEER_ALIVE) {
		if (verdict == XM_PEER_NOT_ANSWERING)
			ctr(s)->peer_timeouts++;
		else
			ctr(s)->peer_silent++;
		leave_session(s, xm_verdict_text(verdict));
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

	/* Metadata writes in flight name s in their waiters: they end first. */
	return writer_idle(s) && !s->csum_inflight && !s->reads_inflight && !s->acc.committing &&
	       s->setgen.state != SG_WRITING;
}

static void on_finish_durable(struct xm_meta_waiter *w, int err)
{
	struct xm_secondary *s = xm_container_of(w, struct xm_secondary, finish_wait);

	if (err)
		xm_env_meta_failed(s->env, err);
	s->finishing = false;
}

static void secondary_finish(void *r, __u64 why)
{
	struct xm_secondary *s = r;
	struct xm_meta *m = s->env->meta;

	if (s->state == S_CONNECTED)
		xm_env_send_close(s->env, s->session, why);
	m->sb.role = XM_ROLE_SECONDARY;
	m->sb_dirty = true;
	s->finishing = true;
	s->finish_wait.done = on_finish_durable;
	xm_meta_commit(m, &s->finish_wait);
}

static bool secondary_finished(const void *r)
{
	const struct xm_secondary *s = r;

	return !s->finishing;
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

/* Every region out of sync: the next session copies the whole disk here. */
static void want_full_sync(struct xm_secondary *s, const char *why)
{
	struct xm_meta *m = s->env->meta;

	xm_bitmap_mark_all_oos(&m->bm);
	m->sb.disk_state = XM_DISK_INCONSISTENT;
	m->sb_dirty = true;
	xm_meta_flush_start(m);
	pr_warn("%s: %s: every region is resynced from the primary", s->env->cfg->dev, why);
}

/* disk detach / disk attach (docs/protocol.md §15.4). */
static const char *secondary_disk_changed(void *r, enum xm_disk_event ev)
{
	struct xm_secondary *s = r;
	struct xm_meta *m = s->env->meta;

	if (ev == XM_DISK_EV_DETACHED) {
		leave_disk(s, XM_CLOSE_DISK_DETACHED);
		snprintf(s->reason, sizeof(s->reason), "disk detached by the operator");
		return NULL;
	}
	if (m->failed)
		return "error: the metadata file failed to write; restart the daemon";
	if (ev == XM_DISK_EV_NEW_DISK)
		want_full_sync(s, "a new disk");
	if (s->state == S_FAILED)
		s->state = writer_idle(s) ? S_LISTEN : S_DRAINING;
	snprintf(s->reason, sizeof(s->reason), "disk attached: waiting for the primary");
	return NULL;
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
	/* Metadata writes go through the loop, like the data (docs/protocol.md §9). */
	xm_meta_set_loop(env->meta, env->loop, NULL, NULL);
	/* A disk that failed before this start, or that a primary was still filling (§15.4). */
	if (env->health->state == XM_DH_FAILED || env->health->state == XM_DH_DETACHED) {
		s->state = S_FAILED;
		snprintf(s->reason, sizeof(s->reason), "no disk (%s): xdpmirror disk attach",
			 xm_disk_health_name(env->health->state));
	} else if (env->health->state == XM_DH_SYNCING ||
		   (env->meta->sb.flags & XM_MF_DISK_FAILED)) {
		env->health->state = XM_DH_ATTACHED;
		want_full_sync(s, "this disk missed writes before");
	}
	s->written = calloc((env->meta->bm.nbits + 63) / 64, sizeof(__u64));
	if (!s->written || xm_receiver_init(&s->rcv, WINDOW, env->ctr) || writer_init(s)) {
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
	reads_free(s);
	xm_receiver_free(&s->rcv);
	free(s->written);
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
	.finished = secondary_finished,
	.disk_changed = secondary_disk_changed,
	.status = secondary_status,
};
