// SPDX-License-Identifier: GPL-2.0
/* The readers of the events stream: a bounded queue of lines per reader, written as the reader
 * takes them; past its bound a reader gets one last line and is closed (docs/events.md). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/evreaders.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

/*
 * One reader.  buf always starts at the start of a line: [0, off) is sent, [off, len) waits.
 * Room for the bound, the sent part of a line half out, and the events-lost line.
 */
struct xm_ev_reader {
	struct xm_watch watch;
	struct xm_ev_readers *rs;
	int fd;
	char *buf;
	size_t off, len, bound, cap;
	size_t heard; /* bytes the reader sent after its request (it has nothing to say) */
	bool ending;  /* fell behind: its events-lost line is queued, nothing more */
	bool closing; /* closed; freed once the loop has dropped its poll */
	__u64 deadline_ns;
	struct xm_ev_reader *next, **pprev;
};

void xm_ev_readers_init(struct xm_ev_readers *rs, struct xm_loop *loop, const char *dev)
{
	memset(rs, 0, sizeof(*rs));
	rs->loop = loop;
	rs->dev = dev;
}

static void reader_released(struct xm_watch *w)
{
	struct xm_ev_reader *r = xm_container_of(w, struct xm_ev_reader, watch);

	*r->pprev = r->next;
	if (r->next)
		r->next->pprev = r->pprev;
	free(r);
}

static void reader_close(struct xm_ev_reader *r)
{
	r->closing = true;
	r->rs->open--;
	free(r->buf);
	r->buf = NULL;
	if (xm_loop_unwatch(r->rs->loop, &r->watch, reader_released)) {
		pr_warn("%s: cannot drop an events reader's poll", r->rs->dev);
		shutdown(r->fd, SHUT_RDWR);
	}
	close(r->fd);
}

/* Writes what the socket takes now.  Returns 0 once nothing waits, -EAGAIN, or -errno. */
static int reader_write(struct xm_ev_reader *r)
{
	ssize_t n;

	while (r->off < r->len) {
		/* MSG_NOSIGNAL: a reader gone away is an error to us, not a SIGPIPE. */
		n = send(r->fd, r->buf + r->off, r->len - r->off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		r->off += (size_t)n;
	}
	r->off = r->len = 0;
	return 0;
}

/* After lines were queued outside the reader's handler: out now, or wait for room. */
static void reader_flush(struct xm_ev_reader *r)
{
	int err = reader_write(r);

	if (err == -EAGAIN) {
		if (r->watch.events & POLLOUT)
			return;
		if (!xm_loop_watch_update(r->rs->loop, &r->watch, POLLIN | POLLOUT))
			return;
		err = -EBUSY;
	}
	if (err)
		pr_debug("%s: events reader: %s", r->rs->dev, strerror(-err));
	if (err || r->ending)
		reader_close(r);
}

void xm_ev_time(char out[XM_EV_TIME_LEN])
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, XM_EV_TIME_LEN, "%s.%06dZ", sec, (int)(ts.tv_nsec / 1000));
}

/* The reader fell behind: what waits is dropped but for the rest of a line half out, one
 * events-lost line takes its place, and the reader is closed once that is out (or at the
 * deadline).  dropping is the line that did not fit. */
static void reader_overflow(struct xm_ev_reader *r)
{
	size_t keep = r->off, i, lost = 1;
	char when[XM_EV_TIME_LEN];
	const char *nl;
	int n;

	if (keep > 0 && r->buf[keep - 1] != '\n') {
		nl = memchr(r->buf + keep, '\n', r->len - keep);
		keep = nl ? (size_t)(nl - r->buf) + 1 : r->len;
	}
	for (i = keep; i < r->len; i++)
		lost += r->buf[i] == '\n';
	r->len = keep;
	xm_ev_time(when);
	/* The interface name is checked at attach (no quotes, no backslashes): plain JSON. */
	n = snprintf(r->buf + r->len, r->cap - r->len,
		     "{\"time\":\"%s\",\"dev\":\"%s\",\"type\":\"events-lost\",\"lost\":%zu,"
		     "\"buffer\":%zu}\n",
		     when, r->rs->dev, lost, r->bound);
	if (n > 0 && (size_t)n < r->cap - r->len)
		r->len += (size_t)n;
	r->ending = true;
	r->deadline_ns = xm_now_ns() + XM_EV_DEADLINE_NS;
	r->rs->dropped++;
	pr_info("%s: an events reader fell behind (%zu line(s) lost, bound %zu bytes): closing it",
		r->rs->dev, lost, r->bound);
	reader_flush(r);
}

static void reader_queue(struct xm_ev_reader *r, const char *line, size_t len)
{
	size_t waiting = r->len - r->off, start;
	const char *nl;

	if (r->ending || r->closing)
		return;
	if (waiting + len > r->bound) {
		reader_overflow(r);
		return;
	}
	if (r->len + len > r->cap) {
		/* Room at the front: keep only the line half out, from its start. */
		nl = r->off ? memrchr(r->buf, '\n', r->off) : NULL;
		start = nl ? (size_t)(nl - r->buf) + 1 : 0;
		memmove(r->buf, r->buf + start, r->len - start);
		r->off -= start;
		r->len -= start;
	}
	memcpy(r->buf + r->len, line, len);
	r->len += len;
	/* Lines were waiting: the poll already waits for room. */
	if (!waiting)
		reader_flush(r);
}

static void on_reader(struct xm_watch *w, int revents)
{
	struct xm_ev_reader *r = xm_container_of(w, struct xm_ev_reader, watch);
	char junk[256];
	ssize_t n;
	int err;

	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		/* A reader has nothing to say; what it sends is dropped.  Its end is its leaving.
		 * One that keeps talking is closed: a stream of bytes would wake the loop on every
		 * pass. */
		n = recv(r->fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n > 0)
			r->heard += (size_t)n;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
		    r->heard > XM_EV_TALK_MAX) {
			if (n > 0)
				pr_debug("%s: an events reader kept talking; closed", r->rs->dev);
			reader_close(r);
			return;
		}
	}
	err = reader_write(r);
	if ((err && err != -EAGAIN) || (!err && r->ending)) {
		reader_close(r);
		return;
	}
	xm_watch_rearm_for(w, err ? POLLIN | POLLOUT : POLLIN);
}

int xm_ev_readers_add(struct xm_ev_readers *rs, int fd, size_t bound, const char *first, size_t len)
{
	struct xm_ev_reader *r;
	int sndbuf = (int)bound, err;

	if (xm_ev_readers_full(rs))
		return -EBUSY;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->rs = rs;
	r->fd = fd;
	r->bound = bound;
	r->cap = bound + 2 * XM_EV_LINE_MAX;
	r->buf = malloc(r->cap);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	/* The kernel holds at most about as much again for a reader that stopped reading. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)))
		pr_debug("%s: events reader: SO_SNDBUF: %s", rs->dev, strerror(errno));
	err = xm_loop_watch_oneshot(rs->loop, &r->watch, fd, POLLIN, on_reader);
	if (err) {
		free(r->buf);
		free(r);
		return err;
	}
	r->next = rs->list;
	if (r->next)
		r->next->pprev = &r->next;
	r->pprev = &rs->list;
	rs->list = r;
	rs->open++;
	rs->total++;
	reader_queue(r, first, len);
	return 0;
}

void xm_ev_readers_send(struct xm_ev_readers *rs, const char *line, size_t len)
{
	struct xm_ev_reader *r, *next;

	if (len > XM_EV_LINE_MAX)
		return;
	for (r = rs->list; r; r = next) {
		next = r->next; /* a reader may be closed, never freed, here */
		reader_queue(r, line, len);
	}
}

void xm_ev_readers_tick(struct xm_ev_readers *rs, __u64 now)
{
	struct xm_ev_reader *r;

	for (r = rs->list; r; r = r->next)
		if (r->ending && !r->closing && now >= r->deadline_ns) {
			pr_debug("%s: an events reader did not take its last line in time",
				 rs->dev);
			reader_close(r);
		}
}

void xm_ev_readers_exit(struct xm_ev_readers *rs, const char *last, size_t len)
{
	struct xm_ev_reader *r, *next;

	for (r = rs->list; r; r = next) {
		next = r->next;
		if (!r->closing) {
			/* What is queued goes first, as far as the socket takes it now; the last
			 * line only behind a whole line, and only if it fits at once. */
			if (!r->ending)
				reader_write(r);
			if (last && !r->ending && r->off == r->len &&
			    send(r->fd, last, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				pr_debug("%s: an events reader missed the last line", rs->dev);
			close(r->fd);
			free(r->buf);
		}
		free(r);
	}
	rs->list = NULL;
	rs->open = 0;
}
