/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The failure detector (docs/protocol.md §9): is the peer's link and kernel still answering our
 * PROBEs, is the peer's daemon still sending?  Pure: the role passes the time, what it sent and
 * the arrival stamps the XDP program recorded; nothing here reads a clock or a socket.
 */
#ifndef XM_DETECTOR_H
#define XM_DETECTOR_H

#include <stdbool.h>
#include <linux/types.h>

#define XM_DETECTOR_PROBES_NEEDED 3 /* unanswered probes before the peer can be declared dead */
#define XM_DETECTOR_RING	  8 /* send times of the latest probes kept */

enum xm_verdict {
	XM_PEER_ALIVE,
	XM_PEER_NOT_ANSWERING, /* probes unanswered for T: link, box or daemon process gone */
	XM_PEER_DAEMON_SILENT, /* the kernel answers, the peer's daemon has sent nothing for ko */
};

struct xm_detector_cfg {
	__u64 interval_ns; /* one probe per interval */
	__u64 timeout_ns;  /* T never exceeds this (--timeout) */
	__u64 ko_ns;	   /* --ko-timeout */
};

struct xm_detector {
	struct xm_detector_cfg cfg;
	__u64 start_ns;	 /* the session's start: evidence from before it does not count */
	__u64 heard_ns;	 /* the latest evidence of life: any frame from the peer */
	__u64 daemon_ns; /* the latest frame the peer's daemon sent */
	__u64 sent[XM_DETECTOR_RING]; /* send times of the latest probes, a ring */
	__u32 nsent;		      /* probes sent this session (ring index) */
	__u64 last_probe_ns;
	__u64 last_echo_ns; /* the newest answered probe sampled */
	__u64 srtt_ns, mdev_ns, rtt_max_ns;
	__u64 probes_sent, samples;
};

/* A new session starts at now: the handshake itself is evidence of life. */
void xm_detector_start(struct xm_detector *d, const struct xm_detector_cfg *cfg, __u64 now);
/* A probe is due now. */
bool xm_detector_probe_due(const struct xm_detector *d, __u64 now);
/* A probe with arg0 = now went out. */
void xm_detector_probe_sent(struct xm_detector *d, __u64 now);
/* Evidence: a frame from the peer arrived at peer_ns (any type), daemon_ns (sent by its daemon);
 * 0 for either: nothing new.  Older stamps than the current ones change nothing. */
void xm_detector_heard(struct xm_detector *d, __u64 peer_ns, __u64 daemon_ns);
/* The answer to the probe sent at echo_ns arrived at ack_ns: an RTT sample when it is new. */
void xm_detector_answer(struct xm_detector *d, __u64 echo_ns, __u64 ack_ns);
/* The verdict at now (§9.2 rules 2 and 3). */
enum xm_verdict xm_detector_check(const struct xm_detector *d, __u64 now);
/* T: how long the first unanswered probe may wait (min(--timeout, max(floor, srtt + 7 mdev))). */
__u64 xm_detector_timeout(const struct xm_detector *d);
/* How long the peer has given no sign of life at now (for last_failure). */
__u64 xm_detector_silence(const struct xm_detector *d, __u64 now);
/* When the verdict or a probe is next due: the role's loop must run by then. */
__u64 xm_detector_deadline(const struct xm_detector *d);
const char *xm_verdict_text(enum xm_verdict v);

#endif
