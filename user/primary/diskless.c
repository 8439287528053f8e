// SPDX-License-Identifier: GPL-2.0
/* The primary's own disk fails: it goes on from the peer's (docs/protocol.md §15).  Reads, local
 * or from the peer; the stale set; READ_REQ and READ_DATA; the back-fill of a disk put back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primary/internal.h"
#include "util/clock.h"
#include "util/log.h"

#define RREAD_TRIES	   20
#define RREAD_RETRY_MIN_NS (20 * NS_PER_MS)
#define BACKFILL_CHUNK	   XM_READ_MAX_LEN
#define BACKFILL_CHUNKS	   4u
/* READ_REQs asked at once: what the secondary answers at once (§15.6); the rest wait here, so a
 * deep client queue is not ignored there and retried into EIO. */
#define RREADS_ASKED 32u

static struct xm_disk_health *health(const struct xm_primary *p)
{
	return p->env->health;
}

bool disk_usable(const struct xm_primary *p)
{
	return health(p)->state == XM_DH_ATTACHED || health(p)->state == XM_DH_SYNCING;
}

/* ---- the stale set: regions the local disk lacks ---- */

static __u64 nregions(const struct xm_primary *p)
{
	return p->m->bm.nbits;
}

static bool stale_test(const struct xm_primary *p, __u64 bit)
{
	return p->stale[bit / 64] & (1ull << (bit % 64));
}

void stale_mark(struct xm_primary *p, __u64 off, __u64 len)
{
	__u64 bit, end;

	if (!len)
		return;
	end = (off + len - 1) >> p->m->bm.shift;
	for (bit = off >> p->m->bm.shift; bit <= end && bit < nregions(p); bit++) {
		if (stale_test(p, bit))
			continue;
		p->stale[bit / 64] |= 1ull << (bit % 64);
		health(p)->stale++;
	}
}

static void stale_clear(struct xm_primary *p, __u64 first, __u64 end)
{
	__u64 bit;

	for (bit = first; bit < end && bit < nregions(p); bit++) {
		if (!stale_test(p, bit))
			continue;
		p->stale[bit / 64] &= ~(1ull << (bit % 64));
		health(p)->stale--;
	}
}

static void stale_all(struct xm_primary *p)
{
	stale_mark(p, 0, (__u64)nregions(p) << p->m->bm.shift);
}

static bool stale_any(const struct xm_primary *p, __u64 off, __u64 len)
{
	__u64 bit, end = (off + len - 1) >> p->m->bm.shift;

	for (bit = off >> p->m->bm.shift; bit <= end && bit < nregions(p); bit++)
		if (stale_test(p, bit))
			return true;
	return false;
}

/* The peer may lack a region of the range: it is no source for it either. */
static bool oos_any(const struct xm_primary *p, __u64 off, __u64 len)
{
	const struct xm_bitmap *bm = &p->m->bm;
	__u64 bit, end = (off + len - 1) >> bm->shift;

	for (bit = off >> bm->shift; bit <= end && bit < bm->nbits; bit++)
		if (xm_bitmap_test_oos(bm, bit))
			return true;
	return false;
}

/* ---- failure ---- */

void disk_lost(struct xm_primary *p)
{
	struct xm_list *pos, *tmp;

	/* A write whose local copy is not known durable may be missing there. */
	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (!w->resync && !w->backfill && w->local != L_DURABLE)
			stale_mark(p, w->off, w->len);
	}
	xm_meta_set_flag(p->m, XM_MF_DISK_FAILED, true);
}

bool disk_fail(struct xm_primary *p, int err, const char *what)
{
	if (p->env->cfg->io_error_pass_on)
		return false;
	if (!xm_disk_health_fail(health(p), err, what))
		return true;
	ctr(p)->disk_failures++;
	pr_warn("%s: disk failed: %s (%s): serving from the peer (on-io-error detach)",
		p->env->cfg->dev, strerror(-err), what);
	disk_lost(p);
	return true;
}

/* ---- writes without the local disk ---- */

void issue_nolocal(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	w->state = W_ACTIVE;
	w->nolocal = true;
	w->local = L_DURABLE;
	stale_mark(p, w->off, w->len);
	if (p->state != P_CONNECTED || w->off % p->block || w->len % p->block) {
		/* No copy anywhere: the write fails (it marks nothing out of sync). */
		ctr(p)->remote_read_errors++;
		write_event(w, WE_REMOTE_LOST, 0);
		return;
	}
	w->gen = p->gen;
	w->nframes = (w->len + p->max_payload - 1) / p->max_payload;
	xm_list_add_tail(&p->sendq, &w->send_node);
	w->remote = R_QUEUED;
}

/* ---- remote reads (§15.6) ---- */

static void rread_send(struct rread *rr, __u64 now)
{
	struct xm_primary *p = rr->p;
	struct xm_frame f = {
		.type = XM_T_READ_REQ, .session = p->session, .arg0 = rr->off, .arg1 = rr->len};
	__u64 rto = 4 * p->env->hb->rtt_avg_ns;

	if (rr->tries++)
		ctr(p)->remote_read_retries++;
	else
		p->rreads_asked++;
	rr->due_ns = now + (rto > RREAD_RETRY_MIN_NS ? rto : RREAD_RETRY_MIN_NS);
	xm_env_send(p->env, &f, NULL, 0, 0);
}

static void rread_finish(struct rread *rr, int err)
{
	if (rr->tries)
		rr->p->rreads_asked--;
	xm_list_del(&rr->node);
	rr->done(rr, err);
	free(rr->pieces);
	free(rr);
}

/* Asks the peer for [off, off + len) into buf; done() runs once.  Returns 0 or -errno (then
 * done() never runs). */
static int rread_start(struct xm_primary *p, __u64 off, __u32 len, __u8 *buf,
		       void (*done)(struct rread *, int), void *ctx)
{
	struct rread *rr = calloc(1, sizeof(*rr));
	__u32 npieces;

	if (!rr)
		return -ENOMEM;
	npieces = (len + p->max_payload - 1) / p->max_payload;
	rr->pieces = calloc((npieces + 63) / 64, sizeof(__u64));
	if (!rr->pieces) {
		free(rr);
		return -ENOMEM;
	}
	rr->p = p;
	rr->off = off;
	rr->len = len;
	rr->buf = buf;
	rr->gen = p->gen;
	rr->done = done;
	rr->ctx = ctx;
	xm_list_add_tail(&p->rreads, &rr->node);
	if (p->rreads_asked < RREADS_ASKED)
		rread_send(rr, xm_now_ns());
	return 0;
}

void on_read_data(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
		  __u32 hdr_off)
{
	struct xm_list *pos, *tmp;

	xm_list_for_each_safe(pos, tmp, &p->rreads)
	{
		struct rread *rr = xm_container_of(pos, struct rread, node);
		__u64 at;
		__u32 piece, want;

		if (rr->off != f->arg1 || f->arg0 < rr->off || f->arg0 >= rr->off + rr->len)
			continue;
		at = f->arg0 - rr->off;
		want = rr->len - at < p->max_payload ? rr->len - (__u32)at : p->max_payload;
		if (at % p->max_payload || f->payload_len != want) {
			ctr(p)->rx_bad_len++;
			return;
		}
		piece = (__u32)(at / p->max_payload);
		if (rr->pieces[piece / 64] & (1ull << (piece % 64)))
			return; /* a repeat's answer */
		rr->pieces[piece / 64] |= 1ull << (piece % 64);
		xm_spans_copy(sp, n, hdr_off + f->payload_off, want, rr->buf + at);
		rr->got += want;
		if (rr->got == rr->len)
			rread_finish(rr, 0);
		return;
	}
	ctr(p)->rx_unexpected++;
}

void diskless_session_ended(struct xm_primary *p)
{
	while (!xm_list_empty(&p->rreads))
		rread_finish(xm_container_of(p->rreads.next, struct rread, node), -EIO);
}

/* ---- client reads ---- */

/* One NBD READ: read locally, or as ranges of at most XM_READ_MAX_LEN from the peer. */
struct pread {
	struct xm_io io;
	struct xm_primary *p;
	struct xm_nbd_req *req;
	__u8 *buf;
	__u32 pending; /* remote ranges not done */
	int err;
};

static void pread_done(struct pread *r, int err)
{
	xm_nbd_done(r->req, err, r->buf);
	free(r->buf);
	free(r);
}

static void on_remote_piece_done(struct rread *rr, int err)
{
	struct pread *r = rr->ctx;

	if (err && !r->err)
		r->err = err;
	if (--r->pending)
		return;
	if (r->err)
		rr->p->env->ctr->remote_read_errors++;
	pread_done(r, r->err);
}

static void read_remote(struct pread *r)
{
	struct xm_primary *p = r->p;
	__u64 off = r->req->offset, end = off + r->req->len;
	__u32 len;

	/* The peer is a source only for what it holds: connected, and not out of sync there. */
	if (p->state != P_CONNECTED || off % 4096 || end % 4096 || oos_any(p, off, end - off)) {
		ctr(p)->remote_read_errors++;
		pread_done(r, -EIO);
		return;
	}
	ctr(p)->remote_reads++;
	r->pending = 1; /* held until every range is asked */
	for (; off < end; off += len) {
		len = end - off < XM_READ_MAX_LEN ? (__u32)(end - off) : XM_READ_MAX_LEN;
		r->pending++;
		if (rread_start(p, off, len, r->buf + (off - r->req->offset), on_remote_piece_done,
				r)) {
			r->pending--;
			r->err = -ENOMEM;
			break;
		}
	}
	if (!--r->pending)
		pread_done(r, r->err);
}

static void on_local_read(struct xm_io *io, int res, __u32 flags)
{
	struct pread *r = (struct pread *)io;
	char what[64];

	if (res >= 0 && (__u32)res != r->req->len)
		res = -EIO;
	if (res < 0) {
		snprintf(what, sizeof(what), "read at %llu", (unsigned long long)r->req->offset);
		if (disk_fail(r->p, res, what)) {
			read_remote(r); /* the client sees no error while the peer has it */
			return;
		}
		ctr(r->p)->local_wr_errors++;
	}
	pread_done(r, res < 0 ? res : 0);
}

void read_request(struct xm_primary *p, struct xm_nbd_req *req)
{
	struct pread *r = calloc(1, sizeof(*r));
	struct io_uring_sqe *sqe;

	if (!r || posix_memalign((void **)&r->buf, 4096, req->len)) {
		free(r);
		xm_nbd_done(req, -ENOMEM, NULL);
		return;
	}
	r->p = p;
	r->req = req;
	if (!disk_usable(p) || stale_any(p, req->offset, req->len)) {
		read_remote(r);
		return;
	}
	r->io.fn = on_local_read;
	sqe = xm_loop_sqe(p->env->loop, &r->io);
	if (!sqe) {
		on_local_read(&r->io, -EIO, 0);
		return;
	}
	io_uring_prep_read(sqe, p->env->disk->fd, r->buf, req->len, req->offset);
}

/* ---- back-fill: a disk put back gets what it lacks from the peer (§15.4) ---- */

static void on_backfill_fetched(struct rread *rr, int err)
{
	struct pwrite *w = rr->ctx;
	struct xm_primary *p = w->p;

	if (!err && !disk_usable(p))
		err = -EIO;
	if (err) {
		w->local = L_FAILED; /* its regions stay stale: a later chunk tries again */
		write_event(w, WE_REMOTE_LOST, 0);
		return;
	}
	local_write_submit(w);
}

void backfill_fetch(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	w->state = W_ACTIVE;
	w->remote = R_DURABLE; /* nothing goes to the peer */
	if (p->state != P_CONNECTED ||
	    rread_start(p, w->off, w->len, w->buf, on_backfill_fetched, w)) {
		w->local = L_FAILED;
		write_event(w, WE_REMOTE_LOST, 0);
	}
}

void backfill_retired(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	p->bf_chunks--;
	if (w->local != L_DURABLE || !disk_usable(p))
		return;
	stale_clear(p, w->bit_first, w->bit_end);
	p->bf_bytes += w->len;
	ctr(p)->backfill_bytes += w->len;
}

static void backfill_pump(struct xm_primary *p)
{
	__u64 per = BACKFILL_CHUNK >> p->m->bm.shift, bit, end, off, len;
	struct pwrite *w;

	if (!per)
		per = 1;
	while (p->bf_chunks < BACKFILL_CHUNKS && !p->stopping) {
		for (bit = p->bf_cursor; bit < nregions(p) && !stale_test(p, bit); bit++)
			;
		if (bit >= nregions(p)) {
			/* Regions left behind the cursor (failed chunks) wait for the next pass. */
			if (!p->bf_chunks)
				p->bf_cursor = 0;
			return;
		}
		for (end = bit + 1; end < nregions(p) && end - bit < per && stale_test(p, end);)
			end++;
		off = bit << p->m->bm.shift;
		len = (end << p->m->bm.shift) < p->export_size ? (end << p->m->bm.shift) - off
		      : p->export_size > off		       ? p->export_size - off
							       : 0;
		p->bf_cursor = end;
		if (!len || off % 4096 || len % 4096) {
			stale_clear(p, bit, end); /* past the export: nothing to fetch */
			continue;
		}
		w = calloc(1, sizeof(*w));
		if (!w || posix_memalign((void **)&w->buf, 4096, len)) {
			free(w);
			return;
		}
		w->off = off;
		w->len = (__u32)len;
		w->bit_first = bit;
		w->bit_end = end;
		w->backfill = true;
		p->bf_chunks++;
		admit_chunk(p, w);
	}
}

void diskless_tick(struct xm_primary *p, __u64 now)
{
	struct xm_list *pos, *tmp;

	xm_list_for_each_safe(pos, tmp, &p->rreads)
	{
		struct rread *rr = xm_container_of(pos, struct rread, node);

		if (!rr->tries && p->rreads_asked >= RREADS_ASKED)
			break; /* waits its turn, in order */
		if (now < rr->due_ns)
			continue;
		if (rr->tries >= RREAD_TRIES)
			rread_finish(rr, -EIO);
		else
			rread_send(rr, now);
	}
	if (health(p)->state != XM_DH_SYNCING)
		return;
	if (health(p)->stale || p->bf_chunks) {
		if (p->state == P_CONNECTED)
			backfill_pump(p);
		return;
	}
	health(p)->state = XM_DH_ATTACHED;
	xm_meta_set_flag(p->m, XM_MF_DISK_FAILED, false);
	pr_info("%s: disk in sync with the peer: fetched %llu bytes", p->env->cfg->dev,
		(unsigned long long)p->bf_bytes);
}

const char *primary_disk_changed(void *r, enum xm_disk_event ev)
{
	struct xm_primary *p = r;

	if (ev == XM_DISK_EV_DETACHED) {
		disk_lost(p);
		return NULL;
	}
	if (ev == XM_DISK_EV_NEW_DISK)
		stale_all(p);
	p->bf_cursor = 0;
	p->bf_bytes = 0;
	health(p)->state = XM_DH_SYNCING;
	pr_info("%s: disk syncing: %llu region(s) to fetch from the peer", p->env->cfg->dev,
		(unsigned long long)health(p)->stale);
	return NULL;
}

int diskless_init(struct xm_primary *p)
{
	xm_list_init(&p->rreads);
	p->stale = calloc((nregions(p) + 63) / 64, sizeof(__u64));
	if (!p->stale)
		return -ENOMEM;
	health(p)->stale = 0;
	/* The disk missed writes before this start, and nobody knows which (§15.4). */
	if (p->m->sb.flags & XM_MF_DISK_FAILED) {
		stale_all(p);
		if (disk_usable(p)) {
			health(p)->state = XM_DH_SYNCING;
			pr_warn("%s: this disk missed writes before (metadata says so): every "
				"region "
				"is fetched from the peer",
				p->env->cfg->dev);
		}
	}
	return 0;
}

void diskless_free(struct xm_primary *p)
{
	free(p->stale);
	p->stale = NULL;
}
