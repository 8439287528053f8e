// SPDX-License-Identifier: GPL-2.0
/* Status JSON and XDP counters to the Prometheus text format: one table of families
 * (docs/metrics.md lists the same ones, with their meaning). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "link/stats.h"
#include "metrics/format.h"

enum row_kind {
	R_UP,	      /* 1 when the daemon answered */
	R_NUM,	      /* one number (or boolean) from the status */
	R_STATE,      /* a state name from the status: one sample per known state, 1 for the one */
	R_OOS,	      /* out-of-sync bytes: the primary says; the secondary's from its bitmap */
	R_HIST,	      /* a latency histogram of the status (util/hist.h) */
	R_XDP_FRAMES, /* the XDP program's rx.<type> frames, by type */
	R_XDP_BYTES,  /* ... and bytes */
	R_XDP_DROPS,  /* its drop.<reason> frames, by reason */
	R_XDP_VERDICTS, /* its pass, redirected, ... frames, by verdict */
};

/*
 * A row is one source of samples.  A row with a type starts a family; the rows after it without
 * one add to that family.  name is the sample name after "xdpmirror_" (with "_total" for a
 * counter; a histogram's samples add "_bucket", "_sum", "_count").  labels are the row's own,
 * written as they are (constants, nothing to escape), after device, role and peer.
 */
struct row {
	const char *name, *type, *help;
	enum row_kind kind;
	const char *path; /* in the status object, dotted */
	double scale;	  /* R_NUM: a factor (µs to s); 0 for the number as it is */
	const char *labels;
	const char *const *states; /* R_STATE: the states known, NULL-terminated */
};

/* repl/role.h's connection states of both roles and the handshake's refusals. */
static const char *const conn_states[] = {
	"connecting", "listening",   "accepting",  "connected", "draining", "failed",
	"refused",    "split-brain", "peer-newer", "unrelated", NULL,
};
static const char *const sync_states[] = {
	"none", "bitmap_xfer", "checksum", "resync", "setgen", "in_sync", "resync_target", NULL,
};
/* store/meta.c's disk states, and what a primary says of a peer's disk it cannot see. */
static const char *const disk_states[] = {
	"Diskless", "Inconsistent", "Outdated", "UpToDate", "DUnknown", "Failed", NULL,
};
static const char *const health_states[] = {"attached", "failed", "detached", "syncing", NULL};

#define GAUGE	"gauge"
#define COUNTER "counter"
#define HIST	"histogram"
#define US	1e-6
#define MS	1e-3

/*
 * NUM: a family of one number; MORE: one more row of the family above, with its own labels;
 * STATE, OTHER: a family of another kind.  s is NUM's factor, l the row's labels.
 */
#define ROW(n, t, h, k, p, s, l, st)                                                               \
	{                                                                                          \
		.name = n, .type = t, .help = h, .kind = k, .path = p, .scale = s, .labels = l,    \
		.states = st                                                                       \
	}
#define NUM(n, t, h, p, s, l)	 ROW(n, t, h, R_NUM, p, s, l, NULL)
#define MORE(n, k, p, s, l)	 ROW(n, NULL, NULL, k, p, s, l, NULL)
#define STATE(n, t, h, p, l, st) ROW(n, t, h, R_STATE, p, 0, l, st)
#define OTHER(n, t, h, k, p, l)	 ROW(n, t, h, k, p, 0, l, NULL)

/* clang-format off */
static const struct row rows[] = {
	OTHER("up", GAUGE, "1 when the device's daemon answered its status request, else 0", R_UP,
	      NULL, NULL),
	NUM("uptime_seconds", GAUGE, "time since the daemon attached", "uptime_ms", MS, NULL),
	STATE("replication_state", GAUGE,
	      "connection to the peer: 1 for the current state, 0 for the others",
	      "replication.connection", NULL, conn_states),
	STATE("sync_state", GAUGE, "sync with the peer: 1 for the current state, 0 for the others",
	      "replication.sync", NULL, sync_states),
	NUM("degraded", GAUGE, "primary: 1 while writes go on without the peer",
	    "replication.degraded", 0, NULL),
	STATE("disk_state", GAUGE, "disk state of this box (disk=local) and, on a primary, of the "
	      "peer (disk=peer): 1 for the current state, 0 for the others",
	      "metadata.disk_state", "disk=\"local\"", disk_states),
	ROW("disk_state", NULL, NULL, R_STATE, "replication.peer_disk", 0, "disk=\"peer\"",
	    disk_states),
	STATE("disk_health_state", GAUGE, "whether the daemon uses its disk: 1 for the current "
	      "state, 0 for the others", "disk.state", NULL, health_states),
	NUM("disk_size_bytes", GAUGE, "size of the mirrored disk", "disk.size", 0, NULL),
	NUM("disk_failures_total", COUNTER, "times the local disk moved to failed",
	    "counters.disk_failures", 0, NULL),
	OTHER("out_of_sync_bytes", GAUGE, "bytes the peer does not have (dirty bitmap regions)",
	      R_OOS, NULL, NULL),
	NUM("resync_active", GAUGE, "primary: 1 while a resync runs", "replication.resync.active", 0,
	    NULL),
	NUM("resync_done_bytes", GAUGE, "primary: bytes the current or last resync has sent",
	    "replication.resync.done_bytes", 0, NULL),
	NUM("resync_rate_bytes_per_second", GAUGE, "primary: resync rate, measured",
	    "replication.resync.rate_bytes_per_s", 0, NULL),
	NUM("resync_rate_limit_bytes_per_second", GAUGE, "primary: --resync-rate (0: no limit)",
	    "replication.resync.rate_limit_mib", 1048576, NULL),
	NUM("resync_bytes_total", COUNTER, "resync payload sent (primary) and applied (secondary)",
	    "counters.tx_resync_bytes", 0, "direction=\"tx\""),
	MORE("resync_bytes_total", R_NUM, "counters.rx_resync_bytes", 0, "direction=\"rx\""),
	NUM("peer_reachable", GAUGE, "1 when a valid frame came from the peer within --timeout",
	    "peer.reachable", 0, NULL),
	NUM("peer_last_seen_seconds", GAUGE, "time since the last valid frame from the peer",
	    "peer.last_seen_ms", MS, NULL),
	NUM("rtt_seconds", GAUGE, "round-trip time to the peer, smoothed: heartbeat PING/PONG, XDP "
	    "PROBE, and (primary) the sender's on DATA acks", "peer.rtt_avg_us", US,
	    "source=\"heartbeat\""),
	MORE("rtt_seconds", R_NUM, "peer.probe_rtt_us", US, "source=\"probe\""),
	MORE("rtt_seconds", R_NUM, "replication.srtt_us", US, "source=\"data\""),
	NUM("rtt_min_seconds", GAUGE, "smallest heartbeat round-trip time", "peer.rtt_min_us", US,
	    NULL),
	NUM("retransmits_total", COUNTER, "DATA and FLUSH frames sent again, on timeout or on a "
	    "SACK hole", "counters.tx_retrans_rto", 0, "reason=\"timeout\""),
	MORE("retransmits_total", R_NUM, "counters.tx_retrans_fast", 0, "reason=\"fast\""),
	NUM("link_frames_total", COUNTER, "mirror frames through the AF_XDP sockets",
	    "counters.rx_frames", 0, "direction=\"rx\""),
	MORE("link_frames_total", R_NUM, "counters.tx_frames", 0, "direction=\"tx\""),
	NUM("link_bytes_total", COUNTER, "bytes of those frames", "counters.rx_bytes", 0,
	    "direction=\"rx\""),
	MORE("link_bytes_total", R_NUM, "counters.tx_bytes", 0, "direction=\"tx\""),
	OTHER("frames_total", COUNTER, "mirror frames by type: received (the XDP program counts "
	      "them) and sent (the daemon counts them)", R_XDP_FRAMES, NULL, "direction=\"rx\""),
	MORE("frames_total", R_NUM, "counters.tx_hello", 0, "direction=\"tx\",type=\"hello\""),
	MORE("frames_total", R_NUM, "counters.tx_data", 0, "direction=\"tx\",type=\"data\""),
	MORE("frames_total", R_NUM, "counters.tx_ack", 0, "direction=\"tx\",type=\"ack\""),
	MORE("frames_total", R_NUM, "counters.tx_flush", 0, "direction=\"tx\",type=\"flush\""),
	MORE("frames_total", R_NUM, "counters.tx_ping", 0, "direction=\"tx\",type=\"ping\""),
	MORE("frames_total", R_NUM, "counters.tx_probe", 0, "direction=\"tx\",type=\"probe\""),
	MORE("frames_total", R_NUM, "counters.tx_challenge", 0,
	     "direction=\"tx\",type=\"challenge\""),
	MORE("frames_total", R_NUM, "counters.tx_bmreq", 0, "direction=\"tx\",type=\"bmreq\""),
	MORE("frames_total", R_NUM, "counters.tx_csumreq", 0, "direction=\"tx\",type=\"csumreq\""),
	OTHER("frame_bytes_total", COUNTER, "bytes of received mirror frames by type (XDP "
	      "program)", R_XDP_BYTES, NULL, "direction=\"rx\""),
	NUM("data_payload_bytes_total", COUNTER, "payload of DATA frames sent the first time and "
	    "applied, resync included", "counters.tx_data_bytes", 0, "direction=\"tx\""),
	MORE("data_payload_bytes_total", R_NUM, "counters.rx_data_bytes", 0, "direction=\"rx\""),
	OTHER("xdp_verdicts_total", COUNTER, "frames the XDP program passed to the stack, "
	      "redirected to AF_XDP, failed to redirect, answered itself or consumed",
	      R_XDP_VERDICTS, NULL, NULL),
	OTHER("xdp_drops_total", COUNTER, "mirror frames the XDP program dropped, by reason",
	      R_XDP_DROPS, NULL, NULL),
	NUM("rx_discards_total", COUNTER, "received frames the daemon discarded, by reason",
	    "counters.rx_bad_crc", 0, "reason=\"bad_crc\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_bad_auth", 0, "reason=\"bad_auth\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_auth_stale", 0, "reason=\"auth_stale\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_replay", 0, "reason=\"replay\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_malformed", 0, "reason=\"malformed\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_wrong_session", 0,
	     "reason=\"wrong_session\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_bad_len", 0, "reason=\"bad_length\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_out_of_window", 0,
	     "reason=\"out_of_window\""),
	MORE("rx_discards_total", R_NUM, "counters.rx_unexpected", 0, "reason=\"unexpected\""),
	NUM("xsk_drops_total", COUNTER, "frames the AF_XDP sockets lost (XDP_STATISTICS)",
	    "afxdp.socket.rx_dropped", 0, "reason=\"rx_dropped\""),
	MORE("xsk_drops_total", R_NUM, "afxdp.socket.rx_ring_full", 0, "reason=\"rx_ring_full\""),
	MORE("xsk_drops_total", R_NUM, "afxdp.socket.rx_invalid_descs", 0,
	     "reason=\"rx_invalid_descs\""),
	NUM("sessions_total", COUNTER, "sessions established with the peer", "counters.sessions", 0,
	    NULL),
	NUM("session_ends_total", COUNTER, "sessions ended, by reason", "counters.peer_timeouts", 0,
	    "reason=\"peer_timeout\""),
	MORE("session_ends_total", R_NUM, "counters.peer_silent", 0, "reason=\"peer_silent\""),
	MORE("session_ends_total", R_NUM, "counters.peer_stalls", 0, "reason=\"peer_stall\""),
	MORE("session_ends_total", R_NUM, "counters.violations", 0, "reason=\"violation\""),
	MORE("session_ends_total", R_NUM, "counters.rx_close", 0, "reason=\"peer_closed\""),
	NUM("auth_failures_total", COUNTER, "handshakes that showed the peer holds another key",
	    "counters.auth_failures", 0, NULL),
	NUM("writes_total", COUNTER, "primary: NBD writes admitted", "counters.writes", 0, NULL),
	NUM("degraded_writes_total", COUNTER, "primary: writes done without the peer",
	    "counters.writes_degraded", 0, NULL),
	NUM("flushes_total", COUNTER, "primary: NBD flushes", "counters.flushes", 0, NULL),
	NUM("secondary_writes_total", COUNTER, "secondary: DATA written from the AF_XDP buffer or "
	    "through a staging copy", "counters.wr_zero_copy", 0, "path=\"zero_copy\""),
	MORE("secondary_writes_total", R_NUM, "counters.wr_bounce", 0, "path=\"bounce\""),
	NUM("nbd_connections", GAUGE, "primary: NBD clients connected", "nbd.connections", 0, NULL),
	NUM("nbd_requests_total", COUNTER, "primary: NBD requests", "nbd.requests", 0, NULL),
	NUM("nbd_bytes_total", COUNTER, "primary: bytes NBD clients wrote and read",
	    "nbd.bytes_written", 0, "op=\"write\""),
	MORE("nbd_bytes_total", R_NUM, "nbd.bytes_read", 0, "op=\"read\""),
	NUM("verify_differing_regions", GAUGE, "primary: regions the last verify found different",
	    "replication.verify.regions_differ", 0, NULL),
	OTHER("write_latency_seconds", HIST, "time of a write's stages (docs/protocol.md 8.7)",
	      R_HIST, "latency.intent", "stage=\"intent\""),
	MORE("write_latency_seconds", R_HIST, "latency.local_durable", 0, "stage=\"local_durable\""),
	MORE("write_latency_seconds", R_HIST, "latency.remote_sent", 0, "stage=\"remote_sent\""),
	MORE("write_latency_seconds", R_HIST, "latency.remote_received", 0,
	     "stage=\"remote_received\""),
	MORE("write_latency_seconds", R_HIST, "latency.remote_durable", 0,
	     "stage=\"remote_durable\""),
	MORE("write_latency_seconds", R_HIST, "latency.answered", 0, "stage=\"answered\""),
	MORE("write_latency_seconds", R_HIST, "latency.write_durable", 0, "stage=\"write_durable\""),
	OTHER("flush_latency_seconds", HIST, "primary: time from an NBD FLUSH's arrival to its "
	      "reply", R_HIST, "latency.flush", NULL),
	{0},
};
/* clang-format on */

/* The XDP program's verdicts other than a drop (those have their own family). */
static const char *const xdp_verdicts[] = {"pass",     "redirected", "redirect_fail",
					   "answered", "consumed",   NULL};

/* One device, and whether the current family's header is out yet. */
struct ctx {
	FILE *out;
	const struct xm_metrics_dev *dev;
	const char *role, *peer;
	const struct row *family;
	bool header_done;
};

void xm_metrics_escape(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

static struct json_object *get_path(struct json_object *o, const char *path)
{
	char key[64];
	const char *dot;
	size_t len;

	while (o && path) {
		dot = strchr(path, '.');
		len = dot ? (size_t)(dot - path) : strlen(path);
		if (len >= sizeof(key))
			return NULL;
		memcpy(key, path, len);
		key[len] = '\0';
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path = dot ? dot + 1 : NULL;
	}
	return o;
}

/* "name{device=...,role=...,peer=...,LABELS" up to the closing brace, the family's header first. */
static void sample_begin(struct ctx *c, const char *name, const char *suffix, const char *labels)
{
	if (!c->header_done) {
		fprintf(c->out, "# HELP xdpmirror_%s %s\n# TYPE xdpmirror_%s %s\n", c->family->name,
			c->family->help, c->family->name, c->family->type);
		c->header_done = true;
	}
	fprintf(c->out, "xdpmirror_%s%s{device=\"", name, suffix);
	xm_metrics_escape(c->out, c->dev->dev);
	fputs("\",role=\"", c->out);
	xm_metrics_escape(c->out, c->role);
	fputs("\",peer=\"", c->out);
	xm_metrics_escape(c->out, c->peer);
	fputc('"', c->out);
	if (labels && *labels)
		fprintf(c->out, ",%s", labels);
}

static void label(struct ctx *c, const char *name, const char *value)
{
	fprintf(c->out, ",%s=\"", name);
	xm_metrics_escape(c->out, value);
	fputc('"', c->out);
}

static void end_u64(struct ctx *c, unsigned long long v)
{
	fprintf(c->out, "} %llu\n", v);
}

static void end_dbl(struct ctx *c, double v)
{
	fprintf(c->out, "} %.15g\n", v);
}

static void sample_u64(struct ctx *c, const struct row *r, unsigned long long v)
{
	sample_begin(c, r->name, "", r->labels);
	end_u64(c, v);
}

/* A JSON number or boolean as a sample; nothing for anything else (a field this role lacks, or a
 * null: a time not measured yet). */
static void emit_num(struct ctx *c, const struct row *r, struct json_object *v)
{
	double d;

	switch (json_object_get_type(v)) {
	case json_type_boolean:
		sample_u64(c, r, json_object_get_boolean(v));
		return;
	case json_type_int:
		if (!r->scale && json_object_get_int64(v) >= 0) {
			sample_u64(c, r, json_object_get_uint64(v));
			return;
		}
		d = (double)json_object_get_int64(v);
		break;
	case json_type_double:
		d = json_object_get_double(v);
		break;
	default:
		return;
	}
	if (r->scale)
		d *= r->scale;
	if (!isfinite(d))
		return;
	sample_begin(c, r->name, "", r->labels);
	end_dbl(c, d);
}

static void emit_state(struct ctx *c, const struct row *r, struct json_object *v)
{
	const char *cur =
		json_object_get_type(v) == json_type_string ? json_object_get_string(v) : NULL;
	bool known = false;
	unsigned int i;

	if (!cur || !*cur)
		return;
	for (i = 0; r->states[i]; i++) {
		sample_begin(c, r->name, "", r->labels);
		label(c, "state", r->states[i]);
		end_u64(c, !strcmp(cur, r->states[i]));
		known |= !strcmp(cur, r->states[i]);
	}
	/* A state this table does not know yet still shows, rather than all zeros. */
	if (!known) {
		sample_begin(c, r->name, "", r->labels);
		label(c, "state", cur);
		end_u64(c, 1);
	}
}

static unsigned long long get_u64(struct json_object *o, const char *path)
{
	struct json_object *v = get_path(o, path);

	return v && json_object_get_type(v) == json_type_int ? json_object_get_uint64(v) : 0;
}

/* The primary says how many bytes the peer lacks; a secondary's bitmap says the same in bits. */
static void emit_oos(struct ctx *c, const struct row *r)
{
	struct json_object *v = get_path(c->dev->status, "replication.out_of_sync_bytes");
	unsigned long long bits, block, size, bytes;

	if (v) {
		emit_num(c, r, v);
		return;
	}
	if (!get_path(c->dev->status, "metadata.bitmap.dirty_bits"))
		return;
	bits = get_u64(c->dev->status, "metadata.bitmap.dirty_bits");
	block = get_u64(c->dev->status, "metadata.bitmap.block");
	size = get_u64(c->dev->status, "disk.size");
	/* The last region may be partial: never more than the disk. */
	bytes = block && bits > size / block ? size : bits * block;
	sample_u64(c, r, bytes);
}

/*
 * util/hist.h's buckets are log2 µs: bucket 0 below 1 µs, bucket i below 2^i µs, the last one
 * open-ended.  Prometheus's are cumulative, each "le" its upper bound in seconds, the last +Inf.
 */
static void emit_hist(struct ctx *c, const struct row *r, struct json_object *h)
{
	struct json_object *buckets = get_path(h, "buckets");
	unsigned long long cum = 0;
	size_t i, n;
	char le[32];

	if (!buckets || json_object_get_type(buckets) != json_type_array || !get_path(h, "count"))
		return;
	n = json_object_array_length(buckets);
	if (!n)
		return;
	for (i = 0; i < n; i++) {
		cum += json_object_get_uint64(json_object_array_get_idx(buckets, i));
		if (i + 1 < n)
			snprintf(le, sizeof(le), "%.7g", (double)(1ull << i) * US);
		else
			snprintf(le, sizeof(le), "+Inf");
		sample_begin(c, r->name, "_bucket", r->labels);
		label(c, "le", le);
		end_u64(c, cum);
	}
	sample_begin(c, r->name, "_sum", r->labels);
	end_dbl(c, (double)get_u64(h, "sum_us") * US);
	sample_begin(c, r->name, "_count", r->labels);
	end_u64(c, get_u64(h, "count"));
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

/* The XDP counters named "PREFIX<x>" (or, with no prefix, those in list), one sample each under
 * the label lname="<x>". */
static void emit_xdp(struct ctx *c, const struct row *r, const char *prefix, const char *lname,
		     bool bytes)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	unsigned int i;

	if (!c->dev->xdp)
		return;
	for (i = 0; i < XM_STATS_NFIELDS; i++) {
		const char *name = xm_stats_field_name(i);
		const struct xm_counter *v = xm_stats_field(c->dev->xdp, i);

		if (prefix ? strncmp(name, prefix, plen) : !in_list(xdp_verdicts, name))
			continue;
		sample_begin(c, r->name, "", r->labels);
		label(c, lname, name + plen);
		end_u64(c, bytes ? v->bytes : v->frames);
	}
}

static void emit_row(struct ctx *c, const struct row *r)
{
	struct json_object *st = c->dev->status;

	if (r->kind == R_UP) {
		sample_u64(c, r, st != NULL);
		return;
	}
	if (!st)
		return;
	switch (r->kind) {
	case R_NUM:
		emit_num(c, r, get_path(st, r->path));
		break;
	case R_STATE:
		emit_state(c, r, get_path(st, r->path));
		break;
	case R_OOS:
		emit_oos(c, r);
		break;
	case R_HIST:
		emit_hist(c, r, get_path(st, r->path));
		break;
	case R_XDP_FRAMES:
	case R_XDP_BYTES:
		emit_xdp(c, r, "rx.", "type", r->kind == R_XDP_BYTES);
		break;
	case R_XDP_DROPS:
		emit_xdp(c, r, "drop.", "reason", false);
		break;
	case R_XDP_VERDICTS:
		emit_xdp(c, r, NULL, "verdict", false);
		break;
	default:
		break;
	}
}

static const char *status_str(struct json_object *st, const char *path)
{
	struct json_object *v = get_path(st, path);

	return v && json_object_get_type(v) == json_type_string ? json_object_get_string(v) : "";
}

int xm_metrics_write(FILE *out, const struct xm_metrics_dev *devs, unsigned int n)
{
	const struct row *fam, *r;
	struct ctx c = {.out = out};
	unsigned int i;

	/* The format wants a family's samples together: families outside, devices inside. */
	for (fam = rows; fam->name; fam = r) {
		c.family = fam;
		c.header_done = false;
		for (i = 0; i < n; i++) {
			c.dev = &devs[i];
			c.role = status_str(devs[i].status, "role");
			c.peer = status_str(devs[i].status, "peer.mac");
			for (r = fam; r->name && (r == fam || !r->type); r++)
				emit_row(&c, r);
		}
		for (r = fam + 1; r->name && !r->type; r++)
			;
	}
	return fflush(out) || ferror(out) ? -EIO : 0;
}
