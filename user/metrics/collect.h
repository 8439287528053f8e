/* SPDX-License-Identifier: GPL-2.0 */
/* What the metrics of one device are made from, fetched the way the CLI fetches it: the daemon's
 * status over its control socket and the XDP program's pinned counters.  Touches nothing of the
 * daemon's own, so the metrics server's thread may call it (docs/metrics.md). */
#ifndef XM_METRICS_COLLECT_H
#define XM_METRICS_COLLECT_H

#include <stddef.h>

#include "metrics/format.h"

/* A request to a daemon's control socket (util/runstate.h's xm_ctl_request(), or the CLI's, which
 * asks again while the daemon is busy): the answer's length or -errno. */
typedef int (*xm_metrics_request_fn)(const char *dev, const char *req, char *buf, size_t len);

struct xm_metrics_sample {
	struct xm_metrics_dev m; /* what xm_metrics_write() takes; m.dev points at dev */
	char dev[16];
	struct xm_stats xdp;
};

/*
 * Fills s for dev.  Returns 0, or -errno with s->m.status NULL: the request's (-ENOENT or
 * -ECONNREFUSED when no daemon listens), or -EPROTO when the daemon answered an error or something
 * that is not a status, with the reason in why.  Release s with xm_metrics_sample_free().
 */
int xm_metrics_collect(const char *dev, xm_metrics_request_fn request, struct xm_metrics_sample *s,
		       char *why, size_t whylen);
void xm_metrics_sample_free(struct xm_metrics_sample *s);

#endif
