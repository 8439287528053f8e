// SPDX-License-Identifier: GPL-2.0
/* Description: the event loop (util/loop.c) on a real io_uring: completions reach their xm_io,
 * multishot and oneshot watches fire as often as they should, an armed poll takes new events, an
 * unwatched watch is released exactly once and never calls its handler again, and busy polling
 * ends on the work it waits for, without a syscall, or after its time. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <cmocka.h>

#include "xm_test.h"

#include "util/clock.h"
#include "util/list.h"
#include "util/loop.h"

#define MS 1000000ull

struct fixture {
	struct xm_loop loop;
	int efd;
	struct xm_watch w;
	unsigned int fired, released;
	int revents;	     /* of the last wakeup */
	bool consume;	     /* the handler reads the eventfd */
	bool unwatch_inside; /* the handler unwatches */
	struct xm_io io;
	int io_res;
	unsigned int io_calls;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->efd < 0) {
		free(f);
		return -1;
	}
	f->consume = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xm_loop_exit(&f->loop);
	close(f->efd);
	free(f);
	return 0;
}

static void start(struct fixture *f)
{
	int err = xm_loop_init(&f->loop);

	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
}

static void on_released(struct xm_watch *w)
{
	struct fixture *f = xm_container_of(w, struct fixture, w);

	f->released++;
}

static void on_ready(struct xm_watch *w, int revents)
{
	struct fixture *f = xm_container_of(w, struct fixture, w);
	uint64_t v;

	f->fired++;
	f->revents = revents;
	if (f->consume)
		assert_int_equal(read(f->efd, &v, sizeof(v)), sizeof(v));
	if (f->unwatch_inside)
		assert_int_equal(xm_loop_unwatch(&f->loop, w, on_released), 0);
}

static void kick(struct fixture *f)
{
	uint64_t one = 1;

	assert_int_equal(write(f->efd, &one, sizeof(one)), sizeof(one));
}

/* Runs the loop for a few short passes: whatever is ready gets delivered. */
static void spin(struct fixture *f)
{
	int i;

	for (i = 0; i < 3; i++)
		assert_true(xm_loop_run_once(&f->loop, MS) >= 0);
}

static void on_io(struct xm_io *io, int res, __u32 flags)
{
	struct fixture *f = xm_container_of(io, struct fixture, io);

	f->io_res = res;
	f->io_calls++;
}

static void test_completion_reaches_its_io(void **state)
{
	struct fixture *f = *state;
	struct io_uring_sqe *sqe;

	start(f);
	f->io.fn = on_io;
	sqe = xm_loop_sqe(&f->loop, &f->io);
	assert_non_null(sqe);
	io_uring_prep_nop(sqe);
	assert_int_equal(f->loop.inflight, 1);
	assert_int_equal(xm_loop_run_once(&f->loop, 100 * MS), 1);
	assert_int_equal(f->io_calls, 1);
	assert_int_equal(f->io_res, 0);
	assert_int_equal(f->loop.inflight, 0);
	/* Nothing pending: the pass ends at the timeout with nothing dispatched. */
	assert_int_equal(xm_loop_run_once(&f->loop, MS), 0);
}

static void test_multishot_fires_each_time(void **state)
{
	struct fixture *f = *state;

	start(f);
	assert_int_equal(xm_loop_watch(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	spin(f);
	assert_int_equal(f->fired, 0);
	kick(f);
	spin(f);
	assert_int_equal(f->fired, 1);
	kick(f);
	spin(f);
	assert_int_equal(f->fired, 2);
	assert_int_equal(f->loop.inflight, 1); /* one poll, still armed */
}

static void test_oneshot_rearms_after_the_handler(void **state)
{
	struct fixture *f = *state;

	start(f);
	assert_int_equal(xm_loop_watch_oneshot(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	kick(f);
	spin(f);
	assert_int_equal(f->fired, 1);
	/* Consumed: no more wakeups until something new arrives. */
	spin(f);
	assert_int_equal(f->fired, 1);
	/* Not consumed: the poll armed again after the handler fires again. */
	f->consume = false;
	kick(f);
	assert_true(xm_loop_run_once(&f->loop, 100 * MS) >= 1);
	assert_true(xm_loop_run_once(&f->loop, 100 * MS) >= 1);
	assert_true(f->fired >= 3);
	assert_int_equal(f->loop.inflight, 1);
}

/* An armed oneshot poll waits for more once updated: an eventfd is always writable, so POLLOUT
 * fires at once (an events reader whose output waits for room, daemon/evreaders.c). */
static void test_update_changes_an_armed_poll(void **state)
{
	struct fixture *f = *state;

	start(f);
	f->consume = false;
	assert_int_equal(xm_loop_watch_oneshot(&f->loop, &f->w, f->efd, POLLIN, on_ready), 0);
	spin(f);
	assert_int_equal(f->fired, 0);
	assert_int_equal(xm_loop_watch_update(&f->loop, &f->w, POLLIN | POLLOUT), 0);
	spin(f);
	assert_true(f->fired >= 1);
	assert_true(f->revents & POLLOUT);
	assert_false(f->revents & POLLIN);
	/* Back to POLLIN from the handler's side: quiet again. */
	f->w.events = POLLIN;
	spin(f);
	f->fired = 0;
	spin(f);
	assert_int_equal(f->fired, 0);
	assert_int_equal(f->loop.inflight, 1);
}

static void test_unwatch_releases_once(void **state)
{
	struct fixture *f = *state;

	start(f);
	assert_int_equal(xm_loop_watch(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	spin(f);
	assert_int_equal(xm_loop_unwatch(&f->loop, &f->w, on_released), 0);
	/* The fd may be closed at once; data arriving before the cancel lands calls nobody. */
	kick(f);
	spin(f);
	assert_int_equal(f->released, 1);
	assert_int_equal(f->fired, 0);
	assert_int_equal(f->loop.inflight, 0);
	kick(f);
	spin(f);
	assert_int_equal(f->released, 1);
	assert_int_equal(f->fired, 0);
}

static void test_unwatch_inside_the_handler(void **state)
{
	struct fixture *f = *state;

	start(f);
	f->unwatch_inside = true;
	f->consume = false; /* still readable: a live poll would fire again */
	assert_int_equal(xm_loop_watch_oneshot(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	kick(f);
	spin(f);
	spin(f);
	assert_int_equal(f->fired, 1);
	assert_int_equal(f->released, 1);
	assert_int_equal(f->loop.inflight, 0);
}

static void test_unwatch_inside_a_multishot_handler(void **state)
{
	struct fixture *f = *state;

	start(f);
	f->unwatch_inside = true;
	f->consume = false;
	assert_int_equal(xm_loop_watch(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	kick(f);
	spin(f);
	kick(f);
	spin(f);
	assert_int_equal(f->fired, 1);
	assert_int_equal(f->released, 1);
	assert_int_equal(f->loop.inflight, 0);
}

/* The poll of a watched fd completes in the timer's interrupt, as an AF_XDP socket's does in the
 * peer's softirq: the completion is work deferred to this task, which only a syscall runs.  The
 * spin must see that it is there (IORING_SQ_TASKRUN) long before its time is up. */
static void test_spin_sees_work_deferred_to_it(void **state)
{
	struct itimerspec in_2ms = {.it_value = {.tv_nsec = 2 * MS}};
	struct fixture *f = *state;
	__u64 t0, took;

	start(f);
	close(f->efd);
	f->efd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	assert_true(f->efd >= 0);
	assert_int_equal(xm_loop_watch_oneshot(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	assert_int_equal(xm_loop_run_once(&f->loop, 0), 0); /* the poll is armed */
	assert_int_equal(timerfd_settime(f->efd, 0, &in_2ms, NULL), 0);
	t0 = xm_now_ns();
	assert_true(xm_loop_spin(&f->loop, 2000 * MS, NULL, NULL));
	took = xm_now_ns() - t0;
	assert_true(took >= MS);
	if (took >= 1000 * MS)
		print_message("the spin ran %llu ms for a 2 ms timer\n",
			      (unsigned long long)(took / MS));
	assert_true(took < 1000 * MS);
	assert_int_equal(f->loop.spin_hits, 1);
	/* Found, not run: the loop runs it without sleeping. */
	assert_int_equal(f->fired, 0);
	assert_int_equal(xm_loop_run_once(&f->loop, 0), 1);
	assert_int_equal(f->fired, 1);
}

static void test_spin_gives_up_after_its_time(void **state)
{
	struct fixture *f = *state;
	__u64 t0;

	start(f);
	assert_int_equal(xm_loop_watch(&f->loop, &f->w, f->efd, 0, on_ready), 0);
	assert_int_equal(xm_loop_run_once(&f->loop, 0), 0);
	t0 = xm_now_ns();
	assert_false(xm_loop_spin(&f->loop, 2 * MS, NULL, NULL));
	assert_true(xm_now_ns() - t0 >= 2 * MS);
	assert_int_equal(f->loop.spin_misses, 1);
	assert_int_equal(f->loop.spin_hits, 0);
}

/* What the turn queued is submitted before the spin, or the spin would wait for work that has
 * not started. */
static void test_spin_submits_what_is_queued(void **state)
{
	struct fixture *f = *state;
	struct io_uring_sqe *sqe;

	start(f);
	f->io.fn = on_io;
	sqe = xm_loop_sqe(&f->loop, &f->io);
	assert_non_null(sqe);
	io_uring_prep_nop(sqe);
	assert_true(xm_loop_spin(&f->loop, 1000 * MS, NULL, NULL));
	assert_int_equal(f->io_calls, 0);
	assert_int_equal(xm_loop_run_once(&f->loop, 0), 1);
	assert_int_equal(f->io_calls, 1);
}

static bool always_ready(void *ctx)
{
	unsigned int *asked = ctx;

	(*asked)++;
	return true;
}

/* The caller's own test (an AF_XDP RX ring that is not empty) ends the spin as well. */
static void test_spin_asks_the_caller(void **state)
{
	struct fixture *f = *state;
	unsigned int asked = 0;

	start(f);
	assert_true(xm_loop_spin(&f->loop, 1000 * MS, always_ready, &asked));
	assert_int_equal(asked, 1);
	assert_int_equal(f->loop.spin_hits, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_completion_reaches_its_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multishot_fires_each_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oneshot_rearms_after_the_handler, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_update_changes_an_armed_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwatch_releases_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwatch_inside_the_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwatch_inside_a_multishot_handler, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spin_sees_work_deferred_to_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spin_gives_up_after_its_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spin_submits_what_is_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spin_asks_the_caller, setup, teardown),
	};

	return xm_test_exit(cmocka_run_group_tests_name("loop", tests, NULL, NULL));
}
