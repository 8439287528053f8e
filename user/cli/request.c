// SPDX-License-Identifier: GPL-2.0
/* Requests to a daemon's control socket, for every command that talks to one: the daemon's answer,
 * or one reason why there is none. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "util/runstate.h"

static bool is_busy(const char *answer)
{
	return !strncmp(answer, "error: busy", 11);
}

int xm_cli_request(const char *dev, const char *req, char *buf, size_t len)
{
	struct timespec pause = {0, XM_CLI_BUSY_POLL_MS * 1000000L};
	int n, waited;

	for (waited = 0;; waited += XM_CLI_BUSY_POLL_MS) {
		n = xm_ctl_request(dev, req, buf, len);
		if (n == 0)
			return -ECONNRESET; /* it closed without a word: it is going away */
		if (n < 0 || !is_busy(buf))
			return n;
		if (waited >= XM_CLI_BUSY_WAIT_MS)
			return -EBUSY;
		nanosleep(&pause, NULL);
	}
}

const char *xm_cli_request_error(int err)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		return "not attached";
	case -EACCES:
	case -EPERM:
		/* The control socket is root's (mode 0600): this is not "not attached". */
		return "permission denied (run as root)";
	case -EAGAIN:
		return "the daemon did not answer within 2 s";
	case -EBUSY:
		return "the daemon is busy: too many control clients (try again)";
	case -ECONNRESET:
		return "the daemon closed the connection without answering";
	default:
		return strerror(-err);
	}
}

int xm_cli_request_exit(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED ? XM_EXIT_NOT_ATTACHED : XM_EXIT_FAIL;
}
