// SPDX-License-Identifier: GPL-2.0
/* Facts about a network interface, read with ioctls so they are right inside any network namespace.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

#include "link/netdev.h"

/*
 * Why not sysfs: /sys/class/net shows the network namespace of whoever mounted /sys, so a daemon
 * started with `nsenter --net` would read the host's interfaces there.
 */
static int ifreq_ioctl(int fd, const char *ifname, unsigned long req, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", ifname);
	return ioctl(fd, req, ifr) ? -errno : 0;
}

static __u32 query_rx_queues(int fd, const char *ifname)
{
	struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		return 1;
	/* A queue is either RX-only or combined; whichever the driver counts. */
	if (ch.rx_count + ch.combined_count == 0)
		return 1;
	return ch.rx_count + ch.combined_count;
}

static void query_driver(int fd, const char *ifname, char *out, size_t len)
{
	struct ethtool_drvinfo info = {.cmd = ETHTOOL_GDRVINFO};
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&info;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		snprintf(out, len, "unknown");
	else
		snprintf(out, len, "%s", info.driver);
}

int xm_netdev_query(const char *ifname, struct xm_netdev *nd)
{
	struct ifreq ifr;
	int fd, err;

	memset(nd, 0, sizeof(*nd));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = ifreq_ioctl(fd, ifname, SIOCGIFINDEX, &ifr);
	if (err)
		goto out_close;
	nd->ifindex = ifr.ifr_ifindex;
	err = ifreq_ioctl(fd, ifname, SIOCGIFHWADDR, &ifr);
	if (err)
		goto out_close;
	memcpy(nd->mac, ifr.ifr_hwaddr.sa_data, XM_ETH_ALEN);
	err = ifreq_ioctl(fd, ifname, SIOCGIFMTU, &ifr);
	if (err)
		goto out_close;
	nd->mtu = (__u32)ifr.ifr_mtu;
	err = ifreq_ioctl(fd, ifname, SIOCGIFFLAGS, &ifr);
	if (err)
		goto out_close;
	nd->up = ifr.ifr_flags & IFF_UP;
	nd->carrier = nd->up && (ifr.ifr_flags & IFF_RUNNING);
	nd->rx_queues = query_rx_queues(fd, ifname);
	query_driver(fd, ifname, nd->driver, sizeof(nd->driver));
out_close:
	close(fd);
	return err;
}
