// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed inputs of the fuzz targets (seed-* in tests/fuzz/corpus/<target>/): valid NBD
 * sessions and typical mistakes, a valid frame of every type and typical broken ones (built with
 * xm_frame_build), HELLO payloads that reach every check and every decision.  The input formats
 * are described at the top of each fuzz_*.c.  Usage: gen_corpus CORPUS_DIR
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "link/frame.h"
#include "nbd/internal.h"

struct seed {
	uint8_t b[64 * 1024];
	size_t n;
};

static const char *corpus_dir;
static int nwritten;

static void put(struct seed *s, const void *p, size_t len)
{
	if (s->n + len > sizeof(s->b)) {
		fprintf(stderr, "gen_corpus: seed too large\n");
		exit(1);
	}
	if (len)
		memcpy(s->b + s->n, p, len);
	s->n += len;
}

static void put8(struct seed *s, uint8_t v)
{
	put(s, &v, 1);
}

static void put16(struct seed *s, uint16_t v)
{
	v = htobe16(v);
	put(s, &v, 2);
}

static void put32(struct seed *s, uint32_t v)
{
	v = htobe32(v);
	put(s, &v, 4);
}

static void put64(struct seed *s, uint64_t v)
{
	v = htobe64(v);
	put(s, &v, 8);
}

static void put_le16(struct seed *s, uint16_t v)
{
	v = htole16(v);
	put(s, &v, 2);
}

static void put_le32(struct seed *s, uint32_t v)
{
	v = htole32(v);
	put(s, &v, 4);
}

static void write_seed(const char *target, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", corpus_dir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "gen_corpus: mkdir '%s': %s\n", path, strerror(errno));
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", corpus_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		fprintf(stderr, "gen_corpus: write '%s': %s\n", path, strerror(errno));
		exit(1);
	}
	nwritten++;
}

/* ---- fuzz_nbd_request: ctl[0], ctl[1], then what the client sends ---- */

#define COMPLETE_AT_ONCE      0
#define COMPLETE_EACH_CHUNK   1
#define COMPLETE_NEWEST_FIRST 2
#define COMPLETE_WHEN_STUCK   3
#define ERRORS		      4
#define CHUNK(i)	      ((i) << 3) /* 0: all, 1: 1 byte, 4: 7, 5: 28, 6: 512, 7: 4109 */
#define CONFIG(i)	      ((i) << 6) /* 0: 512/32K/1M, 1: 4096 only, 2: 1/8K/2^64-1, 3: empty */
#define FAIL_NTH(n)	      (n)
#define STOP_EARLY	      0x10
#define CLOSE_CLIENT	      0x20
#define SMALL_SNDBUF	      0x40
#define IDLE_CLIENT	      0x80

static void nbd_start(struct seed *s, uint8_t ctl0, uint8_t ctl1, uint32_t client_flags)
{
	s->n = 0;
	put8(s, ctl0);
	put8(s, ctl1);
	put32(s, client_flags);
}

static void nbd_opt(struct seed *s, uint32_t option, const void *data, uint32_t len)
{
	put64(s, NBD_OPTS_MAGIC);
	put32(s, option);
	put32(s, len);
	put(s, data, len);
}

/* NBD_OPT_GO or NBD_OPT_INFO: name, then the info requests. */
static void nbd_opt_go(struct seed *s, uint32_t option, const char *name, const uint16_t *infos,
		       uint16_t ninfos)
{
	uint16_t i;

	put64(s, NBD_OPTS_MAGIC);
	put32(s, option);
	put32(s, 4 + (uint32_t)strlen(name) + 2 + 2u * ninfos);
	put32(s, (uint32_t)strlen(name));
	put(s, name, strlen(name));
	put16(s, ninfos);
	for (i = 0; i < ninfos; i++)
		put16(s, infos[i]);
}

static void nbd_req(struct seed *s, uint16_t flags, uint16_t type, uint64_t cookie, uint64_t offset,
		    uint32_t len)
{
	put32(s, NBD_REQUEST_MAGIC);
	put16(s, flags);
	put16(s, type);
	put64(s, cookie);
	put64(s, offset);
	put32(s, len);
}

static void nbd_write(struct seed *s, uint16_t flags, uint64_t cookie, uint64_t offset,
		      uint32_t len)
{
	uint32_t i;

	nbd_req(s, flags, XM_NBD_CMD_WRITE, cookie, offset, len);
	for (i = 0; i < len; i++)
		put8(s, (uint8_t)(i * 7 + cookie));
}

static const uint16_t go_infos[] = {NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE};

static void nbd_go(struct seed *s, uint8_t ctl0, uint8_t ctl1)
{
	nbd_start(s, ctl0, ctl1, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	nbd_opt_go(s, NBD_OPT_GO, "xm-fuzz", go_infos, 2);
}

/* One of each command the export takes, then a disconnect. */
static void nbd_every_command(struct seed *s)
{
	nbd_req(s, 0, XM_NBD_CMD_READ, 1, 0, 4096);
	nbd_write(s, 0, 2, 4096, 512);
	nbd_req(s, 0, XM_NBD_CMD_FLUSH, 3, 0, 0);
	nbd_req(s, 0, XM_NBD_CMD_TRIM, 4, 8192, 4096);
	nbd_req(s, XM_NBD_CMD_FLAG_NO_HOLE, XM_NBD_CMD_WRITE_ZEROES, 5, 0, 1024);
	nbd_write(s, XM_NBD_CMD_FLAG_FUA, 6, 512, 512);
	nbd_req(s, XM_NBD_CMD_FLAG_FUA, XM_NBD_CMD_READ, 7, 512, 512);
	nbd_req(s, 0, XM_NBD_CMD_DISC, 8, 0, 0);
}

static void nbd_seeds(void)
{
	static struct seed s;
	uint32_t i;

	nbd_go(&s, COMPLETE_AT_ONCE | CHUNK(0), 0);
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "go-every-command", &s);

	nbd_go(&s, COMPLETE_EACH_CHUNK | CHUNK(1), 0);
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "go-every-command-bytewise", &s);

	nbd_go(&s, COMPLETE_NEWEST_FIRST | ERRORS | CHUNK(7), CLOSE_CLIENT);
	for (i = 0; i < 8; i++)
		nbd_req(&s, 0, XM_NBD_CMD_READ, i, 4096 * i, 4096);
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "go-errors-newest-first", &s);

	/* Old clients: EXPORT_NAME and the 124 zeroes. */
	nbd_start(&s, COMPLETE_NEWEST_FIRST | CHUNK(5), 0, NBD_FLAG_C_FIXED_NEWSTYLE);
	nbd_opt(&s, NBD_OPT_EXPORT_NAME, "xm-fuzz", 7);
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "export-name-zeroes", &s);

	/* Every option, valid and malformed, before GO. */
	nbd_start(&s, COMPLETE_EACH_CHUNK | CHUNK(4), 0, NBD_FLAG_C_FIXED_NEWSTYLE);
	nbd_opt(&s, NBD_OPT_LIST, NULL, 0);
	nbd_opt(&s, NBD_OPT_LIST, "x", 1);
	nbd_opt_go(&s, NBD_OPT_INFO, "xm-fuzz", NULL, 0);
	nbd_opt_go(&s, NBD_OPT_INFO, "", go_infos, 2);
	nbd_opt(&s, NBD_OPT_INFO, "abc", 3);
	nbd_opt(&s, 8, NULL, 0);   /* STRUCTURED_REPLY: unsupported */
	nbd_opt(&s, 5, NULL, 0);   /* STARTTLS */
	put64(&s, NBD_OPTS_MAGIC); /* GO whose info count runs past its length */
	put32(&s, NBD_OPT_GO);
	put32(&s, 8);
	put32(&s, 0);
	put16(&s, 3);
	put16(&s, NBD_INFO_NAME);
	nbd_opt_go(&s, NBD_OPT_GO, "xm-fuzz", go_infos, 2);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 512);
	nbd_req(&s, 0, XM_NBD_CMD_DISC, 2, 0, 0);
	write_seed("fuzz_nbd_request", "options", &s);

	nbd_start(&s, 0, 0, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	nbd_opt(&s, NBD_OPT_ABORT, NULL, 0);
	nbd_opt(&s, NBD_OPT_LIST, NULL, 0);
	write_seed("fuzz_nbd_request", "abort", &s);

	/* Requests the checks refuse, each answered, then one that hangs up. */
	nbd_go(&s, COMPLETE_EACH_CHUNK | CHUNK(6), 0);
	nbd_req(&s, 0, 5, 1, 0, 512);			   /* unknown command */
	nbd_req(&s, 0, XM_NBD_CMD_READ, 2, 1, 512);	   /* unaligned: served */
	nbd_req(&s, 0, XM_NBD_CMD_READ, 3, 0, 0);	   /* empty */
	nbd_req(&s, 0, XM_NBD_CMD_READ, 4, 1u << 20, 512); /* past the end */
	nbd_write(&s, 0, 5, (1u << 20) - 512, 1024); /* past the end: ENOSPC, payload skipped */
	nbd_write(&s, 0x80, 6, 0, 512);		     /* unknown flag */
	nbd_req(&s, XM_NBD_CMD_FLAG_NO_HOLE, XM_NBD_CMD_READ, 7, 0, 512);
	nbd_req(&s, XM_NBD_CMD_FLAG_FUA, XM_NBD_CMD_TRIM, 8, 0, 512);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 9, 0, 256u << 10); /* over max_block */
	nbd_req(&s, 0, XM_NBD_CMD_FLUSH, 10, 12345, 17);   /* flush range ignored */
	nbd_req(&s, 0, XM_NBD_CMD_READ, 11, 0, 512);
	nbd_req(&s, 0, XM_NBD_CMD_WRITE, 12, 0, 256u << 10); /* over max_block: hang up */
	write_seed("fuzz_nbd_request", "bad-requests", &s);

	nbd_go(&s, 0, 0);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 512);
	put32(&s, 0x25609514);
	write_seed("fuzz_nbd_request", "bad-request-magic", &s);

	nbd_start(&s, 0, 0, NBD_FLAG_C_NO_ZEROES);
	write_seed("fuzz_nbd_request", "not-fixed-newstyle", &s);

	nbd_start(&s, 0, 0, NBD_FLAG_C_FIXED_NEWSTYLE | 4);
	write_seed("fuzz_nbd_request", "unknown-client-flag", &s);

	nbd_start(&s, 0, 0, NBD_FLAG_C_FIXED_NEWSTYLE);
	put64(&s, NBD_OPTS_MAGIC + 1);
	put32(&s, NBD_OPT_LIST);
	put32(&s, 0);
	write_seed("fuzz_nbd_request", "bad-option-magic", &s);

	nbd_start(&s, 0, 0, NBD_FLAG_C_FIXED_NEWSTYLE);
	put64(&s, NBD_OPTS_MAGIC);
	put32(&s, NBD_OPT_GO);
	put32(&s, XM_NBD_MAX_OPT_LEN + 1);
	write_seed("fuzz_nbd_request", "option-too-long", &s);

	/* More requests than the export may hold: the connection pauses at the limit. */
	nbd_go(&s, COMPLETE_WHEN_STUCK, 0);
	for (i = 0; i < XM_NBD_MAX_OUTSTANDING + 16; i++)
		nbd_req(&s, 0, XM_NBD_CMD_READ, i, 512 * i, 512);
	write_seed("fuzz_nbd_request", "outstanding-limit", &s);

	/* More reply bytes than a connection may queue (64 KiB in the fuzz build): it pauses
	 * until the client reads. */
	nbd_go(&s, COMPLETE_AT_ONCE, 0);
	for (i = 0; i < 8; i++)
		nbd_req(&s, 0, XM_NBD_CMD_READ, i, 0, 32u << 10);
	write_seed("fuzz_nbd_request", "reply-queue-limit", &s);

	/* Replies sent in pieces: READ data cut anywhere, queued behind a full socket. */
	nbd_go(&s, COMPLETE_EACH_CHUNK | CHUNK(5), SMALL_SNDBUF);
	for (i = 0; i < 12; i++)
		nbd_req(&s, 0, XM_NBD_CMD_READ, i, 0, 512u * (i + 1));
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "small-send-buffer", &s);

	/* Another connection is open the whole time. */
	nbd_go(&s, COMPLETE_WHEN_STUCK, IDLE_CLIENT);
	for (i = 0; i < 6; i++)
		nbd_write(&s, 0, i, 512 * i, 512);
	nbd_every_command(&s);
	write_seed("fuzz_nbd_request", "two-clients", &s);

	/* More WRITE bytes at the export than the server holds (2 KiB in the fuzz build): it
	 * stops reading until the export completes some. */
	nbd_go(&s, COMPLETE_WHEN_STUCK, 0);
	for (i = 0; i < 6; i++)
		nbd_write(&s, 0, i, 512 * i, 512);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 6, 0, 512);
	nbd_req(&s, 0, XM_NBD_CMD_DISC, 7, 0, 0);
	write_seed("fuzz_nbd_request", "write-bytes-limit", &s);

	/* Unaligned requests (512-byte blocks): writes in one block, across two, across several,
	 * an aligned one beside them, a READ, WRITE_ZEROES and TRIMs; held until the server is
	 * stuck, so the ones beside a read-modify-write wait for it. */
	for (i = 0; i < 3; i++) {
		static const uint8_t ctl[3] = {COMPLETE_WHEN_STUCK | CHUNK(6),
					       COMPLETE_NEWEST_FIRST | ERRORS | CHUNK(5),
					       COMPLETE_EACH_CHUNK | CONFIG(1)};
		static const char *const name[3] = {"unaligned", "unaligned-errors",
						    "unaligned-4096"};

		nbd_go(&s, ctl[i], 0);
		nbd_write(&s, 0, 1, 1, 1);
		nbd_write(&s, 0, 2, 3, 1);
		nbd_write(&s, XM_NBD_CMD_FLAG_FUA, 3, 510, 4);
		nbd_write(&s, 0, 4, 100, 1000);
		nbd_write(&s, 0, 5, 0, 512);
		nbd_req(&s, 0, XM_NBD_CMD_READ, 6, 1, 1000);
		nbd_req(&s, XM_NBD_CMD_FLAG_NO_HOLE, XM_NBD_CMD_WRITE_ZEROES, 7, 2, 600);
		nbd_req(&s, 0, XM_NBD_CMD_TRIM, 8, 5, 10);
		nbd_req(&s, 0, XM_NBD_CMD_TRIM, 9, 5, 2000);
		nbd_write(&s, 0, 10, 4095, 2);
		nbd_req(&s, 0, XM_NBD_CMD_WRITE_ZEROES, 11, 1, 64u << 10); /* EOVERFLOW */
		nbd_req(&s, 0, XM_NBD_CMD_DISC, 12, 0, 0);
		write_seed("fuzz_nbd_request", name[i], &s);
	}

	/* A client that never asked for block sizes, with GO. */
	nbd_start(&s, COMPLETE_AT_ONCE, 0, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	nbd_opt_go(&s, NBD_OPT_GO, "", NULL, 0);
	nbd_write(&s, 0, 1, 7, 9);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 2, 7, 9);
	write_seed("fuzz_nbd_request", "go-no-block-size", &s);

	/* WRITEs larger than the budget (2 KiB in the fuzz build): a payload that arrives while
	 * nothing is at the export is finished past it. */
	nbd_go(&s, COMPLETE_WHEN_STUCK | CHUNK(7), IDLE_CLIENT);
	nbd_write(&s, 0, 1, 0, 8192);
	nbd_write(&s, 0, 2, 8192, 4096);
	nbd_write(&s, 0, 3, 3, 5000);
	nbd_req(&s, 0, XM_NBD_CMD_DISC, 4, 0, 0);
	write_seed("fuzz_nbd_request", "budget-finisher", &s);

	/* The client stops in the middle of a WRITE payload, and of a header: the deadline. */
	nbd_go(&s, COMPLETE_AT_ONCE, 0);
	nbd_write(&s, 0, 1, 0, 512);
	nbd_req(&s, 0, XM_NBD_CMD_WRITE, 2, 0, 4096);
	put(&s, "partial", 7);
	write_seed("fuzz_nbd_request", "stalled-payload", &s);
	nbd_go(&s, COMPLETE_AT_ONCE, 0);
	put(&s, "\x25\x60\x95", 3);
	write_seed("fuzz_nbd_request", "stalled-header", &s);

	/* The loop has no room for a submission: the accept's watch, then the first poll or
	 * kick. */
	for (i = 1; i <= 3; i++) {
		char name[32];

		nbd_go(&s, COMPLETE_AT_ONCE, FAIL_NTH(i));
		nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 32u << 10);
		nbd_req(&s, 0, XM_NBD_CMD_READ, 2, 0, 32u << 10);
		nbd_req(&s, 0, XM_NBD_CMD_READ, 3, 0, 32u << 10);
		snprintf(name, sizeof(name), "ring-full-%u", i);
		write_seed("fuzz_nbd_request", name, &s);
	}

	/* The server stops while the export holds requests and a WRITE is half received. */
	nbd_go(&s, COMPLETE_WHEN_STUCK, STOP_EARLY);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 4096);
	nbd_write(&s, 0, 2, 4096, 1024);
	nbd_req(&s, 0, XM_NBD_CMD_FLUSH, 3, 0, 0);
	nbd_req(&s, 0, XM_NBD_CMD_WRITE, 4, 0, 4096);
	put(&s, "partial", 7);
	write_seed("fuzz_nbd_request", "stop-while-held", &s);

	/* The client leaves in the middle of a WRITE payload. */
	nbd_go(&s, COMPLETE_EACH_CHUNK | CHUNK(6), CLOSE_CLIENT);
	nbd_req(&s, 0, XM_NBD_CMD_WRITE, 1, 0, 8192);
	for (i = 0; i < 1000; i++)
		put8(&s, (uint8_t)i);
	write_seed("fuzz_nbd_request", "close-in-write", &s);

	/* Disconnect with requests outstanding: what follows it is never read. */
	nbd_go(&s, COMPLETE_NEWEST_FIRST | CHUNK(0), 0);
	for (i = 0; i < 4; i++)
		nbd_req(&s, 0, XM_NBD_CMD_READ, i, 0, 4096);
	nbd_req(&s, 0, XM_NBD_CMD_DISC, 9, 0, 0);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 10, 0, 4096);
	write_seed("fuzz_nbd_request", "disc-outstanding", &s);

	/* Byte granularity on a 2^64-1 byte export: ranges at the very end, and past it. */
	nbd_go(&s, COMPLETE_AT_ONCE | CONFIG(2), 0);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, UINT64_MAX - 4096, 4096);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 2, UINT64_MAX - 10, 20);
	nbd_req(&s, 0, XM_NBD_CMD_TRIM, 3, UINT64_MAX, 1);
	nbd_write(&s, 0, 4, 3, 1);
	nbd_req(&s, 0, XM_NBD_CMD_WRITE_ZEROES, 5, UINT64_MAX - 1, UINT32_MAX);
	nbd_req(&s, 0, XM_NBD_CMD_DISC, 6, 0, 0);
	write_seed("fuzz_nbd_request", "huge-export", &s);

	nbd_go(&s, COMPLETE_AT_ONCE | CONFIG(3), 0);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 1);
	nbd_req(&s, 0, XM_NBD_CMD_FLUSH, 2, 0, 0);
	nbd_write(&s, 0, 3, 0, 1);
	write_seed("fuzz_nbd_request", "empty-export", &s);

	nbd_go(&s, COMPLETE_EACH_CHUNK | CONFIG(1) | CHUNK(3), 0);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 1, 0, 4096);
	nbd_write(&s, 0, 2, 4096, 4096);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 3, 512, 4096);
	nbd_req(&s, 0, XM_NBD_CMD_READ, 4, 60u << 10, 8192);
	write_seed("fuzz_nbd_request", "one-block-size", &s);
}

/* ---- fuzz_frame: a 16-byte prefix (spans, a range), then the frame ---- */

static const uint8_t mac_dst[XM_ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x02};
static const uint8_t mac_src[XM_ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x01};

static void frame_prefix(struct seed *s, unsigned int nspans, const uint16_t lens[3], uint32_t off,
			 uint32_t len, uint8_t max_out)
{
	unsigned int i;

	s->n = 0;
	put8(s, (uint8_t)(nspans - 1));
	for (i = 0; i < 3; i++)
		put_le16(s, lens ? lens[i] : 0);
	put_le32(s, off);
	put_le32(s, len);
	put8(s, max_out);
}

/* Appends a frame built by xm_frame_build; returns its length. */
static size_t frame_put(struct seed *s, const struct xm_frame *f, const void *payload)
{
	static uint8_t buf[XM_MAX_FRAME];
	int len = xm_frame_build(buf, sizeof(buf), mac_dst, mac_src, XM_ETH_P_MIRROR, f, payload);

	if (len < 0) {
		fprintf(stderr, "gen_corpus: xm_frame_build: %s\n", strerror(-len));
		exit(1);
	}
	put(s, buf, (size_t)len);
	return (size_t)len;
}

/* Revision 4 (docs/protocol.md §14): HELLOs with their auth part, with and without a key, and
 * tagged frames (XM_F_AUTH, crc 0) whose trailer is a counter and a made-up tag. */
static void auth_seeds(const uint8_t *payload)
{
	static struct seed s;
	struct xm_hello4 h;
	struct xm_frame f;
	uint8_t body[sizeof(h) + sizeof(struct xm_auth_trailer)];
	unsigned int i, alg;

	for (alg = 0; alg < 3; alg++) {
		memset(&h, 0, sizeof(h));
		h.h2.h.proto_min = htobe16(XM_PROTO_MIN);
		h.h2.h.proto_max = htobe16(XM_PROTO_MAX);
		h.h2.h.role = XM_ROLE_PRIMARY;
		h.auth.alg = (uint8_t)alg;
		for (i = 0; i < XM_AUTH_NONCE_LEN; i++)
			h.auth.nonce[i] = (uint8_t)(i * 17 + alg);
		memset(&f, 0, sizeof(f));
		f.type = XM_T_HELLO;
		f.seq = 1;
		f.arg0 = 0x1234 + alg;
		f.payload_len = sizeof(h);
		frame_prefix(&s, 1, NULL, 0, 0, 0);
		frame_put(&s, &f, &h);
		write_seed("fuzz_frame",
			   alg == 0   ? "hello4-no-key"
			   : alg == 1 ? "hello4-gmac"
				      : "hello4-bad-alg",
			   &s);
	}
	/* The same HELLO tagged: its trailer after the payload. */
	memcpy(body, &h, sizeof(h));
	h.auth.alg = XM_AUTH_AES256_GMAC;
	memcpy(body, &h, sizeof(h));
	for (i = 0; i < sizeof(struct xm_auth_trailer); i++)
		body[sizeof(h) + i] = (uint8_t)(i * 29 + 3);
	f.flags = XM_F_AUTH;
	f.arg0 = 0x1234;
	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, body);
	/* frame_put wrote payload_len bytes; the trailer follows. */
	put(&s, body + sizeof(h), sizeof(struct xm_auth_trailer));
	write_seed("fuzz_frame", "hello4-tagged", &s);
	/* A tagged DATA of session 0x1234 and a tagged CHALLENGE. */
	memset(&f, 0, sizeof(f));
	f.type = XM_T_DATA;
	f.flags = XM_F_AUTH;
	f.session = 0x1234;
	f.seq = 1;
	f.payload_len = 512;
	frame_prefix(&s, 2, (const uint16_t[3]){300, 0, 0}, 0, 0, 0);
	frame_put(&s, &f, payload);
	put(&s, body + sizeof(h), sizeof(struct xm_auth_trailer));
	write_seed("fuzz_frame", "data-tagged", &s);
	memset(&f, 0, sizeof(f));
	f.type = XM_T_CHALLENGE;
	f.flags = XM_F_AUTH;
	f.session = 0x1234;
	f.payload_len = sizeof(struct xm_challenge);
	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	put(&s, body + sizeof(h), sizeof(struct xm_auth_trailer));
	write_seed("fuzz_frame", "challenge-tagged", &s);
}

static void frame_seeds(void)
{
	static uint8_t payload[8192];
	static struct seed s;
	const size_t hdr = XM_ETH_HLEN + sizeof(struct xm_hdr);
	struct xm_frame f;
	char name[64];
	uint8_t type;
	size_t i;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);

	/* One of each type, in one span, with a payload where the type has one. */
	for (type = 1; type < XM_T_MAX; type++) {
		memset(&f, 0, sizeof(f));
		f.type = type;
		f.session = 0x1234;
		f.seq = 42;
		f.arg0 = 4096;
		f.arg1 = 7;
		f.credit = 256;
		switch (type) {
		case XM_T_HELLO:
		case XM_T_HELLO_ACK:
			f.payload_len = sizeof(struct xm_hello2);
			break;
		case XM_T_DATA:
			f.payload_len = 512;
			f.payload_off = 64 - XM_ETH_HLEN; /* aligned layout */
			f.flags = XM_F_FUA;
			break;
		case XM_T_ACK:
			f.flags = XM_F_RCVD;
			break;
		case XM_T_BITMAP:
			f.payload_len = 64;
			break;
		case XM_T_CSUM:
			f.payload_len = 16;
			break;
		default:
			break;
		}
		frame_prefix(&s, 1, NULL, (uint32_t)hdr, f.payload_len, XM_MAX_SPANS);
		frame_put(&s, &f, payload);
		snprintf(name, sizeof(name), "type-%s", xm_frame_type_name(type));
		write_seed("fuzz_frame", name, &s);
	}

	/* A jumbo DATA in three spans, the payload across the second and the third; the range
	 * crosses both cuts. */
	memset(&f, 0, sizeof(f));
	f.type = XM_T_DATA;
	f.flags = XM_F_RESYNC;
	f.payload_off = 512 - XM_ETH_HLEN;
	f.payload_len = 8192;
	f.session = 9;
	f.seq = 1u << 20;
	{
		const uint16_t lens[3] = {512, 4096, 0};

		frame_prefix(&s, 3, lens, 500, 4200, 3);
	}
	frame_put(&s, &f, payload);
	write_seed("fuzz_frame", "data-jumbo-3-spans", &s);

	/* Four spans, one of them empty. */
	memset(&f, 0, sizeof(f));
	f.type = XM_T_DATA;
	f.payload_len = 1024;
	f.session = 9;
	{
		const uint16_t lens[3] = {100, 0, 700};

		frame_prefix(&s, 4, lens, 90, 800, 2);
	}
	frame_put(&s, &f, payload);
	write_seed("fuzz_frame", "data-4-spans", &s);

	/* The header cut by the first span. */
	{
		const uint16_t lens[3] = {40, 0, 0};

		frame_prefix(&s, 2, lens, 0, 80, 1);
	}
	frame_put(&s, &f, payload);
	write_seed("fuzz_frame", "header-split", &s);

	/* An 802.1Q tag before the EtherType. */
	memset(&f, 0, sizeof(f));
	f.type = XM_T_PING;
	f.arg0 = 123456789;
	f.session = 5;
	frame_prefix(&s, 1, NULL, 0, 18, 1);
	{
		static uint8_t buf[XM_MAX_FRAME];
		int len = xm_frame_build(buf, sizeof(buf), mac_dst, mac_src, XM_ETH_P_MIRROR, &f,
					 NULL);
		const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x05};

		put(&s, buf, 12);
		put(&s, tag, 4);
		put(&s, buf + 12, (size_t)len - 12);
	}
	write_seed("fuzz_frame", "vlan-ping", &s);

	/* Broken: CRC, EtherType, payload_off inside the header, payload past the end, a
	 * truncated header, a flag nobody defined. */
	memset(&f, 0, sizeof(f));
	f.type = XM_T_DATA;
	f.payload_len = 64;
	f.session = 3;
	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	s.b[s.n - 1] ^= 1;
	write_seed("fuzz_frame", "bad-crc", &s);

	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	s.b[16 + 12] = 0x08; /* IPv4 */
	s.b[16 + 13] = 0x00;
	write_seed("fuzz_frame", "not-mirror", &s);

	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	s.b[16 + XM_ETH_HLEN + 6] = 0; /* payload_off 0x0000 + low byte */
	s.b[16 + XM_ETH_HLEN + 7] = 40;
	write_seed("fuzz_frame", "payload-off-in-header", &s);

	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	s.n -= 10;
	write_seed("fuzz_frame", "payload-truncated", &s);

	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	s.n = 16 + XM_ETH_HLEN + 30;
	write_seed("fuzz_frame", "header-truncated", &s);

	f.flags = 0x8000;
	frame_prefix(&s, 1, NULL, 0, 0, 0);
	frame_put(&s, &f, payload);
	write_seed("fuzz_frame", "unknown-flag", &s);

	auth_seeds(payload);
}

/* ---- fuzz_hello: the peer's struct xm_hello2, then this box's parameters ---- */

struct hello_seed {
	uint16_t proto_min, proto_max;
	uint32_t block, max_payload;
	uint64_t disk_size;
	char protocol;
	uint8_t role;
	uint64_t peer_gen[4], peer_dirty; /* current, bitmap, history[0], history[1] */
	uint64_t own_gen[4], own_dirty;
	uint8_t own_block_shift, discard;
	uint32_t own_max_payload, own_mtu_payload;
	uint64_t own_disk;
};

static void hello_seed(const char *name, const struct hello_seed *h)
{
	static struct seed s;
	unsigned int i;

	s.n = 0;
	/* struct xm_hello */
	for (i = 0; i < 16; i++)
		put8(&s, (uint8_t)(0xa0 + i));
	put64(&s, h->disk_size);
	put32(&s, h->block);
	put32(&s, h->max_payload);
	put32(&s, 128);
	put16(&s, 64);
	put16(&s, h->proto_min);
	put16(&s, h->proto_max);
	put8(&s, h->role);
	put8(&s, (uint8_t)h->protocol);
	put32(&s, 0);
	/* struct xm_hello_gen */
	for (i = 0; i < 4; i++)
		put64(&s, h->peer_gen[i]);
	put64(&s, h->peer_dirty);
	put32(&s, 65536);
	put8(&s, XM_DISK_UPTODATE);
	put8(&s, 0);
	put8(&s, 0);
	put8(&s, 0);
	/* struct own_params in fuzz_hello.c, little-endian */
	put8(&s, h->own_block_shift);
	put8(&s, 2); /* 'C' */
	put8(&s, h->discard);
	put8(&s, XM_DISK_UPTODATE);
	put_le32(&s, h->own_max_payload);
	put_le32(&s, h->own_mtu_payload);
	put_le32(&s, 256);
	for (i = 0; i < 2; i++)
		put_le32(&s, (uint32_t)(h->own_disk >> (32 * i)));
	for (i = 0; i < 4; i++) {
		put_le32(&s, (uint32_t)h->own_gen[i]);
		put_le32(&s, (uint32_t)(h->own_gen[i] >> 32));
	}
	put_le32(&s, (uint32_t)h->own_dirty);
	put_le32(&s, (uint32_t)(h->own_dirty >> 32));
	put_le32(&s, 65536);
	put_le16(&s, 512);
	put8(&s, 0);
	put8(&s, 0);
	write_seed("fuzz_hello", name, &s);
}

static void hello_seeds(void)
{
	const struct hello_seed base = {
		.proto_min = XM_PROTO_MIN,
		.proto_max = XM_PROTO_MAX,
		.block = 512,
		.max_payload = 8192,
		.disk_size = 1ull << 30,
		.protocol = 'C',
		.role = XM_ROLE_PRIMARY,
		.peer_gen = {0x1111, 0, 0x0aaa, 0},
		.own_gen = {0x1111, 0, 0x0aaa, 0},
		.own_block_shift = 0,
		.own_max_payload = 8192,
		.own_mtu_payload = 8936,
		.own_disk = 1ull << 30,
	};
	struct hello_seed h;

	h = base;
	hello_seed("in-sync", &h);

	h = base;
	h.peer_dirty = 12;
	h.proto_min = 1;
	h.proto_max = 0xffff; /* any revision: passes whatever this code speaks */
	hello_seed("bitmap-any-revision", &h);

	h = base;
	h.peer_gen[0] = 0x2222;
	h.peer_gen[1] = 0x1111;
	h.block = 4096;
	h.own_block_shift = 3;
	h.protocol = 'A';
	hello_seed("bitmap-4k", &h);

	h = base;
	h.own_gen[0] = 0;
	h.protocol = 'B';
	hello_seed("full-new-secondary", &h);

	h = base;
	h.peer_gen[0] = 0x3333;
	h.peer_gen[1] = 0x5555;
	h.own_gen[0] = 0x4444;
	h.own_gen[1] = 0x5555;
	hello_seed("split-brain", &h);

	h = base;
	h.own_gen[0] = 0x4444;
	h.own_gen[1] = 0x1111;
	hello_seed("peer-newer", &h);

	h = base;
	h.own_gen[0] = 0x4444;
	h.discard = 1;
	hello_seed("unrelated-discard", &h);

	h = base;
	h.peer_gen[0] = 0x9999;
	h.peer_gen[2] = 0x1111;
	hello_seed("full-from-history", &h);

	h = base;
	h.proto_min = XM_PROTO_MAX + 1;
	h.proto_max = XM_PROTO_MAX + 5;
	hello_seed("refused-version", &h);

	h = base;
	h.block = 768;
	hello_seed("refused-block", &h);

	h = base;
	h.protocol = 'D';
	hello_seed("refused-protocol", &h);

	h = base;
	h.block = 65536;
	h.max_payload = 9000;
	hello_seed("refused-block-over-payload", &h);

	h = base;
	h.block = 0;
	h.max_payload = 0xffffffff;
	h.disk_size = UINT64_MAX;
	h.own_max_payload = 0xffffffff;
	h.own_disk = UINT64_MAX;
	hello_seed("extremes", &h);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
		return 2;
	}
	corpus_dir = argv[1];
	if (mkdir(corpus_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "gen_corpus: mkdir '%s': %s\n", corpus_dir, strerror(errno));
		return 1;
	}
	nbd_seeds();
	frame_seeds();
	hello_seeds();
	printf("gen_corpus: %d seeds in %s\n", nwritten, corpus_dir);
	return 0;
}
