/* core/hist.c, the log-linear latency histogram of sipha-load: the buckets
 * tile the value range with no gap and no overlap, each no wider than 1/128
 * of its values, and percentiles agree with a sorted reference to within
 * one bucket on uniform, log-uniform and two-peaked distributions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hist.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_bucket_edges(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 2 * HIST_SUB; v++) {
		assert_int_equal(hist_index(v), v);
		assert_int_equal(hist_bucket_width(hist_index(v)), 1);
	}
	for (unsigned i = 0; i + 1 < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), w = hist_bucket_width(i);

		assert_int_equal(hist_index(lo), i);
		assert_int_equal(hist_index(lo + w - 1), i);
		assert_int_equal(hist_bucket_low(i + 1), lo + w); /* no gap, no overlap */
		if (lo >= 2 * HIST_SUB)
			assert_true(w * HIST_SUB <= lo); /* relative width <= 1/128 */
	}
	assert_int_equal(hist_index(HIST_MAX), HIST_BUCKETS - 1);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	assert_int_equal(hist_bucket_low(HIST_BUCKETS - 1) + hist_bucket_width(HIST_BUCKETS - 1) -
				 1,
			 HIST_MAX);
	/* a few hand-checked edges */
	assert_int_equal(hist_index(256), 256);
	assert_int_equal(hist_index(257), 256);
	assert_int_equal(hist_index(258), 257);
	assert_int_equal(hist_index(511), 383);
	assert_int_equal(hist_index(512), 384);
}

/* Percentiles of V[0..N) from the histogram against the sorted values: the
 * histogram's answer is the top of the bucket holding the reference value,
 * so it is never below it and above it by less than one bucket. */
static void check_against_sorted(uint64_t *v, size_t n)
{
	static const double ps[] = { 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100 };
	struct hist *h = malloc(sizeof(*h));
	uint64_t sum = 0;

	assert_non_null(h);
	hist_reset(h);
	for (size_t i = 0; i < n; i++) {
		hist_add(h, v[i]);
		sum += v[i];
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	assert_int_equal(h->count, n);
	assert_int_equal(h->min, v[0]);
	assert_int_equal(h->max, v[n - 1]);
	assert_true(hist_mean(h) > (double)sum / n - 1e-6 && hist_mean(h) < (double)sum / n + 1e-6);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		double r = ps[k] / 100.0 * (double)n;
		size_t rank = (size_t)r;
		uint64_t ref, got;

		if ((double)rank < r)
			rank++;
		if (rank < 1)
			rank = 1;
		ref = v[rank - 1];
		got = hist_percentile(h, ps[k]);
		assert_true(got >= ref);
		assert_true(got <= ref + hist_bucket_width(hist_index(ref)) - 1);
		assert_int_equal(hist_index(got), hist_index(ref));
	}
	assert_int_equal(hist_percentile(h, 100), v[n - 1]);
	free(h);
}

#define N 200000

static void test_uniform(void **state)
{
	uint64_t *v = malloc(N * sizeof(*v));

	(void)state;
	for (size_t i = 0; i < N; i++)
		v[i] = 1 + rnd() % 100000;
	check_against_sorted(v, N);
	free(v);
}

static void test_log_uniform(void **state)
{
	uint64_t *v = malloc(N * sizeof(*v));

	(void)state;
	for (size_t i = 0; i < N; i++) {
		unsigned bits = 1 + (unsigned)(rnd() % 34);

		v[i] = rnd() & ((UINT64_C(1) << bits) - 1);
	}
	check_against_sorted(v, N);
	free(v);
}

/* 99 % fast answers near 100 µs and 1 % retransmitted ones near 500 ms:
 * p99 must still be a fast one and p99.9 a slow one. */
static void test_two_peaks(void **state)
{
	uint64_t *v = malloc(N * sizeof(*v));
	struct hist *h = malloc(sizeof(*h));

	(void)state;
	hist_reset(h);
	for (size_t i = 0; i < N; i++) {
		v[i] = i % 100 == 0 ? 500000 + rnd() % 1000 : 90 + rnd() % 20;
		hist_add(h, v[i]);
	}
	assert_true(hist_percentile(h, 99) < 110);
	assert_true(hist_percentile(h, 99.9) >= 500000);
	check_against_sorted(v, N);
	free(h);
	free(v);
}

static void test_exact_small(void **state)
{
	struct hist h;

	(void)state;
	hist_reset(&h);
	assert_int_equal(hist_percentile(&h, 50), 0); /* empty */
	for (uint64_t i = 1; i <= 100; i++)
		hist_add(&h, i);
	assert_int_equal(hist_percentile(&h, 50), 50);
	assert_int_equal(hist_percentile(&h, 99), 99);
	assert_int_equal(hist_percentile(&h, 99.9), 100);
	assert_int_equal(hist_percentile(&h, 1), 1);
	assert_int_equal(hist_percentile(&h, 0.001), 1);
}

static void test_merge_and_write(void **state)
{
	struct hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char *text = NULL;
	size_t len = 0, total = 0;
	FILE *f;
	char line[128];

	(void)state;
	hist_reset(a);
	hist_reset(b);
	hist_add(a, 10);
	hist_add(a, 1000);
	hist_add(b, 3);
	hist_add(b, 1000000);
	hist_merge(a, b);
	assert_int_equal(a->count, 4);
	assert_int_equal(a->min, 3);
	assert_int_equal(a->max, 1000000);
	assert_int_equal(hist_percentile(a, 25), 3);
	f = open_memstream(&text, &len);
	assert_int_equal(hist_write(a, f, "t"), 0);
	fclose(f);
	f = fmemopen(text, len, "r");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long val, cnt;

		if (line[0] == '#')
			continue;
		assert_int_equal(sscanf(line, "%llu %llu", &val, &cnt), 2);
		assert_int_equal(hist_bucket_low(hist_index(val)), val);
		total += cnt;
	}
	fclose(f);
	assert_int_equal(total, 4);
	free(text);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_edges), cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_log_uniform),  cmocka_unit_test(test_two_peaks),
		cmocka_unit_test(test_exact_small),  cmocka_unit_test(test_merge_and_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
