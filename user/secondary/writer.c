// SPDX-License-Identifier: GPL-2.0
/* The secondary's writer: DATA frames to disk with io_uring, zero-copy from the AF_XDP chunks
 * where the layout allows, merged per RX batch, durable by RWF_DSYNC or group commit (§7). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secondary/internal.h"
#include "util/clock.h"

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
		fail_disk(s, err, "write");
		return;
	}
	if (sl->gen != s->gen || s->state != S_CONNECTED)
		return; /* an old session's write: done, never acked */
	xm_hist_record_since(&s->lat_write_durable, sl->rx_ns, xm_now_ns());
	frame_durable(s, sl->seq);
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
void writer_submit(struct xm_secondary *s)
{
	struct wmerge *m = &s->merge;
	struct io_uring_sqe *sqe;
	struct sslot *sl;
	int rw_flags;

	if (!m->first)
		return;
	/* One write, one decision for all its frames: alone it goes RWF_DSYNC (§7.2 rule 1). */
	rw_flags = xm_commit_rw_flags(s->env->commit);
	for (sl = m->first; sl; sl = sl->merged_next)
		xm_commit_submitted(s->env->commit, &sl->ci, rw_flags);
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
	sqe->rw_flags = rw_flags;
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
		writer_submit(s);
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

void writer_apply(struct xm_secondary *s, __u64 seq, const struct xm_frame *f, struct xm_xsk *x,
		  struct xm_rx_pkt *pkt, const struct xm_span *pl, __u32 n)
{
	struct sslot *sl = &s->ring[xm_receiver_index(&s->rcv, seq)];
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
	xm_receiver_take(&s->rcv, seq, XM_RS_WRITING);
	sl->seq = seq;
	sl->gen = s->gen;
	sl->fua = f->flags & XM_F_FUA;
	/* Resync DATA comes in bulk behind application writes: timing it would hide theirs. */
	sl->rx_ns = f->flags & XM_F_RESYNC ? 0 : xm_now_ns();
	sl->ci.durable = on_durable;
	merge_add(s, sl, f->arg0, iovcnt);
	ctr(s)->rx_data++;
	ctr(s)->rx_data_bytes += f->payload_len;
}

bool writer_idle(const struct xm_secondary *s)
{
	return !s->io_inflight && xm_commit_idle(s->env->commit);
}

int writer_init(struct xm_secondary *s)
{
	__u32 i;

	for (i = 0; i < WINDOW; i++) {
		s->ring[i].s = s;
		s->ring[i].seq = UINT64_MAX;
		if (posix_memalign((void **)&s->ring[i].staging, 4096,
				   s->max_payload_local ? s->max_payload_local : 4096))
			return -ENOMEM;
	}
	return 0;
}

void writer_free(struct xm_secondary *s)
{
	__u32 i;

	for (i = 0; i < WINDOW; i++)
		free(s->ring[i].staging);
}
