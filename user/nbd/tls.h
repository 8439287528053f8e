/* SPDX-License-Identifier: GPL-2.0 */
/* TLS for NBD connections (NBD_OPT_STARTTLS, GnuTLS with pre-shared keys), below the parser and
 * above the socket: never blocks the loop. */
#ifndef XM_NBD_TLS_H
#define XM_NBD_TLS_H

#include <sys/types.h>
#include <sys/uio.h>

struct nbd_conn;
struct nbd_tls_creds;

/* The keys of a PSK file and the priorities, shared by every connection of a server.  Returns
 * NULL with errno set; the reason is logged. */
struct nbd_tls_creds *nbd_tls_creds_load(const char *path);
void nbd_tls_creds_free(struct nbd_tls_creds *cr);

/* After the ACK to NBD_OPT_STARTTLS was queued: everything from now on goes through TLS, starting
 * with the handshake, whose bytes already buffered in c->inbuf are handed over.  0 or -errno. */
int nbd_tls_start(struct nbd_conn *c);
/* Like recv(): decrypted bytes (> 0), 0 when nothing is ready, -1 when c was closed.  Runs the
 * handshake first while it is not complete. */
ssize_t nbd_tls_recv(struct nbd_conn *c, void *buf, size_t len);
/* Encrypts iov into c's output queue, in order; closes c on an error. */
void nbd_tls_send(struct nbd_conn *c, const struct iovec *iov, int iovcnt);
/* From conn_close, before the socket closes: close_notify if every reply went out, then free. */
void nbd_tls_end(struct nbd_conn *c);

#endif
