// SPDX-License-Identifier: GPL-2.0
/* The control verbs and their flags, in one table (docs/resync.md §7, README). */
#include <stdio.h>
#include <string.h>

#include "daemon/ctl.h"

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
