// SPDX-License-Identifier: GPL-2.0
/* The activity log: hot extents in LRU order, a region mask for the sweep, and its own size
 * (docs/protocol.md §8.6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/actlog.h"

static void set_hot(struct xm_actlog *al, __u32 e, bool on)
{
	__u64 r = (__u64)e << (al->extent_shift - al->region_shift);
	__u64 end = r + (1ull << (al->extent_shift - al->region_shift));

	if (end > al->nregions)
		end = al->nregions;
	for (; r < end; r++) {
		if (on)
			al->hot[r / 64] |= 1ull << (r % 64);
		else
			al->hot[r / 64] &= ~(1ull << (r % 64));
	}
}

static void unlink_extent(struct xm_actlog *al, __u32 e)
{
	if (al->prev[e] != XM_AL_NONE)
		al->next[al->prev[e]] = al->next[e];
	else
		al->head = al->next[e];
	if (al->next[e] != XM_AL_NONE)
		al->prev[al->next[e]] = al->prev[e];
	else
		al->tail = al->prev[e];
}

static void push_head(struct xm_actlog *al, __u32 e)
{
	al->prev[e] = XM_AL_NONE;
	al->next[e] = al->head;
	if (al->head != XM_AL_NONE)
		al->prev[al->head] = e;
	al->head = e;
	if (al->tail == XM_AL_NONE)
		al->tail = e;
}

/* now: the time of an eviction for room, which a quick return counts as thrash; 0 for an
 * extent that aged out or a clear, which says nothing about the size. */
static void evict_tail(struct xm_actlog *al, __u64 now)
{
	__u32 e = al->tail;

	unlink_extent(al, e);
	al->hot_extent[e] = 0;
	al->evicted_at[e] = now;
	set_hot(al, e, false);
	al->used--;
	if (now)
		al->evictions++;
}

int xm_actlog_init(struct xm_actlog *al, __u64 disk_size, __u32 region_shift)
{
	memset(al, 0, sizeof(*al));
	al->extent_shift = (__u32)__builtin_ctz(XM_AL_EXTENT);
	if (!disk_size || region_shift > al->extent_shift)
		return -EINVAL;
	al->region_shift = region_shift;
	al->nextents = (disk_size + XM_AL_EXTENT - 1) >> al->extent_shift;
	al->nregions = (disk_size + (1ull << region_shift) - 1) >> region_shift;
	if (al->nextents >= XM_AL_NONE)
		return -EINVAL;
	al->prev = calloc(al->nextents, sizeof(*al->prev));
	al->next = calloc(al->nextents, sizeof(*al->next));
	al->hot_extent = calloc(al->nextents, 1);
	al->last_touch = calloc(al->nextents, sizeof(__u64));
	al->evicted_at = calloc(al->nextents, sizeof(__u64));
	al->hot = calloc((al->nregions + 63) / 64, sizeof(__u64));
	if (!al->prev || !al->next || !al->hot_extent || !al->last_touch || !al->evicted_at ||
	    !al->hot) {
		xm_actlog_free(al);
		return -ENOMEM;
	}
	al->head = al->tail = XM_AL_NONE;
	/* Four times the floor to start: a small random working set fits without a first grow. */
	al->cap = 4 * XM_AL_MIN < al->nextents ? 4 * XM_AL_MIN : (__u32)al->nextents;
	return 0;
}

void xm_actlog_free(struct xm_actlog *al)
{
	free(al->prev);
	free(al->next);
	free(al->hot_extent);
	free(al->last_touch);
	free(al->evicted_at);
	free(al->hot);
	memset(al, 0, sizeof(*al));
}

__u32 xm_actlog_touch(struct xm_actlog *al, __u64 off, __u64 len, __u64 now)
{
	__u64 e, end;
	__u32 misses = 0;

	if (!len || !al->nextents)
		return 0;
	end = (off + len - 1) >> al->extent_shift;
	for (e = off >> al->extent_shift; e <= end && e < al->nextents; e++) {
		al->last_touch[e] = now;
		if (al->hot_extent[e]) {
			al->hits++;
			if (al->head != e) {
				unlink_extent(al, (__u32)e);
				push_head(al, (__u32)e);
			}
			continue;
		}
		misses++;
		al->misses++;
		if (al->evicted_at[e] && now - al->evicted_at[e] < XM_AL_THRASH_NS)
			al->thrash++;
		while (al->used >= al->cap && al->tail != XM_AL_NONE)
			evict_tail(al, now);
		al->hot_extent[e] = 1;
		set_hot(al, (__u32)e, true);
		push_head(al, (__u32)e);
		al->used++;
	}
	return misses;
}

void xm_actlog_span(const struct xm_actlog *al, __u64 off, __u64 len, __u64 *xoff, __u64 *xlen)
{
	__u64 first = off >> al->extent_shift << al->extent_shift;
	__u64 last = len ? ((off + len - 1) >> al->extent_shift) + 1 : first >> al->extent_shift;
	__u64 disk_end = al->nregions << al->region_shift;

	last <<= al->extent_shift;
	if (last > disk_end)
		last = disk_end;
	*xoff = first;
	*xlen = last > first ? last - first : 0;
}

void xm_actlog_adapt(struct xm_actlog *al, __u64 now)
{
	__u32 max = XM_AL_MAX < al->nextents ? XM_AL_MAX : (__u32)al->nextents;

	/* A box at rest keeps nothing hot: a crash then resyncs only what was in flight. */
	while (al->tail != XM_AL_NONE && now - al->last_touch[al->tail] >= XM_AL_AGE_NS) {
		evict_tail(al, 0);
		al->aged++;
	}
	/* An extent came back soon after it was evicted for room: the working set is larger. */
	if (al->thrash > al->thrash_seen && al->cap < max) {
		al->cap = al->cap * 2 < max ? al->cap * 2 : max;
		al->grows++;
		al->low_since_ns = 0;
	}
	al->thrash_seen = al->thrash;
	/* Less than a quarter in use for a minute: half the size still holds what is in use, and
	 * bounds what a crash in a busy moment would resync. */
	if (al->used >= al->cap / 4 || al->cap <= XM_AL_MIN) {
		al->low_since_ns = 0;
		return;
	}
	if (!al->low_since_ns)
		al->low_since_ns = now;
	if (now - al->low_since_ns < XM_AL_IDLE_NS)
		return;
	al->cap = al->cap / 2 > XM_AL_MIN ? al->cap / 2 : XM_AL_MIN;
	al->shrinks++;
	al->low_since_ns = now;
	while (al->used > al->cap)
		evict_tail(al, now);
}

void xm_actlog_clear(struct xm_actlog *al)
{
	while (al->tail != XM_AL_NONE)
		evict_tail(al, 0);
}
