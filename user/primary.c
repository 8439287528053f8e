// SPDX-License-Identifier: GPL-2.0
/* The primary: NBD export, local writes, and the reliable sender of DATA and FLUSH frames. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>

#include "daemon.h"
#include "list.h"
#include "log.h"
#include "nbd.h"
#include "primary.h"
#include "runstate.h"

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

enum pstate { P_DISCONNECTED, P_HELLO_SENT, P_CONNECTED, P_REFUSED };

static const char *const pstate_names[] = {
	[P_DISCONNECTED] = "connecting",
	[P_HELLO_SENT] = "connecting",
	[P_CONNECTED] = "connected",
	[P_REFUSED] = "refused",
};

/* One admitted NBD WRITE or WRITE_ZEROES: in the active set until done on both sides (§8). */
struct pwrite {
	struct xm_list node;	  /* in active or waiting */
	struct xm_list send_node; /* in sendq while frames remain unsent */
	struct xm_primary *p;
	struct xm_nbd_req *req; /* NULL once replied */
	__u64 off;
	__u32 len;
	__u8 *buf; /* the payload, owned by the write */
	__u32 gen; /* session generation its frames belong to */
	__u32 nframes, next_frame;
	__u32 frames_sent, frames_rcvd, frames_durable;
	bool fua, remote_lost, local_done, local_durable, in_sendq;
	int local_err;
	struct xm_io io;
	struct xm_commit_item ci;
};

struct pflush {
	struct xm_list node;
	struct xm_nbd_req *req;
	__u64 seq;
	__u32 gen;
};

enum slot_kind { SLOT_EMPTY, SLOT_DATA, SLOT_FLUSH };

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
	struct xm_daemon *d;
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
	struct xm_list active, waiting, sendq, flushq;
	__u32 nactive;
	__u64 dirty_bytes;
	__u64 stop_ns;
	bool stopping;
};

static struct xm_counters *ctr(struct xm_primary *p)
{
	return &p->d->ctr;
}

static struct pslot *slot(struct xm_primary *p, __u64 seq)
{
	return &p->ring[seq & (SEND_RING - 1)];
}

static void dirty_mark(struct xm_primary *p, __u64 off, __u32 len)
{
	/* Issue 4 keeps a bitmap; until then the count tells the operator the disks differ. */
	p->dirty_bytes += len;
}

static void intent_mark(struct xm_primary *p, __u64 off, __u32 len)
{
}

static void intent_clear(struct xm_primary *p, __u64 off, __u32 len)
{
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
	/* Replied, local write over, every frame durable or the range marked dirty. */
	if (!w->remote_lost)
		intent_clear(p, w->off, w->len);
	xm_list_del(&w->node);
	p->nactive--;
	free(w->buf);
	free(w);
	admit_waiting(p);
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
	xm_commit_completed(&p->d->commit, &w->ci, res, w->fua, xm_now_ns());
}

static void start_write(struct pwrite *w)
{
	struct xm_primary *p = w->p;
	struct io_uring_sqe *sqe;

	xm_list_add_tail(&p->active, &w->node);
	p->nactive++;
	intent_mark(p, w->off, w->len);
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
	sqe = xm_loop_sqe(&p->d->loop, &w->io);
	if (!sqe) {
		w->local_done = true;
		on_local_durable(&w->ci, -EIO);
		return;
	}
	io_uring_prep_write(sqe, p->d->disk.fd, w->buf, w->len, w->off);
	sqe->rw_flags = xm_commit_rw_flags(&p->d->commit);
	xm_commit_submitted(&p->d->commit);
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
	sqe = xm_loop_sqe(&p->d->loop, &r->io);
	if (!sqe) {
		on_local_read(&r->io, -EIO, 0);
		return;
	}
	io_uring_prep_read(sqe, p->d->disk.fd, r->buf, req->len, req->offset);
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
		f.flags = s->w->fua ? XM_F_FUA : 0;
		f.payload_off = (__u16)p->payload_off;
		f.payload_len = payload.len;
		f.arg0 = s->w->off + start;
		err = xm_daemon_send(p->d, &f, &payload, 1, tag);
	} else {
		f.type = XM_T_FLUSH;
		err = xm_daemon_send(p->d, &f, NULL, 0, tag);
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
	    (!xm_list_empty(&p->sendq) || !xm_list_empty(&p->flushq)))
		ctr(p)->window_full++;
}

/* ---- the session (§4) ---- */

static void end_session(struct xm_primary *p, const char *why, __u64 now)
{
	struct xm_list *pos, *tmp;
	__u64 seq;

	if (p->state == P_CONNECTED)
		pr_info("%s: session %08x ended: %s", p->d->cfg.dev, p->session, why);
	snprintf(p->reason, sizeof(p->reason), "%s", why);
	/* Unacked frames are forgotten; the remote copy of their ranges is unknown (§4.6). */
	for (seq = p->snd_una; seq < p->snd_nxt; seq++) {
		struct pslot *s = slot(p, seq);

		if (s->kind == SLOT_FLUSH && s->fl) {
			xm_nbd_done(s->fl->req, 0, NULL);
			free(s->fl);
		}
		s->kind = SLOT_EMPTY;
	}
	xm_list_for_each_safe(pos, tmp, &p->flushq)
	{
		struct pflush *fl = xm_container_of(pos, struct pflush, node);

		xm_list_del(&fl->node);
		xm_nbd_done(fl->req, 0, NULL);
		free(fl);
	}
	p->state = P_DISCONNECTED;
	p->gen++;
	p->snd_una = p->snd_nxt = p->right_edge = 0;
	p->rto_deadline = 0;
	p->hello_due = now;
	xm_list_for_each_safe(pos, tmp, &p->active)
	{
		struct pwrite *w = xm_container_of(pos, struct pwrite, node);

		if (w->frames_durable != w->nframes || w->in_sendq)
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

static void fill_hello(struct xm_primary *p, struct xm_hello *h)
{
	const struct xm_daemon *d = p->d;
	__u32 block = d->disk.dio_offset_align;

	memset(h, 0, sizeof(*h));
	memcpy(h->node_uuid, d->node_uuid, sizeof(h->node_uuid));
	h->disk_size = htobe64(d->disk.size);
	h->block_size = htobe32(block);
	h->max_payload = htobe32((d->nd.mtu - (__u32)sizeof(struct xm_hdr)) / block * block);
	h->window = htobe32(SEND_RING / 2);
	h->payload_align = htobe16(64);
	h->proto_min = htobe16(XM_PROTO_MIN);
	h->proto_max = htobe16(XM_PROTO_MAX);
	h->role = XM_ROLE_PRIMARY;
	h->repl_protocol = (__u8)d->cfg.protocol;
}

static void send_hello(struct xm_primary *p, __u64 now)
{
	struct xm_frame f = {.type = XM_T_HELLO, .seq = 1};
	struct xm_hello h;
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
	if (!xm_daemon_send(p->d, &f, &span, 1, 0)) {
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
	if (f->payload_len < sizeof(h)) {
		ctr(p)->rx_bad_hello++;
		return;
	}
	xm_spans_copy(sp, n, hdr_off + f->payload_off, sizeof(h), &h);
	if (f->arg1) {
		snprintf(p->reason, sizeof(p->reason), "refused by peer: %s",
			 refusal_text(f->arg1));
		pr_warn("%s: %s", p->d->cfg.dev, p->reason);
		p->state = P_REFUSED;
		p->hello_due = now + REFUSED_RETRY_NS;
		return;
	}
	/* Repeat the secondary's checks (§4.3): both sides must agree. */
	block = be32toh(h.block_size);
	if (block < p->d->disk.dio_offset_align)
		block = p->d->disk.dio_offset_align;
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
	mtu_payload = p->d->nd.mtu > p->payload_off ? p->d->nd.mtu - p->payload_off : 0;
	if (maxp > mtu_payload)
		maxp = mtu_payload;
	maxp = maxp / block * block;
	p->export_size = p->d->disk.size / block * block;
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
	ctr(p)->sessions++;
	pr_info("%s: session %08x connected: protocol %c, block %u, %u bytes per frame, window %u",
		p->d->cfg.dev, p->session, p->running, p->block, p->max_payload, p->window);
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
		maybe_finish(s->w);
	} else if (s->kind == SLOT_FLUSH && fl) {
		s->fl = NULL;
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

void xm_primary_rx(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *spans,
		   __u32 nspans, __u32 hdr_off)
{
	__u64 now = xm_now_ns();

	if (f->type == XM_T_HELLO) {
		/* Another primary (§4.1): refuse, change nothing. */
		struct xm_frame ack = {
			.type = XM_T_HELLO_ACK, .session = (__u32)f->arg0, .arg1 = XM_REFUSE_ROLE};
		struct xm_hello h;
		struct xm_span span = {.data = (const __u8 *)&h, .len = sizeof(h)};

		ctr(p)->rx_unexpected++;
		if (p->state != P_CONNECTED)
			snprintf(p->reason, sizeof(p->reason), "peer claims primary");
		fill_hello(p, &h);
		ack.payload_len = sizeof(h);
		xm_daemon_send(p->d, &ack, &span, 1, 0);
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
	if (f->payload_len) {
		ctr(p)->rx_bad_len++;
		return;
	}
	p->last_rx_ns = now;
	switch (f->type) {
	case XM_T_ACK:
		ctr(p)->rx_ack++;
		on_ack_info(p, f->arg0, f->arg1, true, f->flags & XM_F_RCVD, f->credit, now);
		break;
	case XM_T_FLUSH_ACK:
		on_flush_ack(p, f, now);
		break;
	case XM_T_PING:
		xm_daemon_answer_ping(p->d, f, 0, SEND_RING / 2);
		if (f->arg1)
			on_ack_info(p, f->arg1, 0, false, false, f->credit, now);
		break;
	case XM_T_PONG:
		xm_daemon_take_pong(p->d, f);
		if (f->arg1)
			on_ack_info(p, f->arg1, 0, false, false, f->credit, now);
		break;
	default:
		ctr(p)->rx_unexpected++;
	}
}

void xm_primary_tx_done(struct xm_primary *p, __u64 tag)
{
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

__u64 xm_primary_tick(struct xm_primary *p, __u64 now)
{
	__u64 next = UINT64_MAX, timeout = (__u64)p->d->cfg.timeout_ms * NS_PER_MS;

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
	pump(p, now);
	xm_daemon_heartbeat(p->d, p->session, 0, SEND_RING / 2, now);
	next = min_u64(next, p->last_rx_ns + timeout);
	next = min_u64(next, p->d->last_ping_ns + (__u64)p->d->cfg.ping_ms * NS_PER_MS);
	if (p->rto_deadline)
		next = min_u64(next, p->rto_deadline);
	/* More to send and room for it: come straight back after the completions. */
	if (p->snd_nxt < p->right_edge && (!xm_list_empty(&p->sendq) || !xm_list_empty(&p->flushq)))
		next = now;
	return next;
}

void xm_primary_stop(struct xm_primary *p)
{
	p->stopping = true;
	p->stop_ns = xm_now_ns();
	if (p->nbd) {
		xm_nbd_server_stop(p->nbd);
		p->nbd = NULL;
	}
}

bool xm_primary_drained(const struct xm_primary *p, __u64 now)
{
	/* A healthy pair drains its window in well under the limit (§4.1 detach). */
	return !p->nactive || now - p->stop_ns >= DETACH_DRAIN_NS;
}

struct xm_primary *xm_primary_create(struct xm_daemon *d)
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
	p->d = d;
	xm_list_init(&p->active);
	xm_list_init(&p->waiting);
	xm_list_init(&p->sendq);
	xm_list_init(&p->flushq);
	p->state = P_DISCONNECTED;
	snprintf(p->reason, sizeof(p->reason), "never connected");
	p->hello_due = xm_now_ns();
	if (d->cfg.nbd_socket[0])
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s", d->cfg.nbd_socket);
	else
		snprintf(p->nbd_path, sizeof(p->nbd_path), "%s/%s.sock", XM_RUN_DIR, d->cfg.dev);
	nc.unix_path = p->nbd_path;
	nc.tcp_port = d->cfg.nbd_tcp_port;
	nc.export_name = d->cfg.dev;
	nc.min_block = d->disk.dio_offset_align < 512 ? 512 : d->disk.dio_offset_align;
	nc.size = d->disk.size / nc.min_block * nc.min_block;
	nc.pref_block = 4096 > nc.min_block ? 4096 : nc.min_block;
	nc.max_block = NBD_MAX_REQUEST;
	p->nbd = xm_nbd_server_start(&d->loop, &nc, &ops, p);
	if (!p->nbd) {
		err = errno;
		pr_warn("attach '%s': cannot serve NBD on '%s': %s", d->cfg.dev, p->nbd_path,
			strerror(err));
		free(p->ring);
		free(p);
		errno = err;
		return NULL;
	}
	return p;
}

void xm_primary_destroy(struct xm_primary *p)
{
	if (!p)
		return;
	if (p->nbd)
		xm_nbd_server_stop(p->nbd);
	/* Writes still active after the drain limit stay allocated: the loop is gone, and their
	 * completions never arrive.  The process exits next. */
	free(p->ring);
	free(p);
}

static const char *state_name(const struct xm_primary *p)
{
	if (p->state != P_CONNECTED && p->state != P_REFUSED)
		return p->d->ctr.sessions ? "degraded" : "connecting";
	return pstate_names[p->state];
}

void xm_primary_write_status(const struct xm_primary *p, struct xm_json *j)
{
	const struct xm_counters *c = &p->d->ctr;

	xm_json_open(j, "replication", '{');
	xm_json_str(j, "state", state_name(p));
	xm_json_bool(j, "degraded", p->state != P_CONNECTED);
	xm_json_str(j, "reason", p->reason);
	xm_json_u64(j, "session", p->session);
	xm_json_str(j, "protocol", p->state == P_CONNECTED ? (char[]){p->running, 0} : "");
	xm_json_str(j, "requested_protocol", (char[]){p->d->cfg.protocol, 0});
	xm_json_u64(j, "block_size", p->block);
	xm_json_u64(j, "max_payload", p->max_payload);
	xm_json_u64(j, "payload_off", p->payload_off);
	xm_json_u64(j, "window", p->window);
	xm_json_u64(j, "export_size", p->export_size);
	xm_json_u64(j, "in_flight", p->snd_nxt - p->snd_una);
	xm_json_u64(j, "active_writes", p->nactive);
	xm_json_u64(j, "out_of_sync_bytes", p->dirty_bytes);
	xm_json_double(j, "srtt_us", p->srtt / 1e3);
	xm_json_double(j, "rto_us", p->rto / 1e3);
	xm_json_u64(j, "degraded_writes", c->writes_degraded);
	xm_json_close(j, '}');
	xm_json_open(j, "nbd", '{');
	xm_json_str(j, "socket", p->nbd_path);
	xm_json_u64(j, "tcp_port", p->d->cfg.nbd_tcp_port);
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

void xm_primary_write_status_text(const struct xm_primary *p, FILE *out)
{
	fprintf(out, "  mirror   %s", state_name(p));
	if (p->state == P_CONNECTED)
		fprintf(out, ", protocol %c, block %u, %u bytes/frame, window %u, srtt %.1f us",
			p->running, p->block, p->max_payload, p->window, p->srtt / 1e3);
	if (p->reason[0])
		fprintf(out, " (%s)", p->reason);
	fprintf(out, "\n");
	if (p->dirty_bytes)
		fprintf(out, "  sync     out of sync: %llu bytes (resync comes with issue 4)\n",
			(unsigned long long)p->dirty_bytes);
	fprintf(out, "  nbd      %s", p->nbd_path);
	if (p->d->cfg.nbd_tcp_port)
		fprintf(out, ", 127.0.0.1:%u", p->d->cfg.nbd_tcp_port);
	fprintf(out, "\n");
}
