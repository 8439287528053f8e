/* SPDX-License-Identifier: GPL-2.0 */
/* What a handshake decides from the two boxes' generations (docs/resync.md §3). */
#ifndef XM_GEN_H
#define XM_GEN_H

#include <stdbool.h>
#include <linux/types.h>

#include "store/meta.h"
#include "xdpmirror.h"

struct xm_gen_info {
	__u64 current_gen, bitmap_gen, history[2];
	__u64 dirty_bits;
	__u8 disk_state;
};

/*
 * The decision, computed by the secondary (and shown by the primary), in this order:
 *   secondary current == 0 (never synced)                  FULL
 *   current equal                                          NONE, or BITMAP if either has bits
 *   secondary current == primary bitmap_gen                BITMAP (the primary wrote since)
 *   primary current == secondary bitmap_gen                PEER_NEWER (the secondary wrote since)
 *   both bitmap_gen equal and nonzero                      SPLIT_BRAIN
 *   secondary current in the primary's history             FULL (too old for the bitmap)
 *   otherwise                                              UNRELATED
 * discard_secondary (the operator resolved in the primary's favour on the secondary): PEER_NEWER
 * and SPLIT_BRAIN become BITMAP (both bitmaps together cover every region either side changed),
 * UNRELATED becomes FULL.
 */
enum xm_sync_decision xm_sync_decide(const struct xm_gen_info *pri, const struct xm_gen_info *sec,
				     bool discard_secondary);
const char *xm_sync_decision_name(enum xm_sync_decision d);

/* This box's generations, disk state and out-of-sync bit count, from its metadata. */
void xm_gen_of_meta(const struct xm_meta *m, struct xm_gen_info *g);

/* Wire conversion of struct xm_hello_gen (big-endian). */
void xm_gen_to_wire(const struct xm_gen_info *g, __u32 bitmap_block, __u8 flags, __u8 decision,
		    struct xm_hello_gen *w);
void xm_gen_from_wire(const struct xm_hello_gen *w, struct xm_gen_info *g);

#endif
