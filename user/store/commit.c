// SPDX-License-Identifier: GPL-2.0
/* When a write is durable: RWF_DSYNC where the device honours it, else group commit with one
 * fdatasync per batch (docs/protocol.md §7). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/commit.h"
#include "util/log.h"

#define XM_COMMIT_BATCH	   32	  /* writes per fdatasync at most: 9.5 µs/write measured */
#define XM_COMMIT_DELAY_NS 100000 /* oldest completed write waits at most this long */

static int read_sysfs(const char *dir, const char *file, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The queue/ directory of the whole disk behind fd: a partition's parent, a file's device. */
static int queue_dir(int fd, char *dir, size_t len)
{
	char path[64], part[8];
	struct stat st;
	dev_t dev;

	if (fstat(fd, &st))
		return -errno;
	dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	if (!read_sysfs(path, "partition", part, sizeof(part)))
		snprintf(dir, len, "%s/../queue", path);
	else
		snprintf(dir, len, "%s/queue", path);
	return access(dir, R_OK) ? -ENOENT : 0;
}

int xm_commit_init(struct xm_commit *c, struct xm_loop *loop, int fd)
{
	char dir[128], fua[8] = "0";

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->waiting_tail = &c->waiting;
	strcpy(c->cache, "unknown");
	/* Unknown devices (tmpfs, overlay, no sysfs) get group commit: always correct. */
	c->mode = XM_DUR_GROUP;
	if (queue_dir(fd, dir, sizeof(dir)))
		return 0;
	if (read_sysfs(dir, "write_cache", c->cache, sizeof(c->cache)))
		strcpy(c->cache, "unknown");
	read_sysfs(dir, "fua", fua, sizeof(fua));
	c->fua = fua[0] == '1';
	if (!strcmp(c->cache, "write through") || (!strcmp(c->cache, "write back") && c->fua))
		c->mode = XM_DUR_DSYNC;
	return 0;
}

const char *xm_durability_name(enum xm_durability m)
{
	return m == XM_DUR_DSYNC ? "dsync" : "group";
}

int xm_commit_rw_flags(const struct xm_commit *c)
{
	/* Alone, its fdatasync would cover it and nothing else: RWF_DSYNC gets the same durability
	 * in one request, without a loop pass between the write's CQE and the fsync. */
	return c->mode == XM_DUR_DSYNC || xm_commit_idle(c) ? RWF_DSYNC : 0;
}

void xm_commit_submitted(struct xm_commit *c, struct xm_commit_item *it, int rw_flags)
{
	it->solo = c->mode == XM_DUR_GROUP && (rw_flags & RWF_DSYNC);
	c->writes_inflight++;
	if (it->solo) {
		c->solo_inflight++;
		c->solo_writes++;
	}
}

void xm_commit_completed(struct xm_commit *c, struct xm_commit_item *it, int res, bool urgent,
			 __u64 now)
{
	c->writes_inflight--;
	if (it->solo)
		c->solo_inflight--;
	if (res < 0 || c->mode == XM_DUR_DSYNC || it->solo) {
		it->durable(it, res < 0 ? res : 0);
		return;
	}
	it->next = NULL;
	*c->waiting_tail = it;
	c->waiting_tail = &it->next;
	if (!c->nwaiting++)
		c->oldest_ns = now;
	c->urgent |= urgent;
	xm_commit_poll(c, now);
}

static void on_fsync(struct xm_io *io, int res, __u32 flags)
{
	struct xm_commit *c =
		(struct xm_commit *)((char *)io - offsetof(struct xm_commit, fsync_io));
	struct xm_commit_item *it = c->committing, *next;

	c->fsync_inflight = false;
	c->committing = NULL;
	if (res < 0 && !c->failed)
		c->failed = res;
	for (; it; it = next) {
		next = it->next;
		it->durable(it, res < 0 ? res : 0);
	}
}

void xm_commit_poll(struct xm_commit *c, __u64 now)
{
	struct io_uring_sqe *sqe;

	if (c->fsync_inflight || !c->nwaiting)
		return;
	/* Triggers: nothing more is coming soon, a full batch, the delay, or an explicit request.
	 */
	if (c->writes_inflight > c->solo_inflight && c->nwaiting < XM_COMMIT_BATCH && !c->urgent &&
	    now - c->oldest_ns < XM_COMMIT_DELAY_NS)
		return;
	sqe = xm_loop_sqe(c->loop, &c->fsync_io);
	if (!sqe)
		return; /* the ring is broken; the next pass tries again */
	c->fsync_io.fn = on_fsync;
	/* Only writes whose CQE we saw are covered: io_uring does not order an fsync after
	 * earlier submissions, so each batch is closed before the fsync goes out. */
	io_uring_prep_fsync(sqe, c->fd, IORING_FSYNC_DATASYNC);
	c->committing = c->waiting;
	c->waiting = NULL;
	c->waiting_tail = &c->waiting;
	c->commits++;
	c->commit_writes += c->nwaiting;
	c->nwaiting = 0;
	c->urgent = false;
	c->fsync_inflight = true;
}

__u64 xm_commit_deadline(const struct xm_commit *c)
{
	if (c->fsync_inflight || !c->nwaiting)
		return UINT64_MAX;
	return c->oldest_ns + XM_COMMIT_DELAY_NS;
}

bool xm_commit_idle(const struct xm_commit *c)
{
	return !c->writes_inflight && !c->nwaiting && !c->fsync_inflight;
}
