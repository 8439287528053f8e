/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The activity log (docs/protocol.md §8.6): a bounded set of hot extents whose intent bits stay
 * set on disk, so a write into a hot extent needs no metadata I/O.  Like DRBD's al-extents, but
 * it sizes itself: it grows when an extent it evicted for room comes back soon (it was too small
 * for the working set) and shrinks when less than a quarter of it was in use for a minute.  An
 * extent idle for XM_AL_AGE_NS leaves it, so a box at rest has nothing to resync after a crash.
 * Pure bookkeeping: the primary marks the bits and the sweep clears them.
 */
#ifndef XM_ACTLOG_H
#define XM_ACTLOG_H

#include <stdbool.h>
#include <linux/types.h>

#define XM_AL_EXTENT	(4u << 20) /* bytes per extent, DRBD's */
#define XM_AL_MIN	16u	   /* extents, at least */
#define XM_AL_MAX	4096u	   /* extents, at most (16 GiB hot, resynced after a crash) */
#define XM_AL_THRASH_NS (10ull * 1000000000ull) /* evicted and back within this: too small */
#define XM_AL_IDLE_NS	(60ull * 1000000000ull) /* little used this long: shrinks */
#define XM_AL_AGE_NS	(2ull * 1000000000ull)	/* an extent idle this long leaves */

struct xm_actlog {
	__u64 nextents;
	__u32 extent_shift; /* log2(XM_AL_EXTENT) */
	__u32 region_shift; /* log2(bitmap block) */
	__u64 nregions;
	__u32 cap, used;		/* extents allowed, extents hot */
	__u32 head, tail;		/* most and least recently used; XM_AL_NONE when empty */
	__u32 *prev, *next;		/* LRU links per extent */
	__u8 *hot_extent;		/* per extent */
	__u64 *last_touch, *evicted_at; /* per extent, ns */
	__u64 *hot;			/* per region: the sweep keeps these intent bits */
	__u64 hits, misses, evictions, aged, thrash, grows, shrinks;
	__u64 thrash_seen;  /* thrash at the last adapt */
	__u64 low_since_ns; /* less than a quarter in use since; 0: not */
};

#define XM_AL_NONE 0xffffffffu

/* disk_size bytes, regions of 1 << region_shift bytes.  Returns 0, -EINVAL or -ENOMEM. */
int xm_actlog_init(struct xm_actlog *al, __u64 disk_size, __u32 region_shift);
void xm_actlog_free(struct xm_actlog *al);
/* A write to [off, off + len): its extents become the most recent.  Returns how many were cold
 * (misses); their regions are hot now.  Extents beyond the capacity are evicted (their regions
 * are no longer hot: the next sweep may clear them). */
__u32 xm_actlog_touch(struct xm_actlog *al, __u64 off, __u64 len, __u64 now);
/* The bytes of the whole extents that cover [off, off + len), clamped to the disk. */
void xm_actlog_span(const struct xm_actlog *al, __u64 off, __u64 len, __u64 *xoff, __u64 *xlen);
/* Once per sweep: ages idle extents out, grows after thrashing, shrinks after a minute of
 * little use. */
void xm_actlog_adapt(struct xm_actlog *al, __u64 now);
/* Evicts everything (a clean end: nothing needs to stay hot). */
void xm_actlog_clear(struct xm_actlog *al);

#endif
