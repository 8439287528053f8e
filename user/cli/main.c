// SPDX-License-Identifier: GPL-2.0
/* xdpmirror: command dispatch.  Only main() turns results into exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "util/log.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"attach", cmd_attach, "attach to the mirror NIC and run the daemon (foreground)"},
	{"detach", cmd_detach, "stop the daemon on an interface and remove its state"},
	{"status", cmd_status, "role, peer, modes, counters of attached interfaces"},
	{"stats", cmd_stats, "XDP counters (summed over CPUs) with rates"},
	{"metrics", cmd_metrics, "Prometheus metrics of attached interfaces (text format)"},
	{"check", cmd_check, "can this NIC run xdpmirror? (native XDP, queues, MTU)"},
	{"promote", cmd_promote, "make this secondary the primary (serves the NBD export)"},
	{"demote", cmd_demote, "make this primary a secondary"},
	{"verify", cmd_verify, "compare checksums of every region on both boxes (primary)"},
	{"disk", cmd_disk, "detach the disk, or attach one again, while the daemon runs"},
	{"events", cmd_events, "follow state changes as JSON lines (--now: the state only)"},
	{"resolve", cmd_resolve, "after a split brain: drop this box's changes (secondary)"},
	{"keygen", cmd_keygen, "write a new shared key for a pair (mode 0600)"},
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: xdpmirror COMMAND [options]   (xdpmirror COMMAND --help for more)\n\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nexit codes: 0 ok, 1 failed, 2 usage error, 3 not attached\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return XM_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return XM_EXIT_OK;
	}
	xm_log_route_libs();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	pr_warn("unknown command '%s' (try 'xdpmirror help')", argv[1]);
	return XM_EXIT_USAGE;
}
