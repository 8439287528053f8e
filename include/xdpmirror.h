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
	/* Resync, verify and session control (docs/resync.md).  Not numbered unless noted. */
	XM_T_BMREQ = 9,	   /* primary asks for the secondary's bitmap: arg0 = first 64-bit word */
	XM_T_BITMAP = 10,  /* answer: arg0 = first word, arg1 = sender's nbits; payload u64 words */
	XM_T_CSUMREQ = 11, /* primary asks for checksums: arg0 = offset, arg1 = length (bytes) */
	XM_T_CSUM = 12,	   /* answer: arg0, arg1 as asked; payload u32 CRC32C per XM_CSUM_BLOCK */
	XM_T_SETGEN = 13,  /* numbered, like FLUSH: resync complete, arg0 = generation to adopt;
			    * answered by FLUSH_ACK once durable and written to the metadata */
	XM_T_CLOSE = 14,   /* the sender ends the session on purpose: arg0 = enum xm_close_reason */
	/* Failure detection (revision 3, docs/protocol.md §9): the peer's XDP program answers a
	 * PROBE itself, so the answer does not wait for the peer's daemon to be scheduled. */
	XM_T_PROBE = 15,     /* arg0 = sender's clock in ns; header only */
	XM_T_PROBE_ACK = 16, /* the PROBE with type and MACs changed, sent back by XDP_TX */
	/* Authentication (revision 4, docs/protocol.md §14). */
	XM_T_CHALLENGE = 17, /* answer to an untagged HELLO: session = its arg0, arg1 = enum
			      * xm_auth_answer; payload xm_challenge; tagged when arg1 is 0 */
	XM_T_READ_REQ = 18, /* primary asks for disk bytes: arg0 = offset, arg1 = length (§15.6) */
	XM_T_READ_DATA = 19, /* answer: arg0 = offset of this piece, arg1 = the request's offset */
	XM_T_MAX = 20,	     /* first invalid type */
};

/* Checksums (CSUM) cover this many bytes each; a CSUMREQ length is a multiple of it. */
#define XM_CSUM_BLOCK 4096u
/* The longest range one CSUMREQ may ask for (its answer: 4 bytes per XM_CSUM_BLOCK). */
#define XM_CSUM_MAX_LEN (1u << 20)

/* XM_T_CLOSE arg0 */
enum xm_close_reason {
	XM_CLOSE_DETACH = 1,	    /* the sender's daemon is detaching */
	XM_CLOSE_DEMOTE = 2,	    /* the primary is demoting itself */
	XM_CLOSE_PROMOTE = 3,	    /* the secondary is promoting itself (forced) */
	XM_CLOSE_DISK_FAILED = 4,   /* the sender's disk failed (docs/protocol.md §15.5) */
	XM_CLOSE_DISK_DETACHED = 5, /* the sender's operator detached its disk */
};

/* The longest range one READ_REQ may ask for (answered in pieces of the max payload). */
#define XM_READ_MAX_LEN (1u << 20)

/* xm_hdr.flags */
#define XM_F_FUA    0x0001 /* DATA: commit now, do not batch (ACKs always mean durable) */
#define XM_F_RESYNC 0x0002 /* DATA: resync traffic, not an application write */
#define XM_F_RCVD   0x0004 /* ACK: arg0/arg1 count frames received, not yet durable (protocol B) */
#define XM_F_AUTH   0x0008 /* a struct xm_auth_trailer follows the payload; crc is 0 */
#define XM_F_MASK   0x000f /* every defined flag; others must be zero */

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

/* Protocol revisions this code speaks (xm_hello.proto_min/max); not the header version.
 * Revision 2: HELLO and HELLO_ACK carry struct xm_hello_gen after struct xm_hello.
 * Revision 3: PROBE and PROBE_ACK, answered by the XDP program (docs/protocol.md §9).
 * Revision 4: authentication: struct xm_hello_auth after xm_hello_gen in HELLO, CHALLENGE, tagged
 * frames (XM_F_AUTH) (docs/protocol.md §14).
 * Revision 5: READ_REQ and READ_DATA, CLOSE for a failed or detached disk (docs/protocol.md §15).
 */
#define XM_PROTO_MIN 5
#define XM_PROTO_MAX 5

/* Disk states (DRBD's names): what a box knows about its own copy. */
enum xm_disk_state {
	XM_DISK_DISKLESS = 0,
	XM_DISK_INCONSISTENT = 1, /* a resync target that has not finished: not usable */
	XM_DISK_OUTDATED = 2,	  /* consistent, but known to miss writes the peer has */
	XM_DISK_UPTODATE = 3,
};

/* What a handshake decides about the data (xm_hello_gen.decision in HELLO_ACK). */
enum xm_sync_decision {
	XM_SYNC_NONE = 0,	 /* both hold the same data */
	XM_SYNC_BITMAP = 1,	 /* resync the union of both bitmaps, primary -> secondary */
	XM_SYNC_FULL = 2,	 /* the secondary's data is unrelated or unknown: every region */
	XM_SYNC_SPLIT_BRAIN = 3, /* both wrote since they parted: nothing moves */
	XM_SYNC_PEER_NEWER = 4,	 /* the secondary wrote since they parted, the primary did not */
	XM_SYNC_UNRELATED = 5,	 /* no common generation at all */
	XM_SYNC_MAX,
};

/*
 * Payload of HELLO and HELLO_ACK after struct xm_hello (revision 2).  Generations are 64-bit
 * random identifiers of a data state, as DRBD's UUIDs: current names the data now, bitmap the state
 * the sender's bitmap counts changes from (0: none), history the two before.
 */
struct xm_hello_gen {
	__u64 current_gen;
	__u64 bitmap_gen;
	__u64 history[2];
	__u64 dirty_bits;   /* bits set in the sender's bitmap */
	__u32 bitmap_block; /* bytes per bitmap bit */
	__u8 disk_state;    /* enum xm_disk_state */
	__u8 flags;	    /* XM_HG_* */
	__u8 decision;	    /* HELLO_ACK: enum xm_sync_decision the secondary took; HELLO: 0 */
	__u8 reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hello_gen) == 48, "xm_hello_gen is 48 bytes on the wire");

/* The whole HELLO and HELLO_ACK payload of protocol revision 2. */
struct xm_hello2 {
	struct xm_hello h;
	struct xm_hello_gen g;
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hello2) == 96, "xm_hello2 is 96 bytes on the wire");

/*
 * Authentication (revision 4, docs/protocol.md §14).  HELLO carries struct xm_hello_auth after
 * struct xm_hello2; its answer is a CHALLENGE; every later frame of the session carries
 * XM_F_AUTH and this trailer right after its payload (at payload_off + payload_len).
 */
#define XM_AUTH_KEY_LEN	  32 /* the shared key, and each session key */
#define XM_AUTH_NONCE_LEN 32
#define XM_AUTH_TAG_LEN	  16
#define XM_AUTH_FP_LEN	  8 /* key fingerprint: SHA-256("xdpmirror key fingerprint" || key) */

enum xm_auth_alg {
	XM_AUTH_NONE = 0,	 /* --no-auth: frames in clear, CRC32C */
	XM_AUTH_AES256_GMAC = 1, /* AES-256-GCM with no plaintext: a tag over header and payload */
};

struct xm_hello_auth {
	__u8 alg;   /* enum xm_auth_alg of the sender */
	__u8 flags; /* zero */
	__u16 reserved;
	__u32 reserved2;
	__u8 nonce[XM_AUTH_NONCE_LEN];	  /* the initiator's, fresh per handshake */
	__u8 fingerprint[XM_AUTH_FP_LEN]; /* of the sender's key; zero without one */
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hello_auth) == 48, "xm_hello_auth is 48 bytes on the wire");

/* The whole HELLO payload of protocol revision 4 (HELLO_ACK stays a struct xm_hello2). */
struct xm_hello4 {
	struct xm_hello2 h2;
	struct xm_hello_auth auth;
} __attribute__((packed));

_Static_assert(sizeof(struct xm_hello4) == 144, "xm_hello4 is 144 bytes on the wire");

/* CHALLENGE arg1: 0, or why the responder cannot tag its answer. */
enum xm_auth_answer {
	XM_AUTH_OK = 0,		  /* a challenge: payload nonce_s, frame tagged */
	XM_AUTH_NO_KEY = 1,	  /* the responder runs --no-auth */
	XM_AUTH_KEY_REQUIRED = 2, /* the HELLO had no key (alg 0), the responder requires one */
	XM_AUTH_BAD_ALG = 3,	  /* the responder does not know the HELLO's alg */
	XM_AUTH_ANSWER_MAX,
};

struct xm_challenge {
	__u8 alg;
	__u8 flags;
	__u16 reserved;
	__u32 reserved2;
	__u8 nonce[XM_AUTH_NONCE_LEN]; /* the responder's, fresh per handshake; zero in a refusal */
	__u8 fingerprint[XM_AUTH_FP_LEN]; /* of the responder's key; zero without one */
} __attribute__((packed));

_Static_assert(sizeof(struct xm_challenge) == 48, "xm_challenge is 48 bytes on the wire");

struct xm_auth_trailer {
	__u64 counter; /* the sender's frame number in this session and direction */
	__u8 tag[XM_AUTH_TAG_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct xm_auth_trailer) == 24, "xm_auth_trailer is 24 bytes on the wire");

/* HELLO_ACK: the operator told the secondary to drop its changes (resolve --discard-local). */
#define XM_HG_DISCARD_MINE 0x01
/* HELLO: the primary ended the last session on a protocol violation; the secondary counts the
 * regions it wrote in that session as out of sync (revision 3, docs/resync.md §8a). */
#define XM_HG_PEER_SUSPECT 0x02

/* HELLO_ACK arg1: why the secondary refused a session (0: accepted). */
enum xm_refusal {
	XM_REFUSE_NONE = 0,
	XM_REFUSE_VERSION = 1,	   /* no common protocol revision */
	XM_REFUSE_DISK_SIZE = 2,   /* the secondary's disk is smaller than the export */
	XM_REFUSE_BLOCK_SIZE = 3,  /* block size larger than the payload one frame can carry */
	XM_REFUSE_PARAM = 4,	   /* an invalid HELLO parameter */
	XM_REFUSE_ROLE = 5,	   /* both sides claim the same role */
	XM_REFUSE_DISK_FAILED = 6, /* the secondary's disk has failed */
	XM_REFUSE_SPLIT_BRAIN = 7, /* both sides wrote while apart */
	XM_REFUSE_PEER_NEWER = 8,  /* the secondary has writes the primary lacks */
	XM_REFUSE_UNRELATED = 9,   /* the two disks share no generation */
	XM_REFUSE_SAME_NODE = 10,  /* the peer's node UUID is ours: cloned or shared metadata */
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
	struct xm_counter bmreq;
	struct xm_counter bitmap;
	struct xm_counter csumreq;
	struct xm_counter csum;
	struct xm_counter setgen;
	struct xm_counter close;
	struct xm_counter probe;
	struct xm_counter probe_ack;
	struct xm_counter challenge;
	struct xm_counter read_req;
	struct xm_counter read_data;
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
 * exactly once in pass, redirected, redirect_fail (the kernel refused the redirect; dropped),
 * answered, consumed or one drop reason.
 */
struct xm_stats {
	struct xm_counter seen;		 /* every frame the program ran on */
	struct xm_counter pass;		 /* other EtherTypes, handed to the stack */
	struct xm_counter redirected;	 /* mirror frames handed to the AF_XDP socket */
	struct xm_counter redirect_fail; /* bpf_redirect_map() failed */
	struct xm_counter answered;	 /* PROBEs turned into PROBE_ACKs and sent back (XDP_TX) */
	struct xm_counter consumed;	 /* PROBE_ACKs: recorded in the alive map, then dropped */
	struct xm_type_counters rx;	 /* redirected, answered and consumed frames by type */
	struct xm_drop_counters drop;	 /* dropped mirror frames by reason */
	struct xm_counter rx_resync; /* redirected DATA frames with XM_F_RESYNC (also in rx.data) */
};

_Static_assert(sizeof(struct xm_type_counters) == (XM_T_MAX - 1) * sizeof(struct xm_counter),
	       "one type counter per frame type");
_Static_assert(sizeof(struct xm_drop_counters) == XM_DROP_REASON_MAX * sizeof(struct xm_counter),
	       "one drop counter per reason");

/*
 * The value of the alive map (one element, key 0; mmap-able, so the daemon reads it without a
 * system call): when frames from the peer arrived, in bpf_ktime_get_ns() time (CLOCK_MONOTONIC).
 * Written with plain stores from any CPU; a reader may see one field of an answer older than the
 * other, which costs at most one probe interval (docs/protocol.md §9.1).
 */
struct xm_alive {
	__u64 peer_rx_ns;    /* any frame from the peer that passed the checks */
	__u64 daemon_rx_ns;  /* the same, but not a PROBE_ACK: the peer's daemon sent it */
	__u64 probe_echo_ns; /* arg0 of the latest PROBE_ACK: when we sent that PROBE */
	__u64 probe_ack_ns;  /* when that PROBE_ACK arrived */
};

/* Map and program names (<= 15 characters: the kernel truncates object names there). */
#define XM_MAP_STATS "stats"
#define XM_MAP_XSKS  "xsks"
#define XM_MAP_ALIVE "alive"
#define XM_PROG_NAME "xm_steer"

/* Pinned maps live in one bpffs directory per interface. */
#define XM_BPFFS_ROOT "/sys/fs/bpf"
#define XM_PIN_ROOT   XM_BPFFS_ROOT "/xdpmirror"

/* Run-time state: lock, daemon state and (later) the NBD socket, one set per interface. */
#define XM_RUN_DIR "/run/xdpmirror"

/* The XDP program serves up to this many RX queues (XSKMAP size). */
#define XM_MAX_QUEUES 64

#endif /* XDPMIRROR_H */
