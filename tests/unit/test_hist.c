// SPDX-License-Identifier: GPL-2.0
/* Description: latency histograms (util/hist.c): bucket bounds, recording, percentile estimates
 * against the exact nearest-rank sample of random data, and the status object in both forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "xm_test.h"
#include "util/hist.h"

#define US 1000ull

static void test_bucket_bounds(void **state)
{
	/* Bucket 0 is under 1 µs; bucket i is [2^(i-1), 2^i) µs; the last one takes the rest. */
	assert_int_equal(xm_hist_bucket(0), 0);
	assert_int_equal(xm_hist_bucket(999), 0);
	assert_int_equal(xm_hist_bucket(1 * US), 1);
	assert_int_equal(xm_hist_bucket(2 * US - 1), 1);
	assert_int_equal(xm_hist_bucket(2 * US), 2);
	assert_int_equal(xm_hist_bucket(1023 * US), 10);
	assert_int_equal(xm_hist_bucket(1024 * US), 11);
	assert_int_equal(xm_hist_bucket(((1ull << 23) - 1) * US), 23);
	assert_int_equal(xm_hist_bucket((1ull << 23) * US), 24);
	assert_int_equal(xm_hist_bucket((1ull << 30) * US), XM_HIST_BUCKETS - 1);
	assert_int_equal(xm_hist_bucket(UINT64_MAX), XM_HIST_BUCKETS - 1);
}

static void test_record_counts_sum_min_max(void **state)
{
	struct xm_hist h = {0};

	xm_hist_record(&h, 5 * US);
	xm_hist_record(&h, 300);
	xm_hist_record(&h, 700 * US);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.sum_ns, 5 * US + 300 + 700 * US);
	assert_int_equal(h.min_ns, 300);
	assert_int_equal(h.max_ns, 700 * US);
	assert_int_equal(h.bucket[0], 1);
	assert_int_equal(h.bucket[3], 1);  /* [4, 8) µs */
	assert_int_equal(h.bucket[10], 1); /* [512, 1024) µs */
	/* A stage that never began, or a clock read out of order, records nothing. */
	xm_hist_record_since(&h, 0, 50 * US);
	xm_hist_record_since(&h, 60 * US, 50 * US);
	assert_int_equal(h.count, 3);
	xm_hist_record_since(&h, 50 * US, 60 * US);
	assert_int_equal(h.count, 4);
	assert_int_equal(h.bucket[4], 1); /* 10 µs: [8, 16) */
}

static void test_percentile_small_cases(void **state)
{
	struct xm_hist h = {0};
	int i;

	assert_int_equal(xm_hist_percentile_ns(&h, 500), 0);
	/* One sample: every percentile is that sample (clamped to min and max). */
	xm_hist_record(&h, 600 * US);
	assert_int_equal(xm_hist_percentile_ns(&h, 0), 600 * US);
	assert_int_equal(xm_hist_percentile_ns(&h, 500), 600 * US);
	assert_int_equal(xm_hist_percentile_ns(&h, 999), 600 * US);
	assert_int_equal(xm_hist_percentile_ns(&h, 1000), 600 * US);
	/* 990 fast samples and 10 slow ones: p50 and p99 among the fast, p99.9 the slow tail. */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 990; i++)
		xm_hist_record(&h, 10 * US);
	for (i = 0; i < 10; i++)
		xm_hist_record(&h, 5000 * US);
	assert_in_range(xm_hist_percentile_ns(&h, 500), 8 * US, 16 * US);
	assert_in_range(xm_hist_percentile_ns(&h, 990), 8 * US, 16 * US);
	assert_int_equal(xm_hist_percentile_ns(&h, 999), 5000 * US);
	/* Interpolation: 100 samples spread over [64, 128) µs; the median is near the middle. */
	memset(&h, 0, sizeof(h));
	for (i = 0; i < 100; i++)
		xm_hist_record(&h, 64 * US + (__u64)i * 64 * US / 100);
	assert_in_range(xm_hist_percentile_ns(&h, 500), 94 * US, 98 * US);
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* Random samples, log-uniform from 100 ns to ~30 s: every estimate is in the bucket of the
 * exact nearest-rank sample, between min and max, and never falls as permille grows. */
static void test_percentile_against_exact(void **state)
{
	static __u64 v[5000];
	unsigned int seed = 18, round, permille;

	for (round = 0; round < 50; round++) {
		struct xm_hist h = {0};
		__u32 n = 1 + (__u32)(rand_r(&seed) % 5000), i;
		__u64 prev = 0;

		for (i = 0; i < n; i++) {
			v[i] = 100ull << (rand_r(&seed) % 29);
			v[i] += (__u64)rand_r(&seed) % v[i];
			xm_hist_record(&h, v[i]);
		}
		qsort(v, n, sizeof(v[0]), cmp_u64);
		for (permille = 0; permille <= 1000; permille++) {
			__u64 rank = ((__u64)n * permille + 999) / 1000, est, exact;
			unsigned int b;

			exact = v[(rank ? rank : 1) - 1];
			est = xm_hist_percentile_ns(&h, permille);
			b = xm_hist_bucket(exact);
			if (xm_hist_bucket(est) != b &&
			    !(b < XM_HIST_BUCKETS - 1 && est == (1ull << b) * US))
				fail_msg("n %u p%u: estimate %llu ns, exact %llu ns (bucket %u)", n,
					 permille, (unsigned long long)est,
					 (unsigned long long)exact, b);
			assert_true(est >= h.min_ns && est <= h.max_ns);
			assert_true(est >= prev);
			prev = est;
		}
	}
}

/* Samples far beyond the last bucket's start, a billion of them: the interpolation in that
 * open-ended bucket (up to the largest sample) does not overflow. */
static void test_percentile_open_ended_bucket(void **state)
{
	const __u64 hour = 3600ull * 1000000000ull, lo = (1ull << 23) * US;
	struct xm_hist h = {0};
	__u64 p50;

	xm_hist_record(&h, 1 * US);
	xm_hist_record(&h, hour);
	h.count += 1000000000ull; /* as if a billion more between 8.4 s and an hour */
	h.bucket[XM_HIST_BUCKETS - 1] += 1000000000ull;
	p50 = xm_hist_percentile_ns(&h, 500);
	assert_in_range(p50, lo + (hour - lo) / 100 * 45, lo + (hour - lo) / 100 * 55);
}

static void report_to(struct xm_hist *h, enum xm_report_form form, char *buf, size_t len)
{
	FILE *f = fmemopen(buf, len, "w");
	struct xm_report r;

	assert_non_null(f);
	xm_report_begin(&r, form, f);
	xm_report_open(&r, "latency", "latency");
	xm_hist_report(&r, "answered", "write answered", h);
	xm_report_close(&r);
	assert_int_equal(xm_report_end(&r), 0);
	fclose(f);
}

static __u64 get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no '%s'", key);
	return json_object_get_uint64(v);
}

static void test_report_forms(void **state)
{
	static char buf[4096];
	struct json_object *o, *lat, *a, *b;
	struct xm_hist h = {0};
	__u64 sum = 0;
	size_t i;

	for (i = 0; i < 100; i++)
		xm_hist_record(&h, (i < 98 ? 400 : 9000) * US + 123);
	report_to(&h, XM_REPORT_JSON, buf, sizeof(buf));
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "latency", &lat));
	assert_true(json_object_object_get_ex(lat, "answered", &a));
	assert_int_equal(get_u64(a, "count"), 100);
	assert_int_equal(get_u64(a, "sum_us"),
			 (98 * (400 * US + 123) + 2 * (9000 * US + 123)) / US);
	assert_int_equal(get_u64(a, "min_us"), 400);
	assert_int_equal(get_u64(a, "max_us"), 9000);
	assert_in_range(get_u64(a, "p50_us"), 256, 512);
	assert_in_range(get_u64(a, "p99_us"), 8192, 9000);
	assert_int_equal(get_u64(a, "p999_us"), 9000);
	assert_true(json_object_object_get_ex(a, "buckets", &b));
	assert_int_equal(json_object_array_length(b), XM_HIST_BUCKETS);
	for (i = 0; i < XM_HIST_BUCKETS; i++)
		sum += json_object_get_uint64(json_object_array_get_idx(b, i));
	assert_int_equal(sum, 100);
	assert_int_equal(json_object_get_uint64(json_object_array_get_idx(b, 9)), 98);
	assert_int_equal(json_object_get_uint64(json_object_array_get_idx(b, 14)), 2);
	json_object_put(o);

	/* Text: one line per stage, nothing for a stage without samples. */
	report_to(&h, XM_REPORT_TEXT, buf, sizeof(buf));
	assert_non_null(strstr(buf, "latency\n  write answered         p50 "));
	assert_non_null(strstr(buf, "  max 9000 us  (n 100)\n"));
	memset(&h, 0, sizeof(h));
	report_to(&h, XM_REPORT_TEXT, buf, sizeof(buf));
	assert_string_equal(buf, "latency\n");
	report_to(&h, XM_REPORT_JSON, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"count\":0,"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_bounds),
		cmocka_unit_test(test_record_counts_sum_min_max),
		cmocka_unit_test(test_percentile_small_cases),
		cmocka_unit_test(test_percentile_against_exact),
		cmocka_unit_test(test_percentile_open_ended_bucket),
		cmocka_unit_test(test_report_forms),
	};

	return xm_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
