// SPDX-License-Identifier: GPL-2.0
/* Description: XDP counters: per-CPU sums, field names against the struct, a missing pin. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "link/stats.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NCPU 3

/* A value no two (cpu, field, frames/bytes) share, and whose sums cannot collide either. */
static __u64 sample(int cpu, unsigned int field, bool bytes)
{
	return ((__u64)(cpu + 1) << 40) | ((__u64)(field + 1) << 8) | (bytes ? 0x80 : 0x01);
}

static void fill_percpu(struct xm_stats *percpu, int ncpu)
{
	unsigned int i;
	int cpu;

	for (cpu = 0; cpu < ncpu; cpu++) {
		struct xm_counter *c = (struct xm_counter *)&percpu[cpu];

		for (i = 0; i < XM_STATS_NFIELDS; i++) {
			c[i].frames = sample(cpu, i, false);
			c[i].bytes = sample(cpu, i, true);
		}
	}
}

static void test_sum_adds_every_field_over_cpus(void **state)
{
	struct xm_stats percpu[NCPU], sum;
	unsigned int i;

	fill_percpu(percpu, NCPU);
	memset(&sum, 0xa5, sizeof(sum));
	xm_stats_sum(percpu, NCPU, &sum);
	for (i = 0; i < XM_STATS_NFIELDS; i++) {
		const struct xm_counter *c = xm_stats_field(&sum, i);
		__u64 frames = 0, bytes = 0;
		int cpu;

		for (cpu = 0; cpu < NCPU; cpu++) {
			frames += sample(cpu, i, false);
			bytes += sample(cpu, i, true);
		}
		if (c->frames != frames || c->bytes != bytes)
			print_message("%s: frames %llu bytes %llu, want %llu %llu\n",
				      xm_stats_field_name(i), (unsigned long long)c->frames,
				      (unsigned long long)c->bytes, (unsigned long long)frames,
				      (unsigned long long)bytes);
		assert_true(c->frames == frames);
		assert_true(c->bytes == bytes);
	}
	/* The named members, spot-checked without xm_stats_field(). */
	assert_true(sum.seen.frames ==
		    sample(0, 0, false) + sample(1, 0, false) + sample(2, 0, false));
	assert_true(sum.rx_resync.bytes == sample(0, XM_STATS_NFIELDS - 1, true) +
						   sample(1, XM_STATS_NFIELDS - 1, true) +
						   sample(2, XM_STATS_NFIELDS - 1, true));
}

static void test_sum_leaves_input_alone(void **state)
{
	struct xm_stats percpu[NCPU], copy[NCPU], sum;

	fill_percpu(percpu, NCPU);
	memcpy(copy, percpu, sizeof(copy));
	xm_stats_sum(percpu, NCPU, &sum);
	assert_memory_equal(percpu, copy, sizeof(copy));
}

static void test_sum_of_one_cpu_is_that_cpu(void **state)
{
	struct xm_stats percpu[1], sum;

	fill_percpu(percpu, 1);
	xm_stats_sum(percpu, 1, &sum);
	assert_memory_equal(&sum, &percpu[0], sizeof(sum));
}

static void test_sum_of_no_cpus_is_zero(void **state)
{
	static const struct xm_stats zero;
	struct xm_stats percpu[1], sum;

	fill_percpu(percpu, 1);
	memset(&sum, 0xa5, sizeof(sum));
	xm_stats_sum(percpu, 0, &sum);
	assert_memory_equal(&sum, &zero, sizeof(sum));
}

static void test_sum_wraps_like_the_kernel_counters(void **state)
{
	struct xm_stats percpu[2], sum;

	memset(percpu, 0, sizeof(percpu));
	percpu[0].rx.data.bytes = UINT64_MAX;
	percpu[1].rx.data.bytes = 2;
	xm_stats_sum(percpu, 2, &sum);
	assert_true(sum.rx.data.bytes == 1);
}

static void test_field_names_are_unique_and_non_empty(void **state)
{
	unsigned int i, j;

	assert_int_equal(XM_STATS_NFIELDS, 6 + (XM_T_MAX - 1) + XM_DROP_REASON_MAX + 1);
	for (i = 0; i < XM_STATS_NFIELDS; i++) {
		const char *name = xm_stats_field_name(i);

		if (!name)
			print_message("field %u has no name\n", i);
		assert_non_null(name);
		assert_true(name[0] != '\0');
		for (j = 0; j < i; j++) {
			if (!strcmp(name, xm_stats_field_name(j)))
				print_message("fields %u and %u are both \"%s\"\n", j, i, name);
			assert_string_not_equal(name, xm_stats_field_name(j));
		}
	}
}

static void test_field_name_past_the_end_is_null(void **state)
{
	assert_null(xm_stats_field_name(XM_STATS_NFIELDS));
	assert_null(xm_stats_field_name(XM_STATS_NFIELDS + 1));
	assert_null(xm_stats_field_name(~0u));
}

struct layout_case {
	size_t off; /* offsetof(struct xm_stats, member) */
	const char *name;
};

#define FIELD(m)                                                                                   \
	{                                                                                          \
		offsetof(struct xm_stats, m), #m                                                   \
	}

/* Every member of struct xm_stats, by its offset: the name must be the member's path. */
static void test_field_names_match_struct_layout(void **state)
{
	/* clang-format off */
	static const struct layout_case cases[] = {
		FIELD(seen),
		FIELD(pass),
		FIELD(redirected),
		FIELD(redirect_fail),
		FIELD(answered),
		FIELD(consumed),
		FIELD(rx.hello),
		FIELD(rx.hello_ack),
		FIELD(rx.data),
		FIELD(rx.ack),
		FIELD(rx.flush),
		FIELD(rx.flush_ack),
		FIELD(rx.ping),
		FIELD(rx.pong),
		FIELD(rx.bmreq),
		FIELD(rx.bitmap),
		FIELD(rx.csumreq),
		FIELD(rx.csum),
		FIELD(rx.setgen),
		FIELD(rx.close),
		FIELD(rx.probe),
		FIELD(rx.probe_ack),
		FIELD(rx.challenge),
		FIELD(rx.read_req),
		FIELD(rx.read_data),
		FIELD(drop.not_for_us),
		FIELD(drop.bad_peer),
		FIELD(drop.truncated),
		FIELD(drop.bad_magic),
		FIELD(drop.bad_version),
		FIELD(drop.bad_type),
		FIELD(drop.bad_length),
		FIELD(drop.no_socket),
		FIELD(rx_resync),
	};
	/* clang-format on */
	struct xm_stats s;
	size_t i;

	assert_int_equal(ARRAY_SIZE(cases), XM_STATS_NFIELDS);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned int idx = (unsigned int)(cases[i].off / sizeof(struct xm_counter));
		const char *name = xm_stats_field_name(idx);

		assert_int_equal(cases[i].off % sizeof(struct xm_counter), 0);
		if (!name || strcmp(name, cases[i].name))
			print_message("field at offset %zu (index %u) is \"%s\", want \"%s\"\n",
				      cases[i].off, idx, name ? name : "(null)", cases[i].name);
		assert_non_null(name);
		assert_string_equal(name, cases[i].name);
		/* And xm_stats_field() points at that member. */
		assert_ptr_equal(xm_stats_field(&s, idx), (const char *)&s + cases[i].off);
	}
	assert_string_equal(xm_stats_field_name(XM_STATS_NFIELDS - 1), "rx_resync");
	assert_ptr_equal(xm_stats_field(&s, XM_STATS_NFIELDS - 1), &s.rx_resync);
}

/* Type and drop counters sit in enum order, which the XDP program indexes by. */
static void test_counters_follow_enum_order(void **state)
{
	struct xm_stats s;

	assert_ptr_equal(&s.rx.hello + (XM_T_DATA - XM_T_HELLO), &s.rx.data);
	assert_ptr_equal(&s.rx.hello + (XM_T_PONG - XM_T_HELLO), &s.rx.pong);
	assert_ptr_equal(&s.drop.not_for_us + XM_DROP_BAD_LENGTH, &s.drop.bad_length);
	assert_ptr_equal(&s.drop.not_for_us + XM_DROP_NO_SOCKET, &s.drop.no_socket);
	assert_ptr_equal(&s.rx.hello + (XM_T_PROBE_ACK - XM_T_HELLO), &s.rx.probe_ack);
	assert_string_equal(xm_stats_field_name(6 + XM_T_FLUSH_ACK - XM_T_HELLO), "rx.flush_ack");
	assert_string_equal(xm_stats_field_name(6 + (XM_T_MAX - 1) + XM_DROP_BAD_PEER),
			    "drop.bad_peer");
}

/*
 * Root gets -ENOENT.  Without root, the lookup may stop earlier: XM_PIN_ROOT is created mode 0700,
 * so an unprivileged caller gets -EACCES once it exists (or -EPERM from bpf() on some kernels).
 */
static void test_read_pinned_missing_interface_is_enoent(void **state)
{
	/* Valid interface names that no test or daemon ever pins. */
	static const char *const names[] = {"xmt-nonexist0", "xmt-nonexist1"};
	bool root = geteuid() == 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		struct xm_stats s, before;
		int ret;

		memset(&s, 0xa5, sizeof(s));
		before = s;
		ret = xm_stats_read_pinned(names[i], &s);
		if (ret != -ENOENT)
			print_message("xm_stats_read_pinned(\"%s\") = %d (%s)%s\n", names[i], ret,
				      strerror(ret < 0 ? -ret : ret), root ? "" : ", not root");
		if (root || (ret != -EACCES && ret != -EPERM))
			assert_int_equal(ret, -ENOENT);
		/* A failed read leaves the output alone. */
		assert_memory_equal(&s, &before, sizeof(s));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_adds_every_field_over_cpus),
		cmocka_unit_test(test_sum_leaves_input_alone),
		cmocka_unit_test(test_sum_of_one_cpu_is_that_cpu),
		cmocka_unit_test(test_sum_of_no_cpus_is_zero),
		cmocka_unit_test(test_sum_wraps_like_the_kernel_counters),
		cmocka_unit_test(test_field_names_are_unique_and_non_empty),
		cmocka_unit_test(test_field_name_past_the_end_is_null),
		cmocka_unit_test(test_field_names_match_struct_layout),
		cmocka_unit_test(test_counters_follow_enum_order),
		cmocka_unit_test(test_read_pinned_missing_interface_is_enoent),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("stats", tests, NULL, NULL) ? 1 : 0;
}
