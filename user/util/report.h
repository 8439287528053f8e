/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A status report, written once and rendered two ways: as JSON (`status --json`, built with
 * json-c) or as text for people (`status`).  Every field has a JSON key and, when people should
 * see it, a text label; a field or object without a label is left out of the text, a field
 * without a key (outside a list) out of the JSON.
 */
#ifndef XM_REPORT_H
#define XM_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

enum xm_report_form { XM_REPORT_JSON, XM_REPORT_TEXT };

#define XM_REPORT_DEPTH 16

struct json_object;

struct xm_report {
	enum xm_report_form form;
	FILE *out;
	int depth;
	struct json_object *node[XM_REPORT_DEPTH]; /* JSON: the open objects and arrays */
	bool list[XM_REPORT_DEPTH];		   /* text: an open list, on one line */
	bool shown[XM_REPORT_DEPTH];		   /* text: what is open has a label */
	bool first[XM_REPORT_DEPTH];		   /* text: no list item printed yet */
};

void xm_report_begin(struct xm_report *r, enum xm_report_form form, FILE *out);
/* Writes the report (JSON: one line); returns 0 or -EIO. */
int xm_report_end(struct xm_report *r);
/* A JSON report (begun with out NULL) ends without being written: its tree, which the caller now
 * owns (json_object_put), for a reader of a few fields (the events stream). */
struct json_object *xm_report_take_json(struct xm_report *r);

/* An object (key inside an object; key NULL inside a list).  label NULL: not in the text. */
void xm_report_open(struct xm_report *r, const char *key, const char *label);
void xm_report_close(struct xm_report *r);
/* A list of plain values: one text line, "label  v1, v2, ...". */
void xm_report_list(struct xm_report *r, const char *key, const char *label);

void xm_report_str(struct xm_report *r, const char *key, const char *label, const char *val);
void xm_report_u64(struct xm_report *r, const char *key, const char *label, __u64 val);
void xm_report_i64(struct xm_report *r, const char *key, const char *label, long long val);
/* JSON: three decimals (null when not finite); text: one decimal. */
void xm_report_dbl(struct xm_report *r, const char *key, const char *label, double val);
void xm_report_bool(struct xm_report *r, const char *key, const char *label, bool val);

#endif
