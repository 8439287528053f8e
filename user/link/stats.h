/* SPDX-License-Identifier: GPL-2.0 */
/* Reading the XDP program's per-CPU counters from the pinned map, summing them, naming them. */
#ifndef XM_STATS_H
#define XM_STATS_H

#include "xdpmirror.h"

#define XM_STATS_NFIELDS (sizeof(struct xm_stats) / sizeof(struct xm_counter))

/* "seen", "pass", ..., "rx.data", ..., "drop.bad_peer": the path bpftool prints, dotted. */
const char *xm_stats_field_name(unsigned int i);
const struct xm_counter *xm_stats_field(const struct xm_stats *s, unsigned int i);

/* out = sum of ncpu per-CPU values. */
void xm_stats_sum(const struct xm_stats *percpu, int ncpu, struct xm_stats *out);
/* Reads XM_PIN_ROOT/<ifname>/stats and sums it.  Returns 0, -ENOENT when not pinned, or -errno. */
int xm_stats_read_pinned(const char *ifname, struct xm_stats *out);

#endif
