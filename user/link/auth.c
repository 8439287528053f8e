// SPDX-License-Identifier: GPL-2.0
/* The authenticated link's cryptography (docs/protocol.md §14.2, §14.4), from OpenSSL. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "link/auth.h"

#define FP_LABEL  "xdpmirror key fingerprint"
#define KDF_LABEL "xdpmirror v4 keys"

int xm_auth_random(void *buf, size_t len)
{
	__u8 *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int xm_auth_keygen(const char *path, char *err, size_t errlen)
{
	__u8 key[XM_AUTH_KEY_LEN];
	int fd, rc = 0;

	rc = xm_auth_random(key, sizeof(key));
	if (rc) {
		snprintf(err, errlen, "getrandom: %s", strerror(-rc));
		return rc;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (a key is never overwritten)" : "");
		goto out;
	}
	/* The umask may not take bits away from 0600, but make sure nothing else is set. */
	if (fchmod(fd, 0600) || write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd)) {
		rc = -(errno ? errno : EIO);
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		close(fd);
		unlink(path);
		goto out;
	}
	if (close(fd)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int xm_auth_key_load(const char *path, __u8 key[XM_AUTH_KEY_LEN], char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "auth key %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		snprintf(err, errlen, "auth key %s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "auth key %s: not a regular file", path);
	} else if (st.st_uid != geteuid()) {
		rc = -EPERM;
		snprintf(err, errlen, "auth key %s: owned by uid %u, not by this user (%u)", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EPERM;
		snprintf(err, errlen,
			 "auth key %s: mode %04o lets group or others at it (chmod 600 %s)", path,
			 (unsigned)(st.st_mode & 07777), path);
	} else if (st.st_size != XM_AUTH_KEY_LEN) {
		rc = -EINVAL;
		snprintf(err, errlen, "auth key %s: %lld bytes, a key is %d (xdpmirror keygen)",
			 path, (long long)st.st_size, XM_AUTH_KEY_LEN);
	} else {
		n = read(fd, key, XM_AUTH_KEY_LEN);
		if (n != XM_AUTH_KEY_LEN) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "auth key %s: short read", path);
			OPENSSL_cleanse(key, XM_AUTH_KEY_LEN);
		}
	}
	close(fd);
	return rc;
}

void xm_auth_fingerprint(const __u8 key[XM_AUTH_KEY_LEN], __u8 fp[XM_AUTH_FP_LEN])
{
	__u8 md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(fp, 0, XM_AUTH_FP_LEN);
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(c, FP_LABEL, strlen(FP_LABEL)) &&
	    EVP_DigestUpdate(c, key, XM_AUTH_KEY_LEN) && EVP_DigestFinal_ex(c, md, &mdlen) &&
	    mdlen >= XM_AUTH_FP_LEN)
		memcpy(fp, md, XM_AUTH_FP_LEN);
	EVP_MD_CTX_free(c);
}

void xm_auth_fp_text(const __u8 fp[XM_AUTH_FP_LEN], char out[2 * XM_AUTH_FP_LEN + 1])
{
	int i;

	for (i = 0; i < XM_AUTH_FP_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

int xm_auth_derive(const __u8 key[XM_AUTH_KEY_LEN], const __u8 nonce_i[XM_AUTH_NONCE_LEN],
		   const __u8 nonce_r[XM_AUTH_NONCE_LEN], __u32 session, __u8 ir[XM_AUTH_KEY_LEN],
		   __u8 ri[XM_AUTH_KEY_LEN])
{
	__u8 salt[2 * XM_AUTH_NONCE_LEN], info[sizeof(KDF_LABEL) - 1 + 4], out[2 * XM_AUTH_KEY_LEN];
	__be32 sid = htobe32(session);
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int rc = -EIO;

	memcpy(salt, nonce_i, XM_AUTH_NONCE_LEN);
	memcpy(salt + XM_AUTH_NONCE_LEN, nonce_r, XM_AUTH_NONCE_LEN);
	memcpy(info, KDF_LABEL, sizeof(KDF_LABEL) - 1);
	memcpy(info + sizeof(KDF_LABEL) - 1, &sid, 4);
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf)
		kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return rc;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, XM_AUTH_KEY_LEN);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, sizeof(out), params) > 0) {
		memcpy(ir, out, XM_AUTH_KEY_LEN);
		memcpy(ri, out + XM_AUTH_KEY_LEN, XM_AUTH_KEY_LEN);
		rc = 0;
	}
	EVP_KDF_CTX_free(kctx);
	OPENSSL_cleanse(out, sizeof(out));
	return rc;
}

int xm_mac_init(struct xm_mac *m, const __u8 key[XM_AUTH_KEY_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	m->ctx = NULL;
	if (!c)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
		EVP_CIPHER_CTX_free(c);
		return -EIO;
	}
	m->ctx = c;
	return 0;
}

void xm_mac_free(struct xm_mac *m)
{
	EVP_CIPHER_CTX_free(m->ctx); /* clears the key schedule */
	m->ctx = NULL;
}

int xm_mac_tag(struct xm_mac *m, __u64 counter, const struct xm_span *aad, __u32 n,
	       __u8 tag[XM_AUTH_TAG_LEN])
{
	__u8 iv[12] = {0};
	__be64 c = htobe64(counter);
	int out, i;

	if (!m->ctx)
		return -EIO;
	memcpy(iv + 4, &c, 8);
	if (EVP_EncryptInit_ex(m->ctx, NULL, NULL, NULL, iv) != 1)
		return -EIO;
	for (i = 0; i < (int)n; i++)
		if (aad[i].len &&
		    EVP_EncryptUpdate(m->ctx, NULL, &out, aad[i].data, (int)aad[i].len) != 1)
			return -EIO;
	if (EVP_EncryptFinal_ex(m->ctx, NULL, &out) != 1 ||
	    EVP_CIPHER_CTX_ctrl(m->ctx, EVP_CTRL_AEAD_GET_TAG, XM_AUTH_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

bool xm_mac_verify(struct xm_mac *m, __u64 counter, const struct xm_span *aad, __u32 n,
		   const __u8 tag[XM_AUTH_TAG_LEN])
{
	__u8 want[XM_AUTH_TAG_LEN];

	if (xm_mac_tag(m, counter, aad, n, want))
		return false;
	return CRYPTO_memcmp(want, tag, XM_AUTH_TAG_LEN) == 0;
}

static bool replay_bit(const struct xm_replay *r, __u64 age)
{
	return r->bits[age / 64] >> (age % 64) & 1;
}

bool xm_replay_fresh(const struct xm_replay *r, __u64 counter)
{
	if (!r->any || counter > r->top)
		return true;
	if (r->top - counter >= XM_REPLAY_WINDOW)
		return false;
	return !replay_bit(r, r->top - counter);
}

/* Every bit shift places older (toward higher indices); what falls off the end is forgotten. */
static void replay_age(struct xm_replay *r, __u64 shift)
{
	const int words = XM_REPLAY_WINDOW / 64;
	int w = (int)(shift / 64), b = (int)(shift % 64), j;

	for (j = words - 1; j >= 0; j--) {
		__u64 v = 0;

		if (j - w >= 0)
			v = r->bits[j - w] << b;
		if (b && j - w - 1 >= 0)
			v |= r->bits[j - w - 1] >> (64 - b);
		r->bits[j] = v;
	}
}

void xm_replay_mark(struct xm_replay *r, __u64 counter)
{
	if (!r->any || counter > r->top) {
		if (!r->any || counter - r->top >= XM_REPLAY_WINDOW)
			memset(r->bits, 0, sizeof(r->bits));
		else
			replay_age(r, counter - r->top);
		r->top = counter;
		r->any = true;
	}
	if (r->top - counter < XM_REPLAY_WINDOW)
		r->bits[(r->top - counter) / 64] |= 1ull << ((r->top - counter) % 64);
}
