/* SPDX-License-Identifier: GPL-2.0 */
/* A small streaming JSON writer: objects, arrays, strings escaped, commas placed for the caller. */
#ifndef XM_JSON_H
#define XM_JSON_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

struct xm_json {
	FILE *out;
	int depth;
	bool need_comma[16];
};

void xm_json_init(struct xm_json *j, FILE *out);
/* key may be NULL inside arrays and at the top level. */
void xm_json_open(struct xm_json *j, const char *key, char bracket);
void xm_json_close(struct xm_json *j, char bracket);
void xm_json_str(struct xm_json *j, const char *key, const char *val);
void xm_json_u64(struct xm_json *j, const char *key, __u64 val);
void xm_json_i64(struct xm_json *j, const char *key, long long val);
void xm_json_double(struct xm_json *j, const char *key, double val);
void xm_json_bool(struct xm_json *j, const char *key, bool val);

#endif
