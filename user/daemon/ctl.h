/* SPDX-License-Identifier: GPL-2.0 */
/* Control requests: one line, a verb and its flags, parsed against one table of verbs. */
#ifndef XM_CTL_H
#define XM_CTL_H

#include "repl/role.h"

/* The longest request line: a verb, its flags and a path (disk-attach ... path PATH). */
#define XM_CTL_LINE_MAX 4200

/*
 * Parses a request line ("verify mark", "promote force", "status text", ...): every word after the
 * verb must be one of that verb's flags.  Returns NULL, or the answer line for a bad request
 * ("error: ...").
 */
const char *xm_ctl_parse(const char *line, struct xm_ctl_req *req);

#endif
