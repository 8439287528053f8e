// SPDX-License-Identifier: GPL-2.0
/* Description: the NBD export's TLS on TCP: FORCEDTLS refusals before NBD_OPT_STARTTLS, a GnuTLS
 * PSK client through the handshake and requests, wrong keys, and the checks of the PSK file. */
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "util/loop.h"
#include "nbd/nbd.h"

/* The wire format, written down again from doc/proto.md rather than taken from the server. */
#define INIT_MAGIC  0x4e42444d41474943ull
#define OPTS_MAGIC  0x49484156454f5054ull
#define REP_MAGIC   0x0003e889045565a9ull
#define REQ_MAGIC   0x25609513u
#define REPLY_MAGIC 0x67446698u

#define OPT_EXPORT_NAME 1u
#define OPT_ABORT	2u
#define OPT_LIST	3u
#define OPT_STARTTLS	5u
#define OPT_INFO	6u
#define OPT_GO		7u

#define REP_ACK		 1u
#define REP_INFO	 3u
#define REP_ERR_UNSUP	 0x80000001u
#define REP_ERR_INVALID	 0x80000003u
#define REP_ERR_TLS_REQD 0x80000005u

#define CMD_READ  0u
#define CMD_WRITE 1u
#define CMD_DISC  2u

#define EXPORT_SIZE (1u << 20)
#define BIG	    (96u * 1024) /* several TLS records */
#define DEADLINE_S  10.0

/* psktool's format; the wrong key differs in one nibble. */
#define KEY_ALICE "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
#define KEY_WRONG "1f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
/* Forward secrecy like the server wants, as libnbd offers it. */
#define CLIENT_PRIO "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"

/* What the server logs (stderr), kept in a file while a test looks at it. */
struct capture {
	char path[160];
	int saved;
};

struct fixture {
	char dir[64];
	char sock[128];
	char psk[128];
	struct xm_loop loop;
	struct xm_nbd_server *srv;
	__u16 port;
	unsigned int nreq;
	unsigned char written[BIG];
	__u32 written_len;
	struct capture cap; /* saved >= 0: stderr goes to cap.path */
};

static void capture_start(struct fixture *f)
{
	struct capture *cap = &f->cap;
	int fd;

	snprintf(cap->path, sizeof(cap->path), "%s/stderr", f->dir);
	fflush(stderr);
	cap->saved = dup(2);
	fd = open(cap->path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(cap->saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
}

/* Restores stderr and echoes what was logged into buf (also from teardown, after a failure). */
static void capture_stop(struct capture *cap, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (cap->saved < 0)
		return;
	fflush(stderr);
	dup2(cap->saved, 2);
	close(cap->saved);
	cap->saved = -1;
	fd = open(cap->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	unlink(cap->path);
	buf[n > 0 ? n : 0] = '\0';
	fputs(buf, stderr);
}

/* Ends the capture and checks that every text in want[] was logged. */
static void capture_end(struct fixture *f, const char *const *want, size_t nwant)
{
	char buf[8192];
	size_t i;

	capture_stop(&f->cap, buf, sizeof(buf));
	for (i = 0; i < nwant; i++) {
		if (!strstr(buf, want[i]))
			print_message("the log lacks \"%s\"\n", want[i]);
		assert_non_null(strstr(buf, want[i]));
	}
}

struct client {
	int fd;
	gnutls_session_t s; /* NULL: plaintext */
	gnutls_psk_client_credentials_t cred;
};

static unsigned char pattern(__u64 off)
{
	return (unsigned char)(off ^ (off >> 8) ^ (off >> 16) ^ 0x5a);
}

/* The export: READ returns pattern(), a WRITE is kept for the test to look at. */
static void fake_submit(void *ctx, struct xm_nbd_req *req)
{
	struct fixture *f = ctx;
	unsigned char *buf;
	__u32 i;

	f->nreq++;
	if (req->type == XM_NBD_CMD_WRITE) {
		assert_true(req->len <= sizeof(f->written));
		memcpy(f->written, req->data, req->len);
		f->written_len = req->len;
	}
	if (req->type != XM_NBD_CMD_READ) {
		xm_nbd_done(req, 0, NULL);
		return;
	}
	buf = malloc(req->len);
	assert_non_null(buf);
	for (i = 0; i < req->len; i++)
		buf[i] = pattern(req->offset + i);
	xm_nbd_done(req, 0, buf);
	free(buf);
}

static const struct xm_nbd_ops fake_ops = {.submit = fake_submit};

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

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static __u16 free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	int probe = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(probe >= 0);
	assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &slen), 0);
	close(probe);
	return ntohs(sin.sin_port);
}

static struct xm_nbd_config tls_config(struct fixture *f)
{
	struct xm_nbd_config cfg = {
		.unix_path = f->sock,
		.tcp_port = f->port,
		.tls_psk_file = f->psk,
		.export_name = "tls",
		.size = EXPORT_SIZE,
		.min_block = 512,
		.pref_block = 4096,
		.max_block = 128 * 1024,
	};

	return cfg;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct xm_nbd_config cfg;
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/xm-tls-XXXXXX",
		 tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(f->dir) || xm_loop_init(&f->loop)) {
		free(f);
		return -1;
	}
	snprintf(f->sock, sizeof(f->sock), "%s/nbd.sock", f->dir);
	snprintf(f->psk, sizeof(f->psk), "%s/nbd.psk", f->dir);
	f->cap.saved = -1;
	write_file(f->psk, "alice:" KEY_ALICE "\ncarol:" KEY_WRONG "\n", 0600);
	f->port = free_port();
	cfg = tls_config(f);
	f->srv = xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f);
	if (!f->srv) {
		print_message("xm_nbd_server_start: %s\n", strerror(errno));
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char logged[8192];
	int n;

	/* A test that failed while capturing: the log shows, and stderr comes back. */
	capture_stop(&f->cap, logged, sizeof(logged));
	xm_nbd_server_stop(f->srv);
	for (n = 0; n < 1000 && f->loop.inflight; n++)
		xm_loop_run_once(&f->loop, 1000000);
	assert_int_equal(f->loop.inflight, 0);
	xm_loop_exit(&f->loop);
	unlink(f->psk);
	unlink(f->sock);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Client side: nonblocking sockets; every wait runs the server's loop. */

static void c_connect(struct fixture *f, struct client *c, bool tcp)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(f->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int ret;

	memset(c, 0, sizeof(*c));
	c->fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	strcpy(sun.sun_path, f->sock);
	ret = tcp ? connect(c->fd, (struct sockaddr *)&sin, sizeof(sin))
		  : connect(c->fd, (struct sockaddr *)&sun, sizeof(sun));
	if (ret)
		fail_msg("connect: %s", strerror(errno));
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	spin(f, 2);
}

static void c_close(struct fixture *f, struct client *c)
{
	if (c->s)
		gnutls_deinit(c->s);
	if (c->cred)
		gnutls_psk_free_client_credentials(c->cred);
	close(c->fd);
	spin(f, 3);
}

static void c_send(struct fixture *f, struct client *c, const void *buf, size_t len)
{
	double end = now() + DEADLINE_S;
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = c->s ? gnutls_record_send(c->s, (const char *)buf + off, len - off)
			 : send(c->fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (c->s ? n != GNUTLS_E_AGAIN : errno != EAGAIN)
			fail_msg("send: %s", c->s ? gnutls_strerror((int)n) : strerror(errno));
		if (now() > end)
			fail_msg("timed out sending");
		xm_loop_run_once(&f->loop, 1000000);
	}
	spin(f, 2);
}

/* Reads len bytes; fewer only at the end of the stream.  *clean: the end came with TLS's
 * close_notify (or, in plaintext, as a FIN). */
static size_t c_recv(struct fixture *f, struct client *c, void *buf, size_t len, bool *clean)
{
	double end = now() + DEADLINE_S;
	size_t got = 0;
	ssize_t n;

	if (clean)
		*clean = false;
	while (got < len) {
		n = c->s ? gnutls_record_recv(c->s, (char *)buf + got, len - got)
			 : recv(c->fd, (char *)buf + got, len - got, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (!n) {
			if (clean)
				*clean = true;
			return got;
		}
		if (c->s ? n != GNUTLS_E_AGAIN : errno != EAGAIN)
			return got; /* reset, or a TLS error: the end as well */
		if (now() > end)
			fail_msg("timed out waiting for %zu bytes (got %zu)", len, got);
		xm_loop_run_once(&f->loop, 1000000);
	}
	return got;
}

static void c_recv_exact(struct fixture *f, struct client *c, void *buf, size_t len)
{
	assert_int_equal(c_recv(f, c, buf, len, NULL), len);
}

static void c_expect_end(struct fixture *f, struct client *c)
{
	char b;

	assert_int_equal(c_recv(f, c, &b, 1, NULL), 0);
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

static void c_hello(struct fixture *f, struct client *c)
{
	unsigned char hello[18], flags[4];

	c_recv_exact(f, c, hello, sizeof(hello));
	assert_true(get64(hello) == INIT_MAGIC);
	put32(flags, 3); /* FIXED_NEWSTYLE | NO_ZEROES */
	c_send(f, c, flags, sizeof(flags));
}

static void c_option(struct fixture *f, struct client *c, __u32 opt, const void *data, __u32 len)
{
	unsigned char buf[64];

	assert_true(len <= sizeof(buf) - 16);
	put64(buf, OPTS_MAGIC);
	put32(buf + 8, opt);
	put32(buf + 12, len);
	if (len)
		memcpy(buf + 16, data, len);
	c_send(f, c, buf, 16 + (size_t)len);
}

/* One option reply: its type; the data is skipped. */
static __u32 c_reply(struct fixture *f, struct client *c, __u32 opt)
{
	unsigned char h[20], d[64];
	__u32 len;

	c_recv_exact(f, c, h, sizeof(h));
	assert_true(get64(h) == REP_MAGIC);
	assert_int_equal(get32(h + 8), opt);
	len = get32(h + 16);
	assert_true(len <= sizeof(d));
	if (len)
		c_recv_exact(f, c, d, len);
	return get32(h + 12);
}

/* NBD_OPT_GO on the default export: the final reply's type. */
static __u32 c_go(struct fixture *f, struct client *c)
{
	static const unsigned char go[6] = {0}; /* empty name, no info requests */
	__u32 type;

	c_option(f, c, OPT_GO, go, sizeof(go));
	while ((type = c_reply(f, c, OPT_GO)) == REP_INFO)
		;
	return type;
}

/* The TLS handshake after the ACK to STARTTLS: 0 or the GnuTLS error. */
static int c_handshake(struct fixture *f, struct client *c, const char *prio, const char *user,
		       const char *hexkey)
{
	gnutls_datum_t key = {.data = (unsigned char *)hexkey, .size = (unsigned)strlen(hexkey)};
	double end = now() + DEADLINE_S;
	int ret;

	assert_int_equal(gnutls_psk_allocate_client_credentials(&c->cred), 0);
	assert_int_equal(gnutls_psk_set_client_credentials(c->cred, user, &key, GNUTLS_PSK_KEY_HEX),
			 0);
	assert_int_equal(gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_priority_set_direct(c->s, prio, NULL), 0);
	assert_int_equal(gnutls_credentials_set(c->s, GNUTLS_CRD_PSK, c->cred), 0);
	gnutls_transport_set_int(c->s, c->fd);
	while ((ret = gnutls_handshake(c->s)) == GNUTLS_E_AGAIN ||
	       (ret < 0 && !gnutls_error_is_fatal(ret))) {
		if (now() > end)
			fail_msg("TLS handshake timed out");
		xm_loop_run_once(&f->loop, 1000000);
	}
	return ret;
}

/* A TLS connection that reached the transmission phase as user. */
static void c_connect_tls(struct fixture *f, struct client *c, const char *prio, const char *user,
			  const char *key)
{
	int ret;

	c_connect(f, c, true);
	c_hello(f, c);
	c_option(f, c, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, c, OPT_STARTTLS), REP_ACK);
	ret = c_handshake(f, c, prio, user, key);
	if (ret)
		fail_msg("TLS handshake: %s", gnutls_strerror(ret));
	assert_int_equal(c_go(f, c), REP_ACK);
}

static void c_request(struct fixture *f, struct client *c, __u16 type, __u64 cookie, __u64 off,
		      __u32 len)
{
	unsigned char r[28];

	put32(r, REQ_MAGIC);
	memset(r + 4, 0, 2);
	r[6] = 0;
	r[7] = (unsigned char)type;
	put64(r + 8, cookie);
	put64(r + 16, off);
	put32(r + 24, len);
	c_send(f, c, r, sizeof(r));
}

static void c_expect_reply(struct fixture *f, struct client *c, __u64 cookie)
{
	unsigned char r[16];

	c_recv_exact(f, c, r, sizeof(r));
	assert_int_equal(get32(r), REPLY_MAGIC);
	assert_int_equal(get32(r + 4), 0);
	assert_true(get64(r + 8) == cookie);
}

static void c_read_ok(struct fixture *f, struct client *c, __u64 off, __u32 len)
{
	unsigned char *buf = malloc(len);
	__u32 i;

	assert_non_null(buf);
	c_request(f, c, CMD_READ, off + 1, off, len);
	c_expect_reply(f, c, off + 1);
	c_recv_exact(f, c, buf, len);
	for (i = 0; i < len; i++)
		if (buf[i] != pattern(off + i))
			fail_msg("READ byte %u at %llu differs", i, (unsigned long long)off);
	free(buf);
}

/* FORCEDTLS */

static void test_options_before_starttls_need_tls(void **state)
{
	static const unsigned char info[6] = {0};
	struct fixture *f = *state;
	struct client c;

	c_connect(f, &c, true);
	c_hello(f, &c);
	c_option(f, &c, OPT_GO, info, sizeof(info));
	assert_int_equal(c_reply(f, &c, OPT_GO), REP_ERR_TLS_REQD);
	c_option(f, &c, OPT_INFO, info, sizeof(info));
	assert_int_equal(c_reply(f, &c, OPT_INFO), REP_ERR_TLS_REQD);
	c_option(f, &c, OPT_LIST, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_LIST), REP_ERR_TLS_REQD);
	c_option(f, &c, 42, NULL, 0);
	assert_int_equal(c_reply(f, &c, 42), REP_ERR_TLS_REQD);
	/* STARTTLS carries no data. */
	c_option(f, &c, OPT_STARTTLS, "x", 1);
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ERR_INVALID);
	/* ABORT is answered as ever. */
	c_option(f, &c, OPT_ABORT, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_ABORT), REP_ACK);
	c_expect_end(f, &c);
	c_close(f, &c);
	assert_int_equal(f->nreq, 0);
}

static void test_export_name_before_starttls_closes(void **state)
{
	struct fixture *f = *state;
	struct client c;

	c_connect(f, &c, true);
	c_hello(f, &c);
	/* The one option that cannot be refused with an error: the connection ends, unanswered. */
	c_option(f, &c, OPT_EXPORT_NAME, NULL, 0);
	c_expect_end(f, &c);
	c_close(f, &c);
	assert_int_equal(f->nreq, 0);
}

/* The Unix socket is guarded by its mode, not by TLS: no STARTTLS there. */
static void test_unix_socket_serves_without_tls(void **state)
{
	struct fixture *f = *state;
	struct client c;

	c_connect(f, &c, false);
	c_hello(f, &c);
	c_option(f, &c, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ERR_UNSUP);
	assert_int_equal(c_go(f, &c), REP_ACK);
	c_read_ok(f, &c, 0, 4096);
	c_close(f, &c);
}

/* Plaintext after STARTTLS is taken as the TLS handshake, never as an option. */
static void test_plaintext_after_starttls_is_not_an_option(void **state)
{
	static const unsigned char go[6] = {0};
	unsigned char both[16 + 16 + sizeof(go)];
	struct fixture *f = *state;
	struct client c;

	static const char *const logged[] = {"TLS handshake failed: "};

	capture_start(f);
	c_connect(f, &c, true);
	c_hello(f, &c);
	put64(both, OPTS_MAGIC);
	put32(both + 8, OPT_STARTTLS);
	put32(both + 12, 0);
	put64(both + 16, OPTS_MAGIC);
	put32(both + 24, OPT_GO);
	put32(both + 28, sizeof(go));
	memcpy(both + 32, go, sizeof(go));
	c_send(f, &c, both, sizeof(both));
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ACK);
	/* Then a TLS alert at most, and the end: no reply to GO. */
	{
		unsigned char rest[64];
		size_t n = c_recv(f, &c, rest, sizeof(rest), NULL);

		assert_true(n < sizeof(rest));
		if (n >= 20)
			assert_false(get64(rest) == REP_MAGIC);
	}
	c_close(f, &c);
	capture_end(f, logged, 1);
	assert_int_equal(f->nreq, 0);
}

/* A record that does not decrypt, once TLS is up: the connection ends, and says why. */
static void test_bad_record_after_handshake_closes(void **state)
{
	static const char *const logged[] = {": TLS: "};
	static const unsigned char junk[5 + 32] = {0x17, 0x03, 0x03, 0x00, 32, 1, 2, 3};
	struct fixture *f = *state;
	struct client c;

	capture_start(f);
	c_connect_tls(f, &c, CLIENT_PRIO, "alice", KEY_ALICE);
	assert_int_equal(send(c.fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	spin(f, 3);
	c_expect_end(f, &c);
	c_close(f, &c);
	capture_end(f, logged, 1);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

/* TLS with a key from the file */

static void test_psk_client_reads_and_writes(void **state)
{
	static const char *const prios[] = {
		CLIENT_PRIO, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+ECDHE-PSK", /* TLS 1.2 too */
	};
	struct fixture *f = *state;
	unsigned char *big = malloc(BIG);
	struct client c;
	bool clean;
	size_t i;
	char b;

	assert_non_null(big);
	for (i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i < sizeof(prios) / sizeof(prios[0]); i++) {
		c_connect_tls(f, &c, prios[i], "alice", KEY_ALICE);
		c_read_ok(f, &c, 4096, 4096);
		c_read_ok(f, &c, 8192, BIG); /* several records */
		c_request(f, &c, CMD_WRITE, 77, 0, BIG);
		c_send(f, &c, big, BIG);
		c_expect_reply(f, &c, 77);
		assert_int_equal(f->written_len, BIG);
		assert_memory_equal(f->written, big, BIG);
		/* NBD_CMD_DISC: the server ends TLS with close_notify, then the connection. */
		c_request(f, &c, CMD_DISC, 78, 0, 0);
		assert_int_equal(c_recv(f, &c, &b, 1, &clean), 0);
		assert_true(clean);
		c_close(f, &c);
	}
	free(big);
}

static void test_starttls_twice_is_invalid(void **state)
{
	struct fixture *f = *state;
	struct client c;

	c_connect(f, &c, true);
	c_hello(f, &c);
	c_option(f, &c, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ACK);
	assert_int_equal(c_handshake(f, &c, CLIENT_PRIO, "alice", KEY_ALICE), 0);
	c_option(f, &c, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ERR_INVALID);
	c_option(f, &c, OPT_LIST, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_LIST), 2u); /* REP_SERVER: options work under TLS */
	assert_int_equal(c_reply(f, &c, OPT_LIST), REP_ACK);
	assert_int_equal(c_go(f, &c), REP_ACK);
	c_read_ok(f, &c, 0, 512);
	c_close(f, &c);
}

/* The handshake runs on the loop: a client that stops halfway holds up nobody.  (Server and
 * clients share this thread: a server waiting for the stalled client would hang the test.) */
static void test_stalled_handshake_blocks_no_one(void **state)
{
	struct fixture *f = *state;
	struct client stalled, half, c;
	unsigned char hello[5] = {0x16, 0x03, 0x01, 0x02, 0x00}; /* a record header, no body */

	c_connect(f, &stalled, true);
	c_hello(f, &stalled);
	c_option(f, &stalled, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &stalled, OPT_STARTTLS), REP_ACK);
	c_connect(f, &half, true);
	c_hello(f, &half);
	c_option(f, &half, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &half, OPT_STARTTLS), REP_ACK);
	c_send(f, &half, hello, sizeof(hello));

	c_connect_tls(f, &c, CLIENT_PRIO, "alice", KEY_ALICE);
	c_read_ok(f, &c, 0, 4096);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 3);
	c_close(f, &c);
	c_close(f, &half);
	c_close(f, &stalled);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

static void test_wrong_key_unknown_user_and_plain_psk_fail(void **state)
{
	static const struct {
		const char *prio, *user, *key;
	} cases[] = {
		{CLIENT_PRIO, "alice", KEY_WRONG},
		{CLIENT_PRIO, "carol", KEY_ALICE}, /* alice's key under another user's name */
		{CLIENT_PRIO, "bob", KEY_ALICE},   /* not in the file */
		/* PSK without (EC)DHE: no forward secrecy, refused. */
		{"NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK", "alice", KEY_ALICE},
	};
	static const char *const logged[] = {
		"TLS handshake failed: An illegal parameter has been received. (user 'alice': not "
		"this key?)",
		"(user 'carol': not this key?)",
		"(user 'bob' is not in the PSK file)",
		"TLS handshake failed: No supported cipher suites have been found.",
		"closed by the client during the TLS handshake",
	};
	struct fixture *f = *state;
	struct client c;
	size_t i;

	capture_start(f);
	/* A client that hangs up after the ACK. */
	c_connect(f, &c, true);
	c_hello(f, &c);
	c_option(f, &c, OPT_STARTTLS, NULL, 0);
	assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ACK);
	c_close(f, &c);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c_connect(f, &c, true);
		c_hello(f, &c);
		c_option(f, &c, OPT_STARTTLS, NULL, 0);
		assert_int_equal(c_reply(f, &c, OPT_STARTTLS), REP_ACK);
		if (!c_handshake(f, &c, cases[i].prio, cases[i].user, cases[i].key)) {
			/* TLS 1.3 clients may finish first and learn only now. */
			unsigned char b;

			c_option(f, &c, OPT_LIST, NULL, 0);
			assert_int_equal(c_recv(f, &c, &b, 1, NULL), 0);
		}
		c_close(f, &c);
	}
	capture_end(f, logged, sizeof(logged) / sizeof(logged[0]));
	assert_int_equal(f->nreq, 0);
	assert_int_equal(xm_nbd_server_counters(f->srv)->active, 0);
}

/* The PSK file */

static void test_psk_file_checks(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
		const char *why;
	} cases[] = {
		{"alice:" KEY_ALICE "\n", 0644, "mode 0644 lets group or others at it (chmod 600 "},
		{"alice:" KEY_ALICE "\n", 0640, "mode 0640 lets group or others at it"},
		{"", 0600, "no keys (make one with 'psktool -u NAME -p FILE')"},
		{"\n\n", 0600, "no keys"},
		{"alice " KEY_ALICE "\n", 0600,
		 "line 1: want 'user:hexkey' (as psktool writes it)"},
		{"alice:" KEY_ALICE "\n:" KEY_ALICE "\n", 0600,
		 "line 2: a user name has 1-128 bytes"},
		{"alice:xyz1\n", 0600, "line 1: the key of 'alice' is not hexadecimal"},
		{"alice:abc\n", 0600, "line 1: the key of 'alice' is not hexadecimal"},
		{"alice:\n", 0600, "line 1: the key of 'alice' is not hexadecimal"},
		{"alice:00112233445566778899aabbccddee\n", 0600,
		 "line 1: the key of 'alice' has 15 bytes, want 16-512 (psktool makes 32)"},
		{"alice:" KEY_ALICE "\n\nalice:" KEY_WRONG "\n", 0600,
		 "line 3: user 'alice' given twice"},
	};
	struct fixture *f = *state;
	char path[160], err[512], want[512];
	struct xm_nbd_config cfg;
	size_t i;

	snprintf(path, sizeof(path), "%s/bad.psk", f->dir);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(path, cases[i].text, cases[i].mode);
		err[0] = '\0';
		assert_int_not_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "TLS PSK file '%s': %s", path, cases[i].why);
		if (strncmp(err, want, strlen(want)))
			print_message("row %zu: \"%s\"\n  want \"%s\"\n", i, err, want);
		assert_int_equal(strncmp(err, want, strlen(want)), 0);
	}
	/* Not a file; too large; a NUL in it; someone else's. */
	{
		static char big[70 * 1024];
		int fd;

		snprintf(want, sizeof(want), "TLS PSK file '%s': not a regular file", f->dir);
		assert_int_equal(xm_nbd_tls_psk_check(f->dir, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		memset(big, 'a', sizeof(big) - 1);
		write_file(path, big, 0600);
		snprintf(want, sizeof(want), "TLS PSK file '%s': larger than 64 KiB", path);
		assert_int_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), -EFBIG);
		assert_string_equal(err, want);
		fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "alice:\0", 7), 7);
		close(fd);
		snprintf(want, sizeof(want), "TLS PSK file '%s': not a text file", path);
		assert_int_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		if (!geteuid()) {
			write_file(path, "alice:" KEY_ALICE "\n", 0600);
			assert_int_equal(chown(path, 4242, (gid_t)-1), 0);
			snprintf(want, sizeof(want),
				 "TLS PSK file '%s': owned by uid 4242, not by this user (0)",
				 path);
			assert_int_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), -EPERM);
			assert_string_equal(err, want);
			unlink(path);
		}
	}
	/* A good file: psktool's lines, with CRLF and blank lines tolerated. */
	write_file(path, "alice:" KEY_ALICE "\r\n\nbob:" KEY_WRONG "\n", 0600);
	assert_int_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(xm_nbd_tls_psk_check(path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "TLS PSK file '%s': No such file or directory", path);
	assert_string_equal(err, want);

	/* The server refuses to start with such a file, and leaves no socket behind. */
	xm_nbd_server_stop(f->srv);
	spin(f, 3);
	write_file(path, "alice:" KEY_ALICE "\n", 0644);
	cfg = tls_config(f);
	cfg.tls_psk_file = path;
	f->srv = xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f);
	assert_null(f->srv);
	assert_int_equal(errno, EPERM);
	assert_int_equal(access(f->sock, F_OK), -1);
	unlink(path);
	cfg = tls_config(f);
	f->srv = xm_nbd_server_start(&f->loop, &cfg, &fake_ops, f);
	assert_non_null(f->srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_options_before_starttls_need_tls),
		T(test_export_name_before_starttls_closes),
		T(test_unix_socket_serves_without_tls),
		T(test_plaintext_after_starttls_is_not_an_option),
		T(test_psk_client_reads_and_writes),
		T(test_starttls_twice_is_invalid),
		T(test_stalled_handshake_blocks_no_one),
		T(test_bad_record_after_handshake_closes),
		T(test_wrong_key_unknown_user_and_plain_psk_fail),
		T(test_psk_file_checks),
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
	return cmocka_run_group_tests_name("nbd_starttls", tests, NULL, NULL) ? 1 : 0;
}
