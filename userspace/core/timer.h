/* Hierarchical timer wheel in milliseconds, exact, without cascade stalls.
 * SIP timers (A–K), registration expiry and HA heartbeats all live here; the
 * event loop drives it with one io_uring timeout armed for timer_next().  No
 * clock is read in this file: callers pass "now", so unit tests use a fake
 * clock.
 *
 * TW_LEVELS levels of TW_SLOTS slots; a slot of level L is a bucket of
 * 16^L ms of expiries.  A timer is filed on the lowest level whose 255
 * buckets ahead reach its expiry:
 *
 *   level  bucket    reach      e.g.
 *   0      1 ms      255 ms     HA heartbeat 50 ms, HA timeout 200 ms
 *   1      16 ms     4 s        T1 = 500 ms, T2 = 4 s
 *   2      256 ms    65 s       Timer B/F/H/J = 32 s, no-answer 60 s
 *   3      4.1 s     17 min     Timer C = 180 s, registrations 600 s
 *   4      65.5 s    4.6 h      registrations 3600 s
 *   5      17.5 min  3 days
 *   6      4.7 h     49.5 days  (TW_HORIZON; later expiries are clamped)
 *
 * Precision: every timer fires at its expiry to the millisecond, whatever
 * its level, never early and never late in the wheel's time (the only
 * lateness is the loop's own, in calling timer_run()): it fires from level
 * 0, and a timer of a higher level moves down before its bucket begins.
 *
 * No cascade stall: the classic wheel moved a whole slot down at the tick
 * its bucket began (tens of ms with 100,000 timers in one slot).  Here a
 * bucket moves down in shares during the bucket before it: each
 * timer_run() moves the part proportional to the time elapsed, and
 * timer_next() wakes the loop when a share of more than TW_DRAIN_BATCH
 * timers is due.  So the work of a run is the timers it fires plus, per
 * level, about as many moves as timers expire there per ms, averaged over
 * one bucket; each timer moves at most TW_LEVELS - 1 times in all.  The
 * next tick with work is found through per-level bitmaps of occupied
 * slots, without visiting timers.  (A wheel that never moves timers, as
 * Linux's since 4.8, fires a higher level's timers up to a bucket late and
 * a whole bucket in one tick: with 256 slots a level, an hour's
 * registration up to 16 s late, every Timer J of a quarter second in one
 * run.  Callers and their fake-clock tests expect exact expiries.)
 *
 * Timers are intrusive: embed a struct timer and recover the owner with
 * container_of() in the callback.  Add, delete and re-arm are O(1); a fired
 * timer is no longer pending when its callback runs, so the callback may
 * re-arm it, delete or add others, or free its owner. */
#ifndef SIPHA_TIMER_H
#define SIPHA_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TW_BITS 8
#define TW_SLOTS (1u << TW_BITS)
#define TW_LVL_BITS 4 /* a level's bucket is 16 times the one below */
#define TW_LEVELS 7
/* Bucket of level L, in ms. */
#define TW_GRANULE(l) (UINT64_C(1) << (TW_LVL_BITS * (l)))
/* The farthest expiry, ~49.5 days ahead: later ones are clamped to it. */
#define TW_HORIZON ((TW_SLOTS - 1) * TW_GRANULE(TW_LEVELS - 1) - 1)
/* timer_next() wakes the loop early for a level's share to move when more
 * than this many timers wait to move down. */
#define TW_DRAIN_BATCH 64

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer_link {
	struct timer_link *next, *prev; /* NULL when not pending */
};

struct timer {
	struct timer_link link;
	uint64_t expires; /* absolute, ms */
	timer_fn fn;
	uint32_t where; /* level * TW_SLOTS + slot, while pending */
};

struct timer_wheel {
	uint64_t now; /* every timer with expires <= now has fired */
	size_t count; /* pending timers */
	uint64_t map[TW_LEVELS][TW_SLOTS / 64]; /* occupied slots */
	uint32_t queued[TW_LEVELS - 1][TW_SLOTS]; /* timers per slot of levels >= 1 */
	struct timer_link due; /* armed at or before now: fire at the next run */
	struct timer_link slots[TW_LEVELS][TW_SLOTS]; /* circular list heads */
};

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ms);
void timer_init(struct timer *t, timer_fn fn);
/* Arms T to fire at EXPIRES_MS (absolute); re-arms a pending timer.  An
 * expiry in the past fires on the next timer_run(). */
void timer_add(struct timer_wheel *w, struct timer *t, uint64_t expires_ms);
/* Disarms T; a no-op on a timer that is not pending. */
void timer_del(struct timer_wheel *w, struct timer *t);
static inline bool timer_pending(const struct timer *t)
{
	return t->link.next != NULL;
}
/* Advances the wheel to NOW_MS, firing every timer with expires <= NOW_MS in
 * expiry order (ties in any order), each with w->now at its expiry (timers
 * armed in the past fire first, at the old now).  Returns how many fired. */
unsigned timer_run(struct timer_wheel *w, uint64_t now_ms);
/* Milliseconds from w->now until timer_run() should next be called: 0 when
 * a timer is due, -1 when none is pending.  May be earlier than the next
 * expiry (a bucket to move down, or a share of one), never later. */
int64_t timer_next(const struct timer_wheel *w);

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#endif
