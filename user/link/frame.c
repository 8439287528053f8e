// SPDX-License-Identifier: GPL-2.0
/* Building and parsing mirror frames (include/xdpmirror.h), with their CRC32C.  Pure functions. */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "link/frame.h"

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

static __u32 crc_table[256];

static void crc_table_init(void)
{
	__u32 i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (c & 1 ? CRC32C_POLY : 0);
		crc_table[i] = c;
	}
}

static __u32 crc_sw(__u32 c, const __u8 *p, size_t len)
{
	if (!crc_table[1])
		crc_table_init();
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * The crc32 instruction takes 3 cycles but a core starts one every cycle, so a single dependent
 * chain runs at a third of the possible speed.  crc_hw therefore splits a buffer into three equal
 * blocks A, B, C of n bytes, runs one chain over each (B's and C's starting from 0) and merges the
 * three CRC registers ca, cb, cc.  Appending n zero bytes to a message multiplies its CRC register
 * by x^(8n) mod P, and the register is linear in the data, so the register after A B C is
 *
 *	ca * x^(16n) + cb * x^(8n) + cc   (mod P)
 *
 * Each product is one carry-less multiply (pclmulqdq) by a constant from crc_xpow[], and one crc32
 * instruction reduces their sum mod P: ~15 cycles, paid back from 3-word blocks on (measured; a
 * 48-byte header, 2-word blocks, is faster on one chain).  Blocks are whole 8-byte words, at most
 * CRC_MAX_WORDS: longer buffers take several rounds.
 */
#define CRC_MIN_WORDS 3
#define CRC_MAX_WORDS 512

/*
 * crc_xpow[w] = x^(64w - 33) mod P, bit-reflected like the CRC.  A reflected carry-less product
 * comes out multiplied by x, and crc32 of a 64-bit word from 0 multiplies it by x^32: with both,
 * crc32(0, clmul(r, crc_xpow[w])) = r * x^(64w) mod P, r shifted forward by w zero words.
 */
static __u32 crc_xpow[2 * CRC_MAX_WORDS + 1];
static int have_sse42 = -1, have_pclmul;

/* Filled once, when the CPU is probed; idempotent. */
static void crc_xpow_init(void)
{
	__u32 v = 1; /* reflected: bit 0 is x^31 */
	int w, i;

	for (w = 1; w <= 2 * CRC_MAX_WORDS; w++) {
		crc_xpow[w] = v;
		for (i = 0; i < 64; i++) /* v *= x, mod P */
			v = (v >> 1) ^ (v & 1 ? CRC32C_POLY : 0);
	}
}

static inline __u64 load64(const __u8 *p)
{
	__u64 v;

	memcpy(&v, p, 8);
	return v;
}

__attribute__((target("pclmul"))) static inline __u64 clmul32(__u32 a, __u32 b)
{
	__m128i prod =
		_mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a), _mm_cvtsi32_si128((int)b), 0);

	return (__u64)_mm_cvtsi128_si64(prod);
}

/* SSE4.2 crc32 instruction, one chain: ~10 GB/s here against ~0.5 GB/s for the table. */
__attribute__((target("sse4.2"))) static __u32 crc_hw1(__u32 c, const __u8 *p, size_t len)
{
	__u64 c64 = c;

	while (len >= 8) {
		c64 = __builtin_ia32_crc32di(c64, load64(p));
		p += 8;
		len -= 8;
	}
	c = (__u32)c64;
	while (len--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}

/* Three chains (2.6x crc_hw1 at 1 KiB, 2.9x at 8 KiB), then one for the rest (< 72 bytes). */
__attribute__((target("sse4.2,pclmul"))) static __u32 crc_hw(__u32 c, const __u8 *p, size_t len)
{
	while (have_pclmul && len >= 3 * 8 * CRC_MIN_WORDS) {
		size_t i, w = len / 24 < CRC_MAX_WORDS ? len / 24 : CRC_MAX_WORDS, n = 8 * w;
		__u64 ca = c, cb = 0, cc = 0, prod;

		for (i = 0; i < n; i += 8) {
			ca = __builtin_ia32_crc32di(ca, load64(p + i));
			cb = __builtin_ia32_crc32di(cb, load64(p + n + i));
			cc = __builtin_ia32_crc32di(cc, load64(p + 2 * n + i));
		}
		/* ca * x^(16n) + cb * x^(8n), reduced mod P by crc32, + cc */
		prod = clmul32((__u32)ca, crc_xpow[2 * w]) ^ clmul32((__u32)cb, crc_xpow[w]);
		c = (__u32)__builtin_ia32_crc32di(0, prod) ^ (__u32)cc;
		p += 3 * n;
		len -= 3 * n;
	}
	return crc_hw1(c, p, len);
}

static bool have_hw_crc(void)
{
	if (have_sse42 < 0) {
		have_sse42 = __builtin_cpu_supports("sse4.2");
		have_pclmul = have_sse42 && __builtin_cpu_supports("pclmul");
		if (have_pclmul)
			crc_xpow_init();
	}
	return have_sse42;
}
#else
static __u32 crc_hw(__u32 c, const __u8 *p, size_t len)
{
	return crc_sw(c, p, len);
}

static bool have_hw_crc(void)
{
	return false;
}
#endif

__u32 xm_crc32c(__u32 crc, const void *buf, size_t len)
{
	__u32 c = ~crc;

	c = have_hw_crc() ? crc_hw(c, buf, len) : crc_sw(c, buf, len);
	return ~c;
}

/* CRC-32C is affine over messages of one length: crc(m ^ d) = crc(m) ^ crc(d) ^ crc(0).  A PROBE
 * and its PROBE_ACK differ in the type byte only, so the answer's CRC is the probe's XOR this. */
__u32 xm_probe_crc_delta(void)
{
	struct xm_hdr d, zero;

	memset(&d, 0, sizeof(d));
	memset(&zero, 0, sizeof(zero));
	d.type = XM_T_PROBE ^ XM_T_PROBE_ACK;
	return xm_crc32c(0, &d, sizeof(d)) ^ xm_crc32c(0, &zero, sizeof(zero));
}

void xm_hdr_encode(struct xm_hdr *h, const struct xm_frame *f, const void *payload)
{
	__u32 crc;

	h->magic = htobe16(XM_MAGIC);
	h->version = XM_VERSION;
	h->type = f->type;
	h->flags = htobe16(f->flags);
	h->payload_off = htobe16(f->payload_off ? f->payload_off : sizeof(*h));
	h->payload_len = htobe32(f->payload_len);
	h->session = htobe32(f->session);
	h->seq = htobe64(f->seq);
	h->arg0 = htobe64(f->arg0);
	h->arg1 = htobe64(f->arg1);
	h->credit = htobe32(f->credit);
	h->crc = 0;
	if (f->flags & XM_F_AUTH)
		return; /* the tag covers it (docs/protocol.md §14.4) */
	crc = xm_crc32c(0, h, sizeof(*h));
	if (f->payload_len && payload)
		crc = xm_crc32c(crc, payload, f->payload_len);
	h->crc = htobe32(crc);
}

int xm_frame_head(void *out, size_t room, const __u8 dst[XM_ETH_ALEN], const __u8 src[XM_ETH_ALEN],
		  __u16 ethertype, const struct xm_frame *f, const struct xm_span *payload, __u32 n)
{
	size_t off = f->payload_off ? f->payload_off : sizeof(struct xm_hdr);
	size_t len = XM_ETH_HLEN + off;
	struct xm_hdr *h;
	__u8 *p = out;
	__u16 proto = htobe16(ethertype);
	__u32 crc, i;

	if (off < sizeof(struct xm_hdr))
		return -EINVAL;
	if (len > room)
		return -ENOSPC;
	memcpy(p, dst, XM_ETH_ALEN);
	memcpy(p + XM_ETH_ALEN, src, XM_ETH_ALEN);
	memcpy(p + 2 * XM_ETH_ALEN, &proto, 2);
	/* Alignment padding between header and payload is zeroed: no stale memory on the wire. */
	memset(p + XM_ETH_HLEN + sizeof(*h), 0, off - sizeof(*h));
	h = (struct xm_hdr *)(p + XM_ETH_HLEN);
	xm_hdr_encode(h, f, NULL);
	if (f->flags & XM_F_AUTH)
		return (int)len;
	/* xm_hdr_encode covered the header only; extend the CRC over the payload spans. */
	crc = be32toh(h->crc);
	for (i = 0; i < n; i++)
		crc = xm_crc32c(crc, payload[i].data, payload[i].len);
	h->crc = htobe32(crc);
	return (int)len;
}

int xm_frame_build(void *out, size_t room, const __u8 dst[XM_ETH_ALEN], const __u8 src[XM_ETH_ALEN],
		   __u16 ethertype, const struct xm_frame *f, const void *payload)
{
	size_t off = f->payload_off ? f->payload_off : sizeof(struct xm_hdr);
	struct xm_span span = {.data = payload, .len = f->payload_len};
	int head;

	if (off >= sizeof(struct xm_hdr) && XM_ETH_HLEN + off + f->payload_len > room)
		return -ENOSPC;
	head = xm_frame_head(out, room, dst, src, ethertype, f, &span, f->payload_len ? 1 : 0);
	if (head < 0)
		return head;
	if (f->payload_len)
		memcpy((__u8 *)out + head, payload, f->payload_len);
	return head + (int)f->payload_len;
}

__u32 xm_spans_slice(const struct xm_span *in, __u32 n, __u64 off, __u64 len, struct xm_span *out,
		     __u32 max_out)
{
	__u32 i, nout = 0;

	for (i = 0; i < n && len; i++) {
		__u64 take;

		if (off >= in[i].len) {
			off -= in[i].len;
			continue;
		}
		if (nout == max_out)
			return 0;
		take = in[i].len - off < len ? in[i].len - off : len;
		out[nout].data = in[i].data + off;
		out[nout].len = (__u32)take;
		nout++;
		len -= take;
		off = 0;
	}
	return len ? 0 : nout;
}

__u32 xm_spans_copy(const struct xm_span *in, __u32 n, __u64 off, __u64 len, void *dst)
{
	struct xm_span pieces[XM_MAX_SPANS];
	__u32 i, np, copied = 0;

	np = xm_spans_slice(in, n, off, len, pieces, XM_MAX_SPANS);
	for (i = 0; i < np; i++) {
		memcpy((__u8 *)dst + copied, pieces[i].data, pieces[i].len);
		copied += pieces[i].len;
	}
	return copied;
}

enum xm_parse_error xm_frame_parse_spans(const struct xm_span *spans, __u32 n, __u16 ethertype,
					 struct xm_frame *f, __u32 *hdr_off, __u8 *src)
{
	struct xm_span payload[XM_MAX_SPANS];
	const __u8 *p = spans[0].data;
	size_t len = spans[0].len, total = 0;
	struct xm_hdr h;
	size_t off = XM_ETH_HLEN;
	__u32 i, np;
	__u16 proto;
	__u32 crc;

	for (i = 0; i < n; i++)
		total += spans[i].len;
	if (len < XM_ETH_HLEN)
		return XM_PARSE_NOT_MIRROR;
	memcpy(&proto, p + 2 * XM_ETH_ALEN, 2);
	if (be16toh(proto) == XM_ETH_P_8021Q) {
		if (len < XM_ETH_HLEN + XM_VLAN_HLEN)
			return XM_PARSE_NOT_MIRROR;
		memcpy(&proto, p + XM_ETH_HLEN + 2, 2);
		off += XM_VLAN_HLEN;
	}
	if (be16toh(proto) != ethertype)
		return XM_PARSE_NOT_MIRROR;
	/* The whole header is always in the first buffer (docs/protocol.md §2.1). */
	if (len < off + sizeof(h))
		return XM_PARSE_TRUNCATED;
	memcpy(&h, p + off, sizeof(h));
	if (be16toh(h.magic) != XM_MAGIC || h.version != XM_VERSION || h.type == 0 ||
	    h.type >= XM_T_MAX || (be16toh(h.flags) & ~XM_F_MASK))
		return XM_PARSE_BAD_HEADER;
	f->type = h.type;
	f->flags = be16toh(h.flags);
	f->payload_off = be16toh(h.payload_off);
	f->payload_len = be32toh(h.payload_len);
	f->session = be32toh(h.session);
	f->seq = be64toh(h.seq);
	f->arg0 = be64toh(h.arg0);
	f->arg1 = be64toh(h.arg1);
	f->credit = be32toh(h.credit);
	f->crc = be32toh(h.crc);
	if (f->payload_off < sizeof(h) || (__u64)f->payload_off + f->payload_len > total - off)
		return XM_PARSE_BAD_LENGTH;
	np = xm_spans_slice(spans, n, off + f->payload_off, f->payload_len, payload, XM_MAX_SPANS);
	if (f->payload_len && !np)
		return XM_PARSE_BAD_LENGTH;
	if (hdr_off)
		*hdr_off = (__u32)off;
	if (src)
		memcpy(src, p + XM_ETH_ALEN, XM_ETH_ALEN);
	/* A tagged frame carries no CRC; the caller checks its tag (link/gate.h). */
	if (f->flags & XM_F_AUTH)
		return f->crc ? XM_PARSE_BAD_CRC : XM_PARSE_OK;
	h.crc = 0;
	crc = xm_crc32c(0, &h, sizeof(h));
	for (i = 0; i < np; i++)
		crc = xm_crc32c(crc, payload[i].data, payload[i].len);
	if (crc != f->crc)
		return XM_PARSE_BAD_CRC;
	return XM_PARSE_OK;
}

enum xm_parse_error xm_frame_parse(const void *frame, size_t len, __u16 ethertype,
				   struct xm_frame *f, const void **payload, __u8 *src)
{
	struct xm_span span = {.data = frame, .len = (__u32)len};
	enum xm_parse_error err;
	__u32 off;

	if (len > UINT32_MAX)
		return XM_PARSE_BAD_LENGTH;
	err = xm_frame_parse_spans(&span, 1, ethertype, f, &off, src);
	if (err == XM_PARSE_OK && payload)
		*payload = f->payload_len ? (const __u8 *)frame + off + f->payload_off : NULL;
	return err;
}

const char *xm_frame_type_name(__u8 type)
{
	static const char *const names[XM_T_MAX] = {
		[XM_T_HELLO] = "hello",		[XM_T_HELLO_ACK] = "hello_ack",
		[XM_T_DATA] = "data",		[XM_T_ACK] = "ack",
		[XM_T_FLUSH] = "flush",		[XM_T_FLUSH_ACK] = "flush_ack",
		[XM_T_PING] = "ping",		[XM_T_PONG] = "pong",
		[XM_T_BMREQ] = "bmreq",		[XM_T_BITMAP] = "bitmap",
		[XM_T_CSUMREQ] = "csumreq",	[XM_T_CSUM] = "csum",
		[XM_T_SETGEN] = "setgen",	[XM_T_CLOSE] = "close",
		[XM_T_PROBE] = "probe",		[XM_T_PROBE_ACK] = "probe_ack",
		[XM_T_CHALLENGE] = "challenge", [XM_T_READ_REQ] = "read_req",
		[XM_T_READ_DATA] = "read_data",
	};

	return type < XM_T_MAX && names[type] ? names[type] : "invalid";
}
