// SPDX-License-Identifier: GPL-2.0
/* Log2 latency histograms (util/hist.h): recording, percentile estimates, the status object. */
#include <stdio.h>

#include "util/clock.h"
#include "util/hist.h"

unsigned int xm_hist_bucket(__u64 ns)
{
	__u64 us = ns / NS_PER_US;
	unsigned int i;

	if (!us)
		return 0;
	i = 64 - (unsigned int)__builtin_clzll(us); /* us in [2^(i-1), 2^i) */
	return i < XM_HIST_BUCKETS ? i : XM_HIST_BUCKETS - 1;
}

void xm_hist_record(struct xm_hist *h, __u64 ns)
{
	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns += ns;
	h->bucket[xm_hist_bucket(ns)]++;
}

void xm_hist_record_since(struct xm_hist *h, __u64 start_ns, __u64 end_ns)
{
	if (start_ns && end_ns >= start_ns)
		xm_hist_record(h, end_ns - start_ns);
}

/* Bucket i's bounds in ns: [lo, hi); the last bucket ends at the largest sample. */
static void bucket_bounds(const struct xm_hist *h, unsigned int i, __u64 *lo, __u64 *hi)
{
	*lo = i ? (1ull << (i - 1)) * NS_PER_US : 0;
	*hi = i < XM_HIST_BUCKETS - 1 ? (1ull << i) * NS_PER_US : h->max_ns;
}

__u64 xm_hist_percentile_ns(const struct xm_hist *h, unsigned int permille)
{
	__u64 rank, below = 0, lo, hi, est;
	unsigned int i;

	if (!h->count)
		return 0;
	if (permille > 1000)
		permille = 1000;
	/* Nearest rank, 1-based: the smallest sample with at least permille/1000 at or below it. */
	rank = (h->count * permille + 999) / 1000;
	if (!rank)
		rank = 1;
	for (i = 0; i < XM_HIST_BUCKETS - 1 && below + h->bucket[i] < rank; i++)
		below += h->bucket[i];
	bucket_bounds(h, i, &lo, &hi);
	if (hi < lo)
		hi = lo;
	/* In double: (hi - lo) times a count can pass 2^64 in the open-ended last bucket. */
	est = lo + (__u64)((double)(hi - lo) * (double)(rank - below) /
			   (double)(h->bucket[i] ? h->bucket[i] : 1));
	if (est < h->min_ns)
		est = h->min_ns;
	return est < h->max_ns ? est : h->max_ns;
}

void xm_hist_report(struct xm_report *r, const char *key, const char *label,
		    const struct xm_hist *h)
{
	__u64 p50 = xm_hist_percentile_ns(h, 500) / NS_PER_US;
	__u64 p99 = xm_hist_percentile_ns(h, 990) / NS_PER_US;
	char line[128] = "";
	unsigned int i;

	/* People get one line per stage, what they compare at a glance; JSON gets the numbers. */
	if (h->count)
		snprintf(line, sizeof(line), "p50 %llu  p99 %llu  max %llu us  (n %llu)",
			 (unsigned long long)p50, (unsigned long long)p99,
			 (unsigned long long)(h->max_ns / NS_PER_US), (unsigned long long)h->count);
	xm_report_str(r, NULL, label, line);
	xm_report_open(r, key, NULL);
	xm_report_u64(r, "count", NULL, h->count);
	xm_report_u64(r, "sum_us", NULL, h->sum_ns / NS_PER_US);
	xm_report_u64(r, "min_us", NULL, h->min_ns / NS_PER_US);
	xm_report_u64(r, "p50_us", NULL, p50);
	xm_report_u64(r, "p99_us", NULL, p99);
	xm_report_u64(r, "p999_us", NULL, xm_hist_percentile_ns(h, 999) / NS_PER_US);
	xm_report_u64(r, "max_us", NULL, h->max_ns / NS_PER_US);
	xm_report_list(r, "buckets", NULL);
	for (i = 0; i < XM_HIST_BUCKETS; i++)
		xm_report_u64(r, NULL, NULL, h->bucket[i]);
	xm_report_close(r);
	xm_report_close(r);
}
