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
	struct csum_op *op = xm_container_of(io, struct csum_op, io);
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

/* CSUMREQ: read the range, answer a CRC32C per 4 KiB (docs/resync.md §5). */
void on_csumreq(struct xm_secondary *s, const struct xm_frame *f)
{
	struct csum_op *op = NULL;
	struct io_uring_sqe *sqe;
	__u32 i;

	if (f->payload_len || !f->arg1 || f->arg1 > XM_CSUM_MAX_LEN || f->arg1 % XM_CSUM_BLOCK ||
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
	if (!op->buf && posix_memalign((void **)&op->buf, 4096, XM_CSUM_MAX_LEN))
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

static void on_read_done(struct xm_io *io, int res, __u32 flags)
{
	struct read_op *op = xm_container_of(io, struct read_op, io);
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
	struct read_op *op = NULL;
	struct io_uring_sqe *sqe;
	__u32 i;

	ctr(s)->rx_read_req++;
	if (f->payload_len || !f->arg1 || f->arg1 > XM_READ_MAX_LEN || f->arg1 % 4096 ||
	    f->arg0 % 4096 || f->arg0 > s->export_size || f->arg1 > s->export_size - f->arg0) {
		ctr(s)->rx_bad_len++;
		return;
	}
	for (i = 0; i < READ_OPS && !op; i++)
		if (!s->reads[i].busy)
			op = &s->reads[i];
	if (!op)
		return; /* the primary asks again */
	if (!op->buf && posix_memalign((void **)&op->buf, 4096, XM_READ_MAX_LEN))
		return;
	op->s = s;
	op->off = f->arg0;
	op->len = (__u32)f->arg1;
	op->gen = s->gen;
	op->io.fn = on_read_done;
	sqe = xm_loop_sqe(s->env->loop, &op->io);
	if (!sqe)
		return;
	io_uring_prep_read(sqe, s->env->disk->fd, op->buf, op->len, op->off);
	op->busy = true;
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
