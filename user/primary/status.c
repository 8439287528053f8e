// SPDX-License-Identifier: GPL-2.0
/* The primary's part of `xdpmirror status`, written once for JSON (the v1 fields) and text. */
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

/* docs/protocol.md §8.7: JSON keys and text labels of the latency stages. */
static const char *const lat_keys[LAT_STAGES] = {
	[LAT_INTENT] = "intent",
	[LAT_LOCAL_DURABLE] = "local_durable",
	[LAT_REMOTE_SENT] = "remote_sent",
	[LAT_REMOTE_RECEIVED] = "remote_received",
	[LAT_REMOTE_DURABLE] = "remote_durable",
	[LAT_ANSWERED] = "answered",
	[LAT_FLUSH] = "flush",
};
static const char *const lat_labels[LAT_STAGES] = {
	[LAT_INTENT] = "intent",
	[LAT_LOCAL_DURABLE] = "local durable",
	[LAT_REMOTE_SENT] = "remote sent",
	[LAT_REMOTE_RECEIVED] = "remote received",
	[LAT_REMOTE_DURABLE] = "remote durable",
	[LAT_ANSWERED] = "write answered",
	[LAT_FLUSH] = "flush answered",
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

/* Text only: a bar of 40 for the resync's percent. */
static void progress_bar(double percent, char bar[41])
{
	int i, fill = (int)(percent * 40 / 100);

	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = 0;
}

/* Why this session resyncs (docs/resync.md §3, §8a); "" when it does not. */
static const char *sync_reason(const struct xm_primary *p)
{
	if (p->state != P_CONNECTED || p->phase == PH_IN_SYNC || p->phase == PH_NONE)
		return "";
	if (p->suspect_session)
		return "the last session ended on a protocol violation: the regions the peer wrote "
		       "in it are resynced";
	switch (p->decision) {
	case XM_SYNC_FULL:
		return p->peer_gen.current_gen ? "the peer's data is older than this box's bitmap"
					       : "the peer was never in sync (initial sync)";
	case XM_SYNC_BITMAP:
		return "regions written while apart";
	default:
		return "regions written without the peer";
	}
}

void primary_status(const void *r, struct xm_report *rep)
{
	const struct xm_primary *p = r;
	const struct xm_counters *c = p->env->ctr;
	const struct csum_job *cj = &p->cj;
	bool connected = p->state == P_CONNECTED;
	bool resyncing = p->phase == PH_RESYNC || p->phase == PH_BITMAP_XFER ||
			 p->phase == PH_CHECKSUM || p->phase == PH_SETGEN;
	__u64 now = xm_now_ns();
	struct progress pr;
	char bar[41];
	__u32 i;

	resync_progress(p, &pr);
	xm_report_open(rep, "replication", "mirror");
	xm_report_str(rep, "state", "state", state_name(p));
	xm_report_str(rep, "connection", "connection", connection_name(p));
	xm_report_str(rep, "sync", "sync", phase_names[p->phase]);
	xm_report_str(rep, "decision", "decision",
		      connected ? xm_sync_decision_name(p->decision) : "");
	xm_report_str(rep, "sync_reason", "sync reason", sync_reason(p));
	xm_report_bool(rep, "peer_suspect", NULL, p->m->sb.flags & XM_MF_PEER_SUSPECT);
	xm_report_str(rep, "disk", NULL, xm_disk_state_name(p->m->sb.disk_state));
	xm_report_str(rep, "peer_disk", "peer disk",
		      p->peer_disk_failed ? "Failed"
		      : !connected	  ? "DUnknown"
		      : p->synced	  ? "UpToDate"
					  : "Inconsistent");
	xm_report_bool(rep, "degraded", NULL, !connected);
	xm_report_str(rep, "reason", "reason", p->reason);
	xm_report_u64(rep, "session", NULL, p->session);
	xm_report_str(rep, "protocol", "protocol", connected ? (char[]){p->running, 0} : "");
	xm_report_str(rep, "requested_protocol", NULL, (char[]){p->env->cfg->protocol, 0});
	xm_report_u64(rep, "block_size", connected ? "block" : NULL, p->block);
	xm_report_u64(rep, "max_payload", connected ? "bytes per frame" : NULL, p->max_payload);
	xm_report_u64(rep, "payload_off", NULL, p->payload_off);
	xm_report_u64(rep, "window", connected ? "window" : NULL, p->window);
	xm_report_u64(rep, "export_size", NULL, p->export_size);
	xm_report_u64(rep, "in_flight", NULL, xm_sender_in_flight(&p->snd));
	xm_report_u64(rep, "active_writes", NULL, p->nactive);
	xm_report_u64(rep, "out_of_sync_bytes", "out of sync bytes", oos_bytes(p));
	xm_report_dbl(rep, "srtt_us", connected ? "srtt us" : NULL, xm_sender_srtt(&p->snd) / 1e3);
	xm_report_dbl(rep, "rto_us", NULL, xm_sender_rto(&p->snd) / 1e3);
	xm_report_dbl(rep, "ack_wait_max_ms", NULL, p->ack_wait_max_ns / 1e6);
	xm_report_u64(rep, "degraded_writes", "degraded writes", c->writes_degraded);
	xm_report_open(rep, "resync", connected && resyncing ? "resync" : NULL);
	xm_report_bool(rep, "active", NULL, resyncing);
	xm_report_u64(rep, "done_bytes", "done bytes", pr.done);
	xm_report_u64(rep, "remaining_bytes", "remaining bytes", pr.left);
	xm_report_dbl(rep, "percent", "percent", pr.percent);
	progress_bar(pr.percent, bar);
	xm_report_str(rep, NULL, "progress", bar);
	xm_report_u64(rep, "rate_bytes_per_s", "bytes/s", pr.rate);
	xm_report_dbl(rep, "eta_s", pr.eta_s >= 0 ? "eta s" : NULL, pr.eta_s);
	xm_report_u64(rep, "rate_limit_mib", "rate limit MiB/s", p->env->cfg->resync_mib);
	xm_report_u64(rep, "chunks_active", NULL, p->rs_chunks);
	/* The last completed sync, from the handshake to the peer's adoption of our generation. */
	xm_report_open(rep, "last", NULL);
	xm_report_u64(rep, "bytes", NULL, p->last_rs_bytes);
	xm_report_dbl(rep, "elapsed_s", NULL, p->last_rs_ns / 1e9);
	xm_report_u64(rep, "rate_bytes_per_s", NULL,
		      p->last_rs_ns ? (__u64)(p->last_rs_bytes * 1e9 / p->last_rs_ns) : 0);
	xm_report_close(rep);
	xm_report_close(rep);
	xm_report_open(rep, "verify", cj->active ? "verify" : NULL);
	xm_report_str(rep, "kind", "kind", cj->verify ? "verify" : "checksum_sync");
	xm_report_bool(rep, "running", NULL, cj->active);
	xm_report_bool(rep, "finished", NULL, cj->finished);
	xm_report_bool(rep, "mark", "mark", cj->mark);
	xm_report_u64(rep, "checked_bytes", NULL, cj->bytes_done);
	xm_report_u64(rep, "total_bytes", NULL, cj->end);
	xm_report_dbl(rep, "percent", "checked percent",
		      cj->end ? 100.0 * cj->bytes_done / cj->end : 0);
	xm_report_u64(rep, "regions_differ", "regions differ", cj->regions_differ);
	xm_report_u64(rep, "regions_equal", NULL, cj->regions_equal);
	xm_report_u64(rep, "regions_skipped", NULL, cj->skipped);
	xm_report_list(rep, "first_differing_offsets", NULL);
	for (i = 0; i < cj->ndiff; i++)
		xm_report_u64(rep, NULL, NULL, cj->first_diff[i]);
	xm_report_close(rep);
	xm_report_u64(rep, "elapsed_ms", NULL,
		      cj->started_ns
			      ? ((cj->finished_ns ? cj->finished_ns : now) - cj->started_ns) /
					NS_PER_MS
			      : 0);
	xm_report_close(rep);
	xm_report_open(rep, "last_failure", p->fail_at_ns ? "last failure" : NULL);
	xm_report_str(rep, "reason", "reason", p->fail_reason);
	xm_report_dbl(rep, "silence_ms", "silence ms", p->fail_silence_ns / 1e6);
	xm_report_u64(rep, "ago_ms", "ms ago",
		      p->fail_at_ns ? (now - p->fail_at_ns) / NS_PER_MS : 0);
	xm_report_close(rep);
	xm_report_close(rep);
	/* §8.6: what a crash would resync, and how well the hot set fits the writes. */
	xm_report_open(rep, "activity_log", "activity log");
	xm_report_u64(rep, "extents", "hot extents", p->al.used);
	xm_report_u64(rep, "capacity", "capacity", p->al.cap);
	xm_report_u64(rep, "extent_bytes", NULL, XM_AL_EXTENT);
	xm_report_u64(rep, "crash_resync_bytes", NULL, (__u64)p->al.used * XM_AL_EXTENT);
	xm_report_u64(rep, "hits", "hits", p->al.hits);
	xm_report_u64(rep, "misses", "misses", p->al.misses);
	xm_report_u64(rep, "evictions", NULL, p->al.evictions);
	xm_report_u64(rep, "aged_out", NULL, p->al.aged);
	xm_report_u64(rep, "thrash", NULL, p->al.thrash);
	xm_report_u64(rep, "grows", NULL, p->al.grows);
	xm_report_u64(rep, "shrinks", NULL, p->al.shrinks);
	xm_report_close(rep);
	xm_report_open(rep, "nbd", "nbd");
	xm_report_str(rep, "socket", "socket", p->nbd_path);
	xm_report_u64(rep, "tcp_port", p->env->cfg->nbd_tcp_port ? "tcp port" : NULL,
		      p->env->cfg->nbd_tcp_port);
	xm_report_str(rep, "tcp_address", p->env->cfg->nbd_tcp_port ? "tcp address" : NULL,
		      p->env->cfg->nbd_tcp_addr);
	xm_report_str(rep, "tls", p->env->cfg->nbd_tcp_port ? "tls" : NULL,
		      p->env->cfg->nbd_tls_psk[0] ? "psk" : "none");
	if (p->nbd) {
		const struct xm_nbd_counters *n = xm_nbd_server_counters(p->nbd);

		xm_report_u64(rep, "connections", "connections", n->active);
		xm_report_u64(rep, "connections_total", NULL, n->connections);
		xm_report_u64(rep, "requests", NULL, n->requests);
		xm_report_u64(rep, "bad_requests", NULL, n->bad_requests);
		xm_report_u64(rep, "error_replies", NULL, n->replies_err);
		xm_report_u64(rep, "bytes_written", NULL, n->bytes_written);
		xm_report_u64(rep, "bytes_read", NULL, n->bytes_read);
		xm_report_u64(rep, "unaligned_requests", NULL, n->unaligned);
		xm_report_u64(rep, "request_timeouts",
			      n->timeouts ? "stalled clients dropped" : NULL, n->timeouts);
	}
	xm_report_close(rep);
	/* The text shows the block once a client was answered: a person reads what was measured. */
	xm_report_open(rep, "latency",
		       p->lat[LAT_ANSWERED].count || p->lat[LAT_FLUSH].count ? "latency" : NULL);
	for (i = 0; i < LAT_STAGES; i++)
		xm_hist_report(rep, lat_keys[i], lat_labels[i], &p->lat[i]);
	xm_report_close(rep);
}
