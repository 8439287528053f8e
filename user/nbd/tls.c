// SPDX-License-Identifier: GPL-2.0
/* TLS for NBD connections: the PSK file, and a GnuTLS session per connection between the request
 * parser and the socket, driven by the loop's readiness events without ever blocking. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gnutls/gnutls.h>

#include "nbd/internal.h"
#include "nbd/tls.h"
#include "util/log.h"

#define PSK_FILE_MAX   (64u * 1024)
#define PSK_USER_MAX   128u /* bytes of a user name */
#define PSK_KEY_MIN    16u  /* 128 bits; psktool makes 32 bytes */
#define PSK_KEY_MAX    512u /* the most psktool makes */
#define TLS_MAX_WARN   64   /* non-fatal handshake errors in a row before giving up */
#define TLS_CORK_BYTES (16u * 1024)

/*
 * Forward secrecy only (the PSK authenticates an (EC)DHE exchange), TLS 1.2 and 1.3: proto.md
 * requires 1.2 and advises against older versions.  No certificates, so no other key exchange.
 */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+DHE-PSK"

struct psk_entry {
	char user[PSK_USER_MAX + 1];
	gnutls_datum_t key;
};

struct nbd_tls_creds {
	gnutls_psk_server_credentials_t psk;
	gnutls_priority_t prio;
	struct psk_entry *keys;
	size_t nkeys;
};

struct nbd_tls_conn {
	gnutls_session_t session;
	/* Handshake bytes the parser had read before STARTTLS was answered. */
	char *pre;
	size_t pre_len, pre_off;
	bool up;     /* handshake complete */
	bool failed; /* a fatal error: no close_notify */
	bool known;  /* the client's user name is in the file */
	char user[PSK_USER_MAX + 1];
	char peer[INET6_ADDRSTRLEN + 8];
};

static void psk_free(struct psk_entry *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		explicit_bzero(keys[i].key.data, keys[i].key.size);
		gnutls_free(keys[i].key.data);
	}
	free(keys);
}

/* One "user:hexkey" line (psktool's format) into e; 0 or -EINVAL with a reason. */
static int psk_parse_line(char *line, struct psk_entry *e, char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	gnutls_datum_t hex;
	size_t ulen;

	if (!colon) {
		snprintf(err, errlen, "want 'user:hexkey' (as psktool writes it)");
		return -EINVAL;
	}
	ulen = (size_t)(colon - line);
	if (!ulen || ulen > PSK_USER_MAX) {
		snprintf(err, errlen, "a user name has 1-%u bytes", PSK_USER_MAX);
		return -EINVAL;
	}
	memcpy(e->user, line, ulen);
	e->user[ulen] = '\0';
	hex.data = (unsigned char *)colon + 1;
	hex.size = (unsigned int)strlen(colon + 1);
	if (!hex.size || hex.size % 2 || gnutls_hex_decode2(&hex, &e->key)) {
		snprintf(err, errlen, "the key of '%s' is not hexadecimal", e->user);
		return -EINVAL;
	}
	if (e->key.size < PSK_KEY_MIN || e->key.size > PSK_KEY_MAX) {
		snprintf(err, errlen, "the key of '%s' has %u bytes, want %u-%u (psktool makes 32)",
			 e->user, e->key.size, PSK_KEY_MIN, PSK_KEY_MAX);
		explicit_bzero(e->key.data, e->key.size);
		gnutls_free(e->key.data);
		e->key.data = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Parses text (NUL-terminated, modified) into keys; 0 or -errno with "line N: reason". */
static int psk_parse(char *text, struct psk_entry **out, size_t *nout, char *err, size_t errlen)
{
	struct psk_entry *keys = NULL;
	char *line, *next, why[192];
	size_t n = 0, cap = 0, i, len;
	int lineno = 0, ret = 0;

	for (line = text; line && !ret; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		len = strlen(line);
		while (len &&
		       (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		if (!len)
			continue;
		if (n == cap) {
			struct psk_entry *bigger =
				realloc(keys, (cap ? 2 * cap : 4) * sizeof(*keys));

			if (!bigger) {
				ret = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				break;
			}
			keys = bigger;
			cap = cap ? 2 * cap : 4;
		}
		memset(&keys[n], 0, sizeof(keys[n]));
		ret = psk_parse_line(line, &keys[n], why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "line %d: %s", lineno, why);
			break;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(keys[i].user, keys[n].user))
				break;
		n++;
		if (i < n - 1) {
			snprintf(err, errlen, "line %d: user '%s' given twice", lineno,
				 keys[i].user);
			ret = -EINVAL;
		}
	}
	if (!ret && !n) {
		snprintf(err, errlen, "no keys (make one with 'psktool -u NAME -p FILE')");
		ret = -EINVAL;
	}
	if (ret) {
		psk_free(keys, n);
		return ret;
	}
	*out = keys;
	*nout = n;
	return 0;
}

/* Reads and checks the file the way the auth key is checked: a regular file of this user that
 * nobody else can read.  0 or -errno with "TLS PSK file 'PATH': reason". */
static int psk_load(const char *path, struct psk_entry **keys, size_t *n, char *err, size_t errlen)
{
	char why[256], *text = NULL;
	struct stat st;
	ssize_t got;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "%s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(why, sizeof(why), "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(why, sizeof(why), "not a regular file");
	} else if (st.st_uid != geteuid()) {
		ret = -EPERM;
		snprintf(why, sizeof(why), "owned by uid %u, not by this user (%u)",
			 (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		ret = -EPERM;
		snprintf(why, sizeof(why), "mode %04o lets group or others at it (chmod 600 %s)",
			 (unsigned)(st.st_mode & 07777), path);
	} else if (st.st_size > PSK_FILE_MAX) {
		ret = -EFBIG;
		snprintf(why, sizeof(why), "larger than %u KiB", PSK_FILE_MAX / 1024);
	} else if (!(text = calloc(1, (size_t)st.st_size + 1))) {
		ret = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
	} else {
		got = read(fd, text, (size_t)st.st_size);
		if (got != st.st_size) {
			ret = got < 0 ? -errno : -EIO;
			snprintf(why, sizeof(why), "short read");
		} else if (memchr(text, '\0', (size_t)got)) {
			ret = -EINVAL;
			snprintf(why, sizeof(why), "not a text file");
		} else {
			ret = psk_parse(text, keys, n, why, sizeof(why));
		}
		explicit_bzero(text, (size_t)st.st_size);
	}
	free(text);
	close(fd);
out:
	if (ret)
		snprintf(err, errlen, "TLS PSK file '%s': %s", path, why);
	return ret;
}

int xm_nbd_tls_psk_check(const char *path, char *err, size_t errlen)
{
	struct psk_entry *keys;
	size_t n;
	int ret = psk_load(path, &keys, &n, err, errlen);

	if (!ret)
		psk_free(keys, n);
	return ret;
}

/* GnuTLS asks for the key of the user the client names; the session's pointer is the conn. */
static int psk_lookup(gnutls_session_t session, const char *user, gnutls_datum_t *key)
{
	struct nbd_conn *c = gnutls_session_get_ptr(session);
	const struct nbd_tls_creds *cr = c->srv->tls;
	size_t i;

	snprintf(c->tls->user, sizeof(c->tls->user), "%s", user);
	for (i = 0; i < cr->nkeys; i++) {
		if (strcmp(cr->keys[i].user, user))
			continue;
		key->data = gnutls_malloc(cr->keys[i].key.size);
		if (!key->data)
			return -1;
		memcpy(key->data, cr->keys[i].key.data, cr->keys[i].key.size);
		key->size = cr->keys[i].key.size;
		c->tls->known = true;
		return 0;
	}
	return -1;
}

struct nbd_tls_creds *nbd_tls_creds_load(const char *path)
{
	struct nbd_tls_creds *cr = calloc(1, sizeof(*cr));
	char err[PATH_MAX + 256];
	int ret;

	if (!cr)
		return NULL;
	ret = psk_load(path, &cr->keys, &cr->nkeys, err, sizeof(err));
	if (ret) {
		pr_warn("nbd: %s", err);
		free(cr);
		errno = -ret;
		return NULL;
	}
	ret = gnutls_psk_allocate_server_credentials(&cr->psk);
	if (!ret) {
		gnutls_psk_set_server_credentials_function(cr->psk, psk_lookup);
		/* DHE-PSK under TLS 1.2 needs a group; RFC 7919's, no generation. */
		ret = gnutls_psk_set_server_known_dh_params(cr->psk, GNUTLS_SEC_PARAM_MEDIUM);
	}
	if (!ret)
		ret = gnutls_priority_init(&cr->prio, TLS_PRIORITY, NULL);
	if (ret) {
		pr_warn("nbd: TLS setup: %s", gnutls_strerror(ret));
		nbd_tls_creds_free(cr);
		errno = EINVAL;
		return NULL;
	}
	return cr;
}

void nbd_tls_creds_free(struct nbd_tls_creds *cr)
{
	if (!cr)
		return;
	if (cr->prio)
		gnutls_priority_deinit(cr->prio);
	if (cr->psk)
		gnutls_psk_free_server_credentials(cr->psk);
	psk_free(cr->keys, cr->nkeys);
	free(cr);
}

/* Transport: GnuTLS writes records into the connection's output queue, which never refuses
 * (conn_over_limit bounds it), so a record is never half written and no call returns
 * GNUTLS_E_AGAIN for want of room: only for want of input, which the POLLIN watch brings. */
static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct nbd_conn *c = ptr;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	if (c->closed) {
		/* close_notify from nbd_tls_end: now or never. */
		if (send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			gnutls_transport_set_errno(c->tls->session, errno);
		return (ssize_t)len;
	}
	conn_send_raw(c, &iov, 1);
	if (c->closed) {
		gnutls_transport_set_errno(c->tls->session, EPIPE);
		return -1;
	}
	return (ssize_t)len;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct nbd_conn *c = ptr;
	struct nbd_tls_conn *t = c->tls;
	ssize_t n;

	if (t->pre_off < t->pre_len) {
		n = (ssize_t)(len < t->pre_len - t->pre_off ? len : t->pre_len - t->pre_off);
		memcpy(buf, t->pre + t->pre_off, (size_t)n);
		t->pre_off += (size_t)n;
		return n;
	}
	do
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		gnutls_transport_set_errno(t->session, errno);
	return n;
}

/* Never waits: the loop does the waiting. */
static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct nbd_conn *c = ptr;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (c->tls->pre_off < c->tls->pre_len)
		return 1;
	return poll(&p, 1, 0);
}

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(out, len, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &slen))
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
}

int nbd_tls_start(struct nbd_conn *c)
{
	struct nbd_tls_conn *t = calloc(1, sizeof(*t));
	size_t left = c->in_end - c->in_start;
	int ret;

	if (!t)
		return -ENOMEM;
	if (left) {
		/* A client that did not wait for the ACK: its handshake began in inbuf. */
		t->pre = malloc(left);
		if (!t->pre) {
			free(t);
			return -ENOMEM;
		}
		memcpy(t->pre, c->inbuf + c->in_start, left);
		t->pre_len = left;
	}
	c->in_start = c->in_end = 0;
	ret = gnutls_init(&t->session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
	if (!ret)
		ret = gnutls_priority_set(t->session, c->srv->tls->prio);
	if (!ret)
		ret = gnutls_credentials_set(t->session, GNUTLS_CRD_PSK, c->srv->tls->psk);
	if (ret) {
		pr_warn("nbd: connection %llu: TLS session: %s", (unsigned long long)c->id,
			gnutls_strerror(ret));
		if (t->session)
			gnutls_deinit(t->session);
		free(t->pre);
		free(t);
		return -ENOMEM;
	}
	gnutls_session_set_ptr(t->session, c);
	gnutls_transport_set_ptr(t->session, c);
	gnutls_transport_set_push_function(t->session, tls_push);
	gnutls_transport_set_pull_function(t->session, tls_pull);
	gnutls_transport_set_pull_timeout_function(t->session, tls_pull_timeout);
	gnutls_handshake_set_timeout(t->session, 0);
	peer_name(c->fd, t->peer, sizeof(t->peer));
	c->tls = t;
	return 0;
}

static void tls_handshake_failed(struct nbd_conn *c, int err)
{
	struct nbd_tls_conn *t = c->tls;
	char why[256];

	t->failed = true;
	if (err == GNUTLS_E_PREMATURE_TERMINATION || err == GNUTLS_E_PULL_ERROR) {
		snprintf(why, sizeof(why), "closed by the client during the TLS handshake");
	} else {
		/* The client learns that it failed; a PSK client is told nothing more by design. */
		gnutls_alert_send_appropriate(t->session, err);
		snprintf(why, sizeof(why), "TLS handshake failed: %s", gnutls_strerror(err));
	}
	if (!t->user[0])
		pr_warn("nbd: connection %llu from %s: %s", (unsigned long long)c->id, t->peer,
			why);
	else if (!t->known)
		pr_warn("nbd: connection %llu from %s: %s (user '%s' is not in the PSK file)",
			(unsigned long long)c->id, t->peer, why, t->user);
	else
		pr_warn("nbd: connection %llu from %s: %s (user '%s': not this key?)",
			(unsigned long long)c->id, t->peer, why, t->user);
	conn_close(c, why);
}

/* 1 once the handshake is complete, 0 while it waits for input, -1 when c was closed. */
static int tls_handshake(struct nbd_conn *c)
{
	struct nbd_tls_conn *t = c->tls;
	int ret, warnings = 0;

	for (;;) {
		ret = gnutls_handshake(t->session);
		if (ret == GNUTLS_E_SUCCESS)
			break;
		if (ret == GNUTLS_E_AGAIN)
			return 0;
		if (gnutls_error_is_fatal(ret) || ++warnings > TLS_MAX_WARN) {
			tls_handshake_failed(c, ret);
			return -1;
		}
	}
	if (c->closed)
		return -1;
	t->up = true;
	pr_info("nbd: connection %llu from %s: TLS as user '%s'", (unsigned long long)c->id,
		t->peer, gnutls_psk_server_get_username(t->session));
	return 1;
}

ssize_t nbd_tls_recv(struct nbd_conn *c, void *buf, size_t len)
{
	struct nbd_tls_conn *t = c->tls;
	int warnings = 0, hs;
	ssize_t n;

	if (!t->up) {
		hs = tls_handshake(c);
		if (hs <= 0)
			return hs;
	}
	for (;;) {
		n = gnutls_record_recv(t->session, buf, len);
		if (n > 0)
			return n;
		if (n == GNUTLS_E_AGAIN)
			return 0;
		if (!n || n == GNUTLS_E_PREMATURE_TERMINATION) {
			conn_close(c, "closed by the client");
			return -1;
		}
		if (n == GNUTLS_E_REHANDSHAKE || gnutls_error_is_fatal((int)n) ||
		    ++warnings > TLS_MAX_WARN) {
			t->failed = true;
			pr_info("nbd: connection %llu from %s: TLS: %s", (unsigned long long)c->id,
				t->peer, gnutls_strerror((int)n));
			conn_close(c, gnutls_strerror((int)n));
			return -1;
		}
	}
}

void nbd_tls_send(struct nbd_conn *c, const struct iovec *iov, int iovcnt)
{
	gnutls_session_t s = c->tls->session;
	size_t total = 0, off;
	bool cork;
	ssize_t n;
	int i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	/* A small reply and its header in one record; a large READ is not copied again for it. */
	cork = iovcnt > 1 && total <= TLS_CORK_BYTES;
	if (cork)
		gnutls_record_cork(s);
	for (i = 0; i < iovcnt && !c->closed; i++) {
		for (off = 0; off < iov[i].iov_len && !c->closed; off += (size_t)n) {
			n = gnutls_record_send(s, (const char *)iov[i].iov_base + off,
					       iov[i].iov_len - off);
			if (n < 0 && !c->closed) {
				c->tls->failed = true;
				conn_close(c, gnutls_strerror((int)n));
			}
			if (n < 0)
				return;
		}
	}
	if (cork && !c->closed) {
		n = gnutls_record_uncork(s, 0);
		if (n < 0 && !c->closed) {
			c->tls->failed = true;
			conn_close(c, gnutls_strerror((int)n));
		}
	}
}

void nbd_tls_end(struct nbd_conn *c)
{
	struct nbd_tls_conn *t = c->tls;

	if (!t)
		return;
	/* close_notify says "nothing was cut off": only true when every reply left. */
	if (t->up && !t->failed && !c->out_head)
		gnutls_bye(t->session, GNUTLS_SHUT_WR);
	gnutls_deinit(t->session);
	free(t->pre);
	free(t);
	c->tls = NULL;
}
