/* SPDX-License-Identifier: GPL-2.0 */
/* One AF_XDP socket per RX queue, each with its own UMEM: RX half on the fill ring, TX half for
 * sends. */
#ifndef XM_XSK_H
#define XM_XSK_H

#include <stdbool.h>
#include <linux/if_xdp.h>
#include <linux/types.h>
#include <sys/uio.h>
#include <xdp/xsk.h>

#include "conf/config.h"

/* Debian 12's uapi headers are from 6.1; multi-buffer AF_XDP arrived in 6.6. */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

#define XM_XDP_MAX_TX_SKB_BUDGET 9   /* uapi since 6.17 */
#define XM_XSK_TX_BUDGET	 256 /* descriptors per copy-mode sendto() */

#define XM_XSK_FRAME_SIZE 4096 /* the largest aligned chunk the kernel accepts (see reference) */
/* A full window of jumbo frames (1024 frames of 3 chunks each, docs/protocol.md) must fit in the
 * RX half, or a burst arriving while the writer is busy finds the fill ring empty and is dropped.
 */
#define XM_XSK_RX_FRAMES 4096
#define XM_XSK_TX_FRAMES 2048
#define XM_XSK_FRAMES	 (XM_XSK_RX_FRAMES + XM_XSK_TX_FRAMES)

/* The pieces of one received packet: a single buffer, or several chained with XDP_PKT_CONTD. */
#define XM_RX_MAX_PIECES 8
struct xm_rx_piece {
	__u64 addr; /* UMEM address of the data */
	__u8 *data;
	__u32 len;
};
struct xm_rx_pkt {
	struct xm_rx_piece piece[XM_RX_MAX_PIECES];
	__u32 npieces;
	__u32 len;     /* sum of the piece lengths */
	bool overflow; /* more pieces than XM_RX_MAX_PIECES: never handed out */
	bool keep;     /* set by the handler: it keeps the chunks and returns them later */
};

struct xm_xsk {
	__u32 queue;
	__u32 headroom; /* UMEM headroom: where received data starts in a chunk (+256) */
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
	__u64 tx_tag[XM_XSK_TX_FRAMES]; /* per TX frame: the caller's tag, reported on completion */
	__u32 tx_unkicked;		/* frames queued since the last kick */
	__u32 rx_held;			/* RX chunks kept by handlers, not yet on the fill ring */
	/* A multi-buffer packet being gathered; a batch may end in the middle of one. */
	struct xm_rx_pkt pending;
};

/* Called once per received packet.  Unless it sets pkt->keep, the chunks go back to the fill
 * ring after the call. */
typedef void (*xm_rx_fn)(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt);
/* Called for each completed TX frame that was sent with a nonzero tag. */
typedef void (*xm_tx_done_fn)(void *ctx, __u64 tag);

/*
 * Creates the UMEM and socket on (ifname, queue) with libxdp's own program load inhibited, asks for
 * zero-copy when mode allows and falls back to copy mode for XM_XSK_AUTO, then registers the socket
 * in the XSKMAP.  headroom_copy/headroom_zc: UMEM headroom for each mode.  Returns 0 or -errno.
 */
int xm_xsk_open(struct xm_xsk *x, const char *ifname, __u32 queue, enum xm_xsk_mode mode,
		int xskmap_fd, __u32 headroom_copy, __u32 headroom_zc);
void xm_xsk_close(struct xm_xsk *x);
int xm_xsk_fd(const struct xm_xsk *x);

/* True when the RX ring holds a descriptor: a read of shared memory, no syscall. */
bool xm_xsk_rx_ready(struct xm_xsk *x);
/* Reaps received packets (at most budget), calls fn for each, refills the fill ring. */
unsigned int xm_xsk_rx(struct xm_xsk *x, unsigned int budget, xm_rx_fn fn, void *ctx);
/* Gives chunks a handler kept (pkt->keep) back to the fill ring. */
void xm_xsk_rx_release(struct xm_xsk *x, const struct xm_rx_pkt *pkt);

/*
 * Sends one frame gathered from iov (at most XM_MAX_FRAME bytes) as one or more TX descriptors.
 * tag (nonzero) is reported to xm_xsk_tx_reclaim's callback when the frame has left.
 * Returns 0 or -ENOBUFS (no free TX frames or ring slots; nothing was queued).
 */
int xm_xsk_tx_frame(struct xm_xsk *x, const struct iovec *iov, unsigned int iovcnt, __u64 tag);
/* Kicks the kernel to transmit what is queued. */
void xm_xsk_tx_kick(struct xm_xsk *x);
/* Returns completed TX frames to the free list; fn (may be NULL) hears about tagged ones. */
void xm_xsk_tx_reclaim(struct xm_xsk *x, xm_tx_done_fn fn, void *ctx);

int xm_xsk_statistics(const struct xm_xsk *x, struct xdp_statistics *st);

#endif
