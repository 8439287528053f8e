// SPDX-License-Identifier: GPL-2.0
/* Description: group commit (store/commit.c) on a real io_uring: which writes an fdatasync
 * covers, when it goes out (batch full, delay, last write, urgent), and errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "xm_test.h"

#include "store/commit.h"
#include "util/loop.h"

#define US	    1000ull
#define BATCH	    32	       /* XM_COMMIT_BATCH */
#define DELAY_NS    (100 * US) /* XM_COMMIT_DELAY_NS */
#define NITEMS	    (2 * BATCH)
#define NOT_DURABLE 1 /* err of an item whose durable() has not run */

struct item {
	struct xm_commit_item it;
	int err;
	unsigned int calls;
	unsigned int order; /* when durable() ran, counted from 1 */
};

struct fixture {
	char path[64];
	int fd;
	struct xm_loop loop;
	struct xm_commit c;
	struct item items[NITEMS];
	unsigned int durable_calls;
};

static struct fixture *current;

static void on_durable(struct xm_commit_item *it, int err)
{
	struct item *i = (struct item *)it;

	i->err = err;
	i->calls++;
	i->order = ++current->durable_calls;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unsigned int i;

	if (!f)
		return -1;
	snprintf(f->path, sizeof(f->path), "/tmp/xm-commit-XXXXXX");
	f->fd = mkstemp(f->path);
	if (f->fd < 0) {
		free(f);
		return -1;
	}
	for (i = 0; i < NITEMS; i++) {
		f->items[i].it.durable = on_durable;
		f->items[i].err = NOT_DURABLE;
	}
	current = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	xm_loop_exit(&f->loop);
	close(f->fd);
	unlink(f->path);
	free(f);
	return 0;
}

/* A commit on the fixture's file (or fd), in the given mode, on a fresh ring. */
static void start(struct fixture *f, enum xm_durability mode, int fd)
{
	int err = xm_loop_init(&f->loop);

	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
	assert_int_equal(xm_commit_init(&f->c, &f->loop, fd), 0);
	f->c.mode = mode; /* whatever the disk behind /tmp is */
}

/* Runs the loop until nothing is in flight on it. */
static void drain(struct fixture *f)
{
	int rounds = 0;

	while (f->loop.inflight) {
		assert_true(xm_loop_run_once(&f->loop, 1000 * 1000 * 1000ull) >= 0);
		assert_true(++rounds < 100);
	}
}

/* n writes submitted with the flags the engine asks for the first of them (so n writes of a
 * group, as under load, even in group mode: §7.2 rule 1 is tested on its own below), then the
 * first k of them complete at time now. */
static void writes(struct fixture *f, unsigned int first, unsigned int n, unsigned int k,
		   bool urgent, __u64 now)
{
	int rw_flags = f->c.mode == XM_DUR_DSYNC ? RWF_DSYNC : 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		xm_commit_submitted(&f->c, &f->items[first + i].it, rw_flags);
	for (i = 0; i < k; i++)
		xm_commit_completed(&f->c, &f->items[first + i].it, 4096, urgent, now);
}

static void assert_durable(struct fixture *f, unsigned int first, unsigned int n, int err)
{
	unsigned int i;

	for (i = first; i < first + n; i++) {
		assert_int_equal(f->items[i].err, err);
		assert_int_equal(f->items[i].calls, err == NOT_DURABLE ? 0 : 1);
	}
}

static void test_dsync_is_durable_on_completion(void **state)
{
	struct fixture *f = *state;

	start(f, XM_DUR_DSYNC, f->fd);
	assert_int_equal(xm_commit_rw_flags(&f->c), RWF_DSYNC);
	writes(f, 0, 3, 3, false, 0);
	assert_durable(f, 0, 3, 0);
	assert_int_equal(f->loop.inflight, 0); /* no fdatasync at all */
	assert_true(xm_commit_idle(&f->c));
}

static void test_group_waits_for_more_writes(void **state)
{
	struct fixture *f = *state;
	__u64 t0 = 1000 * US;

	start(f, XM_DUR_GROUP, f->fd);
	/* 4 writes in flight, 2 completed: the batch stays open for the other 2. */
	writes(f, 0, 4, 2, false, t0);
	assert_int_equal(f->loop.inflight, 0);
	assert_int_equal(xm_commit_deadline(&f->c), t0 + DELAY_NS);
	xm_commit_poll(&f->c, t0 + DELAY_NS - 1);
	assert_int_equal(f->loop.inflight, 0);
	/* The other two complete: the last write closes the batch at once. */
	xm_commit_completed(&f->c, &f->items[2].it, 4096, false, t0 + 10 * US);
	assert_int_equal(f->loop.inflight, 0);
	xm_commit_completed(&f->c, &f->items[3].it, 4096, false, t0 + 20 * US);
	assert_int_equal(f->loop.inflight, 1);
	assert_int_equal(xm_commit_deadline(&f->c), UINT64_MAX);
	assert_durable(f, 0, 4, NOT_DURABLE);
	drain(f);
	assert_durable(f, 0, 4, 0);
	assert_int_equal(f->c.commits, 1);
	assert_int_equal(f->c.commit_writes, 4);
	assert_true(xm_commit_idle(&f->c));
}

/* §7.2 rule 1: in group mode a write submitted while the engine is idle carries RWF_DSYNC and is
 * durable at its CQE, with no fdatasync; the next one, submitted while it is in flight, joins a
 * group as before. */
static void test_group_write_alone_is_solo(void **state)
{
	struct fixture *f = *state;
	int rw_flags;

	start(f, XM_DUR_GROUP, f->fd);
	rw_flags = xm_commit_rw_flags(&f->c);
	assert_int_equal(rw_flags, RWF_DSYNC);
	xm_commit_submitted(&f->c, &f->items[0].it, rw_flags);
	assert_false(xm_commit_idle(&f->c));
	/* Not alone any more: the next write is part of a group. */
	rw_flags = xm_commit_rw_flags(&f->c);
	assert_int_equal(rw_flags, 0);
	xm_commit_submitted(&f->c, &f->items[1].it, rw_flags);
	xm_commit_completed(&f->c, &f->items[0].it, 4096, false, 0);
	assert_durable(f, 0, 1, 0);
	assert_int_equal(f->loop.inflight, 0); /* the solo write needed no fdatasync */
	assert_durable(f, 1, 1, NOT_DURABLE);
	xm_commit_completed(&f->c, &f->items[1].it, 4096, false, 0);
	assert_int_equal(f->loop.inflight, 1); /* the group write's own fdatasync */
	drain(f);
	assert_durable(f, 1, 1, 0);
	assert_int_equal(f->c.solo_writes, 1);
	assert_int_equal(f->c.commit_writes, 1);
	assert_true(xm_commit_idle(&f->c));
	/* Idle again: the next write goes alone. */
	assert_int_equal(xm_commit_rw_flags(&f->c), RWF_DSYNC);
}

/* A solo write in flight does not hold a batch open: it never joins one, so a group write that
 * completes while it is in flight is committed at once (trigger "no write of the group in
 * flight"), not after the delay. */
static void test_solo_in_flight_does_not_hold_the_batch(void **state)
{
	struct fixture *f = *state;

	start(f, XM_DUR_GROUP, f->fd);
	xm_commit_submitted(&f->c, &f->items[0].it, xm_commit_rw_flags(&f->c));
	xm_commit_submitted(&f->c, &f->items[1].it, xm_commit_rw_flags(&f->c));
	xm_commit_completed(&f->c, &f->items[1].it, 4096, false, 0);
	assert_int_equal(f->loop.inflight, 1);
	drain(f);
	assert_durable(f, 1, 1, 0);
	assert_durable(f, 0, 1, NOT_DURABLE);
	xm_commit_completed(&f->c, &f->items[0].it, 4096, false, 0);
	assert_durable(f, 0, 1, 0);
	assert_true(xm_commit_idle(&f->c));
}

static void test_group_delay_closes_the_batch(void **state)
{
	struct fixture *f = *state;
	__u64 t0 = 1000 * US;

	start(f, XM_DUR_GROUP, f->fd);
	writes(f, 0, 2, 1, false, t0);
	xm_commit_poll(&f->c, t0 + DELAY_NS);
	assert_int_equal(f->loop.inflight, 1);
	drain(f);
	assert_durable(f, 0, 1, 0);
	assert_false(xm_commit_idle(&f->c)); /* one write still in flight */
}

static void test_full_batch_and_urgent(void **state)
{
	struct fixture *f = *state;

	start(f, XM_DUR_GROUP, f->fd);
	/* BATCH completed writes with more in flight: no waiting for the delay. */
	writes(f, 0, BATCH + 1, BATCH - 1, false, 0);
	assert_int_equal(f->loop.inflight, 0);
	xm_commit_completed(&f->c, &f->items[BATCH - 1].it, 4096, false, 0);
	assert_int_equal(f->loop.inflight, 1);
	drain(f);
	assert_durable(f, 0, BATCH, 0);
	/* A FUA write or a flush does not wait either. */
	writes(f, BATCH, 1, 1, true, 0);
	assert_int_equal(f->loop.inflight, 1);
	drain(f);
	assert_durable(f, BATCH, 1, 0);
	assert_int_equal(f->c.commits, 2);
	assert_int_equal(f->c.commit_writes, BATCH + 1);
}

/* A write whose CQE came after the fdatasync went out is not covered by it. */
static void test_write_during_fsync_waits_for_the_next(void **state)
{
	struct fixture *f = *state;

	start(f, XM_DUR_GROUP, f->fd);
	writes(f, 0, 2, 1, true, 0);
	assert_true(f->c.fsync_inflight);
	xm_commit_completed(&f->c, &f->items[1].it, 4096, false, 5 * US);
	assert_int_equal(f->loop.inflight, 1); /* not a second fdatasync while one runs */
	drain(f);
	assert_durable(f, 0, 1, 0);
	assert_durable(f, 1, 1, NOT_DURABLE);
	assert_int_equal(xm_commit_deadline(&f->c), 5 * US + DELAY_NS);
	xm_commit_poll(&f->c, 6 * US); /* nothing else in flight: commit now */
	drain(f);
	assert_durable(f, 1, 1, 0);
	assert_int_equal(f->c.commits, 2);
	assert_true(f->items[0].order < f->items[1].order);
}

static void test_failed_write_and_failed_fsync(void **state)
{
	struct fixture *f = *state;
	int pipefd[2];

	assert_int_equal(pipe(pipefd), 0);
	/* fdatasync on a pipe fails (EINVAL): every write it covers gets the error, sticky. */
	start(f, XM_DUR_GROUP, pipefd[1]);
	writes(f, 0, 3, 0, false, 0);
	/* A write that failed is reported at once, not held for the batch. */
	xm_commit_completed(&f->c, &f->items[0].it, -EIO, false, 0);
	assert_durable(f, 0, 1, -EIO);
	xm_commit_completed(&f->c, &f->items[1].it, 4096, false, 0);
	xm_commit_completed(&f->c, &f->items[2].it, 4096, false, 0);
	assert_int_equal(f->loop.inflight, 1);
	drain(f);
	assert_durable(f, 1, 2, -EINVAL);
	assert_int_equal(f->c.failed, -EINVAL);
	assert_true(xm_commit_idle(&f->c));
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dsync_is_durable_on_completion, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_group_waits_for_more_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_write_alone_is_solo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_solo_in_flight_does_not_hold_the_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_group_delay_closes_the_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_batch_and_urgent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_during_fsync_waits_for_the_next, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_and_failed_fsync, setup,
						teardown),
	};

	return xm_test_exit(cmocka_run_group_tests_name("commit", tests, NULL, NULL));
}
