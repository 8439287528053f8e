/* SPDX-License-Identifier: GPL-2.0 */
/* Telling systemd how the daemon is (sd_notify): ready, its state, alive, stopping. */
#ifndef XM_NOTIFY_H
#define XM_NOTIFY_H

#include <linux/types.h>

struct xm_daemon;

/*
 * Called from every pass of the event loop (docs/install.md, "systemd").  The first call, made
 * once the role runs and the control socket and the NBD export listen, sends READY=1; then
 * STATUS= when the role, the session or the disk changes, WATCHDOG=1 every half of
 * WATCHDOG_USEC, and STOPPING=1 once a detach has begun.  Without NOTIFY_SOCKET it does nothing.
 */
void xm_notify_tick(const struct xm_daemon *d, __u64 now);

#endif
