// SPDX-License-Identifier: GPL-2.0
/* The services every role uses through its environment. */
#include <string.h>

#include "repl/role.h"
#include "util/log.h"

int xm_env_meta_sync(const struct xm_role_env *env)
{
	int err = xm_meta_sync(env->meta);

	if (err) {
		env->ctr->meta_errors++;
		pr_warn("%s: cannot write metadata '%s': %s", env->cfg->dev, env->meta->path,
			strerror(-err));
	}
	return err;
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
