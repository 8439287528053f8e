// SPDX-License-Identifier: GPL-2.0
/* Attach and detach: every step of xm_daemon_setup checks what the user can get wrong before it
 * changes anything, and xm_daemon_teardown undoes whatever the steps made, in reverse. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/libbpf.h>
#include "conf/params.h"
#include "daemon/daemon.h"
#include "link/auth.h"
#include "link/frame.h"
#include "link/gate.h"
#include "link/stats.h"
#include "metrics/http.h"
#include "nbd/nbd.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runstate.h"

static int setup_netdev(struct xm_daemon *d)
{
	const char *dev = d->cfg.dev;
	int err;

	err = xm_netdev_query(dev, &d->nd);
	if (err == -ENODEV) {
		pr_warn("attach '%s': no such interface", dev);
		return err;
	}
	if (err) {
		pr_warn("attach '%s': cannot query interface: %s", dev, strerror(-err));
		return err;
	}
	if (!d->nd.up) {
		pr_warn("attach '%s': interface is down (ip link set dev %s up)", dev, dev);
		return -ENETDOWN;
	}
	/* A link without carrier (a cable out, a veth whose carrier is settling) comes up later:
	 * the daemon waits for the peer as it would for a peer that is not running yet. */
	if (!d->nd.carrier)
		pr_warn("%s: no carrier: the peer is unreachable until the link comes up", dev);
	if (!memcmp(d->nd.mac, d->cfg.peer_mac, XM_ETH_ALEN)) {
		pr_warn("attach '%s': --peer is this interface's own MAC address", dev);
		return -EINVAL;
	}
	if (d->cfg.queues > d->nd.rx_queues) {
		pr_warn("attach '%s': --queues %u, but the interface has %u RX queue(s)", dev,
			d->cfg.queues, d->nd.rx_queues);
		return -EINVAL;
	}
	return 0;
}

/* Another XDP program on the interface would make our attach fail once the metadata exists: it is
 * found now.  (A dead daemon's program went with its link; a live one holds the lock.) */
static int check_xdp_free(struct xm_daemon *d)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(d->nd.ifindex, 0, &q) || q.attach_mode == XDP_ATTACHED_NONE)
		return 0;
	pr_warn("attach '%s': another XDP program is attached (remove it first: ip link set dev %s "
		"xdp off)",
		d->cfg.dev, d->cfg.dev);
	return -EBUSY;
}

static int setup_disk(struct xm_daemon *d)
{
	char why[128];
	int err = xm_disk_open(d->cfg.disk, &d->disk);

	if (err)
		pr_warn("attach '%s': disk '%s'%s", d->cfg.dev, d->cfg.disk,
			xm_disk_open_error(err, &d->disk, why, sizeof(why)));
	return err;
}

/* The outermost of path's parent directories that does not exist yet ("" when all do): what
 * creating a file at path makes, and what a failed attach removes again. */
static void first_missing_dir(const char *path, char *out, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;
	char *p;

	out[0] = '\0';
	snprintf(dir, sizeof(dir), "%s", path);
	for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (stat(dir, &st) && errno == ENOENT) {
			snprintf(out, len, "%s", dir);
			return;
		}
		*p = '/';
	}
}

/* A failed attach leaves no metadata file it made, nor the directories made for it: the next
 * attach starts as if this one never ran.  Empty directories only, deepest first. */
static void undo_new_meta(struct xm_daemon *d)
{
	char dir[PATH_MAX], *p;

	if (d->meta_new && unlink(d->meta.path) && errno != ENOENT)
		pr_warn("%s: cannot remove the new metadata '%s': %s", d->cfg.dev, d->meta.path,
			strerror(errno));
	d->meta_new = false;
	snprintf(dir, sizeof(dir), "%s", d->meta.path);
	while (d->meta_new_dir[0] && (p = strrchr(dir, '/')) && p != dir) {
		*p = '\0';
		if (strlen(dir) < strlen(d->meta_new_dir) || rmdir(dir))
			break;
	}
	d->meta_new_dir[0] = '\0';
}

static int setup_meta(struct xm_daemon *d)
{
	const char *dev = d->cfg.dev;
	char path[PATH_MAX], err[512] = "";
	bool created = false;
	int ret;

	if (d->cfg.meta[0])
		snprintf(path, sizeof(path), "%s", d->cfg.meta);
	else
		snprintf(path, sizeof(path), "%s/%s.meta", XM_META_DIR, dev);
	first_missing_dir(path, d->meta_new_dir, sizeof(d->meta_new_dir));
	ret = xm_meta_open(&d->meta, path, d->disk.size, d->cfg.bitmap_block, d->cfg.role, &created,
			   err, sizeof(err));
	if (ret) {
		pr_warn("attach '%s': metadata '%s': %s", dev, path, err[0] ? err : strerror(-ret));
		/* No file of its own is left (an existing one is not ours to remove), but the
		 * directories it made for a new one may be. */
		snprintf(d->meta.path, sizeof(d->meta.path), "%s", path);
		return ret;
	}
	d->meta_new = created;
	if (created)
		pr_info("%s: created metadata '%s' (%s, %u bytes per bitmap bit)", dev, path,
			xm_disk_state_name(d->meta.sb.disk_state), d->meta.sb.bitmap_block);
	if (d->cfg.role == XM_ROLE_PRIMARY && d->meta.sb.disk_state != XM_DISK_UPTODATE) {
		if (!d->cfg.force) {
			pr_warn("attach '%s': this disk is %s, so it cannot serve as primary ("
				"'--force yes' overrides)",
				dev, xm_disk_state_name(d->meta.sb.disk_state));
			return -EINVAL;
		}
		pr_warn("%s: forced: serving a disk that is %s", dev,
			xm_disk_state_name(d->meta.sb.disk_state));
		d->meta.sb.disk_state = XM_DISK_UPTODATE;
		d->meta.sb_dirty = true;
	}
	memcpy(d->node_uuid, d->meta.sb.node_uuid, sizeof(d->node_uuid));
	return 0;
}

static int setup_lock(struct xm_daemon *d)
{
	const char *dev = d->cfg.dev;
	pid_t holder = 0;
	int fd, err;

	fd = xm_run_lock(dev, &holder);
	if (fd == -EBUSY) {
		pr_warn("attach '%s': already attached (daemon pid %d; 'xdpmirror detach --dev %s' "
			"stops it)",
			dev, (int)holder, dev);
		return fd;
	}
	if (fd < 0) {
		pr_warn("attach '%s': cannot take lock in %s: %s", dev, XM_RUN_DIR, strerror(-fd));
		return fd;
	}
	d->lock_fd = fd;
	/* We hold the lock, so pins left in bpffs are from a daemon that died: start clean. */
	err = xm_bpf_unpin(dev);
	if (err)
		pr_warn("attach '%s': cannot remove stale pins: %s", dev, strerror(-err));
	return err;
}

static int setup_xdp(struct xm_daemon *d)
{
	const char *dev = d->cfg.dev;
	int err;

	err = xm_bpf_load(&d->bpf, dev, &d->cfg, d->nd.mac);
	if (err) {
		pr_warn("attach '%s': cannot load the XDP program: %s", dev, strerror(-err));
		return err;
	}
	err = xm_bpf_attach(&d->bpf, d->nd.ifindex, d->cfg.xdp_mode);
	switch (err) {
	case 0:
		return 0;
	case -EBUSY:
	case -EEXIST:
		pr_warn("attach '%s': another XDP program is attached (remove it first: ip link "
			"set "
			"dev %s xdp off)",
			dev, dev);
		break;
	case -EOPNOTSUPP:
		pr_warn("attach '%s': no native XDP support in driver '%s' (try --xdp-mode skb)",
			dev, d->nd.driver);
		break;
	case -ERANGE:
		pr_warn("attach '%s': MTU %u is too large for XDP on driver '%s'", dev, d->nd.mtu,
			d->nd.driver);
		break;
	default:
		pr_warn("attach '%s': cannot attach the XDP program: %s", dev, strerror(-err));
	}
	return err;
}

static int setup_xsks(struct xm_daemon *d)
{
	const char *dev = d->cfg.dev;
	__u32 q, n = d->cfg.queues ? d->cfg.queues : d->nd.rx_queues;
	int err;

	if (n > XM_MAX_QUEUES)
		n = XM_MAX_QUEUES;
	if (n > d->nd.rx_queues) {
		pr_warn("attach '%s': --queues %u, but the interface has %u RX queue(s)", dev, n,
			d->nd.rx_queues);
		return -EINVAL;
	}
	d->xsks = calloc(n, sizeof(*d->xsks));
	if (!d->xsks)
		return -ENOMEM;
	for (q = 0; q < n; q++) {
		/* The secondary's writer wants payloads at DIO-aligned addresses (§7.3).
		 * Both roles use that layout: a box can be promoted or demoted at run time. */
		__u32 headroom = xm_secondary_headroom(d->nd.mtu);

		err = xm_xsk_open(&d->xsks[q], dev, q, d->cfg.xsk_mode, xm_bpf_xsks_fd(&d->bpf),
				  headroom, 192);
		if (err) {
			pr_warn("attach '%s': cannot create AF_XDP socket on queue %u (%s mode): "
				"%s",
				dev, q, xm_xsk_mode_name(d->cfg.xsk_mode), strerror(-err));
			return err;
		}
		d->nxsks++;
	}
	return 0;
}

static int setup_fds(struct xm_daemon *d)
{
	sigset_t mask;

	d->ctl_fd = xm_ctl_listen(d->cfg.dev);
	if (d->ctl_fd < 0) {
		pr_warn("attach '%s': cannot create control socket: %s", d->cfg.dev,
			strerror(-d->ctl_fd));
		return d->ctl_fd;
	}
	/* Signals arrive as events in the loop; no work happens in a signal handler. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_fd < 0)
		return -errno;
	return 0;
}

/* The key (docs/protocol.md §14.2) and the gate every frame passes through. */
static int setup_auth(struct xm_daemon *d)
{
	__u8 key[XM_AUTH_KEY_LEN];
	char err[PATH_MAX + 128];
	struct xm_gate_cfg gc = {
		.local_mac = d->nd.mac,
		.peer_mac = d->cfg.peer_mac,
		.ethertype = d->cfg.ethertype,
		.ctr = &d->ctr,
		.out = xm_daemon_link_out,
		.ctx = d,
	};
	int ret;

	if (!d->cfg.no_auth) {
		ret = xm_auth_key_load(d->cfg.auth_key, key, err, sizeof(err));
		if (ret) {
			pr_warn("attach '%s': %s", d->cfg.dev, err);
			return ret;
		}
		gc.key = key;
	}
	ret = xm_gate_init(&d->gate, &gc);
	explicit_bzero(key, sizeof(key));
	if (ret)
		pr_warn("attach '%s': authentication setup: %s", d->cfg.dev, strerror(-ret));
	else if (d->cfg.no_auth)
		pr_warn("%s: --no-auth: frames are not authenticated; anyone on the link can write "
			"to the secondary's disk",
			d->cfg.dev);
	return ret;
}

/* The NBD export's TLS keys, read when a role serves NBD (now or after a promote): checked now,
 * before anything is changed. */
static int check_nbd_tls(struct xm_daemon *d)
{
	char err[PATH_MAX + 256];
	int ret;

	if (d->cfg.nbd_tcp_insecure)
		pr_warn("%s: --nbd-tcp-insecure: NBD on TCP port %u without TLS; anyone who can "
			"connect reads and overwrites the disk",
			d->cfg.dev, d->cfg.nbd_tcp_port);
	if (!d->cfg.nbd_tls_psk[0])
		return 0;
	ret = xm_nbd_tls_psk_check(d->cfg.nbd_tls_psk, err, sizeof(err));
	if (ret)
		pr_warn("attach '%s': %s", d->cfg.dev, err);
	return ret;
}

/* Write payloads are page-aligned buffers of up to a few MiB, allocated per request.  glibc's
 * defaults serve those by mmap() or give freed heap back to the kernel at once, so every request
 * faulted in and zeroed fresh pages (about 8% of the CPU of a sequential run, docs/performance.md).
 * Keeping them in the heap bounds memory by what the NBD server admits at a time
 * (XM_NBD_MAX_WRITE_BYTES) plus the resync chunks, and reuses warm pages. */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

int xm_daemon_setup(struct xm_daemon *d, const struct xm_config *cfg)
{
	int err;

	tune_malloc();
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->lock_fd = d->signal_fd = d->ctl_fd = -1;
	d->disk.fd = -1;
	d->meta.fd = -1;
	d->bpf.link_fd = -1;
	d->start_ns = xm_now_ns();

	/* Everything the user can get wrong is checked before anything is changed. */
	err = setup_netdev(d);
	if (!err)
		err = setup_auth(d);
	if (!err)
		err = check_nbd_tls(d);
	/* The interface lock before the disk: a second attach on one interface is "already
	 * attached", not "disk in use". */
	if (!err)
		err = setup_lock(d);
	if (!err)
		err = check_xdp_free(d);
	if (!err)
		err = xm_metrics_http_start(&d->cfg, &d->metrics);
	if (!err)
		err = setup_disk(d);
	if (!err)
		err = setup_meta(d);
	if (!err)
		err = setup_xdp(d);
	if (!err)
		err = setup_xsks(d);
	if (!err)
		err = setup_fds(d);
	if (err) {
		xm_daemon_teardown(d);
		return err;
	}
	pr_info("attached to %s as %s: XDP %s, AF_XDP %s mode on %u queue(s), peer %02x:%02x:%02x:"
		"%02x:%02x:%02x",
		d->cfg.dev, xm_role_name(d->cfg.role), xm_bpf_attach_mode_name(d->bpf.attach_mode),
		d->xsks[0].zerocopy ? "zero-copy" : "copy", d->nxsks, d->cfg.peer_mac[0],
		d->cfg.peer_mac[1], d->cfg.peer_mac[2], d->cfg.peer_mac[3], d->cfg.peer_mac[4],
		d->cfg.peer_mac[5]);
	return 0;
}

void xm_daemon_teardown(struct xm_daemon *d)
{
	__u32 q;

	/* The metrics server asks the control socket, which nothing accepts on any more: its name
	 * goes first, so a scrape now fails at once rather than wait out its 2 s in the backlog. */
	if (d->ctl_fd >= 0)
		xm_ctl_unlink(d->cfg.dev);
	xm_metrics_http_stop(&d->metrics);
	if (d->role)
		d->ops->destroy(d->role);
	d->role = NULL;
	xm_events_exit(d);
	xm_loop_exit(&d->loop);
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	for (q = 0; q < d->nxsks; q++)
		xm_xsk_close(&d->xsks[q]);
	free(d->xsks);
	d->xsks = NULL;
	d->nxsks = 0;
	xm_bpf_close(&d->bpf);
	xm_meta_close(&d->meta);
	undo_new_meta(d);
	xm_disk_close(&d->disk);
	xm_gate_free(&d->gate);
	if (d->lock_fd >= 0) {
		xm_bpf_unpin(d->cfg.dev);
		xm_run_release(d->cfg.dev, d->lock_fd);
	}
	free(d->xsk_watch);
	d->xsk_watch = NULL;
	d->ctl_fd = d->signal_fd = d->lock_fd = -1;
}
