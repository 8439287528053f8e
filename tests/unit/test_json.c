// SPDX-License-Identifier: GPL-2.0
/* Description: the streaming JSON writer: commas in nested objects and arrays, string escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json.h"

/* One writer on an in-memory stream. */
struct sink {
	FILE *f;
	char *buf;
	size_t len;
	struct xm_json j;
};

static int sink_open(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (!s)
		return -1;
	s->f = open_memstream(&s->buf, &s->len);
	if (!s->f) {
		free(s);
		return -1;
	}
	xm_json_init(&s->j, s->f);
	*state = s;
	return 0;
}

static int sink_close(void **state)
{
	struct sink *s = *state;

	fclose(s->f);
	free(s->buf);
	free(s);
	return 0;
}

/* Everything written so far equals want. */
static void assert_output(struct sink *s, const char *want)
{
	assert_int_equal(fflush(s->f), 0);
	if (strcmp(s->buf, want))
		print_message("got:  %s|\nwant: %s|\n", s->buf, want);
	assert_string_equal(s->buf, want);
}

static void test_top_level_object_ends_with_newline(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	assert_output(s, "{");
	xm_json_close(&s->j, '}');
	assert_output(s, "{}\n");
}

static void test_top_level_array_ends_with_newline(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_close(&s->j, ']');
	assert_output(s, "[]\n");
}

static void test_members_are_comma_separated(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_str(&s->j, "s", "x");
	xm_json_u64(&s->j, "u", UINT64_MAX);
	xm_json_i64(&s->j, "i", INT64_MIN);
	xm_json_i64(&s->j, "p", 42);
	xm_json_u64(&s->j, "z", 0);
	xm_json_double(&s->j, "d", 1.5);
	xm_json_bool(&s->j, "t", true);
	xm_json_bool(&s->j, "f", false);
	xm_json_close(&s->j, '}');
	assert_output(s, "{\"s\":\"x\",\"u\":18446744073709551615,\"i\":-9223372036854775808,"
			 "\"p\":42,\"z\":0,\"d\":1.500,\"t\":true,\"f\":false}\n");
}

static void test_array_elements_have_no_keys(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_u64(&s->j, NULL, 1);
	xm_json_str(&s->j, NULL, "two");
	xm_json_bool(&s->j, NULL, false);
	xm_json_i64(&s->j, NULL, -4);
	xm_json_double(&s->j, NULL, 0.25);
	xm_json_close(&s->j, ']');
	assert_output(s, "[1,\"two\",false,-4,0.250]\n");
}

static void test_nested_objects_and_arrays_place_commas(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_u64(&s->j, "a", 1);
	xm_json_open(&s->j, "o", '{');
	xm_json_u64(&s->j, "x", 1);
	xm_json_u64(&s->j, "y", 2);
	xm_json_close(&s->j, '}');
	xm_json_open(&s->j, "arr", '[');
	xm_json_u64(&s->j, NULL, 1);
	xm_json_u64(&s->j, NULL, 2);
	xm_json_open(&s->j, NULL, '{');
	xm_json_str(&s->j, "k", "v");
	xm_json_close(&s->j, '}');
	xm_json_open(&s->j, NULL, '[');
	xm_json_close(&s->j, ']');
	xm_json_bool(&s->j, NULL, true);
	xm_json_close(&s->j, ']');
	xm_json_open(&s->j, "empty", '{');
	xm_json_close(&s->j, '}');
	xm_json_u64(&s->j, "z", 0);
	xm_json_close(&s->j, '}');
	assert_output(s, "{\"a\":1,\"o\":{\"x\":1,\"y\":2},\"arr\":[1,2,{\"k\":\"v\"},[],true],"
			 "\"empty\":{},\"z\":0}\n");
}

/* Opening a container as the first member: no comma inside it, one after it. */
static void test_container_as_first_member(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_open(&s->j, "o", '{');
	xm_json_open(&s->j, "p", '[');
	xm_json_open(&s->j, NULL, '{');
	xm_json_u64(&s->j, "q", 1);
	xm_json_close(&s->j, '}');
	xm_json_open(&s->j, NULL, '{');
	xm_json_close(&s->j, '}');
	xm_json_close(&s->j, ']');
	xm_json_close(&s->j, '}');
	xm_json_u64(&s->j, "r", 2);
	xm_json_close(&s->j, '}');
	assert_output(s, "{\"o\":{\"p\":[{\"q\":1},{}]},\"r\":2}\n");
}

/* struct xm_json tracks 16 levels: the top and 15 containers inside it. */
static void test_nesting_fifteen_deep(void **state)
{
	struct sink *s = *state;
	char want[256], *w = want;
	int i;

	for (i = 0; i < 15; i++) {
		xm_json_open(&s->j, NULL, '[');
		xm_json_u64(&s->j, NULL, (__u64)i);
		w += sprintf(w, "[%d,", i);
	}
	xm_json_u64(&s->j, NULL, 99);
	w += sprintf(w, "99");
	for (i = 0; i < 15; i++) {
		xm_json_close(&s->j, ']');
		*w++ = ']';
	}
	strcpy(w, "\n");
	assert_output(s, want);
}

static void test_strings_escape_quotes_and_backslashes(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_str(&s->j, "path", "C:\\dir\\\"quoted\" name/x");
	xm_json_str(&s->j, "say \"hi\"", "\\");
	xm_json_str(&s->j, "q", "\"");
	xm_json_str(&s->j, "", "");
	xm_json_close(&s->j, '}');
	assert_output(s, "{\"path\":\"C:\\\\dir\\\\\\\"quoted\\\" name/x\","
			 "\"say \\\"hi\\\"\":\"\\\\\",\"q\":\"\\\"\",\"\":\"\"}\n");
}

static void test_strings_escape_control_characters(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_str(&s->j, NULL, "a\nb\tc\rd\be\ff");
	xm_json_str(&s->j, NULL, "\x01\x1f ");
	xm_json_close(&s->j, ']');
	assert_output(s, "[\"a\\u000ab\\u0009c\\u000dd\\u0008e\\u000cf\","
			 "\"\\u0001\\u001f \"]\n");
}

static void test_keys_escape_control_characters(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_u64(&s->j, "line\nbreak", 1);
	xm_json_close(&s->j, '}');
	assert_output(s, "{\"line\\u000abreak\":1}\n");
}

/* Bytes from 0x7f up are not control characters: UTF-8 and DEL go out as they are. */
static void test_strings_pass_utf8_and_del_through(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_str(&s->j, NULL, "caf\xc3\xa9 \xe2\x86\x92 \x7f");
	xm_json_close(&s->j, ']');
	assert_output(s, "[\"caf\xc3\xa9 \xe2\x86\x92 \x7f\"]\n");
}

static void test_doubles_have_three_decimals(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_double(&s->j, NULL, 0.0);
	xm_json_double(&s->j, NULL, -2.25);
	xm_json_double(&s->j, NULL, 12.3456);
	xm_json_double(&s->j, NULL, 1e6);
	xm_json_close(&s->j, ']');
	assert_output(s, "[0.000,-2.250,12.346,1000000.000]\n");
}

/* JSON has no NaN or infinity: such values come out as null. */
static void test_non_finite_doubles_are_null(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '[');
	xm_json_double(&s->j, NULL, NAN);
	xm_json_double(&s->j, NULL, INFINITY);
	xm_json_double(&s->j, NULL, 1.5);
	xm_json_close(&s->j, ']');
	assert_output(s, "[null,null,1.500]\n");
}

/* Each top-level value is its own document: no comma in front of the second. */
static void test_second_top_level_value_has_no_comma(void **state)
{
	struct sink *s = *state;

	xm_json_open(&s->j, NULL, '{');
	xm_json_close(&s->j, '}');
	xm_json_open(&s->j, NULL, '{');
	xm_json_u64(&s->j, "a", 1);
	xm_json_close(&s->j, '}');
	assert_output(s, "{}\n{\"a\":1}\n");
}

/* Two writers keep their own state: nothing global. */
static void test_writers_are_independent(void **state)
{
	struct sink *a = *state, *b;

	assert_int_equal(sink_open((void **)&b), 0);
	xm_json_open(&a->j, NULL, '{');
	xm_json_open(&b->j, NULL, '[');
	xm_json_u64(&a->j, "x", 1);
	xm_json_u64(&b->j, NULL, 2);
	xm_json_u64(&a->j, "y", 3);
	xm_json_open(&b->j, NULL, '{');
	xm_json_close(&b->j, '}');
	xm_json_close(&a->j, '}');
	xm_json_close(&b->j, ']');
	assert_output(a, "{\"x\":1,\"y\":3}\n");
	assert_output(b, "[2,{}]\n");
	sink_close((void **)&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_top_level_object_ends_with_newline, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_top_level_array_ends_with_newline, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_members_are_comma_separated, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_array_elements_have_no_keys, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_nested_objects_and_arrays_place_commas,
						sink_open, sink_close),
		cmocka_unit_test_setup_teardown(test_container_as_first_member, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_nesting_fifteen_deep, sink_open, sink_close),
		cmocka_unit_test_setup_teardown(test_strings_escape_quotes_and_backslashes,
						sink_open, sink_close),
		cmocka_unit_test_setup_teardown(test_strings_escape_control_characters, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_keys_escape_control_characters, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_strings_pass_utf8_and_del_through, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_doubles_have_three_decimals, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_non_finite_doubles_are_null, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_second_top_level_value_has_no_comma, sink_open,
						sink_close),
		cmocka_unit_test_setup_teardown(test_writers_are_independent, sink_open,
						sink_close),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("json", tests, NULL, NULL) ? 1 : 0;
}
