/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reliable sender of numbered frames (docs/protocol.md §5): sequence numbers, the peer's
 * credit window, cumulative and selective acks, RTT, retransmission on timeout with backoff and
 * RACK fast retransmit.  Pure: no sockets and no clock; the caller passes the time in and puts
 * frames on the wire through ops->transmit.
 */
#ifndef XM_SENDER_H
#define XM_SENDER_H

#include <stdbool.h>
#include <linux/types.h>

#include "repl/counters.h"

/* One numbered frame between the oldest unacked and the next to send. */
struct xm_sender_slot {
	void *item;  /* the caller's: what this frame carries */
	__u32 frame; /* which frame of the item */
	__u8 kind;   /* the caller's tag; 0 marks an empty slot */
	bool sent;   /* its first transmission has left the box */
	bool rcvd;   /* the peer has it (a received-ack, or durable) */
	bool durable;
	bool retransmitted, rack_retx;
	__u64 first_tx_ns, last_tx_ns;
};

struct xm_sender_ops {
	/* Puts the slot's frame on the wire as number seq; tag must come back through
	 * xm_sender_tx_done once it has left the box.  Returns 0, or -errno to try again later. */
	int (*transmit)(void *ctx, __u64 seq, const struct xm_sender_slot *s, __u64 tag);
	/* A frame's progress, each called once, in this order: sent, received, durable. */
	void (*sent)(void *ctx, struct xm_sender_slot *s);
	void (*received)(void *ctx, struct xm_sender_slot *s);
	void (*durable)(void *ctx, struct xm_sender_slot *s);
};

struct xm_sender {
	const struct xm_sender_ops *ops;
	void *ctx;
	struct xm_counters *ctr;
	struct xm_sender_slot *ring;
	__u32 ring_size; /* a power of two */
	__u32 gen;	 /* counts sessions: tags of an old session are ignored */
	__u64 una, nxt, right_edge;
	__u64 srtt, rttvar, rto, rto_base, rto_deadline;
	__u64 min_rtt; /* smallest RTT sample of the session: the reorder window's base */
};

/* ring_size frames in flight at most (a power of two).  Returns 0 or -errno. */
int xm_sender_init(struct xm_sender *s, __u32 ring_size, const struct xm_sender_ops *ops, void *ctx,
		   struct xm_counters *ctr);
void xm_sender_free(struct xm_sender *s);

/* A session starts: the peer expects frame `first` next and grants `credit` frames. */
void xm_sender_start(struct xm_sender *s, __u64 first, __u32 credit);
/* The session ended: every frame in flight is forgotten, each handed to forget (may be NULL). */
void xm_sender_reset(struct xm_sender *s, void (*forget)(void *ctx, struct xm_sender_slot *slot));

/* One more frame fits: inside the peer's window and the ring. */
bool xm_sender_has_room(const struct xm_sender *s);
/* Numbers the item's frame, transmits it and keeps it until it is durable.  Returns 0, or the
 * error of ops->transmit (nothing kept then). */
int xm_sender_send(struct xm_sender *s, void *item, __u32 frame, __u8 kind, __u64 now);

/*
 * Ack information: cum (every frame before it) and a SACK of the 64 after cum + 1, durable, or
 * only received (rcvd_only); credit: the peer's window from cum.  PING and PONG carry a durable
 * cum without SACK.  Returns 0, or -EPROTO for an ack of frames never sent (*why says which):
 * the session must end.
 */
int xm_sender_ack(struct xm_sender *s, __u64 cum, __u64 sack, bool has_sack, bool rcvd_only,
		  __u32 credit, __u64 now, const char **why);
/* The frame numbered seq if it is in flight, else NULL (xm_sender_next tells which side). */
struct xm_sender_slot *xm_sender_find(struct xm_sender *s, __u64 seq);
/* Marks one frame durable (a FLUSH_ACK names its frame). */
void xm_sender_durable(struct xm_sender *s, struct xm_sender_slot *slot);
/* A transmission has left the box (the tag given to ops->transmit). */
void xm_sender_tx_done(struct xm_sender *s, __u64 tag);

/* Timers: retransmits the oldest frame not known to be there when the RTO expires (and backs
 * off).  Returns the RTO deadline, or 0 when nothing is in flight. */
__u64 xm_sender_tick(struct xm_sender *s, __u64 now);
/* The RTO deadline (sending the first frame of an empty window arms it), or 0. */
static inline __u64 xm_sender_deadline(const struct xm_sender *s)
{
	return s->rto_deadline;
}

static inline __u64 xm_sender_next(const struct xm_sender *s)
{
	return s->nxt;
}
/* The peer's window has room (the ring may still be full; xm_sender_has_room says both). */
static inline bool xm_sender_window_open(const struct xm_sender *s)
{
	return s->nxt < s->right_edge;
}
static inline __u64 xm_sender_srtt(const struct xm_sender *s)
{
	return s->srtt;
}
static inline __u64 xm_sender_rto(const struct xm_sender *s)
{
	return s->rto;
}
static inline __u64 xm_sender_in_flight(const struct xm_sender *s)
{
	return s->nxt - s->una;
}
/* When the oldest frame not acked durable was first sent; 0 when none is in flight. */
__u64 xm_sender_oldest_tx(const struct xm_sender *s);

#endif
