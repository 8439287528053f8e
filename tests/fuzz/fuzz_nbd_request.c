// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the NBD server (user/nbd) fed by a hostile client over a real Unix socket, from the
 * first byte after the greeting: option haggling, requests, WRITE payloads and disconnects, in
 * chunks of any size, with a fake event loop (fake_loop.h) and a fake export that checks every
 * request it is handed and completes them now, later, out of order or with errors.
 *
 * Input: two control bytes, then the bytes the client sends.
 *   ctl[0] bits 0-1  when the export completes requests (enum completion)
 *          bit  2    the export fails requests whose cookie says so (complete_errors[])
 *          bits 3-5  the client sends in chunks of chunk_sizes[] bytes
 *          bits 6-7  the server's configuration (configs[])
 *   ctl[1] bits 0-3  the n-th loop submission or watch fails, as on a full ring (0: none)
 *          bit  4    the server is stopped while the export still holds requests
 *          bit  5    the client closes its socket at the end instead of only its sending side
 *          bit  6    the server's send buffer on the connection is as small as the kernel allows,
 *                    so replies are sent in pieces and queued
 *          bit  7    another client connects first and stays idle until the end
 *
 * Besides the sanitizers, it fails (aborts) when the export is handed a request that breaks the
 * checks, when a read-modify-write is at the export beside another write to its blocks or writes
 * back other bytes around the client's than it read, when more than XM_NBD_MAX_OUTSTANDING
 * requests are at the export, when the server holds more WRITE payload than its budget and one
 * largest WRITE, when the server stops reading although nothing holds it, when a connection
 * that is in the middle of a message outlives the deadline, or when anything (a connection, a
 * submission, a watch, write bytes) is left once the client is gone and every request is
 * completed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_loop.h"
#include "nbd/internal.h"
#include "util/log.h"

enum completion {
	COMPLETE_AT_ONCE,      /* inside submit */
	COMPLETE_EACH_CHUNK,   /* in order, whenever the server has taken a chunk */
	COMPLETE_NEWEST_FIRST, /* the same, newest first */
	COMPLETE_WHEN_STUCK,   /* only when the server reads no more */
};

/* Requests are kept small (the limits are too, see FUZZ_NBD_LIMITS in the Makefile): moving
 * bytes finds nothing and costs runs. */
#define MAX_BLOCK (32u * 1024)

static const struct xm_nbd_config configs[4] = {
	/* The daemon's shape: 512-byte blocks, requests of many blocks. */
	{.export_name = "xm-fuzz",
	 .size = 1u << 20,
	 .min_block = 512,
	 .pref_block = 4096,
	 .max_block = MAX_BLOCK},
	/* One block size only. */
	{.export_name = "x",
	 .size = 64u << 10,
	 .min_block = 4096,
	 .pref_block = 4096,
	 .max_block = 4096},
	/* Byte granularity and the largest export there is: offset + length overflow. */
	{.export_name = "", .size = UINT64_MAX, .min_block = 1, .pref_block = 1, .max_block = 8192},
	/* An empty export: every range is out of it. */
	{.export_name = "empty", .size = 0, .min_block = 1, .pref_block = 512, .max_block = 1},
};

static const size_t chunk_sizes[8] = {1u << 20, 1, 2, 3, 7, 28, 512, 4109};
#define MAX_SMALL_SENDS 32

/* What the export answers, by cookie % 8; NO_DATA is a READ done without its bytes. */
#define NO_DATA 1
static const int complete_errors[8] = {0,	-EIO,	    -ENOSPC,	-EPERM,
				       -ENOMEM, -ESHUTDOWN, -EOVERFLOW, NO_DATA};

struct fuzz_run {
	const struct xm_nbd_config *cfg;
	struct xm_nbd_server *srv;
	enum completion completion;
	bool errors;
	int client;	  /* -1 once closed */
	bool client_gone; /* the server closed its end */
	struct xm_nbd_req *held[XM_NBD_MAX_OUTSTANDING];
	unsigned int nheld;
};

static struct xm_loop loop; /* never initialized: only passed through to the fake loop */
/* A READ's bytes: read_byte(offset) for each byte, so that an RMW's write can be checked. */
static unsigned char read_data[MAX_BLOCK + 4096];
static unsigned char drain_buf[64 * 1024];
static char sock_dir[64], sock_path[128];

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_nbd_request: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static unsigned char read_byte(__u64 off)
{
	return (unsigned char)(off * 31 + (off >> 9) + 1);
}

/* The server's own view of a request: whether it is a read-modify-write and its span. */
static const struct nbd_ireq *ireq_of(const struct xm_nbd_req *req)
{
	return container_of(req, struct nbd_ireq, req);
}

static bool changes_data(const struct xm_nbd_req *req)
{
	return req->type == XM_NBD_CMD_WRITE || req->type == XM_NBD_CMD_WRITE_ZEROES ||
	       req->type == XM_NBD_CMD_TRIM;
}

/* An RMW reads its span and writes it back: no other write to those blocks may be at the export
 * meanwhile, in either order (request.c, order.c). */
static void check_order(const struct fuzz_run *r, const struct xm_nbd_req *req)
{
	const struct nbd_ireq *ir = ireq_of(req);
	__u64 s0 = ir->rmw ? ir->span_start : req->offset;
	__u64 s1 = ir->rmw ? ir->span_end : req->offset + req->len;
	unsigned int i;

	if (!ir->rmw && !changes_data(req))
		return;
	for (i = 0; i < r->nheld; i++) {
		const struct xm_nbd_req *h = r->held[i];
		const struct nbd_ireq *hi = ireq_of(h);
		__u64 h0 = hi->rmw ? hi->span_start : h->offset;
		__u64 h1 = hi->rmw ? hi->span_end : h->offset + h->len;

		if (!hi->rmw && !changes_data(h))
			continue;
		if ((ir->rmw || hi->rmw) && s0 < h1 && h0 < s1)
			fuzz_fail("a read-modify-write of [%llu, %llu) beside a write of [%llu, "
				  "%llu)",
				  (unsigned long long)s0, (unsigned long long)s1,
				  (unsigned long long)h0, (unsigned long long)h1);
	}
	/* Its WRITE carries, around the client's bytes, what its READs returned. */
	if (ir->rmw && req->type == XM_NBD_CMD_WRITE) {
		const unsigned char *d = req->data;
		__u64 off;

		for (off = s0; off < s1; off++) {
			if (off >= ir->offset && off < ir->offset + ir->len)
				continue;
			if (d[off - s0] != read_byte(off))
				fuzz_fail("a read-modify-write writes back 0x%02x at %llu, read "
					  "0x%02x",
					  d[off - s0], (unsigned long long)off, read_byte(off));
		}
	}
}

/* What request_check() in conn.c promises the export, written down again from the protocol. */
static void check_request(const struct xm_nbd_config *cfg, const struct xm_nbd_req *req)
{
	bool rw = req->type == XM_NBD_CMD_READ || req->type == XM_NBD_CMD_WRITE;
	unsigned int sum = 0;
	__u32 i;

	switch (req->type) {
	case XM_NBD_CMD_READ:
	case XM_NBD_CMD_WRITE:
	case XM_NBD_CMD_FLUSH:
	case XM_NBD_CMD_TRIM:
	case XM_NBD_CMD_WRITE_ZEROES:
		break;
	default:
		fuzz_fail("the export got command type %u", req->type);
	}
	if (req->flags & ~(XM_NBD_CMD_FLAG_FUA | XM_NBD_CMD_FLAG_NO_HOLE))
		fuzz_fail("the export got unknown flags 0x%x", req->flags);
	if ((req->flags & XM_NBD_CMD_FLAG_NO_HOLE) && req->type != XM_NBD_CMD_WRITE_ZEROES)
		fuzz_fail("the export got NO_HOLE on command type %u", req->type);
	if (req->type == XM_NBD_CMD_FLUSH) {
		if (req->offset || req->len || req->data)
			fuzz_fail("the export got a FLUSH with a range or data");
		return;
	}
	if (!req->len || req->offset % cfg->min_block || req->len % cfg->min_block)
		fuzz_fail("the export got an empty or unaligned range: type %u offset %llu len %u",
			  req->type, (unsigned long long)req->offset, req->len);
	if (req->offset > cfg->size || req->len > cfg->size - req->offset)
		fuzz_fail("the export got a range past its end: type %u offset %llu len %u",
			  req->type, (unsigned long long)req->offset, req->len);
	/* An unaligned request's span may reach one block further. */
	if (rw && req->len > cfg->max_block + cfg->min_block)
		fuzz_fail("the export got %u bytes, over max_block %u and a block", req->len,
			  cfg->max_block);
	if (req->type != XM_NBD_CMD_WRITE) {
		if (req->data)
			fuzz_fail("the export got data with command type %u", req->type);
		return;
	}
	if (!req->data || (uintptr_t)req->data % 4096)
		fuzz_fail("the export got a WRITE buffer that is missing or not 4096-aligned");
	/* Every payload byte must be there (the sanitizer checks the reads). */
	for (i = 0; i < req->len; i++)
		sum += ((const unsigned char *)req->data)[i];
	__asm__ volatile("" : : "r"(sum));
}

static void complete(struct fuzz_run *r, struct xm_nbd_req *req)
{
	int err = r->errors ? complete_errors[req->cookie % 8] : 0;
	__u32 i;

	if (err == NO_DATA) {
		xm_nbd_done(req, 0, NULL);
		return;
	}
	if (req->type == XM_NBD_CMD_READ && !err)
		for (i = 0; i < req->len; i++)
			read_data[i] = read_byte(req->offset + i);
	xm_nbd_done(req, err, req->type == XM_NBD_CMD_READ && !err ? read_data : NULL);
}

/* The budget holds, but for one connection finishing its payload past it (limits.c). */
static void check_budget(const struct fuzz_run *r)
{
	if (r->srv->write_bytes > XM_NBD_MAX_WRITE_BYTES + r->cfg->max_block)
		fuzz_fail("%llu bytes of WRITE payload held, over the budget %llu and a WRITE",
			  (unsigned long long)r->srv->write_bytes,
			  (unsigned long long)XM_NBD_MAX_WRITE_BYTES);
}

static void export_submit(void *ctx, struct xm_nbd_req *req)
{
	struct fuzz_run *r = ctx;

	check_request(r->cfg, req);
	check_order(r, req);
	check_budget(r);
	if (r->completion == COMPLETE_AT_ONCE) {
		complete(r, req);
		return;
	}
	if (r->nheld == XM_NBD_MAX_OUTSTANDING)
		fuzz_fail("more than %u requests at the export", XM_NBD_MAX_OUTSTANDING);
	r->held[r->nheld++] = req;
}

static const struct xm_nbd_ops export_ops = {.submit = export_submit};

/* Completes every request the export holds; returns true if there were any. */
static bool complete_held(struct fuzz_run *r, bool newest_first)
{
	bool any = r->nheld > 0;

	/* A completion may let the server read on and hand over more: take them in later rounds. */
	while (r->nheld) {
		struct xm_nbd_req *req;

		if (newest_first) {
			req = r->held[--r->nheld];
		} else {
			req = r->held[0];
			memmove(&r->held[0], &r->held[1], --r->nheld * sizeof(r->held[0]));
		}
		complete(r, req);
	}
	return any;
}

/* Reads and drops what the server sent. */
static void drain_client(struct fuzz_run *r)
{
	while (r->client >= 0 && !r->client_gone) {
		ssize_t n = recv(r->client, drain_buf, sizeof(drain_buf), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (!n || (errno != EAGAIN && errno != EINTR))
			r->client_gone = true;
		break;
	}
}

/* Lets the loop, the client and (unless it waits until stuck) the export run until nothing
 * moves; returns true if anything did.  The server sends only when something ran, so the client
 * reads first and then only after that. */
static bool settle(struct fuzz_run *r)
{
	bool any = false;

	drain_client(r);
	for (;;) {
		bool moved = fake_loop_settle();

		if (r->completion == COMPLETE_EACH_CHUNK || r->completion == COMPLETE_NEWEST_FIRST)
			moved |= complete_held(r, r->completion == COMPLETE_NEWEST_FIRST);
		if (!moved)
			return any;
		any = true;
		drain_client(r);
	}
}

/* Past the deadline: a connection still waiting for the rest of a message it started is gone;
 * one at a message's end, held back by the server, or draining stays. */
static void check_deadline(struct fuzz_run *r)
{
	const struct nbd_conn *c;

	xm_nbd_server_tick(r->srv, 1);
	xm_nbd_server_tick(r->srv, 1 + XM_NBD_MESSAGE_DEADLINE_NS);
	for (c = r->srv->conns; c; c = c->next) {
		bool mid = c->state == ST_OPT_DATA || c->state == ST_REQ_PAYLOAD ||
			   c->state == ST_REQ_DISCARD || c->in_end > c->in_start;

		if (mid && !c->paused && !c->draining)
			fuzz_fail("connection %llu in the middle of a message (state %d) outlived "
				  "the deadline",
				  (unsigned long long)c->id, c->state);
	}
}

static void client_send_all(struct fuzz_run *r, const uint8_t *data, size_t len, size_t chunk)
{
	unsigned int sends = 0;
	size_t pos = 0;
	int idle = 0;

	while (pos < len && !r->client_gone) {
		/* Small chunks for the first MAX_SMALL_SENDS sends, then the rest at once: a header
		 * cut anywhere is in there, and a long input stays cheap. */
		size_t n = ++sends > MAX_SMALL_SENDS || len - pos < chunk ? len - pos : chunk;
		ssize_t sent = send(r->client, data + pos, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		bool moved = sent > 0;

		if (sent < 0 && errno != EAGAIN && errno != EINTR) {
			r->client_gone = true; /* EPIPE, ECONNRESET: the server hung up */
			break;
		}
		if (sent > 0)
			pos += (size_t)sent;
		fake_loop_fire();
		moved |= settle(r);
		check_budget(r);
		if (moved) {
			idle = 0;
			continue;
		}
		/* The server reads no more: only requests the export holds may stop it. */
		if (complete_held(r, false))
			continue;
		if (++idle == 3)
			fuzz_fail("the server stopped reading: %zu of %zu bytes taken", pos, len);
	}
}

static void cleanup_sock_dir(void)
{
	unlink(sock_path);
	rmdir(sock_dir);
}

static void make_sock_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (sock_dir[0])
		return;
	snprintf(sock_dir, sizeof(sock_dir), "%s/xm-fuzz-nbd-XXXXXX",
		 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(sock_dir))
		fuzz_fail("mkdtemp '%s': %s", sock_dir, strerror(errno));
	snprintf(sock_path, sizeof(sock_path), "%s/nbd.sock", sock_dir);
	atexit(cleanup_sock_dir);
}

static int client_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fuzz_fail("socket: %s", strerror(errno));
	strcpy(sun.sun_path, sock_path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		fuzz_fail("connect '%s': %s", sock_path, strerror(errno));
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run r = {.client = -1};
	struct xm_nbd_config cfg;
	bool stop_early, close_client;
	int idle = -1;

	if (size < 2)
		return 0;
	make_sock_dir();
	r.completion = (enum completion)(data[0] & 3);
	r.errors = data[0] & 4;
	r.cfg = &configs[data[0] >> 6];
	stop_early = data[1] & 0x10;
	close_client = data[1] & 0x20;
	fake_loop_reset(data[1] & 0xf);

	cfg = *r.cfg;
	cfg.unix_path = sock_path;
	r.srv = xm_nbd_server_start(&loop, &cfg, &export_ops, &r);
	if (!r.srv)
		fuzz_fail("xm_nbd_server_start: %s", strerror(errno));
	fake_loop_arm_faults();
	if (data[1] & 0x80) {
		idle = client_connect();
		fake_loop_fire();
		settle(&r);
	}
	r.client = client_connect();
	fake_loop_fire();
	settle(&r); /* accepted, greeting read */
	if ((data[1] & 0x40) && r.srv->conns) {
		int one = 1; /* the kernel's minimum */

		setsockopt(r.srv->conns->fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	}

	client_send_all(&r, data + 2, size - 2, chunk_sizes[(data[0] >> 3) & 7]);

	if (stop_early) {
		/* Requests still at the export stay valid until done, which then only frees. */
		xm_nbd_server_stop(r.srv);
		settle(&r);
		while (complete_held(&r, false))
			settle(&r);
	} else {
		check_deadline(&r);
		settle(&r);
		if (close_client) {
			close(r.client);
			r.client = -1;
		} else {
			shutdown(r.client, SHUT_WR);
		}
		if (idle >= 0)
			close(idle);
		idle = -1;
		fake_loop_fire();
		settle(&r);
		while (complete_held(&r, false))
			settle(&r);
		if (r.srv->nconns || r.srv->outstanding || r.srv->write_bytes)
			fuzz_fail("after the client left: %u connections, %u requests outstanding, "
				  "%llu write bytes charged",
				  r.srv->nconns, r.srv->outstanding,
				  (unsigned long long)r.srv->write_bytes);
		xm_nbd_server_stop(r.srv);
		settle(&r);
	}
	if (fake_loop_pending())
		fuzz_fail("%u submissions or watches left after the server stopped",
			  fake_loop_pending());
	if (r.client >= 0)
		close(r.client);
	if (idle >= 0)
		close(idle);
	return 0;
}
