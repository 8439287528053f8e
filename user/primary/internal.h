/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the primary's files share, and nothing outside primary/ sees: the primary's state, a
 * write's life, and the functions each file offers the others.
 *   session.c  the role: handshake, sessions, the sender's frames, receiving, timers
 *   write.c    NBD requests; a write's life from admission to retirement (one state machine)
 *   resync.c   what a session does about the data: bitmap transfer, resync, SETGEN, sweep
 *   verify.c   checksum passes: the initial checksum sync and online verify
 *   status.c   status as JSON and as text
 */
#ifndef XM_PRIMARY_INTERNAL_H
#define XM_PRIMARY_INTERNAL_H

#include <stdbool.h>
#include <linux/types.h>

#include "nbd/nbd.h"
#include "repl/gen.h"
#include "repl/role.h"
#include "util/clock.h"
#include "util/hist.h"
#include "repl/sender.h"
#include "store/actlog.h"
#include "util/list.h"

#define SEND_RING	4096 /* frames in flight at most; a power of two */
#define NBD_MAX_REQUEST (32u << 20)
/* docs/resync.md */
#define SWEEP_NS	 (1000 * NS_PER_MS) /* lazy clearing of intent bits */
#define IN_SYNC_LOG_NS	 (10 * NS_PER_SEC)  /* "peer in sync" lines at most this often */
#define RESYNC_CHUNK	 (256u << 10)	    /* largest resync chunk */
#define RESYNC_CHUNKS	 64u		    /* chunks in the active set at once */
#define CSUM_OPS	 8u
#define CSUM_RETRY_QUEUE 1024u

enum pstate { P_DISCONNECTED, P_HELLO_SENT, P_CONNECTED, P_REFUSED };

/* What a connected session is doing about the data (docs/resync.md §4). */
enum phase { PH_NONE, PH_BITMAP_XFER, PH_CHECKSUM, PH_RESYNC, PH_SETGEN, PH_IN_SYNC };

/* What a numbered frame carries (struct xm_sender_slot.kind). */
enum slot_kind { SLOT_EMPTY, SLOT_DATA, SLOT_FLUSH };

/*
 * A write's life (docs/protocol.md §8).  Every event goes through write_event() (write.c), which
 * holds the legal transitions; a write is retired (freed) once it has been answered, its local
 * write is over and its remote copy is settled.
 *
 *   W_WAITING  behind an overlapping write in p->waiting              -> W_INTENT, W_ACTIVE
 *   W_INTENT   active; its bitmap bits are on their way to disk         -> W_ACTIVE
 *   W_ACTIVE   active; local write (a resync chunk: read) and frames     -> W_ANSWERED, retired
 *   W_ANSWERED the NBD client has its answer; the rest settles           -> retired
 *
 * Local:  L_NONE -> L_PENDING -> L_WRITTEN (completed) -> L_DURABLE (group commit; a resync
 *         chunk's read is done on completion), or L_FAILED.
 * Remote: R_NONE -> R_QUEUED (frames left to send) -> R_FLYING (all sent) -> R_DURABLE, or
 *         R_LOST from any of them (the peer may lack it: its regions are marked out of sync).
 */
enum wstate { W_NEW, W_WAITING, W_INTENT, W_ACTIVE, W_ANSWERED };
enum wlocal { L_NONE, L_PENDING, L_WRITTEN, L_DURABLE, L_FAILED };
enum wremote { R_NONE, R_QUEUED, R_FLYING, R_DURABLE, R_LOST };

enum wevent {
	WE_ADMIT,	  /* a new write, or a waiting one that nothing overlaps any more */
	WE_INTENT_READY,  /* its bitmap bits are durable (or the metadata failed: arg) */
	WE_LOCAL_WRITTEN, /* the local write's (a resync chunk: read's) completion; arg: result */
	WE_LOCAL_DURABLE, /* the local write is durable (group commit); arg: 0 or -errno */
	WE_FRAME_SENT,	  /* one of its frames left the box, was received, is durable */
	WE_FRAME_RCVD,
	WE_FRAME_DURABLE,
	WE_ALL_SENT,	/* its last frame was handed to the sender */
	WE_REMOTE_LOST, /* the session ended before every frame was durable */
};

/*
 * Where a write's time goes (docs/protocol.md §8.7): one histogram per stage, for NBD writes and
 * FLUSHes only (resync and back-fill chunks have no client waiting).  The local and remote stages
 * start when the write is issued, because from there they run side by side; the others at the
 * events their names say.
 */
enum lat_stage {
	LAT_INTENT,	     /* entering the active set -> issued: its bitmap bits are durable */
	LAT_LOCAL_DURABLE,   /* issued -> the local write is durable */
	LAT_REMOTE_SENT,     /* issued -> the last frame's first transmission left the box */
	LAT_REMOTE_RECEIVED, /* issued -> every frame received by the peer (received-ack) */
	LAT_REMOTE_DURABLE,  /* issued -> every frame durable on the peer (durable ack) */
	LAT_ANSWERED,	     /* NBD request admitted -> its reply */
	LAT_FLUSH,	     /* NBD FLUSH admitted -> its reply */
	LAT_STAGES,
};

/* One admitted NBD WRITE or WRITE_ZEROES, or a resync chunk: in the active set until done on
 * both sides (§8). */
struct pwrite {
	struct xm_list node;	  /* in active or waiting */
	struct xm_list send_node; /* in sendq (rsendq) while R_QUEUED */
	struct xm_list meta_node; /* in intent_wait while W_INTENT */
	struct xm_primary *p;
	struct xm_nbd_req *req; /* NULL once answered, and for resync chunks */
	__u64 off;
	__u32 len;
	__u8 *buf; /* the payload, owned by the write */
	__u32 gen; /* session generation its frames belong to */
	enum wstate state;
	enum wlocal local;
	enum wremote remote;
	int local_err;
	__u32 nframes, next_frame;
	__u32 frames_sent, frames_rcvd, frames_durable;
	bool fua;
	/* An NBD write's clock (CLOCK_MONOTONIC ns; 0 for chunks): admitted, entered the active
	 * set, issued. */
	__u64 admit_ns, active_ns, issue_ns;
	bool resync; /* read locally, sent with XM_F_RESYNC, no NBD request */
	/* docs/protocol.md §15: the disk failed: only the peer's copy counts (protocol C); a
	 * back-fill chunk fetches from the peer what the local disk lacks, and writes it. */
	bool nolocal, backfill;
	__u64 bit_first, bit_end; /* resync: the bitmap bits it clears once durable remotely */
	struct xm_io io;
	struct xm_commit_item ci;
};

/* A read from the peer's disk (READ_REQ, docs/protocol.md §15.6): one range of at most
 * XM_READ_MAX_LEN, answered in pieces of max_payload bytes. */
struct rread {
	struct xm_list node; /* in p->rreads */
	struct xm_primary *p;
	__u64 off;
	__u32 len, got, tries, gen;
	__u8 *buf;				 /* len bytes; the caller's */
	__u64 *pieces;				 /* one bit per piece received */
	__u64 due_ns;				 /* when to ask again */
	void (*done)(struct rread *rr, int err); /* once; rr is freed after it returns */
	void *ctx;
};

struct pflush {
	struct xm_list node;
	struct xm_nbd_req *req; /* NULL for the SETGEN that completes a resync */
	__u32 gen;
	__u64 setgen; /* nonzero: sent as SETGEN with this generation */
	__u64 admit_ns;
};

/* One checksum request: a range read locally and asked from the peer (docs/resync.md §5). */
struct csum_op {
	struct xm_io io;
	struct xm_primary *p;
	bool used, reading, have_local, have_remote;
	__u32 gen, len, tries;
	__u64 off, sent_ns;
	__u64 busy[XM_CSUM_MAX_LEN / XM_CSUM_BLOCK /
		   64]; /* blocks whose region was busy at the request */
	__u8 *buf;
	__u32 local[XM_CSUM_MAX_LEN / XM_CSUM_BLOCK], remote[XM_CSUM_MAX_LEN / XM_CSUM_BLOCK];
};

struct csum_retry {
	__u64 off, due_ns;
	__u32 len, tries;
};

/* A pass over the disk comparing checksums: the initial checksum sync or an online verify. */
struct csum_job {
	bool active, verify, mark;
	__u64 cursor, end, req_len;
	__u64 bytes_done, regions_differ, regions_equal, skipped;
	__u64 first_diff[8];
	__u32 ndiff;
	__u64 started_ns, finished_ns;
	bool finished;
	struct csum_op ops[CSUM_OPS];
	struct csum_retry retry[CSUM_RETRY_QUEUE];
	__u32 retry_head, retry_len;
};

struct xm_primary {
	const struct xm_role_env *env;
	struct xm_nbd_server *nbd;
	char nbd_path[108];
	enum pstate state;
	char reason[128];
	__u32 session, gen;
	__u64 hello_due, hello_sent_ns;
	/* negotiated (§4.3) */
	__u32 block, max_payload, payload_off, window;
	__u64 export_size;
	__u64 ack_wait_max_ns; /* longest wait for the oldest frame's durable ack seen */
	/* docs/resync.md §8a: XM_MF_PEER_SUSPECT is being written; the next HELLO waits for it */
	struct xm_meta_waiter suspect_wait;
	bool suspect_committing;
	bool suspect_session; /* this session's HELLO said so: the peer's writes are resynced */
	/* detach or role change: the metadata write of finish() */
	struct xm_meta_waiter finish_wait;
	bool finishing;
	char running;
	__u8 peer_uuid[16];
	struct xm_sender snd; /* §5 */
	/* writes */
	struct xm_list active, waiting, sendq, flushq, rsendq, intent_wait;
	__u32 nactive;
	__u64 stop_ns;
	bool stopping;
	/* resync (docs/resync.md) */
	struct xm_meta *m;
	struct xm_actlog al; /* hot extents: writes there need no metadata I/O (§8.6) */
	enum phase phase;
	__u8 decision, refusal;
	struct xm_gen_info peer_gen;
	__u32 peer_block;
	bool synced; /* SETGEN acked in this session */
	__u64 bm_next_word, bm_words, bm_due;
	__u64 rs_cursor, rs_done_bytes, rs_start_bytes, rs_start_ns;
	__u64 last_rs_bytes,
		last_rs_ns; /* the last sync that completed: bytes, session to SETGEN */
	__u32 rs_chunks, rs_frames;
	__u64 rs_tokens, rs_refill_ns;
	__u64 rate_ns, rate_bytes, rate_bps;
	__u64 last_sweep_ns;
	struct csum_job cj;
	/* docs/protocol.md §15: the local disk's stale set (one bit per bitmap region), remote
	 * reads waiting for their pieces, the back-fill's progress */
	__u64 *stale;
	struct xm_list rreads;
	__u32 rreads_asked; /* sent at least once and not finished */
	__u64 bf_cursor, bf_bytes;
	__u32 bf_chunks;
	bool peer_disk_failed; /* the peer said its disk failed or was detached */
	__u64 in_sync_log_ns;  /* the last "peer in sync" line */
	__u32 in_sync_quiet, in_sync_log_session; /* syncs done since it; its session */
	char fail_reason[64];
	__u64 fail_silence_ns, fail_at_ns;
	struct xm_hist lat[LAT_STAGES];
};

static inline struct xm_counters *ctr(const struct xm_primary *p)
{
	return p->env->ctr;
}

/* session.c */
void end_session(struct xm_primary *p, const char *why, __u64 now);

/* write.c */
void write_event(struct pwrite *w, enum wevent ev, int arg);
/* The local write of w's buffer, durable through the commit module (WE_LOCAL_WRITTEN, then
 * WE_LOCAL_DURABLE). */
void local_write_submit(struct pwrite *w);
/* The session ended: writes whose frames were under way lose their remote copy (§4.6). */
void writes_session_ended(struct xm_primary *p);
/* A metadata flush cycle finished: writes waiting for their bits go on, or fail. */
void meta_flushed(struct xm_primary *p, int err);
/* Admits a resync or back-fill (w->backfill) chunk like any write: it waits for what it
 * overlaps. */
void admit_chunk(struct xm_primary *p, struct pwrite *w);
void on_nbd_request(void *ctx, struct xm_nbd_req *req);
/* The protocol a write runs under: FUA writes always under C (§6). */
char write_protocol(const struct pwrite *w);
/* Answers an NBD FLUSH (success: every write before it is where FLUSH promises). */
void flush_answer(struct xm_primary *p, struct pflush *fl);

/* resync.c */
void session_start(struct xm_primary *p, const struct xm_hello_gen *g, __u64 now);
void on_bitmap(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
	       __u32 hdr_off, __u64 now);
void setgen_done(struct xm_primary *p, __u64 gen);
/* Moves a connected session through its sync phases; sends SETGEN when the data is equal. */
void sync_work(struct xm_primary *p, __u64 now);
void sweep(struct xm_primary *p, bool kick);
/* Resync frames may be in flight: 3/4 of the window while application writes are active. */
__u64 rs_share(const struct xm_primary *p);

/* verify.c */
__u64 csum_req_len(const struct xm_primary *p);
void csum_begin(struct xm_primary *p, bool verify, bool mark, __u64 now);
void csum_abort(struct xm_primary *p);
void csum_pump(struct xm_primary *p, __u64 now);
void on_csum(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
	     __u32 hdr_off);
bool csum_reading(const struct xm_primary *p);
/* Starts an online verify (mark: set differing regions out of sync); returns the answer line. */
const char *start_verify(struct xm_primary *p, bool mark);

/* diskless.c (docs/protocol.md §15) */
int diskless_init(struct xm_primary *p);
void diskless_free(struct xm_primary *p);
/* Local I/O may be issued: the disk is attached or syncing. */
bool disk_usable(const struct xm_primary *p);
/* A local I/O error (what: "write at N"): under on-io-error detach the disk moves to failed
 * (returns true: the caller goes on without it); under pass-on returns false. */
bool disk_fail(struct xm_primary *p, int err, const char *what);
/* The disk is gone (failed or detached): what it may lack becomes stale. */
void disk_lost(struct xm_primary *p);
void stale_mark(struct xm_primary *p, __u64 off, __u64 len);
/* A write without the local disk: queued to the peer only, or failed at once (no copy). */
void issue_nolocal(struct pwrite *w);
/* A client READ: local, or from the peer where the local disk lacks it; EIO if nobody has it. */
void read_request(struct xm_primary *p, struct xm_nbd_req *req);
/* A back-fill chunk is active: fetch its range from the peer, then write it locally. */
void backfill_fetch(struct pwrite *w);
/* A back-fill chunk is retired: its regions are no longer stale if it wrote them. */
void backfill_retired(struct pwrite *w);
void on_read_data(struct xm_primary *p, const struct xm_frame *f, const struct xm_span *sp, __u32 n,
		  __u32 hdr_off);
/* Timers: READ_REQs asked again, back-fill chunks started, the end of syncing. */
void diskless_tick(struct xm_primary *p, __u64 now);
/* The session ended: remote reads fail. */
void diskless_session_ended(struct xm_primary *p);
const char *primary_disk_changed(void *r, enum xm_disk_event ev);

/* status.c */
void primary_status(const void *r, struct xm_report *rep);

#endif
