// SPDX-License-Identifier: GPL-2.0
/* xdpmirror events: what happens to the attached devices, one JSON object per line, as the
 * daemons tell it (docs/events.md). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/commands.h"
#include "conf/params.h"
#include "daemon/evreaders.h"
#include "util/log.h"
#include "util/runstate.h"

#define LINE_BYTES (2 * XM_EV_LINE_MAX)
#define RESCAN_MS  1000 /* without --dev: how often to look for newly attached devices */

/* One daemon's stream: its socket, a line being read, and the type of the last line. */
struct stream {
	char dev[16];
	int fd;
	char buf[LINE_BYTES];
	size_t len;
	char last[32];
	long long lost;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Connects to dev's control socket and asks for its stream.  Returns the socket or -errno. */
static int stream_connect(const char *dev, const char *req)
{
	struct timeval tv = {.tv_sec = 2};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[64];
	int fd, n, err;

	xm_run_path(dev, "ctl", sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Until the first line: a daemon that does not answer within 2 s is not waited for. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = snprintf(line, sizeof(line), "%s\n", req);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Reads up to the first line, which is the state line or "error: ...".  Returns 0, -EBUSY
 * (the daemon serves all the control clients it will), -EPROTO (it refused; said on stderr), or
 * another -errno. */
static int stream_first_line(struct stream *st)
{
	struct timeval none = {0};
	ssize_t n;
	char *nl = NULL;

	st->len = 0;
	while (!nl) {
		n = read(st->fd, st->buf + st->len, sizeof(st->buf) - 1 - st->len);
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return -ECONNRESET;
		st->len += (size_t)n;
		st->buf[st->len] = '\0';
		nl = strchr(st->buf, '\n');
		if (!nl && st->len == sizeof(st->buf) - 1)
			return -EMSGSIZE;
	}
	if (!strncmp(st->buf, "error: busy", 11))
		return -EBUSY;
	if (!strncmp(st->buf, "error: ", 7)) {
		*nl = '\0';
		pr_warn("events '%s': %s", st->dev, st->buf + 7);
		return -EPROTO;
	}
	setsockopt(st->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	return 0;
}

/* Opens dev's stream, asking again while the daemon is busy.  Returns an exit code. */
static int stream_open(struct stream *st, const char *dev, const char *req)
{
	int waited, err;

	snprintf(st->dev, sizeof(st->dev), "%s", dev);
	st->last[0] = '\0';
	st->lost = 0;
	for (waited = 0;; waited += XM_CLI_BUSY_POLL_MS) {
		st->fd = stream_connect(dev, req);
		if (st->fd < 0) {
			err = st->fd;
			break;
		}
		err = stream_first_line(st);
		if (!err)
			return XM_EXIT_OK;
		close(st->fd);
		st->fd = -1;
		if (err != -EBUSY || waited >= XM_CLI_BUSY_WAIT_MS)
			break;
		sleep_ms(XM_CLI_BUSY_POLL_MS);
	}
	if (err == -EPROTO)
		return XM_EXIT_FAIL;
	pr_warn("events '%s': %s", dev, xm_cli_request_error(err));
	return xm_cli_request_exit(err);
}

/* Prints the whole lines st holds and remembers the type of the last. */
static void stream_print(struct stream *st)
{
	struct json_object *o, *v;
	char *start = st->buf, *nl;

	while ((nl = memchr(start, '\n', st->len - (size_t)(start - st->buf)))) {
		fwrite(start, 1, (size_t)(nl - start) + 1, stdout);
		*nl = '\0';
		o = json_tokener_parse(start);
		if (o && json_object_object_get_ex(o, "type", &v))
			snprintf(st->last, sizeof(st->last), "%s", json_object_get_string(v));
		if (o && json_object_object_get_ex(o, "lost", &v))
			st->lost = json_object_get_int64(v);
		json_object_put(o);
		start = nl + 1;
	}
	st->len -= (size_t)(start - st->buf);
	memmove(st->buf, start, st->len);
}

/* The stream ended: fine after "detached", else said why.  Returns an exit code. */
static int stream_end(struct stream *st)
{
	close(st->fd);
	st->fd = -1;
	if (!strcmp(st->last, "detached"))
		return XM_EXIT_OK;
	if (!strcmp(st->last, "events-lost"))
		pr_warn("events '%s': this reader fell behind and %lld events were lost", st->dev,
			st->lost);
	else
		pr_warn("events '%s': the stream ended without a last line (the daemon went away, "
			"or this reader fell behind)",
			st->dev);
	return XM_EXIT_FAIL;
}

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

/* Without --dev: opens the stream of every attached device that has none open (new, or back
 * after a detach), each starting with its state line.  *n grows with the slots used.  Returns an
 * exit code: a device that went away meanwhile is no failure, a refusal is. */
static int scan(struct stream *st, nfds_t *n, nfds_t *open, const char *req)
{
	char names[XM_MAX_DEVICES][16];
	nfds_t i, slot;
	int k, count, ret;

	count = xm_list_attached(names, XM_MAX_DEVICES);
	for (k = 0; k < count; k++) {
		slot = *n;
		for (i = 0; i < *n; i++) {
			if (strcmp(st[i].dev, names[k]))
				continue;
			slot = st[i].fd >= 0 ? XM_MAX_DEVICES : i;
			break;
		}
		if (slot >= XM_MAX_DEVICES)
			continue; /* followed already, or no slot left */
		ret = stream_open(&st[slot], names[k], req);
		if (ret == XM_EXIT_NOT_ATTACHED)
			continue;
		if (ret)
			return ret;
		stream_print(&st[slot]);
		if (slot == *n)
			(*n)++;
		(*open)++;
	}
	return XM_EXIT_OK;
}

/* Follows every stream until each has ended; without --dev (listing), every attached device,
 * new ones too, until stopped or fallen behind.  Returns an exit code. */
static int follow(struct stream *st, nfds_t n, const char *req, bool listing)
{
	struct pollfd pfd[XM_MAX_DEVICES];
	nfds_t i, open = n;
	int ret = XM_EXIT_OK, end;
	__u64 next_scan = now_ms() + RESCAN_MS;
	ssize_t got;

	for (i = 0; i < n; i++)
		stream_print(&st[i]);
	fflush(stdout);
	while (open || listing) {
		for (i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = st[i].fd, .events = POLLIN};
		if (poll(pfd, n, listing ? RESCAN_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("events: poll: %s", strerror(errno));
			return XM_EXIT_FAIL;
		}
		for (i = 0; i < n; i++) {
			if (st[i].fd < 0 || !pfd[i].revents)
				continue;
			got = read(st[i].fd, st[i].buf + st[i].len, sizeof(st[i].buf) - st[i].len);
			if (got < 0 && errno == EINTR)
				continue;
			if (got > 0) {
				st[i].len += (size_t)got;
				stream_print(&st[i]);
				if (st[i].len < sizeof(st[i].buf))
					continue;
			}
			end = stream_end(&st[i]);
			open--;
			/* Listing, only falling behind ends the command: a device that went away
			 * is followed again when it comes back. */
			if (end && (!listing || !strcmp(st[i].last, "events-lost")))
				ret = XM_EXIT_FAIL;
			if (listing && ret)
				return ret;
		}
		if (listing && now_ms() >= next_scan) {
			ret = scan(st, &n, &open, req);
			if (ret)
				return ret;
			next_scan = now_ms() + RESCAN_MS;
		}
		if (fflush(stdout) || ferror(stdout))
			return XM_EXIT_FAIL; /* nobody reads what we print */
	}
	return ret;
}

/* events --now: each device's state line.  listing: the devices were listed, not named, and one
 * that went away since is no failure.  Returns an exit code. */
static int print_now(char names[][16], int n, bool listing)
{
	static char answer[LINE_BYTES];
	int i, got, ret = XM_EXIT_OK;

	for (i = 0; i < n; i++) {
		got = xm_cli_request(names[i], "events now", answer, sizeof(answer));
		if (got < 0 && listing &&
		    (xm_cli_request_exit(got) == XM_EXIT_NOT_ATTACHED || got == -ECONNRESET))
			continue;
		if (got < 0) {
			pr_warn("events '%s': %s", names[i], xm_cli_request_error(got));
			ret = ret ? ret : xm_cli_request_exit(got);
		} else if (!strncmp(answer, "error: ", 7)) {
			answer[strcspn(answer, "\n")] = '\0';
			pr_warn("events '%s': %s", names[i], answer + 7);
			ret = XM_EXIT_FAIL;
		} else {
			fputs(answer, stdout);
		}
	}
	return ret;
}

int cmd_events(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"now", no_argument, NULL, 'n'},
		{"buffer", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static const struct xm_num_rule buffer_rule = {
		.min = XM_EV_BUFFER_MIN, .max = XM_EV_BUFFER_MAX, .size = true};
	static struct stream st[XM_MAX_DEVICES];
	char names[XM_MAX_DEVICES][16], req[64] = "events", err[96];
	const char *dev = NULL;
	bool now = false;
	__u64 buffer = 0;
	int c, n, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:nb:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'n':
			now = true;
			break;
		case 'b':
			if (xm_parse_num(optarg, &buffer_rule, &buffer, err, sizeof(err))) {
				pr_warn("events: --buffer %s", err);
				return XM_EXIT_USAGE;
			}
			snprintf(req, sizeof(req), "events buffer %llu",
				 (unsigned long long)buffer);
			break;
		case 'h':
			printf("usage: xdpmirror events [--dev IF] [--now] [--buffer SIZE]\n");
			return XM_EXIT_OK;
		default:
			pr_warn("events: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("events: unexpected argument '%s'", argv[optind]);
		return XM_EXIT_USAGE;
	}
	n = xm_cli_devices("events", dev, names);
	if (n < 0)
		return XM_EXIT_USAGE;
	if (now)
		return print_now(names, n, !dev);
	if (!dev) {
		nfds_t used = 0, open = 0;

		/* The devices attached now; later ones as they come. */
		ret = scan(st, &used, &open, req);
		return ret ? ret : follow(st, used, req, true);
	}
	ret = stream_open(&st[0], names[0], req);
	return ret ? ret : follow(st, 1, req, false);
}
