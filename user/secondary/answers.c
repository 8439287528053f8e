// SPDX-License-Identifier: GPL-2.0
/* What the primary asks of the secondary's disk besides writes: the out-of-sync bitmap and
 * checksums of ranges (docs/resync.md §4.1, §5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "secondary/internal.h"

/* BMREQ: a slice of this box's out-of-sync bitmap (docs/resync.md §4.1). */
void on_bmreq(struct xm_secondary *s, const struct xm_frame *f)
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
	struct disk_read *op = xm_container_of(io, struct disk_read, io);
	struct xm_secondary *s = op->s;
	__u32 sums[XM_CSUM_MAX_LEN / XM_CSUM_BLOCK], i, n = op->len / XM_CSUM_BLOCK;
	struct xm_frame a = {
		.type = XM_T_CSUM, .session = s->session, .arg0 = op->off, .arg1 = op->len};
	struct xm_span span = {.data = (const __u8 *)sums, .len = n * 4};

	op->busy = false;
	s->csum_inflight--;
	if (op->gen != s->gen || s->state != S_CONNECTED)
		return;
	if (res != (int)op->len) {
		fail_disk(s, res < 0 ? res : -EIO, "checksum read");
		return;
	}
	for (i = 0; i < n; i++)
		sums[i] = htobe32(xm_crc32c(0, op->buf + (size_t)i * XM_CSUM_BLOCK, XM_CSUM_BLOCK));
	a.payload_len = span.len;
	xm_env_send(s->env, &a, &span, 1, 0);
}

/* Starts a read of [off, off + len) into a free op of ops[n] (buffers of max bytes, made on first
 * use); fn gets the completion.  Returns false when none is free or the ring is full: the
 * primary asks again. */
static bool disk_read_start(struct xm_secondary *s, struct disk_read *ops, __u32 n, __u32 max,
			    __u64 off, __u32 len, void (*fn)(struct xm_io *, int, __u32))
{
	struct disk_read *op = NULL;
	struct io_uring_sqe *sqe;
	__u32 i;

	for (i = 0; i < n && !op; i++)
		if (!ops[i].busy)
			op = &ops[i];
	if (!op || (!op->buf && posix_memalign((void **)&op->buf, 4096, max)))
		return false;
	op->s = s;
	op->off = off;
	op->len = len;
	op->gen = s->gen;
	op->io.fn = fn;
	sqe = xm_loop_sqe(s->env->loop, &op->io);
	if (!sqe)
		return false;
	io_uring_prep_read(sqe, s->env->disk->fd, op->buf, op->len, op->off);
	op->busy = true;
	return true;
}

/* CSUMREQ: read the range, answer a CRC32C per 4 KiB (docs/resync.md §5). */
void on_csumreq(struct xm_secondary *s, const struct xm_frame *f)
{
	if (f->payload_len || !f->arg1 || f->arg1 > XM_CSUM_MAX_LEN || f->arg1 % XM_CSUM_BLOCK ||
	    f->arg0 % XM_CSUM_BLOCK || f->arg1 / XM_CSUM_BLOCK * 4 > s->max_payload ||
	    f->arg0 > s->export_size || f->arg1 > s->export_size - f->arg0) {
		ctr(s)->rx_bad_len++;
		return;
	}
	if (!disk_read_start(s, s->csum, CSUM_OPS, XM_CSUM_MAX_LEN, f->arg0, (__u32)f->arg1,
			     on_csum_read))
		return;
	s->csum_inflight++;
	ctr(s)->rx_csumreq++;
}

static void on_read_done(struct xm_io *io, int res, __u32 flags)
{
	struct disk_read *op = xm_container_of(io, struct disk_read, io);
	struct xm_secondary *s = op->s;
	struct xm_frame a = {.type = XM_T_READ_DATA, .session = s->session, .arg1 = op->off};
	struct xm_span span;
	__u32 done;

	op->busy = false;
	s->reads_inflight--;
	if (op->gen != s->gen || s->state != S_CONNECTED)
		return;
	if (res != (int)op->len) {
		fail_disk(s, res < 0 ? res : -EIO, "read for the primary");
		return;
	}
	/* Pieces the TX ring has no room for are asked again by the primary. */
	for (done = 0; done < op->len; done += span.len) {
		span.data = op->buf + done;
		span.len = op->len - done < s->max_payload ? op->len - done : s->max_payload;
		a.arg0 = op->off + done;
		a.payload_len = span.len;
		if (xm_env_send(s->env, &a, &span, 1, 0))
			break;
	}
	ctr(s)->read_answers++;
}

void on_read_req(struct xm_secondary *s, const struct xm_frame *f)
{
	ctr(s)->rx_read_req++;
	if (f->payload_len || !f->arg1 || f->arg1 > XM_READ_MAX_LEN || f->arg1 % 4096 ||
	    f->arg0 % 4096 || f->arg0 > s->export_size || f->arg1 > s->export_size - f->arg0) {
		ctr(s)->rx_bad_len++;
		return;
	}
	if (disk_read_start(s, s->reads, READ_OPS, XM_READ_MAX_LEN, f->arg0, (__u32)f->arg1,
			    on_read_done))
		s->reads_inflight++;
}

void reads_free(struct xm_secondary *s)
{
	__u32 i;

	for (i = 0; i < READ_OPS; i++)
		free(s->reads[i].buf);
}

void answers_free(struct xm_secondary *s)
{
	__u32 i;

	for (i = 0; i < CSUM_OPS; i++)
		free(s->csum[i].buf);
}
