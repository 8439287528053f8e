// SPDX-License-Identifier: GPL-2.0
/* Description: NBD server over a Unix socket: handshakes, request checks, unaligned requests and
 * the order of overlapping writes, limits, the deadline for a stalled client, and shutdown. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/loop.h"
#include "nbd/nbd.h"
#include "nbd/order.h"

/* The wire format, written down again from doc/proto.md rather than taken from nbd.c. */
#define INIT_MAGIC  0x4e42444d41474943ull
#define OPTS_MAGIC  0x49484156454f5054ull
#define REP_MAGIC   0x0003e889045565a9ull
#define REQ_MAGIC   0x25609513u
#define REPLY_MAGIC 0x67446698u

#define C_FIXED_NEWSTYLE 1u
#define C_NO_ZEROES	 2u

#define OPT_EXPORT_NAME	     1u
#define OPT_ABORT	     2u
#define OPT_LIST	     3u
#define OPT_STARTTLS	     5u
#define OPT_INFO	     6u
#define OPT_GO		     7u
#define OPT_STRUCTURED_REPLY 8u

#define REP_ACK		1u
#define REP_SERVER	2u
#define REP_INFO	3u
#define REP_ERR_UNSUP	0x80000001u
#define REP_ERR_INVALID 0x80000003u

#define INFO_EXPORT	0u
#define INFO_NAME	1u
#define INFO_BLOCK_SIZE 3u

/* HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES, CAN_MULTI_CONN */
#define TRANS_FLAGS 0x016du

#define E_PERM	   1u
#define E_IO	   5u
#define E_NOMEM	   12u
#define E_INVAL	   22u
#define E_NOSPC	   28u
#define E_OVERFLOW 75u
#define E_NOTSUP   95u
#define E_SHUTDOWN 108u

#define EXPORT_NAME "xm-test"
#define EXPORT_SIZE (1u << 20)
#define MIN_BLOCK   512u
#define PREF_BLOCK  4096u
#define MAX_BLOCK   (128u * 1024)

#define MAX_LOG	    1024
#define MAX_CLIENTS 8
#define DEADLINE_S  10.0

struct logged_req {
	struct xm_nbd_req *req; /* valid only until completed */
	__u16 type;
	__u16 flags;
	__u64 offset;
	__u32 len;
	__u64 cookie;
	bool aligned;	     /* req->data 4096-aligned (WRITE) */
	unsigned char *data; /* copy of a WRITE payload */
};

struct fixture {
	char dir[64];
	char path[128];
	struct xm_loop loop;
	struct xm_nbd_server *srv;
	bool complete_now; /* the fake export completes in submit */
	int complete_err;
	struct logged_req log[MAX_LOG];
	unsigned int nlog;
	struct xm_nbd_req *pending[MAX_LOG];
	unsigned int npending;
	int clients[MAX_CLIENTS];
	unsigned int nclients;
	/* model: the export is a disk in memory (EXPORT_SIZE bytes, pattern() at first) that a
	 * WRITE changes when it completes; else READ always returns pattern(). */
	bool model;
	unsigned char disk[EXPORT_SIZE];
};

static unsigned char pattern(__u64 off)
{
	return (unsigned char)(off ^ (off >> 8) ^ (off >> 16) ^ 0x5a);
}

static struct fixture *the_fixture; /* for the fake export's model */

/* The fake export: READ returns pattern() or the model's bytes, everything else succeeds or fails
 * with complete_err. */
static void fake_complete(struct xm_nbd_req *req, int err)
{
	struct fixture *f = the_fixture;
	bool in_model = f->model && req->offset + req->len <= EXPORT_SIZE;
	unsigned char *buf;
	__u32 i;

	if (!err && in_model && req->type == XM_NBD_CMD_WRITE)
		memcpy(f->disk + req->offset, req->data, req->len);
	if (!err && in_model && req->type == XM_NBD_CMD_WRITE_ZEROES)
		memset(f->disk + req->offset, 0, req->len);
	if (req->type != XM_NBD_CMD_READ || err) {
		xm_nbd_done(req, err, NULL);
		return;
	}
	buf = malloc(req->len);
	assert_non_null(buf);
	for (i = 0; i < req->len; i++)
		buf[i] = in_model ? f->disk[req->offset + i] : pattern(req->offset + i);
	xm_nbd_done(req, 0, buf);
	free(buf);
}

static void fake_submit(void *ctx, struct xm_nbd_req *req)
{
	struct fixture *f = ctx;
	struct logged_req *l;

	assert_true(f->nlog < MAX_LOG);
	l = &f->log[f->nlog++];
	l->req = req;
	l->type = req->type;
	l->flags = req->flags;
	l->offset = req->offset;
	l->len = req->len;
	l->cookie = req->cookie;
	if (req->type == XM_NBD_CMD_WRITE) {
		assert_non_null(req->data);
		l->aligned = !((uintptr_t)req->data & 4095);
		l->data = malloc(req->len);
		assert_non_null(l->data);
		memcpy(l->data, req->data, req->len);
	} else {
		assert_null(req->data);
	}
	if (f->complete_now)
		fake_complete(req, f->complete_err);
	else
		f->pending[f->npending++] = req;
}

static const struct xm_nbd_ops fake_ops = {.submit = fake_submit};

/* Completes the i-th pending request. */
static void complete_pending(struct fixture *f, unsigned int i, int err)
{
	struct xm_nbd_req *req;

	assert_true(i < f->npending);
	req = f->pending[i];
	memmove(&f->pending[i], &f->pending[i + 1], (f->npending - i - 1) * sizeof(f->pending[0]));
	f->npending--;
	fake_complete(req, err);
}

static struct xm_nbd_config default_config(struct fixture *f)
{
	struct xm_nbd_config cfg = {
		.unix_path = f->path,
		.export_name = EXPORT_NAME,
		.size = EXPORT_SIZE,
		.min_block = MIN_BLOCK,
		.pref_block = PREF_BLOCK,
		.max_block = MAX_BLOCK,
	};

	return cfg;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spin(struct fixture *f, int n)
{
	while (n-- > 0)
		assert_true(xm_loop_run_once(&f->loop, 1000000) >= 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct xm_nbd_config cfg;
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/xm-nbd-XXXXXX",
		 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/nbd.sock", f->dir);
	if (xm_loop_init(&f->loop)) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	f->complete_now = true;
	for (size_t i = 0; i < EXPORT_SIZE; i++)
		f->disk[i] = pattern(i);
	the_fixture = f;
	cfg = default_config(f);
	f->srv = xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f);
	if (!f->srv) {
		print_message("xm_nbd_server_start: %s\n", strerror(errno));
		xm_loop_exit(&f->loop);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unsigned int i;
	int n;

	xm_nbd_server_stop(f->srv);
	f->srv = NULL;
	/* Completions after stop only free. */
	while (f->npending)
		complete_pending(f, 0, -EIO);
	for (i = 0; i < f->nclients; i++)
		close(f->clients[i]);
	/* Everything the server armed must come back: polls released, kicks run. */
	for (n = 0; n < 1000 && f->loop.inflight; n++)
		xm_loop_run_once(&f->loop, 1000000);
	if (f->loop.inflight)
		print_message("%u submissions still in flight after stop\n", f->loop.inflight);
	assert_int_equal(f->loop.inflight, 0);
	xm_loop_exit(&f->loop);
	unlink(f->path);
	rmdir(f->dir);
	for (i = 0; i < f->nlog; i++)
		free(f->log[i].data);
	free(f);
	return 0;
}

/* Restarts the server with another configuration on the same loop. */
static void restart(struct fixture *f, const struct xm_nbd_config *cfg)
{
	xm_nbd_server_stop(f->srv);
	spin(f, 3);
	f->srv = xm_nbd_server_start(&f->loop, cfg, &fake_ops, f);
	if (!f->srv)
		fail_msg("xm_nbd_server_start: %s", strerror(errno));
}

/* Client side: blocking sockets, but every wait spins the loop so the server can run. */

static int client_connect(struct fixture *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, f->path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		fail_msg("connect '%s': %s", f->path, strerror(errno));
	assert_true(f->nclients < MAX_CLIENTS);
	f->clients[f->nclients++] = fd;
	spin(f, 2);
	return fd;
}

static void client_send(struct fixture *f, int fd, const void *buf, size_t len)
{
	double end = now() + DEADLINE_S;
	size_t off = 0;

	while (off < len) {
		ssize_t n =
			send(fd, (const char *)buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			fail_msg("send: %s", strerror(errno));
		if (now() > end)
			fail_msg("timed out sending %zu bytes (sent %zu)", len, off);
		xm_loop_run_once(&f->loop, 1000000);
	}
	spin(f, 2);
}

/* Reads len bytes; returns fewer only at EOF (or reset). */
static size_t client_recv(struct fixture *f, int fd, void *buf, size_t len)
{
	double end = now() + DEADLINE_S;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (!n || errno == ECONNRESET)
			return got;
		if (errno != EAGAIN && errno != EINTR)
			fail_msg("recv: %s", strerror(errno));
		if (now() > end)
			fail_msg("timed out waiting for %zu bytes (got %zu)", len, got);
		xm_loop_run_once(&f->loop, 1000000);
	}
	return got;
}

static void recv_exact(struct fixture *f, int fd, void *buf, size_t len)
{
	assert_int_equal(client_recv(f, fd, buf, len), len);
}

static void expect_eof(struct fixture *f, int fd)
{
	char c;

	assert_int_equal(client_recv(f, fd, &c, 1), 0);
}

/* Nothing to read and not closed, after giving the server time to act. */
static void expect_idle(struct fixture *f, int fd)
{
	ssize_t n;
	char c;

	spin(f, 10);
	n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	if (n >= 0)
		fail_msg("expected nothing to read, recv() = %zd", n);
	assert_int_equal(errno, EAGAIN);
}

static void put16(unsigned char *p, __u16 v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(unsigned char *p, __u32 v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(unsigned char *p, __u64 v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static __u16 get16(const unsigned char *p)
{
	__u16 v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static __u32 get32(const unsigned char *p)
{
	__u32 v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static __u64 get64(const unsigned char *p)
{
	__u64 v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/* Reads the greeting and answers with the client flags. */
static void client_hello(struct fixture *f, int fd, __u32 cflags)
{
	unsigned char hello[18], raw[4];

	recv_exact(f, fd, hello, sizeof(hello));
	assert_true(get64(hello) == INIT_MAGIC);
	assert_true(get64(hello + 8) == OPTS_MAGIC);
	assert_int_equal(get16(hello + 16), 3); /* FIXED_NEWSTYLE | NO_ZEROES */
	put32(raw, cflags);
	client_send(f, fd, raw, sizeof(raw));
}

static void client_option(struct fixture *f, int fd, __u32 opt, const void *data, __u32 len)
{
	unsigned char *buf = malloc(16 + (size_t)len);

	assert_non_null(buf);
	put64(buf, OPTS_MAGIC);
	put32(buf + 8, opt);
	put32(buf + 12, len);
	if (len)
		memcpy(buf + 16, data, len);
	client_send(f, fd, buf, 16 + (size_t)len);
	free(buf);
}

/* Option data of NBD_OPT_INFO and NBD_OPT_GO. */
static void client_info_option(struct fixture *f, int fd, __u32 opt, const char *name,
			       const __u16 *reqs, __u16 nreqs)
{
	unsigned char buf[256];
	size_t name_len = strlen(name), len = 4 + name_len + 2 + 2u * nreqs;
	__u16 i;

	assert_true(len <= sizeof(buf));
	put32(buf, (__u32)name_len);
	memcpy(buf + 4, name, name_len);
	put16(buf + 4 + name_len, nreqs);
	for (i = 0; i < nreqs; i++)
		put16(buf + 6 + name_len + 2u * i, reqs[i]);
	client_option(f, fd, opt, buf, (__u32)len);
}

/* Reads one option reply; returns its type, data in data (at most cap), length in *len. */
static __u32 client_opt_reply(struct fixture *f, int fd, __u32 opt, void *data, size_t cap,
			      __u32 *len)
{
	unsigned char h[20];

	recv_exact(f, fd, h, sizeof(h));
	assert_true(get64(h) == REP_MAGIC);
	assert_int_equal(get32(h + 8), opt);
	*len = get32(h + 16);
	assert_true(*len <= cap);
	if (*len)
		recv_exact(f, fd, data, *len);
	return get32(h + 12);
}

struct export_info {
	bool have_export, have_block_size, have_name;
	__u64 size;
	__u16 flags;
	__u32 min_block, pref_block, max_block;
	char name[64];
};

/* Reads NBD_REP_INFO replies up to the final one; returns the final reply's type. */
static __u32 client_info_replies(struct fixture *f, int fd, __u32 opt, struct export_info *ei)
{
	unsigned char d[128];
	__u32 type, len;

	memset(ei, 0, sizeof(*ei));
	for (;;) {
		type = client_opt_reply(f, fd, opt, d, sizeof(d), &len);
		if (type != REP_INFO)
			return type;
		assert_true(len >= 2);
		switch (get16(d)) {
		case INFO_EXPORT:
			assert_int_equal(len, 12);
			ei->have_export = true;
			ei->size = get64(d + 2);
			ei->flags = get16(d + 10);
			break;
		case INFO_BLOCK_SIZE:
			assert_int_equal(len, 14);
			ei->have_block_size = true;
			ei->min_block = get32(d + 2);
			ei->pref_block = get32(d + 6);
			ei->max_block = get32(d + 10);
			break;
		case INFO_NAME:
			assert_true(len - 2 < sizeof(ei->name));
			ei->have_name = true;
			memcpy(ei->name, d + 2, len - 2);
			ei->name[len - 2] = '\0';
			break;
		default:
			fail_msg("unexpected info type %u", get16(d));
		}
	}
}

/* A connection in the transmission phase, reached with NBD_OPT_GO. */
static int connect_go(struct fixture *f)
{
	const __u16 reqs[] = {INFO_BLOCK_SIZE};
	struct export_info ei;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_info_option(f, fd, OPT_GO, "", reqs, 1);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	assert_true(ei.have_export);
	return fd;
}

static void client_request(struct fixture *f, int fd, __u16 type, __u16 flags, __u64 cookie,
			   __u64 offset, __u32 len)
{
	unsigned char r[28];

	put32(r, REQ_MAGIC);
	put16(r + 4, flags);
	put16(r + 6, type);
	put64(r + 8, cookie);
	put64(r + 16, offset);
	put32(r + 24, len);
	client_send(f, fd, r, sizeof(r));
}

/* Reads a simple reply header; returns its error and checks the cookie. */
static __u32 client_reply(struct fixture *f, int fd, __u64 cookie)
{
	unsigned char r[16];

	recv_exact(f, fd, r, sizeof(r));
	assert_int_equal(get32(r), REPLY_MAGIC);
	assert_true(get64(r + 8) == cookie);
	return get32(r + 4);
}

static void expect_read_data(struct fixture *f, int fd, __u64 offset, __u32 len)
{
	unsigned char *buf = malloc(len);
	__u32 i;

	assert_non_null(buf);
	recv_exact(f, fd, buf, len);
	for (i = 0; i < len; i++)
		if (buf[i] != pattern(offset + i))
			fail_msg("READ byte %u of %u at %llu is 0x%02x, want 0x%02x", i, len,
				 (unsigned long long)offset, buf[i], pattern(offset + i));
	free(buf);
}

/* A READ that must succeed, and its data. */
static void read_ok(struct fixture *f, int fd, __u64 cookie, __u64 offset, __u32 len)
{
	client_request(f, fd, XM_NBD_CMD_READ, 0, cookie, offset, len);
	assert_int_equal(client_reply(f, fd, cookie), 0);
	expect_read_data(f, fd, offset, len);
}

static void fill_random(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
}

static void send_write(struct fixture *f, int fd, __u16 flags, __u64 cookie, __u64 offset,
		       const unsigned char *data, __u32 len)
{
	client_request(f, fd, XM_NBD_CMD_WRITE, flags, cookie, offset, len);
	client_send(f, fd, data, len);
}

static const struct logged_req *last_req(struct fixture *f)
{
	assert_true(f->nlog > 0);
	return &f->log[f->nlog - 1];
}

/* Handshake */

static void test_go_reports_export_and_block_size(void **state)
{
	const __u16 reqs[] = {INFO_BLOCK_SIZE, INFO_NAME};
	struct fixture *f = *state;
	struct export_info ei;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_info_option(f, fd, OPT_GO, "whatever", reqs, 2);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	assert_true(ei.have_export);
	assert_true(ei.size == EXPORT_SIZE);
	assert_int_equal(ei.flags, TRANS_FLAGS);
	assert_true(ei.have_block_size);
	assert_int_equal(ei.min_block, MIN_BLOCK);
	assert_int_equal(ei.pref_block, PREF_BLOCK);
	assert_int_equal(ei.max_block, MAX_BLOCK);
	assert_true(ei.have_name);
	assert_string_equal(ei.name, EXPORT_NAME);
	read_ok(f, fd, 0x1122334455667788ull, 0, 4096);
	assert_int_equal(xm_nbd_server_counters(f->srv)->connections, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 1);
}

static void test_info_then_go_without_requests(void **state)
{
	const __u16 reqs[] = {INFO_NAME};
	struct fixture *f = *state;
	struct export_info ei;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE);
	client_info_option(f, fd, OPT_INFO, EXPORT_NAME, reqs, 1);
	assert_int_equal(client_info_replies(f, fd, OPT_INFO, &ei), REP_ACK);
	assert_true(ei.have_export && ei.have_block_size && ei.have_name);
	/* Block sizes come even when not asked for; the name only when asked for. */
	client_info_option(f, fd, OPT_GO, EXPORT_NAME, NULL, 0);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	assert_true(ei.have_export && ei.have_block_size);
	assert_false(ei.have_name);
	/* GO ends with the ACK: no zeroes follow even without NO_ZEROES. */
	read_ok(f, fd, 7, 512, 512);
}

static void test_malformed_go_is_invalid(void **state)
{
	struct fixture *f = *state;
	unsigned char bad[10], d[16];
	struct export_info ei;
	__u32 len;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	/* A name length running past the option's end. */
	put32(bad, 100);
	memset(bad + 4, 'x', 6);
	client_option(f, fd, OPT_GO, bad, sizeof(bad));
	assert_int_equal(client_opt_reply(f, fd, OPT_GO, d, sizeof(d), &len), REP_ERR_INVALID);
	/* Too short for the fixed fields. */
	client_option(f, fd, OPT_INFO, bad, 3);
	assert_int_equal(client_opt_reply(f, fd, OPT_INFO, d, sizeof(d), &len), REP_ERR_INVALID);
	client_info_option(f, fd, OPT_GO, "", NULL, 0);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	read_ok(f, fd, 1, 0, 512);
}

static void test_export_name_with_and_without_zeroes(void **state)
{
	struct fixture *f = *state;
	unsigned char r[134], zero[124] = {0};
	int fd;

	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE);
	client_option(f, fd, OPT_EXPORT_NAME, "any name", 8);
	recv_exact(f, fd, r, sizeof(r));
	assert_true(get64(r) == EXPORT_SIZE);
	assert_int_equal(get16(r + 8), TRANS_FLAGS);
	assert_memory_equal(r + 10, zero, sizeof(zero));
	read_ok(f, fd, 1, 0, 1024);

	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_option(f, fd, OPT_EXPORT_NAME, NULL, 0);
	recv_exact(f, fd, r, 10);
	assert_true(get64(r) == EXPORT_SIZE);
	assert_int_equal(get16(r + 8), TRANS_FLAGS);
	/* The next bytes are the reply, not zeroes. */
	read_ok(f, fd, 2, 4096, 512);
}

static void test_list_names_the_export(void **state)
{
	struct fixture *f = *state;
	unsigned char d[64];
	__u32 len;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_option(f, fd, OPT_LIST, NULL, 0);
	assert_int_equal(client_opt_reply(f, fd, OPT_LIST, d, sizeof(d), &len), REP_SERVER);
	assert_int_equal(len, 4 + strlen(EXPORT_NAME));
	assert_int_equal(get32(d), strlen(EXPORT_NAME));
	assert_memory_equal(d + 4, EXPORT_NAME, strlen(EXPORT_NAME));
	assert_int_equal(client_opt_reply(f, fd, OPT_LIST, d, sizeof(d), &len), REP_ACK);
	assert_int_equal(len, 0);
	/* LIST takes no data. */
	client_option(f, fd, OPT_LIST, "x", 1);
	assert_int_equal(client_opt_reply(f, fd, OPT_LIST, d, sizeof(d), &len), REP_ERR_INVALID);
	/* Still haggling. */
	client_option(f, fd, OPT_ABORT, NULL, 0);
	assert_int_equal(client_opt_reply(f, fd, OPT_ABORT, d, sizeof(d), &len), REP_ACK);
	expect_eof(f, fd);
}

static void test_unsupported_options_are_refused(void **state)
{
	const __u32 opts[] = {OPT_STRUCTURED_REPLY, OPT_STARTTLS, 4, 9, 10, 11, 42, 0x7fffffff};
	struct fixture *f = *state;
	unsigned char d[16], data[300];
	struct export_info ei;
	unsigned int i;
	__u32 len;
	int fd = client_connect(f);

	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	memset(data, 0xab, sizeof(data));
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		/* Unknown options with data too: the data is skipped. */
		client_option(f, fd, opts[i], data, i * 37);
		assert_int_equal(client_opt_reply(f, fd, opts[i], d, sizeof(d), &len),
				 REP_ERR_UNSUP);
	}
	client_info_option(f, fd, OPT_GO, "", NULL, 0);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	read_ok(f, fd, 3, 0, 512);
}

static void test_bad_client_flags_close(void **state)
{
	struct fixture *f = *state;
	int fd;

	/* Plain newstyle is not served. */
	fd = client_connect(f);
	client_hello(f, fd, 0);
	expect_eof(f, fd);
	/* The server must drop a client that sets flags it does not know. */
	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE | 4);
	expect_eof(f, fd);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

static void test_oversized_option_and_bad_magic_close(void **state)
{
	struct fixture *f = *state;
	unsigned char h[16];
	int fd;

	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE);
	put64(h, OPTS_MAGIC);
	put32(h + 8, OPT_GO);
	put32(h + 12, 64 * 1024 + 1);
	client_send(f, fd, h, sizeof(h));
	expect_eof(f, fd);

	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE);
	put64(h, OPTS_MAGIC + 1);
	put32(h + 8, OPT_LIST);
	put32(h + 12, 0);
	client_send(f, fd, h, sizeof(h));
	expect_eof(f, fd);

	/* 64 KiB exactly is still an option. */
	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE);
	{
		unsigned char *data = calloc(1, 64 * 1024), d[16];
		__u32 len;

		assert_non_null(data);
		client_option(f, fd, 4242, data, 64 * 1024);
		free(data);
		assert_int_equal(client_opt_reply(f, fd, 4242, d, sizeof(d), &len), REP_ERR_UNSUP);
	}
}

/* Transmission */

static void test_read_returns_export_data(void **state)
{
	struct fixture *f = *state;
	const struct xm_nbd_counters *cnt = xm_nbd_server_counters(f->srv);
	int fd = connect_go(f);

	read_ok(f, fd, 0xdeadbeefcafef00dull, 4096, 8192);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_READ);
	assert_true(last_req(f)->offset == 4096);
	assert_int_equal(last_req(f)->len, 8192);
	assert_true(last_req(f)->cookie == 0xdeadbeefcafef00dull);
	/* The last block and the largest READ. */
	read_ok(f, fd, 2, EXPORT_SIZE - 512, 512);
	read_ok(f, fd, 3, 0, MAX_BLOCK);
	assert_int_equal(cnt->requests, 3);
	assert_int_equal(cnt->bytes_read, 8192 + 512 + MAX_BLOCK);
	assert_int_equal(cnt->replies_err, 0);
	assert_int_equal(cnt->bad_requests, 0);
}

static void test_write_payload_arrives_intact(void **state)
{
	struct fixture *f = *state;
	unsigned char *data = malloc(MAX_BLOCK);
	const struct logged_req *l;
	int fd = connect_go(f);

	assert_non_null(data);
	fill_random(data, MAX_BLOCK, 1);
	send_write(f, fd, XM_NBD_CMD_FLAG_FUA, 0x0102030405060708ull, 8192, data, 64 * 1024);
	assert_int_equal(client_reply(f, fd, 0x0102030405060708ull), 0);
	l = last_req(f);
	assert_int_equal(l->type, XM_NBD_CMD_WRITE);
	assert_int_equal(l->flags, XM_NBD_CMD_FLAG_FUA);
	assert_true(l->offset == 8192);
	assert_int_equal(l->len, 64 * 1024);
	assert_true(l->aligned);
	assert_memory_equal(l->data, data, 64 * 1024);

	/* The largest WRITE, then a small one right behind it in the same stream. */
	fill_random(data, MAX_BLOCK, 2);
	send_write(f, fd, 0, 10, 0, data, MAX_BLOCK);
	send_write(f, fd, 0, 11, EXPORT_SIZE - 512, data + 1000, 512);
	assert_int_equal(client_reply(f, fd, 10), 0);
	assert_int_equal(client_reply(f, fd, 11), 0);
	assert_int_equal(f->nlog, 3);
	assert_memory_equal(f->log[1].data, data, MAX_BLOCK);
	assert_memory_equal(f->log[2].data, data + 1000, 512);
	assert_int_equal(f->log[2].flags, 0);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bytes_written,
			 64 * 1024 + MAX_BLOCK + 512);
	free(data);
}

static void test_flush_trim_write_zeroes_pass(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	/* A flush's offset and length are ignored, and not passed on. */
	client_request(f, fd, XM_NBD_CMD_FLUSH, 0, 1, 123, 7);
	assert_int_equal(client_reply(f, fd, 1), 0);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_FLUSH);
	assert_true(last_req(f)->offset == 0);
	assert_int_equal(last_req(f)->len, 0);

	client_request(f, fd, XM_NBD_CMD_TRIM, XM_NBD_CMD_FLAG_FUA, 2, 4096, 65536);
	assert_int_equal(client_reply(f, fd, 2), 0);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_TRIM);
	assert_int_equal(last_req(f)->flags, XM_NBD_CMD_FLAG_FUA);
	assert_true(last_req(f)->offset == 4096);
	assert_int_equal(last_req(f)->len, 65536);

	/* No payload, and no max_block limit: the whole export at once. */
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, XM_NBD_CMD_FLAG_NO_HOLE, 3, 0, EXPORT_SIZE);
	assert_int_equal(client_reply(f, fd, 3), 0);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_WRITE_ZEROES);
	assert_int_equal(last_req(f)->flags, XM_NBD_CMD_FLAG_NO_HOLE);
	assert_int_equal(last_req(f)->len, EXPORT_SIZE);

	/* proto.md: with SEND_FUA the server MUST accept FUA on every command. */
	client_request(f, fd, XM_NBD_CMD_FLUSH, XM_NBD_CMD_FLAG_FUA, 4, 0, 0);
	assert_int_equal(client_reply(f, fd, 4), 0);
	client_request(f, fd, XM_NBD_CMD_READ, XM_NBD_CMD_FLAG_FUA, 5, 0, 512);
	assert_int_equal(client_reply(f, fd, 5), 0);
	expect_read_data(f, fd, 0, 512);
	assert_int_equal(f->nlog, 5);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 0);
}

static void test_out_of_range_then_next_request_works(void **state)
{
	struct fixture *f = *state;
	unsigned char data[1024];
	int fd = connect_go(f);

	fill_random(data, sizeof(data), 3);
	/* Half inside, half outside: the payload is consumed, then ENOSPC. */
	send_write(f, fd, 0, 1, EXPORT_SIZE - 512, data, 1024);
	assert_int_equal(client_reply(f, fd, 1), E_NOSPC);
	client_request(f, fd, XM_NBD_CMD_READ, 0, 2, EXPORT_SIZE, 512);
	assert_int_equal(client_reply(f, fd, 2), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, 0, 3, EXPORT_SIZE - 512, 1024);
	assert_int_equal(client_reply(f, fd, 3), E_NOSPC);
	client_request(f, fd, XM_NBD_CMD_TRIM, 0, 4, EXPORT_SIZE, 512);
	assert_int_equal(client_reply(f, fd, 4), E_INVAL);
	/* offset + length wraps around 2^64. */
	send_write(f, fd, 0, 5, UINT64_MAX - 511, data, 1024);
	assert_int_equal(client_reply(f, fd, 5), E_NOSPC);
	client_request(f, fd, XM_NBD_CMD_READ, 0, 6, UINT64_MAX - 511, 1024);
	assert_int_equal(client_reply(f, fd, 6), E_INVAL);
	assert_int_equal(f->nlog, 0);

	read_ok(f, fd, 7, EXPORT_SIZE - 1024, 1024);
	send_write(f, fd, 0, 8, 0, data, 1024);
	assert_int_equal(client_reply(f, fd, 8), 0);
	assert_memory_equal(last_req(f)->data, data, 1024);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 6);
	assert_int_equal(xm_nbd_server_counters(f->srv)->replies_err, 6);
}

static void test_empty_is_einval(void **state)
{
	struct fixture *f = *state;
	unsigned char data[2048];
	int fd = connect_go(f);

	fill_random(data, sizeof(data), 4);
	client_request(f, fd, XM_NBD_CMD_READ, 0, 5, 0, 0);
	assert_int_equal(client_reply(f, fd, 5), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_WRITE, 0, 6, 0, 0);
	assert_int_equal(client_reply(f, fd, 6), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_TRIM, 0, 7, 0, 0);
	assert_int_equal(client_reply(f, fd, 7), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, 0, 8, 512, 0);
	assert_int_equal(client_reply(f, fd, 8), E_INVAL);
	assert_int_equal(f->nlog, 0);

	send_write(f, fd, 0, 9, 1024, data, 2048);
	assert_int_equal(client_reply(f, fd, 9), 0);
	assert_memory_equal(last_req(f)->data, data, 2048);
}

static void test_bad_flags_and_unknown_types_are_einval(void **state)
{
	struct fixture *f = *state;
	unsigned char data[512] = {1, 2, 3};
	int fd = connect_go(f);

	client_request(f, fd, 5, 0, 1, 0, 512); /* NBD_CMD_CACHE: not offered */
	assert_int_equal(client_reply(f, fd, 1), E_INVAL);
	client_request(f, fd, 0x1234, 0, 2, 0, 0);
	assert_int_equal(client_reply(f, fd, 2), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_READ, 1u << 2, 3, 0, 512); /* DF */
	assert_int_equal(client_reply(f, fd, 3), E_INVAL);
	client_request(f, fd, XM_NBD_CMD_TRIM, 1u << 15, 4, 0, 512);
	assert_int_equal(client_reply(f, fd, 4), E_INVAL);
	/* NO_HOLE belongs to WRITE_ZEROES; the WRITE's payload is skipped. */
	send_write(f, fd, XM_NBD_CMD_FLAG_NO_HOLE, 5, 0, data, sizeof(data));
	assert_int_equal(client_reply(f, fd, 5), E_INVAL);
	assert_int_equal(f->nlog, 0);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 5);
	read_ok(f, fd, 6, 0, 512);
}

static void test_oversized_read_keeps_the_connection(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, MAX_BLOCK + MIN_BLOCK);
	assert_int_equal(client_reply(f, fd, 1), E_INVAL);
	read_ok(f, fd, 2, 0, MAX_BLOCK);
}

static void test_oversized_write_replies_then_closes(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	f->complete_now = false;
	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, 512);
	assert_int_equal(f->npending, 1);
	client_request(f, fd, XM_NBD_CMD_WRITE, 0, 2, 0, MAX_BLOCK + MIN_BLOCK);
	assert_int_equal(client_reply(f, fd, 2), E_INVAL);
	/* The earlier READ is still replied before the server hangs up. */
	expect_idle(f, fd);
	complete_pending(f, 0, 0);
	assert_int_equal(client_reply(f, fd, 1), 0);
	expect_read_data(f, fd, 0, 512);
	expect_eof(f, fd);
	assert_int_equal(f->nlog, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

static void test_bad_magic_closes_only_that_connection(void **state)
{
	struct fixture *f = *state;
	unsigned char r[28] = {0};
	int a = connect_go(f), b = connect_go(f);

	put32(r, REQ_MAGIC ^ 1);
	client_send(f, a, r, sizeof(r));
	expect_eof(f, a);
	read_ok(f, b, 1, 0, 4096);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->connections, 2);
}

static void test_request_split_across_writes(void **state)
{
	struct fixture *f = *state;
	unsigned char r[28], data[4096];
	int fd = connect_go(f);

	fill_random(data, sizeof(data), 5);
	put32(r, REQ_MAGIC);
	put16(r + 4, 0);
	put16(r + 6, XM_NBD_CMD_WRITE);
	put64(r + 8, 77);
	put64(r + 16, 8192);
	put32(r + 24, sizeof(data));
	client_send(f, fd, r, 10);
	expect_idle(f, fd);
	assert_int_equal(f->nlog, 0);
	client_send(f, fd, r + 10, sizeof(r) - 10);
	client_send(f, fd, data, 1000);
	expect_idle(f, fd);
	assert_int_equal(f->nlog, 0);
	client_send(f, fd, data + 1000, sizeof(data) - 1000);
	assert_int_equal(client_reply(f, fd, 77), 0);
	assert_memory_equal(last_req(f)->data, data, sizeof(data));

	/* Byte by byte. */
	put16(r + 6, XM_NBD_CMD_READ);
	put32(r + 24, 512);
	for (size_t i = 0; i < sizeof(r); i++)
		client_send(f, fd, r + i, 1);
	assert_int_equal(client_reply(f, fd, 77), 0);
	expect_read_data(f, fd, 8192, 512);
}

static void test_replies_may_come_out_of_order(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	f->complete_now = false;
	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, 1024);
	client_request(f, fd, XM_NBD_CMD_FLUSH, 0, 2, 0, 0);
	client_request(f, fd, XM_NBD_CMD_READ, 0, 3, 4096, 512);
	assert_int_equal(f->npending, 3);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 3);
	complete_pending(f, 2, 0);
	complete_pending(f, 1, 0);
	complete_pending(f, 0, 0);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 0);
	assert_int_equal(client_reply(f, fd, 3), 0);
	expect_read_data(f, fd, 4096, 512);
	assert_int_equal(client_reply(f, fd, 2), 0);
	assert_int_equal(client_reply(f, fd, 1), 0);
	expect_read_data(f, fd, 0, 1024);
}

static void test_export_errors_are_mapped(void **state)
{
	static const struct {
		int err;
		__u32 wire;
	} cases[] = {
		{-EPERM, E_PERM},     {-EIO, E_IO},
		{-ENOMEM, E_NOMEM},   {-EINVAL, E_INVAL},
		{-ENOSPC, E_NOSPC},   {-EOVERFLOW, E_OVERFLOW},
		{-ENOTSUP, E_NOTSUP}, {-ESHUTDOWN, E_SHUTDOWN},
		{-EBADF, E_IO},	      {-ETIMEDOUT, E_IO},
		{-EROFS, E_IO},
	};
	struct fixture *f = *state;
	unsigned int i;
	int fd = connect_go(f);

	f->complete_now = false;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A failed READ has no payload: the next reply follows at once. */
		client_request(f, fd, i % 2 ? XM_NBD_CMD_READ : XM_NBD_CMD_TRIM, 0, i, 0, 512);
		complete_pending(f, 0, cases[i].err);
		assert_int_equal(client_reply(f, fd, i), cases[i].wire);
	}
	assert_int_equal(xm_nbd_server_counters(f->srv)->replies_err, i);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bytes_read, 0);
	f->complete_now = true;
	read_ok(f, fd, 100, 0, 512);
}

static void test_disc_waits_for_outstanding_requests(void **state)
{
	struct fixture *f = *state;
	unsigned char r[2][28];
	int fd = connect_go(f);
	unsigned int i;

	f->complete_now = false;
	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, 512);
	/* DISC and a READ behind it in one write: nothing after DISC is read. */
	for (i = 0; i < 2; i++) {
		put32(r[i], REQ_MAGIC);
		put16(r[i] + 4, 0);
		put16(r[i] + 6, i ? XM_NBD_CMD_READ : XM_NBD_CMD_DISC);
		put64(r[i] + 8, 2 + i);
		put64(r[i] + 16, 0);
		put32(r[i] + 24, i ? 512 : 0);
	}
	client_send(f, fd, r, sizeof(r));
	expect_idle(f, fd);
	assert_int_equal(f->nlog, 1);
	complete_pending(f, 0, 0);
	assert_int_equal(client_reply(f, fd, 1), 0);
	expect_read_data(f, fd, 0, 512);
	expect_eof(f, fd);
	assert_int_equal(f->nlog, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

static void test_disc_with_nothing_outstanding_closes(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	client_request(f, fd, XM_NBD_CMD_DISC, 0, 1, 0, 0);
	expect_eof(f, fd);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bad_requests, 0);
}

static void test_client_eof_with_requests_outstanding(void **state)
{
	struct fixture *f = *state;
	unsigned int i;
	int fd = connect_go(f);

	f->complete_now = false;
	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, 512);
	client_request(f, fd, XM_NBD_CMD_WRITE, 0, 2, 0, 4096); /* payload never comes */
	for (i = 0; i < f->nclients; i++)
		close(f->clients[i]);
	f->nclients = 0;
	spin(f, 10);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 1);
	/* The connection is gone: done only frees. */
	complete_pending(f, 0, 0);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 0);
	spin(f, 5);
}

static void test_stop_with_a_request_outstanding(void **state)
{
	struct fixture *f = *state;
	unsigned char data[1024] = {0};
	int fd = connect_go(f), late = connect_go(f);
	int n;

	f->complete_now = false;
	client_request(f, fd, XM_NBD_CMD_READ, 0, 1, 0, 512);
	send_write(f, fd, 0, 2, 0, data, 512);
	/* A WRITE whose payload is half read when the server stops. */
	client_request(f, late, XM_NBD_CMD_WRITE, 0, 3, 0, 1024);
	client_send(f, late, data, 300);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 2);
	xm_nbd_server_stop(f->srv);
	f->srv = NULL;
	expect_eof(f, fd);
	expect_eof(f, late);
	for (n = 0; n < 50; n++)
		xm_loop_run_once(&f->loop, 1000000);
	/* Only the export's two requests still hold the server. */
	complete_pending(f, 1, 0);
	complete_pending(f, 0, -EIO);
	for (n = 0; n < 100 && f->loop.inflight; n++)
		xm_loop_run_once(&f->loop, 1000000);
	assert_int_equal(f->loop.inflight, 0);
	/* The socket file is gone. */
	assert_int_equal(access(f->path, F_OK), -1);
}

/* Limits */

static void test_outstanding_limit_pauses_then_resumes(void **state)
{
	enum { N = 700 }; /* 700 headers: more than the server buffers at once */
	struct fixture *f = *state;
	unsigned char *reqs = malloc(N * 28);
	double end = now() + DEADLINE_S;
	unsigned int i, max_pending = 0;
	int fd = connect_go(f);

	assert_non_null(reqs);
	f->complete_now = false;
	for (i = 0; i < N; i++) {
		unsigned char *r = reqs + 28 * i;

		put32(r, REQ_MAGIC);
		put16(r + 4, 0);
		put16(r + 6, XM_NBD_CMD_READ);
		put64(r + 8, 1000 + i);
		put64(r + 16, (__u64)(i % 2048) * 512);
		put32(r + 24, 512);
	}
	client_send(f, fd, reqs, N * 28);
	free(reqs);
	spin(f, 5);
	assert_int_equal(f->npending, 64);
	/* Complete in dribs: each completion lets exactly one more through. */
	complete_pending(f, 0, 0);
	spin(f, 3);
	assert_int_equal(f->npending, 64);
	assert_int_equal(f->nlog, 65);
	while (f->nlog < N) {
		if (now() > end)
			fail_msg("stuck at %u of %u requests", f->nlog, N);
		while (f->npending > 32)
			complete_pending(f, 0, 0);
		spin(f, 2);
		if (f->npending > max_pending)
			max_pending = f->npending;
	}
	assert_true(max_pending <= 64);
	while (f->npending)
		complete_pending(f, 0, 0);
	for (i = 0; i < N; i++) {
		assert_int_equal(client_reply(f, fd, 1000 + i), 0);
		expect_read_data(f, fd, (__u64)(i % 2048) * 512, 512);
	}
}

static void test_slow_reader_does_not_block_others(void **state)
{
	enum { N = 300 };
	struct fixture *f = *state;
	const struct xm_nbd_counters *cnt = xm_nbd_server_counters(f->srv);
	unsigned int i;
	int slow = connect_go(f), other = connect_go(f);

	/* 300 READs of 128 KiB that nobody reads: replies pile up, then parsing stops. */
	for (i = 0; i < N; i++)
		client_request(f, slow, XM_NBD_CMD_READ, 0, i, (__u64)(i % 8) * MAX_BLOCK,
			       MAX_BLOCK);
	spin(f, 20);
	assert_true(cnt->requests < N);
	read_ok(f, other, 9999, 0, 4096);
	for (i = 0; i < N; i++) {
		assert_int_equal(client_reply(f, slow, i), 0);
		expect_read_data(f, slow, (__u64)(i % 8) * MAX_BLOCK, MAX_BLOCK);
	}
	assert_int_equal(cnt->requests, N + 1);
}

/* Sends what the socket takes without blocking, letting the server run; returns the bytes sent. */
static size_t client_send_some(struct fixture *f, int fd, const void *buf, size_t len)
{
	size_t off = 0;
	int idle = 0;

	while (off < len && idle < 4) {
		ssize_t n =
			send(fd, (const char *)buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			idle = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			fail_msg("send: %s", strerror(errno));
		idle++;
		xm_loop_run_once(&f->loop, 1000000);
	}
	spin(f, 2);
	return off;
}

/* The index of the pending request of that type and range, or -1. */
static int pending_find(struct fixture *f, __u16 type, __u64 offset, __u32 len)
{
	unsigned int i;

	for (i = 0; i < f->npending; i++)
		if (f->pending[i]->type == type && f->pending[i]->offset == offset &&
		    f->pending[i]->len == len)
			return (int)i;
	return -1;
}

static void complete_found(struct fixture *f, __u16 type, __u64 offset, __u32 len)
{
	int i = pending_find(f, type, offset, len);

	if (i < 0)
		fail_msg("no pending request of type %u at %llu, %u bytes", type,
			 (unsigned long long)offset, len);
	complete_pending(f, (unsigned int)i, 0);
	spin(f, 3);
}

static void test_write_memory_limit_pauses_every_connection(void **state)
{
	enum { BIG = 4 << 20, NBIG = 17 }; /* 68 MiB of payload: over the 64 MiB limit */
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	unsigned char *data = calloc(1, BIG);
	unsigned char small[512];
	size_t sent;
	unsigned int i;
	int a, b;

	assert_non_null(data);
	cfg.size = 128 << 20;
	cfg.max_block = BIG;
	restart(f, &cfg);
	f->complete_now = false;
	a = connect_go(f);
	b = connect_go(f);
	/* Alone, a may hold the whole budget: 16 WRITEs, then its 17th header waits. */
	for (i = 0; i < NBIG - 1; i++)
		send_write(f, a, 0, i, (__u64)i * BIG, data, BIG);
	client_request(f, a, XM_NBD_CMD_WRITE, 0, i, (__u64)i * BIG, BIG);
	sent = client_send_some(f, a, data, BIG);
	spin(f, 5);
	assert_int_equal(f->npending, 16);
	/* Over the limit: another connection's WRITE header is not even parsed. */
	fill_random(small, sizeof(small), 6);
	send_write(f, b, 0, 100, 0, small, sizeof(small));
	expect_idle(f, b);
	assert_int_equal(f->nlog, 16);
	/* One done brings it back under: b resumes from what it had buffered. */
	complete_pending(f, 0, 0);
	assert_int_equal(client_reply(f, a, 0), 0);
	spin(f, 5);
	assert_int_equal(f->nlog, 17);
	assert_memory_equal(last_req(f)->data, small, sizeof(small));
	/* a's last WRITE follows as the export completes the others. */
	while (f->nlog < NBIG + 1) {
		assert_true(f->npending > 0);
		complete_pending(f, 0, 0);
		sent += client_send_some(f, a, data + sent, BIG - sent);
	}
	while (f->npending)
		complete_pending(f, 0, 0);
	assert_int_equal(client_reply(f, b, 100), 0);
	for (i = 1; i < NBIG; i++)
		assert_int_equal(client_reply(f, a, i), 0);
	free(data);
}

/* Issue 17: clients that announce 32 MiB WRITEs and stall used to freeze the export. */
static void test_stalled_writers_do_not_hold_the_budget(void **state)
{
	enum { BIG = 32 << 20, NSTALL = 4 };
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	const struct xm_nbd_counters *cnt;
	unsigned char *data = calloc(1, 1 << 20);
	int stall[NSTALL], good;
	unsigned int i;

	assert_non_null(data);
	cfg.size = 256ull << 20;
	cfg.max_block = BIG;
	restart(f, &cfg);
	cnt = xm_nbd_server_counters(f->srv);
	for (i = 0; i < NSTALL; i++) {
		stall[i] = connect_go(f);
		client_request(f, stall[i], XM_NBD_CMD_WRITE, 0, i, (__u64)i * BIG, BIG);
		client_send(f, stall[i], data, 64 << 10);
	}
	good = connect_go(f);
	fill_random(data, 1 << 20, 9);
	for (i = 0; i < 8; i++) {
		send_write(f, good, 0, 100 + i, (200ull << 20) + ((__u64)i << 20), data, 1 << 20);
		assert_int_equal(client_reply(f, good, 100 + i), 0);
	}
	client_request(f, good, XM_NBD_CMD_FLUSH, 0, 200, 0, 0);
	assert_int_equal(client_reply(f, good, 200), 0);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_FLUSH);
	assert_memory_equal(f->log[f->nlog - 2].data, data, 1 << 20);
	/* The stalled ones are still there, holding only what they sent. */
	assert_int_equal(cnt->active, NSTALL + 1);
	assert_int_equal(cnt->timeouts, 0);
	free(data);
}

static void test_one_connection_holds_at_most_its_share(void **state)
{
	enum { BIG = 4 << 20, N = 16 };
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	unsigned char *data = calloc(1, BIG), small[512] = {7};
	unsigned int i;
	int a, b;

	assert_non_null(data);
	cfg.size = 128 << 20;
	cfg.max_block = BIG;
	restart(f, &cfg);
	f->complete_now = false;
	a = connect_go(f);
	b = connect_go(f);
	/* b holds a little, so there are two to share the 64 MiB: a stops at 32. */
	send_write(f, b, 0, 1000, 0, small, sizeof(small));
	for (i = 0; i < N; i++) {
		unsigned char r[28];

		put32(r, REQ_MAGIC);
		put16(r + 4, 0);
		put16(r + 6, XM_NBD_CMD_WRITE);
		put64(r + 8, i);
		put64(r + 16, (__u64)(i + 1) * BIG);
		put32(r + 24, BIG);
		if (client_send_some(f, a, r, sizeof(r)) < sizeof(r) ||
		    client_send_some(f, a, data, BIG) < BIG)
			break; /* the server reads a no more */
	}
	assert_true(i < N);
	spin(f, 5);
	assert_int_equal(f->npending, 1 + 8);
	/* b still gets its writes through: the rest of the budget is not a's. */
	send_write(f, b, 0, 1001, 512, small, sizeof(small));
	assert_int_equal(f->npending, 1 + 8 + 1);
	assert_true(last_req(f)->cookie == 1001);
	complete_pending(f, 0, 0);
	assert_int_equal(client_reply(f, b, 1000), 0);
	free(data);
}

/* Three payloads of 32 MiB arriving at once fill the budget before any is whole: one of them
 * goes on past it, the others follow as the export completes. */
static void test_budget_full_of_payloads_one_finishes(void **state)
{
	enum { BIG = 32 << 20, N = 3 };
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	unsigned char *data = calloc(1, BIG);
	size_t sent[N] = {0};
	int fd[N];
	unsigned int i, done = 0, round;

	assert_non_null(data);
	cfg.size = 128 << 20;
	cfg.max_block = BIG;
	restart(f, &cfg);
	f->complete_now = false;
	for (i = 0; i < N; i++) {
		fd[i] = connect_go(f);
		client_request(f, fd[i], XM_NBD_CMD_WRITE, 0, i, (__u64)i * BIG, BIG);
	}
	/* Two thirds of each first: 64 MiB received, nothing whole. */
	for (i = 0; i < N; i++)
		sent[i] = client_send_some(f, fd[i], data, (size_t)BIG * 2 / 3);
	/* Then all of it: one goes past the budget; once its WRITE is at the export, that is all
	 * until the export completes something. */
	for (round = 0; round < 50 && !f->npending; round++)
		for (i = 0; i < N; i++)
			sent[i] += client_send_some(f, fd[i], data + sent[i], BIG - sent[i]);
	for (i = 0; i < N; i++)
		sent[i] += client_send_some(f, fd[i], data + sent[i], BIG - sent[i]);
	assert_int_equal(f->npending, 1);
	for (round = 0; round < 200 && done < N; round++) {
		for (i = 0; i < N; i++)
			sent[i] += client_send_some(f, fd[i], data + sent[i], BIG - sent[i]);
		while (f->npending) {
			complete_pending(f, 0, 0);
			done++;
		}
	}
	assert_int_equal(done, N);
	for (i = 0; i < N; i++)
		assert_int_equal(client_reply(f, fd[i], i), 0);
	free(data);
}

/* The payload that fills the budget to the byte, from a client that then stalls, must not make it
 * the one connection allowed past the budget: that one must have bytes in hand. */
static void test_stalled_client_never_finishes_for_the_others(void **state)
{
	enum { BIG = 32 << 20 };
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	unsigned char *data = calloc(1, BIG);
	int x, y, z;

	assert_non_null(data);
	cfg.size = 128 << 20;
	cfg.max_block = BIG;
	restart(f, &cfg);
	x = connect_go(f);
	y = connect_go(f);
	z = connect_go(f);
	client_request(f, x, XM_NBD_CMD_WRITE, 0, 1, 0, BIG);
	client_send(f, x, data, BIG - 1);
	client_request(f, y, XM_NBD_CMD_WRITE, 0, 2, BIG, BIG);
	client_send(f, y, data, BIG - 1);
	/* z's two bytes fill the budget exactly, and z sends no more. */
	client_request(f, z, XM_NBD_CMD_WRITE, 0, 3, 2ull * BIG, BIG);
	client_send(f, z, data, 2);
	client_send(f, x, data, 1);
	assert_int_equal(client_reply(f, x, 1), 0);
	client_send(f, y, data, 1);
	assert_int_equal(client_reply(f, y, 2), 0);
	expect_idle(f, z);
	free(data);
}

static void test_stalled_client_is_dropped_after_the_deadline(void **state)
{
	const __u64 t0 = 1000, dl = XM_NBD_MESSAGE_DEADLINE_NS;
	struct fixture *f = *state;
	const struct xm_nbd_counters *cnt = xm_nbd_server_counters(f->srv);
	unsigned char data[512] = {1}, half[10] = {0x25, 0x60};
	int payload = connect_go(f), header = connect_go(f), idle = connect_go(f);
	int moving = connect_go(f), hello = client_connect(f);

	client_request(f, payload, XM_NBD_CMD_WRITE, 0, 1, 0, 4096);
	client_send(f, payload, data, 100);
	client_send(f, header, half, sizeof(half));
	client_hello(f, hello, C_FIXED_NEWSTYLE);
	client_send(f, hello, "IHAV", 4);
	client_request(f, moving, XM_NBD_CMD_WRITE, 0, 2, 0, 1024);
	client_send(f, moving, data, 100);
	xm_nbd_server_tick(f->srv, t0);
	/* moving finishes its message and starts another: its clock starts again. */
	client_send(f, moving, data, 1024 - 100);
	assert_int_equal(client_reply(f, moving, 2), 0);
	client_request(f, moving, XM_NBD_CMD_WRITE, 0, 3, 0, 1024);
	xm_nbd_server_tick(f->srv, t0 + dl - 1);
	spin(f, 5);
	assert_int_equal(cnt->timeouts, 0);
	assert_int_equal(cnt->active, 5);
	xm_nbd_server_tick(f->srv, t0 + dl);
	spin(f, 5);
	assert_int_equal(cnt->timeouts, 3);
	expect_eof(f, payload);
	expect_eof(f, header);
	expect_eof(f, hello);
	/* An idle client is not in the middle of anything; moving's message is younger. */
	read_ok(f, idle, 4, 0, 512);
	client_send(f, moving, data, 512);
	client_send(f, moving, data, 512);
	assert_int_equal(client_reply(f, moving, 3), 0);
	assert_int_equal(cnt->active, 2);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 0);
}

static void test_held_back_connection_is_not_stalled(void **state)
{
	const __u64 t0 = 1000, dl = XM_NBD_MESSAGE_DEADLINE_NS;
	struct fixture *f = *state;
	unsigned char reqs[65 * 28];
	unsigned int i;
	int fd = connect_go(f);

	/* 64 READs at the export, and the next header read with them: held by the server, in the
	 * middle of nothing the client owes. */
	f->complete_now = false;
	for (i = 0; i < 65; i++) {
		unsigned char *r = reqs + 28 * i;

		put32(r, REQ_MAGIC);
		put16(r + 4, 0);
		put16(r + 6, XM_NBD_CMD_READ);
		put64(r + 8, i);
		put64(r + 16, 0);
		put32(r + 24, 512);
	}
	client_send(f, fd, reqs, sizeof(reqs));
	assert_int_equal(f->npending, 64);
	xm_nbd_server_tick(f->srv, t0);
	xm_nbd_server_tick(f->srv, t0 + 2 * dl);
	spin(f, 3);
	assert_int_equal(xm_nbd_server_counters(f->srv)->timeouts, 0);
	f->complete_now = true;
	while (f->npending)
		complete_pending(f, 0, 0);
	for (i = 0; i <= 64; i++) {
		assert_int_equal(client_reply(f, fd, i), 0);
		expect_read_data(f, fd, 0, 512);
	}
}

/* Unaligned requests */

static void test_go_block_sizes_follow_the_request(void **state)
{
	const __u16 bs[] = {INFO_BLOCK_SIZE};
	struct fixture *f = *state;
	struct export_info ei;
	int fd;

	/* Asked for: the real alignment, which the client promises to keep. */
	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_info_option(f, fd, OPT_GO, "", bs, 1);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	assert_int_equal(ei.min_block, MIN_BLOCK);
	/* Not asked for: the client may send anything, and anything is served. */
	fd = client_connect(f);
	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_info_option(f, fd, OPT_INFO, "", NULL, 0);
	assert_int_equal(client_info_replies(f, fd, OPT_INFO, &ei), REP_ACK);
	assert_int_equal(ei.min_block, MIN_BLOCK);
	client_info_option(f, fd, OPT_GO, "", NULL, 0);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	assert_true(ei.have_block_size);
	assert_int_equal(ei.min_block, 1);
	assert_int_equal(ei.pref_block, PREF_BLOCK);
	assert_int_equal(ei.max_block, MAX_BLOCK);
	read_ok(f, fd, 1, 1, 1);
}

static void test_unaligned_read_serves_the_span(void **state)
{
	struct fixture *f = *state;
	int fd = connect_go(f);

	read_ok(f, fd, 1, 100, 1000);
	assert_int_equal(last_req(f)->type, XM_NBD_CMD_READ);
	assert_true(last_req(f)->offset == 0);
	assert_int_equal(last_req(f)->len, 1536);
	/* The largest READ at an odd offset: one block more at the export. */
	read_ok(f, fd, 2, 3, MAX_BLOCK);
	assert_int_equal(last_req(f)->len, MAX_BLOCK + MIN_BLOCK);
	read_ok(f, fd, 3, EXPORT_SIZE - 1, 1);
	assert_true(last_req(f)->offset == EXPORT_SIZE - MIN_BLOCK);
	assert_int_equal(xm_nbd_server_counters(f->srv)->unaligned, 3);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bytes_read, 1000 + MAX_BLOCK + 1);
}

static void test_unaligned_write_is_read_modify_write(void **state)
{
	struct fixture *f = *state;
	unsigned char one = 0xa5, want[MIN_BLOCK];
	int fd = connect_go(f);

	f->model = true;
	f->complete_now = false;
	send_write(f, fd, XM_NBD_CMD_FLAG_FUA, 1, 1, &one, 1);
	/* The block is read first; nothing is written before it is in. */
	assert_int_equal(f->npending, 1);
	assert_true(pending_find(f, XM_NBD_CMD_READ, 0, MIN_BLOCK) == 0);
	complete_found(f, XM_NBD_CMD_READ, 0, MIN_BLOCK);
	assert_true(pending_find(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK) == 0);
	assert_int_equal(last_req(f)->flags, XM_NBD_CMD_FLAG_FUA);
	assert_true(last_req(f)->aligned);
	expect_idle(f, fd);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, fd, 1), 0);
	for (unsigned int i = 0; i < MIN_BLOCK; i++)
		want[i] = pattern(i);
	want[1] = one;
	assert_memory_equal(f->disk, want, MIN_BLOCK);
	assert_int_equal(xm_nbd_server_counters(f->srv)->bytes_written, 1);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 0);
}

static void test_rmw_reads_head_and_tail_blocks(void **state)
{
	struct fixture *f = *state;
	unsigned char data[1000], want[2048];
	unsigned int i;
	int fd = connect_go(f);

	f->model = true;
	fill_random(data, sizeof(data), 11);
	/* Over three blocks: the head block, then the tail block, then the span. */
	send_write(f, fd, 0, 1, 100, data, 1000);
	assert_int_equal(client_reply(f, fd, 1), 0);
	assert_int_equal(f->nlog, 3);
	assert_true(f->log[0].type == XM_NBD_CMD_READ && f->log[0].offset == 0 &&
		    f->log[0].len == MIN_BLOCK);
	assert_true(f->log[1].type == XM_NBD_CMD_READ && f->log[1].offset == 1024 &&
		    f->log[1].len == MIN_BLOCK);
	assert_true(f->log[2].type == XM_NBD_CMD_WRITE && f->log[2].offset == 0 &&
		    f->log[2].len == 1536);
	/* Two blocks side by side: one READ. */
	send_write(f, fd, 0, 2, 510, data, 4);
	assert_int_equal(client_reply(f, fd, 2), 0);
	assert_int_equal(f->nlog, 5);
	assert_true(f->log[3].type == XM_NBD_CMD_READ && f->log[3].offset == 0 &&
		    f->log[3].len == 1024);
	/* Only the tail is partial: the tail block alone. */
	send_write(f, fd, 0, 3, 1024, data, 700);
	assert_int_equal(client_reply(f, fd, 3), 0);
	assert_true(f->log[5].type == XM_NBD_CMD_READ && f->log[5].offset == 1536 &&
		    f->log[5].len == MIN_BLOCK);
	for (i = 0; i < sizeof(want); i++)
		want[i] = pattern(i);
	memcpy(want + 100, data, 1000);
	memcpy(want + 510, data, 4);
	memcpy(want + 1024, data, 700);
	assert_memory_equal(f->disk, want, sizeof(want));
	read_ok(f, fd, 4, 2048, 100); /* untouched beyond */
}

static void test_two_rmws_on_one_block_both_survive(void **state)
{
	struct fixture *f = *state;
	unsigned char x = 0x11, y = 0x22;
	int a = connect_go(f), b = connect_go(f);

	f->model = true;
	f->complete_now = false;
	send_write(f, a, 0, 1, 1, &x, 1);
	send_write(f, b, 0, 2, 3, &y, 1);
	/* One read of the block at a time: b waits for a's whole read-modify-write. */
	assert_int_equal(f->npending, 1);
	complete_found(f, XM_NBD_CMD_READ, 0, MIN_BLOCK);
	assert_int_equal(f->npending, 1);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, a, 1), 0);
	complete_found(f, XM_NBD_CMD_READ, 0, MIN_BLOCK);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, b, 2), 0);
	assert_int_equal(f->disk[1], x);
	assert_int_equal(f->disk[3], y);
	assert_int_equal(f->disk[2], pattern(2));
}

static void test_write_beside_rmw_waits_for_it(void **state)
{
	struct fixture *f = *state;
	unsigned char one = 0x33, *block = malloc(4096);
	int a = connect_go(f), b = connect_go(f);

	assert_non_null(block);
	fill_random(block, 4096, 12);
	f->model = true;
	f->complete_now = false;
	send_write(f, a, 0, 1, 1, &one, 1);
	send_write(f, b, 0, 2, 0, block, 4096);
	/* b's WRITE is whole but waits: the RMW would write its read-back over it. */
	assert_int_equal(f->npending, 1);
	complete_found(f, XM_NBD_CMD_READ, 0, MIN_BLOCK);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, a, 1), 0);
	complete_found(f, XM_NBD_CMD_WRITE, 0, 4096);
	assert_int_equal(client_reply(f, b, 2), 0);
	assert_memory_equal(f->disk, block, 4096);
	/* A write beside nothing unaligned does not wait. */
	send_write(f, b, 0, 3, 8192, block, 512);
	send_write(f, a, 0, 4, 8192, block, 512);
	assert_int_equal(f->npending, 2);
	free(block);
}

static void test_rmw_waits_for_earlier_write(void **state)
{
	struct fixture *f = *state;
	unsigned char one = 0x44, block[MIN_BLOCK];
	int a = connect_go(f), b = connect_go(f);

	fill_random(block, sizeof(block), 13);
	f->model = true;
	f->complete_now = false;
	send_write(f, a, 0, 1, 0, block, sizeof(block));
	send_write(f, b, 0, 2, 7, &one, 1);
	/* The RMW must not read the block while a write to it is at the export. */
	assert_int_equal(f->npending, 1);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, a, 1), 0);
	complete_found(f, XM_NBD_CMD_READ, 0, MIN_BLOCK);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, b, 2), 0);
	block[7] = one;
	assert_memory_equal(f->disk, block, sizeof(block));
}

static void test_unaligned_trim_and_zeroes(void **state)
{
	struct fixture *f = *state;
	unsigned char want[1024];
	unsigned int i;
	int fd = connect_go(f);

	f->model = true;
	/* A TRIM is advisory: nothing of a block inside it, nothing done. */
	client_request(f, fd, XM_NBD_CMD_TRIM, 0, 1, 5, 10);
	assert_int_equal(client_reply(f, fd, 1), 0);
	assert_int_equal(f->nlog, 0);
	client_request(f, fd, XM_NBD_CMD_TRIM, 0, 2, 5, 2000);
	assert_int_equal(client_reply(f, fd, 2), 0);
	assert_true(last_req(f)->type == XM_NBD_CMD_TRIM && last_req(f)->offset == 512 &&
		    last_req(f)->len == 1024);
	/* WRITE_ZEROES: a WRITE of the span, zeros inside, NO_HOLE gone with the command. */
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, XM_NBD_CMD_FLAG_NO_HOLE, 3, 2, 600);
	assert_int_equal(client_reply(f, fd, 3), 0);
	assert_true(last_req(f)->type == XM_NBD_CMD_WRITE && last_req(f)->offset == 0 &&
		    last_req(f)->len == 1024 && last_req(f)->flags == 0);
	for (i = 0; i < sizeof(want); i++)
		want[i] = i >= 2 && i < 602 ? 0 : pattern(i);
	assert_memory_equal(f->disk, want, sizeof(want));
	/* Longer than a WRITE and unaligned: it would need that much memory. */
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, 0, 4, 1, 2 * MAX_BLOCK);
	assert_int_equal(client_reply(f, fd, 4), E_OVERFLOW);
	client_request(f, fd, XM_NBD_CMD_WRITE_ZEROES, 0, 5, 0, 2 * MAX_BLOCK);
	assert_int_equal(client_reply(f, fd, 5), 0);
	assert_int_equal(xm_nbd_server_counters(f->srv)->unaligned, 3);
}

static void test_rmw_dropped_when_client_leaves(void **state)
{
	struct fixture *f = *state;
	unsigned char x = 1, block[MIN_BLOCK] = {0};
	int a = connect_go(f), b = connect_go(f);
	unsigned int i;

	f->complete_now = false;
	send_write(f, b, 0, 1, 0, block, sizeof(block));
	send_write(f, a, 0, 2, 1, &x, 1); /* waits for b's write */
	send_write(f, a, 0, 3, 4097, &x, 1);
	assert_int_equal(f->npending, 2); /* b's write, a's second RMW reading */
	for (i = 0; i < f->nclients; i++)
		if (f->clients[i] == a) {
			close(a);
			f->clients[i] = -1;
		}
	spin(f, 10);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 1);
	/* The waiting RMW is gone; the reading one writes nothing once its READ is in. */
	complete_found(f, XM_NBD_CMD_READ, 4096, MIN_BLOCK);
	assert_int_equal(f->npending, 1);
	complete_found(f, XM_NBD_CMD_WRITE, 0, MIN_BLOCK);
	assert_int_equal(client_reply(f, b, 1), 0);
	assert_int_equal(f->npending, 0);
	assert_int_equal(xm_nbd_server_outstanding(f->srv), 0);
}

static void test_rmw_read_error_is_replied(void **state)
{
	struct fixture *f = *state;
	unsigned char x = 1;
	int fd = connect_go(f);

	f->complete_now = false;
	send_write(f, fd, 0, 1, 1, &x, 1);
	complete_pending(f, 0, -EIO);
	assert_int_equal(client_reply(f, fd, 1), E_IO);
	assert_int_equal(f->npending, 0);
	assert_int_equal(f->nlog, 1);
	f->complete_now = true;
	send_write(f, fd, 0, 2, 1, &x, 1);
	assert_int_equal(client_reply(f, fd, 2), 0);
}

/* The order of overlapping writes (order.c), alone */

static void test_order_plain_writes_never_wait(void **state)
{
	struct xm_nbd_order o = {0};
	struct xm_nbd_range r[3];

	assert_true(xm_nbd_order_add(&o, &r[0], 0, 4096, false));
	assert_true(xm_nbd_order_add(&o, &r[1], 0, 4096, false));
	assert_true(xm_nbd_order_add(&o, &r[2], 512, 1024, false));
	assert_null(xm_nbd_order_next(&o));
	assert_int_equal(o.count, 3);
	xm_nbd_order_remove(&o, &r[1]);
	xm_nbd_order_remove(&o, &r[0]);
	xm_nbd_order_remove(&o, &r[2]);
	assert_int_equal(o.count, 0);
	assert_null(o.head);
	assert_null(o.tail);
}

static void test_order_rmw_and_overlapping_writes(void **state)
{
	struct xm_nbd_order o = {0};
	struct xm_nbd_range w0, m0, m1, w1, w2;

	assert_true(xm_nbd_order_add(&o, &w0, 0, 512, false));
	/* An RMW waits for an earlier write to its span, not for one beside it. */
	assert_false(xm_nbd_order_add(&o, &m0, 0, 512, true));
	assert_true(xm_nbd_order_add(&o, &m1, 512, 1024, true));
	/* A write waits for every earlier RMW it overlaps, started or not. */
	assert_false(xm_nbd_order_add(&o, &w1, 0, 4096, false));
	/* Touching is not overlapping. */
	assert_true(xm_nbd_order_add(&o, &w2, 1024, 2048, false));
	assert_int_equal(o.waiting, 2);
	assert_null(xm_nbd_order_next(&o));
	xm_nbd_order_remove(&o, &w0);
	assert_ptr_equal(xm_nbd_order_next(&o), &m0);
	assert_null(xm_nbd_order_next(&o));
	xm_nbd_order_remove(&o, &m0);
	assert_null(xm_nbd_order_next(&o)); /* m1 still runs */
	xm_nbd_order_remove(&o, &m1);
	assert_ptr_equal(xm_nbd_order_next(&o), &w1);
	assert_int_equal(o.waiting, 0);
}

static void test_order_fifo_among_conflicts(void **state)
{
	struct xm_nbd_order o = {0}, p = {0};
	struct xm_nbd_range a, b, c, d, x, y, z;

	assert_true(xm_nbd_order_add(&o, &a, 0, 512, true));
	assert_false(xm_nbd_order_add(&o, &b, 0, 512, true));
	assert_false(xm_nbd_order_add(&o, &c, 0, 1024, false));
	assert_false(xm_nbd_order_add(&o, &d, 0, 512, true));
	xm_nbd_order_remove(&o, &a);
	/* b first; c and d stay behind it, and d behind c too. */
	assert_ptr_equal(xm_nbd_order_next(&o), &b);
	assert_null(xm_nbd_order_next(&o));
	xm_nbd_order_remove(&o, &b);
	assert_ptr_equal(xm_nbd_order_next(&o), &c);
	assert_null(xm_nbd_order_next(&o));
	xm_nbd_order_remove(&o, &c);
	assert_ptr_equal(xm_nbd_order_next(&o), &d);

	/* z conflicts only with y, which waits: z waits too, or y would read while z writes. */
	assert_true(xm_nbd_order_add(&p, &x, 0, 512, true));
	assert_false(xm_nbd_order_add(&p, &y, 0, 1024, true));
	assert_false(xm_nbd_order_add(&p, &z, 512, 1024, false));
	xm_nbd_order_remove(&p, &x);
	assert_ptr_equal(xm_nbd_order_next(&p), &y);
	assert_null(xm_nbd_order_next(&p));
	xm_nbd_order_remove(&p, &y);
	assert_ptr_equal(xm_nbd_order_next(&p), &z);
}

static void test_order_dropped_range_lets_others_go(void **state)
{
	struct xm_nbd_order o = {0};
	struct xm_nbd_range a, b, c;

	assert_true(xm_nbd_order_add(&o, &a, 0, 512, false));
	assert_false(xm_nbd_order_add(&o, &b, 0, 512, true));
	assert_false(xm_nbd_order_add(&o, &c, 256, 768, false));
	/* b is dropped while it waits (its client left): c waits for a no more. */
	xm_nbd_order_remove(&o, &b);
	assert_int_equal(o.waiting, 1);
	assert_ptr_equal(xm_nbd_order_next(&o), &c);
	assert_int_equal(o.rmw, 0);
	assert_int_equal(o.waiting, 0);
}

/* Listeners and configuration */

static void test_tcp_listener(void **state)
{
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	const __u16 reqs[] = {INFO_BLOCK_SIZE};
	struct export_info ei;
	int probe, fd;

	/* A free port: bind port 0, note it, let it go. */
	probe = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(probe >= 0);
	assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &slen), 0);
	close(probe);
	cfg.unix_path = NULL;
	cfg.tcp_port = ntohs(sin.sin_port);
	restart(f, &cfg);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	f->clients[f->nclients++] = fd;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		fail_msg("connect 127.0.0.1:%u: %s", cfg.tcp_port, strerror(errno));
	spin(f, 2);
	client_hello(f, fd, C_FIXED_NEWSTYLE | C_NO_ZEROES);
	client_info_option(f, fd, OPT_GO, "", reqs, 1);
	assert_int_equal(client_info_replies(f, fd, OPT_GO, &ei), REP_ACK);
	read_ok(f, fd, 1, 0, MAX_BLOCK);
}

static void test_unix_socket_mode_and_stale_file(void **state)
{
	struct fixture *f = *state;
	struct xm_nbd_config cfg = default_config(f);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* Root only unless a group is given: whoever connects owns the disk. */
	assert_int_equal(st.st_mode & 0777, 0600);
	cfg.unix_group = true;
	/* Any group as root; without root, one of ours. */
	cfg.unix_gid = geteuid() ? getegid() : 4242;
	restart(f, &cfg);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(st.st_gid, cfg.unix_gid);
	cfg.unix_group = false;

	/* A socket file left behind by a crash is replaced. */
	xm_nbd_server_stop(f->srv);
	f->srv = NULL;
	spin(f, 3);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	f->srv = xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f);
	assert_non_null(f->srv);
	fd = connect_go(f);
	read_ok(f, fd, 1, 0, 512);

	/* A regular file in the way is not removed. */
	xm_nbd_server_stop(f->srv);
	f->srv = NULL;
	spin(f, 3);
	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(f->path);
}

static void test_start_rejects_bad_config(void **state)
{
	struct fixture *f = *state;
	struct xm_nbd_config good = default_config(f), cfg;
	struct xm_nbd_ops no_submit = {0};

	cfg = good;
	cfg.unix_path = NULL;
	errno = 0;
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(errno, EINVAL);
	cfg = good;
	cfg.min_block = 3;
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(errno, EINVAL);
	cfg = good;
	cfg.max_block = MIN_BLOCK + 1;
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(errno, EINVAL);
	cfg = good;
	cfg.size = EXPORT_SIZE + 1;
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(errno, EINVAL);
	assert_null(xm_nbd_server_start(&f->loop, &good, &no_submit, f));
	assert_int_equal(errno, EINVAL);
	cfg = good;
	cfg.unix_path = "/nonexistent-dir-for-xm-test/nbd.sock";
	assert_null(xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f));
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_plain_writes_never_wait),
		cmocka_unit_test(test_order_rmw_and_overlapping_writes),
		cmocka_unit_test(test_order_fifo_among_conflicts),
		cmocka_unit_test(test_order_dropped_range_lets_others_go),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_go_reports_export_and_block_size),
		T(test_info_then_go_without_requests),
		T(test_malformed_go_is_invalid),
		T(test_export_name_with_and_without_zeroes),
		T(test_list_names_the_export),
		T(test_unsupported_options_are_refused),
		T(test_bad_client_flags_close),
		T(test_oversized_option_and_bad_magic_close),
		T(test_read_returns_export_data),
		T(test_write_payload_arrives_intact),
		T(test_flush_trim_write_zeroes_pass),
		T(test_out_of_range_then_next_request_works),
		T(test_empty_is_einval),
		T(test_bad_flags_and_unknown_types_are_einval),
		T(test_oversized_read_keeps_the_connection),
		T(test_oversized_write_replies_then_closes),
		T(test_bad_magic_closes_only_that_connection),
		T(test_request_split_across_writes),
		T(test_replies_may_come_out_of_order),
		T(test_export_errors_are_mapped),
		T(test_disc_waits_for_outstanding_requests),
		T(test_disc_with_nothing_outstanding_closes),
		T(test_client_eof_with_requests_outstanding),
		T(test_stop_with_a_request_outstanding),
		T(test_outstanding_limit_pauses_then_resumes),
		T(test_slow_reader_does_not_block_others),
		T(test_write_memory_limit_pauses_every_connection),
		T(test_stalled_writers_do_not_hold_the_budget),
		T(test_one_connection_holds_at_most_its_share),
		T(test_budget_full_of_payloads_one_finishes),
		T(test_stalled_client_never_finishes_for_the_others),
		T(test_stalled_client_is_dropped_after_the_deadline),
		T(test_held_back_connection_is_not_stalled),
		T(test_go_block_sizes_follow_the_request),
		T(test_unaligned_read_serves_the_span),
		T(test_unaligned_write_is_read_modify_write),
		T(test_rmw_reads_head_and_tail_blocks),
		T(test_two_rmws_on_one_block_both_survive),
		T(test_write_beside_rmw_waits_for_it),
		T(test_rmw_waits_for_earlier_write),
		T(test_unaligned_trim_and_zeroes),
		T(test_rmw_dropped_when_client_leaves),
		T(test_rmw_read_error_is_replied),
		T(test_tcp_listener),
		T(test_unix_socket_mode_and_stale_file),
		T(test_start_rejects_bad_config),
#undef T
	};
	struct xm_loop probe;
	int err;

	/* io_uring may be switched off (kernel.io_uring_disabled): skip rather than fail. */
	err = xm_loop_init(&probe);
	if (err) {
		printf("SKIP: io_uring unavailable: %s\n", strerror(-err));
		return 77;
	}
	xm_loop_exit(&probe);
	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("nbd", tests, NULL, NULL) ? 1 : 0;
}
