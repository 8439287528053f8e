/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the XDP program and the xdpmirror daemon agree on: the mirror wire format, the statistics
 * layout and the names of the pinned maps.  This header is the protocol's specification; the prose
 * version with the state machines is docs/protocol.md.
 *
 * Byte order: every multi-byte field on the wire is big-endian (network byte order).  Structs are
 * packed; their sizes are asserted below.  Nothing in this file depends on the host's endianness.
 *
 * A mirror frame on the wire:
 *
 *   +------------------+-----------------+------------------+---------+-------------+
 *   | dst MAC, src MAC | [802.1Q tag, 4] | EtherType 0x88B5 | xm_hdr  | pad|payload |
 *   |       12         |   optional      |        2         |   48    |             |
 *   +------------------+-----------------+------------------+---------+-------------+
 *                                                           ^ payload_off counts from here
 *
 * An untagged header-only frame is 14 + 48 = 62 bytes, above the 60-byte Ethernet minimum, so no
 * frame ever needs padding.  Receivers still use payload_len, never the frame length, because a
 * link may pad.
 */
#ifndef XDPMIRROR_H
#define XDPMIRROR_H

#include <linux/types.h>

/* IEEE 802 Local Experimental EtherType 1; settable at load time for sites that need another. */
#define XM_ETH_P_MIRROR 0x88B5
#define XM_ETH_P_8021Q	0x8100
#define XM_ETH_ALEN	6
#define XM_ETH_HLEN	14
#define XM_VLAN_HLEN	4

#define XM_MAGIC   0x584D /* "XM" */
#define XM_VERSION 1

/* Frame types (xm_hdr.type).  0 is never valid, so an all-zero header is rejected. */
enum xm_frame_type {
	XM_T_HELLO = 1,	    /* handshake offer: arg0 = proposed session id; payload xm_hello */
	XM_T_HELLO_ACK = 2, /* answer: arg0 = cumack, arg1 = enum xm_refusal; payload xm_hello */
	XM_T_DATA = 3,	    /* one write: arg0 = disk byte offset, payload = the data */
	XM_T_ACK = 4,	    /* arg0: all seq < arg0 durable (received if XM_F_RCVD); arg1: SACK */
	XM_T_FLUSH = 5,	    /* barrier: every DATA with seq < this seq must be durable first */
	XM_T_FLUSH_ACK = 6, /* arg0 = seq of the FLUSH it completes */
	XM_T_PING = 7,	    /* heartbeat; arg0 = sender's clock in ns; arg1 = sender's cumack */
	XM_T_PONG = 8,	    /* arg0 = the PING's arg0; arg1 = sender's cumack */
	XM_T_MAX = 9,	    /* first invalid type */
};

/* xm_hdr.flags */
#define XM_F_FUA    0x0001 /* DATA: commit now, do not batch (ACKs always mean durable) */
#define XM_F_RESYNC 0x0002 /* DATA: resync traffic, not an application write */
#define XM_F_RCVD   0x0004 /* ACK: arg0/arg1 count frames received, not yet durable (protocol B) */
#define XM_F_MASK   0x0007 /* every defined flag; others must be zero */

/*
 * The mirror header, right after the EtherType (or the 802.1Q tag).
 *
 * seq numbers every frame that needs an ack (DATA, FLUSH) in one session; other types carry the
 * sender's next seq for information.  session is chosen by the primary at HELLO and echoed by the
 * secondary; a frame from another session is dropped, so a restart never mixes old and new frames.
 * crc is CRC32C (Castagnoli) over the header with crc = 0, then over payload_len payload bytes.
 */
struct xm_hdr {
	__u16 magic;	   /* XM_MAGIC */
	__u8 version;	   /* XM_VERSION */
	__u8 type;	   /* enum xm_frame_type */
	__u16 flags;	   /* XM_F_* */
	__u16 payload_off; /* payload start, in bytes from the start of this header; >= 48 */
	__u32 payload_len; /* payload bytes; 0 for header-only frames */
	__u32 session;	   /* handshake-chosen session id; 0 only in HELLO */
	__u64 seq;	   /* sequence number, see above */
	__u64 arg0;	   /* per type, see enum xm_frame_type */
	__u64 arg1;	   /* per type, see enum xm_frame_type */
	__u32 credit;	   /* with a cumack (ACK, HELLO_ACK, PING, PONG): window R - cumack */
	__u32 crc;	   /* CRC32C of header (crc = 0) and payload */
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hdr) == 48, "xm_hdr is 48 bytes on the wire");

/*
 * Largest frame the data path supports: a 9000-byte MTU plus Ethernet and one VLAN tag.  The XDP
 * program accepts payload_off + payload_len up to this much of the frame.
 */
#define XM_MAX_FRAME (9000 + XM_ETH_HLEN + XM_VLAN_HLEN)

/* Payload of HELLO and HELLO_ACK.  The answer carries the secondary's values. */
struct xm_hello {
	__u8 node_uuid[16]; /* the sender's node UUID (random, kept in its metadata) */
	__u64 disk_size;    /* bytes */
	__u32 block_size;   /* smallest write unit the sender's disk accepts (O_DIRECT alignment) */
	__u32 max_payload;  /* largest DATA payload the sender can receive in one frame */
	__u32 window;	    /* receive buffers the sender grants the peer at start */
	__u16 payload_align; /* receiver wants DATA payload to start at frame offset % this == 0 */
	__u16 proto_min;     /* oldest protocol version the sender speaks */
	__u16 proto_max;     /* newest protocol version the sender speaks */
	__u8 role;	     /* enum xm_role of the sender */
	__u8 repl_protocol;  /* 'A', 'B' or 'C' as chosen on the primary */
	__u32 reserved;	     /* zero */
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hello) == 48, "xm_hello is 48 bytes on the wire");

/* Protocol revisions this code speaks (xm_hello.proto_min/max); not the header version. */
#define XM_PROTO_MIN 1
#define XM_PROTO_MAX 1

/* HELLO_ACK arg1: why the secondary refused a session (0: accepted). */
enum xm_refusal {
	XM_REFUSE_NONE = 0,
	XM_REFUSE_VERSION = 1,	   /* no common protocol revision */
	XM_REFUSE_DISK_SIZE = 2,   /* the secondary's disk is smaller than the export */
	XM_REFUSE_BLOCK_SIZE = 3,  /* block size larger than the payload one frame can carry */
	XM_REFUSE_PARAM = 4,	   /* an invalid HELLO parameter */
	XM_REFUSE_ROLE = 5,	   /* both sides claim the same role */
	XM_REFUSE_DISK_FAILED = 6, /* the secondary's disk has failed */
	XM_REFUSE_MAX,
};

enum xm_role {
	XM_ROLE_NONE = 0,
	XM_ROLE_PRIMARY = 1,
	XM_ROLE_SECONDARY = 2,
};

/*
 * Why the XDP program dropped a mirror frame.  Each reason is one field of struct xm_drop_counters,
 * in this order, so the program can index the struct by reason and bpftool can still print names.
 */
enum xm_drop_reason {
	XM_DROP_NOT_FOR_US = 0, /* destination MAC is not this NIC */
	XM_DROP_BAD_PEER,	/* source MAC is not the configured peer */
	XM_DROP_TRUNCATED,	/* frame ends inside the Ethernet, VLAN or mirror header */
	XM_DROP_BAD_MAGIC,	/* magic is not XM_MAGIC */
	XM_DROP_BAD_VERSION,	/* version is not XM_VERSION */
	XM_DROP_BAD_TYPE,	/* type is 0 or >= XM_T_MAX, or unknown flags are set */
	XM_DROP_BAD_LENGTH,	/* payload_off < 48, or payload runs past the frame end */
	XM_DROP_NO_SOCKET,	/* no AF_XDP socket on this RX queue (daemon not running) */
	XM_DROP_REASON_MAX,
};

struct xm_counter {
	__u64 frames;
	__u64 bytes;
};

/* Accepted mirror frames per type, in enum xm_frame_type order starting at XM_T_HELLO. */
struct xm_type_counters {
	struct xm_counter hello;
	struct xm_counter hello_ack;
	struct xm_counter data;
	struct xm_counter ack;
	struct xm_counter flush;
	struct xm_counter flush_ack;
	struct xm_counter ping;
	struct xm_counter pong;
};

/* Dropped mirror frames per reason, in enum xm_drop_reason order. */
struct xm_drop_counters {
	struct xm_counter not_for_us;
	struct xm_counter bad_peer;
	struct xm_counter truncated;
	struct xm_counter bad_magic;
	struct xm_counter bad_version;
	struct xm_counter bad_type;
	struct xm_counter bad_length;
	struct xm_counter no_socket;
};

/*
 * The value of the per-CPU stats map (one element, key 0).  Every frame the program sees is counted
 * exactly once in pass, redirected or one drop reason; redirect_fail counts frames whose redirect
 * the kernel refused (they are dropped).
 */
struct xm_stats {
	struct xm_counter seen;		 /* every frame the program ran on */
	struct xm_counter pass;		 /* other EtherTypes, handed to the stack */
	struct xm_counter redirected;	 /* mirror frames handed to the AF_XDP socket */
	struct xm_counter redirect_fail; /* bpf_redirect_map() failed */
	struct xm_type_counters rx;	 /* redirected frames by type */
	struct xm_drop_counters drop;	 /* dropped mirror frames by reason */
};

_Static_assert(sizeof(struct xm_type_counters) == (XM_T_MAX - 1) * sizeof(struct xm_counter),
	       "one type counter per frame type");
_Static_assert(sizeof(struct xm_drop_counters) == XM_DROP_REASON_MAX * sizeof(struct xm_counter),
	       "one drop counter per reason");

/* Map and program names (<= 15 characters: the kernel truncates object names there). */
#define XM_MAP_STATS "stats"
#define XM_MAP_XSKS  "xsks"
#define XM_PROG_NAME "xm_steer"

/* Pinned maps live in one bpffs directory per interface. */
#define XM_BPFFS_ROOT "/sys/fs/bpf"
#define XM_PIN_ROOT   XM_BPFFS_ROOT "/xdpmirror"

/* Run-time state: lock, daemon state and (later) the NBD socket, one set per interface. */
#define XM_RUN_DIR "/run/xdpmirror"

/* The XDP program serves up to this many RX queues (XSKMAP size). */
#define XM_MAX_QUEUES 64

#endif /* XDPMIRROR_H */
