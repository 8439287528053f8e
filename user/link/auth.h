/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cryptography of the authenticated link (docs/protocol.md §14), all of it from OpenSSL's
 * libcrypto: the key file, its fingerprint, HKDF session keys, AES-256-GMAC tags and the replay
 * window.  No state beyond what the caller passes; no frames, no sessions.
 */
#ifndef XM_AUTH_H
#define XM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "link/frame.h"
#include "xdpmirror.h"

/* Writes a new key of XM_AUTH_KEY_LEN random bytes to path (mode 0600; never over an existing
 * file).  Returns 0 or -errno, with a message in err. */
int xm_auth_keygen(const char *path, char *err, size_t errlen);

/* Reads a key file: a regular file of exactly XM_AUTH_KEY_LEN bytes, owned by this user, that
 * group and others may not access.  Returns 0 or -errno, with a message in err. */
int xm_auth_key_load(const char *path, __u8 key[XM_AUTH_KEY_LEN], char *err, size_t errlen);

/* The key's fingerprint (SHA-256 of a label and the key, first XM_AUTH_FP_LEN bytes), and as
 * text: 16 hex digits. */
void xm_auth_fingerprint(const __u8 key[XM_AUTH_KEY_LEN], __u8 fp[XM_AUTH_FP_LEN]);
void xm_auth_fp_text(const __u8 fp[XM_AUTH_FP_LEN], char out[2 * XM_AUTH_FP_LEN + 1]);

/* len bytes from getrandom(); returns 0 or -errno. */
int xm_auth_random(void *buf, size_t len);

/* A session's keys (§14.4): HKDF-SHA256 of the key, salted with both nonces, bound to the session
 * id.  ir: initiator -> responder, ri: responder -> initiator.  Returns 0 or -EIO. */
int xm_auth_derive(const __u8 key[XM_AUTH_KEY_LEN], const __u8 nonce_i[XM_AUTH_NONCE_LEN],
		   const __u8 nonce_r[XM_AUTH_NONCE_LEN], __u32 session, __u8 ir[XM_AUTH_KEY_LEN],
		   __u8 ri[XM_AUTH_KEY_LEN]);

/* One direction's AES-256-GMAC. */
struct xm_mac {
	void *ctx; /* EVP_CIPHER_CTX, keyed */
};

int xm_mac_init(struct xm_mac *m, const __u8 key[XM_AUTH_KEY_LEN]);
void xm_mac_free(struct xm_mac *m);
/* The tag of the n spans (AAD) under IV = 0^4 || counter.  Returns 0 or -EIO. */
int xm_mac_tag(struct xm_mac *m, __u64 counter, const struct xm_span *aad, __u32 n,
	       __u8 tag[XM_AUTH_TAG_LEN]);
/* The tag matches (compared in constant time). */
bool xm_mac_verify(struct xm_mac *m, __u64 counter, const struct xm_span *aad, __u32 n,
		   const __u8 tag[XM_AUTH_TAG_LEN]);

/* Counters seen from the peer: the highest and a window below it (RFC 4303 §3.4.3 style). */
#define XM_REPLAY_WINDOW 256
struct xm_replay {
	bool any;
	__u64 top;
	__u64 bits[XM_REPLAY_WINDOW / 64]; /* bit i: counter top - i seen */
};

/* The counter is new: neither seen nor older than the window. */
bool xm_replay_fresh(const struct xm_replay *r, __u64 counter);
/* Records a counter whose tag verified. */
void xm_replay_mark(struct xm_replay *r, __u64 counter);

#endif
