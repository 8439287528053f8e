/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The write-intent and out-of-sync bitmap in memory (docs/metadata.md, docs/resync.md).
 *
 * One bit covers `block` bytes of the disk (a power of two, 4 KiB .. 1 MiB).  Three bit arrays:
 *   intent   what must be set on disk before a write to the region is issued: regions with
 *            writes in flight, regions of the activity log's hot extents (store/actlog.h), and
 *            every oos region;
 *   oos      regions that differ, or may differ, from the peer: resync sends these;
 *   durable  what the metadata file holds for sure (a subset of what it may hold).
 * oos is always a subset of intent.  The metadata file stores intent; on load every stored bit
 * becomes oos, because a crash may have left any of those regions different.
 * Memory: 3 bits per region plus one byte per 4 KiB page of bitmap; nothing grows at run time.
 */
#ifndef XM_BITMAP_H
#define XM_BITMAP_H

#include <stdbool.h>
#include <linux/types.h>

#define XM_BITMAP_PAGE	    4096u		 /* bytes of bitmap written at once */
#define XM_BITMAP_PAGE_BITS (XM_BITMAP_PAGE * 8) /* 32768 bits per page */
#define XM_BITMAP_MIN_BLOCK 4096u
#define XM_BITMAP_MAX_BLOCK (1u << 20)
#define XM_BITMAP_DEF_BLOCK (64u << 10)

struct xm_bitmap {
	__u64 nbits;
	__u32 block; /* bytes per bit */
	__u32 shift; /* log2(block) */
	__u64 nwords, npages;
	__u64 *intent, *oos, *durable;
	__u8 *page_dirty;  /* per page: intent changed since the page was last snapshotted */
	__u64 dirty_pages; /* how many page_dirty flags are set */
	__u64 intent_count, oos_count;
};

/* block must be a power of two in [XM_BITMAP_MIN_BLOCK, XM_BITMAP_MAX_BLOCK]; nbits =
 * ceil(disk_size / block).  Everything starts clear.  Returns 0, -EINVAL or -ENOMEM. */
int xm_bitmap_init(struct xm_bitmap *b, __u64 disk_size, __u32 block);
void xm_bitmap_free(struct xm_bitmap *b);

/* The bits [*first, *end) that cover bytes [off, off + len), clamped to nbits; len 0: empty. */
void xm_bitmap_range(const struct xm_bitmap *b, __u64 off, __u64 len, __u64 *first, __u64 *end);

/* Sets intent over the byte range (pages whose bits change become dirty).  Returns true when
 * every bit of the range is already durable, i.e. a write may be issued at once. */
bool xm_bitmap_mark_intent(struct xm_bitmap *b, __u64 off, __u64 len);
/* Whether every intent bit of the byte range is durable. */
bool xm_bitmap_range_durable(const struct xm_bitmap *b, __u64 off, __u64 len);
/* Sets oos (and intent) over the byte range. */
void xm_bitmap_mark_oos(struct xm_bitmap *b, __u64 off, __u64 len);
/* Sets oos (and intent) on every bit. */
void xm_bitmap_mark_all_oos(struct xm_bitmap *b);
/* Clears oos over bits [first, end): resync made those regions equal.  intent stays (the sweep
 * clears it). */
void xm_bitmap_clear_oos(struct xm_bitmap *b, __u64 first, __u64 end);
bool xm_bitmap_test_oos(const struct xm_bitmap *b, __u64 bit);
bool xm_bitmap_test_intent(const struct xm_bitmap *b, __u64 bit);
/* First oos bit >= from, or nbits. */
__u64 xm_bitmap_next_oos(const struct xm_bitmap *b, __u64 from);

/* A byte range that is busy: its intent bits must stay. */
struct xm_range {
	__u64 off, len;
};
/* Lazy clear: clears every intent bit that is not oos, not covered by one of the n busy ranges
 * and not set in keep (one bit per region, e.g. the activity log's hot regions; NULL keeps
 * none); pages that change become dirty.  Returns the number of bits cleared. */
__u64 xm_bitmap_sweep(struct xm_bitmap *b, const struct xm_range *busy, __u32 n, const __u64 *keep);

/* A page must be written again (also after a failed write). */
void xm_bitmap_page_mark_dirty(struct xm_bitmap *b, __u64 page);
/* Writing pages out (one flush cycle at a time, see meta.h):
 * next dirty page >= from, or npages; */
__u64 xm_bitmap_next_dirty_page(const struct xm_bitmap *b, __u64 from);
/* copies the intent bits of the page into buf (XM_BITMAP_PAGE bytes, little-endian 64-bit
 * words, bits past nbits zero), clears its dirty flag, and lowers durable to durable & snapshot
 * (cleared bits may be gone from the disk as soon as the write starts); */
void xm_bitmap_page_snapshot(struct xm_bitmap *b, __u64 page, void *buf);
/* after the snapshot is on disk (written and fdatasync'ed): durable = snapshot for that page. */
void xm_bitmap_page_written(struct xm_bitmap *b, __u64 page, const void *buf);
/* Loading: the page as stored becomes intent, oos and durable. */
void xm_bitmap_page_load(struct xm_bitmap *b, __u64 page, const void *buf);
/* Loading a page whose stored copy failed its checksum: every region in it becomes intent, oos
 * and durable (a larger resync, never a missed region), and the page dirty, so the next flush
 * writes it, with its checksum, again. */
void xm_bitmap_page_lost(struct xm_bitmap *b, __u64 page);
/* Everything clear, in memory; every page dirty (the next flush writes zeros). */
void xm_bitmap_clear_all(struct xm_bitmap *b);

/* Copies words [first, first + n) of oos, host order, n clamped to nwords; returns n copied. */
__u64 xm_bitmap_get_oos_words(const struct xm_bitmap *b, __u64 first, __u64 *out, __u64 n);
/* ORs a peer's bitmap words into oos (and intent): peer_bits bits of peer_block bytes each,
 * words [first, first + n).  Granularities may differ; every covered region of ours is set. */
void xm_bitmap_merge_peer(struct xm_bitmap *b, __u32 peer_block, __u64 peer_bits, __u64 first,
			  const __u64 *words, __u64 n);

#endif
