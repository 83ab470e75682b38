/* userspace/sipha-load/dist.c and search.c (compiled in here): the hold
 * time distributions (parsing, ranges, means over many draws with a fixed
 * seed, the logarithm they use) and --max-rate's search played against a
 * target that passes every rate up to a known capacity: it ends within 5%
 * under the capacity in a bounded number of steps, stops at --rate-max,
 * gives up when even -r / 16 fails; and a step's verdict (calls placed,
 * failures, set-up p99). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sipha-load/dist.c"
#include "sipha-load/search.c"

static void test_ln(void **state)
{
	static const struct {
		double x, ln;
	} v[] = {
		{ 1, 0 },
		{ 2, 0.69314718055994531 },
		{ 0.5, -0.69314718055994531 },
		{ 2.718281828459045, 1 },
		{ 10, 2.302585092994046 },
		{ 1e-9, -20.72326583694641 },
		{ 123456.789, 11.723646487185881 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		double d = ld_ln(v[i].x) - v[i].ln;

		assert_true(d < 1e-8 && d > -1e-8);
	}
}

static void test_parse(void **state)
{
	struct ld_dist d;

	(void)state;
	assert_int_equal(dist_parse("exp:200", 86400000, &d), 0);
	assert_int_equal(d.kind, LD_EXP);
	assert_int_equal(d.a, 200);
	assert_int_equal(dist_parse("uniform:100-300", 86400000, &d), 0);
	assert_int_equal(d.kind, LD_UNIFORM);
	assert_int_equal(d.a, 100);
	assert_int_equal(d.b, 300);
	assert_int_equal(dist_parse("fixed:0", 86400000, &d), 0);
	assert_int_equal(d.kind, LD_FIXED);
	assert_int_equal(dist_max(&d), 0);
	assert_int_not_equal(dist_parse("exp:0", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("exp:", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("exp:-5", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("exp:5x", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("exp:86400000", 86400000, &d), 0); /* its cap too far */
	assert_int_not_equal(dist_parse("uniform:300-100", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("uniform:100", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("uniform:1-2-3", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("normal:5", 86400000, &d), 0);
	assert_int_not_equal(dist_parse("fixed:86400001", 86400000, &d), 0);
}

/* N draws: min, max and mean. */
static void draws(const struct ld_dist *d, unsigned n, uint64_t *min, uint64_t *max, double *mean)
{
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	double sum = 0;

	*min = UINT64_MAX;
	*max = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = dist_draw(d, &rng);

		if (v < *min)
			*min = v;
		if (v > *max)
			*max = v;
		sum += (double)v;
	}
	*mean = sum / n;
}

static void test_draws(void **state)
{
	struct ld_dist u = { LD_UNIFORM, 100, 300 }, e = { LD_EXP, 200, 0 }, f = { LD_FIXED, 7, 0 };
	uint64_t min, max;
	double mean;

	(void)state;
	draws(&u, 100000, &min, &max, &mean);
	assert_int_equal(min, 100); /* both ends are drawn */
	assert_int_equal(max, 300);
	assert_true(mean > 199 && mean < 201);
	assert_true(dist_mean(&u) == 200);
	draws(&e, 200000, &min, &max, &mean);
	assert_true(mean > 197 && mean < 203); /* sd of the mean: 200 / sqrt(200000) */
	assert_true(max <= 200 * LD_EXP_CAP);
	assert_true(max > 2000); /* a tail: P(> 10 means) = e^-10, 9 expected */
	assert_true(min < 5);
	draws(&f, 1000, &min, &max, &mean);
	assert_int_equal(min, 7);
	assert_int_equal(max, 7);
}

/* Plays the search against a target that sustains every rate up to CAP. */
static double play(double r0, double rate_max, double cap, unsigned *steps)
{
	struct ld_search s;

	search_init(&s, r0, rate_max);
	while (!s.done) {
		assert_true(s.rate > 0 && s.rate <= rate_max);
		search_next(&s, s.rate <= cap);
	}
	*steps = s.steps;
	return s.lo;
}

static void test_search(void **state)
{
	static const double caps[] = { 37, 100, 999, 1000, 1001, 4321.5, 77777 };
	unsigned steps;
	double r;

	(void)state;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		r = play(100, 1e6, caps[i], &steps);
		assert_true(r <= caps[i]);
		assert_true(r >= caps[i] * (1 - SEARCH_PRECISION) - 1e-9);
		assert_true(steps <= 20);
	}
	/* everything passes: up to --rate-max, and that is the answer */
	r = play(100, 5000, 1e9, &steps);
	assert_true(r == 5000);
	assert_int_equal(steps, 7); /* 100 200 400 800 1600 3200 5000 */
	/* nothing passes: halves down to -r / 16, then 0 */
	r = play(100, 1e6, 1, &steps);
	assert_true(r == 0);
	assert_true(steps <= 6);
}

static void test_step_pass(void **state)
{
	struct ld_step st = { .due = 1000, .started = 1000, .judged = 800, .set_up = 800 };

	(void)state;
	assert_true(step_failed_pct(&st) == 0);
	assert_true(step_pass(&st, 1, 0));
	st.set_up = 792; /* 1% without a 2xx */
	assert_true(step_failed_pct(&st) == 1);
	assert_true(step_pass(&st, 1, 0));
	st.failed_after = 1; /* and one more failed after its 2xx */
	assert_false(step_pass(&st, 1, 0));
	st.set_up = 800;
	st.failed_after = 0;
	st.p99_us = 5000;
	assert_true(step_pass(&st, 1, 5000));
	assert_false(step_pass(&st, 1, 4999));
	st.started = 949; /* fewer placed than 95% of those due */
	assert_false(step_pass(&st, 1, 0));
	st.started = 950;
	assert_true(step_pass(&st, 1, 0));
	st.judged = st.set_up = 0; /* nothing to judge: not a pass */
	assert_true(step_failed_pct(&st) == 100);
	assert_false(step_pass(&st, 1, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ln),	  cmocka_unit_test(test_parse),
		cmocka_unit_test(test_draws),	  cmocka_unit_test(test_search),
		cmocka_unit_test(test_step_pass),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
