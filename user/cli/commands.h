/* SPDX-License-Identifier: GPL-2.0 */
/* The xdpmirror subcommands.  Each returns an exit code from enum xm_exit. */
#ifndef XM_COMMANDS_H
#define XM_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

/* A small, documented set, as drbdadm has. */
enum xm_exit {
	XM_EXIT_OK = 0,
	XM_EXIT_FAIL = 1,	  /* the command could not do its job; the message says why */
	XM_EXIT_USAGE = 2,	  /* bad arguments */
	XM_EXIT_NOT_ATTACHED = 3, /* the interface has no xdpmirror daemon */
};

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_demote(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_disk(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_events(int argc, char **argv);

/* Shared by commands that take --dev: validates the name, prints "CMD: ..." on error. */
int xm_require_dev(const char *cmd, const char *dev);
/* Attached interfaces, those whose lock a live daemon holds: up to max names, their count. */
#define XM_MAX_DEVICES 64
int xm_list_attached(char names[][16], int max);
/* The interfaces a command that takes [--dev IF] asks: IF alone (checked as xm_require_dev does),
 * or every attached one.  Returns how many, or -1 after a usage message. */
int xm_cli_devices(const char *cmd, const char *dev, char names[][16]);

/* A daemon says "busy" while it serves as many control clients as it will (daemon/control.c);
 * those close within its 2 s deadline, so a command asks again this often, this long. */
#define XM_CLI_BUSY_POLL_MS 50
#define XM_CLI_BUSY_WAIT_MS 5000

/* One request to dev's daemon (util/runstate.h), waiting a few seconds while it answers "busy".
 * Returns the answer's length, or -errno: -ENOENT or -ECONNREFUSED when no daemon listens,
 * -EACCES when the caller may not talk to it, -EBUSY when it stayed busy. */
int xm_cli_request(const char *dev, const char *req, char *buf, size_t len);
/* Why a request failed, for "CMD 'IF': WHY" ("not attached", "permission denied (run as root)"). */
const char *xm_cli_request_error(int err);
/* The exit code for a failed request: XM_EXIT_NOT_ATTACHED only when no daemon listens. */
int xm_cli_request_exit(int err);

#endif
