/* SPDX-License-Identifier: GPL-2.0 */
/* The readers of the events stream: their sockets, each with a bounded queue of lines, written
 * without ever blocking; a reader that falls behind is told and closed (docs/events.md). */
#ifndef XM_EVREADERS_H
#define XM_EVREADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "util/loop.h"

#define XM_EV_READERS_MAX 16u
#define XM_EV_BUFFER	  (64u << 10) /* a reader's bound unless it asks for another */
#define XM_EV_BUFFER_MIN  (4u << 10)
#define XM_EV_BUFFER_MAX  (1u << 20)
#define XM_EV_LINE_MAX	  4096			 /* longer lines are not sent (none is near it) */
#define XM_EV_DEADLINE_NS (2ull * 1000000000ull) /* to take its last line, once it fell behind */
#define XM_EV_TIME_LEN	  48
/* Bytes a reader may send after its request; one that sends more is closed. */
#define XM_EV_TALK_MAX 4096

struct xm_ev_reader;

struct xm_ev_readers {
	struct xm_loop *loop;
	const char *dev; /* for log lines */
	struct xm_ev_reader *list;
	__u32 open;
	__u64 total;   /* readers ever taken */
	__u64 dropped; /* closed for falling behind */
	__u64 refused; /* one too many */
};

/* Now, as every line says it: RFC 3339, UTC, microseconds ("2025-03-01T10:00:12.402211Z"). */
void xm_ev_time(char out[XM_EV_TIME_LEN]);

void xm_ev_readers_init(struct xm_ev_readers *rs, struct xm_loop *loop, const char *dev);
static inline bool xm_ev_readers_full(const struct xm_ev_readers *rs)
{
	return rs->open >= XM_EV_READERS_MAX;
}
/* Takes fd (a connected, nonblocking stream socket) as a reader with a queue of bound bytes,
 * first is its first line (with its newline).  Returns 0, or -errno (the caller still owns fd). */
int xm_ev_readers_add(struct xm_ev_readers *rs, int fd, size_t bound, const char *first,
		      size_t len);
/* One line (with its newline) to every reader. */
void xm_ev_readers_send(struct xm_ev_readers *rs, const char *line, size_t len);
/* Closes the readers that fell behind and did not take their last line in time. */
void xm_ev_readers_tick(struct xm_ev_readers *rs, __u64 now);
/* The daemon leaves: last (may be NULL) to each reader if its socket takes it now, then every
 * reader closed and freed at once (the loop will not run again). */
void xm_ev_readers_exit(struct xm_ev_readers *rs, const char *last, size_t len);

#endif
