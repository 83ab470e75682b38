/* The keyed hash of every network-keyed table (core/khash.c): stable within
 * a process, keyed (not FNV-1a, not SipHash under a fixed key), pairs kept
 * apart, and spread: 100,000 Call-IDs that differ in one counter fill 4,096
 * buckets evenly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/khash.h"

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void test_stable_and_keyed(void **state)
{
	uint64_t here = khash_str("a-call-id@host"), there = 0;

	(void)state;
	assert_int_equal(khash_str("a-call-id@host"), here);
	assert_int_not_equal(here, fnv1a("a-call-id@host"));
	assert_int_not_equal(khash_str("a-call-id@host2"), here);
	assert_int_equal(khash("abc", 3), khash_str("abc"));
	/* Keyed: not SipHash under an all-zero (or any fixed) key. */
	{
		unsigned char zero[crypto_shorthash_KEYBYTES] = { 0 };
		const char *k = "a-call-id@host";

		crypto_shorthash((unsigned char *)&there, (const unsigned char *)k, strlen(k),
				 zero);
		assert_int_not_equal(here, there);
	}
}

static void test_pairs(void **state)
{
	(void)state;
	assert_int_not_equal(khash_str2("ab", "c"), khash_str2("a", "bc"));
	assert_int_not_equal(khash_str2("a", "b"), khash_str2("b", "a"));
	assert_int_equal(khash_str2("x", "y"), khash_str2("x", "y"));
}

static void test_spread(void **state)
{
	enum {
		N = 100000,
		B = 4096
	};
	static unsigned count[B];
	unsigned max = 0;
	char id[64];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "b%08x@10.0.0.1", i);
		count[khash_str(id) % B]++;
	}
	for (int b = 0; b < B; b++)
		if (count[b] > max)
			max = count[b];
	/* Mean 24.4; a chain of 60 would be 7 sigma. */
	assert_true(max < 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stable_and_keyed),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
