// SPDX-License-Identifier: GPL-2.0
/* GET /metrics with libmicrohttpd: its own thread, a few connections, each with a deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics/collect.h"
#include "metrics/http.h"
#include "util/log.h"
#include "util/runstate.h"

/* Scrapers are a Prometheus or two and a person with curl: a few connections are plenty, and one
 * that sends nothing is dropped soon. */
#define HTTP_CONNECTIONS_MAX 8
#define HTTP_IDLE_TIMEOUT_S  10

/* libmicrohttpd 0.9.71 changed the handlers' return type from int to enum MHD_Result. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

struct xm_metrics_http {
	struct MHD_Daemon *mhd;
	char dev[16];
};

static mhd_result reply(struct MHD_Connection *conn, unsigned int code, const char *type,
			char *body, size_t len)
{
	struct MHD_Response *resp;
	mhd_result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static mhd_result reply_text(struct MHD_Connection *conn, unsigned int code, const char *fmt, ...)
{
	char *body = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return reply(conn, code, "text/plain; charset=utf-8", body, (size_t)n);
}

/* The metrics of h->dev, fetched as `xdpmirror metrics` fetches them: nothing of the loop's. */
static mhd_result serve_metrics(struct xm_metrics_http *h, struct MHD_Connection *conn)
{
	struct xm_metrics_sample s;
	char why[256], *body = NULL;
	size_t len = 0;
	FILE *out;
	int err;

	err = xm_metrics_collect(h->dev, xm_ctl_request, &s, why, sizeof(why));
	if (err)
		/* A scrape that gets no metrics fails: Prometheus's own `up` says so. */
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s: %s\n", h->dev,
				  err == -EPROTO ? why : strerror(-err));
	out = open_memstream(&body, &len);
	if (!out) {
		xm_metrics_sample_free(&s);
		return MHD_NO;
	}
	err = xm_metrics_write(out, &s.m, 1);
	xm_metrics_sample_free(&s);
	if (fclose(out) || err) {
		free(body);
		return MHD_NO;
	}
	return reply(conn, MHD_HTTP_OK, XM_METRICS_CONTENT_TYPE, body, len);
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url,
			     const char *method, const char *version, const char *upload_data,
			     size_t *upload_data_size, void **con_cls)
{
	if (strcmp(url, "/metrics"))
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: only /metrics is here\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "method not allowed: /metrics takes GET\n");
	return serve_metrics(cls, conn);
}

/* libmicrohttpd's complaints go where the daemon's do. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct xm_metrics_http *h = cls;
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	pr_info("%s: metrics server: %s", h->dev, line);
}

/* A listening TCP socket on addr:port, bound the way the NBD export binds (SO_REUSEADDR). */
static int listen_tcp(const char *addr, __u16 port)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	bool v6 = inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1;
	int fd, one = 1, err;

	if (!v6 && inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -EINVAL;
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (v6 ? bind(fd, (struct sockaddr *)&sin6, sizeof(sin6))
		: bind(fd, (struct sockaddr *)&sin, sizeof(sin))) ||
	    listen(fd, HTTP_CONNECTIONS_MAX)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int xm_metrics_http_start(const struct xm_config *cfg, struct xm_metrics_http **out)
{
	/* An IPv6 address in brackets, as it was given. */
	const char *lb = strchr(cfg->metrics_addr, ':') ? "[" : "", *rb = *lb ? "]" : "";
	struct xm_metrics_http *h;
	sigset_t all, old;
	int fd;

	*out = NULL;
	if (!cfg->metrics_port)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	snprintf(h->dev, sizeof(h->dev), "%s", cfg->dev);
	fd = listen_tcp(cfg->metrics_addr, cfg->metrics_port);
	if (fd < 0) {
		pr_warn("attach '%s': --metrics-listen %s%s%s:%u: %s", cfg->dev, lb,
			cfg->metrics_addr, rb, cfg->metrics_port, strerror(-fd));
		free(h);
		return fd;
	}
	/* The thread inherits this mask: SIGTERM and friends must reach the loop's signalfd, never
	 * this thread, whose default action would end the daemon without its teardown. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The logger first: libmicrohttpd complains on stderr of one set later.  MHD_USE_AUTO:
	 * epoll or poll, never select(), which cannot take a descriptor above 1023. */
	h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->mhd) {
		pr_warn("attach '%s': --metrics-listen %s%s%s:%u: libmicrohttpd could not start "
			"its "
			"server",
			cfg->dev, lb, cfg->metrics_addr, rb, cfg->metrics_port);
		close(fd);
		free(h);
		return -EIO;
	}
	pr_info("%s: metrics at http://%s%s%s:%u/metrics", cfg->dev, lb, cfg->metrics_addr, rb,
		cfg->metrics_port);
	*out = h;
	return 0;
}

void xm_metrics_http_stop(struct xm_metrics_http **h)
{
	if (!*h)
		return;
	MHD_stop_daemon((*h)->mhd); /* joins the thread, closes the listening socket */
	free(*h);
	*h = NULL;
}
