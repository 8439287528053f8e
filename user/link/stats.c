// SPDX-License-Identifier: GPL-2.0
/* Reading the XDP program's per-CPU counters from the pinned map, summing them, naming them. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "link/bpf_load.h"
#include "link/stats.h"

/* In struct xm_stats order; the assert keeps the table and the struct together. */
/* One name per line, as in the struct. */
/* clang-format off */
static const char *const field_names[] = {
	"seen",
	"pass",
	"redirected",
	"redirect_fail",
	"answered",
	"consumed",
	"rx.hello",
	"rx.hello_ack",
	"rx.data",
	"rx.ack",
	"rx.flush",
	"rx.flush_ack",
	"rx.ping",
	"rx.pong",
	"rx.bmreq",
	"rx.bitmap",
	"rx.csumreq",
	"rx.csum",
	"rx.setgen",
	"rx.close",
	"rx.probe",
	"rx.probe_ack",
	"rx.challenge",
	"rx.read_req",
	"rx.read_data",
	"drop.not_for_us",
	"drop.bad_peer",
	"drop.truncated",
	"drop.bad_magic",
	"drop.bad_version",
	"drop.bad_type",
	"drop.bad_length",
	"drop.no_socket",
	"rx_resync",
};
/* clang-format on */

_Static_assert(sizeof(field_names) / sizeof(field_names[0]) == XM_STATS_NFIELDS,
	       "a name for every counter in struct xm_stats");

const char *xm_stats_field_name(unsigned int i)
{
	return i < XM_STATS_NFIELDS ? field_names[i] : NULL;
}

const struct xm_counter *xm_stats_field(const struct xm_stats *s, unsigned int i)
{
	return (const struct xm_counter *)s + i;
}

void xm_stats_sum(const struct xm_stats *percpu, int ncpu, struct xm_stats *out)
{
	struct xm_counter *o = (struct xm_counter *)out;
	unsigned int i;
	int cpu;

	memset(out, 0, sizeof(*out));
	for (cpu = 0; cpu < ncpu; cpu++) {
		const struct xm_counter *c = (const struct xm_counter *)&percpu[cpu];

		for (i = 0; i < XM_STATS_NFIELDS; i++) {
			o[i].frames += c[i].frames;
			o[i].bytes += c[i].bytes;
		}
	}
}

int xm_stats_read_pinned(const char *ifname, struct xm_stats *out)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct xm_stats *percpu;
	__u32 key = 0;
	int fd, ncpu, err = 0;

	xm_pin_dir(ifname, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, XM_MAP_STATS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		close(fd);
		return ncpu ? ncpu : -EINVAL;
	}
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!percpu) {
		close(fd);
		return -ENOMEM;
	}
	if (bpf_map_lookup_elem(fd, &key, percpu))
		err = -errno;
	else
		xm_stats_sum(percpu, ncpu, out);
	free(percpu);
	close(fd);
	return err;
}
