// SPDX-License-Identifier: GPL-2.0
/* Description: the metadata file: superblock encoding, create/reopen, torn slots, sync and flush,
 * bitmap page checksums (a page that fails loads as all ones), the format 1 upgrade. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "xm_test.h"

#include "xdpmirror.h"
#include "link/frame.h"
#include "store/meta.h"

#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define SB_HDR_LEN 116 /* bytes before the crc */

struct fixture {
	char dir[64];
	char path[128]; /* a metadata file in a directory that does not exist yet */
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/xm-meta-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/a/b/meta", f->dir);
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int err = nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(f);
	return err;
}

static void read_slot(const char *path, unsigned int slot, __u8 *buf)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, XM_META_SLOT, (off_t)slot * XM_META_SLOT), XM_META_SLOT);
	close(fd);
}

/* slot = src with another version and a crc that matches. */
static void set_version(__u8 *slot, const __u8 *src, __u32 version)
{
	__u32 v;

	memcpy(slot, src, XM_META_SLOT);
	v = htole32(version);
	memcpy(slot + 8, &v, 4);
	v = htole32(xm_crc32c(0, slot, SB_HDR_LEN));
	memcpy(slot + SB_HDR_LEN, &v, 4);
}

static void write_at(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void open_ok(struct fixture *f, struct xm_meta *m, __u64 size, __u32 block,
		    enum xm_role role, bool want_created)
{
	bool created = !want_created;
	int err;

	f->err[0] = '\0';
	err = xm_meta_open(m, f->path, size, block, role, &created, f->err, sizeof(f->err));
	if (err)
		print_message("open: %d: %s\n", err, f->err);
	assert_int_equal(err, 0);
	assert_int_equal(created, want_created);
}

/* Field by field: the struct's padding is not part of it. */
static void assert_sb_equal(const struct xm_meta_sb *a, const struct xm_meta_sb *b)
{
	assert_int_equal(a->seqno, b->seqno);
	assert_memory_equal(a->node_uuid, b->node_uuid, sizeof(a->node_uuid));
	assert_memory_equal(a->peer_uuid, b->peer_uuid, sizeof(a->peer_uuid));
	assert_int_equal(a->current_gen, b->current_gen);
	assert_int_equal(a->bitmap_gen, b->bitmap_gen);
	assert_int_equal(a->history[0], b->history[0]);
	assert_int_equal(a->history[1], b->history[1]);
	assert_int_equal(a->disk_size, b->disk_size);
	assert_int_equal(a->nbits, b->nbits);
	assert_int_equal(a->bitmap_block, b->bitmap_block);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->disk_state, b->disk_state);
	assert_int_equal(a->role, b->role);
}

static void test_sb_round_trip_and_layout(void **state)
{
	const struct xm_meta_sb sb = {
		.seqno = 0x0102030405060708ull,
		.node_uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		.peer_uuid = {0xf0, 0xf1, [15] = 0xff},
		.current_gen = 0x1111,
		.bitmap_gen = 0x2222,
		.history = {0x3333, 0x4444},
		.disk_size = 10 * GIB,
		.nbits = 163840,
		.bitmap_block = 64 * KIB,
		.flags = XM_MF_PRIMARY_ACTIVE,
		.disk_state = XM_DISK_OUTDATED,
		.role = XM_ROLE_SECONDARY,
	};
	static __u8 slot[XM_META_SLOT], zero[XM_META_SLOT];
	struct xm_meta_sb back;
	__u32 crc;

	memset(slot, 0xa5, sizeof(slot));
	xm_meta_sb_encode(&sb, slot);
	assert_memory_equal(slot, "XMIRMETA", 8);
	assert_int_equal(slot[8], 2); /* version 2, little-endian */
	assert_int_equal(slot[12], SB_HDR_LEN);
	assert_int_equal(slot[16], 0x08); /* seqno, little-endian */
	assert_int_equal(slot[23], 0x01);
	assert_int_equal(slot[24], 1);	       /* node_uuid */
	assert_int_equal(slot[40], 0xf0);      /* peer_uuid */
	assert_int_equal(slot[56], 0x11);      /* current_gen */
	assert_int_equal(slot[88 + 4], 0x02);  /* disk_size 10 GiB = 0x2_8000_0000 */
	assert_int_equal(slot[96 + 2], 0x02);  /* nbits 163840 = 0x28000 */
	assert_int_equal(slot[104 + 2], 0x01); /* bitmap_block 0x00010000 */
	assert_int_equal(slot[108], XM_MF_PRIMARY_ACTIVE);
	assert_int_equal(slot[112], XM_DISK_OUTDATED);
	assert_int_equal(slot[113], XM_ROLE_SECONDARY);
	assert_int_equal(slot[114] | slot[115], 0); /* reserved */
	memcpy(&crc, slot + SB_HDR_LEN, 4);
	assert_int_equal(le32toh(crc), xm_crc32c(0, slot, SB_HDR_LEN));
	assert_memory_equal(slot + SB_HDR_LEN + 4, zero, sizeof(slot) - SB_HDR_LEN - 4);

	assert_int_equal(xm_meta_sb_decode(slot, &back), 0);
	assert_sb_equal(&back, &sb);
}

static void test_sb_decode_rejects_damage(void **state)
{
	const struct xm_meta_sb sb = {.seqno = 5, .disk_size = GIB, .bitmap_block = 4096};
	static __u8 good[XM_META_SLOT], slot[XM_META_SLOT];
	struct xm_meta_sb back;
	unsigned int byte, bit;
	__u32 v;

	xm_meta_sb_encode(&sb, good);

	/* Every single-bit flip in the covered bytes or the crc. */
	for (byte = 0; byte < SB_HDR_LEN + 4; byte++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(slot, good, sizeof(slot));
			slot[byte] ^= (__u8)(1u << bit);
			if (xm_meta_sb_decode(slot, &back) != -EINVAL)
				print_message("flip of byte %u bit %u accepted\n", byte, bit);
			assert_int_equal(xm_meta_sb_decode(slot, &back), -EINVAL);
		}
	}

	/* Format 1 has the same superblock: accepted, and says so (it is upgraded at open). */
	set_version(slot, good, 1);
	assert_int_equal(xm_meta_sb_decode(slot, &back), 0);
	assert_int_equal(back.version, 1);
	assert_int_equal(back.seqno, 5);
	/* A newer format is told apart from garbage; version 0 is garbage. */
	set_version(slot, good, 3);
	assert_int_equal(xm_meta_sb_decode(slot, &back), -EOPNOTSUPP);
	assert_int_equal(back.version, 3);
	set_version(slot, good, 0);
	assert_int_equal(xm_meta_sb_decode(slot, &back), -EINVAL);

	/* Wrong header length with a correct crc: still rejected. */

	memcpy(slot, good, sizeof(slot));
	v = htole32(SB_HDR_LEN - 4);
	memcpy(slot + 12, &v, 4);
	v = htole32(xm_crc32c(0, slot, SB_HDR_LEN));
	memcpy(slot + SB_HDR_LEN, &v, 4);
	assert_int_equal(xm_meta_sb_decode(slot, &back), -EINVAL);

	memset(slot, 0, sizeof(slot));
	assert_int_equal(xm_meta_sb_decode(slot, &back), -EINVAL);

	/* Bytes after the header are not covered: a future version may use them. */
	memcpy(slot, good, sizeof(slot));
	slot[200] = 1;
	assert_int_equal(xm_meta_sb_decode(slot, &back), 0);
}

static void test_create_then_reopen(void **state)
{
	struct fixture *f = *state;
	struct xm_meta m, m2;
	struct xm_meta_sb sb;
	struct stat st;

	open_ok(f, &m, 10 * GIB, 0, XM_ROLE_PRIMARY, true);
	assert_int_equal(m.sb.role, XM_ROLE_PRIMARY);
	assert_int_equal(m.sb.disk_state, XM_DISK_UPTODATE);
	assert_int_not_equal(m.sb.current_gen, 0);
	assert_int_equal(m.sb.bitmap_gen, 0);
	assert_int_equal(m.sb.history[0], 0);
	assert_int_equal(m.sb.bitmap_block, XM_BITMAP_DEF_BLOCK);
	assert_int_equal(m.sb.nbits, 10 * GIB / XM_BITMAP_DEF_BLOCK);
	assert_int_equal(m.bm.intent_count, 0);
	assert_true(xm_meta_clean(&m));

	/* The file: 0600, two slots and the whole bitmap; the new directories 0700. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, XM_META_BITMAP_OFF + m.bm.npages * XM_BITMAP_PAGE +
					     xm_meta_crc_pages(m.bm.npages) * XM_META_CRC_PAGE);
	assert_int_equal(m.sb.version, 2);
	assert_int_equal(m.bad_pages, 0);
	*strrchr(f->path, '/') = '\0';
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	strcat(f->path, "/meta");

	/* Both slots valid, slot 0 the newest. */
	{
		static __u8 slot[XM_META_SLOT];

		read_slot(f->path, 0, slot);
		assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
		assert_int_equal(sb.seqno, 1);
		read_slot(f->path, 1, slot);
		assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
		assert_int_equal(sb.seqno, 0);
	}

	/* While it is open, a second open is refused: one daemon per metadata file. */
	{
		bool created;

		assert_int_equal(xm_meta_open(&m2, f->path, 10 * GIB, 0, XM_ROLE_SECONDARY,
					      &created, f->err, sizeof(f->err)),
				 -EBUSY);
		assert_non_null(strstr(f->err, "in use by another daemon"));
	}
	memcpy(&sb, &m.sb, sizeof(sb));
	xm_meta_close(&m);

	/* Reopening, with another role and block: what is stored counts. */
	open_ok(f, &m2, 10 * GIB, 4096, XM_ROLE_SECONDARY, false);
	assert_memory_equal(m2.sb.node_uuid, sb.node_uuid, sizeof(sb.node_uuid));
	assert_int_equal(m2.sb.current_gen, sb.current_gen);
	assert_int_equal(m2.sb.disk_state, XM_DISK_UPTODATE);
	assert_int_equal(m2.sb.role, XM_ROLE_PRIMARY);
	assert_int_equal(m2.sb.bitmap_block, XM_BITMAP_DEF_BLOCK);
	assert_int_equal(m2.bm.block, XM_BITMAP_DEF_BLOCK);
	assert_int_equal(m2.bm.oos_count, 0);
	xm_meta_close(&m2);
	xm_meta_close(&m);
	xm_meta_close(&m); /* twice is harmless */
}

static void test_create_secondary(void **state)
{
	struct fixture *f = *state;
	struct xm_meta m, m2;

	open_ok(f, &m, 3 * GIB + 4096, 4096, XM_ROLE_SECONDARY, true);
	assert_int_equal(m.sb.disk_state, XM_DISK_INCONSISTENT);
	assert_int_equal(m.sb.current_gen, 0);
	assert_int_equal(m.sb.role, XM_ROLE_SECONDARY);
	assert_int_equal(m.sb.nbits, 3 * GIB / 4096 + 1);
	assert_int_equal(m.bm.npages, 25); /* 786433 bits: 24 full pages and one bit */
	xm_meta_close(&m);

	open_ok(f, &m2, 3 * GIB + 4096, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m2.sb.disk_state, XM_DISK_INCONSISTENT);
	assert_int_equal(m2.bm.block, 4096);
	xm_meta_close(&m2);
}

static void test_create_rejects_bad_block_and_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct xm_meta m;
	bool created = true;
	struct stat st;

	assert_int_equal(xm_meta_open(&m, f->path, GIB, 3000, XM_ROLE_PRIMARY, &created, f->err,
				      sizeof(f->err)),
			 -EINVAL);
	assert_false(created);
	assert_non_null(strstr(f->err, "3000"));
	assert_int_not_equal(stat(f->path, &st), 0);
	xm_meta_close(&m);
}

static void test_torn_newest_slot_falls_back(void **state)
{
	struct fixture *f = *state;
	static __u8 garbage[XM_META_SLOT], slot[XM_META_SLOT];
	struct xm_meta m;
	struct xm_meta_sb sb;
	__u64 gen1, gen2;
	unsigned int i;

	open_ok(f, &m, GIB, 0, XM_ROLE_PRIMARY, true);
	gen1 = m.sb.current_gen;
	xm_meta_rotate(&m);
	gen2 = m.sb.current_gen;
	assert_int_not_equal(gen1, gen2);
	assert_int_equal(m.sb.bitmap_gen, gen1);
	assert_int_equal(m.sb.history[0], gen1);
	assert_false(xm_meta_clean(&m));
	assert_int_equal(xm_meta_sync(&m), 0); /* seqno 2, slot 1 */
	assert_true(xm_meta_clean(&m));
	xm_meta_close(&m);

	read_slot(f->path, 1, slot);
	assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
	assert_int_equal(sb.seqno, 2);
	assert_int_equal(sb.current_gen, gen2);

	/* Reopened intact: the newest. */
	open_ok(f, &m, GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.sb.current_gen, gen2);
	xm_meta_close(&m);

	/* The newest slot torn: the older one, from before the rotation. */
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (__u8)(i * 7 + 3);
	memcpy(garbage, "XMIRMETA", 8);
	write_at(f->path, XM_META_SLOT, garbage, sizeof(garbage));
	open_ok(f, &m, GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.sb.current_gen, gen1);
	assert_int_equal(m.sb.bitmap_gen, 0);

	/* The next update goes to the torn slot, never over the only valid one. */
	assert_int_equal(xm_meta_sync(&m), 0);
	read_slot(f->path, 0, slot);
	assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
	assert_int_equal(sb.seqno, 1);
	read_slot(f->path, 1, slot);
	assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
	assert_int_equal(sb.seqno, 2);
	xm_meta_close(&m);

	/* Both torn: refused. */
	write_at(f->path, 0, garbage, sizeof(garbage));
	write_at(f->path, XM_META_SLOT, garbage, sizeof(garbage));
	{
		bool created = true;

		assert_int_equal(xm_meta_open(&m, f->path, GIB, 0, XM_ROLE_PRIMARY, &created,
					      f->err, sizeof(f->err)),
				 -EINVAL);
		assert_false(created);
		assert_non_null(strstr(f->err, "no valid superblock"));
	}
}

static void test_open_refuses_other_disk_and_truncated_file(void **state)
{
	struct fixture *f = *state;
	struct xm_meta m;
	bool created;
	__u64 len;

	open_ok(f, &m, MIB, 0, XM_ROLE_SECONDARY, true);
	len = XM_META_BITMAP_OFF + m.bm.npages * XM_BITMAP_PAGE;
	xm_meta_close(&m);

	assert_int_equal(xm_meta_open(&m, f->path, 2 * MIB, 0, XM_ROLE_SECONDARY, &created, f->err,
				      sizeof(f->err)),
			 -EINVAL);
	assert_non_null(strstr(f->err, "covers 1048576 bytes, the disk has 2097152 (made for "
				       "another disk? remove it to start over)"));
	assert_null(strchr(f->err, '\n'));

	assert_int_equal(truncate(f->path, (off_t)len - 1), 0);
	assert_int_equal(xm_meta_open(&m, f->path, MIB, 0, XM_ROLE_SECONDARY, &created, f->err,
				      sizeof(f->err)),
			 -EINVAL);
	assert_non_null(strstr(f->err, "truncated"));
}

static void test_synced_bits_come_back_as_oos(void **state)
{
	struct fixture *f = *state;
	struct xm_meta m;
	struct xm_range busy = {.off = 0, .len = 4096};

	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, true); /* 65536 bits: 2 pages */
	assert_false(xm_bitmap_mark_intent(&m.bm, 0, 4096));
	assert_false(xm_bitmap_mark_intent(&m.bm, 3 * GIB, 200 * KIB)); /* 4 bits, page 1 */
	xm_bitmap_mark_oos(&m.bm, 1 * GIB, 1);
	assert_false(xm_meta_clean(&m));
	assert_int_equal(xm_meta_sync(&m), 0);
	assert_true(xm_meta_clean(&m));
	assert_true(xm_bitmap_range_durable(&m.bm, 0, 4096));
	assert_true(xm_bitmap_range_durable(&m.bm, 3 * GIB, 200 * KIB));
	xm_meta_close(&m);

	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bm.oos_count, 6);
	assert_int_equal(m.bm.intent_count, 6);
	assert_true(xm_bitmap_test_oos(&m.bm, 0));
	assert_true(xm_bitmap_test_oos(&m.bm, 3 * GIB / XM_BITMAP_DEF_BLOCK + 3));
	assert_true(xm_bitmap_test_oos(&m.bm, GIB / XM_BITMAP_DEF_BLOCK));
	assert_true(xm_bitmap_range_durable(&m.bm, 0, 4096));
	assert_true(xm_meta_clean(&m)); /* loading dirties nothing */

	/* Resynced and swept: the bits go from the file too. */
	xm_bitmap_clear_oos(&m.bm, 0, m.bm.nbits);
	assert_int_equal(xm_bitmap_sweep(&m.bm, &busy, 1, NULL), 5);
	assert_int_equal(xm_meta_sync(&m), 0);
	xm_meta_close(&m);
	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bm.oos_count, 1);
	assert_true(xm_bitmap_test_oos(&m.bm, 0));
	xm_meta_close(&m);
}

struct flush_result {
	int calls;
	int err;
	struct xm_meta *m;
};

static void on_flushed(struct xm_meta *m, int err, void *ctx)
{
	struct flush_result *r = ctx;

	r->calls++;
	r->err = err;
	r->m = m;
}

static void run_until_flushed(struct xm_loop *loop, struct flush_result *r, int calls)
{
	int i;

	for (i = 0; i < 1000 && r->calls < calls; i++)
		assert_true(xm_loop_run_once(loop, 100000000ull) >= 0);
	assert_int_equal(r->calls, calls);
}

static void test_async_flush_through_the_loop(void **state)
{
	struct fixture *f = *state;
	struct flush_result r = {0};
	struct xm_loop loop;
	struct xm_meta m;
	__u64 page, bit, gen;
	int err;

	err = xm_loop_init(&loop);
	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
	/* 2 TiB at 64 KiB: 1024 pages, more than one cycle takes. */
	open_ok(f, &m, 2048 * GIB, 0, XM_ROLE_PRIMARY, true);
	xm_meta_set_loop(&m, &loop, on_flushed, &r);
	assert_false(xm_meta_flush_start(&m)); /* nothing dirty */

	/* One bit in each of 100 pages, and the superblock. */
	for (page = 0; page < 100; page++)
		xm_bitmap_mark_intent(&m.bm, page * 10 * 2 * GIB + 7 * XM_BITMAP_DEF_BLOCK, 1);
	xm_meta_rotate(&m);
	gen = m.sb.current_gen;
	assert_true(xm_meta_flush_start(&m));
	assert_true(m.flushing);
	assert_false(xm_meta_flush_start(&m)); /* one cycle at a time */
	assert_int_equal(xm_meta_sync(&m), -EBUSY);
	assert_false(xm_meta_clean(&m));
	assert_false(xm_bitmap_range_durable(&m.bm, 7 * XM_BITMAP_DEF_BLOCK, 1));

	run_until_flushed(&loop, &r, 1);
	assert_int_equal(r.err, 0);
	assert_ptr_equal(r.m, &m);
	assert_false(m.flushing);
	assert_int_equal(m.cycles, 1);
	assert_int_equal(m.pages_written, m.npages_max);
	assert_true(xm_bitmap_range_durable(&m.bm, 7 * XM_BITMAP_DEF_BLOCK, 1));
	assert_false(xm_meta_clean(&m)); /* the pages the first cycle had no room for */

	assert_true(xm_meta_flush_start(&m));
	run_until_flushed(&loop, &r, 2);
	assert_int_equal(r.err, 0);
	assert_int_equal(m.pages_written, 100);
	assert_true(xm_meta_clean(&m));
	for (page = 0; page < 100; page++) {
		bit = page * 10 * XM_BITMAP_PAGE_BITS + 7;
		assert_true(xm_bitmap_range_durable(&m.bm, bit * XM_BITMAP_DEF_BLOCK, 1));
	}
	assert_false(xm_meta_flush_start(&m));
	xm_meta_close(&m);
	xm_loop_exit(&loop);

	/* On disk: the bits, as oos, and the rotated superblock. */
	open_ok(f, &m, 2048 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bm.oos_count, 100);
	assert_int_equal(m.bad_pages, 0); /* every page went out with its checksum */
	assert_int_equal(m.sb.current_gen, gen);
	assert_int_equal(m.sb.seqno, 2);
	for (page = 0; page < 100; page++)
		assert_true(xm_bitmap_test_oos(&m.bm, page * 10 * XM_BITMAP_PAGE_BITS + 7));
	xm_meta_close(&m);
}

static void test_close_during_flush(void **state)
{
	struct fixture *f = *state;
	struct flush_result r = {0};
	struct xm_loop loop;
	struct xm_meta m;
	int i, err;

	err = xm_loop_init(&loop);
	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
	open_ok(f, &m, GIB, 0, XM_ROLE_PRIMARY, true);
	xm_meta_set_loop(&m, &loop, on_flushed, &r);
	xm_bitmap_mark_oos(&m.bm, 0, GIB);
	assert_true(xm_meta_flush_start(&m));
	xm_meta_close(&m);
	assert_int_equal(m.fd, -1);

	/* The cycle ends quietly and frees what it held (ASan would see a leak or a use after
	 * free). */
	for (i = 0; i < 1000 && loop.inflight; i++)
		assert_true(xm_loop_run_once(&loop, 100000000ull) >= 0);
	assert_int_equal(loop.inflight, 0);
	assert_false(m.flushing);
	assert_null(m.buf);
	assert_int_equal(r.calls, 0);
	xm_meta_close(&m);
	xm_loop_exit(&loop);
}

struct waited {
	struct xm_meta_waiter w;
	int calls, err;
	__u64 cycles_then; /* m->cycles when done ran */
	const struct xm_meta *m;
};

static void on_committed(struct xm_meta_waiter *w, int err)
{
	struct waited *x = (struct waited *)w;

	x->calls++;
	x->err = err;
	x->cycles_then = x->m->cycles;
}

/* xm_meta_commit: done once everything changed before the call is durable, never earlier. */
static void test_commit_waits_for_a_whole_cycle(void **state)
{
	struct fixture *f = *state;
	struct flush_result r = {0};
	struct waited a = {.w.done = on_committed}, b = {.w.done = on_committed};
	struct waited c = {.w.done = on_committed};
	struct xm_loop loop;
	struct xm_meta m;
	__u64 page;
	int i, err;

	err = xm_loop_init(&loop);
	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
	open_ok(f, &m, 2048 * GIB, 0, XM_ROLE_PRIMARY, true);
	xm_meta_set_loop(&m, &loop, on_flushed, &r);
	a.m = b.m = c.m = &m;

	/* Clean: done at once. */
	xm_meta_commit(&m, &a.w);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, 0);

	/* 100 dirty pages need two cycles: done after the second, not the first. */
	for (page = 0; page < 100; page++)
		xm_bitmap_mark_intent(&m.bm, page * 10 * 2 * GIB + 7 * XM_BITMAP_DEF_BLOCK, 1);
	m.sb_dirty = true;
	xm_meta_commit(&m, &b.w);
	assert_true(m.flushing);
	assert_int_equal(b.calls, 0);
	/* A change made while that cycle flies: its waiter needs a cycle started after it. */
	m.sb.flags |= 0x80;
	m.sb_dirty = true;
	xm_meta_commit(&m, &c.w);
	for (i = 0; i < 1000 && (!b.calls || !c.calls); i++)
		assert_true(xm_loop_run_once(&loop, 100000000ull) >= 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, 0);
	assert_true(b.cycles_then >= 2);
	assert_int_equal(c.calls, 1);
	assert_true(c.cycles_then >= b.cycles_then);
	assert_true(xm_meta_clean(&m));
	xm_meta_close(&m);
	xm_loop_exit(&loop);
	open_ok(f, &m, 2048 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_true(m.sb.flags & 0x80);
	assert_int_equal(m.bm.oos_count, 100);
	xm_meta_close(&m);

	/* A failed metadata file: done with its error. */
	err = xm_loop_init(&loop);
	assert_int_equal(err, 0);
	open_ok(f, &m, 2048 * GIB, 0, XM_ROLE_PRIMARY, false);
	xm_meta_set_loop(&m, &loop, on_flushed, &r);
	m.failed = -EIO;
	a.calls = 0;
	xm_meta_commit(&m, &a.w);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, -EIO);
	xm_meta_close(&m);
	xm_loop_exit(&loop);
}

static void read_at(const char *path, off_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

/* The checksum of a bitmap page as docs/metadata.md defines it, computed here from the spec:
 * CRC32C of the page number (8 bytes, little-endian) and then the page's 4096 bytes. */
static __u32 spec_page_crc(__u64 page, const void *buf)
{
	__u64 le = htole64(page);

	return xm_crc32c(xm_crc32c(0, &le, 8), buf, XM_BITMAP_PAGE);
}

/* The checksum the file holds for bitmap page page of a bitmap of npages. */
static __u32 stored_crc(const char *path, __u64 npages, __u64 page)
{
	__u32 v;

	read_at(path, (off_t)(xm_meta_crc_off(npages) + page * 4), &v, 4);
	return le32toh(v);
}

/* The checksum the file's bitmap page page should have, from its bytes as they are. */
static __u32 page_crc_in_file(const char *path, __u64 page)
{
	static __u8 buf[XM_BITMAP_PAGE];

	read_at(path, (off_t)(XM_META_BITMAP_OFF + page * XM_BITMAP_PAGE), buf, sizeof(buf));
	return spec_page_crc(page, buf);
}

static void test_checksums_follow_every_page_write(void **state)
{
	struct fixture *f = *state;
	static __u8 zero[XM_BITMAP_PAGE];
	struct xm_meta m;
	__u64 p;

	/* 4 GiB at 64 KiB: 2 pages, one checksum page right after them. */
	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, true);
	assert_int_equal(m.bm.npages, 2);
	assert_int_equal(xm_meta_crc_off(2), XM_META_BITMAP_OFF + 2 * XM_BITMAP_PAGE);
	assert_int_equal(stored_crc(f->path, 2, 0), spec_page_crc(0, zero));
	assert_int_equal(stored_crc(f->path, 2, 1), spec_page_crc(1, zero));
	/* The page number is in it: the same bytes at another place do not pass. */
	assert_int_not_equal(spec_page_crc(0, zero), spec_page_crc(1, zero));
	for (p = 2; p < XM_META_CRCS_PER_PAGE; p++)
		assert_int_equal(stored_crc(f->path, 2, p), 0);

	/* A page written: its checksum with it; the other page's stays. */
	xm_bitmap_mark_intent(&m.bm, 3 * GIB, 1);
	assert_int_equal(xm_meta_sync(&m), 0);
	assert_int_not_equal(page_crc_in_file(f->path, 1), spec_page_crc(1, zero));
	assert_int_equal(stored_crc(f->path, 2, 1), page_crc_in_file(f->path, 1));
	assert_int_equal(stored_crc(f->path, 2, 0), spec_page_crc(0, zero));
	xm_meta_close(&m);
	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 0);
	assert_int_equal(m.bm.oos_count, 1);
	xm_meta_close(&m);
}

static void test_damaged_page_loads_as_all_ones(void **state)
{
	struct fixture *f = *state;
	const __u64 size = 4 * GIB + 100 * 64 * KIB; /* 65636 bits: 2 full pages and 100 bits */
	struct xm_meta m;
	__u8 byte = 0;
	__u32 v;

	open_ok(f, &m, size, 0, XM_ROLE_PRIMARY, true);
	assert_int_equal(m.bm.npages, 3);
	xm_bitmap_mark_intent(&m.bm, 10 * 64 * KIB, 3 * 64 * KIB); /* bits 10-12, page 0 */
	xm_bitmap_mark_intent(&m.bm, 40000 * 64 * KIB, 1);	   /* page 1 */
	xm_bitmap_mark_intent(&m.bm, 65541 * 64 * KIB, 1);	   /* page 2 */
	assert_int_equal(xm_meta_sync(&m), 0);
	xm_meta_close(&m);

	/* Bits 8-15 zeroed on disk: bits 10-12 would be lost, and their regions never resynced. */
	write_at(f->path, XM_META_BITMAP_OFF + 1, &byte, 1);
	open_ok(f, &m, size, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 1);
	assert_int_equal(m.bm.oos_count, XM_BITMAP_PAGE_BITS + 2);
	assert_int_equal(m.bm.intent_count, XM_BITMAP_PAGE_BITS + 2);
	assert_true(xm_bitmap_test_oos(&m.bm, 11));
	assert_true(xm_bitmap_test_oos(&m.bm, XM_BITMAP_PAGE_BITS - 1));
	assert_true(xm_bitmap_test_oos(&m.bm, 40000));
	assert_false(xm_bitmap_test_oos(&m.bm, 40001)); /* good pages load as stored */
	assert_true(xm_bitmap_test_oos(&m.bm, 65541));
	/* The bad page goes out again, with its checksum; the good ones are not rewritten. */
	assert_int_equal(m.bm.page_dirty[0], 1);
	assert_int_equal(m.bm.page_dirty[1], 0);
	assert_int_equal(m.bm.page_dirty[2], 0);
	assert_int_equal(xm_meta_sync(&m), 0);
	xm_meta_close(&m);

	/* Rewritten: valid again, and the ones stay until a resync and a sweep clear them. */
	open_ok(f, &m, size, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 0);
	assert_int_equal(m.bm.oos_count, XM_BITMAP_PAGE_BITS + 2);
	assert_true(xm_meta_clean(&m));
	xm_meta_close(&m);

	/* A damaged checksum counts the same; on the last page only the bits below nbits. */
	read_at(f->path, (off_t)(xm_meta_crc_off(3) + 2 * 4), &v, 4);
	v ^= htole32(0x100);
	write_at(f->path, (off_t)(xm_meta_crc_off(3) + 2 * 4), &v, 4);
	open_ok(f, &m, size, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 1);
	assert_int_equal(m.bm.oos_count, XM_BITMAP_PAGE_BITS + 1 + 100);
	assert_true(xm_bitmap_test_oos(&m.bm, m.bm.nbits - 1));
	xm_meta_close(&m);
}

/* A flush cycle writes a page and its checksum page under one fdatasync; a crash can keep either
 * write without the other.  Either way the page loads as all ones: a superset of old and new. */
static void test_crash_between_page_and_checksum(void **state)
{
	struct fixture *f = *state;
	static __u8 old_page[XM_BITMAP_PAGE], old_crcs[XM_META_CRC_PAGE];
	const off_t page1 = XM_META_BITMAP_OFF + XM_BITMAP_PAGE, crcs = xm_meta_crc_off(2);
	struct xm_meta m;
	int landed;

	for (landed = 0; landed < 2; landed++) {
		open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, true);
		read_at(f->path, page1, old_page, sizeof(old_page));
		read_at(f->path, crcs, old_crcs, sizeof(old_crcs));
		xm_bitmap_mark_intent(&m.bm, 2 * GIB + (__u64)landed * 64 * KIB, 1);
		assert_int_equal(xm_meta_sync(&m), 0);
		xm_meta_close(&m);
		if (landed == 0) /* the page landed, its checksum did not */
			write_at(f->path, crcs, old_crcs, sizeof(old_crcs));
		else /* the checksum landed, the page did not */
			write_at(f->path, page1, old_page, sizeof(old_page));
		open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
		assert_int_equal(m.bad_pages, 1);
		assert_int_equal(m.bm.oos_count, XM_BITMAP_PAGE_BITS);
		assert_true(xm_bitmap_test_oos(&m.bm, XM_BITMAP_PAGE_BITS + landed));
		xm_meta_close(&m);
		assert_int_equal(unlink(f->path), 0);
	}
}

/* A cycle that writes a checksum page but not the damaged page it covers (the cycle had no room
 * for it) must not make the damaged page look valid: after a crash it still loads as all ones. */
static void test_checksum_write_never_blesses_a_damaged_page(void **state)
{
	struct fixture *f = *state;
	struct flush_result r = {0};
	struct xm_loop loop;
	struct xm_meta m;
	__u8 byte = 0x5a;
	int err;

	err = xm_loop_init(&loop);
	if (err)
		xm_skip("io_uring unavailable: %s", strerror(-err));
	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, true);
	xm_meta_close(&m);
	write_at(f->path, XM_META_BITMAP_OFF + XM_BITMAP_PAGE + 7, &byte, 1); /* page 1 */
	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 1);
	xm_meta_set_loop(&m, &loop, on_flushed, &r);
	m.npages_max = 1; /* page 0 only, with the checksum page both share */
	xm_bitmap_mark_intent(&m.bm, 0, 1);
	assert_true(xm_meta_flush_start(&m));
	run_until_flushed(&loop, &r, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(m.bm.page_dirty[1], 1);
	xm_meta_close(&m); /* a crash before page 1 goes out */
	xm_loop_exit(&loop);

	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
	assert_int_equal(m.bad_pages, 1);
	assert_int_equal(m.bm.oos_count, 1 + XM_BITMAP_PAGE_BITS);
	xm_meta_close(&m);
}

/* A format 1 file: as that version wrote it, both slots version 1, no checksum table. */
static void make_format_1(const char *path, __u64 npages, bool garbage_table)
{
	static __u8 slot[XM_META_SLOT], v1[XM_META_SLOT];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		read_slot(path, i, slot);
		set_version(v1, slot, 1);
		write_at(path, (off_t)i * XM_META_SLOT, v1, sizeof(v1));
	}
	assert_int_equal(truncate(path, (off_t)xm_meta_crc_off(npages)), 0);
	if (garbage_table) { /* an upgrade that crashed before its superblock */
		memset(slot, 0xc3, sizeof(slot));
		write_at(path, (off_t)xm_meta_crc_off(npages), slot, sizeof(slot));
	}
}

static void test_format_1_is_upgraded_in_place(void **state)
{
	struct fixture *f = *state;
	static __u8 slot[XM_META_SLOT];
	struct xm_meta_sb sb;
	struct xm_meta m;
	struct stat st;
	__u64 seqno;
	int garbage;

	open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, true);
	xm_bitmap_mark_intent(&m.bm, 64 * KIB, 1);
	xm_bitmap_mark_intent(&m.bm, 3 * GIB, 1);
	assert_int_equal(xm_meta_sync(&m), 0);
	xm_meta_close(&m);

	for (garbage = 0; garbage < 2; garbage++) {
		make_format_1(f->path, 2, garbage);
		open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
		seqno = m.sb.seqno;
		assert_int_equal(m.sb.version, 2);
		assert_int_equal(m.bad_pages, 0);
		assert_int_equal(m.bm.oos_count, 2); /* the bits as stored, no more */
		assert_true(xm_bitmap_test_oos(&m.bm, 1));
		assert_true(xm_meta_clean(&m));
		xm_meta_close(&m);

		/* Both slots say 2 now, the newest last; the table holds every page's checksum. */
		read_slot(f->path, 0, slot);
		assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
		assert_int_equal(sb.version, 2);
		read_slot(f->path, 1, slot);
		assert_int_equal(xm_meta_sb_decode(slot, &sb), 0);
		assert_int_equal(sb.version, 2);
		assert_int_equal(stat(f->path, &st), 0);
		assert_int_equal(st.st_size, xm_meta_crc_off(2) + XM_META_CRC_PAGE);
		assert_int_equal(stored_crc(f->path, 2, 0), page_crc_in_file(f->path, 0));
		assert_int_equal(stored_crc(f->path, 2, 1), page_crc_in_file(f->path, 1));
		assert_int_equal(stored_crc(f->path, 2, 2), 0);

		open_ok(f, &m, 4 * GIB, 0, XM_ROLE_PRIMARY, false);
		assert_int_equal(m.sb.seqno, seqno);
		assert_int_equal(m.bad_pages, 0);
		assert_int_equal(m.bm.oos_count, 2);
		xm_meta_close(&m);
	}
}

static void test_newer_format_is_refused_untouched(void **state)
{
	struct fixture *f = *state;
	static __u8 slot[XM_META_SLOT], v3[2][XM_META_SLOT], after[XM_META_SLOT];
	struct xm_meta m;
	bool created = true;
	unsigned int i;

	open_ok(f, &m, GIB, 0, XM_ROLE_PRIMARY, true);
	xm_meta_close(&m);
	for (i = 0; i < 2; i++) {
		read_slot(f->path, i, slot);
		set_version(v3[i], slot, 3);
		write_at(f->path, (off_t)i * XM_META_SLOT, v3[i], XM_META_SLOT);
	}
	assert_int_equal(xm_meta_open(&m, f->path, GIB, 0, XM_ROLE_PRIMARY, &created, f->err,
				      sizeof(f->err)),
			 -EOPNOTSUPP);
	assert_false(created);
	assert_string_equal(
		f->err,
		"format 3, newer than this xdpmirror reads (up to 2: use a newer xdpmirror)");
	for (i = 0; i < 2; i++) {
		read_slot(f->path, i, after);
		assert_memory_equal(after, v3[i], XM_META_SLOT);
	}
}

static void test_names_and_generations(void **state)
{
	assert_string_equal(xm_disk_state_name(XM_DISK_DISKLESS), "Diskless");
	assert_string_equal(xm_disk_state_name(XM_DISK_INCONSISTENT), "Inconsistent");
	assert_string_equal(xm_disk_state_name(XM_DISK_OUTDATED), "Outdated");
	assert_string_equal(xm_disk_state_name(XM_DISK_UPTODATE), "UpToDate");
	assert_string_equal(xm_disk_state_name(4), "unknown");
	assert_int_not_equal(xm_meta_new_gen(), 0);
	assert_int_not_equal(xm_meta_new_gen(), xm_meta_new_gen());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sb_round_trip_and_layout),
		cmocka_unit_test(test_sb_decode_rejects_damage),
		cmocka_unit_test_setup_teardown(test_create_then_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_secondary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rejects_bad_block_and_leaves_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_newest_slot_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_other_disk_and_truncated_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_synced_bits_come_back_as_oos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_flush_through_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_during_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_waits_for_a_whole_cycle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checksums_follow_every_page_write, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_page_loads_as_all_ones, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_page_and_checksum, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checksum_write_never_blesses_a_damaged_page,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_1_is_upgraded_in_place, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_newer_format_is_refused_untouched, setup,
						teardown),
		cmocka_unit_test(test_names_and_generations),
	};

	return xm_test_exit(cmocka_run_group_tests_name("meta", tests, NULL, NULL));
}
