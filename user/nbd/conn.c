// SPDX-License-Identifier: GPL-2.0
/* What an NBD connection reads: the fixed newstyle handshake's options, then requests and their
 * WRITE payloads, checked before the export sees them. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd/internal.h"
#include "nbd/tls.h"
#include "util/log.h"

static void conn_opt_reply(struct nbd_conn *c, __u32 opt, __u32 type, const void *data, size_t len)
{
	struct nbd_opt_reply r = {
		.magic = htobe64(NBD_REP_MAGIC),
		.option = htobe32(opt),
		.type = htobe32(type),
		.len = htobe32((__u32)len),
	};
	struct iovec iov[2] = {
		{.iov_base = &r, .iov_len = sizeof(r)},
		{.iov_base = (void *)data, .iov_len = len},
	};

	conn_send(c, iov, len ? 2 : 1);
}

/* An NBD_REP_INFO or NBD_REP_SERVER reply whose payload is a header and a string. */
static void conn_opt_reply2(struct nbd_conn *c, __u32 opt, __u32 type, const void *head,
			    size_t head_len, const char *str, size_t str_len)
{
	struct nbd_opt_reply r = {
		.magic = htobe64(NBD_REP_MAGIC),
		.option = htobe32(opt),
		.type = htobe32(type),
		.len = htobe32((__u32)(head_len + str_len)),
	};
	struct iovec iov[3] = {
		{.iov_base = &r, .iov_len = sizeof(r)},
		{.iov_base = (void *)head, .iov_len = head_len},
		{.iov_base = (void *)str, .iov_len = str_len},
	};

	conn_send(c, iov, 3);
}

/* want_bs: the client asked for block sizes, and with NBD_OPT_GO promises to keep to them. */
static void conn_send_export_info(struct nbd_conn *c, __u32 opt, bool want_name, bool want_bs)
{
	const struct xm_nbd_config *cfg = &c->srv->cfg;
	/* A client that did not ask may send any offset and length: it is told the truth, that
	 * unaligned requests are served (§8.4).  NBD_REP_ERR_BLOCK_SIZE_REQD is never needed. */
	__u32 min_block = want_bs || opt == NBD_OPT_INFO ? cfg->min_block : 1;
	struct nbd_info_export ex = {
		.info = htobe16(NBD_INFO_EXPORT),
		.size = htobe64(cfg->size),
		.flags = htobe16(XM_NBD_TRANS_FLAGS),
	};
	struct nbd_info_block_size bs = {
		.info = htobe16(NBD_INFO_BLOCK_SIZE),
		.min_block = htobe32(min_block),
		.pref_block = htobe32(cfg->pref_block),
		.max_block = htobe32(cfg->max_block),
	};
	__be16 name = htobe16(NBD_INFO_NAME);

	conn_opt_reply(c, opt, NBD_REP_INFO, &ex, sizeof(ex));
	conn_opt_reply(c, opt, NBD_REP_INFO, &bs, sizeof(bs));
	if (want_name)
		conn_opt_reply2(c, opt, NBD_REP_INFO, &name, sizeof(name), cfg->export_name,
				strlen(cfg->export_name));
	conn_opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static void conn_enter_transmission(struct nbd_conn *c, const char *name, size_t len)
{
	c->state = ST_REQ_HDR;
	pr_debug("nbd: connection %llu: serving export '%.*s'", (unsigned long long)c->id,
		 (int)(len < XM_NBD_NAME_LOG_MAX ? len : XM_NBD_NAME_LOG_MAX), name);
}

/* NBD_OPT_INFO and NBD_OPT_GO: name length, name, count of info requests, info requests. */
static void conn_opt_info(struct nbd_conn *c, const char *data, __u32 len)
{
	bool want_name = false, want_bs = false;
	__u32 name_len;
	__u16 nreq, i;

	if (len < 6)
		goto invalid;
	memcpy(&name_len, data, 4);
	name_len = be32toh(name_len);
	if (name_len > len - 6)
		goto invalid;
	memcpy(&nreq, data + 4 + name_len, 2);
	nreq = be16toh(nreq);
	if (len != 6 + name_len + 2u * nreq)
		goto invalid;
	for (i = 0; i < nreq; i++) {
		__u16 info;

		memcpy(&info, data + 6 + name_len + 2u * i, 2);
		if (be16toh(info) == NBD_INFO_NAME)
			want_name = true;
		if (be16toh(info) == NBD_INFO_BLOCK_SIZE)
			want_bs = true;
	}
	conn_send_export_info(c, c->opt, want_name, want_bs);
	if (c->opt == NBD_OPT_GO)
		conn_enter_transmission(c, data + 4, name_len);
	return;
invalid:
	pr_debug("nbd: connection %llu: malformed option %u", (unsigned long long)c->id, c->opt);
	conn_opt_reply(c, c->opt, NBD_REP_ERR_INVALID, NULL, 0);
}

/* FORCEDTLS (proto.md, "TLS support"): before TLS only STARTTLS and ABORT are served.  Returns
 * true when it dealt with the option. */
static bool conn_tls_option(struct nbd_conn *c, __u32 len)
{
	if (c->opt == NBD_OPT_STARTTLS && c->tls_required) {
		if (c->tls || len) {
			conn_opt_reply(c, c->opt, NBD_REP_ERR_INVALID, NULL, 0);
			return true;
		}
		conn_opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
		if (!c->closed && nbd_tls_start(c))
			conn_close(c, "cannot start TLS");
		return true;
	}
	if (!c->tls_required || c->tls || c->opt == NBD_OPT_ABORT)
		return false;
	if (!c->told_tls)
		pr_info("nbd: connection %llu: option %u without TLS refused (this export needs "
			"TLS: nbds://USER@HOST:PORT/?tls-psk-file=FILE)",
			(unsigned long long)c->id, c->opt);
	c->told_tls = true;
	/* The one option that cannot be answered with an error. */
	if (c->opt == NBD_OPT_EXPORT_NAME)
		conn_close(c, "NBD_OPT_EXPORT_NAME without TLS");
	else
		conn_opt_reply(c, c->opt, NBD_REP_ERR_TLS_REQD, NULL, 0);
	return true;
}

static void conn_option(struct nbd_conn *c, const char *data, __u32 len)
{
	const struct xm_nbd_config *cfg = &c->srv->cfg;

	if (conn_tls_option(c, len))
		return;
	switch (c->opt) {
	case NBD_OPT_EXPORT_NAME: {
		struct nbd_export_reply r = {
			.size = htobe64(cfg->size),
			.flags = htobe16(XM_NBD_TRANS_FLAGS),
		};

		conn_send_buf(c, &r,
			      c->no_zeroes ? offsetof(struct nbd_export_reply, zeroes) : sizeof(r));
		conn_enter_transmission(c, data, len);
		break;
	}
	case NBD_OPT_ABORT:
		conn_opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
		c->draining = true;
		conn_progress(c);
		break;
	case NBD_OPT_LIST: {
		__be32 name_len = htobe32((__u32)strlen(cfg->export_name));

		if (len) {
			conn_opt_reply(c, c->opt, NBD_REP_ERR_INVALID, NULL, 0);
			break;
		}
		conn_opt_reply2(c, c->opt, NBD_REP_SERVER, &name_len, sizeof(name_len),
				cfg->export_name, strlen(cfg->export_name));
		conn_opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
		break;
	}
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		conn_opt_info(c, data, len);
		break;
	default:
		/* NBD_OPT_STRUCTURED_REPLY among them: simple replies only. */
		pr_debug("nbd: connection %llu: unsupported option %u", (unsigned long long)c->id,
			 c->opt);
		conn_opt_reply(c, c->opt, NBD_REP_ERR_UNSUP, NULL, 0);
		break;
	}
}

static void conn_start_data(struct nbd_conn *c, enum conn_state state, void *dst, size_t len)
{
	c->state = state;
	c->dst = dst;
	c->got = 0;
	c->need = len;
}

/* 0 if the request may go to the export, else the NBD error to reply with. */
static __u32 request_check(const struct xm_nbd_config *cfg, __u16 type, __u16 flags, __u64 offset,
			   __u32 len)
{
	switch (type) {
	case XM_NBD_CMD_READ:
	case XM_NBD_CMD_WRITE:
	case XM_NBD_CMD_FLUSH:
	case XM_NBD_CMD_TRIM:
	case XM_NBD_CMD_WRITE_ZEROES:
		break;
	default:
		return NBD_EINVAL;
	}
	/* FUA is valid on every command once SEND_FUA is advertised (proto.md, "Command flags");
	 * NO_HOLE only on WRITE_ZEROES. */
	if (flags & ~XM_NBD_KNOWN_CMD_FLAGS)
		return NBD_EINVAL;
	if ((flags & XM_NBD_CMD_FLAG_NO_HOLE) && type != XM_NBD_CMD_WRITE_ZEROES)
		return NBD_EINVAL;
	/* Offset and length of a flush are reserved; clients vary, so ignore them. */
	if (type == XM_NBD_CMD_FLUSH)
		return 0;
	if ((type == XM_NBD_CMD_READ || type == XM_NBD_CMD_WRITE) && len > cfg->max_block)
		return NBD_EINVAL;
	/* Any offset and length: unaligned ones are made aligned in request.c (§8.4). */
	if (!len)
		return NBD_EINVAL;
	if (offset > cfg->size || len > cfg->size - offset)
		return type == XM_NBD_CMD_WRITE || type == XM_NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC
										   : NBD_EINVAL;
	/* Unaligned, WRITE_ZEROES becomes a WRITE of zeros over its span, in memory: no longer
	 * than a WRITE (proto.md allows EOVERFLOW for what takes a scratch buffer). */
	if (type == XM_NBD_CMD_WRITE_ZEROES && len > cfg->max_block &&
	    (offset & (cfg->min_block - 1) || len & (cfg->min_block - 1)))
		return NBD_EOVERFLOW;
	return 0;
}

static void conn_request(struct nbd_conn *c, const struct nbd_request *rq)
{
	struct xm_nbd_server *s = c->srv;
	__u16 flags = be16toh(rq->flags), type = be16toh(rq->type);
	__u64 cookie = be64toh(rq->cookie), offset = be64toh(rq->offset);
	__u32 len = be32toh(rq->len), err;
	struct nbd_ireq *ir;

	if (be32toh(rq->magic) != NBD_REQUEST_MAGIC) {
		s->counters.bad_requests++;
		conn_close(c, "bad request magic");
		return;
	}
	if (type == XM_NBD_CMD_DISC) {
		pr_debug("nbd: connection %llu: disconnect requested, %u outstanding",
			 (unsigned long long)c->id, c->outstanding);
		c->draining = true;
		conn_progress(c);
		return;
	}
	err = request_check(&s->cfg, type, flags, offset, len);
	if (err)
		s->counters.bad_requests++;
	if (type == XM_NBD_CMD_WRITE && len > s->cfg.max_block) {
		/* Too much to skip over safely: refuse and hang up once the rest is replied. */
		pr_debug("nbd: connection %llu: WRITE of %u bytes over the %u limit",
			 (unsigned long long)c->id, len, s->cfg.max_block);
		conn_simple_reply(c, cookie, NBD_EINVAL);
		c->draining = true;
		conn_progress(c);
		return;
	}
	if (type == XM_NBD_CMD_WRITE && err) {
		/* The payload follows whatever we think of it: skip it, then reply. */
		c->discard_cookie = cookie;
		c->discard_err = err;
		conn_start_data(c, ST_REQ_DISCARD, NULL, len);
		return;
	}
	if (err) {
		conn_simple_reply(c, cookie, err);
		return;
	}
	ir = ireq_new(c, type, flags, cookie, offset, len);
	if (!ir) {
		if (type == XM_NBD_CMD_WRITE) {
			c->discard_cookie = cookie;
			c->discard_err = NBD_ENOMEM;
			conn_start_data(c, ST_REQ_DISCARD, NULL, len);
		} else {
			conn_simple_reply(c, cookie, NBD_ENOMEM);
		}
		return;
	}
	if (type == XM_NBD_CMD_WRITE) {
		/* Its bytes count against the budget as they arrive (limits.c). */
		c->cur = ir;
		conn_start_data(c, ST_REQ_PAYLOAD, (char *)ir->buf + (offset - ir->span_start),
				len);
		return;
	}
	request_start(ir);
}

/* The data state is complete: act on the option, the WRITE or the skipped payload. */
static void conn_data_done(struct nbd_conn *c)
{
	struct nbd_ireq *ir;

	c->msgs++; /* the deadline's clock starts again (limits.c) */
	switch (c->state) {
	case ST_OPT_DATA:
		c->state = ST_OPT_HDR;
		conn_option(c, c->opt_data, (__u32)c->got);
		free(c->opt_data);
		c->opt_data = NULL;
		break;
	case ST_REQ_PAYLOAD:
		conn_payload_over(c);
		ir = c->cur;
		c->cur = NULL;
		c->state = ST_REQ_HDR;
		request_start(ir);
		break;
	case ST_REQ_DISCARD:
		c->state = ST_REQ_HDR;
		conn_simple_reply(c, c->discard_cookie, c->discard_err);
		break;
	default:
		break;
	}
}

/* Parses what is buffered.  Returns true when it needs more input, false when it must stop. */
static bool conn_parse(struct nbd_conn *c)
{
	for (;;) {
		size_t avail = c->in_end - c->in_start;
		const char *p = c->inbuf + c->in_start;

		if (c->closed || c->draining)
			return false;
		switch (c->state) {
		case ST_CLIENT_FLAGS: {
			__be32 raw;
			__u32 flags;

			if (avail < sizeof(raw))
				return true;
			memcpy(&raw, p, sizeof(raw));
			c->in_start += sizeof(raw);
			c->msgs++;
			flags = be32toh(raw);
			/* proto.md: the server MUST drop a client setting unknown flags. */
			if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
			    flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
				conn_close(c, "client flags not fixed newstyle");
				return false;
			}
			c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
			c->state = ST_OPT_HDR;
			break;
		}
		case ST_OPT_HDR: {
			struct nbd_opt_hdr h;
			__u32 len;

			if (conn_over_limit(c)) {
				conn_set_paused(c, true);
				return false;
			}
			if (avail < sizeof(h))
				return true;
			memcpy(&h, p, sizeof(h));
			c->in_start += sizeof(h);
			c->msgs++;
			len = be32toh(h.len);
			c->opt = be32toh(h.option);
			if (be64toh(h.magic) != NBD_OPTS_MAGIC) {
				conn_close(c, "bad option magic");
				return false;
			}
			if (len > XM_NBD_MAX_OPT_LEN) {
				conn_close(c, "option too long");
				return false;
			}
			if (!len) {
				conn_option(c, NULL, 0);
				break;
			}
			c->opt_data = malloc(len);
			if (!c->opt_data) {
				conn_close(c, "out of memory for an option");
				return false;
			}
			conn_start_data(c, ST_OPT_DATA, c->opt_data, len);
			break;
		}
		case ST_REQ_HDR: {
			struct nbd_request rq;

			if (conn_over_limit(c)) {
				conn_set_paused(c, true);
				return false;
			}
			if (avail < sizeof(rq))
				return true;
			memcpy(&rq, p, sizeof(rq));
			c->in_start += sizeof(rq);
			c->msgs++;
			conn_request(c, &rq);
			break;
		}
		case ST_OPT_DATA:
		case ST_REQ_PAYLOAD:
		case ST_REQ_DISCARD: {
			size_t room = conn_data_room(c, avail > 0), n = avail < room ? avail : room;

			if (c->need && !room) {
				if (!avail)
					return true;	  /* into inbuf first: then it may finish */
				conn_set_paused(c, true); /* the write budget is used up */
				return false;
			}
			if (c->dst)
				memcpy(c->dst + c->got, p, n);
			c->in_start += n;
			conn_data_took(c, n);
			if (c->need)
				return true;
			conn_data_done(c);
			break;
		}
		}
	}
}

/* recv() without TLS: bytes, 0 when the socket is empty, -1 when c was closed. */
static ssize_t conn_recv_plain(struct nbd_conn *c, void *buf, size_t room)
{
	ssize_t n;

	do
		n = recv(c->fd, buf, room, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		conn_close(c, strerror(errno));
		return -1;
	}
	if (!n) {
		conn_close(c, "closed by the client");
		return -1;
	}
	return n;
}

/* One recv(): > 0 on progress, 0 when the socket is empty, < 0 when c was closed. */
static int conn_recv(struct nbd_conn *c)
{
	bool direct = c->dst && c->need && c->in_start == c->in_end;
	size_t room = direct ? conn_data_room(c, false) : 0;
	ssize_t n;
	char *buf;

	if (c->in_start == c->in_end) {
		c->in_start = c->in_end = 0;
	} else if (c->in_start) {
		memmove(c->inbuf, c->inbuf + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	/* Large payloads go straight to their buffer, not through inbuf, as far as the budget
	 * allows. */
	direct = direct && room;
	if (direct) {
		buf = c->dst + c->got;
	} else {
		buf = c->inbuf + c->in_end;
		room = XM_NBD_INBUF - c->in_end;
	}
	n = c->tls ? nbd_tls_recv(c, buf, room) : conn_recv_plain(c, buf, room);
	if (n <= 0)
		return (int)n;
	if (direct) {
		conn_data_took(c, (size_t)n);
	} else {
		c->in_end += (size_t)n;
	}
	return 1;
}

/* Parses buffered input and reads more until the socket is empty, a limit is hit or c closes. */
void conn_input(struct nbd_conn *c)
{
	int budget = XM_NBD_RECV_BUDGET;

	c->in_input = true;
	conn_set_paused(c, false);
	while (conn_parse(c)) {
		if (!budget--) {
			/* Let the others run; the poll fires only on new data, so come back. */
			conn_kick(c);
			break;
		}
		if (conn_recv(c) <= 0)
			break;
	}
	c->in_input = false;
	if (c->closed)
		conn_maybe_free(c);
	else if (c->paused)
		conn_progress(c); /* a completion may already have lifted the limit */
}

void conn_on_readable(struct xm_watch *w, int revents)
{
	struct nbd_conn *c = container_of(w, struct nbd_conn, in_watch);

	if (c->closed || c->draining || c->paused)
		return;
	conn_input(c);
}
