/* SPDX-License-Identifier: GPL-2.0 */
/* The attach configuration: one table of keys shared by command-line options and config files. */
#ifndef XM_CONFIG_H
#define XM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "xdpmirror.h"

enum xm_xsk_mode {
	XM_XSK_AUTO = 0, /* try zero-copy, fall back to copy */
	XM_XSK_ZEROCOPY,
	XM_XSK_COPY,
};

enum xm_xdp_mode {
	XM_XDP_NATIVE = 0, /* driver mode; the product's path */
	XM_XDP_SKB,	   /* generic mode, for NICs without XDP support */
};

struct xm_config {
	enum xm_role role;
	char dev[16];
	__u8 peer_mac[XM_ETH_ALEN];
	bool have_peer;
	char disk[PATH_MAX];
	__u16 ethertype;
	__u32 queues; /* 0: every RX queue of the device */
	enum xm_xsk_mode xsk_mode;
	enum xm_xdp_mode xdp_mode;
	__u32 ping_ms;		 /* heartbeat interval */
	__u32 timeout_ms;	 /* peer dead after its link or kernel did not answer this long */
	__u32 ko_ms;		 /* peer dead after its daemon made no progress this long */
	bool realtime;		 /* SCHED_FIFO event loop, memory locked */
	__u32 busy_poll_us;	 /* poll this long before the loop sleeps after work; 0: never */
	char protocol;		 /* replication protocol: 'A', 'B' or 'C' */
	bool io_error_pass_on;	 /* --on-io-error pass-on (docs/protocol.md §15.2) */
	char nbd_socket[108];	 /* primary: NBD Unix socket; empty: the default under XM_RUN_DIR */
	__u16 nbd_tcp_port;	 /* primary: 0 or the TCP export's port (nbd_tcp_addr) */
	char meta[PATH_MAX];	 /* metadata file; empty: /var/lib/xdpmirror/IF.meta */
	__u32 bitmap_block;	 /* bytes per bitmap bit when the metadata is created; 0: default */
	char initial_sync;	 /* primary, peer never synced: 'f'ull, 'c'hecksum or 's'kip */
	__u32 resync_mib;	 /* primary: resync rate cap in MiB/s; 0: the link's speed */
	bool force;		 /* primary: start even if this disk is not UpToDate */
	char auth_key[PATH_MAX]; /* the shared key file (docs/protocol.md §14.2) */
	bool no_auth;		 /* --no-auth: no key, frames in clear (labs only) */

	/* Who may use the primary's NBD export (README, "The NBD export"). */
	char nbd_tcp_addr[46]; /* --nbd-tcp's numeric IPv4 or IPv6 address (INET6_ADDRSTRLEN) */
	char nbd_tls_psk[PATH_MAX]; /* TLS keys of the TCP export (psktool's format); empty: none */
	bool nbd_tcp_insecure;	    /* TCP export without TLS (labs only) */
	bool nbd_group;		    /* the Unix socket is 0660 with group nbd_gid, not 0600 */
	__u32 nbd_gid;

	/* --metrics-listen: GET /metrics on this numeric address and port; port 0: not served. */
	char metrics_addr[46];
	__u16 metrics_port;
};

struct xm_config_key {
	const char *name;    /* key in a config file, long option on the command line */
	const char *metavar; /* what the value looks like, for help */
	const char *help;
	/* Returns 0 or -errno; on error writes a reason about the value to err. */
	int (*set)(struct xm_config *c, const char *val, char *err, size_t errlen);
	/* Non-NULL: on the command line a bare flag, meaning this value (in a file: key = value).
	 */
	const char *flag_value;
};

/* Every key, ending with a zeroed entry. */
extern const struct xm_config_key xm_config_keys[];

void xm_config_init(struct xm_config *c);
const struct xm_config_key *xm_config_find(const char *name);
/* Sets one key; err gets "'VALUE': reason" or "unknown key 'NAME'". Returns 0 or -errno. */
int xm_config_set(struct xm_config *c, const char *key, const char *val, char *err, size_t errlen);
/* Parses "key = value" lines (# comments, blank lines); origin names the source in errors. */
int xm_config_parse_text(struct xm_config *c, const char *text, const char *origin, char *err,
			 size_t errlen);
int xm_config_load_file(struct xm_config *c, const char *path, char *err, size_t errlen);
/* Checks that every required key is present; -EINVAL with "missing --role" style reason. */
int xm_config_check(const struct xm_config *c, char *err, size_t errlen);

const char *xm_xsk_mode_name(enum xm_xsk_mode m);
const char *xm_xdp_mode_name(enum xm_xdp_mode m);

#endif
