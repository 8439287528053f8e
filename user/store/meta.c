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
#include "store/disk.h"
#include "store/meta.h"
#include "util/log.h"

#define META_FLUSH_PAGES 64 /* bitmap pages per asynchronous cycle: 256 KiB of writes */

#define meta_of(ptr, member) ((struct xm_meta *)((char *)(ptr)-offsetof(struct xm_meta, member)))

/*
 * The slot a seqno is written to.  Creation writes seqno 1 to slot 0 and seqno 0 to slot 1, and
 * every update writes seqno + 1, so the slot alternates and never holds the newest valid copy.
 */
static unsigned int sb_slot(__u64 seqno)
{
	return (unsigned int)((seqno + 1) & 1);
}

/* The checksum page that holds the checksum of bitmap page page. */
static __u64 crc_page_of(__u64 page)
{
	return page / XM_META_CRCS_PER_PAGE;
}

static __u64 crc_page_off(const struct xm_meta *m, __u64 cpage)
{
	return xm_meta_crc_off(m->bm.npages) + cpage * XM_META_CRC_PAGE;
}

static const void *crc_page_buf(const struct xm_meta *m, __u64 cpage)
{
	return (const __u8 *)m->crcs + cpage * XM_META_CRC_PAGE;
}

/* The table in memory, zeroed: its tail past the last bitmap page stays zero on disk. */
static int alloc_crcs(struct xm_meta *m)
{
	m->crc_pages = xm_meta_crc_pages(m->bm.npages);
	m->crcs = aligned_alloc(XM_META_CRC_PAGE, m->crc_pages * XM_META_CRC_PAGE);
	if (!m->crcs)
		return -ENOMEM;
	memset(m->crcs, 0, m->crc_pages * XM_META_CRC_PAGE);
	return 0;
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

static off_t page_off(__u64 page)
{
	return (off_t)(XM_META_BITMAP_OFF + page * XM_BITMAP_PAGE);
}

/* The size of a file of this format: the bitmap's end, and from format 2 on the table's. */
static __u64 file_size(const struct xm_meta *m, __u32 version)
{
	if (version < 2)
		return xm_meta_crc_off(m->bm.npages);
	return xm_meta_crc_off(m->bm.npages) + xm_meta_crc_pages(m->bm.npages) * XM_META_CRC_PAGE;
}

static int write_crc_page(struct xm_meta *m, __u64 cpage)
{
	return pwrite_full(m->fd, crc_page_buf(m, cpage), XM_META_CRC_PAGE,
			   (off_t)crc_page_off(m, cpage));
}

/* The checksum pages that cover pages[0..n), each once (pages ascend). */
static int write_crc_pages_of(struct xm_meta *m, const __u64 *pages, __u32 n)
{
	__u64 last = UINT64_MAX;
	__u32 i;
	int err = 0;

	for (i = 0; !err && i < n; i++) {
		if (crc_page_of(pages[i]) != last)
			err = write_crc_page(m, crc_page_of(pages[i]));
		last = crc_page_of(pages[i]);
	}
	return err;
}

/* A failed superblock write may have torn its slot: the retry must go to the same slot, never
 * to the one holding the newest valid copy, so the seqno goes back. */
static void undo_sb(struct xm_meta *m)
{
	m->sb.seqno--;
	m->sb_dirty = true;
}

/* The superblock, synchronously: the slot after the newest, then fdatasync. */
static int sync_sb(struct xm_meta *m)
{
	int err;

	m->sb.seqno++;
	xm_meta_sb_encode(&m->sb, m->sbuf);
	err = pwrite_full(m->fd, m->sbuf, XM_META_SLOT, (off_t)XM_META_SLOT * sb_slot(m->sb.seqno));
	if (!err && fdatasync(m->fd))
		err = -errno;
	if (err)
		undo_sb(m);
	return err;
}

static int create_meta(struct xm_meta *m, __u64 disk_size, __u32 block, enum xm_role role,
		       char *err, size_t errlen)
{
	__u8 *zero = NULL;
	__u64 page;
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
	m->sb.version = XM_META_VERSION;

	zero = calloc(1, XM_META_SLOT);
	if (!zero || alloc_crcs(m)) {
		ret = -ENOMEM;
		goto out_err;
	}
	ret = ftruncate(m->fd, (off_t)file_size(m, XM_META_VERSION)) ? -errno : 0;
	/* Zeros written, not a hole: later in-place page writes then allocate nothing. */
	for (page = 0; !ret && page < m->bm.npages; page++) {
		m->crcs[page] = htole32(xm_meta_page_crc(page, zero));
		ret = pwrite_full(m->fd, zero, XM_BITMAP_PAGE, page_off(page));
	}
	for (page = 0; !ret && page < m->crc_pages; page++)
		ret = write_crc_page(m, page);
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
out_err:
	free(zero);
	if (!ret)
		return 0;
	snprintf(err, errlen, "cannot create: %s", strerror(-ret));
	return ret;
}

/*
 * Format 1 to 2 in place: the checksums of the pages as loaded, durable before either superblock
 * slot says 2 (a crash before leaves a valid format 1 file, upgraded again at the next open);
 * then both slots, so no slot an older xdpmirror could read is left to describe an older state.
 */
static int upgrade_meta(struct xm_meta *m, __u64 size, char *err, size_t errlen)
{
	__u64 cpage;
	int ret = 0;

	if (size < file_size(m, XM_META_VERSION) &&
	    ftruncate(m->fd, (off_t)file_size(m, XM_META_VERSION)))
		ret = -errno;
	for (cpage = 0; !ret && cpage < m->crc_pages; cpage++)
		ret = write_crc_page(m, cpage);
	if (!ret && fdatasync(m->fd))
		ret = -errno;
	if (!ret)
		ret = sync_sb(m);
	if (!ret)
		ret = sync_sb(m);
	if (ret) {
		/* Whichever step failed, one slot is valid and describes the file as it is. */
		snprintf(err, errlen,
			 "cannot upgrade format 1 to %d: %s (the file stays usable: fix that and "
			 "attach again)",
			 XM_META_VERSION, strerror(-ret));
		return ret;
	}
	pr_info("metadata '%s': upgraded format 1 to %d (bitmap page checksums)", m->path,
		XM_META_VERSION);
	return 0;
}

/* Reads bitmap page page into m->sbuf; a format 1 file gets its checksum computed, a newer one
 * has it checked: a page that fails counts as all ones. */
static int load_page(struct xm_meta *m, __u64 page, char *err, size_t errlen)
{
	ssize_t n = pread(m->fd, m->sbuf, XM_BITMAP_PAGE, page_off(page));
	__u32 crc;
	int ret;

	if (n != (ssize_t)XM_BITMAP_PAGE) {
		ret = n < 0 ? -errno : -EIO;
		snprintf(err, errlen, "bitmap page %llu: %s", (unsigned long long)page,
			 strerror(-ret));
		return ret;
	}
	crc = xm_meta_page_crc(page, m->sbuf);
	if (m->sb.version < 2) {
		m->crcs[page] = htole32(crc);
	} else if (le32toh(m->crcs[page]) != crc) {
		/* The stored checksum stays in the table until the page itself is rewritten: a
		 * table write in between must not make the damaged page look valid. */
		pr_warn("metadata '%s': bitmap page %llu failed its checksum: its regions are "
			"marked "
			"out of sync",
			m->path, (unsigned long long)page);
		m->bad_pages++;
		xm_bitmap_page_lost(&m->bm, page);
		return 0;
	}
	xm_bitmap_page_load(&m->bm, page, m->sbuf);
	return 0;
}

static int load_meta(struct xm_meta *m, __u64 disk_size, char *err, size_t errlen)
{
	struct xm_meta_sb slot_sb[2];
	int decoded[2];
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
		decoded[i] = xm_meta_sb_decode(m->sbuf, &slot_sb[i]);
		valid[i] = !decoded[i];
	}
	if (!valid[0] && !valid[1]) {
		i = decoded[1] == -EOPNOTSUPP;
		if (decoded[i] == -EOPNOTSUPP) {
			snprintf(
				err, errlen,
				"format %u, newer than this xdpmirror reads (up to %d: use a newer "
				"xdpmirror)",
				slot_sb[i].version, XM_META_VERSION);
			return -EOPNOTSUPP;
		}
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
	if ((__u64)st.st_size < file_size(m, m->sb.version)) {
		snprintf(err, errlen, "truncated: %llu bytes, the bitmap needs %llu",
			 (unsigned long long)st.st_size,
			 (unsigned long long)file_size(m, m->sb.version));
		return -EINVAL;
	}
	ret = alloc_crcs(m);
	if (ret) {
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	if (m->sb.version >= 2) {
		size_t len = m->crc_pages * XM_META_CRC_PAGE;

		n = pread(m->fd, m->crcs, len, (off_t)xm_meta_crc_off(m->bm.npages));
		if (n != (ssize_t)len) {
			ret = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "bitmap checksums: %s", strerror(-ret));
			return ret;
		}
	}
	for (page = 0; page < m->bm.npages; page++) {
		ret = load_page(m, page, err, errlen);
		if (ret)
			return ret;
	}
	if (m->sb.version < 2) {
		ret = upgrade_meta(m, (__u64)st.st_size, err, errlen);
		if (ret)
			return ret;
		m->sb.version = XM_META_VERSION;
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
	free(m->crcs);
	m->buf = NULL;
	m->pages = NULL;
	m->crcs = NULL;
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
		__u8 *buf = m->buf + (size_t)n * XM_BITMAP_PAGE;

		xm_bitmap_page_snapshot(&m->bm, page, buf);
		/* The table in memory is only written in this cycle, which holds the page too. */
		m->crcs[page] = htole32(xm_meta_page_crc(page, buf));
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
		for (i = 0; !err && i < n; i++)
			err = pwrite_full(m->fd, m->buf + (size_t)i * XM_BITMAP_PAGE,
					  XM_BITMAP_PAGE, page_off(m->pages[i]));
		if (!err)
			err = write_crc_pages_of(m, m->pages, n);
		if (!err && fdatasync(m->fd))
			err = -errno;
		finish_pages(m, n, err);
		if (err)
			return err;
	}
	err = sync_sb(m);
	if (!err)
		m->sb_dirty = false;
	return err;
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
	__u64 last = UINT64_MAX;
	bool ok = true;
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
	_Static_assert(XM_META_SLOT == XM_BITMAP_PAGE && XM_META_CRC_PAGE == XM_BITMAP_PAGE,
		       "one write size for pages, checksum pages and slots");
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
	for (i = 0; ok && i < n; i++)
		ok = submit_write(m, m->buf + (size_t)i * XM_BITMAP_PAGE,
				  (__u64)page_off(m->pages[i]));
	/* The checksum pages of this cycle's pages go in the same cycle, under the same
	 * fdatasync: a crash between the two writes leaves a mismatch, which loads as all ones. */
	for (i = 0; ok && i < n; i++) {
		if (crc_page_of(m->pages[i]) != last)
			ok = submit_write(m, crc_page_buf(m, crc_page_of(m->pages[i])),
					  crc_page_off(m, crc_page_of(m->pages[i])));
		last = crc_page_of(m->pages[i]);
	}
	if (ok && m->sb_inflight)
		ok = submit_write(m, m->sbuf, (__u64)XM_META_SLOT * sb_slot(m->sb.seqno));
	if (!ok) {
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

void xm_meta_set_flag(struct xm_meta *m, __u32 flag, bool on)
{
	__u32 flags = on ? m->sb.flags | flag : m->sb.flags & ~flag;

	if (m->failed || flags == m->sb.flags)
		return;
	m->sb.flags = flags;
	m->sb_dirty = true;
	xm_meta_flush_start(m);
}
