// SPDX-License-Identifier: GPL-2.0
/* The order of overlapping writes in the NBD server (order.h): FIFO among conflicting ranges. */
#include <stddef.h>

#include "nbd/order.h"

static bool conflict(const struct xm_nbd_range *a, const struct xm_nbd_range *b)
{
	return (a->rmw || b->rmw) && a->start < b->end && b->start < a->end;
}

/* Whether a range earlier than r, started or waiting, conflicts with it: a waiting one counts too,
 * so that conflicting ranges start in arrival order. */
static bool held_back(const struct xm_nbd_order *o, const struct xm_nbd_range *r)
{
	const struct xm_nbd_range *q;

	for (q = o->head; q && q != r; q = q->next)
		if (conflict(q, r))
			return true;
	return false;
}

bool xm_nbd_order_add(struct xm_nbd_order *o, struct xm_nbd_range *r, __u64 start, __u64 end,
		      bool rmw)
{
	r->start = start;
	r->end = end;
	r->rmw = rmw;
	r->next = NULL;
	r->prev = o->tail;
	if (o->tail)
		o->tail->next = r;
	else
		o->head = r;
	o->tail = r;
	o->count++;
	if (rmw)
		o->rmw++;
	/* Without a read-modify-write anywhere nothing can conflict: no walk for aligned writes. */
	r->started = !o->rmw || !held_back(o, r);
	if (!r->started)
		o->waiting++;
	return r->started;
}

void xm_nbd_order_remove(struct xm_nbd_order *o, struct xm_nbd_range *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		o->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		o->tail = r->prev;
	r->prev = r->next = NULL;
	o->count--;
	if (r->rmw)
		o->rmw--;
	if (!r->started)
		o->waiting--;
}

struct xm_nbd_range *xm_nbd_order_next(struct xm_nbd_order *o)
{
	struct xm_nbd_range *r;

	if (!o->waiting)
		return NULL;
	for (r = o->head; r; r = r->next) {
		if (r->started || held_back(o, r))
			continue;
		r->started = true;
		o->waiting--;
		return r;
	}
	return NULL;
}
