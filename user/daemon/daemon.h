/* SPDX-License-Identifier: GPL-2.0 */
/* The attached daemon: XDP program, AF_XDP sockets, control socket, one event loop; the role
 * it runs (repl/role.h: the primary or the secondary) does the replication. */
#ifndef XM_DAEMON_H
#define XM_DAEMON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "conf/config.h"
#include "link/bpf_load.h"
#include "link/gate.h"
#include "link/netdev.h"
#include "link/xsk.h"
#include "repl/counters.h"
#include "repl/heartbeat.h"
#include "repl/role.h"
#include "store/commit.h"
#include "store/disk.h"
#include "store/meta.h"
#include "util/loop.h"
#include "util/report.h"

struct xm_ctl_client;
struct xm_metrics_http;
struct xm_events;

struct xm_daemon {
	struct xm_config cfg;
	struct xm_netdev nd;
	struct xm_disk disk;
	struct xm_disk_health health; /* lent to the role (docs/protocol.md §15) */
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
	__u32 ctl_clients; /* control connections open (daemon/control.c) */
	struct xm_ctl_client *ctl_client_list;
	struct xm_ctl_stats {
		__u64 accepted, answered;
		__u64 refused;		/* one client too many: told "busy" */
		__u64 request_timeouts; /* closed: no whole request within the deadline */
		__u64 answer_timeouts;	/* closed: the answer not taken within the deadline */
	} ctl_stats;
	struct xm_events
		*events; /* the events stream's readers and last sample (daemon/events.c) */
	bool stop;	 /* detach requested */
	bool finishing;	 /* the role's finish() is writing its metadata */
	bool finished;	 /* the role has drained and finished: leave the loop */
	__u64 start_ns;
	__u8 node_uuid[16];
	__u64 last_tx_ns; /* any frame sent */
	__u64 last_rx_ns; /* any frame from the peer with a good CRC: "reachable" in status */
	struct xm_heartbeat hb;
	struct xm_detector det;
	/* How late the loop woke against the deadline it asked for (docs/protocol.md §9.2). */
	struct {
		__u64 wakes, late_max_ns, over_1ms, over_10ms, over_50ms;
	} late;
	struct xm_counters ctr;
	struct xm_gate gate; /* every frame in and out (docs/protocol.md §14) */
	struct xm_meta meta; /* generations, disk state and bitmap; shared by both roles */
	/* This attach made meta.path, and may have made meta_new_dir (the outermost directory that
	 * was missing; "" when none was) for it: undone if the attach fails before the role runs.
	 */
	bool meta_new;
	char meta_new_dir[PATH_MAX];
	/* The role that runs (repl/role.h) and what it is lent. */
	const struct xm_role_ops *ops;
	void *role;
	struct xm_role_env env;
	/* promote/demote: the role to switch to once the current one has drained, or NONE */
	enum xm_role next_role;
	/* --metrics-listen's server (metrics/http.h): a thread of its own that asks the control
	 * socket like any client, so it never touches what is here. */
	struct xm_metrics_http *metrics;
};

/* Validates, attaches and sets everything up; on error prints one line and undoes what it did. */
int xm_daemon_setup(struct xm_daemon *d, const struct xm_config *cfg);
/* Runs until SIGTERM/SIGINT and the role has drained; returns 0 or -errno. */
int xm_daemon_run(struct xm_daemon *d);
void xm_daemon_teardown(struct xm_daemon *d);
/* One whole frame to the peer on queue 0: the gate's output (setup.c gives it to the gate). */
int xm_daemon_link_out(void *link, const struct xm_span *spans, __u32 n, __u32 len);
/* The control socket (daemon/control.c): watches the listening socket d->ctl_fd on d's loop
 * (returns 0 or -errno); once per loop pass, closes clients past their deadline. */
int xm_control_start(struct xm_daemon *d);
void xm_control_tick(struct xm_daemon *d, __u64 now);
/* What systemd is told (daemon/notify.c, docs/install.md), from every pass of the loop: READY=1 at
 * the first (the role runs, the sockets listen), STATUS= when the role, the session or the disk
 * changes, WATCHDOG=1 every half of WATCHDOG_USEC, STOPPING=1 once a detach begins.  Without
 * NOTIFY_SOCKET it does nothing. */
void xm_notify_tick(const struct xm_daemon *d, __u64 now);
/* disk detach / disk attach (daemon/disk.c): the answer line for the control client. */
const char *xm_daemon_disk_detach(struct xm_daemon *d);
const char *xm_daemon_disk_attach(struct xm_daemon *d, const char *path, bool full);
/* The control socket's part of status: clients open, the limits, what became of the others. */
void xm_control_report(const struct xm_daemon *d, struct xm_report *r);
/* The events stream (daemon/events.c, docs/events.md).  init: returns 0 or -ENOMEM.  tick: once
 * per loop pass; samples the device every 100 ms while a reader listens.  note: a role's news
 * (env->note).  state_now: the state line of `events --now` (malloc'd, *len bytes with its
 * newline; NULL without memory).  subscribe: fd (a control client's socket) becomes a reader
 * with a queue of bound bytes (0: the default); returns 0, -EBUSY (as many readers as it takes;
 * counted), or -errno; the caller keeps fd on error.  exit: the last line to each reader and
 * all of them closed. */
int xm_events_init(struct xm_daemon *d);
void xm_events_tick(struct xm_daemon *d, __u64 now);
void xm_events_note(void *d, enum xm_role_note what); /* env->note: d is env->link */
char *xm_events_state_now(struct xm_daemon *d, size_t *len);
int xm_events_subscribe(struct xm_daemon *d, int fd, __u64 bound);
void xm_events_exit(struct xm_daemon *d);
void xm_events_report(const struct xm_daemon *d, struct xm_report *r);
/* Writes the daemon's status: the "daemon" object of `status --json` (XM_REPORT_JSON), or the
 * same for people (XM_REPORT_TEXT). */
void xm_daemon_report(const struct xm_daemon *d, enum xm_report_form form, FILE *out);

#endif
