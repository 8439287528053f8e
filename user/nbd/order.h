/* SPDX-License-Identifier: GPL-2.0 */
/* The order of overlapping writes in the NBD server: a read-modify-write never runs beside another
 * write to its blocks.  Pure: the caller starts what it is told may start. */
#ifndef XM_NBD_ORDER_H
#define XM_NBD_ORDER_H

#include <stdbool.h>
#include <linux/types.h>

/*
 * One write the NBD server holds, over the block-aligned span it touches.  Two ranges conflict
 * when they overlap and at least one of them is a read-modify-write: the RMW reads its span before
 * it writes it, so a write beside it would either be read stale or be overwritten with stale
 * bytes.  Plain writes never conflict with each other here (the export orders those, §8).
 */
struct xm_nbd_range {
	struct xm_nbd_range *prev, *next; /* arrival order */
	__u64 start, end;		  /* [start, end) */
	bool rmw;
	bool started; /* no earlier conflicting range is left: handed on */
};

struct xm_nbd_order {
	struct xm_nbd_range *head, *tail;
	__u32 count;   /* ranges held */
	__u32 rmw;     /* of them read-modify-writes */
	__u32 waiting; /* of them not started */
};

/* Appends r in arrival order; returns true, with r marked started, if nothing earlier conflicts. */
bool xm_nbd_order_add(struct xm_nbd_order *o, struct xm_nbd_range *r, __u64 start, __u64 end,
		      bool rmw);
/* Removes r, started or not (the write is done, or dropped).  Ranges it held back may now start:
 * take them with xm_nbd_order_next. */
void xm_nbd_order_remove(struct xm_nbd_order *o, struct xm_nbd_range *r);
/* The earliest range not started that no earlier range conflicts with, now marked started; NULL
 * when there is none. */
struct xm_nbd_range *xm_nbd_order_next(struct xm_nbd_order *o);

#endif
