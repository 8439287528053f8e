// SPDX-License-Identifier: GPL-2.0
/* util/loop.c's functions without io_uring, for the fuzz targets: see fake_loop.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_loop.h"

#define MAX_SUBS    256
#define MAX_WATCHES 16
/* Far more rounds than any input needs: more means the code under test spins. */
#define MAX_ROUNDS 100000

struct fake_sub {
	struct io_uring_sqe sqe;
	struct xm_io *io;
};

struct fake_watch {
	struct xm_watch *w;
	bool fire;     /* new bytes may have arrived: run it if its fd is readable */
	bool released; /* unwatched: call w->released at the next settle */
};

/* Submissions in the order they were made; a poll that is not ready goes to the back. */
static struct fake_sub subs[MAX_SUBS];
static unsigned int nsubs;
static struct fake_watch watches[MAX_WATCHES];
static unsigned int nwatches;
static unsigned int fail_at, counted;
static bool faults_armed;

static void __attribute__((noreturn)) fake_loop_fail(const char *what)
{
	fprintf(stderr, "fake loop: %s\n", what);
	abort();
}

void fake_loop_reset(unsigned int fail_nth)
{
	nsubs = 0;
	nwatches = 0;
	fail_at = fail_nth;
	counted = 0;
	faults_armed = false;
}

void fake_loop_arm_faults(void)
{
	faults_armed = true;
}

/* True when this submission or watch is the one that fails, as on a full ring. */
static bool fault_now(void)
{
	return faults_armed && fail_at && ++counted == fail_at;
}

unsigned int fake_loop_pending(void)
{
	return nsubs + nwatches;
}

struct io_uring_sqe *xm_loop_sqe(struct xm_loop *l, struct xm_io *io)
{
	struct fake_sub *s;

	if (fault_now())
		return NULL;
	if (nsubs == MAX_SUBS)
		fake_loop_fail("too many submissions in flight");
	s = &subs[nsubs++];
	memset(s, 0, sizeof(*s));
	s->io = io;
	io_uring_sqe_set_data(&s->sqe, io);
	return &s->sqe;
}

int xm_loop_watch(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events,
		  xm_watch_fn fn)
{
	if (fault_now())
		return -EBUSY;
	if (nwatches == MAX_WATCHES)
		fake_loop_fail("too many watches");
	memset(w, 0, sizeof(*w));
	w->loop = l;
	w->fd = fd;
	w->events = events ? events : POLLIN;
	w->fn = fn;
	watches[nwatches].w = w;
	watches[nwatches].fire = false;
	watches[nwatches].released = false;
	nwatches++;
	return 0;
}

int xm_loop_unwatch(struct xm_loop *l, struct xm_watch *w, void (*released)(struct xm_watch *w))
{
	unsigned int i;

	for (i = 0; i < nwatches; i++) {
		if (watches[i].w != w)
			continue;
		if (w->removing)
			fake_loop_fail("a watch unwatched twice");
		w->removing = true;
		w->released = released;
		watches[i].released = true;
		return 0;
	}
	fake_loop_fail("unwatch of a watch that is not watched");
}

void fake_loop_fire(void)
{
	unsigned int i;

	for (i = 0; i < nwatches; i++)
		watches[i].fire = true;
}

static struct fake_sub pop_sub(unsigned int i)
{
	struct fake_sub s = subs[i];

	memmove(&subs[i], &subs[i + 1], (nsubs - i - 1) * sizeof(subs[0]));
	nsubs--;
	return s;
}

static short poll_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};

	return poll(&p, 1, 0) > 0 ? p.revents : 0;
}

/* Runs the submissions queued when the round started; returns true if any completed. */
static bool run_subs(void)
{
	unsigned int n = nsubs;
	bool moved = false;

	while (n--) {
		struct fake_sub s = pop_sub(0), target;
		unsigned int i;
		short revents;

		switch (s.sqe.opcode) {
		case IORING_OP_NOP:
			s.io->fn(s.io, 0, 0);
			break;
		case IORING_OP_POLL_ADD:
			revents = poll_fd(s.sqe.fd, (short)s.sqe.poll32_events);
			if (!revents) {
				subs[nsubs++] = s;
				continue;
			}
			s.io->fn(s.io, revents, 0);
			break;
		case IORING_OP_ASYNC_CANCEL:
			for (i = 0; i < nsubs; i++)
				if ((__u64)(uintptr_t)subs[i].io == s.sqe.addr)
					break;
			if (i == nsubs) {
				s.io->fn(s.io, -ENOENT, 0);
				break;
			}
			target = pop_sub(i);
			if (i < n)
				n--; /* it was due in this round */
			target.io->fn(target.io, -ECANCELED, 0);
			s.io->fn(s.io, 0, 0);
			break;
		default:
			fake_loop_fail("a submission the fake loop does not know");
		}
		moved = true;
	}
	return moved;
}

/* Releases unwatched watches and runs the ones that fired; returns true if any ran. */
static bool run_watches(void)
{
	bool moved = false;
	unsigned int i;

	for (i = 0; i < nwatches;) {
		struct xm_watch *w = watches[i].w;

		if (!watches[i].released) {
			i++;
			continue;
		}
		watches[i] = watches[--nwatches];
		if (w->released)
			w->released(w);
		moved = true;
		i = 0; /* the handler may have changed the table */
	}
	/* A handler may add watches (accept): those wait for the next fire. */
	for (i = 0; i < nwatches; i++) {
		struct xm_watch *w = watches[i].w;
		short revents;

		if (!watches[i].fire || w->removing)
			continue;
		watches[i].fire = false;
		revents = poll_fd(w->fd, (short)w->events);
		if (!revents)
			continue;
		w->fn(w, revents);
		moved = true;
	}
	return moved;
}

bool fake_loop_settle(void)
{
	unsigned int rounds = 0;
	bool any = false;

	for (;;) {
		bool moved = run_subs();

		moved |= run_watches();
		if (!moved)
			return any;
		any = true;
		if (++rounds == MAX_ROUNDS)
			fake_loop_fail("livelock: completions keep coming");
	}
}
