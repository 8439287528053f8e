/* SPDX-License-Identifier: GPL-2.0 */
/* Per-interface run-time state under /run/xdpmirror: the attach lock (holding the daemon's pid) and
 * the control socket the CLI talks to. */
#ifndef XM_RUNSTATE_H
#define XM_RUNSTATE_H

#include <stddef.h>
#include <sys/types.h>

void xm_run_path(const char *ifname, const char *suffix, char *out, size_t len);

/*
 * Takes the attach lock of ifname and records our pid in it.  Returns the lock fd, or -EBUSY with
 * *holder set when another live daemon has it, or another -errno.
 */
int xm_run_lock(const char *ifname, pid_t *holder);
/* The pid of the daemon holding ifname's lock, 0 when nobody does, or -errno. */
pid_t xm_run_holder(const char *ifname);
/* Removes the lock file and control socket and closes the lock. */
void xm_run_release(const char *ifname, int lock_fd);

/* Listening control socket for ifname (non-blocking).  Returns the fd or -errno. */
int xm_ctl_listen(const char *ifname);
/* Removes the control socket's name: from now on a request fails at once (-ENOENT) instead of
 * waiting in the backlog of a daemon that no longer accepts. */
void xm_ctl_unlink(const char *ifname);
/* Sends one request line to ifname's daemon and reads the whole answer into buf (NUL-terminated).
 * Returns the answer length or -errno (-ECONNREFUSED/-ENOENT when no daemon listens). */
int xm_ctl_request(const char *ifname, const char *request, char *buf, size_t len);

#endif
