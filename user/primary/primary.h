/* SPDX-License-Identifier: GPL-2.0 */
/* The primary: NBD export, local writes, and the reliable sender of DATA and FLUSH frames. */
#ifndef XM_PRIMARY_H
#define XM_PRIMARY_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "link/frame.h"
#include "util/json.h"
#include "link/xsk.h"

struct xm_daemon;
struct xm_primary;

/* Starts the NBD export; returns NULL with errno set (and a message printed). */
struct xm_primary *xm_primary_create(struct xm_daemon *d);
void xm_primary_destroy(struct xm_primary *p);
/* One received frame that passed the CRC; spans/hdr_off locate its payload. */
void xm_primary_rx(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *spans,
		   __u32 nspans, __u32 hdr_off);
/* After each loop pass: timers, sending, acks.  Returns the next deadline (ns, monotonic). */
__u64 xm_primary_tick(struct xm_primary *p, __u64 now);
/* A tagged TX frame has left the box. */
void xm_primary_tx_done(struct xm_primary *p, __u64 tag);
/* Detach: stop taking requests; xm_primary_drained() says when the daemon may exit. */
void xm_primary_stop(struct xm_primary *p);
bool xm_primary_drained(const struct xm_primary *p, __u64 now);
/* After draining (detach or demote): CLOSE to the peer, clean metadata (enum xm_close_reason). */
void xm_primary_finish(struct xm_primary *p, __u64 why);
/* A metadata flush cycle finished. */
void xm_primary_meta_flushed(struct xm_primary *p, int err);
/* Starts an online verify (mark: set differing regions out of sync); returns the answer line. */
const char *xm_primary_verify(struct xm_primary *p, bool mark);
void xm_primary_write_status(const struct xm_primary *p, struct xm_json *j);
void xm_primary_write_status_text(const struct xm_primary *p, FILE *out);

#endif
