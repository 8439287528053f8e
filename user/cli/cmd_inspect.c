// SPDX-License-Identifier: GPL-2.0
/* xdpmirror status and stats: what the daemon says plus the XDP program's pinned counters. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli/commands.h"
#include "util/log.h"
#include "conf/params.h"
#include "util/runstate.h"
#include "link/stats.h"

#define STATUS_JSON_VERSION 1

int xm_require_dev(const char *cmd, const char *dev)
{
	if (!dev) {
		pr_warn("%s: missing --dev IF", cmd);
		return -EINVAL;
	}
	if (xm_check_ifname(dev)) {
		pr_warn("%s: '%s': not an interface name", cmd, dev);
		return -EINVAL;
	}
	return 0;
}

static struct json_object *counter_json(const struct xm_counter *c)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "frames", json_object_new_uint64(c->frames));
	json_object_object_add(o, "bytes", json_object_new_uint64(c->bytes));
	return o;
}

/* Dotted counter names become nested objects: "rx.data" is {"rx":{"data":{...}}}. */
static struct json_object *xdp_stats_json(const struct xm_stats *s)
{
	struct json_object *root = json_object_new_object(), *group = NULL;
	char gname[16] = "";
	unsigned int i;

	for (i = 0; i < XM_STATS_NFIELDS; i++) {
		const char *name = xm_stats_field_name(i), *dot = strchr(name, '.');
		size_t glen = dot ? (size_t)(dot - name) : 0;

		if (!dot) {
			json_object_object_add(root, name, counter_json(xm_stats_field(s, i)));
			group = NULL;
			continue;
		}
		if (!group || glen != strlen(gname) || strncmp(name, gname, glen)) {
			snprintf(gname, sizeof(gname), "%.*s", (int)glen, name);
			group = json_object_new_object();
			json_object_object_add(root, gname, group);
		}
		json_object_object_add(group, dot + 1, counter_json(xm_stats_field(s, i)));
	}
	return root;
}

int xm_cli_devices(const char *cmd, const char *dev, char names[][16])
{
	if (!dev)
		return xm_list_attached(names, XM_MAX_DEVICES);
	if (xm_require_dev(cmd, dev))
		return -1;
	snprintf(names[0], 16, "%s", dev);
	return 1;
}

/* Attached interfaces: those whose lock a live daemon holds. */
int xm_list_attached(char names[][16], int max)
{
	struct dirent *e;
	int n = 0;
	DIR *dir;

	dir = opendir(XM_RUN_DIR);
	if (!dir)
		return 0;
	while ((e = readdir(dir)) && n < max) {
		size_t len = strlen(e->d_name);

		if (len <= 5 || len - 5 >= 16 || strcmp(e->d_name + len - 5, ".lock"))
			continue;
		snprintf(names[n], 16, "%.*s", (int)(len - 5), e->d_name);
		if (xm_run_holder(names[n]) > 0)
			n++;
	}
	closedir(dir);
	return n;
}

/* One interface: its JSON object into devices (json), or its text on stdout.  Returns
 * XM_EXIT_NOT_ATTACHED when no daemon listens, XM_EXIT_FAIL when one does but gave no status
 * (the reason on stderr, and in the JSON object as "error"). */
static int status_one(const char *dev, struct json_object *devices)
{
	static char answer[65536];
	struct json_object *o, *daemon;
	const char *why = NULL;
	struct xm_stats s;
	bool have_stats;
	int n;

	n = xm_cli_request(dev, devices ? "status" : "status text", answer, sizeof(answer));
	if (n > 0 && !strncmp(answer, "error: ", 7)) {
		answer[strcspn(answer, "\n")] = '\0';
		why = answer + 7;
	} else if (n < 0 && xm_cli_request_exit(n) != XM_EXIT_NOT_ATTACHED) {
		why = xm_cli_request_error(n);
	}
	if (why)
		pr_warn("status '%s': %s", dev, why);
	have_stats = !why && !xm_stats_read_pinned(dev, &s);
	if (!devices) {
		if (why)
			return XM_EXIT_FAIL;
		if (n < 0) {
			printf("%s: not attached\n", dev);
			return XM_EXIT_NOT_ATTACHED;
		}
		fputs(answer, stdout);
		if (have_stats)
			printf("xdp counters             seen %llu, to AF_XDP %llu, passed %llu, "
			       "dropped %llu ('xdpmirror stats --dev %s' for detail)\n",
			       (unsigned long long)s.seen.frames,
			       (unsigned long long)s.redirected.frames,
			       (unsigned long long)s.pass.frames,
			       (unsigned long long)(s.seen.frames - s.redirected.frames -
						    s.pass.frames),
			       dev);
		return XM_EXIT_OK;
	}
	o = json_object_new_object();
	json_object_array_add(devices, o);
	json_object_object_add(o, "dev", json_object_new_string(dev));
	if (why) {
		/* Whether it is attached is not known: a daemon is there, but said nothing. */
		json_object_object_add(o, "error", json_object_new_string(why));
		return XM_EXIT_FAIL;
	}
	daemon = n > 0 ? json_tokener_parse(answer) : NULL;
	json_object_object_add(o, "attached", json_object_new_boolean(daemon != NULL));
	if (!daemon)
		return XM_EXIT_NOT_ATTACHED;
	json_object_object_add(o, "daemon", daemon);
	if (have_stats)
		json_object_object_add(o, "xdp_stats", xdp_stats_json(&s));
	return XM_EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char names[XM_MAX_DEVICES][16];
	const char *dev = NULL;
	struct json_object *root = NULL, *devices = NULL;
	bool json = false;
	int c, i, n, ret = XM_EXIT_OK;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: xdpmirror status [--dev IF] [--json]\n");
			return XM_EXIT_OK;
		default:
			pr_warn("status: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (dev && xm_require_dev("status", dev))
		return XM_EXIT_USAGE;
	if (json) {
		root = json_object_new_object();
		devices = json_object_new_array();
		json_object_object_add(root, "version", json_object_new_int(STATUS_JSON_VERSION));
		json_object_object_add(root, "devices", devices);
	}
	if (dev) {
		ret = status_one(dev, devices);
	} else {
		n = xm_list_attached(names, XM_MAX_DEVICES);
		if (!n && !json)
			printf("no interface attached\n");
		/* Interfaces that are not attached (any more) are no failure of a listing. */
		for (i = 0; i < n; i++)
			if (status_one(names[i], devices) == XM_EXIT_FAIL)
				ret = XM_EXIT_FAIL;
	}
	if (json) {
		printf("%s\n",
		       json_object_to_json_string_ext(
			       root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	}
	return ret;
}

static double elapsed_s(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void print_stats_table(const char *dev, const struct xm_stats *prev,
			      const struct xm_stats *cur, double secs, bool all)
{
	unsigned int i;

	printf("%s: XDP counters, summed over CPUs, rates over %.1f s\n", dev, secs);
	printf("  %-18s %14s %16s %12s %14s\n", "counter", "frames", "bytes", "frames/s",
	       "bytes/s");
	for (i = 0; i < XM_STATS_NFIELDS; i++) {
		const struct xm_counter *c = xm_stats_field(cur, i), *p = xm_stats_field(prev, i);

		/* Zero drop/type rows are noise unless asked for; the totals always show. */
		if (!all && i >= 4 && !c->frames)
			continue;
		printf("  %-18s %14llu %16llu %12.0f %14.0f\n", xm_stats_field_name(i),
		       (unsigned long long)c->frames, (unsigned long long)c->bytes,
		       (double)(c->frames - p->frames) / secs,
		       (double)(c->bytes - p->bytes) / secs);
	}
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'}, {"interval", required_argument, NULL, 'i'},
		{"watch", no_argument, NULL, 'w'},     {"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},      {0},
	};
	static const struct xm_num_rule interval_rule = {.min = 10, .max = 3600000, .unit = "ms"};
	struct xm_stats prev, cur;
	struct timespec t0, t1, pause;
	char why[128];
	__u64 interval;
	const char *dev = NULL;
	bool watch = false, all = false;
	__u32 interval_ms = 1000;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:i:wah", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'i':
			if (xm_parse_num(optarg, &interval_rule, &interval, why, sizeof(why))) {
				pr_warn("stats: --interval %s", why);
				return XM_EXIT_USAGE;
			}
			interval_ms = (__u32)interval;
			break;
		case 'w':
			watch = true;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			printf("usage: xdpmirror stats --dev IF [--interval MS] [--watch] "
			       "[--all]\n");
			return XM_EXIT_OK;
		default:
			pr_warn("stats: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (xm_require_dev("stats", dev))
		return XM_EXIT_USAGE;
	err = xm_stats_read_pinned(dev, &prev);
	if (err == -ENOENT) {
		pr_warn("stats '%s': not attached (no pinned counters in %s/%s)", dev, XM_PIN_ROOT,
			dev);
		return XM_EXIT_NOT_ATTACHED;
	}
	if (err) {
		pr_warn("stats '%s': %s", dev,
			err == -EACCES || err == -EPERM ? "permission denied (run as root)"
							: strerror(-err));
		return XM_EXIT_FAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pause.tv_sec = interval_ms / 1000;
	pause.tv_nsec = (long)(interval_ms % 1000) * 1000000;
	do {
		nanosleep(&pause, NULL);
		err = xm_stats_read_pinned(dev, &cur);
		if (err) {
			pr_warn("stats '%s': counters went away (detached?)", dev);
			return XM_EXIT_NOT_ATTACHED;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		print_stats_table(dev, &prev, &cur, elapsed_s(&t0, &t1), all);
		fflush(stdout);
		prev = cur;
		t0 = t1;
	} while (watch);
	return XM_EXIT_OK;
}
