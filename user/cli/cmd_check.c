// SPDX-License-Identifier: GPL-2.0
/* xdpmirror check: can this NIC run xdpmirror?  Attaches the real program for a moment. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "link/bpf_load.h"
#include "cli/commands.h"
#include "conf/config.h"
#include "util/log.h"
#include "link/netdev.h"
#include "util/runstate.h"

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dev", required_argument, NULL, 'd'},
		{"xdp-mode", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static const __u8 dummy_peer[6] = {0x02, 0, 0, 0, 0, 1};
	struct xm_config cfg;
	struct xm_netdev nd;
	struct xm_bpf b = {.link_fd = -1};
	const char *dev = NULL;
	char why[256];
	pid_t holder = 0;
	int c, err, lock_fd, ret = XM_EXIT_OK;

	xm_config_init(&cfg);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'm':
			if (xm_config_set(&cfg, "xdp-mode", optarg, why, sizeof(why))) {
				pr_warn("check: --xdp-mode %s", why);
				return XM_EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: xdpmirror check --dev IF [--xdp-mode native|skb]\n");
			return XM_EXIT_OK;
		default:
			pr_warn("check: unknown option '%s'", argv[optind - 1]);
			return XM_EXIT_USAGE;
		}
	}
	if (xm_require_dev("check", dev))
		return XM_EXIT_USAGE;
	err = xm_netdev_query(dev, &nd);
	if (err) {
		pr_warn("check '%s': %s", dev,
			err == -ENODEV ? "no such interface" : strerror(-err));
		return XM_EXIT_FAIL;
	}
	printf("%s: driver %s, %u RX queue(s), MTU %u, %s\n", dev, nd.driver, nd.rx_queues, nd.mtu,
	       !nd.up	    ? "down"
	       : nd.carrier ? "up"
			    : "up, no carrier");
	if (geteuid() != 0) {
		pr_warn("check '%s': XDP attach test needs root", dev);
		return XM_EXIT_FAIL;
	}
	lock_fd = xm_run_lock(dev, &holder);
	if (lock_fd == -EBUSY) {
		printf("%s: xdpmirror is attached (daemon pid %d), so XDP works here\n", dev,
		       (int)holder);
		return XM_EXIT_OK;
	}
	if (lock_fd < 0) {
		pr_warn("check '%s': cannot take lock: %s", dev, strerror(-lock_fd));
		return XM_EXIT_FAIL;
	}
	memcpy(cfg.peer_mac, dummy_peer, 6);
	err = xm_bpf_load(&b, dev, &cfg, nd.mac);
	if (!err)
		err = xm_bpf_attach(&b, nd.ifindex, cfg.xdp_mode);
	if (err) {
		pr_warn("check '%s': %s XDP attach failed: %s%s", dev,
			xm_xdp_mode_name(cfg.xdp_mode), strerror(-err),
			err == -EOPNOTSUPP ? " (driver lacks native XDP; try --xdp-mode skb)" : "");
		ret = XM_EXIT_FAIL;
	} else {
		printf("%s: %s XDP attach works (program %s, frags)\n", dev,
		       xm_xdp_mode_name(cfg.xdp_mode), XM_PROG_NAME);
	}
	xm_bpf_close(&b);
	xm_bpf_unpin(dev);
	xm_run_release(dev, lock_fd);
	return ret;
}
