/* SPDX-License-Identifier: GPL-2.0 */
/* Skips in the unit tests: a test that cannot run here says so, and in CI that is a failure. */
#ifndef XM_TEST_H
#define XM_TEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Include after <cmocka.h>. */

#define XM_TEST_SKIP_EXIT 77

/*
 * XM_TEST_REQUIRE_ALL=1 (set by .ci/run): every test must run where CI runs, so a skip is a
 * failure there.  Unset, a skip is reported as one (exit 77 from the binary), never as a pass.
 */
static inline bool xm_test_require_all(void)
{
	const char *v = getenv("XM_TEST_REQUIRE_ALL");

	return v && *v && strcmp(v, "0") != 0;
}

/* cmocka tests of this binary that skipped; main() turns a nonzero count into exit 77. */
static int xm_test_skips __attribute__((unused));

/* Inside a cmocka test: skip it, or fail it when every test is required. */
#define xm_skip(fmt, ...)                                                                          \
	do {                                                                                       \
		if (xm_test_require_all())                                                         \
			fail_msg("required test cannot run (XM_TEST_REQUIRE_ALL): " fmt,           \
				 ##__VA_ARGS__);                                                   \
		print_message("SKIP: " fmt "\n", ##__VA_ARGS__);                                   \
		xm_test_skips++;                                                                   \
		skip();                                                                            \
	} while (0)

/* The exit code of a test binary: 1 if any test failed, 77 if any skipped, else 0. */
static inline int xm_test_exit(int failed)
{
	if (failed)
		return 1;
	return xm_test_skips ? XM_TEST_SKIP_EXIT : 0;
}

/* The whole binary cannot run here (before cmocka starts): says why, returns its exit code. */
static inline int __attribute__((format(printf, 2, 3)))
xm_skip_all(const char *name, const char *fmt, ...)
{
	bool required = xm_test_require_all();
	va_list ap;

	fprintf(stderr, "%s: %s", name,
		required ? "FAIL: required test cannot run (XM_TEST_REQUIRE_ALL): " : "SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return required ? 1 : XM_TEST_SKIP_EXIT;
}

#endif
