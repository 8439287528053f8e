/* SPDX-License-Identifier: GPL-2.0 */
/* One AF_XDP socket per RX queue, each with its own UMEM: RX half on the fill ring, TX half for
 * sends. */
#ifndef XM_XSK_H
#define XM_XSK_H

#include <stdbool.h>
#include <linux/if_xdp.h>
#include <linux/types.h>
#include <xdp/xsk.h>

#include "config.h"

/* Debian 12's uapi headers are from 6.1; multi-buffer AF_XDP arrived in 6.6. */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

#define XM_XSK_FRAME_SIZE 4096 /* the largest aligned chunk the kernel accepts (see reference) */
#define XM_XSK_RX_FRAMES  2048
#define XM_XSK_TX_FRAMES  2048
#define XM_XSK_FRAMES	  (XM_XSK_RX_FRAMES + XM_XSK_TX_FRAMES)

struct xm_xsk {
	__u32 queue;
	void *area;
	struct xsk_umem *umem;
	struct xsk_ring_prod fq;
	struct xsk_ring_cons cq;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;
	struct xsk_socket *sock;
	bool zerocopy;
	__u64 tx_free[XM_XSK_TX_FRAMES]; /* UMEM addresses of idle TX frames */
	__u32 tx_nfree;
	/* A multi-buffer packet being gathered; a batch may end in the middle of one. */
	__u8 gather[XM_MAX_FRAME];
	__u32 gather_len;
	bool gather_overflow;
};

/* Called once per received packet with contiguous bytes; valid only during the call. */
typedef void (*xm_rx_fn)(void *ctx, struct xm_xsk *x, const void *pkt, __u32 len);

/*
 * Creates the UMEM and socket on (ifname, queue) with libxdp's own program load inhibited, asks for
 * zero-copy when mode allows and falls back to copy mode for XM_XSK_AUTO, then registers the socket
 * in the XSKMAP.  Returns 0 or -errno.
 */
int xm_xsk_open(struct xm_xsk *x, const char *ifname, __u32 queue, enum xm_xsk_mode mode,
		int xskmap_fd);
void xm_xsk_close(struct xm_xsk *x);
int xm_xsk_fd(const struct xm_xsk *x);

/* Reaps received packets (at most budget), calls fn for each, refills the fill ring. */
unsigned int xm_xsk_rx(struct xm_xsk *x, unsigned int budget, xm_rx_fn fn, void *ctx);

/* A free TX buffer of XM_XSK_FRAME_SIZE bytes, or NULL when all are in flight. */
void *xm_xsk_tx_buf(struct xm_xsk *x, __u64 *addr);
/* Queues one single-buffer frame and kicks the kernel.  Returns 0 or -errno (-ENOBUFS: ring full).
 */
int xm_xsk_tx_send(struct xm_xsk *x, __u64 addr, __u32 len);
/* Returns completed TX frames to the free list. */
void xm_xsk_tx_reclaim(struct xm_xsk *x);

int xm_xsk_statistics(const struct xm_xsk *x, struct xdp_statistics *st);

#endif
