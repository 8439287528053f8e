// SPDX-License-Identifier: GPL-2.0
/* The daemon's event loop: one io_uring per daemon for polls and disk I/O alike. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

#define XM_LOOP_ENTRIES 1024

int xm_loop_init(struct xm_loop *l)
{
	struct io_uring_params p;
	int err;

	memset(l, 0, sizeof(*l));
	memset(&p, 0, sizeof(p));
	/* One thread submits; completions run when we wait, not in interrupts.  No SQPOLL: its
	 * thread spins on a core of its own and excludes DEFER_TASKRUN (docs/performance.md,
	 * "Fewer wakeups").  TASKRUN_FLAG shows deferred completion work in the SQ ring's flags,
	 * which xm_loop_spin reads.  CQ larger than the SQ: polls, writes and fsyncs complete in
	 * bursts. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * XM_LOOP_ENTRIES;
	err = io_uring_queue_init_params(XM_LOOP_ENTRIES, &l->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(XM_LOOP_ENTRIES, &l->ring, &p);
	}
	if (!err)
		l->ready = true;
	return err;
}

void xm_loop_exit(struct xm_loop *l)
{
	if (l->ready)
		io_uring_queue_exit(&l->ring);
	l->ready = false;
}

struct io_uring_sqe *xm_loop_sqe(struct xm_loop *l, struct xm_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, io);
	l->inflight++;
	return sqe;
}

static int arm_watch(struct xm_watch *w)
{
	struct io_uring_sqe *sqe = xm_loop_sqe(w->loop, &w->io);

	if (!sqe)
		return -EBUSY;
	if (w->oneshot)
		io_uring_prep_poll_add(sqe, w->fd, w->events);
	else
		io_uring_prep_poll_multishot(sqe, w->fd, w->events);
	io_uring_sqe_set_data(sqe, &w->io);
	return 0;
}

static void on_watch_cqe(struct xm_io *io, int res, __u32 flags)
{
	struct xm_watch *w = (struct xm_watch *)io;
	bool more = flags & IORING_CQE_F_MORE;

	if (w->removing) {
		if (!more && w->released)
			w->released(w);
		return;
	}
	if (res >= 0 || res == -ECANCELED)
		w->fn(w, res >= 0 ? res : 0);
	else
		pr_warn("event loop: poll on fd %d failed: %s", w->fd, strerror(-res));
	/* The handler may have unwatched on this, the poll's last completion. */
	if (!more && w->removing) {
		if (w->released)
			w->released(w);
		return;
	}
	/* A oneshot poll ends with every completion; the kernel ends a multishot poll now and then
	 * (e.g. on overflow): arm it again. */
	if (!more && arm_watch(w))
		pr_warn("event loop: cannot re-arm poll on fd %d", w->fd);
}

static int watch(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events, xm_watch_fn fn,
		 bool oneshot)
{
	memset(w, 0, sizeof(*w));
	w->io.fn = on_watch_cqe;
	w->loop = l;
	w->fd = fd;
	w->events = events ? events : POLLIN;
	w->fn = fn;
	w->oneshot = oneshot;
	return arm_watch(w);
}

int xm_loop_watch(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events,
		  xm_watch_fn fn)
{
	return watch(l, w, fd, events, fn, false);
}

int xm_loop_watch_oneshot(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events,
			  xm_watch_fn fn)
{
	return watch(l, w, fd, events, fn, true);
}

static void on_remove_cqe(struct xm_io *io, int res, __u32 flags)
{
	/* The poll's own final completion (-ECANCELED) is what releases the watch; an update's
	 * result matters no more than a cancel's. */
}

int xm_loop_watch_update(struct xm_loop *l, struct xm_watch *w, unsigned int events)
{
	static struct xm_io update_io = {.fn = on_remove_cqe};
	struct io_uring_sqe *sqe;

	w->events = events;
	sqe = xm_loop_sqe(l, &update_io);
	if (!sqe)
		return -EBUSY;
	/* -ENOENT when the poll completed meanwhile: its handler re-arms it with w->events. */
	io_uring_prep_poll_update(sqe, (__u64)(uintptr_t)&w->io, 0, events,
				  IORING_POLL_UPDATE_EVENTS);
	io_uring_sqe_set_data(sqe, &update_io);
	return 0;
}

int xm_loop_unwatch(struct xm_loop *l, struct xm_watch *w, void (*released)(struct xm_watch *w))
{
	static struct xm_io remove_io = {.fn = on_remove_cqe};
	struct io_uring_sqe *sqe;

	w->removing = true;
	w->released = released;
	sqe = xm_loop_sqe(l, &remove_io);
	if (!sqe)
		return -EBUSY;
	/* ASYNC_CANCEL, not POLL_REMOVE: the latter fails with -EALREADY while a wakeup is queued
	 * and leaves the poll running. */
	io_uring_prep_cancel(sqe, &w->io, 0);
	io_uring_sqe_set_data(sqe, &remove_io);
	return 0;
}

int xm_loop_run_once(struct xm_loop *l, __u64 timeout_ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(timeout_ns / 1000000000ull),
		.tv_nsec = (long long)(timeout_ns % 1000000000ull),
	};
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int err;

	err = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	if (err < 0 && err != -ETIME && err != -EINTR)
		return err;
	/* Handlers may submit more work, which may complete in a later pass, never this one. */
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		struct xm_io *io = io_uring_cqe_get_data(cqe);

		if (!(cqe->flags & IORING_CQE_F_MORE))
			l->inflight--;
		if (io)
			io->fn(io, cqe->res, cqe->flags);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	return (int)n;
}

static bool loop_has_work(struct xm_loop *l)
{
	return io_uring_cq_ready(&l->ring) ||
	       (IO_URING_READ_ONCE(*l->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

bool xm_loop_spin(struct xm_loop *l, __u64 spin_ns, bool (*ready)(void *ctx), void *ctx)
{
	__u64 end = xm_now_ns() + spin_ns;

	/* What this turn queued (a write, a poll) starts now, not after the spin.  An error is
	 * left to xm_loop_run_once to report. */
	if (io_uring_sq_ready(&l->ring) && io_uring_submit(&l->ring) < 0)
		return true;
	do {
		if (loop_has_work(l) || (ready && ready(ctx))) {
			l->spin_hits++;
			return true;
		}
		cpu_relax();
	} while (xm_now_ns() < end);
	l->spin_misses++;
	return false;
}
