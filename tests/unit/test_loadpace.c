/* userspace/sipha-load/pace.c, the call pacer (compiled in here), on a fake
 * clock: 10,000 calls/s held for 10 s places 100,000 calls within 1% both
 * when woken exactly at each call and in 1 ms ticks; call n is due at
 * pace_at(n) and not a microsecond before, for a held rate and ramps up
 * and down; a ramp places the integral of its rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sipha-load/pace.c"

#define SEC 1000000ull

/* Runs a fake loop for DUR_US: woken at the next call's time, or every
 * TICK_US when TICK_US is not 0; returns the calls started. */
static uint64_t run(const struct ld_pace *p, uint64_t dur_us, uint64_t tick_us)
{
	uint64_t t = 0, started = 0;

	while (t < dur_us) {
		uint64_t due = pace_due(p, t);

		assert_true(due >= started);
		started = due;
		t = tick_us ? t + tick_us : pace_at(p, started);
	}
	return started;
}

static void test_10k_for_10s(void **state)
{
	struct ld_pace p = { 10000, 10000, 0 };
	uint64_t n;

	(void)state;
	n = run(&p, 10 * SEC, 0);
	assert_true(n >= 99000 && n <= 101000);
	assert_int_equal(n, 100000); /* exactly, in fact: calls 0..99999 */
	n = run(&p, 10 * SEC, 1000);
	assert_true(n >= 99000 && n <= 101000);
}

static void check_due_at(const struct ld_pace *p, uint64_t upto)
{
	uint64_t prev = 0;

	for (uint64_t n = 0; n < upto; n++) {
		uint64_t at = pace_at(p, n);

		assert_true(at >= prev);
		prev = at;
		assert_true(pace_due(p, at) > n); /* due at its time */
		if (at > 0)
			assert_true(pace_due(p, at - 1) <= n); /* not a microsecond before */
	}
}

static void test_due_at_exact(void **state)
{
	struct ld_pace held = { 10000, 10000, 0 };
	struct ld_pace frac = { 0.5, 0.5, 0 };
	struct ld_pace up = { 100, 1000, 10 * SEC };
	struct ld_pace down = { 1000, 100, 10 * SEC };

	(void)state;
	check_due_at(&held, 50000);
	check_due_at(&frac, 100);
	check_due_at(&up, 20000);
	check_due_at(&down, 20000);
	assert_int_equal(pace_due(&frac, 0), 1);
	assert_int_equal(pace_due(&frac, 2 * SEC - 1), 1);
	assert_int_equal(pace_due(&frac, 2 * SEC), 2);
}

static void test_ramp(void **state)
{
	struct ld_pace up = { 100, 1000, 10 * SEC };
	uint64_t n;

	(void)state;
	/* 100 -> 1000 over 10 s: (100 + 1000) / 2 * 10 = 5,500 calls, then 1,000/s */
	n = run(&up, 10 * SEC, 0);
	assert_true(n >= 5500 && n <= 5502);
	n = run(&up, 20 * SEC, 1000);
	assert_true(n >= 15400 && n <= 15600);
	assert_true(pace_rate(&up, 0) == 100);
	assert_true(pace_rate(&up, 5 * SEC) == 550);
	assert_true(pace_rate(&up, 30 * SEC) == 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_10k_for_10s),
		cmocka_unit_test(test_due_at_exact),
		cmocka_unit_test(test_ramp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
