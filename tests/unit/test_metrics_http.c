/* The metrics endpoint's request reader (server/metrics_http.c): what is
 * answered to the bytes received so far. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/metrics_http.h"

/* mh_parse() on LEN bytes of BUF laid right before an unmapped page, as
 * bytes from a socket are (not NUL-terminated): a read past them faults. */
static int parse_n(const char *buf, size_t len, bool *head)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t span = (len / (size_t)pg + 2) * (size_t)pg;
	char *map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *end;
	int st;

	assert_true(map != MAP_FAILED);
	end = map + span - (size_t)pg;
	assert_int_equal(mprotect(end, (size_t)pg, PROT_NONE), 0);
	memcpy(end - len, buf, len);
	st = mh_parse(end - len, len, head);
	munmap(map, span);
	return st;
}

static int parse(const char *req)
{
	bool head;

	return parse_n(req, strlen(req), &head);
}

static void test_metrics_served(void **state)
{
	bool head = true;
	const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *hd = "HEAD /metrics HTTP/1.0\r\n\r\n";

	(void)state;
	assert_int_equal(parse_n(get, strlen(get), &head), 200);
	assert_false(head);
	assert_int_equal(parse_n(hd, strlen(hd), &head), 200);
	assert_true(head);
	/* LF line ends, a query string, empty lines before the request */
	assert_int_equal(parse("GET /metrics?name=x HTTP/1.0\n\n"), 200);
	assert_int_equal(parse("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), 200);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nAccept: text/plain\r\nX: y\r\n\r\n"), 200);
}

static void test_incomplete_waits(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.1"), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\n"), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), 0);
	assert_int_equal(parse("\r\n\r\n\r\n"), 0);
}

static void test_other_paths_and_methods(void **state)
{
	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(parse("GET /metric HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(parse("GET /metrics/ HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(parse("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(parse("POST /other HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 405);
	assert_int_equal(parse("DELETE /metrics HTTP/1.1\r\n\r\n"), 405);
	/* methods are case-sensitive */
	assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n"), 405);
}

static void test_malformed(void **state)
{
	static const char nul[] = "GET /met\0rics HTTP/1.1\r\n\r\n";
	bool head;

	(void)state;
	assert_int_equal(parse("GET /metrics\r\n\r\n"), 400); /* HTTP/0.9 */
	assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n"), 400);
	assert_int_equal(parse("GET /metrics HTTP/1.1 \r\n\r\n"), 400);
	assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse("GET metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse(" GET /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse("G(T /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse("GET /met\trics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(parse("garbage\r\n\r\n"), 400);
	assert_int_equal(parse_n(nul, sizeof(nul) - 1, &head), 400);
}

static void test_size_bounded(void **state)
{
	static char big[2 * MH_MAX_REQUEST];
	const char *line = "GET /metrics HTTP/1.1\r\n";
	bool head;

	(void)state;
	memset(big, 'a', sizeof(big));
	/* no end of head within MH_MAX_REQUEST bytes: too large */
	assert_int_equal(parse_n(big, MH_MAX_REQUEST - 1, &head), 0);
	assert_int_equal(parse_n(big, MH_MAX_REQUEST, &head), 431);
	/* a head that ends just within the limit, and one just past it */
	memcpy(big, line, strlen(line));
	memcpy(big + MH_MAX_REQUEST - 6, "\r\nX\r\n\r\n", 7);
	memcpy(big + strlen(line), "X-Pad: ", 7);
	assert_int_equal(parse_n(big, MH_MAX_REQUEST + 1, &head), 431);
	memcpy(big + MH_MAX_REQUEST - 7, "\r\nX\r\n\r\n", 7);
	assert_int_equal(parse_n(big, MH_MAX_REQUEST, &head), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_served),
		cmocka_unit_test(test_incomplete_waits),
		cmocka_unit_test(test_other_paths_and_methods),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_size_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
