// SPDX-License-Identifier: GPL-2.0
/* The primary: NBD export, local writes, and the reliable sender of DATA and FLUSH frames. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>

#include "nbd/nbd.h"
#include "primary/primary.h"
#include "repl/gen.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"
#include "util/runstate.h"

#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull

/* docs/protocol.md §4.1, §5.4, §9 */
#define HELLO_RETRY_NS	 (10 * NS_PER_MS)
#define REFUSED_RETRY_NS (1000 * NS_PER_MS)
/* Floor: a loaded 2-vCPU VM delays acks by up to ~1 ms with nothing lost (make demo showed 0.5%
 * spurious timeouts at 200 µs); RACK repairs real losses well before this. */
#define RTO_MIN_NS	(1 * NS_PER_MS)
#define RTO_INITIAL_NS	(2 * NS_PER_MS)
#define RTO_MAX_NS	(10 * NS_PER_MS)
#define RTO_SLACK_NS	(20 * NS_PER_US)
#define WRITE_STALL_NS	(2000 * NS_PER_MS)
#define DETACH_DRAIN_NS (5000 * NS_PER_MS)
#define SEND_RING	4096 /* frames in flight at most; a power of two */
#define NBD_MAX_REQUEST (32u << 20)
#define TAG_SEQ_BITS	48
/* docs/resync.md */
#define SWEEP_NS	    (1000 * NS_PER_MS) /* lazy clearing of intent bits */
#define RESYNC_CHUNK	    (256u << 10)       /* largest resync chunk */
#define RESYNC_CHUNKS	    64u		       /* chunks in the active set at once */
#define BMREQ_RETRY_NS	    (20 * NS_PER_MS)
#define CSUM_OPS	    8u
#define CSUM_MAX	    (1u << 20)
#define CSUM_RETRY_NS	    (50 * NS_PER_MS)
#define CSUM_TRIES	    20u
#define CSUM_RETRY_DELAY_NS (SWEEP_NS / 4) /* a busy region is looked at again this much later */
#define CSUM_RETRY_QUEUE    1024u
#define RATE_SAMPLE_NS	    (250 * NS_PER_MS)

enum pstate { P_DISCONNECTED, P_HELLO_SENT, P_CONNECTED, P_REFUSED };

/* What a connected session is doing about the data (docs/resync.md §4). */
enum phase { PH_NONE, PH_BITMAP_XFER, PH_CHECKSUM, PH_RESYNC, PH_SETGEN, PH_IN_SYNC };

static const char *const phase_names[] = {
	[PH_NONE] = "none",	[PH_BITMAP_XFER] = "bitmap_xfer", [PH_CHECKSUM] = "checksum",
	[PH_RESYNC] = "resync", [PH_SETGEN] = "setgen",		  [PH_IN_SYNC] = "in_sync",
};

static const char *const pstate_names[] = {
	[P_DISCONNECTED] = "connecting",
	[P_HELLO_SENT] = "connecting",
	[P_CONNECTED] = "connected",
	[P_REFUSED] = "refused",
};

/* One admitted NBD WRITE or WRITE_ZEROES: in the active set until done on both sides (§8). */
struct pwrite {
	struct xm_list node;	  /* in active or waiting */
	struct xm_list send_node; /* in sendq (rsendq) while frames remain unsent */
	struct xm_list meta_node; /* in intent_wait until its bitmap bits are durable */
	struct xm_primary *p;
	struct xm_nbd_req *req; /* NULL once replied */
	__u64 off;
	__u32 len;
	__u8 *buf; /* the payload, owned by the write */
	__u32 gen; /* session generation its frames belong to */
	__u32 nframes, next_frame;
	__u32 frames_sent, frames_rcvd, frames_durable;
	bool fua, remote_lost, local_done, local_durable, in_sendq, in_meta_wait;
	bool resync; /* a resync chunk: read locally, sent with XM_F_RESYNC, no NBD request */
	__u64 bit_first, bit_end; /* resync: the bitmap bits it clears once durable remotely */
	int local_err;
	struct xm_io io;
	struct xm_commit_item ci;
};

struct pflush {
	struct xm_list node;
	struct xm_nbd_req *req; /* NULL for the SETGEN that completes a resync */
	__u64 seq;
	__u32 gen;
	__u64 setgen; /* nonzero: sent as SETGEN with this generation */
};

enum slot_kind { SLOT_EMPTY, SLOT_DATA, SLOT_FLUSH };

/* One checksum request: a range read locally and asked from the peer (docs/resync.md §5). */
struct csum_op {
	struct xm_io io;
	struct xm_primary *p;
	bool used, reading, have_local, have_remote;
	__u32 gen, len, tries;
	__u64 off, sent_ns;
	__u64 busy[CSUM_MAX / XM_CSUM_BLOCK / 64]; /* blocks whose region was busy at the request */
	__u8 *buf;
	__u32 local[CSUM_MAX / XM_CSUM_BLOCK], remote[CSUM_MAX / XM_CSUM_BLOCK];
};

struct csum_retry {
	__u64 off, due_ns;
	__u32 len, tries;
};

/* A pass over the disk comparing checksums: the initial checksum sync or an online verify. */
struct csum_job {
	bool active, verify, mark;
	__u64 cursor, end, req_len;
	__u64 bytes_done, regions_differ, regions_equal, skipped;
	__u64 first_diff[8];
	__u32 ndiff;
	__u64 started_ns, finished_ns;
	bool finished;
	struct csum_op ops[CSUM_OPS];
	struct csum_retry retry[CSUM_RETRY_QUEUE];
	__u32 retry_head, retry_len;
};

/* A numbered frame between snd_una and snd_nxt. */
struct pslot {
	enum slot_kind kind;
	struct pwrite *w;
	__u32 frame;
	struct pflush *fl;
	__u64 first_tx_ns, last_tx_ns;
	bool retransmitted, rack_retx, sent, rcvd, durable;
};

struct xm_primary {
	const struct xm_role_env *env;
	struct xm_nbd_server *nbd;
	char nbd_path[108];
	enum pstate state;
	char reason[128];
	__u32 session, gen;
	__u64 hello_due, hello_sent_ns;
	/* negotiated (§4.3) */
	__u32 block, max_payload, payload_off, window;
	__u64 export_size;
	char running;
	__u8 peer_uuid[16];
	/* send window (§5) */
	__u64 snd_una, snd_nxt, right_edge;
	struct pslot *ring;
	__u64 srtt, rttvar, rto, rto_base, rto_deadline;
	__u64 min_rtt; /* smallest RTT sample of the session: the reorder window's base */
	__u64 last_rx_ns;
	/* writes */
	struct xm_list active, waiting, sendq, flushq, rsendq, intent_wait;
	__u32 nactive;
	__u64 stop_ns;
	bool stopping;
	/* resync (docs/resync.md) */
	struct xm_meta *m;
	enum phase phase;
	__u8 decision, refusal;
	struct xm_gen_info peer_gen;
	__u32 peer_block;
	bool synced; /* SETGEN acked in this session */
	__u64 bm_next_word, bm_words, bm_due;
	__u64 rs_cursor, rs_done_bytes, rs_start_bytes, rs_start_ns;
	__u64 last_rs_bytes,
		last_rs_ns; /* the last sync that completed: bytes, session start to SETGEN */
	__u32 rs_chunks, rs_frames;
	__u64 rs_tokens, rs_refill_ns;
	__u64 rate_ns, rate_bytes, rate_bps;
	__u64 last_sweep_ns;
	struct csum_job cj;
	char fail_reason[64];
	__u64 fail_silence_ns, fail_at_ns;
};

static struct xm_counters *ctr(struct xm_primary *p)
{
	return p->env->ctr;
}

static struct pslot *slot(struct xm_primary *p, __u64 seq)
{
	return &p->ring[seq & (SEND_RING - 1)];
}

static void csum_abort(struct xm_primary *p);
static void setgen_done(struct xm_primary *p, __u64 gen);
static void session_start(struct xm_primary *p, const struct xm_hello_gen *g, __u64 now);
static void on_bitmap(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp,
		      __u32 n, __u32 hdr_off, __u64 now);
static void on_csum(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp,
		    __u32 n, __u32 hdr_off);

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
		return true; /* checked by the caller: the write fails */
	if (p->state != P_CONNECTED) {
		if (!m->sb.bitmap_gen) {
			xm_meta_rotate(m);
			pr_info("%s: writing without the peer: new generation %016llx",
				p->env->cfg->dev, (unsigned long long)m->sb.current_gen);
		}
		xm_bitmap_mark_oos(&m->bm, w->off, w->len);
	} else {
		xm_bitmap_mark_intent(&m->bm, w->off, w->len);
	}
	return xm_bitmap_range_durable(&m->bm, w->off, w->len) && !m->sb_dirty && !m->sb_inflight;
}

/* ---- the active set (§8) ---- */

static bool overlaps(const struct pwrite *a, const struct pwrite *b)
{
	return a->off < b->off + b->len && b->off < a->off + a->len;
}

static void start_write(struct pwrite *w);

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
		start_write(w);
	}
}

static char proto_of(const struct pwrite *w)
{
	/* FUA writes are explicit durability requests: always protocol C (§6). */
	return w->fua ? 'C' : w->p->running;
}

static bool remote_done(const struct pwrite *w)
{
	if (w->remote_lost)
		return true;
	switch (proto_of(w)) {
	case 'A':
		return w->frames_sent == w->nframes;
	case 'B':
		return w->frames_rcvd == w->nframes;
	default:
		return w->frames_durable == w->nframes;
	}
}

static void maybe_finish(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	if (w->req && w->local_done && (w->local_err || w->local_durable) && remote_done(w)) {
		xm_nbd_done(w->req, w->local_err, NULL);
		w->req = NULL;
	}
	if (w->req || !w->local_done || w->in_sendq ||
	    !(w->remote_lost || w->frames_durable == w->nframes))
		return;
	/* Replied, local write over, every frame durable or the range marked dirty.  An app write's
	 * intent bits are cleared by the sweep; a resync chunk's regions are now equal. */
	if (w->resync) {
		p->rs_chunks--;
		if (!w->remote_lost) {
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

/* A resync chunk's frames sent but not durable stop counting against the resync share. */
static void p_rs_forget(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	__u32 out = w->next_frame - w->frames_durable;

	p->rs_frames = p->rs_frames > out ? p->rs_frames - out : 0;
}

static void lose_remote(struct pwrite *w)
{
	if (w->remote_lost)
		return;
	w->remote_lost = true;
	dirty_mark(w->p, w->off, w->len);
	if (w->in_sendq) {
		xm_list_del(&w->send_node);
		w->in_sendq = false;
	}
	if (w->resync) /* its frames in flight no longer count against the resync share */
		p_rs_forget(w);
}

/* ---- local disk I/O ---- */

static void on_local_durable(struct xm_commit_item *it, int err)
{
	struct pwrite *w = xm_container_of(it, struct pwrite, ci);

	if (err) {
		w->local_err = err;
		ctr(w->p)->local_wr_errors++;
		dirty_mark(w->p, w->off, w->len);
	} else {
		w->local_durable = true;
	}
	maybe_finish(w);
}

static void on_local_write(struct xm_io *io, int res, __u32 flags)
{
	struct pwrite *w = xm_container_of(io, struct pwrite, io);
	struct xm_primary *p = w->p;

	if (res >= 0 && (__u32)res != w->len)
		res = -EIO; /* a short O_DIRECT write to a block-sized range is a failure */
	w->local_done = true;
	xm_commit_completed(p->env->commit, &w->ci, res, w->fua, xm_now_ns());
}

static void on_resync_read(struct xm_io *io, int res, __u32 flags)
{
	struct pwrite *w = xm_container_of(io, struct pwrite, io);
	struct xm_primary *p = w->p;

	w->local_done = true;
	if (res != (int)w->len || p->state != P_CONNECTED || w->gen != p->gen) {
		if (res != (int)w->len)
			ctr(p)->local_wr_errors++;
		w->remote_lost = true; /* stays out of sync; the next pass retries */
	} else {
		xm_list_add_tail(&p->rsendq, &w->send_node);
		w->in_sendq = true;
	}
	maybe_finish(w);
}

/* A resync chunk is active: read the primary's current bytes, then send them. */
static void start_resync(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	struct io_uring_sqe *sqe;

	xm_list_add_tail(&p->active, &w->node);
	p->nactive++;
	w->gen = p->gen;
	w->nframes = (w->len + p->max_payload - 1) / p->max_payload;
	w->local_durable = true;
	w->io.fn = on_resync_read;
	sqe = xm_loop_sqe(p->env->loop, &w->io);
	if (!sqe) {
		on_resync_read(&w->io, -EIO, 0);
		return;
	}
	io_uring_prep_read(sqe, p->env->disk->fd, w->buf, w->len, w->off);
}

static void issue_write(struct pwrite *w);

static void start_write(struct pwrite *w)
{
	struct xm_primary *p = w->p;

	if (w->resync) {
		start_resync(w);
		return;
	}
	xm_list_add_tail(&p->active, &w->node);
	p->nactive++;
	if (intent_ready(p, w)) {
		if (p->m->failed) {
			/* The bitmap cannot be made durable: a crash could hide this write. */
			w->local_done = true;
			w->local_err = p->m->failed;
			lose_remote(w);
			maybe_finish(w);
			return;
		}
		issue_write(w);
		return;
	}
	/* Its bits go to disk in the next metadata flush, with every other write waiting. */
	ctr(p)->intent_waits++;
	xm_list_add_tail(&p->intent_wait, &w->meta_node);
	w->in_meta_wait = true;
	xm_meta_flush_start(p->m);
}

static void issue_write(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	struct io_uring_sqe *sqe;

	if (p->state == P_CONNECTED && !(w->off % p->block) && !(w->len % p->block)) {
		w->gen = p->gen;
		w->nframes = (w->len + p->max_payload - 1) / p->max_payload;
		xm_list_add_tail(&p->sendq, &w->send_node);
		w->in_sendq = true;
	} else {
		ctr(p)->writes_degraded++;
		lose_remote(w);
	}
	w->io.fn = on_local_write;
	w->ci.durable = on_local_durable;
	sqe = xm_loop_sqe(p->env->loop, &w->io);
	if (!sqe) {
		w->local_done = true;
		on_local_durable(&w->ci, -EIO);
		return;
	}
	io_uring_prep_write(sqe, p->env->disk->fd, w->buf, w->len, w->off);
	sqe->rw_flags = xm_commit_rw_flags(p->env->commit);
	xm_commit_submitted(p->env->commit);
}

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
	xm_list_init(&w->node);
	xm_list_init(&w->send_node);
	ctr(p)->writes++;
	if (blocked_by(&p->active, NULL, w) || blocked_by(&p->waiting, NULL, w)) {
		ctr(p)->overlap_waits++;
		xm_list_add_tail(&p->waiting, &w->node);
		return;
	}
	start_write(w);
}

struct pread {
	struct xm_io io;
	struct xm_nbd_req *req;
	void *buf;
};

static void on_local_read(struct xm_io *io, int res, __u32 flags)
{
	struct pread *r = (struct pread *)io;

	if (res >= 0 && (__u32)res != r->req->len)
		res = -EIO;
	xm_nbd_done(r->req, res < 0 ? res : 0, r->buf);
	free(r->buf);
	free(r);
}

static void start_read(struct xm_primary *p, struct xm_nbd_req *req)
{
	struct pread *r = calloc(1, sizeof(*r));
	struct io_uring_sqe *sqe;

	if (!r || posix_memalign(&r->buf, 4096, req->len)) {
		free(r);
		xm_nbd_done(req, -ENOMEM, NULL);
		return;
	}
	r->req = req;
	r->io.fn = on_local_read;
	sqe = xm_loop_sqe(p->env->loop, &r->io);
	if (!sqe) {
		on_local_read(&r->io, -EIO, 0);
		return;
	}
	io_uring_prep_read(sqe, p->env->disk->fd, r->buf, req->len, req->offset);
}

static void start_flush(struct xm_primary *p, struct xm_nbd_req *req)
{
	struct pflush *fl;

	ctr(p)->flushes++;
	/* Completed writes are already durable locally (a write completes only then), so the
	 * local part needs no fdatasync; the peer must confirm everything sent before (§7.5). */
	if (p->state != P_CONNECTED) {
		xm_nbd_done(req, 0, NULL);
		return;
	}
	fl = calloc(1, sizeof(*fl));
	if (!fl) {
		xm_nbd_done(req, -ENOMEM, NULL);
		return;
	}
	fl->req = req;
	fl->gen = p->gen;
	xm_list_add_tail(&p->flushq, &fl->node);
}

static void on_nbd_request(void *ctx, struct xm_nbd_req *req)
{
	struct xm_primary *p = ctx;
	__u8 *zeroes; /* or the WRITE payload the write takes over */

	if (p->stopping) {
		xm_nbd_done(req, -ESHUTDOWN, NULL);
		return;
	}
	switch (req->type) {
	case XM_NBD_CMD_READ:
		start_read(p, req);
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

/* ---- sending ---- */

/* Payload bytes of frame k of a write: max_payload, or what is left for the last one. */
static __u32 frame_len(const struct xm_primary *p, const struct pwrite *w, __u32 k)
{
	__u32 left = w->len - k * p->max_payload;

	return left < p->max_payload ? left : p->max_payload;
}

static int transmit(struct xm_primary *p, __u64 seq, __u64 now)
{
	struct pslot *s = slot(p, seq);
	struct xm_frame f = {.session = p->session, .seq = seq};
	struct xm_span payload;
	__u64 tag = (__u64)(p->gen & 0xffff) << TAG_SEQ_BITS | seq;
	int err;

	if (s->kind == SLOT_DATA) {
		__u32 start = s->frame * p->max_payload;

		payload.data = s->w->buf + start;
		payload.len = frame_len(p, s->w, s->frame);
		f.type = XM_T_DATA;
		f.flags = (s->w->fua ? XM_F_FUA : 0) | (s->w->resync ? XM_F_RESYNC : 0);
		f.payload_off = (__u16)p->payload_off;
		f.payload_len = payload.len;
		f.arg0 = s->w->off + start;
		err = xm_env_send(p->env, &f, &payload, 1, tag);
	} else {
		f.type = s->fl && s->fl->setgen ? XM_T_SETGEN : XM_T_FLUSH;
		f.arg0 = s->fl ? s->fl->setgen : 0;
		err = xm_env_send(p->env, &f, NULL, 0, tag);
	}
	if (err)
		return err;
	if (!s->first_tx_ns)
		s->first_tx_ns = now;
	s->last_tx_ns = now;
	return 0;
}

static void arm_rto(struct xm_primary *p, __u64 now)
{
	p->rto_deadline = p->snd_una < p->snd_nxt ? now + p->rto : 0;
}

/* Frames resync may have in flight: 3/4 of the window while application writes are active, so
 * they always find room; the whole window while only resync runs. */
static __u64 rs_share(const struct xm_primary *p)
{
	return p->nactive > p->rs_chunks ? p->window / 4 * 3 : p->window;
}

/* Gives the next seq to a queued FLUSH or DATA frame and sends it; false when nothing fits. */
static bool send_new(struct xm_primary *p, __u64 now)
{
	__u64 seq = p->snd_nxt;
	struct pslot *s = slot(p, seq);

	if (seq >= p->right_edge || seq - p->snd_una >= SEND_RING)
		return false;
	memset(s, 0, sizeof(*s));
	if (!xm_list_empty(&p->flushq)) {
		s->kind = SLOT_FLUSH;
		s->fl = xm_container_of(p->flushq.next, struct pflush, node);
		s->fl->seq = seq;
	} else if (!xm_list_empty(&p->sendq)) {
		s->kind = SLOT_DATA;
		s->w = xm_container_of(p->sendq.next, struct pwrite, send_node);
		s->frame = s->w->next_frame;
	} else if (!xm_list_empty(&p->rsendq) && p->rs_frames < rs_share(p)) {
		/* Resync gets what application writes leave (rs_share). */
		s->kind = SLOT_DATA;
		s->w = xm_container_of(p->rsendq.next, struct pwrite, send_node);
		s->frame = s->w->next_frame;
	} else {
		return false;
	}
	if (transmit(p, seq, now)) {
		s->kind = SLOT_EMPTY; /* counted in tx_ring_full; the next pass tries again */
		return false;
	}
	if (s->kind == SLOT_FLUSH) {
		xm_list_del(&s->fl->node);
		ctr(p)->tx_flush++;
	} else {
		ctr(p)->tx_data++;
		ctr(p)->tx_data_bytes += frame_len(p, s->w, s->frame);
		if (s->w->resync) {
			p->rs_frames++;
			ctr(p)->tx_resync++;
			ctr(p)->tx_resync_bytes += frame_len(p, s->w, s->frame);
		}
		if (++s->w->next_frame == s->w->nframes) {
			xm_list_del(&s->w->send_node);
			s->w->in_sendq = false;
		}
	}
	if (p->snd_una == p->snd_nxt)
		p->rto_deadline = now + p->rto;
	p->snd_nxt++;
	return true;
}

static void pump(struct xm_primary *p, __u64 now)
{
	unsigned int budget = 256;

	while (budget-- && send_new(p, now))
		;
	if (p->snd_nxt >= p->right_edge &&
	    (!xm_list_empty(&p->sendq) || !xm_list_empty(&p->flushq) || !xm_list_empty(&p->rsendq)))
		ctr(p)->window_full++;
}

/* ---- the session (§4) ---- */

static void end_session(struct xm_primary *p, const char *why, __u64 now)
{
	struct xm_list *pos, *tmp;
	__u64 seq;

	if (p->state == P_CONNECTED)
		pr_info("%s: session %08x ended: %s", p->env->cfg->dev, p->session, why);
	snprintf(p->reason, sizeof(p->reason), "%s", why);
	/* Unacked frames are forgotten; the remote copy of their ranges is unknown (§4.6). */
	for (seq = p->snd_una; seq < p->snd_nxt; seq++) {
		struct pslot *s = slot(p, seq);

		if (s->kind == SLOT_FLUSH && s->fl) {
			if (s->fl->req)
				xm_nbd_done(s->fl->req, 0, NULL);
			free(s->fl);
		}
		s->kind = SLOT_EMPTY;
	}
	xm_list_for_each_safe(pos, tmp, &p->flushq)
	{
		struct pflush *fl = xm_container_of(pos, struct pflush, node);

		xm_list_del(&fl->node);
		if (fl->req)
			xm_nbd_done(fl->req, 0, NULL);
		free(fl);
	}
	if (p->state == P_CONNECTED) {
		snprintf(p->fail_reason, sizeof(p->fail_reason), "%s", why);
		p->fail_silence_ns = now - p->last_rx_ns;
		p->fail_at_ns = now;
	}
	p->phase = PH_NONE;
	p->rs_frames = 0;
	csum_abort(p);
	p->state = P_DISCONNECTED;
	p->gen++;
	p->snd_una = p->snd_nxt = p->right_edge = 0;
	p->rto_deadline = 0;
	p->hello_due = now;
	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (w->frames_durable != w->nframes || w->in_sendq || (w->resync && !w->local_done))
			lose_remote(w);
	}
	xm_list_for_each_safe(pos, tmp, &p->active)
		maybe_finish(xm_container_of(pos, struct pwrite, node));
}

static void violation(struct xm_primary *p, const char *what, __u64 now)
{
	char why[128];

	ctr(p)->violations++;
	snprintf(why, sizeof(why), "protocol violation: %s", what);
	end_session(p, why, now);
}

static void fill_hello(struct xm_primary *p, struct xm_hello2 *h2)
{
	const struct xm_role_env *env = p->env;
	__u32 block = env->disk->dio_offset_align;
	struct xm_hello *h = &h2->h;
	struct xm_gen_info g;

	memset(h2, 0, sizeof(*h2));
	xm_gen_of_meta(p->m, &g);
	xm_gen_to_wire(&g, p->m->sb.bitmap_block, 0, 0, &h2->g);
	memcpy(h->node_uuid, env->node_uuid, sizeof(h->node_uuid));
	h->disk_size = htobe64(env->disk->size);
	h->block_size = htobe32(block);
	h->max_payload = htobe32((env->mtu - (__u32)sizeof(struct xm_hdr)) / block * block);
	h->window = htobe32(SEND_RING / 2);
	h->payload_align = htobe16(64);
	h->proto_min = htobe16(XM_PROTO_MIN);
	h->proto_max = htobe16(XM_PROTO_MAX);
	h->role = XM_ROLE_PRIMARY;
	h->repl_protocol = (__u8)env->cfg->protocol;
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

static const char *refusal_text(__u64 code)
{
	static const char *const names[XM_REFUSE_MAX] = {
		[XM_REFUSE_VERSION] = "no common protocol revision",
		[XM_REFUSE_DISK_SIZE] = "peer disk smaller than the export",
		[XM_REFUSE_BLOCK_SIZE] = "block size larger than a frame's payload (raise the MTU)",
		[XM_REFUSE_PARAM] = "invalid parameter",
		[XM_REFUSE_ROLE] = "peer is not a secondary",
		[XM_REFUSE_DISK_FAILED] = "peer disk failed",
		[XM_REFUSE_SPLIT_BRAIN] = "split brain: both boxes wrote while apart",
		[XM_REFUSE_PEER_NEWER] = "the peer has writes this box lacks",
		[XM_REFUSE_UNRELATED] = "the disks share no history",
	};

	return code < XM_REFUSE_MAX && names[code] ? names[code] : "unknown reason";
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
	__u32 block, maxp, align, mtu_payload;

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
		snprintf(p->reason, sizeof(p->reason), "refused by peer: %s",
			 refusal_text(f->arg1));
		if (p->refusal != f->arg1)
			pr_warn("%s: %s", p->env->cfg->dev, p->reason);
		p->refusal = (__u8)(f->arg1 < 256 ? f->arg1 : 255);
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	/* Repeat the secondary's checks (§4.3): both sides must agree. */
	block = be32toh(h.block_size);
	if (block < p->env->disk->dio_offset_align)
		block = p->env->disk->dio_offset_align;
	align = be16toh(h.payload_align);
	maxp = be32toh(h.max_payload);
	if (!is_pow2(block) || block > 65536 || !is_pow2(align) || align > 4096 ||
	    h.role != XM_ROLE_SECONDARY || !f->credit) {
		snprintf(p->reason, sizeof(p->reason), "peer accepted incompatible parameters");
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	p->payload_off =
		((XM_ETH_HLEN + (__u32)sizeof(struct xm_hdr) + align - 1) / align) * align -
		XM_ETH_HLEN;
	mtu_payload = p->env->mtu > p->payload_off ? p->env->mtu - p->payload_off : 0;
	if (maxp > mtu_payload)
		maxp = mtu_payload;
	maxp = maxp / block * block;
	p->export_size = p->env->disk->size / block * block;
	if (maxp < block || be64toh(h.disk_size) < p->export_size) {
		snprintf(p->reason, sizeof(p->reason), "peer accepted incompatible parameters");
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	p->block = block;
	p->max_payload = maxp;
	p->window = f->credit < SEND_RING / 2 ? f->credit : SEND_RING / 2;
	p->running = (char)h.repl_protocol;
	if (p->running != 'A' && p->running != 'B' && p->running != 'C')
		p->running = 'C';
	memcpy(p->peer_uuid, h.node_uuid, sizeof(p->peer_uuid));
	p->snd_una = p->snd_nxt = f->arg0;
	p->right_edge = f->arg0 + p->window;
	p->srtt = p->rttvar = p->min_rtt = 0;
	p->rto = p->rto_base = RTO_INITIAL_NS;
	p->rto_deadline = 0;
	p->last_rx_ns = now;
	p->state = P_CONNECTED;
	p->reason[0] = 0;
	p->refusal = 0;
	ctr(p)->sessions++;
	pr_info("%s: session %08x connected: protocol %c, block %u, %u bytes per frame, window %u, "
		"sync %s",
		p->env->cfg->dev, p->session, p->running, p->block, p->max_payload, p->window,
		xm_sync_decision_name(h2.g.decision));
	session_start(p, &h2.g, now);
}

/* ---- acknowledgements (§5) ---- */

static void mark_sent(struct xm_primary *p, struct pslot *s)
{
	if (s->sent)
		return;
	s->sent = true;
	if (s->kind == SLOT_DATA) {
		s->w->frames_sent++;
		maybe_finish(s->w);
	}
}

static void mark_rcvd(struct xm_primary *p, struct pslot *s)
{
	mark_sent(p, s);
	if (s->rcvd)
		return;
	s->rcvd = true;
	if (s->kind == SLOT_DATA) {
		s->w->frames_rcvd++;
		maybe_finish(s->w);
	}
}

static void mark_durable(struct xm_primary *p, struct pslot *s)
{
	struct pflush *fl = s->fl;

	mark_rcvd(p, s);
	if (s->durable)
		return;
	s->durable = true;
	if (s->kind == SLOT_DATA) {
		s->w->frames_durable++;
		if (s->w->resync && p->rs_frames)
			p->rs_frames--;
		maybe_finish(s->w);
	} else if (s->kind == SLOT_FLUSH && fl) {
		s->fl = NULL;
		if (fl->setgen)
			setgen_done(p, fl->setgen);
		else
			xm_nbd_done(fl->req, 0, NULL);
		free(fl);
	}
}

static void rtt_sample(struct xm_primary *p, __u64 r)
{
	__u64 var;

	if (!p->min_rtt || r < p->min_rtt)
		p->min_rtt = r;
	if (!p->srtt) {
		p->srtt = r;
		p->rttvar = r / 2;
	} else {
		__u64 diff = p->srtt > r ? p->srtt - r : r - p->srtt;

		p->rttvar = (3 * p->rttvar + diff) / 4;
		p->srtt = (7 * p->srtt + r) / 8;
	}
	var = 4 * p->rttvar > RTO_SLACK_NS ? 4 * p->rttvar : RTO_SLACK_NS;
	p->rto = p->srtt + var;
	if (p->rto < RTO_MIN_NS)
		p->rto = RTO_MIN_NS;
	if (p->rto > RTO_MAX_NS)
		p->rto = RTO_MAX_NS;
	p->rto_base = p->rto;
}

static void retransmit(struct xm_primary *p, __u64 seq, __u64 now, bool fast)
{
	struct pslot *s = slot(p, seq);

	if (transmit(p, seq, now))
		return; /* counted in tx_ring_full; the RTO tries again */
	s->retransmitted = true;
	if (fast) {
		s->rack_retx = true;
		ctr(p)->tx_retrans_fast++;
	} else {
		ctr(p)->tx_retrans_rto++;
	}
}

/* What one ack tells about frames not known to be received before: for RTT and RACK. */
struct ack_news {
	__u64 newest_tx; /* latest send time among those sent only once */
	__u64 sample;	 /* RTT of the most recently sent one that was never retransmitted */
	__u64 sample_sent;
};

static void note_received(struct xm_primary *p, struct pslot *s, struct ack_news *n, __u64 now)
{
	if (s->rcvd || s->durable || s->kind == SLOT_EMPTY)
		return;
	/* Only frames sent once say when they left: an ack for a retransmitted frame may stem from
	 * its first copy, and its new send time would make everything sent before it look lost. */
	if (s->retransmitted)
		return;
	if (s->first_tx_ns > n->newest_tx)
		n->newest_tx = s->first_tx_ns;
	if (s->first_tx_ns > n->sample_sent) {
		n->sample_sent = s->first_tx_ns;
		n->sample = now - s->first_tx_ns;
	}
}

static void ack_one(struct xm_primary *p, __u64 seq, bool rcvd_only, struct ack_news *n, __u64 now)
{
	struct pslot *s = slot(p, seq);

	note_received(p, s, n, now);
	if (rcvd_only)
		mark_rcvd(p, s);
	else
		mark_durable(p, s);
}

/*
 * Applies cum + SACK from an ACK (durable, or received with XM_F_RCVD) or from PING/PONG
 * (durable, no SACK).  Loss detection and RTT use the received information: a frame the
 * secondary has accepted is never lost, however long its disk takes (§5.4, §5.5, §6.1).
 */
static void on_ack_info(struct xm_primary *p, __u64 cum, __u64 sack, bool has_sack, bool rcvd_only,
			__u32 credit, __u64 now)
{
	struct ack_news n = {0};
	__u64 seq;
	int i;

	if (cum > p->snd_nxt) {
		ctr(p)->rx_ack_invalid++;
		violation(p, "ack for unsent frames", now);
		return;
	}
	if (has_sack && sack && cum + 1 + 63 - __builtin_clzll(sack) >= p->snd_nxt) {
		ctr(p)->rx_ack_invalid++;
		violation(p, "selective ack for unsent frames", now);
		return;
	}
	if (cum < p->snd_una && !rcvd_only)
		ctr(p)->rx_ack_stale++;
	if (cum + credit > p->right_edge)
		p->right_edge = cum + credit;
	for (seq = p->snd_una; seq < cum; seq++)
		ack_one(p, seq, rcvd_only, &n, now);
	for (i = 0; has_sack && i < 64; i++) {
		seq = cum + 1 + (__u64)i;
		if ((sack >> i & 1) && seq >= p->snd_una)
			ack_one(p, seq, rcvd_only, &n, now);
	}
	if (!rcvd_only && cum > p->snd_una) {
		for (seq = p->snd_una; seq < cum; seq++)
			slot(p, seq)->kind = SLOT_EMPTY;
		p->snd_una = cum;
		p->rto = p->rto_base; /* backoff ends when the window moves */
		arm_rto(p, now);
	}
	if (n.sample)
		rtt_sample(p, n.sample);
	/* RACK (§5.5): a frame sent well before one that arrived, and not arrived itself, is lost.
	 */
	if (n.newest_tx) {
		/* RFC 8985's min_RTT/4: a window of srtt/4 spans more frames than the 64 a SACK
		 * reports, and a hole would then wait for the RTO. */
		__u64 reo = p->min_rtt / 4 > RTO_SLACK_NS ? p->min_rtt / 4 : RTO_SLACK_NS;

		for (seq = p->snd_una; seq < p->snd_nxt; seq++) {
			struct pslot *s = slot(p, seq);

			if (!s->rcvd && !s->durable && !s->rack_retx &&
			    s->last_tx_ns + reo < n.newest_tx)
				retransmit(p, seq, now, true);
		}
	}
}

static void on_flush_ack(struct xm_primary *p, const struct xm_frame *f, __u64 now)
{
	struct pslot *s;

	if (f->arg0 < p->snd_una || f->arg0 >= p->snd_nxt) {
		if (f->arg0 >= p->snd_nxt) {
			ctr(p)->rx_ack_invalid++;
			violation(p, "FLUSH_ACK for an unsent FLUSH", now);
		} else {
			ctr(p)->rx_dup_flush_ack++;
		}
		return;
	}
	s = slot(p, f->arg0);
	if (s->kind != SLOT_FLUSH) {
		ctr(p)->rx_ack_invalid++;
		violation(p, "FLUSH_ACK for a DATA frame", now);
		return;
	}
	if (s->durable) {
		ctr(p)->rx_dup_flush_ack++;
		return;
	}
	mark_durable(p, s);
}

/* ---- resync (docs/resync.md §4) ---- */

static __u64 csum_req_len(const struct xm_primary *p)
{
	__u64 len = (__u64)(p->max_payload / 4) * XM_CSUM_BLOCK, region = p->m->bm.block;

	if (len > CSUM_MAX)
		len = CSUM_MAX;
	/* Whole regions per request, so a region is judged on one answer. */
	return len >= region ? len / region * region : 0;
}

static void csum_begin(struct xm_primary *p, bool verify, bool mark, __u64 now)
{
	struct csum_job *cj = &p->cj;
	__u32 i;

	for (i = 0; i < CSUM_OPS; i++)
		if (cj->ops[i].used)
			return; /* an old request's read is still in flight; tick retries */
	cj->active = true;
	cj->finished = false;
	cj->verify = verify;
	cj->mark = mark;
	cj->cursor = 0;
	cj->end = p->export_size;
	cj->req_len = csum_req_len(p);
	cj->bytes_done = cj->regions_differ = cj->regions_equal = cj->skipped = 0;
	cj->ndiff = 0;
	cj->retry_head = cj->retry_len = 0;
	cj->started_ns = now;
	cj->finished_ns = 0;
}

static void csum_abort(struct xm_primary *p)
{
	struct csum_job *cj = &p->cj;
	__u32 i;

	if (!cj->active)
		return;
	cj->active = false;
	cj->finished = false;
	cj->finished_ns = xm_now_ns();
	/* Reads in flight finish into their buffers; the op is freed when they complete. */
	for (i = 0; i < CSUM_OPS; i++)
		if (!cj->ops[i].reading)
			cj->ops[i].used = false;
}

static void csum_retry(struct xm_primary *p, __u64 off, __u32 len, __u32 tries)
{
	struct csum_job *cj = &p->cj;
	struct csum_retry *r;

	if (tries >= CSUM_TRIES || cj->retry_len == CSUM_RETRY_QUEUE) {
		cj->skipped += (len + p->m->bm.block - 1) / p->m->bm.block;
		return;
	}
	r = &cj->retry[(cj->retry_head + cj->retry_len++) % CSUM_RETRY_QUEUE];
	/* Busy regions stay busy until the sweep clears their bits: look again a while later. */
	r->due_ns = xm_now_ns() + CSUM_RETRY_DELAY_NS;
	r->off = off;
	r->len = len;
	r->tries = tries;
}

/*
 * Whether a write may change the block while its two checksums are taken.  Verify asks the intent
 * bit (set from before a write is issued until the sweep after both disks have it).  The sync
 * pass marked every region out of sync, so intent says nothing there; a write in the active set
 * does (a write that starts and ends in between only makes the sides look different, which costs
 * a resend, never a wrong "equal").
 */
static bool block_busy(struct xm_primary *p, __u64 off)
{
	struct xm_list *pos, *tmp;

	if (p->cj.verify)
		return xm_bitmap_test_intent(&p->m->bm, off >> p->m->bm.shift);
	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		const struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (off < w->off + w->len && w->off < off + XM_CSUM_BLOCK)
			return true;
	}
	return false;
}

static void csum_send(struct xm_primary *p, struct csum_op *op, __u64 now)
{
	struct xm_frame f = {
		.type = XM_T_CSUMREQ, .session = p->session, .arg0 = op->off, .arg1 = op->len};

	if (!xm_env_send(p->env, &f, NULL, 0, 0))
		ctr(p)->tx_csumreq++;
	op->sent_ns = now;
}

/* Both sides' checksums of one request are in: judge each region it covers. */
static void csum_compare(struct xm_primary *p, struct csum_op *op)
{
	struct csum_job *cj = &p->cj;
	__u32 per = p->m->bm.block / XM_CSUM_BLOCK, nblocks = op->len / XM_CSUM_BLOCK, b, r;

	if (!per)
		per = 1;
	for (r = 0; r < nblocks; r += per) {
		__u64 off = op->off + (__u64)r * XM_CSUM_BLOCK;
		__u32 len = (nblocks - r < per ? nblocks - r : per) * XM_CSUM_BLOCK;
		bool busy = false, differ = false;

		for (b = r; b < r + len / XM_CSUM_BLOCK; b++) {
			busy |= (op->busy[b / 64] >> (b % 64) & 1) ||
				block_busy(p, op->off + (__u64)b * XM_CSUM_BLOCK);
			differ |= op->local[b] != op->remote[b];
		}
		if (busy) {
			/* A write in flight: the sides may differ for a moment.  The sync pass
			 * leaves the region out of sync; verify looks again later. */
			if (cj->verify)
				csum_retry(p, off, len, op->tries + 1);
			continue;
		}
		cj->bytes_done += len;
		if (!differ) {
			cj->regions_equal++;
			if (!cj->verify)
				xm_bitmap_clear_oos(&p->m->bm, off >> p->m->bm.shift,
						    (off >> p->m->bm.shift) + 1);
			continue;
		}
		cj->regions_differ++;
		if (cj->ndiff < sizeof(cj->first_diff) / sizeof(cj->first_diff[0]))
			cj->first_diff[cj->ndiff++] = off;
		if (cj->mark)
			xm_bitmap_mark_oos(&p->m->bm, off, len);
	}
	op->used = false;
}

static void on_csum_local(struct xm_io *io, int res, __u32 flags)
{
	struct csum_op *op = xm_container_of(io, struct csum_op, io);
	struct xm_primary *p = op->p;
	__u32 i;

	op->reading = false;
	if (!p->cj.active || op->gen != p->gen) {
		op->used = false;
		return;
	}
	if (res != (int)op->len) {
		ctr(p)->local_wr_errors++;
		op->used = false;
		csum_retry(p, op->off, op->len, op->tries + 1);
		return;
	}
	for (i = 0; i < op->len / XM_CSUM_BLOCK; i++)
		op->local[i] = xm_crc32c(0, op->buf + (size_t)i * XM_CSUM_BLOCK, XM_CSUM_BLOCK);
	op->have_local = true;
	if (op->have_remote)
		csum_compare(p, op);
}

static void on_csum(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp,
		    __u32 n, __u32 hdr_off)
{
	struct csum_job *cj = &p->cj;
	__u32 i, k;

	for (i = 0; i < CSUM_OPS; i++) {
		struct csum_op *op = &cj->ops[i];

		if (!op->used || op->have_remote || op->off != f->arg0 || op->len != f->arg1)
			continue;
		if (f->payload_len != op->len / XM_CSUM_BLOCK * 4) {
			ctr(p)->rx_bad_len++;
			return;
		}
		xm_spans_copy(sp, n, hdr_off + f->payload_off, f->payload_len, op->remote);
		for (k = 0; k < op->len / XM_CSUM_BLOCK; k++)
			op->remote[k] = be32toh(op->remote[k]);
		op->have_remote = true;
		if (op->have_local)
			csum_compare(p, op);
		return;
	}
	ctr(p)->rx_unexpected++; /* a late answer to a request asked again */
}

/* Keeps up to CSUM_OPS requests in flight; re-asks lost ones. */
static void csum_pump(struct xm_primary *p, __u64 now)
{
	struct csum_job *cj = &p->cj;
	struct io_uring_sqe *sqe;
	__u32 i, b;
	bool idle = true;

	if (!cj->active)
		return;
	for (i = 0; i < CSUM_OPS; i++) {
		struct csum_op *op = &cj->ops[i];

		if (op->used) {
			idle = false;
			if (!op->have_remote && now - op->sent_ns >= CSUM_RETRY_NS) {
				if (++op->tries >= CSUM_TRIES) {
					cj->skipped += op->len / p->m->bm.block;
					if (!op->reading)
						op->used = false;
					continue;
				}
				csum_send(p, op, now);
			}
			continue;
		}
		if (cj->retry_len && cj->retry[cj->retry_head].due_ns <= now) {
			struct csum_retry *r = &cj->retry[cj->retry_head];

			cj->retry_head = (cj->retry_head + 1) % CSUM_RETRY_QUEUE;
			cj->retry_len--;
			op->off = r->off;
			op->len = r->len;
			op->tries = r->tries;
		} else if (cj->cursor < cj->end) {
			op->off = cj->cursor;
			op->len = (__u32)(cj->end - cj->cursor < cj->req_len ? cj->end - cj->cursor
									     : cj->req_len);
			op->tries = 0;
			cj->cursor += op->len;
		} else {
			continue;
		}
		if (!op->buf && posix_memalign((void **)&op->buf, 4096, CSUM_MAX)) {
			csum_retry(p, op->off, op->len, op->tries);
			continue;
		}
		idle = false;
		op->p = p;
		op->used = true;
		op->have_local = op->have_remote = false;
		op->gen = p->gen;
		memset(op->busy, 0, sizeof(op->busy));
		for (b = 0; b < op->len / XM_CSUM_BLOCK; b++)
			if (block_busy(p, op->off + (__u64)b * XM_CSUM_BLOCK))
				op->busy[b / 64] |= 1ull << (b % 64);
		op->io.fn = on_csum_local;
		sqe = xm_loop_sqe(p->env->loop, &op->io);
		if (!sqe) {
			op->used = false;
			continue;
		}
		io_uring_prep_read(sqe, p->env->disk->fd, op->buf, op->len, op->off);
		op->reading = true;
		csum_send(p, op, now);
	}
	if (idle && !cj->retry_len && cj->cursor >= cj->end) {
		cj->active = false;
		cj->finished = true;
		cj->finished_ns = now;
		pr_info("%s: %s finished: %llu region(s) differ, %llu equal, %llu skipped",
			p->env->cfg->dev, cj->verify ? "verify" : "checksum sync",
			(unsigned long long)cj->regions_differ,
			(unsigned long long)cj->regions_equal, (unsigned long long)cj->skipped);
	}
}

/* Starts an online verify (mark: set differing regions out of sync); returns the answer line. */
static const char *start_verify(struct xm_primary *p, bool mark)
{
	if (p->state != P_CONNECTED)
		return "error: no peer connected";
	if (p->cj.active)
		return "error: a checksum pass is already running";
	if (!csum_req_len(p))
		return "error: the bitmap block is larger than a checksum request can cover";
	csum_begin(p, true, mark, xm_now_ns());
	if (!p->cj.active)
		return "error: the previous pass is still finishing; try again";
	pr_info("%s: verify started%s", p->env->cfg->dev,
		mark ? " (differences get resynced)" : "");
	return "ok: verify started";
}

/* BITMAP: a slice of the peer's bitmap, ORed into ours (docs/resync.md §4.1). */
static void on_bitmap(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp,
		      __u32 n, __u32 hdr_off, __u64 now)
{
	__u64 words[XM_MAX_FRAME / 8], i, nw = f->payload_len / 8;

	if (p->phase != PH_BITMAP_XFER || f->arg0 != p->bm_next_word) {
		ctr(p)->rx_unexpected++;
		return;
	}
	if (!nw || f->payload_len % 8 || nw > sizeof(words) / 8 || !f->arg1 ||
	    f->arg0 + nw > (f->arg1 + 63) / 64 ||
	    (p->bm_words && p->bm_words != (f->arg1 + 63) / 64)) {
		ctr(p)->rx_bad_len++;
		return;
	}
	if (!p->bm_words)
		p->bm_words = (f->arg1 + 63) / 64;
	xm_spans_copy(sp, n, hdr_off + f->payload_off, f->payload_len, words);
	for (i = 0; i < nw; i++)
		words[i] = be64toh(words[i]);
	xm_bitmap_merge_peer(&p->m->bm, p->peer_block, f->arg1, f->arg0, words, nw);
	p->bm_next_word += nw;
	p->bm_due = now;
	if (p->bm_next_word >= p->bm_words) {
		pr_info("%s: peer bitmap merged: %llu region(s) out of sync", p->env->cfg->dev,
			(unsigned long long)p->m->bm.oos_count);
		p->phase = PH_RESYNC;
	}
}

static void rate_reset(struct xm_primary *p, __u64 now)
{
	p->rs_start_bytes = p->rs_done_bytes;
	p->rs_start_ns = now;
	p->rate_ns = now;
	p->rate_bytes = p->rs_done_bytes;
	p->rate_bps = 0;
}

/* HELLO_ACK accepted: what the data needs before the pair is in sync. */
static void session_start(struct xm_primary *p, const struct xm_hello_gen *g, __u64 now)
{
	struct xm_meta *m = p->m;

	xm_gen_from_wire(g, &p->peer_gen);
	p->decision = g->decision < XM_SYNC_MAX ? g->decision : XM_SYNC_FULL;
	p->peer_block = be32toh(g->bitmap_block);
	p->synced = false;
	p->rs_cursor = 0;
	p->bm_next_word = p->bm_words = 0;
	p->bm_due = now;
	p->last_sweep_ns = now;
	memcpy(m->sb.peer_uuid, p->peer_uuid, sizeof(m->sb.peer_uuid));
	rate_reset(p, now);
	p->phase = PH_RESYNC;
	switch (p->decision) {
	case XM_SYNC_NONE:
		if (!m->bm.oos_count) {
			p->synced = true;
			p->phase = PH_IN_SYNC;
			if (m->sb.bitmap_gen) {
				m->sb.bitmap_gen = 0;
				m->sb_dirty = true;
			}
		}
		break;
	case XM_SYNC_FULL:
		if (p->env->cfg->initial_sync == 's' && !p->peer_gen.current_gen) {
			pr_info("%s: initial sync skipped (--initial-sync skip)", p->env->cfg->dev);
			break;
		}
		xm_bitmap_mark_all_oos(&m->bm);
		if (p->env->cfg->initial_sync == 'c' && !p->peer_gen.current_gen &&
		    csum_req_len(p)) {
			/* Every region is out of sync until its checksums prove otherwise. */
			csum_begin(p, false, false, now);
			p->phase = PH_CHECKSUM;
		}
		break;
	default:
		if (p->peer_gen.dirty_bits && p->peer_block >= XM_BITMAP_MIN_BLOCK &&
		    p->peer_block <= XM_BITMAP_MAX_BLOCK && !(p->peer_block & (p->peer_block - 1)))
			p->phase = PH_BITMAP_XFER;
		else if (p->peer_gen.dirty_bits)
			xm_bitmap_mark_all_oos(&m->bm); /* unusable granularity: everything */
	}
	xm_meta_flush_start(m);
}

static void setgen_done(struct xm_primary *p, __u64 gen)
{
	struct xm_meta *m = p->m;

	if (m->sb.current_gen != gen)
		return; /* we rotated meanwhile (cannot happen while connected) */
	m->sb.bitmap_gen = 0;
	m->sb_dirty = true;
	xm_meta_flush_start(m);
	p->synced = true;
	p->phase = PH_IN_SYNC;
	p->last_rs_bytes = p->rs_done_bytes - p->rs_start_bytes;
	p->last_rs_ns = xm_now_ns() - p->rs_start_ns;
	pr_info("%s: peer in sync (generation %016llx), resynced %llu bytes in %.3f s",
		p->env->cfg->dev, (unsigned long long)gen, (unsigned long long)p->last_rs_bytes,
		p->last_rs_ns / 1e9);
}

static bool resync_tokens(struct xm_primary *p, __u64 len, __u64 now)
{
	__u64 rate = (__u64)p->env->cfg->resync_mib << 20, burst = 4 * RESYNC_CHUNK;

	if (!rate)
		return true;
	p->rs_tokens += (now - p->rs_refill_ns) * rate / 1000000000ull;
	p->rs_refill_ns = now;
	if (p->rs_tokens > burst)
		p->rs_tokens = burst;
	if (p->rs_tokens < len)
		return false;
	p->rs_tokens -= len;
	return true;
}

/* Starts resync chunks over the out-of-sync bits, in disk order (docs/resync.md §4.2). */
static void resync_pump(struct xm_primary *p, __u64 now)
{
	struct xm_bitmap *bm = &p->m->bm;
	__u64 per = RESYNC_CHUNK >> bm->shift;

	if (!per)
		per = 1;
	while (p->rs_chunks < RESYNC_CHUNKS && !p->stopping) {
		__u64 bit = xm_bitmap_next_oos(bm, p->rs_cursor), end, off, len;
		struct pwrite *w;

		if (bit >= bm->nbits) {
			/* Bits set behind the cursor (lost chunks, new dirt) wait for a new pass.
			 */
			if (p->rs_cursor && !p->rs_chunks)
				p->rs_cursor = 0;
			return;
		}
		for (end = bit + 1;
		     end < bm->nbits && end - bit < per && xm_bitmap_test_oos(bm, end);)
			end++;
		off = bit << bm->shift;
		len = (end << bm->shift) < p->export_size ? (end << bm->shift) - off
		      : p->export_size > off		  ? p->export_size - off
							  : 0;
		if (!len || off % p->block || len % p->block) {
			/* Past the export (the last region of an odd-sized disk): nothing to send.
			 */
			xm_bitmap_clear_oos(bm, bit, end);
			p->rs_cursor = end;
			continue;
		}
		if (!resync_tokens(p, len, now))
			return;
		w = calloc(1, sizeof(*w));
		if (!w || posix_memalign((void **)&w->buf, 4096, len)) {
			free(w);
			return;
		}
		p->rs_cursor = end;
		w->p = p;
		w->resync = true;
		w->off = off;
		w->len = (__u32)len;
		w->bit_first = bit;
		w->bit_end = end;
		xm_list_init(&w->node);
		xm_list_init(&w->send_node);
		xm_list_init(&w->meta_node);
		p->rs_chunks++;
		if (blocked_by(&p->active, NULL, w) || blocked_by(&p->waiting, NULL, w)) {
			ctr(p)->overlap_waits++;
			xm_list_add_tail(&p->waiting, &w->node);
			continue;
		}
		start_write(w);
	}
}

/* Lazy clearing: intent bits of regions both disks have (docs/resync.md §2 rule 3).  kick: start
 * the metadata flush that writes the cleared pages. */
/* Periodic sweeps (kick) keep the regions written in the last interval; the last one, on a clean
 * detach, keeps only what is in flight. */
static void sweep(struct xm_primary *p, bool kick)
{
	struct xm_range *busy = calloc(p->nactive + 1, sizeof(*busy));
	struct xm_list *pos, *tmp;
	__u32 n = 0;

	if (!busy)
		return;
	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (n < p->nactive) {
			busy[n].off = w->off;
			busy[n].len = w->len;
			n++;
		}
	}
	if (xm_bitmap_sweep(&p->m->bm, busy, n, kick) && kick)
		xm_meta_flush_start(p->m);
	free(busy);
}

/* Moves a connected session through its sync phases; sends SETGEN when the data is equal. */
static void sync_work(struct xm_primary *p, __u64 now)
{
	struct xm_meta *m = p->m;

	if (now - p->rate_ns >= RATE_SAMPLE_NS) {
		__u64 bps = (p->rs_done_bytes - p->rate_bytes) * 1000000000ull / (now - p->rate_ns);

		p->rate_bps = p->rate_bps ? (3 * p->rate_bps + bps) / 4 : bps;
		p->rate_ns = now;
		p->rate_bytes = p->rs_done_bytes;
	}
	csum_pump(p, now);
	switch (p->phase) {
	case PH_BITMAP_XFER:
		if (now >= p->bm_due) {
			struct xm_frame f = {
				.type = XM_T_BMREQ, .session = p->session, .arg0 = p->bm_next_word};

			if (!xm_env_send(p->env, &f, NULL, 0, 0))
				ctr(p)->tx_bmreq++;
			p->bm_due = now + BMREQ_RETRY_NS;
		}
		return;
	case PH_CHECKSUM:
		if (!p->cj.active)
			p->phase = PH_RESYNC;
		return;
	case PH_IN_SYNC:
		if (!m->bm.oos_count)
			break;
		p->synced = false; /* a write went out of sync: repair it */
		rate_reset(p, now);
		p->phase = PH_RESYNC;
		/* fall through */
	case PH_RESYNC:
		resync_pump(p, now);
		if (m->bm.oos_count || p->rs_chunks)
			break;
		/* Everything equal: the peer adopts our generation once it is all durable. */
		{
			struct pflush *fl = calloc(1, sizeof(*fl));

			if (!fl)
				break;
			fl->setgen = m->sb.current_gen;
			fl->gen = p->gen;
			xm_list_add_tail(&p->flushq, &fl->node);
			p->phase = PH_SETGEN;
		}
		break;
	default:
		break;
	}
	if (p->synced && now - p->last_sweep_ns >= SWEEP_NS) {
		p->last_sweep_ns = now;
		sweep(p, true);
	}
}

/* A metadata flush cycle finished: writes waiting for their bits go on, or fail. */
static void meta_flushed(struct xm_primary *p, int err)
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
			xm_list_del(&w->meta_node);
			w->in_meta_wait = false;
			w->local_done = true;
			w->local_err = err;
			lose_remote(w);
			maybe_finish(w);
			continue;
		}
		if (!intent_ready(p, w))
			continue;
		xm_list_del(&w->meta_node);
		w->in_meta_wait = false;
		issue_write(w);
	}
	xm_meta_flush_start(p->m);
}

static void primary_finish(void *r, __u64 why)
{
	struct xm_primary *p = r;
	struct xm_meta *m = p->m;

	if (p->state == P_CONNECTED) {
		xm_env_send_close(p->env, p->session, why);
		if (p->synced)
			sweep(p, false); /* written by the synchronous write below */
	}
	m->sb.flags &= ~XM_MF_PRIMARY_ACTIVE;
	m->sb.role = XM_ROLE_PRIMARY;
	m->sb_dirty = true;
	if (!m->flushing)
		xm_env_meta_sync(p->env);
}

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
		if (p->state != P_CONNECTED)
			snprintf(p->reason, sizeof(p->reason), "peer claims primary");
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
	p->last_rx_ns = now;
	if (f->type == XM_T_BITMAP) {
		on_bitmap(p, f, spans, nspans, hdr_off, now);
		return;
	}
	if (f->type == XM_T_CSUM) {
		on_csum(p, f, spans, nspans, hdr_off);
		return;
	}
	if (f->payload_len) {
		ctr(p)->rx_bad_len++;
		return;
	}
	switch (f->type) {
	case XM_T_CLOSE:
		ctr(p)->rx_close++;
		end_session(p,
			    f->arg0 == XM_CLOSE_PROMOTE ? "peer promoted itself" : "peer detached",
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
	__u64 seq = tag & ((1ull << TAG_SEQ_BITS) - 1);

	/* Protocol A completes on this: the first transmission has left the box (§6). */
	if (p->state != P_CONNECTED || (tag >> TAG_SEQ_BITS) != (p->gen & 0xffff) ||
	    seq < p->snd_una || seq >= p->snd_nxt)
		return;
	mark_sent(p, slot(p, seq));
}

static __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

static __u64 primary_tick(void *r, __u64 now)
{
	struct xm_primary *p = r;
	__u64 next = UINT64_MAX, timeout = (__u64)p->env->cfg->timeout_ms * NS_PER_MS;

	xm_meta_flush_start(p->m);
	if (p->state != P_CONNECTED) {
		if (!p->stopping && now >= p->hello_due)
			send_hello(p, now);
		return p->stopping ? next : p->hello_due;
	}
	if (now - p->last_rx_ns >= timeout) {
		ctr(p)->peer_timeouts++;
		end_session(p, "peer timeout", now);
		return now;
	}
	if (p->snd_una < p->snd_nxt && now - slot(p, p->snd_una)->first_tx_ns >= WRITE_STALL_NS) {
		ctr(p)->peer_stalls++;
		end_session(p, "peer stalled", now);
		return now;
	}
	if (p->rto_deadline && now >= p->rto_deadline) {
		__u64 seq;

		/* Only the oldest frame that is not known to be there (§5.4). */
		for (seq = p->snd_una; seq < p->snd_nxt; seq++)
			if (!slot(p, seq)->durable && !slot(p, seq)->rcvd)
				break;
		if (seq < p->snd_nxt)
			retransmit(p, seq, now, false);
		p->rto = min_u64(2 * p->rto, RTO_MAX_NS);
		arm_rto(p, now);
	}
	sync_work(p, now);
	pump(p, now);
	xm_env_heartbeat(p->env, p->session, 0, SEND_RING / 2, now);
	next = min_u64(next, p->last_rx_ns + timeout);
	next = min_u64(next, xm_heartbeat_next(p->env->hb));
	if (p->rto_deadline)
		next = min_u64(next, p->rto_deadline);
	/* More to send and room for it: come straight back after the completions. */
	if (p->snd_nxt < p->right_edge &&
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

static bool csum_reading(const struct xm_primary *p)
{
	__u32 i;

	for (i = 0; i < CSUM_OPS; i++)
		if (p->cj.ops[i].reading)
			return true;
	return false;
}

static bool primary_drained(const void *r, __u64 now)
{
	const struct xm_primary *p = r;

	/* A healthy pair drains its window in well under the limit (§4.1 detach). */
	return (!p->nactive && !p->m->flushing && !csum_reading(p)) ||
	       now - p->stop_ns >= DETACH_DRAIN_NS;
}

static void on_meta_flushed(struct xm_meta *m, int err, void *ctx)
{
	meta_flushed(ctx, err);
}

/* Before the first request: this box is a primary, and a crash from now on shows at restart. */
static int mark_active(struct xm_primary *p)
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
	return xm_env_meta_sync(p->env);
}

static void *primary_create(const struct xm_role_env *env)
{
	struct xm_primary *p = calloc(1, sizeof(*p));
	struct xm_nbd_config nc = {0};
	static const struct xm_nbd_ops ops = {.submit = on_nbd_request};
	int err;

	if (!p)
		return NULL;
	p->ring = calloc(SEND_RING, sizeof(*p->ring));
	if (!p->ring) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->env = env;
	p->m = env->meta;
	xm_list_init(&p->active);
	xm_list_init(&p->waiting);
	xm_list_init(&p->sendq);
	xm_list_init(&p->flushq);
	xm_list_init(&p->rsendq);
	xm_list_init(&p->intent_wait);
	if (mark_active(p)) {
		free(p->ring);
		free(p);
		errno = EIO;
		return NULL;
	}
	p->state = P_DISCONNECTED;
	snprintf(p->reason, sizeof(p->reason), "never connected");
	p->hello_due = xm_now_ns();
	if (env->cfg->nbd_socket[0])
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s", env->cfg->nbd_socket);
	else
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s/%s.sock", XM_RUN_DIR, env->cfg->dev);
	nc.unix_path = p->nbd_path;
	nc.tcp_port = env->cfg->nbd_tcp_port;
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
		xm_meta_set_loop(p->m, env->loop, NULL, NULL);
		free(p->ring);
		free(p);
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
	xm_meta_set_loop(p->m, p->env->loop, NULL, NULL);
	/* Writes still active after the drain limit stay allocated: the loop is gone, and their
	 * completions never arrive.  The process exits next. */
	free(p->ring);
	free(p);
}

static const char *state_name(const struct xm_primary *p)
{
	if (p->state != P_CONNECTED && p->state != P_REFUSED)
		return p->env->ctr->sessions ? "degraded" : "connecting";
	return pstate_names[p->state];
}

static __u64 oos_bytes(const struct xm_primary *p)
{
	const struct xm_bitmap *bm = &p->m->bm;
	__u64 bytes = bm->oos_count << bm->shift;

	return bytes < p->env->disk->size ? bytes : p->env->disk->size;
}

static const char *connection_name(const struct xm_primary *p)
{
	switch (p->state == P_REFUSED ? p->refusal : 0) {
	case 0:
		break;
	case XM_REFUSE_SPLIT_BRAIN:
		return "split-brain";
	case XM_REFUSE_PEER_NEWER:
		return "peer-newer";
	case XM_REFUSE_UNRELATED:
		return "unrelated";
	default:
		return "refused";
	}
	return p->state == P_CONNECTED ? "connected" : "connecting";
}

struct progress {
	__u64 done, left, rate;
	double percent, eta_s;
};

static void resync_progress(const struct xm_primary *p, struct progress *pr)
{
	pr->done = p->rs_done_bytes - p->rs_start_bytes;
	pr->left = oos_bytes(p);
	pr->rate = p->rate_bps;
	pr->percent = pr->done + pr->left ? 100.0 * pr->done / (pr->done + pr->left) : 100.0;
	pr->eta_s = pr->rate ? (double)pr->left / pr->rate : -1;
}

static void primary_status_json(const void *r, struct xm_json *j)
{
	const struct xm_primary *p = r;
	const struct xm_counters *c = p->env->ctr;
	const struct csum_job *cj = &p->cj;
	__u64 now = xm_now_ns();
	struct progress pr;
	__u32 i;

	resync_progress(p, &pr);
	xm_json_open(j, "replication", '{');
	xm_json_str(j, "state", state_name(p));
	xm_json_str(j, "connection", connection_name(p));
	xm_json_str(j, "sync", phase_names[p->phase]);
	xm_json_str(j, "decision",
		    p->state == P_CONNECTED ? xm_sync_decision_name(p->decision) : "");
	xm_json_str(j, "disk", xm_disk_state_name(p->m->sb.disk_state));
	xm_json_str(j, "peer_disk",
		    p->state != P_CONNECTED ? "DUnknown"
		    : p->synced		    ? "UpToDate"
					    : "Inconsistent");
	xm_json_bool(j, "degraded", p->state != P_CONNECTED);
	xm_json_str(j, "reason", p->reason);
	xm_json_u64(j, "session", p->session);
	xm_json_str(j, "protocol", p->state == P_CONNECTED ? (char[]){p->running, 0} : "");
	xm_json_str(j, "requested_protocol", (char[]){p->env->cfg->protocol, 0});
	xm_json_u64(j, "block_size", p->block);
	xm_json_u64(j, "max_payload", p->max_payload);
	xm_json_u64(j, "payload_off", p->payload_off);
	xm_json_u64(j, "window", p->window);
	xm_json_u64(j, "export_size", p->export_size);
	xm_json_u64(j, "in_flight", p->snd_nxt - p->snd_una);
	xm_json_u64(j, "active_writes", p->nactive);
	xm_json_u64(j, "out_of_sync_bytes", oos_bytes(p));
	xm_json_double(j, "srtt_us", p->srtt / 1e3);
	xm_json_double(j, "rto_us", p->rto / 1e3);
	xm_json_u64(j, "degraded_writes", c->writes_degraded);
	xm_json_open(j, "resync", '{');
	xm_json_bool(j, "active",
		     p->phase == PH_RESYNC || p->phase == PH_BITMAP_XFER ||
			     p->phase == PH_CHECKSUM || p->phase == PH_SETGEN);
	xm_json_u64(j, "done_bytes", pr.done);
	xm_json_u64(j, "remaining_bytes", pr.left);
	xm_json_double(j, "percent", pr.percent);
	xm_json_u64(j, "rate_bytes_per_s", pr.rate);
	xm_json_double(j, "eta_s", pr.eta_s);
	xm_json_u64(j, "rate_limit_mib", p->env->cfg->resync_mib);
	xm_json_u64(j, "chunks_active", p->rs_chunks);
	/* The last completed sync, from the handshake to the peer's adoption of our generation. */
	xm_json_open(j, "last", '{');
	xm_json_u64(j, "bytes", p->last_rs_bytes);
	xm_json_double(j, "elapsed_s", p->last_rs_ns / 1e9);
	xm_json_u64(j, "rate_bytes_per_s",
		    p->last_rs_ns ? (__u64)(p->last_rs_bytes * 1e9 / p->last_rs_ns) : 0);
	xm_json_close(j, '}');
	xm_json_close(j, '}');
	xm_json_open(j, "verify", '{');
	xm_json_str(j, "kind", cj->verify ? "verify" : "checksum_sync");
	xm_json_bool(j, "running", cj->active);
	xm_json_bool(j, "finished", cj->finished);
	xm_json_bool(j, "mark", cj->mark);
	xm_json_u64(j, "checked_bytes", cj->bytes_done);
	xm_json_u64(j, "total_bytes", cj->end);
	xm_json_double(j, "percent", cj->end ? 100.0 * cj->bytes_done / cj->end : 0);
	xm_json_u64(j, "regions_differ", cj->regions_differ);
	xm_json_u64(j, "regions_equal", cj->regions_equal);
	xm_json_u64(j, "regions_skipped", cj->skipped);
	xm_json_open(j, "first_differing_offsets", '[');
	for (i = 0; i < cj->ndiff; i++)
		xm_json_u64(j, NULL, cj->first_diff[i]);
	xm_json_close(j, ']');
	xm_json_u64(j, "elapsed_ms",
		    cj->started_ns ? ((cj->finished_ns ? cj->finished_ns : now) - cj->started_ns) /
					     NS_PER_MS
				   : 0);
	xm_json_close(j, '}');
	xm_json_open(j, "last_failure", '{');
	xm_json_str(j, "reason", p->fail_reason);
	xm_json_double(j, "silence_ms", p->fail_silence_ns / 1e6);
	xm_json_u64(j, "ago_ms", p->fail_at_ns ? (now - p->fail_at_ns) / NS_PER_MS : 0);
	xm_json_close(j, '}');
	xm_json_close(j, '}');
	xm_json_open(j, "nbd", '{');
	xm_json_str(j, "socket", p->nbd_path);
	xm_json_u64(j, "tcp_port", p->env->cfg->nbd_tcp_port);
	if (p->nbd) {
		const struct xm_nbd_counters *n = xm_nbd_server_counters(p->nbd);

		xm_json_u64(j, "connections", n->active);
		xm_json_u64(j, "connections_total", n->connections);
		xm_json_u64(j, "requests", n->requests);
		xm_json_u64(j, "bad_requests", n->bad_requests);
		xm_json_u64(j, "error_replies", n->replies_err);
		xm_json_u64(j, "bytes_written", n->bytes_written);
		xm_json_u64(j, "bytes_read", n->bytes_read);
	}
	xm_json_close(j, '}');
}

static void write_sync_text(const struct xm_primary *p, FILE *out)
{
	struct progress pr;
	char bar[41];
	int i, fill;

	resync_progress(p, &pr);
	if (p->state == P_CONNECTED && p->phase != PH_IN_SYNC) {
		fill = (int)(pr.percent * 40 / 100);
		for (i = 0; i < 40; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[40] = 0;
		fprintf(out, "  sync     %s [%s] %5.1f%%, %.1f MiB/s, %llu bytes left",
			phase_names[p->phase], bar, pr.percent, pr.rate / 1048576.0,
			(unsigned long long)pr.left);
		if (pr.eta_s >= 0)
			fprintf(out, ", eta %.1f s", pr.eta_s);
		fprintf(out, "\n");
	} else if (p->state == P_CONNECTED) {
		fprintf(out, "  sync     in sync\n");
	} else if (pr.left) {
		fprintf(out, "  sync     %s, %llu bytes out of sync\n", connection_name(p),
			(unsigned long long)pr.left);
	}
	if (p->cj.active)
		fprintf(out, "  verify   %.1f%% checked, %llu region(s) differ\n",
			p->cj.end ? 100.0 * p->cj.bytes_done / p->cj.end : 0.0,
			(unsigned long long)p->cj.regions_differ);
}

static void primary_status_text(const void *r, FILE *out)
{
	const struct xm_primary *p = r;

	fprintf(out, "  mirror   %s", state_name(p));
	if (p->state == P_CONNECTED)
		fprintf(out, ", protocol %c, block %u, %u bytes/frame, window %u, srtt %.1f us",
			p->running, p->block, p->max_payload, p->window, p->srtt / 1e3);
	if (p->reason[0])
		fprintf(out, " (%s)", p->reason);
	fprintf(out, "\n");
	write_sync_text(p, out);
	fprintf(out, "  nbd      %s", p->nbd_path);
	if (p->env->cfg->nbd_tcp_port)
		fprintf(out, ", 127.0.0.1:%u", p->env->cfg->nbd_tcp_port);
	fprintf(out, "\n");
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
	.status_json = primary_status_json,
	.status_text = primary_status_text,
};
