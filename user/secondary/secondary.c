// SPDX-License-Identifier: GPL-2.0
/* The secondary: applies DATA frames to its disk and acknowledges them once durable. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "repl/gen.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

#define NS_PER_MS 1000000ull
#define WINDOW	  1024u /* per-seq states, and staging buffers (§10.2); a power of two */
#define CSUM_OPS  8u	/* checksum reads in flight (docs/resync.md §5) */
#define CSUM_MAX  (1u << 20)

enum sstate { S_LISTEN, S_CONNECTED, S_DRAINING, S_FAILED };

static const char *const sstate_names[] = {
	[S_LISTEN] = "listening",
	[S_CONNECTED] = "connected",
	[S_DRAINING] = "draining",
	[S_FAILED] = "failed",
};

enum slot_state { SL_EMPTY, SL_WRITING, SL_DURABLE, SL_FLUSH_WAIT, SL_SETGEN_WAIT };

struct sslot {
	enum slot_state state;
	struct xm_secondary *s;
	__u64 seq;
	__u32 gen; /* the session generation that submitted the write */
	struct xm_io io;
	struct xm_commit_item ci;
	struct xm_xsk *x;
	struct xm_rx_pkt held; /* zero-copy: the UMEM chunks the write reads from */
	bool holds, fua;
	__u8 *staging; /* bounce buffer, max_payload bytes */
	struct iovec iov[XM_MAX_SPANS];
	struct sslot *merged_next; /* the next slot written by the same merged write */
	__u64 setgen;		   /* SL_SETGEN_WAIT: the generation to adopt */
};

/* Frames for consecutive disk offsets that arrive in one RX batch become one writev: the disk
 * sees a 256 KiB write, not 32 writes of 8 KiB.  On a virtual disk each request costs a VM exit,
 * and per-request costs capped a stream of 8 KiB writes at ~80k IOPS = ~650 MB/s. */
#define MERGE_IOV   128
#define MERGE_BYTES (1u << 20)
struct wmerge {
	struct sslot *first, *last;
	__u64 off, end;
	__u32 iovcnt;
	struct iovec iov[MERGE_IOV];
};

/* One CSUMREQ being answered: a read of the range, then a CRC per XM_CSUM_BLOCK. */
struct csum_op {
	struct xm_io io;
	struct xm_secondary *s;
	__u64 off;
	__u32 len, gen;
	bool busy;
	__u8 *buf;
};

struct xm_secondary {
	const struct xm_role_env *env;
	enum sstate state;
	char reason[128];
	__u32 session, gen;
	__u64 cumack;
	char protocol;
	__u32 block, max_payload, payload_align, max_payload_local;
	__u64 export_size;
	__u8 peer_uuid[16];
	const char *layout;
	bool zero_copy_possible;
	struct sslot ring[WINDOW];
	struct wmerge merge; /* frames gathered in this RX batch, not submitted yet */
	__u32 io_inflight;   /* frames whose write is pending or submitted, across sessions */
	__u64 last_rx_ns;
	bool ack_pending, rcvd_pending;
	/* The latest HELLO seen while draining, answered once the old I/O is done (§4.2). */
	bool hello_saved;
	struct xm_frame saved_hello;
	struct xm_hello2 saved_hello_body;
	bool stopping;
	/* generations (docs/resync.md §3) */
	struct xm_hello_gen ack_gen; /* what the session's HELLO_ACK said */
	__u8 decision;		     /* enum xm_sync_decision of the session, or the refusal */
	__u8 refused_decision;	     /* the last refusing decision, for status; 0 none */
	__u8 last_refusal;	     /* enum xm_refusal of the last HELLO refused, logged once */
	bool discard_local;	     /* resolve --discard-local is waiting for a handshake */
	struct csum_op csum[CSUM_OPS];
	__u32 csum_inflight;
};

static struct xm_counters *ctr(struct xm_secondary *s)
{
	return s->env->ctr;
}

static struct sslot *slot(struct xm_secondary *s, __u64 seq)
{
	return &s->ring[seq & (WINDOW - 1)];
}

static __u64 right_edge(const struct xm_secondary *s)
{
	/* Every slot has its own staging buffer, so the whole ring is always free to promise. */
	return s->cumack + WINDOW;
}

static void send_ack(struct xm_secondary *s, bool rcvd)
{
	struct xm_frame f = {.type = XM_T_ACK, .session = s->session};
	__u64 cum = s->cumack, sack = 0;
	int i;

	if (rcvd) {
		/* Protocol B: accepted frames, durable or not (§6.1). */
		while (cum < right_edge(s) && slot(s, cum)->state != SL_EMPTY &&
		       slot(s, cum)->seq == cum)
			cum++;
		f.flags = XM_F_RCVD;
	}
	for (i = 0; i < 64; i++) {
		__u64 seq = cum + 1 + (__u64)i;
		struct sslot *sl = slot(s, seq);

		if (seq >= right_edge(s))
			break;
		if (sl->seq != seq)
			continue;
		if (rcvd ? sl->state != SL_EMPTY : sl->state == SL_DURABLE)
			sack |= 1ull << i;
	}
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

static void fail_disk(struct xm_secondary *s, int err);

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

/* cumack moves over durable writes; a FLUSH completes when everything before it is durable. */
static void advance(struct xm_secondary *s)
{
	for (;;) {
		struct sslot *sl = slot(s, s->cumack);

		if (sl->seq != s->cumack)
			break;
		if (sl->state == SL_FLUSH_WAIT) {
			/* Every earlier write is durable: its commit already covered it (§7.5). */
			send_flush_ack(s, s->cumack);
		} else if (sl->state == SL_SETGEN_WAIT) {
			/* Resync complete: this disk now holds the primary's data (resync.md §4.3).
			 */
			if (adopt_generation(s, sl->setgen))
				break;
			send_flush_ack(s, s->cumack);
		} else if (sl->state != SL_DURABLE) {
			break;
		}
		sl->state = SL_EMPTY;
		s->cumack++;
		s->ack_pending = true;
	}
}

static void fail_disk(struct xm_secondary *s, int err)
{
	if (s->state == S_FAILED)
		return;
	ctr(s)->wr_errors++;
	snprintf(s->reason, sizeof(s->reason), "disk failed: %s", strerror(-err));
	pr_warn("%s: %s; no more acks", s->env->cfg->dev, s->reason);
	s->state = S_FAILED;
}

static void release_slot_io(struct sslot *sl)
{
	if (sl->holds) {
		xm_xsk_rx_release(sl->x, &sl->held);
		sl->holds = false;
	}
}

static void on_durable(struct xm_commit_item *it, int err)
{
	struct sslot *sl = xm_container_of(it, struct sslot, ci);
	struct xm_secondary *s = sl->s;

	s->io_inflight--;
	if (err) {
		fail_disk(s, err);
		return;
	}
	if (sl->gen != s->gen || s->state != S_CONNECTED)
		return; /* an old session's write: done, never acked */
	sl->state = SL_DURABLE;
	s->ack_pending = true;
	advance(s);
}

static __u32 slot_len(const struct sslot *sl)
{
	__u32 len = 0;
	int i;

	for (i = 0; i < XM_MAX_SPANS && sl->iov[i].iov_len; i++)
		len += (__u32)sl->iov[i].iov_len;
	return len;
}

/* The CQE of a merged write: every frame in it completes with the same result. */
static void on_write(struct xm_io *io, int res, __u32 flags)
{
	struct sslot *sl = xm_container_of(io, struct sslot, io), *next;
	struct xm_secondary *s = sl->s;
	__u64 len = 0, now = xm_now_ns();

	for (next = sl; next; next = next->merged_next)
		len += slot_len(next);
	if (res >= 0 && (__u64)res != len)
		res = -EIO;
	for (; sl; sl = next) {
		next = sl->merged_next;
		sl->merged_next = NULL;
		/* The UMEM chunks go back to the fill ring only now that the disk has the data. */
		release_slot_io(sl);
		xm_commit_completed(s->env->commit, &sl->ci, res, sl->fua, now);
	}
}

/* Submits what the batch gathered; called when the next frame does not continue it and at the
 * end of every RX batch. */
static void secondary_rx_done(void *r)
{
	struct xm_secondary *s = r;

	struct wmerge *m = &s->merge;
	struct io_uring_sqe *sqe;

	if (!m->first)
		return;
	m->first->io.fn = on_write;
	sqe = xm_loop_sqe(s->env->loop, &m->first->io);
	if (!sqe) {
		/* As if the write failed: the frames give their UMEM chunks back and fail the disk.
		 */
		on_write(&m->first->io, -EIO, 0);
		m->first = m->last = NULL;
		m->iovcnt = 0;
		return;
	}
	if (m->iovcnt == 1)
		io_uring_prep_write(sqe, s->env->disk->fd, m->iov[0].iov_base,
				    (unsigned int)m->iov[0].iov_len, m->off);
	else
		io_uring_prep_writev(sqe, s->env->disk->fd, m->iov, m->iovcnt, m->off);
	sqe->rw_flags = xm_commit_rw_flags(s->env->commit);
	/* The kernel copies the iovec array at submission: submit before m->iov is reused. */
	io_uring_submit(&s->env->loop->ring);
	ctr(s)->wr_submits++;
	m->first = m->last = NULL;
	m->iovcnt = 0;
}

static void merge_add(struct xm_secondary *s, struct sslot *sl, __u64 off, int iovcnt)
{
	struct wmerge *m = &s->merge;
	__u32 len = slot_len(sl);
	int i;

	if (m->first && (off != m->end || m->iovcnt + (__u32)iovcnt > MERGE_IOV ||
			 m->end - m->off + len > MERGE_BYTES))
		secondary_rx_done(s);
	if (!m->first) {
		m->first = sl;
		m->off = m->end = off;
	} else {
		m->last->merged_next = sl;
	}
	m->last = sl;
	sl->merged_next = NULL;
	for (i = 0; i < iovcnt; i++)
		m->iov[m->iovcnt++] = sl->iov[i];
	m->end += len;
	xm_commit_submitted(s->env->commit);
	s->io_inflight++;
}

static bool zero_copy_ok(const struct xm_secondary *s, const struct xm_span *pl, __u32 n, __u64 off)
{
	const struct xm_disk *disk = s->env->disk;
	__u32 i;

	if (off % disk->dio_offset_align)
		return false;
	for (i = 0; i < n; i++)
		if ((uintptr_t)pl[i].data % disk->dio_mem_align ||
		    pl[i].len % disk->dio_offset_align)
			return false;
	return true;
}

static void apply_data(struct xm_secondary *s, struct sslot *sl, const struct xm_frame *f,
		       struct xm_xsk *x, struct xm_rx_pkt *pkt, const struct xm_span *pl, __u32 n)
{
	bool aligned = zero_copy_ok(s, pl, n, f->arg0);
	int iovcnt;
	__u32 i;

	memset(sl->iov, 0, sizeof(sl->iov));
	sl->holds = false;
	if (aligned && x->rx_held + n <= XM_XSK_RX_FRAMES / 2) {
		/* Zero-copy: the disk reads the payload where the NIC put it (§7.3). */
		for (i = 0; i < n; i++) {
			sl->iov[i].iov_base = (void *)pl[i].data;
			sl->iov[i].iov_len = pl[i].len;
		}
		iovcnt = (int)n;
		pkt->keep = true;
		sl->held = *pkt;
		sl->x = x;
		sl->holds = true;
		ctr(s)->wr_zero_copy++;
	} else {
		if (!aligned)
			ctr(s)->wr_bounce_misaligned++;
		sl->iov[0].iov_base = sl->staging;
		sl->iov[0].iov_len = xm_spans_copy(pl, n, 0, f->payload_len, sl->staging);
		iovcnt = 1;
		ctr(s)->wr_bounce++;
	}
	sl->state = SL_WRITING;
	sl->gen = s->gen;
	sl->fua = f->flags & XM_F_FUA;
	sl->ci.durable = on_durable;
	merge_add(s, sl, f->arg0, iovcnt);
	ctr(s)->rx_data++;
	ctr(s)->rx_data_bytes += f->payload_len;
}

static void end_session(struct xm_secondary *s, const char *why)
{
	if (s->state == S_CONNECTED)
		pr_info("%s: session %08x ended: %s", s->env->cfg->dev, s->session, why);
	snprintf(s->reason, sizeof(s->reason), "%s", why);
	s->gen++;
	s->ack_pending = s->rcvd_pending = false;
	if (s->state != S_FAILED)
		s->state =
			s->io_inflight || !xm_commit_idle(s->env->commit) ? S_DRAINING : S_LISTEN;
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
	struct xm_span pl[XM_MAX_SPANS];
	struct sslot *sl;
	__u32 np;

	if (f->seq < s->cumack) {
		ctr(s)->rx_dup_done++;
		if (f->type == XM_T_FLUSH || f->type == XM_T_SETGEN)
			send_flush_ack(s, f->seq);
		s->ack_pending = true;
		return;
	}
	if (f->seq >= right_edge(s)) {
		ctr(s)->rx_out_of_window++;
		return;
	}
	sl = slot(s, f->seq);
	if (sl->seq == f->seq && sl->state != SL_EMPTY) {
		if (sl->state == SL_DURABLE) {
			ctr(s)->rx_dup_done++;
			s->ack_pending = true;
		} else {
			ctr(s)->rx_dup_inflight++;
		}
		return;
	}
	if (f->type == XM_T_FLUSH || f->type == XM_T_SETGEN) {
		if (f->payload_len || (f->type == XM_T_SETGEN && !f->arg0)) {
			ctr(s)->rx_bad_len++;
			return;
		}
		ctr(s)->rx_flush++;
		sl->seq = f->seq;
		sl->state = f->type == XM_T_FLUSH ? SL_FLUSH_WAIT : SL_SETGEN_WAIT;
		sl->setgen = f->arg0;
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
	sl->seq = f->seq;
	if (f->flags & XM_F_RESYNC) {
		ctr(s)->rx_resync++;
		ctr(s)->rx_resync_bytes += f->payload_len;
	}
	apply_data(s, sl, f, x, pkt, pl, np);
	/* Received-acks drive the primary's loss detection in every protocol (§6.1). */
	s->rcvd_pending = true;
}

static __u8 check_hello(struct xm_secondary *s, const struct xm_frame *f, const struct xm_hello *h,
			__u32 *block, __u32 *maxp, __u64 *export_size)
{
	__u32 pblock = be32toh(h->block_size), lblock = s->env->disk->dio_offset_align;
	__u16 pmin = be16toh(h->proto_min), pmax = be16toh(h->proto_max);
	__u16 vmax = pmax < XM_PROTO_MAX ? pmax : XM_PROTO_MAX;

	if (s->state == S_FAILED)
		return XM_REFUSE_DISK_FAILED;
	if (vmax < pmin || vmax < XM_PROTO_MIN)
		return XM_REFUSE_VERSION;
	if (h->role != XM_ROLE_PRIMARY)
		return XM_REFUSE_ROLE;
	if (!pblock || pblock & (pblock - 1) || pblock < 512 || pblock > 65536 ||
	    (h->repl_protocol != 'A' && h->repl_protocol != 'B' && h->repl_protocol != 'C'))
		return XM_REFUSE_PARAM;
	*block = pblock > lblock ? pblock : lblock;
	*maxp = be32toh(h->max_payload) < s->max_payload_local ? be32toh(h->max_payload)
							       : s->max_payload_local;
	*maxp = *maxp / *block * *block;
	if (*maxp < *block)
		return XM_REFUSE_BLOCK_SIZE;
	*export_size = be64toh(h->disk_size) / *block * *block;
	if (s->env->disk->size < *export_size)
		return XM_REFUSE_DISK_SIZE;
	return XM_REFUSE_NONE;
}

static void fill_hello(struct xm_secondary *s, struct xm_hello2 *h, char protocol)
{
	struct xm_gen_info g;

	memset(h, 0, sizeof(*h));
	memcpy(h->h.node_uuid, s->env->node_uuid, sizeof(h->h.node_uuid));
	h->h.disk_size = htobe64(s->env->disk->size);
	h->h.block_size = htobe32(s->env->disk->dio_offset_align);
	h->h.max_payload = htobe32(s->max_payload_local);
	h->h.window = htobe32(WINDOW);
	h->h.payload_align = htobe16((__u16)s->payload_align);
	h->h.proto_min = htobe16(XM_PROTO_MIN);
	h->h.proto_max = htobe16(XM_PROTO_MAX);
	h->h.role = XM_ROLE_SECONDARY;
	h->h.repl_protocol = (__u8)protocol;
	xm_gen_of_meta(s->env->meta, &g);
	xm_gen_to_wire(&g, s->env->meta->sb.bitmap_block, 0, 0, &h->g);
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
		refusal = f->payload_len < sizeof(*h)
				  ? XM_REFUSE_VERSION
				  : check_hello(s, f, &h->h, &block, &maxp, &size);
		if (!refusal)
			refusal = decide(s, h, &ack_gen);
		if (refusal) {
			ctr(s)->rx_bad_hello += refusal == XM_REFUSE_PARAM;
			refuse_reason(s, refusal, h);
		} else {
			s->session = (__u32)f->arg0;
			s->last_refusal = XM_REFUSE_NONE;
			s->gen++;
			s->cumack = f->seq;
			s->block = block;
			s->max_payload = maxp;
			s->export_size = size;
			s->ack_gen = ack_gen;
			/* We send received-acks, so B runs as B (§6.1). */
			s->protocol = (char)h->h.repl_protocol;
			memcpy(s->peer_uuid, h->h.node_uuid, sizeof(s->peer_uuid));
			for (__u32 i = 0; i < WINDOW; i++) {
				s->ring[i].state = SL_EMPTY;
				s->ring[i].seq = UINT64_MAX;
			}
			s->state = S_CONNECTED;
			s->reason[0] = 0;
			s->last_rx_ns = xm_now_ns();
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
	ack.arg0 = refusal ? 0 : s->cumack;
	ack.arg1 = refusal;
	ack.credit = refusal ? 0 : (__u32)(right_edge(s) - s->cumack);
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

/* BMREQ: a slice of this box's out-of-sync bitmap (docs/resync.md §4.1). */
static void on_bmreq(struct xm_secondary *s, const struct xm_frame *f)
{
	const struct xm_bitmap *bm = &s->env->meta->bm;
	__u64 words[XM_MAX_FRAME / 8];
	__u64 n = s->max_payload / 8, i;
	struct xm_frame a = {
		.type = XM_T_BITMAP, .session = s->session, .arg0 = f->arg0, .arg1 = bm->nbits};
	struct xm_span span = {.data = (const __u8 *)words};

	if (f->payload_len || f->arg0 >= bm->nwords) {
		ctr(s)->rx_bad_len++;
		return;
	}
	if (n > sizeof(words) / 8)
		n = sizeof(words) / 8;
	n = xm_bitmap_get_oos_words(bm, f->arg0, words, n);
	for (i = 0; i < n; i++)
		words[i] = htobe64(words[i]);
	span.len = (__u32)(n * 8);
	a.payload_len = span.len;
	ctr(s)->rx_bmreq++;
	xm_env_send(s->env, &a, &span, 1, 0);
}

static void on_csum_read(struct xm_io *io, int res, __u32 flags)
{
	struct csum_op *op = xm_container_of(io, struct csum_op, io);
	struct xm_secondary *s = op->s;
	__u32 sums[CSUM_MAX / XM_CSUM_BLOCK], i, n = op->len / XM_CSUM_BLOCK;
	struct xm_frame a = {
		.type = XM_T_CSUM, .session = s->session, .arg0 = op->off, .arg1 = op->len};
	struct xm_span span = {.data = (const __u8 *)sums, .len = n * 4};

	op->busy = false;
	s->csum_inflight--;
	if (op->gen != s->gen || s->state != S_CONNECTED)
		return;
	if (res != (int)op->len) {
		fail_disk(s, res < 0 ? res : -EIO);
		return;
	}
	for (i = 0; i < n; i++)
		sums[i] = htobe32(xm_crc32c(0, op->buf + (size_t)i * XM_CSUM_BLOCK, XM_CSUM_BLOCK));
	a.payload_len = span.len;
	xm_env_send(s->env, &a, &span, 1, 0);
}

/* CSUMREQ: read the range, answer a CRC32C per 4 KiB (docs/resync.md §5). */
static void on_csumreq(struct xm_secondary *s, const struct xm_frame *f)
{
	struct csum_op *op = NULL;
	struct io_uring_sqe *sqe;
	__u32 i;

	if (f->payload_len || !f->arg1 || f->arg1 > CSUM_MAX || f->arg1 % XM_CSUM_BLOCK ||
	    f->arg0 % XM_CSUM_BLOCK || f->arg1 / XM_CSUM_BLOCK * 4 > s->max_payload ||
	    f->arg0 > s->export_size || f->arg1 > s->export_size - f->arg0) {
		ctr(s)->rx_bad_len++;
		return;
	}
	for (i = 0; i < CSUM_OPS && !op; i++)
		if (!s->csum[i].busy)
			op = &s->csum[i];
	if (!op)
		return; /* the primary asks again */
	if (!op->buf && posix_memalign((void **)&op->buf, 4096, CSUM_MAX))
		return;
	op->s = s;
	op->off = f->arg0;
	op->len = (__u32)f->arg1;
	op->gen = s->gen;
	op->io.fn = on_csum_read;
	sqe = xm_loop_sqe(s->env->loop, &op->io);
	if (!sqe)
		return;
	io_uring_prep_read(sqe, s->env->disk->fd, op->buf, op->len, op->off);
	op->busy = true;
	s->csum_inflight++;
	ctr(s)->rx_csumreq++;
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
	s->last_rx_ns = xm_now_ns();
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
		xm_env_answer_ping(s->env, f, s->cumack, (__u32)(right_edge(s) - s->cumack));
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
	__u64 timeout = (__u64)s->env->cfg->timeout_ms * NS_PER_MS, next = UINT64_MAX;

	if (s->state == S_DRAINING && !s->io_inflight && xm_commit_idle(s->env->commit)) {
		s->state = S_LISTEN;
		if (s->hello_saved) {
			s->hello_saved = false;
			answer_hello(s, &s->saved_hello, &s->saved_hello_body);
		}
	}
	if (s->state != S_CONNECTED)
		return next;
	if (now - s->last_rx_ns >= timeout && !s->stopping) {
		ctr(s)->peer_timeouts++;
		end_session(s, "peer timeout");
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
	xm_env_heartbeat(s->env, s->session, s->cumack, (__u32)(right_edge(s) - s->cumack), now);
	next = s->last_rx_ns + timeout;
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

	return !s->io_inflight && !s->csum_inflight && xm_commit_idle(s->env->commit);
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
	__u32 i, block = env->disk->dio_offset_align, mtu_payload;

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
	for (i = 0; i < WINDOW; i++) {
		s->ring[i].s = s;
		s->ring[i].seq = UINT64_MAX;
		if (posix_memalign((void **)&s->ring[i].staging, 4096,
				   s->max_payload_local ? s->max_payload_local : 4096)) {
			secondary_destroy(s);
			errno = ENOMEM;
			return NULL;
		}
	}
	return s;
}

static void secondary_destroy(void *r)
{
	struct xm_secondary *s = r;
	__u32 i;

	if (!s)
		return;
	for (i = 0; i < WINDOW; i++)
		free(s->ring[i].staging);
	for (i = 0; i < CSUM_OPS; i++)
		free(s->csum[i].buf);
	free(s);
}

__u32 xm_secondary_headroom(__u32 mtu)
{
	/* Layout B: data at chunk + 512, payload at frame offset 512 → chunk + 1024, and every
	 * following buffer at chunk + 512.  Layout A: data at chunk + 448, payload at + 64. */
	return mtu >= 4096 + 512 ? 256 : 192;
}

static void secondary_status_json(const void *r, struct xm_json *j)
{
	const struct xm_secondary *s = r;
	char proto[2] = {s->protocol, 0};

	xm_json_open(j, "replication", '{');
	xm_json_str(j, "state", sstate_names[s->state]);
	xm_json_str(j, "reason", s->reason);
	xm_json_u64(j, "session", s->session);
	xm_json_str(j, "protocol", s->state == S_CONNECTED ? proto : "");
	xm_json_u64(j, "block_size", s->block);
	xm_json_u64(j, "max_payload", s->max_payload);
	xm_json_u64(j, "window", WINDOW);
	xm_json_u64(j, "export_size", s->export_size);
	xm_json_u64(j, "cumack", s->cumack);
	xm_json_u64(j, "writes_in_flight", s->io_inflight);
	xm_json_str(j, "connection",
		    s->refused_decision && s->state != S_CONNECTED
			    ? xm_sync_decision_name(s->refused_decision)
			    : sstate_names[s->state]);
	xm_json_str(j, "decision", xm_sync_decision_name(s->decision));
	xm_json_str(j, "sync",
		    s->state != S_CONNECTED			      ? "none"
		    : s->env->meta->sb.disk_state == XM_DISK_UPTODATE ? "in_sync"
								      : "resync_target");
	xm_json_bool(j, "discard_local_pending", s->discard_local);
	xm_json_close(j, '}');
	xm_json_open(j, "writer", '{');
	xm_json_str(j, "path", s->zero_copy_possible ? "zero-copy" : "bounce");
	xm_json_str(j, "layout", s->layout);
	xm_json_u64(j, "payload_align", s->payload_align);
	xm_json_close(j, '}');
}

static void secondary_status_text(const void *r, FILE *out)
{
	const struct xm_secondary *s = r;

	fprintf(out, "  mirror   %s", sstate_names[s->state]);
	if (s->state == S_CONNECTED)
		fprintf(out, ", protocol %c, block %u, %u bytes/frame, window %u", s->protocol,
			s->block, s->max_payload, WINDOW);
	if (s->reason[0])
		fprintf(out, " (%s)", s->reason);
	if (s->state == S_CONNECTED && s->env->meta->sb.disk_state != XM_DISK_UPTODATE)
		fprintf(out, ", resync target (%s)", xm_sync_decision_name(s->decision));
	fprintf(out, "\n  writer   %s (UMEM layout %s), %llu zero-copy / %llu bounced writes\n",
		s->zero_copy_possible ? "zero-copy" : "bounce", s->layout,
		(unsigned long long)s->env->ctr->wr_zero_copy,
		(unsigned long long)s->env->ctr->wr_bounce);
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
	.status_json = secondary_status_json,
	.status_text = secondary_status_text,
};
