/* SPDX-License-Identifier: GPL-2.0 */
/* Facts about a network interface, read with ioctls so they are right inside any network namespace.
 */
#ifndef XM_NETDEV_H
#define XM_NETDEV_H

#include <stdbool.h>
#include <linux/types.h>

#include "xdpmirror.h"

struct xm_netdev {
	int ifindex;
	__u8 mac[XM_ETH_ALEN];
	__u32 mtu;
	bool up;	 /* administratively up (IFF_UP) */
	bool carrier;	 /* and the link is there (IFF_RUNNING) */
	__u32 rx_queues; /* from ethtool channels; 1 if the driver does not say */
	char driver[32];
};

/* Returns 0, -ENODEV when there is no such interface, or another -errno. */
int xm_netdev_query(const char *ifname, struct xm_netdev *nd);

#endif
