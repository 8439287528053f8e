// SPDX-License-Identifier: GPL-2.0
/* Telling systemd how the daemon is (sd_notify): ready, its state, alive, stopping. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "util/clock.h"
#include "util/log.h"

static struct {
	bool started;	   /* the first call has looked at the environment */
	bool on;	   /* NOTIFY_SOCKET is set: systemd (or a test) listens */
	bool stopping;	   /* STOPPING=1 sent */
	__u64 watchdog_ns; /* feed this often (half of WATCHDOG_USEC); 0: no watchdog */
	__u64 next_feed;
	int state; /* what the last STATUS= said, encoded; -1: nothing yet */
} xm_notify = {.state = -1};

/* One datagram; a failure is worth a debug line only, systemd will say what it missed. */
static void send_notify(const char *msg)
{
	int ret = sd_notify(0, msg);

	if (ret < 0)
		pr_debug("sd_notify '%s': %s", msg, strerror(-ret));
}

static void send_status(const struct xm_daemon *d, const char *head)
{
	bool up = d->role && d->ops->connected(d->role);
	char msg[160];

	snprintf(msg, sizeof(msg), "%sSTATUS=%s %s, %s, disk %s", head, d->cfg.dev,
		 xm_role_name(d->cfg.role), up ? "peer connected" : "peer not connected",
		 xm_disk_health_name(d->health.state));
	send_notify(msg);
}

static void start(__u64 now)
{
	uint64_t usec = 0;

	xm_notify.started = true;
	xm_notify.on = getenv("NOTIFY_SOCKET") != NULL;
	if (!xm_notify.on)
		return;
	/* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec) {
		xm_notify.watchdog_ns = usec * NS_PER_US / 2;
		xm_notify.next_feed = now;
	}
}

void xm_notify_tick(const struct xm_daemon *d, __u64 now)
{
	int state;

	if (!xm_notify.started)
		start(now);
	if (!xm_notify.on)
		return;
	/* Cheap to compare on every pass; formatted and sent only when it changes. */
	state = (int)d->cfg.role << 8 | (int)d->health.state << 1 |
		(d->role && d->ops->connected(d->role));
	if (d->stop && !xm_notify.stopping) {
		xm_notify.stopping = true;
		send_status(d, "STOPPING=1\n");
	} else if (!xm_notify.stopping && state != xm_notify.state) {
		/* The first pass runs once the role serves: that is READY. */
		send_status(d, xm_notify.state < 0 ? "READY=1\n" : "");
		xm_notify.state = state;
	}
	/* Fed here, in the loop's own pass, so a loop that stops turning stops feeding. */
	if (xm_notify.watchdog_ns && now >= xm_notify.next_feed) {
		send_notify("WATCHDOG=1");
		xm_notify.next_feed = now + xm_notify.watchdog_ns;
	}
}
