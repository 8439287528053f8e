/* SPDX-License-Identifier: GPL-2.0 */
/* The one clock: CLOCK_MONOTONIC in nanoseconds. */
#ifndef XM_CLOCK_H
#define XM_CLOCK_H

#include <time.h>
#include <linux/types.h>

#define NS_PER_US  1000ull
#define NS_PER_MS  1000000ull
#define NS_PER_SEC 1000000000ull

static inline __u64 xm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

#endif
