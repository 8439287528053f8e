// SPDX-License-Identifier: GPL-2.0
/* The control verbs and their flags, in one table (docs/resync.md §7, README); one connection's
 * request and answer, without blocking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/params.h"
#include "daemon/ctl.h"
#include "daemon/evreaders.h"

#define MAX_WORDS 4

static const struct verb {
	const char *name;
	const char *flags[2];	/* the words it takes */
	enum xm_role role;	/* who answers: XM_ROLE_NONE is the daemon */
	const char *wrong_role; /* the answer when the other role runs */
} verbs[] = {
	{"status", {"text"}, XM_ROLE_NONE, NULL},
	{"promote", {"force"}, XM_ROLE_NONE, NULL},
	{"demote", {NULL}, XM_ROLE_NONE, NULL},
	{"disk-attach", {"full"}, XM_ROLE_NONE, NULL},
	{"disk-detach", {NULL}, XM_ROLE_NONE, NULL},
	{"events", {"now", "buffer"}, XM_ROLE_NONE, NULL}, /* "buffer BYTES" */
	{"verify", {"mark"}, XM_ROLE_PRIMARY, "error: verify runs on the primary"},
	{"resolve",
	 {"discard-local"},
	 XM_ROLE_SECONDARY,
	 "error: only a secondary can discard its changes (demote first)"},
};

static void set_flag(struct xm_ctl_req *req, const char *flag)
{
	if (!strcmp(flag, "force"))
		req->force = true;
	else if (!strcmp(flag, "mark"))
		req->mark = true;
	else if (!strcmp(flag, "discard-local"))
		req->discard_local = true;
	else if (!strcmp(flag, "text"))
		req->text = true;
	else if (!strcmp(flag, "full"))
		req->full = true;
	else if (!strcmp(flag, "now"))
		req->now = true;
}

/* events ... buffer BYTES: the reader's bound (docs/events.md).  Returns NULL or the answer. */
static const char *parse_buffer(const char *word, struct xm_ctl_req *req)
{
	static const struct xm_num_rule rule = {
		.min = XM_EV_BUFFER_MIN, .max = XM_EV_BUFFER_MAX, .size = true};
	static char answer[160];
	char err[96];

	if (!word)
		return "error: 'events' buffer wants a size";
	if (xm_parse_num(word, &rule, &req->buffer, err, sizeof(err))) {
		snprintf(answer, sizeof(answer), "error: 'events' buffer %s", err);
		return answer;
	}
	return NULL;
}

const char *xm_ctl_parse(const char *line, struct xm_ctl_req *req)
{
	static char answer[128], path[XM_CTL_LINE_MAX];
	char buf[XM_CTL_LINE_MAX], *words[MAX_WORDS + 1], *save = NULL, *w, *p;
	const struct verb *v = NULL;
	size_t i, k, n = 0;

	memset(req, 0, sizeof(*req));
	snprintf(buf, sizeof(buf), "%s", line);
	buf[strcspn(buf, "\n")] = 0;
	/* A path is the rest of the line after " path ", spaces and all (disk-attach). */
	p = strstr(buf, " path ");
	if (p) {
		snprintf(path, sizeof(path), "%s", p + 6);
		req->path = path;
		*p = 0;
	}
	for (w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == MAX_WORDS)
			return "error: too many words";
		words[n++] = w;
	}
	if (!n)
		return "error: empty request";
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]) && !v; i++)
		if (!strcmp(words[0], verbs[i].name))
			v = &verbs[i];
	if (!v)
		return "error: unknown request";
	for (k = 1; k < n; k++) {
		for (i = 0; i < 2 && v->flags[i]; i++)
			if (!strcmp(words[k], v->flags[i]))
				break;
		if (i == 2 || !v->flags[i]) {
			snprintf(answer, sizeof(answer), "error: '%.32s' takes no '%.32s'", v->name,
				 words[k]);
			return answer;
		}
		if (!strcmp(v->flags[i], "buffer")) {
			const char *bad = parse_buffer(k + 1 < n ? words[++k] : NULL, req);

			if (bad)
				return bad;
			continue;
		}
		set_flag(req, v->flags[i]);
	}
	if (req->path && strcmp(v->name, "disk-attach")) {
		snprintf(answer, sizeof(answer), "error: '%.32s' takes no path", v->name);
		return answer;
	}
	req->verb = v->name;
	req->role = v->role;
	req->wrong_role = v->wrong_role;
	return NULL;
}

int xm_ctl_read_request(struct xm_ctl_conn *c, int fd)
{
	char *nl;
	ssize_t n;

	for (;;) {
		if (c->req_len >= sizeof(c->req) - 1)
			return -EMSGSIZE;
		n = read(fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			/* A client that shut its side has said all it will say. */
			return c->req_len ? 0 : -ECONNRESET;
		c->req_len += (size_t)n;
		c->req[c->req_len] = '\0';
		nl = memchr(c->req, '\n', c->req_len);
		if (nl) {
			*nl = '\0';
			c->req_len = (size_t)(nl - c->req);
			return 0;
		}
	}
}

void xm_ctl_take_answer(struct xm_ctl_conn *c, char *buf, size_t len)
{
	free(c->answer);
	c->answer = buf;
	c->answer_len = len;
	c->answer_off = 0;
}

int xm_ctl_set_answer(struct xm_ctl_conn *c, const char *line)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 1);

	if (!buf)
		return -ENOMEM;
	memcpy(buf, line, len);
	buf[len] = '\n';
	xm_ctl_take_answer(c, buf, len + 1);
	return 0;
}

int xm_ctl_write_answer(struct xm_ctl_conn *c, int fd)
{
	ssize_t n;

	while (c->answer_off < c->answer_len) {
		/* MSG_NOSIGNAL: a client gone away is an error to us, not a SIGPIPE. */
		n = send(fd, c->answer + c->answer_off, c->answer_len - c->answer_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		c->answer_off += (size_t)n;
	}
	return 0;
}

void xm_ctl_conn_free(struct xm_ctl_conn *c)
{
	free(c->answer);
	c->answer = NULL;
	c->answer_len = c->answer_off = 0;
}
