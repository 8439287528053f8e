/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's event loop: one io_uring per daemon for polls and disk I/O alike. */
#ifndef XM_LOOP_H
#define XM_LOOP_H

#include <stdbool.h>
#include <liburing.h>
#include <linux/types.h>

/*
 * Every submission carries a pointer to one of these as its user_data; the loop calls fn with the
 * completion.  The object must live until its last completion has been delivered.
 */
struct xm_io;
typedef void (*xm_io_fn)(struct xm_io *io, int res, __u32 cqe_flags);
struct xm_io {
	xm_io_fn fn;
};

/* A file descriptor watched for POLLIN with a multishot poll that re-arms itself. */
struct xm_watch;
typedef void (*xm_watch_fn)(struct xm_watch *w, int revents);
struct xm_watch {
	struct xm_io io;
	struct xm_loop *loop;
	int fd;
	unsigned int events;
	xm_watch_fn fn;
	/* Set by xm_loop_unwatch: called once the kernel has dropped the poll. */
	void (*released)(struct xm_watch *w);
	bool removing;
	bool oneshot; /* armed again only after the handler ran, see xm_loop_watch_oneshot */
};

struct xm_loop {
	struct io_uring ring;
	bool ready;
	__u32 inflight; /* submissions whose final completion has not arrived */
	/* Busy polling (xm_loop_spin): polls that found work, and polls that ran out of time. */
	__u64 spin_hits, spin_misses;
};

/* Returns 0 or -errno. */
int xm_loop_init(struct xm_loop *l);
void xm_loop_exit(struct xm_loop *l);

/*
 * A submission entry whose completion goes to io; submits the queue first when it is full.
 * Returns NULL only when the ring is broken.
 */
struct io_uring_sqe *xm_loop_sqe(struct xm_loop *l, struct xm_io *io);

/* Watches fd (POLLIN, or the given events) until xm_loop_unwatch.  Returns 0 or -errno. */
/* Like xm_loop_watch, but the poll is armed again only after fn returned: fn must consume
 * everything that is ready.  While fn runs nothing wakes the loop, so a socket that becomes
 * readable thousands of times a second (each NAPI flush of an AF_XDP socket) costs one wakeup
 * per batch, not one per flush. */
int xm_loop_watch_oneshot(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events,
			  xm_watch_fn fn);
int xm_loop_watch(struct xm_loop *l, struct xm_watch *w, int fd, unsigned int events,
		  xm_watch_fn fn);
/* From a oneshot watch's handler: what the poll waits for once it is armed again (POLLOUT
 * while an answer waits for the socket to take it). */
static inline void xm_watch_rearm_for(struct xm_watch *w, unsigned int events)
{
	w->events = events;
}
/* From outside its handler: what a oneshot watch's armed poll waits for, changed now (POLLOUT
 * once output waits for room).  Should the poll have fired meanwhile, its handler runs as usual
 * and the poll is armed again with these events.  Returns 0 or -EBUSY (no room in the ring). */
int xm_loop_watch_update(struct xm_loop *l, struct xm_watch *w, unsigned int events);
/* Stops watching; released(w) runs when w may be freed (the fd may be closed at once).  On error
 * (no room in the ring for the cancel) the handler is not called again either, and released(w)
 * runs when the poll next completes. */
int xm_loop_unwatch(struct xm_loop *l, struct xm_watch *w, void (*released)(struct xm_watch *w));

/* Submits, waits for at least one completion or timeout_ns, dispatches every completion.
 * Returns the number dispatched or -errno. */
int xm_loop_run_once(struct xm_loop *l, __u64 timeout_ns);

/*
 * Busy polling: submits what is queued, then polls for up to spin_ns, without a syscall, for a
 * completion, for completion work the kernel deferred to this task, or for ready(ctx) (may be
 * NULL).  Returns true as soon as one is there: xm_loop_run_once(l, 0) then finds it without
 * sleeping.  A wait that ends this way costs no wakeup (on a VM an idle exit and an IPI).
 */
bool xm_loop_spin(struct xm_loop *l, __u64 spin_ns, bool (*ready)(void *ctx), void *ctx);

#endif
