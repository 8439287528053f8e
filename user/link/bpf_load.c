// SPDX-License-Identifier: GPL-2.0
/* Loading the XDP program with its maps pinned per interface, and attaching it through a BPF link.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "link/bpf_load.h"
#include "link/frame.h"
#include "util/log.h"
#include "xdpmirror.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

int xm_bpffs_ensure(void)
{
	struct statfs st;

	if (!statfs(XM_BPFFS_ROOT, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", XM_BPFFS_ROOT, "bpf", 0, "mode=0700"))
		return -errno;
	pr_debug("mounted bpffs on %s", XM_BPFFS_ROOT);
	return 0;
}

void xm_pin_dir(const char *ifname, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", XM_PIN_ROOT, ifname);
}

int xm_bpf_unpin(const char *ifname)
{
	static const char *const maps[] = {XM_MAP_STATS, XM_MAP_XSKS, XM_MAP_ALIVE};
	char dir[PATH_MAX], path[PATH_MAX + 32];
	size_t i;

	xm_pin_dir(ifname, dir, sizeof(dir));
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, maps[i]);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	if (rmdir(dir) && errno != ENOENT)
		return -errno;
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int xm_bpf_load(struct xm_bpf *b, const char *ifname, const struct xm_config *c,
		const __u8 local_mac[6])
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	int err;

	memset(b, 0, sizeof(*b));
	b->link_fd = -1;
	err = xm_bpffs_ensure();
	if (err)
		return err;
	xm_pin_dir(ifname, b->pin_dir, sizeof(b->pin_dir));
	err = mkdir_p(b->pin_dir);
	if (err)
		return err;

	/* LIBBPF_PIN_BY_NAME maps land in <pin_root_path>/<map name>. */
	opts.pin_root_path = b->pin_dir;
	b->skel = xdpmirror_bpf__open_opts(&opts);
	if (!b->skel)
		return -errno;
	b->skel->rodata->cfg_ethertype = c->ethertype;
	memcpy((void *)b->skel->rodata->cfg_local_mac, local_mac, 6);
	memcpy((void *)b->skel->rodata->cfg_peer_mac, c->peer_mac, 6);
	b->skel->rodata->cfg_probe_crc_delta = htobe32(xm_probe_crc_delta());
	err = xdpmirror_bpf__load(b->skel);
	if (err) {
		xdpmirror_bpf__destroy(b->skel);
		b->skel = NULL;
		return err;
	}
	/* The detector reads the stamps on every pass: a memory load, not a system call. */
	b->alive = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ, MAP_SHARED,
			bpf_map__fd(b->skel->maps.alive), 0);
	if (b->alive == MAP_FAILED) {
		err = -errno;
		b->alive = NULL;
		xdpmirror_bpf__destroy(b->skel);
		b->skel = NULL;
		return err;
	}
	return 0;
}

int xm_bpf_attach(struct xm_bpf *b, int ifindex, enum xm_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int fd;

	/* A link, not a netlink attach: if we die, the kernel detaches the program for us. */
	opts.flags = mode == XM_XDP_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	fd = bpf_link_create(bpf_program__fd(b->skel->progs.xm_steer), ifindex, BPF_XDP, &opts);
	if (fd < 0)
		return fd;
	b->link_fd = fd;
	if (!bpf_xdp_query(ifindex, 0, &q))
		b->attach_mode = q.attach_mode;
	return 0;
}

int xm_bpf_xsks_fd(const struct xm_bpf *b)
{
	return bpf_map__fd(b->skel->maps.xsks);
}

void xm_bpf_close(struct xm_bpf *b)
{
	if (b->link_fd >= 0)
		close(b->link_fd);
	b->link_fd = -1;
	if (b->alive)
		munmap((void *)b->alive, (size_t)sysconf(_SC_PAGESIZE));
	b->alive = NULL;
	if (b->skel)
		xdpmirror_bpf__destroy(b->skel);
	b->skel = NULL;
}

const char *xm_bpf_attach_mode_name(__u32 mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "skb";
	case XDP_ATTACHED_HW:
		return "offload";
	default:
		return "unknown";
	}
}
