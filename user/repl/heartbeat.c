// SPDX-License-Identifier: GPL-2.0
/* Heartbeat frames and the RTT they measure. */
#include <errno.h>

#include "repl/heartbeat.h"

void xm_heartbeat_ping(__u32 session, __u64 cum, __u32 credit, __u64 now, struct xm_frame *ping)
{
	*ping = (struct xm_frame){
		.type = XM_T_PING, .session = session, .arg0 = now, .arg1 = cum, .credit = credit};
}

void xm_heartbeat_pong(const struct xm_frame *ping, __u64 cum, __u32 credit, struct xm_frame *pong)
{
	*pong = (struct xm_frame){.type = XM_T_PONG,
				  .session = ping->session,
				  .arg0 = ping->arg0,
				  .arg1 = cum,
				  .credit = credit};
}

int xm_heartbeat_rtt(struct xm_heartbeat *hb, const struct xm_frame *pong, __u64 now)
{
	__u64 rtt;

	/* arg0 is our own clock echoed back; anything from the future is not ours. */
	if (pong->arg0 > now)
		return -EINVAL;
	rtt = now - pong->arg0;
	hb->rtt_last_ns = rtt;
	if (!hb->rtt_min_ns || rtt < hb->rtt_min_ns)
		hb->rtt_min_ns = rtt;
	/* EWMA with weight 1/8, as TCP's SRTT. */
	hb->rtt_avg_ns = hb->rtt_avg_ns ? hb->rtt_avg_ns - (hb->rtt_avg_ns >> 3) + (rtt >> 3) : rtt;
	return 0;
}
