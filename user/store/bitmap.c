// SPDX-License-Identifier: GPL-2.0
/* The write-intent and out-of-sync bitmap in memory: three bit arrays and exact counts. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/bitmap.h"

#define WORD_BITS	64u
#define PAGE_WORDS	(XM_BITMAP_PAGE / 8) /* 512 words per page */
#define WORD_OF(bit)	((bit) / WORD_BITS)
#define BIT_MASK(bit)	(1ull << ((bit) % WORD_BITS))
#define PAGE_OF_WORD(w) ((w) / PAGE_WORDS)

/* The bits of word w that lie in [first, end); first < end. */
static __u64 word_mask(__u64 w, __u64 first, __u64 end)
{
	__u64 lo = w * WORD_BITS, hi = lo + WORD_BITS;
	__u64 mask = ~0ull;

	if (first > lo)
		mask &= ~0ull << (first - lo);
	if (end < hi)
		mask &= ~0ull >> (hi - end);
	return mask;
}

/* The bits of word w below nbits: only the last word has padding. */
static __u64 valid_mask(const struct xm_bitmap *b, __u64 w)
{
	return word_mask(w, 0, b->nbits);
}

int xm_bitmap_init(struct xm_bitmap *b, __u64 disk_size, __u32 block)
{
	__u64 alloc;

	memset(b, 0, sizeof(*b));
	if (block < XM_BITMAP_MIN_BLOCK || block > XM_BITMAP_MAX_BLOCK || (block & (block - 1)))
		return -EINVAL;
	b->block = block;
	b->shift = (__u32)__builtin_ctz(block);
	b->nbits = disk_size / block + !!(disk_size % block);
	b->nwords = (b->nbits + WORD_BITS - 1) / WORD_BITS;
	b->npages = (b->nwords + PAGE_WORDS - 1) / PAGE_WORDS;
	if (!b->npages)
		b->npages = 1;
	/* A zero-sized disk still gets one word, so no pointer is ever NULL after init. */
	alloc = b->nwords ? b->nwords : 1;
	b->intent = calloc(alloc, sizeof(__u64));
	b->oos = calloc(alloc, sizeof(__u64));
	b->durable = calloc(alloc, sizeof(__u64));
	b->page_dirty = calloc(b->npages, 1);
	if (!b->intent || !b->oos || !b->durable || !b->page_dirty) {
		xm_bitmap_free(b);
		return -ENOMEM;
	}
	return 0;
}

void xm_bitmap_free(struct xm_bitmap *b)
{
	free(b->intent);
	free(b->oos);
	free(b->durable);
	free(b->page_dirty);
	memset(b, 0, sizeof(*b));
}

void xm_bitmap_range(const struct xm_bitmap *b, __u64 off, __u64 len, __u64 *first, __u64 *end)
{
	__u64 f = off >> b->shift, e;

	if (f > b->nbits)
		f = b->nbits;
	if (!len) {
		*first = *end = f;
		return;
	}
	/* Written so that off + len cannot overflow. */
	e = ((off + (len - 1)) >> b->shift) + 1;
	if (off + (len - 1) < off)
		e = b->nbits;
	if (e > b->nbits)
		e = b->nbits;
	*first = f;
	*end = e;
}

/* Sets bits [first, end) of a; returns how many were clear.  Dirties the pages that change when
 * dirty is set. */
static __u64 set_bits(struct xm_bitmap *b, __u64 *a, __u64 first, __u64 end, bool dirty)
{
	__u64 w, n = 0;

	if (first >= end)
		return 0;
	for (w = WORD_OF(first); w <= WORD_OF(end - 1); w++) {
		__u64 fresh = word_mask(w, first, end) & ~a[w];

		if (!fresh)
			continue;
		a[w] |= fresh;
		n += (__u64)__builtin_popcountll(fresh);
		if (dirty)
			xm_bitmap_page_mark_dirty(b, PAGE_OF_WORD(w));
	}
	return n;
}

static bool bits_durable(const struct xm_bitmap *b, __u64 first, __u64 end)
{
	__u64 w;

	if (first >= end)
		return true;
	for (w = WORD_OF(first); w <= WORD_OF(end - 1); w++)
		if (word_mask(w, first, end) & ~b->durable[w])
			return false;
	return true;
}

bool xm_bitmap_mark_intent(struct xm_bitmap *b, __u64 off, __u64 len)
{
	__u64 first, end;

	xm_bitmap_range(b, off, len, &first, &end);
	b->intent_count += set_bits(b, b->intent, first, end, true);
	return bits_durable(b, first, end);
}

bool xm_bitmap_range_durable(const struct xm_bitmap *b, __u64 off, __u64 len)
{
	__u64 first, end;

	/* Every bit of the range, not only those set in intent: a waiting write has its intent
	 * bits set, and a bit that is not even intent is no safer to write under. */
	xm_bitmap_range(b, off, len, &first, &end);
	return bits_durable(b, first, end);
}

static void mark_oos_bits(struct xm_bitmap *b, __u64 first, __u64 end)
{
	b->oos_count += set_bits(b, b->oos, first, end, false);
	b->intent_count += set_bits(b, b->intent, first, end, true);
}

void xm_bitmap_mark_oos(struct xm_bitmap *b, __u64 off, __u64 len)
{
	__u64 first, end;

	xm_bitmap_range(b, off, len, &first, &end);
	mark_oos_bits(b, first, end);
}

void xm_bitmap_mark_all_oos(struct xm_bitmap *b)
{
	mark_oos_bits(b, 0, b->nbits);
}

void xm_bitmap_clear_oos(struct xm_bitmap *b, __u64 first, __u64 end)
{
	__u64 w;

	if (end > b->nbits)
		end = b->nbits;
	if (first >= end)
		return;
	for (w = WORD_OF(first); w <= WORD_OF(end - 1); w++) {
		__u64 gone = word_mask(w, first, end) & b->oos[w];

		b->oos[w] &= ~gone;
		b->oos_count -= (__u64)__builtin_popcountll(gone);
	}
}

bool xm_bitmap_test_oos(const struct xm_bitmap *b, __u64 bit)
{
	return bit < b->nbits && (b->oos[WORD_OF(bit)] & BIT_MASK(bit));
}

bool xm_bitmap_test_intent(const struct xm_bitmap *b, __u64 bit)
{
	return bit < b->nbits && (b->intent[WORD_OF(bit)] & BIT_MASK(bit));
}

__u64 xm_bitmap_next_oos(const struct xm_bitmap *b, __u64 from)
{
	__u64 w, v;

	if (from >= b->nbits)
		return b->nbits;
	w = WORD_OF(from);
	v = b->oos[w] & (~0ull << (from % WORD_BITS));
	while (!v) {
		if (++w >= b->nwords)
			return b->nbits;
		v = b->oos[w];
	}
	from = w * WORD_BITS + (__u64)__builtin_ctzll(v);
	return from < b->nbits ? from : b->nbits;
}

__u64 xm_bitmap_sweep(struct xm_bitmap *b, const struct xm_range *busy, __u32 n, const __u64 *keep)
{
	__u64 w, cleared = 0;
	__u32 i;

	for (w = 0; w < b->nwords; w++) {
		__u64 drop;

		if (!b->intent[w])
			continue;
		drop = b->intent[w] & ~b->oos[w] & (keep ? ~keep[w] : ~0ull);
		/* Only words with a candidate pay for the busy list: O(nwords + set bits * n). */
		for (i = 0; drop && i < n; i++) {
			__u64 first, end;

			xm_bitmap_range(b, busy[i].off, busy[i].len, &first, &end);
			if (first < end && first < (w + 1) * WORD_BITS && end > w * WORD_BITS)
				drop &= ~word_mask(w, first, end);
		}
		if (!drop)
			continue;
		b->intent[w] &= ~drop;
		xm_bitmap_page_mark_dirty(b, PAGE_OF_WORD(w));
		cleared += (__u64)__builtin_popcountll(drop);
	}
	b->intent_count -= cleared;
	return cleared;
}

void xm_bitmap_page_mark_dirty(struct xm_bitmap *b, __u64 page)
{
	if (page < b->npages && !b->page_dirty[page]) {
		b->page_dirty[page] = 1;
		b->dirty_pages++;
	}
}

__u64 xm_bitmap_next_dirty_page(const struct xm_bitmap *b, __u64 from)
{
	/* Asked on every loop pass: no scan while nothing is dirty. */
	if (!b->dirty_pages)
		return b->npages;
	for (; from < b->npages; from++)
		if (b->page_dirty[from])
			return from;
	return b->npages;
}

/* Words [*first, *end) of page; empty past the end of the bitmap. */
static void page_words(const struct xm_bitmap *b, __u64 page, __u64 *first, __u64 *end)
{
	*first = page * PAGE_WORDS;
	*end = *first + PAGE_WORDS;
	if (*end > b->nwords)
		*end = b->nwords;
	if (*first > *end)
		*first = *end;
}

void xm_bitmap_page_snapshot(struct xm_bitmap *b, __u64 page, void *buf)
{
	__u64 w, first, end;
	__u8 *p = buf;

	if (page >= b->npages)
		return;
	page_words(b, page, &first, &end);
	memset(buf, 0, XM_BITMAP_PAGE);
	for (w = first; w < end; w++) {
		__u64 le = htole64(b->intent[w]);

		memcpy(p + (w - first) * 8, &le, 8);
		b->durable[w] &= b->intent[w];
	}
	if (b->page_dirty[page]) {
		b->page_dirty[page] = 0;
		b->dirty_pages--;
	}
}

void xm_bitmap_page_written(struct xm_bitmap *b, __u64 page, const void *buf)
{
	__u64 w, first, end;
	const __u8 *p = buf;

	if (page >= b->npages)
		return;
	page_words(b, page, &first, &end);
	for (w = first; w < end; w++) {
		__u64 le;

		memcpy(&le, p + (w - first) * 8, 8);
		b->durable[w] = le64toh(le) & valid_mask(b, w);
	}
}

/* Word w as loaded from the file: intent, oos and durable all become v; counts stay exact. */
static void load_word(struct xm_bitmap *b, __u64 w, __u64 v)
{
	v &= valid_mask(b, w);
	b->intent_count +=
		(__u64)__builtin_popcountll(v) - (__u64)__builtin_popcountll(b->intent[w]);
	b->oos_count += (__u64)__builtin_popcountll(v) - (__u64)__builtin_popcountll(b->oos[w]);
	b->intent[w] = b->oos[w] = b->durable[w] = v;
}

void xm_bitmap_page_load(struct xm_bitmap *b, __u64 page, const void *buf)
{
	__u64 w, first, end;
	const __u8 *p = buf;

	if (page >= b->npages)
		return;
	page_words(b, page, &first, &end);
	for (w = first; w < end; w++) {
		__u64 le;

		memcpy(&le, p + (w - first) * 8, 8);
		load_word(b, w, le64toh(le));
	}
}

void xm_bitmap_page_lost(struct xm_bitmap *b, __u64 page)
{
	__u64 w, first, end;

	if (page >= b->npages)
		return;
	page_words(b, page, &first, &end);
	/* durable too: until the page is rewritten, every load of the file gives all ones for it,
	 * so a write to one of its regions need not wait for a flush. */
	for (w = first; w < end; w++)
		load_word(b, w, ~0ull);
	xm_bitmap_page_mark_dirty(b, page);
}

void xm_bitmap_clear_all(struct xm_bitmap *b)
{
	/* durable stays: it is what the file holds until the next snapshot of each page. */
	if (b->nwords) {
		memset(b->intent, 0, b->nwords * sizeof(__u64));
		memset(b->oos, 0, b->nwords * sizeof(__u64));
	}
	memset(b->page_dirty, 1, b->npages);
	b->dirty_pages = b->npages;
	b->intent_count = 0;
	b->oos_count = 0;
}

__u64 xm_bitmap_get_oos_words(const struct xm_bitmap *b, __u64 first, __u64 *out, __u64 n)
{
	if (first >= b->nwords)
		return 0;
	if (n > b->nwords - first)
		n = b->nwords - first;
	memcpy(out, b->oos + first, n * sizeof(__u64));
	return n;
}

/* Marks the bytes of peer bits [j, j + count) oos. */
static void merge_peer_run(struct xm_bitmap *b, __u32 peer_block, __u64 j, __u64 count)
{
	__u64 disk_end = b->nbits << b->shift;

	if (j >= disk_end / peer_block + 1)
		return; /* past our disk (and safe from overflow below) */
	if (count > disk_end / peer_block + 1 - j)
		count = disk_end / peer_block + 1 - j;
	xm_bitmap_mark_oos(b, j * peer_block, count * peer_block);
}

void xm_bitmap_merge_peer(struct xm_bitmap *b, __u32 peer_block, __u64 peer_bits, __u64 first,
			  const __u64 *words, __u64 n)
{
	__u64 k;

	if (!peer_block)
		return;
	for (k = 0; k < n; k++) {
		__u64 base = (first + k) * WORD_BITS;
		__u64 v = words[k];

		if (base >= peer_bits || first + k < first)
			break;
		if (peer_bits - base < WORD_BITS)
			v &= ~0ull >> (WORD_BITS - (peer_bits - base));
		/* One mark per run of set bits: a fine-grained peer bitmap costs its runs, not
		 * its bits. */
		while (v) {
			unsigned int s = (unsigned int)__builtin_ctzll(v);
			__u64 rest = v >> s;
			unsigned int len = ~rest ? (unsigned int)__builtin_ctzll(~rest) : 64 - s;

			merge_peer_run(b, peer_block, base + s, len);
			v &= len + s >= 64 ? 0 : ~0ull << (s + len);
		}
	}
}
