// SPDX-License-Identifier: GPL-2.0
/* One sink for messages: ours, libbpf's and libxdp's, each line on stderr prefixed "xdpmirror: ".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "util/log.h"

static enum xm_log_level log_level = XM_LOG_INFO;

void xm_log_set_level(enum xm_log_level level)
{
	log_level = level;
}

enum xm_log_level xm_log_get_level(void)
{
	return log_level;
}

static void vlog(enum xm_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* Library messages end in '\n', ours do not: print exactly one. */
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	fprintf(stderr, "xdpmirror: %s\n", line);
}

void xm_log(enum xm_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

/* Libraries are chatty about things we handle ourselves (fallbacks, probes): one level lower. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	vlog(level == LIBBPF_WARN ? XM_LOG_INFO : XM_LOG_DEBUG, fmt, ap);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	vlog(level == LIBXDP_WARN ? XM_LOG_INFO : XM_LOG_DEBUG, fmt, ap);
	return 0;
}

void xm_log_route_libs(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}
