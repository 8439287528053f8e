// SPDX-License-Identifier: GPL-2.0
/* The secondary's part of `xdpmirror status`, written once for JSON (the v1 fields) and text. */
#include <stdio.h>

#include "secondary/internal.h"

static const char *const sstate_names[] = {
	[S_LISTEN] = "listening",  [S_ACCEPTING] = "accepting", [S_CONNECTED] = "connected",
	[S_DRAINING] = "draining", [S_FAILED] = "failed",
};

void secondary_status(const void *r, struct xm_report *rep)
{
	const struct xm_secondary *s = r;
	bool connected = s->state == S_CONNECTED;
	char proto[2] = {s->protocol, 0};

	xm_report_open(rep, "replication", "mirror");
	xm_report_str(rep, "state", "state", sstate_names[s->state]);
	xm_report_str(rep, "reason", "reason", s->reason);
	xm_report_u64(rep, "session", NULL, s->session);
	xm_report_str(rep, "protocol", "protocol", connected ? proto : "");
	xm_report_u64(rep, "block_size", connected ? "block" : NULL, s->block);
	xm_report_u64(rep, "max_payload", connected ? "bytes per frame" : NULL, s->max_payload);
	xm_report_u64(rep, "window", connected ? "window" : NULL, WINDOW);
	xm_report_u64(rep, "export_size", NULL, s->export_size);
	xm_report_u64(rep, "cumack", NULL, xm_receiver_cumack(&s->rcv));
	xm_report_u64(rep, "writes_in_flight", NULL, s->io_inflight);
	xm_report_str(rep, "connection", "connection",
		      s->refused_decision && !connected ? xm_sync_decision_name(s->refused_decision)
							: sstate_names[s->state]);
	xm_report_str(rep, "decision", connected ? "decision" : NULL,
		      xm_sync_decision_name(s->decision));
	xm_report_str(rep, "sync", "sync",
		      !connected					? "none"
		      : s->env->meta->sb.disk_state == XM_DISK_UPTODATE ? "in_sync"
									: "resync_target");
	xm_report_bool(rep, "discard_local_pending", s->discard_local ? "discard local" : NULL,
		       s->discard_local);
	xm_report_close(rep);
	xm_report_open(rep, "writer", "writer");
	xm_report_str(rep, "path", "path", s->zero_copy_possible ? "zero-copy" : "bounce");
	xm_report_str(rep, "layout", "UMEM layout", s->layout);
	xm_report_u64(rep, "payload_align", NULL, s->payload_align);
	xm_report_u64(rep, NULL, "zero-copy writes", s->env->ctr->wr_zero_copy);
	xm_report_u64(rep, NULL, "bounced writes", s->env->ctr->wr_bounce);
	xm_report_close(rep);
	xm_report_open(rep, "latency", s->lat_write_durable.count ? "latency" : NULL);
	xm_hist_report(rep, "write_durable", "write durable", &s->lat_write_durable);
	xm_report_close(rep);
}
