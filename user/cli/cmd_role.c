// SPDX-License-Identifier: GPL-2.0
/* xdpmirror promote, demote, resolve, verify and disk: requests to a running daemon
 * (docs/resync.md, docs/protocol.md §15). */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/commands.h"
#include "util/log.h"
#include "util/runstate.h"

#define ROLE_WAIT_MS   15000
#define STATUS_BYTES   65536
#define POLL_MS	       50
#define XM_CTL_REQ_MAX (PATH_MAX + 64) /* "disk-attach full path " and a path */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Sends one request; prints the daemon's error line.  Returns an exit code. */
static int request(const char *cmd, const char *dev, const char *req)
{
	char answer[512];
	int n = xm_cli_request(dev, req, answer, sizeof(answer));

	if (n < 0) {
		pr_warn("%s '%s': %s", cmd, dev, xm_cli_request_error(n));
		return xm_cli_request_exit(n);
	}
	answer[strcspn(answer, "\n")] = 0;
	if (strncmp(answer, "ok", 2)) {
		pr_warn("%s '%s': %s", cmd, dev,
			strncmp(answer, "error: ", 7) ? answer : answer + 7);
		return XM_EXIT_FAIL;
	}
	return XM_EXIT_OK;
}

/* The daemon's status, parsed; NULL when it does not answer (or answers nonsense). */
static struct json_object *status(const char *dev)
{
	static char buf[STATUS_BYTES];
	int n = xm_cli_request(dev, "status", buf, sizeof(buf));

	return n > 0 ? json_tokener_parse(buf) : NULL;
}

/* The member at a dotted path ("replication.verify.percent"), or NULL. */
static struct json_object *member(struct json_object *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o && *path) {
		dot = strchr(path, '.');
		snprintf(key, sizeof(key), "%.*s", dot ? (int)(dot - path) : (int)strlen(path),
			 path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path = dot ? dot + 1 : "";
	}
	return o;
}

static const char *member_str(struct json_object *o, const char *path)
{
	struct json_object *m = member(o, path);

	return m && json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "";
}

/* A number member; -1 if absent. */
static double member_num(struct json_object *o, const char *path)
{
	struct json_object *m = member(o, path);

	return m ? json_object_get_double(m) : -1;
}

static bool member_true(struct json_object *o, const char *path)
{
	struct json_object *m = member(o, path);

	return m && json_object_get_boolean(m);
}

static int parse_dev(const char *cmd, int argc, char **argv, const char **dev, bool *flag,
		     const char *flag_name, const char *usage)
{
	const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{flag_name ? flag_name : "help", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			*dev = optarg;
			break;
		case 'f':
			if (!flag_name)
				goto help;
			*flag = true;
			break;
		case 'h':
		help:
			printf("usage: xdpmirror %s\n", usage);
			return -1;
		default:
			pr_warn("%s: unknown option '%s'", cmd, argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("%s: unexpected argument '%s'", cmd, argv[optind]);
		return XM_EXIT_USAGE;
	}
	return xm_require_dev(cmd, *dev) ? XM_EXIT_USAGE : 0;
}

/* Waits until the daemon runs as the wanted role. */
static int wait_role(const char *cmd, const char *dev, const char *role)
{
	struct json_object *st;
	int waited;
	bool done;

	for (waited = 0; waited < ROLE_WAIT_MS; waited += POLL_MS) {
		st = status(dev);
		if (!st) {
			pr_warn("%s '%s': the daemon went away", cmd, dev);
			return XM_EXIT_FAIL;
		}
		done = !strcmp(member_str(st, "role"), role);
		json_object_put(st);
		if (done) {
			printf("%s: %s\n", dev, role);
			return XM_EXIT_OK;
		}
		sleep_ms(POLL_MS);
	}
	pr_warn("%s '%s': still not %s after %d s", cmd, dev, role, ROLE_WAIT_MS / 1000);
	return XM_EXIT_FAIL;
}

int cmd_promote(int argc, char **argv)
{
	const char *dev = NULL;
	bool force = false;
	int ret = parse_dev("promote", argc, argv, &dev, &force, "force",
			    "promote --dev IF [--force]   (secondary -> primary)");

	if (ret)
		return ret < 0 ? XM_EXIT_OK : ret;
	ret = request("promote", dev, force ? "promote force" : "promote");
	return ret ? ret : wait_role("promote", dev, "primary");
}

int cmd_demote(int argc, char **argv)
{
	const char *dev = NULL;
	int ret = parse_dev("demote", argc, argv, &dev, NULL, NULL,
			    "demote --dev IF   (primary -> secondary)");

	if (ret)
		return ret < 0 ? XM_EXIT_OK : ret;
	ret = request("demote", dev, "demote");
	return ret ? ret : wait_role("demote", dev, "secondary");
}

int cmd_resolve(int argc, char **argv)
{
	const char *dev = NULL;
	bool discard = false;
	int ret = parse_dev("resolve", argc, argv, &dev, &discard, "discard-local",
			    "resolve --dev IF --discard-local   (on the secondary whose changes "
			    "are dropped)");

	if (ret)
		return ret < 0 ? XM_EXIT_OK : ret;
	if (!discard) {
		pr_warn("resolve: say which side loses: --discard-local on the box whose changes "
			"are dropped");
		return XM_EXIT_USAGE;
	}
	ret = request("resolve", dev, "resolve discard-local");
	if (!ret)
		printf("%s: changes here will be replaced by the primary's at the next handshake\n",
		       dev);
	return ret;
}

static void progress(struct json_object *v, bool tty)
{
	double pct = member_num(v, "percent"), differ = member_num(v, "regions_differ");

	if (tty)
		fprintf(stderr, "\rverify %5.1f%%, %.0f region(s) differ", pct < 0 ? 0 : pct,
			differ < 0 ? 0 : differ);
}

int cmd_verify(int argc, char **argv)
{
	const char *dev = NULL;
	struct json_object *st = NULL, *v;
	bool mark = false, tty = isatty(2);
	double differ;
	int ret = parse_dev("verify", argc, argv, &dev, &mark, "mark",
			    "verify --dev IF [--mark]   (on the primary; --mark resyncs what "
			    "differs)");

	if (ret)
		return ret < 0 ? XM_EXIT_OK : ret;
	ret = request("verify", dev, mark ? "verify mark" : "verify");
	if (ret)
		return ret;
	for (;;) {
		sleep_ms(POLL_MS * 4);
		json_object_put(st);
		st = status(dev);
		if (!st) {
			pr_warn("verify '%s': the daemon went away", dev);
			return XM_EXIT_FAIL;
		}
		v = member(st, "replication.verify");
		if (!v) {
			pr_warn("verify '%s': no verify status", dev);
			json_object_put(st);
			return XM_EXIT_FAIL;
		}
		progress(v, tty);
		if (!member_true(v, "running"))
			break;
	}
	if (tty)
		fprintf(stderr, "\n");
	if (!member_true(v, "finished")) {
		pr_warn("verify '%s': interrupted (the session ended)", dev);
		json_object_put(st);
		return XM_EXIT_FAIL;
	}
	differ = member_num(v, "regions_differ");
	printf("%s: verify done: %.0f region(s) differ, %.0f equal, %.0f skipped%s\n", dev, differ,
	       member_num(v, "regions_equal"), member_num(v, "regions_skipped"),
	       mark && differ > 0 ? " (marked for resync)" : "");
	json_object_put(st);
	return differ > 0 ? XM_EXIT_FAIL : XM_EXIT_OK;
}

/* xdpmirror disk attach|detach (docs/protocol.md §15.4): the daemon opens or closes the disk. */
int cmd_disk(int argc, char **argv)
{
	static const char usage[] = "usage: xdpmirror disk attach --dev IF [--disk PATH] [--full]\n"
				    "       xdpmirror disk detach --dev IF\n";
	const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"disk", required_argument, NULL, 'k'},
		{"full", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dev = NULL, *path = NULL;
	char req[XM_CTL_REQ_MAX];
	bool attach, full = false;
	int c;

	if (argc < 2 || (strcmp(argv[1], "attach") && strcmp(argv[1], "detach"))) {
		if (argc >= 2 && !strcmp(argv[1], "--help")) {
			fputs(usage, stdout);
			return XM_EXIT_OK;
		}
		pr_warn("disk: say attach or detach");
		fputs(usage, stderr);
		return XM_EXIT_USAGE;
	}
	attach = !strcmp(argv[1], "attach");
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'k':
		case 'f':
			if (!attach) {
				pr_warn("disk detach: unknown option '%s'", argv[optind - 1]);
				return XM_EXIT_USAGE;
			}
			if (c == 'k')
				path = optarg;
			else
				full = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return XM_EXIT_OK;
		default:
			pr_warn("disk %s: unknown option '%s'", argv[1], argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("disk %s: unexpected argument '%s'", argv[1], argv[optind]);
		return XM_EXIT_USAGE;
	}
	if (xm_require_dev(attach ? "disk attach" : "disk detach", dev))
		return XM_EXIT_USAGE;
	if (path && (!*path || strchr(path, '\n') || strlen(path) >= PATH_MAX)) {
		pr_warn("disk attach: '%s': not a usable path", path);
		return XM_EXIT_USAGE;
	}
	if (!attach)
		return request("disk detach", dev, "disk-detach");
	snprintf(req, sizeof(req), "disk-attach%s%s%s", full ? " full" : "", path ? " path " : "",
		 path ? path : "");
	c = request("disk attach", dev, req);
	if (!c)
		printf("%s: disk attached\n", dev);
	return c;
}
