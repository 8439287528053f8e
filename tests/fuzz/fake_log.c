// SPDX-License-Identifier: GPL-2.0
/* Description: the fuzz targets' log sink (util/log.c links libbpf for its routing). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

/* util/log.c's sink, without its libbpf routing: every message is formatted (so bad arguments
 * show up), and printed only with XM_FUZZ_LOG set. */
void xm_log(enum xm_log_level level, const char *fmt, ...)
{
	static int print = -1;
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (print < 0)
		print = getenv("XM_FUZZ_LOG") != NULL;
	if (print)
		fprintf(stderr, "xdpmirror: %s\n", buf);
}
