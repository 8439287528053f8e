// SPDX-License-Identifier: GPL-2.0
/* What a handshake decides from the two boxes' generations, and their wire form. */
#include <endian.h>
#include <string.h>

#include "repl/gen.h"

static enum xm_sync_decision decide(const struct xm_gen_info *pri, const struct xm_gen_info *sec)
{
	if (!sec->current_gen)
		return XM_SYNC_FULL;
	if (sec->current_gen == pri->current_gen)
		return pri->dirty_bits || sec->dirty_bits ? XM_SYNC_BITMAP : XM_SYNC_NONE;
	if (sec->current_gen == pri->bitmap_gen)
		return XM_SYNC_BITMAP;
	/* A primary without a generation has no data anyone wrote; 0 matches nothing. */
	if (pri->current_gen && pri->current_gen == sec->bitmap_gen)
		return XM_SYNC_PEER_NEWER;
	if (pri->bitmap_gen && pri->bitmap_gen == sec->bitmap_gen)
		return XM_SYNC_SPLIT_BRAIN;
	if (sec->current_gen == pri->history[0] || sec->current_gen == pri->history[1])
		return XM_SYNC_FULL;
	return XM_SYNC_UNRELATED;
}

enum xm_sync_decision xm_sync_decide(const struct xm_gen_info *pri, const struct xm_gen_info *sec,
				     bool discard_secondary)
{
	enum xm_sync_decision d = decide(pri, sec);

	if (!discard_secondary)
		return d;
	switch (d) {
	case XM_SYNC_PEER_NEWER:
	case XM_SYNC_SPLIT_BRAIN:
		/* Both bitmaps together cover every region either side changed. */
		return XM_SYNC_BITMAP;
	case XM_SYNC_UNRELATED:
		return XM_SYNC_FULL;
	default:
		return d;
	}
}

const char *xm_sync_decision_name(enum xm_sync_decision d)
{
	static const char *const names[XM_SYNC_MAX] = {
		[XM_SYNC_NONE] = "none",
		[XM_SYNC_BITMAP] = "bitmap",
		[XM_SYNC_FULL] = "full",
		[XM_SYNC_SPLIT_BRAIN] = "split-brain",
		[XM_SYNC_PEER_NEWER] = "peer-newer",
		[XM_SYNC_UNRELATED] = "unrelated",
	};

	return (unsigned int)d < XM_SYNC_MAX && names[d] ? names[d] : "unknown";
}

void xm_gen_to_wire(const struct xm_gen_info *g, __u32 bitmap_block, __u8 flags, __u8 decision,
		    struct xm_hello_gen *w)
{
	memset(w, 0, sizeof(*w));
	w->current_gen = htobe64(g->current_gen);
	w->bitmap_gen = htobe64(g->bitmap_gen);
	w->history[0] = htobe64(g->history[0]);
	w->history[1] = htobe64(g->history[1]);
	w->dirty_bits = htobe64(g->dirty_bits);
	w->bitmap_block = htobe32(bitmap_block);
	w->disk_state = g->disk_state;
	w->flags = flags;
	w->decision = decision;
	w->reserved = 0;
}

void xm_gen_from_wire(const struct xm_hello_gen *w, struct xm_gen_info *g)
{
	memset(g, 0, sizeof(*g));
	g->current_gen = be64toh(w->current_gen);
	g->bitmap_gen = be64toh(w->bitmap_gen);
	g->history[0] = be64toh(w->history[0]);
	g->history[1] = be64toh(w->history[1]);
	g->dirty_bits = be64toh(w->dirty_bits);
	g->disk_state = w->disk_state;
}

void xm_gen_of_meta(const struct xm_meta *m, struct xm_gen_info *g)
{
	memset(g, 0, sizeof(*g));
	g->current_gen = m->sb.current_gen;
	g->bitmap_gen = m->sb.bitmap_gen;
	g->history[0] = m->sb.history[0];
	g->history[1] = m->sb.history[1];
	g->dirty_bits = m->bm.oos_count;
	g->disk_state = m->sb.disk_state;
}
