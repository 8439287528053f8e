// SPDX-License-Identifier: GPL-2.0
/* Status reports: one description, rendered as JSON with json-c or as aligned text. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <json-c/json.h>

#include "util/report.h"

#define LABEL_WIDTH 24 /* text: labels and their indentation, so values line up */

void xm_report_begin(struct xm_report *r, enum xm_report_form form, FILE *out)
{
	memset(r, 0, sizeof(*r));
	r->form = form;
	r->out = out;
	r->shown[0] = true;
	if (form == XM_REPORT_JSON)
		r->node[0] = json_object_new_object();
}

int xm_report_end(struct xm_report *r)
{
	int err = 0;

	if (r->form == XM_REPORT_JSON) {
		const char *s = json_object_to_json_string_ext(
			r->node[0], JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

		if (!s || fprintf(r->out, "%s\n", s) < 0)
			err = -EIO;
		json_object_put(r->node[0]);
		r->node[0] = NULL;
	}
	return err;
}

struct json_object *xm_report_take_json(struct xm_report *r)
{
	struct json_object *root = r->node[0];

	while (r->depth)
		xm_report_close(r);
	r->node[0] = NULL;
	return root;
}

/* JSON: puts val into the open object (under key; none: a text-only field) or list; takes the
 * reference. */
static void json_put(struct xm_report *r, const char *key, struct json_object *val)
{
	struct json_object *at = r->node[r->depth];

	if (!at) {
		json_object_put(val);
		return;
	}
	if (json_object_is_type(at, json_type_array))
		json_object_array_add(at, val);
	else if (key)
		json_object_object_add(at, key, val);
	else
		json_object_put(val); /* a field for people only */
}

/* Text: starts the line of a labelled field at the current depth. */
static bool text_label(struct xm_report *r, const char *label)
{
	if (!r->shown[r->depth])
		return false;
	if (r->list[r->depth]) { /* list items have no labels of their own */
		if (!r->first[r->depth])
			fputs(", ", r->out);
		r->first[r->depth] = false;
		return true;
	}
	if (!label)
		return false;
	fprintf(r->out, "%*s%-*s ", 2 * r->depth, "", LABEL_WIDTH - 2 * r->depth, label);
	return true;
}

static void push(struct xm_report *r, const char *key, const char *label, bool list)
{
	bool shown = r->shown[r->depth] && label && !r->list[r->depth];

	if (r->form == XM_REPORT_TEXT && shown) {
		if (list)
			fprintf(r->out, "%*s%-*s ", 2 * r->depth, "", LABEL_WIDTH - 2 * r->depth,
				label);
		else
			fprintf(r->out, "%*s%s\n", 2 * r->depth, "", label);
	}
	if (r->depth + 1 >= XM_REPORT_DEPTH)
		return; /* deeper than any report we write: the caller's mistake, kept harmless */
	if (r->form == XM_REPORT_JSON) {
		struct json_object *o = list ? json_object_new_array() : json_object_new_object();

		/* Our reference first: json_put drops its own if o has no place in the parent. */
		r->node[r->depth + 1] = json_object_get(o);
		json_put(r, key, o);
	}
	r->depth++;
	r->shown[r->depth] = shown;
	r->list[r->depth] = list;
	r->first[r->depth] = true;
}

void xm_report_open(struct xm_report *r, const char *key, const char *label)
{
	push(r, key, label, false);
}

void xm_report_list(struct xm_report *r, const char *key, const char *label)
{
	push(r, key, label, true);
}

void xm_report_close(struct xm_report *r)
{
	if (!r->depth)
		return;
	if (r->form == XM_REPORT_TEXT && r->list[r->depth] && r->shown[r->depth])
		fputs(r->first[r->depth] ? "-\n" : "\n", r->out);
	if (r->form == XM_REPORT_JSON) {
		json_object_put(r->node[r->depth]);
		r->node[r->depth] = NULL;
	}
	r->depth--;
}

void xm_report_str(struct xm_report *r, const char *key, const char *label, const char *val)
{
	if (r->form == XM_REPORT_JSON) {
		json_put(r, key, json_object_new_string(val));
		return;
	}
	/* An empty text says nothing to people. */
	if (val[0] && text_label(r, label))
		fprintf(r->out, r->list[r->depth] ? "%s" : "%s\n", val);
}

void xm_report_u64(struct xm_report *r, const char *key, const char *label, __u64 val)
{
	if (r->form == XM_REPORT_JSON) {
		json_put(r, key, json_object_new_uint64(val));
		return;
	}
	if (text_label(r, label))
		fprintf(r->out, r->list[r->depth] ? "%llu" : "%llu\n", (unsigned long long)val);
}

void xm_report_i64(struct xm_report *r, const char *key, const char *label, long long val)
{
	if (r->form == XM_REPORT_JSON) {
		json_put(r, key, json_object_new_int64(val));
		return;
	}
	if (text_label(r, label))
		fprintf(r->out, r->list[r->depth] ? "%lld" : "%lld\n", val);
}

void xm_report_dbl(struct xm_report *r, const char *key, const char *label, double val)
{
	char buf[64];

	if (r->form == XM_REPORT_JSON) {
		/* JSON has no NaN or infinity; three decimals, as the v1 status always had. */
		if (!isfinite(val)) {
			json_put(r, key, NULL);
			return;
		}
		snprintf(buf, sizeof(buf), "%.3f", val);
		json_put(r, key, json_object_new_double_s(val, buf));
		return;
	}
	if (text_label(r, label))
		fprintf(r->out, r->list[r->depth] ? "%.1f" : "%.1f\n", val);
}

void xm_report_bool(struct xm_report *r, const char *key, const char *label, bool val)
{
	if (r->form == XM_REPORT_JSON) {
		json_put(r, key, json_object_new_boolean(val));
		return;
	}
	if (text_label(r, label))
		fprintf(r->out, r->list[r->depth] ? "%s" : "%s\n", val ? "yes" : "no");
}
