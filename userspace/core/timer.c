/* Hierarchical timer wheel whose higher levels move down in shares instead
 * of cascading a whole slot at once (see the header).
 *
 * Level L has shift s = TW_LVL_BITS * L and buckets of g = 1 << s ms: a timer
 * expiring at e belongs to bucket b = e >> s, in slot b % TW_SLOTS.  With
 * c = w->now >> s for each level, the invariants are:
 *  - a timer on level 0 has now < e < now + TW_SLOTS (one expiry per slot);
 *  - a timer on level L >= 1 has c < b < c + TW_SLOTS, so the level's slots
 *    hold distinct buckets and the current bucket (which holds now) is
 *    empty: bucket c + 1, the "target", moves down during bucket c, in
 *    shares, and whatever is left of it at tick (c + 1) * g moves then;
 *  - a timer is filed on the lowest level it fits, so on a level L >= 1 only
 *    when it does not fit L - 1, i.e. b >= c + 15: never into a target;
 *  - map[L] has a bit set exactly for the non-empty slots of level L;
 *    queued[L - 1] counts each slot's timers on levels >= 1;
 *  - w->due holds the timers armed with e <= now, to fire at the next run.
 * The next tick with work is then the minimum over the levels of the first
 * occupied slot after c, and the wheel may jump straight to it. */
#include "core/timer.h"

#define TW_MASK (TW_SLOTS - 1)
#define TW_WORDS (TW_SLOTS / 64)
/* Caps w->now so that tick arithmetic (now + horizon, the next bucket)
 * never wraps, whatever clock value a caller passes. */
#define TW_NOW_MAX (UINT64_MAX >> 1)
#define TW_NONE UINT64_MAX
#define TW_WHERE_DUE UINT32_MAX

static inline unsigned tw_shift(unsigned lvl)
{
	return TW_LVL_BITS * lvl;
}

static inline void tw_list_init(struct timer_link *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool tw_list_empty(const struct timer_link *head)
{
	return head->next == head;
}

static inline void tw_link_tail(struct timer_link *head, struct timer_link *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void tw_unlink(struct timer_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = NULL;
	n->prev = NULL;
}

/* Moves every entry of FROM onto the empty list TO. */
static void tw_splice(struct timer_link *from, struct timer_link *to)
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

static inline void tw_map_set(struct timer_wheel *w, unsigned lvl, unsigned slot)
{
	w->map[lvl][slot / 64] |= UINT64_C(1) << (slot % 64);
}

static inline void tw_map_clear(struct timer_wheel *w, unsigned lvl, unsigned slot)
{
	w->map[lvl][slot / 64] &= ~(UINT64_C(1) << (slot % 64));
}

static inline bool tw_map_test(const struct timer_wheel *w, unsigned lvl, unsigned slot)
{
	return w->map[lvl][slot / 64] & (UINT64_C(1) << (slot % 64));
}

/* The lowest level whose slots reach EXPIRES > w->now. */
static unsigned tw_level(const struct timer_wheel *w, uint64_t expires)
{
	unsigned lvl;

	for (lvl = 0; lvl < TW_LEVELS - 1; lvl++)
		if ((expires >> tw_shift(lvl)) - (w->now >> tw_shift(lvl)) < TW_SLOTS)
			break;
	return lvl;
}

/* Links T, not pending and counted in w->count, where its expiry says. */
static void tw_file(struct timer_wheel *w, struct timer *t)
{
	unsigned lvl, slot;

	if (t->expires <= w->now) {
		t->where = TW_WHERE_DUE;
		tw_link_tail(&w->due, &t->link);
		return;
	}
	lvl = tw_level(w, t->expires);
	slot = (unsigned)((t->expires >> tw_shift(lvl)) & TW_MASK);
	t->where = lvl * TW_SLOTS + slot;
	tw_link_tail(&w->slots[lvl][slot], &t->link);
	tw_map_set(w, lvl, slot);
	if (lvl)
		w->queued[lvl - 1][slot]++;
}

/* Unlinks pending T.  A level-0 timer may sit on a batch being fired rather
 * than in its slot (the slot's bit is then already clear, and the slot may
 * hold new timers of a later tick): the bit follows the slot's list.  Timers
 * of levels >= 1 always sit in their slot. */
static void tw_detach(struct timer_wheel *w, struct timer *t)
{
	unsigned lvl, slot;

	tw_unlink(&t->link);
	if (t->where == TW_WHERE_DUE)
		return;
	lvl = t->where / TW_SLOTS;
	slot = t->where % TW_SLOTS;
	if (lvl)
		w->queued[lvl - 1][slot]--;
	if (tw_list_empty(&w->slots[lvl][slot]))
		tw_map_clear(w, lvl, slot);
}

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ms)
{
	unsigned lvl, s;

	w->now = now_ms > TW_NOW_MAX ? TW_NOW_MAX : now_ms;
	w->count = 0;
	tw_list_init(&w->due);
	for (lvl = 0; lvl < TW_LEVELS; lvl++) {
		for (s = 0; s < TW_WORDS; s++)
			w->map[lvl][s] = 0;
		for (s = 0; s < TW_SLOTS; s++) {
			tw_list_init(&w->slots[lvl][s]);
			if (lvl)
				w->queued[lvl - 1][s] = 0;
		}
	}
}

void timer_init(struct timer *t, timer_fn fn)
{
	t->link.next = NULL;
	t->link.prev = NULL;
	t->expires = 0;
	t->fn = fn;
	t->where = TW_WHERE_DUE;
}

void timer_add(struct timer_wheel *w, struct timer *t, uint64_t expires_ms)
{
	if (timer_pending(t))
		tw_detach(w, t);
	else
		w->count++;
	if (expires_ms > w->now && expires_ms - w->now > TW_HORIZON)
		expires_ms = w->now + TW_HORIZON;
	t->expires = expires_ms;
	tw_file(w, t);
}

void timer_del(struct timer_wheel *w, struct timer *t)
{
	if (!timer_pending(t))
		return;
	tw_detach(w, t);
	w->count--;
}

/* Moves up to N timers of slot SLOT of level LVL >= 1 down, oldest first. */
static void tw_move_down(struct timer_wheel *w, unsigned lvl, unsigned slot, uint64_t n)
{
	struct timer_link *head = &w->slots[lvl][slot];
	struct timer *t;

	for (; n && !tw_list_empty(head); n--) {
		t = container_of(head->next, struct timer, link);
		tw_detach(w, t);
		tw_file(w, t);
	}
}

/* Stable merge sort by expiry of a NULL-terminated chain linked by ->next;
 * N is its length.  Used only on the due list, whose expiries may be in any
 * order; it holds what was armed in the past since the last run. */
static struct timer_link *tw_sort(struct timer_link *head, size_t n)
{
	struct timer_link *a, *b, **tail, *out, *t;
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
		if (container_of(b, struct timer, link)->expires <
		    container_of(a, struct timer, link)->expires) {
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

static inline uint64_t tw_expires(const struct timer_link *n)
{
	return container_of(n, const struct timer, link)->expires;
}

/* Puts BATCH (a circular list) in non-decreasing expiry order. */
static void tw_sort_batch(struct timer_link *batch)
{
	struct timer_link *t, *prev;
	size_t n = 0;
	bool sorted = true;

	for (t = batch->next; t != batch; t = t->next) {
		if (t != batch->next && tw_expires(t) < tw_expires(t->prev))
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

/* Fires every timer on BATCH, a list head of the caller's.  A callback may
 * delete or re-arm any member: tw_detach() unlinks from whatever list holds
 * it.  A callback must not call timer_run() itself. */
static unsigned tw_fire_batch(struct timer_wheel *w, struct timer_link *batch)
{
	struct timer *t;
	unsigned fired = 0;

	while (!tw_list_empty(batch)) {
		t = container_of(batch->next, struct timer, link);
		tw_unlink(&t->link);
		w->count--;
		fired++;
		/* T may be freed by its callback: not touched after. */
		if (t->fn)
			t->fn(t);
	}
	return fired;
}

/* Fires the due list in expiry order, including timers that callbacks arm
 * at or before now meanwhile (after the ones already due: they cannot fire
 * earlier). */
static unsigned tw_fire_due(struct timer_wheel *w)
{
	struct timer_link batch;
	unsigned fired = 0;

	while (!tw_list_empty(&w->due)) {
		tw_splice(&w->due, &batch);
		tw_sort_batch(&batch);
		fired += tw_fire_batch(w, &batch);
	}
	return fired;
}

/* The work of tick w->now: every level whose bucket begins now moves what
 * is left of that bucket down (to level 0, the due list when it expires
 * now, or 16 buckets ahead or more on a lower level); then the level-0 slot
 * of now fires, then the due list. */
static unsigned tw_tick(struct timer_wheel *w)
{
	struct timer_link batch;
	unsigned lvl, top, slot, fired = 0;

	top = w->now ? (unsigned)__builtin_ctzll(w->now) / TW_LVL_BITS : TW_LEVELS - 1;
	if (top > TW_LEVELS - 1)
		top = TW_LEVELS - 1;
	for (lvl = top; lvl > 0; lvl--) {
		slot = (unsigned)((w->now >> tw_shift(lvl)) & TW_MASK);
		if (tw_map_test(w, lvl, slot))
			tw_move_down(w, lvl, slot, UINT64_MAX);
	}
	slot = (unsigned)(w->now & TW_MASK);
	if (tw_map_test(w, 0, slot)) {
		tw_map_clear(w, 0, slot);
		tw_splice(&w->slots[0][slot], &batch);
		fired = tw_fire_batch(w, &batch);
	}
	return fired + tw_fire_due(w);
}

/* Distance from START, going up and wrapping, to the first set bit of the
 * TW_SLOTS-bit MAP; TW_SLOTS when none is set. */
static unsigned tw_map_find(const uint64_t *map, unsigned start)
{
	unsigned word = start / 64, i;
	uint64_t bits = map[word] & (~UINT64_C(0) << (start % 64));

	/* TW_WORDS + 1 looks: the start word's low bits come last. */
	for (i = 0; i <= TW_WORDS; i++) {
		if (bits)
			return (word * 64 + (unsigned)__builtin_ctzll(bits) - start) & TW_MASK;
		word = (word + 1) % TW_WORDS;
		bits = map[word];
	}
	return TW_SLOTS;
}

/* When level LVL's bucket B, occupied, next needs work: on level 0 its
 * expiry; above, the tick it begins, at which what is left of it moves
 * down, or with SPREAD and more than TW_DRAIN_BATCH timers in it, the tick
 * at which a share of about TW_DRAIN_BATCH of them is due to move: the
 * shares begin with the bucket before (when B becomes the target). */
static uint64_t tw_bucket_tick(const struct timer_wheel *w, unsigned lvl, uint64_t b, bool spread)
{
	unsigned shift = tw_shift(lvl);
	uint64_t begin = b << shift, from, n, wake;

	if (!lvl || !spread)
		return begin;
	n = w->queued[lvl - 1][b & TW_MASK];
	if (n <= TW_DRAIN_BATCH)
		return begin;
	from = (b - 1) << shift;
	if (from < w->now)
		from = w->now;
	wake = from + (begin - from) * TW_DRAIN_BATCH / n;
	return wake > w->now ? wake : w->now + 1;
}

/* The first tick > w->now with work (see tw_bucket_tick()), or TW_NONE:
 * the minimum over the levels of their first occupied bucket after the
 * current one (all of a level's buckets are in (c, c + TW_SLOTS)). */
static uint64_t tw_next_tick(const struct timer_wheel *w, bool spread)
{
	uint64_t best = TW_NONE, c, tick;
	unsigned lvl, k;

	for (lvl = 0; lvl < TW_LEVELS; lvl++) {
		c = w->now >> tw_shift(lvl);
		k = tw_map_find(w->map[lvl], (unsigned)((c + 1) & TW_MASK));
		if (k == TW_SLOTS)
			continue;
		tick = tw_bucket_tick(w, lvl, c + 1 + k, spread);
		if (tick < best)
			best = tick;
	}
	return best;
}

/* Moves down, for each level, the share of its target bucket due for the
 * time since SINCE (the wheel's now before this run) or since the current
 * bucket began, whichever is later: what is left of the target in
 * proportion to the time elapsed of what was left of the current bucket.
 * What moves lands on level 0 or at least 16 buckets ahead on a lower level,
 * never in a target. */
static void tw_spread(struct timer_wheel *w, uint64_t since)
{
	uint64_t from, end, n;
	unsigned lvl, shift, slot;

	for (lvl = TW_LEVELS - 1; lvl > 0; lvl--) {
		shift = tw_shift(lvl);
		slot = (unsigned)(((w->now >> shift) + 1) & TW_MASK);
		n = w->queued[lvl - 1][slot];
		if (!n)
			continue;
		from = w->now >> shift << shift;
		if (since > from)
			from = since;
		end = ((w->now >> shift) + 1) << shift;
		if (w->now <= from)
			continue;
		/* n < 2^32 and now - from < 2^24: no overflow. */
		tw_move_down(w, lvl, slot, (n * (w->now - from) + (end - from) - 1) / (end - from));
	}
}

unsigned timer_run(struct timer_wheel *w, uint64_t now_ms)
{
	uint64_t next, since = w->now;
	unsigned fired;

	if (now_ms > TW_NOW_MAX)
		now_ms = TW_NOW_MAX;
	fired = tw_fire_due(w);
	while (w->now < now_ms) {
		next = w->count ? tw_next_tick(w, false) : TW_NONE;
		if (next > now_ms) {
			w->now = now_ms;
			break;
		}
		w->now = next;
		fired += tw_tick(w);
	}
	if (w->count)
		tw_spread(w, since);
	return fired;
}

int64_t timer_next(const struct timer_wheel *w)
{
	uint64_t next;

	if (!w->count)
		return -1;
	if (!tw_list_empty(&w->due))
		return 0;
	next = tw_next_tick(w, true);
	/* Unreachable while count is right; never report "nothing pending". */
	if (next == TW_NONE)
		return 0;
	return (int64_t)(next - w->now);
}
