/* core/log.c: the rate-limited warning every limit shares (log_warn_rl):
 * the first at once, then at most one a second, saying how many it held
 * back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

/* Runs the rate-limited warnings of one flood with stderr in a file, and
 * returns what was written (static buffer). */
static const char *captured(void (*fn)(struct log_rl *rl), struct log_rl *rl)
{
	static char out[4096];
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fileno(f), 2), 2);
	fn(rl);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static unsigned lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void flood(struct log_rl *rl)
{
	/* 0 ms: said; 1..999 ms: held (999); 1000 ms: said, with the count;
	 * 1500 ms: held; 2000 ms: said, with 1. */
	assert_true(log_warn_rl(rl, 0, "limit %d", 1));
	for (uint64_t t = 1; t < 1000; t++)
		assert_false(log_warn_rl(rl, t, "limit %d", 2));
	assert_int_equal(rl->held, 999);
	assert_true(log_warn_rl(rl, 1000, "limit %d", 3));
	assert_int_equal(rl->held, 0);
	assert_false(log_warn_rl(rl, 1500, "limit %d", 4));
	assert_true(log_warn_rl(rl, 2000, "limit %d", 5));
}

static void test_once_a_second(void **state)
{
	struct log_rl rl = { 0 };
	const char *out;

	(void)state;
	out = captured(flood, &rl);
	assert_non_null(strstr(out, " W limit 1\n"));
	assert_null(strstr(out, "limit 2"));
	assert_non_null(strstr(out, " W limit 3 (999 more since the last warning)\n"));
	assert_null(strstr(out, "limit 4"));
	assert_non_null(strstr(out, " W limit 5 (1 more since the last warning)\n"));
	assert_int_equal(lines(out), 3);
}

/* Two limits do not share their second. */
static void test_per_limit(void **state)
{
	struct log_rl a = { 0 }, b = { 0 };
	enum log_level lvl = log_get_level();

	(void)state;
	log_set_level(LOG_ERR); /* nothing printed; the counting goes on */
	assert_true(log_warn_rl(&a, 5000, "a"));
	assert_true(log_warn_rl(&b, 5001, "b"));
	assert_false(log_warn_rl(&a, 5002, "a"));
	assert_false(log_warn_rl(&b, 5003, "b"));
	assert_int_equal(a.held, 1);
	assert_int_equal(b.held, 1);
	assert_true(log_warn_rl(&a, 6000, "a"));
	assert_false(log_warn_rl(&b, 6000, "b"));
	assert_true(log_warn_rl(&b, 6001, "b"));
	log_set_level(lvl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once_a_second),
		cmocka_unit_test(test_per_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
