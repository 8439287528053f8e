// SPDX-License-Identifier: GPL-2.0
/* NBD server: listeners, connections, replies, and the requests handed to the export; nonblocking
 * on the loop (the handshake and request parsing are in conn.c). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "nbd/internal.h"
#include "nbd/tls.h"

static void on_cancel_done(struct xm_io *io, int res, __u32 cqe_flags)
{
	/* Nothing to do: -ENOENT or -EALREADY only mean the poll is ending by other means. */
}

static struct xm_io cancel_io = {.fn = on_cancel_done};

/* Cancels whatever io_uring request carries target as its user_data. */
static int cancel_request(struct xm_loop *loop, struct xm_io *target)
{
	struct io_uring_sqe *sqe = xm_loop_sqe(loop, &cancel_io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, target, 0);
	io_uring_sqe_set_data(sqe, &cancel_io);
	return 0;
}

void srv_maybe_free(struct xm_nbd_server *s)
{
	if (!s->stopped || s->in_stop || s->nconns || s->lis[0].watched || s->lis[1].watched ||
	    s->kick_armed)
		return;
	nbd_tls_creds_free(s->tls);
	free(s->unix_path);
	free(s->export_name);
	free(s);
}

void conn_maybe_free(struct nbd_conn *c)
{
	struct xm_nbd_server *s = c->srv;

	if (!c->closed || c->in_input || c->in_watched || c->pollout_armed || c->kick_armed ||
	    c->outstanding)
		return;
	free(c->inbuf);
	free(c);
	s->nconns--;
	srv_maybe_free(s);
}

static void on_kick(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct nbd_conn *c = container_of(io, struct nbd_conn, kick_io);

	c->kick_armed = false;
	if (c->closed) {
		conn_maybe_free(c);
		return;
	}
	conn_input(c);
}

/* Runs the input side again from the loop, never from inside xm_nbd_done or a send. */
void conn_kick(struct nbd_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->kick_armed || c->closed)
		return;
	sqe = xm_loop_sqe(c->srv->loop, &c->kick_io);
	if (!sqe) {
		pr_warn("nbd: no io_uring submission slot, dropping connection %llu",
			(unsigned long long)c->id);
		conn_close(c, "no io_uring submission slot");
		return;
	}
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, &c->kick_io);
	c->kick_armed = true;
}

/* After a completion or a flush: finish a drain, or resume a connection stopped at a limit. */
void conn_progress(struct nbd_conn *c)
{
	if (c->closed)
		return;
	if (c->draining) {
		if (!c->outstanding && !c->out_head)
			conn_close(c, "disconnected");
		return;
	}
	if (c->paused && !conn_over_limit(c))
		conn_kick(c);
}

static void on_pollout(struct xm_io *io, int res, __u32 cqe_flags);

static void conn_arm_pollout(struct nbd_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->pollout_armed || c->closed)
		return;
	sqe = xm_loop_sqe(c->srv->loop, &c->pollout_io);
	if (!sqe) {
		pr_warn("nbd: no io_uring submission slot, dropping connection %llu",
			(unsigned long long)c->id);
		conn_close(c, "no io_uring submission slot");
		return;
	}
	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data(sqe, &c->pollout_io);
	c->pollout_armed = true;
}

/* Sends what the socket takes now and queues the rest, in order.  Closes c on a send error. */
void conn_send_raw(struct nbd_conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	size_t total = 0, sent = 0, pos = 0;
	struct out_chunk *chunk;
	ssize_t n;
	int i;

	if (c->closed)
		return;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!c->out_head) {
		do
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c, strerror(errno));
			return;
		}
		sent = n > 0 ? (size_t)n : 0;
		if (sent == total)
			return;
	}
	chunk = malloc(sizeof(*chunk) + total - sent);
	if (!chunk) {
		conn_close(c, "out of memory for a reply");
		return;
	}
	chunk->next = NULL;
	chunk->len = total - sent;
	chunk->off = 0;
	for (i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len, skip = 0;

		if (sent >= len) {
			sent -= len;
			continue;
		}
		skip = sent;
		sent = 0;
		memcpy(chunk->data + pos, (const char *)iov[i].iov_base + skip, len - skip);
		pos += len - skip;
	}
	if (c->out_tail)
		c->out_tail->next = chunk;
	else
		c->out_head = chunk;
	c->out_tail = chunk;
	c->out_bytes += chunk->len;
	conn_arm_pollout(c);
}

/* The same, through TLS once the client asked for it (tls.c ends in conn_send_raw). */
void conn_send(struct nbd_conn *c, const struct iovec *iov, int iovcnt)
{
	if (c->tls)
		nbd_tls_send(c, iov, iovcnt);
	else
		conn_send_raw(c, iov, iovcnt);
}

void conn_send_buf(struct nbd_conn *c, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	conn_send(c, &iov, 1);
}

/* Sends queued replies until the socket is full; returns with POLLOUT armed if any remain. */
void conn_flush(struct nbd_conn *c)
{
	while (!c->closed && c->out_head) {
		struct out_chunk *chunk = c->out_head;
		ssize_t n = send(c->fd, chunk->data + chunk->off, chunk->len - chunk->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_arm_pollout(c);
				return;
			}
			conn_close(c, strerror(errno));
			return;
		}
		chunk->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (chunk->off < chunk->len)
			continue;
		c->out_head = chunk->next;
		if (!c->out_head)
			c->out_tail = NULL;
		free(chunk);
	}
	conn_progress(c);
}

static void on_pollout(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct nbd_conn *c = container_of(io, struct nbd_conn, pollout_io);

	c->pollout_armed = false;
	if (c->closed) {
		conn_maybe_free(c);
		return;
	}
	/* POLLERR or POLLHUP show up as a failing send(). */
	if (res < 0 && res != -ECANCELED) {
		conn_close(c, strerror(-res));
		return;
	}
	conn_flush(c);
}

void conn_simple_reply(struct nbd_conn *c, __u64 cookie, __u32 error)
{
	struct nbd_simple_reply r = {
		.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
		.error = htobe32(error),
		.cookie = htobe64(cookie),
	};

	if (error)
		c->srv->counters.replies_err++;
	conn_send_buf(c, &r, sizeof(r));
}

static void on_in_released(struct xm_watch *w)
{
	struct nbd_conn *c = container_of(w, struct nbd_conn, in_watch);

	c->in_watched = false;
	conn_maybe_free(c);
}

void conn_close(struct nbd_conn *c, const char *why)
{
	struct xm_nbd_server *s = c->srv;
	struct out_chunk *chunk;

	if (c->closed)
		return;
	c->closed = true;
	pr_debug("nbd: connection %llu: closing: %s", (unsigned long long)c->id, why);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->counters.active--;
	conn_set_paused(c, false);

	if (c->in_watched && xm_loop_unwatch(s->loop, &c->in_watch, on_in_released))
		pr_warn("nbd: cannot stop watching connection %llu", (unsigned long long)c->id);
	/* The poll's own completion (-ECANCELED) releases pollout_io. */
	if (c->pollout_armed && cancel_request(s->loop, &c->pollout_io))
		pr_warn("nbd: cannot cancel a poll on connection %llu", (unsigned long long)c->id);
	nbd_tls_end(c);
	close(c->fd);
	c->fd = -1;

	while ((chunk = c->out_head)) {
		c->out_head = chunk->next;
		free(chunk);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	free(c->opt_data);
	c->opt_data = NULL;
	if (c->cur) {
		struct nbd_ireq *ir = c->cur;

		conn_payload_over(c);
		c->cur = NULL;
		srv_uncharge(s, ir);
		ireq_free(ir);
	}
	requests_drop(c);
	conn_maybe_free(c);
}

static void conn_new(struct xm_nbd_server *s, int fd, bool tcp)
{
	struct nbd_hello hello = {
		.magic = htobe64(NBD_INIT_MAGIC),
		.opts_magic = htobe64(NBD_OPTS_MAGIC),
		.flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	struct nbd_conn *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (c)
		c->inbuf = malloc(XM_NBD_INBUF);
	if (!c || !c->inbuf) {
		pr_warn("nbd: accept: out of memory");
		free(c);
		close(fd);
		return;
	}
	/* Replies are whole messages already: do not hold them back. */
	if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		pr_debug("nbd: TCP_NODELAY: %s", strerror(errno));
	c->srv = s;
	c->fd = fd;
	c->state = ST_CLIENT_FLAGS;
	c->tls_required = tcp && s->tls;
	c->pollout_io.fn = on_pollout;
	c->kick_io.fn = on_kick;
	err = xm_loop_watch(s->loop, &c->in_watch, fd, POLLIN, conn_on_readable);
	if (err) {
		pr_warn("nbd: accept: cannot watch the connection: %s", strerror(-err));
		free(c->inbuf);
		free(c);
		close(fd);
		return;
	}
	c->in_watched = true;
	c->id = ++s->counters.connections;
	s->counters.active++;
	s->nconns++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	pr_debug("nbd: connection %llu: accepted%s", (unsigned long long)c->id,
		 tcp ? " over TCP" : "");
	conn_send_buf(c, &hello, sizeof(hello));
}

static void on_listener(struct xm_watch *w, int revents)
{
	struct nbd_listener *l = container_of(w, struct nbd_listener, watch);

	while (!l->srv->stopped) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				pr_warn("nbd: accept: %s", strerror(errno));
			return;
		}
		conn_new(l->srv, fd, l->tcp);
	}
}

static void on_listener_released(struct xm_watch *w)
{
	struct nbd_listener *l = container_of(w, struct nbd_listener, watch);

	l->watched = false;
	srv_maybe_free(l->srv);
}

static int listen_unix(struct xm_nbd_server *s, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		pr_warn("nbd: socket path '%s' is too long (at most %zu bytes)", path,
			sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	/* A socket file left behind by an earlier run; anything else is not ours to remove. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode) && unlink(path) && errno != ENOENT) {
		err = -errno;
		pr_warn("nbd: remove stale socket '%s': %s", path, strerror(errno));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_warn("nbd: socket: %s", strerror(errno));
		return err;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		pr_warn("nbd: bind '%s': %s", path, strerror(errno));
		goto out_close;
	}
	s->unix_bound = true;
	/* Whoever connects reads and overwrites the disk: this user only, or also --nbd-group.  Set
	 * before listen(), so no connection is ever accepted under the umask's mode. */
	if (s->cfg.unix_group && chown(path, (uid_t)-1, s->cfg.unix_gid)) {
		err = -errno;
		pr_warn("nbd: chown '%s' to group %u: %s", path, (unsigned)s->cfg.unix_gid,
			strerror(errno));
		goto out_close;
	}
	if (chmod(path, s->cfg.unix_group ? 0660 : 0600)) {
		err = -errno;
		pr_warn("nbd: chmod '%s': %s", path, strerror(errno));
		goto out_close;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		pr_warn("nbd: listen on '%s': %s", path, strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
}

static int listen_tcp(const char *addr, __u16 port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	bool v6 = strchr(addr, ':');
	int fd, one = 1, err;

	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr,
		      v6 ? (void *)&sin6.sin6_addr : &sin.sin_addr) != 1) {
		pr_warn("nbd: '%s' is not a numeric IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_warn("nbd: socket: %s", strerror(errno));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) {
		err = -errno;
		pr_warn("nbd: SO_REUSEADDR: %s", strerror(errno));
		goto out_close;
	}
	/* [::] means IPv6 only, as written; 0.0.0.0 is for IPv4. */
	if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) {
		err = -errno;
		pr_warn("nbd: IPV6_V6ONLY: %s", strerror(errno));
		goto out_close;
	}
	if (v6 ? bind(fd, (struct sockaddr *)&sin6, sizeof(sin6))
	       : bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		err = -errno;
		pr_warn("nbd: bind %s%s%s:%u: %s", v6 ? "[" : "", addr, v6 ? "]" : "", port,
			strerror(errno));
		goto out_close;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		pr_warn("nbd: listen on %s%s%s:%u: %s", v6 ? "[" : "", addr, v6 ? "]" : "", port,
			strerror(errno));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
}

static bool is_pow2(__u32 v)
{
	return v && !(v & (v - 1));
}

static bool config_valid(const struct xm_nbd_config *cfg)
{
	if (!cfg->unix_path && !cfg->tcp_port)
		return false;
	/* proto.md, "Block size constraints". */
	if (!is_pow2(cfg->min_block) || cfg->min_block > 65536)
		return false;
	if (!is_pow2(cfg->pref_block) || cfg->pref_block < cfg->min_block)
		return false;
	if (cfg->max_block < cfg->min_block || cfg->max_block % cfg->min_block)
		return false;
	return cfg->size % cfg->min_block == 0;
}

/* Closes the listeners; the server is freed once their watches are released. */
static void srv_close_listeners(struct xm_nbd_server *s)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct nbd_listener *l = &s->lis[i];

		if (l->watched && xm_loop_unwatch(s->loop, &l->watch, on_listener_released))
			pr_warn("nbd: cannot stop watching a listener");
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	if (s->unix_bound && unlink(s->unix_path) && errno != ENOENT)
		pr_warn("nbd: remove '%s': %s", s->unix_path, strerror(errno));
	s->unix_bound = false;
}

struct xm_nbd_server *xm_nbd_server_start(struct xm_loop *loop, const struct xm_nbd_config *cfg,
					  const struct xm_nbd_ops *ops, void *ctx)
{
	struct xm_nbd_server *s;
	unsigned int i;
	int err;

	if (!loop || !cfg || !ops || !ops->submit || !config_valid(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cfg = *cfg;
	s->ops = *ops;
	s->ctx = ctx;
	s->export_name = strdup(cfg->export_name ? cfg->export_name : "");
	s->unix_path = cfg->unix_path ? strdup(cfg->unix_path) : NULL;
	if (!s->export_name || (cfg->unix_path && !s->unix_path)) {
		err = -ENOMEM;
		goto out_free;
	}
	s->cfg.export_name = s->export_name;
	s->cfg.unix_path = s->unix_path;
	for (i = 0; i < 2; i++) {
		s->lis[i].srv = s;
		s->lis[i].fd = -1;
	}
	s->lis[1].tcp = true;
	xm_list_init(&s->todo);

	if (cfg->tcp_port && cfg->tls_psk_file) {
		s->tls = nbd_tls_creds_load(cfg->tls_psk_file);
		if (!s->tls) {
			err = -errno;
			goto out_free;
		}
	}
	if (s->unix_path) {
		err = listen_unix(s, s->unix_path);
		if (err < 0)
			goto out_close;
		s->lis[0].fd = err;
	}
	if (cfg->tcp_port) {
		err = listen_tcp(cfg->tcp_addr ? cfg->tcp_addr : "127.0.0.1", cfg->tcp_port);
		if (err < 0)
			goto out_close;
		s->lis[1].fd = err;
	}
	for (i = 0; i < 2; i++) {
		struct nbd_listener *l = &s->lis[i];

		if (l->fd < 0)
			continue;
		err = xm_loop_watch(loop, &l->watch, l->fd, POLLIN, on_listener);
		if (err) {
			pr_warn("nbd: cannot watch the listening socket: %s", strerror(-err));
			goto out_close;
		}
		l->watched = true;
	}
	pr_debug("nbd: serving '%s' (%llu bytes)%s%s%s%s", s->export_name,
		 (unsigned long long)cfg->size, s->unix_path ? " on " : "",
		 s->unix_path ? s->unix_path : "", cfg->tcp_port ? " and on TCP" : "",
		 s->tls ? " with TLS" : "");
	return s;

out_close:
	/* A listener already watched keeps s alive until its release. */
	s->stopped = true;
	srv_close_listeners(s);
	if (s->lis[0].watched || s->lis[1].watched) {
		errno = -err;
		return NULL;
	}
out_free:
	nbd_tls_creds_free(s->tls);
	free(s->unix_path);
	free(s->export_name);
	free(s);
	errno = -err;
	return NULL;
}

void xm_nbd_server_stop(struct xm_nbd_server *s)
{
	if (!s || s->stopped)
		return;
	s->stopped = true;
	s->in_stop = true;
	srv_close_listeners(s);
	while (s->conns)
		conn_close(s->conns, "server stopping");
	s->in_stop = false;
	pr_debug("nbd: stopped, %u requests still at the export", s->outstanding);
	srv_maybe_free(s);
}

__u32 xm_nbd_server_outstanding(const struct xm_nbd_server *s)
{
	return s->outstanding;
}

const struct xm_nbd_counters *xm_nbd_server_counters(const struct xm_nbd_server *s)
{
	return &s->counters;
}
