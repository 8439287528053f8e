/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The receiving side of the numbered frames (docs/protocol.md §5.6): a window of per-seq states
 * from the cumulative ack on, duplicates told from new frames, the cumulative ack moved over
 * durable frames and barriers (FLUSH, SETGEN) in order, and the acks to send: durable, or
 * received.  Pure: the caller writes the data and says when a frame is durable.
 */
#ifndef XM_RECEIVER_H
#define XM_RECEIVER_H

#include <stdbool.h>
#include <linux/types.h>

#include "repl/counters.h"

enum xm_rslot {
	XM_RS_EMPTY,
	XM_RS_WRITING, /* accepted, not durable yet */
	XM_RS_DURABLE,
	XM_RS_BARRIER, /* a FLUSH or SETGEN: passes once everything before it is durable */
};

/* What a numbered frame is to the receiver. */
enum xm_rx_verdict {
	XM_RX_NEW,	    /* take it: xm_receiver_take() */
	XM_RX_DUP_DONE,	    /* durable already, in the window past the cumulative ack */
	XM_RX_DUP_PASSED,   /* before the cumulative ack: durable or a passed barrier; answer
			     * a barrier again */
	XM_RX_DUP_INFLIGHT, /* its write is under way: ignore */
	XM_RX_BEYOND,	    /* at or past the window's right edge: dropped */
};

struct xm_receiver {
	struct xm_counters *ctr;
	__u32 window; /* a power of two */
	__u64 cumack; /* every frame before it is durable (or a passed barrier) */
	__u64 *seq;   /* per index: the seq held there */
	__u8 *state;  /* per index: enum xm_rslot */
};

/* Returns 0 or -errno. */
int xm_receiver_init(struct xm_receiver *r, __u32 window, struct xm_counters *ctr);
void xm_receiver_free(struct xm_receiver *r);
/* A session starts: the first frame expected is `first`; every slot is empty. */
void xm_receiver_start(struct xm_receiver *r, __u64 first);

/* The index of seq's slot (the caller keeps its own per-slot data under the same index). */
static inline __u32 xm_receiver_index(const struct xm_receiver *r, __u64 seq)
{
	return (__u32)(seq & (r->window - 1));
}
static inline __u64 xm_receiver_cumack(const struct xm_receiver *r)
{
	return r->cumack;
}
static inline __u64 xm_receiver_right_edge(const struct xm_receiver *r)
{
	return r->cumack + r->window;
}

/* Judges a numbered frame (counting duplicates and frames beyond the window). */
enum xm_rx_verdict xm_receiver_accept(struct xm_receiver *r, __u64 seq);
/* Takes a new frame: XM_RS_WRITING (data) or XM_RS_BARRIER. */
void xm_receiver_take(struct xm_receiver *r, __u64 seq, enum xm_rslot state);
/* The frame's write is durable. */
void xm_receiver_durable(struct xm_receiver *r, __u64 seq);
/*
 * Moves the cumulative ack over durable frames and barriers in order.  A barrier at the
 * cumulative ack is handed to pass(), which returns 0 when it has done what the barrier asks
 * (answered the FLUSH, adopted the generation), nonzero to stop there.  Returns how many frames
 * the cumulative ack moved.
 */
__u64 xm_receiver_advance(struct xm_receiver *r, int (*pass)(void *ctx, __u64 seq), void *ctx);
/* The ack to send: durable, or received (accepted, durable or not): the cumulative part and a
 * SACK of the 64 frames after cum + 1. */
void xm_receiver_ack(const struct xm_receiver *r, bool received, __u64 *cum, __u64 *sack);

#endif
