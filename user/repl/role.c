// SPDX-License-Identifier: GPL-2.0
/* The services every role uses through its environment. */
#include <string.h>

#include "repl/role.h"
#include "util/clock.h"
#include "util/log.h"

void xm_env_meta_failed(const struct xm_role_env *env, int err)
{
	env->ctr->meta_errors++;
	pr_warn("%s: cannot write metadata '%s': %s", env->cfg->dev, env->meta->path,
		strerror(-err));
}

void xm_env_send_close(const struct xm_role_env *env, __u32 session, __u64 reason)
{
	struct xm_frame f = {.type = XM_T_CLOSE, .session = session, .arg0 = reason};

	xm_env_send(env, &f, NULL, 0, 0);
	env->tx_flush(env->link); /* the daemon may exit right after this */
}

void xm_env_heartbeat(const struct xm_role_env *env, __u32 session, __u64 cum, __u32 credit,
		      __u64 now)
{
	struct xm_frame ping;

	/* Every interval, whatever else flows: both sides keep an RTT and a liveness signal. */
	if (now < xm_heartbeat_next(env->hb))
		return;
	xm_heartbeat_ping(session, cum, credit, now, &ping);
	if (!xm_env_send(env, &ping, NULL, 0, 0)) {
		env->ctr->tx_ping++;
		env->hb->last_ping_ns = now;
	}
}

void xm_env_liveness_start(const struct xm_role_env *env, __u64 now)
{
	struct xm_detector_cfg cfg = {
		.interval_ns = (__u64)env->cfg->ping_ms * NS_PER_MS,
		.timeout_ns = (__u64)env->cfg->timeout_ms * NS_PER_MS,
		.ko_ns = (__u64)env->cfg->ko_ms * NS_PER_MS,
	};

	xm_detector_start(env->det, &cfg, now);
}

/* The stamps of the latest PROBE_ACK, read until both come from the same answer (the XDP program
 * writes them without a lock; an answer lands every probe interval at most, so this rarely
 * loops). */
static void read_answer(const volatile struct xm_alive *a, __u64 *echo, __u64 *ack)
{
	int tries = 4;

	do {
		*echo = a->probe_echo_ns;
		*ack = a->probe_ack_ns;
	} while (*echo != a->probe_echo_ns && --tries);
}

enum xm_verdict xm_env_liveness(const struct xm_role_env *env, __u32 session, __u64 now)
{
	struct xm_detector *d = env->det;
	struct xm_frame probe = {.type = XM_T_PROBE, .session = session, .arg0 = now};
	enum xm_verdict v;
	__u64 echo, ack;

	if (env->alive) {
		xm_detector_heard(d, env->alive->peer_rx_ns,
				  env->verified_rx_ns ? *env->verified_rx_ns
						      : env->alive->daemon_rx_ns);
		read_answer(env->alive, &echo, &ack);
		xm_detector_answer(d, echo, ack);
	}
	v = xm_detector_check(d, now);
	if (v == XM_PEER_ALIVE && xm_detector_probe_due(d, now) &&
	    !xm_env_send(env, &probe, NULL, 0, 0)) {
		xm_detector_probe_sent(d, now);
		env->ctr->tx_probe++;
	}
	return v;
}

void xm_env_answer_ping(const struct xm_role_env *env, const struct xm_frame *ping, __u64 cum,
			__u32 credit)
{
	struct xm_frame pong;

	xm_heartbeat_pong(ping, cum, credit, &pong);
	xm_env_send(env, &pong, NULL, 0, 0);
}

void xm_env_take_pong(const struct xm_role_env *env, const struct xm_frame *pong, __u64 now)
{
	env->ctr->rx_pong++;
	if (xm_heartbeat_rtt(env->hb, pong, now))
		env->ctr->rx_pong_stale++;
}
