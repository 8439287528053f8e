/* SPDX-License-Identifier: GPL-2.0 */
/* The backing disk: opened for O_DIRECT, its size and the alignment direct I/O needs. */
#ifndef XM_DISK_H
#define XM_DISK_H

#include <stdbool.h>
#include <linux/types.h>

struct xm_disk {
	int fd;
	bool is_blockdev;
	__u64 size;
	__u32 dio_mem_align;	/* buffer address alignment for O_DIRECT */
	__u32 dio_offset_align; /* file offset and length alignment for O_DIRECT */
};

/* Opens path read-write with O_DIRECT, for this process alone: a block device with O_EXCL (which
 * a mounted one refuses), a file with an OFD lock.  Returns 0, -ENOENT, -EISDIR, -ENOTBLK (not a
 * block device or regular file), -EOPNOTSUPP (no O_DIRECT there), -EINVAL (empty or not a multiple
 * of the alignment), -EBUSY (mounted, or in use by another daemon) or another -errno. */
int xm_disk_open(const char *path, struct xm_disk *d);

/* Takes an OFD write lock on the whole file, held until fd is closed: -EBUSY if another open file
 * description holds one. */
int xm_lock_file(int fd);
void xm_disk_close(struct xm_disk *d);

#endif
