/* SPDX-License-Identifier: GPL-2.0 */
/* NBD server: fixed newstyle handshake and the transmission phase, on Unix and TCP sockets. */
#ifndef XM_NBD_H
#define XM_NBD_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h>

#include "util/loop.h"

/* Command types and flags as on the wire (NBD protocol, doc/proto.md). */
enum xm_nbd_cmd {
	XM_NBD_CMD_READ = 0,
	XM_NBD_CMD_WRITE = 1,
	XM_NBD_CMD_DISC = 2,
	XM_NBD_CMD_FLUSH = 3,
	XM_NBD_CMD_TRIM = 4,
	XM_NBD_CMD_WRITE_ZEROES = 6,
};
#define XM_NBD_CMD_FLAG_FUA	(1u << 0)
#define XM_NBD_CMD_FLAG_NO_HOLE (1u << 1)

/*
 * A validated request handed to the export.  Owned by the server; valid until xm_nbd_done.  Its
 * offset and length are multiples of min_block whatever the client sent (an unaligned request is
 * served around it: docs/protocol.md §8.4); a READ or WRITE is at most max_block + min_block long.
 */
struct xm_nbd_req {
	__u16 type;  /* enum xm_nbd_cmd: READ, WRITE, FLUSH, TRIM or WRITE_ZEROES */
	__u16 flags; /* XM_NBD_CMD_FLAG_* */
	__u64 offset;
	__u32 len;
	void *data; /* WRITE: len bytes in a 4096-aligned buffer owned by the request; else NULL */
	void *priv; /* free for the export */
	__u64 cookie; /* the client's handle; for logs */
};

struct xm_nbd_ops {
	/* Every request that passed the checks.  The export calls xm_nbd_done exactly once. */
	void (*submit)(void *ctx, struct xm_nbd_req *req);
};

struct xm_nbd_config {
	const char *unix_path; /* NULL: no Unix socket */
	bool unix_group;       /* false: the socket is 0600; true: 0660 with group unix_gid */
	gid_t unix_gid;
	__u16 tcp_port;		  /* 0: no TCP listener */
	const char *tcp_addr;	  /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
	const char *tls_psk_file; /* TCP needs TLS with these keys (psktool format); NULL: no TLS */
	const char *export_name;
	__u64 size;	  /* export size in bytes, a multiple of min_block */
	__u32 min_block;  /* the export's alignment (power of two); clients need not keep to it */
	__u32 pref_block; /* advertised preferred block size */
	__u32 max_block;  /* largest READ/WRITE length accepted from a client */
};

struct xm_nbd_counters {
	__u64 connections;  /* accepted in total */
	__u64 active;	    /* open now */
	__u64 requests;	    /* handed to the export */
	__u64 replies_err;  /* replies with a nonzero error */
	__u64 bad_requests; /* refused by the checks (error reply or disconnect) */
	__u64 bytes_read;
	__u64 bytes_written;
	__u64 unaligned; /* requests served around their range (wider READ, read-modify-write) */
	__u64 timeouts;	 /* connections dropped for not finishing a message they started */
};

struct xm_nbd_server;

/* Listens and serves.  Returns NULL with errno set. */
struct xm_nbd_server *xm_nbd_server_start(struct xm_loop *loop, const struct xm_nbd_config *cfg,
					  const struct xm_nbd_ops *ops, void *ctx);
/* Closes the listeners and every connection; requests still with the export stay valid until
 * their xm_nbd_done, which then only frees them.  Frees the server once the last one is done. */
void xm_nbd_server_stop(struct xm_nbd_server *s);
/* A client that started a message (option, request header, WRITE payload) and has not finished it
 * this long after is disconnected (docs/protocol.md §8.4): 32 MiB at 3.2 MB/s. */
#define XM_NBD_MESSAGE_DEADLINE_NS (10ull * 1000000000)

/* Drops the connections that started a message and did not finish it in time; call it often
 * (every few ms).  now: any clock in ns, never 0. */
void xm_nbd_server_tick(struct xm_nbd_server *s, __u64 now);
/* Requests taken from clients and not yet replied. */
__u32 xm_nbd_server_outstanding(const struct xm_nbd_server *s);
const struct xm_nbd_counters *xm_nbd_server_counters(const struct xm_nbd_server *s);

/* Checks a PSK file as the server would load it (user:hexkey lines, as psktool writes them;
 * owned by this user, mode 0600): 0, or -errno with a reason in err. */
int xm_nbd_tls_psk_check(const char *path, char *err, size_t errlen);

/* Completes a request: err is 0 or -errno; READ passes req->len bytes in data (copied). */
void xm_nbd_done(struct xm_nbd_req *req, int err, const void *data);

#endif
