// SPDX-License-Identifier: GPL-2.0
/* Description: the attach configuration: defaults, every key's setter, config text and files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define ORIGIN "test.conf"

/* The config file size limit stated in xm_config_load_file()'s error message. */
#define CONFIG_MAX_BYTES 16384

/* err starts with prefix; prints both when it does not. */
static void assert_err_prefix(const char *err, const char *prefix)
{
	if (strncmp(err, prefix, strlen(prefix)))
		print_message("error message \"%s\"\n  does not start with \"%s\"\n", err, prefix);
	assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
}

static void assert_err_contains(const char *err, const char *needle)
{
	if (!strstr(err, needle))
		print_message("error message \"%s\"\n  does not contain \"%s\"\n", err, needle);
	assert_non_null(strstr(err, needle));
}

static void test_init_sets_defaults(void **state)
{
	struct xm_config c;

	memset(&c, 0xa5, sizeof(c));
	xm_config_init(&c);
	assert_int_equal(c.ethertype, 0x88B5);
	assert_int_equal(c.ethertype, XM_ETH_P_MIRROR);
	assert_int_equal(c.ping_ms, 10);
	assert_int_equal(c.role, XM_ROLE_NONE);
	assert_string_equal(c.dev, "");
	assert_false(c.have_peer);
	assert_string_equal(c.disk, "");
	assert_int_equal(c.queues, 0);
	assert_int_equal(c.xsk_mode, XM_XSK_AUTO);
	assert_int_equal(c.xdp_mode, XM_XDP_NATIVE);
	assert_int_equal(c.busy_poll_us, 0); /* busy polling costs CPU: only when asked for */
}

/* One row per key: a valid value and what it must do, and a value the key must refuse. */
struct key_case {
	const char *key;
	const char *good;
	bool (*applied)(const struct xm_config *c); /* did good land in the config? */
	const char *bad;
};

static bool role_applied(const struct xm_config *c)
{
	return c->role == XM_ROLE_SECONDARY;
}

static bool dev_applied(const struct xm_config *c)
{
	return !strcmp(c->dev, "enp3s0f1");
}

static bool peer_applied(const struct xm_config *c)
{
	static const __u8 want[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x09};

	return c->have_peer && !memcmp(c->peer_mac, want, XM_ETH_ALEN);
}

static bool disk_applied(const struct xm_config *c)
{
	return !strcmp(c->disk, "/dev/nvme0n1");
}

static bool ethertype_applied(const struct xm_config *c)
{
	return c->ethertype == 0x88b6;
}

static bool queues_applied(const struct xm_config *c)
{
	return c->queues == 4;
}

static bool xsk_mode_applied(const struct xm_config *c)
{
	return c->xsk_mode == XM_XSK_COPY;
}

static bool xdp_mode_applied(const struct xm_config *c)
{
	return c->xdp_mode == XM_XDP_SKB;
}

static bool ping_applied(const struct xm_config *c)
{
	return c->ping_ms == 250;
}

static bool timeout_applied(const struct xm_config *c)
{
	return c->timeout_ms == 80;
}

static bool protocol_applied(const struct xm_config *c)
{
	return c->protocol == 'A';
}

static bool nbd_socket_applied(const struct xm_config *c)
{
	return !strcmp(c->nbd_socket, "/run/mirror.sock");
}

static bool nbd_tcp_applied(const struct xm_config *c)
{
	return c->nbd_tcp_port == 10809 && !strcmp(c->nbd_tcp_addr, "127.0.0.1");
}

static bool metrics_listen_applied(const struct xm_config *c)
{
	return c->metrics_port == 9464 && !strcmp(c->metrics_addr, "127.0.0.1");
}

static bool nbd_tls_psk_applied(const struct xm_config *c)
{
	return !strcmp(c->nbd_tls_psk, "/etc/xdpmirror/nbd.psk");
}

static bool nbd_tcp_insecure_applied(const struct xm_config *c)
{
	return c->nbd_tcp_insecure;
}

static bool nbd_group_applied(const struct xm_config *c)
{
	return c->nbd_group && c->nbd_gid == 0;
}

static bool meta_applied(const struct xm_config *c)
{
	return !strcmp(c->meta, "/var/lib/xdpmirror/r0.meta");
}

static bool bitmap_block_applied(const struct xm_config *c)
{
	return c->bitmap_block == 4096;
}

static bool initial_sync_applied(const struct xm_config *c)
{
	return c->initial_sync == 'c';
}

static bool resync_rate_applied(const struct xm_config *c)
{
	return c->resync_mib == 200;
}

static bool ko_applied(const struct xm_config *c)
{
	return c->ko_ms == 750;
}

static bool realtime_applied(const struct xm_config *c)
{
	return c->realtime;
}

static bool busy_poll_applied(const struct xm_config *c)
{
	return c->busy_poll_us == 50;
}

static bool force_applied(const struct xm_config *c)
{
	return c->force;
}

static bool auth_key_applied(const struct xm_config *c)
{
	return !strcmp(c->auth_key, "/etc/xdpmirror/pair.key");
}

static bool no_auth_applied(const struct xm_config *c)
{
	return c->no_auth;
}

static bool on_io_error_applied(const struct xm_config *c)
{
	return c->io_error_pass_on;
}

static const struct key_case key_cases[] = {
	{"role", "secondary", role_applied, "master"},
	{"dev", "enp3s0f1", dev_applied, "eth0:1"},
	{"peer", "02:58:4D:00:00:09", peer_applied, "02:58:4d:00:00"},
	{"disk", "/dev/nvme0n1", disk_applied, ""},
	{"ethertype", "0x88b6", ethertype_applied, "0x0800"},
	{"queues", "4", queues_applied, "0"},
	{"xsk-mode", "copy", xsk_mode_applied, "fast"},
	{"xdp-mode", "skb", xdp_mode_applied, "generic"},
	{"ping-interval", "250", ping_applied, "0"},
	{"timeout", "80", timeout_applied, "1"},
	{"ko-timeout", "750", ko_applied, "5"},
	{"realtime", "yes", realtime_applied, "sometimes"},
	{"busy-poll", "50", busy_poll_applied, "1001"},
	{"protocol", "A", protocol_applied, "D"},
	{"nbd-socket", "/run/mirror.sock", nbd_socket_applied,
	 "/run/a-path-much-longer-than-a-unix-socket-address-can-hold-because-sun_path-has-only-"
	 "108-bytes-of-room.sock"},
	{"nbd-tcp", "10809", nbd_tcp_applied, "65536"},
	{"metrics-listen", "9464", metrics_listen_applied, "localhost:9464"},
	{"nbd-tls-psk", "/etc/xdpmirror/nbd.psk", nbd_tls_psk_applied, ""},
	{"nbd-tcp-insecure", "yes", nbd_tcp_insecure_applied, "please"},
	{"nbd-group", "root", nbd_group_applied, "no-such-group-xm"},
	{"meta", "/var/lib/xdpmirror/r0.meta", meta_applied, ""},
	{"bitmap-block", "4K", bitmap_block_applied, "96K"},
	{"initial-sync", "checksum", initial_sync_applied, "none"},
	{"resync-rate", "200", resync_rate_applied, "fast"},
	{"force", "yes", force_applied, "maybe"},
	{"auth-key", "/etc/xdpmirror/pair.key", auth_key_applied, ""},
	{"no-auth", "yes", no_auth_applied, "sure"},
	{"on-io-error", "pass-on", on_io_error_applied, "ignore"},
};

static const struct key_case *key_case_for(const char *key)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(key_cases); i++)
		if (!strcmp(key_cases[i].key, key))
			return &key_cases[i];
	return NULL;
}

static void test_every_key_is_described(void **state)
{
	const struct xm_config_key *k;
	size_t n = 0;

	for (k = xm_config_keys; k->name; k++, n++) {
		assert_non_null(k->set);
		assert_non_null(k->metavar);
		assert_non_null(k->help);
		assert_true(k->help[0] != '\0');
		assert_ptr_equal(xm_config_find(k->name), k);
		if (!key_case_for(k->name))
			print_message("key '%s' has no row in key_cases: add one\n", k->name);
		assert_non_null(key_case_for(k->name));
	}
	/* And no stale rows for keys that are gone. */
	assert_int_equal(n, ARRAY_SIZE(key_cases));
}

static void test_every_key_accepts_a_valid_value(void **state)
{
	const struct xm_config_key *k;

	for (k = xm_config_keys; k->name; k++) {
		const struct key_case *kc = key_case_for(k->name);
		struct xm_config c;
		char err[256] = "";
		int ret;

		assert_non_null(kc);
		xm_config_init(&c);
		assert_false(kc->applied(&c));
		ret = xm_config_set(&c, k->name, kc->good, err, sizeof(err));
		if (ret || !kc->applied(&c))
			print_message("key '%s' = '%s': ret %d, err \"%s\"\n", k->name, kc->good,
				      ret, err);
		assert_int_equal(ret, 0);
		assert_true(kc->applied(&c));
	}
}

static void test_every_key_rejects_a_bad_value_with_a_reason(void **state)
{
	const struct xm_config_key *k;

	for (k = xm_config_keys; k->name; k++) {
		const struct key_case *kc = key_case_for(k->name);
		char err[256] = "", quoted[64];
		struct xm_config c;
		int ret;

		assert_non_null(kc);
		xm_config_init(&c);
		ret = xm_config_set(&c, k->name, kc->bad, err, sizeof(err));
		if (ret >= 0 || !err[0])
			print_message("key '%s' = '%s': ret %d, err \"%s\"\n", k->name, kc->bad,
				      ret, err);
		assert_true(ret < 0);
		assert_true(err[0] != '\0');
		/* "'VALUE': reason" */
		snprintf(quoted, sizeof(quoted), "'%s': ", kc->bad);
		assert_err_prefix(err, quoted);
		assert_true(strlen(err) > strlen(quoted));
		assert_false(kc->applied(&c));
	}
}

static void test_unknown_key_is_rejected(void **state)
{
	struct xm_config c, before;
	char err[256] = "";

	xm_config_init(&c);
	before = c;
	assert_null(xm_config_find("speed"));
	assert_null(xm_config_find(""));
	assert_null(xm_config_find("Role"));
	assert_int_equal(xm_config_set(&c, "speed", "10", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "unknown key 'speed'");
	assert_memory_equal(&c, &before, sizeof(c));
}

struct value_case {
	const char *key;
	const char *val;
	int ok; /* 1: accepted, 0: rejected */
};

/* Boundaries of each key's accepted values. */
static void test_key_value_boundaries(void **state)
{
	static char disk_max[PATH_MAX], disk_over[PATH_MAX + 1];
	const struct value_case cases[] = {
		{"role", "primary", 1},
		{"role", "secondary", 1},
		{"role", "", 0},
		{"role", "PRIMARY", 0},
		{"dev", "abcdefghijklmno", 1},
		{"dev", "abcdefghijklmnop", 0},
		{"dev", "", 0},
		{"dev", "..", 0},
		{"dev", "a/b", 0},
		{"disk", "/var/tmp/mirror.img", 1},
		{"disk", disk_max, 1},
		{"disk", disk_over, 0},
		{"queues", "1", 1},
		{"queues", "64", 1},
		{"queues", "0", 0},
		{"queues", "65", 0},
		{"queues", "-1", 0},
		{"queues", "", 0},
		{"ping-interval", "1", 1},
		{"ping-interval", "10000", 1},
		{"ping-interval", "0", 0},
		{"ping-interval", "10001", 0},
		{"ping-interval", "10ms", 0},
		{"xsk-mode", "auto", 1},
		{"xsk-mode", "zerocopy", 1},
		{"xsk-mode", "copy", 1},
		{"xsk-mode", "", 0},
		{"xsk-mode", "Copy", 0},
		{"xdp-mode", "native", 1},
		{"xdp-mode", "skb", 1},
		{"xdp-mode", "drv", 0},
		{"xdp-mode", "", 0},
	};
	size_t i;

	/* The longest path that fits disk[] with its NUL, and one byte more. */
	memset(disk_max, 'd', sizeof(disk_max) - 1);
	disk_max[0] = '/';
	disk_max[sizeof(disk_max) - 1] = '\0';
	memset(disk_over, 'd', sizeof(disk_over) - 1);
	disk_over[0] = '/';
	disk_over[sizeof(disk_over) - 1] = '\0';

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, cases[i].key, cases[i].val, err, sizeof(err));
		if ((ret == 0) != cases[i].ok || (ret && !err[0]))
			print_message("row %zu: %s = '%.40s' (%zu chars): ret %d, want %s; err "
				      "\"%.80s\"\n",
				      i, cases[i].key, cases[i].val, strlen(cases[i].val), ret,
				      cases[i].ok ? "0" : "< 0", err);
		assert_int_equal(ret == 0, cases[i].ok);
		if (ret)
			assert_true(err[0] != '\0');
	}
}

static void test_disk_keeps_the_whole_path(void **state)
{
	static char path[PATH_MAX];
	struct xm_config c;
	char err[256];

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	xm_config_init(&c);
	assert_int_equal(xm_config_set(&c, "disk", path, err, sizeof(err)), 0);
	assert_string_equal(c.disk, path);
}

/* Every numeric key reads numbers one way (conf/params.h): hex where decimal works, the same
 * refusals, one form of error.  A key whose metavar says it takes a number must be here. */
struct number_key_case {
	const char *key;
	const char *dec, *hex; /* one value both ways */
	const char *want;      /* its range, as the errors show it */
};

static const struct number_key_case number_keys[] = {
	{"ethertype", "34998", "0x88b6", "0x0600-0xffff"},
	{"queues", "16", "0x10", "1-64"},
	{"ping-interval", "16", "0x10", "1-10000 ms"},
	{"timeout", "16", "0x10", "2-60000 ms"},
	{"ko-timeout", "16", "0x10", "10-600000 ms"},
	{"nbd-tcp", "4096", "0x1000", "1-65535"},
	{"metrics-listen", "4096", "0x1000", "1-65535"},
	{"bitmap-block", "65536", "0x10000", "a power of two, 4K-1M"},
	{"resync-rate", "16", "0x10", "0-1000000 MiB/s"},
	{"busy-poll", "16", "0x10", "0-1000 us"},
};

static bool takes_a_number(const struct xm_config_key *k)
{
	static const char *const metavars[] = {"N",   "MS",   "US",	     "SIZE",
					       "MIB", "PORT", "[ADDR:]PORT", "0xNNNN"};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(metavars); i++)
		if (!strcmp(k->metavar, metavars[i]))
			return true;
	return false;
}

static void test_numeric_keys_are_all_listed(void **state)
{
	const struct xm_config_key *k;
	size_t i, n = 0;

	for (k = xm_config_keys; k->name; k++) {
		if (!takes_a_number(k))
			continue;
		for (i = 0; i < ARRAY_SIZE(number_keys); i++)
			if (!strcmp(number_keys[i].key, k->name))
				break;
		if (i == ARRAY_SIZE(number_keys))
			print_message("numeric key '%s' is not in number_keys\n", k->name);
		assert_true(i < ARRAY_SIZE(number_keys));
		n++;
	}
	assert_int_equal(n, ARRAY_SIZE(number_keys));
}

static void test_numbers_read_one_way_for_every_key(void **state)
{
	static const struct {
		const char *val; /* "%s" is the key's decimal value */
		const char *why;
	} bad[] = {
		{"-1", "negative"},
		{"-%s", "negative"},
		{"+%s", "not a number"},
		{" %s", "not a number"},
		{"%s ", "not a number"},
		{"%sx", "not a number"},
		{"%s.5", "not a number"},
		{"0x", "not a number"},
		{"0xg", "not a number"},
		{"", "not a number"},
		{"ten", "not a number"},
		{"99999999999999999999", "too large"},
		{"0x10000000000000000", "too large"},
	};
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(number_keys); i++) {
		const struct number_key_case *nk = &number_keys[i];
		struct xm_config a, b, before;
		char err[256] = "", val[64], want[128];

		xm_config_init(&a);
		xm_config_init(&b);
		assert_int_equal(xm_config_set(&a, nk->key, nk->dec, err, sizeof(err)), 0);
		if (xm_config_set(&b, nk->key, nk->hex, err, sizeof(err)))
			print_message("%s '%s' refused: %s\n", nk->key, nk->hex, err);
		assert_int_equal(xm_config_set(&b, nk->key, nk->hex, err, sizeof(err)), 0);
		assert_memory_equal(&a, &b, sizeof(a));
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			xm_config_init(&a);
			before = a;
			snprintf(val, sizeof(val), bad[j].val, nk->dec);
			snprintf(want, sizeof(want), "'%s': %s (want %s", val, bad[j].why,
				 nk->want);
			err[0] = '\0';
			assert_true(xm_config_set(&a, nk->key, val, err, sizeof(err)) < 0);
			if (strncmp(err, want, strlen(want)) || strcmp(err + strlen(err) - 1, ")"))
				print_message("%s '%s': said \"%s\", want \"%s...)\"\n", nk->key,
					      val, err, want);
			assert_err_prefix(err, want);
			assert_memory_equal(&a, &before, sizeof(a));
		}
	}
}

/* The issue that made them one: 0x10 was a number for --timeout but not for --bitmap-block. */
static void test_bitmap_block_takes_hex_and_suffixes(void **state)
{
	static const struct {
		const char *val;
		__u32 block; /* 0: refused */
		const char *err;
	} cases[] = {
		{"0x10000", 65536, NULL},
		{"0x10K", 16384, NULL},
		{"64K", 65536, NULL},
		{"1m", 1 << 20, NULL},
		{"4096", 4096, NULL},
		{"0x10", 0, "'0x10': too small (want a power of two, 4K-1M)"},
		{"2M", 0, "'2M': too large (want a power of two, 4K-1M)"},
		{"96K", 0, "'96K': not a power of two (want a power of two, 4K-1M)"},
		{"64KB", 0, "'64KB': not a number (want a power of two, 4K-1M)"},
		{"16777216T", 0, "'16777216T': too large (want a power of two, 4K-1M)"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, "bitmap-block", cases[i].val, err, sizeof(err));
		if (cases[i].block) {
			assert_int_equal(ret, 0);
			assert_int_equal(c.bitmap_block, cases[i].block);
		} else {
			assert_true(ret < 0);
			assert_string_equal(err, cases[i].err);
			assert_int_equal(c.bitmap_block, 0);
		}
	}
}

struct ethertype_case {
	const char *val;
	int ok;
	__u16 want;
};

static void test_ethertype_refuses_ip_arp_vlan_and_lengths(void **state)
{
	static const struct ethertype_case cases[] =
		{
			{"0x88b6", 1, 0x88b6}, {"0x88B5", 1, 0x88b5},
			{"0x0600", 1, 0x0600},			     /* the first EtherType value */
			{"0xffff", 1, 0xffff}, {"34998", 1, 0x88b6}, /* decimal works too */
			{"0x0800", 0, 0},			     /* IPv4 */
			{"0x86DD", 0, 0},			     /* IPv6 */
			{"0x86dd", 0, 0},      {"0x0806", 0, 0},     /* ARP */
			{"0x8100", 0, 0}, /* 802.1Q: the parser would read it as a tag */
			{"0x05ff", 0, 0}, /* an 802.3 length */
			{"0", 0, 0},	       {"0x10000", 0, 0},
			{"0x88b5x", 0, 0},     {"", 0, 0},
		};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, "ethertype", cases[i].val, err, sizeof(err));
		if ((ret == 0) != cases[i].ok)
			print_message("row %zu: ethertype '%s': ret %d, want %s (err \"%s\")\n", i,
				      cases[i].val, ret, cases[i].ok ? "0" : "< 0", err);
		assert_int_equal(ret == 0, cases[i].ok);
		if (ret) {
			assert_true(ret < 0);
			assert_true(err[0] != '\0');
			/* A refused value leaves the default alone. */
			assert_int_equal(c.ethertype, XM_ETH_P_MIRROR);
		} else {
			assert_int_equal(c.ethertype, cases[i].want);
		}
	}
}

/* A rejected peer leaves the one set before in place. */
static void test_rejected_peer_keeps_previous_value(void **state)
{
	static const __u8 good[XM_ETH_ALEN] = {0x02, 0x58, 0x4d, 0x00, 0x00, 0x02};
	struct xm_config c;
	char err[256];

	xm_config_init(&c);
	assert_int_equal(xm_config_set(&c, "peer", "02:58:4d:00:00:02", err, sizeof(err)), 0);
	assert_int_equal(xm_config_set(&c, "peer", "01:00:5e:00:00:07", err, sizeof(err)), -EINVAL);
	assert_memory_equal(c.peer_mac, good, XM_ETH_ALEN);
	assert_int_equal(xm_config_set(&c, "peer", "zz:00:5e:00:00:07", err, sizeof(err)), -EINVAL);
	assert_memory_equal(c.peer_mac, good, XM_ETH_ALEN);
	assert_true(c.have_peer);
}

static void test_peer_must_be_unicast(void **state)
{
	static const char *const refused[] = {
		"01:00:5e:00:00:01", /* multicast */
		"33:33:00:00:00:01", /* IPv6 multicast */
		"03:58:4d:00:00:01", /* group bit on a local address */
		"ff:ff:ff:ff:ff:ff", /* broadcast */
		"00:00:00:00:00:00",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(refused); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, "peer", refused[i], err, sizeof(err));
		if (ret != -EINVAL || c.have_peer)
			print_message("row %zu: peer '%s': ret %d, have_peer %d\n", i, refused[i],
				      ret, c.have_peer);
		assert_int_equal(ret, -EINVAL);
		assert_false(c.have_peer);
		assert_err_contains(err, "unicast");
		assert_err_contains(err, refused[i]);
	}
}

static void test_parse_text_skips_comments_and_blank_lines(void **state)
{
	static const char text[] = "# xdpmirror attach configuration\n"
				   "\n"
				   "   \n"
				   "\t\n"
				   "  # an indented comment = with an equals sign\n"
				   "#role = secondary\n"
				   "role = primary\n"
				   "\t# dev = wrong0\n";
	struct xm_config c;
	char err[256] = "";

	xm_config_init(&c);
	assert_int_equal(xm_config_parse_text(&c, text, ORIGIN, err, sizeof(err)), 0);
	assert_int_equal(c.role, XM_ROLE_PRIMARY);
	assert_string_equal(c.dev, "");
}

static void test_parse_text_of_nothing_changes_nothing(void **state)
{
	static const char *const texts[] = {"", "\n", "\n\n\n", "# only\n# comments", "  \t  "};
	struct xm_config c, before;
	char err[256];
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(texts); i++) {
		xm_config_init(&c);
		before = c;
		ret = xm_config_parse_text(&c, texts[i], ORIGIN, err, sizeof(err));
		if (ret)
			print_message("row %zu: \"%s\": %s\n", i, texts[i], err);
		assert_int_equal(ret, 0);
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void test_parse_text_trims_spaces_and_tabs_around_equals(void **state)
{
	static const char text[] = "role=secondary\n"
				   "dev\t=\tenp3s0f1\n"
				   "   peer   =   02:58:4d:00:00:09   \n"
				   "\tdisk =/dev/nvme0n1\t\n"
				   "queues= 4\n"
				   "ping-interval =250";
	struct xm_config c;
	char err[256] = "";
	size_t i;
	int ret;

	xm_config_init(&c);
	ret = xm_config_parse_text(&c, text, ORIGIN, err, sizeof(err));
	if (ret)
		print_message("%s\n", err);
	assert_int_equal(ret, 0);
	for (i = 0; i < ARRAY_SIZE(key_cases); i++) {
		const char *k = key_cases[i].key;

		if (strcmp(k, "role") && strcmp(k, "dev") && strcmp(k, "peer") &&
		    strcmp(k, "disk") && strcmp(k, "queues") && strcmp(k, "ping-interval"))
			continue;
		if (!key_cases[i].applied(&c))
			print_message("key '%s' not applied\n", k);
		assert_true(key_cases[i].applied(&c));
	}
}

static void test_parse_text_accepts_crlf_line_endings(void **state)
{
	static const char text[] = "# written on Windows\r\n"
				   "\r\n"
				   "role = primary\r\n"
				   "dev = eth1\r\n"
				   "disk = /dev/sdb\r\n"
				   "xdp-mode = skb\r\n";
	struct xm_config c;
	char err[256] = "";
	int ret;

	xm_config_init(&c);
	ret = xm_config_parse_text(&c, text, ORIGIN, err, sizeof(err));
	if (ret)
		print_message("%s\n", err);
	assert_int_equal(ret, 0);
	assert_int_equal(c.role, XM_ROLE_PRIMARY);
	assert_string_equal(c.dev, "eth1");
	assert_string_equal(c.disk, "/dev/sdb");
	assert_int_equal(c.xdp_mode, XM_XDP_SKB);
}

static void test_parse_text_value_may_contain_equals(void **state)
{
	struct xm_config c;
	char err[256] = "";

	xm_config_init(&c);
	assert_int_equal(
		xm_config_parse_text(&c, "disk = /srv/a=b.img\n", ORIGIN, err, sizeof(err)), 0);
	assert_string_equal(c.disk, "/srv/a=b.img");
}

static void test_parse_text_duplicate_key_is_an_error(void **state)
{
	static const char text[] = "role = primary\n"
				   "ping-interval = 5\n"
				   "dev = eth1\n"
				   "role = secondary\n";
	struct xm_config c;
	char err[256] = "";

	xm_config_init(&c);
	assert_int_equal(xm_config_parse_text(&c, text, ORIGIN, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 4: 'role' given twice (first on line 1)"));
}

/* Three probes must fit in the timeout: --ping-interval at most a third of --timeout. */
static void test_check_ping_interval_fits_the_timeout(void **state)
{
	static const struct {
		const char *ping, *timeout;
		bool ok;
	} cases[] = {
		{"10", "50", true},
		{"10", "30", true},
		{"11", "32", false},
		{"1000", "100", false},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";

		xm_config_init(&c);
		assert_int_equal(xm_config_parse_text(&c,
						      "role = primary\ndev = eth1\n"
						      "peer = 02:58:4d:00:00:01\ndisk = /dev/sdb\n"
						      "no-auth = yes\n",
						      ORIGIN, err, sizeof(err)),
				 0);
		assert_int_equal(
			xm_config_set(&c, "ping-interval", cases[i].ping, err, sizeof(err)), 0);
		assert_int_equal(xm_config_set(&c, "timeout", cases[i].timeout, err, sizeof(err)),
				 0);
		err[0] = '\0';
		if (cases[i].ok) {
			assert_int_equal(xm_config_check(&c, err, sizeof(err)), 0);
		} else {
			assert_int_equal(xm_config_check(&c, err, sizeof(err)), -EINVAL);
			assert_non_null(strstr(err, "more than a third of --timeout"));
		}
	}
}

struct text_error_case {
	const char *text;
	const char *prefix;   /* the message starts with this: origin and line */
	const char *contains; /* and names the culprit */
};

static void test_parse_text_error_names_origin_and_line(void **state)
{
	static const struct text_error_case cases[] = {
		/* a bad value */
		{"role = primary\n# comment\nqueues = 0\n",
		 "config '" ORIGIN "' line 3: ", "queues '0'"},
		{"role = primary\ndev = eth1\nqueues = 65", "config '" ORIGIN "' line 3: ", "'65'"},
		{"role = leader\n", "config '" ORIGIN "' line 1: ", "role 'leader'"},
		{"role =\n", "config '" ORIGIN "' line 1: ", "role ''"},
		/* an unknown key */
		{"role = primary\n\nspeed = 10\n",
		 "config '" ORIGIN "' line 3: ", "unknown key 'speed'"},
		{"= primary\n", "config '" ORIGIN "' line 1: ", "unknown key ''"},
		/* a line without '=' */
		{"role = primary\ndev = eth1\nprimary\n",
		 "config '" ORIGIN "' line 3: ", "key = value"},
		/* line numbers count blank lines, comments and CRLF lines */
		{"\n\n# x\n\n\nbogus\n", "config '" ORIGIN "' line 6: ", "key = value"},
		{"role = primary\r\n\r\nqueues = 0\r\n",
		 "config '" ORIGIN "' line 3: ", "queues '0'"},
		{"# 1\n# 2\n# 3\n# 4\n# 5\n# 6\n# 7\n# 8\n# 9\n# 10\n# 11\n# 12\nxsk-mode = "
		 "turbo\n",
		 "config '" ORIGIN "' line 13: ", "'turbo'"},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_parse_text(&c, cases[i].text, ORIGIN, err, sizeof(err));
		if (ret >= 0)
			print_message("row %zu: parsed without error: \"%s\"\n", i, cases[i].text);
		assert_true(ret < 0);
		assert_err_prefix(err, cases[i].prefix);
		assert_err_contains(err, cases[i].contains);
		/* No carriage return leaks into the message. */
		assert_null(strchr(err, '\r'));
	}
}

struct check_case {
	bool role, dev, peer, disk;
	const char *err; /* NULL: complete */
};

/* --nbd-tcp and --metrics-listen ADDR:PORT: numeric IPv4, [IPv6], or a port alone on 127.0.0.1. */
static void test_nbd_tcp_addresses(void **state)
{
	/* A bad address gets the address's message; a bad port the one every number gets. */
	static const char addr_err[] = "want PORT, IPV4:PORT or [IPV6]:PORT",
			  port_err[] = "(want 1-65535)";
	static const struct {
		const char *val, *addr;
		__u16 port;
		const char *why;
	} cases[] = {
		{"10809", "127.0.0.1", 10809, NULL},
		{"0.0.0.0:1", "0.0.0.0", 1, NULL},
		{"192.0.2.7:10809", "192.0.2.7", 10809, NULL},
		{"[::1]:10809", "::1", 10809, NULL},
		{"[::]:65535", "::", 65535, NULL},
		{"[fe80::1:2]:80", "fe80::1:2", 80, NULL},
		{"::1:10809", NULL, 0, addr_err},  /* IPv6 wants brackets */
		{"[::1]10809", NULL, 0, addr_err}, /* no colon before the port */
		{"[127.0.0.1]:10809", NULL, 0, addr_err},
		{"localhost:10809", NULL, 0, addr_err}, /* no name lookups */
		{"127.0.0.1:", NULL, 0, port_err},
		{":10809", NULL, 0, addr_err},
		{"127.0.0.1:0", NULL, 0, port_err},
		{"[]:10809", NULL, 0, addr_err},
		{"", NULL, 0, port_err},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, "nbd-tcp", cases[i].val, err, sizeof(err));
		if ((ret == 0) != !!cases[i].addr)
			print_message("row %zu: '%s': ret %d, err \"%s\"\n", i, cases[i].val, ret,
				      err);
		if (!cases[i].addr) {
			assert_int_equal(ret, -EINVAL);
			assert_err_contains(err, cases[i].why);
			assert_int_equal(c.nbd_tcp_port, 0);
			continue;
		}
		assert_int_equal(ret, 0);
		assert_string_equal(c.nbd_tcp_addr, cases[i].addr);
		assert_int_equal(c.nbd_tcp_port, cases[i].port);
	}
	/* --metrics-listen reads the same addresses the same way. */
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		ret = xm_config_set(&c, "metrics-listen", cases[i].val, err, sizeof(err));
		if (!cases[i].addr) {
			assert_int_equal(ret, -EINVAL);
			assert_err_contains(err, cases[i].why);
			assert_int_equal(c.metrics_port, 0);
			continue;
		}
		assert_int_equal(ret, 0);
		assert_string_equal(c.metrics_addr, cases[i].addr);
		assert_int_equal(c.metrics_port, cases[i].port);
	}
}

static void test_check_nbd_tcp_wants_tls(void **state)
{
	static const struct {
		const char *tcp, *psk, *insecure, *err;
	} cases[] = {
		{"10809", NULL, NULL,
		 "--nbd-tcp without --nbd-tls-psk FILE: anyone who can connect"},
		{"10809", NULL, "no", "--nbd-tcp without --nbd-tls-psk FILE"},
		{"10809", "/etc/n.psk", "yes",
		 "--nbd-tls-psk and --nbd-tcp-insecure exclude each other"},
		{NULL, "/etc/n.psk", NULL,
		 "--nbd-tls-psk without --nbd-tcp: TLS is for the TCP export"},
		{NULL, NULL, "yes", "--nbd-tcp-insecure without --nbd-tcp"},
		{"10809", "/etc/n.psk", NULL, NULL},
		{"[::1]:10809", NULL, "yes", NULL},
		{NULL, NULL, NULL, NULL},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		assert_int_equal(xm_config_parse_text(&c,
						      "role = primary\ndev = eth1\n"
						      "peer = 02:58:4d:00:00:01\ndisk = /dev/sdb\n"
						      "no-auth = yes\n",
						      ORIGIN, err, sizeof(err)),
				 0);
		if (cases[i].tcp)
			assert_int_equal(
				xm_config_set(&c, "nbd-tcp", cases[i].tcp, err, sizeof(err)), 0);
		if (cases[i].psk)
			assert_int_equal(
				xm_config_set(&c, "nbd-tls-psk", cases[i].psk, err, sizeof(err)),
				0);
		if (cases[i].insecure)
			assert_int_equal(xm_config_set(&c, "nbd-tcp-insecure", cases[i].insecure,
						       err, sizeof(err)),
					 0);
		err[0] = '\0';
		ret = xm_config_check(&c, err, sizeof(err));
		if (cases[i].err ? ret != -EINVAL || !strstr(err, cases[i].err) : ret != 0)
			print_message("row %zu: ret %d, err \"%s\"\n", i, ret, err);
		if (cases[i].err) {
			assert_int_equal(ret, -EINVAL);
			assert_err_contains(err, cases[i].err);
		} else {
			assert_int_equal(ret, 0);
		}
	}
}

static void test_nbd_group_by_name_or_number(void **state)
{
	struct xm_config c;
	char err[256] = "";

	xm_config_init(&c);
	assert_int_equal(xm_config_set(&c, "nbd-group", "4242", err, sizeof(err)), 0);
	assert_true(c.nbd_group);
	assert_int_equal(c.nbd_gid, 4242);
	xm_config_init(&c);
	assert_int_equal(xm_config_set(&c, "nbd-group", "", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'': no such group");
	assert_false(c.nbd_group);
}

static void test_check_reports_first_missing_key(void **state)
{
	static const struct check_case cases[] = {
		{false, false, false, false, "missing --role"},
		{false, true, true, true, "missing --role"},
		{true, false, false, false, "missing --dev"},
		{true, false, true, true, "missing --dev"},
		{true, true, false, false, "missing --peer"},
		{true, true, false, true, "missing --peer"},
		{true, true, true, false, "missing --disk"},
		{true, true, true, true, NULL},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct check_case *k = &cases[i];
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		if (k->role)
			assert_int_equal(xm_config_set(&c, "role", "primary", err, sizeof(err)), 0);
		if (k->dev)
			assert_int_equal(xm_config_set(&c, "dev", "eth1", err, sizeof(err)), 0);
		if (k->peer)
			assert_int_equal(
				xm_config_set(&c, "peer", "02:58:4d:00:00:01", err, sizeof(err)),
				0);
		if (k->disk)
			assert_int_equal(xm_config_set(&c, "disk", "/dev/sdb", err, sizeof(err)),
					 0);
		assert_int_equal(xm_config_set(&c, "no-auth", "yes", err, sizeof(err)), 0);
		err[0] = '\0';
		ret = xm_config_check(&c, err, sizeof(err));
		if (k->err ? ret != -EINVAL || strcmp(err, k->err) : ret != 0)
			print_message("row %zu: ret %d, err \"%s\", want \"%s\"\n", i, ret, err,
				      k->err ? k->err : "(none)");
		if (k->err) {
			assert_int_equal(ret, -EINVAL);
			assert_string_equal(err, k->err);
		} else {
			assert_int_equal(ret, 0);
		}
	}
}

/* A complete configuration still needs a key, or --no-auth said out loud, never both. */
static void test_check_wants_a_key_or_no_auth(void **state)
{
	static const struct {
		const char *key, *no_auth, *err;
	} cases[] = {
		{NULL, NULL, "missing --auth-key FILE"},
		{NULL, "no", "missing --auth-key FILE"},
		{"/etc/xm.key", "yes", "--auth-key and --no-auth exclude each other"},
		{"/etc/xm.key", NULL, NULL},
		{"/etc/xm.key", "no", NULL},
		{NULL, "yes", NULL},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xm_config c;
		char err[256] = "";
		int ret;

		xm_config_init(&c);
		assert_int_equal(xm_config_parse_text(&c,
						      "role = primary\ndev = eth1\n"
						      "peer = 02:58:4d:00:00:01\ndisk = /dev/sdb\n",
						      "test", err, sizeof(err)),
				 0);
		if (cases[i].key)
			assert_int_equal(
				xm_config_set(&c, "auth-key", cases[i].key, err, sizeof(err)), 0);
		if (cases[i].no_auth)
			assert_int_equal(
				xm_config_set(&c, "no-auth", cases[i].no_auth, err, sizeof(err)),
				0);
		err[0] = '\0';
		ret = xm_config_check(&c, err, sizeof(err));
		if (cases[i].err ? !ret || !strstr(err, cases[i].err) : ret != 0)
			print_message("row %zu: ret %d, err \"%s\"\n", i, ret, err);
		if (cases[i].err) {
			assert_int_equal(ret, -EINVAL);
			assert_non_null(strstr(err, cases[i].err));
		} else {
			assert_int_equal(ret, 0);
		}
	}
}

/* A temporary file holding len bytes of content; path receives its name. */
static void write_temp(char path[64], const void *content, size_t len)
{
	FILE *f;
	int fd;

	snprintf(path, 64, "/tmp/xm-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A valid config of exactly len bytes: one key, then comment lines of up to 64 bytes. */
static char *config_of_size(size_t len)
{
	static const char head[] = "role = secondary\n";
	char *buf = malloc(len);
	size_t pos = sizeof(head) - 1, n;

	assert_non_null(buf);
	assert_true(len > pos);
	memcpy(buf, head, pos);
	for (; pos < len; pos += n) {
		n = len - pos < 64 ? len - pos : 64;
		memset(buf + pos, 'x', n);
		buf[pos] = '#';
		buf[pos + n - 1] = '\n';
	}
	return buf;
}

static void test_load_file_reads_keys(void **state)
{
	static const char text[] = "role = primary\ndev = eth1\npeer = 02:58:4d:00:00:01\n"
				   "disk = /dev/sdb\nauth-key = /etc/xm.key\n";
	struct xm_config c;
	char path[64], err[256] = "";
	int ret;

	write_temp(path, text, sizeof(text) - 1);
	xm_config_init(&c);
	ret = xm_config_load_file(&c, path, err, sizeof(err));
	unlink(path);
	if (ret)
		print_message("%s\n", err);
	assert_int_equal(ret, 0);
	assert_int_equal(c.role, XM_ROLE_PRIMARY);
	assert_string_equal(c.dev, "eth1");
	assert_true(c.have_peer);
	assert_string_equal(c.disk, "/dev/sdb");
	assert_int_equal(xm_config_check(&c, err, sizeof(err)), 0);
}

static void test_load_file_empty_file_is_fine(void **state)
{
	struct xm_config c, before;
	char path[64], err[256] = "";
	int ret;

	write_temp(path, "", 0);
	xm_config_init(&c);
	before = c;
	ret = xm_config_load_file(&c, path, err, sizeof(err));
	unlink(path);
	assert_int_equal(ret, 0);
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_load_file_error_names_path_and_line(void **state)
{
	static const char text[] = "role = primary\nqueues = 100\n";
	struct xm_config c;
	char path[64], prefix[128], err[256] = "";
	int ret;

	write_temp(path, text, sizeof(text) - 1);
	xm_config_init(&c);
	ret = xm_config_load_file(&c, path, err, sizeof(err));
	unlink(path);
	assert_int_equal(ret, -EINVAL);
	snprintf(prefix, sizeof(prefix), "config '%s' line 2: ", path);
	assert_err_prefix(err, prefix);
	assert_err_contains(err, "'100'");
}

static void test_load_file_missing_path_is_enoent(void **state)
{
	char dir[] = "/tmp/xm-test-config-XXXXXX", path[64], want[128], err[256] = "";
	struct xm_config c;
	int ret;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	xm_config_init(&c);
	ret = xm_config_load_file(&c, path, err, sizeof(err));
	rmdir(dir);
	assert_int_equal(ret, -ENOENT);
	snprintf(want, sizeof(want), "config '%s': ", path);
	assert_err_prefix(err, want);
	assert_err_contains(err, strerror(ENOENT));
}

static void test_load_file_directory_is_an_error(void **state)
{
	char dir[] = "/tmp/xm-test-config-XXXXXX", want[128], err[256] = "";
	struct xm_config c;
	int ret;

	assert_non_null(mkdtemp(dir));
	xm_config_init(&c);
	ret = xm_config_load_file(&c, dir, err, sizeof(err));
	rmdir(dir);
	assert_true(ret < 0);
	snprintf(want, sizeof(want), "config '%s'", dir);
	assert_err_prefix(err, want);
}

static void test_load_file_rejects_nul_byte(void **state)
{
	static const char text[] = "role = primary\n\0dev = eth1\n";
	struct xm_config c, before;
	char path[64], want[128], err[256] = "";
	int ret;

	write_temp(path, text, sizeof(text) - 1);
	xm_config_init(&c);
	before = c;
	ret = xm_config_load_file(&c, path, err, sizeof(err));
	unlink(path);
	assert_int_equal(ret, -EINVAL);
	snprintf(want, sizeof(want), "config '%s': ", path);
	assert_err_prefix(err, want);
	assert_err_contains(err, "not a text file");
	/* Nothing before the NUL was applied either. */
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_load_file_rejects_more_than_16_KiB(void **state)
{
	static const size_t sizes[] = {CONFIG_MAX_BYTES + 1, CONFIG_MAX_BYTES + 4096, 100000};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		char *text = config_of_size(sizes[i]);
		char path[64], want[128], err[256] = "";
		struct xm_config c;
		int ret;

		write_temp(path, text, sizes[i]);
		free(text);
		xm_config_init(&c);
		ret = xm_config_load_file(&c, path, err, sizeof(err));
		unlink(path);
		if (ret != -EFBIG)
			print_message("%zu bytes: ret %d, err \"%s\"\n", sizes[i], ret, err);
		assert_int_equal(ret, -EFBIG);
		snprintf(want, sizeof(want), "config '%s': ", path);
		assert_err_prefix(err, want);
		assert_err_contains(err, "16 KiB");
		assert_int_equal(c.role, XM_ROLE_NONE);
	}
}

/*
 * A file up to the limit loads.  The rejection message says "larger than 16 KiB", so a file of
 * exactly 16 KiB is within it; one byte less must certainly be.
 */
static void test_load_file_accepts_up_to_16_KiB(void **state)
{
	static const size_t sizes[] = {1000, CONFIG_MAX_BYTES - 2, CONFIG_MAX_BYTES - 1,
				       CONFIG_MAX_BYTES};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		char *text = config_of_size(sizes[i]);
		char path[64], err[256] = "";
		struct xm_config c;
		int ret;

		write_temp(path, text, sizes[i]);
		free(text);
		xm_config_init(&c);
		ret = xm_config_load_file(&c, path, err, sizeof(err));
		unlink(path);
		if (ret)
			print_message("%zu bytes: ret %d, err \"%s\"\n", sizes[i], ret, err);
		assert_int_equal(ret, 0);
		assert_int_equal(c.role, XM_ROLE_SECONDARY);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_sets_defaults),
		cmocka_unit_test(test_every_key_is_described),
		cmocka_unit_test(test_every_key_accepts_a_valid_value),
		cmocka_unit_test(test_every_key_rejects_a_bad_value_with_a_reason),
		cmocka_unit_test(test_unknown_key_is_rejected),
		cmocka_unit_test(test_key_value_boundaries),
		cmocka_unit_test(test_disk_keeps_the_whole_path),
		cmocka_unit_test(test_ethertype_refuses_ip_arp_vlan_and_lengths),
		cmocka_unit_test(test_peer_must_be_unicast),
		cmocka_unit_test(test_rejected_peer_keeps_previous_value),
		cmocka_unit_test(test_parse_text_skips_comments_and_blank_lines),
		cmocka_unit_test(test_parse_text_of_nothing_changes_nothing),
		cmocka_unit_test(test_parse_text_trims_spaces_and_tabs_around_equals),
		cmocka_unit_test(test_parse_text_accepts_crlf_line_endings),
		cmocka_unit_test(test_parse_text_value_may_contain_equals),
		cmocka_unit_test(test_parse_text_duplicate_key_is_an_error),
		cmocka_unit_test(test_check_ping_interval_fits_the_timeout),
		cmocka_unit_test(test_parse_text_error_names_origin_and_line),
		cmocka_unit_test(test_check_reports_first_missing_key),
		cmocka_unit_test(test_nbd_tcp_addresses),
		cmocka_unit_test(test_check_nbd_tcp_wants_tls),
		cmocka_unit_test(test_nbd_group_by_name_or_number),
		cmocka_unit_test(test_check_wants_a_key_or_no_auth),
		cmocka_unit_test(test_numeric_keys_are_all_listed),
		cmocka_unit_test(test_numbers_read_one_way_for_every_key),
		cmocka_unit_test(test_bitmap_block_takes_hex_and_suffixes),
		cmocka_unit_test(test_load_file_reads_keys),
		cmocka_unit_test(test_load_file_empty_file_is_fine),
		cmocka_unit_test(test_load_file_error_names_path_and_line),
		cmocka_unit_test(test_load_file_missing_path_is_enoent),
		cmocka_unit_test(test_load_file_directory_is_an_error),
		cmocka_unit_test(test_load_file_rejects_nul_byte),
		cmocka_unit_test(test_load_file_rejects_more_than_16_KiB),
		cmocka_unit_test(test_load_file_accepts_up_to_16_KiB),
	};

	/* The count of failed tests, folded so that it can never read as 77 (skip). */
	return cmocka_run_group_tests_name("config", tests, NULL, NULL) ? 1 : 0;
}
