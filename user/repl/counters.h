/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's own counters (docs/protocol.md §11): one list, so status and tests agree. */
#ifndef XM_COUNTERS_H
#define XM_COUNTERS_H

#include <linux/types.h>

/* X(name, what it counts) */
#define XM_COUNTER_LIST(X)                                                                         \
	X(rx_frames, "packets taken from the AF_XDP RX rings")                                     \
	X(rx_bytes, "their bytes")                                                                 \
	X(rx_bad_crc, "CRC32C mismatch: dropped, the sender retransmits")                          \
	X(rx_malformed, "failed userspace parsing (XDP should have dropped it)")                   \
	X(rx_wrong_session, "frame of another or no session")                                      \
	X(rx_bad_hello, "HELLO or HELLO_ACK that cannot be used")                                  \
	X(rx_unexpected, "valid frame of a type this role or state does not take")                 \
	X(rx_bad_len, "wrong payload length for the type")                                         \
	X(rx_unaligned, "DATA offset or length not a multiple of the block size")                  \
	X(rx_bad_offset, "DATA beyond the export")                                                 \
	X(rx_out_of_window, "DATA or FLUSH at or beyond the advertised window")                    \
	X(rx_dup_done, "duplicate of a done frame: re-acked, not rewritten")                       \
	X(rx_dup_inflight, "duplicate of a frame whose write is in flight: ignored")               \
	X(rx_data, "DATA frames applied")                                                          \
	X(rx_data_bytes, "their payload bytes")                                                    \
	X(rx_flush, "FLUSH frames")                                                                \
	X(rx_ack, "ACK frames")                                                                    \
	X(rx_ack_stale, "ack information older than what we know: harmless")                       \
	X(rx_ack_invalid, "ack for a frame never sent: ends the session")                          \
	X(rx_dup_hello_ack, "duplicate HELLO_ACK")                                                 \
	X(rx_dup_flush_ack, "FLUSH_ACK for a completed FLUSH")                                     \
	X(rx_pong_stale, "PONG with a timestamp from the future")                                  \
	X(rx_bad_auth, "frame without a valid tag: dropped, changes nothing (protocol.md §14)")    \
	X(rx_auth_stale, "tagged frame of a session this box has no keys for: dropped")            \
	X(rx_replay, "tagged frame whose counter was seen before: dropped")                        \
	X(auth_failures, "handshakes that showed the peer holds another key")                      \
	X(tx_frames, "frames sent")                                                                \
	X(tx_bytes, "their bytes")                                                                 \
	X(tx_ring_full, "a send found no TX frame or ring slot; retried later")                    \
	X(tx_data, "DATA frames sent the first time")                                              \
	X(tx_data_bytes, "their payload bytes")                                                    \
	X(tx_retrans_rto, "DATA or FLUSH retransmitted on timeout")                                \
	X(tx_retrans_fast, "DATA or FLUSH retransmitted on a SACK hole (RACK)")                    \
	X(tx_flush, "FLUSH frames sent")                                                           \
	X(tx_ack, "ACK frames sent")                                                               \
	X(tx_hello, "HELLO or HELLO_ACK frames sent")                                              \
	X(tx_ping, "PING frames sent")                                                             \
	X(tx_probe, "PROBE frames sent (the peer's XDP program answers them)")                     \
	X(tx_challenge, "CHALLENGE frames sent (answers to untagged HELLOs)")                      \
	X(rx_pong, "PONG frames received")                                                         \
	X(sessions, "sessions established")                                                        \
	X(peer_timeouts,                                                                           \
	  "sessions ended: the peer's link or kernel did not answer probes in time")               \
	X(peer_silent, "sessions ended: the peer's daemon sent nothing for the ko-timeout")        \
	X(peer_stalls, "sessions ended: no write acked for the ko-timeout")                        \
	X(violations, "sessions ended: protocol violation")                                        \
	X(overlap_waits, "writes that waited for an overlapping write")                            \
	X(window_full, "passes in which the send window was closed with data queued")              \
	X(wr_zero_copy, "secondary: writes straight from the AF_XDP buffer")                       \
	X(wr_bounce, "secondary: writes through a staging copy")                                   \
	X(wr_submits, "disk writes submitted by the secondary (consecutive frames merged)")        \
	X(wr_bounce_misaligned, "secondary: bounced because a frame was not aligned")              \
	X(wr_errors, "disk write or fsync errors")                                                 \
	X(local_wr_errors, "primary: local disk write errors")                                     \
	X(writes, "primary: NBD writes admitted")                                                  \
	X(writes_degraded, "primary: writes done without the peer (their ranges are dirty)")       \
	X(flushes, "primary: NBD flushes")                                                         \
	X(flushes_local,                                                                           \
	  "primary: flushes answered at once: every completed write was durable on both")          \
	X(intent_waits, "primary: writes that waited for their bitmap bits to be durable")         \
	X(tx_resync, "primary: resync DATA frames sent the first time")                            \
	X(tx_resync_bytes, "their payload bytes")                                                  \
	X(rx_resync, "secondary: resync DATA frames applied")                                      \
	X(rx_resync_bytes, "their payload bytes")                                                  \
	X(resync_chunks, "primary: resync chunks completed")                                       \
	X(tx_csumreq, "primary: checksum requests sent (with repeats)")                            \
	X(rx_csumreq, "secondary: checksum requests answered")                                     \
	X(tx_bmreq, "primary: bitmap requests sent (with repeats)")                                \
	X(rx_bmreq, "secondary: bitmap requests answered")                                         \
	X(rx_close, "CLOSE frames: the peer ended the session on purpose")                         \
	X(meta_errors, "metadata write errors")                                                    \
	X(disk_failures, "the local disk moved to failed (docs/protocol.md §15)")                  \
	X(remote_reads, "primary: reads served from the peer's disk (READ_REQ)")                   \
	X(remote_read_retries, "primary: READ_REQs asked again")                                   \
	X(remote_read_errors, "primary: reads that found no copy to serve (EIO)")                  \
	X(backfill_bytes, "primary: bytes fetched from the peer onto a disk attached again")       \
	X(rx_read_req, "secondary: READ_REQ frames received")                                      \
	X(read_answers, "secondary: READ_REQs answered")

struct xm_counters {
#define XM_COUNTER_FIELD(name, what) __u64 name;
	XM_COUNTER_LIST(XM_COUNTER_FIELD)
#undef XM_COUNTER_FIELD
};

#endif
