// SPDX-License-Identifier: GPL-2.0
/* Description: the metadata file: superblock encoding, create/reopen, torn slots, sync and flush.
 */
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
	assert_int_equal(slot[8], 1); /* version 1, little-endian */
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

	/* Wrong version and header length with a correct crc: still rejected. */
	memcpy(slot, good, sizeof(slot));
	v = htole32(2);
	memcpy(slot + 8, &v, 4);
	v = htole32(xm_crc32c(0, slot, SB_HDR_LEN));
	memcpy(slot + SB_HDR_LEN, &v, 4);
	assert_int_equal(xm_meta_sb_decode(slot, &back), -EINVAL);

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
	assert_int_equal(st.st_size, XM_META_BITMAP_OFF + m.bm.npages * XM_BITMAP_PAGE);
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
	assert_int_equal(xm_bitmap_sweep(&m.bm, &busy, 1, false), 5);
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
		cmocka_unit_test(test_names_and_generations),
	};

	return xm_test_exit(cmocka_run_group_tests_name("meta", tests, NULL, NULL));
}
