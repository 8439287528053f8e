/* SPDX-License-Identifier: GPL-2.0 */
/* The secondary: applies DATA frames to its disk and acknowledges them once durable. */
#ifndef XM_SECONDARY_H
#define XM_SECONDARY_H

#include <linux/types.h>

#include "repl/role.h"

/* The secondary as a role the daemon runs (repl/role.h).  Its control verb: "resolve"
 * (discard_local). */
extern const struct xm_role_ops xm_secondary_role;

/* The UMEM headroom the secondary's layout needs at this MTU (§7.3).  Both roles use that
 * layout: a box can be promoted or demoted at run time. */
__u32 xm_secondary_headroom(__u32 mtu);

#endif
