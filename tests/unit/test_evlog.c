/* Unit tests of userspace/cc/evlog.c, the replicated CTI event log: append
 * order and its refusals, pruning by count and by age (with the exact
 * boundary of the comparison), lookups and since_seq checks at their edges,
 * ring growth and wrap-around past the first 1024 slots, reset, and the DN
 * filter of ev_concerns(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cc/evlog.h"

/* The line of event SEQ: unique, so a lookup that lands on the wrong slot
 * shows. */
static size_t line_of(uint64_t seq, char *buf, size_t n)
{
	int len = snprintf(buf, n, "{\"event\":\"E\",\"seq\":%llu}", (unsigned long long)seq);

	assert_true(len > 0 && (size_t)len < n);
	return (size_t)len;
}

static int app(struct evlog *l, uint64_t seq, uint64_t now)
{
	char buf[64];
	size_t len = line_of(seq, buf, sizeof(buf));

	return evlog_append(l, seq, now, NULL, NULL, buf, len);
}

/* The entry SEQ is there, with its own line and time. */
static void assert_held(const struct evlog *l, uint64_t seq)
{
	char buf[64];
	size_t len = line_of(seq, buf, sizeof(buf));
	struct ev *e = evlog_get(l, seq);

	assert_non_null(e);
	assert_int_equal(e->seq, seq);
	assert_int_equal(e->len, len);
	assert_memory_equal(e->line, buf, len);
	assert_int_equal(e->line[len], '\0');
}

static void test_init(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 0, 1000), -EINVAL);
	assert_int_equal(evlog_init(&l, 1, 1000), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.last_seq, 0);
	assert_int_equal(evlog_first_seq(&l), 1);
	assert_null(evlog_get(&l, 0));
	assert_null(evlog_get(&l, 1));
	evlog_fini(&l);
	evlog_fini(&l); /* twice is harmless */
}

static void test_append_in_order(void **state)
{
	const char *dns[EV_DNS] = { "2000", NULL, "1002" };
	struct evlog l;
	struct ev *e;

	(void)state;
	assert_int_equal(evlog_init(&l, 100, 60000), 0);
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(app(&l, s, 1000 + s), 0);
	assert_int_equal(l.n, 10);
	assert_int_equal(l.last_seq, 10);
	assert_int_equal(l.appended, 10);
	assert_int_equal(l.pruned, 0);
	assert_int_equal(evlog_first_seq(&l), 1);
	for (uint64_t s = 1; s <= 10; s++) {
		assert_held(&l, s);
		assert_int_equal(evlog_get(&l, s)->mono_ms, 1000 + s);
		assert_int_equal(evlog_get(&l, s)->jseq, 0);
	}

	/* DNs and client are copied, the line too (not kept by pointer). */
	{
		char line[] = "{\"x\":1}";

		assert_int_equal(evlog_append(&l, 11, 2000, dns, "crm-1", line, strlen(line)), 0);
		line[2] = 'y';
	}
	e = evlog_get(&l, 11);
	assert_non_null(e);
	assert_string_equal(e->line, "{\"x\":1}");
	assert_int_equal(e->len, 7);
	assert_string_equal(e->dns[0], "2000");
	assert_string_equal(e->dns[1], "");
	assert_string_equal(e->dns[2], "1002");
	assert_string_equal(e->client, "crm-1");

	/* LEN bytes are copied, not up to a NUL: a line cut short stays so. */
	assert_int_equal(evlog_append(&l, 12, 2000, NULL, NULL, "{}xxxx", 2), 0);
	assert_string_equal(evlog_get(&l, 12)->line, "{}");
	assert_int_equal(evlog_get(&l, 12)->len, 2);
	assert_string_equal(evlog_get(&l, 12)->client, "");
	evlog_fini(&l);
}

/* A DN or client name longer than the field is cut, never overflows. */
static void test_append_long_names(void **state)
{
	char dn[EV_DN_MAX + 20], client[EV_CLIENT_MAX + 20];
	const char *dns[EV_DNS] = { dn, dn, dn };
	struct evlog l;
	struct ev *e;

	(void)state;
	memset(dn, '7', sizeof(dn) - 1);
	dn[sizeof(dn) - 1] = '\0';
	memset(client, 'c', sizeof(client) - 1);
	client[sizeof(client) - 1] = '\0';
	assert_int_equal(evlog_init(&l, 4, 1000), 0);
	assert_int_equal(evlog_append(&l, 1, 0, dns, client, "{}", 2), 0);
	e = evlog_get(&l, 1);
	for (int i = 0; i < EV_DNS; i++)
		assert_int_equal(strlen(e->dns[i]), EV_DN_MAX);
	assert_int_equal(strlen(e->client), EV_CLIENT_MAX);
	evlog_fini(&l);
}

static void test_append_out_of_order(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 100, 60000), 0);
	/* seq 0 is never valid: the sequence starts at 1 */
	assert_int_equal(app(&l, 0, 1), -EINVAL);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.last_seq, 0);
	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(app(&l, s, 1), 0);

	/* a gap, a repeat, an older one, 0: each refused, nothing changed */
	{
		const uint64_t bad[] = { 7, 100, 5, 4, 1, 0, UINT64_MAX };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(app(&l, bad[i], 2), -EINVAL);
			assert_int_equal(l.n, 5);
			assert_int_equal(l.last_seq, 5);
			assert_int_equal(l.appended, 5);
			assert_int_equal(evlog_first_seq(&l), 1);
			for (uint64_t s = 1; s <= 5; s++)
				assert_held(&l, s);
		}
	}
	/* a refused append prunes nothing, even at a late NOW */
	{
		struct evlog m;

		assert_int_equal(evlog_init(&m, 100, 10), 0);
		assert_int_equal(app(&m, 1, 0), 0);
		assert_int_equal(app(&m, 3, 1000), -EINVAL);
		assert_int_equal(m.n, 1);
		assert_int_equal(m.pruned, 0);
		assert_held(&m, 1);
		evlog_fini(&m);
	}
	assert_int_equal(app(&l, 6, 3), 0);
	assert_int_equal(l.last_seq, 6);
	evlog_fini(&l);
}

/* An empty log takes any seq above last_seq: a standby joining the stream. */
static void test_first_append_any_seq(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 100, 60000), 0);
	assert_int_equal(app(&l, 1000, 5), 0);
	assert_int_equal(evlog_first_seq(&l), 1000);
	assert_int_equal(l.last_seq, 1000);
	assert_held(&l, 1000);
	assert_null(evlog_get(&l, 999));
	assert_null(evlog_get(&l, 1));
	/* and from there on strictly in order */
	assert_int_equal(app(&l, 1002, 5), -EINVAL);
	assert_int_equal(app(&l, 1001, 5), 0);

	/* after a reset to 50: 50 is refused (not above), 51 and 77 are fine */
	evlog_reset(&l, 50);
	assert_int_equal(app(&l, 50, 5), -EINVAL);
	assert_int_equal(l.n, 0);
	assert_int_equal(app(&l, 77, 5), 0);
	assert_int_equal(evlog_first_seq(&l), 77);
	assert_held(&l, 77);

	/* emptied by age, the log takes a jump again, and the gap shows */
	evlog_fini(&l);
	assert_int_equal(evlog_init(&l, 100, 10), 0);
	assert_int_equal(app(&l, 1, 0), 0);
	assert_int_equal(app(&l, 2, 0), 0);
	evlog_prune(&l, 11);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.last_seq, 2);
	assert_int_equal(app(&l, 2, 11), -EINVAL);
	assert_int_equal(app(&l, 9, 11), 0);
	assert_int_equal(evlog_first_seq(&l), 9);
	assert_int_equal(evlog_check_since(&l, 2), -ERANGE); /* 3..8 are gone */
	assert_int_equal(evlog_check_since(&l, 8), 0);
	evlog_fini(&l);
}

static void test_prune_by_count(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 3, 1000000), 0);
	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(app(&l, s, 10), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.pruned, 2);
	assert_int_equal(l.appended, 5);
	assert_int_equal(evlog_first_seq(&l), 3);
	assert_null(evlog_get(&l, 1));
	assert_null(evlog_get(&l, 2));
	for (uint64_t s = 3; s <= 5; s++)
		assert_held(&l, s);
	assert_null(evlog_get(&l, 6));
	evlog_fini(&l);

	/* max 1: only the newest */
	assert_int_equal(evlog_init(&l, 1, 1000000), 0);
	for (uint64_t s = 1; s <= 4; s++) {
		assert_int_equal(app(&l, s, 10), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(evlog_first_seq(&l), s);
		assert_held(&l, s);
		assert_null(evlog_get(&l, s - 1));
	}
	evlog_fini(&l);
}

/* evlog.c prunes when mono_ms + keep_ms < now_ms: an entry exactly keep_ms
 * old stays, one a millisecond older goes. */
static void test_prune_by_age_boundary(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 100, 1000), 0);
	assert_int_equal(app(&l, 1, 100), 0);
	assert_int_equal(app(&l, 2, 200), 0);
	assert_int_equal(app(&l, 3, 300), 0);

	evlog_prune(&l, 1100); /* entry 1 is exactly 1000 ms old: kept */
	assert_int_equal(l.n, 3);
	assert_int_equal(evlog_first_seq(&l), 1);
	evlog_prune(&l, 1101); /* 1001 ms: pruned; entry 2 is 901 ms old */
	assert_int_equal(l.n, 2);
	assert_int_equal(l.pruned, 1);
	assert_int_equal(evlog_first_seq(&l), 2);
	assert_null(evlog_get(&l, 1));
	assert_held(&l, 2);

	/* an append prunes first, with the same comparison */
	assert_int_equal(app(&l, 4, 1200), 0); /* entry 2 exactly 1000 old: kept */
	assert_int_equal(evlog_first_seq(&l), 2);
	assert_int_equal(l.n, 3);
	assert_int_equal(app(&l, 5, 1301), 0); /* 2 is 1101, 3 is 1001 old: both go */
	assert_int_equal(evlog_first_seq(&l), 4);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.pruned, 3);
	assert_held(&l, 4);
	assert_held(&l, 5);

	/* a clock far ahead empties it; last_seq survives */
	evlog_prune(&l, 1000000);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.last_seq, 5);
	assert_int_equal(evlog_first_seq(&l), 6);
	assert_null(evlog_get(&l, 5));
	/* a clock behind the entries prunes nothing */
	assert_int_equal(app(&l, 6, 5000), 0);
	evlog_prune(&l, 0);
	assert_int_equal(l.n, 1);
	evlog_fini(&l);

	/* keep_ms 0: kept at the same millisecond, gone the next */
	assert_int_equal(evlog_init(&l, 100, 0), 0);
	assert_int_equal(app(&l, 1, 50), 0);
	evlog_prune(&l, 50);
	assert_int_equal(l.n, 1);
	evlog_prune(&l, 51);
	assert_int_equal(l.n, 0);
	evlog_fini(&l);
}

static void test_get_edges(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 4, 1000000), 0);
	assert_null(evlog_get(&l, 0));
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(app(&l, s, 1), 0);
	/* held: 7..10 */
	assert_null(evlog_get(&l, 0));
	assert_null(evlog_get(&l, 6));
	assert_held(&l, 7);
	assert_held(&l, 10);
	assert_null(evlog_get(&l, 11));
	assert_null(evlog_get(&l, UINT64_MAX));
	evlog_fini(&l);
}

static void test_check_since(void **state)
{
	struct evlog l;

	(void)state;
	/* empty, fresh: since 0 (nothing seen) is fine, anything newer is not */
	assert_int_equal(evlog_init(&l, 5, 1000000), 0);
	assert_int_equal(evlog_check_since(&l, 0), 0);
	assert_int_equal(evlog_check_since(&l, 1), -EINVAL);
	assert_int_equal(evlog_check_since(&l, UINT64_MAX), -EINVAL);

	/* empty after a reset to 10 */
	evlog_reset(&l, 10);
	assert_int_equal(evlog_check_since(&l, 10), 0);
	assert_int_equal(evlog_check_since(&l, 11), -EINVAL);
	assert_int_equal(evlog_check_since(&l, 9), -ERANGE); /* 10 is not held */
	assert_int_equal(evlog_check_since(&l, 0), -ERANGE);

	/* 11..20 appended, max 5: held 16..20 */
	for (uint64_t s = 11; s <= 20; s++)
		assert_int_equal(app(&l, s, 1), 0);
	assert_int_equal(evlog_first_seq(&l), 16);
	assert_int_equal(evlog_check_since(&l, 20), 0); /* == last_seq: nothing to send */
	assert_int_equal(evlog_check_since(&l, 19), 0);
	assert_int_equal(evlog_check_since(&l, 16), 0);
	assert_int_equal(evlog_check_since(&l, 15), 0); /* first_seq - 1: all of 16.. held */
	assert_int_equal(evlog_check_since(&l, 14), -ERANGE); /* first_seq - 2: 15 is gone */
	assert_int_equal(evlog_check_since(&l, 0), -ERANGE);
	assert_int_equal(evlog_check_since(&l, 21), -EINVAL);
	assert_int_equal(evlog_check_since(&l, UINT64_MAX), -EINVAL);
	evlog_fini(&l);

	/* never pruned: since 0 replays everything */
	assert_int_equal(evlog_init(&l, 5, 1000000), 0);
	assert_int_equal(app(&l, 1, 1), 0);
	assert_int_equal(app(&l, 2, 1), 0);
	assert_int_equal(evlog_check_since(&l, 0), 0);
	assert_int_equal(evlog_check_since(&l, 2), 0);
	assert_int_equal(evlog_check_since(&l, 3), -EINVAL);
	evlog_fini(&l);
}

/* 5000 appends with max 3000: the ring grows 1024 -> 2048 -> 3000 and then
 * wraps; every held seq maps to its own line at every step that matters. */
static void test_ring_growth_wrap(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 3000, UINT64_C(1) << 40), 0);
	for (uint64_t s = 1; s <= 5000; s++) {
		assert_int_equal(app(&l, s, s), 0);
		/* right after each growth, and at the point max is reached */
		if (s == 1024 || s == 1025 || s == 2048 || s == 2049 || s == 3000 || s == 3001 ||
		    s == 4024 || s == 4025) {
			uint64_t first = evlog_first_seq(&l);

			assert_int_equal(l.n, s < 3000 ? s : 3000);
			for (uint64_t t = first; t <= s; t++)
				assert_held(&l, t);
		}
	}
	assert_true(l.cap <= 3000);
	assert_int_equal(l.n, 3000);
	assert_int_equal(l.pruned, 2000);
	assert_int_equal(l.appended, 5000);
	assert_int_equal(evlog_first_seq(&l), 2001);
	assert_null(evlog_get(&l, 2000));
	for (uint64_t s = 2001; s <= 5000; s++) {
		assert_held(&l, s);
		assert_int_equal(evlog_get(&l, s)->mono_ms, s);
	}
	assert_null(evlog_get(&l, 5001));
	assert_int_equal(evlog_check_since(&l, 2000), 0);
	assert_int_equal(evlog_check_since(&l, 1999), -ERANGE);

	/* age pruning in the middle of a wrapped ring, then more appends */
	evlog_prune(&l, 3500 + (UINT64_C(1) << 40)); /* entries with mono < 3500 go */
	assert_int_equal(evlog_first_seq(&l), 3500);
	assert_int_equal(l.n, 1501);
	for (uint64_t s = 5001; s <= 6000; s++)
		assert_int_equal(app(&l, s, s), 0);
	for (uint64_t s = 3500; s <= 6000; s++)
		assert_held(&l, s);
	evlog_fini(&l);
}

/* A small max below the first allocation: the ring is never bigger. */
static void test_small_max_wrap(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 7, 1000000), 0);
	for (uint64_t s = 1; s <= 100; s++) {
		assert_int_equal(app(&l, s, 1), 0);
		for (uint64_t t = evlog_first_seq(&l); t <= s; t++)
			assert_held(&l, t);
	}
	assert_int_equal(l.cap, 7);
	assert_int_equal(evlog_first_seq(&l), 94);
	evlog_fini(&l);
}

/* The ring grows while its entries wrap around its end (age pruning moved
 * the head): the copy keeps them in order. */
static void test_grow_wrapped(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 5000, 10000), 0);
	for (uint64_t s = 1; s <= 1000; s++)
		assert_int_equal(app(&l, s, s), 0);
	evlog_prune(&l, 10500); /* mono 1..499 go: the head is at slot 499 */
	assert_int_equal(evlog_first_seq(&l), 500);
	assert_int_equal(l.n, 501);
	assert_int_equal(l.cap, 1024);
	for (uint64_t s = 1001; s <= 3000; s++) {
		assert_int_equal(app(&l, s, 10500), 0);
		if (s == 1523 || s == 1524 || s == 2547 || s == 2548)
			for (uint64_t t = 500; t <= s; t++)
				assert_held(&l, t);
	}
	assert_int_equal(l.n, 2501);
	for (uint64_t s = 500; s <= 3000; s++)
		assert_held(&l, s);
	evlog_fini(&l);
}

/* An entry's ref (set by whoever answers) is freed with the entry: pruned
 * by count, by age, on reset and at the end (LeakSanitizer checks). */
static void test_ref_freed(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 3, 10), 0);
	for (uint64_t s = 1; s <= 10; s++) {
		assert_int_equal(app(&l, s, s), 0);
		assert_null(evlog_get(&l, s)->ref); /* a new entry has none */
		evlog_get(&l, s)->ref = strdup("\"ref\"");
	}
	evlog_prune(&l, 100); /* by age */
	assert_int_equal(l.n, 0);
	for (uint64_t s = 11; s <= 13; s++) {
		assert_int_equal(app(&l, s, 100), 0);
		evlog_get(&l, s)->ref = strdup("1");
	}
	evlog_reset(&l, 20);
	assert_int_equal(app(&l, 21, 100), 0);
	evlog_get(&l, 21)->ref = strdup("2");
	evlog_fini(&l);
}

static void test_reset(void **state)
{
	struct evlog l;

	(void)state;
	assert_int_equal(evlog_init(&l, 2000, 1000000), 0);
	for (uint64_t s = 1; s <= 1500; s++)
		assert_int_equal(app(&l, s, 1), 0);
	evlog_reset(&l, 777);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.last_seq, 777);
	assert_int_equal(evlog_first_seq(&l), 778);
	assert_null(evlog_get(&l, 777));
	assert_null(evlog_get(&l, 1));
	assert_int_equal(evlog_check_since(&l, 777), 0);
	assert_int_equal(evlog_check_since(&l, 776), -ERANGE);
	assert_int_equal(evlog_check_since(&l, 778), -EINVAL);
	/* and it goes on from there */
	assert_int_equal(app(&l, 778, 2), 0);
	assert_int_equal(app(&l, 779, 2), 0);
	assert_held(&l, 778);
	assert_held(&l, 779);
	assert_int_equal(evlog_first_seq(&l), 778);
	assert_int_equal(evlog_check_since(&l, 777), 0);
	/* a reset may go back too (a snapshot from a peer behind us) */
	evlog_reset(&l, 3);
	assert_int_equal(l.n, 0);
	assert_int_equal(app(&l, 4, 3), 0);
	assert_held(&l, 4);
	evlog_fini(&l);
	/* after fini the log works again from scratch */
	assert_int_equal(evlog_init(&l, 2, 10), 0);
	assert_int_equal(app(&l, 1, 0), 0);
	evlog_fini(&l);
}

static void test_concerns(void **state)
{
	const char *dns3[EV_DNS] = { "2000", "1001", "1002" };
	const char *dns1[EV_DNS] = { NULL, "1001", NULL };
	struct evlog l;
	struct ev *e;

	(void)state;
	assert_int_equal(evlog_init(&l, 10, 1000), 0);
	assert_int_equal(evlog_append(&l, 1, 0, dns3, NULL, "{}", 2), 0);
	assert_int_equal(evlog_append(&l, 2, 0, dns1, NULL, "{}", 2), 0);
	assert_int_equal(evlog_append(&l, 3, 0, NULL, "crm", "{}", 2), 0);

	e = evlog_get(&l, 1);
	assert_true(ev_concerns(e, NULL));
	assert_true(ev_concerns(e, "2000"));
	assert_true(ev_concerns(e, "1001"));
	assert_true(ev_concerns(e, "1002"));
	assert_false(ev_concerns(e, "1003"));
	assert_false(ev_concerns(e, "100")); /* no prefix match */
	assert_false(ev_concerns(e, "10010"));
	assert_false(ev_concerns(e, ""));

	e = evlog_get(&l, 2);
	assert_true(ev_concerns(e, "1001"));
	assert_false(ev_concerns(e, "2000"));
	assert_false(ev_concerns(e, "")); /* an unused slot matches no DN */
	assert_true(ev_concerns(e, NULL));

	e = evlog_get(&l, 3); /* filed under no DN: only "any" sees it */
	assert_true(ev_concerns(e, NULL));
	assert_false(ev_concerns(e, ""));
	assert_false(ev_concerns(e, "1001"));
	assert_string_equal(e->client, "crm");
	evlog_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_append_in_order),
		cmocka_unit_test(test_append_long_names),
		cmocka_unit_test(test_append_out_of_order),
		cmocka_unit_test(test_first_append_any_seq),
		cmocka_unit_test(test_prune_by_count),
		cmocka_unit_test(test_prune_by_age_boundary),
		cmocka_unit_test(test_get_edges),
		cmocka_unit_test(test_check_since),
		cmocka_unit_test(test_ring_growth_wrap),
		cmocka_unit_test(test_small_max_wrap),
		cmocka_unit_test(test_grow_wrapped),
		cmocka_unit_test(test_ref_freed),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_concerns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
