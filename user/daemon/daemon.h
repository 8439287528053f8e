/* SPDX-License-Identifier: GPL-2.0 */
/* The attached daemon: XDP program, AF_XDP sockets, control socket, one event loop; the role
 * (primary.c, secondary.c) does the replication. */
#ifndef XM_DAEMON_H
#define XM_DAEMON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "link/bpf_load.h"
#include "store/commit.h"
#include "conf/config.h"
#include "repl/counters.h"
#include "store/disk.h"
#include "link/frame.h"
#include "util/loop.h"
#include "store/meta.h"
#include "link/netdev.h"
#include "link/xsk.h"

struct xm_primary;
struct xm_secondary;

struct xm_daemon {
	struct xm_config cfg;
	struct xm_netdev nd;
	struct xm_disk disk;
	struct xm_bpf bpf;
	struct xm_xsk *xsks;
	__u32 nxsks;
	struct xm_loop loop;
	struct xm_commit commit;
	int lock_fd;
	int signal_fd;
	int ctl_fd;
	struct xm_watch signal_watch, ctl_watch;
	struct xm_watch *xsk_watch;
	bool stop;     /* detach requested */
	bool finished; /* the role has drained: leave the loop */
	__u64 start_ns;
	__u8 node_uuid[16];
	__u64 last_tx_ns;   /* any frame sent */
	__u64 last_ping_ns; /* heartbeats go out every ping interval */
	__u64 last_rx_ns;   /* any frame from the peer with a good CRC: "reachable" in status */
	__u64 rtt_last_ns, rtt_min_ns, rtt_avg_ns;
	struct xm_counters ctr;
	struct xm_primary *pri;
	struct xm_secondary *sec;
	struct xm_meta meta; /* generations, disk state and bitmap; shared by both roles */
	/* promote/demote: the role to switch to once the current one has drained, or NONE */
	enum xm_role next_role;
	bool promote_forced;
};

__u64 xm_now_ns(void);

/* Validates, attaches and sets everything up; on error prints one line and undoes what it did. */
int xm_daemon_setup(struct xm_daemon *d, const struct xm_config *cfg);
/* Runs until SIGTERM/SIGINT and the role has drained; returns 0 or -errno. */
int xm_daemon_run(struct xm_daemon *d);
void xm_daemon_teardown(struct xm_daemon *d);
/* Writes the daemon's status object (the "daemon" part of `status --json`). */
void xm_daemon_write_status(const struct xm_daemon *d, FILE *out);
/* The same for people: a few aligned lines. */
void xm_daemon_write_status_text(const struct xm_daemon *d, FILE *out);

/*
 * Sends one frame to the peer on queue 0: header from f (payload_off from f), payload from the
 * spans.  tag (nonzero) comes back through the role's TX-completion hook.  Returns 0 or -ENOBUFS.
 */
int xm_daemon_send(struct xm_daemon *d, const struct xm_frame *f, const struct xm_span *payload,
		   __u32 n, __u64 tag);
/* Frames are queued on the TX ring and kicked in batches; xm_daemon_tx_flush() kicks the rest. */
#define XM_TX_KICK_BATCH 32
void xm_daemon_tx_flush(struct xm_daemon *d);
/* Answers a PING; takes an RTT sample from a PONG. */
void xm_daemon_answer_ping(struct xm_daemon *d, const struct xm_frame *ping, __u64 cum,
			   __u32 credit);
void xm_daemon_take_pong(struct xm_daemon *d, const struct xm_frame *pong);
/* Writes the metadata synchronously; logs and counts a failure.  Returns 0 or -errno. */
int xm_daemon_meta_sync(struct xm_daemon *d);
/* Sends CLOSE (enum xm_close_reason) in the given session. */
void xm_daemon_send_close(struct xm_daemon *d, __u32 session, __u64 reason);
/* Sends a PING when the last one is a heartbeat interval old. */
void xm_daemon_heartbeat(struct xm_daemon *d, __u32 session, __u64 cum, __u32 credit, __u64 now);

#endif
