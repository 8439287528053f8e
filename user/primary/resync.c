// SPDX-License-Identifier: GPL-2.0
/* What a connected session does about the data until both disks are equal: the decision of the
 * handshake, the peer's bitmap, resync chunks, SETGEN, and the lazy sweep (docs/resync.md). */
#include <stdlib.h>
#include <string.h>

#include "primary/internal.h"
#include "util/clock.h"
#include "util/log.h"

#define BMREQ_RETRY_NS (20 * NS_PER_MS)
#define RATE_SAMPLE_NS (250 * NS_PER_MS)

/* Frames resync may have in flight: 3/4 of the window while application writes are active, so
 * they always find room; the whole window while only resync runs. */
__u64 rs_share(const struct xm_primary *p)
{
	return p->nactive > p->rs_chunks ? p->window / 4 * 3 : p->window;
}

/* The peer's suspect regions are in our bitmap now (or there were none): the flag may go; the
 * next metadata flush writes the bits before the superblock that drops it (resync.md §8a). */
static void suspect_settled(struct xm_primary *p)
{
	if (!(p->m->sb.flags & XM_MF_PEER_SUSPECT) || !p->suspect_session)
		return;
	p->m->sb.flags &= ~XM_MF_PEER_SUSPECT;
	p->m->sb_dirty = true;
}

/* BITMAP: a slice of the peer's bitmap, ORed into ours (docs/resync.md §4.1). */
void on_bitmap(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
	       __u32 hdr_off, __u64 now)
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
		suspect_settled(p);
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
void session_start(struct xm_primary *p, const struct xm_hello_gen *g, __u64 now)
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
	/* Our HELLO carried XM_HG_PEER_SUSPECT: the peer's bits hold what it wrote then. */
	p->suspect_session = m->sb.flags & XM_MF_PEER_SUSPECT;
	if (p->phase != PH_BITMAP_XFER)
		suspect_settled(p);
	xm_meta_flush_start(m);
}

void setgen_done(struct xm_primary *p, __u64 gen)
{
	struct xm_meta *m = p->m;
	__u64 now = xm_now_ns();

	if (m->sb.current_gen != gen)
		return; /* we rotated meanwhile (cannot happen while connected) */
	m->sb.bitmap_gen = 0;
	m->sb_dirty = true;
	xm_meta_flush_start(m);
	p->synced = true;
	p->phase = PH_IN_SYNC;
	p->last_rs_bytes = p->rs_done_bytes - p->rs_start_bytes;
	p->last_rs_ns = now - p->rs_start_ns;
	xm_env_note(p->env, XM_NOTE_SYNC_DONE);
	/* Regions a failing write left behind (pass-on) come back one by one: in one session, one
	 * line per IN_SYNC_LOG_NS instead of a line per failed write. */
	p->in_sync_quiet++;
	if (p->in_sync_log_ns && p->in_sync_log_session == p->session &&
	    now - p->in_sync_log_ns < IN_SYNC_LOG_NS)
		return;
	pr_info("%s: peer in sync (generation %016llx), resynced %llu bytes in %.3f s%s",
		p->env->cfg->dev, (unsigned long long)gen, (unsigned long long)p->last_rs_bytes,
		p->last_rs_ns / 1e9,
		p->in_sync_quiet > 1 ? " (and earlier resyncs not logged)" : "");
	p->in_sync_log_ns = now;
	p->in_sync_log_session = p->session;
	p->in_sync_quiet = 0;
}

static bool resync_tokens(struct xm_primary *p, __u64 len, __u64 now)
{
	__u64 rate = (__u64)p->env->cfg->resync_mib << 20, burst = 4 * RESYNC_CHUNK;

	if (!rate)
		return true;
	p->rs_tokens += (now - p->rs_refill_ns) * rate / NS_PER_SEC;
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
		w->off = off;
		w->len = (__u32)len;
		w->bit_first = bit;
		w->bit_end = end;
		admit_chunk(p, w);
	}
}

/* Lazy clearing: intent bits of regions both disks have (docs/resync.md §2 rule 3).  kick: start
 * the metadata flush that writes the cleared pages. */
void sweep(struct xm_primary *p, bool kick)
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
	/* A periodic sweep keeps the activity log's hot extents and clears what it evicted; the
	 * last one, on a clean end, keeps only what is in flight. */
	if (kick)
		xm_actlog_adapt(&p->al, xm_now_ns());
	if (xm_bitmap_sweep(&p->m->bm, busy, n, kick ? p->al.hot : NULL) && kick)
		xm_meta_flush_start(p->m);
	free(busy);
}

/* Moves a connected session through its sync phases; sends SETGEN when the data is equal. */
void sync_work(struct xm_primary *p, __u64 now)
{
	struct xm_meta *m = p->m;

	if (now - p->rate_ns >= RATE_SAMPLE_NS) {
		__u64 bps = (p->rs_done_bytes - p->rate_bytes) * NS_PER_SEC / (now - p->rate_ns);

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
		/* Never from a disk that lacks regions: the peer's copy may be the newer (§15.3).
		 */
		if (p->env->health->state != XM_DH_ATTACHED)
			break;
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
