// SPDX-License-Identifier: GPL-2.0
/* Description: user-input parsers: MAC addresses, roles, numbers by one set of rules (u32, sizes,
 * the messages they give), interface names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "conf/params.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What a parser leaves in its output on error: it must not touch it. */
#define POISON_U8  0xa5
#define POISON_U32 0xdeadbeefu
#define POISON_U64 0xdeadbeefcafef00dull

struct mac_case {
	const char *in;
	int ret;
	__u8 mac[XM_ETH_ALEN]; /* when ret == 0 */
};

static const struct mac_case mac_cases[] = {
	{"02:58:4d:00:00:01", 0, {0x02, 0x58, 0x4d, 0x00, 0x00, 0x01}},
	{"0a:1b:2c:3d:4e:5f", 0, {0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}},
	{"AA:BB:CC:DD:EE:FF", 0, {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}},
	{"aA:Bb:cC:Dd:eE:Ff", 0, {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}},
	{"02-58-4d-00-00-01", 0, {0x02, 0x58, 0x4d, 0x00, 0x00, 0x01}},
	{"00:00:00:00:00:00", 0, {0}}, /* well-formed; unicast is a separate check */
	{"ff:ff:ff:ff:ff:ff", 0, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	{"90:e2:ba:12:34:56", 0, {0x90, 0xe2, 0xba, 0x12, 0x34, 0x56}},
	/* short */
	{"02:58:4d:00:00", -EINVAL, {0}},
	{"02:58:4d:00:00:", -EINVAL, {0}},
	{"02:58:4d:00:00:0", -EINVAL, {0}},
	{"2:58:4d:00:00:01", -EINVAL, {0}},
	{"02", -EINVAL, {0}},
	/* long, trailing junk */
	{"02:58:4d:00:00:01:02", -EINVAL, {0}},
	{"02:58:4d:00:00:01:", -EINVAL, {0}},
	{"02:58:4d:00:00:012", -EINVAL, {0}},
	{"02:58:4d:00:00:01x", -EINVAL, {0}},
	{"02:58:4d:00:00:01 ", -EINVAL, {0}},
	{"02:58:4d:00:00:01\n", -EINVAL, {0}},
	/* leading junk */
	{" 02:58:4d:00:00:01", -EINVAL, {0}},
	{"0x02:58:4d:00:00:01", -EINVAL, {0}},
	/* missing or wrong separators */
	{"02584d000001", -EINVAL, {0}},
	{"0258:4d00:0001", -EINVAL, {0}},
	{"02:58:4d:00:0001", -EINVAL, {0}},
	{"02.58.4d.00.00.01", -EINVAL, {0}},
	{"02 58 4d 00 00 01", -EINVAL, {0}},
	{"02::58:4d:00:00:01", -EINVAL, {0}},
	/* non-hex */
	{"g2:58:4d:00:00:01", -EINVAL, {0}},
	{"02:58:4d:00:00:0g", -EINVAL, {0}},
	{"02:58:4z:00:00:01", -EINVAL, {0}},
	{"02:58:4d:00:00:-1", -EINVAL, {0}},
	/* empty */
	{"", -EINVAL, {0}},
};

static void test_mac_parse_table(void **state)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mac_cases); i++) {
		const struct mac_case *c = &mac_cases[i];
		__u8 mac[XM_ETH_ALEN];
		int ret;

		memset(mac, POISON_U8, sizeof(mac));
		ret = xm_parse_mac(c->in, mac);
		if (ret != c->ret)
			print_message("row %zu: xm_parse_mac(\"%s\") = %d, want %d\n", i, c->in,
				      ret, c->ret);
		assert_int_equal(ret, c->ret);
		if (c->ret)
			continue;
		if (memcmp(mac, c->mac, XM_ETH_ALEN))
			print_message("row %zu: xm_parse_mac(\"%s\") wrong bytes\n", i, c->in);
		assert_memory_equal(mac, c->mac, XM_ETH_ALEN);
	}
}

static void test_mac_rejects_null(void **state)
{
	__u8 mac[XM_ETH_ALEN];

	assert_int_equal(xm_parse_mac(NULL, mac), -EINVAL);
}

static void test_mac_format_is_lowercase_colon_separated(void **state)
{
	static const __u8 mac[XM_ETH_ALEN] = {0x0a, 0xBC, 0x00, 0xff, 0x10, 0x01};
	char s[XM_MAC_STRLEN];

	memset(s, 'X', sizeof(s));
	xm_format_mac(mac, s);
	assert_string_equal(s, "0a:bc:00:ff:10:01");
	assert_int_equal(strlen(s), XM_MAC_STRLEN - 1);
}

static void test_mac_format_parse_round_trip(void **state)
{
	static const __u8 macs[][XM_ETH_ALEN] = {
		{0x02, 0x58, 0x4d, 0x00, 0x00, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab},
		{0xcd, 0xef, 0x10, 0x32, 0x54, 0x76},
	};
	char s[XM_MAC_STRLEN];
	__u8 back[XM_ETH_ALEN];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(macs); i++) {
		xm_format_mac(macs[i], s);
		memset(back, POISON_U8, sizeof(back));
		if (xm_parse_mac(s, back) || memcmp(back, macs[i], XM_ETH_ALEN))
			print_message("row %zu: \"%s\" does not parse back\n", i, s);
		assert_int_equal(xm_parse_mac(s, back), 0);
		assert_memory_equal(back, macs[i], XM_ETH_ALEN);
	}
}

static void test_mac_upper_case_formats_back_lower(void **state)
{
	char s[XM_MAC_STRLEN];
	__u8 mac[XM_ETH_ALEN];

	assert_int_equal(xm_parse_mac("DE-AD-BE-EF-00-01", mac), 0);
	xm_format_mac(mac, s);
	assert_string_equal(s, "de:ad:be:ef:00:01");
}

struct unicast_case {
	__u8 mac[XM_ETH_ALEN];
	bool unicast;
};

static void test_mac_is_unicast(void **state)
{
	static const struct unicast_case cases[] = {
		{{0x02, 0x58, 0x4d, 0x00, 0x00, 0x01}, true},  /* locally administered */
		{{0x00, 0x1b, 0x21, 0x00, 0x00, 0x01}, true},  /* OUI-assigned */
		{{0x00, 0x00, 0x00, 0x00, 0x00, 0x01}, true},  /* only the last bit set */
		{{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}, true},  /* all but the group bit */
		{{0x80, 0x00, 0x00, 0x00, 0x00, 0x00}, true},  /* high bit is not the group bit */
		{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, false}, /* IPv4 multicast */
		{{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, false}, /* IPv6 multicast */
		{{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}, false}, /* LLDP */
		{{0x03, 0x00, 0x00, 0x00, 0x00, 0x00}, false}, /* group + local bits */
		{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false}, /* broadcast */
		{{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, false}, /* all-zero */
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		bool got = xm_mac_is_unicast(cases[i].mac);

		if (got != cases[i].unicast)
			print_message("row %zu: xm_mac_is_unicast = %d, want %d\n", i, got,
				      cases[i].unicast);
		assert_int_equal(got, cases[i].unicast);
	}
}

struct role_case {
	const char *in;
	int ret;
	enum xm_role role; /* when ret == 0 */
};

static void test_role_parse_table(void **state)
{
	static const struct role_case cases[] = {
		{"primary", 0, XM_ROLE_PRIMARY},     {"secondary", 0, XM_ROLE_SECONDARY},
		{"Primary", -EINVAL, XM_ROLE_NONE},  {"PRIMARY", -EINVAL, XM_ROLE_NONE},
		{"primary ", -EINVAL, XM_ROLE_NONE}, {" primary", -EINVAL, XM_ROLE_NONE},
		{"prim", -EINVAL, XM_ROLE_NONE},     {"primaryx", -EINVAL, XM_ROLE_NONE},
		{"none", -EINVAL, XM_ROLE_NONE},     {"1", -EINVAL, XM_ROLE_NONE},
		{"", -EINVAL, XM_ROLE_NONE},	     {NULL, -EINVAL, XM_ROLE_NONE},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		enum xm_role role = (enum xm_role)77;
		int ret = xm_parse_role(cases[i].in, &role);

		if (ret != cases[i].ret)
			print_message("row %zu: xm_parse_role(\"%s\") = %d, want %d\n", i,
				      cases[i].in ? cases[i].in : "(null)", ret, cases[i].ret);
		assert_int_equal(ret, cases[i].ret);
		/* On error the output stays untouched. */
		assert_int_equal(role, cases[i].ret ? (enum xm_role)77 : cases[i].role);
	}
}

static void test_role_name_round_trips(void **state)
{
	enum xm_role role;

	assert_string_equal(xm_role_name(XM_ROLE_PRIMARY), "primary");
	assert_string_equal(xm_role_name(XM_ROLE_SECONDARY), "secondary");
	assert_string_equal(xm_role_name(XM_ROLE_NONE), "none");
	assert_string_equal(xm_role_name((enum xm_role)42), "none");
	assert_int_equal(xm_parse_role(xm_role_name(XM_ROLE_PRIMARY), &role), 0);
	assert_int_equal(role, XM_ROLE_PRIMARY);
	assert_int_equal(xm_parse_role(xm_role_name(XM_ROLE_SECONDARY), &role), 0);
	assert_int_equal(role, XM_ROLE_SECONDARY);
}

struct u32_case {
	const char *in;
	__u32 min, max;
	int ret;
	__u32 val; /* when ret == 0 */
};

static void test_u32_parse_table(void **state)
{
	static const struct u32_case cases[] = {
		/* bounds are inclusive */
		{"5", 5, 10, 0, 5},
		{"10", 5, 10, 0, 10},
		{"7", 5, 10, 0, 7},
		{"4", 5, 10, -ERANGE, 0},
		{"11", 5, 10, -ERANGE, 0},
		{"0", 0, 0, 0, 0},
		{"1", 0, 0, -ERANGE, 0},
		{"0", 1, 64, -ERANGE, 0},
		{"64", 1, 64, 0, 64},
		{"65", 1, 64, -ERANGE, 0},
		/* a leading zero is still decimal: people mean ten, not octal eight */
		{"010", 0, UINT32_MAX, 0, 10},
		{"08", 0, UINT32_MAX, 0, 8},
		/* hex */
		{"0x10", 0, UINT32_MAX, 0, 16},
		{"0x", 0, UINT32_MAX, -EINVAL, 0},
		{"0x-5", 0, UINT32_MAX, -EINVAL, 0},
		{"0x+5", 0, UINT32_MAX, -EINVAL, 0},
		{"0XfF", 0, UINT32_MAX, 0, 255},
		{"0x88B5", 0x0600, 0xffff, 0, 0x88b5},
		{"0x05ff", 0x0600, 0xffff, -ERANGE, 0},
		{"0x10000", 0x0600, 0xffff, -ERANGE, 0},
		{"0x", 0, UINT32_MAX, -EINVAL, 0},
		{"0xg", 0, UINT32_MAX, -EINVAL, 0},
		/* the whole u32 range, and just past it */
		{"4294967295", 0, UINT32_MAX, 0, UINT32_MAX},
		{"0xffffffff", 0, UINT32_MAX, 0, UINT32_MAX},
		{"4294967296", 0, UINT32_MAX, -ERANGE, 0},
		{"0x100000000", 0, UINT32_MAX, -ERANGE, 0},
		{"18446744073709551615", 0, UINT32_MAX, -ERANGE, 0},
		/* beyond unsigned long long: strtoull overflow */
		{"18446744073709551616", 0, UINT32_MAX, -ERANGE, 0},
		{"99999999999999999999999999", 0, UINT32_MAX, -ERANGE, 0},
		/* malformed */
		{"-1", 0, UINT32_MAX, -EINVAL, 0},
		{"-0", 0, UINT32_MAX, -EINVAL, 0},
		{"+5", 0, UINT32_MAX, -EINVAL, 0},
		{" 5", 0, UINT32_MAX, -EINVAL, 0},
		{"\t5", 0, UINT32_MAX, -EINVAL, 0},
		{"5 ", 0, UINT32_MAX, -EINVAL, 0},
		{"5x", 0, UINT32_MAX, -EINVAL, 0},
		{"5K", 0, UINT32_MAX, -EINVAL, 0},
		{"1.5", 0, UINT32_MAX, -EINVAL, 0},
		{"x", 0, UINT32_MAX, -EINVAL, 0},
		{"", 0, UINT32_MAX, -EINVAL, 0},
		{NULL, 0, UINT32_MAX, -EINVAL, 0},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct u32_case *c = &cases[i];
		__u32 v = POISON_U32;
		int ret = xm_parse_u32(c->in, c->min, c->max, &v);

		if (ret != c->ret || (!ret && v != c->val))
			print_message(
				"row %zu: xm_parse_u32(\"%s\", %u, %u) = %d (%u), want %d (%u)\n",
				i, c->in ? c->in : "(null)", c->min, c->max, ret, v, c->ret,
				c->val);
		assert_int_equal(ret, c->ret);
		assert_int_equal(v, c->ret ? POISON_U32 : c->val);
	}
}

struct size_case {
	const char *in;
	int ret;
	__u64 val; /* when ret == 0 */
};

static void test_size_parse_table(void **state)
{
	static const struct size_case cases[] = {
		{"0", 0, 0},
		{"1", 0, 1},
		{"4096", 0, 4096},
		{"0x1000", 0, 4096},
		{"1K", 0, 1ull << 10},
		{"1k", 0, 1ull << 10},
		{"2M", 0, 2ull << 20},
		{"2m", 0, 2ull << 20},
		{"3G", 0, 3ull << 30},
		{"3g", 0, 3ull << 30},
		{"4T", 0, 4ull << 40},
		{"4t", 0, 4ull << 40},
		{"0K", 0, 0},
		{"0x10K", 0, 16ull << 10},
		{"18446744073709551615", 0, UINT64_MAX},
		/* largest value each suffix can carry, and one more */
		{"16777215T", 0, 16777215ull << 40},
		{"16777216T", -ERANGE, 0},
		{"17179869183G", 0, 17179869183ull << 30},
		{"17179869184G", -ERANGE, 0},
		{"18014398509481983K", 0, 18014398509481983ull << 10},
		{"18014398509481984K", -ERANGE, 0},
		{"99999999999999999999T", -ERANGE, 0},
		{"18446744073709551616", -ERANGE, 0},
		/* malformed */
		{"1KB", -EINVAL, 0},
		{"1Ki", -EINVAL, 0},
		{"1KK", -EINVAL, 0},
		{"1P", -EINVAL, 0},
		{"1B", -EINVAL, 0},
		{"1 K", -EINVAL, 0},
		{"1K ", -EINVAL, 0},
		{" 1K", -EINVAL, 0},
		{"K", -EINVAL, 0},
		{"-1", -EINVAL, 0},
		{"-1K", -EINVAL, 0},
		{"+1K", -EINVAL, 0},
		{"1.5G", -EINVAL, 0},
		{"", -EINVAL, 0},
		{NULL, -EINVAL, 0},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct size_case *c = &cases[i];
		__u64 v = POISON_U64;
		int ret = xm_parse_size(c->in, &v);

		if (ret != c->ret || (!ret && v != c->val))
			print_message(
				"row %zu: xm_parse_size(\"%s\") = %d (%llu), want %d (%llu)\n", i,
				c->in ? c->in : "(null)", ret, (unsigned long long)v, c->ret,
				(unsigned long long)c->val);
		assert_int_equal(ret, c->ret);
		assert_true(v == (c->ret ? POISON_U64 : c->val));
	}
}

struct num_case {
	const char *in;
	const struct xm_num_rule *rule;
	int ret;
	__u64 val;	 /* when ret == 0 */
	const char *err; /* when ret != 0: the whole message */
};

static const struct xm_num_rule ms_rule = {.min = 2, .max = 60000, .unit = "ms"};
static const struct xm_num_rule block_rule = {
	.min = 4096, .max = 1 << 20, .size = true, .pow2 = true};
static const struct xm_num_rule type_rule = {.min = 0x0600, .max = 0xffff, .hex = true};
static const struct xm_num_rule odd_size_rule = {.min = 1000, .max = 3ull << 40, .size = true};

/* One reading for every number: the rule changes the bounds and the unit, never the syntax. */
static void test_num_parse_table(void **state)
{
	static const struct num_case cases[] = {
		{"50", &ms_rule, 0, 50, NULL},
		{"0x32", &ms_rule, 0, 50, NULL},
		{"0X32", &ms_rule, 0, 50, NULL},
		{"050", &ms_rule, 0, 50, NULL},
		{"2", &ms_rule, 0, 2, NULL},
		{"60000", &ms_rule, 0, 60000, NULL},
		{"1", &ms_rule, -ERANGE, 0, "'1': too small (want 2-60000 ms)"},
		{"60001", &ms_rule, -ERANGE, 0, "'60001': too large (want 2-60000 ms)"},
		{"-5", &ms_rule, -EINVAL, 0, "'-5': negative (want 2-60000 ms)"},
		{"-0x5", &ms_rule, -EINVAL, 0, "'-0x5': negative (want 2-60000 ms)"},
		{"+5", &ms_rule, -EINVAL, 0, "'+5': not a number (want 2-60000 ms)"},
		{"5ms", &ms_rule, -EINVAL, 0, "'5ms': not a number (want 2-60000 ms)"},
		{"5K", &ms_rule, -EINVAL, 0, "'5K': not a number (want 2-60000 ms)"},
		{" 5", &ms_rule, -EINVAL, 0, "' 5': not a number (want 2-60000 ms)"},
		{"", &ms_rule, -EINVAL, 0, "'': not a number (want 2-60000 ms)"},
		{NULL, &ms_rule, -EINVAL, 0, "'': not a number (want 2-60000 ms)"},
		{"18446744073709551616", &ms_rule, -ERANGE, 0,
		 "'18446744073709551616': too large (want 2-60000 ms)"},
		{"64K", &block_rule, 0, 65536, NULL},
		{"0x10000", &block_rule, 0, 65536, NULL},
		{"0x10K", &block_rule, 0, 16384, NULL},
		{"1M", &block_rule, 0, 1 << 20, NULL},
		{"0x10", &block_rule, -ERANGE, 0, "'0x10': too small (want a power of two, 4K-1M)"},
		{"2M", &block_rule, -ERANGE, 0, "'2M': too large (want a power of two, 4K-1M)"},
		{"96K", &block_rule, -EINVAL, 0,
		 "'96K': not a power of two (want a power of two, 4K-1M)"},
		{"64KB", &block_rule, -EINVAL, 0,
		 "'64KB': not a number (want a power of two, 4K-1M)"},
		{"16777216T", &block_rule, -ERANGE, 0,
		 "'16777216T': too large (want a power of two, 4K-1M)"},
		{"0x88b5", &type_rule, 0, 0x88b5, NULL},
		{"34997", &type_rule, 0, 0x88b5, NULL},
		{"0x5ff", &type_rule, -ERANGE, 0, "'0x5ff': too small (want 0x0600-0xffff)"},
		{"2T", &odd_size_rule, 0, 2ull << 40, NULL},
		{"999", &odd_size_rule, -ERANGE, 0, "'999': too small (want 1000-3T)"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct num_case *c = &cases[i];
		char err[128] = "";
		__u64 v = POISON_U64;
		int ret = xm_parse_num(c->in, c->rule, &v, err, sizeof(err));

		if (ret != c->ret || (!ret && v != c->val) || (ret && strcmp(err, c->err)))
			print_message("row %zu: \"%s\": %d (%llu) \"%s\", want %d (%llu) \"%s\"\n",
				      i, c->in ? c->in : "(null)", ret, (unsigned long long)v, err,
				      c->ret, (unsigned long long)c->val, c->err ? c->err : "");
		assert_int_equal(ret, c->ret);
		if (ret) {
			assert_true(v == POISON_U64);
			assert_string_equal(err, c->err);
		} else {
			assert_true(v == c->val);
			assert_string_equal(err, "");
		}
		/* Without room for a message it parses the same. */
		v = POISON_U64;
		assert_int_equal(xm_parse_num(c->in, c->rule, &v, NULL, 0), c->ret);
	}
}

struct ifname_case {
	const char *in;
	int ret;
};

static void test_ifname_check_table(void **state)
{
	static const struct ifname_case cases[] = {
		{"eth0", 0},
		{"e", 0},
		{"enp3s0f1np1", 0},
		{"xmt1-primary", 0},
		{"veth.100", 0},	       /* a VLAN device name: '.' inside is fine */
		{"...", 0},		       /* only "." and ".." are reserved */
		{"abcdefghijklmno", 0},	       /* 15: IFNAMSIZ - 1 */
		{"abcdefghijklmnop", -EINVAL}, /* 16 */
		{"abcdefghijklmnopqrstuvwxyz", -EINVAL},
		{"", -EINVAL},
		{".", -EINVAL},
		{"..", -EINVAL},
		{"eth/0", -EINVAL},
		{"/", -EINVAL},
		{"eth0:1", -EINVAL},
		{"eth 0", -EINVAL},
		{" eth0", -EINVAL},
		{"eth0 ", -EINVAL},
		{"eth\t0", -EINVAL},
		{"eth0\n", -EINVAL},
		{NULL, -EINVAL},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret = xm_check_ifname(cases[i].in);

		if (ret != cases[i].ret)
			print_message("row %zu: xm_check_ifname(\"%s\") = %d, want %d\n", i,
				      cases[i].in ? cases[i].in : "(null)", ret, cases[i].ret);
		assert_int_equal(ret, cases[i].ret);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac_parse_table),
		cmocka_unit_test(test_mac_rejects_null),
		cmocka_unit_test(test_mac_format_is_lowercase_colon_separated),
		cmocka_unit_test(test_mac_format_parse_round_trip),
		cmocka_unit_test(test_mac_upper_case_formats_back_lower),
		cmocka_unit_test(test_mac_is_unicast),
		cmocka_unit_test(test_role_parse_table),
		cmocka_unit_test(test_role_name_round_trips),
		cmocka_unit_test(test_u32_parse_table),
		cmocka_unit_test(test_size_parse_table),
		cmocka_unit_test(test_num_parse_table),
		cmocka_unit_test(test_ifname_check_table),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("params", tests, NULL, NULL) ? 1 : 0;
}
