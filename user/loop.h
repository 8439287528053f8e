/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's event loop: one io_uring per daemon; fds are watched with multishot polls. */
#ifndef XM_LOOP_H
#define XM_LOOP_H

#include <liburing.h>
#include <linux/types.h>

struct xm_loop {
	struct io_uring ring;
	bool ready;
};

/* Called for every poll completion: tag as given to xm_loop_watch, res = revents or -errno. */
typedef void (*xm_loop_fn)(void *ctx, __u64 tag, int res);

int xm_loop_init(struct xm_loop *l);
void xm_loop_exit(struct xm_loop *l);
/* Watches fd for POLLIN until the loop ends; re-arms itself when the kernel ends a multishot poll.
 */
int xm_loop_watch(struct xm_loop *l, int fd, __u64 tag);
/* Submits, waits for at least one completion (or timeout_ms), dispatches all of them. */
int xm_loop_run_once(struct xm_loop *l, int timeout_ms, xm_loop_fn fn, void *ctx);

#endif
