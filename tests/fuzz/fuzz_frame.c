// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the mirror frame parser (user/link/frame.c) on arbitrary bytes received in 1 to 4
 * buffers, as multi-buffer AF_XDP hands them over, and the payload helpers xm_spans_slice and
 * xm_spans_copy on arbitrary ranges.  Each span is a heap block of its own, so a read past a span
 * is caught even where the next span's bytes follow in the input.
 *
 * Input: a 16-byte prefix, then the frame.
 *   [0]       bits 0-1: the frame comes in 1 + this many spans
 *   [1..6]    the lengths of the first three spans (16-bit little-endian, cut to what is left);
 *             the last span takes the rest
 *   [7..10]   off, [11..14] len: a range of the frame for xm_spans_slice and xm_spans_copy
 *             (32-bit little-endian)
 *   [15]      max_out for xm_spans_slice, modulo XM_MAX_SPANS + 1
 *
 * Besides the sanitizers, it fails (aborts) when parsing the spans and parsing the same bytes in
 * one piece disagree, when a parsed header does not encode back to the bytes it came from, when
 * the payload found is not where the header says, or when a slice or copy is not exactly the
 * requested range of the frame.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/frame.h"
#include "link/gate.h"

#define PREFIX	  16
#define MAX_SPANS 4

struct frame_input {
	const __u8 *frame; /* the whole frame in one piece */
	size_t len;
	struct xm_span spans[MAX_SPANS]; /* the same bytes, each span in its own heap block */
	__u32 n;
};

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_frame: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static __u32 le32(const __u8 *p)
{
	return (__u32)p[0] | (__u32)p[1] << 8 | (__u32)p[2] << 16 | (__u32)p[3] << 24;
}

static void split(struct frame_input *in, const __u8 *prefix)
{
	size_t pos = 0;
	__u32 i;

	in->n = (prefix[0] & 3) + 1;
	for (i = 0; i < in->n; i++) {
		size_t want = (size_t)prefix[1 + 2 * i] | (size_t)prefix[2 + 2 * i] << 8;
		size_t len = i == in->n - 1 || want > in->len - pos ? in->len - pos : want;
		__u8 *copy = malloc(len ? len : 1);

		if (!copy)
			abort();
		memcpy(copy, in->frame + pos, len);
		in->spans[i].data = copy;
		in->spans[i].len = (__u32)len;
		pos += len;
	}
}

/* Where the mirror header ends when the frame has one: after Ethernet, an 802.1Q tag if any. */
static size_t header_end(const struct frame_input *in, __u32 *hdr_off)
{
	*hdr_off = XM_ETH_HLEN;
	if (in->len >= XM_ETH_HLEN && (in->frame[12] << 8 | in->frame[13]) == XM_ETH_P_8021Q)
		*hdr_off += XM_VLAN_HLEN;
	return *hdr_off + sizeof(struct xm_hdr);
}

/* The spans must parse as the same bytes in one piece do, as long as the first span holds the
 * header (docs/protocol.md §2.1); when it does not, the frame is refused. */
static void check_against_contiguous(const struct frame_input *in, enum xm_parse_error err,
				     const struct xm_frame *f, __u32 hdr_off, const __u8 *src)
{
	struct xm_frame cf;
	const void *payload = NULL;
	__u8 csrc[XM_ETH_ALEN];
	enum xm_parse_error cerr;
	__u32 want_off;

	memset(&cf, 0, sizeof(cf));
	cerr = xm_frame_parse(in->frame, in->len, XM_ETH_P_MIRROR, &cf, &payload, csrc);
	if (in->spans[0].len < header_end(in, &want_off)) {
		if (err != XM_PARSE_NOT_MIRROR && err != XM_PARSE_TRUNCATED)
			fuzz_fail("a first span of %u bytes without the whole header parses as %d",
				  in->spans[0].len, err);
		return;
	}
	if (err != cerr)
		fuzz_fail("%u spans parse as %d, the same bytes in one piece as %d", in->n, err,
			  cerr);
	if (err != XM_PARSE_OK)
		return;
	if (f->type != cf.type || f->flags != cf.flags || f->payload_off != cf.payload_off ||
	    f->payload_len != cf.payload_len || f->session != cf.session || f->seq != cf.seq ||
	    f->arg0 != cf.arg0 || f->arg1 != cf.arg1 || f->credit != cf.credit || f->crc != cf.crc)
		fuzz_fail("spans and one piece parse to different headers");
	if (hdr_off != want_off)
		fuzz_fail("header at offset %u, not %u", hdr_off, want_off);
	if (memcmp(src, in->frame + XM_ETH_ALEN, XM_ETH_ALEN) ||
	    memcmp(csrc, in->frame + XM_ETH_ALEN, XM_ETH_ALEN))
		fuzz_fail("the source MAC is not the frame's");
	if (cf.payload_len ? payload != in->frame + hdr_off + cf.payload_off : payload != NULL)
		fuzz_fail("xm_frame_parse's payload pointer is not at payload_off");
}

/* What every later stage may rely on in a frame that parsed. */
static void check_parsed(const struct frame_input *in, const struct xm_frame *f, __u32 hdr_off)
{
	__u8 *payload = malloc(f->payload_len ? f->payload_len : 1);
	const char *name = xm_frame_type_name(f->type);
	struct xm_hdr h;

	if (!payload)
		abort();
	if (f->payload_off < sizeof(struct xm_hdr))
		fuzz_fail("payload_off %u inside the header", f->payload_off);
	if ((__u64)hdr_off + f->payload_off + f->payload_len > in->len)
		fuzz_fail("payload [%u, +%u) past the frame's %zu bytes", f->payload_off,
			  f->payload_len, in->len);
	if (xm_spans_copy(in->spans, in->n, hdr_off + f->payload_off, f->payload_len, payload) !=
		    f->payload_len ||
	    memcmp(payload, in->frame + hdr_off + f->payload_off, f->payload_len))
		fuzz_fail("the payload copied from the spans is not the frame's");
	/* Every field was read, and nothing else is in the header: it encodes back bit for bit,
	 * CRC included. */
	xm_hdr_encode(&h, f, f->payload_len ? payload : NULL);
	if (memcmp(&h, in->frame + hdr_off, sizeof(h)))
		fuzz_fail("a parsed header of type %u does not encode back to its bytes", f->type);
	if (!name || !strcmp(name, "invalid"))
		fuzz_fail("a parsed frame of type %u has no name", f->type);
	free(payload);
}

/* xm_spans_slice and xm_spans_copy must return exactly [off, off + len) of the frame, or nothing
 * when the range is not inside (or, for a slice, needs more than max_out spans). */
static void check_ranges(const struct frame_input *in, __u64 off, __u64 len, __u32 max_out)
{
	bool inside = off <= in->len && len <= in->len - off;
	struct xm_span *out = malloc((max_out ? max_out : 1) * sizeof(*out));
	__u8 *dst = malloc(inside && len ? len : 1);
	__u32 i, j, got, need = 0;
	__u64 start = 0, pos = off;

	if (!out || !dst)
		abort();
	for (i = 0; inside && len && i < in->n; start += in->spans[i].len, i++)
		if (in->spans[i].len && start < off + len && start + in->spans[i].len > off)
			need++;
	got = xm_spans_slice(in->spans, in->n, off, len, out, max_out);
	if (got != (need <= max_out ? need : 0))
		fuzz_fail("slice [%llu, +%llu) of %zu bytes in %u spans: %u pieces, want %u",
			  (unsigned long long)off, (unsigned long long)len, in->len, in->n, got,
			  need <= max_out ? need : 0);
	for (j = 0; j < got; pos += out[j].len, j++) {
		uintptr_t a = (uintptr_t)out[j].data;

		for (i = 0; i < in->n; i++) {
			uintptr_t s = (uintptr_t)in->spans[i].data;

			if (a >= s && a + out[j].len <= s + in->spans[i].len)
				break;
		}
		if (!out[j].len || i == in->n || memcmp(out[j].data, in->frame + pos, out[j].len))
			fuzz_fail("slice piece %u is empty, outside the spans or the wrong bytes",
				  j);
	}
	if (got && pos != off + len)
		fuzz_fail("slice pieces cover %llu bytes, not %llu",
			  (unsigned long long)(pos - off), (unsigned long long)len);
	got = xm_spans_copy(in->spans, in->n, off, len, dst);
	if (got != (inside ? len : 0) || (got && memcmp(dst, in->frame + off, got)))
		fuzz_fail("copy [%llu, +%llu) of %zu bytes: %u bytes or the wrong ones",
			  (unsigned long long)off, (unsigned long long)len, in->len, got);
	free(dst);
	free(out);
}

/*
 * The gate (link/gate.c) after the parse, as the daemon runs them: g_key is a secondary with a key
 * and a live session, set up once by a real handshake with g_peer; g_open runs --no-auth.  No input
 * can know the session's keys (the nonces are fresh per process), so nothing tagged may pass, and
 * untagged only what §14.5 lets through.
 */
static struct xm_gate g_key, g_peer, g_open;
static struct xm_counters c_key, c_peer, c_open;
static __u8 sent[2][XM_MAX_FRAME + 64];
static __u32 sent_len[2];

static int gate_out(void *ctx, const struct xm_span *spans, __u32 n, __u32 len)
{
	int who = ctx == &g_key ? 0 : 1;
	__u32 i, off = 0;

	for (i = 0; i < n && off + spans[i].len <= sizeof(sent[who]); i++) {
		memcpy(sent[who] + off, spans[i].data, spans[i].len);
		off += spans[i].len;
	}
	sent_len[who] = off;
	return 0;
}

static void gate_init(struct xm_gate *g, struct xm_counters *c, const __u8 *key, const __u8 *local,
		      const __u8 *peer)
{
	struct xm_gate_cfg cfg = {.key = key,
				  .local_mac = local,
				  .peer_mac = peer,
				  .ethertype = XM_ETH_P_MIRROR,
				  .ctr = c,
				  .out = gate_out,
				  .ctx = g};

	if (xm_gate_init(g, &cfg))
		abort();
}

/* Hands what `from` built or sent to `to`; returns the verdict. */
static enum xm_gate_verdict hand_over(const __u8 *frame, __u32 len, struct xm_gate *to)
{
	struct xm_span span = {.data = frame, .len = len};
	struct xm_frame f;
	__u32 off;

	if (xm_frame_parse_spans(&span, 1, XM_ETH_P_MIRROR, &f, &off, NULL) != XM_PARSE_OK)
		fuzz_fail("a frame the gate built does not parse");
	return xm_gate_rx(to, &f, &span, 1, off, 1);
}

static void peer_hello(__u32 id, __u8 *buf, __u32 *len)
{
	struct xm_frame f = {.type = XM_T_HELLO, .arg0 = id, .seq = 1};
	struct xm_hello2 h = {0};
	struct xm_span span = {.data = (const __u8 *)&h, .len = sizeof(h)};
	struct xm_gate_frame out;
	__u32 i;

	h.h.proto_min = htobe16(XM_PROTO_MIN);
	h.h.proto_max = htobe16(XM_PROTO_MAX);
	f.payload_len = sizeof(h);
	if (xm_gate_build(&g_peer, &f, &span, 1, &out))
		abort();
	for (*len = 0, i = 0; i < out.n; i++) {
		memcpy(buf + *len, out.spans[i].data, out.spans[i].len);
		*len += out.spans[i].len;
	}
}

static void gates_setup(void)
{
	static const __u8 mac_a[XM_ETH_ALEN] = {2, 0x58, 0x4d, 0, 0, 1};
	static const __u8 mac_b[XM_ETH_ALEN] = {2, 0x58, 0x4d, 0, 0, 2};
	static __u8 buf[XM_MAX_FRAME + 64];
	__u8 key[XM_AUTH_KEY_LEN];
	__u32 len;

	memset(key, 0x5c, sizeof(key));
	gate_init(&g_key, &c_key, key, mac_b, mac_a);
	gate_init(&g_peer, &c_peer, key, mac_a, mac_b);
	gate_init(&g_open, &c_open, NULL, mac_b, mac_a);
	peer_hello(0x1234, buf, &len);
	if (hand_over(buf, len, &g_key) != XM_GATE_DROP || !sent_len[0] ||
	    hand_over(sent[0], sent_len[0], &g_peer) != XM_GATE_DROP || !xm_gate_live(&g_peer))
		fuzz_fail("the setup's CHALLENGE did not verify");
	peer_hello(0x1234, buf, &len);
	if (hand_over(buf, len, &g_key) != XM_GATE_PASS || !xm_gate_live(&g_key))
		fuzz_fail("the setup's tagged HELLO did not pass");
}

static void check_gates(const struct frame_input *in, const struct xm_frame *f, __u32 hdr_off)
{
	static bool ready;

	if (!ready) {
		gates_setup();
		ready = true;
	}
	if (xm_gate_rx(&g_key, f, in->spans, in->n, hdr_off, 2) == XM_GATE_PASS &&
	    ((f->flags & XM_F_AUTH) ||
	     !(f->type == XM_T_HELLO_ACK && f->arg1 == XM_REFUSE_VERSION)))
		fuzz_fail("a made-up frame of type %u (flags 0x%x) passed the keyed gate", f->type,
			  f->flags);
	if (xm_gate_rx(&g_open, f, in->spans, in->n, hdr_off, 2) == XM_GATE_PASS &&
	    ((f->flags & XM_F_AUTH) || f->type == XM_T_CHALLENGE))
		fuzz_fail("a tagged frame or a CHALLENGE passed the gate without a key");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_input in = {.frame = data + PREFIX};
	__u8 src[XM_ETH_ALEN] = {0};
	enum xm_parse_error err;
	struct xm_frame f;
	__u32 hdr_off = 0, i;

	if (size < PREFIX || size - PREFIX > UINT32_MAX)
		return 0;
	in.len = size - PREFIX;
	split(&in, data);
	memset(&f, 0, sizeof(f));

	err = xm_frame_parse_spans(in.spans, in.n, XM_ETH_P_MIRROR, &f, &hdr_off, src);
	check_against_contiguous(&in, err, &f, hdr_off, src);
	if (err == XM_PARSE_OK) {
		check_parsed(&in, &f, hdr_off);
		/* Then the gate, as in the daemon (daemon.c on_packet). */
		check_gates(&in, &f, hdr_off);
	}

	check_ranges(&in, le32(data + 7), le32(data + 11), data[15] % (XM_MAX_SPANS + 1));
	for (i = 0; i < in.n; i++)
		free((void *)in.spans[i].data);
	return 0;
}
