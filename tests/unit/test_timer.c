/* Unit tests for the timer wheel, on a fake clock: every test drives
 * timer_run() with chosen "now" values and checks, inside each callback, that
 * the timer fires at the exact tick it was armed for (never early, never
 * late), and that no tick moves a large part of the wheel at once. */
#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/timer.h"

#define HORIZON TW_HORIZON
#define LVL(n) TW_GRANULE(n) /* bucket of level n */
#define REACH(n) ((TW_SLOTS - 1) * LVL(n)) /* about the farthest delay level n holds */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rnd() % (hi - lo + 1);
}

/* ---- a recording owner ------------------------------------------------- */

struct tt;
typedef void (*tt_action)(struct tt *o);

struct tt {
	struct timer t;
	int id;
	unsigned fired;
	uint64_t fired_at; /* w->now seen by the callback */
	uint64_t fired_exp; /* t.expires seen by the callback */
	tt_action action;
	struct tt *victim; /* for actions that touch another timer */
	uint64_t arg;
};

static struct timer_wheel *cur_w;
static int *fire_log;
static size_t fire_n, fire_cap;

static void log_fire(int id)
{
	if (fire_n == fire_cap) {
		fire_cap = fire_cap ? fire_cap * 2 : 64;
		fire_log = realloc(fire_log, fire_cap * sizeof(*fire_log));
		assert_non_null(fire_log);
	}
	fire_log[fire_n++] = id;
}

static void tt_cb(struct timer *t)
{
	struct tt *o = container_of(t, struct tt, t);

	assert_false(timer_pending(t));
	o->fired++;
	o->fired_at = cur_w->now;
	o->fired_exp = t->expires;
	log_fire(o->id);
	if (o->action)
		o->action(o);
}

static void tt_init(struct tt *o, int id)
{
	memset(o, 0, sizeof(*o));
	o->id = id;
	timer_init(&o->t, tt_cb);
}

static void setup_wheel(struct timer_wheel *w, uint64_t now)
{
	timer_wheel_init(w, now);
	cur_w = w;
	fire_n = 0;
}

static int teardown(void **state)
{
	(void)state;
	free(fire_log);
	fire_log = NULL;
	fire_n = fire_cap = 0;
	cur_w = NULL;
	return 0;
}

/* ---- basic behaviour ---------------------------------------------------- */

static void test_empty(void **state)
{
	static struct timer_wheel w;

	(void)state;
	setup_wheel(&w, 1000);
	assert_int_equal(timer_next(&w), -1);
	assert_int_equal(timer_run(&w, 5000), 0);
	assert_int_equal(w.now, 5000);
	/* A clock that steps back neither fires nor rewinds. */
	assert_int_equal(timer_run(&w, 10), 0);
	assert_int_equal(w.now, 5000);
	assert_int_equal(timer_run(&w, UINT64_C(1) << 40), 0);
	assert_int_equal(w.now, UINT64_C(1) << 40);
	assert_int_equal(w.count, 0);
}

static void test_single_exact(void **state)
{
	static struct timer_wheel w;
	struct tt a;

	(void)state;
	setup_wheel(&w, 1000);
	tt_init(&a, 1);
	assert_false(timer_pending(&a.t));
	timer_add(&w, &a.t, 1005);
	assert_true(timer_pending(&a.t));
	assert_int_equal(w.count, 1);
	assert_int_equal(timer_next(&w), 5);
	assert_int_equal(timer_run(&w, 1004), 0);
	assert_int_equal(a.fired, 0);
	assert_int_equal(timer_next(&w), 1);
	assert_int_equal(timer_run(&w, 1005), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.fired_at, 1005);
	assert_false(timer_pending(&a.t));
	assert_int_equal(w.count, 0);
	assert_int_equal(timer_next(&w), -1);
	assert_int_equal(timer_run(&w, 100000), 0);
	assert_int_equal(a.fired, 1);
}

/* One timer at each interesting distance, each on a fresh wheel whose start
 * is not aligned, reached by one big jump and by walking timer_next(). */
static void test_single_each_level(void **state)
{
	static struct timer_wheel w;
	static const uint64_t dist[] = { 1,
					 2,
					 255,
					 256,
					 257,
					 REACH(1) - 1,
					 REACH(1),
					 REACH(1) + 1,
					 REACH(2) + 16,
					 REACH(3) - 1,
					 REACH(3) + 7,
					 REACH(4),
					 REACH(5) + 1,
					 HORIZON - 1,
					 HORIZON };
	static const uint64_t starts[] = {
		0, 1, 255, 256, 0xfffff, 0x123456789, LVL(6) * 5 - 1, LVL(6) * 5
	};
	struct tt a;
	size_t i, j;
	int wakeups;
	int64_t d;

	(void)state;
	for (j = 0; j < sizeof(starts) / sizeof(starts[0]); j++) {
		for (i = 0; i < sizeof(dist) / sizeof(dist[0]); i++) {
			uint64_t exp = starts[j] + dist[i];

			/* one jump well past the expiry */
			setup_wheel(&w, starts[j]);
			tt_init(&a, 1);
			timer_add(&w, &a.t, exp);
			assert_int_equal(timer_run(&w, exp - 1), 0);
			assert_int_equal(timer_run(&w, exp + LVL(3)), 1);
			assert_int_equal(a.fired_at, exp);
			assert_int_equal(w.count, 0);

			/* an event loop sleeping exactly timer_next() each time */
			setup_wheel(&w, starts[j]);
			tt_init(&a, 1);
			timer_add(&w, &a.t, exp);
			for (wakeups = 0; !a.fired; wakeups++) {
				d = timer_next(&w);
				assert_true(d > 0);
				assert_true(w.now + (uint64_t)d <= exp);
				/* on level 0 now: no wake before the expiry */
				if (exp - w.now < TW_SLOTS)
					assert_int_equal(w.now + (uint64_t)d, exp);
				timer_run(&w, w.now + (uint64_t)d);
				/* one wake per level at most: where it moves down */
				assert_true(wakeups < TW_LEVELS);
			}
			assert_int_equal(a.fired_at, exp);
			assert_int_equal(timer_next(&w), -1);
		}
	}
}

static void test_beyond_horizon(void **state)
{
	static struct timer_wheel w;
	struct tt a, b;

	(void)state;
	setup_wheel(&w, 777);
	tt_init(&a, 1);
	tt_init(&b, 2);
	timer_add(&w, &a.t, 777 + HORIZON + 12345);
	assert_int_equal(a.t.expires, 777 + HORIZON);
	timer_add(&w, &b.t, UINT64_MAX);
	assert_int_equal(b.t.expires, 777 + HORIZON);
	assert_int_equal(timer_run(&w, 777 + HORIZON - 1), 0);
	assert_int_equal(timer_run(&w, 777 + HORIZON), 2);
	assert_int_equal(a.fired_at, 777 + HORIZON);
	assert_int_equal(b.fired_at, 777 + HORIZON);
	assert_int_equal(w.count, 0);
}

static void test_rearm_pending(void **state)
{
	static struct timer_wheel w;
	struct tt a;

	(void)state;
	setup_wheel(&w, 0);
	tt_init(&a, 1);
	timer_add(&w, &a.t, 100);
	timer_add(&w, &a.t, 50); /* earlier */
	assert_int_equal(w.count, 1);
	assert_int_equal(timer_next(&w), 50);
	assert_int_equal(timer_run(&w, 49), 0);
	assert_int_equal(timer_run(&w, 200), 1);
	assert_int_equal(a.fired_at, 50);

	timer_add(&w, &a.t, 300);
	timer_add(&w, &a.t, 300 + LVL(2)); /* later, other level */
	timer_add(&w, &a.t, 1000); /* and back down */
	assert_int_equal(w.count, 1);
	assert_int_equal(timer_run(&w, 999), 0);
	assert_int_equal(timer_run(&w, 5000), 1);
	assert_int_equal(a.fired, 2);
	assert_int_equal(a.fired_at, 1000);
	assert_int_equal(timer_run(&w, 300 + LVL(2) + 1), 0);
	assert_int_equal(a.fired, 2);
	assert_int_equal(w.count, 0);
}

static void test_delete_pending(void **state)
{
	static struct timer_wheel w;
	struct tt a, b, c;

	(void)state;
	setup_wheel(&w, 10);
	tt_init(&a, 1);
	tt_init(&b, 2);
	tt_init(&c, 3);
	timer_del(&w, &a.t); /* never armed: no-op */
	assert_int_equal(w.count, 0);
	timer_add(&w, &a.t, 20);
	timer_add(&w, &b.t, 20 + LVL(1));
	timer_add(&w, &c.t, 20 + REACH(4));
	assert_int_equal(w.count, 3);
	timer_del(&w, &a.t);
	assert_false(timer_pending(&a.t));
	assert_int_equal(w.count, 2);
	timer_del(&w, &a.t); /* twice: no-op */
	assert_int_equal(w.count, 2);
	timer_del(&w, &c.t);
	assert_int_equal(w.count, 1);
	assert_int_equal(timer_run(&w, 20 + REACH(4) + 1), 1);
	assert_int_equal(a.fired + b.fired + c.fired, 1);
	assert_int_equal(b.fired_at, 20 + LVL(1));
	assert_int_equal(w.count, 0);
	assert_int_equal(timer_next(&w), -1);
}

static void act_del_victim(struct tt *o)
{
	timer_del(cur_w, &o->victim->t);
}

static void act_free_self(struct tt *o)
{
	free(o);
}

static void test_delete_from_callback(void **state)
{
	static struct timer_wheel w;
	struct tt a, b, c, d, far;

	(void)state;
	setup_wheel(&w, 0);
	tt_init(&a, 1);
	tt_init(&b, 2);
	tt_init(&c, 3);
	tt_init(&d, 4);
	tt_init(&far, 5);
	/* a and b share a tick: whichever fires first deletes the other, the
	 * next one due in the very batch being fired. */
	a.action = b.action = act_del_victim;
	a.victim = &b;
	b.victim = &a;
	timer_add(&w, &a.t, 300);
	timer_add(&w, &b.t, 300);
	/* c deletes d (next tick) and far deletes... nobody pending: itself */
	c.action = act_del_victim;
	c.victim = &d;
	timer_add(&w, &c.t, 301);
	timer_add(&w, &d.t, 302);
	far.action = act_del_victim;
	far.victim = &far;
	timer_add(&w, &far.t, 5 * LVL(2) + 3);
	assert_int_equal(w.count, 5);
	assert_int_equal(timer_run(&w, 10 * LVL(2)), 3);
	assert_int_equal(a.fired + b.fired, 1);
	assert_int_equal(c.fired, 1);
	assert_int_equal(d.fired, 0);
	assert_int_equal(far.fired, 1);
	assert_int_equal(far.fired_at, 5 * LVL(2) + 3);
	assert_int_equal(w.count, 0);

	/* A callback deleting a timer on a far level during a big jump. */
	tt_init(&a, 1);
	tt_init(&b, 2);
	a.action = act_del_victim;
	a.victim = &b;
	timer_add(&w, &a.t, w.now + REACH(3) + 5);
	timer_add(&w, &b.t, w.now + REACH(3) + 6);
	assert_int_equal(timer_run(&w, w.now + 2 * REACH(3)), 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(w.count, 0);
}

static void test_free_owner_in_callback(void **state)
{
	static struct timer_wheel w;
	struct tt *o;
	int i;

	(void)state;
	setup_wheel(&w, 3);
	for (i = 0; i < 100; i++) {
		o = malloc(sizeof(*o));
		assert_non_null(o);
		tt_init(o, i);
		o->action = act_free_self;
		timer_add(&w, &o->t, 3 + (uint64_t)(i % 7) * 100);
	}
	assert_int_equal(timer_run(&w, 10000), 100);
	assert_int_equal(fire_n, 100);
	assert_int_equal(w.count, 0);
}

static void act_periodic(struct tt *o)
{
	if (o->fired < 1000)
		timer_add(cur_w, &o->t, o->t.expires + o->arg);
}

static void test_periodic(void **state)
{
	static struct timer_wheel w;
	struct tt a, b;
	unsigned n;

	(void)state;
	setup_wheel(&w, 100);
	tt_init(&a, 1);
	tt_init(&b, 2);
	a.action = b.action = act_periodic;
	a.arg = 20;
	b.arg = 710; /* crosses level boundaries */
	timer_add(&w, &a.t, 100 + 20);
	timer_add(&w, &b.t, 100 + 710);
	/* small steps: exactly the due periods fire */
	for (n = 1; n <= 10; n++) {
		timer_run(&w, 100 + n * 20);
		assert_int_equal(a.fired, n);
		assert_int_equal(a.fired_at, 100 + n * 20);
	}
	assert_int_equal(b.fired, 0);
	/* one jump: every period in between fires, each at its own tick, in
	 * order, interleaved correctly */
	fire_n = 0;
	assert_int_equal(timer_run(&w, 100 + 7000), (7000 - 200) / 20 + 9);
	assert_int_equal(a.fired, 350);
	assert_int_equal(a.fired_at, 100 + 7000);
	assert_int_equal(b.fired, 9);
	assert_int_equal(b.fired_at, 100 + 710 * 9);
	assert_int_equal(fire_log[23], 1); /* a at 780 */
	assert_int_equal(fire_log[24], 1); /* a at 800 */
	assert_int_equal(fire_log[25], 2); /* b at 810 */
	assert_int_equal(fire_log[26], 1); /* a at 820 */
	assert_int_equal(fire_log[fire_n - 1], 1);
	assert_int_equal(w.count, 2);
	/* a timer whose callback re-arms it forever stops at 1000 */
	timer_run(&w, UINT64_C(1) << 36);
	assert_int_equal(a.fired, 1000);
	assert_int_equal(b.fired, 1000);
	assert_int_equal(a.fired_at, 100 + 20 * 1000);
	assert_int_equal(b.fired_at, 100 + 710 * 1000);
	assert_int_equal(w.count, 0);
}

static void act_add_victim_at_arg(struct tt *o)
{
	timer_add(cur_w, &o->victim->t, o->arg);
}

static void test_add_in_past(void **state)
{
	static struct timer_wheel w;
	struct tt t[6];
	size_t i;

	(void)state;
	setup_wheel(&w, 1000);
	for (i = 0; i < 6; i++)
		tt_init(&t[i], (int)i);
	timer_add(&w, &t[0].t, 999);
	timer_add(&w, &t[1].t, 5);
	timer_add(&w, &t[2].t, 1000);
	timer_add(&w, &t[3].t, 0);
	assert_int_equal(w.count, 4);
	assert_int_equal(timer_next(&w), 0);
	/* the next run fires them even without the clock moving, oldest first */
	assert_int_equal(timer_run(&w, 1000), 4);
	assert_int_equal(fire_n, 4);
	assert_int_equal(fire_log[0], 3);
	assert_int_equal(fire_log[1], 1);
	assert_int_equal(fire_log[2], 0);
	assert_int_equal(fire_log[3], 2);
	assert_int_equal(t[2].fired_at, 1000);
	assert_int_equal(w.count, 0);
	assert_int_equal(timer_next(&w), -1);

	/* past timers fire before the ones due at the start of the next run */
	fire_n = 0;
	timer_add(&w, &t[0].t, 1001);
	timer_add(&w, &t[1].t, 1000);
	timer_add(&w, &t[2].t, 3);
	assert_int_equal(timer_run(&w, 1001), 3);
	assert_int_equal(fire_log[0], 2);
	assert_int_equal(fire_log[1], 1);
	assert_int_equal(fire_log[2], 0);

	/* a callback arming timers at or before the run's now: they fire in the
	 * same run; one for later does not */
	fire_n = 0;
	t[0].action = act_add_victim_at_arg;
	t[0].victim = &t[1];
	t[0].arg = 1500; /* before t[0] itself */
	t[1].action = act_add_victim_at_arg;
	t[1].victim = &t[2];
	t[1].arg = 2000; /* the run's now */
	t[2].action = act_add_victim_at_arg;
	t[2].victim = &t[3];
	t[2].arg = 2001; /* after it */
	timer_add(&w, &t[0].t, 1800);
	assert_int_equal(timer_run(&w, 2000), 3);
	assert_int_equal(t[0].fired_at, 1800);
	assert_int_equal(t[1].fired_at, 1800); /* armed in the past: at once */
	assert_int_equal(t[2].fired_at, 2000);
	assert_true(timer_pending(&t[3].t));
	assert_int_equal(w.count, 1);
	assert_int_equal(timer_next(&w), 1);
	assert_int_equal(timer_run(&w, 2001), 1);
	assert_int_equal(t[3].fired_at, 2001);
	assert_int_equal(w.count, 0);
}

/* ---- many timers, checked in the callback ------------------------------- */

static uint64_t big_last;
static size_t big_fired;
static bool big_ok;

static void big_cb(struct timer *t)
{
	/* cmocka asserts per timer would dominate the runtime: record. */
	if (t->expires < big_last || t->expires != cur_w->now || timer_pending(t))
		big_ok = false;
	big_last = t->expires;
	big_fired++;
}

/* ---- the wheel's invariants, from the inside ---------------------------- */

/* Walks every slot: each timer sits where its expiry and the level say
 * (level 0: the next TW_SLOTS ms; level L: a bucket after the current one
 * and within the level's reach), the bitmaps mark exactly the non-empty
 * slots, queued[] counts them, and the lists hold w->count timers. */
static void check_wheel(const struct timer_wheel *w)
{
	const struct timer_link *h, *n;
	const struct timer *t;
	unsigned lvl, slot, shift;
	size_t total = 0, k;
	uint64_t b, c;

	for (lvl = 0; lvl < TW_LEVELS; lvl++) {
		shift = TW_LVL_BITS * lvl;
		c = w->now >> shift;
		for (slot = 0; slot < TW_SLOTS; slot++) {
			h = &w->slots[lvl][slot];
			k = 0;
			for (n = h->next; n != h; n = n->next) {
				t = container_of(n, const struct timer, link);
				assert_ptr_equal(n->next->prev, n);
				assert_int_equal(t->where, lvl * TW_SLOTS + slot);
				b = t->expires >> shift;
				assert_int_equal(b & (TW_SLOTS - 1), slot);
				assert_true(b > c);
				assert_true(b - c < TW_SLOTS);
				k++;
			}
			assert_int_equal(!!(w->map[lvl][slot / 64] & (UINT64_C(1) << (slot % 64))),
					 k > 0);
			if (lvl)
				assert_int_equal(w->queued[lvl - 1][slot], k);
			total += k;
		}
	}
	for (n = w->due.next; n != &w->due; n = n->next) {
		assert_true(container_of(n, const struct timer, link)->expires <= w->now);
		total++;
	}
	assert_int_equal(total, w->count);
}

/* The sum of the levels of all pending timers: a timer moving down lowers
 * it by at least 1, a timer firing (from level 0) leaves it. */
static uint64_t level_sum(const struct timer_wheel *w)
{
	uint64_t n = 0;
	unsigned lvl, slot;

	for (lvl = 1; lvl < TW_LEVELS; lvl++)
		for (slot = 0; slot < TW_SLOTS; slot++)
			n += lvl * w->queued[lvl - 1][slot];
	return n;
}

/* ---- exact firing on every level ------------------------------------------ */

/* Timers on one level each, at random delays within its reach: armed on a
 * start that is not aligned, driven once by an event loop sleeping exactly
 * timer_next() and once by runs of random length, every one fires at its
 * expiry to the millisecond, with the invariants holding between runs. */
static void test_exact_every_level(void **state)
{
	static struct timer_wheel w;
	static struct tt o[200];
	unsigned lvl, pass;
	uint64_t lo, hi, start;
	size_t i, fired;
	int64_t d;

	(void)state;
	rng_state = 7;
	for (lvl = 0; lvl < TW_LEVELS; lvl++) {
		lo = lvl ? REACH(lvl - 1) + 1 : 1;
		hi = lvl < TW_LEVELS - 1 ? REACH(lvl) : HORIZON;
		for (pass = 0; pass < 2; pass++) {
			start = rnd_range(1, UINT64_C(1) << 40);
			setup_wheel(&w, start);
			for (i = 0; i < 200; i++) {
				tt_init(&o[i], (int)i);
				timer_add(&w, &o[i].t, start + rnd_range(lo, hi));
			}
			check_wheel(&w);
			while (w.count) {
				d = timer_next(&w);
				assert_true(d > 0);
				if (pass)
					d = (int64_t)rnd_range(1, 2 * (uint64_t)d);
				timer_run(&w, w.now + (uint64_t)d);
				check_wheel(&w);
			}
			for (fired = i = 0; i < 200; i++) {
				assert_int_equal(o[i].fired, 1);
				assert_int_equal(o[i].fired_at, o[i].t.expires);
				fired++;
			}
			assert_int_equal(fire_n, fired);
		}
	}
}

/* Distinct expiries in one bucket of a higher level fire in expiry order,
 * each at its own tick, whatever order they were armed in; equal expiries
 * armed at one time fire in the order armed. */
static void test_order_in_slot(void **state)
{
	static struct timer_wheel w;
	struct tt a[8], same[5];
	uint64_t base;
	size_t i;

	(void)state;
	/* a bucket of level 3 (4096 ms), 20 minutes ahead at most */
	setup_wheel(&w, 3 * LVL(3) + 17);
	base = 200 * LVL(3);
	for (i = 0; i < 8; i++) {
		tt_init(&a[i], (int)i);
		/* armed latest first: 7 * 500, 6 * 500, ... */
		timer_add(&w, &a[i].t, base + (7 - i) * 500);
		assert_int_equal(a[i].t.where / TW_SLOTS, 3);
	}
	for (i = 0; i < 5; i++) {
		tt_init(&same[i], 100 + (int)i);
		timer_add(&w, &same[i].t, base + 1000);
	}
	check_wheel(&w);
	assert_int_equal(timer_run(&w, base + LVL(3)), 13);
	assert_int_equal(fire_n, 13);
	/* 3500 < ... : a[7] (0), a[6] (500), a[5] (1000), then same[0..4]
	 * (1000, armed after a[5]), a[4] (1500), ... */
	assert_int_equal(fire_log[0], 7);
	assert_int_equal(fire_log[1], 6);
	assert_int_equal(fire_log[2], 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(fire_log[3 + i], 100 + (int)i);
	for (i = 8; i < 13; i++)
		assert_int_equal(fire_log[i], 4 - (int)(i - 8));
	for (i = 0; i < 8; i++)
		assert_int_equal(a[i].fired_at, base + (7 - i) * 500);
	assert_int_equal(same[4].fired_at, base + 1000);
}

static void act_rearm_self(struct tt *o)
{
	if (o->fired < 4)
		timer_add(cur_w, &o->t, cur_w->now + o->arg);
}

/* A callback re-arming its own timer: at once (fires again in the same run,
 * at the same tick), in 1 ms, on a far level; and re-arming a member of its
 * own batch for later, which then does not fire with the batch. */
static void test_rearm_from_callback(void **state)
{
	static struct timer_wheel w;
	struct tt now0, next, far, x, y;

	(void)state;
	setup_wheel(&w, 1000);
	tt_init(&now0, 1);
	tt_init(&next, 2);
	tt_init(&far, 3);
	now0.action = next.action = far.action = act_rearm_self;
	now0.arg = 0;
	next.arg = 1;
	far.arg = REACH(4) + 3;
	timer_add(&w, &now0.t, 1500);
	timer_add(&w, &next.t, 1500);
	timer_add(&w, &far.t, REACH(3) + 5000);
	assert_int_equal(timer_run(&w, 1500), 5); /* now0 x4, next x1 */
	assert_int_equal(now0.fired, 4);
	assert_int_equal(now0.fired_at, 1500);
	assert_int_equal(next.fired, 1);
	assert_int_equal(timer_run(&w, 1503), 3);
	assert_int_equal(next.fired, 4);
	assert_int_equal(next.fired_at, 1503);
	assert_false(timer_pending(&next.t));
	check_wheel(&w);
	assert_int_equal(timer_run(&w, REACH(3) + 5000 + 3 * (REACH(4) + 3)), 4);
	assert_int_equal(far.fired, 4);
	assert_int_equal(far.fired_at, REACH(3) + 5000 + 3 * (REACH(4) + 3));
	assert_int_equal(w.count, 0);

	/* x and y share a tick; x pushes y 10 ms later */
	fire_n = 0;
	tt_init(&x, 10);
	tt_init(&y, 11);
	x.action = act_add_victim_at_arg;
	x.victim = &y;
	x.arg = w.now + 300 + 10;
	timer_add(&w, &x.t, w.now + 300);
	timer_add(&w, &y.t, w.now + 300);
	assert_int_equal(timer_run(&w, w.now + 300), 1);
	assert_true(timer_pending(&y.t));
	check_wheel(&w);
	assert_int_equal(timer_run(&w, w.now + 10), 1);
	assert_int_equal(y.fired_at, x.fired_at + 10);
}

/* Deletes from a callback: a member of the batch being fired that was moved
 * down from a higher level, and a timer of a higher level's bucket that is
 * being moved down in shares; the wheel stays consistent. */
static void test_delete_in_running_slot(void **state)
{
	static struct timer_wheel w;
	static struct tt far[300];
	struct tt a, b, c;
	uint64_t exp;
	size_t i;

	(void)state;
	setup_wheel(&w, 10);
	tt_init(&a, 1);
	tt_init(&b, 2);
	tt_init(&c, 3);
	exp = 10 + REACH(2) + 1000; /* level 3: moves down twice before firing */
	timer_add(&w, &a.t, exp);
	timer_add(&w, &b.t, exp);
	a.action = act_del_victim;
	a.victim = &b;
	/* a big bucket of level 2 some seconds after a, moving down in shares
	 * while a's callback runs; c is in it and a deletes it too */
	for (i = 0; i < 300; i++) {
		tt_init(&far[i], 100 + (int)i);
		timer_add(&w, &far[i].t, exp + 3000 + i);
	}
	timer_add(&w, &c.t, exp + 3100);
	/* step by step until a fires */
	while (!a.fired) {
		timer_run(&w, w.now + 7);
		check_wheel(&w);
	}
	assert_int_equal(b.fired, 0);
	assert_false(timer_pending(&b.t));
	timer_del(&w, &c.t); /* wherever the shares have left it */
	check_wheel(&w);
	assert_int_equal(w.count, 300);
	while (w.count) {
		timer_run(&w, w.now + 1);
		check_wheel(&w);
	}
	for (i = 0; i < 300; i++)
		assert_int_equal(far[i].fired_at, exp + 3000 + i);
	assert_int_equal(c.fired, 0);
}

/* ---- no stall: a storm of timers for one far second ---------------------- */

#define STORM_N 100000

/* STORM_N timers armed at once for 70 s later within one second (a storm of
 * re-registrations), run in 1 ms steps: they fire exactly, and no step does
 * more than a small part of them (fired plus moved down).  The classic wheel
 * moved them all in one tick.  Then the same, waking only when timer_next()
 * says. */
static void test_storm_spread(void **state)
{
	static struct timer_wheel w;
	struct timer *t;
	uint64_t before, moved, work, max_work = 0, exp_max = 0, runs = 0;
	unsigned pass, fired;
	size_t i;

	(void)state;
	t = malloc(STORM_N * sizeof(*t));
	assert_non_null(t);
	for (pass = 0; pass < 2; pass++) {
		setup_wheel(&w, 123457);
		big_ok = true;
		big_fired = 0;
		big_last = 0;
		for (i = 0; i < STORM_N; i++) {
			timer_init(&t[i], big_cb);
			timer_add(&w, &t[i], w.now + 70000 + i % 1000);
			if (t[i].expires > exp_max)
				exp_max = t[i].expires;
		}
		assert_int_equal(level_sum(&w), 3 * STORM_N); /* 70 s: level 3 */
		max_work = runs = 0;
		while (w.count) {
			int64_t d = pass ? timer_next(&w) : 1;

			assert_true(d > 0);
			before = level_sum(&w);
			fired = timer_run(&w, w.now + (uint64_t)d);
			/* no adds here: at least the moves down */
			moved = before - level_sum(&w);
			work = moved + fired;
			if (work > max_work)
				max_work = work;
			runs++;
			assert_true(big_ok);
		}
		assert_int_equal(big_fired, STORM_N);
		assert_int_equal(w.now, exp_max);
		print_message("storm pass %u: %" PRIu64 " runs, at most %" PRIu64
			      " fired + levels moved down in one\n",
			      pass, runs, max_work);
		/* 100 fire each ms; the levels move about as many */
		assert_true(max_work < 400);
	}
	free(t);
}

/* ---- randomised comparison against a reference model ------------------ */

#define MODEL_N 3000

struct model {
	struct tt o[MODEL_N];
	bool pending[MODEL_N];
	uint64_t exp[MODEL_N];
	size_t count;
	int order[MODEL_N];
};

static uint64_t rnd_distance(void)
{
	switch (rnd() % 8) {
	case 0:
		return rnd_range(0, 3);
	case 1:
		return rnd_range(1, TW_SLOTS);
	case 2: { /* around where one level's reach ends */
		uint64_t r = REACH(rnd() % (TW_LEVELS - 1));

		return rnd_range(r - 20, r + 20);
	}
	case 3:
		return rnd_range(1, REACH(2));
	case 4:
		return rnd_range(1, REACH(4));
	case 5:
		return rnd_range(1, HORIZON);
	case 6:
		return rnd_range(HORIZON - 2, HORIZON + LVL(3)); /* around and past it */
	default:
		return rnd_range(1, 4000);
	}
}

static uint64_t rnd_step(void)
{
	switch (rnd() % 16) {
	case 0:
		return 0;
	case 1 ... 5:
		return rnd_range(1, 10);
	case 6 ... 9:
		return rnd_range(1, 1000);
	case 10:
	case 11:
		return rnd_range(1, REACH(1));
	case 12:
		return rnd_range(1, REACH(3));
	case 13:
		return rnd_range(1, REACH(4)); /* hours */
	case 14:
		return rnd_range(1, HORIZON); /* days */
	default:
		return rnd_range(1, 2 * HORIZON); /* weeks, past the horizon */
	}
}

static struct model *m_cur;

static int cmp_by_exp_id(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	uint64_t ex = m_cur->o[x].fired_exp, ey = m_cur->o[y].fired_exp;

	if (ex != ey)
		return ex < ey ? -1 : 1;
	return x - y;
}

static int cmp_model(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	uint64_t ex = m_cur->exp[x], ey = m_cur->exp[y];

	if (ex != ey)
		return ex < ey ? -1 : 1;
	return x - y;
}

static void model_arm(struct timer_wheel *w, struct model *m, int i, uint64_t exp)
{
	uint64_t want = exp;

	if (exp > w->now && exp - w->now > HORIZON)
		want = w->now + HORIZON;
	timer_add(w, &m->o[i].t, exp);
	assert_int_equal(m->o[i].t.expires, want);
	if (!m->pending[i])
		m->count++;
	m->pending[i] = true;
	m->exp[i] = want;
}

/* Advances to NOW and checks the fired sequence against the model: exactly
 * the pending timers with expires <= now, in non-decreasing expiry order,
 * each fired once at its own tick. */
static void model_run(struct timer_wheel *w, struct model *m, uint64_t now)
{
	size_t n = 0, i;
	uint64_t min = UINT64_MAX;
	uint64_t start = w->now;
	int64_t d;
	unsigned fired;

	m_cur = m;
	for (i = 0; i < MODEL_N; i++) {
		if (!m->pending[i])
			continue;
		if (m->exp[i] < min)
			min = m->exp[i];
		if (m->exp[i] <= now)
			m->order[n++] = (int)i;
	}
	qsort(m->order, n, sizeof(m->order[0]), cmp_model);

	/* timer_next against the model: never late */
	assert_int_equal(w->count, m->count);
	d = timer_next(w);
	if (!m->count) {
		assert_int_equal(d, -1);
	} else {
		assert_true(d >= 0);
		if (min <= w->now) {
			assert_int_equal(d, 0);
		} else {
			assert_true(d > 0);
			assert_true(w->now + (uint64_t)d <= min);
		}
	}

	fire_n = 0;
	fired = timer_run(w, now);
	assert_int_equal(fired, n);
	assert_int_equal(fire_n, n);
	check_wheel(w);
	for (i = 0; i < n; i++) {
		struct tt *o = &m->o[fire_log[i]];

		assert_int_equal(o->fired, 1);
		o->fired = 0;
		assert_true(m->pending[o->id]);
		assert_int_equal(o->fired_exp, m->exp[o->id]);
		/* armed in the past: fired at the start of the run */
		assert_int_equal(o->fired_at, o->fired_exp > start ? o->fired_exp : start);
		if (i)
			assert_true(m->o[fire_log[i - 1]].fired_exp <= o->fired_exp);
	}
	/* same multiset of (expiry, id) as the model, ties put in id order */
	qsort(fire_log, n, sizeof(fire_log[0]), cmp_by_exp_id);
	for (i = 0; i < n; i++) {
		assert_int_equal(fire_log[i], m->order[i]);
		m->pending[m->order[i]] = false;
		m->count--;
	}
	assert_int_equal(w->now, now);
	assert_int_equal(w->count, m->count);
}

static void run_model(uint64_t seed, uint64_t start, unsigned steps)
{
	static struct timer_wheel w;
	struct model *m;
	unsigned s, k, ops;
	int i;

	rng_state = seed;
	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	setup_wheel(&w, start);
	for (i = 0; i < MODEL_N; i++) {
		tt_init(&m->o[i], i);
		model_arm(&w, m, i, w.now + rnd_distance());
	}
	for (s = 0; s < steps; s++) {
		ops = (unsigned)rnd_range(0, 200);
		for (k = 0; k < ops; k++) {
			i = (int)(rnd() % MODEL_N);
			switch (rnd() % 6) {
			case 0:
				timer_del(&w, &m->o[i].t);
				if (m->pending[i])
					m->count--;
				m->pending[i] = false;
				break;
			case 1: /* in the past */
				model_arm(&w, m, i, w.now - rnd_range(0, w.now < 50 ? w.now : 50));
				break;
			default: /* add or re-arm */
				model_arm(&w, m, i, w.now + rnd_distance());
				break;
			}
			assert_int_equal(w.count, m->count);
		}
		switch (rnd() % 8) {
		case 0: { /* land exactly on, or just before, the next expiry */
			uint64_t min = UINT64_MAX;

			for (i = 0; i < MODEL_N; i++)
				if (m->pending[i] && m->exp[i] < min)
					min = m->exp[i];
			if (min == UINT64_MAX || min <= w.now)
				min = w.now + 1;
			model_run(&w, m, min - (rnd() & 1));
			break;
		}
		default:
			model_run(&w, m, w.now + rnd_step());
			break;
		}
	}
	/* drain: everything left fires by the horizon */
	model_run(&w, m, w.now + HORIZON);
	assert_int_equal(w.count, 0);
	assert_int_equal(timer_next(&w), -1);
	free(m);
}

static void test_model_random(void **state)
{
	(void)state;
	run_model(0x9e3779b97f4a7c15ull, 0, 1500);
	run_model(0x0123456789abcdefull, 0xfffffff0ull, 1500);
	run_model(0xdeadbeefcafef00dull, (UINT64_C(1) << 44) + 12345, 1500);
}

/* ---- scale --------------------------------------------------------------- */

#define BIG_N 1000000
#define DAY_MS (UINT64_C(24) * 3600 * 1000)

static void test_million(void **state)
{
	static struct timer_wheel w;
	struct timer *t;
	uint64_t now, end = 0;
	size_t i;

	(void)state;
	rng_state = 42;
	t = malloc(BIG_N * sizeof(*t));
	assert_non_null(t);
	setup_wheel(&w, 5000);
	big_last = 0;
	big_fired = 0;
	big_ok = true;
	for (i = 0; i < BIG_N; i++) {
		uint64_t exp;

		timer_init(&t[i], big_cb);
		/* most within minutes (dense, like SIP timers), some up to days */
		exp = 5000 + (i % 8 ? rnd_range(0, 10 * 60 * 1000) : rnd_range(0, 20 * DAY_MS));
		timer_add(&w, &t[i], exp);
		if (exp > end)
			end = exp;
	}
	assert_int_equal(w.count, BIG_N);
	check_wheel(&w);
	/* a minute in 1 ms steps as the loop runs when busy, then jumps */
	for (now = w.now; big_fired < BIG_N && now < end;) {
		now += now < 5000 + 60000 ? 1 : rnd_range(1, 100000);
		timer_run(&w, now);
		assert_true(big_ok);
		if (now == 5000 + 60000)
			check_wheel(&w);
	}
	timer_run(&w, end);
	assert_true(big_ok);
	assert_int_equal(big_fired, BIG_N);
	assert_int_equal(w.count, 0);
	assert_int_equal(timer_next(&w), -1);
	for (i = 0; i < BIG_N; i++)
		assert_false(timer_pending(&t[i]));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_empty, teardown),
		cmocka_unit_test_teardown(test_single_exact, teardown),
		cmocka_unit_test_teardown(test_single_each_level, teardown),
		cmocka_unit_test_teardown(test_beyond_horizon, teardown),
		cmocka_unit_test_teardown(test_rearm_pending, teardown),
		cmocka_unit_test_teardown(test_delete_pending, teardown),
		cmocka_unit_test_teardown(test_delete_from_callback, teardown),
		cmocka_unit_test_teardown(test_free_owner_in_callback, teardown),
		cmocka_unit_test_teardown(test_periodic, teardown),
		cmocka_unit_test_teardown(test_add_in_past, teardown),
		cmocka_unit_test_teardown(test_exact_every_level, teardown),
		cmocka_unit_test_teardown(test_order_in_slot, teardown),
		cmocka_unit_test_teardown(test_rearm_from_callback, teardown),
		cmocka_unit_test_teardown(test_delete_in_running_slot, teardown),
		cmocka_unit_test_teardown(test_storm_spread, teardown),
		cmocka_unit_test_teardown(test_model_random, teardown),
		cmocka_unit_test_teardown(test_million, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
