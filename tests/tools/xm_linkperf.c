// SPDX-License-Identifier: GPL-2.0
/* Description: measures the link: its ceiling (full-MTU DATA frames from an AF_XDP sender to an
 * AF_XDP receiver, rx/tx) and its round trip at QD1 (ping/pong), through the daemon's own XDP
 * program and sockets; one JSON line per side. */
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>

#include "link/bpf_load.h"
#include "conf/config.h"
#include "link/frame.h"
#include "util/log.h"
#include "util/report.h"
#include "link/netdev.h"
#include "conf/params.h"
#include "util/runstate.h"
#include "secondary/secondary.h"
#include "link/stats.h"
#include "link/xsk.h"

#define PROG		   "xm_linkperf"
#define FIRST_FRAME_WAIT_S 10
#define MAX_SECS	   86400
#define NS_PER_S	   1000000000ull
#define MIN_MTU		   68 /* IPv4's minimum; a mirror frame needs only 62 bytes */
/* Frames queued per kick: sendto() is the expensive call in copy mode, so it is amortised. */
#define TX_BATCH 64
/* ping: round trips by default, the most at once, and the warm-up ones that are not counted. */
#define PING_COUNT	  10000
#define PING_MAX_COUNT	  10000000
#define PING_WARMUP	  200
#define PING_DEFAULT_SECS 60
#define PING_RETRY_NS	  (10 * 1000000ull)  /* before pong answers: a new ping every 10 ms */
#define PING_LOST_NS	  (200 * 1000000ull) /* a round trip not back after this is lost */

enum linkperf_role { ROLE_RX, ROLE_TX, ROLE_PING, ROLE_PONG };

struct linkperf_opts {
	enum linkperf_role role;
	const char *dev;
	__u8 dst[XM_ETH_ALEN], src[XM_ETH_ALEN], peer[XM_ETH_ALEN];
	bool have_dst, have_src, have_peer;
	__u64 window_ns;
	__u32 mtu;	 /* 0: the device's */
	__u32 frame_len; /* tx; 0: 14 + MTU */
	__u32 count;	 /* ping: round trips measured */
	__u32 payload;	 /* ping: DATA payload bytes; 0: a bare PING header */
	bool have_payload;
	bool spin; /* ping, pong: spin on the RX ring instead of sleeping in poll() */
};

/* Everything set up on the device, so one function can undo it in any state. */
struct linkperf {
	struct linkperf_opts o;
	struct xm_netdev nd;
	__u32 mtu;
	int lock_fd;
	struct xm_bpf bpf;
	bool have_xsk;
	struct xm_xsk xsk;
};

struct rx_count {
	__u64 frames;
	__u64 bytes;
	__u32 frame_len; /* the largest seen */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NS_PER_S + (__u64)ts.tv_nsec;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s rx --dev IF --secs S [--mtu N] [--peer MAC]\n"
		"       %s tx --dev IF --dst MAC --src MAC --secs S [--mtu N] [--frame-len N]\n"
		"       %s pong --dev IF --secs S [--mtu N] [--peer MAC] [--spin]\n"
		"       %s ping --dev IF --dst MAC [--count N] [--payload N] [--secs S] [--mtu N]\n"
		"                    [--spin]\n"
		"How many mirror frames per second one box delivers to the other (rx, tx), and "
		"how\n"
		"long one frame takes there and back at QD1 (pong, ping), through the daemon's "
		"XDP\n"
		"program and AF_XDP sockets; each side prints one JSON line.\n"
		"  rx               attach, wait up to %d s for the first frame, count for S s\n"
		"  tx               send DATA frames as fast as possible for S seconds\n"
		"  pong             attach and answer every frame from the peer with a bare\n"
		"                   header (as an ACK is), until ping is done or S seconds passed\n"
		"  ping             one frame out, wait for its answer, N times (default %d, "
		"after\n"
		"                   %d not counted); latency percentiles in microseconds\n"
		"  --secs S         seconds, fractions allowed (2.5); ping: the most it runs (%d)\n"
		"  --mtu N          MTU to size frames and the UMEM for (default: the device's)\n"
		"  --peer MAC       rx, pong: the sender's MAC (default: learnt from the first\n"
		"                   frame, which delays the attach; start rx or pong first)\n"
		"  --frame-len N    tx: N-byte frames instead of 14 + MTU (8704: the daemon's\n"
		"                   DATA frame at MTU 9000, 1088 at 1500)\n"
		"  --payload N      ping: DATA frames with N payload bytes (4096: a 4 KiB write)\n"
		"                   instead of a bare PING header\n"
		"  --spin           ping, pong: spin on the RX ring (one core each) instead of\n"
		"                   sleeping in poll() as the daemon does\n"
		"Exit status: 0 measured, 1 failed or interrupted, 2 bad usage.\n",
		PROG, PROG, PROG, PROG, FIRST_FRAME_WAIT_S, PING_COUNT, PING_WARMUP,
		PING_DEFAULT_SECS);
}

/* "S" or "S.fff": whole seconds through the project's parser, the fraction digit by digit. */
static int parse_secs(const char *s, __u64 *ns)
{
	char whole[16];
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : strlen(s);
	__u64 frac = 0, scale = NS_PER_S;
	__u32 secs;
	int err;

	if ((n == 0 && !dot) || n >= sizeof(whole))
		return -EINVAL;
	/* ".5" is half a second too. */
	memcpy(whole, n ? s : "0", n ? n : 1);
	whole[n ? n : 1] = '\0';
	err = xm_parse_u32(whole, 0, MAX_SECS, &secs);
	if (err)
		return err;
	if (dot) {
		const char *p;

		if (!dot[1] || strlen(dot + 1) > 9)
			return -EINVAL;
		for (p = dot + 1; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			scale /= 10;
			frac += (__u64)(*p - '0') * scale;
		}
	}
	*ns = (__u64)secs * NS_PER_S + frac;
	if (!*ns || *ns > (__u64)MAX_SECS * NS_PER_S)
		return -ERANGE;
	return 0;
}

static int bad_arg(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, PROG ": %s '%s': %s\n", opt, val, why);
	return -EINVAL;
}

static int mac_arg(const char *opt, const char *val, __u8 mac[XM_ETH_ALEN], bool *have)
{
	if (xm_parse_mac(val, mac))
		return bad_arg(opt, val, "not a MAC address (xx:xx:xx:xx:xx:xx)");
	*have = true;
	return 0;
}

static int parse_args(int argc, char **argv, struct linkperf_opts *o)
{
	static const struct option opts[] = {
		{"dev", 1, 0, 'd'},	{"dst", 1, 0, 'D'},	  {"src", 1, 0, 'S'},
		{"peer", 1, 0, 'p'},	{"secs", 1, 0, 's'},	  {"mtu", 1, 0, 'm'},
		{"help", 0, 0, 'h'},	{"frame-len", 1, 0, 'l'}, {"count", 1, 0, 'c'},
		{"payload", 1, 0, 'P'}, {"spin", 0, 0, 'w'},	  {0},
	};
	static const char *const roles[] = {
		[ROLE_RX] = "rx", [ROLE_TX] = "tx", [ROLE_PING] = "ping", [ROLE_PONG] = "pong"};
	bool have_role = false, have_count = false;
	bool have_secs = false;
	int c, err;

	memset(o, 0, sizeof(*o));
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		exit(0);
	}
	for (c = 0; argc >= 2 && c < (int)(sizeof(roles) / sizeof(roles[0])); c++) {
		if (!strcmp(argv[1], roles[c])) {
			o->role = (enum linkperf_role)c;
			have_role = true;
		}
	}
	if (!have_role) {
		fprintf(stderr, PROG ": first argument must be 'rx', 'tx', 'ping' or 'pong'\n");
		return -EINVAL;
	}
	o->count = PING_COUNT;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 'd':
			if (xm_check_ifname(optarg))
				return bad_arg("--dev", optarg, "not an interface name");
			o->dev = optarg;
			break;
		case 'D':
			err = mac_arg("--dst", optarg, o->dst, &o->have_dst);
			break;
		case 'S':
			err = mac_arg("--src", optarg, o->src, &o->have_src);
			break;
		case 'p':
			err = mac_arg("--peer", optarg, o->peer, &o->have_peer);
			break;
		case 's':
			if (parse_secs(optarg, &o->window_ns))
				return bad_arg("--secs", optarg,
					       "not a duration in (0, 86400] seconds");
			have_secs = true;
			break;
		case 'm':
			if (xm_parse_u32(optarg, MIN_MTU, XM_MAX_FRAME - XM_ETH_HLEN - XM_VLAN_HLEN,
					 &o->mtu))
				return bad_arg("--mtu", optarg, "not a number in 68..9000");
			break;
		case 'l':
			if (xm_parse_u32(optarg, XM_ETH_HLEN + sizeof(struct xm_hdr),
					 XM_MAX_FRAME - XM_VLAN_HLEN, &o->frame_len))
				return bad_arg("--frame-len", optarg, "not a number in 62..9014");
			break;
		case 'c':
			if (xm_parse_u32(optarg, 1, PING_MAX_COUNT, &o->count))
				return bad_arg("--count", optarg, "not a number in 1..10000000");
			have_count = true;
			break;
		case 'P':
			if (xm_parse_u32(optarg, 0,
					 XM_MAX_FRAME - XM_ETH_HLEN - sizeof(struct xm_hdr),
					 &o->payload))
				return bad_arg("--payload", optarg, "not a number in 0..8952");
			o->have_payload = true;
			break;
		case 'w':
			o->spin = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (optind < argc)
		return bad_arg("argument", argv[optind], "unexpected");
	if (!o->dev || (!have_secs && o->role != ROLE_PING)) {
		fprintf(stderr, PROG ": --dev and --secs are required\n");
		return -EINVAL;
	}
	if (!have_secs)
		o->window_ns = PING_DEFAULT_SECS * NS_PER_S;
	if (o->role == ROLE_PING && !o->have_dst) {
		fprintf(stderr, PROG ": ping needs --dst\n");
		return -EINVAL;
	}
	if (o->role == ROLE_PING && (o->have_src || o->have_peer)) {
		fprintf(stderr,
			PROG ": ping sends from the device's MAC to --dst: no --src or --peer\n");
		return -EINVAL;
	}
	if (o->role != ROLE_PING && (o->have_payload || have_count)) {
		fprintf(stderr, PROG ": --count and --payload are for ping\n");
		return -EINVAL;
	}
	if (o->spin && o->role != ROLE_PING && o->role != ROLE_PONG) {
		fprintf(stderr, PROG ": --spin is for ping and pong\n");
		return -EINVAL;
	}
	if (o->role == ROLE_TX && (!o->have_dst || !o->have_src)) {
		fprintf(stderr, PROG ": tx needs --dst and --src\n");
		return -EINVAL;
	}
	if (o->role == ROLE_TX && o->have_peer) {
		fprintf(stderr, PROG ": --peer is for rx (tx sends to --dst)\n");
		return -EINVAL;
	}
	if ((o->role == ROLE_RX || o->role == ROLE_PONG) &&
	    (o->have_dst || o->have_src || o->frame_len)) {
		fprintf(stderr,
			PROG ": --dst, --src and --frame-len are for tx (--dst: ping too)\n");
		return -EINVAL;
	}
	if (o->role == ROLE_PING && o->frame_len) {
		fprintf(stderr, PROG ": --frame-len is for tx (ping: --payload)\n");
		return -EINVAL;
	}
	if (o->have_dst && !xm_mac_is_unicast(o->dst)) {
		fprintf(stderr,
			PROG ": --dst must be a unicast MAC: the XDP program drops others\n");
		return -EINVAL;
	}
	return 0;
}

/* Kernel counters of the interface in our network namespace (sysfs may show another one). */
static int link_stats(const char *dev, struct rtnl_link_stats *out)
{
	struct ifaddrs *ifa, *i;
	int err = -ENOENT;

	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_data &&
		    !strcmp(i->ifa_name, dev)) {
			*out = *(const struct rtnl_link_stats *)i->ifa_data;
			err = 0;
			break;
		}
	}
	freeifaddrs(ifa);
	return err;
}

/*
 * Our XDP program delivers only frames from the configured peer.  Without --peer, the receiver
 * learns it the way a person would: the source of the first mirror frame addressed to us, read
 * with a packet socket before the program is attached (afterwards XDP would hide the frame).
 */
static int learn_peer(const struct linkperf *lp, __u64 deadline, __u8 peer[XM_ETH_ALEN])
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(XM_ETH_P_MIRROR),
		.sll_ifindex = lp->nd.ifindex,
	};
	__u8 buf[XM_ETH_HLEN];
	int fd, err = -ETIMEDOUT;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(XM_ETH_P_MIRROR));
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		err = -errno;
		goto out_close;
	}
	while (!stop_requested) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		__u64 now = now_ns();
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < (ssize_t)sizeof(buf) || memcmp(buf, lp->nd.mac, XM_ETH_ALEN))
			continue;
		memcpy(peer, buf + XM_ETH_ALEN, XM_ETH_ALEN);
		err = 0;
		break;
	}
	if (stop_requested)
		err = -EINTR;
out_close:
	close(fd);
	return err;
}

static int setup(struct linkperf *lp, const __u8 peer[XM_ETH_ALEN])
{
	const char *dev = lp->o.dev;
	struct xm_config cfg;
	pid_t holder = 0;
	int err;

	/* The same steps and defaults as the daemon (user/daemon.c): native XDP, queue 0. */
	xm_config_init(&cfg);
	snprintf(cfg.dev, sizeof(cfg.dev), "%s", dev);
	memcpy(cfg.peer_mac, peer, XM_ETH_ALEN);
	cfg.have_peer = true;
	cfg.xdp_mode = XM_XDP_NATIVE;
	cfg.xsk_mode = XM_XSK_AUTO;

	/* The daemon's lock: a daemon and this tool cannot both own the device. */
	err = xm_run_lock(dev, &holder);
	if (err == -EBUSY) {
		fprintf(stderr, PROG ": '%s': in use by pid %d (an xdpmirror daemon or %s)\n", dev,
			(int)holder, PROG);
		return err;
	}
	if (err < 0) {
		fprintf(stderr, PROG ": '%s': cannot take lock in %s: %s\n", dev, XM_RUN_DIR,
			strerror(-err));
		return err;
	}
	lp->lock_fd = err;
	/* We hold the lock, so pins left in bpffs are from a run that died: start clean. */
	err = xm_bpf_unpin(dev);
	if (err) {
		fprintf(stderr, PROG ": '%s': cannot remove stale pins: %s\n", dev, strerror(-err));
		return err;
	}

	err = xm_bpf_load(&lp->bpf, dev, &cfg, lp->nd.mac);
	if (err) {
		fprintf(stderr, PROG ": '%s': cannot load the XDP program: %s\n", dev,
			strerror(-err));
		return err;
	}
	err = xm_bpf_attach(&lp->bpf, lp->nd.ifindex, cfg.xdp_mode);
	if (err) {
		fprintf(stderr, PROG ": '%s': cannot attach the XDP program in native mode: %s%s\n",
			dev, strerror(-err),
			err == -EBUSY || err == -EEXIST ? " (another program is attached)" : "");
		return err;
	}
	/* Multi-buffer comes with xm_xsk_open (XDP_USE_SG) and the xdp.frags program; the UMEM
	 * headroom is the daemon's layout for this MTU, so data lands where it would there. */
	err = xm_xsk_open(&lp->xsk, dev, 0, cfg.xsk_mode, xm_bpf_xsks_fd(&lp->bpf),
			  xm_secondary_headroom(lp->mtu), 192);
	if (err) {
		fprintf(stderr, PROG ": '%s': cannot create an AF_XDP socket on queue 0: %s\n", dev,
			strerror(-err));
		return err;
	}
	lp->have_xsk = true;
	return 0;
}

static void teardown(struct linkperf *lp)
{
	if (lp->have_xsk)
		xm_xsk_close(&lp->xsk);
	lp->have_xsk = false;
	xm_bpf_close(&lp->bpf);
	if (lp->lock_fd >= 0) {
		int err = xm_bpf_unpin(lp->o.dev);

		if (err)
			fprintf(stderr, PROG ": '%s': cannot remove pins: %s\n", lp->o.dev,
				strerror(-err));
		xm_run_release(lp->o.dev, lp->lock_fd);
	}
	lp->lock_fd = -1;
}

static void write_rates(struct xm_report *j, __u64 frames, __u64 bytes, __u64 ns, __u32 frame_len,
			bool zerocopy)
{
	double secs = (double)ns / NS_PER_S;

	xm_report_u64(j, "frames", NULL, frames);
	xm_report_u64(j, "bytes", NULL, bytes);
	xm_report_dbl(j, "secs", NULL, secs);
	xm_report_dbl(j, "fps", NULL, secs > 0 ? (double)frames / secs : 0);
	xm_report_dbl(j, "bytes_per_s", NULL, secs > 0 ? (double)bytes / secs : 0);
	xm_report_u64(j, "frame_len", NULL, frame_len);
	xm_report_str(j, "mode", NULL, zerocopy ? "zerocopy" : "copy");
}

/* Counts from the descriptors only: the payload is never read, so RX does no per-byte work. */
static void on_rx(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt)
{
	struct rx_count *c = ctx;

	c->frames++;
	c->bytes += pkt->len;
	if (pkt->len > c->frame_len)
		c->frame_len = pkt->len;
}

static int run_rx(struct linkperf *lp)
{
	__u64 deadline = now_ns() + FIRST_FRAME_WAIT_S * NS_PER_S;
	struct xdp_statistics st0, st1;
	struct rx_count c = {0};
	struct xm_stats xs;
	struct xm_report j;
	struct timespec idle = {0, 100 * 1000};
	__u64 t0 = 0, t1 = 0, last = 0, now;
	int err;

	/* Before the first frame, block in poll().  Afterwards, when the ring is empty, sleep on a
	 * timer instead: a sleeper in poll() makes every veth NAPI run wake us with an IPI, and
	 * that runs on the sender's core, which is the bottleneck (measured: 8-20 % of it);
	 * spinning costs the second core that ksoftirqd and others need.  100 us is ~50 frames at
	 * 500k fps or ~20 at 200k jumbo fps, far from the 2048 RX chunks (~680 jumbo frames). */
	while (!stop_requested) {
		unsigned int n = xm_xsk_rx(&lp->xsk, 64, on_rx, &c);

		now = now_ns();
		if (n)
			last = now;
		if (!t0) {
			if (n) {
				/* The window opens now; what was queued before is not in it. */
				t0 = now;
				c.frames = c.bytes = 0;
				err = xm_xsk_statistics(&lp->xsk, &st0);
				if (err)
					return err;
				continue;
			}
			if (now >= deadline)
				break;
		} else if (now - t0 >= lp->o.window_ns) {
			t1 = now;
			break;
		}
		if (n)
			continue;
		if (t0) {
			nanosleep(&idle, NULL);
		} else {
			struct pollfd pfd = {.fd = xm_xsk_fd(&lp->xsk), .events = POLLIN};

			poll(&pfd, 1, 100);
		}
	}
	if (!t0) {
		if (stop_requested)
			return 0;
		fprintf(stderr, PROG ": '%s': no mirror frame in %d s", lp->o.dev,
			FIRST_FRAME_WAIT_S);
		/* The program's own counters say whether frames came but were not ours. */
		if (!xm_stats_read_pinned(lp->o.dev, &xs) && xs.drop.bad_peer.frames)
			fprintf(stderr, " (%llu dropped: source is not the peer %s)",
				(unsigned long long)xs.drop.bad_peer.frames,
				lp->o.have_peer ? "given with --peer" : "learnt");
		fprintf(stderr, "\n");
		return -ETIMEDOUT;
	}
	if (!t1)
		t1 = now; /* interrupted: report the part measured */
	err = xm_xsk_statistics(&lp->xsk, &st1);
	if (err)
		return err;
	if (t1 - last > NS_PER_S / 10)
		fprintf(stderr,
			PROG ": no frames for the last %.3f s of the window: the sender stopped "
			     "early, rates are averaged over the whole window\n",
			(double)(t1 - last) / NS_PER_S);
	xm_report_begin(&j, XM_REPORT_JSON, stdout);
	write_rates(&j, c.frames, c.bytes, t1 - t0, c.frame_len, lp->xsk.zerocopy);
	xm_report_u64(&j, "rx_dropped", NULL, st1.rx_dropped - st0.rx_dropped);
	xm_report_u64(&j, "rx_invalid", NULL, st1.rx_invalid_descs - st0.rx_invalid_descs);
	xm_report_u64(&j, "rx_ring_full", NULL, st1.rx_ring_full - st0.rx_ring_full);
	xm_report_u64(&j, "rx_fill_empty", NULL,
		      st1.rx_fill_ring_empty_descs - st0.rx_fill_ring_empty_descs);
	xm_report_end(&j);
	fflush(stdout);
	return 0;
}

static void on_tx_done(void *ctx, __u64 tag)
{
	(*(__u64 *)ctx)++;
}

/*
 * The frame: a valid DATA frame as large as the MTU allows, 14 + MTU bytes (1514 at MTU 1500,
 * 9014 at 9000), payload right after the 48-byte header (payload_off 48, no alignment padding).
 * The daemon sends smaller DATA frames (1088 B at 1500: 64-aligned payload of 1024; 8704 B at
 * 9000: 512-aligned payload of 8192) because its payload is whole disk blocks; the ceiling asks
 * what the link carries, so every MTU byte is used.  --frame-len picks the daemon's sizes.
 * Every frame is the same, so the CRC is computed once.
 */
static int build_frame(const struct linkperf *lp, __u8 *buf, size_t room)
{
	static __u8 payload[XM_MAX_FRAME];
	__u32 frame_len = lp->o.frame_len ? lp->o.frame_len : XM_ETH_HLEN + lp->mtu;
	struct xm_frame f = {
		.type = XM_T_DATA,
		.session = 1,
		.seq = 1,
		.payload_len = frame_len - XM_ETH_HLEN - (__u32)sizeof(struct xm_hdr),
	};
	__u32 i;

	for (i = 0; i < f.payload_len; i++)
		payload[i] = (__u8)(i * 7 + 1);
	return xm_frame_build(buf, room, lp->o.dst, lp->o.src, XM_ETH_P_MIRROR, &f, payload);
}

static int run_tx(struct linkperf *lp)
{
	static __u8 frame[XM_MAX_FRAME];
	struct rtnl_link_stats ls0 = {0}, ls1 = {0};
	struct xdp_statistics st;
	struct iovec iov;
	struct xm_report j;
	__u64 t0, t1, done = 0;
	int len, budget = XM_XSK_TX_FRAMES, err;
	bool have_ls;

	len = build_frame(lp, frame, sizeof(frame));
	if (len < 0) {
		fprintf(stderr, PROG ": cannot build a frame: %s\n", strerror(-len));
		return len;
	}
	iov.iov_base = frame;
	iov.iov_len = (size_t)len;
	/* One sendto() may then drain the whole TX ring instead of 32 descriptors (10 jumbo
	 * frames): measured 10-20 % more frames per second.  Older kernels refuse; keep 32. */
	if (setsockopt(xm_xsk_fd(&lp->xsk), SOL_XDP, XM_XDP_MAX_TX_SKB_BUDGET, &budget,
		       sizeof(budget)))
		budget = 32;
	have_ls = !link_stats(lp->o.dev, &ls0);

	t0 = now_ns();
	t1 = t0;
	while (!stop_requested && t1 - t0 < lp->o.window_ns) {
		unsigned int n;

		/* Copy mode completes a frame once the peer has consumed the skb. */
		xm_xsk_tx_reclaim(&lp->xsk, on_tx_done, &done);
		for (n = 0; n < TX_BATCH; n++)
			if (xm_xsk_tx_frame(&lp->xsk, &iov, 1, 1))
				break;
		/* One kick per batch, and only when the kernel asks for it (need_wakeup). */
		xm_xsk_tx_kick(&lp->xsk);
		t1 = now_ns();
	}
	xm_xsk_tx_reclaim(&lp->xsk, on_tx_done, &done);
	err = xm_xsk_statistics(&lp->xsk, &st);
	if (err)
		return err;
	have_ls = have_ls && !link_stats(lp->o.dev, &ls1);

	/*
	 * frames: those the kernel completed, i.e. that left through the veth; a frame the peer's
	 * ring had no room for is completed too, and counted in dev_tx_dropped.  While the peer has
	 * no XDP program (rx not started, or still learning --peer, or already gone), its stack
	 * drops our EtherType far more cheaply and this side runs faster: the link's ceiling is
	 * what rx reports.
	 */
	xm_report_begin(&j, XM_REPORT_JSON, stdout);
	write_rates(&j, done, done * (__u64)len, t1 - t0, (__u32)len, lp->xsk.zerocopy);
	xm_report_u64(&j, "tx_invalid", NULL, st.tx_invalid_descs);
	xm_report_u64(&j, "tx_budget", NULL, (__u64)budget);
	if (have_ls)
		xm_report_u64(&j, "dev_tx_dropped", NULL, (__u32)(ls1.tx_dropped - ls0.tx_dropped));
	xm_report_end(&j);
	fflush(stdout);
	return 0;
}

/* ---- round trip at QD1 (ping, pong) ------------------------------------------------------ */

/*
 * Both sides wait for the next frame the way the daemon's loop does, asleep until the socket is
 * readable, so the round trip includes the two wakeups a mirror pays per write; --spin keeps
 * polling the ring instead and shows what is left without them.  Returns > 0 when readable,
 * 0 on timeout.
 */
static int wait_rx(const struct linkperf *lp, __u64 deadline)
{
	struct pollfd pfd = {.fd = xm_xsk_fd(&lp->xsk), .events = POLLIN};
	__u64 now = now_ns();

	if (now >= deadline)
		return 0;
	if (lp->o.spin)
		return 1; /* the caller looks at the ring again at once */
	return poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000)) > 0;
}

struct pong_ctx {
	struct linkperf *lp;
	__u64 answered, bad;
	bool closed;
};

/* Answers one frame with a bare PONG header carrying the frame's seq and arg0, as the secondary
 * answers a DATA frame with a bare ACK; a CLOSE ends the run. */
static void on_ping(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt)
{
	static __u8 reply[XM_ETH_HLEN + sizeof(struct xm_hdr)];
	struct pong_ctx *c = ctx;
	struct xm_span spans[XM_RX_MAX_PIECES];
	struct xm_frame f, r = {.type = XM_T_PONG};
	struct iovec iov;
	__u8 src[XM_ETH_ALEN];
	__u32 i, hdr_off;
	int len;

	for (i = 0; i < pkt->npieces; i++) {
		spans[i].data = pkt->piece[i].data;
		spans[i].len = pkt->piece[i].len;
	}
	if (xm_frame_parse_spans(spans, pkt->npieces, XM_ETH_P_MIRROR, &f, &hdr_off, src) !=
	    XM_PARSE_OK) {
		c->bad++;
		return;
	}
	if (f.type == XM_T_CLOSE) {
		c->closed = true;
		return;
	}
	r.session = f.session;
	r.seq = f.seq;
	r.arg0 = f.arg0;
	len = xm_frame_build(reply, sizeof(reply), src, c->lp->nd.mac, XM_ETH_P_MIRROR, &r, NULL);
	iov.iov_base = reply;
	iov.iov_len = (size_t)len;
	/* At QD1 the TX ring is never full; a frame that cannot be queued is the ping's loss. */
	if (len > 0 && !xm_xsk_tx_frame(x, &iov, 1, 0))
		c->answered++;
}

static int run_pong(struct linkperf *lp)
{
	struct pong_ctx c = {.lp = lp};
	__u64 t0 = now_ns(), deadline = t0 + lp->o.window_ns;
	struct xm_report j;

	while (!stop_requested && !c.closed) {
		unsigned int n;

		xm_xsk_tx_reclaim(&lp->xsk, NULL, NULL);
		n = xm_xsk_rx(&lp->xsk, 64, on_ping, &c);
		if (n) {
			xm_xsk_tx_kick(&lp->xsk);
			continue;
		}
		if (!wait_rx(lp, deadline))
			break;
	}
	if (!c.answered && !stop_requested) {
		fprintf(stderr, PROG ": '%s': no frame to answer in %.1f s\n", lp->o.dev,
			(double)lp->o.window_ns / NS_PER_S);
		return -ETIMEDOUT;
	}
	if (!c.closed && !stop_requested)
		fprintf(stderr, PROG ": '%s': no CLOSE from ping within --secs: it stopped early\n",
			lp->o.dev);
	xm_report_begin(&j, XM_REPORT_JSON, stdout);
	xm_report_u64(&j, "answered", NULL, c.answered);
	xm_report_u64(&j, "bad_frames", NULL, c.bad);
	xm_report_dbl(&j, "secs", NULL, (double)(now_ns() - t0) / NS_PER_S);
	xm_report_str(&j, "wait", NULL, lp->o.spin ? "spin" : "poll");
	xm_report_str(&j, "mode", NULL, lp->xsk.zerocopy ? "zerocopy" : "copy");
	xm_report_end(&j);
	fflush(stdout);
	return 0;
}

struct ping_ctx {
	__u64 seq; /* the round trip waited for */
	bool back;
};

static void on_pong(void *ctx, struct xm_xsk *x, struct xm_rx_pkt *pkt)
{
	struct ping_ctx *c = ctx;
	struct xm_frame f;

	/* An answer that comes after its round trip was counted lost is not this one's. */
	if (pkt->npieces == 1 &&
	    xm_frame_parse(pkt->piece[0].data, pkt->len, XM_ETH_P_MIRROR, &f, NULL, NULL) ==
		    XM_PARSE_OK &&
	    f.type == XM_T_PONG && f.seq == c->seq)
		c->back = true;
}

/* Sends frame seq and waits for its answer until deadline; returns the round trip in ns, 0 when
 * none came, -errno when the frame could not be sent. */
static long long round_trip(struct linkperf *lp, __u64 seq, __u64 deadline)
{
	static __u8 frame[XM_MAX_FRAME];
	static __u8 payload[XM_MAX_FRAME];
	struct ping_ctx c = {.seq = seq};
	struct xm_frame f = {
		.type = lp->o.payload ? XM_T_DATA : XM_T_PING,
		.session = 1,
		.seq = seq,
		.payload_len = lp->o.payload,
	};
	struct iovec iov = {.iov_base = frame};
	__u64 t0;
	int len;

	xm_xsk_tx_reclaim(&lp->xsk, NULL, NULL);
	t0 = now_ns();
	f.arg0 = t0;
	/* The CRC is part of the cost of every frame, so it is taken per round trip. */
	len = xm_frame_build(frame, sizeof(frame), lp->o.dst, lp->nd.mac, XM_ETH_P_MIRROR, &f,
			     lp->o.payload ? payload : NULL);
	if (len < 0)
		return len;
	iov.iov_len = (size_t)len;
	if (xm_xsk_tx_frame(&lp->xsk, &iov, 1, 0))
		return -ENOBUFS;
	xm_xsk_tx_kick(&lp->xsk);
	while (!stop_requested) {
		xm_xsk_rx(&lp->xsk, 16, on_pong, &c);
		if (c.back)
			return (long long)(now_ns() - t0);
		if (!wait_rx(lp, deadline))
			break;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile of n sorted samples, in microseconds (nearest rank, as bench.sh). */
static double pct_us(const __u64 *v, __u32 n, double p)
{
	__u32 i = (__u32)(p / 100 * n);

	return (double)v[i < n ? i : n - 1] / 1000;
}

static void send_close(struct linkperf *lp)
{
	static __u8 frame[XM_ETH_HLEN + sizeof(struct xm_hdr)];
	struct xm_frame f = {.type = XM_T_CLOSE, .session = 1};
	struct iovec iov = {.iov_base = frame};
	int len = xm_frame_build(frame, sizeof(frame), lp->o.dst, lp->nd.mac, XM_ETH_P_MIRROR, &f,
				 NULL);

	if (len < 0)
		return;
	iov.iov_len = (size_t)len;
	xm_xsk_tx_reclaim(&lp->xsk, NULL, NULL);
	if (!xm_xsk_tx_frame(&lp->xsk, &iov, 1, 0))
		xm_xsk_tx_kick(&lp->xsk);
}

static int run_ping(struct linkperf *lp)
{
	__u64 t0 = now_ns(), end = t0 + lp->o.window_ns, seq = 0, lost = 0, sum = 0, first;
	__u64 *rtt = calloc(lp->o.count, sizeof(*rtt));
	__u32 n = 0, warm = 0;
	struct xm_report j;
	long long r = 0;
	int err = 0;

	if (!rtt)
		return -ENOMEM;
	/* Until pong has its program and socket, our frames go to its stack, which drops them. */
	first = t0 + FIRST_FRAME_WAIT_S * NS_PER_S;
	while (!stop_requested && now_ns() < first) {
		r = round_trip(lp, ++seq, now_ns() + PING_RETRY_NS);
		if (r)
			break;
	}
	if (r <= 0) {
		err = r < 0 ? (int)r : -ETIMEDOUT;
		if (!stop_requested)
			fprintf(stderr, PROG ": '%s': %s\n", lp->o.dev,
				r < 0 ? strerror((int)-r) : "no answer from pong in 10 s");
		goto out_free;
	}
	/* Warm-up: caches, the page pool and the scheduler's idea of both tasks settle. */
	while (!stop_requested && warm < PING_WARMUP && now_ns() < end) {
		r = round_trip(lp, ++seq, now_ns() + PING_LOST_NS);
		if (r < 0)
			break;
		warm++;
	}
	while (!stop_requested && n < lp->o.count && r >= 0 && now_ns() < end) {
		r = round_trip(lp, ++seq, now_ns() + PING_LOST_NS);
		if (r > 0) {
			rtt[n++] = (__u64)r;
			sum += (__u64)r;
		} else if (!r) {
			lost++;
		}
	}
	send_close(lp);
	if (r < 0) {
		err = (int)r;
		fprintf(stderr, PROG ": '%s': cannot send: %s\n", lp->o.dev, strerror(-err));
		goto out_free;
	}
	if (!n) {
		err = -ETIMEDOUT;
		if (!stop_requested)
			fprintf(stderr, PROG ": '%s': no round trip came back\n", lp->o.dev);
		goto out_free;
	}
	if (n < lp->o.count && !stop_requested)
		fprintf(stderr, PROG ": '%s': --secs ran out after %u of %u round trips\n",
			lp->o.dev, n, lp->o.count);
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	xm_report_begin(&j, XM_REPORT_JSON, stdout);
	xm_report_u64(&j, "round_trips", NULL, n);
	xm_report_u64(&j, "lost", NULL, lost);
	xm_report_u64(&j, "frame_len", NULL,
		      XM_ETH_HLEN + sizeof(struct xm_hdr) + (__u64)lp->o.payload);
	xm_report_dbl(&j, "mean_us", NULL, (double)sum / n / 1000);
	xm_report_dbl(&j, "min_us", NULL, (double)rtt[0] / 1000);
	xm_report_dbl(&j, "p50_us", NULL, pct_us(rtt, n, 50));
	xm_report_dbl(&j, "p90_us", NULL, pct_us(rtt, n, 90));
	xm_report_dbl(&j, "p99_us", NULL, pct_us(rtt, n, 99));
	xm_report_dbl(&j, "p999_us", NULL, pct_us(rtt, n, 99.9));
	xm_report_dbl(&j, "max_us", NULL, (double)rtt[n - 1] / 1000);
	xm_report_str(&j, "wait", NULL, lp->o.spin ? "spin" : "poll");
	xm_report_str(&j, "mode", NULL, lp->xsk.zerocopy ? "zerocopy" : "copy");
	xm_report_end(&j);
	fflush(stdout);
out_free:
	free(rtt);
	return err;
}

static int check_device(struct linkperf *lp)
{
	const char *dev = lp->o.dev;
	int err = xm_netdev_query(dev, &lp->nd);

	if (err) {
		fprintf(stderr, PROG ": '%s': %s\n", dev,
			err == -ENODEV ? "no such interface" : strerror(-err));
		return err;
	}
	if (!lp->nd.up) {
		fprintf(stderr, PROG ": '%s': interface is down (ip link set dev %s up)\n", dev,
			dev);
		return -ENETDOWN;
	}
	lp->mtu = lp->o.mtu ? lp->o.mtu : lp->nd.mtu;
	if (lp->mtu > lp->nd.mtu) {
		fprintf(stderr, PROG ": --mtu %u: larger than the MTU of '%s' (%u)\n", lp->mtu, dev,
			lp->nd.mtu);
		return -EINVAL;
	}
	if (lp->mtu > XM_MAX_FRAME - XM_ETH_HLEN - XM_VLAN_HLEN) {
		fprintf(stderr, PROG ": '%s': MTU %u is above the 9000 the data path supports\n",
			dev, lp->mtu);
		return -EINVAL;
	}
	if (lp->o.frame_len > XM_ETH_HLEN + lp->mtu) {
		fprintf(stderr, PROG ": --frame-len %u: larger than 14 + MTU (%u)\n",
			lp->o.frame_len, XM_ETH_HLEN + lp->mtu);
		return -EINVAL;
	}
	if (lp->o.payload > lp->mtu - sizeof(struct xm_hdr)) {
		fprintf(stderr,
			PROG ": --payload %u: a DATA frame of 14 + 48 + %u bytes is larger "
			     "than 14 + MTU (%u)\n",
			lp->o.payload, lp->o.payload, XM_ETH_HLEN + lp->mtu);
		return -EINVAL;
	}
	if ((lp->o.role == ROLE_TX || lp->o.role == ROLE_PING) &&
	    !memcmp(lp->o.dst, lp->nd.mac, XM_ETH_ALEN)) {
		fprintf(stderr, PROG ": --dst is the MAC of '%s' itself\n", dev);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct linkperf lp = {.lock_fd = -1, .bpf.link_fd = -1};
	__u8 peer[XM_ETH_ALEN];
	int err;

	if (parse_args(argc, argv, &lp.o)) {
		fprintf(stderr, "(%s --help shows the usage)\n", PROG);
		return 2;
	}
	err = check_device(&lp);
	if (err)
		return err == -EINVAL ? 2 : 1;
	/* No SA_RESTART: poll() returns early and the loops see the flag; cleanup runs normally. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	xm_log_route_libs();

	if (lp.o.role == ROLE_TX || lp.o.role == ROLE_PING) {
		/* A copy-mode XSK transmits without any XDP program on its device (measured: same
		 * rate either way), but the daemon attaches on both boxes, so we do too: the same
		 * veth state on both ends, and xm_xsk_open wants an XSKMAP. */
		memcpy(peer, lp.o.dst, XM_ETH_ALEN);
	} else if (lp.o.have_peer) {
		memcpy(peer, lp.o.peer, XM_ETH_ALEN);
	} else {
		err = learn_peer(&lp, now_ns() + FIRST_FRAME_WAIT_S * NS_PER_S, peer);
		if (err == -EINTR)
			fprintf(stderr, PROG ": interrupted\n");
		else if (err == -ETIMEDOUT)
			fprintf(stderr, PROG ": '%s': no mirror frame in %d s\n", lp.o.dev,
				FIRST_FRAME_WAIT_S);
		else if (err)
			fprintf(stderr, PROG ": '%s': cannot listen for the first frame: %s\n",
				lp.o.dev, strerror(-err));
		if (err)
			return 1;
	}

	err = setup(&lp, peer);
	if (!err && !stop_requested) {
		switch (lp.o.role) {
		case ROLE_RX:
			err = run_rx(&lp);
			break;
		case ROLE_TX:
			err = run_tx(&lp);
			break;
		case ROLE_PING:
			err = run_ping(&lp);
			break;
		case ROLE_PONG:
			err = run_pong(&lp);
			break;
		}
	}
	teardown(&lp);
	/* An interrupted window still printed what it measured, but it is not a measurement. */
	if (!err && stop_requested) {
		fprintf(stderr, PROG ": interrupted\n");
		err = -EINTR;
	}
	return err ? 1 : 0;
}
