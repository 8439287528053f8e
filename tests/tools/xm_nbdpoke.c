// SPDX-License-Identifier: GPL-2.0
/* Description: a minimal hand-written NBD client that sends one bad (or good) request and checks
 * how the server reacts.  Fixed newstyle, NBD_OPT_GO, simple replies. */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NBD_INIT_MAGIC		0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC		0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u
#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES	2u
#define NBD_OPT_GO		7u
#define NBD_REP_ACK		1u
#define NBD_REP_INFO		3u
#define NBD_INFO_EXPORT		0u
#define NBD_CMD_READ		0u
#define NBD_CMD_WRITE		1u
#define NBD_CMD_DISC		2u
#define NBD_CMD_FLUSH		3u
#define NBD_EINVAL		22u
#define NBD_ENOSPC		28u
#define BLOCK			4096u

struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t len;
} __attribute__((packed));

struct nbd_simple_reply {
	uint32_t magic;
	uint32_t error;
	uint64_t cookie;
} __attribute__((packed));

static const char *scenario = "?";
static int fd = -1;
static uint64_t export_size, next_cookie = 1;

static void usage(void)
{
	fprintf(stderr,
		"usage: xm_nbdpoke --socket PATH [--hold MS] [--offset N] [--len N] SCENARIO\n"
		"scenarios: bad-magic beyond-end read-beyond oversized unaligned bad-type "
		"bad-flags\n"
		"           zero-length half-request write-read\n"
		"Exits 0 when the server reacted as expected, 1 when not, 2 on usage errors.\n");
}

/* The one line of output: what happened.  bad() ends the program with exit code 1. */
static void say(const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void __attribute__((noreturn)) bad(const char *fmt, ...)
{
	va_list ap;

	printf("%s: UNEXPECTED: ", scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(1);
}

static void send_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bad("send: %s", n < 0 ? strerror(errno) : "nothing sent");
		p += n;
		len -= (size_t)n;
	}
}

/* Reads exactly len bytes: 0, or -1 at end of stream (errno 0) or on an error (errno set). */
static int recv_all(void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static const char *recv_error(void)
{
	if (!errno)
		return "connection closed";
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return "no answer within 10 s";
	return strerror(errno);
}

static void must_recv(void *buf, size_t len, const char *what)
{
	if (recv_all(buf, len))
		bad("%s: %s", what, recv_error());
}

static void handshake(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 10};
	struct {
		uint64_t magic, opts_magic;
		uint16_t flags;
	} __attribute__((packed)) hello;
	struct {
		uint64_t magic;
		uint32_t option, len;
		uint32_t name_len;
		uint16_t nreq;
	} __attribute__((packed)) go = {
		.magic = htobe64(NBD_OPTS_MAGIC),
		.option = htobe32(NBD_OPT_GO),
		.len = htobe32(6),
	};
	struct {
		uint64_t magic;
		uint32_t option, type, len;
	} __attribute__((packed)) rep;
	uint32_t cflags = htobe32(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	char data[256];

	if (strlen(path) >= sizeof(sun.sun_path))
		bad("socket path too long");
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		bad("connect %s: %s", path, strerror(errno));
	/* Never hang the test: a server that goes silent is an unexpected reaction. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	must_recv(&hello, sizeof(hello), "server greeting");
	if (be64toh(hello.magic) != NBD_INIT_MAGIC || be64toh(hello.opts_magic) != NBD_OPTS_MAGIC ||
	    !(be16toh(hello.flags) & NBD_FLAG_FIXED_NEWSTYLE))
		bad("not a fixed newstyle server");
	send_all(&cflags, sizeof(cflags));
	send_all(&go, sizeof(go)); /* default export, no info requests */
	for (;;) {
		uint32_t len;

		must_recv(&rep, sizeof(rep), "option reply");
		len = be32toh(rep.len);
		if (be64toh(rep.magic) != NBD_REP_MAGIC || len > sizeof(data))
			bad("malformed option reply");
		must_recv(data, len, "option reply data");
		if (be32toh(rep.type) == NBD_REP_ACK)
			break;
		if (be32toh(rep.type) & 0x80000000u)
			bad("NBD_OPT_GO refused (reply type 0x%x)", be32toh(rep.type));
		if (be32toh(rep.type) == NBD_REP_INFO && len >= 12 &&
		    be16toh(*(uint16_t *)data) == NBD_INFO_EXPORT) {
			memcpy(&export_size, data + 2, 8);
			export_size = be64toh(export_size);
		}
	}
	if (!export_size)
		bad("no export size in the NBD_OPT_GO reply");
}

static uint64_t send_req(uint16_t type, uint16_t flags, uint64_t offset, uint32_t len,
			 const void *payload, uint32_t magic)
{
	struct nbd_request rq = {
		.magic = htobe32(magic),
		.flags = htobe16(flags),
		.type = htobe16(type),
		.cookie = htobe64(next_cookie),
		.offset = htobe64(offset),
		.len = htobe32(len),
	};

	send_all(&rq, sizeof(rq));
	if (payload)
		send_all(payload, len);
	return next_cookie++;
}

/* Reads one simple reply for cookie; returns its error (data of a good READ goes to buf). */
static uint32_t get_reply(uint64_t cookie, void *buf, uint32_t len)
{
	struct nbd_simple_reply r;
	uint32_t err;

	must_recv(&r, sizeof(r), "reply");
	if (be32toh(r.magic) != NBD_SIMPLE_REPLY_MAGIC)
		bad("reply magic 0x%08x", be32toh(r.magic));
	if (be64toh(r.cookie) != cookie)
		bad("reply for cookie %llu, expected %llu", (unsigned long long)be64toh(r.cookie),
		    (unsigned long long)cookie);
	err = be32toh(r.error);
	if (!err && buf)
		must_recv(buf, len, "READ data");
	return err;
}

static void expect_error(uint64_t cookie, uint32_t want, const char *what)
{
	uint32_t err = get_reply(cookie, NULL, 0);

	if (err != want)
		bad("%s: error %u, expected %u", what, err, want);
}

/* The server has closed the connection (EOF or a reset), within the receive timeout. */
static void expect_closed(const char *what)
{
	char c;

	if (!recv_all(&c, 1))
		bad("%s: the server sent more instead of closing", what);
	if (errno && errno != ECONNRESET)
		bad("%s: connection not closed: %s", what, recv_error());
}

/* A valid READ on the same connection still works. */
static void expect_alive(void)
{
	static char buf[BLOCK];
	uint64_t ck = send_req(NBD_CMD_READ, 0, 0, BLOCK, NULL, NBD_REQUEST_MAGIC);
	uint32_t err = get_reply(ck, buf, BLOCK);

	if (err)
		bad("the READ after it failed with error %u", err);
}

/* The export's last BLOCK bytes, read on this connection. */
static void read_tail(void *out)
{
	uint64_t ck =
		send_req(NBD_CMD_READ, 0, export_size - BLOCK, BLOCK, NULL, NBD_REQUEST_MAGIC);
	uint32_t err = get_reply(ck, out, BLOCK);

	if (err)
		bad("READ of the last block failed with error %u", err);
}

static void disconnect(void)
{
	send_req(NBD_CMD_DISC, 0, 0, 0, NULL, NBD_REQUEST_MAGIC);
	close(fd);
}

static void fill(unsigned char *p, uint32_t len, uint64_t seed)
{
	uint32_t i;

	/* xorshift bytes, never 0x00 or 0xEE (tests look for those on the disks) */
	for (i = 0; i < len; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		p[i] = (unsigned char)(seed % 0xED) + 1;
	}
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", 1, 0, 's'},
		{"hold", 1, 0, 'h'},
		{"offset", 1, 0, 'o'},
		{"len", 1, 0, 'l'},
		{0},
	};
	static unsigned char buf[BLOCK];
	const char *path = NULL;
	unsigned long long hold = 1000, offset = 1 << 20, len = 64 << 10;
	uint64_t ck;
	uint32_t err;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'h':
			hold = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			offset = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			len = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!path || optind != argc - 1 || !len || len > (32u << 20)) {
		usage();
		return 2;
	}
	scenario = argv[optind];
	memset(buf, 0x11, sizeof(buf));

	if (!strcmp(scenario, "bad-magic")) {
		handshake(path);
		send_req(NBD_CMD_READ, 0, 0, BLOCK, NULL, 0xdeadbeef);
		expect_closed("request with magic 0xdeadbeef");
		say("request with a bad magic: connection closed by the server");
	} else if (!strcmp(scenario, "beyond-end")) {
		static unsigned char tail[2][BLOCK];

		handshake(path);
		read_tail(tail[0]);
		ck = send_req(NBD_CMD_WRITE, 0, export_size, BLOCK, buf, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_ENOSPC, "WRITE at the export size");
		ck = send_req(NBD_CMD_WRITE, 0, export_size - BLOCK / 2, BLOCK, buf,
			      NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_ENOSPC, "WRITE across the end");
		read_tail(tail[1]);
		if (memcmp(tail[0], tail[1], BLOCK))
			bad("the refused WRITE across the end changed the last block");
		disconnect();
		say("WRITEs at offset %llu (the export size) and across the end: ENOSPC; the last "
		    "block is unchanged",
		    (unsigned long long)export_size);
	} else if (!strcmp(scenario, "read-beyond")) {
		handshake(path);
		ck = send_req(NBD_CMD_READ, 0, export_size - BLOCK / 2, BLOCK, NULL,
			      NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "READ across the end");
		ck = send_req(NBD_CMD_READ, 0, export_size, BLOCK, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "READ at the export size");
		expect_alive();
		disconnect();
		say("READs across and beyond the end: EINVAL; a READ after them works");
	} else if (!strcmp(scenario, "oversized")) {
		handshake(path);
		ck = send_req(NBD_CMD_WRITE, 0, 0, 64u << 20, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "64 MiB WRITE");
		expect_closed("after the refused 64 MiB WRITE");
		say("WRITE of 64 MiB (header only): EINVAL, then the server closed the connection");
	} else if (!strcmp(scenario, "unaligned")) {
		static unsigned char w[612], r[612];

		/* Served (read-modify-write below the server), not refused: docs/protocol.md §8.4.
		 */
		handshake(path);
		fill(w, sizeof(w), (uint64_t)getpid() << 20 | 2);
		ck = send_req(NBD_CMD_WRITE, 0, 100, 512, w + 100, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, NULL, 0)))
			bad("WRITE at offset 100 failed with error %u", err);
		ck = send_req(NBD_CMD_WRITE, 0, 0, 100, w, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, NULL, 0)))
			bad("WRITE of 100 bytes failed with error %u", err);
		ck = send_req(NBD_CMD_READ, 0, 50, 562, NULL, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, r, 562)))
			bad("READ of 562 bytes at offset 50 failed with error %u", err);
		if (memcmp(r, w + 50, 562))
			bad("the unaligned READ differs from the unaligned WRITEs");
		disconnect();
		say("WRITEs at offset 100 and of 100 bytes, then a READ at offset 50: served, the "
		    "bytes read back");
	} else if (!strcmp(scenario, "bad-type")) {
		handshake(path);
		ck = send_req(99, 0, 0, BLOCK, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "command type 99");
		expect_alive();
		disconnect();
		say("command type 99: EINVAL; a READ after it works");
	} else if (!strcmp(scenario, "bad-flags")) {
		handshake(path);
		ck = send_req(NBD_CMD_READ, 0x8000, 0, BLOCK, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "READ with flag 0x8000");
		ck = send_req(NBD_CMD_WRITE, 0x2 /* NO_HOLE */, 0, BLOCK, buf, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "WRITE with NO_HOLE");
		expect_alive();
		disconnect();
		say("READ with flag 0x8000 and WRITE with NO_HOLE: EINVAL; a READ after them "
		    "works");
	} else if (!strcmp(scenario, "zero-length")) {
		handshake(path);
		ck = send_req(NBD_CMD_WRITE, 0, 0, 0, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "WRITE of 0 bytes");
		ck = send_req(NBD_CMD_READ, 0, 0, 0, NULL, NBD_REQUEST_MAGIC);
		expect_error(ck, NBD_EINVAL, "READ of 0 bytes");
		expect_alive();
		disconnect();
		say("WRITE and READ of 0 bytes: EINVAL; a READ after them works");
	} else if (!strcmp(scenario, "half-request")) {
		struct nbd_request rq = {
			.magic = htobe32(NBD_REQUEST_MAGIC),
			.type = htobe16(NBD_CMD_READ),
			.cookie = htobe64(next_cookie),
			.offset = 0,
			.len = htobe32(BLOCK),
		};

		handshake(path);
		send_all(&rq, sizeof(rq) / 2);
		say("sent half a request header, holding it");
		sleep_ms((unsigned int)hold);
		send_all((char *)&rq + sizeof(rq) / 2, sizeof(rq) - sizeof(rq) / 2);
		err = get_reply(next_cookie++, buf, BLOCK);
		if (err)
			bad("the completed READ failed with error %u", err);
		disconnect();
		say("held half a request header for %llu ms, then completed it: READ answered",
		    hold);
	} else if (!strcmp(scenario, "write-read")) {
		unsigned char *w = malloc(len), *r = malloc(len);

		if (!w || !r)
			bad("out of memory");
		handshake(path);
		fill(w, (uint32_t)len, (uint64_t)getpid() << 20 | 1);
		ck = send_req(NBD_CMD_WRITE, 0, offset, (uint32_t)len, w, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, NULL, 0)))
			bad("WRITE failed with error %u", err);
		ck = send_req(NBD_CMD_FLUSH, 0, 0, 0, NULL, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, NULL, 0)))
			bad("FLUSH failed with error %u", err);
		ck = send_req(NBD_CMD_READ, 0, offset, (uint32_t)len, NULL, NBD_REQUEST_MAGIC);
		if ((err = get_reply(ck, r, (uint32_t)len)))
			bad("READ failed with error %u", err);
		if (memcmp(w, r, len))
			bad("read back differs from what was written");
		disconnect();
		say("wrote %llu bytes at %llu, flushed, read them back intact", len, offset);
		free(w);
		free(r);
	} else {
		usage();
		return 2;
	}
	return 0;
}
