// SPDX-License-Identifier: GPL-2.0
/* Description: control requests (daemon/ctl.c): the verb table and its flags, and one
 * connection's I/O on a real socketpair: a request read in pieces, ended by its newline or by the
 * client's shutdown, too long, or never sent; an answer larger than the socket takes, written
 * without ever blocking as the client reads it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/ctl.h"

struct pair {
	int daemon, client; /* the daemon's end is nonblocking, as accept4 makes it */
	struct xm_ctl_conn conn;
};

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];

	if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		free(p);
		return -1;
	}
	p->daemon = sv[0];
	p->client = sv[1];
	fcntl(p->daemon, F_SETFL, O_NONBLOCK);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	xm_ctl_conn_free(&p->conn);
	close(p->daemon);
	if (p->client >= 0)
		close(p->client);
	free(p);
	return 0;
}

static void client_says(struct pair *p, const char *s)
{
	assert_int_equal(write(p->client, s, strlen(s)), (ssize_t)strlen(s));
}

static void test_parse_verbs_and_flags(void **state)
{
	struct xm_ctl_req req;

	assert_null(xm_ctl_parse("verify mark", &req));
	assert_string_equal(req.verb, "verify");
	assert_true(req.mark);
	assert_int_equal(req.role, XM_ROLE_PRIMARY);
	assert_null(xm_ctl_parse("status\n", &req));
	assert_string_equal(req.verb, "status");
	assert_false(req.text);
	assert_string_equal(xm_ctl_parse("", &req), "error: empty request");
	assert_string_equal(xm_ctl_parse("frobnicate", &req), "error: unknown request");
	assert_string_equal(xm_ctl_parse("status force", &req), "error: 'status' takes no 'force'");
	assert_string_equal(xm_ctl_parse("a b c d e", &req), "error: too many words");
}

static void test_request_in_pieces(void **state)
{
	struct pair *p = *state;

	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), -EAGAIN);
	client_says(p, "sta");
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), -EAGAIN);
	client_says(p, "tus te");
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), -EAGAIN);
	client_says(p, "xt\ntrailing");
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), 0);
	assert_string_equal(p->conn.req, "status text");
}

static void test_request_ended_by_shutdown(void **state)
{
	struct pair *p = *state;

	client_says(p, "status");
	shutdown(p->client, SHUT_WR);
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), 0);
	assert_string_equal(p->conn.req, "status");
}

static void test_client_gone_without_request(void **state)
{
	struct pair *p = *state;

	close(p->client);
	p->client = -1;
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), -ECONNRESET);
}

static void test_request_too_long(void **state)
{
	struct pair *p = *state;
	char line[XM_CTL_LINE_MAX + 8];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	client_says(p, line);
	assert_int_equal(xm_ctl_read_request(&p->conn, p->daemon), -EMSGSIZE);
}

static void test_short_answer_at_once(void **state)
{
	struct pair *p = *state;
	char buf[64] = "";

	assert_int_equal(xm_ctl_set_answer(&p->conn, "ok: promoting"), 0);
	assert_int_equal(xm_ctl_write_answer(&p->conn, p->daemon), 0);
	assert_int_equal(read(p->client, buf, sizeof(buf) - 1), 14);
	assert_string_equal(buf, "ok: promoting\n");
}

/* A client that does not read: the daemon's write returns at once with -EAGAIN, however large the
 * answer, and finishes it as the client reads. */
static void test_large_answer_never_blocks(void **state)
{
	struct pair *p = *state;
	size_t len = 1 << 20, got = 0, i;
	char *answer = malloc(len), *back = malloc(len);
	int sndbuf = 4096, rounds = 0, err;
	ssize_t n;

	assert_non_null(answer);
	assert_non_null(back);
	for (i = 0; i < len; i++)
		answer[i] = (char)('a' + i % 26);
	setsockopt(p->daemon, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	xm_ctl_take_answer(&p->conn, answer, len);
	assert_int_equal(xm_ctl_write_answer(&p->conn, p->daemon), -EAGAIN);
	assert_true(p->conn.answer_off > 0 && p->conn.answer_off < len);
	/* Nothing read: still nothing more to write, and still no wait. */
	assert_int_equal(xm_ctl_write_answer(&p->conn, p->daemon), -EAGAIN);
	do {
		n = read(p->client, back + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
		err = xm_ctl_write_answer(&p->conn, p->daemon);
		rounds++;
	} while (err == -EAGAIN);
	assert_int_equal(err, 0);
	while (got < len) {
		n = read(p->client, back + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_true(rounds > 1);
	assert_memory_equal(back, answer, len);
	free(back);
}

static void test_answer_to_client_gone(void **state)
{
	struct pair *p = *state;

	close(p->client);
	p->client = -1;
	assert_int_equal(xm_ctl_set_answer(&p->conn, "ok"), 0);
	assert_int_equal(xm_ctl_write_answer(&p->conn, p->daemon), -EPIPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_verbs_and_flags),
		cmocka_unit_test_setup_teardown(test_request_in_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_ended_by_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_without_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_answer_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_answer_never_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_to_client_gone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
