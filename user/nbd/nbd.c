// SPDX-License-Identifier: GPL-2.0
/* NBD server: fixed newstyle handshake and simple-reply transmission, nonblocking on the loop. */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "nbd/nbd.h"

/*
 * Wire format (NetworkBlockDevice/nbd doc/proto.md).  Every field is big-endian; the structs are
 * packed and only ever copied whole to and from the byte stream.
 */
#define NBD_INIT_MAGIC 0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC 0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC  0x0003e889045565a9ull

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE	  (1u << 0)
#define NBD_FLAG_NO_ZEROES	  (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES	  (1u << 1)

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)
#define XM_NBD_TRANS_FLAGS                                                                         \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |       \
	 NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN)

/* Options and option replies. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT	    2u
#define NBD_OPT_LIST	    3u
#define NBD_OPT_INFO	    6u
#define NBD_OPT_GO	    7u

#define NBD_REP_ACK	    1u
#define NBD_REP_SERVER	    2u
#define NBD_REP_INFO	    3u
#define NBD_REP_FLAG_ERROR  (1u << 31)
#define NBD_REP_ERR_UNSUP   (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3u)

#define NBD_INFO_EXPORT	    0u
#define NBD_INFO_NAME	    1u
#define NBD_INFO_BLOCK_SIZE 3u

/* Transmission. */
#define NBD_REQUEST_MAGIC      0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

/* Error values on the wire: fixed by the protocol, not the host's errno. */
#define NBD_EPERM     1u
#define NBD_EIO	      5u
#define NBD_ENOMEM    12u
#define NBD_EINVAL    22u
#define NBD_ENOSPC    28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP   95u
#define NBD_ESHUTDOWN 108u

/* Server greeting: the first thing on every connection. */
struct nbd_hello {
	__be64 magic;	   /* NBD_INIT_MAGIC */
	__be64 opts_magic; /* NBD_OPTS_MAGIC */
	__be16 flags;	   /* handshake flags */
} __attribute__((packed));

/* Client option header, followed by len bytes of option data. */
struct nbd_opt_hdr {
	__be64 magic; /* NBD_OPTS_MAGIC */
	__be32 option;
	__be32 len;
} __attribute__((packed));

/* Server option reply header, followed by len bytes of reply data. */
struct nbd_opt_reply {
	__be64 magic; /* NBD_REP_MAGIC */
	__be32 option;
	__be32 type; /* NBD_REP_* */
	__be32 len;
} __attribute__((packed));

/* Reply to NBD_OPT_EXPORT_NAME; the zeroes are left out when the client set NO_ZEROES. */
struct nbd_export_reply {
	__be64 size;
	__be16 flags; /* transmission flags */
	__u8 zeroes[124];
} __attribute__((packed));

/* NBD_REP_INFO payloads. */
struct nbd_info_export {
	__be16 info; /* NBD_INFO_EXPORT */
	__be64 size;
	__be16 flags;
} __attribute__((packed));

struct nbd_info_block_size {
	__be16 info; /* NBD_INFO_BLOCK_SIZE */
	__be32 min_block;
	__be32 pref_block;
	__be32 max_block;
} __attribute__((packed));

/* Transmission request, followed by len bytes of payload for NBD_CMD_WRITE. */
struct nbd_request {
	__be32 magic; /* NBD_REQUEST_MAGIC */
	__be16 flags; /* XM_NBD_CMD_FLAG_* */
	__be16 type;  /* enum xm_nbd_cmd */
	__be64 cookie;
	__be64 offset;
	__be32 len;
} __attribute__((packed));

/* Simple reply, followed by len bytes of data for a successful NBD_CMD_READ. */
struct nbd_simple_reply {
	__be32 magic; /* NBD_SIMPLE_REPLY_MAGIC */
	__be32 error; /* NBD_E*, 0 on success */
	__be64 cookie;
} __attribute__((packed));

_Static_assert(sizeof(struct nbd_hello) == 18, "nbd_hello");
_Static_assert(sizeof(struct nbd_opt_hdr) == 16, "nbd_opt_hdr");
_Static_assert(sizeof(struct nbd_opt_reply) == 20, "nbd_opt_reply");
_Static_assert(sizeof(struct nbd_export_reply) == 134, "nbd_export_reply");
_Static_assert(sizeof(struct nbd_info_export) == 12, "nbd_info_export");
_Static_assert(sizeof(struct nbd_info_block_size) == 14, "nbd_info_block_size");
_Static_assert(sizeof(struct nbd_request) == 28, "nbd_request");
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "nbd_simple_reply");

/* Limits. */
#define XM_NBD_MAX_OPT_LEN     (64u * 1024)  /* longer option data: drop the client */
#define XM_NBD_MAX_OUTSTANDING 64u	     /* per connection, at the export */
#define XM_NBD_MAX_WRITE_BYTES (64ull << 20) /* per server, WRITE payloads in memory */
#define XM_NBD_MAX_QUEUED      (8u << 20)    /* per connection, replies not yet sent */
#define XM_NBD_INBUF	       (16u * 1024)  /* per connection, received and not parsed */
#define XM_NBD_RECV_BUDGET     64	     /* recv() calls per turn before yielding */
#define XM_NBD_KNOWN_CMD_FLAGS (XM_NBD_CMD_FLAG_FUA | XM_NBD_CMD_FLAG_NO_HOLE)
#define XM_NBD_NAME_LOG_MAX    64 /* export name characters shown in logs */

enum conn_state {
	ST_CLIENT_FLAGS, /* waiting for the client's 32-bit flags */
	ST_OPT_HDR,	 /* option haggling: next option header */
	ST_OPT_DATA,	 /* option data into opt_data */
	ST_REQ_HDR,	 /* transmission: next request header */
	ST_REQ_PAYLOAD,	 /* WRITE payload into cur->req.data */
	ST_REQ_DISCARD,	 /* WRITE payload of a refused request, thrown away */
};

/* Reply bytes that send() did not take yet. */
struct out_chunk {
	struct out_chunk *next;
	size_t len;
	size_t off;
	char data[];
};

struct nbd_ireq {
	struct xm_nbd_req req;
	struct nbd_conn *conn;
	size_t charged; /* bytes counted in srv->write_bytes */
};

struct nbd_conn {
	struct xm_nbd_server *srv;
	struct nbd_conn *prev, *next; /* srv->conns, while open */
	__u64 id;
	int fd;
	struct xm_watch in_watch; /* POLLIN, multishot */
	struct xm_io pollout_io;  /* one-shot POLLOUT while replies are queued */
	struct xm_io kick_io;	  /* NOP: run the input side again from the loop */
	bool in_watched;
	bool pollout_armed;
	bool kick_armed;
	bool in_input; /* conn_input() is on the stack: do not free */
	bool closed;
	bool draining; /* read nothing more; close once everything is replied */
	bool paused;   /* stopped at a limit; a kick resumes it */
	bool no_zeroes;
	enum conn_state state;

	/* Received bytes not parsed yet: inbuf[in_start, in_end). */
	char *inbuf;
	size_t in_start, in_end;

	/* The data state's target (NULL: discard) and how much is still to come. */
	char *dst;
	size_t got, need;
	__u32 opt;
	char *opt_data;
	struct nbd_ireq *cur; /* WRITE whose payload is being read */
	__u64 discard_cookie; /* refused WRITE whose payload is being discarded */
	__u32 discard_err;

	struct out_chunk *out_head, *out_tail;
	size_t out_bytes;
	__u32 outstanding; /* requests at the export */
};

struct nbd_listener {
	struct xm_watch watch;
	struct xm_nbd_server *srv;
	int fd;
	bool tcp;
	bool watched;
};

struct xm_nbd_server {
	struct xm_loop *loop;
	struct xm_nbd_config cfg; /* strings point at the copies below */
	char *unix_path;
	char *export_name;
	struct xm_nbd_ops ops;
	void *ctx;
	struct nbd_listener lis[2]; /* Unix, TCP */
	bool unix_bound;	    /* we created cfg.unix_path */
	struct nbd_conn *conns;	    /* open connections */
	__u32 nconns;		    /* connection structs not freed yet, open or not */
	__u32 outstanding;
	__u64 write_bytes;
	bool stopped;
	bool in_stop;
	struct xm_nbd_counters counters;
};

static void conn_close(struct nbd_conn *c, const char *why);
static void conn_input(struct nbd_conn *c);

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static void on_cancel_done(struct xm_io *io, int res, __u32 cqe_flags)
{
	/* Nothing to do: -ENOENT or -EALREADY only mean the poll is ending by other means. */
}

static struct xm_io cancel_io = {.fn = on_cancel_done};

/* Cancels whatever io_uring request carries target as its user_data. */
static int cancel_request(struct xm_loop *loop, struct xm_io *target)
{
	struct io_uring_sqe *sqe = xm_loop_sqe(loop, &cancel_io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, target, 0);
	io_uring_sqe_set_data(sqe, &cancel_io);
	return 0;
}

/*
 * xm_loop_unwatch, plus an ASYNC_CANCEL behind it: its POLL_REMOVE fails with -EALREADY when a
 * wakeup of the poll is already queued (say the peer hung up just then), and the poll would live
 * on, never released.  ASYNC_CANCEL handles that case; whichever comes second finds nothing.
 */
static int unwatch(struct xm_loop *loop, struct xm_watch *w, void (*released)(struct xm_watch *w))
{
	int err = xm_loop_unwatch(loop, w, released);

	if (!err)
		err = cancel_request(loop, &w->io);
	return err;
}

static void srv_maybe_free(struct xm_nbd_server *s)
{
	if (!s->stopped || s->in_stop || s->nconns || s->lis[0].watched || s->lis[1].watched)
		return;
	free(s->unix_path);
	free(s->export_name);
	free(s);
}

static void conn_maybe_free(struct nbd_conn *c)
{
	struct xm_nbd_server *s = c->srv;

	if (!c->closed || c->in_input || c->in_watched || c->pollout_armed || c->kick_armed ||
	    c->outstanding)
		return;
	free(c->inbuf);
	free(c);
	s->nconns--;
	srv_maybe_free(s);
}

static bool conn_over_limit(const struct nbd_conn *c)
{
	if (c->out_bytes > XM_NBD_MAX_QUEUED)
		return true;
	if (c->state != ST_REQ_HDR)
		return false;
	return c->outstanding >= XM_NBD_MAX_OUTSTANDING ||
	       c->srv->write_bytes > XM_NBD_MAX_WRITE_BYTES;
}

static void on_kick(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct nbd_conn *c = container_of(io, struct nbd_conn, kick_io);

	c->kick_armed = false;
	if (c->closed) {
		conn_maybe_free(c);
		return;
	}
	conn_input(c);
}

/* Runs the input side again from the loop, never from inside xm_nbd_done or a send. */
static void conn_kick(struct nbd_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->kick_armed || c->closed)
		return;
	sqe = xm_loop_sqe(c->srv->loop, &c->kick_io);
	if (!sqe) {
		pr_warn("nbd: no io_uring submission slot, dropping connection %llu",
			(unsigned long long)c->id);
		conn_close(c, "no io_uring submission slot");
		return;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, &c->kick_io);
	c->kick_armed = true;
}

/* After a completion or a flush: finish a drain, or resume a connection stopped at a limit. */
static void conn_progress(struct nbd_conn *c)
{
	if (c->closed)
		return;
	if (c->draining) {
		if (!c->outstanding && !c->out_head)
			conn_close(c, "disconnected");
		return;
	}
	if (c->paused && !conn_over_limit(c))
		conn_kick(c);
}

static void srv_uncharge(struct xm_nbd_server *s, size_t bytes)
{
	bool was_over = s->write_bytes > XM_NBD_MAX_WRITE_BYTES;
	struct nbd_conn *c, *next;

	s->write_bytes -= bytes;
	if (!was_over || s->write_bytes > XM_NBD_MAX_WRITE_BYTES)
		return;
	for (c = s->conns; c; c = next) {
		next = c->next; /* a failed kick closes c */
		if (c->paused && !conn_over_limit(c))
			conn_kick(c);
	}
}

static void on_pollout(struct xm_io *io, int res, __u32 cqe_flags);

static void conn_arm_pollout(struct nbd_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->pollout_armed || c->closed)
		return;
	sqe = xm_loop_sqe(c->srv->loop, &c->pollout_io);
	if (!sqe) {
		pr_warn("nbd: no io_uring submission slot, dropping connection %llu",
			(unsigned long long)c->id);
		conn_close(c, "no io_uring submission slot");
		return;
	}
	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data(sqe, &c->pollout_io);
	c->pollout_armed = true;
}

/* Sends what the socket takes now and queues the rest, in order.  Closes c on a send error. */
static void conn_send(struct nbd_conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	size_t total = 0, sent = 0, pos = 0;
	struct out_chunk *chunk;
	ssize_t n;
	int i;

	if (c->closed)
		return;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!c->out_head) {
		do
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c, strerror(errno));
			return;
		}
		sent = n > 0 ? (size_t)n : 0;
		if (sent == total)
			return;
	}
	chunk = malloc(sizeof(*chunk) + total - sent);
	if (!chunk) {
		conn_close(c, "out of memory for a reply");
		return;
	}
	chunk->next = NULL;
	chunk->len = total - sent;
	chunk->off = 0;
	for (i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len, skip = 0;

		if (sent >= len) {
			sent -= len;
			continue;
		}
		skip = sent;
		sent = 0;
		memcpy(chunk->data + pos, (const char *)iov[i].iov_base + skip, len - skip);
		pos += len - skip;
	}
	if (c->out_tail)
		c->out_tail->next = chunk;
	else
		c->out_head = chunk;
	c->out_tail = chunk;
	c->out_bytes += chunk->len;
	conn_arm_pollout(c);
}

static void conn_send_buf(struct nbd_conn *c, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	conn_send(c, &iov, 1);
}

/* Sends queued replies until the socket is full; returns with POLLOUT armed if any remain. */
static void conn_flush(struct nbd_conn *c)
{
	while (!c->closed && c->out_head) {
		struct out_chunk *chunk = c->out_head;
		ssize_t n = send(c->fd, chunk->data + chunk->off, chunk->len - chunk->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_arm_pollout(c);
				return;
			}
			conn_close(c, strerror(errno));
			return;
		}
		chunk->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (chunk->off < chunk->len)
			continue;
		c->out_head = chunk->next;
		if (!c->out_head)
			c->out_tail = NULL;
		free(chunk);
	}
	conn_progress(c);
}

static void on_pollout(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct nbd_conn *c = container_of(io, struct nbd_conn, pollout_io);

	c->pollout_armed = false;
	if (c->closed) {
		conn_maybe_free(c);
		return;
	}
	/* POLLERR or POLLHUP show up as a failing send(). */
	if (res < 0 && res != -ECANCELED) {
		conn_close(c, strerror(-res));
		return;
	}
	conn_flush(c);
}

static void conn_simple_reply(struct nbd_conn *c, __u64 cookie, __u32 error)
{
	struct nbd_simple_reply r = {
		.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
		.error = htobe32(error),
		.cookie = htobe64(cookie),
	};

	if (error)
		c->srv->counters.replies_err++;
	conn_send_buf(c, &r, sizeof(r));
}

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

static void conn_send_export_info(struct nbd_conn *c, __u32 opt, bool want_name)
{
	const struct xm_nbd_config *cfg = &c->srv->cfg;
	struct nbd_info_export ex = {
		.info = htobe16(NBD_INFO_EXPORT),
		.size = htobe64(cfg->size),
		.flags = htobe16(XM_NBD_TRANS_FLAGS),
	};
	struct nbd_info_block_size bs = {
		.info = htobe16(NBD_INFO_BLOCK_SIZE),
		.min_block = htobe32(cfg->min_block),
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
	bool want_name = false;
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
	}
	conn_send_export_info(c, c->opt, want_name);
	if (c->opt == NBD_OPT_GO)
		conn_enter_transmission(c, data + 4, name_len);
	return;
invalid:
	pr_debug("nbd: connection %llu: malformed option %u", (unsigned long long)c->id, c->opt);
	conn_opt_reply(c, c->opt, NBD_REP_ERR_INVALID, NULL, 0);
}

static void conn_option(struct nbd_conn *c, const char *data, __u32 len)
{
	const struct xm_nbd_config *cfg = &c->srv->cfg;

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
	if (!len || offset & (cfg->min_block - 1) || len & (cfg->min_block - 1))
		return NBD_EINVAL;
	if (offset > cfg->size || len > cfg->size - offset)
		return type == XM_NBD_CMD_WRITE || type == XM_NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC
										   : NBD_EINVAL;
	return 0;
}

static struct nbd_ireq *ireq_new(struct nbd_conn *c, __u16 type, __u16 flags, __u64 cookie,
				 __u64 offset, __u32 len)
{
	struct nbd_ireq *ir = calloc(1, sizeof(*ir));

	if (!ir)
		return NULL;
	ir->conn = c;
	ir->req.type = type;
	ir->req.flags = flags;
	ir->req.cookie = cookie;
	ir->req.offset = type == XM_NBD_CMD_FLUSH ? 0 : offset;
	ir->req.len = type == XM_NBD_CMD_FLUSH ? 0 : len;
	if (type == XM_NBD_CMD_WRITE) {
		size_t alloc = ((size_t)len + 4095) & ~(size_t)4095;

		if (posix_memalign(&ir->req.data, 4096, alloc)) {
			free(ir);
			return NULL;
		}
	}
	return ir;
}

static void conn_submit(struct nbd_conn *c, struct nbd_ireq *ir)
{
	struct xm_nbd_server *s = c->srv;

	c->outstanding++;
	s->outstanding++;
	s->counters.requests++;
	/* May complete at once: ir is gone after this. */
	s->ops.submit(s->ctx, &ir->req);
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
		ir->charged = len;
		s->write_bytes += len;
		c->cur = ir;
		conn_start_data(c, ST_REQ_PAYLOAD, ir->req.data, len);
		return;
	}
	conn_submit(c, ir);
}

/* The data state is complete: act on the option, the WRITE or the skipped payload. */
static void conn_data_done(struct nbd_conn *c)
{
	struct nbd_ireq *ir;

	switch (c->state) {
	case ST_OPT_DATA:
		c->state = ST_OPT_HDR;
		conn_option(c, c->opt_data, (__u32)c->got);
		free(c->opt_data);
		c->opt_data = NULL;
		break;
	case ST_REQ_PAYLOAD:
		ir = c->cur;
		c->cur = NULL;
		c->state = ST_REQ_HDR;
		conn_submit(c, ir);
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
				c->paused = true;
				return false;
			}
			if (avail < sizeof(h))
				return true;
			memcpy(&h, p, sizeof(h));
			c->in_start += sizeof(h);
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
				c->paused = true;
				return false;
			}
			if (avail < sizeof(rq))
				return true;
			memcpy(&rq, p, sizeof(rq));
			c->in_start += sizeof(rq);
			conn_request(c, &rq);
			break;
		}
		case ST_OPT_DATA:
		case ST_REQ_PAYLOAD:
		case ST_REQ_DISCARD: {
			size_t n = avail < c->need ? avail : c->need;

			if (c->dst)
				memcpy(c->dst + c->got, p, n);
			c->in_start += n;
			c->got += n;
			c->need -= n;
			if (c->need)
				return true;
			conn_data_done(c);
			break;
		}
		}
	}
}

/* One recv(): > 0 on progress, 0 when the socket is empty, < 0 when c was closed. */
static int conn_recv(struct nbd_conn *c)
{
	bool direct = c->dst && c->need && c->in_start == c->in_end;
	size_t room;
	ssize_t n;
	char *buf;

	if (c->in_start == c->in_end) {
		c->in_start = c->in_end = 0;
	} else if (c->in_start) {
		memmove(c->inbuf, c->inbuf + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	/* Large payloads go straight to their buffer, not through inbuf. */
	if (direct) {
		buf = c->dst + c->got;
		room = c->need;
	} else {
		buf = c->inbuf + c->in_end;
		room = XM_NBD_INBUF - c->in_end;
	}
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
	if (direct) {
		c->got += (size_t)n;
		c->need -= (size_t)n;
	} else {
		c->in_end += (size_t)n;
	}
	return 1;
}

/* Parses buffered input and reads more until the socket is empty, a limit is hit or c closes. */
static void conn_input(struct nbd_conn *c)
{
	int budget = XM_NBD_RECV_BUDGET;

	c->in_input = true;
	c->paused = false;
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

static void on_readable(struct xm_watch *w, int revents)
{
	struct nbd_conn *c = container_of(w, struct nbd_conn, in_watch);

	if (c->closed || c->draining || c->paused)
		return;
	conn_input(c);
}

static void on_in_released(struct xm_watch *w)
{
	struct nbd_conn *c = container_of(w, struct nbd_conn, in_watch);

	c->in_watched = false;
	conn_maybe_free(c);
}

static void conn_close(struct nbd_conn *c, const char *why)
{
	struct xm_nbd_server *s = c->srv;
	struct out_chunk *chunk;

	if (c->closed)
		return;
	c->closed = true;
	pr_debug("nbd: connection %llu: closing: %s", (unsigned long long)c->id, why);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->counters.active--;

	if (c->in_watched && unwatch(s->loop, &c->in_watch, on_in_released))
		pr_warn("nbd: cannot stop watching connection %llu", (unsigned long long)c->id);
	/* The poll's own completion (-ECANCELED) releases pollout_io. */
	if (c->pollout_armed && cancel_request(s->loop, &c->pollout_io))
		pr_warn("nbd: cannot cancel a poll on connection %llu", (unsigned long long)c->id);
	close(c->fd);
	c->fd = -1;

	while ((chunk = c->out_head)) {
		c->out_head = chunk->next;
		free(chunk);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	free(c->opt_data);
	c->opt_data = NULL;
	if (c->cur) {
		struct nbd_ireq *ir = c->cur;

		size_t charged = ir->charged;

		c->cur = NULL;
		free(ir->req.data);
		free(ir);
		srv_uncharge(s, charged);
	}
	conn_maybe_free(c);
}

static void conn_new(struct xm_nbd_server *s, int fd, bool tcp)
{
	struct nbd_hello hello = {
		.magic = htobe64(NBD_INIT_MAGIC),
		.opts_magic = htobe64(NBD_OPTS_MAGIC),
		.flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	struct nbd_conn *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (c)
		c->inbuf = malloc(XM_NBD_INBUF);
	if (!c || !c->inbuf) {
		pr_warn("nbd: accept: out of memory");
		free(c);
		close(fd);
		return;
	}
	/* Replies are whole messages already: do not hold them back. */
	if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		pr_debug("nbd: TCP_NODELAY: %s", strerror(errno));
	c->srv = s;
	c->fd = fd;
	c->state = ST_CLIENT_FLAGS;
	c->pollout_io.fn = on_pollout;
	c->kick_io.fn = on_kick;
	err = xm_loop_watch(s->loop, &c->in_watch, fd, POLLIN, on_readable);
	if (err) {
		pr_warn("nbd: accept: cannot watch the connection: %s", strerror(-err));
		free(c->inbuf);
		free(c);
		close(fd);
		return;
	}
	c->in_watched = true;
	c->id = ++s->counters.connections;
	s->counters.active++;
	s->nconns++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	pr_debug("nbd: connection %llu: accepted%s", (unsigned long long)c->id,
		 tcp ? " over TCP" : "");
	conn_send_buf(c, &hello, sizeof(hello));
}

static void on_listener(struct xm_watch *w, int revents)
{
	struct nbd_listener *l = container_of(w, struct nbd_listener, watch);

	while (!l->srv->stopped) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				pr_warn("nbd: accept: %s", strerror(errno));
			return;
		}
		conn_new(l->srv, fd, l->tcp);
	}
}

static void on_listener_released(struct xm_watch *w)
{
	struct nbd_listener *l = container_of(w, struct nbd_listener, watch);

	l->watched = false;
	srv_maybe_free(l->srv);
}

static int listen_unix(struct xm_nbd_server *s, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		pr_warn("nbd: socket path '%s' is too long (at most %zu bytes)", path,
			sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	/* A socket file left behind by an earlier run; anything else is not ours to remove. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode) && unlink(path) && errno != ENOENT) {
		err = -errno;
		pr_warn("nbd: remove stale socket '%s': %s", path, strerror(errno));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_warn("nbd: socket: %s", strerror(errno));
		return err;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		pr_warn("nbd: bind '%s': %s", path, strerror(errno));
		goto out_close;
	}
	s->unix_bound = true;
	if (chmod(path, 0660)) {
		err = -errno;
		pr_warn("nbd: chmod '%s': %s", path, strerror(errno));
		goto out_close;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		pr_warn("nbd: listen on '%s': %s", path, strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
}

static int listen_tcp(__u16 port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd, one = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_warn("nbd: socket: %s", strerror(errno));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) {
		err = -errno;
		pr_warn("nbd: SO_REUSEADDR: %s", strerror(errno));
		goto out_close;
	}
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		err = -errno;
		pr_warn("nbd: bind 127.0.0.1:%u: %s", port, strerror(errno));
		goto out_close;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		pr_warn("nbd: listen on 127.0.0.1:%u: %s", port, strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
}

static bool is_pow2(__u32 v)
{
	return v && !(v & (v - 1));
}

static bool config_valid(const struct xm_nbd_config *cfg)
{
	if (!cfg->unix_path && !cfg->tcp_port)
		return false;
	/* proto.md, "Block size constraints". */
	if (!is_pow2(cfg->min_block) || cfg->min_block > 65536)
		return false;
	if (!is_pow2(cfg->pref_block) || cfg->pref_block < cfg->min_block)
		return false;
	if (cfg->max_block < cfg->min_block || cfg->max_block % cfg->min_block)
		return false;
	return cfg->size % cfg->min_block == 0;
}

/* Closes the listeners; the server is freed once their watches are released. */
static void srv_close_listeners(struct xm_nbd_server *s)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct nbd_listener *l = &s->lis[i];

		if (l->watched && unwatch(s->loop, &l->watch, on_listener_released))
			pr_warn("nbd: cannot stop watching a listener");
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	if (s->unix_bound && unlink(s->unix_path) && errno != ENOENT)
		pr_warn("nbd: remove '%s': %s", s->unix_path, strerror(errno));
	s->unix_bound = false;
}

struct xm_nbd_server *xm_nbd_server_start(struct xm_loop *loop, const struct xm_nbd_config *cfg,
					  const struct xm_nbd_ops *ops, void *ctx)
{
	struct xm_nbd_server *s;
	unsigned int i;
	int err;

	if (!loop || !cfg || !ops || !ops->submit || !config_valid(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cfg = *cfg;
	s->ops = *ops;
	s->ctx = ctx;
	s->export_name = strdup(cfg->export_name ? cfg->export_name : "");
	s->unix_path = cfg->unix_path ? strdup(cfg->unix_path) : NULL;
	if (!s->export_name || (cfg->unix_path && !s->unix_path)) {
		err = -ENOMEM;
		goto out_free;
	}
	s->cfg.export_name = s->export_name;
	s->cfg.unix_path = s->unix_path;
	for (i = 0; i < 2; i++) {
		s->lis[i].srv = s;
		s->lis[i].fd = -1;
	}
	s->lis[1].tcp = true;

	if (s->unix_path) {
		err = listen_unix(s, s->unix_path);
		if (err < 0)
			goto out_close;
		s->lis[0].fd = err;
	}
	if (cfg->tcp_port) {
		err = listen_tcp(cfg->tcp_port);
		if (err < 0)
			goto out_close;
		s->lis[1].fd = err;
	}
	for (i = 0; i < 2; i++) {
		struct nbd_listener *l = &s->lis[i];

		if (l->fd < 0)
			continue;
		err = xm_loop_watch(loop, &l->watch, l->fd, POLLIN, on_listener);
		if (err) {
			pr_warn("nbd: cannot watch the listening socket: %s", strerror(-err));
			goto out_close;
		}
		l->watched = true;
	}
	pr_debug("nbd: serving '%s' (%llu bytes)%s%s%s", s->export_name,
		 (unsigned long long)cfg->size, s->unix_path ? " on " : "",
		 s->unix_path ? s->unix_path : "", cfg->tcp_port ? " and on TCP" : "");
	return s;

out_close:
	/* A listener already watched keeps s alive until its release. */
	s->stopped = true;
	srv_close_listeners(s);
	if (s->lis[0].watched || s->lis[1].watched) {
		errno = -err;
		return NULL;
	}
out_free:
	free(s->unix_path);
	free(s->export_name);
	free(s);
	errno = -err;
	return NULL;
}

void xm_nbd_server_stop(struct xm_nbd_server *s)
{
	if (!s || s->stopped)
		return;
	s->stopped = true;
	s->in_stop = true;
	srv_close_listeners(s);
	while (s->conns)
		conn_close(s->conns, "server stopping");
	s->in_stop = false;
	pr_debug("nbd: stopped, %u requests still at the export", s->outstanding);
	srv_maybe_free(s);
}

__u32 xm_nbd_server_outstanding(const struct xm_nbd_server *s)
{
	return s->outstanding;
}

const struct xm_nbd_counters *xm_nbd_server_counters(const struct xm_nbd_server *s)
{
	return &s->counters;
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

void xm_nbd_done(struct xm_nbd_req *req, int err, const void *data)
{
	struct nbd_ireq *ir = container_of(req, struct nbd_ireq, req);
	struct nbd_conn *c = ir->conn;
	struct xm_nbd_server *s = c->srv;
	__u32 error = nbd_error(err);
	size_t charged;

	if (!error && req->type == XM_NBD_CMD_READ && !data) {
		pr_debug("nbd: connection %llu: READ done without data", (unsigned long long)c->id);
		error = NBD_EIO;
	}
	if (!error && req->type == XM_NBD_CMD_WRITE)
		s->counters.bytes_written += req->len;
	if (!c->closed) {
		struct nbd_simple_reply r = {
			.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
			.error = htobe32(error),
			.cookie = htobe64(req->cookie),
		};
		struct iovec iov[2] = {
			{.iov_base = &r, .iov_len = sizeof(r)},
			{.iov_base = (void *)data, .iov_len = req->len},
		};
		bool payload = !error && req->type == XM_NBD_CMD_READ;

		if (error)
			s->counters.replies_err++;
		else if (payload)
			s->counters.bytes_read += req->len;
		conn_send(c, iov, payload ? 2 : 1);
	}
	charged = ir->charged;
	c->outstanding--;
	s->outstanding--;
	free(req->data);
	free(ir);
	if (charged)
		srv_uncharge(s, charged);
	if (c->closed)
		conn_maybe_free(c);
	else
		conn_progress(c);
}
