/* SPDX-License-Identifier: GPL-2.0 */
/* The handshake's HELLO payload, built and judged the same way by both roles (§4.3). */
#ifndef XM_HELLO_H
#define XM_HELLO_H

#include <stddef.h>
#include <linux/types.h>

#include "repl/role.h"
#include "xdpmirror.h"

/* What this box offers in its HELLO or HELLO_ACK, besides what its disk and metadata say. */
struct xm_hello_offer {
	enum xm_role role;
	char protocol;	     /* 'A', 'B' or 'C' */
	__u32 max_payload;   /* the largest DATA payload this box takes in one frame */
	__u32 window;	     /* frames it grants at the start */
	__u16 payload_align; /* where it wants DATA payloads to start in a frame */
	__u8 gen_flags;	     /* XM_HG_* in its xm_hello_gen */
};

/* This box's HELLO payload: its disk, its offer and its generations (from the metadata). */
void xm_hello_fill(const struct xm_role_env *env, const struct xm_hello_offer *o,
		   struct xm_hello2 *h);

/* The peer's HELLO fields that must hold whatever the roles (returns enum xm_refusal): a common
 * protocol revision, a block that is a power of two in 512..64K, a protocol letter. */
__u8 xm_hello_check(const struct xm_hello *peer);

/*
 * The terms both sides derive from the two offers: the block is the larger of the two disks'
 * blocks, a frame carries the smaller of the two payloads in whole blocks, and the export is the
 * primary's disk in whole blocks.  Returns XM_REFUSE_BLOCK_SIZE when no block fits a frame.
 */
__u8 xm_hello_terms(__u32 block_a, __u32 block_b, __u32 maxp_a, __u32 maxp_b, __u64 primary_disk,
		    __u32 *block, __u32 *max_payload, __u64 *export_size);

/*
 * The cause of a refusal (enum xm_refusal) in the words both boxes use, so that the refusing one
 * ("refused the primary: CAUSE") and the refused one ("refused by peer: CAUSE") name the same
 * thing (docs/protocol.md §4.5).  DISK_SIZE names the secondary's disk and the export in bytes,
 * which both boxes know.
 */
void xm_refusal_cause(__u8 code, __u64 secondary_disk, __u64 export_size, char *out, size_t len);

#endif
