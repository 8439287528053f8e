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

/* strtoull accepts leading whitespace and a '-' sign; user input gets neither. */
static int parse_unsigned(const char *s, unsigned long long *out, char **end)
{
	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	/* Hex with 0x, else decimal: "010" is ten, as a person means it, not octal eight. */
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
		*out = strtoull(s + 2, end, 16);
	} else {
		*out = strtoull(s, end, 10);
	}
	if (errno == ERANGE)
		return -ERANGE;
	if (*end == s)
		return -EINVAL;
	return 0;
}

int xm_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out)
{
	unsigned long long v;
	char *end;
	int err;

	err = parse_unsigned(s, &v, &end);
	if (err)
		return err;
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = (__u32)v;
	return 0;
}

int xm_parse_size(const char *s, __u64 *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;
	int err;

	err = parse_unsigned(s, &v, &end);
	if (err)
		return err;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
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
	if (*end && end[1])
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
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
