// SPDX-License-Identifier: GPL-2.0
/* Description: sends hand-made mirror frames (good or deliberately broken) through AF_PACKET. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_packet.h>

#include "frame.h"
#include "params.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: xm_rawsend --dev IF --dst MAC --src MAC [--count N] [--type N] [--seq N]\n"
		"       [--payload-len N] [--payload-off N] [--ethertype 0xNNNN] [--vlan VID]\n"
		"       [--magic 0xNNNN] [--version N] [--flags 0xNNNN] [--claim-len N] "
		"[--claim-off N]\n"
		"       [--truncate N] [--bad-crc] [--session N] [--arg0 N] [--arg1 N] [--fill "
		"BYTE]\n"
		"Builds a valid frame, then applies the requested damage, and sends it N times.\n"
		"--fill: every payload byte is BYTE (default: a counting pattern).\n");
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", 1, 0, 'd'},	    {"dst", 1, 0, 'D'},
		{"src", 1, 0, 'S'},	    {"count", 1, 0, 'c'},
		{"type", 1, 0, 't'},	    {"seq", 1, 0, 'q'},
		{"payload-len", 1, 0, 'l'}, {"payload-off", 1, 0, 'o'},
		{"ethertype", 1, 0, 'e'},   {"vlan", 1, 0, 'v'},
		{"magic", 1, 0, 'm'},	    {"version", 1, 0, 'V'},
		{"flags", 1, 0, 'f'},	    {"claim-len", 1, 0, 'L'},
		{"truncate", 1, 0, 'T'},    {"bad-crc", 0, 0, 'B'},
		{"claim-off", 1, 0, 'O'},   {"session", 1, 0, 's'},
		{"arg0", 1, 0, 'a'},	    {"arg1", 1, 0, 'b'},
		{"fill", 1, 0, 'F'},	    {0},
	};
	static __u8 frame[XM_MAX_FRAME + 64], payload[XM_MAX_FRAME];
	__u32 count = 1, type = XM_T_PING, plen = 0, poff = 0, ethertype = XM_ETH_P_MIRROR;
	__u32 session = 0, fill = 0;
	__u64 seq = 1, arg0 = 0, arg1 = 0;
	int have_fill = 0;
	__u32 vlan = 0, magic = 0, version = 0, flags = 0, claim = 0, trunc = 0, i;
	int have_magic = 0, have_version = 0, have_claim = 0, have_claim_off = 0, bad_crc = 0;
	__u32 claim_off = 0;
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
	f.flags = (__u16)flags;
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
