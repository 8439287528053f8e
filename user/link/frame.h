/* SPDX-License-Identifier: GPL-2.0 */
/* Building and parsing mirror frames (include/xdpmirror.h), with their CRC32C.  Pure functions. */
#ifndef XM_FRAME_H
#define XM_FRAME_H

#include <stddef.h>
#include <linux/types.h>

#include "xdpmirror.h"

/* A mirror header in host byte order. */
struct xm_frame {
	__u8 type;
	__u16 flags;
	__u16 payload_off; /* 0 when building: payload right after the header */
	__u32 payload_len;
	__u32 session;
	__u64 seq;
	__u64 arg0;
	__u64 arg1;
	__u32 credit;
	__u32 crc; /* filled by xm_frame_parse */
};

/* CRC32C (Castagnoli), zlib-style: start with 0, feed the result back in to extend. */
__u32 xm_crc32c(__u32 crc, const void *buf, size_t len);

/* What the XDP program XORs into a PROBE's crc (host order) when it answers it: docs/protocol.md
 * §9.1. */
__u32 xm_probe_crc_delta(void);

/* Encodes f into a 48-byte wire header (crc computed over header and payload; payload NULL: over
 * the header only). */
void xm_hdr_encode(struct xm_hdr *h, const struct xm_frame *f, const void *payload);

/*
 * Writes Ethernet + mirror header + payload into out.  Returns the frame length, or -ENOSPC when
 * room is too small and -EINVAL for a payload_off inside the header.
 */
int xm_frame_build(void *out, size_t room, const __u8 dst[XM_ETH_ALEN], const __u8 src[XM_ETH_ALEN],
		   __u16 ethertype, const struct xm_frame *f, const void *payload);

struct xm_span;
/*
 * Writes Ethernet + mirror header + padding up to payload_off (not the payload, which the caller
 * sends from where it is), with the CRC taken over the n payload spans.  Returns the length
 * written or -errno as xm_frame_build.
 */
int xm_frame_head(void *out, size_t room, const __u8 dst[XM_ETH_ALEN], const __u8 src[XM_ETH_ALEN],
		  __u16 ethertype, const struct xm_frame *f, const struct xm_span *payload,
		  __u32 n);

/* Where xm_frame_parse found things, for callers that want the raw bytes. */
enum xm_parse_error {
	XM_PARSE_OK = 0,
	XM_PARSE_NOT_MIRROR, /* other EtherType, or too short to tell */
	XM_PARSE_TRUNCATED,  /* mirror header incomplete */
	XM_PARSE_BAD_HEADER, /* magic, version, type, flags */
	XM_PARSE_BAD_LENGTH, /* payload outside the frame */
	XM_PARSE_BAD_CRC,    /* CRC32C mismatch */
};

/*
 * Parses one contiguous received frame: Ethernet, one optional 802.1Q tag, the mirror header, the
 * CRC.  On XM_PARSE_OK fills f, *payload (may be NULL) and the source MAC (if src is not NULL).
 */
enum xm_parse_error xm_frame_parse(const void *frame, size_t len, __u16 ethertype,
				   struct xm_frame *f, const void **payload, __u8 *src);

/* A run of bytes; a received frame may come in several (multi-buffer AF_XDP). */
struct xm_span {
	const __u8 *data;
	__u32 len;
};
#define XM_MAX_SPANS 8

/*
 * As xm_frame_parse, for a frame in n spans whose first holds the whole header.  *hdr_off gets
 * the header's offset in the frame (14, or 18 with a VLAN tag); the payload starts at
 * *hdr_off + f->payload_off.
 */
enum xm_parse_error xm_frame_parse_spans(const struct xm_span *spans, __u32 n, __u16 ethertype,
					 struct xm_frame *f, __u32 *hdr_off, __u8 *src);
/* The spans covering [off, off + len) of the concatenation of in; returns their count, or 0 when
 * the range is not inside or needs more than max_out spans. */
__u32 xm_spans_slice(const struct xm_span *in, __u32 n, __u64 off, __u64 len, struct xm_span *out,
		     __u32 max_out);

/* Copies [off, off + len) of the concatenation of in to dst; returns len, or 0 when the range is
 * not inside. */
__u32 xm_spans_copy(const struct xm_span *in, __u32 n, __u64 off, __u64 len, void *dst);

const char *xm_frame_type_name(__u8 type);

#endif
