/* SPDX-License-Identifier: GPL-2.0 */
/* Control requests: one line, a verb and its flags, parsed against one table of verbs; and one
 * connection's request and answer, read and written without ever blocking. */
#ifndef XM_CTL_H
#define XM_CTL_H

#include <stddef.h>

#include "repl/role.h"

/* The longest request line: a verb, its flags and a path (disk-attach ... path PATH). */
#define XM_CTL_LINE_MAX 4200

/*
 * Parses a request line ("verify mark", "promote force", "status text", ...): every word after the
 * verb must be one of that verb's flags.  Returns NULL, or the answer line for a bad request
 * ("error: ...").
 */
const char *xm_ctl_parse(const char *line, struct xm_ctl_req *req);

/* One control connection: its request as it arrives, then its answer as the client takes it. */
struct xm_ctl_conn {
	char req[XM_CTL_LINE_MAX]; /* NUL-terminated; a longer request is refused */
	size_t req_len;
	char *answer; /* malloc'd; written from answer_off */
	size_t answer_len, answer_off;
};

/*
 * Reads what the nonblocking socket fd holds.  Returns 0 once req holds a whole request (up to its
 * newline, or all the client sent before it shut its side), -EAGAIN while it is not whole yet,
 * -EMSGSIZE when it is longer than XM_CTL_LINE_MAX, -ECONNRESET when the client left without
 * a request, or another -errno.
 */
int xm_ctl_read_request(struct xm_ctl_conn *c, int fd);
/* The answer: line and a newline (copied).  Returns 0 or -ENOMEM. */
int xm_ctl_set_answer(struct xm_ctl_conn *c, const char *line);
/* The answer: buf, len bytes, which c now owns (free()d by xm_ctl_conn_free). */
void xm_ctl_take_answer(struct xm_ctl_conn *c, char *buf, size_t len);
/* Writes as much of the answer as fd takes now.  Returns 0 once all of it is written, -EAGAIN
 * while the client has not taken the rest, or -errno (the client went away). */
int xm_ctl_write_answer(struct xm_ctl_conn *c, int fd);
void xm_ctl_conn_free(struct xm_ctl_conn *c);

#endif
