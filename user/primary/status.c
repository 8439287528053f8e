// SPDX-License-Identifier: GPL-2.0
/* The primary's part of `xdpmirror status`: JSON (the v1 fields) and the text form. */
#include <stdio.h>

#include "primary/internal.h"
#include "util/clock.h"

static const char *const phase_names[] = {
	[PH_NONE] = "none",	[PH_BITMAP_XFER] = "bitmap_xfer", [PH_CHECKSUM] = "checksum",
	[PH_RESYNC] = "resync", [PH_SETGEN] = "setgen",		  [PH_IN_SYNC] = "in_sync",
};

static const char *const pstate_names[] = {
	[P_DISCONNECTED] = "connecting",
	[P_HELLO_SENT] = "connecting",
	[P_CONNECTED] = "connected",
	[P_REFUSED] = "refused",
};

static const char *state_name(const struct xm_primary *p)
{
	if (p->state != P_CONNECTED && p->state != P_REFUSED)
		return p->env->ctr->sessions ? "degraded" : "connecting";
	return pstate_names[p->state];
}

static __u64 oos_bytes(const struct xm_primary *p)
{
	const struct xm_bitmap *bm = &p->m->bm;
	__u64 bytes = bm->oos_count << bm->shift;

	return bytes < p->env->disk->size ? bytes : p->env->disk->size;
}

static const char *connection_name(const struct xm_primary *p)
{
	switch (p->state == P_REFUSED ? p->refusal : 0) {
	case 0:
		break;
	case XM_REFUSE_SPLIT_BRAIN:
		return "split-brain";
	case XM_REFUSE_PEER_NEWER:
		return "peer-newer";
	case XM_REFUSE_UNRELATED:
		return "unrelated";
	default:
		return "refused";
	}
	return p->state == P_CONNECTED ? "connected" : "connecting";
}

struct progress {
	__u64 done, left, rate;
	double percent, eta_s;
};

static void resync_progress(const struct xm_primary *p, struct progress *pr)
{
	pr->done = p->rs_done_bytes - p->rs_start_bytes;
	pr->left = oos_bytes(p);
	pr->rate = p->rate_bps;
	pr->percent = pr->done + pr->left ? 100.0 * pr->done / (pr->done + pr->left) : 100.0;
	pr->eta_s = pr->rate ? (double)pr->left / pr->rate : -1;
}

void primary_status_json(const void *r, struct xm_json *j)
{
	const struct xm_primary *p = r;
	const struct xm_counters *c = p->env->ctr;
	const struct csum_job *cj = &p->cj;
	__u64 now = xm_now_ns();
	struct progress pr;
	__u32 i;

	resync_progress(p, &pr);
	xm_json_open(j, "replication", '{');
	xm_json_str(j, "state", state_name(p));
	xm_json_str(j, "connection", connection_name(p));
	xm_json_str(j, "sync", phase_names[p->phase]);
	xm_json_str(j, "decision",
		    p->state == P_CONNECTED ? xm_sync_decision_name(p->decision) : "");
	xm_json_str(j, "disk", xm_disk_state_name(p->m->sb.disk_state));
	xm_json_str(j, "peer_disk",
		    p->state != P_CONNECTED ? "DUnknown"
		    : p->synced		    ? "UpToDate"
					    : "Inconsistent");
	xm_json_bool(j, "degraded", p->state != P_CONNECTED);
	xm_json_str(j, "reason", p->reason);
	xm_json_u64(j, "session", p->session);
	xm_json_str(j, "protocol", p->state == P_CONNECTED ? (char[]){p->running, 0} : "");
	xm_json_str(j, "requested_protocol", (char[]){p->env->cfg->protocol, 0});
	xm_json_u64(j, "block_size", p->block);
	xm_json_u64(j, "max_payload", p->max_payload);
	xm_json_u64(j, "payload_off", p->payload_off);
	xm_json_u64(j, "window", p->window);
	xm_json_u64(j, "export_size", p->export_size);
	xm_json_u64(j, "in_flight", xm_sender_in_flight(&p->snd));
	xm_json_u64(j, "active_writes", p->nactive);
	xm_json_u64(j, "out_of_sync_bytes", oos_bytes(p));
	xm_json_double(j, "srtt_us", xm_sender_srtt(&p->snd) / 1e3);
	xm_json_double(j, "rto_us", xm_sender_rto(&p->snd) / 1e3);
	xm_json_u64(j, "degraded_writes", c->writes_degraded);
	xm_json_open(j, "resync", '{');
	xm_json_bool(j, "active",
		     p->phase == PH_RESYNC || p->phase == PH_BITMAP_XFER ||
			     p->phase == PH_CHECKSUM || p->phase == PH_SETGEN);
	xm_json_u64(j, "done_bytes", pr.done);
	xm_json_u64(j, "remaining_bytes", pr.left);
	xm_json_double(j, "percent", pr.percent);
	xm_json_u64(j, "rate_bytes_per_s", pr.rate);
	xm_json_double(j, "eta_s", pr.eta_s);
	xm_json_u64(j, "rate_limit_mib", p->env->cfg->resync_mib);
	xm_json_u64(j, "chunks_active", p->rs_chunks);
	/* The last completed sync, from the handshake to the peer's adoption of our generation. */
	xm_json_open(j, "last", '{');
	xm_json_u64(j, "bytes", p->last_rs_bytes);
	xm_json_double(j, "elapsed_s", p->last_rs_ns / 1e9);
	xm_json_u64(j, "rate_bytes_per_s",
		    p->last_rs_ns ? (__u64)(p->last_rs_bytes * 1e9 / p->last_rs_ns) : 0);
	xm_json_close(j, '}');
	xm_json_close(j, '}');
	xm_json_open(j, "verify", '{');
	xm_json_str(j, "kind", cj->verify ? "verify" : "checksum_sync");
	xm_json_bool(j, "running", cj->active);
	xm_json_bool(j, "finished", cj->finished);
	xm_json_bool(j, "mark", cj->mark);
	xm_json_u64(j, "checked_bytes", cj->bytes_done);
	xm_json_u64(j, "total_bytes", cj->end);
	xm_json_double(j, "percent", cj->end ? 100.0 * cj->bytes_done / cj->end : 0);
	xm_json_u64(j, "regions_differ", cj->regions_differ);
	xm_json_u64(j, "regions_equal", cj->regions_equal);
	xm_json_u64(j, "regions_skipped", cj->skipped);
	xm_json_open(j, "first_differing_offsets", '[');
	for (i = 0; i < cj->ndiff; i++)
		xm_json_u64(j, NULL, cj->first_diff[i]);
	xm_json_close(j, ']');
	xm_json_u64(j, "elapsed_ms",
		    cj->started_ns ? ((cj->finished_ns ? cj->finished_ns : now) - cj->started_ns) /
					     NS_PER_MS
				   : 0);
	xm_json_close(j, '}');
	xm_json_open(j, "last_failure", '{');
	xm_json_str(j, "reason", p->fail_reason);
	xm_json_double(j, "silence_ms", p->fail_silence_ns / 1e6);
	xm_json_u64(j, "ago_ms", p->fail_at_ns ? (now - p->fail_at_ns) / NS_PER_MS : 0);
	xm_json_close(j, '}');
	xm_json_close(j, '}');
	xm_json_open(j, "nbd", '{');
	xm_json_str(j, "socket", p->nbd_path);
	xm_json_u64(j, "tcp_port", p->env->cfg->nbd_tcp_port);
	if (p->nbd) {
		const struct xm_nbd_counters *n = xm_nbd_server_counters(p->nbd);

		xm_json_u64(j, "connections", n->active);
		xm_json_u64(j, "connections_total", n->connections);
		xm_json_u64(j, "requests", n->requests);
		xm_json_u64(j, "bad_requests", n->bad_requests);
		xm_json_u64(j, "error_replies", n->replies_err);
		xm_json_u64(j, "bytes_written", n->bytes_written);
		xm_json_u64(j, "bytes_read", n->bytes_read);
	}
	xm_json_close(j, '}');
}

static void write_sync_text(const struct xm_primary *p, FILE *out)
{
	struct progress pr;
	char bar[41];
	int i, fill;

	resync_progress(p, &pr);
	if (p->state == P_CONNECTED && p->phase != PH_IN_SYNC) {
		fill = (int)(pr.percent * 40 / 100);
		for (i = 0; i < 40; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[40] = 0;
		fprintf(out, "  sync     %s [%s] %5.1f%%, %.1f MiB/s, %llu bytes left",
			phase_names[p->phase], bar, pr.percent, pr.rate / 1048576.0,
			(unsigned long long)pr.left);
		if (pr.eta_s >= 0)
			fprintf(out, ", eta %.1f s", pr.eta_s);
		fprintf(out, "\n");
	} else if (p->state == P_CONNECTED) {
		fprintf(out, "  sync     in sync\n");
	} else if (pr.left) {
		fprintf(out, "  sync     %s, %llu bytes out of sync\n", connection_name(p),
			(unsigned long long)pr.left);
	}
	if (p->cj.active)
		fprintf(out, "  verify   %.1f%% checked, %llu region(s) differ\n",
			p->cj.end ? 100.0 * p->cj.bytes_done / p->cj.end : 0.0,
			(unsigned long long)p->cj.regions_differ);
}

void primary_status_text(const void *r, FILE *out)
{
	const struct xm_primary *p = r;

	fprintf(out, "  mirror   %s", state_name(p));
	if (p->state == P_CONNECTED)
		fprintf(out, ", protocol %c, block %u, %u bytes/frame, window %u, srtt %.1f us",
			p->running, p->block, p->max_payload, p->window,
			xm_sender_srtt(&p->snd) / 1e3);
	if (p->reason[0])
		fprintf(out, " (%s)", p->reason);
	fprintf(out, "\n");
	write_sync_text(p, out);
	fprintf(out, "  nbd      %s", p->nbd_path);
	if (p->env->cfg->nbd_tcp_port)
		fprintf(out, ", 127.0.0.1:%u", p->env->cfg->nbd_tcp_port);
	fprintf(out, "\n");
}
