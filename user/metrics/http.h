/* SPDX-License-Identifier: GPL-2.0 */
/* `attach --metrics-listen`: GET /metrics served by libmicrohttpd on a thread of its own, which
 * fetches the status over the daemon's control socket like any client (docs/metrics.md). */
#ifndef XM_METRICS_HTTP_H
#define XM_METRICS_HTTP_H

#include "conf/config.h"

struct xm_metrics_http;

/*
 * With --metrics-listen (cfg->metrics_port), binds its address now and serves the metrics of
 * cfg->dev there.  Returns 0 with *out set (NULL without the option), or -errno after one line on
 * stderr: "attach 'IF': --metrics-listen ADDR:PORT: Address already in use".  Signals stay
 * blocked in the server's thread, so every one reaches the daemon's signalfd.
 */
int xm_metrics_http_start(const struct xm_config *cfg, struct xm_metrics_http **out);
/*
 * Stops serving and frees *h (NULL: nothing), then sets it NULL.  Called before the control
 * socket closes: a request being answered waits for the daemon's loop, which no longer answers
 * in a teardown, so that wait ends with the control socket's 2 s deadline.
 */
void xm_metrics_http_stop(struct xm_metrics_http **h);

#endif
