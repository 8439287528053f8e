// SPDX-License-Identifier: GPL-2.0
/* HELLO payloads: one builder, one set of checks, one negotiation, for both roles (§4.3). */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "repl/gen.h"
#include "repl/hello.h"

void xm_hello_fill(const struct xm_role_env *env, const struct xm_hello_offer *o,
		   struct xm_hello2 *h)
{
	struct xm_gen_info g;

	memset(h, 0, sizeof(*h));
	memcpy(h->h.node_uuid, env->node_uuid, sizeof(h->h.node_uuid));
	h->h.disk_size = htobe64(env->disk->size);
	h->h.block_size = htobe32(env->disk->dio_offset_align);
	h->h.max_payload = htobe32(o->max_payload);
	h->h.window = htobe32(o->window);
	h->h.payload_align = htobe16(o->payload_align);
	h->h.proto_min = htobe16(XM_PROTO_MIN);
	h->h.proto_max = htobe16(XM_PROTO_MAX);
	h->h.role = (__u8)o->role;
	h->h.repl_protocol = (__u8)o->protocol;
	xm_gen_of_meta(env->meta, &g);
	xm_gen_to_wire(&g, env->meta->sb.bitmap_block, o->gen_flags, 0, &h->g);
}

static bool is_pow2(__u32 v)
{
	return v && !(v & (v - 1));
}

__u8 xm_hello_check(const struct xm_hello *peer)
{
	__u32 block = be32toh(peer->block_size);
	__u16 pmin = be16toh(peer->proto_min), pmax = be16toh(peer->proto_max);
	__u16 vmax = pmax < XM_PROTO_MAX ? pmax : XM_PROTO_MAX;

	if (vmax < pmin || vmax < XM_PROTO_MIN)
		return XM_REFUSE_VERSION;
	if (!is_pow2(block) || block < 512 || block > 65536 ||
	    (peer->repl_protocol != 'A' && peer->repl_protocol != 'B' &&
	     peer->repl_protocol != 'C'))
		return XM_REFUSE_PARAM;
	return XM_REFUSE_NONE;
}

__u8 xm_hello_terms(__u32 block_a, __u32 block_b, __u32 maxp_a, __u32 maxp_b, __u64 primary_disk,
		    __u32 *block, __u32 *max_payload, __u64 *export_size)
{
	*block = block_a > block_b ? block_a : block_b;
	*max_payload = (maxp_a < maxp_b ? maxp_a : maxp_b) / *block * *block;
	*export_size = primary_disk / *block * *block;
	return *max_payload < *block ? XM_REFUSE_BLOCK_SIZE : XM_REFUSE_NONE;
}

void xm_refusal_cause(__u8 code, __u64 secondary_disk, __u64 export_size, char *out, size_t len)
{
	/* Said the same from either side: no "this box" or "the peer" but where both mean one box
	 * (SAME_NODE: each box sees its own identity in the other). */
	static const char *const causes[XM_REFUSE_MAX] = {
		[XM_REFUSE_VERSION] = "protocol version mismatch (no common protocol revision)",
		[XM_REFUSE_BLOCK_SIZE] = "block size larger than a frame's payload (raise the MTU)",
		[XM_REFUSE_PARAM] = "invalid HELLO parameter",
		[XM_REFUSE_ROLE] = "both boxes claim the same role",
		[XM_REFUSE_DISK_FAILED] = "the secondary's disk failed",
		[XM_REFUSE_SPLIT_BRAIN] = "split brain: both boxes wrote while apart",
		[XM_REFUSE_PEER_NEWER] = "the secondary has writes the primary lacks",
		[XM_REFUSE_UNRELATED] = "the disks share no history",
		[XM_REFUSE_SAME_NODE] =
			"the peer has this box's identity (node UUID): cloned metadata?",
	};

	if (code == XM_REFUSE_DISK_SIZE)
		snprintf(out, len,
			 "the secondary's disk (%llu bytes) is smaller than the export (%llu "
			 "bytes)",
			 (unsigned long long)secondary_disk, (unsigned long long)export_size);
	else if (code < XM_REFUSE_MAX && causes[code])
		snprintf(out, len, "%s", causes[code]);
	else
		snprintf(out, len, "unknown reason (code %u)", code);
}
