/* SPDX-License-Identifier: GPL-2.0 */
/* The secondary: applies DATA frames to its disk and acknowledges them once durable. */
#ifndef XM_SECONDARY_H
#define XM_SECONDARY_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "link/frame.h"
#include "util/json.h"
#include "link/xsk.h"

struct xm_daemon;
struct xm_secondary;

/* Sets up the writer; returns NULL with errno set (and a message printed). */
struct xm_secondary *xm_secondary_create(struct xm_daemon *d);
void xm_secondary_destroy(struct xm_secondary *p);
/* One received frame that passed the CRC.  A zero-copy write may keep the packet's chunks
 * (pkt->keep); spans/hdr_off locate the payload. */
void xm_secondary_rx_pkt(struct xm_secondary *s, const struct xm_frame *f, struct xm_xsk *x,
			 struct xm_rx_pkt *pkt, const struct xm_span *spans, __u32 n,
			 __u32 hdr_off);
/* The UMEM headroom the writer's layout needs at this MTU (§7.3). */
__u32 xm_secondary_headroom(__u32 mtu);
/* After each loop pass: timers, sending, acks.  Returns the next deadline (ns, monotonic). */
__u64 xm_secondary_tick(struct xm_secondary *p, __u64 now);
/* Detach: take no more frames; xm_secondary_drained() says when the writes have finished. */
/* End of an RX batch: submits the disk write gathered from consecutive DATA frames. */
void xm_secondary_rx_flush(struct xm_secondary *s);
void xm_secondary_stop(struct xm_secondary *p);
bool xm_secondary_drained(const struct xm_secondary *p, __u64 now);
/* After draining (detach or promote): CLOSE to the peer, clean metadata. */
void xm_secondary_finish(struct xm_secondary *s, __u64 why);
/* A primary is connected (promote is refused then). */
bool xm_secondary_connected(const struct xm_secondary *s);
/* resolve --discard-local: the next handshake drops this box's changes; returns the answer. */
const char *xm_secondary_discard_local(struct xm_secondary *s);
void xm_secondary_write_status(const struct xm_secondary *p, struct xm_json *j);
void xm_secondary_write_status_text(const struct xm_secondary *p, FILE *out);

#endif
