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
int xm_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out);
/* Accepts a plain number with an optional K/M/G/T suffix (powers of 1024). */
int xm_parse_size(const char *s, __u64 *out);
/* A usable Linux interface name: 1..15 characters, no '/', ':' or whitespace. */
int xm_check_ifname(const char *s);

void xm_format_mac(const __u8 mac[XM_ETH_ALEN], char out[XM_MAC_STRLEN]);
const char *xm_role_name(enum xm_role role);
bool xm_mac_is_unicast(const __u8 mac[XM_ETH_ALEN]);

#endif
