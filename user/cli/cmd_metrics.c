// SPDX-License-Identifier: GPL-2.0
/* xdpmirror metrics: attached devices' status as Prometheus metrics on stdout, for
 * node_exporter's textfile collector (docs/metrics.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "metrics/collect.h"
#include "util/log.h"

/* Collects one device into s; one whose daemon does not answer is said on stderr (and written
 * with xdpmirror_up 0).  Returns the device's exit code. */
static int collect_one(const char *dev, struct xm_metrics_sample *s)
{
	char why[256];
	int err;

	err = xm_metrics_collect(dev, xm_cli_request, s, why, sizeof(why));
	if (!err)
		return XM_EXIT_OK;
	pr_warn("metrics '%s': %s", dev, err == -EPROTO ? why : xm_cli_request_error(err));
	return err == -EPROTO ? XM_EXIT_FAIL : xm_cli_request_exit(err);
}

int cmd_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static struct xm_metrics_sample samples[XM_MAX_DEVICES];
	struct xm_metrics_dev devs[XM_MAX_DEVICES];
	char names[XM_MAX_DEVICES][16];
	const char *dev = NULL;
	int c, i, n, rc, ndevs = 0, ret = XM_EXIT_OK;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'h':
			printf("usage: xdpmirror metrics [--dev IF]\n");
			return XM_EXIT_OK;
		default:
			pr_warn("metrics: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("metrics: unexpected argument '%s'", argv[optind]);
		return XM_EXIT_USAGE;
	}
	n = xm_cli_devices("metrics", dev, names);
	if (n < 0)
		return XM_EXIT_USAGE;
	for (i = 0; i < n; i++) {
		rc = collect_one(names[i], &samples[i]);
		/* A device that went away between the listing and its request was not asked for. */
		if (rc == XM_EXIT_NOT_ATTACHED && !dev)
			continue;
		if (rc != XM_EXIT_OK && (ret == XM_EXIT_OK || rc == XM_EXIT_FAIL))
			ret = rc;
		devs[ndevs++] = samples[i].m;
	}
	if (xm_metrics_write(stdout, devs, (unsigned int)ndevs)) {
		pr_warn("metrics: cannot write to stdout");
		ret = XM_EXIT_FAIL;
	}
	for (i = 0; i < n; i++)
		xm_metrics_sample_free(&samples[i]);
	return ret;
}
