/* Unit tests of the transaction table's growth (sip/txn_match.c on core/growtab): while it
 * grows, a few buckets move per addition, and every transaction stays
 * findable and removable, in the old buckets or the new. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/txn_int.h"

#define N 20000

static struct txn *mk(unsigned i)
{
	struct txn_priv *p = calloc(1, sizeof(*p));
	char key[32];

	assert_non_null(p);
	snprintf(key, sizeof(key), "z9hG4bK%u|INVITE", i);
	p->t.key = strdup(key);
	return &p->t;
}

static void all_found(struct txn_layer *tl, struct txn **t, unsigned n, unsigned step)
{
	for (unsigned i = 0; i < n; i += step)
		if (t[i])
			assert_ptr_equal(txn_lookup(tl, t[i]->key, NULL, TAG_NONE), t[i]);
}

static void test_growth(void **state)
{
	struct txn_layer tl = { 0 };
	struct txn **t = calloc(N, sizeof(*t));
	bool seen_growing = false;
	size_t most_old = 0;

	(void)state;
	assert_int_equal(txn_table_init(&tl), 0);
	for (unsigned i = 0; i < N; i++) {
		size_t moved = tl.tab.moved;
		bool was = tl.tab.old != NULL;

		t[i] = mk(i);
		txn_table_add(&tl, t[i]);
		/* an addition moves at most a step of buckets, never all */
		if (was && tl.tab.old)
			assert_true(tl.tab.moved - moved <= GROWTAB_STEP);
		if (tl.tab.old) {
			seen_growing = true;
			if (tl.tab.nold > most_old)
				most_old = tl.tab.nold;
			/* mid-growth: find some, remove some */
			if (i % 97 == 0) {
				all_found(&tl, t, i + 1, 13);
				txn_table_del(&tl, t[i / 2]);
				assert_null(txn_lookup(&tl, t[i / 2]->key, NULL, TAG_NONE));
				free(t[i / 2]->key);
				free(container_of(t[i / 2], struct txn_priv, t));
				t[i / 2] = NULL;
			}
		}
	}
	assert_true(seen_growing);
	assert_true(most_old >= 4096); /* it grew several times */
	all_found(&tl, t, N, 1);
	txn_table_settle(&tl);
	assert_null(tl.tab.old);
	all_found(&tl, t, N, 1);
	for (unsigned i = 0; i < N; i++) {
		if (!t[i])
			continue;
		txn_table_del(&tl, t[i]);
		free(t[i]->key);
		free(container_of(t[i], struct txn_priv, t));
	}
	assert_int_equal(tl.live, 0);
	growtab_fini(&tl.tab);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
