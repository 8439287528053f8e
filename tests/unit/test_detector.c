// SPDX-License-Identifier: GPL-2.0
/* Description: the failure detector (repl/detector.c) driven through a live peer, a dead one, our
 * own late loop, a peer whose daemon stops, and a jittery link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xm_test.h"

#include "repl/detector.h"

#define US 1000ull
#define MS (1000 * US)
#define T0 (1000 * MS)

static const struct xm_detector_cfg cfg = {
	.interval_ns = 10 * MS, .timeout_ns = 50 * MS, .ko_ns = 2000 * MS};

/* The peer's kernel answers each probe rtt later; its daemon sends a frame every interval. */
struct sim {
	struct xm_detector d;
	__u64 now;
	bool link_up, daemon_up;
	__u64 rtt;
	__u64 peer_rx, daemon_rx, echo, ack;
};

static void sim_start(struct sim *s)
{
	memset(s, 0, sizeof(*s));
	s->now = T0;
	s->link_up = s->daemon_up = true;
	s->rtt = 30 * US;
	xm_detector_start(&s->d, &cfg, s->now);
}

/* One pass of our loop at s->now, as xm_env_liveness does it. */
static enum xm_verdict pass(struct sim *s)
{
	enum xm_verdict v;

	xm_detector_heard(&s->d, s->peer_rx, s->daemon_rx);
	xm_detector_answer(&s->d, s->echo, s->ack);
	v = xm_detector_check(&s->d, s->now);
	if (v == XM_PEER_ALIVE && xm_detector_probe_due(&s->d, s->now)) {
		xm_detector_probe_sent(&s->d, s->now);
		if (s->link_up) {
			s->echo = s->now;
			s->ack = s->peer_rx = s->now + s->rtt;
		}
	}
	return v;
}

/* Runs passes every step until until; the peer's daemon frames arrive every interval. Returns
 * the first verdict that is not ALIVE (and leaves now there), or ALIVE. */
static enum xm_verdict run(struct sim *s, __u64 until, __u64 step)
{
	enum xm_verdict v;

	for (; s->now < until; s->now += step) {
		if (s->link_up && s->daemon_up && s->now % cfg.interval_ns == 0)
			s->daemon_rx = s->peer_rx = s->now;
		v = pass(s);
		if (v != XM_PEER_ALIVE)
			return v;
	}
	return XM_PEER_ALIVE;
}

static void test_live_peer(void **state)
{
	struct sim s;

	sim_start(&s);
	assert_int_equal(run(&s, T0 + 5000 * MS, MS), XM_PEER_ALIVE);
	assert_true(s.d.probes_sent >= 499);
	assert_int_equal(s.d.srtt_ns, 30 * US);
	/* A quiet link: T is the floor, 3 probe intervals. */
	assert_int_equal(xm_detector_timeout(&s.d), 30 * MS);
}

static void test_dead_peer_found_within_T(void **state)
{
	__u64 died;
	struct sim s;

	sim_start(&s);
	run(&s, T0 + 1000 * MS, MS);
	died = s.now;
	s.link_up = false;
	assert_int_equal(run(&s, died + 1000 * MS, MS), XM_PEER_NOT_ANSWERING);
	/* The first unanswered probe goes out within an interval; T = 30 ms after it. */
	assert_in_range(s.now - died, 30 * MS, 30 * MS + cfg.interval_ns);
	assert_int_equal(strcmp(xm_verdict_text(XM_PEER_NOT_ANSWERING), "peer not answering"), 0);
}

/* Our loop does not run for 200 ms: no probe goes out, and the time is not the peer's fault. */
static void test_our_own_delay_is_not_blamed(void **state)
{
	struct sim s;

	sim_start(&s);
	run(&s, T0 + 500 * MS, MS);
	/* We sleep; the peer's frames still arrive and are stamped by our kernel. */
	s.now += 200 * MS;
	s.peer_rx = s.daemon_rx = s.now - 2 * MS;
	assert_int_equal(pass(&s), XM_PEER_ALIVE);
	/* Even with nothing from the peer during our sleep (its daemon slept too): its kernel
	 * answers our next probes, so it lives. */
	s.daemon_up = false;
	s.now += 200 * MS;
	assert_int_equal(run(&s, s.now + 500 * MS, MS), XM_PEER_ALIVE);
}

/* We were late and the peer really died meanwhile: found T after our first probe after waking,
 * not at once. */
static void test_late_loop_dead_peer(void **state)
{
	__u64 woke;
	struct sim s;

	sim_start(&s);
	run(&s, T0 + 500 * MS, MS);
	s.link_up = false;
	s.now += 300 * MS;
	woke = s.now;
	assert_int_equal(pass(&s), XM_PEER_ALIVE);
	s.now += MS;
	assert_int_equal(run(&s, woke + 1000 * MS, MS), XM_PEER_NOT_ANSWERING);
	assert_in_range(s.now - woke, 30 * MS, 31 * MS);
}

/* Probes lost one or two in a row never end a session. */
static void test_lost_probes(void **state)
{
	struct sim s;
	int i;

	sim_start(&s);
	s.daemon_up = false; /* only probes count */
	for (i = 0; i < 200; i++) {
		s.link_up = i % 3 == 2; /* two lost, one answered */
		assert_int_equal(run(&s, s.now + cfg.interval_ns, MS), XM_PEER_ALIVE);
	}
}

static void test_stopped_daemon_after_ko(void **state)
{
	__u64 stopped;
	struct sim s;

	sim_start(&s);
	run(&s, T0 + 500 * MS, MS);
	stopped = s.now;
	s.daemon_up = false; /* SIGSTOP: the kernel still answers probes */
	assert_int_equal(run(&s, stopped + 10000 * MS, MS), XM_PEER_DAEMON_SILENT);
	assert_in_range(s.now - stopped, cfg.ko_ns - cfg.interval_ns, cfg.ko_ns);
}

/* A stamp newer than the caller's clock (a frame arrived after now was read) is life, not a
 * silence of 2^64 ns. */
static void test_stamp_after_now(void **state)
{
	struct sim s;

	sim_start(&s);
	run(&s, T0 + 100 * MS, MS);
	xm_detector_heard(&s.d, s.now + 5 * US, s.now + 5 * US);
	assert_int_equal(xm_detector_check(&s.d, s.now), XM_PEER_ALIVE);
}

/* Answer times that vary raise T, up to --timeout; evidence from before the session is ignored. */
static void test_adaptive_timeout(void **state)
{
	struct sim s;
	int i;

	sim_start(&s);
	assert_int_equal(xm_detector_timeout(&s.d), cfg.timeout_ns); /* nothing known yet */
	for (i = 0; i < 64; i++) {
		s.rtt = i % 2 ? 100 * US : 10 * MS;
		run(&s, s.now + cfg.interval_ns, MS);
	}
	assert_true(xm_detector_timeout(&s.d) > 30 * MS);
	assert_true(xm_detector_timeout(&s.d) <= cfg.timeout_ns);
	for (i = 0; i < 64; i++) {
		s.rtt = i % 2 ? 10 * MS : 40 * MS;
		run(&s, s.now + cfg.interval_ns, MS);
	}
	assert_int_equal(xm_detector_timeout(&s.d), cfg.timeout_ns);
	/* A new session: old answers give no sample. */
	xm_detector_start(&s.d, &cfg, s.now);
	xm_detector_answer(&s.d, s.now - MS, s.now);
	assert_int_equal(s.d.samples, 0);
}

static void test_deadline(void **state)
{
	struct sim s;

	sim_start(&s);
	pass(&s);
	/* Next probe in an interval. */
	assert_int_equal(xm_detector_deadline(&s.d), s.now + cfg.interval_ns);
	s.link_up = false;
	s.daemon_up = false;
	run(&s, s.now + 25 * MS, MS); /* three unanswered probes at +10, +20, and one more due */
	assert_true(xm_detector_deadline(&s.d) <= T0 + 10 * MS + 30 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_peer),
		cmocka_unit_test(test_dead_peer_found_within_T),
		cmocka_unit_test(test_our_own_delay_is_not_blamed),
		cmocka_unit_test(test_late_loop_dead_peer),
		cmocka_unit_test(test_lost_probes),
		cmocka_unit_test(test_stopped_daemon_after_ko),
		cmocka_unit_test(test_stamp_after_now),
		cmocka_unit_test(test_adaptive_timeout),
		cmocka_unit_test(test_deadline),
	};

	return xm_test_exit(cmocka_run_group_tests_name("detector", tests, NULL, NULL));
}
