// SPDX-License-Identifier: GPL-2.0
/* The attached daemon: XDP program, AF_XDP sockets, heartbeats, control socket, one event loop. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/libbpf.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "link/auth.h"
#include "link/frame.h"
#include "link/gate.h"
#include "link/stats.h"
#include "nbd/nbd.h"
#include "primary/primary.h"
#include "secondary/secondary.h"
#include "util/clock.h"
#include "util/list.h"
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

/* Write payloads are page-aligned buffers of up to a few MiB, allocated per request.  glibc's
 * defaults serve those by mmap() or give freed heap back to the kernel at once, so every request
 * faulted in and zeroed fresh pages (about 8% of the CPU of a sequential run, docs/performance.md).
 * Keeping them in the heap bounds memory by what the NBD server admits at a time
 * (XM_NBD_MAX_WRITE_BYTES) plus the resync chunks, and reuses warm pages. */
static int link_out(void *link, const struct xm_span *spans, __u32 n, __u32 len);

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
		.out = link_out,
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

	if (d->role)
		d->ops->destroy(d->role);
	d->role = NULL;
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

/* Frames are queued on the TX ring and kicked in batches; link_tx_flush() kicks the rest. */
#define XM_TX_KICK_BATCH 32

static void link_tx_flush(void *link);

/* Queues one frame, given as spans, on queue 0's TX ring; a nonzero tag comes back in tx_done. */
static int link_out_tagged(struct xm_daemon *d, const struct xm_span *spans, __u32 n, __u32 len,
			   __u64 tag)
{
	struct xm_xsk *x = &d->xsks[0];
	struct iovec iov[XM_MAX_SPANS + 3];
	__u32 i;
	int err;

	if (n > XM_MAX_SPANS + 3)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)spans[i].data;
		iov[i].iov_len = spans[i].len;
	}
	err = xm_xsk_tx_frame(x, iov, n, tag);
	if (err) {
		d->ctr.tx_ring_full++;
		return err;
	}
	/* One kick per batch, not per frame: each sendto() is a syscall that sends what the ring
	 * holds (up to the skb budget), so frames queued in one loop turn leave together. */
	if (++x->tx_unkicked >= XM_TX_KICK_BATCH)
		link_tx_flush(d);
	d->ctr.tx_frames++;
	d->ctr.tx_bytes += len;
	d->last_tx_ns = xm_now_ns();
	return 0;
}

/* One whole frame to the peer on queue 0 (the gate's output). */
static int link_out(void *link, const struct xm_span *spans, __u32 n, __u32 len)
{
	return link_out_tagged(link, spans, n, len, 0);
}

/* The role's send (repl/role.h): one frame to the peer, built and tagged by the gate. */
static int link_send(void *link, const struct xm_frame *f, const struct xm_span *payload, __u32 n,
		     __u64 tag)
{
	struct xm_daemon *d = link;
	struct xm_gate_frame out;
	int err;

	err = xm_gate_build(&d->gate, f, payload, n, &out);
	if (err)
		return err;
	return link_out_tagged(d, out.spans, out.n, out.len, tag);
}

static void link_tx_flush(void *link)
{
	struct xm_daemon *d = link;
	__u32 q;

	for (q = 0; q < d->nxsks; q++) {
		if (d->xsks[q].tx_unkicked) {
			xm_xsk_tx_kick(&d->xsks[q]);
			d->xsks[q].tx_unkicked = 0;
		}
	}
}

static void on_packet(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt)
{
	struct xm_daemon *d = ctx;
	struct xm_span spans[XM_RX_MAX_PIECES];
	enum xm_parse_error perr;
	struct xm_rx rx;
	struct xm_frame f;
	__u32 i, hdr_off = 0;

	d->ctr.rx_frames++;
	d->ctr.rx_bytes += pkt->len;
	for (i = 0; i < pkt->npieces; i++) {
		spans[i].data = pkt->piece[i].data;
		spans[i].len = pkt->piece[i].len;
	}
	perr = xm_frame_parse_spans(spans, pkt->npieces, d->cfg.ethertype, &f, &hdr_off, NULL);
	if (perr == XM_PARSE_BAD_CRC) {
		d->ctr.rx_bad_crc++;
		return;
	}
	if (perr != XM_PARSE_OK) {
		pr_debug("%s: malformed frame of %u bytes (parse error %d)", d->cfg.dev, pkt->len,
			 perr);
		d->ctr.rx_malformed++;
		return;
	}
	d->last_rx_ns = xm_now_ns();
	if (xm_gate_rx(&d->gate, &f, spans, pkt->npieces, hdr_off, d->last_rx_ns) != XM_GATE_PASS)
		return;
	rx = (struct xm_rx){.f = &f,
			    .spans = spans,
			    .nspans = pkt->npieces,
			    .hdr_off = hdr_off,
			    .xsk = x,
			    .pkt = pkt};
	if (d->role) /* none after a role switch that failed: the daemon is leaving */
		d->ops->rx(d->role, &rx);
}

static void on_tx_done(void *ctx, __u64 tag)
{
	struct xm_daemon *d = ctx;

	if (d->role && d->ops->tx_done)
		d->ops->tx_done(d->role, tag);
}

static void drain_rx(struct xm_daemon *d, struct xm_xsk *x)
{
	bool any = false;

	while (xm_xsk_rx(x, 64, on_packet, d))
		any = true;
	if (any && d->role && d->ops->rx_done)
		d->ops->rx_done(d->role);
}

static void on_xsk_ready(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w->loop, struct xm_daemon, loop);

	drain_rx(d, &d->xsks[w - d->xsk_watch]);
}

static void on_signal(struct xm_watch *w, int revents)
{
	struct xm_daemon *d = xm_container_of(w, struct xm_daemon, signal_watch);
	struct signalfd_siginfo si;

	while (read(d->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			continue; /* nothing to reload yet; do not die of it */
		pr_info("%s: signal %u, detaching", d->cfg.dev, si.ssi_signo);
		d->stop = true;
	}
}

/* Runs the role the configuration names, lending it the environment (repl/role.h). */
static int start_role(struct xm_daemon *d)
{
	d->ops = d->cfg.role == XM_ROLE_PRIMARY ? &xm_primary_role : &xm_secondary_role;
	d->role = d->ops->create(&d->env);
	return d->role ? 0 : -errno;
}

static int create_role(struct xm_daemon *d)
{
	int err;

	err = xm_commit_init(&d->commit, &d->loop, d->disk.fd);
	if (err)
		return err;
	d->hb.interval_ns = (__u64)d->cfg.ping_ms * 1000000ull;
	d->env = (struct xm_role_env){
		.cfg = &d->cfg,
		.disk = &d->disk,
		.health = &d->health,
		.mtu = d->nd.mtu - (__u32)sizeof(struct xm_auth_trailer),
		.node_uuid = d->node_uuid,
		.loop = &d->loop,
		.commit = &d->commit,
		.meta = &d->meta,
		.ctr = &d->ctr,
		.hb = &d->hb,
		.det = &d->det,
		.alive = d->bpf.alive,
		.verified_rx_ns = d->gate.auth ? &d->gate.verified_rx_ns : NULL,
		.send = link_send,
		.tx_flush = link_tx_flush,
		.link = d,
	};
	return start_role(d);
}

/* The old role has drained: the other one takes over, on the same sockets and disk. */
static int switch_role(struct xm_daemon *d)
{
	int err;

	d->ops->destroy(d->role);
	d->role = NULL;
	d->cfg.role = d->next_role;
	d->next_role = XM_ROLE_NONE;
	err = start_role(d);
	if (err)
		pr_warn("%s: cannot start as %s: %s", d->cfg.dev, xm_role_name(d->cfg.role),
			strerror(-err));
	else
		pr_info("%s: now %s", d->cfg.dev, xm_role_name(d->cfg.role));
	return err;
}

/* One pass of work that is not driven by a completion; returns how long the loop may sleep. */
static __u64 tick(struct xm_daemon *d)
{
	__u64 now = xm_now_ns(), next;
	__u32 q;

	xm_notify_tick(d, now);
	for (q = 0; q < d->nxsks; q++)
		xm_xsk_tx_reclaim(&d->xsks[q], on_tx_done, d);
	/* What waits in our RX rings is taken before the role judges the peer (§9.2 rule 1). */
	for (q = 0; q < d->nxsks; q++)
		drain_rx(d, &d->xsks[q]);
	xm_commit_poll(&d->commit, now);
	xm_control_tick(d, now);
	next = d->ops->tick(d->role, now);
	if (xm_commit_deadline(&d->commit) < next)
		next = xm_commit_deadline(&d->commit);
	if ((d->stop || d->next_role) && !d->finishing && d->ops->drained(d->role, now)) {
		__u64 why = d->stop			      ? XM_CLOSE_DETACH
			    : d->next_role == XM_ROLE_PRIMARY ? XM_CLOSE_PROMOTE
							      : XM_CLOSE_DEMOTE;

		/* Tell the peer, leave clean metadata behind (its write completes in the loop). */
		d->ops->finish(d->role, why);
		d->finishing = true;
	}
	if (d->finishing && d->ops->finished(d->role)) {
		d->finishing = false;
		if (d->next_role && !d->stop) {
			if (switch_role(d))
				d->stop = d->finished = true;
			return 0;
		}
		d->finished = true;
	}
	/* Sleep at most a heartbeat; the kernel wakes us for anything that arrives. */
	if (next <= now)
		return 0;
	next -= now;
	return next < 10000000ull ? next : 10000000ull;
}

/* A wake after the deadline the loop asked for: how late (0 when it woke early for a completion).
 */
static void note_lateness(struct xm_daemon *d, __u64 deadline)
{
	__u64 now = xm_now_ns(), late = now > deadline ? now - deadline : 0;

	d->late.wakes++;
	if (late > d->late.late_max_ns)
		d->late.late_max_ns = late;
	d->late.over_1ms += late > NS_PER_MS;
	d->late.over_10ms += late > 10 * NS_PER_MS;
	d->late.over_50ms += late > 50 * NS_PER_MS;
}

/* --realtime: SCHED_FIFO above every ordinary task (but below the kernel's interrupt threads, at
 * 50) and no page faults on the loop's memory, the way corosync runs.  Returns 0 or -errno. */
#define XM_RT_PRIORITY 10
static int go_realtime(struct xm_daemon *d)
{
	struct sched_param sp = {.sched_priority = XM_RT_PRIORITY};
	int err;

	if (mlockall(MCL_CURRENT | MCL_FUTURE)) {
		err = -errno;
		pr_warn("%s: --realtime: cannot lock memory: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp)) {
		err = -errno;
		pr_warn("%s: --realtime: cannot run SCHED_FIFO: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	pr_info("%s: event loop runs SCHED_FIFO %d with memory locked", d->cfg.dev, XM_RT_PRIORITY);
	return 0;
}

/* Busy polling's own readiness test: a frame waiting in an RX ring. */
static bool xsks_rx_ready(void *ctx)
{
	struct xm_daemon *d = ctx;
	__u32 q;

	for (q = 0; q < d->nxsks; q++)
		if (xm_xsk_rx_ready(&d->xsks[q]))
			return true;
	return false;
}

int xm_daemon_run(struct xm_daemon *d)
{
	__u64 deadline, spin_ns = (__u64)d->cfg.busy_poll_us * NS_PER_US;
	bool stopping = false, worked = false;
	__u32 q;
	int err;

	if (d->cfg.realtime) {
		err = go_realtime(d);
		if (err)
			return err;
	}
	/* The ring belongs to the task that submits, so it is made after any fork (--daemon). */
	err = xm_loop_init(&d->loop);
	if (err) {
		pr_warn("%s: cannot create io_uring: %s", d->cfg.dev, strerror(-err));
		return err;
	}
	d->xsk_watch = calloc(d->nxsks, sizeof(*d->xsk_watch));
	if (!d->xsk_watch)
		return -ENOMEM;
	err = create_role(d);
	/* The role runs on the metadata now: it is this box's, failure or not. */
	if (!err) {
		d->meta_new = false;
		d->meta_new_dir[0] = '\0';
	}
	if (!err)
		err = xm_loop_watch(&d->loop, &d->signal_watch, d->signal_fd, 0, on_signal);
	if (!err)
		err = xm_control_start(d);
	for (q = 0; !err && q < d->nxsks; q++)
		err = xm_loop_watch_oneshot(&d->loop, &d->xsk_watch[q], xm_xsk_fd(&d->xsks[q]), 0,
					    on_xsk_ready);
	while (!err && !d->finished) {
		__u64 timeout = tick(d);
		int n;

		/* Whatever the handlers and the tick queued leaves before we sleep. */
		link_tx_flush(d);
		deadline = xm_now_ns() + timeout;
		/* --busy-poll: after a turn with work the next event (an ack, a completion, the
		 * client's next request) tends to follow within microseconds; poll for it instead
		 * of paying a sleep and a wakeup.  An idle loop still sleeps at once. */
		if (spin_ns && worked && timeout) {
			__u64 now;

			if (xm_loop_spin(&d->loop, spin_ns < timeout ? spin_ns : timeout,
					 xsks_rx_ready, d))
				timeout = 0;
			now = xm_now_ns();
			timeout = timeout && deadline > now ? deadline - now : 0;
		}
		n = xm_loop_run_once(&d->loop, timeout);
		if (n < 0)
			err = n;
		worked = n > 0;
		note_lateness(d, deadline);
		if (d->stop && !stopping) {
			stopping = true;
			if (d->role)
				d->ops->stop(d->role);
		}
	}
	if (err)
		pr_warn("%s: event loop failed: %s", d->cfg.dev, strerror(-err));
	if (spin_ns)
		pr_info("%s: busy polling: %llu polls found work, %llu ran out of time", d->cfg.dev,
			(unsigned long long)d->loop.spin_hits,
			(unsigned long long)d->loop.spin_misses);
	return err;
}
