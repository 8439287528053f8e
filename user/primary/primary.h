/* SPDX-License-Identifier: GPL-2.0 */
/* The primary: NBD export, local writes, and the reliable sender of DATA and FLUSH frames. */
#ifndef XM_PRIMARY_H
#define XM_PRIMARY_H

#include "repl/role.h"

/* The primary as a role the daemon runs (repl/role.h).  Its control verb: "verify" (mark). */
extern const struct xm_role_ops xm_primary_role;

#endif
