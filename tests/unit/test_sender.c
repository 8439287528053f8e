// SPDX-License-Identifier: GPL-2.0
/* Description: the reliable sender (repl/sender.c) driven through loss, bursts, reordering,
 * duplicate and stale acks, a full window, RTO backoff and its reset, RACK and out-of-order
 * SACKs, with a fake wire and a clock the test moves. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xm_test.h"
#include "repl/sender.h"

#define US   1000ull
#define MS   1000000ull
#define NOTE 64

/* What the fake wire saw, and each item's progress (callbacks must come in order, once). */
struct item {
	unsigned int sent, rcvd, durable, forgotten;
};

static struct fake {
	__u64 seq[4096], tag[4096];
	unsigned int ntx;
	int fail; /* transmit fails this many times */
	struct item items[NOTE];
} w;

static int fake_transmit(void *ctx, __u64 seq, const struct xm_sender_slot *s, __u64 tag)
{
	if (w.fail) {
		w.fail--;
		return -ENOBUFS;
	}
	assert_true(w.ntx < 4096);
	w.seq[w.ntx] = seq;
	w.tag[w.ntx] = tag;
	w.ntx++;
	return 0;
}

static void fake_sent(void *ctx, struct xm_sender_slot *s)
{
	struct item *it = s->item;

	assert_int_equal(it->sent, 0);
	assert_int_equal(it->rcvd, 0);
	it->sent++;
}

static void fake_received(void *ctx, struct xm_sender_slot *s)
{
	struct item *it = s->item;

	assert_int_equal(it->sent, 1);
	assert_int_equal(it->rcvd, 0);
	assert_int_equal(it->durable, 0);
	it->rcvd++;
}

static void fake_durable(void *ctx, struct xm_sender_slot *s)
{
	struct item *it = s->item;

	assert_int_equal(it->rcvd, 1);
	assert_int_equal(it->durable, 0);
	it->durable++;
}

static void fake_forget(void *ctx, struct xm_sender_slot *s)
{
	((struct item *)s->item)->forgotten++;
}

static const struct xm_sender_ops ops = {
	.transmit = fake_transmit,
	.sent = fake_sent,
	.received = fake_received,
	.durable = fake_durable,
};

struct fixture {
	struct xm_sender s;
	struct xm_counters c;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	memset(&w, 0, sizeof(w));
	if (xm_sender_init(&f.s, 64, &ops, NULL, &f.c))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xm_sender_free(&f->s);
	return 0;
}

/* send_n: items first.. first + n - 1 go out at time t (as frames seq, seq + 1, ...). */
static void send_n(struct xm_sender *s, unsigned int first, unsigned int n, __u64 t)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		assert_int_equal(xm_sender_send(s, &w.items[first + i], 0, 1, t), 0);
}

/* How often seq was put on the wire. */
static unsigned int times_sent(__u64 seq)
{
	unsigned int i, n = 0;

	for (i = 0; i < w.ntx; i++)
		n += w.seq[i] == seq;
	return n;
}

static int ack(struct xm_sender *s, __u64 cum, __u64 sack, bool rcvd_only, __u64 t)
{
	const char *why = NULL;

	return xm_sender_ack(s, cum, sack, true, rcvd_only, 64, t, &why);
}

static void test_window_full(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 100, 4);
	send_n(&f->s, 0, 4, 0);
	assert_false(xm_sender_has_room(&f->s));
	assert_false(xm_sender_window_open(&f->s));
	assert_int_equal(xm_sender_send(&f->s, &w.items[4], 0, 1, 0), -ENOBUFS);
	assert_int_equal(xm_sender_next(&f->s), 104);
	/* Two durable, and a credit of 4 from there: the window's right edge is 106. */
	assert_int_equal(xm_sender_ack(&f->s, 102, 0, true, false, 4, 10 * US, &(const char *){0}),
			 0);
	send_n(&f->s, 4, 2, 10 * US);
	assert_int_equal(xm_sender_send(&f->s, &w.items[6], 0, 1, 10 * US), -ENOBUFS);
	assert_int_equal(xm_sender_in_flight(&f->s), 4);
}

static void test_ring_full(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	/* The peer grants more than the ring holds: the ring is the limit. */
	xm_sender_start(&f->s, 0, 1000);
	for (i = 0; i < 64; i++)
		assert_int_equal(xm_sender_send(&f->s, &w.items[i % NOTE], i, 1, 0), 0);
	assert_true(xm_sender_window_open(&f->s));
	assert_false(xm_sender_has_room(&f->s));
	assert_int_equal(xm_sender_send(&f->s, &w.items[0], 64, 1, 0), -ENOBUFS);
}

static void test_progress_in_order(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 3, 0);
	/* The first left the box. */
	xm_sender_tx_done(&f->s, w.tag[0]);
	assert_int_equal(w.items[0].sent, 1);
	/* Received (not durable): the window does not move. */
	assert_int_equal(ack(&f->s, 2, 0, true, 50 * US), 0);
	assert_int_equal(w.items[1].rcvd, 1);
	assert_int_equal(w.items[1].sent, 1); /* received implies sent */
	assert_int_equal(w.items[2].rcvd, 0);
	assert_int_equal(xm_sender_in_flight(&f->s), 3);
	/* Durable: every callback once, and the window moves. */
	assert_int_equal(ack(&f->s, 3, 0, false, 60 * US), 0);
	assert_int_equal(w.items[2].durable, 1);
	assert_int_equal(w.items[0].durable, 1);
	assert_int_equal(xm_sender_in_flight(&f->s), 0);
	assert_int_equal(xm_sender_deadline(&f->s), 0);
	/* A late TX completion of a done frame changes nothing. */
	xm_sender_tx_done(&f->s, w.tag[2]);
	assert_int_equal(w.items[2].sent, 1);
	assert_int_equal(f->c.tx_retrans_fast + f->c.tx_retrans_rto, 0);
}

static void test_one_loss_rack(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 1, 0);
	send_n(&f->s, 1, 9, 100 * US);
	/* Frames 1..9 arrive (SACK of cum + 1 = 1 .. 9), frame 0 does not: it left 100 µs before
	 * frames that arrived, more than a quarter of the RTT (200 µs): lost. */
	assert_int_equal(ack(&f->s, 0, 0x1ff, true, 300 * US), 0);
	assert_int_equal(times_sent(0), 2);
	assert_int_equal(f->c.tx_retrans_fast, 1);
	assert_int_equal(w.items[0].rcvd, 0);
	/* The same news again: no second fast retransmission of the same frame. */
	assert_int_equal(ack(&f->s, 0, 0x1ff, true, 310 * US), 0);
	assert_int_equal(times_sent(0), 2);
	assert_int_equal(ack(&f->s, 10, 0, false, 400 * US), 0);
	assert_int_equal(w.items[0].durable, 1);
	assert_int_equal(xm_sender_in_flight(&f->s), 0);
}

static void test_burst_loss(void **state)
{
	struct fixture *f = *state;
	unsigned int i;

	xm_sender_start(&f->s, 0, 64);
	for (i = 0; i < 16; i++)
		send_n(&f->s, i, 1, i * 10 * US);
	/* 0..3 durable, 4..7 lost, 8..15 durable (SACK from cum + 1 = 5: bits 3..10). */
	assert_int_equal(ack(&f->s, 4, 0xffull << 3, false, 250 * US), 0);
	for (i = 4; i < 8; i++)
		assert_int_equal(times_sent(i), 2);
	for (i = 8; i < 16; i++)
		assert_int_equal(times_sent(i), 1);
	assert_int_equal(f->c.tx_retrans_fast, 4);
	assert_int_equal(xm_sender_in_flight(&f->s), 12);
	assert_int_equal(ack(&f->s, 16, 0, false, 400 * US), 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(w.items[i].durable, 1);
}

static void test_reorder_is_no_loss(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 1, 0);
	send_n(&f->s, 1, 1, 5 * US);
	/* Frame 1 overtakes frame 0, which left only 5 µs before it: within the reorder window. */
	assert_int_equal(ack(&f->s, 0, 0x1, true, 100 * US), 0);
	assert_int_equal(times_sent(0), 1);
	assert_int_equal(ack(&f->s, 2, 0, false, 110 * US), 0);
	assert_int_equal(f->c.tx_retrans_fast + f->c.tx_retrans_rto, 0);
	assert_int_equal(w.items[0].durable + w.items[1].durable, 2);
}

static void test_sack_out_of_order(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 5, 0);
	/* Frames 2 and 3 are durable before 0 and 1 (SACK from cum + 1 = 1: bits 1, 2). */
	assert_int_equal(ack(&f->s, 0, 0x6, false, 10 * US), 0);
	assert_int_equal(w.items[2].durable, 1);
	assert_int_equal(w.items[3].durable, 1);
	assert_int_equal(w.items[0].durable + w.items[1].durable + w.items[4].durable, 0);
	assert_int_equal(xm_sender_in_flight(&f->s), 5); /* the window moves only with cum */
	assert_int_equal(ack(&f->s, 5, 0, false, 20 * US), 0);
	assert_int_equal(w.items[0].durable + w.items[1].durable + w.items[4].durable, 3);
	assert_int_equal(w.items[2].durable, 1); /* never twice */
	assert_int_equal(xm_sender_in_flight(&f->s), 0);
}

static void test_duplicate_and_stale_acks(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 4, 0);
	assert_int_equal(ack(&f->s, 2, 0, false, 10 * US), 0);
	assert_int_equal(ack(&f->s, 2, 0, false, 11 * US), 0); /* the same again */
	assert_int_equal(f->c.rx_ack_stale, 0);
	assert_int_equal(ack(&f->s, 1, 0, false, 12 * US), 0); /* older than what we know */
	assert_int_equal(f->c.rx_ack_stale, 1);
	assert_int_equal(w.items[0].durable + w.items[1].durable, 2);
	assert_int_equal(w.items[2].durable, 0);
	assert_int_equal(xm_sender_in_flight(&f->s), 2);
}

static void test_rto_backoff_and_reset(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 1, 0);
	assert_int_equal(xm_sender_deadline(&f->s), 2 * MS); /* the initial RTO */
	xm_sender_tick(&f->s, 1 * MS);
	assert_int_equal(times_sent(0), 1);
	/* Each timeout sends the oldest frame again and doubles the RTO, up to 10 ms. */
	xm_sender_tick(&f->s, 2 * MS);
	assert_int_equal(times_sent(0), 2);
	assert_int_equal(xm_sender_rto(&f->s), 4 * MS);
	assert_int_equal(xm_sender_deadline(&f->s), 6 * MS);
	xm_sender_tick(&f->s, 6 * MS);
	assert_int_equal(xm_sender_rto(&f->s), 8 * MS);
	xm_sender_tick(&f->s, 14 * MS);
	assert_int_equal(xm_sender_rto(&f->s), 10 * MS);
	xm_sender_tick(&f->s, 24 * MS);
	assert_int_equal(xm_sender_rto(&f->s), 10 * MS);
	assert_int_equal(f->c.tx_retrans_rto, 4);
	/* Received but not durable: a timeout no longer sends it again. */
	assert_int_equal(ack(&f->s, 1, 0, true, 25 * MS), 0);
	xm_sender_tick(&f->s, 34 * MS);
	assert_int_equal(times_sent(0), 5);
	/* The window moves: the backoff ends, and nothing in flight means no deadline. */
	assert_int_equal(ack(&f->s, 1, 0, false, 35 * MS), 0);
	assert_int_equal(xm_sender_rto(&f->s), 2 * MS);
	assert_int_equal(xm_sender_deadline(&f->s), 0);
	assert_int_equal(xm_sender_oldest_tx(&f->s), 0);
}

static void test_rtt_sets_rto(void **state)
{
	struct fixture *f = *state;
	const __u64 t0 = 1000 * MS; /* a send time of 0 would read as "never sent" */

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 1, t0);
	assert_int_equal(ack(&f->s, 1, 0, false, t0 + 300 * US), 0);
	/* srtt 300 µs, rttvar 150 µs: 300 + 4 * 150 = 900 µs, below the 1 ms floor. */
	assert_int_equal(xm_sender_srtt(&f->s), 300 * US);
	assert_int_equal(xm_sender_rto(&f->s), 1 * MS);
	send_n(&f->s, 1, 1, t0 + 1 * MS);
	assert_int_equal(xm_sender_deadline(&f->s), t0 + 2 * MS);
	assert_int_equal(xm_sender_oldest_tx(&f->s), t0 + 1 * MS);
}

static void test_invalid_acks(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 2, 0);
	assert_int_equal(xm_sender_ack(&f->s, 3, 0, true, false, 64, 0, &why), -EPROTO);
	assert_string_equal(why, "ack for unsent frames");
	assert_int_equal(xm_sender_ack(&f->s, 0, 0x2, true, false, 64, 0, &why), -EPROTO);
	assert_string_equal(why, "selective ack for unsent frames");
	assert_int_equal(f->c.rx_ack_invalid, 2);
	assert_int_equal(w.items[0].durable + w.items[1].durable, 0);
}

static void test_flush_ack_by_number(void **state)
{
	struct fixture *f = *state;
	struct xm_sender_slot *s;

	xm_sender_start(&f->s, 10, 64);
	send_n(&f->s, 0, 3, 0);
	assert_null(xm_sender_find(&f->s, 9));
	assert_null(xm_sender_find(&f->s, 13));
	s = xm_sender_find(&f->s, 11);
	assert_non_null(s);
	xm_sender_durable(&f->s, s);
	assert_int_equal(w.items[1].durable, 1);
	xm_sender_durable(&f->s, s); /* a duplicate FLUSH_ACK */
	assert_int_equal(w.items[1].durable, 1);
	assert_int_equal(xm_sender_in_flight(&f->s), 3);
}

static void test_reset_forgets_and_old_tags(void **state)
{
	struct fixture *f = *state;
	__u64 old_tag;

	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 0, 3, 0);
	old_tag = w.tag[0];
	xm_sender_reset(&f->s, fake_forget);
	assert_int_equal(w.items[0].forgotten + w.items[1].forgotten + w.items[2].forgotten, 3);
	assert_int_equal(xm_sender_in_flight(&f->s), 0);
	assert_false(xm_sender_has_room(&f->s)); /* no window until a session starts */
	/* A new session numbers from 0 again: a TX completion of the old session is not ours. */
	xm_sender_start(&f->s, 0, 64);
	send_n(&f->s, 10, 1, 0);
	xm_sender_tx_done(&f->s, old_tag);
	assert_int_equal(w.items[10].sent, 0);
	xm_sender_tx_done(&f->s, w.tag[w.ntx - 1]);
	assert_int_equal(w.items[10].sent, 1);
}

static void test_transmit_failure(void **state)
{
	struct fixture *f = *state;

	xm_sender_start(&f->s, 0, 64);
	w.fail = 1;
	assert_int_equal(xm_sender_send(&f->s, &w.items[0], 0, 1, 0), -ENOBUFS);
	assert_int_equal(xm_sender_next(&f->s), 0);
	assert_int_equal(xm_sender_deadline(&f->s), 0);
	send_n(&f->s, 0, 1, 0);
	/* A retransmission that finds no room is not counted; the RTO tries again. */
	w.fail = 1;
	xm_sender_tick(&f->s, 2 * MS);
	assert_int_equal(f->c.tx_retrans_rto, 0);
	xm_sender_tick(&f->s, 6 * MS);
	assert_int_equal(f->c.tx_retrans_rto, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_loss_rack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reorder_is_no_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sack_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_and_stale_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rto_backoff_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtt_sets_rto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_ack_by_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_forgets_and_old_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_failure, setup, teardown),
	};

	return xm_test_exit(cmocka_run_group_tests_name("sender", tests, NULL, NULL));
}
