// SPDX-License-Identifier: GPL-2.0
/* Taking the disk away and putting one back while the daemon runs: `xdpmirror disk detach` and
 * `disk attach` (docs/protocol.md §15.4).  The daemon owns the disk; the role is told. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"
#include "util/log.h"

static char answer[PATH_MAX + 160];

/* The old disk may be closed only when nothing of the commit module refers to it any more: a
 * group commit's fdatasync names the descriptor, which a later open could reuse. */
static const char *release_disk(struct xm_daemon *d)
{
	if (!xm_commit_idle(&d->commit))
		return "error: the disk still has writes in flight; try again in a moment";
	xm_disk_close(&d->disk);
	return NULL;
}

const char *xm_daemon_disk_detach(struct xm_daemon *d)
{
	const char *err;

	if (d->health.state == XM_DH_DETACHED)
		return "error: no disk is attached";
	if (d->stop || d->next_role)
		return "error: a role change or detach is under way";
	err = release_disk(d);
	if (err)
		return err;
	d->health.state = XM_DH_DETACHED;
	pr_warn("%s: disk '%s' detached by the operator", d->cfg.dev, d->cfg.disk);
	if (d->ops->disk_changed)
		err = d->ops->disk_changed(d->role, XM_DISK_EV_DETACHED);
	return err ? err : "ok: disk detached";
}

const char *xm_daemon_disk_attach(struct xm_daemon *d, const char *path, bool full)
{
	struct xm_disk nd;
	char why[128];
	const char *err;
	bool same;
	int ret;

	if (!path || !*path)
		path = d->cfg.disk;
	if (d->health.state == XM_DH_ATTACHED || d->health.state == XM_DH_SYNCING)
		return "error: a disk is attached (disk detach first)";
	if (d->stop || d->next_role)
		return "error: a role change or detach is under way";
	/* The failed disk goes first: opening the same file again needs its lock. */
	if (d->disk.fd >= 0) {
		err = release_disk(d);
		if (err)
			return err;
		d->health.state = XM_DH_DETACHED;
	}
	ret = xm_disk_open(path, &nd);
	if (ret) {
		snprintf(answer, sizeof(answer), "error: disk '%s'%s", path,
			 xm_disk_open_error(ret, &nd, why, sizeof(why)));
		return answer;
	}
	/* The export and the bitmap keep their size; a block size the peer agreed to must hold. */
	if (nd.size < d->disk.size) {
		snprintf(answer, sizeof(answer),
			 "error: disk '%s' is %llu bytes: the export needs at least %llu", path,
			 (unsigned long long)nd.size, (unsigned long long)d->disk.size);
		xm_disk_close(&nd);
		return answer;
	}
	if (nd.dio_offset_align > d->disk.dio_offset_align ||
	    nd.dio_mem_align > d->disk.dio_mem_align) {
		snprintf(answer, sizeof(answer),
			 "error: disk '%s' needs %u-byte direct I/O; the pair agreed on %u", path,
			 nd.dio_offset_align, d->disk.dio_offset_align);
		xm_disk_close(&nd);
		return answer;
	}
	same = xm_disk_same(&d->disk, &nd) && !full;
	nd.size = d->disk.size;
	nd.dio_offset_align = d->disk.dio_offset_align;
	nd.dio_mem_align = d->disk.dio_mem_align;
	d->disk = nd;
	if (path != d->cfg.disk)
		snprintf(d->cfg.disk, sizeof(d->cfg.disk), "%s", path);
	ret = xm_commit_init(&d->commit, &d->loop, d->disk.fd);
	if (ret) {
		xm_disk_close(&d->disk);
		snprintf(answer, sizeof(answer), "error: disk '%s': %s", path, strerror(-ret));
		return answer;
	}
	d->health.state = XM_DH_ATTACHED;
	d->health.err = 0;
	d->health.what[0] = 0;
	pr_info("%s: disk '%s' attached: %s", d->cfg.dev, path,
		same   ? "the same disk, only what it missed is copied"
		: full ? "--full: every region is copied"
		       : "a new disk: every region is copied");
	if (d->ops->disk_changed) {
		err = d->ops->disk_changed(d->role,
					   same ? XM_DISK_EV_SAME_DISK : XM_DISK_EV_NEW_DISK);
		if (err)
			return err;
	}
	snprintf(answer, sizeof(answer), "ok: disk attached (%s)",
		 same ? "the same disk: what it missed is copied" : "every region is copied");
	return answer;
}
