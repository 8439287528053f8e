/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Devices' status as Prometheus metrics, in the text exposition format (version 0.0.4): the one
 * formatter behind `xdpmirror metrics` and `attach --metrics-listen` (docs/metrics.md).  Pure: it
 * reads the status JSON the daemon answers on its control socket and the XDP program's counters,
 * and touches nothing else.
 */
#ifndef XM_METRICS_FORMAT_H
#define XM_METRICS_FORMAT_H

#include <stdio.h>

#include "xdpmirror.h"

struct json_object;

/* What is known of one device. */
struct xm_metrics_dev {
	const char *dev;
	/* The daemon's status object (the "daemon" object of `status --json`); NULL when the
	 * daemon did not answer: then only xdpmirror_up (0) is written for the device. */
	struct json_object *status;
	/* The XDP program's counters summed over CPUs; NULL when they could not be read. */
	const struct xm_stats *xdp;
};

/*
 * Writes the metrics of devs[0..n) to out: each family once (HELP, TYPE, then its samples of
 * every device), as the format wants, and only families with a sample.  Returns 0 or -EIO.
 */
int xm_metrics_write(FILE *out, const struct xm_metrics_dev *devs, unsigned int n);

/* Writes s as a label value, escaped: backslash, double quote and newline. */
void xm_metrics_escape(FILE *out, const char *s);

/* The Content-Type of what xm_metrics_write() writes. */
#define XM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
