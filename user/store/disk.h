/* SPDX-License-Identifier: GPL-2.0 */
/* The backing disk: opened for O_DIRECT, its size and the alignment direct I/O needs. */
#ifndef XM_DISK_H
#define XM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct xm_disk {
	int fd;
	bool is_blockdev;
	__u64 size;
	__u32 dio_mem_align;	/* buffer address alignment for O_DIRECT */
	__u32 dio_offset_align; /* file offset and length alignment for O_DIRECT */
	/* Which disk this is (docs/protocol.md §15.4): st_dev and st_ino of a file; st_rdev and the
	 * kernel's disk sequence number of a block device (new media, new number). */
	__u64 id_dev, id_ino, id_seq;
};

/* What became of the disk since attach (docs/protocol.md §15.1).  The daemon owns it and lends
 * it to the role, which moves it on an I/O error; the daemon on `disk attach` and `detach`. */
enum xm_disk_hstate {
	XM_DH_ATTACHED, /* in use */
	XM_DH_FAILED,	/* an I/O error: not used any more */
	XM_DH_DETACHED, /* closed by the operator, or released after a failure */
	XM_DH_SYNCING,	/* attached again on a primary: what it lacks comes from the peer */
};

struct xm_disk_health {
	enum xm_disk_hstate state;
	int err;	/* the first error, -errno; 0 after a disk attach */
	char what[64];	/* the operation that failed: "write at 1048576" */
	__u64 failures; /* times the disk moved to failed */
	__u64 stale;	/* regions the disk lacks (the primary's stale set) */
};

/* What xm_disk_open's error means, to follow "disk 'PATH'" in a message (buf may hold it). */
const char *xm_disk_open_error(int err, const struct xm_disk *d, char *buf, size_t n);
const char *xm_disk_health_name(enum xm_disk_hstate h);
/* Moves the disk to failed unless it is already failed or detached; true when it moved (the
 * caller logs it, once). */
bool xm_disk_health_fail(struct xm_disk_health *h, int err, const char *what);
/* Whether b is the disk a was (same identity). */
bool xm_disk_same(const struct xm_disk *a, const struct xm_disk *b);

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
