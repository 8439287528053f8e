// SPDX-License-Identifier: GPL-2.0
/* Checksum passes over the disk (docs/resync.md §5): the initial sync that sends only regions
 * whose CRC32C differ, and online verify, which compares both disks while the mirror is live. */
#include <stdlib.h>
#include <string.h>

#include "primary/internal.h"
#include "util/clock.h"
#include "util/log.h"

#define CSUM_RETRY_NS	    (50 * NS_PER_MS)
#define CSUM_TRIES	    20u
#define CSUM_RETRY_DELAY_NS (SWEEP_NS / 4) /* a busy region is looked at again this much later */

__u64 csum_req_len(const struct xm_primary *p)
{
	__u64 len = (__u64)(p->max_payload / 4) * XM_CSUM_BLOCK, region = p->m->bm.block;

	if (len > XM_CSUM_MAX_LEN)
		len = XM_CSUM_MAX_LEN;
	/* Whole regions per request, so a region is judged on one answer. */
	return len >= region ? len / region * region : 0;
}

void csum_begin(struct xm_primary *p, bool verify, bool mark, __u64 now)
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

void csum_abort(struct xm_primary *p)
{
	struct csum_job *cj = &p->cj;
	__u32 i;

	if (!cj->active)
		return;
	cj->active = false;
	cj->finished = false;
	cj->finished_ns = xm_now_ns();
	if (cj->verify)
		xm_env_note(p->env, XM_NOTE_VERIFY_END);
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

void on_csum(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
	     __u32 hdr_off)
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
void csum_pump(struct xm_primary *p, __u64 now)
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
		if (!op->buf && posix_memalign((void **)&op->buf, 4096, XM_CSUM_MAX_LEN)) {
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
		if (cj->verify)
			xm_env_note(p->env, XM_NOTE_VERIFY_END);
	}
}

/* Starts an online verify (mark: set differing regions out of sync); returns the answer line. */
const char *start_verify(struct xm_primary *p, bool mark)
{
	if (p->state != P_CONNECTED)
		return "error: no peer connected";
	if (p->cj.active)
		return "error: a checksum pass is already running";
	if (p->env->health->state != XM_DH_ATTACHED)
		return "error: the local disk is not attached in full (xdpmirror status: disk)";
	if (!csum_req_len(p))
		return "error: the bitmap block is larger than a checksum request can cover";
	csum_begin(p, true, mark, xm_now_ns());
	if (!p->cj.active)
		return "error: the previous pass is still finishing; try again";
	pr_info("%s: verify started%s", p->env->cfg->dev,
		mark ? " (differences get resynced)" : "");
	return "ok: verify started";
}

bool csum_reading(const struct xm_primary *p)
{
	__u32 i;

	for (i = 0; i < CSUM_OPS; i++)
		if (p->cj.ops[i].reading)
			return true;
	return false;
}
