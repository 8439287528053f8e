/* SPDX-License-Identifier: GPL-2.0 */
/* Loading the XDP program with its maps pinned per interface, and attaching it through a BPF link.
 */
#ifndef XM_BPF_LOAD_H
#define XM_BPF_LOAD_H

#include <limits.h>
#include <linux/types.h>

#include "conf/config.h"
#include "xdpmirror.h"

struct xdpmirror_bpf;

struct xm_bpf {
	struct xdpmirror_bpf *skel;
	int link_fd;		/* closing it detaches the program; -1 when not attached */
	char pin_dir[PATH_MAX]; /* XM_PIN_ROOT/<ifname> */
	__u32 attach_mode;	/* XDP_ATTACHED_DRV or XDP_ATTACHED_SKB once attached */
	const volatile struct xm_alive *alive; /* the alive map, mapped read-only */
};

/* Mounts bpffs on XM_BPFFS_ROOT if nothing is mounted there.  Returns 0 or -errno. */
int xm_bpffs_ensure(void);
void xm_pin_dir(const char *ifname, char *out, size_t len);
/* Removes the pinned maps of ifname and their directory; missing ones are fine. */
int xm_bpf_unpin(const char *ifname);

/* Opens and loads the program for ifname, configured from c and the NIC's own MAC. */
int xm_bpf_load(struct xm_bpf *b, const char *ifname, const struct xm_config *c,
		const __u8 local_mac[6]);
/* Attaches the loaded program to ifindex in the configured mode.  Returns 0 or -errno. */
int xm_bpf_attach(struct xm_bpf *b, int ifindex, enum xm_xdp_mode mode);
int xm_bpf_xsks_fd(const struct xm_bpf *b);
/* Detaches, unpins nothing, frees everything.  Safe on a zeroed or half-set-up struct. */
void xm_bpf_close(struct xm_bpf *b);

/* "native", "skb", "offload" or "unknown": an XDP_ATTACHED_* mode by name. */
const char *xm_bpf_attach_mode_name(__u32 mode);

#endif
