/* SPDX-License-Identifier: GPL-2.0 */
/* What a role (primary, secondary) is to the daemon, and what the daemon lends a role. */
#ifndef XM_ROLE_H
#define XM_ROLE_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "conf/config.h"
#include "link/frame.h"
#include "link/xsk.h"
#include "repl/counters.h"
#include "repl/detector.h"
#include "repl/heartbeat.h"
#include "store/commit.h"
#include "store/disk.h"
#include "store/meta.h"
#include "util/report.h"
#include "util/loop.h"

/* What a role tells the daemon the moment it happens, for the events stream (docs/events.md):
 * ends that a sample of its status taken now and then could miss. */
enum xm_role_note {
	XM_NOTE_SYNC_DONE,  /* a resync is complete: the peer (primary) or this box took the data */
	XM_NOTE_VERIFY_END, /* a verify finished or was interrupted; its status has the result */
};

/*
 * The environment: the daemon owns all of it and lends it to the role it runs.  A role sends
 * frames and reads facts only through this; it never sees the daemon itself.
 */
struct xm_role_env {
	const struct xm_config *cfg;
	const struct xm_disk *disk;
	/* What became of the disk (store/disk.h, docs/protocol.md §15): the role moves it to failed
	 * on an I/O error and issues no disk I/O unless it is attached (or syncing, on a primary).
	 */
	struct xm_disk_health *health;
	__u32 mtu; /* what a frame may hold after its Ethernet header: the MTU less the auth trailer
		    */
	const __u8 *node_uuid; /* 16 bytes, this box's */
	struct xm_loop *loop;
	struct xm_commit *commit;
	struct xm_meta *meta;
	struct xm_counters *ctr;
	struct xm_heartbeat *hb;
	struct xm_detector *det;
	/* The XDP program's arrival stamps (docs/protocol.md §9.1), mapped read-only. */
	const volatile struct xm_alive *alive;
	/* With a key: when a frame whose tag verified arrived last (link/gate.h), the only evidence
	 * that the peer's daemon runs (docs/protocol.md §14.6); NULL with --no-auth. */
	const __u64 *verified_rx_ns;
	/* Sends one frame to the peer (payload_off and the rest of the header from f); a nonzero
	 * tag comes back through the role's tx_done.  Returns 0 or -ENOBUFS. */
	int (*send)(void *link, const struct xm_frame *f, const struct xm_span *payload, __u32 n,
		    __u64 tag);
	/* Kicks what send() queued (frames otherwise leave in batches). */
	void (*tx_flush)(void *link);
	/* Tells the daemon what just happened (may be NULL: nobody listens). */
	void (*note)(void *link, enum xm_role_note what);
	void *link;
};

static inline void xm_env_note(const struct xm_role_env *env, enum xm_role_note what)
{
	if (env->note)
		env->note(env->link, what);
}

static inline int xm_env_send(const struct xm_role_env *env, const struct xm_frame *f,
			      const struct xm_span *payload, __u32 n, __u64 tag)
{
	return env->send(env->link, f, payload, n, tag);
}

/* What the operator did to the disk (xdpmirror disk attach|detach, docs/protocol.md §15.4). */
enum xm_disk_event {
	XM_DISK_EV_DETACHED,  /* closed; health is XM_DH_DETACHED */
	XM_DISK_EV_SAME_DISK, /* the disk it had, back: fetch or resync what it missed */
	XM_DISK_EV_NEW_DISK,  /* another disk, or --full: every region is copied */
};

/* A metadata write failed (err -errno): logged and counted. */
void xm_env_meta_failed(const struct xm_role_env *env, int err);
/* Sends CLOSE (enum xm_close_reason) in the given session, and kicks it out at once. */
void xm_env_send_close(const struct xm_role_env *env, __u32 session, __u64 reason);
/* Sends a PING when one is due (repl/heartbeat.h); the role's cumulative ack and credit ride on
 * it. */
void xm_env_heartbeat(const struct xm_role_env *env, __u32 session, __u64 cum, __u32 credit,
		      __u64 now);
/* Failure detection (docs/protocol.md §9.2): starts it for a new session; reads the arrival stamps,
 * sends a PROBE when one is due, and returns the verdict. */
void xm_env_liveness_start(const struct xm_role_env *env, __u64 now);
enum xm_verdict xm_env_liveness(const struct xm_role_env *env, __u32 session, __u64 now);
/* Answers a PING with a PONG; takes an RTT sample from a PONG. */
void xm_env_answer_ping(const struct xm_role_env *env, const struct xm_frame *ping, __u64 cum,
			__u32 credit);
void xm_env_take_pong(const struct xm_role_env *env, const struct xm_frame *pong, __u64 now);

/* One received frame that passed the CRC: its header, where its payload lies, and the packet
 * (a zero-copy writer may keep its UMEM chunks: pkt->keep). */
struct xm_rx {
	const struct xm_frame *f;
	const struct xm_span *spans;
	__u32 nspans, hdr_off;
	struct xm_xsk *xsk;
	struct xm_rx_pkt *pkt;
};

/* A control request, parsed (daemon/ctl.c): the verb, the flags it may carry, and which role
 * answers it (XM_ROLE_NONE: the daemon itself), with the answer when another role runs. */
struct xm_ctl_req {
	const char *verb;
	bool force, mark, discard_local, text, full, now;
	__u64 buffer;	  /* events: the reader's bound in bytes; 0: the default */
	const char *path; /* disk-attach: the disk to open; NULL: the one the daemon had */
	enum xm_role role;
	const char *wrong_role;
};

/*
 * A role.  The daemon calls these from its one thread; `r` is what create() returned.  Optional
 * hooks may be NULL.
 */
struct xm_role_ops {
	enum xm_role role;
	/* Returns NULL with errno set (and a message printed). */
	void *(*create)(const struct xm_role_env *env);
	void (*destroy)(void *r);
	void (*rx)(void *r, const struct xm_rx *rx);
	void (*rx_done)(void *r);	     /* optional: the end of an RX batch */
	void (*tx_done)(void *r, __u64 tag); /* optional: a tagged frame has left the box */
	/* After each loop pass: timers, sending, acks.  Returns the next deadline (ns). */
	__u64 (*tick)(void *r, __u64 now);
	/* The role's own control verbs; NULL when the verb is not one of them. */
	const char *(*control)(void *r, const struct xm_ctl_req *req);
	/* A session with the peer is up. */
	bool (*connected)(const void *r);
	/* Detach or role change: take no more work; drained() says when the daemon may go on. */
	void (*stop)(void *r);
	bool (*drained)(const void *r, __u64 now);
	/* After draining: CLOSE to the peer (enum xm_close_reason), clean metadata on its way;
	 * finished() says when it is durable (or failed) and the daemon may go on. */
	void (*finish)(void *r, __u64 why);
	bool (*finished)(const void *r);
	/* The operator detached or attached the disk (the daemon has opened the new one); returns
	 * NULL or an error line for the client.  Optional. */
	const char *(*disk_changed)(void *r, enum xm_disk_event ev);
	/* Its part of the status report (util/report.h), the same for JSON and text. */
	void (*status)(const void *r, struct xm_report *rep);
};

#endif
