// SPDX-License-Identifier: GPL-2.0
/* The link's gate: the challenge-response under the HELLOs, tags on the way out, checks on the way
 * in (docs/protocol.md §14.3-§14.5). */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "link/gate.h"
#include "util/log.h"

#define ALG_NAME "aes-256-gmac"

static void slot_clear(struct xm_gate_slot *s)
{
	xm_mac_free(&s->tx);
	xm_mac_free(&s->rx);
	OPENSSL_cleanse(s, sizeof(*s));
}

/* Keys of the slot's session from the key and both nonces; initiator: we sent the HELLO. */
static int slot_key(struct xm_gate *g, struct xm_gate_slot *s, bool initiator)
{
	__u8 ir[XM_AUTH_KEY_LEN], ri[XM_AUTH_KEY_LEN];
	int err;

	xm_mac_free(&s->tx);
	xm_mac_free(&s->rx);
	s->keyed = false;
	err = xm_auth_derive(g->key, s->nonce_i, s->nonce_r, s->session, ir, ri);
	if (!err)
		err = xm_mac_init(&s->tx, initiator ? ir : ri);
	if (!err)
		err = xm_mac_init(&s->rx, initiator ? ri : ir);
	OPENSSL_cleanse(ir, sizeof(ir));
	OPENSSL_cleanse(ri, sizeof(ri));
	if (err) {
		xm_mac_free(&s->tx);
		xm_mac_free(&s->rx);
		return err;
	}
	s->keyed = true;
	s->tx_counter = 0;
	memset(&s->seen, 0, sizeof(s->seen));
	return 0;
}

/* Says what went wrong, in status and once in the log per new text. */
static void problem(struct xm_gate *g, const char *fmt, ...)
{
	char text[sizeof(g->problem)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (strcmp(text, g->problem))
		pr_warn("%s", text);
	snprintf(g->problem, sizeof(g->problem), "%s", text);
}

int xm_gate_init(struct xm_gate *g, const struct xm_gate_cfg *cfg)
{
	memset(g, 0, sizeof(*g));
	g->cfg = *cfg;
	if (cfg->key) {
		g->auth = true;
		memcpy(g->key, cfg->key, XM_AUTH_KEY_LEN);
		xm_auth_fingerprint(g->key, g->fp);
	}
	return 0;
}

void xm_gate_free(struct xm_gate *g)
{
	__u32 i;

	slot_clear(&g->mine);
	slot_clear(&g->theirs);
	for (i = 0; i < XM_GATE_PENDING; i++)
		slot_clear(&g->pending[i]);
	OPENSSL_cleanse(g->key, sizeof(g->key));
}

/* The frame with its payload spans (and a HELLO's auth part), tagged under slot's keys when slot
 * is not NULL. */
static int build(struct xm_gate *g, const struct xm_frame *fin, const struct xm_span *payload,
		 __u32 n, const struct xm_hello_auth *ext, struct xm_gate_slot *slot,
		 struct xm_gate_frame *out)
{
	struct xm_frame f = *fin;
	struct xm_span *body;
	__u32 i, nbody = n;
	int hlen;

	if (n > XM_MAX_SPANS)
		return -EINVAL;
	/* spans[0] is the head; the body follows it. */
	body = out->spans + 1;
	memcpy(body, payload, n * sizeof(*payload));
	if (ext) {
		out->ext = *ext;
		body[nbody++] =
			(struct xm_span){.data = (const __u8 *)&out->ext, .len = sizeof(*ext)};
		f.payload_len += sizeof(*ext);
	}
	if (slot)
		f.flags |= XM_F_AUTH;
	hlen = xm_frame_head(out->head, sizeof(out->head), g->cfg.peer_mac, g->cfg.local_mac,
			     g->cfg.ethertype, &f, body, nbody);
	if (hlen < 0)
		return hlen;
	out->spans[0] = (struct xm_span){.data = out->head, .len = (__u32)hlen};
	out->n = 1 + nbody;
	out->len = 0;
	for (i = 0; i < out->n; i++)
		out->len += out->spans[i].len;
	if (!slot)
		return 0;
	/* The tag covers the mirror header, its padding and the body, not the Ethernet header. */
	out->spans[0].data += XM_ETH_HLEN;
	out->spans[0].len -= XM_ETH_HLEN;
	out->trailer.counter = htobe64(slot->tx_counter);
	i = (__u32)xm_mac_tag(&slot->tx, slot->tx_counter, out->spans, out->n, out->trailer.tag);
	out->spans[0] = (struct xm_span){.data = out->head, .len = (__u32)hlen};
	if (i)
		return -EIO;
	slot->tx_counter++;
	out->spans[out->n++] =
		(struct xm_span){.data = (const __u8 *)&out->trailer, .len = sizeof(out->trailer)};
	out->len += sizeof(out->trailer);
	return 0;
}

/* The session a frame belongs to: a HELLO names the one it offers in arg0. */
static __u32 session_of(const struct xm_frame *f)
{
	return f->type == XM_T_HELLO ? (__u32)f->arg0 : f->session;
}

static struct xm_gate_slot *live_slot(struct xm_gate *g, __u32 session)
{
	if (!session)
		return NULL;
	if (g->mine.live && g->mine.session == session)
		return &g->mine;
	if (g->theirs.live && g->theirs.session == session)
		return &g->theirs;
	return NULL;
}

int xm_gate_build(struct xm_gate *g, const struct xm_frame *f, const struct xm_span *payload,
		  __u32 n, struct xm_gate_frame *out)
{
	struct xm_hello_auth ext = {0};
	struct xm_gate_slot *slot = NULL;
	int err;

	if (f->type == XM_T_HELLO) {
		/* A new offer, or live keys that got nothing back since: a fresh nonce, and no
		 * keys until the peer answers. */
		if (g->mine.session != (__u32)f->arg0 ||
		    (g->mine.live && g->mine.unanswered >= XM_GATE_HELLO_RESTART)) {
			slot_clear(&g->mine);
			g->mine.session = (__u32)f->arg0;
			if (g->auth) {
				err = xm_auth_random(g->mine.nonce_i, XM_AUTH_NONCE_LEN);
				if (err)
					return err;
			}
		}
		if (g->auth) {
			ext.alg = XM_AUTH_AES256_GMAC;
			memcpy(ext.nonce, g->mine.nonce_i, XM_AUTH_NONCE_LEN);
			memcpy(ext.fingerprint, g->fp, XM_AUTH_FP_LEN);
		}
		if (g->auth && g->mine.live) {
			slot = &g->mine;
			slot->unanswered++;
		}
		return build(g, f, payload, n, &ext, slot, out);
	}
	if (g->auth && f->type != XM_T_PROBE && f->type != XM_T_PROBE_ACK)
		slot = live_slot(g, session_of(f));
	return build(g, f, payload, n, NULL, slot, out);
}

static void send_frame(struct xm_gate *g, const struct xm_frame *f, const void *payload, __u32 len,
		       struct xm_gate_slot *slot)
{
	struct xm_span span = {.data = payload, .len = len};
	struct xm_gate_frame out;

	if (!build(g, f, &span, len ? 1 : 0, NULL, slot, &out))
		g->cfg.out(g->cfg.ctx, out.spans, out.n, out.len);
}

/* What an untagged CHALLENGE's arg1 means to the box that sent the HELLO. */
static const char *answer_text(__u64 code)
{
	switch (code) {
	case XM_AUTH_NO_KEY:
		return "the peer runs without a key (--no-auth), this box has one";
	case XM_AUTH_KEY_REQUIRED:
		return "the peer requires a key (--auth-key), this box runs --no-auth";
	case XM_AUTH_BAD_ALG:
		return "the peer does not know this box's authentication algorithm";
	default:
		return "the peer refused authentication for an unknown reason";
	}
}

/* A CHALLENGE that cannot be tagged: why this box cannot authenticate the HELLO. */
static void refuse_auth(struct xm_gate *g, const struct xm_frame *hello, __u8 code)
{
	struct xm_frame f = {.type = XM_T_CHALLENGE, .session = session_of(hello), .arg1 = code};
	struct xm_challenge c = {.alg = g->auth ? XM_AUTH_AES256_GMAC : XM_AUTH_NONE};

	if (g->auth)
		memcpy(c.fingerprint, g->fp, XM_AUTH_FP_LEN);
	f.payload_len = sizeof(c);
	send_frame(g, &f, &c, sizeof(c), NULL);
	g->cfg.ctr->tx_challenge++;
}

/* A HELLO of a revision this box does not speak: refused here, before anything else looks at
 * it (§14.5).  The refusal names this box's revisions. */
static void refuse_version(struct xm_gate *g, const struct xm_frame *hello,
			   const struct xm_hello *h)
{
	struct xm_frame f = {
		.type = XM_T_HELLO_ACK, .session = session_of(hello), .arg1 = XM_REFUSE_VERSION};
	struct xm_hello2 mine = {0};

	mine.h.proto_min = htobe16(XM_PROTO_MIN);
	mine.h.proto_max = htobe16(XM_PROTO_MAX);
	f.payload_len = sizeof(mine);
	send_frame(g, &f, &mine, sizeof(mine), NULL);
	g->cfg.ctr->rx_bad_hello++;
	if (h)
		problem(g,
			"protocol version mismatch: the peer speaks revisions %u..%u, this box "
			"%u..%u",
			be16toh(h->proto_min), be16toh(h->proto_max), XM_PROTO_MIN, XM_PROTO_MAX);
	else
		problem(g, "protocol version mismatch: the peer's HELLO is too short (%u bytes)",
			(unsigned)hello->payload_len);
}

/* The pending handshake of this session id and initiator's nonce, if there is one. */
static struct xm_gate_slot *pending_find(struct xm_gate *g, __u32 session,
					 const __u8 nonce_i[XM_AUTH_NONCE_LEN])
{
	__u32 i;

	for (i = 0; i < XM_GATE_PENDING; i++)
		if (g->pending[i].keyed && g->pending[i].session == session &&
		    !memcmp(g->pending[i].nonce_i, nonce_i, XM_AUTH_NONCE_LEN))
			return &g->pending[i];
	return NULL;
}

/* A pending handshake for this HELLO: the same one again if id and nonce match (so crossing
 * CHALLENGEs carry one nonce), else the oldest slot with a fresh nonce. */
static struct xm_gate_slot *pending_for(struct xm_gate *g, __u32 session,
					const __u8 nonce_i[XM_AUTH_NONCE_LEN])
{
	struct xm_gate_slot *s = pending_find(g, session, nonce_i);

	if (s)
		return s;
	s = &g->pending[g->next_pending++ % XM_GATE_PENDING];
	slot_clear(s);
	s->session = session;
	memcpy(s->nonce_i, nonce_i, XM_AUTH_NONCE_LEN);
	if (xm_auth_random(s->nonce_r, XM_AUTH_NONCE_LEN) || slot_key(g, s, false)) {
		slot_clear(s);
		return NULL;
	}
	return s;
}

/* An untagged HELLO: the revision, then the keys (§14.3).  Passes it only without a key. */
static enum xm_gate_verdict on_plain_hello(struct xm_gate *g, const struct xm_frame *f,
					   const struct xm_span *spans, __u32 n, __u32 hdr_off)
{
	struct xm_hello4 h = {0};
	struct xm_challenge c = {.alg = XM_AUTH_AES256_GMAC};
	struct xm_frame ch = {.type = XM_T_CHALLENGE};
	struct xm_gate_slot *s;
	char mine[2 * XM_AUTH_FP_LEN + 1], theirs[2 * XM_AUTH_FP_LEN + 1];
	__u16 lo, hi;

	if (!f->arg0 || f->arg0 > 0xffffffffull) {
		g->cfg.ctr->rx_bad_hello++;
		return XM_GATE_DROP;
	}
	if (f->payload_len < sizeof(h.h2.h)) {
		refuse_version(g, f, NULL);
		return XM_GATE_DROP;
	}
	xm_spans_copy(spans, n, hdr_off + f->payload_off,
		      f->payload_len < sizeof(h) ? f->payload_len : sizeof(h), &h);
	lo = be16toh(h.h2.h.proto_min);
	hi = be16toh(h.h2.h.proto_max);
	if (lo > XM_PROTO_MAX || hi < XM_PROTO_MIN || f->payload_len < sizeof(h)) {
		refuse_version(g, f, &h.h2.h);
		return XM_GATE_DROP;
	}
	if (!g->auth) {
		if (h.auth.alg == XM_AUTH_NONE)
			return XM_GATE_PASS;
		problem(g, "authentication failed: the peer has a key, this box runs --no-auth");
		refuse_auth(g, f, XM_AUTH_NO_KEY);
		return XM_GATE_DROP;
	}
	if (h.auth.alg == XM_AUTH_NONE) {
		problem(g, "authentication failed: the peer runs without a key (--no-auth), this "
			   "box requires one");
		refuse_auth(g, f, XM_AUTH_KEY_REQUIRED);
		return XM_GATE_DROP;
	}
	if (h.auth.alg != XM_AUTH_AES256_GMAC) {
		problem(g, "authentication failed: the peer's algorithm %u is not %s",
			(unsigned)h.auth.alg, ALG_NAME);
		refuse_auth(g, f, XM_AUTH_BAD_ALG);
		return XM_GATE_DROP;
	}
	if (memcmp(h.auth.fingerprint, g->fp, XM_AUTH_FP_LEN)) {
		/* Answered all the same: the initiator finds out by itself from the tag. */
		xm_auth_fp_text(g->fp, mine);
		xm_auth_fp_text(h.auth.fingerprint, theirs);
		g->cfg.ctr->auth_failures++;
		problem(g, "authentication failed: the peer's key (%s) is not this box's (%s)",
			theirs, mine);
	}
	s = pending_for(g, (__u32)f->arg0, h.auth.nonce);
	if (!s)
		return XM_GATE_DROP;
	ch.session = s->session;
	memcpy(c.nonce, s->nonce_r, XM_AUTH_NONCE_LEN);
	memcpy(c.fingerprint, g->fp, XM_AUTH_FP_LEN);
	ch.payload_len = sizeof(c);
	send_frame(g, &ch, &c, sizeof(c), s);
	g->cfg.ctr->tx_challenge++;
	return XM_GATE_DROP;
}

/* The tag of a received frame under slot's keys, and its counter not seen before. */
static enum xm_gate_verdict check_tag(struct xm_gate *g, struct xm_gate_slot *s,
				      const struct xm_frame *f, const struct xm_span *spans,
				      __u32 n, __u32 hdr_off, __u64 now)
{
	struct xm_span aad[XM_MAX_SPANS];
	struct xm_auth_trailer t;
	__u64 covered = (__u64)f->payload_off + f->payload_len, counter;
	__u32 na;

	na = xm_spans_slice(spans, n, hdr_off, covered, aad, XM_MAX_SPANS);
	if (!na || xm_spans_copy(spans, n, hdr_off + covered, sizeof(t), &t) != sizeof(t)) {
		g->cfg.ctr->rx_bad_auth++;
		return XM_GATE_DROP;
	}
	counter = be64toh(t.counter);
	if (!s->keyed || !xm_mac_verify(&s->rx, counter, aad, na, t.tag)) {
		g->cfg.ctr->rx_bad_auth++;
		return XM_GATE_DROP;
	}
	if (!xm_replay_fresh(&s->seen, counter)) {
		g->cfg.ctr->rx_replay++;
		return XM_GATE_DROP;
	}
	xm_replay_mark(&s->seen, counter);
	s->unanswered = 0;
	g->verified_rx_ns = now;
	return XM_GATE_PASS;
}

/* The peer's answer to our HELLO: its nonce gives the keys, its tag says it holds the key. */
static void on_challenge(struct xm_gate *g, const struct xm_frame *f, const struct xm_span *spans,
			 __u32 n, __u32 hdr_off, __u64 now)
{
	struct xm_gate_slot *s = &g->mine;
	struct xm_challenge c = {0};
	char mine[2 * XM_AUTH_FP_LEN + 1], theirs[2 * XM_AUTH_FP_LEN + 1];

	if (f->payload_len >= sizeof(c))
		xm_spans_copy(spans, n, hdr_off + f->payload_off, sizeof(c), &c);
	if (!(f->flags & XM_F_AUTH)) {
		if (f->arg1 && f->session == s->session)
			problem(g, "authentication failed: %s", answer_text(f->arg1));
		else
			g->cfg.ctr->rx_bad_auth++;
		return;
	}
	if (!g->auth || !s->session || f->session != s->session || s->live ||
	    f->payload_len < sizeof(c)) {
		g->cfg.ctr->rx_auth_stale++;
		return;
	}
	memcpy(s->nonce_r, c.nonce, XM_AUTH_NONCE_LEN);
	if (slot_key(g, s, true))
		return;
	if (check_tag(g, s, f, spans, n, hdr_off, now) != XM_GATE_PASS) {
		s->keyed = false; /* the next CHALLENGE derives again */
		/* A garbage tag with our fingerprint is anyone's forgery, not the peer's key. */
		if (!memcmp(c.fingerprint, g->fp, XM_AUTH_FP_LEN))
			return;
		xm_auth_fp_text(g->fp, mine);
		xm_auth_fp_text(c.fingerprint, theirs);
		g->cfg.ctr->auth_failures++;
		problem(g,
			"authentication failed: the peer's answer does not verify with this box's "
			"key "
			"(peer %s, this box %s)",
			theirs, mine);
		return;
	}
	s->live = true;
	g->problem[0] = 0;
}

/* The keys a tagged HELLO claims: those of its session id and nonce, live or pending. */
static struct xm_gate_slot *hello_slot(struct xm_gate *g, const struct xm_frame *f,
				       const struct xm_span *spans, __u32 n, __u32 hdr_off)
{
	struct xm_hello4 h;
	__u32 sid = session_of(f);

	if (!sid || f->payload_len < sizeof(h) ||
	    xm_spans_copy(spans, n, hdr_off + f->payload_off, sizeof(h), &h) != sizeof(h))
		return NULL;
	if (g->theirs.live && g->theirs.session == sid &&
	    !memcmp(g->theirs.nonce_i, h.auth.nonce, XM_AUTH_NONCE_LEN))
		return &g->theirs;
	return pending_find(g, sid, h.auth.nonce);
}

enum xm_gate_verdict xm_gate_rx(struct xm_gate *g, const struct xm_frame *f,
				const struct xm_span *spans, __u32 n, __u32 hdr_off, __u64 now)
{
	struct xm_gate_slot *s;
	__u32 sid = session_of(f);

	if (f->type == XM_T_CHALLENGE) {
		on_challenge(g, f, spans, n, hdr_off, now);
		return XM_GATE_DROP;
	}
	if (f->type == XM_T_HELLO && !(f->flags & XM_F_AUTH))
		return on_plain_hello(g, f, spans, n, hdr_off);
	if (!g->auth) {
		if (!(f->flags & XM_F_AUTH))
			return XM_GATE_PASS;
		g->cfg.ctr->rx_bad_auth++;
		return XM_GATE_DROP;
	}
	if (!(f->flags & XM_F_AUTH)) {
		/* A peer of another revision cannot tag its refusal. */
		if (f->type == XM_T_HELLO_ACK && f->arg1 == XM_REFUSE_VERSION)
			return XM_GATE_PASS;
		g->cfg.ctr->rx_bad_auth++;
		return XM_GATE_DROP;
	}
	s = f->type == XM_T_HELLO ? hello_slot(g, f, spans, n, hdr_off) : live_slot(g, sid);
	if (!s) {
		g->cfg.ctr->rx_auth_stale++;
		return XM_GATE_DROP;
	}
	/* A bad tag is counted, nothing more: the fingerprint already told a wrong key (§14.3). */
	if (check_tag(g, s, f, spans, n, hdr_off, now) != XM_GATE_PASS)
		return XM_GATE_DROP;
	if (!s->live) {
		/* The initiator holds the key: its session replaces the one it offered before. */
		slot_clear(&g->theirs);
		g->theirs = *s;
		memset(s, 0, sizeof(*s)); /* the keys moved; nothing to free */
		g->theirs.live = true;
		g->problem[0] = 0;
	}
	return XM_GATE_PASS;
}

bool xm_gate_live(const struct xm_gate *g)
{
	return g->mine.live || g->theirs.live;
}

void xm_gate_status(const struct xm_gate *g, struct xm_report *rep)
{
	char fp[2 * XM_AUTH_FP_LEN + 1];

	xm_report_open(rep, "auth", "authentication");
	xm_report_bool(rep, "enabled", "enabled", g->auth);
	if (g->auth) {
		xm_auth_fp_text(g->fp, fp);
		xm_report_str(rep, "algorithm", "algorithm", ALG_NAME);
		xm_report_str(rep, "key_fingerprint", "key fingerprint", fp);
		xm_report_bool(rep, "authenticated", "link authenticated", xm_gate_live(g));
	}
	xm_report_str(rep, "problem", "problem", g->problem[0] ? g->problem : "none");
	xm_report_close(rep);
}
