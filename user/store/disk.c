// SPDX-License-Identifier: GPL-2.0
/* The backing disk: opened for O_DIRECT, its size and the alignment direct I/O needs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/stat.h>

#include "store/disk.h"

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

static void query_dio_align(struct xm_disk *d)
{
	struct statx stx;

	/* Filesystems without STATX_DIOALIGN: 4096 is safe on every device we know of. */
	d->dio_mem_align = 4096;
	d->dio_offset_align = 4096;
	if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		d->dio_mem_align = stx.stx_dio_mem_align;
		d->dio_offset_align = stx.stx_dio_offset_align;
	}
}

int xm_lock_file(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};

	if (fcntl(fd, F_OFD_SETLK, &fl))
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return 0;
}

int xm_disk_open(const char *path, struct xm_disk *d)
{
	struct stat st;
	int err, flags = O_RDWR | O_CLOEXEC;

	memset(d, 0, sizeof(*d));
	/* A block device opened O_EXCL is ours alone: the kernel refuses it while it is mounted or
	 * held by another O_EXCL opener (EBUSY). */
	if (!stat(path, &st) && S_ISBLK(st.st_mode))
		flags |= O_EXCL;
	/* Classify first, then ask for O_DIRECT: a char device or tmpfs file fails differently. */
	d->fd = open(path, flags);
	if (d->fd < 0)
		return -errno;
	if (fstat(d->fd, &st)) {
		err = -errno;
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		d->is_blockdev = true;
		if (ioctl(d->fd, BLKGETSIZE64, &d->size)) {
			err = -errno;
			goto out_close;
		}
		d->id_dev = st.st_rdev;
		/* Without it (kernels before 5.15) the same node counts as the same disk. */
		if (ioctl(d->fd, BLKGETDISKSEQ, &d->id_seq))
			d->id_seq = 0;
	} else if (S_ISREG(st.st_mode)) {
		d->size = (__u64)st.st_size;
		d->id_dev = st.st_dev;
		d->id_ino = st.st_ino;
		err = xm_lock_file(d->fd);
		if (err)
			goto out_close;
	} else {
		err = -ENOTBLK;
		goto out_close;
	}
	if (fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) | O_DIRECT)) {
		err = -EOPNOTSUPP;
		goto out_close;
	}
	query_dio_align(d);
	if (d->size == 0 || d->size % d->dio_offset_align) {
		err = -EINVAL;
		goto out_close;
	}
	return 0;
out_close:
	close(d->fd);
	d->fd = -1;
	return err;
}

const char *xm_disk_open_error(int err, const struct xm_disk *d, char *buf, size_t n)
{
	switch (err) {
	case -ENOTBLK:
		return ": not a block device or regular file";
	case -EOPNOTSUPP:
		return ": its filesystem does not support O_DIRECT";
	case -EINVAL:
		snprintf(buf, n, ": size must be a non-zero multiple of %u bytes",
			 d->dio_offset_align ? d->dio_offset_align : 4096);
		return buf;
	case -EBUSY:
		return " is in use: mounted, or attached by another daemon";
	default:
		snprintf(buf, n, ": %s", strerror(-err));
		return buf;
	}
}

const char *xm_disk_health_name(enum xm_disk_hstate h)
{
	switch (h) {
	case XM_DH_ATTACHED:
		return "attached";
	case XM_DH_FAILED:
		return "failed";
	case XM_DH_DETACHED:
		return "detached";
	case XM_DH_SYNCING:
		return "syncing";
	}
	return "unknown";
}

bool xm_disk_health_fail(struct xm_disk_health *h, int err, const char *what)
{
	if (h->state == XM_DH_FAILED || h->state == XM_DH_DETACHED)
		return false;
	h->state = XM_DH_FAILED;
	h->err = err;
	snprintf(h->what, sizeof(h->what), "%s", what);
	h->failures++;
	return true;
}

bool xm_disk_same(const struct xm_disk *a, const struct xm_disk *b)
{
	return a->is_blockdev == b->is_blockdev && a->id_dev == b->id_dev &&
	       a->id_ino == b->id_ino && a->id_seq == b->id_seq;
}

void xm_disk_close(struct xm_disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
