/* Hierarchical timer wheel in milliseconds.  SIP timers (A–K), registration
 * expiry and HA heartbeats all live here; the event loop drives it with one
 * io_uring timeout armed for timer_next().  No clock is read in this file:
 * callers pass "now", so unit tests use a fake clock.
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
#define TW_LEVELS 4 /* 2^32 ms ~ 49 days; later expiries are clamped to that horizon */

struct timer;
typedef void (*timer_fn)(struct timer *t);

struct timer {
	struct timer *next, *prev; /* NULL when not pending */
	uint64_t expires; /* absolute, ms */
	timer_fn fn;
};

struct timer_wheel {
	uint64_t now; /* every timer with expires <= now has fired */
	size_t count; /* pending timers */
	struct timer slots[TW_LEVELS][TW_SLOTS]; /* circular list heads */
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
	return t->next != NULL;
}
/* Advances the wheel to NOW_MS, firing every timer with expires <= NOW_MS in
 * expiry order (ties in any order).  Returns how many fired. */
unsigned timer_run(struct timer_wheel *w, uint64_t now_ms);
/* Milliseconds from w->now until the next timer may fire: 0 when one is due,
 * -1 when none is pending.  May be earlier than the real expiry (a cascade
 * point), never later. */
int64_t timer_next(const struct timer_wheel *w);

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#endif
