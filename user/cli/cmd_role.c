// SPDX-License-Identifier: GPL-2.0
/* xdpmirror promote, demote, resolve and verify: requests to a running daemon (docs/resync.md). */
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/log.h"
#include "util/runstate.h"

#define ROLE_WAIT_MS 15000
#define STATUS_BYTES 65536
#define POLL_MS	     50

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Sends one request; prints the daemon's error line.  Returns an exit code. */
static int request(const char *cmd, const char *dev, const char *req)
{
	char answer[512];
	int n = xm_ctl_request(dev, req, answer, sizeof(answer));

	if (n <= 0) {
		pr_warn("%s '%s': not attached", cmd, dev);
		return XM_EXIT_NOT_ATTACHED;
	}
	answer[strcspn(answer, "\n")] = 0;
	if (strncmp(answer, "ok", 2)) {
		pr_warn("%s '%s': %s", cmd, dev,
			strncmp(answer, "error: ", 7) ? answer : answer + 7);
		return XM_EXIT_FAIL;
	}
	return XM_EXIT_OK;
}

/* The daemon's status JSON; 0 when it does not answer. */
static int status(const char *dev, char *buf)
{
	int n = xm_ctl_request(dev, "status", buf, STATUS_BYTES);

	return n > 0 ? n : 0;
}

/* A string field of the status, found by its key (the status is ours: flat enough for this). */
static bool field_is(const char *json, const char *key, const char *val)
{
	char pat[128];

	snprintf(pat, sizeof(pat), "\"%s\":\"%s\"", key, val);
	return strstr(json, pat) != NULL;
}

/* A number field of the first object that has it; -1 if absent. */
static double field_num(const char *json, const char *key)
{
	char pat[128];
	const char *at;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	at = strstr(json, pat);
	return at ? strtod(at + strlen(pat), NULL) : -1;
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
	static char buf[STATUS_BYTES];
	int waited;

	for (waited = 0; waited < ROLE_WAIT_MS; waited += POLL_MS) {
		if (!status(dev, buf)) {
			pr_warn("%s '%s': the daemon went away", cmd, dev);
			return XM_EXIT_FAIL;
		}
		if (field_is(buf, "role", role)) {
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

static void progress(const char *buf, bool tty)
{
	double pct = field_num(strstr(buf, "\"verify\":") ?: buf, "percent");
	double differ = field_num(strstr(buf, "\"verify\":") ?: buf, "regions_differ");

	if (tty)
		fprintf(stderr, "\rverify %5.1f%%, %.0f region(s) differ", pct < 0 ? 0 : pct,
			differ < 0 ? 0 : differ);
}

int cmd_verify(int argc, char **argv)
{
	static char buf[STATUS_BYTES];
	const char *dev = NULL, *v;
	bool mark = false, tty = isatty(2);
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
		if (!status(dev, buf)) {
			pr_warn("verify '%s': the daemon went away", dev);
			return XM_EXIT_FAIL;
		}
		v = strstr(buf, "\"verify\":");
		if (!v) {
			pr_warn("verify '%s': no verify status", dev);
			return XM_EXIT_FAIL;
		}
		progress(buf, tty);
		if (strstr(v, "\"running\":false"))
			break;
	}
	if (tty)
		fprintf(stderr, "\n");
	if (!strstr(v, "\"finished\":true")) {
		pr_warn("verify '%s': interrupted (the session ended)", dev);
		return XM_EXIT_FAIL;
	}
	printf("%s: verify done: %.0f region(s) differ, %.0f equal, %.0f skipped%s\n", dev,
	       field_num(v, "regions_differ"), field_num(v, "regions_equal"),
	       field_num(v, "regions_skipped"),
	       mark && field_num(v, "regions_differ") > 0 ? " (marked for resync)" : "");
	return field_num(v, "regions_differ") > 0 ? XM_EXIT_FAIL : XM_EXIT_OK;
}
