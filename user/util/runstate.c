// SPDX-License-Identifier: GPL-2.0
/* Per-interface run-time state under /run/xdpmirror: the attach lock and the control socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/runstate.h"
#include "xdpmirror.h"

void xm_run_path(const char *ifname, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.%s", XM_RUN_DIR, ifname, suffix);
}

static pid_t read_pid(int fd)
{
	char buf[32] = {0};

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return 0;
	return (pid_t)strtol(buf, NULL, 10);
}

static int write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (ftruncate(fd, 0) || pwrite(fd, buf, n, 0) != n)
		return -errno;
	return 0;
}

int xm_run_lock(const char *ifname, pid_t *holder)
{
	char path[256];
	int fd, err;

	if (mkdir(XM_RUN_DIR, 0755) && errno != EEXIST)
		return -errno;
	xm_run_path(ifname, "lock", path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* flock, not a pid check: the kernel drops it when the daemon dies, however it dies. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		*holder = read_pid(fd);
		close(fd);
		return err;
	}
	err = write_pid(fd);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

pid_t xm_run_holder(const char *ifname)
{
	char path[256];
	pid_t pid = 0;
	int fd;

	xm_run_path(ifname, "lock", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB)) {
		pid = errno == EWOULDBLOCK ? read_pid(fd) : -errno;
		if (pid == 0)
			pid = -ESRCH; /* held, but the pid is not written yet */
	}
	close(fd);
	return pid;
}

void xm_run_release(const char *ifname, int lock_fd)
{
	char path[256];

	xm_run_path(ifname, "ctl", path, sizeof(path));
	unlink(path);
	/* Unlink while still holding the lock, so a new daemon never locks a file we then remove.
	 */
	xm_run_path(ifname, "lock", path, sizeof(path));
	unlink(path);
	if (lock_fd >= 0)
		close(lock_fd);
}

static int ctl_addr(const char *ifname, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	xm_run_path(ifname, "ctl", sa->sun_path, sizeof(sa->sun_path));
	return 0;
}

int xm_ctl_listen(const char *ifname)
{
	struct sockaddr_un sa;
	int fd;

	ctl_addr(ifname, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* We hold the attach lock, so any socket file left here is a dead daemon's. */
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0600) ||
	    listen(fd, 8)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

void xm_ctl_unlink(const char *ifname)
{
	struct sockaddr_un sa;

	ctl_addr(ifname, &sa);
	unlink(sa.sun_path);
}

int xm_ctl_request(const char *ifname, const char *request, char *buf, size_t len)
{
	struct timeval tv = {.tv_sec = 2};
	struct iovec iov[2] = {{(void *)request, strlen(request)}, {"\n", 1}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	size_t got = 0, want = iov[0].iov_len + 1;
	struct sockaddr_un sa;
	ssize_t n = 0;
	int fd, err = 0;

	ctl_addr(ifname, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto out;
	}
	/* One send, newline included and however long the request (a path): the daemon answers
	 * once it has the whole line.  A daemon serving all the clients it will says "busy" and
	 * closes without reading: its line is still there to read. */
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)want && errno != EPIPE &&
	    errno != ECONNRESET) {
		err = -errno;
		goto out;
	}
	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0 && got == 0)
		err = -errno;
out:
	close(fd);
	if (err)
		return err;
	buf[got] = '\0';
	return (int)got;
}
