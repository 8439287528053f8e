// SPDX-License-Identifier: GPL-2.0
/* A small streaming JSON writer: objects, arrays, strings escaped, commas placed for the caller. */
#include <math.h>

#include "util/json.h"

void xm_json_init(struct xm_json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_key(struct xm_json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->out);
	j->need_comma[j->depth] = true;
	if (key) {
		put_string(j->out, key);
		fputc(':', j->out);
	}
}

void xm_json_open(struct xm_json *j, const char *key, char bracket)
{
	put_key(j, key);
	fputc(bracket, j->out);
	if (j->depth < 15)
		j->depth++;
	j->need_comma[j->depth] = false;
}

void xm_json_close(struct xm_json *j, char bracket)
{
	fputc(bracket, j->out);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0) {
		fputc('\n', j->out);
		j->need_comma[0] = false; /* the next top-level value is a new document */
	}
}

void xm_json_str(struct xm_json *j, const char *key, const char *val)
{
	put_key(j, key);
	put_string(j->out, val);
}

void xm_json_u64(struct xm_json *j, const char *key, __u64 val)
{
	put_key(j, key);
	fprintf(j->out, "%llu", (unsigned long long)val);
}

void xm_json_i64(struct xm_json *j, const char *key, long long val)
{
	put_key(j, key);
	fprintf(j->out, "%lld", val);
}

void xm_json_double(struct xm_json *j, const char *key, double val)
{
	put_key(j, key);
	/* JSON has no NaN or infinity. */
	if (isfinite(val))
		fprintf(j->out, "%.3f", val);
	else
		fputs("null", j->out);
}

void xm_json_bool(struct xm_json *j, const char *key, bool val)
{
	put_key(j, key);
	fputs(val ? "true" : "false", j->out);
}
