// SPDX-License-Identifier: GPL-2.0
/* The failure detector: probes, their answers and the verdict (docs/protocol.md §9.2). */
#include <string.h>

#include "repl/detector.h"

static __u64 max_u64(__u64 a, __u64 b)
{
	return a > b ? a : b;
}

static __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

void xm_detector_start(struct xm_detector *d, const struct xm_detector_cfg *cfg, __u64 now)
{
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->start_ns = d->heard_ns = d->daemon_ns = now;
}

bool xm_detector_probe_due(const struct xm_detector *d, __u64 now)
{
	return !d->nsent || now - d->last_probe_ns >= d->cfg.interval_ns;
}

void xm_detector_probe_sent(struct xm_detector *d, __u64 now)
{
	d->sent[d->nsent % XM_DETECTOR_RING] = now;
	d->nsent++;
	d->last_probe_ns = now;
	d->probes_sent++;
}

void xm_detector_heard(struct xm_detector *d, __u64 peer_ns, __u64 daemon_ns)
{
	d->heard_ns = max_u64(d->heard_ns, max_u64(peer_ns, daemon_ns));
	d->daemon_ns = max_u64(d->daemon_ns, daemon_ns);
}

void xm_detector_answer(struct xm_detector *d, __u64 echo_ns, __u64 ack_ns)
{
	__u64 rtt, err;

	/* Only answers to this session's probes, each once; a time from the future is not ours. */
	if (echo_ns <= d->last_echo_ns || echo_ns < d->start_ns || ack_ns < echo_ns)
		return;
	d->last_echo_ns = echo_ns;
	rtt = ack_ns - echo_ns;
	/* Jacobson/Karels: srtt += (rtt - srtt) / 8, mdev += (|rtt - srtt| - mdev) / 4. */
	if (!d->samples) {
		d->srtt_ns = rtt;
		d->mdev_ns = rtt / 2;
	} else {
		err = rtt > d->srtt_ns ? rtt - d->srtt_ns : d->srtt_ns - rtt;
		d->srtt_ns = d->srtt_ns - d->srtt_ns / 8 + rtt / 8;
		d->mdev_ns = d->mdev_ns - d->mdev_ns / 4 + err / 4;
	}
	d->rtt_max_ns = max_u64(d->rtt_max_ns, rtt);
	d->samples++;
}

__u64 xm_detector_timeout(const struct xm_detector *d)
{
	__u64 floor = min_u64(XM_DETECTOR_PROBES_NEEDED * d->cfg.interval_ns, d->cfg.timeout_ns);

	/* Until the first answer nothing is known of the link: the configured limit. */
	if (!d->samples)
		return d->cfg.timeout_ns;
	return min_u64(d->cfg.timeout_ns, max_u64(floor, d->srtt_ns + 7 * d->mdev_ns));
}

/* The probes sent after the latest evidence: how many (as far as the ring remembers), and when
 * the first of them went out (the oldest the ring holds, which errs late, never early). */
static __u32 unanswered(const struct xm_detector *d, __u64 *first)
{
	__u32 n = 0, i;
	__u64 t;

	for (i = 0; i < XM_DETECTOR_RING && i < d->nsent; i++) {
		t = d->sent[(d->nsent - 1 - i) % XM_DETECTOR_RING];
		if (t <= d->heard_ns)
			break;
		*first = t;
		n++;
	}
	return n;
}

enum xm_verdict xm_detector_check(const struct xm_detector *d, __u64 now)
{
	__u64 first = 0;

	if (unanswered(d, &first) >= XM_DETECTOR_PROBES_NEEDED && now > first &&
	    now - first >= xm_detector_timeout(d))
		return XM_PEER_NOT_ANSWERING;
	/* Stamps are taken as frames arrive, and may be newer than the caller's now. */
	if (now > d->daemon_ns && now - d->daemon_ns >= d->cfg.ko_ns)
		return XM_PEER_DAEMON_SILENT;
	return XM_PEER_ALIVE;
}

__u64 xm_detector_deadline(const struct xm_detector *d)
{
	__u64 first = 0, next = d->last_probe_ns + d->cfg.interval_ns;

	if (unanswered(d, &first) >= XM_DETECTOR_PROBES_NEEDED)
		next = min_u64(next, first + xm_detector_timeout(d));
	return min_u64(next, d->daemon_ns + d->cfg.ko_ns);
}

__u64 xm_detector_silence(const struct xm_detector *d, __u64 now)
{
	return now > d->heard_ns ? now - d->heard_ns : 0;
}

const char *xm_verdict_text(enum xm_verdict v)
{
	switch (v) {
	case XM_PEER_NOT_ANSWERING:
		return "peer not answering";
	case XM_PEER_DAEMON_SILENT:
		return "peer daemon not responding";
	default:
		return "peer alive";
	}
}
