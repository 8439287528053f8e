/* SPDX-License-Identifier: GPL-2.0 */
/* The attached daemon: XDP program, AF_XDP sockets, heartbeats, control socket, one event loop. */
#ifndef XM_DAEMON_H
#define XM_DAEMON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "bpf_load.h"
#include "config.h"
#include "disk.h"
#include "loop.h"
#include "netdev.h"
#include "xsk.h"

/* What the daemon itself counts, beyond the XDP program's map. */
struct xm_daemon_counters {
	__u64 rx_frames; /* packets taken from AF_XDP RX rings */
	__u64 rx_bytes;
	__u64 rx_bad_crc;   /* CRC32C mismatch: dropped */
	__u64 rx_malformed; /* failed parsing in userspace (the XDP program should have caught it)
			     */
	__u64 rx_unhandled; /* valid frame of a type this daemon does not act on yet */
	__u64 tx_frames;
	__u64 tx_bytes;
	__u64 tx_no_buffer; /* a send found no free TX frame or ring slot */
	__u64 pings_sent;
	__u64 pongs_received;
};

struct xm_daemon {
	struct xm_config cfg;
	struct xm_netdev nd;
	struct xm_disk disk;
	struct xm_bpf bpf;
	struct xm_xsk *xsks;
	__u32 nxsks;
	struct xm_loop loop;
	int lock_fd;
	int signal_fd;
	int timer_fd;
	int ctl_fd;
	bool stop;
	__u64 start_ns;
	__u64 ping_seq;
	__u64 last_rx_ns; /* any valid frame from the peer: liveness */
	__u64 rtt_last_ns, rtt_min_ns, rtt_avg_ns;
	struct xm_daemon_counters ctr;
};

__u64 xm_now_ns(void);

/* Validates, attaches and sets everything up; on error prints one line and undoes what it did. */
int xm_daemon_setup(struct xm_daemon *d, const struct xm_config *cfg);
/* Runs until SIGTERM/SIGINT; returns 0 or -errno. */
int xm_daemon_run(struct xm_daemon *d);
void xm_daemon_teardown(struct xm_daemon *d);
/* Writes the daemon's status object (the "daemon" part of `status --json`). */
void xm_daemon_write_status(const struct xm_daemon *d, FILE *out);
/* The same for people: a few aligned lines. */
void xm_daemon_write_status_text(const struct xm_daemon *d, FILE *out);

#endif
