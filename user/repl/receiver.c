// SPDX-License-Identifier: GPL-2.0
/* The receiver's window: duplicates, the cumulative ack, barriers in order, SACKs (§5.6). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repl/receiver.h"

int xm_receiver_init(struct xm_receiver *r, __u32 window, struct xm_counters *ctr)
{
	memset(r, 0, sizeof(*r));
	if (!window || window & (window - 1))
		return -EINVAL;
	r->seq = calloc(window, sizeof(*r->seq));
	r->state = calloc(window, sizeof(*r->state));
	if (!r->seq || !r->state) {
		xm_receiver_free(r);
		return -ENOMEM;
	}
	r->window = window;
	r->ctr = ctr;
	xm_receiver_start(r, 0);
	return 0;
}

void xm_receiver_free(struct xm_receiver *r)
{
	free(r->seq);
	free(r->state);
	r->seq = NULL;
	r->state = NULL;
}

void xm_receiver_start(struct xm_receiver *r, __u64 first)
{
	__u32 i;

	r->cumack = first;
	for (i = 0; i < r->window; i++) {
		r->state[i] = XM_RS_EMPTY;
		r->seq[i] = UINT64_MAX;
	}
}

static bool holds(const struct xm_receiver *r, __u64 seq)
{
	return r->seq[xm_receiver_index(r, seq)] == seq;
}

enum xm_rx_verdict xm_receiver_accept(struct xm_receiver *r, __u64 seq)
{
	__u32 i = xm_receiver_index(r, seq);

	if (seq < r->cumack) {
		r->ctr->rx_dup_done++;
		return XM_RX_DUP_PASSED;
	}
	if (seq >= xm_receiver_right_edge(r)) {
		r->ctr->rx_out_of_window++;
		return XM_RX_BEYOND;
	}
	if (holds(r, seq) && r->state[i] != XM_RS_EMPTY) {
		if (r->state[i] == XM_RS_DURABLE) {
			r->ctr->rx_dup_done++;
			return XM_RX_DUP_DONE;
		}
		r->ctr->rx_dup_inflight++;
		return XM_RX_DUP_INFLIGHT;
	}
	return XM_RX_NEW;
}

void xm_receiver_take(struct xm_receiver *r, __u64 seq, enum xm_rslot state)
{
	__u32 i = xm_receiver_index(r, seq);

	r->seq[i] = seq;
	r->state[i] = (__u8)state;
}

void xm_receiver_durable(struct xm_receiver *r, __u64 seq)
{
	if (holds(r, seq))
		r->state[xm_receiver_index(r, seq)] = XM_RS_DURABLE;
}

__u64 xm_receiver_advance(struct xm_receiver *r, int (*pass)(void *ctx, __u64 seq), void *ctx)
{
	__u64 moved = 0;

	for (;;) {
		__u32 i = xm_receiver_index(r, r->cumack);

		if (!holds(r, r->cumack))
			break;
		/* A barrier reached: every earlier write is durable, its commit covered it (§7.5).
		 */
		if (r->state[i] == XM_RS_BARRIER) {
			if (pass(ctx, r->cumack))
				break;
		} else if (r->state[i] != XM_RS_DURABLE) {
			break;
		}
		r->state[i] = XM_RS_EMPTY;
		r->cumack++;
		moved++;
	}
	return moved;
}

void xm_receiver_ack(const struct xm_receiver *r, bool received, __u64 *cum, __u64 *sack)
{
	__u64 c = r->cumack, s = 0;
	int i;

	if (received) {
		/* Protocol B and loss detection: accepted frames, durable or not (§6.1). */
		while (c < xm_receiver_right_edge(r) && holds(r, c) &&
		       r->state[xm_receiver_index(r, c)] != XM_RS_EMPTY)
			c++;
	}
	for (i = 0; i < 64; i++) {
		__u64 seq = c + 1 + (__u64)i;
		__u8 st = r->state[xm_receiver_index(r, seq)];

		if (seq >= xm_receiver_right_edge(r))
			break;
		if (!holds(r, seq))
			continue;
		if (received ? st != XM_RS_EMPTY : st == XM_RS_DURABLE)
			s |= 1ull << i;
	}
	*cum = c;
	*sack = s;
}
