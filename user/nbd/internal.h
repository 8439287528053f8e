/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the NBD server's files share: the wire format, the limits, a connection and the server.
 *   server.c   listeners, connections, replies out
 *   conn.c     what a connection reads: the handshake's options, requests and WRITE payloads
 *   tls.c      TLS between those two and the socket, after NBD_OPT_STARTTLS
 *   request.c  requests after the checks: unaligned ones made aligned, writes ordered, the export's
 *              answers replied
 *   limits.c   what a connection may hold (the write budget, its share) and the deadline for a
 *              message it started
 *   order.c    the order of overlapping writes (pure, order.h)
 */
#ifndef XM_NBD_INTERNAL_H
#define XM_NBD_INTERNAL_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <linux/types.h>

#include "nbd/nbd.h"
#include "nbd/order.h"
#include "util/list.h"

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
#define NBD_OPT_STARTTLS    5u
#define NBD_OPT_INFO	    6u
#define NBD_OPT_GO	    7u

#define NBD_REP_ACK	     1u
#define NBD_REP_SERVER	     2u
#define NBD_REP_INFO	     3u
#define NBD_REP_FLAG_ERROR   (1u << 31)
#define NBD_REP_ERR_UNSUP    (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_INVALID  (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5u)

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

/* Limits.  The fuzz target (tests/fuzz/) builds with smaller byte and recv() limits, so that one
 * connection reaches each of them in a few kilobytes of input. */
#define XM_NBD_MAX_OPT_LEN     (64u * 1024) /* longer option data: drop the client */
#define XM_NBD_MAX_OUTSTANDING 64u	    /* per connection, at the export */
#ifndef XM_NBD_MAX_WRITE_BYTES
#define XM_NBD_MAX_WRITE_BYTES (64ull << 20) /* per server, WRITE payload bytes received */
#endif
#ifndef XM_NBD_MAX_QUEUED
#define XM_NBD_MAX_QUEUED (8u << 20) /* per connection, replies not yet sent */
#endif
#ifndef XM_NBD_INBUF
#define XM_NBD_INBUF (16u * 1024) /* per connection, received and not parsed (> a header) */
#endif
#ifndef XM_NBD_RECV_BUDGET
#define XM_NBD_RECV_BUDGET 64 /* recv() calls per turn before yielding */
#endif
#define XM_NBD_KNOWN_CMD_FLAGS (XM_NBD_CMD_FLAG_FUA | XM_NBD_CMD_FLAG_NO_HOLE)
#define XM_NBD_NAME_LOG_MAX    64 /* export name characters shown in logs */

struct nbd_tls_conn;
struct nbd_tls_creds;

enum conn_state {
	ST_CLIENT_FLAGS, /* waiting for the client's 32-bit flags */
	ST_OPT_HDR,	 /* option haggling: next option header */
	ST_OPT_DATA,	 /* option data into opt_data */
	ST_REQ_HDR,	 /* transmission: next request header */
	ST_REQ_PAYLOAD,	 /* WRITE payload into cur->req.data */
	ST_REQ_DISCARD,	 /* WRITE payload of a refused request, thrown away */
};

/* What a request waits for next; the export is handed one request of it at a time. */
enum ireq_step {
	STEP_WAIT,   /* in srv->order behind a conflicting write, or in srv->todo */
	STEP_FILL,   /* RMW: reading a head or tail block of its span */
	STEP_EXPORT, /* the request itself (READ of the span, the span's WRITE, ...) */
};

/* Reply bytes that send() did not take yet. */
struct out_chunk {
	struct out_chunk *next;
	size_t len;
	size_t off;
	char data[];
};

/*
 * A client's request from its header to its reply.  The export sees req, always block-aligned: for
 * an unaligned request the span of whole blocks around the client's range (docs/protocol.md §8.4).
 */
struct nbd_ireq {
	struct xm_nbd_req req;
	struct nbd_conn *conn;
	size_t charged; /* payload bytes counted in srv->write_bytes and conn->charged */
	__u16 type;	/* the client's command, flags and range */
	__u16 flags;
	__u64 offset;
	__u32 len;
	__u64 span_start, span_end; /* the whole blocks the client's range touches */
	void *buf; /* WRITE, WRITE_ZEROES: the span, the client's bytes at offset */
	enum ireq_step step;
	bool rmw;     /* unaligned write: reads the head and tail blocks, then writes the span */
	bool ordered; /* range is in srv->order */
	bool held; /* the export holds req, or the reply is being sent: requests_drop leaves it */
	struct xm_nbd_range range;
	struct xm_list todo; /* srv->todo: the next step waits for the server's kick */
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
	bool tls_required; /* TCP on a server with keys: FORCEDTLS (proto.md, "TLS support") */
	bool told_tls;	   /* logged an option refused before TLS */
	struct nbd_tls_conn *tls; /* after NBD_OPT_STARTTLS; tls.c */
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
	__u32 outstanding; /* requests taken and not replied (at the export, or waiting for it) */

	/* limits.c */
	size_t charged;	  /* WRITE payload bytes received and not done: srv->write_bytes' part */
	__u64 msgs;	  /* messages finished (client flags, options, requests) */
	__u64 stall_msgs; /* the message the deadline clock runs for */
	__u64 stall_since;
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
	struct nbd_tls_creds *tls;  /* NULL: no TLS */
	bool unix_bound;	    /* we created cfg.unix_path */
	struct nbd_conn *conns;	    /* open connections */
	__u32 nconns;		    /* connection structs not freed yet, open or not */
	__u32 outstanding;
	__u64 write_bytes;	   /* WRITE payload bytes received and not done */
	__u64 payload_bytes;	   /* of them, payloads still arriving */
	__u32 holders;		   /* connections with charged bytes */
	__u32 npaused;		   /* connections stopped at a limit */
	struct nbd_conn *finisher; /* may finish its payload past the budget (limits.c) */
	struct xm_nbd_order order; /* writes taken and not done */
	struct xm_list todo;	   /* nbd_ireq.todo */
	struct xm_io kick_io;	   /* NOP: runs srv->todo and what srv->order lets start */
	bool kick_armed;
	bool in_kick;
	bool stopped;
	bool in_stop;
	struct xm_nbd_counters counters;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* server.c */
void conn_close(struct nbd_conn *c, const char *why);
void conn_send(struct nbd_conn *c, const struct iovec *iov, int iovcnt);
void conn_send_raw(struct nbd_conn *c, const struct iovec *iov, int iovcnt);
void conn_send_buf(struct nbd_conn *c, const void *buf, size_t len);
void conn_flush(struct nbd_conn *c);
void conn_simple_reply(struct nbd_conn *c, __u64 cookie, __u32 error);
void conn_kick(struct nbd_conn *c);
void conn_progress(struct nbd_conn *c);
void conn_maybe_free(struct nbd_conn *c);
void srv_maybe_free(struct xm_nbd_server *s);

/* conn.c */
void conn_input(struct nbd_conn *c);
void conn_on_readable(struct xm_watch *w, int revents);

/* request.c */
/* NULL when out of memory; a WRITE's payload goes to ir->buf + (offset - span_start). */
struct nbd_ireq *ireq_new(struct nbd_conn *c, __u16 type, __u16 flags, __u64 cookie, __u64 offset,
			  __u32 len);
void ireq_free(struct nbd_ireq *ir);
/* The request is whole (a WRITE with its payload): hand it on.  May reply at once. */
void request_start(struct nbd_ireq *ir);
/* c closes: its requests that the export does not hold are dropped. */
void requests_drop(struct nbd_conn *c);
void srv_kick(struct xm_nbd_server *s);

/* limits.c */
bool conn_over_limit(const struct nbd_conn *c);
void conn_set_paused(struct nbd_conn *c, bool paused);
/* Bytes the data state may take now: its need, or what the write budget allows of a payload;
 * in_hand: bytes are buffered, so c may be the one that finishes past the budget. */
size_t conn_data_room(struct nbd_conn *c, bool in_hand);
void conn_data_took(struct nbd_conn *c, size_t n);
/* The WRITE's payload is whole, or c closes with one half read. */
void conn_payload_over(struct nbd_conn *c);
void srv_uncharge(struct xm_nbd_server *s, struct nbd_ireq *ir);

#endif
