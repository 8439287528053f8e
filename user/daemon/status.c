// SPDX-License-Identifier: GPL-2.0
/* The daemon's part of `xdpmirror status`: JSON (the v1 fields) and the text form; the role adds
 * its own (repl/role.h). */
#include <stdio.h>
#include <unistd.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "link/stats.h"
#include "util/clock.h"
#include "util/json.h"

static void write_counters(struct xm_json *j, const struct xm_daemon *d)
{
	const struct xm_counters *c = &d->ctr;

	xm_json_open(j, "counters", '{');
#define XM_COUNTER_JSON(name, what) xm_json_u64(j, #name, c->name);
	XM_COUNTER_LIST(XM_COUNTER_JSON)
#undef XM_COUNTER_JSON
	xm_json_u64(j, "commits", d->commit.commits);
	xm_json_u64(j, "commit_writes", d->commit.commit_writes);
	xm_json_close(j, '}');
}

static void write_xsk_stats(struct xm_json *j, const struct xm_daemon *d)
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
	xm_json_open(j, "socket", '{');
	xm_json_u64(j, "rx_dropped", sum.rx_dropped);
	xm_json_u64(j, "rx_invalid_descs", sum.rx_invalid_descs);
	xm_json_u64(j, "tx_invalid_descs", sum.tx_invalid_descs);
	xm_json_u64(j, "rx_ring_full", sum.rx_ring_full);
	xm_json_u64(j, "rx_fill_ring_empty", sum.rx_fill_ring_empty_descs);
	xm_json_u64(j, "tx_ring_empty", sum.tx_ring_empty_descs);
	xm_json_close(j, '}');
}

static void write_gen(struct xm_json *j, const char *key, __u64 gen)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)gen);
	xm_json_str(j, key, hex);
}

static void write_meta(struct xm_json *j, const struct xm_daemon *d)
{
	const struct xm_meta *m = &d->meta;
	char uuid[33];
	int i;

	for (i = 0; i < 16; i++)
		snprintf(uuid + 2 * i, 3, "%02x", m->sb.node_uuid[i]);
	xm_json_open(j, "metadata", '{');
	xm_json_str(j, "path", m->path);
	xm_json_str(j, "node_uuid", uuid);
	xm_json_str(j, "disk_state", xm_disk_state_name(m->sb.disk_state));
	xm_json_open(j, "generations", '{');
	write_gen(j, "current", m->sb.current_gen);
	write_gen(j, "bitmap", m->sb.bitmap_gen);
	write_gen(j, "history0", m->sb.history[0]);
	write_gen(j, "history1", m->sb.history[1]);
	xm_json_close(j, '}');
	xm_json_open(j, "bitmap", '{');
	xm_json_u64(j, "block", m->bm.block);
	xm_json_u64(j, "bits", m->bm.nbits);
	xm_json_u64(j, "dirty_bits", m->bm.oos_count);
	xm_json_u64(j, "intent_bits", m->bm.intent_count);
	xm_json_u64(j, "flushes", m->cycles);
	xm_json_u64(j, "pages_written", m->pages_written);
	xm_json_close(j, '}');
	xm_json_close(j, '}');
}

void xm_daemon_write_status(const struct xm_daemon *d, FILE *out)
{
	__u64 now = xm_now_ns(), dead_ns = (__u64)d->cfg.timeout_ms * 1000000ull;
	bool reachable = d->last_rx_ns && now - d->last_rx_ns < dead_ns;
	char mac[XM_MAC_STRLEN], ethertype[8];
	struct xm_json j;

	xm_json_init(&j, out);
	xm_json_open(&j, NULL, '{');
	xm_json_str(&j, "dev", d->cfg.dev);
	xm_json_str(&j, "role", xm_role_name(d->cfg.role));
	xm_json_i64(&j, "pid", (long long)getpid());
	xm_json_u64(&j, "uptime_ms", (now - d->start_ns) / 1000000);
	xm_format_mac(d->nd.mac, mac);
	xm_json_str(&j, "mac", mac);
	xm_json_u64(&j, "mtu", d->nd.mtu);
	snprintf(ethertype, sizeof(ethertype), "0x%04x", d->cfg.ethertype);
	xm_json_str(&j, "ethertype", ethertype);

	xm_json_open(&j, "peer", '{');
	xm_format_mac(d->cfg.peer_mac, mac);
	xm_json_str(&j, "mac", mac);
	xm_json_bool(&j, "reachable", reachable);
	if (d->last_rx_ns)
		xm_json_u64(&j, "last_seen_ms", (now - d->last_rx_ns) / 1000000);
	xm_json_u64(&j, "heartbeat_ms", d->cfg.ping_ms);
	xm_json_u64(&j, "timeout_ms", d->cfg.timeout_ms);
	xm_json_double(&j, "rtt_last_us", d->hb.rtt_last_ns / 1e3);
	xm_json_double(&j, "rtt_min_us", d->hb.rtt_min_ns / 1e3);
	xm_json_double(&j, "rtt_avg_us", d->hb.rtt_avg_ns / 1e3);
	xm_json_close(&j, '}');

	xm_json_open(&j, "xdp", '{');
	xm_json_str(&j, "mode", xm_bpf_attach_mode_name(d->bpf.attach_mode));
	xm_json_str(&j, "program", XM_PROG_NAME);
	xm_json_str(&j, "pin_dir", d->bpf.pin_dir);
	xm_json_close(&j, '}');

	xm_json_open(&j, "afxdp", '{');
	xm_json_str(&j, "mode", d->nxsks && d->xsks[0].zerocopy ? "zerocopy" : "copy");
	xm_json_str(&j, "requested", xm_xsk_mode_name(d->cfg.xsk_mode));
	xm_json_u64(&j, "queues", d->nxsks);
	xm_json_u64(&j, "frame_size", XM_XSK_FRAME_SIZE);
	write_xsk_stats(&j, d);
	xm_json_close(&j, '}');

	xm_json_open(&j, "disk", '{');
	xm_json_str(&j, "path", d->cfg.disk);
	xm_json_str(&j, "kind", d->disk.is_blockdev ? "block" : "file");
	xm_json_u64(&j, "size", d->disk.size);
	xm_json_u64(&j, "dio_mem_align", d->disk.dio_mem_align);
	xm_json_u64(&j, "dio_offset_align", d->disk.dio_offset_align);
	xm_json_close(&j, '}');

	xm_json_open(&j, "durability", '{');
	xm_json_str(&j, "mode", xm_durability_name(d->commit.mode));
	xm_json_str(&j, "write_cache", d->commit.cache);
	xm_json_bool(&j, "fua", d->commit.fua);
	xm_json_close(&j, '}');
	write_meta(&j, d);
	if (d->role)
		d->ops->status_json(d->role, &j);
	write_counters(&j, d);
	xm_json_close(&j, '}');
}

void xm_daemon_write_status_text(const struct xm_daemon *d, FILE *out)
{
	__u64 now = xm_now_ns(), dead_ns = (__u64)d->cfg.timeout_ms * 1000000ull;
	bool reachable = d->last_rx_ns && now - d->last_rx_ns < dead_ns;
	char mac[XM_MAC_STRLEN];

	fprintf(out, "%s: %s, attached (pid %d, up %llu s)\n", d->cfg.dev,
		xm_role_name(d->cfg.role), (int)getpid(),
		(unsigned long long)((now - d->start_ns) / 1000000000ull));
	xm_format_mac(d->cfg.peer_mac, mac);
	fprintf(out, "  peer     %s  %s", mac, reachable ? "reachable" : "unreachable");
	if (d->hb.rtt_last_ns)
		fprintf(out, ", rtt %.1f us (min %.1f, avg %.1f)", d->hb.rtt_last_ns / 1e3,
			d->hb.rtt_min_ns / 1e3, d->hb.rtt_avg_ns / 1e3);
	fprintf(out, "\n");
	fprintf(out, "  xdp      %s mode, program %s, EtherType 0x%04x\n",
		xm_bpf_attach_mode_name(d->bpf.attach_mode), XM_PROG_NAME, d->cfg.ethertype);
	fprintf(out, "  af_xdp   %s mode (asked: %s), %u queue(s)\n",
		d->nxsks && d->xsks[0].zerocopy ? "zero-copy" : "copy",
		xm_xsk_mode_name(d->cfg.xsk_mode), d->nxsks);
	fprintf(out, "  mtu      %u\n", d->nd.mtu);
	fprintf(out, "  disk     %s (%s, %llu bytes, O_DIRECT alignment %u)\n", d->cfg.disk,
		d->disk.is_blockdev ? "block device" : "file", (unsigned long long)d->disk.size,
		d->disk.dio_offset_align);
	fprintf(out,
		"  frames   rx %llu (bad crc %llu), tx %llu (no buffer %llu), pings %llu, "
		"pongs %llu\n",
		(unsigned long long)d->ctr.rx_frames, (unsigned long long)d->ctr.rx_bad_crc,
		(unsigned long long)d->ctr.tx_frames, (unsigned long long)d->ctr.tx_ring_full,
		(unsigned long long)d->ctr.tx_ping, (unsigned long long)d->ctr.rx_pong);
	fprintf(out, "  durable  %s (write cache: %s, fua %d), %llu commits\n",
		xm_durability_name(d->commit.mode), d->commit.cache, d->commit.fua,
		(unsigned long long)d->commit.commits);
	fprintf(out, "  data     %s, generation %016llx, %llu region(s) of %u bytes out of sync\n",
		xm_disk_state_name(d->meta.sb.disk_state),
		(unsigned long long)d->meta.sb.current_gen,
		(unsigned long long)d->meta.bm.oos_count, d->meta.bm.block);
	if (d->role)
		d->ops->status_text(d->role, out);
}
