// SPDX-License-Identifier: GPL-2.0
/* The daemon's control socket: clients, their requests, and the answers only the daemon gives
 * (status, promote, demote); the rest goes to the role. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

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

/* One control client: its request line is read when it arrives, so a client that is slow to send
 * (a loaded box) neither stalls the loop nor goes unanswered; one that sends nothing is closed
 * after CTL_CLIENT_IDLE_NS, so idle connections cannot use up the slots. */
#define CTL_CLIENTS_MAX	   16
#define CTL_CLIENT_IDLE_NS (2 * NS_PER_SEC)
struct xm_ctl_client {
	struct xm_watch watch;
	struct xm_daemon *d;
	int fd;
	bool closing;
	__u64 accepted_ns;
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
	if (xm_loop_unwatch(&c->d->loop, &c->watch, ctl_client_released)) {
		pr_warn("%s: cannot drop a control client's poll", c->d->cfg.dev);
		shutdown(c->fd, SHUT_RDWR);
	}
	close(c->fd);
}

static void ctl_answer(struct xm_daemon *d, int fd, const char *line)
{
	struct timeval tv = {.tv_usec = 200 * 1000};
	struct xm_ctl_req req;
	const char *answer;
	FILE *out;
	int out_fd;

	/* The answer is written blocking, but never for long: the client is reading. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	answer = xm_ctl_parse(line, &req);
	if (!answer && !strcmp(req.verb, "status")) {
		out_fd = dup(fd);
		out = out_fd >= 0 ? fdopen(out_fd, "w") : NULL;
		if (out) {
			xm_daemon_report(d, req.text ? XM_REPORT_TEXT : XM_REPORT_JSON, out);
			fclose(out);
			return;
		}
		if (out_fd >= 0)
			close(out_fd);
		answer = "error: out of memory";
	}
	if (!answer)
		answer = ctl_command(d, &req);
	if (write(fd, answer, strlen(answer)) < 0 || write(fd, "\n", 1) < 0)
		pr_debug("control client went away");
}

static void on_ctl_client(struct xm_watch *w, int revents)
{
	struct xm_ctl_client *c = xm_container_of(w, struct xm_ctl_client, watch);
	char line[XM_CTL_LINE_MAX] = "";
	ssize_t n;

	n = read(c->fd, line, sizeof(line) - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return; /* armed again */
	if (n > 0)
		ctl_answer(c->d, c->fd, line);
	ctl_client_close(c);
}

void xm_control_tick(struct xm_daemon *d, __u64 now)
{
	struct xm_ctl_client *c, *next;

	for (c = d->ctl_client_list; c; c = next) {
		next = c->next;
		if (c->closing || now - c->accepted_ns < CTL_CLIENT_IDLE_NS)
			continue;
		pr_debug("%s: control client sent no request in time, closing it", d->cfg.dev);
		ctl_client_close(c);
	}
}

static void on_accept(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w, struct xm_daemon, ctl_watch);
	struct xm_ctl_client *c;
	int fd;

	while ((fd = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		c = d->ctl_clients < CTL_CLIENTS_MAX ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->accepted_ns = xm_now_ns();
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
	}
}

int xm_control_start(struct xm_daemon *d)
{
	return xm_loop_watch(&d->loop, &d->ctl_watch, d->ctl_fd, 0, on_accept);
}
