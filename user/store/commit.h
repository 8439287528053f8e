/* SPDX-License-Identifier: GPL-2.0 */
/* When a write is durable: RWF_DSYNC where the device honours it, else group commit with one
 * fdatasync per batch (docs/protocol.md §7). */
#ifndef XM_COMMIT_H
#define XM_COMMIT_H

#include <stdbool.h>
#include <linux/types.h>

#include "util/loop.h"

enum xm_durability {
	XM_DUR_DSYNC, /* RWF_DSYNC on every write: write-through cache, or FUA support */
	XM_DUR_GROUP, /* volatile cache without FUA: batch writes, then one fdatasync */
};

/* A completed write waiting to become durable; durable() runs once, err 0 or -errno. */
struct xm_commit_item {
	struct xm_commit_item *next;
	void (*durable)(struct xm_commit_item *it, int err);
	bool solo; /* submitted alone with RWF_DSYNC: durable at its CQE (§7.2 rule 1) */
};

struct xm_commit {
	struct xm_loop *loop;
	int fd;
	enum xm_durability mode;
	char cache[16]; /* what sysfs said: "write back", "write through", or "unknown" */
	bool fua;
	__u32 writes_inflight;		/* submitted, CQE not yet seen */
	__u32 solo_inflight;		/* of those, solo writes (never part of a batch) */
	struct xm_commit_item *waiting; /* completed, not covered by an fsync yet */
	struct xm_commit_item **waiting_tail;
	__u32 nwaiting;
	__u64 oldest_ns;		   /* CQE time of the oldest waiting write */
	struct xm_commit_item *committing; /* covered by the fsync in flight */
	bool fsync_inflight;
	bool urgent; /* a FUA write or a flush is waiting: commit without batching */
	struct xm_io fsync_io;
	int failed; /* first fsync error, sticky */
	__u64 commits, commit_writes, solo_writes;
};

/* Picks the mode from the device behind fd (path for messages).  Returns 0 or -errno. */
int xm_commit_init(struct xm_commit *c, struct xm_loop *loop, int fd);
const char *xm_durability_name(enum xm_durability m);

/* The RWF_* flags the next write must carry: RWF_DSYNC in dsync mode, and in group mode when the
 * engine is idle, so that the write goes alone (§7.2 rule 1).  Ask before counting its items. */
int xm_commit_rw_flags(const struct xm_commit *c);
/* Count an item of a write submitted with rw_flags (one write may carry several items: the
 * secondary's merged frames).  A group-mode item with RWF_DSYNC is solo. */
void xm_commit_submitted(struct xm_commit *c, struct xm_commit_item *it, int rw_flags);
/* Its CQE: res < 0 fails the item at once; otherwise it becomes durable now (dsync, solo) or after
 * the next fdatasync (group).  urgent: do not wait for a batch. */
void xm_commit_completed(struct xm_commit *c, struct xm_commit_item *it, int res, bool urgent,
			 __u64 now);
/* Starts an fdatasync when a trigger holds (§7.2); call once per loop pass. */
void xm_commit_poll(struct xm_commit *c, __u64 now);
/* When xm_commit_poll next needs to run, or UINT64_MAX. */
__u64 xm_commit_deadline(const struct xm_commit *c);
/* Nothing submitted, waiting or committing. */
bool xm_commit_idle(const struct xm_commit *c);

#endif
