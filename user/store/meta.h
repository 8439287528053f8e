/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-box metadata file: node UUID, role, disk state, generations and the bitmap.  The
 * on-disk format and why it survives a crash at any point are in docs/metadata.md.
 *
 *   offset 0      superblock slot 0 (4096 bytes, struct in the first 256)
 *   offset 4096   superblock slot 1
 *   offset 8192   bitmap: intent bits, little-endian 64-bit words, npages * 4096 bytes
 *   then          page checksums: one little-endian CRC32C per bitmap page, in 4096-byte pages
 *
 * A superblock update writes the slot that does not hold the newest valid copy, with seqno + 1,
 * then fdatasyncs: a torn write leaves the other slot valid.  Bitmap pages are written in place;
 * a page is only ever rewritten after its previous write completed, and in the same cycle as the
 * checksum page that covers it.  A bitmap page that fails its checksum at load counts as all
 * ones.
 */
#ifndef XM_META_H
#define XM_META_H

#include <stdbool.h>
#include <linux/types.h>

#include "store/bitmap.h"
#include "util/loop.h"
#include "xdpmirror.h"

#define XM_META_DIR	      "/var/lib/xdpmirror" /* default home of IF.meta */
#define XM_META_MAGIC	      "XMIRMETA"	   /* 8 bytes, no terminator on disk */
#define XM_META_VERSION	      2 /* 2: bitmap page checksums; 1 is upgraded in place at open */
#define XM_META_SLOT	      4096u
#define XM_META_BITMAP_OFF    (2 * XM_META_SLOT)
#define XM_META_CRC_PAGE      4096u		     /* bytes of checksums written at once */
#define XM_META_CRCS_PER_PAGE (XM_META_CRC_PAGE / 4) /* bitmap pages one checksum page covers */

/* Where the checksum table starts, and its size in checksum pages, for a bitmap of npages. */
static inline __u64 xm_meta_crc_off(__u64 npages)
{
	return XM_META_BITMAP_OFF + npages * XM_BITMAP_PAGE;
}

static inline __u64 xm_meta_crc_pages(__u64 npages)
{
	return (npages + XM_META_CRCS_PER_PAGE - 1) / XM_META_CRCS_PER_PAGE;
}

/* xm_meta_sb.flags */
#define XM_MF_PRIMARY_ACTIVE 0x1 /* set while a primary runs; still set at load: it crashed */
#define XM_MF_PEER_SUSPECT   0x2 /* a session ended on a protocol violation (resync.md §8a) */
#define XM_MF_DISK_FAILED    0x4 /* the disk failed or was detached: it misses writes (§15) */

/* The superblock in host order. */
struct xm_meta_sb {
	__u32 version; /* as read; encode always writes XM_META_VERSION */
	__u64 seqno;
	__u8 node_uuid[16];
	__u8 peer_uuid[16]; /* last peer we had a session with; zero if none */
	__u64 current_gen, bitmap_gen, history[2];
	__u64 disk_size; /* bytes the bitmap covers */
	__u64 nbits;
	__u32 bitmap_block;
	__u32 flags;	 /* XM_MF_* */
	__u8 disk_state; /* enum xm_disk_state */
	__u8 role;	 /* enum xm_role: the last role the box ran as */
};

/* Someone waiting until every change made to the metadata before a point is durable. */
struct xm_meta_waiter {
	struct xm_meta_waiter *next;
	__u64 after; /* waits for a cycle that started after this one (xm_meta.cycle_seq) */
	void (*done)(struct xm_meta_waiter *w, int err);
};

struct xm_meta {
	int fd;
	char path[4096];
	struct xm_meta_sb sb;
	struct xm_bitmap bm;
	/* The checksum table as the file holds it (or will, once the cycle in flight is
	 * durable): CRC32C of each bitmap page as last snapshotted, crc_pages * 4096 bytes. */
	__le32 *crcs;
	__u64 crc_pages;
	__u64 bad_pages; /* bitmap pages that failed their checksum at open (status) */
	/* Asynchronous flush (one cycle at a time): dirty pages + superblock, then fdatasync. */
	struct xm_loop *loop;
	bool sb_dirty; /* the superblock changed since the last flush started */
	bool flushing; /* a cycle is in flight */
	int failed;    /* first write error, sticky: -errno */
	__u8 *buf;     /* page snapshots of the cycle in flight, XM_BITMAP_PAGE each */
	__u64 *pages;  /* their page numbers */
	__u32 npages_max, npages_inflight, ios_left;
	__u8 sbuf[XM_META_SLOT]; /* the superblock slot of the cycle in flight */
	bool sb_inflight;
	struct xm_io io_write, io_sync;
	__u64 cycle_seq;  /* cycles started */
	bool cycle_whole; /* the cycle in flight took every dirty page and the superblock */
	struct xm_meta_waiter *waiters;
	/* Called after each cycle (err 0 or -errno); may start the next one. */
	void (*flushed)(struct xm_meta *m, int err, void *ctx);
	void *ctx;
	__u64 cycles, pages_written; /* for status */
};

/*
 * Opens path, or creates it when it does not exist (*created = true): a new random node UUID,
 * role as given; a primary starts UpToDate with a new random current generation, a secondary
 * Inconsistent with generation 0.  block is used only when creating (0: the default).  An
 * existing file must be valid (magic, version, CRC of at least one slot) and cover disk_size;
 * a format 1 file is upgraded in place (checksums added).  A bitmap page that fails its
 * checksum is logged, counted in bad_pages and loaded as all ones.  Errors: -EINVAL (why in
 * err), -EOPNOTSUPP (a newer format), -errno from the file system.
 */
int xm_meta_open(struct xm_meta *m, const char *path, __u64 disk_size, __u32 block,
		 enum xm_role role, bool *created, char *err, size_t errlen);
void xm_meta_close(struct xm_meta *m);

/* Synchronous: every dirty page and the superblock, then fdatasync.  For handshakes, role
 * changes and shutdown, never on the write path.  Returns 0 or -errno. */
int xm_meta_sync(struct xm_meta *m);

/* The loop and callback for asynchronous flushes. */
void xm_meta_set_loop(struct xm_meta *m, struct xm_loop *loop,
		      void (*flushed)(struct xm_meta *m, int err, void *ctx), void *ctx);
/* Starts a cycle when something is dirty and none is in flight: snapshots up to npages_max dirty
 * pages (and the superblock if sb_dirty), writes them, then fdatasync, all through the loop.
 * Returns true if a cycle started. */
bool xm_meta_flush_start(struct xm_meta *m);
/* Sets or clears a superblock flag (XM_MF_*) and starts the flush that writes it; nothing once a
 * metadata write has failed (the file is not trusted), nor when the flag is already so. */
void xm_meta_set_flag(struct xm_meta *m, __u32 flag, bool on);
/*
 * Calls w->done(w, err) once every change made to m before this call is durable: after the next
 * cycle that starts from now on and takes everything dirty (err 0), or when the metadata failed
 * (err -errno).  Starts that cycle if it can.  Runs w->done at once when nothing is dirty and
 * nothing in flight.  w must live until done runs; the loop must be set (xm_meta_set_loop).
 */
void xm_meta_commit(struct xm_meta *m, struct xm_meta_waiter *w);
/* Nothing dirty, nothing in flight. */
bool xm_meta_clean(const struct xm_meta *m);

/* A new random generation: history shifts, bitmap_gen = current_gen, current_gen = new.  Marks
 * the superblock dirty; the caller flushes. */
void xm_meta_rotate(struct xm_meta *m);
/* A new random 64-bit generation, never 0. */
__u64 xm_meta_new_gen(void);

const char *xm_disk_state_name(__u8 state);

/* Encoding, exposed for the unit tests; decode returns 0, -EINVAL (bad magic, version or crc) or
 * -EOPNOTSUPP (a valid slot of a format newer than XM_META_VERSION; sb->version says which). */
void xm_meta_sb_encode(const struct xm_meta_sb *sb, void *slot);
int xm_meta_sb_decode(const void *slot, struct xm_meta_sb *sb);
/* The checksum of bitmap page number page holding buf (XM_BITMAP_PAGE bytes): CRC32C of the
 * page number (8 bytes, little-endian), then the page, so a page found at the wrong place fails
 * too. */
__u32 xm_meta_page_crc(__u64 page, const void *buf);

#endif
