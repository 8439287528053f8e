// SPDX-License-Identifier: GPL-2.0
/* Description: status reports (util/report.c): one description written as JSON (parsed back
 * with json-c: keys in order, numbers, escapes, text-only fields left out) and as text (labels,
 * indentation, hidden objects, lists on one line). */
#include <math.h>
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
#include "util/report.h"

/* The same report in both forms; buf gets what was written. */
static void write_sample(enum xm_report_form form, char *buf, size_t len)
{
	FILE *f = fmemopen(buf, len, "w");
	struct xm_report r;

	assert_non_null(f);
	xm_report_begin(&r, form, f);
	xm_report_str(&r, "dev", "device", "xmp0");
	xm_report_u64(&r, "big", "big", UINT64_MAX);
	xm_report_i64(&r, "neg", NULL, INT64_MIN);
	xm_report_u64(&r, NULL, "people only", 7);
	xm_report_open(&r, "peer", "peer");
	xm_report_dbl(&r, "rtt_us", "rtt us", 12.3456);
	xm_report_dbl(&r, "nan", NULL, NAN);
	xm_report_bool(&r, "reachable", "reachable", true);
	xm_report_str(&r, "reason", "reason", "");
	xm_report_open(&r, "hidden", NULL);
	xm_report_u64(&r, "inner", "inner", 1);
	xm_report_close(&r);
	xm_report_close(&r);
	xm_report_list(&r, "offsets", "offsets");
	xm_report_u64(&r, NULL, NULL, 4096);
	xm_report_u64(&r, NULL, NULL, 8192);
	xm_report_close(&r);
	xm_report_list(&r, "none", "none");
	xm_report_close(&r);
	xm_report_str(&r, "path", NULL, "C:\\dir\\\"q\"/x\n\tcaf\xc3\xa9");
	assert_int_equal(xm_report_end(&r), 0);
	fclose(f);
}

static void test_json_form(void **state)
{
	static char buf[4096];
	struct json_object *o, *v;

	write_sample(XM_REPORT_JSON, buf, sizeof(buf));
	/* One line, keys in the order written, text-only fields absent, three decimals. */
	assert_string_equal(
		buf, "{\"dev\":\"xmp0\",\"big\":18446744073709551615,\"neg\":-9223372036854775808,"
		     "\"peer\":{\"rtt_us\":12.346,\"nan\":null,\"reachable\":true,\"reason\":\"\","
		     "\"hidden\":{\"inner\":1}},\"offsets\":[4096,8192],\"none\":[],"
		     "\"path\":\"C:\\\\dir\\\\\\\"q\\\"/x\\n\\tcaf\xc3\xa9\"}\n");
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "path", &v));
	assert_string_equal(json_object_get_string(v), "C:\\dir\\\"q\"/x\n\tcaf\xc3\xa9");
	assert_true(json_object_object_get_ex(o, "big", &v));
	assert_true(json_object_get_uint64(v) == UINT64_MAX);
	json_object_put(o);
}

static void test_text_form(void **state)
{
	static char buf[4096];

	write_sample(XM_REPORT_TEXT, buf, sizeof(buf));
	/* Labelled fields only, values in one column; an empty string and a hidden object say
	 * nothing; a list is one line, "-" when empty. */
	assert_string_equal(buf, "device                   xmp0\n"
				 "big                      18446744073709551615\n"
				 "people only              7\n"
				 "peer\n"
				 "  rtt us                 12.3\n"
				 "  reachable              yes\n"
				 "offsets                  4096, 8192\n"
				 "none                     -\n");
}

static void test_nesting_limit_is_harmless(void **state)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct xm_report r;
	int i;

	assert_non_null(f);
	xm_report_begin(&r, XM_REPORT_JSON, f);
	for (i = 0; i < XM_REPORT_DEPTH + 4; i++)
		xm_report_open(&r, "o", NULL);
	xm_report_u64(&r, "x", NULL, 1);
	for (i = 0; i < XM_REPORT_DEPTH + 4; i++)
		xm_report_close(&r);
	xm_report_u64(&r, "after", NULL, 2);
	assert_int_equal(xm_report_end(&r), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"after\":2}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_form),
		cmocka_unit_test(test_text_form),
		cmocka_unit_test(test_nesting_limit_is_harmless),
	};

	return xm_test_exit(cmocka_run_group_tests_name("report", tests, NULL, NULL));
}
