// SPDX-License-Identifier: GPL-2.0
/* The attached daemon: XDP program, AF_XDP sockets, heartbeats, control socket, one event loop. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "link/frame.h"
#include "link/gate.h"
#include "link/stats.h"
#include "primary/primary.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

/* Frames are queued on the TX ring and kicked in batches; link_tx_flush() kicks the rest. */
#define XM_TX_KICK_BATCH 32

static void link_tx_flush(void *link);

/* Queues one frame, given as spans, on queue 0's TX ring; a nonzero tag comes back in tx_done. */
static int link_out_tagged(struct xm_daemon *d, const struct xm_span *spans, __u32 n, __u32 len,
			   __u64 tag)
{
	struct xm_xsk *x = &d->xsks[0];
	struct iovec iov[XM_MAX_SPANS + 3];
	__u32 i;
	int err;

	if (n > XM_MAX_SPANS + 3)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)spans[i].data;
		iov[i].iov_len = spans[i].len;
	}
	err = xm_xsk_tx_frame(x, iov, n, tag);
	if (err) {
		d->ctr.tx_ring_full++;
		return err;
	}
	/* One kick per batch, not per frame: each sendto() is a syscall that sends what the ring
	 * holds (up to the skb budget), so frames queued in one loop turn leave together. */
	if (++x->tx_unkicked >= XM_TX_KICK_BATCH)
		link_tx_flush(d);
	d->ctr.tx_frames++;
	d->ctr.tx_bytes += len;
	d->last_tx_ns = xm_now_ns();
	return 0;
}

/* One whole frame to the peer on queue 0 (the gate's output, set up in setup.c). */
int xm_daemon_link_out(void *link, const struct xm_span *spans, __u32 n, __u32 len)
{
	return link_out_tagged(link, spans, n, len, 0);
}

/* The role's send (repl/role.h): one frame to the peer, built and tagged by the gate. */
static int link_send(void *link, const struct xm_frame *f, const struct xm_span *payload, __u32 n,
		     __u64 tag)
{
	struct xm_daemon *d = link;
	struct xm_gate_frame out;
	int err;

	err = xm_gate_build(&d->gate, f, payload, n, &out);
	if (err)
		return err;
	return link_out_tagged(d, out.spans, out.n, out.len, tag);
}

static void link_tx_flush(void *link)
{
	struct xm_daemon *d = link;
	__u32 q;

	for (q = 0; q < d->nxsks; q++) {
		if (d->xsks[q].tx_unkicked) {
			xm_xsk_tx_kick(&d->xsks[q]);
			d->xsks[q].tx_unkicked = 0;
		}
	}
}

static void on_packet(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt)
{
	struct xm_daemon *d = ctx;
	struct xm_span spans[XM_RX_MAX_PIECES];
	enum xm_parse_error perr;
	struct xm_rx rx;
	struct xm_frame f;
	__u32 i, hdr_off = 0;

	d->ctr.rx_frames++;
	d->ctr.rx_bytes += pkt->len;
	for (i = 0; i < pkt->npieces; i++) {
		spans[i].data = pkt->piece[i].data;
		spans[i].len = pkt->piece[i].len;
	}
	perr = xm_frame_parse_spans(spans, pkt->npieces, d->cfg.ethertype, &f, &hdr_off, NULL);
	if (perr == XM_PARSE_BAD_CRC) {
		d->ctr.rx_bad_crc++;
		return;
	}
	if (perr != XM_PARSE_OK) {
		pr_debug("%s: malformed frame of %u bytes (parse error %d)", d->cfg.dev, pkt->len,
			 perr);
		d->ctr.rx_malformed++;
		return;
	}
	d->last_rx_ns = xm_now_ns();
	if (xm_gate_rx(&d->gate, &f, spans, pkt->npieces, hdr_off, d->last_rx_ns) != XM_GATE_PASS)
		return;
	rx = (struct xm_rx){.f = &f,
			    .spans = spans,
			    .nspans = pkt->npieces,
			    .hdr_off = hdr_off,
			    .xsk = x,
			    .pkt = pkt};
	if (d->role) /* none after a role switch that failed: the daemon is leaving */
		d->ops->rx(d->role, &rx);
}

static void on_tx_done(void *ctx, __u64 tag)
{
	struct xm_daemon *d = ctx;

	if (d->role && d->ops->tx_done)
		d->ops->tx_done(d->role, tag);
}

static void drain_rx(struct xm_daemon *d, struct xm_xsk *x)
{
	bool any = false;

	while (xm_xsk_rx(x, 64, on_packet, d))
		any = true;
	if (any && d->role && d->ops->rx_done)
		d->ops->rx_done(d->role);
}

static void on_xsk_ready(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w->loop, struct xm_daemon, loop);

	drain_rx(d, &d->xsks[w - d->xsk_watch]);
}

static void on_signal(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w, struct xm_daemon, signal_watch);
	struct signalfd_siginfo si;

	while (read(d->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			continue; /* nothing to reload yet; do not die of it */
		pr_info("%s: signal %u, detaching", d->cfg.dev, si.ssi_signo);
		d->stop = true;
	}
}

/* Runs the role the configuration names, lending it the environment (repl/role.h). */
static int start_role(struct xm_daemon *d)
{
	d->ops = d->cfg.role == XM_ROLE_PRIMARY ? &xm_primary_role : &xm_secondary_role;
	d->role = d->ops->create(&d->env);
	return d->role ? 0 : -errno;
}

static int create_role(struct xm_daemon *d)
{
	int err;

	err = xm_commit_init(&d->commit, &d->loop, d->disk.fd);
	if (err)
		return err;
	d->hb.interval_ns = (__u64)d->cfg.ping_ms * 1000000ull;
	d->env = (struct xm_role_env){
		.cfg = &d->cfg,
		.disk = &d->disk,
		.health = &d->health,
		.mtu = d->nd.mtu - (__u32)sizeof(struct xm_auth_trailer),
		.node_uuid = d->node_uuid,
		.loop = &d->loop,
		.commit = &d->commit,
		.meta = &d->meta,
		.ctr = &d->ctr,
		.hb = &d->hb,
		.det = &d->det,
		.alive = d->bpf.alive,
		.verified_rx_ns = d->gate.auth ? &d->gate.verified_rx_ns : NULL,
		.send = link_send,
		.tx_flush = link_tx_flush,
		.note = xm_events_note,
		.link = d,
	};
	return start_role(d);
}

/* The old role has drained: the other one takes over, on the same sockets and disk. */
static int switch_role(struct xm_daemon *d)
{
	int err;

	d->ops->destroy(d->role);
	d->role = NULL;
	d->cfg.role = d->next_role;
	d->next_role = XM_ROLE_NONE;
	err = start_role(d);
	if (err)
		pr_warn("%s: cannot start as %s: %s", d->cfg.dev, xm_role_name(d->cfg.role),
			strerror(-err));
	else
		pr_info("%s: now %s", d->cfg.dev, xm_role_name(d->cfg.role));
	return err;
}

/* One pass of work that is not driven by a completion; returns how long the loop may sleep. */
static __u64 tick(struct xm_daemon *d)
{
	__u64 now = xm_now_ns(), next;
	__u32 q;

	xm_notify_tick(d, now);
	for (q = 0; q < d->nxsks; q++)
		xm_xsk_tx_reclaim(&d->xsks[q], on_tx_done, d);
	/* What waits in our RX rings is taken before the role judges the peer (§9.2 rule 1). */
	for (q = 0; q < d->nxsks; q++)
		drain_rx(d, &d->xsks[q]);
	xm_commit_poll(&d->commit, now);
	xm_control_tick(d, now);
	next = d->ops->tick(d->role, now);
	xm_events_tick(d, now);
	if (xm_commit_deadline(&d->commit) < next)
		next = xm_commit_deadline(&d->commit);
	if ((d->stop || d->next_role) && !d->finishing && d->ops->drained(d->role, now)) {
		__u64 why = d->stop			      ? XM_CLOSE_DETACH
			    : d->next_role == XM_ROLE_PRIMARY ? XM_CLOSE_PROMOTE
							      : XM_CLOSE_DEMOTE;

		/* Tell the peer, leave clean metadata behind (its write completes in the loop). */
		d->ops->finish(d->role, why);
		d->finishing = true;
	}
	if (d->finishing && d->ops->finished(d->role)) {
		d->finishing = false;
		if (d->next_role && !d->stop) {
			if (switch_role(d))
				d->stop = d->finished = true;
			return 0;
		}
		d->finished = true;
	}
	/* Sleep at most a heartbeat; the kernel wakes us for anything that arrives. */
	if (next <= now)
		return 0;
	next -= now;
	return next < 10000000ull ? next : 10000000ull;
}

/* A wake after the deadline the loop asked for: how late (0 when it woke early for a completion).
 */
static void note_lateness(struct xm_daemon *d, __u64 deadline)
{
	__u64 now = xm_now_ns(), late = now > deadline ? now - deadline : 0;

	d->late.wakes++;
	if (late > d->late.late_max_ns)
		d->late.late_max_ns = late;
	d->late.over_1ms += late > NS_PER_MS;
	d->late.over_10ms += late > 10 * NS_PER_MS;
	d->late.over_50ms += late > 50 * NS_PER_MS;
}

/* --realtime: SCHED_FIFO above every ordinary task (but below the kernel's interrupt threads, at
 * 50) and no page faults on the loop's memory, the way corosync runs.  Returns 0 or -errno. */
#define XM_RT_PRIORITY 10
static int go_realtime(struct xm_daemon *d)
{
	struct sched_param sp = {.sched_priority = XM_RT_PRIORITY};
	int err;

	if (mlockall(MCL_CURRENT | MCL_FUTURE)) {
		err = -errno;
		pr_warn("%s: --realtime: cannot lock memory: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp)) {
		err = -errno;
		pr_warn("%s: --realtime: cannot run SCHED_FIFO: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	pr_info("%s: event loop runs SCHED_FIFO %d with memory locked", d->cfg.dev, XM_RT_PRIORITY);
	return 0;
}

/* Busy polling's own readiness test: a frame waiting in an RX ring. */
static bool xsks_rx_ready(void *ctx)
{
	struct xm_daemon *d = ctx;
	__u32 q;

	for (q = 0; q < d->nxsks; q++)
		if (xm_xsk_rx_ready(&d->xsks[q]))
			return true;
	return false;
}

int xm_daemon_run(struct xm_daemon *d)
{
	__u64 deadline, spin_ns = (__u64)d->cfg.busy_poll_us * NS_PER_US;
	bool stopping = false, worked = false;
	__u32 q;
	int err;

	if (d->cfg.realtime) {
		err = go_realtime(d);
		if (err)
			return err;
	}
	/* The ring belongs to the task that submits, so it is made after any fork (--daemon). */
	err = xm_loop_init(&d->loop);
	if (err) {
		pr_warn("%s: cannot create io_uring: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	d->xsk_watch = calloc(d->nxsks, sizeof(*d->xsk_watch));
	if (!d->xsk_watch)
		return -ENOMEM;
	err = xm_events_init(d);
	if (!err)
		err = create_role(d);
	/* The role runs on the metadata now: it is this box's, failure or not. */
	if (!err) {
		d->meta_new = false;
		d->meta_new_dir[0] = '\0';
	}
	if (!err)
		err = xm_loop_watch(&d->loop, &d->signal_watch, d->signal_fd, 0, on_signal);
	if (!err)
		err = xm_control_start(d);
	for (q = 0; !err && q < d->nxsks; q++)
		err = xm_loop_watch_oneshot(&d->loop, &d->xsk_watch[q], xm_xsk_fd(&d->xsks[q]), 0,
					    on_xsk_ready);
	while (!err && !d->finished) {
		__u64 timeout = tick(d);
		int n;

		/* Whatever the handlers and the tick queued leaves before we sleep. */
		link_tx_flush(d);
		deadline = xm_now_ns() + timeout;
		/* --busy-poll: after a turn with work the next event (an ack, a completion, the
		 * client's next request) tends to follow within microseconds; poll for it instead
		 * of paying a sleep and a wakeup.  An idle loop still sleeps at once. */
		if (spin_ns && worked && timeout) {
			__u64 now;

			if (xm_loop_spin(&d->loop, spin_ns < timeout ? spin_ns : timeout,
					 xsks_rx_ready, d))
				timeout = 0;
			now = xm_now_ns();
			timeout = timeout && deadline > now ? deadline - now : 0;
		}
		n = xm_loop_run_once(&d->loop, timeout);
		if (n < 0)
			err = n;
		worked = n > 0;
		note_lateness(d, deadline);
		if (d->stop && !stopping) {
			stopping = true;
			if (d->role)
				d->ops->stop(d->role);
		}
	}
	if (err)
		pr_warn("%s: event loop failed: %s", d->cfg.dev, strerror(-err));
	if (spin_ns)
		pr_info("%s: busy polling: %llu polls found work, %llu ran out of time", d->cfg.dev,
			(unsigned long long)d->loop.spin_hits,
			(unsigned long long)d->loop.spin_misses);
	return err;
}
