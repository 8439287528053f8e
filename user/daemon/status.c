// SPDX-License-Identifier: GPL-2.0
/* The daemon's part of `xdpmirror status`, written once for JSON (the v1 fields) and text
 * (util/report.h); the role adds its own (repl/role.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "link/stats.h"
#include "util/clock.h"
#include "util/report.h"

static void report_counters(struct xm_report *r, const struct xm_daemon *d)
{
	const struct xm_counters *c = &d->ctr;

	/* Every counter in JSON; people get the few that tell how the link goes. */
	xm_report_open(r, "counters", "counters");
#define XM_COUNTER_REPORT(name, what) xm_report_u64(r, #name, NULL, c->name);
	XM_COUNTER_LIST(XM_COUNTER_REPORT)
#undef XM_COUNTER_REPORT
	xm_report_u64(r, "commits", NULL, d->commit.commits);
	xm_report_u64(r, "commit_writes", NULL, d->commit.commit_writes);
	xm_report_u64(r, "solo_writes", NULL, d->commit.solo_writes);
	xm_report_u64(r, NULL, "frames received", c->rx_frames);
	xm_report_u64(r, NULL, "bad CRC", c->rx_bad_crc);
	xm_report_u64(r, NULL, "frames sent", c->tx_frames);
	xm_report_u64(r, NULL, "no TX buffer", c->tx_ring_full);
	xm_report_u64(r, NULL, "sessions", c->sessions);
	xm_report_u64(r, NULL, "peer timeouts", c->peer_timeouts);
	xm_report_close(r);
}

static void report_xsk_stats(struct xm_report *r, const struct xm_daemon *d)
{
	struct xdp_statistics sum = {0}, st;
	__u32 q;

	for (q = 0; q < d->nxsks; q++) {
		if (xm_xsk_statistics(&d->xsks[q], &st))
			continue;
		sum.rx_dropped += st.rx_dropped;
		sum.rx_invalid_descs += st.rx_invalid_descs;
		sum.tx_invalid_descs += st.tx_invalid_descs;
		sum.rx_ring_full += st.rx_ring_full;
		sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
		sum.tx_ring_empty_descs += st.tx_ring_empty_descs;
	}
	xm_report_open(r, "socket", NULL);
	xm_report_u64(r, "rx_dropped", NULL, sum.rx_dropped);
	xm_report_u64(r, "rx_invalid_descs", NULL, sum.rx_invalid_descs);
	xm_report_u64(r, "tx_invalid_descs", NULL, sum.tx_invalid_descs);
	xm_report_u64(r, "rx_ring_full", NULL, sum.rx_ring_full);
	xm_report_u64(r, "rx_fill_ring_empty", NULL, sum.rx_fill_ring_empty_descs);
	xm_report_u64(r, "tx_ring_empty", NULL, sum.tx_ring_empty_descs);
	xm_report_close(r);
}

static void report_gen(struct xm_report *r, const char *key, const char *label, __u64 gen)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)gen);
	xm_report_str(r, key, label, hex);
}

static void report_meta(struct xm_report *r, const struct xm_daemon *d)
{
	const struct xm_meta *m = &d->meta;
	char uuid[33];
	int i;

	for (i = 0; i < 16; i++)
		snprintf(uuid + 2 * i, 3, "%02x", m->sb.node_uuid[i]);
	xm_report_open(r, "metadata", "data");
	xm_report_str(r, "path", "metadata", m->path);
	xm_report_str(r, "node_uuid", NULL, uuid);
	xm_report_str(r, "disk_state", "disk state", xm_disk_state_name(m->sb.disk_state));
	xm_report_open(r, "generations", NULL);
	report_gen(r, "current", NULL, m->sb.current_gen);
	report_gen(r, "bitmap", NULL, m->sb.bitmap_gen);
	report_gen(r, "history0", NULL, m->sb.history[0]);
	report_gen(r, "history1", NULL, m->sb.history[1]);
	xm_report_close(r);
	report_gen(r, NULL, "generation", m->sb.current_gen);
	xm_report_open(r, "bitmap", NULL);
	xm_report_u64(r, "block", NULL, m->bm.block);
	xm_report_u64(r, "bits", NULL, m->bm.nbits);
	xm_report_u64(r, "dirty_bits", NULL, m->bm.oos_count);
	xm_report_u64(r, "intent_bits", NULL, m->bm.intent_count);
	xm_report_u64(r, "flushes", NULL, m->cycles);
	xm_report_u64(r, "pages_written", NULL, m->pages_written);
	xm_report_u64(r, "bad_pages", NULL, m->bad_pages);
	xm_report_close(r);
	xm_report_u64(r, NULL, "bitmap bytes per bit", m->bm.block);
	xm_report_u64(r, NULL, "regions out of sync", m->bm.oos_count);
	/* Rare, and the one thing here a person must act on: shown in the text form only then. */
	if (m->bad_pages)
		xm_report_u64(r, NULL, "bitmap pages failed checksum", m->bad_pages);
	xm_report_close(r);
}

/* The daemon's status object: `status --json` (form JSON) or `status` (form TEXT). */
void xm_daemon_report(const struct xm_daemon *d, enum xm_report_form form, FILE *out)
{
	__u64 now = xm_now_ns(), dead_ns = (__u64)d->cfg.timeout_ms * NS_PER_MS;
	__u64 heard = d->bpf.alive && d->bpf.alive->peer_rx_ns > d->last_rx_ns
			      ? d->bpf.alive->peer_rx_ns
			      : d->last_rx_ns;
	bool reachable = heard && (now < heard || now - heard < dead_ns);
	char mac[XM_MAC_STRLEN], ethertype[8];
	struct xm_report r;

	xm_report_begin(&r, form, out);
	xm_report_str(&r, "dev", "device", d->cfg.dev);
	xm_report_str(&r, "role", "role", xm_role_name(d->cfg.role));
	xm_report_i64(&r, "pid", "pid", (long long)getpid());
	xm_report_u64(&r, "uptime_ms", NULL, (now - d->start_ns) / 1000000);
	xm_report_u64(&r, NULL, "uptime s", (now - d->start_ns) / NS_PER_SEC);
	xm_format_mac(d->nd.mac, mac);
	xm_report_str(&r, "mac", NULL, mac);
	xm_report_u64(&r, "mtu", "mtu", d->nd.mtu);
	snprintf(ethertype, sizeof(ethertype), "0x%04x", d->cfg.ethertype);
	xm_report_str(&r, "ethertype", NULL, ethertype);

	xm_report_open(&r, "peer", "peer");
	xm_format_mac(d->cfg.peer_mac, mac);
	xm_report_str(&r, "mac", "mac", mac);
	xm_report_bool(&r, "reachable", "reachable", reachable);
	if (heard)
		xm_report_u64(&r, "last_seen_ms", NULL,
			      now > heard ? (now - heard) / NS_PER_MS : 0);
	xm_report_u64(&r, "heartbeat_ms", NULL, d->cfg.ping_ms);
	xm_report_u64(&r, "timeout_ms", "timeout ms", d->cfg.timeout_ms);
	xm_report_dbl(&r, "detect_timeout_ms", "detect after ms",
		      xm_detector_timeout(&d->det) / 1e6);
	xm_report_u64(&r, "ko_timeout_ms", "ko-timeout ms", d->cfg.ko_ms);
	xm_report_dbl(&r, "rtt_last_us", "rtt us", d->hb.rtt_last_ns / 1e3);
	xm_report_dbl(&r, "rtt_min_us", "rtt min us", d->hb.rtt_min_ns / 1e3);
	xm_report_dbl(&r, "rtt_avg_us", "rtt avg us", d->hb.rtt_avg_ns / 1e3);
	xm_report_dbl(&r, "probe_rtt_us", "probe rtt us", d->det.srtt_ns / 1e3);
	xm_report_dbl(&r, "probe_rtt_max_us", "probe rtt max us", d->det.rtt_max_ns / 1e3);
	xm_report_u64(&r, "probes_sent", NULL, d->det.probes_sent);
	xm_report_close(&r);
	xm_gate_status(&d->gate, &r);

	xm_report_open(&r, "loop", "event loop");
	xm_report_bool(&r, "realtime", "realtime", d->cfg.realtime);
	xm_report_u64(&r, "wakes", NULL, d->late.wakes);
	xm_report_dbl(&r, "late_max_us", "late max us", d->late.late_max_ns / 1e3);
	xm_report_u64(&r, "late_over_1ms", NULL, d->late.over_1ms);
	xm_report_u64(&r, "late_over_10ms", "late > 10 ms", d->late.over_10ms);
	xm_report_u64(&r, "late_over_50ms", "late > 50 ms", d->late.over_50ms);
	xm_report_close(&r);
	xm_control_report(d, &r);
	xm_events_report(d, &r);

	xm_report_open(&r, "xdp", "xdp");
	xm_report_str(&r, "mode", "mode", xm_bpf_attach_mode_name(d->bpf.attach_mode));
	xm_report_str(&r, "program", "program", XM_PROG_NAME);
	xm_report_str(&r, "pin_dir", NULL, d->bpf.pin_dir);
	xm_report_str(&r, NULL, "ethertype", ethertype);
	xm_report_close(&r);

	xm_report_open(&r, "afxdp", "af_xdp");
	xm_report_str(&r, "mode", "mode", d->nxsks && d->xsks[0].zerocopy ? "zerocopy" : "copy");
	xm_report_str(&r, "requested", "asked", xm_xsk_mode_name(d->cfg.xsk_mode));
	xm_report_u64(&r, "queues", "queues", d->nxsks);
	xm_report_u64(&r, "frame_size", NULL, XM_XSK_FRAME_SIZE);
	report_xsk_stats(&r, d);
	xm_report_close(&r);

	xm_report_open(&r, "disk", "disk");
	xm_report_str(&r, "path", "path", d->cfg.disk);
	xm_report_str(&r, "kind", "kind", d->disk.is_blockdev ? "block" : "file");
	xm_report_u64(&r, "size", "bytes", d->disk.size);
	xm_report_u64(&r, "dio_mem_align", NULL, d->disk.dio_mem_align);
	xm_report_u64(&r, "dio_offset_align", "O_DIRECT alignment", d->disk.dio_offset_align);
	xm_report_str(&r, "state", "state", xm_disk_health_name(d->health.state));
	xm_report_str(&r, "policy", "on I/O error", d->cfg.io_error_pass_on ? "pass-on" : "detach");
	if (d->health.err) {
		char err[160];

		snprintf(err, sizeof(err), "%s (%s)", strerror(-d->health.err), d->health.what);
		xm_report_str(&r, "error", "error", err);
	}
	xm_report_u64(&r, "failures", NULL, d->health.failures);
	xm_report_u64(&r, "stale_regions", "stale regions", d->health.stale);
	xm_report_close(&r);

	xm_report_open(&r, "durability", "durability");
	xm_report_str(&r, "mode", "mode", xm_durability_name(d->commit.mode));
	xm_report_str(&r, "write_cache", "write cache", d->commit.cache);
	xm_report_bool(&r, "fua", "fua", d->commit.fua);
	xm_report_u64(&r, NULL, "commits", d->commit.commits);
	xm_report_u64(&r, NULL, "writes alone (RWF_DSYNC)", d->commit.solo_writes);
	xm_report_close(&r);
	report_meta(&r, d);
	if (d->role)
		d->ops->status(d->role, &r);
	report_counters(&r, d);
	xm_report_end(&r);
}
