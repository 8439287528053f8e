// SPDX-License-Identifier: GPL-2.0
/* The secondary's part of `xdpmirror status`: JSON (the v1 fields) and the text form. */
#include <stdio.h>

#include "secondary/internal.h"

static const char *const sstate_names[] = {
	[S_LISTEN] = "listening",
	[S_CONNECTED] = "connected",
	[S_DRAINING] = "draining",
	[S_FAILED] = "failed",
};

void secondary_status_json(const void *r, struct xm_json *j)
{
	const struct xm_secondary *s = r;
	char proto[2] = {s->protocol, 0};

	xm_json_open(j, "replication", '{');
	xm_json_str(j, "state", sstate_names[s->state]);
	xm_json_str(j, "reason", s->reason);
	xm_json_u64(j, "session", s->session);
	xm_json_str(j, "protocol", s->state == S_CONNECTED ? proto : "");
	xm_json_u64(j, "block_size", s->block);
	xm_json_u64(j, "max_payload", s->max_payload);
	xm_json_u64(j, "window", WINDOW);
	xm_json_u64(j, "export_size", s->export_size);
	xm_json_u64(j, "cumack", xm_receiver_cumack(&s->rcv));
	xm_json_u64(j, "writes_in_flight", s->io_inflight);
	xm_json_str(j, "connection",
		    s->refused_decision && s->state != S_CONNECTED
			    ? xm_sync_decision_name(s->refused_decision)
			    : sstate_names[s->state]);
	xm_json_str(j, "decision", xm_sync_decision_name(s->decision));
	xm_json_str(j, "sync",
		    s->state != S_CONNECTED			      ? "none"
		    : s->env->meta->sb.disk_state == XM_DISK_UPTODATE ? "in_sync"
								      : "resync_target");
	xm_json_bool(j, "discard_local_pending", s->discard_local);
	xm_json_close(j, '}');
	xm_json_open(j, "writer", '{');
	xm_json_str(j, "path", s->zero_copy_possible ? "zero-copy" : "bounce");
	xm_json_str(j, "layout", s->layout);
	xm_json_u64(j, "payload_align", s->payload_align);
	xm_json_close(j, '}');
}

void secondary_status_text(const void *r, FILE *out)
{
	const struct xm_secondary *s = r;

	fprintf(out, "  mirror   %s", sstate_names[s->state]);
	if (s->state == S_CONNECTED)
		fprintf(out, ", protocol %c, block %u, %u bytes/frame, window %u", s->protocol,
			s->block, s->max_payload, WINDOW);
	if (s->reason[0])
		fprintf(out, " (%s)", s->reason);
	if (s->state == S_CONNECTED && s->env->meta->sb.disk_state != XM_DISK_UPTODATE)
		fprintf(out, ", resync target (%s)", xm_sync_decision_name(s->decision));
	fprintf(out, "\n  writer   %s (UMEM layout %s), %llu zero-copy / %llu bounced writes\n",
		s->zero_copy_possible ? "zero-copy" : "bounce", s->layout,
		(unsigned long long)s->env->ctr->wr_zero_copy,
		(unsigned long long)s->env->ctr->wr_bounce);
}
