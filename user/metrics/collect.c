// SPDX-License-Identifier: GPL-2.0
/* One device's status and XDP counters, fetched over its control socket and pins. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "link/stats.h"
#include "metrics/collect.h"

/* A status is a few KiB; `status` reads it into as much. */
#define STATUS_MAX (64 << 10)

int xm_metrics_collect(const char *dev, xm_metrics_request_fn request, struct xm_metrics_sample *s,
		       char *why, size_t whylen)
{
	char *answer;
	int n;

	memset(s, 0, sizeof(*s));
	snprintf(s->dev, sizeof(s->dev), "%s", dev);
	s->m.dev = s->dev;
	if (whylen)
		why[0] = '\0';
	answer = malloc(STATUS_MAX);
	if (!answer)
		return -ENOMEM;
	n = request(dev, "status", answer, STATUS_MAX);
	if (n < 0) {
		free(answer);
		return n;
	}
	if (!strncmp(answer, "error: ", 7)) {
		answer[strcspn(answer, "\n")] = '\0';
		snprintf(why, whylen, "%s", answer + 7);
		free(answer);
		return -EPROTO;
	}
	s->m.status = json_tokener_parse(answer);
	free(answer);
	if (!s->m.status || !json_object_is_type(s->m.status, json_type_object)) {
		json_object_put(s->m.status);
		s->m.status = NULL;
		snprintf(why, whylen, "the daemon's status is not JSON");
		return -EPROTO;
	}
	/* Counters of a daemon that answered; gone by now means it just detached: no XDP rows. */
	if (!xm_stats_read_pinned(dev, &s->xdp))
		s->m.xdp = &s->xdp;
	return 0;
}

void xm_metrics_sample_free(struct xm_metrics_sample *s)
{
	json_object_put(s->m.status);
	s->m.status = NULL;
}
