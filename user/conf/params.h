/* SPDX-License-Identifier: GPL-2.0 */
/* Parsers for user input: MAC addresses, roles, numbers, interface names.  Pure functions. */
#ifndef XM_PARAMS_H
#define XM_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "xdpmirror.h"

#define XM_MAC_STRLEN 18 /* "xx:xx:xx:xx:xx:xx" + NUL */

/* Each returns 0, or -EINVAL for malformed input and -ERANGE for a value out of range. */
int xm_parse_mac(const char *s, __u8 mac[XM_ETH_ALEN]);
int xm_parse_role(const char *s, enum xm_role *role);

/* What a number may be: every number, size and duration the user gives is read by one set of
 * rules (xm_parse_num), and only its bounds and unit differ. */
struct xm_num_rule {
	__u64 min, max;	  /* inclusive */
	const char *unit; /* shown after the range: "ms", "MiB/s"; NULL for none */
	bool size;	  /* takes one K/M/G/T suffix (powers of 1024); the range shows them */
	bool pow2;	  /* only powers of two */
	bool hex;	  /* the range shows in hex (EtherTypes) */
};

/*
 * Reads s: decimal, or hex after 0x; no sign, no spaces, nothing after the digits but a size's
 * suffix; then checks rule's bounds.  Returns 0, -EINVAL (not a number, negative, not a power of
 * two) or -ERANGE (too large to hold, or out of bounds); *out is untouched on error.  err (may be
 * NULL) gets the one form of every such error: "'0x10': too small (want a power of two, 4K-1M)".
 */
int xm_parse_num(const char *s, const struct xm_num_rule *rule, __u64 *out, char *err,
		 size_t errlen);
/* xm_parse_num within [min, max], without a message. */
int xm_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out);
/* xm_parse_num of a size (K/M/G/T) of any value, without a message. */
int xm_parse_size(const char *s, __u64 *out);
/* A usable Linux interface name: 1..15 characters, no '/', ':' or whitespace. */
int xm_check_ifname(const char *s);

void xm_format_mac(const __u8 mac[XM_ETH_ALEN], char out[XM_MAC_STRLEN]);
const char *xm_role_name(enum xm_role role);
bool xm_mac_is_unicast(const __u8 mac[XM_ETH_ALEN]);

#endif
