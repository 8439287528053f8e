// SPDX-License-Identifier: GPL-2.0
/* Description: the write-intent/oos bitmap: range math, durability, counts, sweep, merge, load,
 * a lost page. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/bitmap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

/* Counts the set bits of an array by testing every bit: independent of the kept counters. */
static __u64 count_bits(const struct xm_bitmap *b, bool (*test)(const struct xm_bitmap *, __u64))
{
	__u64 i, n = 0;

	for (i = 0; i < b->nbits; i++)
		n += test(b, i);
	return n;
}

static void assert_counts_exact(const struct xm_bitmap *b)
{
	assert_int_equal(b->intent_count, count_bits(b, xm_bitmap_test_intent));
	assert_int_equal(b->oos_count, count_bits(b, xm_bitmap_test_oos));
}

/* Snapshots and "writes" every dirty page, as a flush cycle would. */
static void flush_all(struct xm_bitmap *b)
{
	__u8 buf[XM_BITMAP_PAGE];
	__u64 p;

	for (p = xm_bitmap_next_dirty_page(b, 0); p < b->npages;
	     p = xm_bitmap_next_dirty_page(b, p + 1)) {
		xm_bitmap_page_snapshot(b, p, buf);
		xm_bitmap_page_written(b, p, buf);
	}
}

static __u64 count_dirty_pages(const struct xm_bitmap *b)
{
	__u64 p, n = 0;

	for (p = 0; p < b->npages; p++)
		n += b->page_dirty[p] != 0;
	return n;
}

static void test_init_sizes_and_rejects_bad_blocks(void **state)
{
	static const __u32 bad[] = {0, 2048, 4097, 3 * 4096, 2 << 20, 0x80000000u};
	struct xm_bitmap b;
	unsigned int i;

	assert_int_equal(xm_bitmap_init(&b, 1 * GIB + 1, 64 * KIB), 0);
	assert_int_equal(b.shift, 16);
	assert_int_equal(b.nbits, 16385); /* the last partial region counts */
	assert_int_equal(b.nwords, 257);
	assert_int_equal(b.npages, 1);
	assert_int_equal(b.intent_count, 0);
	assert_int_equal(b.oos_count, 0);
	xm_bitmap_free(&b);

	/* 1 TiB at 64 KiB: 16 Mi bits, 2 MiB per array, 512 pages. */
	assert_int_equal(xm_bitmap_init(&b, 1024 * GIB, 64 * KIB), 0);
	assert_int_equal(b.nbits, 16 * MIB);
	assert_int_equal(b.npages, 512);
	xm_bitmap_free(&b);

	/* 33 pages' worth of words, plus one bit: a partial last page. */
	assert_int_equal(xm_bitmap_init(&b, (32768ull * 33 + 1) * 4096, 4096), 0);
	assert_int_equal(b.npages, 34);
	xm_bitmap_free(&b);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (xm_bitmap_init(&b, GIB, bad[i]) != -EINVAL)
			print_message("block %u accepted\n", bad[i]);
		assert_int_equal(xm_bitmap_init(&b, GIB, bad[i]), -EINVAL);
	}
	assert_int_equal(xm_bitmap_init(&b, GIB, XM_BITMAP_MIN_BLOCK), 0);
	xm_bitmap_free(&b);
	assert_int_equal(xm_bitmap_init(&b, GIB, XM_BITMAP_MAX_BLOCK), 0);
	xm_bitmap_free(&b);
	xm_bitmap_free(&b); /* twice is harmless */
}

static void test_range_math(void **state)
{
	static const struct {
		__u64 off, len, first, end;
	} cases[] = {
		{0, 1, 0, 1},
		{0, 64 * KIB, 0, 1},
		{0, 64 * KIB + 1, 0, 2},
		{64 * KIB - 1, 2, 0, 2},
		{64 * KIB, 64 * KIB, 1, 2},
		{100 * KIB, 4 * KIB, 1, 2},
		{0, 0, 0, 0},				 /* len 0: empty */
		{200 * KIB, 0, 3, 3},			 /* empty, wherever it is */
		{10 * MIB - 4 * KIB, 1 * MIB, 159, 160}, /* clamped to nbits (160) */
		{10 * MIB, 4 * KIB, 160, 160},		 /* at the end: empty */
		{20 * MIB, 4 * KIB, 160, 160},		 /* past the end: empty, clamped */
		{~0ull - 10, 20, 160, 160},		 /* off + len overflows */
		{4 * KIB, ~0ull - 4 * KIB, 0, 160},
	};
	struct xm_bitmap b;
	unsigned int i;

	assert_int_equal(xm_bitmap_init(&b, 10 * MIB, 64 * KIB), 0);
	assert_int_equal(b.nbits, 160);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		__u64 first = 12345, end = 6789;

		xm_bitmap_range(&b, cases[i].off, cases[i].len, &first, &end);
		if (first != cases[i].first || end != cases[i].end)
			print_message("case %u: [%llu, %llu), want [%llu, %llu)\n", i,
				      (unsigned long long)first, (unsigned long long)end,
				      (unsigned long long)cases[i].first,
				      (unsigned long long)cases[i].end);
		assert_int_equal(first, cases[i].first);
		assert_int_equal(end, cases[i].end);
	}
	xm_bitmap_free(&b);
}

static void test_intent_becomes_durable_through_snapshot_and_written(void **state)
{
	__u8 buf[XM_BITMAP_PAGE];
	struct xm_bitmap b;
	__u64 le;

	assert_int_equal(xm_bitmap_init(&b, 4 * GIB, 64 * KIB), 0); /* 65536 bits, 2 pages */
	assert_int_equal(b.npages, 2);
	assert_true(xm_bitmap_mark_intent(&b, 0, 0)); /* nothing to wait for */
	assert_int_equal(count_dirty_pages(&b), 0);

	assert_false(xm_bitmap_mark_intent(&b, 128 * KIB, 8 * KIB)); /* bit 2 */
	assert_true(xm_bitmap_test_intent(&b, 2));
	assert_false(xm_bitmap_test_oos(&b, 2));
	assert_int_equal(b.intent_count, 1);
	assert_int_equal(xm_bitmap_next_dirty_page(&b, 0), 0);
	assert_int_equal(xm_bitmap_next_dirty_page(&b, 1), 2); /* none: npages */
	assert_false(xm_bitmap_range_durable(&b, 128 * KIB, 1));

	/* Marking it again changes nothing and dirties nothing new. */
	xm_bitmap_page_snapshot(&b, 0, buf);
	assert_int_equal(count_dirty_pages(&b), 0);
	assert_false(xm_bitmap_mark_intent(&b, 130 * KIB, 1)); /* still not on disk */
	assert_int_equal(count_dirty_pages(&b), 0);
	assert_int_equal(b.intent_count, 1);

	/* The snapshot is little-endian words; written makes the bit durable. */
	memcpy(&le, buf, 8);
	assert_int_equal(le64toh(le), 1ull << 2);
	xm_bitmap_page_written(&b, 0, buf);
	assert_true(xm_bitmap_range_durable(&b, 128 * KIB, 64 * KIB));
	assert_true(xm_bitmap_mark_intent(&b, 128 * KIB, 64 * KIB));

	/* A range spanning a durable and a new bit waits; one in the second page dirties it. */
	assert_false(xm_bitmap_mark_intent(&b, 128 * KIB, 128 * KIB));
	assert_false(xm_bitmap_mark_intent(&b, 2 * GIB, 1));
	assert_int_equal(xm_bitmap_next_dirty_page(&b, 0), 0);
	assert_int_equal(xm_bitmap_next_dirty_page(&b, 1), 1);
	flush_all(&b);
	assert_true(xm_bitmap_range_durable(&b, 128 * KIB, 128 * KIB));
	assert_true(xm_bitmap_range_durable(&b, 2 * GIB, 1));
	assert_int_equal(b.intent_count, 3);
	assert_counts_exact(&b);

	/* Sweeping bit 2 and snapshotting lowers durable at once, before the write completes. */
	{
		struct xm_range keep = {.off = 192 * KIB, .len = 1};

		assert_int_equal(xm_bitmap_sweep(&b, &keep, 1, NULL), 2); /* bits 2 and 32768 */
		assert_true(xm_bitmap_range_durable(&b, 128 * KIB, 1));	  /* still on disk */
		xm_bitmap_page_snapshot(&b, 0, buf);
		assert_false(xm_bitmap_range_durable(&b, 128 * KIB, 1));
		assert_true(xm_bitmap_range_durable(&b, 192 * KIB, 1));
	}
	xm_bitmap_free(&b);
}

static void test_oos_marks_intent_and_counts_stay_exact(void **state)
{
	struct xm_bitmap b;

	assert_int_equal(xm_bitmap_init(&b, 10 * MIB + 1, 64 * KIB), 0); /* 161 bits */
	xm_bitmap_mark_oos(&b, 60 * KIB, 8 * KIB);			 /* bits 0 and 1 */
	assert_true(xm_bitmap_test_oos(&b, 0));
	assert_true(xm_bitmap_test_oos(&b, 1));
	assert_true(xm_bitmap_test_intent(&b, 1));
	assert_int_equal(b.oos_count, 2);
	assert_int_equal(b.intent_count, 2);
	assert_int_equal(count_dirty_pages(&b), 1);

	xm_bitmap_mark_intent(&b, 0, 4 * MIB); /* bits 0..63: 62 new */
	assert_int_equal(b.intent_count, 64);
	assert_int_equal(b.oos_count, 2);
	assert_counts_exact(&b);

	xm_bitmap_mark_all_oos(&b);
	assert_int_equal(b.oos_count, 161);
	assert_int_equal(b.intent_count, 161);
	assert_counts_exact(&b);
	assert_false(xm_bitmap_test_oos(&b, 161)); /* past nbits */
	assert_int_equal(b.oos[2] >> 33, 0);	   /* no padding bits set */

	xm_bitmap_clear_oos(&b, 10, 70);
	assert_int_equal(b.oos_count, 101);
	assert_int_equal(b.intent_count, 161); /* the sweep clears intent, not clear_oos */
	xm_bitmap_clear_oos(&b, 60, 1000);     /* clamped */
	assert_int_equal(b.oos_count, 10);
	xm_bitmap_clear_oos(&b, 5, 5); /* empty */
	assert_int_equal(b.oos_count, 10);
	assert_counts_exact(&b);

	xm_bitmap_clear_all(&b);
	assert_int_equal(b.oos_count, 0);
	assert_int_equal(b.intent_count, 0);
	assert_counts_exact(&b);
	xm_bitmap_free(&b);
}

static void test_next_oos(void **state)
{
	struct xm_bitmap b;

	assert_int_equal(xm_bitmap_init(&b, 200 * 4096, 4096), 0);
	assert_int_equal(xm_bitmap_next_oos(&b, 0), 200);
	xm_bitmap_mark_oos(&b, 3 * 4096, 1);
	xm_bitmap_mark_oos(&b, 64 * 4096, 4096);
	xm_bitmap_mark_oos(&b, 199 * 4096, 4096);
	assert_int_equal(xm_bitmap_next_oos(&b, 0), 3);
	assert_int_equal(xm_bitmap_next_oos(&b, 3), 3);
	assert_int_equal(xm_bitmap_next_oos(&b, 4), 64);
	assert_int_equal(xm_bitmap_next_oos(&b, 65), 199);
	assert_int_equal(xm_bitmap_next_oos(&b, 199), 199);
	assert_int_equal(xm_bitmap_next_oos(&b, 200), 200);
	assert_int_equal(xm_bitmap_next_oos(&b, 5000), 200);
	xm_bitmap_free(&b);
}

static void test_sweep_keeps_busy_and_oos_bits(void **state)
{
	const struct xm_range busy[] = {
		{.off = 5 * 4096, .len = 3 * 4096},	 /* bits 5..7 */
		{.off = 100 * 4096 + 17, .len = 1},	 /* bit 100 */
		{.off = 0, .len = 0},			 /* empty: keeps nothing */
		{.off = 40000 * 4096, .len = 4096 * 10}, /* bits 40000..40009, second page */
	};
	__u8 buf[XM_BITMAP_PAGE];
	struct xm_bitmap b;
	__u64 i;

	assert_int_equal(xm_bitmap_init(&b, 70000ull * 4096, 4096), 0);
	assert_int_equal(b.npages, 3);
	xm_bitmap_mark_intent(&b, 0, 200 * 4096);	    /* bits 0..199 */
	xm_bitmap_mark_intent(&b, 39990 * 4096, 40 * 4096); /* bits 39990..40029 */
	xm_bitmap_mark_oos(&b, 150 * 4096, 10 * 4096);	    /* bits 150..159 */
	flush_all(&b);
	assert_int_equal(count_dirty_pages(&b), 0);

	assert_int_equal(xm_bitmap_sweep(&b, busy, ARRAY_SIZE(busy), NULL), 240 - 3 - 1 - 10 - 10);
	for (i = 0; i < 70000; i++) {
		bool want = (i >= 5 && i <= 7) || i == 100 || (i >= 150 && i < 160) ||
			    (i >= 40000 && i < 40010);

		if (xm_bitmap_test_intent(&b, i) != want)
			print_message("bit %llu: intent %d\n", (unsigned long long)i, !want);
		assert_int_equal(xm_bitmap_test_intent(&b, i), want);
	}
	assert_int_equal(b.intent_count, 24);
	assert_counts_exact(&b);
	/* Pages 0 and 1 changed, page 2 did not. */
	assert_int_equal(count_dirty_pages(&b), 2);
	assert_false(b.page_dirty[2]);

	/* Nothing busy, nothing oos: everything but the oos bits goes; again: nothing. */
	xm_bitmap_page_snapshot(&b, 0, buf);
	xm_bitmap_page_snapshot(&b, 1, buf);
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, NULL), 14);
	assert_int_equal(b.intent_count, 10);
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, NULL), 0);
	assert_int_equal(count_dirty_pages(&b), 2);
	xm_bitmap_free(&b);
}

static void test_sweep_keeps_masked_regions(void **state)
{
	struct xm_bitmap b;
	__u8 buf[XM_BITMAP_PAGE];
	__u64 keep[1] = {0};

	assert_int_equal(xm_bitmap_init(&b, 1 * MIB, 64 * KIB), 0); /* 16 bits */
	xm_bitmap_mark_intent(&b, 0, 128 * KIB);		    /* bits 0, 1 */
	xm_bitmap_page_snapshot(&b, 0, buf);
	xm_bitmap_page_written(&b, 0, buf);
	/* Both in the keep mask (hot extents of the activity log): kept, however often swept. */
	keep[0] = 0x3;
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, keep), 0);
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, keep), 0);
	assert_int_equal(b.intent_count, 2);
	/* Bit 1 is written again: already durable, no metadata write needed. */
	assert_true(xm_bitmap_mark_intent(&b, 64 * KIB, 4096));
	/* Bit 0 leaves the mask (its extent was evicted): cleared by the next sweep. */
	keep[0] = 0x2;
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, keep), 1);
	assert_false(xm_bitmap_test_intent(&b, 0));
	assert_true(xm_bitmap_test_intent(&b, 1));
	/* Without a mask (a clean detach) everything not busy goes at once. */
	xm_bitmap_mark_intent(&b, 0, 4096);
	assert_int_equal(xm_bitmap_sweep(&b, NULL, 0, NULL), 2);
	assert_counts_exact(&b);
	xm_bitmap_free(&b);
}

static void test_merge_peer_coarser_granularity(void **state)
{
	struct xm_bitmap b;
	__u64 words[2] = {0, 0};

	/* Ours 4 KiB, the peer's 64 KiB: one peer bit is 16 of ours. */
	assert_int_equal(xm_bitmap_init(&b, 130 * 64 * KIB - 4096, 4096), 0);
	assert_int_equal(b.nbits, 130 * 16 - 1);
	words[0] = 1ull << 3 | 1ull << 63;
	words[1] = 1ull << 1 | 1ull << 2 | 1ull << 3; /* peer bits 65, 66, and 67 past peer_bits */
	xm_bitmap_merge_peer(&b, 64 * KIB, 67, 0, words, 2);
	assert_int_equal(xm_bitmap_next_oos(&b, 0), 3 * 16);
	assert_int_equal(xm_bitmap_next_oos(&b, 4 * 16), 63 * 16);
	assert_int_equal(xm_bitmap_next_oos(&b, 64 * 16), 65 * 16);
	assert_int_equal(xm_bitmap_next_oos(&b, 67 * 16), b.nbits);
	assert_int_equal(b.oos_count, 4 * 16);
	assert_int_equal(b.intent_count, 4 * 16);
	assert_counts_exact(&b);

	/* Words at an offset: the peer's last bit covers our partial last region, clamped. */
	words[0] = 1ull << 1;
	xm_bitmap_merge_peer(&b, 64 * KIB, 130, 2, words, 1); /* peer bit 129 */
	assert_int_equal(xm_bitmap_next_oos(&b, 67 * 16), 129 * 16);
	assert_int_equal(b.oos_count, 4 * 16 + 15);
	assert_counts_exact(&b);
	xm_bitmap_free(&b);
}

static void test_merge_peer_finer_granularity(void **state)
{
	struct xm_bitmap b;
	__u64 words[3] = {0, 0, 0};

	/* Ours 64 KiB, the peer's 4 KiB: any peer bit of 16 sets ours. */
	assert_int_equal(xm_bitmap_init(&b, 10 * MIB, 64 * KIB), 0);
	words[0] = 1ull << 15;		     /* our bit 0 */
	words[0] |= 1ull << 16 | 1ull << 17; /* our bit 1 */
	words[1] = ~0ull;		     /* peer 64..127: our bits 4..7 */
	words[2] = 1ull << 63;		     /* peer bit 191: our bit 11 */
	xm_bitmap_merge_peer(&b, 4096, 2560, 0, words, 3);
	assert_true(xm_bitmap_test_oos(&b, 0));
	assert_true(xm_bitmap_test_oos(&b, 1));
	assert_false(xm_bitmap_test_oos(&b, 2));
	assert_false(xm_bitmap_test_oos(&b, 3));
	assert_true(xm_bitmap_test_oos(&b, 4));
	assert_true(xm_bitmap_test_oos(&b, 7));
	assert_false(xm_bitmap_test_oos(&b, 8));
	assert_true(xm_bitmap_test_oos(&b, 11));
	assert_int_equal(b.oos_count, 7);
	assert_counts_exact(&b);

	/* A peer bitmap for a bigger disk: what lies past ours is ignored. */
	words[0] = ~0ull;
	xm_bitmap_merge_peer(&b, 4096, 1ull << 40, (10 * MIB / 4096) / 64, words, 1);
	assert_int_equal(b.oos_count, 7);
	xm_bitmap_merge_peer(&b, 4096, 1ull << 40, (10 * MIB / 4096) / 64 - 1, words, 1);
	assert_int_equal(b.oos_count, 11);
	assert_counts_exact(&b);
	xm_bitmap_free(&b);
}

static void test_get_oos_words(void **state)
{
	struct xm_bitmap b;
	__u64 out[4] = {1, 2, 3, 4};

	assert_int_equal(xm_bitmap_init(&b, 130 * 4096, 4096), 0); /* 3 words */
	xm_bitmap_mark_oos(&b, 0, 4096);
	xm_bitmap_mark_oos(&b, 129 * 4096, 4096);
	assert_int_equal(xm_bitmap_get_oos_words(&b, 0, out, 4), 3);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 2);
	assert_int_equal(out[3], 4); /* untouched */
	assert_int_equal(xm_bitmap_get_oos_words(&b, 2, out, 4), 1);
	assert_int_equal(xm_bitmap_get_oos_words(&b, 3, out, 4), 0);
	xm_bitmap_free(&b);
}

static void test_load_masks_bits_past_nbits(void **state)
{
	__u8 page[XM_BITMAP_PAGE], out[XM_BITMAP_PAGE];
	struct xm_bitmap b;
	__u64 le;

	assert_int_equal(xm_bitmap_init(&b, 100 * 4096, 4096), 0); /* 100 bits, 2 words */
	memset(page, 0xff, sizeof(page));
	xm_bitmap_page_load(&b, 0, page);
	assert_int_equal(b.intent_count, 100);
	assert_int_equal(b.oos_count, 100);
	assert_true(xm_bitmap_test_oos(&b, 99));
	assert_true(xm_bitmap_range_durable(&b, 0, 100 * 4096));
	assert_int_equal(count_dirty_pages(&b), 0);
	assert_counts_exact(&b);

	/* Loading again replaces, not adds. */
	memset(page, 0, sizeof(page));
	page[0] = 0x05;
	xm_bitmap_page_load(&b, 0, page);
	assert_int_equal(b.intent_count, 2);
	assert_int_equal(b.oos_count, 2);
	assert_counts_exact(&b);

	/* A snapshot of the partial page: two words, zeros after. */
	xm_bitmap_mark_intent(&b, 99 * 4096, 1);
	xm_bitmap_page_snapshot(&b, 0, out);
	memcpy(&le, out + 8, 8);
	assert_int_equal(le64toh(le), 1ull << 35);
	memset(page, 0, sizeof(page));
	assert_memory_equal(out + 16, page, sizeof(out) - 16);
	xm_bitmap_free(&b);
}

static void test_lost_page_is_all_ones(void **state)
{
	__u8 page[XM_BITMAP_PAGE];
	struct xm_bitmap b;
	__u64 bit;

	/* 2 full pages and 100 bits of a third. */
	assert_int_equal(xm_bitmap_init(&b, (2 * XM_BITMAP_PAGE_BITS + 100) * 4096ull, 4096), 0);
	memset(page, 0, sizeof(page));
	page[0] = 0x01;
	xm_bitmap_page_load(&b, 0, page);
	xm_bitmap_page_load(&b, 1, page);
	xm_bitmap_mark_oos(&b, 5 * 4096, 1); /* set in memory already: counted once */
	flush_all(&b);
	assert_int_equal(count_dirty_pages(&b), 0);

	xm_bitmap_page_lost(&b, 0);
	assert_int_equal(b.oos_count, XM_BITMAP_PAGE_BITS + 1);
	assert_int_equal(b.intent_count, XM_BITMAP_PAGE_BITS + 1);
	for (bit = 0; bit < XM_BITMAP_PAGE_BITS; bit++)
		if (!xm_bitmap_test_oos(&b, bit) || !xm_bitmap_test_intent(&b, bit))
			fail_msg("bit %llu of the lost page is clear", (unsigned long long)bit);
	assert_true(xm_bitmap_test_oos(&b, XM_BITMAP_PAGE_BITS)); /* page 1 as loaded */
	assert_false(xm_bitmap_test_oos(&b, XM_BITMAP_PAGE_BITS + 1));
	/* A write to one of its regions goes at once: every load of the file gives ones there. */
	assert_true(xm_bitmap_range_durable(&b, 0, XM_BITMAP_PAGE_BITS * 4096ull));
	assert_int_equal(b.page_dirty[0], 1);
	assert_int_equal(b.page_dirty[1], 0);
	assert_int_equal(count_dirty_pages(&b), 1);
	assert_counts_exact(&b);

	/* The last page: only the bits below nbits. */
	xm_bitmap_page_lost(&b, 2);
	assert_int_equal(b.oos_count, XM_BITMAP_PAGE_BITS + 1 + 100);
	assert_true(xm_bitmap_test_oos(&b, b.nbits - 1));
	assert_counts_exact(&b);
	assert_int_equal(xm_bitmap_next_oos(&b, XM_BITMAP_PAGE_BITS + 1), 2 * XM_BITMAP_PAGE_BITS);

	/* Once written, it goes out as it is in memory: ones, bits past nbits zero. */
	xm_bitmap_page_snapshot(&b, 2, page);
	assert_int_equal(page[0], 0xff);
	assert_int_equal(page[12], 0x0f); /* bits 96-99 */
	assert_int_equal(page[13], 0);
	xm_bitmap_page_lost(&b, 3); /* past the end: nothing */
	assert_counts_exact(&b);
	xm_bitmap_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_sizes_and_rejects_bad_blocks),
		cmocka_unit_test(test_range_math),
		cmocka_unit_test(test_intent_becomes_durable_through_snapshot_and_written),
		cmocka_unit_test(test_oos_marks_intent_and_counts_stay_exact),
		cmocka_unit_test(test_next_oos),
		cmocka_unit_test(test_sweep_keeps_busy_and_oos_bits),
		cmocka_unit_test(test_merge_peer_coarser_granularity),
		cmocka_unit_test(test_sweep_keeps_masked_regions),
		cmocka_unit_test(test_merge_peer_finer_granularity),
		cmocka_unit_test(test_get_oos_words),
		cmocka_unit_test(test_load_masks_bits_past_nbits),
		cmocka_unit_test(test_lost_page_is_all_ones),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("bitmap", tests, NULL, NULL) ? 1 : 0;
}
