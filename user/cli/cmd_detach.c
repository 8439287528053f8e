// SPDX-License-Identifier: GPL-2.0
/* xdpmirror detach: stop the daemon of an interface, then remove what a crashed one left. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "link/bpf_load.h"
#include "cli/commands.h"
#include "util/log.h"
#include "util/runstate.h"

#define DETACH_WAIT_MS 10000

static bool pins_exist(const char *dev)
{
	char dir[256];

	xm_pin_dir(dev, dir, sizeof(dir));
	return access(dir, F_OK) == 0;
}

int cmd_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct timespec tick = {0, 20 * 1000 * 1000};
	const char *dev = NULL;
	pid_t pid;
	int c, waited;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'h':
			printf("usage: xdpmirror detach --dev IF\n");
			return XM_EXIT_OK;
		default:
			pr_warn("detach: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (xm_require_dev("detach", dev))
		return XM_EXIT_USAGE;

	pid = xm_run_holder(dev);
	if (pid < 0 && pid != -ESRCH) {
		pr_warn("detach '%s': cannot read lock: %s", dev, strerror(-pid));
		return XM_EXIT_FAIL;
	}
	if (pid > 0) {
		if (kill(pid, SIGTERM) && errno != ESRCH) {
			if (errno == EPERM)
				pr_warn("detach '%s': permission denied (run as root)", dev);
			else
				pr_warn("detach '%s': cannot signal daemon pid %d: %s", dev,
					(int)pid, strerror(errno));
			return XM_EXIT_FAIL;
		}
		/* The daemon detaches and unpins itself; wait until it lets go of the lock. */
		for (waited = 0; xm_run_holder(dev) > 0; waited += 20) {
			if (waited >= DETACH_WAIT_MS) {
				pr_warn("detach '%s': daemon pid %d did not stop within %d s", dev,
					(int)pid, DETACH_WAIT_MS / 1000);
				return XM_EXIT_FAIL;
			}
			nanosleep(&tick, NULL);
		}
		return XM_EXIT_OK;
	}
	/* No daemon.  A killed one leaves its pins (its XDP link died with it): remove them. */
	if (pins_exist(dev)) {
		int err = xm_bpf_unpin(dev);

		if (err) {
			pr_warn("detach '%s': cannot remove pins: %s", dev, strerror(-err));
			return XM_EXIT_FAIL;
		}
		xm_run_release(dev, -1);
		pr_info("detach '%s': removed state left by a daemon that did not exit cleanly",
			dev);
		return XM_EXIT_OK;
	}
	pr_warn("detach '%s': not attached", dev);
	return XM_EXIT_NOT_ATTACHED;
}
