/* SPDX-License-Identifier: GPL-2.0 */
/* One sink for messages: ours, libbpf's and libxdp's, each line on stderr prefixed "xdpmirror: ".
 */
#ifndef XM_LOG_H
#define XM_LOG_H

enum xm_log_level {
	XM_LOG_WARN = 0,
	XM_LOG_INFO = 1,
	XM_LOG_DEBUG = 2,
};

void xm_log_set_level(enum xm_log_level level);
enum xm_log_level xm_log_get_level(void);
/* Routes libbpf and libxdp output through xm_log one level lower than they ask for. */
void xm_log_route_libs(void);
void xm_log(enum xm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_warn(...)  xm_log(XM_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  xm_log(XM_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) xm_log(XM_LOG_DEBUG, __VA_ARGS__)

#endif
