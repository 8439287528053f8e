// SPDX-License-Identifier: GPL-2.0
/* Description: xm_steer run by BPF_PROG_TEST_RUN on a table of frames: verdicts, counter deltas. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#include <cmocka.h>

#include "xm_test.h"

#include "xdpmirror.h"
#include "xdpmirror.skel.h"
#include "link/frame.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define HDR_LEN	  ((unsigned int)sizeof(struct xm_hdr))
#define MIN_FRAME (XM_ETH_HLEN + HDR_LEN) /* untagged header-only frame: 62 */
#define VLAN_VID  100
#define META_ROOM 16 /* XDP metadata in front of a runt, see run_prog() */
/* .why of a PROBE_ACK row: no drop reason, the program took the frame (counted as consumed). */
#define WHY_CONSUMED XM_DROP_REASON_MAX

/* The pair under test: we are ...:02, the peer is ...:01. */
static const __u8 local_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x02};
static const __u8 peer_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x01};
static const __u8 stranger_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x09};
static const __u8 broadcast_mac[XM_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/*
 * One frame to build.  Zero means "the valid value" wherever zero is not itself under test: dst and
 * src (local and peer MAC), ethertype (0x88B5), magic, version, payload_off (48) and payload_len
 * (whatever fills the frame after payload_off).  type and flags are always taken literally.
 */
struct frame_spec {
	unsigned int len;    /* bytes handed to the program; the headers are cut off here */
	unsigned int linear; /* bytes in the linear part, the rest in frags; 0: test_run decides */
	const __u8 *dst;
	const __u8 *src;
	__u16 ethertype;
	bool vlan; /* 802.1Q tag with VID 100 before the EtherType */
	__u16 magic;
	__u8 version;
	__u8 type;
	__u16 flags;
	__u16 payload_off;
	__u32 payload_len;
};

/*
 * One row: the frame and what the program must do with it while an AF_XDP socket sits in XSKMAP
 * slot 0.  With the slot empty, XDP_REDIRECT becomes XDP_DROP counted as drop.no_socket.
 * The counters follow from the verdict: pass, redirected + rx.<type>, or drop.<why>; seen always.
 */
struct xm_case {
	const char *name;
	struct frame_spec frame;
	enum xdp_action verdict;
	enum xm_drop_reason why; /* for XDP_DROP */
	/* Where this kernel's test_run refuses the frame (EINVAL), the same branch of the program
	 * is taken by this frame instead; a refusal without one fails the row. */
	struct frame_spec fallback;
	const char *fallback_why;
};

static const struct xm_case cases[] = {
	{.name = "data, 512-byte payload",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA},
	 .verdict = XDP_REDIRECT},
	{.name = "hello, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_HELLO},
	 .verdict = XDP_REDIRECT},
	{.name = "hello_ack, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_HELLO_ACK},
	 .verdict = XDP_REDIRECT},
	{.name = "ack, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_ACK},
	 .verdict = XDP_REDIRECT},
	{.name = "flush, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_FLUSH},
	 .verdict = XDP_REDIRECT},
	{.name = "flush_ack, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_FLUSH_ACK},
	 .verdict = XDP_REDIRECT},
	{.name = "ping, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_PING},
	 .verdict = XDP_REDIRECT},
	{.name = "pong, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_PONG},
	 .verdict = XDP_REDIRECT},
	{.name = "bmreq, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_BMREQ},
	 .verdict = XDP_REDIRECT},
	{.name = "bitmap, 512-byte payload",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_BITMAP},
	 .verdict = XDP_REDIRECT},
	{.name = "csumreq, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_CSUMREQ},
	 .verdict = XDP_REDIRECT},
	{.name = "csum, 512-byte payload",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_CSUM},
	 .verdict = XDP_REDIRECT},
	{.name = "setgen, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_SETGEN},
	 .verdict = XDP_REDIRECT},
	{.name = "close, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_CLOSE},
	 .verdict = XDP_REDIRECT},
	/* Answered in the kernel (docs/protocol.md §9.1); test_probe_answer checks the bytes. */
	{.name = "probe, header only",
	 .frame = {.len = MIN_FRAME, .type = XM_T_PROBE},
	 .verdict = XDP_TX},
	{.name = "probe, 802.1Q",
	 .frame = {.len = MIN_FRAME + XM_VLAN_HLEN, .vlan = true, .type = XM_T_PROBE},
	 .verdict = XDP_TX},
	{.name = "probe with a payload",
	 .frame = {.len = MIN_FRAME + 8, .type = XM_T_PROBE},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_LENGTH},
	{.name = "probe_ack, header only: recorded and consumed",
	 .frame = {.len = MIN_FRAME, .type = XM_T_PROBE_ACK},
	 .verdict = XDP_DROP,
	 .why = WHY_CONSUMED},
	{.name = "resync data, 512-byte payload",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA, .flags = XM_F_RESYNC},
	 .verdict = XDP_REDIRECT},
	{.name = "IPv6, 100 bytes",
	 .frame = {.len = 100, .ethertype = 0x86DD},
	 .verdict = XDP_PASS},
	/* Newer kernels want 14 bytes of packet (metadata not counted); older ones want
	 * ctx.data_end == data_size_in.  One of the two frames reaches the runt branch. */
	{.name = "runt, 10 bytes (or an Ethernet header cut by the linear part, 10 + 18)",
	 .frame = {.len = 10},
	 .fallback = {.len = 28, .linear = 10},
	 .fallback_why = "this kernel wants 14 bytes of packet",
	 .verdict = XDP_PASS},
	{.name = "source is not the peer",
	 .frame = {.len = MIN_FRAME, .src = stranger_mac, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_PEER},
	{.name = "destination is another MAC",
	 .frame = {.len = MIN_FRAME, .dst = stranger_mac, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_NOT_FOR_US},
	{.name = "destination is broadcast",
	 .frame = {.len = MIN_FRAME, .dst = broadcast_mac, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_NOT_FOR_US},
	{.name = "mirror header cut after 20 bytes",
	 .frame = {.len = XM_ETH_HLEN + 20, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_TRUNCATED},
	/* The magic a sender that forgot htons() would send. */
	{.name = "magic byte-swapped",
	 .frame = {.len = MIN_FRAME, .magic = 0x4D58, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_MAGIC},
	{.name = "version 2",
	 .frame = {.len = MIN_FRAME, .version = 2, .type = XM_T_PING},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_VERSION},
	{.name = "type 0",
	 .frame = {.len = MIN_FRAME, .type = 0},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_TYPE},
	{.name = "type 17 (XM_T_MAX)",
	 .frame = {.len = MIN_FRAME, .type = XM_T_MAX},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_TYPE},
	{.name = "unknown flag 0x8000",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA, .flags = 0x8000},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_TYPE},
	{.name = "payload_off 40 (< 48)",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA, .payload_off = 40},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_LENGTH},
	{.name = "payload_len one past the frame end",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA, .payload_len = 513},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_LENGTH},
	{.name = "payload_len 0xffffffff",
	 .frame = {.len = MIN_FRAME + 512, .type = XM_T_DATA, .payload_len = 0xffffffff},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_LENGTH},
	{.name = "payload_off 64, payload exactly fills the frame",
	 .frame = {.len = XM_ETH_HLEN + 64 + 512, .type = XM_T_DATA, .payload_off = 64},
	 .verdict = XDP_REDIRECT},
	{.name = "padding after a 16-byte payload",
	 .frame = {.len = 128, .type = XM_T_DATA, .payload_len = 16},
	 .verdict = XDP_REDIRECT},
	{.name = "802.1Q VID 100, data",
	 .frame = {.len = MIN_FRAME + XM_VLAN_HLEN + 512, .vlan = true, .type = XM_T_DATA},
	 .verdict = XDP_REDIRECT},
	{.name = "802.1Q, payload_len one past the frame end",
	 .frame = {.len = MIN_FRAME + XM_VLAN_HLEN + 512,
		   .vlan = true,
		   .type = XM_T_DATA,
		   .payload_len = 513},
	 .verdict = XDP_DROP,
	 .why = XM_DROP_BAD_LENGTH},
	{.name = "802.1Q, IPv4",
	 .frame = {.len = 100, .vlan = true, .ethertype = 0x0800},
	 .verdict = XDP_PASS},
	{.name = "802.1Q tag cut, 16 bytes",
	 .frame = {.len = 16, .vlan = true},
	 .verdict = XDP_PASS},
	{.name = "jumbo data, 9000 bytes",
	 .frame = {.len = 9000, .type = XM_T_DATA},
	 .verdict = XDP_REDIRECT}, /* larger than a page: test_run must support xdp.frags */
};

/* Every field of struct xm_stats by name, so a mismatch says which counter is wrong. */
#define COUNTER(f)                                                                                 \
	{                                                                                          \
#f, offsetof(struct xm_stats, f)                                                   \
	}
/* clang-format off */
static const struct {
	const char *name;
	size_t off;
} counters[] = {
	COUNTER(seen),
	COUNTER(pass),
	COUNTER(redirected),
	COUNTER(redirect_fail),
	COUNTER(answered),
	COUNTER(consumed),
	COUNTER(rx.hello),
	COUNTER(rx.hello_ack),
	COUNTER(rx.data),
	COUNTER(rx.ack),
	COUNTER(rx.flush),
	COUNTER(rx.flush_ack),
	COUNTER(rx.ping),
	COUNTER(rx.pong),
	COUNTER(rx.bmreq),
	COUNTER(rx.bitmap),
	COUNTER(rx.csumreq),
	COUNTER(rx.csum),
	COUNTER(rx.setgen),
	COUNTER(rx.close),
	COUNTER(rx.probe),
	COUNTER(rx.probe_ack),
	COUNTER(rx.challenge),
	COUNTER(rx.read_req),
	COUNTER(rx.read_data),
	COUNTER(drop.not_for_us),
	COUNTER(drop.bad_peer),
	COUNTER(drop.truncated),
	COUNTER(drop.bad_magic),
	COUNTER(drop.bad_version),
	COUNTER(drop.bad_type),
	COUNTER(drop.bad_length),
	COUNTER(drop.no_socket),
	COUNTER(rx_resync),
};
/* clang-format on */
_Static_assert(ARRAY_SIZE(counters) * sizeof(struct xm_counter) == sizeof(struct xm_stats),
	       "every struct xm_stats field has a name");

/* One cmocka test: a row run with XSKMAP slot 0 empty or holding the socket. */
struct row_run {
	const struct xm_case *c;
	bool bound;
};

static struct {
	struct xdpmirror_bpf *skel;
	int prog_fd;
	int stats_fd;
	int xsks_fd;
	int alive_fd;
	int ncpus;
	struct xm_stats *percpu; /* ncpus values of the stats map */
	const char *ifname;	 /* where the socket is bound; the rows arrive there (ctx) */
	unsigned int ifindex;
	void *umem_area;
	size_t umem_size;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_cons rx;
} g;

static struct xm_counter *counter_at(struct xm_stats *s, size_t off)
{
	return (struct xm_counter *)((char *)s + off);
}

static const char *verdict_name(__u32 v)
{
	switch (v) {
	case XDP_ABORTED:
		return "XDP_ABORTED";
	case XDP_DROP:
		return "XDP_DROP";
	case XDP_PASS:
		return "XDP_PASS";
	case XDP_TX:
		return "XDP_TX";
	case XDP_REDIRECT:
		return "XDP_REDIRECT";
	default:
		return "unknown";
	}
}

static void put_be16(__u8 *p, __u16 v)
{
	v = htons(v);
	memcpy(p, &v, sizeof(v));
}

/*
 * Writes the frame described by f into buf (zeroed first): Ethernet, optional 802.1Q tag, mirror
 * header in network byte order, then a byte pattern as payload.  Returns the frame length.
 */
static unsigned int build_frame(const struct frame_spec *f, __u8 *buf, size_t cap)
{
	unsigned int l2 = XM_ETH_HLEN + (f->vlan ? XM_VLAN_HLEN : 0);
	unsigned int off = f->payload_off ? f->payload_off : HDR_LEN;
	struct xm_hdr h = {0};
	unsigned int i;

	assert_true(f->len <= cap && l2 + HDR_LEN <= cap);
	memset(buf, 0, cap);
	memcpy(buf, f->dst ? f->dst : local_mac, XM_ETH_ALEN);
	memcpy(buf + XM_ETH_ALEN, f->src ? f->src : peer_mac, XM_ETH_ALEN);
	if (f->vlan) {
		put_be16(buf + 12, XM_ETH_P_8021Q);
		put_be16(buf + 14, VLAN_VID);
	}
	put_be16(buf + l2 - 2, f->ethertype ? f->ethertype : XM_ETH_P_MIRROR);

	h.magic = htons(f->magic ? f->magic : XM_MAGIC);
	h.version = f->version ? f->version : XM_VERSION;
	h.type = f->type;
	h.flags = htons(f->flags);
	h.payload_off = htons(off);
	if (f->payload_len)
		h.payload_len = htonl(f->payload_len);
	else
		h.payload_len = htonl(f->len > l2 + off ? f->len - l2 - off : 0);
	h.session = htonl(f->type == XM_T_HELLO ? 0 : 0x5e55);
	h.seq = htobe64(7);
	h.credit = htonl(64);
	memcpy(buf + l2, &h, sizeof(h));

	for (i = l2 + off; i < f->len; i++)
		buf[i] = (__u8)(i * 7 + 1);
	return f->len;
}

/*
 * Runs xm_steer once on frame[0..len) as if it arrived on g.ifindex, queue 0.  When linear is not
 * 0, only that much goes in the linear part and the kernel puts the rest in frags, as it does with
 * whatever does not fit in a page.  test_run refuses data_in shorter than an Ethernet header, so a
 * runt goes in behind XDP metadata (ctx.data), which moves ctx->data to the runt's first byte;
 * kernels that count the metadata accept that, Linux 6.18 still refuses it (-EINVAL).  frame must
 * have META_ROOM bytes in front of it.  Returns 0 or -errno.
 */
static int run_prog(const __u8 *frame, unsigned int len, unsigned int linear, __u32 *verdict)
{
	unsigned int meta = len < XM_ETH_HLEN ? (XM_ETH_HLEN - len + 3) & ~3u : 0;
	struct xdp_md ctx = {
		.data = meta,
		.data_end = meta + (linear ? linear : len),
		.ingress_ifindex = g.ifindex,
		.rx_queue_index = 0,
	};
	struct bpf_test_run_opts opts = {
		.sz = sizeof(opts),
		.data_in = frame - meta,
		.data_size_in = meta + len,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	};
	int err;

	assert_true(meta <= META_ROOM);
	err = bpf_prog_test_run_opts(g.prog_fd, &opts);
	if (err)
		return err;
	*verdict = opts.retval;
	return 0;
}

/* Sums the per-CPU stats into *sum.  Returns 0 or -errno. */
static int read_stats(struct xm_stats *sum)
{
	const size_t n = sizeof(*sum) / sizeof(struct xm_counter);
	__u32 key = 0;
	int err, cpu;
	size_t i;

	err = bpf_map_lookup_elem(g.stats_fd, &key, g.percpu);
	if (err)
		return err;
	memset(sum, 0, sizeof(*sum));
	for (cpu = 0; cpu < g.ncpus; cpu++) {
		const struct xm_counter *in = (const struct xm_counter *)&g.percpu[cpu];
		struct xm_counter *out = (struct xm_counter *)sum;

		for (i = 0; i < n; i++) {
			out[i].frames += in[i].frames;
			out[i].bytes += in[i].bytes;
		}
	}
	return 0;
}

/* Prints every counter where got differs from want; returns how many differ. */
static int report_counter_diff(const char *test, const struct xm_stats *before,
			       struct xm_stats *want, struct xm_stats *got)
{
	int bad = 0;
	size_t i;

	if (!memcmp(want, got, sizeof(*want)))
		return 0;
	for (i = 0; i < ARRAY_SIZE(counters); i++) {
		const struct xm_counter *b = counter_at((struct xm_stats *)before, counters[i].off);
		const struct xm_counter *w = counter_at(want, counters[i].off);
		const struct xm_counter *o = counter_at(got, counters[i].off);

		if (w->frames != o->frames) {
			print_error("%s: %s.frames: expected +%llu got +%llu\n", test,
				    counters[i].name, (unsigned long long)(w->frames - b->frames),
				    (unsigned long long)(o->frames - b->frames));
			bad++;
		}
		if (w->bytes != o->bytes) {
			print_error("%s: %s.bytes: expected +%llu got +%llu\n", test,
				    counters[i].name, (unsigned long long)(w->bytes - b->bytes),
				    (unsigned long long)(o->bytes - b->bytes));
			bad++;
		}
	}
	return bad;
}

static void count(struct xm_counter *c, __u64 bytes)
{
	c->frames++;
	c->bytes += bytes;
}

static void test_row(void **state)
{
	static __u8 buf[META_ROOM + XM_MAX_FRAME];
	const struct row_run *r = *state;
	const struct xm_case *c = r->c;
	enum xdp_action verdict = c->verdict;
	enum xm_drop_reason why = c->why;
	struct xm_stats before, want, got;
	__u8 *frame = buf + META_ROOM;
	unsigned int len;
	__u32 retval = ~0u;
	int err, bad = 0;

	/* Without a socket nothing is delivered; probes are answered and taken on any queue. */
	if (!r->bound && verdict == XDP_REDIRECT) {
		verdict = XDP_DROP;
		why = XM_DROP_NO_SOCKET;
	}
	len = build_frame(&c->frame, frame, sizeof(buf) - META_ROOM);

	err = read_stats(&before);
	if (err)
		fail_msg("%s: read stats map: %s", c->name, strerror(-err));
	err = run_prog(frame, len, c->frame.linear, &retval);
	if (err == -EINVAL && c->fallback.len) {
		print_message("%s: test_run refused the %u-byte frame (%s: %s); the same branch "
			      "with %u bytes, %u linear\n",
			      c->name, len, strerror(-err), c->fallback_why, c->fallback.len,
			      c->fallback.linear);
		len = build_frame(&c->fallback, frame, sizeof(buf) - META_ROOM);
		err = run_prog(frame, len, c->fallback.linear, &retval);
	}
	if (err)
		fail_msg("%s: bpf_prog_test_run_opts: %s", c->name, strerror(-err));
	err = read_stats(&got);
	if (err)
		fail_msg("%s: read stats map: %s", c->name, strerror(-err));

	want = before;
	count(&want.seen, len);
	if (verdict == XDP_PASS) {
		count(&want.pass, len);
	} else if (verdict == XDP_REDIRECT) {
		assert_in_range(c->frame.type, XM_T_HELLO, XM_T_MAX - 1);
		count(&want.redirected, len);
		count((struct xm_counter *)&want.rx + (c->frame.type - XM_T_HELLO), len);
		if (c->frame.type == XM_T_DATA && (c->frame.flags & XM_F_RESYNC))
			count(&want.rx_resync, len);
	} else if (verdict == XDP_TX) {
		count(&want.answered, len);
		count(&want.rx.probe, len);
	} else if (why == WHY_CONSUMED) {
		count(&want.consumed, len);
		count(&want.rx.probe_ack, len);
	} else {
		count((struct xm_counter *)&want.drop + why, len);
	}

	if (retval != verdict) {
		print_error("%s: verdict: expected %s (%d) got %s (%u)\n", c->name,
			    verdict_name(verdict), verdict, verdict_name(retval), retval);
		bad++;
	}
	bad += report_counter_diff(c->name, &before, &want, &got);
	if (bad)
		fail_msg("%s (xsks[0] %s, %u bytes): %d mismatch(es)", c->name,
			 r->bound ? "bound" : "empty", len, bad);
}

static void read_alive(struct xm_alive *a)
{
	__u32 key = 0;

	assert_int_equal(bpf_map_lookup_elem(g.alive_fd, &key, a), 0);
}

/* Runs frame through the program and returns the verdict; out gets the frame as it left. */
static __u32 run_out(const __u8 *frame, unsigned int len, __u8 *out, unsigned int cap)
{
	struct xdp_md ctx = {.data_end = len, .ingress_ifindex = g.ifindex};
	struct bpf_test_run_opts opts = {
		.sz = sizeof(opts),
		.data_in = frame,
		.data_size_in = len,
		.data_out = out,
		.data_size_out = cap,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	};

	assert_int_equal(bpf_prog_test_run_opts(g.prog_fd, &opts), 0);
	assert_int_equal(opts.data_size_out, len);
	return opts.retval;
}

/*
 * A PROBE comes back as a PROBE_ACK with the MACs swapped and a CRC the daemon accepts; the
 * PROBE_ACK is taken by the program, which records when it came and which probe it answers.
 */
static void test_probe_answer(void **state)
{
	const struct xm_frame probe = {.type = XM_T_PROBE, .session = 0x5e55, .arg0 = 123456789};
	__u8 frame[128], out[128];
	struct xm_alive a0, a1, a2;
	struct xm_frame f;
	__u8 src[XM_ETH_ALEN];
	int len;

	len = xm_frame_build(frame, sizeof(frame), local_mac, peer_mac, XM_ETH_P_MIRROR, &probe,
			     NULL);
	assert_int_equal(len, MIN_FRAME);
	read_alive(&a0);
	assert_int_equal(run_out(frame, (unsigned int)len, out, sizeof(out)), XDP_TX);
	read_alive(&a1);
	assert_true(a1.peer_rx_ns > a0.peer_rx_ns);
	assert_true(a1.daemon_rx_ns > a0.daemon_rx_ns); /* the peer's daemon sent the probe */
	assert_memory_equal(out, peer_mac, XM_ETH_ALEN);
	assert_memory_equal(out + XM_ETH_ALEN, local_mac, XM_ETH_ALEN);
	assert_int_equal(xm_frame_parse(out, (size_t)len, XM_ETH_P_MIRROR, &f, NULL, src),
			 XM_PARSE_OK);
	assert_int_equal(f.type, XM_T_PROBE_ACK);
	assert_int_equal(f.session, probe.session);
	assert_int_equal(f.arg0, probe.arg0);
	assert_memory_equal(src, local_mac, XM_ETH_ALEN);

	/* The answer as the other box's program sees it: from its peer (us), to it. */
	memcpy(out, local_mac, XM_ETH_ALEN);
	memcpy(out + XM_ETH_ALEN, peer_mac, XM_ETH_ALEN);
	assert_int_equal(run_out(out, (unsigned int)len, frame, sizeof(frame)), XDP_DROP);
	read_alive(&a2);
	assert_int_equal(a2.probe_echo_ns, probe.arg0);
	assert_true(a2.probe_ack_ns >= a1.peer_rx_ns);
	assert_true(a2.peer_rx_ns >= a1.peer_rx_ns);
	assert_int_equal(a2.daemon_rx_ns, a1.daemon_rx_ns); /* no daemon sent the answer */
}

static int slot_empty(void **state)
{
	__u32 key = 0;
	int err;

	err = bpf_map_delete_elem(g.xsks_fd, &key);
	if (err && err != -ENOENT) {
		print_error("empty xsks[0]: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static int slot_bound(void **state)
{
	int err;

	err = xsk_socket__update_xskmap(g.xsk, g.xsks_fd);
	if (err) {
		print_error("put AF_XDP socket in xsks[0]: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static int link_up(const char *ifname)
{
	struct ifreq ifr = {0};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		err = -errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			err = -errno;
	}
	close(fd);
	return err;
}

/*
 * A fresh network namespace (only lo) and a private mount namespace with an empty bpffs over
 * /sys/fs/bpf: everything the test creates dies with the process, and even a stray pin could not
 * reach the host's bpffs.  Returns 0 or -errno.
 */
static int isolate(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("bpf", XM_BPFFS_ROOT, "bpf", 0, NULL) < 0)
		return -errno;
	return link_up("lo");
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Opens, configures and loads the skeleton with pinning switched off.  Returns 0 or -errno. */
static int load_prog(void)
{
	struct bpf_map *map;
	int err;

	g.skel = xdpmirror_bpf__open();
	if (!g.skel)
		return -errno;
	g.skel->rodata->cfg_ethertype = XM_ETH_P_MIRROR;
	memcpy(g.skel->rodata->cfg_local_mac, local_mac, XM_ETH_ALEN);
	memcpy(g.skel->rodata->cfg_peer_mac, peer_mac, XM_ETH_ALEN);
	g.skel->rodata->cfg_probe_crc_delta = htobe32(xm_probe_crc_delta());
	/* The maps are pinned by name: without a pin path libbpf neither reuses a running
	 * daemon's maps (and counters) nor pins ours. */
	bpf_object__for_each_map(map, g.skel->obj)
	{
		err = bpf_map__set_pin_path(map, NULL);
		if (err)
			return err;
	}
	err = xdpmirror_bpf__load(g.skel);
	if (err)
		return err;

	g.prog_fd = bpf_program__fd(g.skel->progs.xm_steer);
	g.stats_fd = bpf_map__fd(g.skel->maps.stats);
	g.xsks_fd = bpf_map__fd(g.skel->maps.xsks);
	g.alive_fd = bpf_map__fd(g.skel->maps.alive);
	g.ncpus = libbpf_num_possible_cpus();
	if (g.ncpus < 0)
		return g.ncpus;
	g.percpu = calloc(g.ncpus, sizeof(*g.percpu));
	if (!g.percpu)
		return -ENOMEM;
	return 0;
}

static void xsk_close(void)
{
	if (g.xsk)
		xsk_socket__delete(g.xsk);
	g.xsk = NULL;
	if (g.umem)
		xsk_umem__delete(g.umem);
	g.umem = NULL;
}

/* An AF_XDP socket on ifname queue 0, copy mode, without libxdp's own program.  0 or -errno. */
static int xsk_open(const char *ifname)
{
	const struct xsk_socket_config cfg = {
		.rx_size = XSK_RING_CONS__DEFAULT_NUM_DESCS,
		.tx_size = XSK_RING_PROD__DEFAULT_NUM_DESCS,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	int err;

	err = xsk_umem__create(&g.umem, g.umem_area, g.umem_size, &g.fill, &g.comp, NULL);
	if (err) {
		g.umem = NULL;
		return err;
	}
	err = xsk_socket__create(&g.xsk, ifname, 0, g.umem, &g.rx, NULL, &cfg);
	if (err) {
		g.xsk = NULL;
		xsk_close();
		return err;
	}
	g.ifname = ifname;
	g.ifindex = if_nametoindex(ifname);
	return g.ifindex ? 0 : -errno;
}

/*
 * lo is the simplest device to bind to; should a kernel refuse AF_XDP there, a veth pair in our
 * namespace does the job.  Returns 0 or -errno.
 */
static int xsk_setup(void)
{
	int err;

	g.umem_size = 64 * XSK_UMEM__DEFAULT_FRAME_SIZE;
	g.umem_area =
		mmap(NULL, g.umem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g.umem_area == MAP_FAILED) {
		g.umem_area = NULL;
		return -errno;
	}
	err = xsk_open("lo");
	if (!err)
		return 0;
	fprintf(stderr, "test_xdp_verdict: AF_XDP bind to lo queue 0: %s; trying a veth pair\n",
		strerror(-err));
	if (system("ip link add xmv0 type veth peer name xmv1 && ip link set xmv0 up && "
		   "ip link set xmv1 up") != 0)
		return -EIO;
	return xsk_open("xmv0");
}

int main(void)
{
	static struct CMUnitTest tests[2 * ARRAY_SIZE(cases)];
	static struct row_run runs[2 * ARRAY_SIZE(cases)];
	char *names[2 * ARRAY_SIZE(cases)] = {0};
	int err, failed = 1;
	size_t i;

	if (geteuid() != 0)
		return xm_skip_all("test_xdp_verdict", "needs root (namespaces, BPF, AF_XDP)");
	err = isolate();
	if (err == -EPERM)
		return xm_skip_all("test_xdp_verdict", "no private namespaces here: %s",
				   strerror(-err));
	if (err) {
		fprintf(stderr, "test_xdp_verdict: isolate: %s\n", strerror(-err));
		return 1;
	}

	libbpf_set_print(libbpf_print);
	err = load_prog();
	if (err == -EPERM) {
		failed = xm_skip_all("test_xdp_verdict", "loading BPF not permitted: %s",
				     strerror(-err));
		goto out_destroy_skel;
	}
	if (err) {
		fprintf(stderr, "test_xdp_verdict: load xm_steer: %s\n", strerror(-err));
		goto out_destroy_skel;
	}
	err = xsk_setup();
	if (err) {
		fprintf(stderr, "test_xdp_verdict: AF_XDP socket: %s\n", strerror(-err));
		goto out_close_xsk;
	}
	print_message("frames arrive on %s (ifindex %u) queue 0, the AF_XDP socket's queue\n",
		      g.ifname, g.ifindex);

	/* Phase 1 with xsks[0] empty, phase 2 with our socket in it; each row runs in both. */
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		bool bound = i >= ARRAY_SIZE(cases);

		runs[i].c = &cases[i % ARRAY_SIZE(cases)];
		runs[i].bound = bound;
		if (asprintf(&names[i], "xsks[0] %s: %s", bound ? "bound" : "empty",
			     runs[i].c->name) < 0) {
			names[i] = NULL;
			fprintf(stderr, "test_xdp_verdict: %s\n", strerror(ENOMEM));
			goto out_free_names;
		}
		tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate_setup_teardown(
			test_row, bound ? slot_bound : slot_empty, NULL, &runs[i]);
		tests[i].name = names[i];
	}
	failed = cmocka_run_group_tests_name("xm_steer verdicts", tests, NULL, NULL);
	{
		const struct CMUnitTest probe_tests[] = {
			cmocka_unit_test_setup(test_probe_answer, slot_bound),
		};

		failed |= cmocka_run_group_tests_name("xm_steer probes", probe_tests, NULL, NULL);
	}
	failed = xm_test_exit(failed);

out_free_names:
	for (i = 0; i < ARRAY_SIZE(names); i++)
		free(names[i]);
out_close_xsk:
	xsk_close();
	if (g.umem_area)
		munmap(g.umem_area, g.umem_size);
out_destroy_skel:
	free(g.percpu);
	xdpmirror_bpf__destroy(g.skel);
	return failed;
}
