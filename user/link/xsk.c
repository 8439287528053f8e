// SPDX-License-Identifier: GPL-2.0
/* One AF_XDP socket per RX queue, each with its own UMEM: RX half on the fill ring, TX half for
 * sends. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "link/xsk.h"

static int umem_create(struct xm_xsk *x, __u32 headroom)
{
	struct xsk_umem_config ucfg = {
		.fill_size =
			XM_XSK_RX_FRAMES * 2, /* room for multi-buffer refills, see reference */
		.comp_size = XM_XSK_TX_FRAMES,
		.frame_size = XM_XSK_FRAME_SIZE,
		.frame_headroom = headroom,
	};
	size_t len = (size_t)XM_XSK_FRAMES * XM_XSK_FRAME_SIZE;
	int err;

	x->area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		return -errno;
	}
	err = xsk_umem__create(&x->umem, x->area, len, &x->fq, &x->cq, &ucfg);
	if (err) {
		munmap(x->area, len);
		x->area = NULL;
		x->umem = NULL;
	}
	return err;
}

static void umem_destroy(struct xm_xsk *x)
{
	if (x->umem)
		xsk_umem__delete(x->umem);
	if (x->area)
		munmap(x->area, (size_t)XM_XSK_FRAMES * XM_XSK_FRAME_SIZE);
	x->umem = NULL;
	x->area = NULL;
}

static int socket_create(struct xm_xsk *x, const char *ifname, __u16 mode_flag)
{
	struct xsk_socket_config scfg = {
		.rx_size = XM_XSK_RX_FRAMES, /* one descriptor per chunk */
		.tx_size = XSK_RING_PROD__DEFAULT_NUM_DESCS,
		/* Our own link-attached program steers; libxdp's would outlive a crash (reference
		   G2). */
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = mode_flag | XDP_USE_NEED_WAKEUP | XDP_USE_SG,
	};
	struct timespec backoff = {0, 50 * 1000 * 1000};
	int err, tries = 20;

	/* The kernel frees a closed socket's pool asynchronously: bind may say EBUSY for a while.
	 */
	do {
		err = xsk_socket__create(&x->sock, ifname, x->queue, x->umem, &x->rx, &x->tx,
					 &scfg);
		if (err != -EBUSY)
			break;
		nanosleep(&backoff, NULL);
	} while (--tries);
	if (err)
		x->sock = NULL;
	return err;
}

static bool socket_is_zerocopy(const struct xm_xsk *x)
{
	struct xdp_options opts = {0};
	socklen_t len = sizeof(opts);

	if (getsockopt(xsk_socket__fd(x->sock), SOL_XDP, XDP_OPTIONS, &opts, &len))
		return false;
	return opts.flags & XDP_OPTIONS_ZEROCOPY;
}

/* In copy mode one sendto() turns at most 32 descriptors into skbs unless the socket allows more
 * (Linux 6.17, XDP_MAX_TX_SKB_BUDGET).  A jumbo frame takes three descriptors, so the default
 * means a syscall per ten frames.  Older kernels refuse the option: we keep their default. */
static void set_tx_budget(struct xm_xsk *x)
{
	int budget = XM_XSK_TX_BUDGET;

	if (!x->zerocopy)
		setsockopt(xsk_socket__fd(x->sock), SOL_XDP, XM_XDP_MAX_TX_SKB_BUDGET, &budget,
			   sizeof(budget));
}

static int fill_rx(struct xm_xsk *x)
{
	__u32 idx, i;

	if (xsk_ring_prod__reserve(&x->fq, XM_XSK_RX_FRAMES, &idx) != XM_XSK_RX_FRAMES)
		return -ENOSPC;
	for (i = 0; i < XM_XSK_RX_FRAMES; i++)
		*xsk_ring_prod__fill_addr(&x->fq, idx + i) = (__u64)i * XM_XSK_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fq, XM_XSK_RX_FRAMES);
	for (i = 0; i < XM_XSK_TX_FRAMES; i++)
		x->tx_free[i] = (__u64)(XM_XSK_RX_FRAMES + i) * XM_XSK_FRAME_SIZE;
	x->tx_nfree = XM_XSK_TX_FRAMES;
	return 0;
}

/* One UMEM + socket attempt in one mode; leaves nothing behind on failure. */
static int open_mode(struct xm_xsk *x, const char *ifname, __u16 mode_flag, __u32 headroom)
{
	int err;

	x->headroom = headroom;
	err = umem_create(x, headroom);
	if (err)
		return err;
	err = socket_create(x, ifname, mode_flag);
	if (err)
		umem_destroy(x);
	return err;
}

int xm_xsk_open(struct xm_xsk *x, const char *ifname, __u32 queue, enum xm_xsk_mode mode,
		int xskmap_fd, __u32 headroom_copy, __u32 headroom_zc)
{
	int err;

	memset(x, 0, sizeof(*x));
	x->queue = queue;
	if (mode == XM_XSK_COPY) {
		err = open_mode(x, ifname, XDP_COPY, headroom_copy);
	} else {
		err = open_mode(x, ifname, XDP_ZEROCOPY, headroom_zc);
		if (err && mode == XM_XSK_AUTO) {
			pr_debug("%s queue %u: zero-copy bind failed (%s), using copy mode", ifname,
				 queue, strerror(-err));
			err = open_mode(x, ifname, XDP_COPY, headroom_copy);
		}
	}
	if (err)
		return err;
	x->zerocopy = socket_is_zerocopy(x);
	set_tx_budget(x);
	err = fill_rx(x);
	if (err)
		goto out_close;
	err = xsk_socket__update_xskmap(x->sock, xskmap_fd);
	if (err)
		goto out_close;
	return 0;
out_close:
	xm_xsk_close(x);
	return err;
}

void xm_xsk_close(struct xm_xsk *x)
{
	if (x->sock)
		xsk_socket__delete(x->sock);
	x->sock = NULL;
	umem_destroy(x);
}

int xm_xsk_fd(const struct xm_xsk *x)
{
	return xsk_socket__fd(x->sock);
}

static void refill(struct xm_xsk *x, const __u64 *addrs, __u32 n)
{
	__u32 idx, i;

	if (!n)
		return;
	/* The fill ring is twice the RX frame count, so the frames we own always fit. */
	while (xsk_ring_prod__reserve(&x->fq, n, &idx) != n)
		;
	for (i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&x->fq, idx + i) = addrs[i];
	xsk_ring_prod__submit(&x->fq, n);
	/* A zero-copy driver that ran out of fill entries stops until woken (XDP_USE_NEED_WAKEUP,
	 * the flag on this ring).  Our polls wake it as they are armed, but chunks a handler kept
	 * come back outside any poll, and the next poll waits for a packet the stopped driver
	 * cannot deliver.  Copy mode never sets the flag: no syscall on veth. */
	if (xsk_ring_prod__needs_wakeup(&x->fq))
		recvfrom(xsk_socket__fd(x->sock), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static __u64 chunk_of(__u64 addr)
{
	/* Unaligned mode is off, so the chunk start is the address rounded down. */
	return addr & ~((__u64)XM_XSK_FRAME_SIZE - 1);
}

void xm_xsk_rx_release(struct xm_xsk *x, const struct xm_rx_pkt *pkt)
{
	__u64 addrs[XM_RX_MAX_PIECES];
	__u32 i;

	for (i = 0; i < pkt->npieces; i++)
		addrs[i] = chunk_of(pkt->piece[i].addr);
	refill(x, addrs, pkt->npieces);
	x->rx_held -= pkt->npieces;
}

bool xm_xsk_rx_ready(struct xm_xsk *x)
{
	return xsk_cons_nb_avail(&x->rx, 1) > 0;
}

unsigned int xm_xsk_rx(struct xm_xsk *x, unsigned int budget, xm_rx_fn fn, void *ctx)
{
	struct xm_rx_pkt *pkt = &x->pending;
	__u64 done[64 + XM_RX_MAX_PIECES];
	__u32 idx, n, i, j, ndone = 0;
	unsigned int packets = 0;

	if (budget > 64)
		budget = 64;
	n = xsk_ring_cons__peek(&x->rx, budget, &idx);
	for (i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);

		if (pkt->npieces < XM_RX_MAX_PIECES) {
			struct xm_rx_piece *p = &pkt->piece[pkt->npieces++];

			p->addr = d->addr;
			p->data = xsk_umem__get_data(x->area, d->addr);
			p->len = d->len;
		} else {
			/* Larger than any frame we accept: the XDP program lets none through. */
			pkt->overflow = true;
			done[ndone++] = chunk_of(d->addr);
		}
		pkt->len += d->len;
		if (d->options & XDP_PKT_CONTD)
			continue;
		pkt->keep = false;
		if (!pkt->overflow)
			fn(ctx, x, pkt);
		packets++;
		if (pkt->keep)
			x->rx_held += pkt->npieces;
		else
			for (j = 0; j < pkt->npieces; j++)
				done[ndone++] = chunk_of(pkt->piece[j].addr);
		memset(pkt, 0, sizeof(*pkt));
		if (ndone >= 64) {
			refill(x, done, ndone);
			ndone = 0;
		}
	}
	if (n)
		xsk_ring_cons__release(&x->rx, n);
	refill(x, done, ndone);
	return packets;
}

void xm_xsk_tx_reclaim(struct xm_xsk *x, xm_tx_done_fn fn, void *ctx)
{
	__u32 idx, n, i;

	n = xsk_ring_cons__peek(&x->cq, XM_XSK_TX_FRAMES, &idx);
	for (i = 0; i < n; i++) {
		__u64 addr = *xsk_ring_cons__comp_addr(&x->cq, idx + i);
		__u32 slot = (__u32)(addr / XM_XSK_FRAME_SIZE) - XM_XSK_RX_FRAMES;

		if (slot < XM_XSK_TX_FRAMES) {
			if (x->tx_tag[slot] && fn)
				fn(ctx, x->tx_tag[slot]);
			x->tx_tag[slot] = 0;
		}
		x->tx_free[x->tx_nfree++] = addr;
	}
	if (n)
		xsk_ring_cons__release(&x->cq, n);
}

void xm_xsk_tx_kick(struct xm_xsk *x)
{
	/* Copy mode always wants the kick; errors here only mean "try again later". */
	if (xsk_ring_prod__needs_wakeup(&x->tx))
		sendto(xsk_socket__fd(x->sock), NULL, 0, MSG_DONTWAIT, NULL, 0);
}

int xm_xsk_tx_frame(struct xm_xsk *x, const struct iovec *iov, unsigned int iovcnt, __u64 tag)
{
	size_t total = 0, done = 0, src_off = 0;
	unsigned int v = 0;
	__u32 idx, ndesc, i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!total || total > XM_MAX_FRAME)
		return -EINVAL;
	ndesc = (__u32)((total + XM_XSK_FRAME_SIZE - 1) / XM_XSK_FRAME_SIZE);
	if (x->tx_nfree < ndesc)
		xm_xsk_tx_reclaim(x, NULL, NULL);
	if (x->tx_nfree < ndesc)
		return -ENOBUFS;
	if (xsk_ring_prod__reserve(&x->tx, ndesc, &idx) != ndesc) {
		xm_xsk_tx_kick(x);
		return -ENOBUFS;
	}
	/* Fill whole chunks in order; each chunk is one descriptor, all but the last CONTD. */
	for (i = 0; i < ndesc; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + i);
		__u64 addr = x->tx_free[--x->tx_nfree];
		__u8 *dst = xsk_umem__get_data(x->area, addr);
		size_t room = total - done < XM_XSK_FRAME_SIZE ? total - done : XM_XSK_FRAME_SIZE;
		size_t filled = 0;

		while (filled < room) {
			size_t take = iov[v].iov_len - src_off;

			if (take > room - filled)
				take = room - filled;
			memcpy(dst + filled, (const __u8 *)iov[v].iov_base + src_off, take);
			filled += take;
			src_off += take;
			if (src_off == iov[v].iov_len) {
				v++;
				src_off = 0;
			}
		}
		done += room;
		d->addr = addr;
		d->len = (__u32)room;
		d->options = i + 1 < ndesc ? XDP_PKT_CONTD : 0;
		x->tx_tag[(addr / XM_XSK_FRAME_SIZE) - XM_XSK_RX_FRAMES] = i + 1 < ndesc ? 0 : tag;
	}
	xsk_ring_prod__submit(&x->tx, ndesc);
	return 0;
}

int xm_xsk_statistics(const struct xm_xsk *x, struct xdp_statistics *st)
{
	socklen_t len = sizeof(*st);

	memset(st, 0, sizeof(*st));
	if (getsockopt(xsk_socket__fd(x->sock), SOL_XDP, XDP_STATISTICS, st, &len))
		return -errno;
	return 0;
}
