// SPDX-License-Identifier: GPL-2.0
/* xdpmirror keygen FILE: a new shared key for a pair (docs/protocol.md §14.2). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "link/auth.h"
#include "util/log.h"

int cmd_keygen(int argc, char **argv)
{
	__u8 key[XM_AUTH_KEY_LEN], fp[XM_AUTH_FP_LEN];
	char err[512], text[2 * XM_AUTH_FP_LEN + 1];

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: xdpmirror keygen FILE\n\n"
		       "Writes a new key of %d random bytes to FILE (mode 0600; an existing file "
		       "is\n"
		       "never overwritten).  Copy it to the peer box over a trusted channel (scp) "
		       "and\n"
		       "give both daemons --auth-key FILE.\n",
		       XM_AUTH_KEY_LEN);
		return XM_EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		pr_warn("keygen: usage: xdpmirror keygen FILE");
		return XM_EXIT_USAGE;
	}
	if (xm_auth_keygen(argv[1], err, sizeof(err))) {
		pr_warn("keygen: %s", err);
		return XM_EXIT_FAIL;
	}
	if (xm_auth_key_load(argv[1], key, err, sizeof(err))) {
		pr_warn("keygen: %s", err);
		return XM_EXIT_FAIL;
	}
	xm_auth_fingerprint(key, fp);
	explicit_bzero(key, sizeof(key));
	xm_auth_fp_text(fp, text);
	printf("%s: new key, fingerprint %s\n", argv[1], text);
	return XM_EXIT_OK;
}
