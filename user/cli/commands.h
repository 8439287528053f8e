/* SPDX-License-Identifier: GPL-2.0 */
/* The xdpmirror subcommands.  Each returns an exit code from enum xm_exit. */
#ifndef XM_COMMANDS_H
#define XM_COMMANDS_H

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

/* Shared by commands that take --dev: validates the name, prints "CMD: ..." on error. */
int xm_require_dev(const char *cmd, const char *dev);

#endif
