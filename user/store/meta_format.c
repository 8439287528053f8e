// SPDX-License-Identifier: GPL-2.0
/* The metadata file's on-disk encoding: superblock slots and bitmap page checksums. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "link/frame.h"
#include "store/meta.h"

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
	__u32 hdr_len = le32toh(d->hdr_len), crc;

	/* Every format keeps magic, version, header length and a CRC32C at the header's end, so a
	 * newer one is recognised as such rather than as garbage. */
	if (memcmp(d->magic, XM_META_MAGIC, sizeof(d->magic)) || hdr_len < SB_HDR_LEN ||
	    hdr_len > XM_META_SLOT - sizeof(crc))
		return -EINVAL;
	memcpy(&crc, (const __u8 *)slot + hdr_len, sizeof(crc));
	if (le32toh(crc) != xm_crc32c(0, d, hdr_len))
		return -EINVAL;
	memset(sb, 0, sizeof(*sb));
	sb->version = le32toh(d->version);
	if (sb->version > XM_META_VERSION)
		return -EOPNOTSUPP;
	/* Format 1 has the same superblock; only the checksum table is new in 2. */
	if (sb->version < 1 || hdr_len != SB_HDR_LEN)
		return -EINVAL;
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

__u32 xm_meta_page_crc(__u64 page, const void *buf)
{
	__le64 le = htole64(page);

	return xm_crc32c(xm_crc32c(0, &le, sizeof(le)), buf, XM_BITMAP_PAGE);
}
