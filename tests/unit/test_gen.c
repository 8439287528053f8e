// SPDX-License-Identifier: GPL-2.0
/* Description: the handshake's sync decision, row by row, the discard flag and the wire form. */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "repl/gen.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Generations with a recognisable value; 0 means "none". */
#define G_A 0x1111111111111111ull
#define G_B 0x2222222222222222ull
#define G_C 0x3333333333333333ull
#define G_D 0x4444444444444444ull
#define G_E 0x5555555555555555ull

struct decision_case {
	const char *what;
	struct xm_gen_info pri, sec;
	enum xm_sync_decision plain, discard;
};

/* One row of gen.h's table each, plus the cases that must fall through to a later row. */
static const struct decision_case cases[] = {
	{
		.what = "secondary never synced",
		.pri = {.current_gen = G_A},
		.sec = {.current_gen = 0, .bitmap_gen = G_A},
		.plain = XM_SYNC_FULL,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "both new: secondary 0 wins over equal currents",
		.pri = {.current_gen = 0},
		.sec = {.current_gen = 0},
		.plain = XM_SYNC_FULL,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "current equal, no bits",
		.pri = {.current_gen = G_A, .bitmap_gen = G_B},
		.sec = {.current_gen = G_A, .bitmap_gen = G_B},
		.plain = XM_SYNC_NONE,
		.discard = XM_SYNC_NONE,
	},
	{
		.what = "current equal, primary has bits",
		.pri = {.current_gen = G_A, .dirty_bits = 1},
		.sec = {.current_gen = G_A},
		.plain = XM_SYNC_BITMAP,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "current equal, secondary has bits",
		.pri = {.current_gen = G_A},
		.sec = {.current_gen = G_A, .dirty_bits = 7},
		.plain = XM_SYNC_BITMAP,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "primary wrote since they parted",
		.pri = {.current_gen = G_B, .bitmap_gen = G_A, .history = {G_A}},
		.sec = {.current_gen = G_A},
		.plain = XM_SYNC_BITMAP,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "secondary wrote since they parted",
		.pri = {.current_gen = G_A},
		.sec = {.current_gen = G_B, .bitmap_gen = G_A, .history = {G_A}},
		.plain = XM_SYNC_PEER_NEWER,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "both wrote since they parted",
		.pri = {.current_gen = G_B, .bitmap_gen = G_A, .history = {G_A}},
		.sec = {.current_gen = G_C, .bitmap_gen = G_A, .history = {G_A}},
		.plain = XM_SYNC_SPLIT_BRAIN,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "only the primary's history counts, not the secondary's",
		.pri = {.current_gen = G_C, .bitmap_gen = G_B, .history = {G_B, G_A}},
		.sec = {.current_gen = G_D, .history = {G_B}},
		.plain = XM_SYNC_UNRELATED, /* D is nowhere in the primary's generations */
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "secondary current is the primary's history[0], not its bitmap_gen",
		.pri = {.current_gen = G_C, .bitmap_gen = G_B, .history = {G_D, G_A}},
		.sec = {.current_gen = G_D},
		.plain = XM_SYNC_FULL,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "secondary current is the primary's history[1]",
		.pri = {.current_gen = G_C, .bitmap_gen = G_B, .history = {G_B, G_A}},
		.sec = {.current_gen = G_A},
		.plain = XM_SYNC_FULL,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "nothing in common",
		.pri = {.current_gen = G_A, .bitmap_gen = G_B, .history = {G_B, G_C}},
		.sec = {.current_gen = G_D, .bitmap_gen = G_E},
		.plain = XM_SYNC_UNRELATED,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "bitmap_gen equal but zero is no split brain",
		.pri = {.current_gen = G_A},
		.sec = {.current_gen = G_B},
		.plain = XM_SYNC_UNRELATED,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "history zeros match nothing",
		.pri = {.current_gen = G_A, .history = {0, 0}},
		.sec = {.current_gen = G_B},
		.plain = XM_SYNC_UNRELATED,
		.discard = XM_SYNC_FULL,
	},
	{
		.what = "bitmap row before peer-newer row",
		.pri = {.current_gen = G_B, .bitmap_gen = G_A},
		.sec = {.current_gen = G_A, .bitmap_gen = G_B},
		.plain = XM_SYNC_BITMAP,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "peer-newer row before split-brain row",
		.pri = {.current_gen = G_A, .bitmap_gen = G_C},
		.sec = {.current_gen = G_B, .bitmap_gen = G_A},
		.plain = XM_SYNC_PEER_NEWER,
		.discard = XM_SYNC_BITMAP,
	},
	{
		.what = "split-brain row before history row",
		.pri = {.current_gen = G_B, .bitmap_gen = G_A, .history = {G_C}},
		.sec = {.current_gen = G_C, .bitmap_gen = G_A},
		.plain = XM_SYNC_SPLIT_BRAIN,
		.discard = XM_SYNC_BITMAP,
	},
};

static void test_decision_table(void **state)
{
	unsigned int i;
	int discard;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		for (discard = 0; discard <= 1; discard++) {
			enum xm_sync_decision want = discard ? cases[i].discard : cases[i].plain;
			enum xm_sync_decision got =
				xm_sync_decide(&cases[i].pri, &cases[i].sec, discard);

			if (got != want)
				print_message("%s%s: %s, want %s\n", cases[i].what,
					      discard ? " (discard)" : "",
					      xm_sync_decision_name(got),
					      xm_sync_decision_name(want));
			assert_int_equal(got, want);
		}
	}
}

static void test_decision_names(void **state)
{
	static const struct {
		enum xm_sync_decision d;
		const char *name;
	} names[] = {
		{XM_SYNC_NONE, "none"},
		{XM_SYNC_BITMAP, "bitmap"},
		{XM_SYNC_FULL, "full"},
		{XM_SYNC_SPLIT_BRAIN, "split-brain"},
		{XM_SYNC_PEER_NEWER, "peer-newer"},
		{XM_SYNC_UNRELATED, "unrelated"},
		{XM_SYNC_MAX, "unknown"},
		{(enum xm_sync_decision)200, "unknown"},
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		assert_string_equal(xm_sync_decision_name(names[i].d), names[i].name);
}

static __u64 get_be64(const __u8 *p)
{
	__u64 v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void test_wire_round_trip_is_big_endian(void **state)
{
	const struct xm_gen_info g = {
		.current_gen = 0x0102030405060708ull,
		.bitmap_gen = 0x1112131415161718ull,
		.history = {0x2122232425262728ull, 0x3132333435363738ull},
		.dirty_bits = 0x4142434445464748ull,
		.disk_state = XM_DISK_UPTODATE,
	};
	struct xm_hello_gen w;
	struct xm_gen_info back;
	const __u8 *p = (const __u8 *)&w;

	memset(&w, 0xa5, sizeof(w));
	xm_gen_to_wire(&g, 64 << 10, XM_HG_DISCARD_MINE, XM_SYNC_SPLIT_BRAIN, &w);
	assert_int_equal(get_be64(p + offsetof(struct xm_hello_gen, current_gen)), g.current_gen);
	assert_int_equal(get_be64(p + offsetof(struct xm_hello_gen, bitmap_gen)), g.bitmap_gen);
	assert_int_equal(get_be64(p + offsetof(struct xm_hello_gen, history)), g.history[0]);
	assert_int_equal(get_be64(p + offsetof(struct xm_hello_gen, history) + 8), g.history[1]);
	assert_int_equal(get_be64(p + offsetof(struct xm_hello_gen, dirty_bits)), g.dirty_bits);
	assert_int_equal(p[40], 0x00);
	assert_int_equal(p[41], 0x01); /* 64 KiB = 0x00010000 */
	assert_int_equal(p[42], 0x00);
	assert_int_equal(p[43], 0x00);
	assert_int_equal(w.disk_state, XM_DISK_UPTODATE);
	assert_int_equal(w.flags, XM_HG_DISCARD_MINE);
	assert_int_equal(w.decision, XM_SYNC_SPLIT_BRAIN);
	assert_int_equal(w.reserved, 0);

	memset(&back, 0xa5, sizeof(back));
	xm_gen_from_wire(&w, &back);
	assert_int_equal(back.current_gen, g.current_gen);
	assert_int_equal(back.bitmap_gen, g.bitmap_gen);
	assert_int_equal(back.history[0], g.history[0]);
	assert_int_equal(back.history[1], g.history[1]);
	assert_int_equal(back.dirty_bits, g.dirty_bits);
	assert_int_equal(back.disk_state, g.disk_state);
	assert_int_equal(be32toh(w.bitmap_block), 64 << 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision_table),
		cmocka_unit_test(test_decision_names),
		cmocka_unit_test(test_wire_round_trip_is_big_endian),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("gen", tests, NULL, NULL) ? 1 : 0;
}
