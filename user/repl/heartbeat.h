/* SPDX-License-Identifier: GPL-2.0 */
/* Heartbeats: a PING every interval whatever else flows, a PONG echoing the sender's clock; the
 * RTT from the echoes.  Pure: the caller sends the frames and reads the clock. */
#ifndef XM_HEARTBEAT_H
#define XM_HEARTBEAT_H

#include <stdbool.h>
#include <linux/types.h>

#include "link/frame.h"

struct xm_heartbeat {
	__u64 interval_ns;
	__u64 last_ping_ns; /* when the last PING went out */
	__u64 rtt_last_ns, rtt_min_ns, rtt_avg_ns;
};

/* A PING is due at this time. */
static inline __u64 xm_heartbeat_next(const struct xm_heartbeat *hb)
{
	return hb->last_ping_ns + hb->interval_ns;
}

/* The PING to send now (session, the sender's cumulative ack and credit ride along). */
void xm_heartbeat_ping(__u32 session, __u64 cum, __u32 credit, __u64 now, struct xm_frame *ping);
/* The PONG that answers a PING. */
void xm_heartbeat_pong(const struct xm_frame *ping, __u64 cum, __u32 credit, struct xm_frame *pong);
/* An RTT sample from a PONG received at now; -EINVAL when it echoes a time from the future. */
int xm_heartbeat_rtt(struct xm_heartbeat *hb, const struct xm_frame *pong, __u64 now);

#endif
