// SPDX-License-Identifier: GPL-2.0
/* Parsers for user input: MAC addresses, roles, numbers, interface names.  Pure functions. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/params.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int xm_parse_mac(const char *s, __u8 mac[XM_ETH_ALEN])
{
	int i, hi, lo;

	if (!s)
		return -EINVAL;
	/* Exactly six pairs of hex digits separated by ':' (or '-'): no shortcuts, no trailing
	 * junk. */
	for (i = 0; i < XM_ETH_ALEN; i++) {
		hi = hex_digit(s[0]);
		lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0)
			return -EINVAL;
		mac[i] = (__u8)(hi << 4 | lo);
		s += 2;
		if (i < XM_ETH_ALEN - 1) {
			if (*s != ':' && *s != '-')
				return -EINVAL;
			s++;
		}
	}
	return *s ? -EINVAL : 0;
}

void xm_format_mac(const __u8 mac[XM_ETH_ALEN], char out[XM_MAC_STRLEN])
{
	snprintf(out, XM_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

bool xm_mac_is_unicast(const __u8 mac[XM_ETH_ALEN])
{
	static const __u8 zero[XM_ETH_ALEN];

	return !(mac[0] & 1) && memcmp(mac, zero, XM_ETH_ALEN) != 0;
}

int xm_parse_role(const char *s, enum xm_role *role)
{
	if (s && !strcmp(s, "primary"))
		*role = XM_ROLE_PRIMARY;
	else if (s && !strcmp(s, "secondary"))
		*role = XM_ROLE_SECONDARY;
	else
		return -EINVAL;
	return 0;
}

const char *xm_role_name(enum xm_role role)
{
	switch (role) {
	case XM_ROLE_PRIMARY:
		return "primary";
	case XM_ROLE_SECONDARY:
		return "secondary";
	default:
		return "none";
	}
}

/*
 * The one reading of a number, for every option and config key: decimal, or hex after 0x ("010"
 * is ten, as a person means it, not octal eight); no sign, no spaces, nothing after it but, where
 * size is set, one K, M, G or T (powers of 1024).  Returns 0, or -EINVAL or -ERANGE with *why.
 */
static int read_number(const char *s, bool size, __u64 *out, const char **why)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	*why = "not a number";
	if (!s || !*s || isspace((unsigned char)*s) || *s == '+')
		return -EINVAL;
	if (*s == '-') {
		*why = "negative";
		return -EINVAL;
	}
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		/* strtoull would take "0x-5" and " 5" after the prefix. */
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
		v = strtoull(s + 2, &end, 16);
	} else {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = strtoull(s, &end, 10);
	}
	if (size && *end) {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			shift = 10;
			break;
		case 'M':
			shift = 20;
			break;
		case 'G':
			shift = 30;
			break;
		case 'T':
			shift = 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
	}
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || (shift && v > (~0ULL >> shift))) {
		*why = "too large";
		return -ERANGE;
	}
	*out = (__u64)v << shift;
	return 0;
}

/* A bound as the rule shows it: 0x0600, 4K, 60000. */
static void format_bound(__u64 v, const struct xm_num_rule *r, char *out, size_t len)
{
	static const char suffix[] = "TGMK";
	unsigned int i;

	if (r->hex) {
		snprintf(out, len, "0x%04llx", (unsigned long long)v);
		return;
	}
	for (i = 0; r->size && v && i < 4; i++) {
		unsigned int shift = 40 - 10 * i;

		if (!(v & ((1ULL << shift) - 1))) {
			snprintf(out, len, "%llu%c", (unsigned long long)(v >> shift), suffix[i]);
			return;
		}
	}
	snprintf(out, len, "%llu", (unsigned long long)v);
}

int xm_parse_num(const char *s, const struct xm_num_rule *r, __u64 *out, char *err, size_t errlen)
{
	char lo[32], hi[32];
	const char *why;
	__u64 v = 0;
	int ret;

	ret = read_number(s, r->size, &v, &why);
	if (!ret && (v < r->min || v > r->max)) {
		why = v < r->min ? "too small" : "too large";
		ret = -ERANGE;
	}
	if (!ret && r->pow2 && (v & (v - 1))) {
		why = "not a power of two";
		ret = -EINVAL;
	}
	if (!ret) {
		*out = v;
		return 0;
	}
	if (err && errlen) {
		format_bound(r->min, r, lo, sizeof(lo));
		format_bound(r->max, r, hi, sizeof(hi));
		snprintf(err, errlen, "'%s': %s (want %s%s-%s%s%s)", s ? s : "", why,
			 r->pow2 ? "a power of two, " : "", lo, hi, r->unit ? " " : "",
			 r->unit ? r->unit : "");
	}
	return ret;
}

int xm_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out)
{
	const struct xm_num_rule r = {.min = min, .max = max};
	__u64 v;
	int ret = xm_parse_num(s, &r, &v, NULL, 0);

	if (!ret)
		*out = (__u32)v;
	return ret;
}

int xm_parse_size(const char *s, __u64 *out)
{
	static const struct xm_num_rule r = {.max = ~0ULL, .size = true};

	return xm_parse_num(s, &r, out, NULL, 0);
}

int xm_check_ifname(const char *s)
{
	size_t n, i;

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (n == 0 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
			return -EINVAL;
	return 0;
}
