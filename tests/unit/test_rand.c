/* Identifiers an off-path attacker must not guess (RFC 3261 §19.3): tags,
 * branches and B-leg Call-IDs come from core/rand.c.  10,000 of each: no
 * two equal, every bit set about half the time, consecutive values as far
 * apart as independent ones (no counter, no sequence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rand.h"
#include "sip/txn.h"
#include "server/server.h"

#define N 10000

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned hexval(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* The identifiers V[0..N) (all with the same prefix of PLEN characters and
 * the same length) are distinct and their random parts look random. */
static void check_random(char **v, size_t plen)
{
	size_t len = strlen(v[0]), bits = (len - plen) * 4, ones[256] = { 0 };
	double dist = 0;
	char **sorted = malloc(N * sizeof(*sorted));

	assert_true(bits >= 64 && bits <= 1024);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(strlen(v[i]), len);
		assert_memory_equal(v[i], v[0], plen);
		for (size_t b = 0; b < bits; b++)
			ones[b] += (hexval(v[i][plen + b / 4]) >> (3 - b % 4)) & 1;
		if (i) {
			unsigned d = 0;

			for (size_t k = plen; k < len; k++)
				d += (unsigned)__builtin_popcount(hexval(v[i][k]) ^
								  hexval(v[i - 1][k]));
			dist += d;
		}
	}
	/* Each bit: 5000 ± 6 sigma (sigma 50; a false alarm once in ~10^8
	 * runs) — a counter or a fixed salt fails at once. */
	for (size_t b = 0; b < bits; b++)
		assert_true(ones[b] > N / 2 - 300 && ones[b] < N / 2 + 300);
	/* Consecutive ones differ in about half their bits. */
	dist /= N - 1;
	assert_true(dist > bits * 0.45 && dist < bits * 0.55);
	memcpy(sorted, v, N * sizeof(*sorted));
	qsort(sorted, N, sizeof(*sorted), cmp);
	for (unsigned i = 1; i < N; i++)
		assert_string_not_equal(sorted[i], sorted[i - 1]);
	free(sorted);
}

static void test_hex(void **state)
{
	char **v = malloc(N * sizeof(*v));

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		v[i] = malloc(33);
		rnd_hex(v[i], 16);
		assert_int_equal(strspn(v[i], "0123456789abcdef"), 32);
	}
	check_random(v, 0);
	for (unsigned i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

static void test_tags(void **state)
{
	struct server srv = { 0 };
	char **v = malloc(N * sizeof(*v));

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		v[i] = malloc(32);
		srv_new_tag(&srv, v[i], 32);
	}
	check_random(v, 1); /* "s" and 64 random bits */
	for (unsigned i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

static void test_branches(void **state)
{
	char **v = malloc(N * sizeof(*v));

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		v[i] = malloc(48);
		txn_new_branch(NULL, v[i], 48);
		assert_memory_equal(v[i], "z9hG4bK", 7); /* the RFC 3261 magic cookie */
	}
	check_random(v, 7);
	for (unsigned i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

/* Bytes straddling the read-ahead buffer's refills are all delivered. */
static void test_bytes_across_refills(void **state)
{
	unsigned char buf[10000];
	unsigned zeros = 0;

	(void)state;
	for (int round = 0; round < 3; round++) {
		memset(buf, 0, sizeof(buf));
		rnd_bytes(buf, sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i++)
			zeros += !buf[i];
	}
	/* 30,000 bytes, 1/256 zero each: ~117; a hole of zeros would be more. */
	assert_true(zeros < 250);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_branches),
		cmocka_unit_test(test_bytes_across_refills),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
