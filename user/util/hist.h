/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Latency histograms cheap enough for every write: log2 buckets of microseconds, no allocation,
 * O(1) to record; percentiles are estimated from the buckets when status asks.
 */
#ifndef XM_HIST_H
#define XM_HIST_H

#include <linux/types.h>

#include "util/report.h"

/*
 * Bucket 0 holds samples under 1 µs; bucket i (1..24) those in [2^(i-1), 2^i) µs, so bucket 24
 * starts at 8.4 s and also holds everything longer (nothing in a write's life should last that
 * long without a session ending).
 */
#define XM_HIST_BUCKETS 25

struct xm_hist {
	__u64 count;
	__u64 sum_ns, min_ns, max_ns;
	__u64 bucket[XM_HIST_BUCKETS];
};

/* The bucket a sample of ns nanoseconds falls in. */
unsigned int xm_hist_bucket(__u64 ns);
void xm_hist_record(struct xm_hist *h, __u64 ns);
/* Records end - start; nothing when start is 0 (the stage never began, e.g. a write that was
 * admitted before the histogram's owner existed) or end is before start. */
void xm_hist_record_since(struct xm_hist *h, __u64 start_ns, __u64 end_ns);
/*
 * The permille-th percentile (500: p50, 999: p99.9) in ns, 0 for an empty histogram: the
 * nearest-rank sample's bucket, interpolated linearly inside it (samples assumed spread evenly
 * across the bucket), clamped to the smallest and largest samples seen.  The estimate lies in the
 * true sample's bucket (above 1 µs: within a factor of 2 of it), and is monotonic in permille:
 * p50 <= p99 <= p99.9 <= max.
 */
__u64 xm_hist_percentile_ns(const struct xm_hist *h, unsigned int permille);

/*
 * Writes h as an object under key: count, sum_us, min_us, p50_us, p99_us, p999_us, max_us (every
 * time in whole µs, truncated) and buckets (XM_HIST_BUCKETS counts, bucket i as above).  The
 * text form is one line under label: "p50 N  p99 N  max N us  (n N)", nothing when empty.
 */
void xm_hist_report(struct xm_report *r, const char *key, const char *label,
		    const struct xm_hist *h);

#endif
