// SPDX-License-Identifier: GPL-2.0
/* NBD requests on the primary, and a write's life: admission to the active set, the bitmap bits
 * before the write, the local write, its frames, the answer, retirement (docs/protocol.md §8). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "primary/internal.h"
#include "util/clock.h"
#include "util/log.h"

/* The peer may not have these bytes: resync sends their regions (docs/resync.md §2). */
static void dirty_mark(struct xm_primary *p, __u64 off, __u32 len)
{
	xm_bitmap_mark_oos(&p->m->bm, off, len);
}

/*
 * Whether a write may be issued: its bitmap bits are on disk, and so is the generation rotation a
 * write without a peer needs (docs/resync.md §3).  Marks what is missing for the next flush.
 */
static bool intent_ready(struct xm_primary *p, struct pwrite *w)
{
	struct xm_meta *m = p->m;

	if (m->failed)
		return true; /* the write fails: see WE_INTENT_READY */
	if (!disk_usable(p))
		return true; /* only the peer's copy counts: no bits (docs/protocol.md §15.3) */
	if (p->state != P_CONNECTED) {
		if (!m->sb.bitmap_gen) {
			xm_meta_rotate(m);
			pr_info("%s: writing without the peer: new generation %016llx",
				p->env->cfg->dev, (unsigned long long)m->sb.current_gen);
		}
		xm_bitmap_mark_oos(&m->bm, w->off, w->len);
	} else {
		__u64 xoff, xlen;

		/* The whole extent: the next writes there find their bits durable (§8.6). */
		xm_actlog_touch(&p->al, w->off, w->len, xm_now_ns());
		xm_actlog_span(&p->al, w->off, w->len, &xoff, &xlen);
		xm_bitmap_mark_intent(&m->bm, xoff, xlen);
	}
	return xm_bitmap_range_durable(&m->bm, w->off, w->len) && !m->sb_dirty && !m->sb_inflight;
}

/* ---- the active set (§8) ---- */

static bool overlaps(const struct pwrite *a, const struct pwrite *b)
{
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

static bool blocked_by(struct xm_list *head, struct xm_list *until, const struct pwrite *w)
{
	struct xm_list *pos;

	for (pos = head->next; pos != head && pos != until; pos = pos->next)
		if (overlaps(xm_container_of(pos, struct pwrite, node), w))
			return true;
	return false;
}

static void admit_waiting(struct xm_primary *p)
{
	struct xm_list *pos, *tmp;

	/* FIFO among overlapping writes: one may pass only earlier waiters it does not overlap. */
	xm_list_for_each_safe(pos, tmp, &p->waiting)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (blocked_by(&p->active, NULL, w) || blocked_by(&p->waiting, pos, w))
			continue;
		xm_list_del(&w->node);
		write_event(w, WE_ADMIT, 0);
	}
}

char write_protocol(const struct pwrite *w)
{
	/* FUA writes are explicit durability requests: always protocol C (§6). */
	return w->fua ? 'C' : w->p->running;
}

/* The remote part a write's answer waits for, by protocol: sent (A), received (B), durable (C);
 * or given up (the range is marked out of sync). */
static bool remote_answerable(const struct pwrite *w)
{
	if (w->remote == R_LOST)
		return true;
	if (w->nolocal)
		return w->remote == R_DURABLE; /* the only copy: protocol C (§15.3) */
	switch (write_protocol(w)) {
	case 'A':
		return w->frames_sent == w->nframes;
	case 'B':
		return w->frames_rcvd == w->nframes;
	default:
		return w->frames_durable == w->nframes;
	}
}

/* ---- latency (docs/protocol.md §8.7) ---- */

/* A stage of w ended now; from is when it began.  Chunks (admit_ns 0) have no client waiting. */
static void lat_stage_done(struct pwrite *w, enum lat_stage st, __u64 from)
{
	if (w->admit_ns)
		xm_hist_record_since(&w->p->lat[st], from, xm_now_ns());
}

/* ---- local disk I/O ---- */

static void on_local_durable(struct xm_commit_item *it, int err)
{
	write_event(xm_container_of(it, struct pwrite, ci), WE_LOCAL_DURABLE, err);
}

static void on_local_io(struct xm_io *io, int res, __u32 flags)
{
	write_event(xm_container_of(io, struct pwrite, io), WE_LOCAL_WRITTEN, res);
}

/* A resync chunk is active: read the primary's current bytes (sent once they are in). */
static void read_chunk(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	struct io_uring_sqe *sqe;

	w->gen = p->gen;
	w->nframes = (w->len + p->max_payload - 1) / p->max_payload;
	w->io.fn = on_local_io;
	w->local = L_PENDING;
	sqe = xm_loop_sqe(p->env->loop, &w->io);
	if (!sqe) {
		write_event(w, WE_LOCAL_WRITTEN, -EIO);
		return;
	}
	io_uring_prep_read(sqe, p->env->disk->fd, w->buf, w->len, w->off);
}

/* Its bits are durable: the local write, and the frames if a session is up. */
static void issue(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	w->issue_ns = xm_now_ns();
	lat_stage_done(w, LAT_INTENT, w->active_ns);
	if (!disk_usable(p)) {
		issue_nolocal(w);
		return;
	}
	w->state = W_ACTIVE;
	if (p->state == P_CONNECTED && !(w->off % p->block) && !(w->len % p->block)) {
		w->gen = p->gen;
		w->nframes = (w->len + p->max_payload - 1) / p->max_payload;
		xm_list_add_tail(&p->sendq, &w->send_node);
		w->remote = R_QUEUED;
	} else {
		ctr(p)->writes_degraded++;
		write_event(w, WE_REMOTE_LOST, 0);
	}
	local_write_submit(w);
}

void local_write_submit(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	struct io_uring_sqe *sqe;

	w->io.fn = on_local_io;
	w->ci.durable = on_local_durable;
	w->local = L_PENDING;
	sqe = xm_loop_sqe(p->env->loop, &w->io);
	if (!sqe) {
		w->local = L_WRITTEN;
		write_event(w, WE_LOCAL_DURABLE, -EIO);
		return;
	}
	io_uring_prep_write(sqe, p->env->disk->fd, w->buf, w->len, w->off);
	sqe->rw_flags = xm_commit_rw_flags(p->env->commit);
	xm_commit_submitted(p->env->commit, &w->ci, sqe->rw_flags);
}

/* Enters the active set: a chunk reads, a write waits for its bitmap bits or is issued. */
static void activate(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	xm_list_add_tail(&p->active, &w->node);
	p->nactive++;
	/* A write that waited behind an overlapping one enters now; the others as admitted. */
	w->active_ns = w->state == W_WAITING ? xm_now_ns() : w->admit_ns;
	if (w->resync) {
		w->state = W_ACTIVE;
		read_chunk(w);
		return;
	}
	if (w->backfill) {
		backfill_fetch(w);
		return;
	}
	if (intent_ready(p, w)) {
		write_event(w, WE_INTENT_READY, p->m->failed);
		return;
	}
	/* Its bits go to disk in the next metadata flush, with every other write waiting. */
	ctr(p)->intent_waits++;
	w->state = W_INTENT;
	xm_list_add_tail(&p->intent_wait, &w->meta_node);
	xm_meta_flush_start(p->m);
}

/* The peer may lack it: its regions go out of sync, its frames stop. */
static void lose_remote(struct pwrite *w, bool mark)
{
	struct xm_primary *p = w->p;

	if (w->remote == R_LOST)
		return;
	if (w->remote == R_QUEUED)
		xm_list_del(&w->send_node);
	w->remote = R_LOST;
	/* Without the local disk the peer's copy is the newest there is: never resync over it. */
	if (mark && !w->nolocal && !w->backfill)
		dirty_mark(p, w->off, w->len);
	if (w->resync) {
		/* Its frames in flight no longer count against the resync share. */
		__u32 out = w->next_frame - w->frames_durable;

		p->rs_frames = p->rs_frames > out ? p->rs_frames - out : 0;
	}
}

/* Answers the client once the write is where its protocol says; retires the write once it is
 * answered, its local write is over and its remote copy settled. */
static void settle(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	if (w->state == W_ACTIVE && w->req && (w->local == L_DURABLE || w->local == L_FAILED) &&
	    remote_answerable(w)) {
		xm_nbd_done(w->req,
			    w->local == L_FAILED		   ? w->local_err
			    : w->nolocal && w->remote != R_DURABLE ? -EIO
								   : 0,
			    NULL);
		lat_stage_done(w, LAT_ANSWERED, w->admit_ns);
		w->req = NULL;
		w->state = W_ANSWERED;
	}
	if (w->req || w->local == L_NONE || w->local == L_PENDING ||
	    (w->remote != R_DURABLE && w->remote != R_LOST))
		return;
	/* An app write's intent bits are cleared by the sweep; a resync chunk's regions are now
	 * equal. */
	if (w->backfill)
		backfill_retired(w);
	if (w->resync) {
		p->rs_chunks--;
		if (w->remote == R_DURABLE) {
			xm_bitmap_clear_oos(&p->m->bm, w->bit_first, w->bit_end);
			p->rs_done_bytes += w->len;
			ctr(p)->resync_chunks++;
		}
	}
	xm_list_del(&w->node);
	p->nactive--;
	free(w->buf);
	free(w);
	admit_waiting(p);
}

/* A local I/O error of w (or a completion after the disk failed): true when the box goes on
 * without its disk (on-io-error detach), false under pass-on. */
static bool local_failed(struct pwrite *w, int err, const char *op)
{
	char what[64];

	if (!disk_usable(w->p))
		return !w->p->env->cfg->io_error_pass_on;
	snprintf(what, sizeof(what), "%s at %llu", op, (unsigned long long)w->off);
	return disk_fail(w->p, err, what);
}

/*
 * Every event of a write's life (see internal.h for the states).  The write may be freed on
 * return.
 */
void write_event(struct pwrite *w, enum wevent ev, int arg)
{
	struct xm_primary *p = w->p;

	switch (ev) {
	case WE_ADMIT: /* W_NEW or W_WAITING */
		if (w->state == W_NEW &&
		    (blocked_by(&p->active, NULL, w) || blocked_by(&p->waiting, NULL, w))) {
			ctr(p)->overlap_waits++;
			w->state = W_WAITING;
			xm_list_add_tail(&p->waiting, &w->node);
			return;
		}
		activate(w);
		return;
	case WE_INTENT_READY: /* W_NEW or W_WAITING (through activate), or W_INTENT */
		if (w->state == W_INTENT)
			xm_list_del(&w->meta_node);
		if (arg) {
			/* The bitmap cannot be made durable: a crash could hide this write. */
			w->state = W_ACTIVE;
			w->local = L_FAILED;
			w->local_err = arg;
			lose_remote(w, true);
			break;
		}
		issue(w);
		return;
	case WE_LOCAL_WRITTEN:
		if (w->resync) {
			w->local = arg == (int)w->len ? L_DURABLE : L_FAILED;
			if (w->local == L_FAILED) {
				ctr(p)->local_wr_errors++;
				local_failed(w, arg < 0 ? arg : -EIO, "read");
			}
			if (w->local == L_FAILED || p->state != P_CONNECTED || w->gen != p->gen) {
				/* Its regions stay out of sync; the next pass retries. */
				lose_remote(w, false);
			} else if (w->remote == R_NONE) {
				xm_list_add_tail(&p->rsendq, &w->send_node);
				w->remote = R_QUEUED;
			}
			break;
		}
		if (arg >= 0 && (__u32)arg != w->len)
			arg = -EIO; /* a short O_DIRECT write to a block-sized range is a failure */
		w->local = L_WRITTEN;
		xm_commit_completed(p->env->commit, &w->ci, arg, w->fua, xm_now_ns());
		return;
	case WE_LOCAL_DURABLE:
		if ((arg || !disk_usable(p)) && local_failed(w, arg ? arg : -EIO, "write")) {
			/* Only the peer's copy counts now (§15.3); a back-fill chunk fails. */
			if (w->backfill) {
				w->local = L_FAILED;
			} else {
				w->local = L_DURABLE;
				w->nolocal = true;
				stale_mark(p, w->off, w->len);
			}
		} else if (arg) {
			w->local = L_FAILED;
			w->local_err = arg;
			ctr(p)->local_wr_errors++;
			dirty_mark(p, w->off, w->len);
		} else {
			w->local = L_DURABLE;
			lat_stage_done(w, LAT_LOCAL_DURABLE, w->issue_ns);
		}
		break;
	case WE_FRAME_SENT:
		if (++w->frames_sent == w->nframes)
			lat_stage_done(w, LAT_REMOTE_SENT, w->issue_ns);
		break;
	case WE_FRAME_RCVD:
		if (++w->frames_rcvd == w->nframes)
			lat_stage_done(w, LAT_REMOTE_RECEIVED, w->issue_ns);
		break;
	case WE_FRAME_DURABLE:
		w->frames_durable++;
		if (w->resync && p->rs_frames)
			p->rs_frames--;
		if (w->frames_durable == w->nframes)
			lat_stage_done(w, LAT_REMOTE_DURABLE, w->issue_ns);
		if (w->frames_durable == w->nframes && w->remote == R_FLYING)
			w->remote = R_DURABLE;
		break;
	case WE_ALL_SENT: /* R_QUEUED */
		xm_list_del(&w->send_node);
		w->remote = w->frames_durable == w->nframes ? R_DURABLE : R_FLYING;
		break;
	case WE_REMOTE_LOST:
		lose_remote(w, true);
		break;
	}
	settle(w);
}

/* The session ended: what the peer may lack is given up (§4.6).  Frames of a write still
 * waiting for its bits were never numbered: it is issued without the peer later. */
void writes_session_ended(struct xm_primary *p)
{
	struct xm_list *pos, *tmp;

	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (w->remote == R_QUEUED || w->remote == R_FLYING ||
		    (w->resync && w->local == L_PENDING))
			lose_remote(w, true);
	}
	xm_list_for_each_safe(pos, tmp, &p->active)
		settle(xm_container_of(pos, struct pwrite, node));
}

void meta_flushed(struct xm_primary *p, int err)
{
	struct xm_list *pos, *tmp;

	if (err) {
		ctr(p)->meta_errors++;
		pr_warn("%s: metadata write failed: %s; writes waiting for it fail",
			p->env->cfg->dev, strerror(-err));
	}
	xm_list_for_each_safe(pos, tmp, &p->intent_wait)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, meta_node);

		if (err || p->m->failed) {
			err = err ? err : p->m->failed;
			write_event(w, WE_INTENT_READY, err);
			continue;
		}
		if (intent_ready(p, w))
			write_event(w, WE_INTENT_READY, 0);
	}
	xm_meta_flush_start(p->m);
}

/* ---- NBD requests ---- */

static void admit_write(struct xm_primary *p, struct xm_nbd_req *req, __u8 *buf)
{
	struct pwrite *w = calloc(1, sizeof(*w));

	if (!w) {
		free(buf);
		xm_nbd_done(req, -ENOMEM, NULL);
		return;
	}
	w->p = p;
	w->req = req;
	w->off = req->offset;
	w->len = req->len;
	w->buf = buf;
	w->fua = req->flags & XM_NBD_CMD_FLAG_FUA;
	w->admit_ns = xm_now_ns();
	xm_list_init(&w->node);
	xm_list_init(&w->send_node);
	ctr(p)->writes++;
	write_event(w, WE_ADMIT, 0);
}

void admit_chunk(struct xm_primary *p, struct pwrite *w)
{
	w->p = p;
	/* A resync chunk reads here and sends; a back-fill chunk fetches and writes here. */
	w->resync = !w->backfill;
	xm_list_init(&w->node);
	xm_list_init(&w->send_node);
	xm_list_init(&w->meta_node);
	if (w->resync)
		p->rs_chunks++;
	write_event(w, WE_ADMIT, 0);
}

/* A client write whose peer copy is not known durable yet: answered under A or B before its
 * durable ack, or still under way.  NBD asks a flush to cover only the answered ones; covering
 * every write admitted before it costs nothing at QD1 and keeps the old order for pipelined
 * clients. */
static bool write_not_durable(const struct xm_list *head)
{
	const struct xm_list *pos;

	for (pos = head->next; pos != head; pos = pos->next) {
		const struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (!w->resync && !w->backfill && w->remote != R_DURABLE && w->remote != R_LOST)
			return true;
	}
	return false;
}

void flush_answer(struct xm_primary *p, struct pflush *fl)
{
	xm_nbd_done(fl->req, 0, NULL);
	xm_hist_record_since(&p->lat[LAT_FLUSH], fl->admit_ns, xm_now_ns());
}

static void start_flush(struct xm_primary *p, struct xm_nbd_req *req)
{
	struct pflush *fl;

	ctr(p)->flushes++;
	/* Completed writes are already durable locally (a write completes only then), so the
	 * local part needs no fdatasync; the peer must confirm everything sent before (§7.5).
	 * When every write is durable there too (at QD1 under protocol C, always), there is
	 * nothing to confirm: no round trip. */
	if (p->state != P_CONNECTED ||
	    (!write_not_durable(&p->active) && !write_not_durable(&p->waiting))) {
		if (p->state == P_CONNECTED)
			ctr(p)->flushes_local++;
		xm_nbd_done(req, 0, NULL);
		xm_hist_record(&p->lat[LAT_FLUSH], 0); /* answered on the spot */
		return;
	}
	fl = calloc(1, sizeof(*fl));
	if (!fl) {
		xm_nbd_done(req, -ENOMEM, NULL);
		return;
	}
	fl->req = req;
	fl->gen = p->gen;
	fl->admit_ns = xm_now_ns();
	xm_list_add_tail(&p->flushq, &fl->node);
}

void on_nbd_request(void *ctx, struct xm_nbd_req *req)
{
	struct xm_primary *p = ctx;
	__u8 *zeroes; /* or the WRITE payload the write takes over */

	if (p->stopping) {
		xm_nbd_done(req, -ESHUTDOWN, NULL);
		return;
	}
	switch (req->type) {
	case XM_NBD_CMD_READ:
		read_request(p, req);
		break;
	case XM_NBD_CMD_WRITE:
		/* The write owns the payload: protocol A replies before every frame is durable,
		 * and a retransmission must still find the bytes. */
		zeroes = req->data;
		req->data = NULL;
		admit_write(p, req, zeroes);
		break;
	case XM_NBD_CMD_WRITE_ZEROES:
		/* Sent as DATA full of zeros until the header has XM_F_ZEROES (§13). */
		if (posix_memalign((void **)&zeroes, 4096, req->len)) {
			xm_nbd_done(req, -ENOMEM, NULL);
			break;
		}
		memset(zeroes, 0, req->len);
		admit_write(p, req, zeroes);
		break;
	case XM_NBD_CMD_TRIM:
		/* Ignored on both disks, which NBD allows; the disks stay identical (§5.1). */
		xm_nbd_done(req, 0, NULL);
		break;
	case XM_NBD_CMD_FLUSH:
		start_flush(p, req);
		break;
	default:
		xm_nbd_done(req, -EINVAL, NULL);
	}
}
