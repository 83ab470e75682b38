/* Hierarchical timer wheel, in the manner of the classic (cascading) Linux
 * timer wheel, indexed by absolute time bits.
 *
 * Level L has 1 << (TW_BITS * L) ms granularity.  A timer is filed by its
 * distance d = expires - w->now: level 0 when d < TW_SLOTS, else the level L
 * with TW_SLOTS^L <= d < TW_SLOTS^(L+1); the slot is bits [TW_BITS*L, TW_BITS*(L+1))
 * of expires.  Invariants, with now = w->now (every tick up to now, cascades
 * included, has been processed):
 *  - slot[0][now & TW_MASK] holds only due timers (expires <= now): those
 *    armed in the past, or armed by a callback for the tick being run;
 *  - any other level-0 slot s holds timers expiring at the one tick in
 *    (now, now + TW_SLOTS) whose low bits are s;
 *  - a level-L slot s (L >= 1) holds timers whose expires >> (TW_BITS * L) is
 *    the first m > now >> (TW_BITS * L) with m & TW_MASK == s, so the slot is
 *    cascaded exactly at tick m << (TW_BITS * L), when each of its timers is
 *    less than one level-L granule away and drops to a lower level.
 * Each non-empty slot thus has one "action tick" > now (a fire or a cascade),
 * and the wheel may jump straight to the earliest one: nothing in between
 * needs doing, and the invariants still hold from any now up to that tick. */
#include "core/timer.h"

#define TW_MASK (TW_SLOTS - 1)
#define TW_HORIZON ((UINT64_C(1) << (TW_BITS * TW_LEVELS)) - 1)
/* Caps w->now so that tick arithmetic (now + horizon, next cascade point)
 * never wraps, whatever clock value a caller passes. */
#define TW_NOW_MAX (UINT64_MAX >> 1)
#define TW_NONE UINT64_MAX

static inline void tw_list_init(struct timer *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool tw_list_empty(const struct timer *head)
{
	return head->next == head;
}

static inline void tw_link_tail(struct timer *head, struct timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

static inline void tw_unlink(struct timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = NULL;
	t->prev = NULL;
}

/* Moves every entry of FROM onto the empty list TO. */
static void tw_splice(struct timer *from, struct timer *to)
{
	tw_list_init(to);
	if (tw_list_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	tw_list_init(from);
}

static struct timer *tw_slot_for(struct timer_wheel *w, uint64_t expires)
{
	uint64_t delta;
	unsigned lvl;

	if (expires <= w->now)
		return &w->slots[0][w->now & TW_MASK];
	delta = expires - w->now;
	lvl = (63 - __builtin_clzll(delta)) / TW_BITS;
	if (lvl >= TW_LEVELS)
		lvl = TW_LEVELS - 1; /* only a caller's bug: timer_add() clamps */
	return &w->slots[lvl][(expires >> (TW_BITS * lvl)) & TW_MASK];
}

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ms)
{
	unsigned lvl, s;

	w->now = now_ms > TW_NOW_MAX ? TW_NOW_MAX : now_ms;
	w->count = 0;
	for (lvl = 0; lvl < TW_LEVELS; lvl++)
		for (s = 0; s < TW_SLOTS; s++)
			tw_list_init(&w->slots[lvl][s]);
}

void timer_init(struct timer *t, timer_fn fn)
{
	t->next = NULL;
	t->prev = NULL;
	t->expires = 0;
	t->fn = fn;
}

void timer_add(struct timer_wheel *w, struct timer *t, uint64_t expires_ms)
{
	if (timer_pending(t))
		tw_unlink(t);
	else
		w->count++;
	if (expires_ms > w->now && expires_ms - w->now > TW_HORIZON)
		expires_ms = w->now + TW_HORIZON;
	t->expires = expires_ms;
	tw_link_tail(tw_slot_for(w, expires_ms), t);
}

void timer_del(struct timer_wheel *w, struct timer *t)
{
	if (!timer_pending(t))
		return;
	tw_unlink(t);
	w->count--;
}

/* Refiles the slot of every level whose granule starts at w->now.  Idempotent
 * for a given now: nothing is ever filed into a slot whose cascade tick has
 * passed, so a cascaded slot stays empty. */
static void tw_cascade(struct timer_wheel *w)
{
	struct timer list, *t;
	unsigned lvl, shift;

	for (lvl = 1; lvl < TW_LEVELS; lvl++) {
		shift = TW_BITS * lvl;
		if (w->now & ((UINT64_C(1) << shift) - 1))
			break;
		tw_splice(&w->slots[lvl][(w->now >> shift) & TW_MASK], &list);
		while (!tw_list_empty(&list)) {
			t = list.next;
			tw_unlink(t);
			tw_link_tail(tw_slot_for(w, t->expires), t);
		}
	}
}

/* Stable merge sort by expiry of a NULL-terminated chain linked by ->next;
 * N is its length.  Used only on a batch holding timers armed in the past,
 * whose expiries may be in any order; every other batch shares one expiry. */
static struct timer *tw_sort(struct timer *head, size_t n)
{
	struct timer *a, *b, **tail, *out, *t;
	size_t i;

	if (n < 2)
		return head;
	t = head;
	for (i = 1; i < n / 2; i++)
		t = t->next;
	b = t->next;
	t->next = NULL;
	a = tw_sort(head, n / 2);
	b = tw_sort(b, n - n / 2);
	tail = &out;
	while (a && b) {
		if (b->expires < a->expires) {
			*tail = b;
			b = b->next;
		} else {
			*tail = a;
			a = a->next;
		}
		tail = &(*tail)->next;
	}
	*tail = a ? a : b;
	return out;
}

/* Puts BATCH (a circular list) in non-decreasing expiry order. */
static void tw_sort_batch(struct timer *batch)
{
	struct timer *t, *prev;
	size_t n = 0;
	bool sorted = true;

	for (t = batch->next; t != batch; t = t->next) {
		if (t != batch->next && t->expires < t->prev->expires)
			sorted = false;
		n++;
	}
	if (sorted)
		return;
	batch->prev->next = NULL;
	t = tw_sort(batch->next, n);
	prev = batch;
	for (; t; t = t->next) {
		t->prev = prev;
		prev->next = t;
		prev = t;
	}
	prev->next = batch;
	batch->prev = prev;
}

/* Fires everything in the due slot, including timers that callbacks arm for
 * this tick or earlier.  The batch being fired sits on a local list head, so a
 * callback may delete or re-arm any of its members (timer_del() unlinks from
 * whatever list holds the timer).  A timer armed by a callback for a tick
 * already passed fires after the ones of this tick (it cannot fire earlier);
 * a callback must not call timer_run() itself. */
static unsigned tw_fire_due(struct timer_wheel *w)
{
	struct timer *slot = &w->slots[0][w->now & TW_MASK];
	struct timer batch, *t;
	unsigned fired = 0;

	while (!tw_list_empty(slot)) {
		tw_splice(slot, &batch);
		tw_sort_batch(&batch);
		while (!tw_list_empty(&batch)) {
			t = batch.next;
			tw_unlink(t);
			w->count--;
			fired++;
			/* T may be freed by its callback: not touched after. */
			if (t->fn)
				t->fn(t);
		}
	}
	return fired;
}

/* The earliest action tick > w->now (see the top of the file), or TW_NONE.
 * Scans each level from the current position and stops once a level's slots
 * can only be later than the best found: O(TW_LEVELS * TW_SLOTS) at worst,
 * a few slots when the wheel is busy. */
static uint64_t tw_next_tick(const struct timer_wheel *w)
{
	uint64_t best = TW_NONE, m, tick;
	unsigned lvl, shift, i;

	for (i = 1; i < TW_SLOTS; i++) {
		if (!tw_list_empty(&w->slots[0][(w->now + i) & TW_MASK])) {
			best = w->now + i;
			break;
		}
	}
	for (lvl = 1; lvl < TW_LEVELS; lvl++) {
		shift = TW_BITS * lvl;
		m = (w->now >> shift) + 1;
		for (i = 0; i < TW_SLOTS; i++) {
			tick = (m + i) << shift;
			if (tick >= best)
				break;
			if (!tw_list_empty(&w->slots[lvl][(m + i) & TW_MASK])) {
				best = tick;
				break;
			}
		}
		/* Every slot of a higher level acts at or after this level's
		 * first cascade point. */
		if (i == 0)
			break;
	}
	return best;
}

unsigned timer_run(struct timer_wheel *w, uint64_t now_ms)
{
	unsigned fired;
	uint64_t next;

	if (now_ms > TW_NOW_MAX)
		now_ms = TW_NOW_MAX;
	fired = tw_fire_due(w);
	while (w->now < now_ms) {
		next = w->count ? tw_next_tick(w) : TW_NONE;
		if (next > now_ms) {
			w->now = now_ms;
			break;
		}
		w->now = next;
		tw_cascade(w);
		fired += tw_fire_due(w);
	}
	return fired;
}

int64_t timer_next(const struct timer_wheel *w)
{
	uint64_t next;

	if (!w->count)
		return -1;
	if (!tw_list_empty(&w->slots[0][w->now & TW_MASK]))
		return 0;
	next = tw_next_tick(w);
	/* Unreachable while count is right; never report "nothing pending". */
	if (next == TW_NONE)
		return 0;
	return (int64_t)(next - w->now);
}
