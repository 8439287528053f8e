/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The link's gate (docs/protocol.md §14): every frame this box sends is built here, and every frame
 * it receives passes here before a role sees it.  With a key it runs the challenge-response under
 * the roles' HELLOs, tags what it sends and drops what does not verify; without one (--no-auth)
 * it only adds the HELLO's auth part and answers peers that want a key.  One thread, no clock of
 * its own: the caller passes the time.
 */
#ifndef XM_GATE_H
#define XM_GATE_H

#include <stdbool.h>
#include <linux/types.h>

#include "link/auth.h"
#include "link/frame.h"
#include "repl/counters.h"
#include "util/report.h"
#include "xdpmirror.h"

/* One session's keys, as initiator (we sent its HELLO) or responder. */
struct xm_gate_slot {
	__u32 session; /* 0: unused */
	bool keyed;    /* tx and rx hold the session's keys */
	bool live;     /* a tagged frame of the peer verified under them */
	__u8 nonce_i[XM_AUTH_NONCE_LEN], nonce_r[XM_AUTH_NONCE_LEN];
	struct xm_mac tx, rx;
	__u64 tx_counter; /* the next frame's */
	struct xm_replay seen;
	__u32 unanswered; /* initiator: tagged HELLOs sent since the peer's last verified frame */
};

#define XM_GATE_PENDING 4 /* handshakes a responder keeps besides its live session */
/* Tagged HELLOs without an answer before the initiator offers a fresh nonce (§14.3): the
 * responder may have lost its half of the handshake (restart, or evicted by forged HELLOs). */
#define XM_GATE_HELLO_RESTART 8

struct xm_gate_cfg {
	const __u8 *key; /* XM_AUTH_KEY_LEN bytes; NULL: --no-auth */
	const __u8 *local_mac, *peer_mac;
	__u16 ethertype;
	struct xm_counters *ctr;
	/* Puts one whole frame (its spans in order) on the link; returns 0 or -errno. */
	int (*out)(void *ctx, const struct xm_span *spans, __u32 n, __u32 len);
	void *ctx;
};

struct xm_gate {
	struct xm_gate_cfg cfg;
	bool auth;
	__u8 key[XM_AUTH_KEY_LEN];
	__u8 fp[XM_AUTH_FP_LEN];
	struct xm_gate_slot mine;   /* the session this box offers (its HELLO's id) */
	struct xm_gate_slot theirs; /* the live session the peer offered */
	struct xm_gate_slot pending[XM_GATE_PENDING];
	__u32 next_pending;
	__u64 verified_rx_ns; /* when a frame whose tag verified arrived last (0: none) */
	char problem[192];    /* the latest authentication problem; "" once a handshake verified */
};

/* A frame to send: Ethernet and mirror header, the caller's payload, the HELLO's auth part, the
 * trailer; spans[0..n) in order, len bytes in all. */
struct xm_gate_frame {
	__u8 head[XM_ETH_HLEN + 4096];
	struct xm_hello_auth ext;
	struct xm_auth_trailer trailer;
	struct xm_span spans[XM_MAX_SPANS + 3];
	__u32 n, len;
};

enum xm_gate_verdict {
	XM_GATE_PASS, /* for the role */
	XM_GATE_DROP, /* dropped (counted) or taken by the gate itself */
};

/* Returns 0 or -errno (-EIO: libcrypto failed). */
int xm_gate_init(struct xm_gate *g, const struct xm_gate_cfg *cfg);
void xm_gate_free(struct xm_gate *g);

/* Builds f with its payload spans for sending: a HELLO gets its auth part, a frame of a session
 * with live keys its tag.  Returns 0 or -errno as xm_frame_head. */
int xm_gate_build(struct xm_gate *g, const struct xm_frame *f, const struct xm_span *payload,
		  __u32 n, struct xm_gate_frame *out);

/* A received frame that parsed (its CRC checked unless tagged); now in ns, CLOCK_MONOTONIC. */
enum xm_gate_verdict xm_gate_rx(struct xm_gate *g, const struct xm_frame *f,
				const struct xm_span *spans, __u32 n, __u32 hdr_off, __u64 now);

/* A session is authenticated in either direction. */
bool xm_gate_live(const struct xm_gate *g);
/* The "auth" part of the status report. */
void xm_gate_status(const struct xm_gate *g, struct xm_report *rep);

#endif
