// SPDX-License-Identifier: GPL-2.0
/* Description: XDP_PASS for the ends of the tests' wire namespace (tests/lib-wire.sh).  A veth end
 * with an XDP program has NAPI, which a box's XDP_TX needs on the peer end: without it the
 * kernel drops the PROBE_ACKs the boxes' programs send back.  xdp.frags: jumbo MTUs too. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp.frags")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
