// SPDX-License-Identifier: GPL-2.0
/* Description: the receiving window (repl/receiver.c): frames in order and reordered,
 * duplicates before and after the cumulative ack, the window's edge, barriers passed in order
 * (and held back), durable and received acks with their SACKs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xm_test.h"
#include "repl/receiver.h"

struct fixture {
	struct xm_receiver r;
	struct xm_counters c;
	__u64 passed[16]; /* barriers passed, in order */
	unsigned int npassed;
	int hold; /* pass() refuses this many times */
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	if (xm_receiver_init(&f.r, 16, &f.c))
		return -1;
	xm_receiver_start(&f.r, 100);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xm_receiver_free(&f->r);
	return 0;
}

static int pass(void *ctx, __u64 seq)
{
	struct fixture *f = ctx;

	if (f->hold) {
		f->hold--;
		return -1;
	}
	f->passed[f->npassed++] = seq;
	return 0;
}

/* A DATA frame arrives, is taken, and its write becomes durable (or not yet). */
static void data(struct fixture *f, __u64 seq, bool durable)
{
	assert_int_equal(xm_receiver_accept(&f->r, seq), XM_RX_NEW);
	xm_receiver_take(&f->r, seq, XM_RS_WRITING);
	if (durable)
		xm_receiver_durable(&f->r, seq);
}

static void check_ack(struct fixture *f, bool received, __u64 cum, __u64 sack)
{
	__u64 c, s;

	xm_receiver_ack(&f->r, received, &c, &s);
	assert_int_equal(c, cum);
	assert_int_equal(s, sack);
}

static void test_in_order(void **state)
{
	struct fixture *f = *state;

	data(f, 100, true);
	data(f, 101, false);
	check_ack(f, true, 102, 0);  /* both received */
	check_ack(f, false, 100, 0); /* nothing passed yet */
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 1);
	check_ack(f, false, 101, 0);
	xm_receiver_durable(&f->r, 101);
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 1);
	assert_int_equal(xm_receiver_cumack(&f->r), 102);
	assert_int_equal(xm_receiver_right_edge(&f->r), 102 + 16);
}

static void test_reordered(void **state)
{
	struct fixture *f = *state;

	/* 101 and 103 come before 100: they are acked selectively, cum waits for 100. */
	data(f, 101, true);
	data(f, 103, false);
	check_ack(f, false, 100, 0x1); /* durable: 101 (bit 0 is cum + 1) */
	check_ack(f, true, 100, 0x5);  /* received: 101 and 103 */
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 0);
	data(f, 100, true);
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 2);
	check_ack(f, false, 102, 0);
	check_ack(f, true, 102, 0x1); /* 103 received, 102 missing */
}

static void test_duplicates(void **state)
{
	struct fixture *f = *state;

	data(f, 100, false);
	assert_int_equal(xm_receiver_accept(&f->r, 100), XM_RX_DUP_INFLIGHT);
	assert_int_equal(f->c.rx_dup_inflight, 1);
	data(f, 102, true);
	assert_int_equal(xm_receiver_accept(&f->r, 102), XM_RX_DUP_DONE);
	xm_receiver_durable(&f->r, 100);
	xm_receiver_advance(&f->r, pass, f);
	assert_int_equal(xm_receiver_accept(&f->r, 100), XM_RX_DUP_PASSED);
	assert_int_equal(f->c.rx_dup_done, 2);
	/* 101 never came: it is new, whatever came around it. */
	assert_int_equal(xm_receiver_accept(&f->r, 101), XM_RX_NEW);
}

static void test_window_edge(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(xm_receiver_accept(&f->r, 100 + 15), XM_RX_NEW);
	assert_int_equal(xm_receiver_accept(&f->r, 100 + 16), XM_RX_BEYOND);
	assert_int_equal(f->c.rx_out_of_window, 1);
	/* A slot of the window's last frame: its SACK bit is the last one sent. */
	data(f, 115, true);
	check_ack(f, false, 100, 1ull << 14);
}

static void test_barriers_in_order(void **state)
{
	struct fixture *f = *state;

	data(f, 100, false);
	assert_int_equal(xm_receiver_accept(&f->r, 101), XM_RX_NEW);
	xm_receiver_take(&f->r, 101, XM_RS_BARRIER);
	data(f, 102, true);
	/* The FLUSH waits for the write before it. */
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 0);
	assert_int_equal(f->npassed, 0);
	check_ack(f, true, 103, 0); /* all three received */
	xm_receiver_durable(&f->r, 100);
	/* A barrier that cannot pass yet (a SETGEN whose metadata write failed) holds the rest. */
	f->hold = 1;
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 1);
	assert_int_equal(xm_receiver_cumack(&f->r), 101);
	assert_int_equal(xm_receiver_advance(&f->r, pass, f), 2);
	assert_int_equal(f->npassed, 1);
	assert_int_equal(f->passed[0], 101);
	assert_int_equal(xm_receiver_cumack(&f->r), 103);
}

static void test_new_session(void **state)
{
	struct fixture *f = *state;

	data(f, 100, true);
	data(f, 101, false);
	xm_receiver_start(&f->r, 7);
	assert_int_equal(xm_receiver_cumack(&f->r), 7);
	check_ack(f, true, 7, 0);
	/* The old session's write becoming durable touches nothing now. */
	xm_receiver_durable(&f->r, 101);
	check_ack(f, false, 7, 0);
	assert_int_equal(xm_receiver_accept(&f->r, 7), XM_RX_NEW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reordered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barriers_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_session, setup, teardown),
	};

	return xm_test_exit(cmocka_run_group_tests_name("receiver", tests, NULL, NULL));
}
