// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the handshake's HELLO payload (user/repl/hello.c, the generations in
 * user/repl/gen.c) as a hostile or broken peer may send it, judged the way both roles judge it:
 * the secondary checks a HELLO (xm_hello_check) before deriving the terms (xm_hello_terms); the
 * primary derives the terms straight from a HELLO_ACK's fields; then the sync decision from both
 * boxes' generations.
 *
 * Input: the peer's struct xm_hello2 (96 bytes, as on the wire), then this box's parameters
 * (struct own_params, little-endian); what is missing is zero.
 *
 * Besides the sanitizers, it fails (aborts) when xm_hello_check disagrees with the rules of
 * docs/protocol.md §4.3 written down again here, when the terms break their promises (the block
 * is the larger one, a frame's payload is whole blocks and fits both, the export is whole blocks
 * of the primary's disk), when this box's own HELLO would fail the peer's checks, or when a
 * decision is not one of the defined ones.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl/gen.h"
#include "repl/hello.h"

/* This box: what its disk, its MTU and its metadata say. */
struct own_params {
	__u8 block_shift;    /* disk block 512 << (this % 8) */
	__u8 protocol;	     /* 'A' + this % 3 */
	__u8 discard;	     /* resolve --discard-local was given (bit 0) */
	__u8 disk_state;     /* enum xm_disk_state, modulo 4 */
	__u32 max_payload;   /* what this box takes in one frame */
	__u32 mtu_payload;   /* the primary's room for a payload in one frame */
	__u32 window;	     /* frames it grants */
	__u64 disk_size;     /* bytes */
	__u64 gen[4];	     /* current, bitmap, history[0], history[1] */
	__u64 oos_count;     /* dirty bits */
	__u32 bitmap_block;  /* bytes per bitmap bit */
	__u16 payload_align; /* where it wants DATA payloads */
	__u8 gen_flags;	     /* XM_HG_* */
	__u8 reserved;
} __attribute__((packed));

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_hello: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static bool is_pow2(__u64 v)
{
	return v && !(v & (v - 1));
}

/* docs/protocol.md §4.3: a common revision, a block that is a power of two in 512..64K, a
 * protocol letter. */
static __u8 expected_check(const struct xm_hello *h)
{
	__u32 block = be32toh(h->block_size);
	__u16 pmin = be16toh(h->proto_min), pmax = be16toh(h->proto_max);
	bool common = pmin <= pmax && pmin <= XM_PROTO_MAX && pmax >= XM_PROTO_MIN;

	if (!common)
		return XM_REFUSE_VERSION;
	if (!is_pow2(block) || block < 512 || block > 65536 ||
	    (h->repl_protocol != 'A' && h->repl_protocol != 'B' && h->repl_protocol != 'C'))
		return XM_REFUSE_PARAM;
	return XM_REFUSE_NONE;
}

static void check_terms(const char *who, __u32 block_a, __u32 block_b, __u32 maxp_a, __u32 maxp_b,
			__u64 disk)
{
	__u32 block = 0, maxp = 0, fits = maxp_a < maxp_b ? maxp_a : maxp_b;
	__u64 export_size = 0;
	__u8 r =
		xm_hello_terms(block_a, block_b, maxp_a, maxp_b, disk, &block, &maxp, &export_size);

	if (block != (block_a > block_b ? block_a : block_b))
		fuzz_fail("%s: block %u from %u and %u", who, block, block_a, block_b);
	if (maxp % block || maxp > fits || fits - maxp >= block)
		fuzz_fail("%s: payload %u is not the whole blocks of %u in %u", who, maxp, block,
			  fits);
	if (export_size % block || export_size > disk || disk - export_size >= block)
		fuzz_fail("%s: export %llu is not the whole blocks of %u in %llu", who,
			  (unsigned long long)export_size, block, (unsigned long long)disk);
	if (r != (maxp < block ? XM_REFUSE_BLOCK_SIZE : XM_REFUSE_NONE))
		fuzz_fail("%s: refusal %u with payload %u and block %u", who, r, maxp, block);
}

static void check_decision(const struct xm_gen_info *pri, const struct xm_gen_info *sec,
			   bool discard)
{
	enum xm_sync_decision d = xm_sync_decide(pri, sec, discard);

	if ((unsigned int)d >= XM_SYNC_MAX || !strcmp(xm_sync_decision_name(d), "unknown"))
		fuzz_fail("decision %d is not defined", d);
	if (!sec->current_gen && d != XM_SYNC_FULL)
		fuzz_fail("a secondary that never synced gets %s", xm_sync_decision_name(d));
	if (discard &&
	    (d == XM_SYNC_PEER_NEWER || d == XM_SYNC_SPLIT_BRAIN || d == XM_SYNC_UNRELATED))
		fuzz_fail("discarding the secondary's changes still gives %s",
			  xm_sync_decision_name(d));
}

/* This box's own HELLO, built from its parameters, must pass the checks it makes of a peer's. */
static void check_own_hello(const struct own_params *p, struct xm_gen_info *mine)
{
	static struct xm_meta meta; /* large: kept off the stack */
	static const __u8 uuid[16] = {0x78, 0x6d};
	struct xm_disk disk = {.size = p->disk_size,
			       .dio_offset_align = 512u << (p->block_shift % 8)};
	struct xm_role_env env = {.disk = &disk, .node_uuid = uuid, .meta = &meta};
	struct xm_hello_offer offer = {
		.role = XM_ROLE_PRIMARY,
		.protocol = (char)('A' + p->protocol % 3),
		.max_payload = p->max_payload,
		.window = p->window,
		.payload_align = p->payload_align,
		.gen_flags = p->gen_flags,
	};
	struct xm_gen_info back;
	struct xm_hello2 h;
	__u8 r;

	meta.sb.current_gen = p->gen[0];
	meta.sb.bitmap_gen = p->gen[1];
	meta.sb.history[0] = p->gen[2];
	meta.sb.history[1] = p->gen[3];
	meta.sb.disk_state = p->disk_state % 4;
	meta.sb.bitmap_block = p->bitmap_block;
	meta.bm.oos_count = p->oos_count;
	xm_hello_fill(&env, &offer, &h);
	r = xm_hello_check(&h.h);
	if (r != XM_REFUSE_NONE)
		fuzz_fail("this box's own HELLO is refused (%u)", r);
	xm_gen_of_meta(&meta, mine);
	xm_gen_from_wire(&h.g, &back);
	if (memcmp(&back, mine, sizeof(back)))
		fuzz_fail("generations change on their way through the wire format");
	if (be32toh(h.g.bitmap_block) != p->bitmap_block || h.g.flags != p->gen_flags)
		fuzz_fail("the HELLO's bitmap block or flags are not this box's");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct {
		struct xm_hello2 peer;
		struct own_params own;
	} __attribute__((packed)) in;
	struct xm_gen_info pri, mine;
	__u32 own_block;
	__u8 r, want;

	memset(&in, 0, sizeof(in));
	memcpy(&in, data, size < sizeof(in) ? size : sizeof(in));
	in.own.max_payload = le32toh(in.own.max_payload);
	in.own.mtu_payload = le32toh(in.own.mtu_payload);
	in.own.window = le32toh(in.own.window);
	in.own.disk_size = le64toh(in.own.disk_size);
	own_block = 512u << (in.own.block_shift % 8);

	/* The secondary: checks first, then the terms (secondary/handshake.c). */
	r = xm_hello_check(&in.peer.h);
	want = expected_check(&in.peer.h);
	if (r != want)
		fuzz_fail("xm_hello_check says %u, the rules %u", r, want);
	if (r == XM_REFUSE_NONE)
		check_terms("secondary", be32toh(in.peer.h.block_size), own_block,
			    be32toh(in.peer.h.max_payload), in.own.max_payload,
			    be64toh(in.peer.h.disk_size));
	/* The primary: the terms from a HELLO_ACK nobody checked (primary/session.c). */
	check_terms("primary", be32toh(in.peer.h.block_size), own_block,
		    be32toh(in.peer.h.max_payload), in.own.mtu_payload, in.own.disk_size);

	check_own_hello(&in.own, &mine);
	xm_gen_from_wire(&in.peer.g, &pri);
	check_decision(&pri, &mine, in.own.discard & 1);
	check_decision(&mine, &pri, in.own.discard & 1);
	return 0;
}
