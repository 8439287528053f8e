/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the secondary's files share, and nothing outside secondary/ sees.
 *   secondary.c  the role: handshake and generations, sessions, numbered frames, acks, timers
 *   writer.c     DATA to disk: zero-copy or bounce, writes merged per RX batch, commit
 *   answers.c    what the primary asks of this disk: its bitmap, checksums
 *   status.c     status as JSON and as text
 */
#ifndef XM_SECONDARY_INTERNAL_H
#define XM_SECONDARY_INTERNAL_H

#include <stdbool.h>
#include <sys/uio.h>
#include <linux/types.h>

#include "repl/gen.h"
#include "repl/receiver.h"
#include "repl/role.h"
#include "util/clock.h"
#include "util/list.h"

#define WINDOW	 1024u /* per-seq states, and staging buffers (§10.2); a power of two */
#define CSUM_OPS 8u    /* checksum reads in flight (docs/resync.md §5) */

enum sstate { S_LISTEN, S_CONNECTED, S_DRAINING, S_FAILED };

/* What the writer keeps per seq of the window (the receiver keeps its state, same index). */
struct sslot {
	struct xm_secondary *s;
	__u64 seq;
	__u32 gen; /* the session generation that submitted the write */
	struct xm_io io;
	struct xm_commit_item ci;
	struct xm_xsk *x;
	struct xm_rx_pkt held; /* zero-copy: the UMEM chunks the write reads from */
	bool holds, fua;
	__u8 *staging; /* bounce buffer, max_payload bytes */
	struct iovec iov[XM_MAX_SPANS];
	struct sslot *merged_next; /* the next slot written by the same merged write */
	__u64 setgen;		   /* a SETGEN barrier: the generation to adopt */
};

/* Frames for consecutive disk offsets that arrive in one RX batch become one writev: the disk
 * sees a 256 KiB write, not 32 writes of 8 KiB.  On a virtual disk each request costs a VM exit,
 * and per-request costs capped a stream of 8 KiB writes at ~80k IOPS = ~650 MB/s. */
#define MERGE_IOV   128
#define MERGE_BYTES (1u << 20)
struct wmerge {
	struct sslot *first, *last;
	__u64 off, end;
	__u32 iovcnt;
	struct iovec iov[MERGE_IOV];
};

/* One CSUMREQ being answered: a read of the range, then a CRC per XM_CSUM_BLOCK. */
struct csum_op {
	struct xm_io io;
	struct xm_secondary *s;
	__u64 off;
	__u32 len, gen;
	bool busy;
	__u8 *buf;
};

struct xm_secondary {
	const struct xm_role_env *env;
	enum sstate state;
	char reason[128];
	__u32 session, gen;
	char protocol;
	__u32 block, max_payload, payload_align, max_payload_local;
	__u64 export_size;
	__u8 peer_uuid[16];
	const char *layout;
	bool zero_copy_possible;
	struct xm_receiver rcv; /* §5.6 */
	struct sslot ring[WINDOW];
	struct wmerge merge; /* frames gathered in this RX batch, not submitted yet */
	__u32 io_inflight;   /* frames whose write is pending or submitted, across sessions */
	bool ack_pending, rcvd_pending;
	/* The latest HELLO seen while draining, answered once the old I/O is done (§4.2). */
	bool hello_saved;
	struct xm_frame saved_hello;
	struct xm_hello2 saved_hello_body;
	bool stopping;
	/* generations (docs/resync.md §3) */
	struct xm_hello_gen ack_gen; /* what the session's HELLO_ACK said */
	__u8 decision;		     /* enum xm_sync_decision of the session, or the refusal */
	__u8 refused_decision;	     /* the last refusing decision, for status; 0 none */
	__u8 last_refusal;	     /* enum xm_refusal of the last HELLO refused, logged once */
	bool discard_local;	     /* resolve --discard-local is waiting for a handshake */
	struct csum_op csum[CSUM_OPS];
	__u32 csum_inflight;
};

static inline struct xm_counters *ctr(const struct xm_secondary *s)
{
	return s->env->ctr;
}

/* secondary.c */
/* The disk failed: no more acks, HELLOs are refused (§4.2). */
void fail_disk(struct xm_secondary *s, int err);
/* A frame is durable: the cumulative ack moves, barriers in order pass. */
void frame_durable(struct xm_secondary *s, __u64 seq);

/* writer.c */
/* Writes a DATA frame's payload (pl, n spans) for seq: straight from the UMEM chunks when it can
 * (the packet is kept), else through the slot's staging buffer; merged with its neighbours. */
void writer_apply(struct xm_secondary *s, __u64 seq, const struct xm_frame *f, struct xm_xsk *x,
		  struct xm_rx_pkt *pkt, const struct xm_span *pl, __u32 n);
/* Submits what the RX batch gathered. */
void writer_submit(struct xm_secondary *s);
/* Every write submitted has completed and been committed. */
bool writer_idle(const struct xm_secondary *s);
int writer_init(struct xm_secondary *s);
void writer_free(struct xm_secondary *s);

/* answers.c */
void on_bmreq(struct xm_secondary *s, const struct xm_frame *f);
void on_csumreq(struct xm_secondary *s, const struct xm_frame *f);
void answers_free(struct xm_secondary *s);

/* status.c */
void secondary_status(const void *r, struct xm_report *rep);

#endif
