// SPDX-License-Identifier: GPL-2.0
/* The attach configuration: one table of keys shared by command-line options and config files. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/config.h"
#include "store/bitmap.h"
#include "conf/params.h"

#define XM_PING_MS_DEFAULT    10
#define XM_TIMEOUT_MS_DEFAULT 50
#define XM_KO_MS_DEFAULT      2000 /* docs/protocol.md §9.2: why */
#define XM_CONFIG_MAX_BYTES   16384

static int set_role(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (xm_parse_role(v, &c->role)) {
		snprintf(err, n, "'%s': not a role (want primary or secondary)", v);
		return -EINVAL;
	}
	return 0;
}

static int set_dev(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (xm_check_ifname(v)) {
		snprintf(err, n, "'%s': not an interface name", v);
		return -EINVAL;
	}
	snprintf(c->dev, sizeof(c->dev), "%s", v);
	return 0;
}

static int set_peer(struct xm_config *c, const char *v, char *err, size_t n)
{
	__u8 mac[XM_ETH_ALEN];

	/* Parsed aside: a rejected value must leave the configuration as it was. */
	if (xm_parse_mac(v, mac)) {
		snprintf(err, n, "'%s': not a MAC address (want xx:xx:xx:xx:xx:xx)", v);
		return -EINVAL;
	}
	if (!xm_mac_is_unicast(mac)) {
		snprintf(err, n, "'%s': the peer must be a unicast MAC address", v);
		return -EINVAL;
	}
	memcpy(c->peer_mac, mac, XM_ETH_ALEN);
	c->have_peer = true;
	return 0;
}

static int set_disk(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!*v || strlen(v) >= sizeof(c->disk)) {
		snprintf(err, n, "'%s': not a usable path", v);
		return -EINVAL;
	}
	snprintf(c->disk, sizeof(c->disk), "%s", v);
	return 0;
}

/* Every numeric key: one parser and one form of error (conf/params.h), its own bounds. */
static int set_u32(__u32 *dst, const char *v, const struct xm_num_rule *r, char *err, size_t n)
{
	__u64 x;

	/* A refused value is -EINVAL here, whatever the reason, as for every other key. */
	if (xm_parse_num(v, r, &x, err, n))
		return -EINVAL;
	*dst = (__u32)x;
	return 0;
}

static int set_ethertype(struct xm_config *c, const char *v, char *err, size_t n)
{
	/* Values below 0x0600 are 802.3 lengths, not EtherTypes. */
	static const struct xm_num_rule rule = {.min = 0x0600, .max = 0xffff, .hex = true};
	__u32 t;
	int ret = set_u32(&t, v, &rule, err, n);

	if (ret)
		return ret;
	/* The usual ones would steal traffic; 802.1Q would be read as a tag. */
	if (t == 0x0800 || t == 0x86DD || t == 0x0806 || t == XM_ETH_P_8021Q) {
		snprintf(err, n, "'%s': taken by IPv4, IPv6, ARP or VLAN (want another EtherType)",
			 v);
		return -EINVAL;
	}
	c->ethertype = (__u16)t;
	return 0;
}

static int set_queues(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {.min = 1, .max = XM_MAX_QUEUES};

	return set_u32(&c->queues, v, &rule, err, n);
}

static int set_xsk_mode(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!strcmp(v, "auto"))
		c->xsk_mode = XM_XSK_AUTO;
	else if (!strcmp(v, "zerocopy"))
		c->xsk_mode = XM_XSK_ZEROCOPY;
	else if (!strcmp(v, "copy"))
		c->xsk_mode = XM_XSK_COPY;
	else {
		snprintf(err, n, "'%s': not an AF_XDP mode (want auto, zerocopy or copy)", v);
		return -EINVAL;
	}
	return 0;
}

static int set_xdp_mode(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!strcmp(v, "native"))
		c->xdp_mode = XM_XDP_NATIVE;
	else if (!strcmp(v, "skb"))
		c->xdp_mode = XM_XDP_SKB;
	else {
		snprintf(err, n, "'%s': not an XDP mode (want native or skb)", v);
		return -EINVAL;
	}
	return 0;
}

static int set_ping_ms(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {.min = 1, .max = 10000, .unit = "ms"};

	return set_u32(&c->ping_ms, v, &rule, err, n);
}

static int set_protocol(struct xm_config *c, const char *v, char *err, size_t n)
{
	if ((v[0] != 'A' && v[0] != 'B' && v[0] != 'C') || v[1]) {
		snprintf(err, n, "'%s': not a replication protocol (want A, B or C)", v);
		return -EINVAL;
	}
	c->protocol = v[0];
	return 0;
}

static int set_on_io_error(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (strcmp(v, "detach") && strcmp(v, "pass-on")) {
		snprintf(err, n, "'%s': not an I/O error policy (want detach or pass-on)", v);
		return -EINVAL;
	}
	c->io_error_pass_on = !strcmp(v, "pass-on");
	return 0;
}

static int set_nbd_socket(struct xm_config *c, const char *v, char *err, size_t n)
{
	struct sockaddr_un sun;

	if (!*v || strlen(v) >= sizeof(sun.sun_path)) {
		snprintf(err, n, "'%s': not a usable socket path (at most %zu bytes)", v,
			 sizeof(sun.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(c->nbd_socket, v);
	return 0;
}

/* PORT (on 127.0.0.1), IPV4:PORT or [IPV6]:PORT; numeric addresses only, no name lookups.  addr
 * holds INET6_ADDRSTRLEN bytes. */
static int parse_tcp_address(const char *v, char addr[46], __u16 *port_out, char *err, size_t n)
{
	static const struct xm_num_rule port_rule = {.min = 1, .max = 65535};
	char a[46] = "127.0.0.1";
	const char *port_str = v, *end;
	struct in6_addr a6;
	struct in_addr a4;
	size_t alen;
	__u32 port;
	bool ok = true;

	if (v[0] == '[') {
		end = strstr(v, "]:");
		alen = end ? (size_t)(end - v - 1) : 0;
		ok = alen && alen < sizeof(a);
		if (ok) {
			memcpy(a, v + 1, alen);
			a[alen] = '\0';
			ok = inet_pton(AF_INET6, a, &a6) == 1;
			port_str = end + 2;
		}
	} else if ((end = strrchr(v, ':'))) {
		alen = (size_t)(end - v);
		ok = alen && alen < sizeof(a);
		if (ok) {
			memcpy(a, v, alen);
			a[alen] = '\0';
			ok = inet_pton(AF_INET, a, &a4) == 1;
			port_str = end + 1;
		}
	}
	if (!ok) {
		snprintf(err, n,
			 "'%s': not a TCP port or address (want PORT, IPV4:PORT or [IPV6]:PORT, "
			 "numeric)",
			 v);
		return -EINVAL;
	}
	/* The port is a number like any other: the one parser, the one message. */
	if (set_u32(&port, port_str, &port_rule, err, n))
		return -EINVAL;
	memcpy(addr, a, sizeof(a));
	*port_out = (__u16)port;
	return 0;
}

static int set_nbd_tcp(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_tcp_address(v, c->nbd_tcp_addr, &c->nbd_tcp_port, err, n);
}

static int set_metrics_listen(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_tcp_address(v, c->metrics_addr, &c->metrics_port, err, n);
}

static int set_nbd_tls_psk(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!*v || strlen(v) >= sizeof(c->nbd_tls_psk)) {
		snprintf(err, n, "'%s': not a usable path", v);
		return -EINVAL;
	}
	snprintf(c->nbd_tls_psk, sizeof(c->nbd_tls_psk), "%s", v);
	return 0;
}

static int set_nbd_group(struct xm_config *c, const char *v, char *err, size_t n)
{
	const struct group *g = *v ? getgrnam(v) : NULL;
	__u32 gid;

	if (g)
		gid = (__u32)g->gr_gid;
	else if (!*v || xm_parse_u32(v, 0, 0xfffffffeu, &gid)) {
		snprintf(err, n, "'%s': no such group", v);
		return -EINVAL;
	}
	c->nbd_gid = gid;
	c->nbd_group = true;
	return 0;
}

static int set_timeout_ms(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {.min = 2, .max = 60000, .unit = "ms"};

	return set_u32(&c->timeout_ms, v, &rule, err, n);
}

static int set_ko_ms(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {.min = 10, .max = 600000, .unit = "ms"};

	return set_u32(&c->ko_ms, v, &rule, err, n);
}

/* "yes" or "no", nothing else. */
static int parse_yes_no(const char *v, bool *out, char *err, size_t n)
{
	if (strcmp(v, "yes") && strcmp(v, "no")) {
		snprintf(err, n, "'%s': want yes or no", v);
		return -EINVAL;
	}
	*out = v[0] == 'y';
	return 0;
}

static int set_realtime(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_yes_no(v, &c->realtime, err, n);
}

static int set_busy_poll(struct xm_config *c, const char *v, char *err, size_t n)
{
	/* Beyond a millisecond the loop would spin through whole disk writes. */
	static const struct xm_num_rule rule = {.min = 0, .max = 1000, .unit = "us, 0 for off"};

	return set_u32(&c->busy_poll_us, v, &rule, err, n);
}

static int set_meta(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!*v || strlen(v) >= sizeof(c->meta)) {
		snprintf(err, n, "'%s': not a usable path", v);
		return -EINVAL;
	}
	snprintf(c->meta, sizeof(c->meta), "%s", v);
	return 0;
}

static int set_bitmap_block(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {
		.min = XM_BITMAP_MIN_BLOCK, .max = XM_BITMAP_MAX_BLOCK, .size = true, .pow2 = true};

	return set_u32(&c->bitmap_block, v, &rule, err, n);
}

static int set_initial_sync(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (strcmp(v, "full") && strcmp(v, "checksum") && strcmp(v, "skip")) {
		snprintf(err, n, "'%s': not an initial sync (want full, checksum or skip)", v);
		return -EINVAL;
	}
	c->initial_sync = v[0];
	return 0;
}

static int set_resync_rate(struct xm_config *c, const char *v, char *err, size_t n)
{
	static const struct xm_num_rule rule = {.max = 1000000,
						.unit = "MiB/s, 0 for as fast as the link"};

	return set_u32(&c->resync_mib, v, &rule, err, n);
}

static int set_force(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_yes_no(v, &c->force, err, n);
}

static int set_auth_key(struct xm_config *c, const char *v, char *err, size_t n)
{
	if (!*v || strlen(v) >= sizeof(c->auth_key)) {
		snprintf(err, n, "'%s': not a usable path", v);
		return -EINVAL;
	}
	snprintf(c->auth_key, sizeof(c->auth_key), "%s", v);
	return 0;
}

static int set_no_auth(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_yes_no(v, &c->no_auth, err, n);
}

static int set_nbd_tcp_insecure(struct xm_config *c, const char *v, char *err, size_t n)
{
	return parse_yes_no(v, &c->nbd_tcp_insecure, err, n);
}

/* Room for the keys below, for the duplicate check of a config file. */
#define XM_CONFIG_MAX_KEYS 64

const struct xm_config_key xm_config_keys[] = {
	{"role", "primary|secondary", "this box's role", set_role, NULL},
	{"dev", "IF", "the dedicated mirror NIC", set_dev, NULL},
	{"peer", "MAC", "the peer box's MAC address on the mirror link", set_peer, NULL},
	{"disk", "PATH", "backing block device or preallocated file", set_disk, NULL},
	{"ethertype", "0xNNNN", "mirror EtherType (default 0x88b5)", set_ethertype, NULL},
	{"queues", "N", "RX queues to serve (default: all of the NIC's)", set_queues, NULL},
	{"xsk-mode", "auto|zerocopy|copy", "AF_XDP mode (default auto)", set_xsk_mode, NULL},
	{"xdp-mode", "native|skb", "XDP attach mode (default native)", set_xdp_mode, NULL},
	{"ping-interval", "MS", "heartbeat interval in ms (default 10)", set_ping_ms, NULL},
	{"timeout", "MS",
	 "peer is dead after its link or kernel did not answer this long (default 50)",
	 set_timeout_ms, NULL},
	{"ko-timeout", "MS",
	 "peer is dead after its daemon sent nothing, or finished none of our writes, this long "
	 "(default 2000)",
	 set_ko_ms, NULL},
	{"realtime", "yes|no", "run the event loop SCHED_FIFO with memory locked (default no)",
	 set_realtime, NULL},
	{"busy-poll", "US",
	 "after a loop turn with work, poll up to US microseconds before sleeping: for a daemon "
	 "with a core of its own and a fast disk; costs CPU (default 0: off)",
	 set_busy_poll, NULL},
	{"protocol", "A|B|C", "when a write is done (default C: durable on both boxes)",
	 set_protocol, NULL},
	{"on-io-error", "detach|pass-on",
	 "on a local disk error: go on without the disk (default detach) or fail the request",
	 set_on_io_error, NULL},
	{"nbd-socket", "PATH", "primary: NBD Unix socket (default /run/xdpmirror/IF.sock)",
	 set_nbd_socket, NULL},
	{"nbd-group", "GROUP",
	 "primary: this group may use the NBD Unix socket too (0660; default 0600, root only)",
	 set_nbd_group, NULL},
	{"nbd-tcp", "[ADDR:]PORT",
	 "primary: also serve NBD on TCP (default address 127.0.0.1; IPv6 as [ADDR]:PORT), with "
	 "--nbd-tls-psk",
	 set_nbd_tcp, NULL},
	{"nbd-tls-psk", "FILE",
	 "primary: the TCP export needs TLS with a key from FILE (user:hexkey lines; 'psktool -u "
	 "USER -p FILE')",
	 set_nbd_tls_psk, NULL},
	{"nbd-tcp-insecure", "",
	 "serve --nbd-tcp without TLS: anyone who can connect reads and writes the disk (labs "
	 "only)",
	 set_nbd_tcp_insecure, "yes"},
	{"metrics-listen", "[ADDR:]PORT",
	 "serve Prometheus metrics at http://ADDR:PORT/metrics (default address 127.0.0.1; "
	 "docs/metrics.md)",
	 set_metrics_listen, NULL},
	{"meta", "PATH", "metadata file (default /var/lib/xdpmirror/IF.meta; made if missing)",
	 set_meta, NULL},
	{"bitmap-block", "SIZE", "bytes per bitmap bit for new metadata (default 64K)",
	 set_bitmap_block, NULL},
	{"initial-sync", "full|checksum|skip",
	 "primary: how to sync a peer that never was in sync (default full)", set_initial_sync,
	 NULL},
	{"resync-rate", "MIB", "primary: resync cap in MiB/s (default 0: as fast as the link)",
	 set_resync_rate, NULL},
	{"force", "yes|no", "primary: start even if this disk is not UpToDate (default no)",
	 set_force, NULL},
	{"auth-key", "FILE", "the pair's shared key (make one with 'xdpmirror keygen FILE')",
	 set_auth_key, NULL},
	{"no-auth", "", "run without a key: anyone on the link can write the disk (labs only)",
	 set_no_auth, "yes"},
	{0},
};
_Static_assert(sizeof(xm_config_keys) / sizeof(xm_config_keys[0]) <= XM_CONFIG_MAX_KEYS,
	       "XM_CONFIG_MAX_KEYS holds every key");

void xm_config_init(struct xm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ethertype = XM_ETH_P_MIRROR;
	c->ping_ms = XM_PING_MS_DEFAULT;
	c->timeout_ms = XM_TIMEOUT_MS_DEFAULT;
	c->ko_ms = XM_KO_MS_DEFAULT;
	c->protocol = 'C';
	c->initial_sync = 'f';
}

const struct xm_config_key *xm_config_find(const char *name)
{
	const struct xm_config_key *k;

	for (k = xm_config_keys; k->name; k++)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

int xm_config_set(struct xm_config *c, const char *key, const char *val, char *err, size_t errlen)
{
	const struct xm_config_key *k = xm_config_find(key);

	if (!k) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -ENOENT;
	}
	return k->set(c, val, err, errlen);
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

int xm_config_parse_text(struct xm_config *c, const char *text, const char *origin, char *err,
			 size_t errlen)
{
	char *copy, *line, *save = NULL, *key, *val, *eq, why[256];
	int lineno = 0, ret = 0, first[XM_CONFIG_MAX_KEYS] = {0};
	const struct xm_config_key *k;

	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	/* strtok_r would skip empty lines and miscount; walk line by line instead. */
	for (line = copy; line && !ret; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(err, errlen, "config '%s' line %d: want 'key = value'", origin,
				 lineno);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		/* A key given twice is a mistake in the file, not a choice of the last one. */
		k = xm_config_find(key);
		if (k && k - xm_config_keys < XM_CONFIG_MAX_KEYS) {
			if (first[k - xm_config_keys]) {
				snprintf(err, errlen,
					 "config '%s' line %d: '%s' given twice (first on line %d)",
					 origin, lineno, key, first[k - xm_config_keys]);
				ret = -EINVAL;
				break;
			}
			first[k - xm_config_keys] = lineno;
		}
		ret = xm_config_set(c, key, val, why, sizeof(why));
		if (ret)
			snprintf(err, errlen, "config '%s' line %d: %s%s%s", origin, lineno,
				 ret == -ENOENT ? "" : key, ret == -ENOENT ? "" : " ", why);
	}
	free(copy);
	return ret;
}

int xm_config_load_file(struct xm_config *c, const char *path, char *err, size_t errlen)
{
	/* 16 KiB of text, its NUL, and one byte more to tell a longer file from one that fits. */
	char buf[XM_CONFIG_MAX_BYTES + 2];
	size_t n;
	FILE *f;
	int ret;

	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "config '%s': %s", path, strerror(errno));
		return ret;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	ret = ferror(f) ? -EIO : 0;
	if (!ret && n > XM_CONFIG_MAX_BYTES)
		ret = -EFBIG;
	fclose(f);
	if (ret) {
		snprintf(err, errlen, "config '%s': %s", path,
			 ret == -EFBIG ? "larger than 16 KiB" : "read error");
		return ret;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		snprintf(err, errlen, "config '%s': not a text file", path);
		return -EINVAL;
	}
	return xm_config_parse_text(c, buf, path, err, errlen);
}

int xm_config_check(const struct xm_config *c, char *err, size_t errlen)
{
	const char *missing = NULL;

	if (c->role == XM_ROLE_NONE)
		missing = "role";
	else if (!c->dev[0])
		missing = "dev";
	else if (!c->have_peer)
		missing = "peer";
	else if (!c->disk[0])
		missing = "disk";
	if (missing) {
		snprintf(err, errlen, "missing --%s", missing);
		return -EINVAL;
	}
	/* A probe per ping interval, three unanswered before the peer is dead: three must fit. */
	if (c->ping_ms * 3 > c->timeout_ms) {
		snprintf(err, errlen,
			 "--ping-interval %u ms is more than a third of --timeout %u ms: three "
			 "probes "
			 "must fit in the timeout",
			 c->ping_ms, c->timeout_ms);
		return -EINVAL;
	}
	if (c->auth_key[0] && c->no_auth) {
		snprintf(err, errlen, "--auth-key and --no-auth exclude each other");
		return -EINVAL;
	}
	if (c->nbd_tcp_port && !c->nbd_tls_psk[0] && !c->nbd_tcp_insecure) {
		snprintf(err, errlen,
			 "--nbd-tcp without --nbd-tls-psk FILE: anyone who can connect to the port "
			 "could read and overwrite the disk (make a key with 'psktool -u USER -p "
			 "FILE'), or --nbd-tcp-insecure for a lab");
		return -EINVAL;
	}
	if (c->nbd_tls_psk[0] && c->nbd_tcp_insecure) {
		snprintf(err, errlen, "--nbd-tls-psk and --nbd-tcp-insecure exclude each other");
		return -EINVAL;
	}
	if (!c->nbd_tcp_port && (c->nbd_tls_psk[0] || c->nbd_tcp_insecure)) {
		snprintf(err, errlen,
			 "--%s without --nbd-tcp: TLS is for the TCP export (the Unix socket is "
			 "guarded by its mode, see --nbd-group)",
			 c->nbd_tls_psk[0] ? "nbd-tls-psk" : "nbd-tcp-insecure");
		return -EINVAL;
	}
	if (!c->auth_key[0] && !c->no_auth) {
		snprintf(err, errlen,
			 "missing --auth-key FILE (make one with 'xdpmirror keygen FILE' and copy "
			 "it "
			 "to the peer), or --no-auth for a lab without one");
		return -EINVAL;
	}
	return 0;
}

const char *xm_xsk_mode_name(enum xm_xsk_mode m)
{
	return m == XM_XSK_ZEROCOPY ? "zerocopy" : m == XM_XSK_COPY ? "copy" : "auto";
}

const char *xm_xdp_mode_name(enum xm_xdp_mode m)
{
	return m == XM_XDP_SKB ? "skb" : "native";
}
