// SPDX-License-Identifier: GPL-2.0
/* The events stream's lines (docs/events.md): every sample a small snapshot of the device,
 * compared with the last one, a JSON line per difference; and the lines the roles' notes call
 * for.  Nothing is sampled or built while no reader listens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "conf/params.h"
#include "daemon/daemon.h"
#include "daemon/evreaders.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/report.h"

#define SAMPLE_NS   (100 * NS_PER_MS)
#define PROGRESS_NS NS_PER_SEC /* resync-progress: at most one line a second */
#define AUTH_NS	    NS_PER_SEC /* auth-failure: at most one line a second, with counts */

/* Tagged frames of a session this box has no keys for (rx_auth_stale) are left out: they come
 * with every reconnection (the old session's frames still on their way), failing nothing. */
enum { AUTH_BAD_TAG, AUTH_REPLAY, AUTH_WRONG_KEY, AUTH_KINDS };
static const char *const auth_keys[AUTH_KINDS] = {"bad_tag", "replay", "wrong_key"};

/* What is compared: the few facts the lines report, copied out of the status. */
struct snap {
	char role[16], connection[32], state[24], reason[160], disk[16], health[16];
	char peer_disk[16]; /* "": this role does not know it (a secondary) */
	char sync[24], decision[24];
	__u64 session;
	bool has_resync; /* the role reports resync progress (a primary) */
	bool resync_active;
	__u64 done, remaining, rate, last_bytes;
	double percent, eta_s, last_elapsed_s;
	__u64 auth[AUTH_KINDS];
};

struct xm_events {
	struct xm_ev_readers readers;
	struct snap last;
	bool have_last;	  /* last is what the readers know */
	bool resync_open; /* a resync-start went out, its end not yet */
	__u64 next_sample_ns, progress_ns, auth_ns;
	__u64 auth_base[AUTH_KINDS]; /* the counts the last auth-failure line told */
	__u64 seq;		     /* change lines so far */
};

static struct json_object *at(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void copy_str(char *dst, size_t len, struct json_object *o, const char *key)
{
	struct json_object *v = at(o, key);

	snprintf(dst, len, "%s",
		 v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "");
}

static __u64 get_u64(struct json_object *o, const char *key)
{
	struct json_object *v = at(o, key);

	return v ? (__u64)json_object_get_uint64(v) : 0;
}

static double get_dbl(struct json_object *o, const char *key)
{
	struct json_object *v = at(o, key);

	return v ? json_object_get_double(v) : 0;
}

/* The role's status, through the accessor `status` uses; NULL while no role runs. */
static struct json_object *role_status(const struct xm_daemon *d)
{
	struct xm_report r;

	if (!d->role)
		return NULL;
	xm_report_begin(&r, XM_REPORT_JSON, NULL);
	d->ops->status(d->role, &r);
	return xm_report_take_json(&r);
}

static void snap_take(const struct xm_daemon *d, struct snap *s)
{
	struct json_object *root = role_status(d), *repl = at(root, "replication");
	struct json_object *rs = at(repl, "resync");

	memset(s, 0, sizeof(*s));
	snprintf(s->role, sizeof(s->role), "%s", xm_role_name(d->cfg.role));
	snprintf(s->disk, sizeof(s->disk), "%s", xm_disk_state_name(d->meta.sb.disk_state));
	snprintf(s->health, sizeof(s->health), "%s", xm_disk_health_name(d->health.state));
	s->auth[AUTH_BAD_TAG] = d->ctr.rx_bad_auth;
	s->auth[AUTH_REPLAY] = d->ctr.rx_replay;
	s->auth[AUTH_WRONG_KEY] = d->ctr.auth_failures;
	copy_str(s->connection, sizeof(s->connection), repl, "connection");
	copy_str(s->state, sizeof(s->state), repl, "state");
	copy_str(s->reason, sizeof(s->reason), repl, "reason");
	copy_str(s->peer_disk, sizeof(s->peer_disk), repl, "peer_disk");
	copy_str(s->sync, sizeof(s->sync), repl, "sync");
	copy_str(s->decision, sizeof(s->decision), repl, "decision");
	s->session = get_u64(repl, "session");
	if (rs) {
		s->has_resync = true;
		s->resync_active = json_object_get_boolean(at(rs, "active"));
		s->done = get_u64(rs, "done_bytes");
		s->remaining = get_u64(rs, "remaining_bytes");
		s->rate = get_u64(rs, "rate_bytes_per_s");
		s->percent = get_dbl(rs, "percent");
		s->eta_s = get_dbl(rs, "eta_s");
		s->last_bytes = get_u64(at(rs, "last"), "bytes");
		s->last_elapsed_s = get_dbl(at(rs, "last"), "elapsed_s");
	} else {
		s->resync_active = !strcmp(s->sync, "resync_target");
	}
	json_object_put(root);
}

static void add_str(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, json_object_new_string(val));
}

/* "" is "not known": null. */
static void add_known(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, val[0] ? json_object_new_string(val) : NULL);
}

static void add_u64(struct json_object *o, const char *key, __u64 val)
{
	json_object_object_add(o, key, json_object_new_uint64(val));
}

/* Three decimals, as status has them. */
static void add_dbl(struct json_object *o, const char *key, double val)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%.3f", val);
	json_object_object_add(o, key, json_object_new_double_s(val, buf));
}

/* A line's common fields; a change line takes the next number. */
static struct json_object *line_begin(struct xm_daemon *d, const char *type, bool change)
{
	struct json_object *o = json_object_new_object();
	char when[XM_EV_TIME_LEN];

	xm_ev_time(when);
	add_str(o, "time", when);
	if (change)
		d->events->seq++;
	add_u64(o, "seq", d->events->seq);
	add_str(o, "dev", d->cfg.dev);
	add_str(o, "type", type);
	return o;
}

/* The line, with its newline, in malloc'd memory (*len bytes); NULL when there is none.  Takes
 * o. */
static char *line_text(struct json_object *o, size_t *len)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	char *buf = NULL;

	*len = s ? strlen(s) + 1 : 0;
	if (s && *len <= XM_EV_LINE_MAX && (buf = malloc(*len))) {
		memcpy(buf, s, *len - 1);
		buf[*len - 1] = '\n';
	}
	json_object_put(o);
	return buf;
}

static void line_send(struct xm_daemon *d, struct json_object *o)
{
	size_t len;
	char *buf = line_text(o, &len);

	if (!buf) {
		pr_debug("%s: an events line was not built", d->cfg.dev);
		return;
	}
	xm_ev_readers_send(&d->events->readers, buf, len);
	free(buf);
}

static void add_state(struct json_object *o, const struct snap *s)
{
	struct json_object *rs;

	add_str(o, "role", s->role);
	add_known(o, "connection", s->connection);
	add_u64(o, "session", s->session);
	add_str(o, "disk", s->disk);
	add_str(o, "disk_health", s->health);
	add_known(o, "peer_disk", s->peer_disk);
	add_known(o, "sync", s->sync);
	if (!s->has_resync)
		return;
	rs = json_object_new_object();
	json_object_object_add(rs, "active", json_object_new_boolean(s->resync_active));
	add_u64(rs, "done_bytes", s->done);
	add_u64(rs, "remaining_bytes", s->remaining);
	add_dbl(rs, "percent", s->percent);
	add_u64(rs, "rate_bytes_per_s", s->rate);
	json_object_object_add(o, "resync", rs);
}

/* A change from was to is: "key" the new value, "previous" the old one. */
static void send_change(struct xm_daemon *d, const char *type, const char *key, const char *is,
			const char *was)
{
	struct json_object *o = line_begin(d, type, true);

	add_known(o, key, is);
	add_known(o, "previous", was);
	line_send(d, o);
}

static void resync_start(struct xm_daemon *d, const struct snap *s, __u64 now)
{
	struct json_object *o = line_begin(d, "resync-start", true);

	add_known(o, "sync", s->sync);
	if (s->has_resync) {
		add_known(o, "decision", s->decision);
		add_u64(o, "remaining_bytes", s->remaining);
	}
	line_send(d, o);
	d->events->resync_open = true;
	d->events->progress_ns = now;
}

static void resync_end(struct xm_daemon *d, const struct snap *s)
{
	struct json_object *o = line_begin(d, "resync-end", true);
	bool done = !strcmp(s->sync, "in_sync");

	add_str(o, "result", done ? "done" : "interrupted");
	if (done && s->has_resync) {
		add_u64(o, "bytes", s->last_bytes);
		add_dbl(o, "elapsed_s", s->last_elapsed_s);
	}
	line_send(d, o);
	d->events->resync_open = false;
}

static void resync_progress(struct xm_daemon *d, const struct snap *s, __u64 now)
{
	struct json_object *o = line_begin(d, "resync-progress", true);

	add_u64(o, "done_bytes", s->done);
	add_u64(o, "remaining_bytes", s->remaining);
	add_dbl(o, "percent", s->percent);
	add_u64(o, "rate_bytes_per_s", s->rate);
	add_dbl(o, "eta_s", s->eta_s);
	line_send(d, o);
	d->events->progress_ns = now;
}

static void auth_failures(struct xm_daemon *d, const struct snap *s, __u64 now)
{
	struct xm_events *ev = d->events;
	struct json_object *o;
	__u64 total = 0, grew = 0;
	int k;

	for (k = 0; k < AUTH_KINDS; k++) {
		grew += s->auth[k] - ev->auth_base[k];
		total += s->auth[k];
	}
	if (!grew || now - ev->auth_ns < AUTH_NS)
		return; /* the counts wait for the next line */
	o = line_begin(d, "auth-failure", true);
	for (k = 0; k < AUTH_KINDS; k++)
		add_u64(o, auth_keys[k], s->auth[k] - ev->auth_base[k]);
	add_u64(o, "total", total);
	line_send(d, o);
	memcpy(ev->auth_base, s->auth, sizeof(ev->auth_base));
	ev->auth_ns = now;
}

static void connection_changed(struct xm_daemon *d, const struct snap *s, const struct snap *was)
{
	struct json_object *o = line_begin(d, "connection", true);

	add_known(o, "connection", s->connection);
	add_known(o, "previous", was->connection);
	add_u64(o, "session", s->session);
	add_known(o, "state", s->state);
	add_str(o, "reason", s->reason);
	line_send(d, o);
	if (strcmp(s->connection, "split-brain"))
		return;
	o = line_begin(d, "split-brain", true);
	add_str(o, "connection", s->connection);
	add_u64(o, "session", s->session);
	line_send(d, o);
}

/* One line per difference between the last snapshot and s, which becomes the last.  sync_done:
 * a role said a resync is complete, so there was one even if no sample saw it run. */
static void compare(struct xm_daemon *d, const struct snap *s, __u64 now, bool sync_done)
{
	struct xm_events *ev = d->events;
	const struct snap *was = &ev->last;
	bool connected = !strcmp(s->connection, "connected");

	if (strcmp(s->role, was->role))
		send_change(d, "role", "role", s->role, was->role);
	if (strcmp(s->connection, was->connection) || (connected && s->session != was->session))
		connection_changed(d, s, was);
	if (strcmp(s->disk, was->disk) || strcmp(s->health, was->health)) {
		struct json_object *o = line_begin(d, "disk", true);

		add_str(o, "disk", s->disk);
		add_str(o, "disk_health", s->health);
		add_str(o, "previous_disk", was->disk);
		add_str(o, "previous_health", was->health);
		line_send(d, o);
	}
	if (strcmp(s->peer_disk, was->peer_disk))
		send_change(d, "peer-disk", "peer_disk", s->peer_disk, was->peer_disk);
	if (strcmp(s->sync, was->sync))
		send_change(d, "sync", "sync", s->sync, was->sync);
	/* The session changed while a resync was open: that resync ended with its session, even
	 * when the new one's resync started and finished between two samples. */
	if (ev->resync_open && s->session != was->session)
		resync_end(d, was);
	if (sync_done && !ev->resync_open)
		resync_start(d, s, now);
	if (s->resync_active && !ev->resync_open)
		resync_start(d, s, now);
	else if (!s->resync_active && ev->resync_open)
		resync_end(d, s);
	if (ev->resync_open && s->has_resync && now - ev->progress_ns >= PROGRESS_NS)
		resync_progress(d, s, now);
	auth_failures(d, s, now);
	ev->last = *s;
}

static void sample(struct xm_daemon *d, __u64 now, bool sync_done)
{
	struct snap s;

	snap_take(d, &s);
	compare(d, &s, now, sync_done);
	d->events->next_sample_ns = now + SAMPLE_NS;
}

/* The first reader: what it is told is where comparing starts. */
static void baseline(struct xm_daemon *d, __u64 now)
{
	struct xm_events *ev = d->events;

	snap_take(d, &ev->last);
	ev->have_last = true;
	ev->resync_open = ev->last.resync_active;
	ev->progress_ns = now;
	ev->auth_ns = 0;
	memcpy(ev->auth_base, ev->last.auth, sizeof(ev->auth_base));
	ev->next_sample_ns = now + SAMPLE_NS;
}

static char *state_line(struct xm_daemon *d, const struct snap *s, size_t *len)
{
	struct json_object *o = line_begin(d, "state", false);

	add_state(o, s);
	return line_text(o, len);
}

int xm_events_init(struct xm_daemon *d)
{
	d->events = calloc(1, sizeof(*d->events));
	if (!d->events)
		return -ENOMEM;
	xm_ev_readers_init(&d->events->readers, &d->loop, d->cfg.dev);
	return 0;
}

void xm_events_tick(struct xm_daemon *d, __u64 now)
{
	struct xm_events *ev = d->events;

	if (!ev)
		return;
	xm_ev_readers_tick(&ev->readers, now);
	if (!ev->readers.open) {
		ev->have_last = false; /* nobody to compare for */
		return;
	}
	if (now >= ev->next_sample_ns)
		sample(d, now, false);
}

void xm_events_note(void *link, enum xm_role_note what)
{
	struct xm_daemon *d = link;
	struct json_object *root, *v, *o;

	if (!d->events || !d->events->have_last)
		return;
	if (what == XM_NOTE_SYNC_DONE) {
		sample(d, xm_now_ns(), true);
		return;
	}
	root = role_status(d);
	v = at(at(root, "replication"), "verify");
	o = line_begin(d, "verify", true);
	add_str(o, "result", json_object_get_boolean(at(v, "finished")) ? "done" : "interrupted");
	json_object_object_add(o, "mark",
			       json_object_new_boolean(json_object_get_boolean(at(v, "mark"))));
	add_u64(o, "regions_differ", get_u64(v, "regions_differ"));
	add_u64(o, "regions_equal", get_u64(v, "regions_equal"));
	add_u64(o, "regions_skipped", get_u64(v, "regions_skipped"));
	add_u64(o, "checked_bytes", get_u64(v, "checked_bytes"));
	add_u64(o, "elapsed_ms", get_u64(v, "elapsed_ms"));
	json_object_object_add(o, "first_differing_offsets",
			       json_object_get(at(v, "first_differing_offsets")));
	json_object_put(root);
	line_send(d, o);
}

char *xm_events_state_now(struct xm_daemon *d, size_t *len)
{
	struct snap s;

	snap_take(d, &s);
	return state_line(d, &s, len);
}

int xm_events_subscribe(struct xm_daemon *d, int fd, __u64 bound)
{
	struct xm_events *ev = d->events;
	__u64 now = xm_now_ns();
	size_t len;
	char *line;
	int err;

	if (xm_ev_readers_full(&ev->readers)) {
		ev->readers.refused++;
		return -EBUSY;
	}
	/* The readers there are hear what changed first, so the state line is where all agree. */
	if (ev->have_last)
		sample(d, now, false);
	else
		baseline(d, now);
	line = state_line(d, &ev->last, &len);
	if (!line)
		return -ENOMEM;
	err = xm_ev_readers_add(&ev->readers, fd, bound ? bound : XM_EV_BUFFER, line, len);
	free(line);
	return err;
}

void xm_events_exit(struct xm_daemon *d)
{
	size_t len = 0;
	char *line;

	if (!d->events)
		return;
	line = d->events->readers.open ? line_text(line_begin(d, "detached", true), &len) : NULL;
	xm_ev_readers_exit(&d->events->readers, line, len);
	free(line);
	free(d->events);
	d->events = NULL;
}

void xm_events_report(const struct xm_daemon *d, struct xm_report *r)
{
	const struct xm_events *ev = d->events;

	if (!ev)
		return;
	xm_report_open(r, "events", ev->readers.open ? "events" : NULL);
	xm_report_u64(r, "readers", "readers", ev->readers.open);
	xm_report_u64(r, "max_readers", NULL, XM_EV_READERS_MAX);
	xm_report_u64(r, "buffer_bytes", NULL, XM_EV_BUFFER);
	xm_report_u64(r, "sample_ms", NULL, SAMPLE_NS / NS_PER_MS);
	xm_report_u64(r, "lines", "lines", ev->seq);
	xm_report_u64(r, "readers_total", NULL, ev->readers.total);
	xm_report_u64(r, "dropped", "dropped behind", ev->readers.dropped);
	xm_report_u64(r, "refused", NULL, ev->readers.refused);
	xm_report_close(r);
}
