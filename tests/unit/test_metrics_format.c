// SPDX-License-Identifier: GPL-2.0
/* Description: the Prometheus formatter (metrics/format.c): label values escaped, log2 latency
 * buckets made cumulative with le bounds in seconds, one state of a set at 1, a family's header
 * once with every device's samples under it, a silent daemon as xdpmirror_up 0 alone, a
 * secondary's out-of-sync bytes from its bitmap, XDP drops by reason. */
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
#include "metrics/format.h"

/* Labels every sample of the primary below has. */
#define P_LABELS "device=\"xmp0\",role=\"primary\",peer=\"02:00:00:00:00:02\""

static const char primary_json[] =
	"{\"role\":\"primary\",\"peer\":{\"mac\":\"02:00:00:00:00:02\",\"reachable\":true,"
	"\"rtt_avg_us\":250.5},"
	"\"replication\":{\"connection\":\"connected\",\"sync\":\"in_sync\","
	"\"out_of_sync_bytes\":4096,\"peer_disk\":\"UpToDate\"},"
	"\"metadata\":{\"disk_state\":\"UpToDate\"},"
	"\"counters\":{\"tx_retrans_rto\":3,\"tx_retrans_fast\":18446744073709551615},"
	"\"latency\":{\"answered\":{\"count\":6,\"sum_us\":1500,"
	"\"buckets\":[1,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3]}}}";

static const char secondary_json[] =
	"{\"role\":\"secondary\",\"peer\":{\"mac\":\"02:00:00:00:00:01\"},"
	"\"replication\":{\"connection\":\"we\\\"ird\\\\state\\n\",\"sync\":\"in_sync\"},"
	"\"disk\":{\"size\":1000000},"
	"\"metadata\":{\"disk_state\":\"UpToDate\",\"bitmap\":{\"dirty_bits\":20,\"block\":65536}}"
	"}";

/* What xm_metrics_write() writes for devs; the caller frees it. */
static char *format(const struct xm_metrics_dev *devs, unsigned int n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(xm_metrics_write(f, devs, n), 0);
	fclose(f);
	return buf;
}

static void assert_line(const char *out, const char *line)
{
	char *want;

	assert_true(asprintf(&want, "\n%s\n", line) > 0);
	if (!strstr(out, want))
		fail_msg("missing line: %s\n--- output:\n%s", line, out);
	free(want);
}

static unsigned int count(const char *out, const char *s)
{
	unsigned int n = 0;

	for (; (out = strstr(out, s)); out += strlen(s))
		n++;
	return n;
}

static void test_escape(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	xm_metrics_escape(f, "a\"b\\c\nd");
	fclose(f);
	assert_string_equal(buf, "a\\\"b\\\\c\\nd");
	free(buf);
}

static void test_histogram_cumulative(void **state)
{
	struct json_object *st = json_tokener_parse(primary_json);
	struct xm_metrics_dev dev = {.dev = "xmp0", .status = st};
	char *out = format(&dev, 1);

	/* Bucket 0 (< 1 µs) is le=1e-06, bucket 2 (< 4 µs) adds its 2, the last is +Inf. */
	assert_line(out, "xdpmirror_write_latency_seconds_bucket{" P_LABELS
			 ",stage=\"answered\",le=\"1e-06\"} 1");
	assert_line(out, "xdpmirror_write_latency_seconds_bucket{" P_LABELS
			 ",stage=\"answered\",le=\"2e-06\"} 1");
	assert_line(out, "xdpmirror_write_latency_seconds_bucket{" P_LABELS
			 ",stage=\"answered\",le=\"4e-06\"} 3");
	assert_line(out, "xdpmirror_write_latency_seconds_bucket{" P_LABELS
			 ",stage=\"answered\",le=\"8.388608\"} 3");
	assert_line(out, "xdpmirror_write_latency_seconds_bucket{" P_LABELS
			 ",stage=\"answered\",le=\"+Inf\"} 6");
	assert_line(out,
		    "xdpmirror_write_latency_seconds_sum{" P_LABELS ",stage=\"answered\"} 0.0015");
	assert_line(out,
		    "xdpmirror_write_latency_seconds_count{" P_LABELS ",stage=\"answered\"} 6");
	assert_int_equal(count(out, "stage=\"answered\",le="), 25);
	/* Stages the status does not have are not made up. */
	assert_null(strstr(out, "stage=\"intent\""));
	assert_line(out, "# TYPE xdpmirror_write_latency_seconds histogram");
	free(out);
	json_object_put(st);
}

static void test_states_and_numbers(void **state)
{
	struct json_object *st = json_tokener_parse(primary_json);
	struct xm_metrics_dev dev = {.dev = "xmp0", .status = st};
	char *out = format(&dev, 1);

	assert_line(out, "xdpmirror_up{" P_LABELS "} 1");
	assert_line(out, "xdpmirror_replication_state{" P_LABELS ",state=\"connected\"} 1");
	assert_line(out, "xdpmirror_replication_state{" P_LABELS ",state=\"connecting\"} 0");
	assert_int_equal(count(out, "xdpmirror_replication_state{"), 10);
	assert_int_equal(
		count(out, "xdpmirror_replication_state{" P_LABELS ",state=\"connected\"} 1"), 1);
	assert_line(out, "xdpmirror_disk_state{" P_LABELS ",disk=\"peer\",state=\"UpToDate\"} 1");
	assert_line(out, "xdpmirror_out_of_sync_bytes{" P_LABELS "} 4096");
	assert_line(out, "xdpmirror_peer_reachable{" P_LABELS "} 1");
	/* µs to seconds; counters exact to the last bit of a u64. */
	assert_line(out, "xdpmirror_rtt_seconds{" P_LABELS ",source=\"heartbeat\"} 0.0002505");
	assert_line(out, "xdpmirror_retransmits_total{" P_LABELS ",reason=\"timeout\"} 3");
	assert_line(out, "xdpmirror_retransmits_total{" P_LABELS
			 ",reason=\"fast\"} 18446744073709551615");
	assert_line(out, "# TYPE xdpmirror_retransmits_total counter");
	/* No XDP counters given: no XDP families at all, not even their header. */
	assert_null(strstr(out, "xdpmirror_xdp_drops_total"));
	free(out);
	json_object_put(st);
}

static void test_devices_share_a_family(void **state)
{
	struct json_object *p = json_tokener_parse(primary_json);
	struct json_object *s = json_tokener_parse(secondary_json);
	struct xm_stats xdp = {0};
	struct xm_metrics_dev devs[] = {
		{.dev = "xmp0", .status = p},
		{.dev = "xm\"s0", .status = s, .xdp = &xdp},
		{.dev = "gone"},
	};
	const char *first, *second, *header;
	char *out;

	xdp.drop.bad_peer.frames = 7;
	out = format(devs, 3);
	/* One header per family, and every device's samples after it, together. */
	assert_int_equal(count(out, "# TYPE xdpmirror_up gauge\n"), 1);
	assert_int_equal(count(out, "# HELP xdpmirror_up "), 1);
	header = strstr(out, "# TYPE xdpmirror_replication_state gauge");
	first = strstr(out, "xdpmirror_replication_state{device=\"xmp0\"");
	second = strstr(out, "xdpmirror_replication_state{device=\"xm\\\"s0\"");
	assert_non_null(header);
	assert_non_null(first);
	assert_non_null(second);
	assert_true(header < first && first < second);
	assert_true(second < strstr(out, "# TYPE xdpmirror_sync_state"));
	/* A state nobody told the table about shows, escaped, as the one at 1. */
	assert_line(out, "xdpmirror_replication_state{device=\"xm\\\"s0\",role=\"secondary\","
			 "peer=\"02:00:00:00:00:01\",state=\"we\\\"ird\\\\state\\n\"} 1");
	assert_int_equal(count(out, "peer=\"02:00:00:00:00:01\",state=\"we"), 1);
	/* 20 regions of 64 KiB, but the disk has less. */
	assert_line(out, "xdpmirror_out_of_sync_bytes{device=\"xm\\\"s0\",role=\"secondary\","
			 "peer=\"02:00:00:00:00:01\"} 1000000");
	assert_line(out, "xdpmirror_xdp_drops_total{device=\"xm\\\"s0\",role=\"secondary\","
			 "peer=\"02:00:00:00:00:01\",reason=\"bad_peer\"} 7");
	assert_int_equal(count(out, "xdpmirror_xdp_drops_total{"), 8);
	/* A daemon that said nothing: up 0, and nothing else about it. */
	assert_line(out, "xdpmirror_up{device=\"gone\",role=\"\",peer=\"\"} 0");
	assert_int_equal(count(out, "device=\"gone\""), 1);
	free(out);
	json_object_put(p);
	json_object_put(s);
}

static void test_nothing_attached(void **state)
{
	char *out = format(NULL, 0);

	assert_string_equal(out, "");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_histogram_cumulative),
		cmocka_unit_test(test_states_and_numbers),
		cmocka_unit_test(test_devices_share_a_family),
		cmocka_unit_test(test_nothing_attached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
