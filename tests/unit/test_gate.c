// SPDX-License-Identifier: GPL-2.0
/* Description: the authenticated link (docs/protocol.md §14): key files, fingerprint, HKDF session
 * keys, GMAC tags and the replay window (link/auth.c) checked against OpenSSL one-shots, then two
 * gates (link/gate.c) in memory running the handshake, tags, replays, wrong and missing keys,
 * version refusals and forged HELLOs. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "xm_test.h"
#include "link/auth.h"
#include "link/frame.h"
#include "link/gate.h"
#include "repl/counters.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define HDR_LEN	    ((__u32)sizeof(struct xm_hdr)) /* 48 */
#define HDR_OFF	    XM_ETH_HLEN			   /* untagged Ethernet: mirror header at 14 */
#define TRAILER_LEN ((__u32)sizeof(struct xm_auth_trailer))
#define MAX_OUT	    128
#define FRAME_ROOM  1024
#define DATA_LEN    100

#define FP_LABEL  "xdpmirror key fingerprint"
#define KDF_LABEL "xdpmirror v4 keys"

static const __u8 p_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x01};
static const __u8 s_mac[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x02};

static __u8 key_a[XM_AUTH_KEY_LEN], key_b[XM_AUTH_KEY_LEN];

/* ---- independent references (OpenSSL one-shots, following the text of §14.2 and §14.4) ---- */

static void ref_fingerprint(const __u8 key[XM_AUTH_KEY_LEN], __u8 fp[XM_AUTH_FP_LEN])
{
	__u8 msg[sizeof(FP_LABEL) - 1 + XM_AUTH_KEY_LEN], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memcpy(msg, FP_LABEL, sizeof(FP_LABEL) - 1);
	memcpy(msg + sizeof(FP_LABEL) - 1, key, XM_AUTH_KEY_LEN);
	assert_int_equal(EVP_Digest(msg, sizeof(msg), md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(mdlen, 32);
	memcpy(fp, md, XM_AUTH_FP_LEN);
}

/* RFC 5869 by hand from HMAC-SHA256: PRK = HMAC(salt, IKM), T(i) = HMAC(PRK, T(i-1) | info | i). */
static void ref_derive(const __u8 key[XM_AUTH_KEY_LEN], const __u8 *nonce_i, const __u8 *nonce_r,
		       __u32 session, __u8 ir[XM_AUTH_KEY_LEN], __u8 ri[XM_AUTH_KEY_LEN])
{
	__u8 salt[2 * XM_AUTH_NONCE_LEN], prk[32], msg[32 + sizeof(KDF_LABEL) - 1 + 4 + 1];
	size_t info_len = sizeof(KDF_LABEL) - 1 + 4;
	__be32 sid = htobe32(session);
	unsigned int len = 0;

	memcpy(salt, nonce_i, XM_AUTH_NONCE_LEN);
	memcpy(salt + XM_AUTH_NONCE_LEN, nonce_r, XM_AUTH_NONCE_LEN);
	assert_non_null(HMAC(EVP_sha256(), salt, sizeof(salt), key, XM_AUTH_KEY_LEN, prk, &len));
	/* T(1) = HMAC(PRK, info | 0x01) */
	memcpy(msg, KDF_LABEL, sizeof(KDF_LABEL) - 1);
	memcpy(msg + sizeof(KDF_LABEL) - 1, &sid, 4);
	msg[info_len] = 1;
	assert_non_null(HMAC(EVP_sha256(), prk, sizeof(prk), msg, info_len + 1, ir, &len));
	/* T(2) = HMAC(PRK, T(1) | info | 0x02) */
	memcpy(msg, ir, 32);
	memcpy(msg + 32, KDF_LABEL, sizeof(KDF_LABEL) - 1);
	memcpy(msg + 32 + sizeof(KDF_LABEL) - 1, &sid, 4);
	msg[32 + info_len] = 2;
	assert_non_null(HMAC(EVP_sha256(), prk, sizeof(prk), msg, 32 + info_len + 1, ri, &len));
}

/* AES-256-GCM with no plaintext, IV = 0^4 | counter (big-endian), contiguous AAD. */
static void ref_gmac(const __u8 key[XM_AUTH_KEY_LEN], __u64 counter, const __u8 *aad, size_t len,
		     __u8 tag[XM_AUTH_TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	__u8 iv[12] = {0};
	__be64 be = htobe64(counter);
	int out;

	memcpy(iv + 4, &be, 8);
	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &out, aad, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, NULL, &out), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, XM_AUTH_TAG_LEN, tag), 1);
	EVP_CIPHER_CTX_free(c);
}

/* ---- key files ---------------------------------------------------------------------------- */

static char tmpdir[64];

static void path_in_tmp(char *out, size_t room, const char *name)
{
	snprintf(out, room, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static int tmpdir_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/xm_test_auth.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmpdir_teardown(void **state)
{
	static const char *const names[] = {"key",  "key644", "key640", "key604", "short",
					    "long", "link",   "dir",	"good"};
	char path[128];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		path_in_tmp(path, sizeof(path), names[i]);
		if (unlink(path))
			rmdir(path);
	}
	return rmdir(tmpdir);
}

static void test_keygen(void **state)
{
	__u8 loaded[XM_AUTH_KEY_LEN], onfile[XM_AUTH_KEY_LEN + 1];
	char path[128], err[256] = "";
	struct stat st;
	int fd;

	path_in_tmp(path, sizeof(path), "key");
	assert_int_equal(xm_auth_keygen(path, err, sizeof(err)), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, XM_AUTH_KEY_LEN);

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, onfile, sizeof(onfile)), XM_AUTH_KEY_LEN);
	close(fd);

	/* Never over an existing key, and the old one stays. */
	assert_int_equal(xm_auth_keygen(path, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "never overwritten"));
	assert_int_equal(xm_auth_key_load(path, loaded, err, sizeof(err)), 0);
	assert_memory_equal(loaded, onfile, XM_AUTH_KEY_LEN);

	/* Two keys are not the same bytes (getrandom). */
	path_in_tmp(path, sizeof(path), "good");
	assert_int_equal(xm_auth_keygen(path, err, sizeof(err)), 0);
	assert_int_equal(xm_auth_key_load(path, loaded, err, sizeof(err)), 0);
	assert_memory_not_equal(loaded, onfile, XM_AUTH_KEY_LEN);
}

static void test_key_load(void **state)
{
	static const struct {
		const char *name;
		mode_t mode;
	} open_modes[] = {{"key644", 0644}, {"key640", 0640}, {"key604", 0604}};
	__u8 key[XM_AUTH_KEY_LEN], bytes[XM_AUTH_KEY_LEN + 1], target[128];
	char path[128], err[256];
	unsigned int i;

	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (__u8)(0xa0 + i);

	/* A good file: exactly its bytes. */
	path_in_tmp(path, sizeof(path), "key");
	write_file(path, bytes, XM_AUTH_KEY_LEN, 0600);
	memset(key, 0, sizeof(key));
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), 0);
	assert_memory_equal(key, bytes, XM_AUTH_KEY_LEN);

	/* Group or others may read it. */
	for (i = 0; i < ARRAY_SIZE(open_modes); i++) {
		path_in_tmp(path, sizeof(path), open_modes[i].name);
		write_file(path, bytes, XM_AUTH_KEY_LEN, open_modes[i].mode);
		err[0] = 0;
		assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -EPERM);
		assert_non_null(strstr(err, "chmod 600"));
	}

	/* 16 bytes, and 33. */
	path_in_tmp(path, sizeof(path), "short");
	write_file(path, bytes, 16, 0600);
	err[0] = 0;
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "16 bytes"));
	path_in_tmp(path, sizeof(path), "long");
	write_file(path, bytes, XM_AUTH_KEY_LEN + 1, 0600);
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -EINVAL);

	/* A symlink to a good key is not followed. */
	path_in_tmp((char *)target, sizeof(target), "key");
	path_in_tmp(path, sizeof(path), "link");
	assert_int_equal(symlink((char *)target, path), 0);
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -ELOOP);

	/* A directory opens, but is not a regular file. */
	path_in_tmp(path, sizeof(path), "dir");
	assert_int_equal(mkdir(path, 0700), 0);
	err[0] = 0;
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	/* Nothing there. */
	path_in_tmp(path, sizeof(path), "good");
	assert_int_equal(xm_auth_key_load(path, key, err, sizeof(err)), -ENOENT);
}

/* ---- fingerprint, derivation, tags --------------------------------------------------------- */

static void test_fingerprint(void **state)
{
	__u8 fp1[XM_AUTH_FP_LEN], fp2[XM_AUTH_FP_LEN], want[XM_AUTH_FP_LEN];
	char text[2 * XM_AUTH_FP_LEN + 1], want_text[2 * XM_AUTH_FP_LEN + 1];
	unsigned int i;

	xm_auth_fingerprint(key_a, fp1);
	xm_auth_fingerprint(key_a, fp2);
	assert_memory_equal(fp1, fp2, XM_AUTH_FP_LEN);
	ref_fingerprint(key_a, want);
	assert_memory_equal(fp1, want, XM_AUTH_FP_LEN);

	xm_auth_fingerprint(key_b, fp2);
	assert_memory_not_equal(fp1, fp2, XM_AUTH_FP_LEN);
	ref_fingerprint(key_b, want);
	assert_memory_equal(fp2, want, XM_AUTH_FP_LEN);

	memset(text, 'x', sizeof(text));
	xm_auth_fp_text(fp1, text);
	for (i = 0; i < XM_AUTH_FP_LEN; i++)
		snprintf(want_text + 2 * i, 3, "%02x", fp1[i]);
	assert_string_equal(text, want_text);
}

static void test_derive(void **state)
{
	__u8 ni[XM_AUTH_NONCE_LEN], nr[XM_AUTH_NONCE_LEN];
	__u8 ir[XM_AUTH_KEY_LEN], ri[XM_AUTH_KEY_LEN], ir2[XM_AUTH_KEY_LEN], ri2[XM_AUTH_KEY_LEN];
	__u8 want_ir[XM_AUTH_KEY_LEN], want_ri[XM_AUTH_KEY_LEN];
	unsigned int i;

	for (i = 0; i < XM_AUTH_NONCE_LEN; i++) {
		ni[i] = (__u8)(3 * i + 1);
		nr[i] = (__u8)(0x80 ^ (5 * i));
	}
	assert_int_equal(xm_auth_derive(key_a, ni, nr, 0x01020304, ir, ri), 0);
	assert_memory_not_equal(ir, ri, XM_AUTH_KEY_LEN);
	ref_derive(key_a, ni, nr, 0x01020304, want_ir, want_ri);
	assert_memory_equal(ir, want_ir, XM_AUTH_KEY_LEN);
	assert_memory_equal(ri, want_ri, XM_AUTH_KEY_LEN);

	assert_int_equal(xm_auth_derive(key_a, ni, nr, 0x01020304, ir2, ri2), 0);
	assert_memory_equal(ir, ir2, XM_AUTH_KEY_LEN);
	assert_memory_equal(ri, ri2, XM_AUTH_KEY_LEN);

	/* Every nonce byte counts, in both nonces. */
	for (i = 0; i < XM_AUTH_NONCE_LEN; i++) {
		ni[i] ^= 0x01;
		assert_int_equal(xm_auth_derive(key_a, ni, nr, 0x01020304, ir2, ri2), 0);
		ni[i] ^= 0x01;
		if (!memcmp(ir, ir2, XM_AUTH_KEY_LEN) || !memcmp(ri, ri2, XM_AUTH_KEY_LEN))
			fail_msg("nonce_i byte %u does not change the keys", i);
		nr[i] ^= 0x80;
		assert_int_equal(xm_auth_derive(key_a, ni, nr, 0x01020304, ir2, ri2), 0);
		nr[i] ^= 0x80;
		if (!memcmp(ir, ir2, XM_AUTH_KEY_LEN) || !memcmp(ri, ri2, XM_AUTH_KEY_LEN))
			fail_msg("nonce_r byte %u does not change the keys", i);
	}
	/* The nonces are not interchangeable. */
	assert_int_equal(xm_auth_derive(key_a, nr, ni, 0x01020304, ir2, ri2), 0);
	assert_memory_not_equal(ir, ir2, XM_AUTH_KEY_LEN);

	/* Every byte of the session id, and the key. */
	for (i = 0; i < 4; i++) {
		assert_int_equal(
			xm_auth_derive(key_a, ni, nr, 0x01020304 ^ (0x80u << (8 * i)), ir2, ri2),
			0);
		if (!memcmp(ir, ir2, XM_AUTH_KEY_LEN) || !memcmp(ri, ri2, XM_AUTH_KEY_LEN))
			fail_msg("session byte %u does not change the keys", i);
	}
	assert_int_equal(xm_auth_derive(key_b, ni, nr, 0x01020304, ir2, ri2), 0);
	assert_memory_not_equal(ir, ir2, XM_AUTH_KEY_LEN);
	assert_memory_not_equal(ri, ri2, XM_AUTH_KEY_LEN);
}

/* AAD of 200 bytes in three spans: [0, 48) [48, 100) [100, 200). */
#define AAD_LEN 200
static const __u32 aad_cuts[] = {0, 48, 100, AAD_LEN};

static void aad_spans(const __u8 *aad, struct xm_span sp[3])
{
	unsigned int i;

	for (i = 0; i < 3; i++)
		sp[i] = (struct xm_span){.data = aad + aad_cuts[i],
					 .len = aad_cuts[i + 1] - aad_cuts[i]};
}

static void test_mac(void **state)
{
	static const __u32 flip_at[] = {0, 1, 47, 48, 49, 99, 100, 101, 150, 199};
	__u8 aad[AAD_LEN], tag[XM_AUTH_TAG_LEN], tag2[XM_AUTH_TAG_LEN], want[XM_AUTH_TAG_LEN];
	const __u64 counter = 0x0102030405060708ull;
	struct xm_span sp[3], other[6];
	struct xm_mac m, mb, none = {0};
	unsigned int i, b;

	for (i = 0; i < AAD_LEN; i++)
		aad[i] = (__u8)(i * 7 + 3);
	aad_spans(aad, sp);
	assert_int_equal(xm_mac_init(&m, key_a), 0);
	assert_int_equal(xm_mac_init(&mb, key_b), 0);

	assert_int_equal(xm_mac_tag(&m, counter, sp, 3, tag), 0);
	ref_gmac(key_a, counter, aad, AAD_LEN, want);
	assert_memory_equal(tag, want, XM_AUTH_TAG_LEN);
	assert_true(xm_mac_verify(&m, counter, sp, 3, tag));
	/* Deterministic: the context is reused with a new IV each time. */
	assert_int_equal(xm_mac_tag(&m, counter, sp, 3, tag2), 0);
	assert_memory_equal(tag, tag2, XM_AUTH_TAG_LEN);

	/* Other span layouts of the same bytes, including an empty span. */
	other[0] = (struct xm_span){.data = aad, .len = AAD_LEN};
	assert_true(xm_mac_verify(&m, counter, other, 1, tag));
	other[0] = (struct xm_span){.data = aad, .len = 1};
	other[1] = (struct xm_span){.data = aad + 1, .len = 0};
	other[2] = (struct xm_span){.data = aad + 1, .len = 63};
	other[3] = (struct xm_span){.data = aad + 64, .len = 17};
	other[4] = (struct xm_span){.data = aad + 81, .len = 118};
	other[5] = (struct xm_span){.data = aad + 199, .len = 1};
	assert_int_equal(xm_mac_tag(&m, counter, other, 6, tag2), 0);
	assert_memory_equal(tag, tag2, XM_AUTH_TAG_LEN);

	/* Any one bit of the AAD, on both sides of each span boundary. */
	for (i = 0; i < ARRAY_SIZE(flip_at); i++) {
		for (b = 0; b < 8; b += 7) {
			aad[flip_at[i]] ^= (__u8)(1u << b);
			if (xm_mac_verify(&m, counter, sp, 3, tag))
				fail_msg("AAD byte %u bit %u flipped, tag still verifies",
					 flip_at[i], b);
			aad[flip_at[i]] ^= (__u8)(1u << b);
		}
	}
	assert_true(xm_mac_verify(&m, counter, sp, 3, tag));

	/* The length counts: one byte less, one more. */
	sp[2].len--;
	assert_false(xm_mac_verify(&m, counter, sp, 3, tag));
	sp[2].len++;
	other[0] = (struct xm_span){.data = aad, .len = AAD_LEN};
	other[1] = (struct xm_span){.data = aad, .len = 1};
	assert_false(xm_mac_verify(&m, counter, other, 2, tag));

	/* Any one bit of the tag. */
	for (i = 0; i < 8 * XM_AUTH_TAG_LEN; i++) {
		memcpy(tag2, tag, XM_AUTH_TAG_LEN);
		tag2[i / 8] ^= (__u8)(1u << (i % 8));
		if (xm_mac_verify(&m, counter, sp, 3, tag2))
			fail_msg("tag bit %u flipped, still verifies", i);
	}

	/* Another counter (each half of the IV), another key. */
	assert_false(xm_mac_verify(&m, counter + 1, sp, 3, tag));
	assert_false(xm_mac_verify(&m, counter ^ (1ull << 63), sp, 3, tag));
	assert_false(xm_mac_verify(&m, counter ^ 1ull << 32, sp, 3, tag));
	assert_false(xm_mac_verify(&mb, counter, sp, 3, tag));
	assert_int_equal(xm_mac_tag(&mb, counter, sp, 3, tag2), 0);
	ref_gmac(key_b, counter, aad, AAD_LEN, want);
	assert_memory_equal(tag2, want, XM_AUTH_TAG_LEN);

	/* Counter 0 and the largest one are ordinary IVs. */
	assert_int_equal(xm_mac_tag(&m, 0, sp, 3, tag2), 0);
	ref_gmac(key_a, 0, aad, AAD_LEN, want);
	assert_memory_equal(tag2, want, XM_AUTH_TAG_LEN);
	assert_int_equal(xm_mac_tag(&m, UINT64_MAX, sp, 3, tag2), 0);
	ref_gmac(key_a, UINT64_MAX, aad, AAD_LEN, want);
	assert_memory_equal(tag2, want, XM_AUTH_TAG_LEN);

	/* No key: no tag, nothing verifies. */
	assert_int_equal(xm_mac_tag(&none, counter, sp, 3, tag2), -EIO);
	assert_false(xm_mac_verify(&none, counter, sp, 3, tag));

	xm_mac_free(&m);
	xm_mac_free(&mb);
	assert_null(m.ctx);
	xm_mac_free(&m); /* twice is harmless */
}

/* ---- the replay window --------------------------------------------------------------------- */

static void test_replay_window(void **state)
{
	struct xm_replay r = {0};
	__u64 c;

	/* Nothing seen: everything is fresh, counter 0 first. */
	assert_true(xm_replay_fresh(&r, 0));
	assert_true(xm_replay_fresh(&r, UINT64_MAX));
	xm_replay_mark(&r, 0);
	assert_false(xm_replay_fresh(&r, 0));
	assert_true(xm_replay_fresh(&r, 1));

	/* Forward by 10: 0 is remembered below the top. */
	xm_replay_mark(&r, 10);
	assert_false(xm_replay_fresh(&r, 10));
	assert_false(xm_replay_fresh(&r, 0));
	for (c = 1; c < 10; c++)
		assert_true(xm_replay_fresh(&r, c));
	/* Reordered within the window: accepted once. */
	xm_replay_mark(&r, 5);
	assert_false(xm_replay_fresh(&r, 5));
	assert_true(xm_replay_fresh(&r, 4));
	assert_true(xm_replay_fresh(&r, 6));
	assert_false(xm_replay_fresh(&r, 10));

	/* Top 300: exactly 256 older is out, 255 older is in. */
	xm_replay_mark(&r, 300);
	assert_false(xm_replay_fresh(&r, 300 - 256));
	assert_true(xm_replay_fresh(&r, 300 - 255));
	assert_false(xm_replay_fresh(&r, 10));
	assert_false(xm_replay_fresh(&r, 5));
	assert_false(xm_replay_fresh(&r, 0));
	xm_replay_mark(&r, 300 - 255);
	assert_false(xm_replay_fresh(&r, 300 - 255));
	assert_true(xm_replay_fresh(&r, 300 - 254));
	/* One step forward pushes it out of the window. */
	xm_replay_mark(&r, 301);
	assert_false(xm_replay_fresh(&r, 300 - 255));
	assert_false(xm_replay_fresh(&r, 300));
	assert_true(xm_replay_fresh(&r, 299));

	/* Shifts by a whole word and by a word and a bit keep each seen counter seen. */
	memset(&r, 0, sizeof(r));
	xm_replay_mark(&r, 5000);
	xm_replay_mark(&r, 4990);
	xm_replay_mark(&r, 5064);
	assert_false(xm_replay_fresh(&r, 5000));
	assert_false(xm_replay_fresh(&r, 4990));
	assert_true(xm_replay_fresh(&r, 4991));
	assert_true(xm_replay_fresh(&r, 5001));
	xm_replay_mark(&r, 5129);
	assert_false(xm_replay_fresh(&r, 5064));
	assert_false(xm_replay_fresh(&r, 5000));
	assert_false(xm_replay_fresh(&r, 4990));
	assert_true(xm_replay_fresh(&r, 4989));
	assert_true(xm_replay_fresh(&r, 5063));
	assert_true(xm_replay_fresh(&r, 5065));
	xm_replay_mark(&r, 5129 + 191); /* 4990 is now 330 old, 5129 191 */
	assert_false(xm_replay_fresh(&r, 5129));
	assert_false(xm_replay_fresh(&r, 5064));
	assert_false(xm_replay_fresh(&r, 5000)); /* too old */
	assert_true(xm_replay_fresh(&r, 5128));

	/* A big jump forgets everything below the window. */
	xm_replay_mark(&r, 1000000000000ull);
	assert_false(xm_replay_fresh(&r, 1000000000000ull));
	assert_true(xm_replay_fresh(&r, 1000000000000ull - 1));
	assert_true(xm_replay_fresh(&r, 1000000000000ull - 255));
	assert_false(xm_replay_fresh(&r, 1000000000000ull - 256));
	assert_false(xm_replay_fresh(&r, 5320));
	xm_replay_mark(&r, UINT64_MAX);
	assert_false(xm_replay_fresh(&r, UINT64_MAX));
	assert_true(xm_replay_fresh(&r, UINT64_MAX - 1));
	assert_false(xm_replay_fresh(&r, 1000000000000ull));
}

/* The window against a plain model: every counter of [0, 8192) seen or not, the highest. */
static void test_replay_model(void **state)
{
	static bool seen[1 << 20];
	struct xm_replay r = {0};
	__u64 top = 0, c;
	bool any = false, want;
	unsigned int i, x = 12345;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 40000; i++) {
		x = x * 1103515245u + 12345u;
		c = top + (x >> 8) % 400;
		c = c >= 320 ? c - 320 : 0; /* mostly behind the top, some ahead */
		if (i % 1000 == 999)
			c = top + XM_REPLAY_WINDOW + (x >> 8) % 100; /* now and then, a jump */
		if (c >= ARRAY_SIZE(seen))
			break;
		want = !any || c > top || (top - c < XM_REPLAY_WINDOW && !seen[c]);
		if (xm_replay_fresh(&r, c) != want)
			fail_msg("step %u: counter %llu top %llu: fresh %d, model %d", i,
				 (unsigned long long)c, (unsigned long long)top, !want, want);
		if (!want)
			continue;
		xm_replay_mark(&r, c);
		seen[c] = true;
		if (!any || c > top)
			top = c;
		any = true;
	}
	assert_true(top > 4000);
}

/* ---- two gates in memory -------------------------------------------------------------------- */

struct side {
	struct xm_gate g;
	struct xm_counters ctr, snap;
	__u8 frames[MAX_OUT][FRAME_ROOM];
	__u32 len[MAX_OUT];
	unsigned int nout;
	bool inited;
};

static struct side sp, ss; /* the primary (initiator) and the secondary (responder) */
static unsigned int deliveries;

/* cfg.out: the frame, its spans concatenated, into the sender's outbox. */
static int outbox_put(void *ctx, const struct xm_span *spans, __u32 n, __u32 len)
{
	struct side *sd = ctx;
	__u32 i, off = 0;

	assert_true(sd->nout < MAX_OUT);
	for (i = 0; i < n; i++) {
		assert_true(off + spans[i].len <= FRAME_ROOM);
		memcpy(sd->frames[sd->nout] + off, spans[i].data, spans[i].len);
		off += spans[i].len;
	}
	assert_int_equal(off, len);
	sd->len[sd->nout++] = off;
	return 0;
}

static void side_init(struct side *sd, const __u8 *key, const __u8 *local, const __u8 *peer)
{
	struct xm_gate_cfg cfg = {
		.key = key,
		.local_mac = local,
		.peer_mac = peer,
		.ethertype = XM_ETH_P_MIRROR,
		.ctr = &sd->ctr,
		.out = outbox_put,
		.ctx = sd,
	};

	memset(sd, 0, sizeof(*sd));
	assert_int_equal(xm_gate_init(&sd->g, &cfg), 0);
	sd->inited = true;
	assert_int_equal(sd->g.auth, key != NULL);
}

static void pair_init(const __u8 *key_p, const __u8 *key_s)
{
	side_init(&sp, key_p, p_mac, s_mac);
	side_init(&ss, key_s, s_mac, p_mac);
}

static int pair_teardown(void **state)
{
	if (sp.inited)
		xm_gate_free(&sp.g);
	if (ss.inited)
		xm_gate_free(&ss.g);
	sp.inited = ss.inited = false;
	return 0;
}

static unsigned int last(const struct side *sd)
{
	assert_true(sd->nout > 0);
	return sd->nout - 1;
}

static struct xm_hdr hdr_of(const struct side *sd, unsigned int i)
{
	struct xm_hdr h;

	memcpy(&h, sd->frames[i] + HDR_OFF, sizeof(h));
	return h;
}

static const __u8 *payload_of(const struct side *sd, unsigned int i)
{
	return sd->frames[i] + HDR_OFF + be16toh(hdr_of(sd, i).payload_off);
}

static bool is_tagged(const struct side *sd, unsigned int i)
{
	return be16toh(hdr_of(sd, i).flags) & XM_F_AUTH;
}

static struct xm_auth_trailer trailer_of(const struct side *sd, unsigned int i)
{
	struct xm_hdr h = hdr_of(sd, i);
	struct xm_auth_trailer t;
	__u32 at = HDR_OFF + be16toh(h.payload_off) + be32toh(h.payload_len);

	assert_int_equal(sd->len[i], at + TRAILER_LEN);
	memcpy(&t, sd->frames[i] + at, sizeof(t));
	return t;
}

/* Builds a frame through the gate, as a role does, into the side's outbox; returns its index. */
static unsigned int gate_send(struct side *sd, __u8 type, __u32 session, __u64 arg0, __u64 arg1,
			      const void *payload, __u32 len)
{
	static struct xm_gate_frame out;
	struct xm_frame f = {
		.type = type, .session = session, .arg0 = arg0, .arg1 = arg1, .payload_len = len};
	struct xm_span span = {.data = payload, .len = len};
	__u32 i, total = 0;

	assert_int_equal(xm_gate_build(&sd->g, &f, &span, len ? 1 : 0, &out), 0);
	for (i = 0; i < out.n; i++)
		total += out.spans[i].len;
	assert_int_equal(total, out.len);
	outbox_put(sd, out.spans, out.n, out.len);
	return last(sd);
}

static void hello2_fill(struct xm_hello2 *h, __u16 lo, __u16 hi)
{
	memset(h, 0, sizeof(*h));
	h->h.proto_min = htobe16(lo);
	h->h.proto_max = htobe16(hi);
	h->h.role = XM_ROLE_PRIMARY;
	h->h.window = htobe32(64);
}

static unsigned int send_hello(struct side *sd, __u32 id)
{
	struct xm_hello2 h;

	hello2_fill(&h, XM_PROTO_MIN, XM_PROTO_MIN);
	return gate_send(sd, XM_T_HELLO, 0, id, 0, &h, sizeof(h));
}

static unsigned int send_data(struct side *sd, __u32 session, __u64 offset)
{
	__u8 data[DATA_LEN];
	unsigned int i;

	for (i = 0; i < DATA_LEN; i++)
		data[i] = (__u8)(offset + i);
	return gate_send(sd, XM_T_DATA, session, offset, 0, data, DATA_LEN);
}

/* Parses bytes as a receiver does, in nspans separate buffers (the first holds the header), and
 * hands them to the gate. */
static enum xm_gate_verdict deliver_bytes(struct side *to, const __u8 *buf, __u32 len,
					  unsigned int nspans, __u64 now)
{
	struct xm_span spans[3];
	__u8 *piece[3] = {NULL, NULL, NULL};
	__u32 cut[4], i, n = 0, hdr_off = 0, rest = len - (HDR_OFF + HDR_LEN);
	enum xm_parse_error perr;
	enum xm_gate_verdict v;
	struct xm_frame f;

	assert_true(len >= HDR_OFF + HDR_LEN);
	cut[0] = 0;
	if (nspans == 3 && rest >= 4) {
		cut[1] = HDR_OFF + HDR_LEN + rest / 3;
		cut[2] = HDR_OFF + HDR_LEN + 2 * rest / 3 + 1;
		n = 3;
	} else if (nspans >= 2 && rest >= 1) {
		cut[1] = HDR_OFF + HDR_LEN + rest / 2;
		n = 2;
	} else {
		n = 1;
	}
	cut[n] = len;
	for (i = 0; i < n; i++) {
		assert_true(cut[i + 1] > cut[i]);
		piece[i] = malloc(cut[i + 1] - cut[i]);
		assert_non_null(piece[i]);
		memcpy(piece[i], buf + cut[i], cut[i + 1] - cut[i]);
		spans[i] = (struct xm_span){.data = piece[i], .len = cut[i + 1] - cut[i]};
	}
	perr = xm_frame_parse_spans(spans, n, XM_ETH_P_MIRROR, &f, &hdr_off, NULL);
	assert_int_equal(perr, XM_PARSE_OK);
	assert_int_equal(hdr_off, HDR_OFF);
	v = xm_gate_rx(&to->g, &f, spans, n, hdr_off, now);
	for (i = 0; i < n; i++)
		free(piece[i]);
	return v;
}

/* Frame i of from's outbox to the other gate, in 1, 2 or 3 spans by turns. */
static enum xm_gate_verdict deliver(struct side *from, unsigned int i, struct side *to, __u64 now)
{
	assert_true(i < from->nout);
	return deliver_bytes(to, from->frames[i], from->len[i], 1 + deliveries++ % 3, now);
}

static void snap(struct side *sd)
{
	sd->snap = sd->ctr;
}

/* Every counter of sd as at snap(), but name1 (+d1) and name2 (+d2). */
static void expect_counters(const struct side *sd, const char *name1, __u64 d1, const char *name2,
			    __u64 d2)
{
	const struct xm_counters *b = &sd->snap, *a = &sd->ctr;
	__u64 want;

#define XM_CHECK_COUNTER(name, what)                                                               \
	want = b->name + (name1 && !strcmp(#name, name1) ? d1 : 0) +                               \
	       (name2 && !strcmp(#name, name2) ? d2 : 0);                                          \
	if (a->name != want)                                                                       \
		fail_msg("%s: counter %s is %llu, want %llu", sd == &sp ? "p" : "s", #name,        \
			 (unsigned long long)a->name, (unsigned long long)want);
	XM_COUNTER_LIST(XM_CHECK_COUNTER)
#undef XM_CHECK_COUNTER
}

/* The whole handshake for id at time now (§14.3), both sides live at the end. */
static void handshake(__u32 id, __u64 now)
{
	struct xm_hello2 ack;
	unsigned int i;

	i = send_hello(&sp, id);
	assert_false(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, now), XM_GATE_DROP);
	i = last(&ss);
	assert_int_equal(hdr_of(&ss, i).type, XM_T_CHALLENGE);
	assert_int_equal(deliver(&ss, i, &sp, now + 1), XM_GATE_DROP);
	assert_true(xm_gate_live(&sp.g));
	i = send_hello(&sp, id);
	assert_true(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, now + 2), XM_GATE_PASS);
	assert_true(xm_gate_live(&ss.g));
	hello2_fill(&ack, XM_PROTO_MIN, XM_PROTO_MAX);
	i = gate_send(&ss, XM_T_HELLO_ACK, id, 0, 0, &ack, sizeof(ack));
	assert_true(is_tagged(&ss, i));
	assert_int_equal(deliver(&ss, i, &sp, now + 3), XM_GATE_PASS);
}

/* (a) Same key: HELLO, CHALLENGE, tagged HELLO, HELLO_ACK, then DATA both ways; the wire checked
 * against the references. */
static void test_handshake(void **state)
{
	const __u32 id = 0x5eed0001;
	struct xm_hello_auth ext;
	struct xm_challenge ch, ch2;
	struct xm_auth_trailer t;
	struct xm_hello2 ack;
	struct xm_hdr h;
	__u8 fp[XM_AUTH_FP_LEN], ir[XM_AUTH_KEY_LEN], ri[XM_AUTH_KEY_LEN], tag[XM_AUTH_TAG_LEN];
	unsigned int hello, c1, c2, i, k;

	pair_init(key_a, key_a);
	xm_auth_fingerprint(key_a, fp);
	snap(&sp);
	snap(&ss);

	/* The first HELLO: untagged, with its CRC, the auth part after xm_hello2. */
	hello = send_hello(&sp, id);
	h = hdr_of(&sp, hello);
	assert_int_equal(h.type, XM_T_HELLO);
	assert_int_equal(be32toh(h.session), 0);
	assert_int_equal(be64toh(h.arg0), id);
	assert_false(be16toh(h.flags) & XM_F_AUTH);
	assert_int_not_equal(h.crc, 0);
	assert_int_equal(be32toh(h.payload_len), sizeof(struct xm_hello4));
	assert_int_equal(sp.len[hello], HDR_OFF + HDR_LEN + sizeof(struct xm_hello4));
	memcpy(&ext, payload_of(&sp, hello) + sizeof(struct xm_hello2), sizeof(ext));
	assert_int_equal(ext.alg, XM_AUTH_AES256_GMAC);
	assert_memory_equal(ext.fingerprint, fp, XM_AUTH_FP_LEN);
	assert_false(xm_gate_live(&sp.g));

	/* The responder keeps it for itself and answers with a tagged CHALLENGE; delivered twice
	 * (a HELLO retried before the answer came), it answers with the same nonce. */
	assert_int_equal(deliver(&sp, hello, &ss, 1000), XM_GATE_DROP);
	c1 = last(&ss);
	assert_int_equal(deliver(&sp, hello, &ss, 1001), XM_GATE_DROP);
	c2 = last(&ss);
	assert_int_equal(c2, c1 + 1);
	expect_counters(&ss, "tx_challenge", 2, NULL, 0);
	assert_false(xm_gate_live(&ss.g));
	assert_string_equal(ss.g.problem, "");
	h = hdr_of(&ss, c1);
	assert_int_equal(h.type, XM_T_CHALLENGE);
	assert_int_equal(be32toh(h.session), id);
	assert_int_equal(be64toh(h.arg1), XM_AUTH_OK);
	assert_true(be16toh(h.flags) & XM_F_AUTH);
	assert_int_equal(h.crc, 0);
	assert_int_equal(be32toh(h.payload_len), sizeof(ch));
	assert_memory_equal(ss.frames[c1], p_mac, XM_ETH_ALEN);
	assert_memory_equal(ss.frames[c1] + XM_ETH_ALEN, s_mac, XM_ETH_ALEN);
	memcpy(&ch, payload_of(&ss, c1), sizeof(ch));
	memcpy(&ch2, payload_of(&ss, c2), sizeof(ch2));
	assert_int_equal(ch.alg, XM_AUTH_AES256_GMAC);
	assert_memory_equal(ch.fingerprint, fp, XM_AUTH_FP_LEN);
	assert_memory_equal(ch.nonce, ch2.nonce, XM_AUTH_NONCE_LEN);
	assert_memory_not_equal(ch.nonce, ext.nonce, XM_AUTH_NONCE_LEN);

	/* Its tag is GMAC under k_sp (the second half of HKDF) over header and payload. */
	ref_derive(key_a, ext.nonce, ch.nonce, id, ir, ri);
	for (k = 0; k < 2; k++) {
		i = k ? c2 : c1;
		t = trailer_of(&ss, i);
		assert_int_equal(be64toh(t.counter), k);
		ref_gmac(ri, k, ss.frames[i] + HDR_OFF, HDR_LEN + sizeof(ch), tag);
		assert_memory_equal(t.tag, tag, XM_AUTH_TAG_LEN);
	}

	/* The initiator checks it and is live; the second copy is stale. */
	snap(&sp);
	assert_int_equal(deliver(&ss, c2, &sp, 2000), XM_GATE_DROP);
	assert_true(xm_gate_live(&sp.g));
	assert_int_equal(sp.g.verified_rx_ns, 2000);
	expect_counters(&sp, NULL, 0, NULL, 0);
	assert_int_equal(deliver(&ss, c1, &sp, 2001), XM_GATE_DROP);
	expect_counters(&sp, "rx_auth_stale", 1, NULL, 0);
	assert_int_equal(sp.g.verified_rx_ns, 2000);
	assert_int_equal(sp.nout, 1); /* the gate itself sent nothing */

	/* The next HELLO is tagged under k_ps, same nonce; only it reaches the responder's role. */
	hello = send_hello(&sp, id);
	h = hdr_of(&sp, hello);
	assert_true(be16toh(h.flags) & XM_F_AUTH);
	assert_int_equal(h.crc, 0);
	memcpy(&ext, payload_of(&sp, hello) + sizeof(struct xm_hello2), sizeof(ext));
	t = trailer_of(&sp, hello);
	assert_int_equal(be64toh(t.counter), 0);
	ref_gmac(ir, 0, sp.frames[hello] + HDR_OFF, HDR_LEN + sizeof(struct xm_hello4), tag);
	assert_memory_equal(t.tag, tag, XM_AUTH_TAG_LEN);
	snap(&ss);
	assert_int_equal(deliver(&sp, hello, &ss, 3000), XM_GATE_PASS);
	assert_true(xm_gate_live(&ss.g));
	assert_int_equal(ss.g.verified_rx_ns, 3000);
	expect_counters(&ss, NULL, 0, NULL, 0);
	assert_int_equal(ss.nout, 2); /* no CHALLENGE for a tagged HELLO */

	/* The role's HELLO_ACK goes tagged (counter 2: the CHALLENGEs had 0 and 1). */
	hello2_fill(&ack, XM_PROTO_MIN, XM_PROTO_MAX);
	i = gate_send(&ss, XM_T_HELLO_ACK, id, 0, 0, &ack, sizeof(ack));
	assert_true(is_tagged(&ss, i));
	assert_int_equal(be64toh(trailer_of(&ss, i).counter), 2);
	ref_gmac(ri, 2, ss.frames[i] + HDR_OFF, HDR_LEN + sizeof(ack), tag);
	assert_memory_equal(trailer_of(&ss, i).tag, tag, XM_AUTH_TAG_LEN);
	assert_int_equal(deliver(&ss, i, &sp, 4000), XM_GATE_PASS);
	assert_int_equal(sp.g.verified_rx_ns, 4000);

	/* DATA both ways, in every span layout. */
	snap(&sp);
	snap(&ss);
	for (k = 0; k < 6; k++) {
		i = send_data(&sp, id, 4096 * k);
		assert_true(is_tagged(&sp, i));
		assert_int_equal(be64toh(trailer_of(&sp, i).counter), 1 + k);
		assert_int_equal(deliver(&sp, i, &ss, 5000 + k), XM_GATE_PASS);
		assert_int_equal(ss.g.verified_rx_ns, 5000 + k);
		i = send_data(&ss, id, 4096 * k);
		assert_true(is_tagged(&ss, i));
		assert_int_equal(deliver(&ss, i, &sp, 6000 + k), XM_GATE_PASS);
		assert_int_equal(sp.g.verified_rx_ns, 6000 + k);
	}
	expect_counters(&sp, NULL, 0, NULL, 0);
	expect_counters(&ss, NULL, 0, NULL, 0);

	/* PROBEs stay untagged: the XDP program answers them (§14.5). */
	i = gate_send(&sp, XM_T_PROBE, id, 1, 0, NULL, 0);
	assert_false(is_tagged(&sp, i));
	assert_int_equal(sp.len[i], HDR_OFF + HDR_LEN);
}

/* (b) An untagged or altered frame changes nothing; a tagged one is taken once. */
static void test_untagged_and_tampered(void **state)
{
	const __u32 id = 77;
	/* Bytes of a tagged DATA frame that the tag covers or that carry it. */
	static const unsigned int tamper_at[] = {
		HDR_OFF + HDR_LEN,		  /* first payload byte */
		HDR_OFF + HDR_LEN + DATA_LEN / 2, /* near the span cuts */
		HDR_OFF + HDR_LEN + DATA_LEN - 1, /* last payload byte */
		HDR_OFF + offsetof(struct xm_hdr, type),
		HDR_OFF + offsetof(struct xm_hdr, arg0) + 7,
		HDR_OFF + offsetof(struct xm_hdr, seq),
		HDR_OFF + offsetof(struct xm_hdr, credit) + 3,
		HDR_OFF + HDR_LEN + DATA_LEN + 7,		/* the counter's low byte */
		HDR_OFF + HDR_LEN + DATA_LEN + 8,		/* the first tag byte */
		HDR_OFF + HDR_LEN + DATA_LEN + TRAILER_LEN - 1, /* the last tag byte */
	};
	__u8 raw[FRAME_ROOM], raw2[FRAME_ROOM], data[DATA_LEN];
	struct xm_frame f = {
		.type = XM_T_DATA, .session = id, .arg0 = 8192, .payload_len = DATA_LEN};
	struct xm_hdr h;
	unsigned int i, d1, d2, d3 = 0;
	__u64 first;
	int len;

	pair_init(key_a, key_a);
	handshake(id, 100);
	assert_int_equal(ss.g.verified_rx_ns, 102);

	/* A DATA frame with a good CRC and no tag. */
	memset(data, 0x5a, sizeof(data));
	len = xm_frame_build(raw, sizeof(raw), s_mac, p_mac, XM_ETH_P_MIRROR, &f, data);
	assert_true(len > 0);
	for (i = 1; i <= 3; i++) {
		snap(&ss);
		assert_int_equal(deliver_bytes(&ss, raw, (__u32)len, i, 200), XM_GATE_DROP);
		expect_counters(&ss, "rx_bad_auth", 1, NULL, 0);
	}
	/* Nor does an untagged HELLO_ACK that is not a version refusal pass. */
	f = (struct xm_frame){.type = XM_T_HELLO_ACK, .session = id, .arg1 = XM_REFUSE_ROLE};
	len = xm_frame_build(raw, sizeof(raw), p_mac, s_mac, XM_ETH_P_MIRROR, &f, NULL);
	snap(&sp);
	assert_int_equal(deliver_bytes(&sp, raw, (__u32)len, 1, 200), XM_GATE_DROP);
	expect_counters(&sp, "rx_bad_auth", 1, NULL, 0);

	/* A tagged DATA with any one byte changed: payload, header, trailer. */
	d1 = send_data(&sp, id, 4096);
	for (i = 0; i < ARRAY_SIZE(tamper_at); i++) {
		memcpy(raw, sp.frames[d1], sp.len[d1]);
		raw[tamper_at[i]] ^= 0x01;
		snap(&ss);
		if (deliver_bytes(&ss, raw, sp.len[d1], 1 + i % 3, 300) != XM_GATE_DROP)
			fail_msg("byte %u changed, the frame still passes", tamper_at[i]);
		expect_counters(&ss, "rx_bad_auth", 1, NULL, 0);
	}
	/* The session id is in the header the tag covers: not movable to another session. */
	memcpy(raw, sp.frames[d1], sp.len[d1]);
	memcpy(&h, raw + HDR_OFF, sizeof(h));
	h.session = htobe32(id + 1);
	memcpy(raw + HDR_OFF, &h, sizeof(h));
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, sp.len[d1], 2, 300), XM_GATE_DROP);
	expect_counters(&ss, "rx_auth_stale", 1, NULL, 0);
	/* Cut short: the trailer is not all there. */
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, sp.frames[d1], sp.len[d1] - 1, 2, 300), XM_GATE_DROP);
	expect_counters(&ss, "rx_bad_auth", 1, NULL, 0);
	assert_int_equal(ss.g.verified_rx_ns, 102);

	/* None of those marked the counter: the real frame still passes, once. */
	snap(&ss);
	assert_int_equal(deliver(&sp, d1, &ss, 400), XM_GATE_PASS);
	assert_int_equal(ss.g.verified_rx_ns, 400);
	assert_int_equal(deliver(&sp, d1, &ss, 401), XM_GATE_DROP);
	assert_int_equal(deliver(&sp, d1, &ss, 402), XM_GATE_DROP);
	expect_counters(&ss, "rx_replay", 2, NULL, 0);
	assert_int_equal(ss.g.verified_rx_ns, 400);

	/* Reordered within the window: both pass, each once. */
	d2 = send_data(&sp, id, 8192);
	d3 = send_data(&sp, id, 12288);
	snap(&ss);
	assert_int_equal(deliver(&sp, d3, &ss, 500), XM_GATE_PASS);
	assert_int_equal(deliver(&sp, d2, &ss, 501), XM_GATE_PASS);
	assert_int_equal(deliver(&sp, d2, &ss, 502), XM_GATE_DROP);
	assert_int_equal(deliver(&sp, d3, &ss, 503), XM_GATE_DROP);
	expect_counters(&ss, "rx_replay", 2, NULL, 0);

	/* The tagged HELLO of the handshake, replayed: its counter was seen too. */
	snap(&ss);
	assert_int_equal(deliver(&sp, 1, &ss, 600), XM_GATE_DROP);
	expect_counters(&ss, "rx_replay", 1, NULL, 0);

	/* A frame 256 behind the newest is refused even if never seen; 255 behind is taken. */
	d1 = send_data(&sp, id, 0);
	first = be64toh(trailer_of(&sp, d1).counter);
	memcpy(raw, sp.frames[d1], sp.len[d1]);
	len = (int)sp.len[d1];
	d2 = send_data(&sp, id, 0);
	memcpy(raw2, sp.frames[d2], sp.len[d2]);
	for (i = 0; i < 255; i++) {
		sp.nout = d2 + 1; /* only the first two and the last matter */
		d3 = send_data(&sp, id, 0);
	}
	assert_int_equal(be64toh(trailer_of(&sp, d3).counter), first + 256);
	snap(&ss);
	assert_int_equal(deliver(&sp, d3, &ss, 700), XM_GATE_PASS);
	assert_int_equal(deliver_bytes(&ss, raw, (__u32)len, 1, 701), XM_GATE_DROP);
	expect_counters(&ss, "rx_replay", 1, NULL, 0);
	assert_int_equal(deliver_bytes(&ss, raw2, (__u32)len, 2, 702), XM_GATE_PASS);
	assert_int_equal(ss.g.verified_rx_ns, 702);
}

/* (c) A frame of an earlier session does not pass in the next one. */
static void test_replay_across_sessions(void **state)
{
	__u8 raw[FRAME_ROOM];
	struct xm_hdr h;
	unsigned int old_p, old_p2, old_s, old_hello, i;

	pair_init(key_a, key_a);
	handshake(1, 100);
	old_hello = 1; /* p's tagged HELLO of session 1 */
	assert_true(is_tagged(&sp, old_hello));
	old_p = send_data(&sp, 1, 0);
	assert_int_equal(deliver(&sp, old_p, &ss, 200), XM_GATE_PASS);
	old_p2 = send_data(&sp, 1, 4096); /* never delivered in session 1 */
	old_s = send_data(&ss, 1, 0);

	/* A new session: the responder keeps the old one until the new HELLO verifies. */
	handshake(2, 300);
	i = send_data(&sp, 2, 0);
	assert_int_equal(deliver(&sp, i, &ss, 400), XM_GATE_PASS);

	snap(&sp);
	snap(&ss);
	assert_int_equal(deliver(&sp, old_p, &ss, 500), XM_GATE_DROP);
	assert_int_equal(deliver(&sp, old_p2, &ss, 501), XM_GATE_DROP);
	assert_int_equal(deliver(&sp, old_hello, &ss, 502), XM_GATE_DROP);
	expect_counters(&ss, "rx_auth_stale", 3, NULL, 0);
	assert_int_equal(deliver(&ss, old_s, &sp, 503), XM_GATE_DROP);
	expect_counters(&sp, "rx_auth_stale", 1, NULL, 0);

	/* Relabelled as session 2: the tag covers the session id. */
	for (i = 0; i < 2; i++) {
		unsigned int idx = i ? old_p2 : old_p;

		memcpy(raw, sp.frames[idx], sp.len[idx]);
		memcpy(&h, raw + HDR_OFF, sizeof(h));
		h.session = htobe32(2);
		memcpy(raw + HDR_OFF, &h, sizeof(h));
		snap(&ss);
		assert_int_equal(deliver_bytes(&ss, raw, sp.len[idx], 3, 600), XM_GATE_DROP);
		expect_counters(&ss, "rx_bad_auth", 1, NULL, 0);
	}
	assert_int_equal(ss.g.verified_rx_ns, 400);

	/* Session 2 runs on. */
	i = send_data(&sp, 2, 4096);
	assert_int_equal(deliver(&sp, i, &ss, 700), XM_GATE_PASS);
	i = send_data(&ss, 2, 4096);
	assert_int_equal(deliver(&ss, i, &sp, 701), XM_GATE_PASS);
}

/* (d) Different keys: both sides say so, nothing moves. */
static void test_wrong_key(void **state)
{
	const __u32 id = 0xabcdef;
	char fp_p[2 * XM_AUTH_FP_LEN + 1], fp_s[2 * XM_AUTH_FP_LEN + 1];
	struct xm_challenge c1, c2;
	unsigned int hello, ch, ch2, k;

	pair_init(key_a, key_b);
	xm_auth_fp_text(sp.g.fp, fp_p);
	xm_auth_fp_text(ss.g.fp, fp_s);
	assert_string_not_equal(fp_p, fp_s);

	/* The responder sees the other fingerprint, says so, and answers all the same. */
	hello = send_hello(&sp, id);
	snap(&ss);
	assert_int_equal(deliver(&sp, hello, &ss, 10), XM_GATE_DROP);
	expect_counters(&ss, "auth_failures", 1, "tx_challenge", 1);
	assert_non_null(strstr(ss.g.problem, "authentication failed"));
	assert_non_null(strstr(ss.g.problem, fp_p));
	assert_non_null(strstr(ss.g.problem, fp_s));
	ch = last(&ss);
	assert_int_equal(hdr_of(&ss, ch).type, XM_T_CHALLENGE);
	assert_true(is_tagged(&ss, ch));

	/* Its CHALLENGE does not verify at the initiator. */
	snap(&sp);
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	expect_counters(&sp, "auth_failures", 1, "rx_bad_auth", 1);
	assert_non_null(strstr(sp.g.problem, "authentication failed"));
	assert_non_null(strstr(sp.g.problem, fp_p));
	assert_non_null(strstr(sp.g.problem, fp_s));
	assert_false(xm_gate_live(&sp.g));
	assert_int_equal(sp.g.verified_rx_ns, 0);

	/* The initiator keeps offering, untagged; the responder keeps its nonce for it. */
	for (k = 0; k < 3; k++) {
		hello = send_hello(&sp, id);
		assert_false(is_tagged(&sp, hello));
		assert_int_equal(deliver(&sp, hello, &ss, 30 + k), XM_GATE_DROP);
		ch2 = last(&ss);
		memcpy(&c1, payload_of(&ss, ch), sizeof(c1));
		memcpy(&c2, payload_of(&ss, ch2), sizeof(c2));
		assert_memory_equal(c1.nonce, c2.nonce, XM_AUTH_NONCE_LEN);
		snap(&sp);
		assert_int_equal(deliver(&ss, ch2, &sp, 40 + k), XM_GATE_DROP);
		expect_counters(&sp, "auth_failures", 1, "rx_bad_auth", 1);
		assert_false(xm_gate_live(&sp.g));
	}
	assert_false(xm_gate_live(&ss.g));
	assert_int_equal(ss.g.verified_rx_ns, 0);
	/* The initiator never tagged anything, so the responder had nothing to pass. */
	for (k = 0; k < sp.nout; k++)
		assert_false(is_tagged(&sp, k));
}

/* A HELLO through xm_frame_build with payload hello and length len. */
static __u32 raw_hello(__u8 *raw, __u32 id, const void *payload, __u32 len)
{
	struct xm_frame f = {.type = XM_T_HELLO, .arg0 = id, .payload_len = len};
	int n = xm_frame_build(raw, FRAME_ROOM, s_mac, p_mac, XM_ETH_P_MIRROR, &f, payload);

	assert_true(n > 0);
	return (__u32)n;
}

/* An untagged CHALLENGE refusal: its code, and what the initiator's status says. */
static void expect_refusal(struct side *from, unsigned int i, __u64 code)
{
	struct xm_hdr h = hdr_of(from, i);

	assert_int_equal(h.type, XM_T_CHALLENGE);
	assert_false(be16toh(h.flags) & XM_F_AUTH);
	assert_int_equal(be64toh(h.arg1), code);
	assert_int_equal(from->len[i], HDR_OFF + HDR_LEN + sizeof(struct xm_challenge));
}

/* (e) One side without a key: HELLOs do not pass, and each side's status says why. */
static void test_no_auth_one_side(void **state)
{
	struct xm_hello_auth ext;
	unsigned int hello, ch;

	/* The initiator runs --no-auth: its HELLO has alg 0, no fingerprint. */
	pair_init(NULL, key_a);
	hello = send_hello(&sp, 9);
	memcpy(&ext, payload_of(&sp, hello) + sizeof(struct xm_hello2), sizeof(ext));
	assert_int_equal(ext.alg, XM_AUTH_NONE);
	assert_memory_equal(ext.fingerprint, (__u8[XM_AUTH_FP_LEN]){0}, XM_AUTH_FP_LEN);
	snap(&ss);
	assert_int_equal(deliver(&sp, hello, &ss, 10), XM_GATE_DROP);
	expect_counters(&ss, "tx_challenge", 1, NULL, 0);
	assert_non_null(strstr(ss.g.problem, "authentication failed"));
	assert_non_null(strstr(ss.g.problem, "the peer runs without a key (--no-auth)"));
	ch = last(&ss);
	assert_int_equal(be32toh(hdr_of(&ss, ch).session), 9);
	snap(&sp);
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	expect_counters(&sp, NULL, 0, NULL, 0);
	assert_non_null(strstr(sp.g.problem, "authentication failed"));
	assert_false(xm_gate_live(&sp.g));
	assert_false(xm_gate_live(&ss.g));
	pair_teardown(state);

	/* The responder runs --no-auth. */
	pair_init(key_a, NULL);
	hello = send_hello(&sp, 10);
	snap(&ss);
	assert_int_equal(deliver(&sp, hello, &ss, 10), XM_GATE_DROP);
	expect_counters(&ss, "tx_challenge", 1, NULL, 0);
	assert_non_null(strstr(ss.g.problem, "authentication failed"));
	assert_non_null(strstr(ss.g.problem, "this box runs --no-auth"));
	ch = last(&ss);
	snap(&sp);
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	expect_counters(&sp, NULL, 0, NULL, 0);
	assert_non_null(strstr(sp.g.problem, "authentication failed"));
	assert_false(xm_gate_live(&sp.g));
	/* A refusal for a session the initiator does not offer is only counted. */
	hello = send_hello(&sp, 11);
	snap(&sp);
	assert_int_equal(deliver(&ss, ch, &sp, 30), XM_GATE_DROP);
	expect_counters(&sp, "rx_bad_auth", 1, NULL, 0);
}

/*
 * (e) The refusal codes as include/xdpmirror.h and protocol.md §14.3 define them: XM_AUTH_NO_KEY
 * when the responder runs --no-auth, XM_AUTH_KEY_REQUIRED when the HELLO had alg 0 and the
 * responder requires a key; the initiator's status then names the right side.
 */
static void test_no_auth_refusal_codes(void **state)
{
	__u8 raw[FRAME_ROOM];
	struct xm_hello4 h4;
	unsigned int ch, i;
	__u32 len;

	/* Initiator --no-auth, responder with a key: the responder requires one. */
	pair_init(NULL, key_a);
	send_hello(&sp, 9);
	assert_int_equal(deliver(&sp, last(&sp), &ss, 10), XM_GATE_DROP);
	ch = last(&ss);
	expect_refusal(&ss, ch, XM_AUTH_KEY_REQUIRED);
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	assert_non_null(strstr(sp.g.problem, "the peer requires a key (--auth-key)"));
	pair_teardown(state);

	/* Initiator with a key, responder --no-auth: the responder has no key. */
	pair_init(key_a, NULL);
	send_hello(&sp, 10);
	assert_int_equal(deliver(&sp, last(&sp), &ss, 10), XM_GATE_DROP);
	ch = last(&ss);
	expect_refusal(&ss, ch, XM_AUTH_NO_KEY);
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	assert_non_null(strstr(sp.g.problem, "the peer runs without a key (--no-auth)"));
	pair_teardown(state);

	/* An algorithm the responder does not know. */
	pair_init(key_a, key_a);
	i = send_hello(&sp, 11);
	memcpy(&h4, payload_of(&sp, i), sizeof(h4));
	h4.auth.alg = 7;
	len = raw_hello(raw, 11, &h4, sizeof(h4));
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, len, 2, 10), XM_GATE_DROP);
	expect_counters(&ss, "tx_challenge", 1, NULL, 0);
	ch = last(&ss);
	expect_refusal(&ss, ch, XM_AUTH_BAD_ALG);
	assert_non_null(strstr(ss.g.problem, "authentication failed"));
	assert_int_equal(deliver(&ss, ch, &sp, 20), XM_GATE_DROP);
	assert_non_null(strstr(sp.g.problem, "authentication failed"));
	assert_non_null(strstr(sp.g.problem, "algorithm"));
	assert_false(xm_gate_live(&sp.g));
}

/* (e) Neither side has a key: revision 3's behaviour, frames in clear with their CRC. */
static void test_no_auth_both(void **state)
{
	__u8 raw[FRAME_ROOM];
	struct xm_hello2 ack;
	struct xm_hdr h;
	unsigned int i;

	pair_init(NULL, NULL);
	snap(&ss);
	i = send_hello(&sp, 5);
	assert_false(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, 10), XM_GATE_PASS);
	assert_int_equal(ss.nout, 0);
	hello2_fill(&ack, XM_PROTO_MIN, XM_PROTO_MAX);
	i = gate_send(&ss, XM_T_HELLO_ACK, 5, 0, 0, &ack, sizeof(ack));
	assert_false(is_tagged(&ss, i));
	assert_int_equal(deliver(&ss, i, &sp, 20), XM_GATE_PASS);
	i = send_data(&sp, 5, 0);
	assert_false(is_tagged(&sp, i));
	assert_int_equal(sp.len[i], HDR_OFF + HDR_LEN + DATA_LEN);
	assert_int_equal(deliver(&sp, i, &ss, 30), XM_GATE_PASS);
	expect_counters(&ss, NULL, 0, NULL, 0);
	assert_false(xm_gate_live(&sp.g));
	assert_int_equal(ss.g.verified_rx_ns, 0);
	assert_string_equal(ss.g.problem, "");

	/* A tagged frame means nothing to a box without a key. */
	memcpy(raw, sp.frames[i], sp.len[i]);
	memcpy(&h, raw + HDR_OFF, sizeof(h));
	h.flags = htobe16(XM_F_AUTH);
	h.crc = 0;
	memcpy(raw + HDR_OFF, &h, sizeof(h));
	memset(raw + sp.len[i], 0, TRAILER_LEN);
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, sp.len[i] + TRAILER_LEN, 2, 40), XM_GATE_DROP);
	expect_counters(&ss, "rx_bad_auth", 1, NULL, 0);
}

/* (f) A HELLO of another revision is refused by the gate, untagged, before anything else. */
static void test_version_refused(void **state)
{
	static const struct {
		__u16 lo, hi;
		bool refused;
	} ranges[] = {
		/* Relative to this revision, so a protocol bump keeps the test's meaning. */
		{XM_PROTO_MIN - 2, XM_PROTO_MIN - 1, true},
		{XM_PROTO_MIN - 1, XM_PROTO_MIN - 1, true},
		{XM_PROTO_MAX + 1, XM_PROTO_MAX + 2, true},
		{XM_PROTO_MIN - 1, XM_PROTO_MAX, false},
		{XM_PROTO_MAX, XM_PROTO_MAX + 1, false},
	};
	const __u8 *keys[] = {key_a, NULL};
	__u8 raw[FRAME_ROOM];
	struct xm_hello4 h4;
	struct xm_hello2 got;
	struct xm_hdr h;
	unsigned int r, k, i;
	__u32 len;

	for (k = 0; k < ARRAY_SIZE(keys); k++) {
		for (r = 0; r < ARRAY_SIZE(ranges); r++) {
			pair_init(key_a, keys[k]);
			/* The initiator's own HELLO, with its auth part, but another range. */
			i = send_hello(&sp, 1); /* draws the nonce */
			memcpy(&h4, payload_of(&sp, i), sizeof(h4));
			h4.h2.h.proto_min = htobe16(ranges[r].lo);
			h4.h2.h.proto_max = htobe16(ranges[r].hi);
			len = raw_hello(raw, 1, &h4, sizeof(h4));
			snap(&ss);
			if (!ranges[r].refused) {
				assert_int_equal(deliver_bytes(&ss, raw, len, 1, 10), XM_GATE_DROP);
				assert_int_equal(hdr_of(&ss, last(&ss)).type, XM_T_CHALLENGE);
				assert_null(strstr(ss.g.problem, "version"));
				pair_teardown(state);
				continue;
			}
			assert_int_equal(deliver_bytes(&ss, raw, len, 2, 10), XM_GATE_DROP);
			expect_counters(&ss, "rx_bad_hello", 1, NULL, 0);
			assert_int_equal(ss.nout, 1);
			h = hdr_of(&ss, 0);
			assert_int_equal(h.type, XM_T_HELLO_ACK);
			assert_false(be16toh(h.flags) & XM_F_AUTH);
			assert_int_equal(be32toh(h.session), 1);
			assert_int_equal(be64toh(h.arg1), XM_REFUSE_VERSION);
			assert_int_equal(be32toh(h.payload_len), sizeof(got));
			memcpy(&got, payload_of(&ss, 0), sizeof(got));
			assert_int_equal(be16toh(got.h.proto_min), XM_PROTO_MIN);
			assert_int_equal(be16toh(got.h.proto_max), XM_PROTO_MAX);
			assert_non_null(strstr(ss.g.problem, "protocol version mismatch"));
			assert_false(xm_gate_live(&ss.g));
			/* The refusal cannot carry a tag, and the initiator's role takes it. */
			snap(&sp);
			assert_int_equal(deliver(&ss, 0, &sp, 20), XM_GATE_PASS);
			expect_counters(&sp, NULL, 0, NULL, 0);
			pair_teardown(state);
		}
	}

	/* A revision 3 HELLO: xm_hello2, no auth part. */
	pair_init(key_a, key_a);
	hello2_fill(&h4.h2, 2, 3);
	len = raw_hello(raw, 3, &h4.h2, sizeof(h4.h2));
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, len, 3, 10), XM_GATE_DROP);
	expect_counters(&ss, "rx_bad_hello", 1, NULL, 0);
	assert_int_equal(be64toh(hdr_of(&ss, last(&ss)).arg1), XM_REFUSE_VERSION);
	assert_non_null(strstr(ss.g.problem, "protocol version mismatch"));
	assert_non_null(strstr(ss.g.problem, "2..3"));

	/* Too short for an xm_hello. */
	len = raw_hello(raw, 3, &h4.h2, 20);
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, len, 2, 11), XM_GATE_DROP);
	expect_counters(&ss, "rx_bad_hello", 1, NULL, 0);
	assert_int_equal(be64toh(hdr_of(&ss, last(&ss)).arg1), XM_REFUSE_VERSION);
	assert_non_null(strstr(ss.g.problem, "protocol version mismatch"));

	/* Session id 0 is no offer: dropped, unanswered. */
	i = ss.nout;
	hello2_fill(&h4.h2, XM_PROTO_MIN, XM_PROTO_MAX);
	len = raw_hello(raw, 0, &h4, sizeof(h4));
	snap(&ss);
	assert_int_equal(deliver_bytes(&ss, raw, len, 1, 12), XM_GATE_DROP);
	expect_counters(&ss, "rx_bad_hello", 1, NULL, 0);
	assert_int_equal(ss.nout, i);
}

/* (g) Untagged HELLOs from anyone, with other ids or the live one, leave the live session be. */
static void test_hello_flood(void **state)
{
	const __u32 id = 4242;
	__u8 raw[FRAME_ROOM];
	struct xm_hello4 h4;
	unsigned int i, k, passes = 0;
	__u32 len;

	pair_init(key_a, key_a);
	handshake(id, 100);
	/* What a forger sees on the wire: p's HELLO, with the right fingerprint. */
	memcpy(&h4, payload_of(&sp, 0), sizeof(h4));

	snap(&ss);
	for (k = 0; k < 40; k++) {
		h4.auth.nonce[0] = (__u8)k;
		h4.auth.nonce[31] = (__u8)(k * 13);
		len = raw_hello(raw, k % 4 == 0 ? id : 1000 + k, &h4, sizeof(h4));
		if (deliver_bytes(&ss, raw, len, 1 + k % 3, 200 + k) == XM_GATE_PASS)
			passes++;
		/* Live DATA both ways, between the forgeries. */
		i = send_data(&sp, id, 4096 * k);
		if (deliver(&sp, i, &ss, 300 + k) != XM_GATE_PASS)
			fail_msg("after %u forged HELLOs, the live session's DATA is dropped",
				 k + 1);
		i = send_data(&ss, id, 4096 * k);
		if (deliver(&ss, i, &sp, 400 + k) != XM_GATE_PASS)
			fail_msg("after %u forged HELLOs, the responder's DATA is dropped", k + 1);
		if (sp.nout > MAX_OUT - 8 || ss.nout > MAX_OUT - 8)
			sp.nout = ss.nout = 8; /* keep the handshake's frames, reuse the rest */
	}
	assert_int_equal(passes, 0);
	expect_counters(&ss, "tx_challenge", 40, NULL, 0);
	assert_string_equal(ss.g.problem, "");
	assert_int_equal(ss.g.verified_rx_ns, 300 + 39);
	assert_true(xm_gate_live(&ss.g));

	/* The initiator's HELLO again (tagged, as live) still reaches the role. */
	i = send_hello(&sp, id);
	assert_true(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, 1000), XM_GATE_PASS);
}

/* A forged untagged HELLO with the initiator's id but another nonce, between its first HELLO and
 * its tagged one: the tagged HELLO still finds its own keys (by nonce), and nobody is told the key
 * is wrong. */
static void test_forged_hello_mid_handshake(void **state)
{
	const __u32 id = 777;
	__u8 raw[FRAME_ROOM];
	struct xm_hello4 h4;
	unsigned int i, c, k;
	__u32 len;

	pair_init(key_a, key_a);
	/* Three other handshakes first, so the initiator's and the forger's land in other slots. */
	for (k = 0; k < 3; k++) {
		i = send_hello(&sp, 1001 + k);
		deliver(&sp, i, &ss, 10 + k);
	}
	i = send_hello(&sp, id);
	assert_false(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, 20), XM_GATE_DROP);
	c = last(&ss);
	assert_int_equal(hdr_of(&ss, c).type, XM_T_CHALLENGE);
	memcpy(&h4, payload_of(&sp, i), sizeof(h4));
	h4.auth.nonce[5] ^= 0x5a;
	len = raw_hello(raw, id, &h4, sizeof(h4));
	assert_int_equal(deliver_bytes(&ss, raw, len, 1, 21), XM_GATE_DROP);
	snap(&ss);
	assert_int_equal(deliver(&ss, c, &sp, 22), XM_GATE_DROP);
	assert_true(xm_gate_live(&sp.g));
	i = send_hello(&sp, id);
	assert_true(is_tagged(&sp, i));
	assert_int_equal(deliver(&sp, i, &ss, 23), XM_GATE_PASS);
	expect_counters(&ss, NULL, 0, NULL, 0);
	assert_string_equal(ss.g.problem, "");
}

/* Forged HELLOs evict the initiator's pending handshake after its keys went live: its tagged
 * HELLOs go unanswered, so after XM_GATE_HELLO_RESTART it offers a fresh nonce and gets through. */
static void test_pending_evicted(void **state)
{
	const __u32 id = 888;
	__u8 raw[FRAME_ROOM];
	struct xm_hello4 h4;
	unsigned int i, k, tagged = 0;
	__u32 len;
	bool through = false;

	pair_init(key_a, key_a);
	i = send_hello(&sp, id);
	assert_int_equal(deliver(&sp, i, &ss, 10), XM_GATE_DROP);
	memcpy(&h4, payload_of(&sp, i), sizeof(h4));
	assert_int_equal(deliver(&ss, last(&ss), &sp, 11), XM_GATE_DROP);
	assert_true(xm_gate_live(&sp.g));
	for (k = 0; k < XM_GATE_PENDING; k++) {
		h4.auth.nonce[0] = (__u8)(k + 1);
		len = raw_hello(raw, 2000 + k, &h4, sizeof(h4));
		deliver_bytes(&ss, raw, len, 1, 12 + k);
	}
	for (k = 0; k < 3 * XM_GATE_HELLO_RESTART && !through; k++) {
		i = send_hello(&sp, id);
		if (is_tagged(&sp, i)) {
			tagged++;
			assert_int_equal(deliver(&sp, i, &ss, 100 + k), XM_GATE_DROP);
			continue;
		}
		/* The fresh offer: a CHALLENGE, then the tagged HELLO reaches the role. */
		assert_int_equal(deliver(&sp, i, &ss, 100 + k), XM_GATE_DROP);
		assert_int_equal(deliver(&ss, last(&ss), &sp, 200 + k), XM_GATE_DROP);
		i = send_hello(&sp, id);
		assert_true(is_tagged(&sp, i));
		through = deliver(&sp, i, &ss, 300 + k) == XM_GATE_PASS;
	}
	assert_true(through);
	assert_int_equal(tagged, XM_GATE_HELLO_RESTART);
	assert_true(xm_gate_live(&ss.g));
}

static int keys_setup(void **state)
{
	unsigned int i;

	for (i = 0; i < XM_AUTH_KEY_LEN; i++) {
		key_a[i] = (__u8)(0x11 * i + 1);
		key_b[i] = (__u8)(0x11 * i + 2);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keygen, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_key_load, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_replay_model),
		cmocka_unit_test_teardown(test_handshake, pair_teardown),
		cmocka_unit_test_teardown(test_untagged_and_tampered, pair_teardown),
		cmocka_unit_test_teardown(test_replay_across_sessions, pair_teardown),
		cmocka_unit_test_teardown(test_wrong_key, pair_teardown),
		cmocka_unit_test_teardown(test_no_auth_one_side, pair_teardown),
		cmocka_unit_test_teardown(test_no_auth_refusal_codes, pair_teardown),
		cmocka_unit_test_teardown(test_no_auth_both, pair_teardown),
		cmocka_unit_test_teardown(test_version_refused, pair_teardown),
		cmocka_unit_test_teardown(test_hello_flood, pair_teardown),
		cmocka_unit_test_teardown(test_forged_hello_mid_handshake, pair_teardown),
		cmocka_unit_test_teardown(test_pending_evicted, pair_teardown),
	};

	return xm_test_exit(cmocka_run_group_tests_name("auth", tests, keys_setup, NULL));
}
