// SPDX-License-Identifier: GPL-2.0
/* What one NBD connection may hold, so that no client stalls the others: WRITE payload counted as
 * it arrives against a server-wide budget, a connection's share of it, and a deadline for a message
 * a client started and does not finish (docs/protocol.md §8.4). */
#include "nbd/internal.h"
#include "util/log.h"

/* A connection's share of the budget: an equal part among those holding bytes, never less than
 * the largest WRITE, which must always fit. */
static __u64 conn_share(const struct nbd_conn *c)
{
	const struct xm_nbd_server *s = c->srv;
	__u64 share = XM_NBD_MAX_WRITE_BYTES / (s->holders ? s->holders : 1);

	return share > s->cfg.max_block ? share : s->cfg.max_block;
}

/* Payload bytes c may receive now within the budget and its share. */
static __u64 payload_room(const struct nbd_conn *c)
{
	const struct xm_nbd_server *s = c->srv;
	__u64 share = conn_share(c);
	__u64 all = s->write_bytes < XM_NBD_MAX_WRITE_BYTES
			    ? XM_NBD_MAX_WRITE_BYTES - s->write_bytes
			    : 0;
	__u64 own = c->charged < share ? share - c->charged : 0;

	return all < own ? all : own;
}

/*
 * Whether c may finish its payload past the budget.  When every byte of the budget belongs to
 * payloads still arriving, nothing the export holds will free any of it; then one connection at a
 * time goes on, so the server holds at most the budget plus one largest WRITE.
 */
static bool may_finish(const struct nbd_conn *c)
{
	const struct xm_nbd_server *s = c->srv;

	if (s->finisher)
		return s->finisher == c;
	return s->write_bytes == s->payload_bytes && c->charged < conn_share(c);
}

bool conn_over_limit(const struct nbd_conn *c)
{
	const struct xm_nbd_server *s = c->srv;

	switch (c->state) {
	case ST_REQ_PAYLOAD:
		/* Replies do not grow while a payload is read: only the budget holds it back. */
		return !payload_room(c) && !may_finish(c);
	case ST_REQ_HDR:
		if (c->outstanding >= XM_NBD_MAX_OUTSTANDING || c->charged >= conn_share(c) ||
		    s->write_bytes >= XM_NBD_MAX_WRITE_BYTES)
			return true;
		break;
	default:
		break;
	}
	return c->out_bytes > XM_NBD_MAX_QUEUED;
}

void conn_set_paused(struct nbd_conn *c, bool paused)
{
	if (c->paused == paused)
		return;
	c->paused = paused;
	if (paused)
		c->srv->npaused++;
	else
		c->srv->npaused--;
}

size_t conn_data_room(struct nbd_conn *c, bool in_hand)
{
	struct xm_nbd_server *s = c->srv;
	__u64 room;

	if (c->state != ST_REQ_PAYLOAD)
		return c->need;
	room = payload_room(c);
	/* Only a connection with bytes in hand may finish: a client that stalls would otherwise
	 * hold everyone up until its deadline. */
	if (!room && in_hand && may_finish(c)) {
		if (s->finisher != c)
			pr_debug("nbd: connection %llu: budget full of payloads arriving, it "
				 "finishes "
				 "its own",
				 (unsigned long long)c->id);
		s->finisher = c;
	}
	if (s->finisher == c)
		room = c->need;
	return room < c->need ? (size_t)room : c->need;
}

void conn_data_took(struct nbd_conn *c, size_t n)
{
	struct xm_nbd_server *s = c->srv;

	c->got += n;
	c->need -= n;
	if (c->state != ST_REQ_PAYLOAD || !n)
		return;
	if (!c->charged)
		s->holders++;
	c->cur->charged += n;
	c->charged += n;
	s->write_bytes += n;
	s->payload_bytes += n;
}

/* Resumes the connections a limit stopped that may go on now. */
static void srv_resume(struct xm_nbd_server *s)
{
	struct nbd_conn *c, *next;

	if (!s->npaused)
		return;
	for (c = s->conns; c; c = next) {
		next = c->next; /* a failed kick closes c */
		if (c->paused && !conn_over_limit(c))
			conn_kick(c);
	}
}

void conn_payload_over(struct nbd_conn *c)
{
	struct xm_nbd_server *s = c->srv;

	s->payload_bytes -= c->cur->charged;
	if (s->finisher != c)
		return;
	s->finisher = NULL;
	/* Another connection may now be the one to finish. */
	srv_resume(s);
}

void srv_uncharge(struct xm_nbd_server *s, struct nbd_ireq *ir)
{
	struct nbd_conn *c = ir->conn;

	if (!ir->charged)
		return;
	s->write_bytes -= ir->charged;
	c->charged -= ir->charged;
	ir->charged = 0;
	if (!c->charged)
		s->holders--;
	srv_resume(s);
}

/* Waiting for the rest of a message the client started, and not held back by the server. */
static bool mid_message(const struct nbd_conn *c)
{
	if (c->closed || c->draining || c->paused)
		return false;
	switch (c->state) {
	case ST_OPT_DATA:
	case ST_REQ_PAYLOAD:
	case ST_REQ_DISCARD:
		return true;
	default:
		return c->in_end > c->in_start; /* part of a header */
	}
}

void xm_nbd_server_tick(struct xm_nbd_server *s, __u64 now)
{
	struct nbd_conn *c;

	if (!s)
		return;
again:
	for (c = s->conns; c; c = c->next) {
		if (!mid_message(c)) {
			c->stall_since = 0;
			continue;
		}
		/* The clock starts at the first tick that finds this message unfinished; time the
		 * server held the connection back does not count. */
		if (!c->stall_since || c->stall_msgs != c->msgs) {
			c->stall_since = now;
			c->stall_msgs = c->msgs;
			continue;
		}
		if (now - c->stall_since < XM_NBD_MESSAGE_DEADLINE_NS)
			continue;
		s->counters.timeouts++;
		pr_warn("nbd: connection %llu: a message started %llu s ago is not finished; "
			"disconnected (a stalled client)",
			(unsigned long long)c->id,
			(unsigned long long)((now - c->stall_since) / 1000000000ull));
		conn_close(c, "stalled in the middle of a message");
		/* Closing may close others (a failed kick): walk the list again. */
		goto again;
	}
}
