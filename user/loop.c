// SPDX-License-Identifier: GPL-2.0
/* The daemon's event loop: one io_uring per daemon; fds are watched with multishot polls. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "log.h"
#include "loop.h"

/* The fd rides in the upper half of user_data so a finished multishot poll can be re-armed. */
#define TAG_BITS 32

int xm_loop_init(struct xm_loop *l)
{
	struct io_uring_params p;
	int err;

	memset(l, 0, sizeof(*l));
	memset(&p, 0, sizeof(p));
	/* One thread submits; completions run when we wait, not in interrupts (no SQPOLL on 2
	 * cores). */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	err = io_uring_queue_init_params(256, &l->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(256, &l->ring, &p);
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

int xm_loop_watch(struct xm_loop *l, int fd, __u64 tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, (__u64)fd << TAG_BITS | (tag & 0xffffffffu));
	return 0;
}

int xm_loop_run_once(struct xm_loop *l, int timeout_ms, xm_loop_fn fn, void *ctx)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int err;

	err = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	if (err < 0 && err != -ETIME && err != -EINTR)
		return err;
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		__u64 data = io_uring_cqe_get_data64(cqe);
		int fd = (int)(data >> TAG_BITS);
		__u64 tag = data & 0xffffffffu;

		fn(ctx, tag, cqe->res);
		if (!(cqe->flags & IORING_CQE_F_MORE) && cqe->res >= 0) {
			err = xm_loop_watch(l, fd, tag);
			if (err)
				pr_warn("event loop: cannot re-arm poll on fd %d: %s", fd,
					strerror(-err));
		}
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	return 0;
}
