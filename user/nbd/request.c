// SPDX-License-Identifier: GPL-2.0
/* NBD requests after the checks: an unaligned one made aligned (a wider READ, a read-modify-write,
 * a narrower TRIM), writes ordered against a read-modify-write beside them, the export's answers
 * replied (docs/protocol.md §8.4). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "nbd/internal.h"
#include "util/log.h"

static bool is_write(__u16 type)
{
	return type == XM_NBD_CMD_WRITE || type == XM_NBD_CMD_WRITE_ZEROES;
}

struct nbd_ireq *ireq_new(struct nbd_conn *c, __u16 type, __u16 flags, __u64 cookie, __u64 offset,
			  __u32 len)
{
	struct nbd_ireq *ir = calloc(1, sizeof(*ir));
	__u64 a = c->srv->cfg.min_block, end;

	if (!ir)
		return NULL;
	ir->conn = c;
	ir->type = type;
	ir->flags = flags;
	ir->offset = type == XM_NBD_CMD_FLUSH ? 0 : offset;
	ir->len = type == XM_NBD_CMD_FLUSH ? 0 : len;
	end = ir->offset + ir->len;
	ir->req.type = type;
	ir->req.flags = flags;
	ir->req.cookie = cookie;
	xm_list_init(&ir->todo);
	/* The checks kept offset + len inside the export, whose size is a multiple of a. */
	ir->span_start = ir->offset / a * a;
	ir->span_end = (end + a - 1) / a * a;
	ir->rmw = is_write(type) && (ir->offset % a || end % a);
	if (ir->span_start != ir->offset || ir->span_end != end)
		c->srv->counters.unaligned++;
	if (type == XM_NBD_CMD_WRITE || ir->rmw) {
		size_t span = ir->span_end - ir->span_start;

		if (posix_memalign(&ir->buf, 4096, (span + 4095) & ~(size_t)4095)) {
			free(ir);
			return NULL;
		}
		/* An unaligned WRITE_ZEROES is a WRITE of zeros over its span. */
		if (type == XM_NBD_CMD_WRITE_ZEROES)
			memset(ir->buf, 0, span);
	}
	return ir;
}

void ireq_free(struct nbd_ireq *ir)
{
	free(ir->req.data);
	free(ir->buf);
	free(ir);
}

/* Requests the export holds or will be handed; this one is over: the books, then the memory. */
static void ireq_release(struct nbd_ireq *ir)
{
	struct nbd_conn *c = ir->conn;
	struct xm_nbd_server *s = c->srv;
	bool ordered = ir->ordered;

	if (ordered)
		xm_nbd_order_remove(&s->order, &ir->range);
	if (!xm_list_empty(&ir->todo))
		xm_list_del(&ir->todo);
	c->outstanding--;
	s->outstanding--;
	srv_uncharge(s, ir);
	ireq_free(ir);
	if (ordered)
		srv_kick(s); /* a write it held back may start */
}

/* Replies and releases; data is a READ's span (only its client's part is sent). */
static void ireq_reply(struct nbd_ireq *ir, __u32 error, const void *data)
{
	struct nbd_conn *c = ir->conn;
	struct xm_nbd_server *s = c->srv;

	ir->held = true; /* a failed send closes c, which must not drop ir under us */
	if (!error && ir->type == XM_NBD_CMD_WRITE)
		s->counters.bytes_written += ir->len;
	if (!c->closed) {
		struct nbd_simple_reply r = {
			.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
			.error = htobe32(error),
			.cookie = htobe64(ir->req.cookie),
		};
		struct iovec iov[2] = {{.iov_base = &r, .iov_len = sizeof(r)}};
		bool payload = !error && ir->type == XM_NBD_CMD_READ;

		if (error)
			s->counters.replies_err++;
		if (payload) {
			/* The client's bytes within the span the export read. */
			iov[1].iov_base = (char *)data + (ir->offset - ir->span_start);
			iov[1].iov_len = ir->len;
			s->counters.bytes_read += ir->len;
		}
		conn_send(c, iov, payload ? 2 : 1);
	}
	ireq_release(ir);
	if (c->closed)
		conn_maybe_free(c);
	else
		conn_progress(c);
}

/* Hands req to the export as it is now.  It may be done before this returns. */
static void to_export(struct nbd_ireq *ir)
{
	struct xm_nbd_server *s = ir->conn->srv;

	ir->held = true;
	s->ops.submit(s->ctx, &ir->req);
}

/* An RMW's next step: read the head block, the tail block (one read when the two are one block or
 * side by side), then write the span. */
static void rmw_step(struct nbd_ireq *ir)
{
	__u64 a = ir->conn->srv->cfg.min_block, s0 = ir->span_start, s1 = ir->span_end;
	bool head = ir->offset % a, tail = (ir->offset + ir->len) % a;

	ir->req.flags = 0;
	if (ir->step == STEP_WAIT && (head || tail)) {
		ir->step = STEP_FILL;
		ir->req.type = XM_NBD_CMD_READ;
		ir->req.offset = head ? s0 : s1 - a;
		ir->req.len = (__u32)(head && tail && s1 - s0 <= 2 * a ? s1 - s0 : a);
	} else if (ir->step == STEP_FILL && tail && ir->req.offset + ir->req.len < s1) {
		ir->req.offset = s1 - a;
		ir->req.len = (__u32)a;
	} else {
		ir->step = STEP_EXPORT;
		ir->req.type = XM_NBD_CMD_WRITE;
		ir->req.flags = ir->flags & XM_NBD_CMD_FLAG_FUA; /* NO_HOLE: a WRITE allocates */
		ir->req.offset = s0;
		ir->req.len = (__u32)(s1 - s0);
		ir->req.data = ir->buf;
		ir->buf = NULL; /* the export owns it from here */
	}
	to_export(ir);
}

/* The request may go to the export: its write range is clear, or it needs none. */
static void ireq_go(struct nbd_ireq *ir)
{
	struct xm_nbd_server *s = ir->conn->srv;

	if (s->stopped) {
		ireq_reply(ir, NBD_ESHUTDOWN, NULL);
		return;
	}
	if (ir->rmw) {
		rmw_step(ir);
		return;
	}
	ir->step = STEP_EXPORT;
	if (ir->type == XM_NBD_CMD_WRITE) {
		ir->req.data = ir->buf;
		ir->buf = NULL;
	}
	to_export(ir);
}

void request_start(struct nbd_ireq *ir)
{
	struct nbd_conn *c = ir->conn;
	struct xm_nbd_server *s = c->srv;
	__u64 a = s->cfg.min_block, end = ir->offset + ir->len;

	c->outstanding++;
	s->outstanding++;
	s->counters.requests++;
	ir->req.offset = ir->span_start;
	ir->req.len = (__u32)(ir->span_end - ir->span_start);
	if (ir->type == XM_NBD_CMD_TRIM) {
		/* A TRIM is advisory: the whole blocks inside it, or nothing at all. */
		__u64 t0 = (ir->offset + a - 1) / a * a, t1 = end / a * a;

		if (t0 >= t1) {
			ireq_reply(ir, 0, NULL);
			return;
		}
		ir->req.offset = t0;
		ir->req.len = (__u32)(t1 - t0);
	}
	if (ir->type == XM_NBD_CMD_READ || ir->type == XM_NBD_CMD_FLUSH) {
		ir->step = STEP_EXPORT;
		to_export(ir);
		return;
	}
	ir->ordered = true;
	if (!xm_nbd_order_add(&s->order, &ir->range, ir->rmw ? ir->span_start : ir->req.offset,
			      ir->rmw ? ir->span_end : ir->req.offset + ir->req.len, ir->rmw))
		return; /* a read-modify-write beside it goes first */
	ireq_go(ir);
}

/* The server's kick: RMW steps queued by the export's answers, then writes the order lets go. */
static void run_kick(struct xm_nbd_server *s)
{
	s->in_kick = true;
	for (;;) {
		struct xm_nbd_range *r;
		struct nbd_ireq *ir;

		if (!xm_list_empty(&s->todo)) {
			ir = xm_container_of(s->todo.next, struct nbd_ireq, todo);
			xm_list_del(&ir->todo);
			rmw_step(ir);
			continue;
		}
		r = xm_nbd_order_next(&s->order);
		if (!r)
			break;
		ireq_go(xm_container_of(r, struct nbd_ireq, range));
	}
	s->in_kick = false;
}

static void on_srv_kick(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct xm_nbd_server *s = xm_container_of(io, struct xm_nbd_server, kick_io);

	s->kick_armed = false;
	run_kick(s);
	srv_maybe_free(s);
}

/* Runs the server's kick from the loop, never from inside the export's answer, which must not
 * be handed a new request. */
void srv_kick(struct xm_nbd_server *s)
{
	struct io_uring_sqe *sqe;

	if (s->kick_armed || s->in_kick)
		return;
	if (xm_list_empty(&s->todo) && !s->order.waiting)
		return;
	s->kick_io.fn = on_srv_kick;
	sqe = xm_loop_sqe(s->loop, &s->kick_io);
	if (!sqe) {
		/* The ring is broken: better now, from wherever this is, than never. */
		pr_warn("nbd: no io_uring submission slot, starting held requests at once");
		run_kick(s);
		return;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, &s->kick_io);
	s->kick_armed = true;
}

void requests_drop(struct nbd_conn *c)
{
	struct xm_nbd_server *s = c->srv;
	struct xm_nbd_range *r;

	/* Every request of c the export does not hold is in the order: a write waiting there, or an
	 * RMW between two steps.  A release may close another connection (a failed kick), which
	 * drops its own: start over after each. */
again:
	for (r = s->order.head; r; r = r->next) {
		struct nbd_ireq *ir = xm_container_of(r, struct nbd_ireq, range);

		if (ir->conn == c && !ir->held) {
			ireq_release(ir);
			goto again;
		}
	}
}

static __u32 nbd_error(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return 0;
	case EPERM:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

/* An RMW's block read is in: the bytes around the client's range go into the span. */
static void rmw_filled(struct nbd_ireq *ir, const char *data)
{
	__u64 r0 = ir->req.offset, r1 = r0 + ir->req.len, end = ir->offset + ir->len;
	char *span = ir->buf;

	if (r0 < ir->offset)
		memcpy(span + (r0 - ir->span_start), data,
		       (r1 < ir->offset ? r1 : ir->offset) - r0);
	if (r1 > end) {
		__u64 from = r0 > end ? r0 : end;

		memcpy(span + (from - ir->span_start), data + (from - r0), r1 - from);
	}
}

void xm_nbd_done(struct xm_nbd_req *req, int err, const void *data)
{
	struct nbd_ireq *ir = container_of(req, struct nbd_ireq, req);
	struct nbd_conn *c = ir->conn;
	__u32 error = nbd_error(err);

	if (!error && req->type == XM_NBD_CMD_READ && !data) {
		pr_debug("nbd: connection %llu: READ done without data", (unsigned long long)c->id);
		error = NBD_EIO;
	}
	if (ir->step != STEP_FILL || error) {
		ireq_reply(ir, error, data);
		return;
	}
	if (c->closed) {
		/* Nobody waits for the rest of it. */
		ir->held = false;
		ireq_release(ir);
		conn_maybe_free(c);
		return;
	}
	rmw_filled(ir, data);
	/* The next step goes to the export from the loop, not from inside its answer. */
	ir->held = false;
	xm_list_add_tail(&c->srv->todo, &ir->todo);
	srv_kick(c->srv);
}
