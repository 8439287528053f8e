// SPDX-License-Identifier: GPL-2.0
/* Description: sends hand-made mirror frames (good or deliberately broken) through AF_PACKET, or
 * with --queue through an AF_XDP socket bound to one TX queue. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include "link/frame.h"
#include "conf/params.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: xm_rawsend --dev IF --dst MAC --src MAC [--count N] [--type N] [--seq N]\n"
		"       [--payload-len N] [--payload-off N] [--ethertype 0xNNNN] [--vlan VID]\n"
		"       [--magic 0xNNNN] [--version N] [--flags 0xNNNN] [--claim-len N] "
		"[--claim-off N]\n"
		"       [--truncate N] [--bad-crc] [--session N] [--arg0 N] [--arg1 N] [--fill "
		"BYTE]\n"
		"       [--queue N] [--random-tag]\n"
		"Builds a valid frame, then applies the requested damage, and sends it N times.\n"
		"--random-tag: set XM_F_AUTH (crc 0) and append a trailer of 24 random bytes.\n"
		"--fill: every payload byte is BYTE (default: a counting pattern).\n"
		"--queue: send on TX queue N through an AF_XDP socket (copy mode, the queue must\n"
		"         be free); without it AF_PACKET lets the kernel pick the queue.\n");
}

static int num(const char *s, __u32 max, __u32 *out)
{
	if (xm_parse_u32(s, 0, max, out)) {
		fprintf(stderr, "xm_rawsend: bad number '%s'\n", s);
		return -1;
	}
	return 0;
}

static int num64(const char *s, __u64 *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "xm_rawsend: bad number '%s'\n", s);
		return -1;
	}
	return 0;
}

/* UMEM chunks, and so frames in flight: each chunk holds a copy of the one frame. */
#define XSK_CHUNKS   64
#define XSK_CHUNK    XSK_UMEM__DEFAULT_FRAME_SIZE
#define XSK_IDLE_MAX 2000 /* 1 ms polls without a completion before giving up */

/* AF_PACKET gives no say over the TX queue (the kernel hashes or uses XPS); an AF_XDP socket sends
 * on exactly the queue it is bound to.  Returns once the kernel has completed every frame. */
static int send_on_queue(const char *dev, __u32 queue, const __u8 *frame, int len, __u32 count)
{
	struct xsk_umem_config ucfg = {
		.fill_size = XSK_CHUNKS,
		.comp_size = XSK_CHUNKS,
		.frame_size = XSK_CHUNK,
	};
	struct xsk_socket_config scfg = {
		.tx_size = XSK_CHUNKS,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	struct timespec ms = {0, 1000 * 1000};
	struct xsk_umem *umem = NULL;
	struct xsk_socket *xsk = NULL;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq;
	__u32 queued = 0, done = 0, idle = 0, i, idx, n;
	__u8 *area;
	int err, ret = 1;

	if (len > XSK_CHUNK) {
		fprintf(stderr, "xm_rawsend: --queue sends frames of at most %d bytes\n",
			XSK_CHUNK);
		return 1;
	}
	area = mmap(NULL, (size_t)XSK_CHUNKS * XSK_CHUNK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		perror("xm_rawsend: mmap");
		return 1;
	}
	for (i = 0; i < XSK_CHUNKS; i++)
		memcpy(area + (size_t)i * XSK_CHUNK, frame, (size_t)len);
	err = xsk_umem__create(&umem, area, (__u64)XSK_CHUNKS * XSK_CHUNK, &fq, &cq, &ucfg);
	if (!err)
		err = xsk_socket__create(&xsk, dev, queue, umem, NULL, &tx, &scfg);
	if (err) {
		fprintf(stderr, "xm_rawsend: AF_XDP socket on %s queue %u: %s\n", dev, queue,
			strerror(-err));
		goto out;
	}
	while (done < count) {
		n = xsk_ring_cons__peek(&cq, XSK_CHUNKS, &idx);
		xsk_ring_cons__release(&cq, n);
		done += n;
		idle = n ? 0 : idle + 1;
		/* Every chunk holds the same frame, so any chunk may go out again. */
		n = XSK_CHUNKS - (queued - done);
		if (n > count - queued)
			n = count - queued;
		if (n && xsk_ring_prod__reserve(&tx, n, &idx) == n) {
			for (i = 0; i < n; i++) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&tx, idx + i);

				d->addr = (__u64)((queued + i) % XSK_CHUNKS) * XSK_CHUNK;
				d->len = (__u32)len;
				d->options = 0;
			}
			xsk_ring_prod__submit(&tx, n);
			queued += n;
		}
		/* Copy mode transmits in sendto(); EAGAIN and EBUSY only mean "again". */
		if (sendto(xsk_socket__fd(xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
		    errno != EAGAIN && errno != EBUSY && errno != ENOBUFS) {
			perror("xm_rawsend: AF_XDP sendto");
			goto out;
		}
		if (idle > XSK_IDLE_MAX) {
			fprintf(stderr, "xm_rawsend: %u of %u frames completed on %s queue %u\n",
				done, count, dev, queue);
			goto out;
		}
		if (idle)
			nanosleep(&ms, NULL);
	}
	ret = 0;
out:
	if (xsk)
		xsk_socket__delete(xsk);
	if (umem)
		xsk_umem__delete(umem);
	munmap(area, (size_t)XSK_CHUNKS * XSK_CHUNK);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", 1, 0, 'd'},	    {"dst", 1, 0, 'D'},		{"src", 1, 0, 'S'},
		{"count", 1, 0, 'c'},	    {"type", 1, 0, 't'},	{"seq", 1, 0, 'q'},
		{"payload-len", 1, 0, 'l'}, {"payload-off", 1, 0, 'o'}, {"ethertype", 1, 0, 'e'},
		{"vlan", 1, 0, 'v'},	    {"magic", 1, 0, 'm'},	{"version", 1, 0, 'V'},
		{"flags", 1, 0, 'f'},	    {"claim-len", 1, 0, 'L'},	{"truncate", 1, 0, 'T'},
		{"bad-crc", 0, 0, 'B'},	    {"claim-off", 1, 0, 'O'},	{"session", 1, 0, 's'},
		{"arg0", 1, 0, 'a'},	    {"arg1", 1, 0, 'b'},	{"fill", 1, 0, 'F'},
		{"queue", 1, 0, 'Q'},	    {"random-tag", 0, 0, 'R'},	{0},
	};
	static __u8 frame[XM_MAX_FRAME + 64], payload[XM_MAX_FRAME];
	__u32 count = 1, type = XM_T_PING, plen = 0, poff = 0, ethertype = XM_ETH_P_MIRROR;
	__u32 session = 0, fill = 0;
	__u64 seq = 1, arg0 = 0, arg1 = 0;
	int have_fill = 0;
	__u32 vlan = 0, magic = 0, version = 0, flags = 0, claim = 0, trunc = 0, i;
	int have_magic = 0, have_version = 0, have_claim = 0, have_claim_off = 0, bad_crc = 0;
	__u32 claim_off = 0, queue = 0;
	int have_queue = 0;
	int random_tag = 0;
	int c, fd, len;
	__u8 dst[6] = {0}, src[6] = {0};
	const char *dev = NULL;
	struct sockaddr_ll sll = {.sll_family = AF_PACKET};
	struct xm_frame f = {0};
	struct xm_hdr *h;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'D':
			err = xm_parse_mac(optarg, dst);
			break;
		case 'S':
			err = xm_parse_mac(optarg, src);
			break;
		case 'c':
			err = num(optarg, 1000000, &count);
			break;
		case 't':
			err = num(optarg, 255, &type);
			break;
		case 'q':
			err = num64(optarg, &seq);
			break;
		case 'l':
			err = num(optarg, XM_MAX_FRAME, &plen);
			break;
		case 'o':
			err = num(optarg, 0xffff, &poff);
			break;
		case 'e':
			err = num(optarg, 0xffff, &ethertype);
			break;
		case 'v':
			err = num(optarg, 4095, &vlan);
			break;
		case 'm':
			err = num(optarg, 0xffff, &magic);
			have_magic = 1;
			break;
		case 'V':
			err = num(optarg, 255, &version);
			have_version = 1;
			break;
		case 'f':
			err = num(optarg, 0xffff, &flags);
			break;
		case 'L':
			err = num(optarg, UINT32_MAX, &claim);
			have_claim = 1;
			break;
		case 'T':
			err = num(optarg, sizeof(frame), &trunc);
			break;
		case 'B':
			bad_crc = 1;
			break;
		case 'O':
			err = num(optarg, 0xffff, &claim_off);
			have_claim_off = 1;
			break;
		case 's':
			err = num(optarg, UINT32_MAX, &session);
			break;
		case 'a':
			err = num64(optarg, &arg0);
			break;
		case 'b':
			err = num64(optarg, &arg1);
			break;
		case 'F':
			err = num(optarg, 0xff, &fill);
			have_fill = 1;
			break;
		case 'Q':
			err = num(optarg, UINT16_MAX, &queue);
			have_queue = 1;
			break;
		case 'R':
			random_tag = 1;
			break;
		default:
			usage();
			return 2;
		}
		if (err) {
			usage();
			return 2;
		}
	}
	if (!dev) {
		usage();
		return 2;
	}
	for (i = 0; i < plen; i++)
		payload[i] = have_fill ? (__u8)fill : (__u8)(i * 7 + 1);
	f.type = (__u8)type;
	f.flags = (__u16)flags | (random_tag ? XM_F_AUTH : 0);
	f.seq = seq;
	f.session = session;
	f.arg0 = arg0;
	f.arg1 = arg1;
	f.payload_off = (__u16)poff;
	f.payload_len = plen;
	len = xm_frame_build(frame, sizeof(frame) - 4, dst, src, (__u16)ethertype, &f, payload);
	if (len < 0) {
		fprintf(stderr, "xm_rawsend: cannot build frame: %s\n", strerror(-len));
		return 1;
	}
	if (random_tag) {
		if ((size_t)len + sizeof(struct xm_auth_trailer) > sizeof(frame) - 4 ||
		    getrandom(frame + len, sizeof(struct xm_auth_trailer), 0) !=
			    (ssize_t)sizeof(struct xm_auth_trailer)) {
			fprintf(stderr, "xm_rawsend: no room or no randomness for the tag\n");
			return 1;
		}
		len += (int)sizeof(struct xm_auth_trailer);
	}
	h = (struct xm_hdr *)(frame + XM_ETH_HLEN);
	/* Damage after the CRC was computed: what a broken or hostile sender would put on the wire.
	 */
	if (have_magic)
		h->magic = htons((__u16)magic);
	if (have_version)
		h->version = (__u8)version;
	if (have_claim)
		h->payload_len = htonl(claim);
	if (have_claim_off)
		h->payload_off = htons((__u16)claim_off);
	if (bad_crc)
		frame[len - 1] ^= 0x01;
	if (vlan) {
		__u16 tpid = htons(0x8100), tci = htons((__u16)vlan);

		memmove(frame + 16, frame + 12, (size_t)len - 12);
		memcpy(frame + 12, &tpid, 2);
		memcpy(frame + 14, &tci, 2);
		len += 4;
	}
	if (trunc && (int)trunc < len)
		len = (int)trunc;
	if (have_queue)
		return send_on_queue(dev, queue, frame, len, count);

	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("xm_rawsend: socket");
		return 1;
	}
	sll.sll_ifindex = (int)if_nametoindex(dev);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "xm_rawsend: '%s': no such interface\n", dev);
		return 1;
	}
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dst, 6);
	for (i = 0; i < count; i++) {
		if (sendto(fd, frame, (size_t)len, 0, (struct sockaddr *)&sll, sizeof(sll)) !=
		    len) {
			perror("xm_rawsend: sendto");
			return 1;
		}
	}
	close(fd);
	return 0;
}
