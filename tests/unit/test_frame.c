// SPDX-License-Identifier: GPL-2.0
/* Description: mirror frames: CRC32C, build/parse round trips, wire layout, every parse error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "link/frame.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define HDR_LEN	   ((unsigned int)sizeof(struct xm_hdr)) /* 48 */
#define HDR_OFF	   XM_ETH_HLEN				 /* untagged: header at 14 */
#define MIN_FRAME  (XM_ETH_HLEN + HDR_LEN)		 /* untagged header-only frame: 62 */
#define BUF_SIZE   (XM_MAX_FRAME + 256)
#define OTHER_TYPE 0x88b6

/* The lowest flag bit the protocol does not define, and the highest. */
#define FIRST_UNDEFINED_FLAG ((__u16)(~XM_F_MASK & (XM_F_MASK + 1)))
#define LAST_UNDEFINED_FLAG  0x8000

static const __u8 dst_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x02};
static const __u8 src_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x01};

static const char *const parse_names[] = {
	[XM_PARSE_OK] = "OK",
	[XM_PARSE_NOT_MIRROR] = "NOT_MIRROR",
	[XM_PARSE_TRUNCATED] = "TRUNCATED",
	[XM_PARSE_BAD_HEADER] = "BAD_HEADER",
	[XM_PARSE_BAD_LENGTH] = "BAD_LENGTH",
	[XM_PARSE_BAD_CRC] = "BAD_CRC",
};

static const char *parse_name(enum xm_parse_error e)
{
	return (unsigned int)e < ARRAY_SIZE(parse_names) ? parse_names[e] : "?";
}

/* Bit-at-a-time CRC32C, independent of frame.c's table and SSE4.2 paths. */
static __u32 ref_crc32c(__u32 crc, const void *buf, size_t len)
{
	const __u8 *p = buf;
	int k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1));
	}
	return ~crc;
}

static __u16 get_be16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 get_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static void put_be(__u8 *p, unsigned int width, __u64 v)
{
	unsigned int i;

	for (i = 0; i < width; i++)
		p[i] = (__u8)(v >> (8 * (width - 1 - i)));
}

/*
 * Recomputes the CRC of the mirror header at hdr (and of its payload, where that lies inside the
 * len-byte frame), so that a hand-made change leaves exactly one defect: the one under test.
 */
static void reseal(__u8 *frame, size_t len, size_t hdr_off)
{
	__u8 *h = frame + hdr_off;
	size_t off = get_be16(h + offsetof(struct xm_hdr, payload_off));
	size_t plen = get_be32(h + offsetof(struct xm_hdr, payload_len));
	__u32 crc;

	memset(h + offsetof(struct xm_hdr, crc), 0, 4);
	crc = ref_crc32c(0, h, HDR_LEN);
	if (off >= HDR_LEN && hdr_off + off + plen <= len)
		crc = ref_crc32c(crc, h + off, plen);
	put_be(h + offsetof(struct xm_hdr, crc), 4, crc);
}

/* A frame with every field distinct and wide enough that a truncation or a swap shows. */
static struct xm_frame sample_frame(__u8 type, __u16 payload_off, __u32 payload_len)
{
	return (struct xm_frame){
		.type = type,
		.flags = type == XM_T_DATA ? XM_F_FUA : 0,
		.payload_off = payload_off,
		.payload_len = payload_len,
		.session = 0x8badf00d,
		.seq = 0x8123456789abcdefull,
		.arg0 = 0xfedcba9876543210ull,
		.arg1 = 0x0102030405060708ull,
		.credit = 0xa0b0c0d0,
	};
}

static void fill_payload(__u8 *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (__u8)(i * 31 + seed * 7 + 1);
}

/* Builds into buf (room BUF_SIZE) and returns the frame length. */
static size_t build(__u8 *buf, const struct xm_frame *f, const void *payload)
{
	int n = xm_frame_build(buf, BUF_SIZE, dst_mac, src_mac, XM_ETH_P_MIRROR, f, payload);

	if (n < 0)
		print_message("xm_frame_build: %s\n", strerror(-n));
	assert_true(n > 0);
	return (size_t)n;
}

/* Turns the untagged frame of len bytes in buf into a tagged one (VID vid); returns len + 4. */
static size_t insert_vlan_tag(__u8 *buf, size_t len, __u16 vid)
{
	memmove(buf + 2 * XM_ETH_ALEN + XM_VLAN_HLEN, buf + 2 * XM_ETH_ALEN, len - 2 * XM_ETH_ALEN);
	put_be(buf + 2 * XM_ETH_ALEN, 2, XM_ETH_P_8021Q);
	put_be(buf + 2 * XM_ETH_ALEN + 2, 2, vid);
	return len + XM_VLAN_HLEN;
}

static void assert_frame_equal(const struct xm_frame *got, const struct xm_frame *want,
			       __u16 want_off)
{
	assert_int_equal(got->type, want->type);
	assert_int_equal(got->flags, want->flags);
	assert_int_equal(got->payload_off, want_off);
	assert_int_equal(got->payload_len, want->payload_len);
	assert_int_equal(got->session, want->session);
	assert_true(got->seq == want->seq);
	assert_true(got->arg0 == want->arg0);
	assert_true(got->arg1 == want->arg1);
	assert_int_equal(got->credit, want->credit);
}

static void test_crc32c_check_value(void **state)
{
	assert_int_equal(xm_crc32c(0, "123456789", 9), 0xE3069283);
	assert_int_equal(ref_crc32c(0, "123456789", 9), 0xE3069283);
}

/* RFC 3720 (iSCSI) B.4 test vectors. */
static void test_crc32c_iscsi_vectors(void **state)
{
	__u8 buf[32];
	size_t i;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(xm_crc32c(0, buf, sizeof(buf)), 0x8A9136AA);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(xm_crc32c(0, buf, sizeof(buf)), 0x62A8AB43);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (__u8)i;
	assert_int_equal(xm_crc32c(0, buf, sizeof(buf)), 0x46DD794E);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (__u8)(31 - i);
	assert_int_equal(xm_crc32c(0, buf, sizeof(buf)), 0x113FDB5C);
}

static void test_crc32c_of_nothing_is_identity(void **state)
{
	static const __u8 byte = 0x5a;

	assert_int_equal(xm_crc32c(0, &byte, 0), 0);
	assert_int_equal(xm_crc32c(0xE3069283, &byte, 0), 0xE3069283);
	assert_int_equal(xm_crc32c(0xffffffff, &byte, 0), 0xffffffff);
	/* One byte does change it. */
	assert_int_not_equal(xm_crc32c(0, &byte, 1), 0);
}

static void test_crc32c_extends_like_zlib(void **state)
{
	__u8 buf[300];
	__u32 whole;
	size_t a;

	fill_payload(buf, sizeof(buf), 3);
	whole = xm_crc32c(0, buf, sizeof(buf));
	for (a = 0; a <= sizeof(buf); a++) {
		__u32 split = xm_crc32c(xm_crc32c(0, buf, a), buf + a, sizeof(buf) - a);

		if (split != whole)
			print_message("split at %zu: %08x, whole %08x\n", a, split, whole);
		assert_int_equal(split, whole);
	}
}

/* Every length and alignment, so the 8-byte hardware loop and its byte tail are both covered. */
static void test_crc32c_matches_bitwise_reference(void **state)
{
	__u8 buf[256 + 8];
	size_t len, align;

	fill_payload(buf, sizeof(buf), 11);
	for (align = 0; align < 8; align++) {
		for (len = 0; len <= 256; len++) {
			__u32 got = xm_crc32c(0x12345678, buf + align, len);
			__u32 want = ref_crc32c(0x12345678, buf + align, len);

			if (got != want)
				print_message("align %zu len %zu: %08x, want %08x\n", align, len,
					      got, want);
			assert_int_equal(got, want);
		}
	}
}

/* Bytes without a period, so that swapped or misplaced blocks in crc_hw cannot cancel out. */
static void fill_random(__u8 *p, size_t len, __u32 seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1664525u + 1013904223u;
		p[i] = (__u8)(seed >> 24);
	}
}

/*
 * The three-chain path in frame.c: every length to 4200 (no split, then blocks of 3 to 175 words
 * with every tail) at every start offset mod 8, lengths that take several rounds, and CRCs
 * continued across a split, against the bit-by-bit reference.
 */
static void test_crc32c_three_chains_match_reference(void **state)
{
	static const size_t long_lens[] = {12287, 12288, 12311, 12312, 24576, 24600, 36869, 40000};
	static __u8 buf[40000 + 8];
	__u32 want, got;
	size_t len, off, i;

	fill_random(buf, sizeof(buf), 1);
	for (off = 0; off < 8; off++) {
		want = ref_crc32c(0x12345678, buf + off, 0);
		for (len = 0; len <= 4200; len++) {
			if (len)
				want = ref_crc32c(want, buf + off + len - 1, 1);
			got = xm_crc32c(0x12345678, buf + off, len);
			if (got != want)
				print_message("offset %zu len %zu: %08x, want %08x\n", off, len,
					      got, want);
			assert_int_equal(got, want);
		}
	}
	for (i = 0; i < ARRAY_SIZE(long_lens); i++) {
		got = xm_crc32c(0, buf + 3, long_lens[i]);
		want = ref_crc32c(0, buf + 3, long_lens[i]);
		if (got != want)
			print_message("len %zu: %08x, want %08x\n", long_lens[i], got, want);
		assert_int_equal(got, want);
	}
	/* A frame's CRC is continued span by span: any split must give the same CRC. */
	want = ref_crc32c(0, buf, 8240);
	for (off = 0; off <= 8240; off++) {
		got = xm_crc32c(xm_crc32c(0, buf, off), buf + off, 8240 - off);
		if (got != want)
			print_message("split at %zu: %08x, want %08x\n", off, got, want);
		assert_int_equal(got, want);
	}
	assert_int_equal(xm_crc32c(0, "123456789", 9), 0xE3069283);
}

static void test_round_trip_every_type(void **state)
{
	static const __u32 lens[] = {0, 1, 7, 8, 64, 1500, 9000 - HDR_LEN};
	static const __u16 offs[] = {0, 48, 49, 56, 64, 128};
	static __u8 buf[BUF_SIZE], payload[9000];
	__u8 type;
	size_t i, j;

	for (type = XM_T_HELLO; type < XM_T_MAX; type++) {
		for (i = 0; i < ARRAY_SIZE(lens); i++) {
			for (j = 0; j < ARRAY_SIZE(offs); j++) {
				struct xm_frame f = sample_frame(type, offs[j], lens[i]), got;
				__u16 want_off = offs[j] ? offs[j] : HDR_LEN;
				const void *p = (const void *)1;
				__u8 src[XM_ETH_ALEN] = {0};
				enum xm_parse_error e;
				size_t len;

				fill_payload(payload, lens[i], type);
				memset(buf, 0xee, sizeof(buf));
				len = build(buf, &f, payload);
				assert_int_equal(len, XM_ETH_HLEN + want_off + lens[i]);
				memset(&got, 0, sizeof(got));
				e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, &p, src);
				if (e != XM_PARSE_OK)
					print_message("%s, payload_off %u, payload_len %u: %s\n",
						      xm_frame_type_name(type), offs[j], lens[i],
						      parse_name(e));
				assert_int_equal(e, XM_PARSE_OK);
				assert_frame_equal(&got, &f, want_off);
				assert_int_equal(got.crc, get_be32(buf + HDR_OFF + 44));
				assert_memory_equal(src, src_mac, XM_ETH_ALEN);
				if (!lens[i]) {
					assert_null(p);
					continue;
				}
				assert_ptr_equal(p, buf + XM_ETH_HLEN + want_off);
				assert_memory_equal(p, payload, lens[i]);
			}
		}
	}
}

/* Frames sit at any offset in a UMEM chunk; nothing may assume an aligned start. */
static void test_round_trip_unaligned_buffer(void **state)
{
	static __u8 buf[BUF_SIZE + 8];
	__u8 payload[33];
	size_t shift;

	fill_payload(payload, sizeof(payload), 5);
	for (shift = 1; shift < 8; shift++) {
		struct xm_frame f = sample_frame(XM_T_DATA, 0, sizeof(payload)), got;
		const void *p = NULL;
		int n;

		n = xm_frame_build(buf + shift, BUF_SIZE, dst_mac, src_mac, XM_ETH_P_MIRROR, &f,
				   payload);
		assert_int_equal(n, MIN_FRAME + sizeof(payload));
		assert_int_equal(
			xm_frame_parse(buf + shift, (size_t)n, XM_ETH_P_MIRROR, &got, &p, NULL),
			XM_PARSE_OK);
		assert_frame_equal(&got, &f, HDR_LEN);
		assert_memory_equal(p, payload, sizeof(payload));
	}
}

static void test_parse_optional_outputs_may_be_null(void **state)
{
	static __u8 buf[BUF_SIZE];
	__u8 payload[16];
	struct xm_frame f = sample_frame(XM_T_DATA, 0, sizeof(payload)), got;
	size_t len;

	fill_payload(payload, sizeof(payload), 1);
	len = build(buf, &f, payload);
	assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL), XM_PARSE_OK);
	assert_frame_equal(&got, &f, HDR_LEN);
}

static void test_build_zeroes_alignment_padding(void **state)
{
	static __u8 buf[BUF_SIZE];
	__u8 payload[40];
	struct xm_frame f = sample_frame(XM_T_DATA, 128, sizeof(payload));
	size_t len, i;

	fill_payload(payload, sizeof(payload), 2);
	memset(buf, 0xaa, sizeof(buf));
	len = build(buf, &f, payload);
	assert_int_equal(len, XM_ETH_HLEN + 128 + sizeof(payload));
	for (i = HDR_OFF + HDR_LEN; i < HDR_OFF + 128; i++) {
		if (buf[i])
			print_message("padding byte at frame offset %zu is 0x%02x\n", i, buf[i]);
		assert_int_equal(buf[i], 0);
	}
	assert_memory_equal(buf + HDR_OFF + 128, payload, sizeof(payload));
	/* Nothing is written past the frame. */
	for (i = len; i < len + 64; i++)
		assert_int_equal(buf[i], 0xaa);
}

static void test_build_needs_exact_room(void **state)
{
	static __u8 buf[BUF_SIZE];
	static const __u16 offs[] = {0, 64};
	__u8 payload[100];
	size_t i;

	fill_payload(payload, sizeof(payload), 4);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		struct xm_frame f = sample_frame(XM_T_DATA, offs[i], sizeof(payload));
		size_t need = XM_ETH_HLEN + (offs[i] ? offs[i] : HDR_LEN) + sizeof(payload);

		assert_int_equal(
			xm_frame_build(buf, need, dst_mac, src_mac, XM_ETH_P_MIRROR, &f, payload),
			need);
		memset(buf, 0xaa, sizeof(buf));
		assert_int_equal(xm_frame_build(buf, need - 1, dst_mac, src_mac, XM_ETH_P_MIRROR,
						&f, payload),
				 -ENOSPC);
		assert_int_equal(
			xm_frame_build(buf, 0, dst_mac, src_mac, XM_ETH_P_MIRROR, &f, payload),
			-ENOSPC);
		/* A refused build writes nothing. */
		assert_int_equal(buf[0], 0xaa);
		assert_int_equal(buf[need - 2], 0xaa);
	}
	/* Header-only: 62 bytes. */
	{
		struct xm_frame f = sample_frame(XM_T_PING, 0, 0);

		assert_int_equal(
			xm_frame_build(buf, MIN_FRAME, dst_mac, src_mac, XM_ETH_P_MIRROR, &f, NULL),
			MIN_FRAME);
		assert_int_equal(xm_frame_build(buf, MIN_FRAME - 1, dst_mac, src_mac,
						XM_ETH_P_MIRROR, &f, NULL),
				 -ENOSPC);
	}
}

static void test_build_rejects_payload_off_inside_header(void **state)
{
	static const __u16 offs[] = {1, 14, 40, HDR_LEN - 1};
	static __u8 buf[BUF_SIZE];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		struct xm_frame f = sample_frame(XM_T_PING, offs[i], 0);
		int n = xm_frame_build(buf, BUF_SIZE, dst_mac, src_mac, XM_ETH_P_MIRROR, &f, NULL);

		if (n != -EINVAL)
			print_message("payload_off %u: %d, want -EINVAL\n", offs[i], n);
		assert_int_equal(n, -EINVAL);
	}
	{
		struct xm_frame f = sample_frame(XM_T_PING, HDR_LEN, 0);

		assert_int_equal(
			xm_frame_build(buf, BUF_SIZE, dst_mac, src_mac, XM_ETH_P_MIRROR, &f, NULL),
			MIN_FRAME);
	}
}

/* The offsets of include/xdpmirror.h's diagram and struct xm_hdr, counted from the frame start. */
struct wire_field {
	const char *name;
	size_t off;
	size_t len;
	const __u8 *want;
};

static void test_wire_layout_is_big_endian_as_specified(void **state)
{
	static const __u8 payload[] = {0xde, 0xad, 0xbe, 0xef};
	static const __u8 ethertype[] = {0x88, 0xb5}, magic[] = {0x58, 0x4d}, version[] = {1},
			  type[] = {XM_T_DATA}, flags[] = {0x00, 0x03}, poff[] = {0x00, 0x30},
			  plen[] = {0, 0, 0, 4}, session[] = {0x11, 0x22, 0x33, 0x44},
			  seq[] = {1, 2, 3, 4, 5, 6, 7, 8},
			  arg0[] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18},
			  arg1[] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28},
			  credit[] = {0x31, 0x32, 0x33, 0x34};
	const struct xm_frame f = {
		.type = XM_T_DATA,
		.flags = XM_F_FUA | XM_F_RESYNC,
		.payload_len = sizeof(payload),
		.session = 0x11223344,
		.seq = 0x0102030405060708ull,
		.arg0 = 0x1112131415161718ull,
		.arg1 = 0x2122232425262728ull,
		.credit = 0x31323334,
	};
	const struct wire_field fields[] = {
		{"dst", 0, 6, dst_mac},
		{"src", 6, 6, src_mac},
		{"ethertype", 12, 2, ethertype},
		{"magic", 14, 2, magic},
		{"version", 16, 1, version},
		{"type", 17, 1, type},
		{"flags", 18, 2, flags},
		{"payload_off", 20, 2, poff},
		{"payload_len", 22, 4, plen},
		{"session", 26, 4, session},
		{"seq", 30, 8, seq},
		{"arg0", 38, 8, arg0},
		{"arg1", 46, 8, arg1},
		{"credit", 54, 4, credit},
		{"payload", 62, 4, payload},
	};
	__u8 buf[128], hdr[HDR_LEN];
	__u32 crc;
	size_t i;

	/* The struct agrees with the offsets above. */
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, magic), 14);
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, flags), 18);
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, payload_len), 22);
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, seq), 30);
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, credit), 54);
	assert_int_equal(HDR_OFF + offsetof(struct xm_hdr, crc), 58);

	assert_int_equal(
		xm_frame_build(buf, sizeof(buf), dst_mac, src_mac, XM_ETH_P_MIRROR, &f, payload),
		66);
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		if (memcmp(buf + fields[i].off, fields[i].want, fields[i].len))
			print_message("%s at offset %zu is wrong\n", fields[i].name, fields[i].off);
		assert_memory_equal(buf + fields[i].off, fields[i].want, fields[i].len);
	}
	/* crc: big-endian CRC32C of the header with crc = 0, then of the payload. */
	memcpy(hdr, buf + HDR_OFF, HDR_LEN);
	memset(hdr + 44, 0, 4);
	crc = ref_crc32c(ref_crc32c(0, hdr, HDR_LEN), payload, sizeof(payload));
	assert_int_equal(get_be32(buf + 58), crc);
}

static void test_custom_ethertype_round_trips(void **state)
{
	static __u8 buf[BUF_SIZE];
	struct xm_frame f = sample_frame(XM_T_PING, 0, 0), got;
	int n;

	n = xm_frame_build(buf, BUF_SIZE, dst_mac, src_mac, OTHER_TYPE, &f, NULL);
	assert_int_equal(n, MIN_FRAME);
	assert_int_equal(get_be16(buf + 12), OTHER_TYPE);
	assert_int_equal(xm_frame_parse(buf, (size_t)n, OTHER_TYPE, &got, NULL, NULL), XM_PARSE_OK);
	assert_int_equal(xm_frame_parse(buf, (size_t)n, XM_ETH_P_MIRROR, &got, NULL, NULL),
			 XM_PARSE_NOT_MIRROR);
}

static void test_parse_vlan_tagged_frame(void **state)
{
	static const __u16 offs[] = {0, 64};
	static __u8 buf[BUF_SIZE];
	__u8 payload[200];
	size_t i;

	fill_payload(payload, sizeof(payload), 9);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		struct xm_frame f = sample_frame(XM_T_DATA, offs[i], sizeof(payload)), got;
		__u16 want_off = offs[i] ? offs[i] : HDR_LEN;
		__u8 src[XM_ETH_ALEN];
		const void *p = NULL;
		enum xm_parse_error e;
		size_t len;

		len = insert_vlan_tag(buf, build(buf, &f, payload), 100);
		e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, &p, src);
		if (e != XM_PARSE_OK)
			print_message("payload_off %u: %s\n", offs[i], parse_name(e));
		assert_int_equal(e, XM_PARSE_OK);
		assert_frame_equal(&got, &f, want_off);
		assert_ptr_equal(p, buf + XM_ETH_HLEN + XM_VLAN_HLEN + want_off);
		assert_memory_equal(p, payload, sizeof(payload));
		assert_memory_equal(src, src_mac, XM_ETH_ALEN);
	}
}

static void test_parse_vlan_tag_with_other_inner_type_is_not_mirror(void **state)
{
	static __u8 buf[BUF_SIZE];
	struct xm_frame f = sample_frame(XM_T_PING, 0, 0), got;
	size_t len;

	len = insert_vlan_tag(buf, build(buf, &f, NULL), 100);
	put_be(buf + 16, 2, 0x0800);
	assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL),
			 XM_PARSE_NOT_MIRROR);
	/* Only one tag is looked through: a second 802.1Q tag is not ours. */
	len = insert_vlan_tag(buf, build(buf, &f, NULL), 100);
	len = insert_vlan_tag(buf, len, 200);
	assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL),
			 XM_PARSE_NOT_MIRROR);
}

static void test_parse_other_ethertype_is_not_mirror(void **state)
{
	static const __u16 types[] = {0x0800, 0x86dd, 0x0806, 0x88b6, 0xb588, 0x0000, 0xffff};
	static __u8 buf[BUF_SIZE];
	struct xm_frame f = sample_frame(XM_T_PING, 0, 0), got;
	size_t len, i;

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		len = build(buf, &f, NULL);
		put_be(buf + 12, 2, types[i]);
		if (xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL) !=
		    XM_PARSE_NOT_MIRROR)
			print_message("EtherType 0x%04x not refused\n", types[i]);
		assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL),
				 XM_PARSE_NOT_MIRROR);
	}
}

/* Cut a valid frame short at every length: where it stops decides the error. */
static void test_parse_short_frames(void **state)
{
	static __u8 buf[BUF_SIZE];
	__u8 payload[32];
	struct xm_frame f = sample_frame(XM_T_PING, 0, 0), got;
	size_t full, len;

	/* Untagged header-only. */
	full = build(buf, &f, NULL);
	assert_int_equal(full, MIN_FRAME);
	for (len = 0; len <= full; len++) {
		enum xm_parse_error want = len < XM_ETH_HLEN ? XM_PARSE_NOT_MIRROR
					   : len < MIN_FRAME ? XM_PARSE_TRUNCATED
							     : XM_PARSE_OK;
		enum xm_parse_error e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL);

		if (e != want)
			print_message("untagged, %zu bytes: %s, want %s\n", len, parse_name(e),
				      parse_name(want));
		assert_int_equal(e, want);
	}
	/* Tagged header-only. */
	full = insert_vlan_tag(buf, build(buf, &f, NULL), 7);
	assert_int_equal(full, MIN_FRAME + XM_VLAN_HLEN);
	for (len = 0; len <= full; len++) {
		enum xm_parse_error want = len < XM_ETH_HLEN + XM_VLAN_HLEN ? XM_PARSE_NOT_MIRROR
					   : len < full			    ? XM_PARSE_TRUNCATED
									    : XM_PARSE_OK;
		enum xm_parse_error e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL);

		if (e != want)
			print_message("tagged, %zu bytes: %s, want %s\n", len, parse_name(e),
				      parse_name(want));
		assert_int_equal(e, want);
	}
	/* Cut inside the payload: the header is whole, the payload runs past the end. */
	f = sample_frame(XM_T_DATA, 0, sizeof(payload));
	fill_payload(payload, sizeof(payload), 6);
	full = build(buf, &f, payload);
	for (len = MIN_FRAME; len < full; len++) {
		enum xm_parse_error e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL);

		if (e != XM_PARSE_BAD_LENGTH)
			print_message("payload cut at %zu of %zu bytes: %s\n", len, full,
				      parse_name(e));
		assert_int_equal(e, XM_PARSE_BAD_LENGTH);
	}
}

/* One header field set to one value, CRC recomputed, and what the parser must say. */
struct hdr_case {
	const char *name;
	size_t off; /* in struct xm_hdr */
	unsigned int width;
	__u64 val; /* written big-endian */
	enum xm_parse_error want;
};

static void test_parse_rejects_bad_header_fields(void **state)
{
	static const struct hdr_case cases[] = {
		{"magic 0", offsetof(struct xm_hdr, magic), 2, 0, XM_PARSE_BAD_HEADER},
		{"magic byte-swapped", offsetof(struct xm_hdr, magic), 2, 0x4d58,
		 XM_PARSE_BAD_HEADER},
		{"magic off by one", offsetof(struct xm_hdr, magic), 2, XM_MAGIC + 1,
		 XM_PARSE_BAD_HEADER},
		{"version 0", offsetof(struct xm_hdr, version), 1, 0, XM_PARSE_BAD_HEADER},
		{"version 2", offsetof(struct xm_hdr, version), 1, 2, XM_PARSE_BAD_HEADER},
		{"version 255", offsetof(struct xm_hdr, version), 1, 255, XM_PARSE_BAD_HEADER},
		{"type 0", offsetof(struct xm_hdr, type), 1, 0, XM_PARSE_BAD_HEADER},
		{"type XM_T_MAX", offsetof(struct xm_hdr, type), 1, XM_T_MAX, XM_PARSE_BAD_HEADER},
		{"type 255", offsetof(struct xm_hdr, type), 1, 255, XM_PARSE_BAD_HEADER},
		{"type XM_T_PONG", offsetof(struct xm_hdr, type), 1, XM_T_PONG, XM_PARSE_OK},
		{"lowest undefined flag", offsetof(struct xm_hdr, flags), 2, FIRST_UNDEFINED_FLAG,
		 XM_PARSE_BAD_HEADER},
		{"flag 0x8000", offsetof(struct xm_hdr, flags), 2, LAST_UNDEFINED_FLAG,
		 XM_PARSE_BAD_HEADER},
		{"flags byte-swapped FUA", offsetof(struct xm_hdr, flags), 2, 0x0100,
		 XM_PARSE_BAD_HEADER},
		{"every defined flag but AUTH", offsetof(struct xm_hdr, flags), 2,
		 XM_F_MASK & ~XM_F_AUTH, XM_PARSE_OK},
		/* A tagged frame carries crc 0: a CRC there is not what a tagging sender sends. */
		{"AUTH with a CRC", offsetof(struct xm_hdr, flags), 2, XM_F_AUTH, XM_PARSE_BAD_CRC},
		{"payload_off 0", offsetof(struct xm_hdr, payload_off), 2, 0, XM_PARSE_BAD_LENGTH},
		{"payload_off 40", offsetof(struct xm_hdr, payload_off), 2, 40,
		 XM_PARSE_BAD_LENGTH},
		{"payload_off 47", offsetof(struct xm_hdr, payload_off), 2, 47,
		 XM_PARSE_BAD_LENGTH},
		{"payload_off 49", offsetof(struct xm_hdr, payload_off), 2, 49,
		 XM_PARSE_BAD_LENGTH},
		{"payload_off 0xffff", offsetof(struct xm_hdr, payload_off), 2, 0xffff,
		 XM_PARSE_BAD_LENGTH},
		{"payload_len + 1", offsetof(struct xm_hdr, payload_len), 4, 17,
		 XM_PARSE_BAD_LENGTH},
		{"payload_len 0x10000", offsetof(struct xm_hdr, payload_len), 4, 0x10000,
		 XM_PARSE_BAD_LENGTH},
		{"payload_len 0xffffffff", offsetof(struct xm_hdr, payload_len), 4, 0xffffffff,
		 XM_PARSE_BAD_LENGTH},
		{"payload_len - 1", offsetof(struct xm_hdr, payload_len), 4, 15, XM_PARSE_OK},
	};
	static __u8 buf[BUF_SIZE];
	__u8 payload[16];
	size_t i;

	fill_payload(payload, sizeof(payload), 8);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_frame f = sample_frame(XM_T_DATA, 0, sizeof(payload)), got;
		enum xm_parse_error e;
		size_t len;

		len = build(buf, &f, payload);
		put_be(buf + HDR_OFF + cases[i].off, cases[i].width, cases[i].val);
		reseal(buf, len, HDR_OFF);
		e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL);
		if (e != cases[i].want)
			print_message("row %zu (%s): %s, want %s\n", i, cases[i].name,
				      parse_name(e), parse_name(cases[i].want));
		assert_int_equal(e, cases[i].want);
	}
}

#define M(e) (1u << (e))

/* What a flipped bit at each header offset may turn into; everything after the header: BAD_CRC. */
static unsigned int flip_outcomes(size_t hdr_off)
{
	if (hdr_off < offsetof(struct xm_hdr, type)) /* magic, version */
		return M(XM_PARSE_BAD_HEADER);
	if (hdr_off <
	    offsetof(struct xm_hdr, payload_off)) /* type, flags: maybe another valid one */
		return M(XM_PARSE_BAD_HEADER) | M(XM_PARSE_BAD_CRC);
	if (hdr_off < offsetof(struct xm_hdr, payload_len)) /* 48 +- a bit is never in bounds */
		return M(XM_PARSE_BAD_LENGTH);
	if (hdr_off < offsetof(struct xm_hdr, session)) /* shorter: CRC; longer: past the end */
		return M(XM_PARSE_BAD_LENGTH) | M(XM_PARSE_BAD_CRC);
	return M(XM_PARSE_BAD_CRC);
}

static void test_parse_detects_every_single_bit_flip(void **state)
{
	static __u8 buf[BUF_SIZE];
	__u8 payload[16];
	struct xm_frame f = sample_frame(XM_T_DATA, 0, sizeof(payload)), got;
	size_t len, pos;
	int bit;

	fill_payload(payload, sizeof(payload), 12);
	len = build(buf, &f, payload);
	assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL), XM_PARSE_OK);
	/* The EtherType, then every bit of the mirror header and the payload. */
	for (pos = 2 * XM_ETH_ALEN; pos < len; pos++) {
		unsigned int allowed = pos < HDR_OFF		 ? M(XM_PARSE_NOT_MIRROR)
				       : pos < HDR_OFF + HDR_LEN ? flip_outcomes(pos - HDR_OFF)
								 : M(XM_PARSE_BAD_CRC);

		for (bit = 0; bit < 8; bit++) {
			enum xm_parse_error e;

			buf[pos] ^= (__u8)(1 << bit);
			e = xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL);
			buf[pos] ^= (__u8)(1 << bit);
			if (!(M(e) & allowed))
				print_message("bit %d of frame byte %zu flipped: %s\n", bit, pos,
					      parse_name(e));
			assert_int_not_equal(e, XM_PARSE_OK);
			assert_true(M(e) & allowed);
		}
	}
	assert_int_equal(xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL), XM_PARSE_OK);
}

/* A link may pad a frame; payload_len, not the frame length, says where the payload ends. */
static void test_parse_accepts_trailing_link_padding(void **state)
{
	static const __u32 lens[] = {0, 3, 100};
	static __u8 buf[BUF_SIZE];
	__u8 payload[100];
	size_t i, pad;

	fill_payload(payload, sizeof(payload), 13);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		for (pad = 1; pad <= 64; pad += 21) {
			struct xm_frame f = sample_frame(XM_T_DATA, 0, lens[i]), got;
			const void *p = NULL;
			enum xm_parse_error e;
			size_t len;

			len = build(buf, &f, payload);
			memset(buf + len, 0xcc, pad);
			e = xm_frame_parse(buf, len + pad, XM_ETH_P_MIRROR, &got, &p, NULL);
			if (e != XM_PARSE_OK)
				print_message("payload %u + %zu bytes of padding: %s\n", lens[i],
					      pad, parse_name(e));
			assert_int_equal(e, XM_PARSE_OK);
			assert_int_equal(got.payload_len, lens[i]);
			if (lens[i])
				assert_memory_equal(p, payload, lens[i]);
			else
				assert_null(p);
			/* The same with a VLAN tag. */
			len = insert_vlan_tag(buf, len + pad, 1);
			assert_int_equal(
				xm_frame_parse(buf, len, XM_ETH_P_MIRROR, &got, NULL, NULL),
				XM_PARSE_OK);
		}
	}
}

struct type_name_case {
	__u8 type;
	const char *name;
};

static void test_frame_type_names(void **state)
{
	static const struct type_name_case cases[] = {
		{0, "invalid"},
		{XM_T_HELLO, "hello"},
		{XM_T_HELLO_ACK, "hello_ack"},
		{XM_T_DATA, "data"},
		{XM_T_ACK, "ack"},
		{XM_T_FLUSH, "flush"},
		{XM_T_FLUSH_ACK, "flush_ack"},
		{XM_T_PING, "ping"},
		{XM_T_PONG, "pong"},
		{XM_T_MAX, "invalid"},
		{XM_T_MAX + 1, "invalid"},
		{255, "invalid"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *got = xm_frame_type_name(cases[i].type);

		assert_non_null(got);
		if (strcmp(got, cases[i].name))
			print_message("type %u: \"%s\", want \"%s\"\n", cases[i].type, got,
				      cases[i].name);
		assert_string_equal(got, cases[i].name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_crc32c_iscsi_vectors),
		cmocka_unit_test(test_crc32c_of_nothing_is_identity),
		cmocka_unit_test(test_crc32c_extends_like_zlib),
		cmocka_unit_test(test_crc32c_matches_bitwise_reference),
		cmocka_unit_test(test_crc32c_three_chains_match_reference),
		cmocka_unit_test(test_round_trip_every_type),
		cmocka_unit_test(test_round_trip_unaligned_buffer),
		cmocka_unit_test(test_parse_optional_outputs_may_be_null),
		cmocka_unit_test(test_build_zeroes_alignment_padding),
		cmocka_unit_test(test_build_needs_exact_room),
		cmocka_unit_test(test_build_rejects_payload_off_inside_header),
		cmocka_unit_test(test_wire_layout_is_big_endian_as_specified),
		cmocka_unit_test(test_custom_ethertype_round_trips),
		cmocka_unit_test(test_parse_vlan_tagged_frame),
		cmocka_unit_test(test_parse_vlan_tag_with_other_inner_type_is_not_mirror),
		cmocka_unit_test(test_parse_other_ethertype_is_not_mirror),
		cmocka_unit_test(test_parse_short_frames),
		cmocka_unit_test(test_parse_rejects_bad_header_fields),
		cmocka_unit_test(test_parse_detects_every_single_bit_flip),
		cmocka_unit_test(test_parse_accepts_trailing_link_padding),
		cmocka_unit_test(test_frame_type_names),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL) ? 1 : 0;
}
