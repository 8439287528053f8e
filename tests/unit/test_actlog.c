// SPDX-License-Identifier: GPL-2.0
/* Description: the activity log: hits and misses, LRU eviction and the region mask, extent spans,
 * idle extents aging out, growing after thrashing and shrinking after a minute of little use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/actlog.h"

#define MIB   (1ull << 20)
#define EXT   (4 * MIB)
#define SEC   1000000000ull
#define SHIFT 16 /* 64 KiB regions: 64 per extent */

static bool region_hot(const struct xm_actlog *al, __u64 r)
{
	return al->hot[r / 64] & (1ull << (r % 64));
}

/* Every region of extent e is hot, or none is. */
static void assert_extent_hot(const struct xm_actlog *al, __u64 e, bool hot)
{
	__u64 r;

	for (r = e * 64; r < (e + 1) * 64; r++)
		assert_int_equal(region_hot(al, r), hot);
}

static void test_hits_misses_and_mask(void **state)
{
	struct xm_actlog al;

	assert_int_equal(xm_actlog_init(&al, 1024 * MIB, SHIFT), 0);
	assert_int_equal(al.nextents, 256);
	assert_int_equal(xm_actlog_touch(&al, 5 * EXT + 4096, 4096, 1), 1);
	assert_int_equal(xm_actlog_touch(&al, 5 * EXT, 8192, 2), 0); /* hit */
	/* A write across an extent boundary touches both. */
	assert_int_equal(xm_actlog_touch(&al, 7 * EXT - 4096, 8192, 3), 2);
	assert_int_equal(al.used, 3);
	assert_int_equal(al.hits, 1);
	assert_int_equal(al.misses, 3);
	assert_extent_hot(&al, 5, true);
	assert_extent_hot(&al, 6, true);
	assert_extent_hot(&al, 7, true);
	assert_extent_hot(&al, 4, false);
	xm_actlog_free(&al);
}

static void test_lru_eviction(void **state)
{
	struct xm_actlog al;
	__u64 e;

	assert_int_equal(xm_actlog_init(&al, 1024 * MIB, SHIFT), 0);
	al.cap = 4;
	for (e = 0; e < 4; e++)
		xm_actlog_touch(&al, e * EXT, 4096, e + 1);
	xm_actlog_touch(&al, 0, 4096, 10); /* extent 0 is the most recent now */
	xm_actlog_touch(&al, 9 * EXT, 4096, 11);
	/* Extent 1 was the least recently used. */
	assert_int_equal(al.used, 4);
	assert_int_equal(al.evictions, 1);
	assert_extent_hot(&al, 1, false);
	assert_extent_hot(&al, 0, true);
	assert_extent_hot(&al, 9, true);
	xm_actlog_clear(&al);
	assert_int_equal(al.used, 0);
	for (e = 0; e < 10; e++)
		assert_extent_hot(&al, e, false);
	xm_actlog_free(&al);
}

static void test_span_whole_extents(void **state)
{
	struct xm_actlog al;
	__u64 off, len;

	/* 10 MiB: the last extent is half a one. */
	assert_int_equal(xm_actlog_init(&al, 10 * MIB, SHIFT), 0);
	xm_actlog_span(&al, EXT + 4096, 4096, &off, &len);
	assert_int_equal(off, EXT);
	assert_int_equal(len, EXT);
	xm_actlog_span(&al, 2 * EXT - 4096, 8192, &off, &len);
	assert_int_equal(off, EXT);
	assert_int_equal(len, 10 * MIB - EXT);
	xm_actlog_free(&al);
}

static void test_grows_when_thrashing(void **state)
{
	struct xm_actlog al;
	__u64 e, round, misses, t = 1;

	assert_int_equal(xm_actlog_init(&al, 4096 * MIB, SHIFT), 0);
	al.cap = XM_AL_MIN;
	/* A working set of 24 extents, written round after round within seconds. */
	for (round = 0; round < 4; round++) {
		for (e = 0; e < 24; e++)
			xm_actlog_touch(&al, e * EXT, 4096, t++);
		xm_actlog_adapt(&al, t);
	}
	assert_true(al.thrash > 0);
	assert_true(al.grows >= 1);
	assert_true(al.cap >= 24);
	/* Now it fits: no more misses. */
	misses = al.misses;
	for (round = 0; round < 3; round++)
		for (e = 0; e < 24; e++)
			xm_actlog_touch(&al, e * EXT, 4096, t++);
	assert_int_equal(al.misses, misses);
	assert_int_equal(al.used, 24);
	xm_actlog_free(&al);
}

static void test_no_growth_without_thrash(void **state)
{
	struct xm_actlog al;
	__u64 e;

	/* A sequential pass over the disk evicts, but nothing comes back: no reason to grow. */
	assert_int_equal(xm_actlog_init(&al, 4096 * MIB, SHIFT), 0);
	for (e = 0; e < 1024; e++) {
		xm_actlog_touch(&al, e * EXT, 4096, (e + 1) * SEC / 100);
		if (e % 100 == 99)
			xm_actlog_adapt(&al, (e + 1) * SEC / 100);
	}
	assert_int_equal(al.grows, 0);
	assert_int_equal(al.cap, 4 * XM_AL_MIN);
	xm_actlog_free(&al);
}

static void test_idle_extents_age_out(void **state)
{
	struct xm_actlog al;
	__u64 t = SEC;

	assert_int_equal(xm_actlog_init(&al, 1024 * MIB, SHIFT), 0);
	xm_actlog_touch(&al, 0, 4096, t);
	xm_actlog_touch(&al, 2 * EXT, 4096, t + XM_AL_AGE_NS / 2);
	/* Extent 0 has been idle for the age limit, extent 2 not yet. */
	xm_actlog_adapt(&al, t + XM_AL_AGE_NS);
	assert_int_equal(al.used, 1);
	assert_int_equal(al.aged, 1);
	assert_extent_hot(&al, 0, false);
	assert_extent_hot(&al, 2, true);
	/* Aging out is no eviction for room: its return is no thrash. */
	xm_actlog_touch(&al, 0, 4096, t + XM_AL_AGE_NS + 1);
	assert_int_equal(al.thrash, 0);
	assert_int_equal(al.evictions, 0);
	xm_actlog_free(&al);
}

static void test_shrinks_after_a_minute_of_little_use(void **state)
{
	struct xm_actlog al;
	__u64 e, t = SEC;

	assert_int_equal(xm_actlog_init(&al, 4096 * MIB, SHIFT), 0);
	assert_int_equal(al.cap, 64);
	for (e = 0; e < 64; e++)
		xm_actlog_touch(&al, e * EXT, 4096, t);
	/* From now on only extent 3 is written, once a second: 1 of 64 in use. */
	for (e = 1; e <= 59; e++) {
		xm_actlog_touch(&al, 3 * EXT, 4096, t + e * SEC);
		xm_actlog_adapt(&al, t + e * SEC);
	}
	assert_int_equal(al.cap, 64); /* not a minute yet */
	assert_int_equal(al.used, 1);
	for (; e <= 65; e++) {
		xm_actlog_touch(&al, 3 * EXT, 4096, t + e * SEC);
		xm_actlog_adapt(&al, t + e * SEC);
	}
	assert_int_equal(al.cap, 32);
	assert_int_equal(al.shrinks, 1);
	assert_extent_hot(&al, 3, true); /* the one in use stays */
	/* Never below the floor. */
	for (; e <= 600; e++)
		xm_actlog_adapt(&al, t + e * SEC);
	assert_int_equal(al.cap, XM_AL_MIN);
	xm_actlog_free(&al);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hits_misses_and_mask),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_span_whole_extents),
		cmocka_unit_test(test_grows_when_thrashing),
		cmocka_unit_test(test_no_growth_without_thrash),
		cmocka_unit_test(test_idle_extents_age_out),
		cmocka_unit_test(test_shrinks_after_a_minute_of_little_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
