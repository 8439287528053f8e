// SPDX-License-Identifier: GPL-2.0
/* The per-box metadata file: two superblock slots and the bitmap, written in place. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xdpmirror.h"
#include "link/frame.h"
#include "store/disk.h"
#include "store/meta.h"

#define META_FLUSH_PAGES 64 /* bitmap pages per asynchronous cycle: 256 KiB of writes */

/* A superblock slot as stored: little-endian, packed, at the start of its 4096 bytes. */
struct xm_meta_disk_sb {
	char magic[8];	    /* XM_META_MAGIC */
	__le32 version;	    /* XM_META_VERSION */
	__le32 hdr_len;	    /* bytes the crc covers: offsetof(crc) */
	__le64 seqno;	    /* the valid slot with the higher seqno is the superblock */
	__u8 node_uuid[16]; /* this box, random at creation */
	__u8 peer_uuid[16]; /* the last peer; zero if none */
	__le64 current_gen;
	__le64 bitmap_gen;
	__le64 history[2];
	__le64 disk_size; /* bytes the bitmap covers */
	__le64 nbits;	  /* ceil(disk_size / bitmap_block) */
	__le32 bitmap_block;
	__le32 flags; /* XM_MF_* */
	__u8 disk_state;
	__u8 role;
	__le16 reserved; /* 0 */
	__le32 crc;	 /* CRC32C of the hdr_len bytes before it */
} __attribute__((packed));

_Static_assert(sizeof(struct xm_meta_disk_sb) == 120, "superblock slot header is 120 bytes");
_Static_assert(sizeof(struct xm_meta_disk_sb) <= 256, "the superblock fits its 256 bytes");

#define SB_HDR_LEN ((__u32)offsetof(struct xm_meta_disk_sb, crc))

#define meta_of(ptr, member) ((struct xm_meta *)((char *)(ptr)-offsetof(struct xm_meta, member)))

void xm_meta_sb_encode(const struct xm_meta_sb *sb, void *slot)
{
	struct xm_meta_disk_sb *d = slot;

	memset(slot, 0, XM_META_SLOT);
	memcpy(d->magic, XM_META_MAGIC, sizeof(d->magic));
	d->version = htole32(XM_META_VERSION);
	d->hdr_len = htole32(SB_HDR_LEN);
	d->seqno = htole64(sb->seqno);
	memcpy(d->node_uuid, sb->node_uuid, sizeof(d->node_uuid));
	memcpy(d->peer_uuid, sb->peer_uuid, sizeof(d->peer_uuid));
	d->current_gen = htole64(sb->current_gen);
	d->bitmap_gen = htole64(sb->bitmap_gen);
	d->history[0] = htole64(sb->history[0]);
	d->history[1] = htole64(sb->history[1]);
	d->disk_size = htole64(sb->disk_size);
	d->nbits = htole64(sb->nbits);
	d->bitmap_block = htole32(sb->bitmap_block);
	d->flags = htole32(sb->flags);
	d->disk_state = sb->disk_state;
	d->role = sb->role;
	d->reserved = 0;
	d->crc = htole32(xm_crc32c(0, d, SB_HDR_LEN));
}

int xm_meta_sb_decode(const void *slot, struct xm_meta_sb *sb)
{
	const struct xm_meta_disk_sb *d = slot;

	if (memcmp(d->magic, XM_META_MAGIC, sizeof(d->magic)) ||
	    le32toh(d->version) != XM_META_VERSION || le32toh(d->hdr_len) != SB_HDR_LEN ||
	    le32toh(d->crc) != xm_crc32c(0, d, SB_HDR_LEN))
		return -EINVAL;
	memset(sb, 0, sizeof(*sb));
	sb->seqno = le64toh(d->seqno);
	memcpy(sb->node_uuid, d->node_uuid, sizeof(sb->node_uuid));
	memcpy(sb->peer_uuid, d->peer_uuid, sizeof(sb->peer_uuid));
	sb->current_gen = le64toh(d->current_gen);
	sb->bitmap_gen = le64toh(d->bitmap_gen);
	sb->history[0] = le64toh(d->history[0]);
	sb->history[1] = le64toh(d->history[1]);
	sb->disk_size = le64toh(d->disk_size);
	sb->nbits = le64toh(d->nbits);
	sb->bitmap_block = le32toh(d->bitmap_block);
	sb->flags = le32toh(d->flags);
	sb->disk_state = d->disk_state;
	sb->role = d->role;
	return 0;
}

/*
 * The slot a seqno is written to.  Creation writes seqno 1 to slot 0 and seqno 0 to slot 1, and
 * every update writes seqno + 1, so the slot alternates and never holds the newest valid copy.
 */
static unsigned int sb_slot(__u64 seqno)
{
	return (unsigned int)((seqno + 1) & 1);
}

__u64 xm_meta_new_gen(void)
{
	__u64 gen = 0;

	while (!gen)
		if (getrandom(&gen, sizeof(gen), 0) != (ssize_t)sizeof(gen))
			gen = 0;
	return gen;
}

const char *xm_disk_state_name(__u8 state)
{
	switch (state) {
	case XM_DISK_DISKLESS:
		return "Diskless";
	case XM_DISK_INCONSISTENT:
		return "Inconsistent";
	case XM_DISK_OUTDATED:
		return "Outdated";
	case XM_DISK_UPTODATE:
		return "UpToDate";
	}
	return "unknown";
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* mkdir -p of path's parent directory, mode 0700 for what it creates. */
static int make_parent_dirs(const char *path)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* fsync of path's directory, so that a new entry in it is durable. */
static int sync_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *p;
	int fd, err = 0;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p)
		snprintf(dir, sizeof(dir), ".");
	else if (p == dir)
		dir[1] = '\0';
	else
		*p = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

static bool block_valid(__u32 block)
{
	return block >= XM_BITMAP_MIN_BLOCK && block <= XM_BITMAP_MAX_BLOCK &&
	       !(block & (block - 1));
}

static __u64 bitmap_bytes(const struct xm_bitmap *bm)
{
	return bm->npages * XM_BITMAP_PAGE;
}

static int create_meta(struct xm_meta *m, __u64 disk_size, __u32 block, enum xm_role role,
		       char *err, size_t errlen)
{
	__u8 *zero = NULL;
	__u64 off;
	int ret;

	ret = xm_bitmap_init(&m->bm, disk_size, block);
	if (ret) {
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	memset(&m->sb, 0, sizeof(m->sb));
	if (getrandom(m->sb.node_uuid, sizeof(m->sb.node_uuid), 0) !=
	    (ssize_t)sizeof(m->sb.node_uuid)) {
		ret = -errno;
		snprintf(err, errlen, "node UUID: %s", strerror(errno));
		return ret;
	}
	m->sb.role = (__u8)role;
	if (role == XM_ROLE_PRIMARY) {
		m->sb.disk_state = XM_DISK_UPTODATE;
		m->sb.current_gen = xm_meta_new_gen();
	} else {
		m->sb.disk_state = XM_DISK_INCONSISTENT;
	}
	m->sb.disk_size = disk_size;
	m->sb.nbits = m->bm.nbits;
	m->sb.bitmap_block = block;

	zero = calloc(1, XM_META_SLOT);
	if (!zero) {
		ret = -ENOMEM;
		goto out_err;
	}
	ret = ftruncate(m->fd, (off_t)(XM_META_BITMAP_OFF + bitmap_bytes(&m->bm))) ? -errno : 0;
	/* Zeros written, not a hole: later in-place page writes then allocate nothing. */
	for (off = 0; !ret && off < bitmap_bytes(&m->bm); off += XM_BITMAP_PAGE)
		ret = pwrite_full(m->fd, zero, XM_BITMAP_PAGE, (off_t)(XM_META_BITMAP_OFF + off));
	/* Both slots valid: seqno 1 in slot 0 (newest), seqno 0 in slot 1. */
	m->sb.seqno = 0;
	xm_meta_sb_encode(&m->sb, m->sbuf);
	if (!ret)
		ret = pwrite_full(m->fd, m->sbuf, XM_META_SLOT, (off_t)XM_META_SLOT * sb_slot(0));
	m->sb.seqno = 1;
	xm_meta_sb_encode(&m->sb, m->sbuf);
	if (!ret)
		ret = pwrite_full(m->fd, m->sbuf, XM_META_SLOT, (off_t)XM_META_SLOT * sb_slot(1));
	if (!ret && fdatasync(m->fd))
		ret = -errno;
	if (!ret)
		ret = sync_parent_dir(m->path);
	free(zero);
	if (!ret)
		return 0;
out_err:
	snprintf(err, errlen, "cannot create: %s", strerror(-ret));
	return ret;
}

static int load_meta(struct xm_meta *m, __u64 disk_size, char *err, size_t errlen)
{
	struct xm_meta_sb slot_sb[2];
	bool valid[2];
	unsigned int i, newest;
	struct stat st;
	__u64 page;
	ssize_t n;
	int ret;

	for (i = 0; i < 2; i++) {
		memset(m->sbuf, 0, sizeof(m->sbuf));
		n = pread(m->fd, m->sbuf, XM_META_SLOT, (off_t)XM_META_SLOT * i);
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "read: %s", strerror(errno));
			return ret;
		}
		/* A short file reads as zeros past its end: an invalid slot. */
		valid[i] = !xm_meta_sb_decode(m->sbuf, &slot_sb[i]);
	}
	if (!valid[0] && !valid[1]) {
		snprintf(err, errlen, "no valid superblock");
		return -EINVAL;
	}
	newest = !valid[0] || (valid[1] && slot_sb[1].seqno > slot_sb[0].seqno);
	m->sb = slot_sb[newest];
	/* The next update must go to the other slot; shift the seqno's parity if a writer other
	 * than ours left the newest copy in the slot the parity would overwrite. */
	if (sb_slot(m->sb.seqno + 1) == newest)
		m->sb.seqno++;

	if (m->sb.disk_size != disk_size) {
		snprintf(err, errlen,
			 "covers %llu bytes, the disk has %llu "
			 "(made for another disk? remove it to start over)",
			 (unsigned long long)m->sb.disk_size, (unsigned long long)disk_size);
		return -EINVAL;
	}
	if (!block_valid(m->sb.bitmap_block)) {
		snprintf(err, errlen, "invalid bitmap block size %u", m->sb.bitmap_block);
		return -EINVAL;
	}
	ret = xm_bitmap_init(&m->bm, disk_size, m->sb.bitmap_block);
	if (ret) {
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	if (m->sb.nbits != m->bm.nbits) {
		snprintf(err, errlen, "%llu bitmap bits, the disk needs %llu",
			 (unsigned long long)m->sb.nbits, (unsigned long long)m->bm.nbits);
		return -EINVAL;
	}
	if (fstat(m->fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		return ret;
	}
	if ((__u64)st.st_size < XM_META_BITMAP_OFF + bitmap_bytes(&m->bm)) {
		snprintf(err, errlen, "truncated: %llu bytes, the bitmap needs %llu",
			 (unsigned long long)st.st_size,
			 (unsigned long long)(XM_META_BITMAP_OFF + bitmap_bytes(&m->bm)));
		return -EINVAL;
	}
	for (page = 0; page < m->bm.npages; page++) {
		off_t off = (off_t)(XM_META_BITMAP_OFF + page * XM_BITMAP_PAGE);

		n = pread(m->fd, m->sbuf, XM_BITMAP_PAGE, off);
		if (n != (ssize_t)XM_BITMAP_PAGE) {
			ret = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "bitmap page %llu: %s", (unsigned long long)page,
				 strerror(-ret));
			return ret;
		}
		xm_bitmap_page_load(&m->bm, page, m->sbuf);
	}
	return 0;
}

int xm_meta_open(struct xm_meta *m, const char *path, __u64 disk_size, __u32 block,
		 enum xm_role role, bool *created, char *err, size_t errlen)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	*created = false;
	if (snprintf(m->path, sizeof(m->path), "%s", path) >= (int)sizeof(m->path)) {
		snprintf(err, errlen, "path too long");
		return -ENAMETOOLONG;
	}
	m->fd = open(path, O_RDWR | O_CLOEXEC);
	if (m->fd >= 0) {
		/* One daemon per metadata file: two boxes sharing one would both look in sync. */
		ret = xm_lock_file(m->fd);
		if (ret) {
			snprintf(err, errlen, "%s",
				 ret == -EBUSY
					 ? "in use by another daemon (one metadata file per box)"
					 : strerror(-ret));
			goto out_close;
		}
		ret = load_meta(m, disk_size, err, errlen);
		if (ret)
			goto out_close;
		return 0;
	}
	if (errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		return ret;
	}

	/* Checked before anything is created, so a bad option leaves nothing behind. */
	if (!block)
		block = XM_BITMAP_DEF_BLOCK;
	if (!block_valid(block)) {
		snprintf(err, errlen, "bitmap block size %u: want a power of two from %u to %u",
			 block, XM_BITMAP_MIN_BLOCK, XM_BITMAP_MAX_BLOCK);
		return -EINVAL;
	}
	ret = make_parent_dirs(path);
	if (ret) {
		snprintf(err, errlen, "cannot create its directory: %s", strerror(-ret));
		return ret;
	}
	m->fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
	if (m->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create: %s", strerror(errno));
		return ret;
	}
	ret = xm_lock_file(m->fd);
	if (!ret)
		ret = create_meta(m, disk_size, block, role, err, errlen);
	else
		snprintf(err, errlen, "in use by another daemon (one metadata file per box)");
	if (ret) {
		/* A file without a valid superblock would only stop the next start. */
		unlink(path);
		goto out_close;
	}
	*created = true;
	return 0;
out_close:
	xm_meta_close(m);
	return ret;
}

void xm_meta_close(struct xm_meta *m)
{
	xm_bitmap_free(&m->bm);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	/* A cycle in flight still owns its buffers (the kernel writes from them): its last
	 * completion frees them, and m must live until then. */
	if (m->flushing)
		return;
	free(m->buf);
	free(m->pages);
	m->buf = NULL;
	m->pages = NULL;
	m->npages_max = 0;
}

static int alloc_flush_buffers(struct xm_meta *m)
{
	if (m->buf)
		return 0;
	m->buf = aligned_alloc(XM_BITMAP_PAGE, (size_t)META_FLUSH_PAGES * XM_BITMAP_PAGE);
	m->pages = calloc(META_FLUSH_PAGES, sizeof(*m->pages));
	if (!m->buf || !m->pages) {
		free(m->buf);
		free(m->pages);
		m->buf = NULL;
		m->pages = NULL;
		return -ENOMEM;
	}
	m->npages_max = META_FLUSH_PAGES;
	return 0;
}

/* Snapshots up to npages_max dirty pages into m->buf; returns how many. */
static __u32 snapshot_dirty_pages(struct xm_meta *m)
{
	__u64 page = xm_bitmap_next_dirty_page(&m->bm, 0);
	__u32 n = 0;

	while (page < m->bm.npages && n < m->npages_max) {
		xm_bitmap_page_snapshot(&m->bm, page, m->buf + (size_t)n * XM_BITMAP_PAGE);
		m->pages[n++] = page;
		page = xm_bitmap_next_dirty_page(&m->bm, page + 1);
	}
	return n;
}

/* After a cycle: on success the pages are durable, on failure they are dirty again. */
static void finish_pages(struct xm_meta *m, __u32 n, int err)
{
	__u32 i;

	for (i = 0; i < n; i++) {
		if (err)
			xm_bitmap_page_mark_dirty(&m->bm, m->pages[i]);
		else
			xm_bitmap_page_written(&m->bm, m->pages[i],
					       m->buf + (size_t)i * XM_BITMAP_PAGE);
	}
}

/* A failed superblock write may have torn its slot: the retry must go to the same slot, never
 * to the one holding the newest valid copy, so the seqno goes back. */
static void undo_sb(struct xm_meta *m)
{
	m->sb.seqno--;
	m->sb_dirty = true;
}

int xm_meta_sync(struct xm_meta *m)
{
	__u32 i, n;
	int err;

	if (m->flushing)
		return -EBUSY;
	err = alloc_flush_buffers(m);
	if (err)
		return err;
	/* Pages before the superblock: a crash in between leaves extra bits, never missing ones. */
	while ((n = snapshot_dirty_pages(m))) {
		for (i = 0; !err && i < n; i++) {
			off_t off = (off_t)(XM_META_BITMAP_OFF + m->pages[i] * XM_BITMAP_PAGE);

			err = pwrite_full(m->fd, m->buf + (size_t)i * XM_BITMAP_PAGE,
					  XM_BITMAP_PAGE, off);
		}
		if (!err && fdatasync(m->fd))
			err = -errno;
		finish_pages(m, n, err);
		if (err)
			return err;
	}
	m->sb.seqno++;
	xm_meta_sb_encode(&m->sb, m->sbuf);
	err = pwrite_full(m->fd, m->sbuf, XM_META_SLOT, (off_t)XM_META_SLOT * sb_slot(m->sb.seqno));
	if (!err && fdatasync(m->fd))
		err = -errno;
	if (err) {
		undo_sb(m);
		return err;
	}
	m->sb_dirty = false;
	return 0;
}

void xm_meta_set_loop(struct xm_meta *m, struct xm_loop *loop,
		      void (*flushed)(struct xm_meta *m, int err, void *ctx), void *ctx)
{
	m->loop = loop;
	m->flushed = flushed;
	m->ctx = ctx;
	/* Failure is not fatal here: flush_start tries again. */
	alloc_flush_buffers(m);
}

/* After a cycle: who waited for it (or for the metadata to fail) is told. */
static void wake_waiters(struct xm_meta *m)
{
	struct xm_meta_waiter **pp = &m->waiters, *w;

	while ((w = *pp)) {
		if (!m->failed && !(w->after < m->cycle_seq && m->cycle_whole)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->done(w, m->failed);
	}
}

void xm_meta_commit(struct xm_meta *m, struct xm_meta_waiter *w)
{
	if (m->failed || xm_meta_clean(m)) {
		w->done(w, m->failed);
		return;
	}
	w->after = m->cycle_seq; /* a cycle in flight took its snapshot before now */
	w->next = m->waiters;
	m->waiters = w;
	xm_meta_flush_start(m);
}

static void flush_done(struct xm_meta *m, int res)
{
	__u32 n = m->npages_inflight;

	if (m->fd < 0) {
		/* Closed during the cycle: nothing left to update or tell. */
		m->flushing = false;
		xm_meta_close(m);
		return;
	}

	if (res < 0 && !m->failed)
		m->failed = res;
	finish_pages(m, n, m->failed);
	if (m->sb_inflight && m->failed)
		undo_sb(m);
	m->sb_inflight = false;
	m->npages_inflight = 0;
	m->flushing = false;
	m->cycles++;
	if (!m->failed)
		m->pages_written += n;
	wake_waiters(m);
	if (m->flushed)
		m->flushed(m, m->failed, m->ctx);
	if (m->waiters)
		xm_meta_flush_start(m);
}

static void on_flush_sync(struct xm_io *io, int res, __u32 cqe_flags)
{
	flush_done(meta_of(io, io_sync), res);
}

static void on_flush_write(struct xm_io *io, int res, __u32 cqe_flags)
{
	struct xm_meta *m = meta_of(io, io_write);
	struct io_uring_sqe *sqe;

	/* Pages and the superblock slot are both 4096 bytes: one xm_io serves every write. */
	if (res != (int)XM_BITMAP_PAGE && !m->failed)
		m->failed = res < 0 ? res : -EIO;
	if (--m->ios_left)
		return;
	if (m->failed || m->fd < 0) {
		flush_done(m, m->failed);
		return;
	}
	sqe = xm_loop_sqe(m->loop, &m->io_sync);
	if (!sqe) {
		flush_done(m, -EBUSY);
		return;
	}
	io_uring_prep_fsync(sqe, m->fd, IORING_FSYNC_DATASYNC);
}

static bool submit_write(struct xm_meta *m, const void *buf, __u64 off)
{
	struct io_uring_sqe *sqe = xm_loop_sqe(m->loop, &m->io_write);

	if (!sqe)
		return false;
	io_uring_prep_write(sqe, m->fd, buf, XM_BITMAP_PAGE, off);
	m->ios_left++;
	return true;
}

bool xm_meta_flush_start(struct xm_meta *m)
{
	__u32 i, n;

	/* After a failed write the file cannot be trusted; the owner decides (m->failed). */
	if (!m->loop || m->flushing || m->failed)
		return false;
	if (!m->sb_dirty && xm_bitmap_next_dirty_page(&m->bm, 0) >= m->bm.npages)
		return false;
	if (alloc_flush_buffers(m)) {
		m->failed = -ENOMEM;
		return false;
	}
	_Static_assert(XM_META_SLOT == XM_BITMAP_PAGE, "one write size for pages and slots");
	m->io_write.fn = on_flush_write;
	m->io_sync.fn = on_flush_sync;
	n = snapshot_dirty_pages(m);
	m->npages_inflight = n;
	m->cycle_seq++;
	m->cycle_whole = xm_bitmap_next_dirty_page(&m->bm, 0) >= m->bm.npages;
	if (m->sb_dirty) {
		m->sb.seqno++;
		xm_meta_sb_encode(&m->sb, m->sbuf);
		m->sb_dirty = false;
		m->sb_inflight = true;
	}
	m->ios_left = 0;
	for (i = 0; i < n; i++)
		if (!submit_write(m, m->buf + (size_t)i * XM_BITMAP_PAGE,
				  XM_META_BITMAP_OFF + m->pages[i] * XM_BITMAP_PAGE))
			break;
	if (i == n && m->sb_inflight)
		i += submit_write(m, m->sbuf, (__u64)XM_META_SLOT * sb_slot(m->sb.seqno));
	if (i < n + m->sb_inflight) {
		/* The ring is broken; what was queued still completes and ends the cycle. */
		m->failed = -EBUSY;
		if (!m->ios_left) {
			finish_pages(m, n, m->failed);
			if (m->sb_inflight)
				undo_sb(m);
			m->sb_inflight = false;
			m->npages_inflight = 0;
			wake_waiters(m);
			return false;
		}
	}
	m->flushing = true;
	return true;
}

bool xm_meta_clean(const struct xm_meta *m)
{
	return !m->flushing && !m->sb_dirty && xm_bitmap_next_dirty_page(&m->bm, 0) >= m->bm.npages;
}

void xm_meta_rotate(struct xm_meta *m)
{
	m->sb.history[1] = m->sb.history[0];
	m->sb.history[0] = m->sb.current_gen;
	m->sb.bitmap_gen = m->sb.current_gen;
	m->sb.current_gen = xm_meta_new_gen();
	m->sb_dirty = true;
}
