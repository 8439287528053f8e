/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the secondary's files share, and nothing outside secondary/ sees.
 *   secondary.c  the role: sessions, numbered frames, acks, SETGEN, timers
 *   handshake.c  HELLO checks, the decision, accepting a session
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
#include "util/hist.h"
#include "util/list.h"

#define WINDOW	 1024u /* per-seq states, and staging buffers (§10.2); a power of two */
#define CSUM_OPS 8u    /* checksum reads in flight (docs/resync.md §5) */

/* docs/protocol.md §4.2; ACCEPTING: a HELLO is decided, the answer waits for the metadata. */
enum sstate { S_LISTEN, S_ACCEPTING, S_CONNECTED, S_DRAINING, S_FAILED };

/* The HELLO being accepted, while the metadata that records the decision is written. */
struct accepting {
	struct xm_frame hello;
	struct xm_hello2 body;
	__u32 block, max_payload;
	__u64 export_size;
	struct xm_hello_gen ack_gen;
	struct xm_meta_waiter wait;
	bool committing;
};

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
	__u64 rx_ns;		   /* when its DATA arrived; 0 for resync DATA (not timed) */
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

/* A read of this disk the primary asked for: a CSUMREQ (then a CRC per XM_CSUM_BLOCK) or a
 * READ_REQ (then READ_DATA pieces, §15.6). */
#define READ_OPS 32u
struct disk_read {
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
	struct accepting acc;
	/* Regions written in this session (docs/resync.md §8a); valid once a session started. */
	__u64 *written;
	bool written_valid;
	/* A SETGEN whose metadata is being written (docs/resync.md §4.3). */
	struct {
		struct xm_meta_waiter wait;
		enum { SG_NONE, SG_WRITING, SG_DONE } state;
		bool starting;
		__u64 seq;
		__u32 gen;
	} setgen;
	/* detach or role change: the metadata write of finish() */
	struct xm_meta_waiter finish_wait;
	bool finishing;
	/* The latest HELLO seen while draining or accepting, answered after (§4.2). */
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
	struct disk_read csum[CSUM_OPS];
	__u32 csum_inflight;
	struct disk_read reads[READ_OPS];
	__u32 reads_inflight;
	/* docs/protocol.md §8.7: an application write's DATA received -> durable here (its ack
	 * leaves at the end of that loop pass). */
	struct xm_hist lat_write_durable;
};

static inline struct xm_counters *ctr(const struct xm_secondary *s)
{
	return s->env->ctr;
}

static inline __u64 right_edge(const struct xm_secondary *s)
{
	/* Every slot has its own staging buffer, so the whole ring is always free to promise. */
	return xm_receiver_right_edge(&s->rcv);
}

static inline __u64 cumack(const struct xm_secondary *s)
{
	return xm_receiver_cumack(&s->rcv);
}

/* secondary.c */
/* Ends the session (why for status and the log): no acks for it any more (§4.2). */
void leave_session(struct xm_secondary *s, const char *why);
/* The disk failed (what: the operation): no more acks, CLOSE to the primary, HELLOs are
 * refused until disk attach (§4.2, §15.5). */
void fail_disk(struct xm_secondary *s, int err, const char *what);
/* A frame is durable: the cumulative ack moves, barriers in order pass. */
void frame_durable(struct xm_secondary *s, __u64 seq);

/* The regions written in this session: forgotten (a session starts), one marked, or all marked
 * out of sync in the bitmap (why: for the log). */
void written_reset(struct xm_secondary *s);
void written_mark(struct xm_secondary *s, __u64 off, __u64 len);
void written_to_oos(struct xm_secondary *s, const char *why);

/* handshake.c */
/* A HELLO: checked, decided, and answered once the metadata holds the decision. */
void handshake_on_hello(struct xm_secondary *s, const struct xm_frame *f,
			const struct xm_span *spans, __u32 n, __u32 hdr_off);
/* Once per pass: a draining secondary that became idle answers the HELLO it kept. */
void handshake_tick(struct xm_secondary *s);

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
/* READ_REQ: the primary reads this disk (its own failed, docs/protocol.md §15.6). */
void on_read_req(struct xm_secondary *s, const struct xm_frame *f);
void reads_free(struct xm_secondary *s);

/* status.c */
void secondary_status(const void *r, struct xm_report *rep);

#endif
