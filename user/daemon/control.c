// SPDX-License-Identifier: GPL-2.0
/* The daemon's control socket: clients, their requests, and the answers only the daemon gives
 * (status, promote, demote); the rest goes to the role. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "daemon/evreaders.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

#define CTL_CLIENTS_MAX 32
#define CTL_DEADLINE_NS (2 * NS_PER_SEC)

/* promote/demote (docs/resync.md §7): checks now, switches once the old role has drained. */
static const char *ctl_role_change(struct xm_daemon *d, const struct xm_ctl_req *req)
{
	if (d->next_role || d->stop)
		return "error: a role change or detach is already under way";
	if (!strcmp(req->verb, "demote")) {
		if (d->ops->role != XM_ROLE_PRIMARY)
			return "error: not a primary";
		d->next_role = XM_ROLE_SECONDARY;
		d->ops->stop(d->role);
		pr_info("%s: demoting to secondary", d->cfg.dev);
		return "ok: demoting";
	}
	if (strcmp(req->verb, "promote"))
		return "error: unknown request";
	if (d->ops->role != XM_ROLE_SECONDARY)
		return "error: not a secondary";
	if (d->ops->connected(d->role))
		return "error: a primary is connected; demote it first";
	if (d->health.state != XM_DH_ATTACHED)
		return "error: this box has no working disk (disk attach first)";
	if (d->meta.sb.disk_state != XM_DISK_UPTODATE && !req->force)
		return d->meta.sb.disk_state == XM_DISK_INCONSISTENT
			       ? "error: this disk is Inconsistent (a resync did not finish); "
				 "--force promotes anyway"
			       : "error: this disk is not UpToDate; --force promotes anyway";
	d->next_role = XM_ROLE_PRIMARY;
	d->ops->stop(d->role);
	pr_info("%s: promoting to primary%s", d->cfg.dev, req->force ? " (forced)" : "");
	return "ok: promoting";
}

static const char *ctl_command(struct xm_daemon *d, const struct xm_ctl_req *req)
{
	const char *answer = NULL;

	if (!d->role)
		return "error: the daemon is leaving";
	if (!strcmp(req->verb, "disk-detach"))
		return xm_daemon_disk_detach(d);
	if (!strcmp(req->verb, "disk-attach"))
		return xm_daemon_disk_attach(d, req->path, req->full);
	if (req->role == XM_ROLE_NONE)
		return ctl_role_change(d, req);
	if (req->role != d->ops->role || d->next_role)
		return req->wrong_role;
	if (d->ops->control)
		answer = d->ops->control(d->role, req);
	return answer ? answer : "error: unknown request";
}

/*
 * One control client.  Nothing it does can hold up the loop: its request is read as it arrives and
 * its answer written as it takes it, both without blocking.  It has CTL_DEADLINE_NS from its
 * connect to send a whole request, and as long again to take the answer; a client past its
 * deadline is closed and counted.  At most CTL_CLIENTS_MAX are open at once: one more is told
 * "error: busy ..." and closed, so a flood of idle connections costs a few file descriptors and
 * never an answer for long (docs/design.md, the control socket).
 */
struct xm_ctl_client {
	struct xm_watch watch;
	struct xm_daemon *d;
	int fd;
	bool closing;
	bool answering; /* the request is read; the answer goes out as the client takes it */
	__u64 deadline_ns;
	struct xm_ctl_conn conn;
	struct xm_ctl_client *next, **pprev; /* d->ctl_client_list */
};

static void ctl_client_released(struct xm_watch *w)
{
	struct xm_ctl_client *c = xm_container_of(w, struct xm_ctl_client, watch);

	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->d->ctl_clients--;
	free(c);
}

/* c is freed once the kernel has dropped its poll.  Should the cancel not go out (a full ring),
 * the shutdown wakes the poll, and that completion releases c (util/loop.h). */
static void ctl_client_close(struct xm_ctl_client *c)
{
	c->closing = true;
	xm_ctl_conn_free(&c->conn);
	if (xm_loop_unwatch(&c->d->loop, &c->watch, ctl_client_released)) {
		pr_warn("%s: cannot drop a control client's poll", c->d->cfg.dev);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	}
	if (c->fd >= 0) /* none when its socket went to the events stream */
		close(c->fd);
}

/*
 * events (docs/events.md): with "now", the state line is the answer; without, the socket leaves
 * the control clients and becomes an events reader, with its own cap.  Returns 0 (an answer is
 * set), 1 (c->fd is the reader's now), or -ENOMEM.
 */
static int ctl_events(struct xm_ctl_client *c, const struct xm_ctl_req *req)
{
	struct xm_daemon *d = c->d;
	size_t len;
	char *line;
	int err;

	if (req->now) {
		line = xm_events_state_now(d, &len);
		if (!line)
			return -ENOMEM;
		xm_ctl_take_answer(&c->conn, line, len);
		return 0;
	}
	err = xm_events_subscribe(d, c->fd, req->buffer);
	if (err == -EBUSY) {
		char busy[96];

		snprintf(busy, sizeof(busy),
			 "error: too many event readers (%u, the most it serves at once)",
			 XM_EV_READERS_MAX);
		return xm_ctl_set_answer(&c->conn, busy);
	}
	if (err)
		return err;
	c->fd = -1;
	return 1;
}

/* The answer to a whole request, into c->conn.  Returns 0, 1 (the client became an events
 * reader: nothing to answer) or -ENOMEM. */
static int ctl_answer(struct xm_ctl_client *c)
{
	struct xm_daemon *d = c->d;
	struct xm_ctl_conn *conn = &c->conn;
	struct xm_ctl_req req;
	const char *answer;
	size_t len = 0;
	char *buf = NULL;
	FILE *out;

	answer = xm_ctl_parse(conn->req, &req);
	if (!answer && !strcmp(req.verb, "status")) {
		/* Written to memory first: however large, it then goes out as the client reads. */
		out = open_memstream(&buf, &len);
		if (!out)
			return -ENOMEM;
		xm_daemon_report(d, req.text ? XM_REPORT_TEXT : XM_REPORT_JSON, out);
		if (fclose(out)) {
			free(buf);
			return -ENOMEM;
		}
		xm_ctl_take_answer(conn, buf, len);
		return 0;
	}
	if (!answer && !strcmp(req.verb, "events"))
		return ctl_events(c, &req);
	if (!answer)
		answer = ctl_command(d, &req);
	return xm_ctl_set_answer(conn, answer);
}

static void ctl_client_answered(struct xm_ctl_client *c, int err)
{
	if (err == -EAGAIN) {
		/* The rest goes when the client has read some: wait for room, not for data. */
		xm_watch_rearm_for(&c->watch, POLLOUT);
		return;
	}
	if (err)
		pr_debug("%s: control client went away before its answer: %s", c->d->cfg.dev,
			 strerror(-err));
	else
		c->d->ctl_stats.answered++;
	ctl_client_close(c);
}

static void on_ctl_client(struct xm_watch *w, int revents)
{
	struct xm_ctl_client *c = xm_container_of(w, struct xm_ctl_client, watch);
	int err;

	if (c->answering) {
		ctl_client_answered(c, xm_ctl_write_answer(&c->conn, c->fd));
		return;
	}
	err = xm_ctl_read_request(&c->conn, c->fd);
	if (err == -EAGAIN)
		return; /* armed again; the deadline still runs */
	if (err == -EMSGSIZE)
		err = xm_ctl_set_answer(&c->conn, "error: request too long");
	else if (!err)
		err = ctl_answer(c);
	if (err == 1) {
		ctl_client_close(c); /* its socket lives on as an events reader */
		return;
	}
	if (err) {
		if (err != -ECONNRESET)
			pr_debug("%s: control client: %s", c->d->cfg.dev, strerror(-err));
		ctl_client_close(c);
		return;
	}
	c->answering = true;
	c->deadline_ns = xm_now_ns() + CTL_DEADLINE_NS;
	ctl_client_answered(c, xm_ctl_write_answer(&c->conn, c->fd));
}

void xm_control_tick(struct xm_daemon *d, __u64 now)
{
	struct xm_ctl_client *c, *next;

	for (c = d->ctl_client_list; c; c = next) {
		next = c->next;
		if (c->closing || now < c->deadline_ns)
			continue;
		if (c->answering)
			d->ctl_stats.answer_timeouts++;
		else
			d->ctl_stats.request_timeouts++;
		pr_debug("%s: control client %s in time, closing it", d->cfg.dev,
			 c->answering ? "did not take its answer" : "sent no whole request");
		ctl_client_close(c);
	}
}

/* One client too many: told so in one line and closed.  A new socket's buffer is empty, so the
 * line goes out at once or not at all; the loop never waits for it. */
static void ctl_refuse(struct xm_daemon *d, int fd)
{
	char line[128];
	int n;

	n = snprintf(line, sizeof(line),
		     "error: busy (%u control clients open, the most it serves at once; try "
		     "again)\n",
		     d->ctl_clients);
	if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		pr_debug("%s: a refused control client went away", d->cfg.dev);
	close(fd);
	d->ctl_stats.refused++;
}

static void on_accept(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w, struct xm_daemon, ctl_watch);
	struct xm_ctl_client *c;
	int fd;

	while ((fd = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (d->ctl_clients >= CTL_CLIENTS_MAX) {
			ctl_refuse(d, fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->deadline_ns = xm_now_ns() + CTL_DEADLINE_NS;
		if (xm_loop_watch_oneshot(&d->loop, &c->watch, fd, 0, on_ctl_client)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = d->ctl_client_list;
		if (c->next)
			c->next->pprev = &c->next;
		c->pprev = &d->ctl_client_list;
		d->ctl_client_list = c;
		d->ctl_clients++;
		d->ctl_stats.accepted++;
	}
}

void xm_control_report(const struct xm_daemon *d, struct xm_report *r)
{
	const struct xm_ctl_stats *st = &d->ctl_stats;

	xm_report_open(r, "control", "control socket");
	xm_report_u64(r, "clients", "clients", d->ctl_clients);
	xm_report_u64(r, "max_clients", "at most", CTL_CLIENTS_MAX);
	xm_report_u64(r, "deadline_ms", NULL, CTL_DEADLINE_NS / NS_PER_MS);
	xm_report_u64(r, "accepted", NULL, st->accepted);
	xm_report_u64(r, "answered", "answered", st->answered);
	xm_report_u64(r, "refused", "refused busy", st->refused);
	xm_report_u64(r, "request_timeouts", "no request in time", st->request_timeouts);
	xm_report_u64(r, "answer_timeouts", "answer not taken", st->answer_timeouts);
	xm_report_close(r);
}

int xm_control_start(struct xm_daemon *d)
{
	return xm_loop_watch(&d->loop, &d->ctl_watch, d->ctl_fd, 0, on_accept);
}
