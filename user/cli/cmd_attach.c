// SPDX-License-Identifier: GPL-2.0
/* xdpmirror attach: options (from the config key table) → checks → the daemon in the foreground. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "conf/config.h"
#include "daemon/daemon.h"
#include "util/log.h"
#include "util/runstate.h"

enum { OPT_CONFIG = 1000, OPT_DAEMON, OPT_VERBOSE, OPT_HELP, OPT_KEY_BASE = 2000 };

static void attach_usage(FILE *out)
{
	const struct xm_config_key *k;

	fprintf(out, "usage: xdpmirror attach --role primary|secondary --dev IF --peer MAC "
		     "--disk PATH [options]\n\n");
	for (k = xm_config_keys; k->name; k++)
		fprintf(out, "  --%-14s %-18s %s\n", k->name, k->metavar, k->help);
	fprintf(out, "  --%-14s %-18s %s\n", "config", "FILE",
		"read 'key = value' lines first (same keys as above)");
	fprintf(out, "  --%-14s %-18s %s\n", "daemon", "", "go to the background once attached");
	fprintf(out, "  --%-14s %-18s %s\n", "verbose", "", "debug messages, library output too");
}

/* The long options are the config keys, plus a few that are not configuration. */
static struct option *build_options(void)
{
	static const struct option extra[] = {
		{"config", required_argument, NULL, OPT_CONFIG},
		{"daemon", no_argument, NULL, OPT_DAEMON},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"help", no_argument, NULL, OPT_HELP},
	};
	size_t nkeys = 0, nextra = sizeof(extra) / sizeof(extra[0]), i;
	struct option *opts;

	while (xm_config_keys[nkeys].name)
		nkeys++;
	opts = calloc(nkeys + nextra + 1, sizeof(*opts));
	if (!opts)
		return NULL;
	for (i = 0; i < nkeys; i++)
		opts[i] = (struct option){xm_config_keys[i].name,
					  xm_config_keys[i].flag_value ? no_argument
								       : required_argument,
					  NULL, OPT_KEY_BASE + (int)i};
	memcpy(opts + nkeys, extra, sizeof(extra));
	return opts;
}

/* --config is read before the other options, so the command line overrides the file. */
static int load_config_option(int argc, char **argv, struct xm_config *cfg)
{
	char err[512];
	int i;

	for (i = 1; i < argc; i++) {
		const char *file = NULL;

		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			file = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
		if (file && xm_config_load_file(cfg, file, err, sizeof(err))) {
			pr_warn("attach: %s", err);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_attach_args(int argc, char **argv, struct xm_config *cfg, bool *daemonize)
{
	struct option *opts = build_options();
	char err[512];
	int c, ret = 0;

	if (!opts)
		return -ENOMEM;
	if (load_config_option(argc, argv, cfg)) {
		free(opts);
		return -EINVAL;
	}
	opterr = 0;
	optind = 1;
	while (!ret && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c >= OPT_KEY_BASE) {
			const struct xm_config_key *k = &xm_config_keys[c - OPT_KEY_BASE];

			if (k->set(cfg, k->flag_value ? k->flag_value : optarg, err, sizeof(err))) {
				pr_warn("attach: --%s %s", k->name, err);
				ret = -EINVAL;
			}
			continue;
		}
		switch (c) {
		case OPT_CONFIG:
			break; /* done above */
		case OPT_DAEMON:
			*daemonize = true;
			break;
		case OPT_VERBOSE:
			xm_log_set_level(XM_LOG_DEBUG);
			break;
		case OPT_HELP:
			attach_usage(stdout);
			ret = 1;
			break;
		case ':':
			pr_warn("attach: option '%s' needs a value", argv[optind - 1]);
			ret = -EINVAL;
			break;
		default:
			pr_warn("attach: unknown option '%s' (try 'xdpmirror attach --help')",
				argv[optind - 1]);
			ret = -EINVAL;
		}
	}
	if (!ret && optind < argc) {
		pr_warn("attach: unexpected argument '%s'", argv[optind]);
		ret = -EINVAL;
	}
	if (!ret && xm_config_check(cfg, err, sizeof(err))) {
		pr_warn("attach: %s (try 'xdpmirror attach --help')", err);
		ret = -EINVAL;
	}
	free(opts);
	return ret;
}

/*
 * --daemon: fork before anything is set up.  Forking later would hand the child copy-on-write
 * copies of the UMEM pages the kernel writes into, and an io_uring that belongs to the parent.
 * The parent waits on a pipe for the child's setup result, so every error still reaches the user
 * and the exit code says whether the daemon is attached.  Returns the pipe's write end in the
 * child, or -errno.
 */
static int fork_daemon(void)
{
	int fds[2];
	char status = 1;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = 1; /* the child died before saying anything */
		_exit(status ? XM_EXIT_FAIL : XM_EXIT_OK);
	}
	close(fds[0]);
	if (setsid() < 0)
		return -errno;
	return fds[1];
}

/* Tells the waiting parent how setup went; detaches stdio once attached. */
static void report_to_parent(int fd, int err)
{
	char status = err ? 1 : 0;

	if (fd < 0)
		return;
	if (!err && (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout) ||
		     !freopen("/dev/null", "w", stderr)))
		status = 1;
	if (write(fd, &status, 1) != 1)
		pr_debug("parent went away before setup finished");
	close(fd);
}

/*
 * The primary's NBD export listens only once the daemon runs, after its metadata exists; what can
 * be known about its addresses now is checked now, so a bad one creates nothing.  Returns 0 or
 * -errno.
 */
static int check_nbd_addresses(const struct xm_config *cfg)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char dir[sizeof(cfg->nbd_socket)], *slash;
	struct stat st;
	int fd, one = 1, err = 0;

	if (cfg->role != XM_ROLE_PRIMARY)
		return 0;
	if (cfg->nbd_socket[0]) {
		snprintf(dir, sizeof(dir), "%s", cfg->nbd_socket);
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(slash ? dir : ".", &st) || !S_ISDIR(st.st_mode)) {
			pr_warn("attach '%s': --nbd-socket '%s': no directory '%s'", cfg->dev,
				cfg->nbd_socket, slash ? dir : ".");
			return -ENOENT;
		}
		/* The server replaces a socket left there, and nothing else. */
		if (!lstat(cfg->nbd_socket, &st) && !S_ISSOCK(st.st_mode)) {
			pr_warn("attach '%s': --nbd-socket '%s': a file that is not a socket is "
				"there",
				cfg->dev, cfg->nbd_socket);
			return -EEXIST;
		}
	}
	if (cfg->nbd_tcp_port) {
		/* Bound the way the server binds it (SO_REUSEADDR), and let go at once. */
		sin.sin_port = htons(cfg->nbd_tcp_port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
			err = -errno;
		if (fd >= 0)
			close(fd);
		if (err) {
			pr_warn("attach '%s': --nbd-tcp %u: %s", cfg->dev, cfg->nbd_tcp_port,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	struct xm_config cfg;
	struct xm_daemon *d;
	bool daemonize = false;
	int err, parent_fd = -1;

	xm_config_init(&cfg);
	err = parse_attach_args(argc, argv, &cfg, &daemonize);
	if (err)
		return err > 0 ? XM_EXIT_OK : XM_EXIT_USAGE;
	if (geteuid() != 0) {
		pr_warn("attach '%s': needs root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN)", cfg.dev);
		return XM_EXIT_FAIL;
	}
	if (check_nbd_addresses(&cfg))
		return XM_EXIT_FAIL;
	/* About 150 KiB of TX bookkeeping and gather space per queue: keep it off the stack. */
	d = calloc(1, sizeof(*d));
	if (!d)
		return XM_EXIT_FAIL;
	if (daemonize) {
		parent_fd = fork_daemon();
		if (parent_fd < 0) {
			pr_warn("attach '%s': cannot go to the background: %s", cfg.dev,
				strerror(-parent_fd));
			err = parent_fd;
			goto out_free;
		}
	}
	err = xm_daemon_setup(d, &cfg);
	report_to_parent(parent_fd, err);
	if (err)
		goto out_free;
	err = xm_daemon_run(d);
	xm_daemon_teardown(d);
	if (!err)
		pr_info("%s: detached", cfg.dev);
out_free:
	free(d);
	return err ? XM_EXIT_FAIL : XM_EXIT_OK;
}
