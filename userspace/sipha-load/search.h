/* --max-rate: the highest call rate a target sustains.  Steps of a held
 * rate; a step passes when the tool placed the calls of its rate, few
 * enough of them failed and their set-up p99 stayed under a bound.  The
 * rate doubles while steps pass, then bisects between the highest rate
 * that passed and the lowest that failed until the two are within
 * SEARCH_PRECISION of each other.  Pure functions: a unit test plays a
 * target with a known limit. */
#ifndef SIPHA_LOAD_SEARCH_H
#define SIPHA_LOAD_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#define SEARCH_PRECISION 0.05 /* of the lowest rate that failed */
#define SEARCH_FLOOR 16 /* below -r / 16, nothing is sustained: give up */
#define SEARCH_MAX_STEPS 64
#define SEARCH_PLACED 0.95 /* a step must place this share of its calls */

struct ld_search {
	double r0, rate, lo, hi, rate_max; /* lo: passed, hi: failed (0: none yet) */
	unsigned steps;
	bool done;
};

/* What one step saw: calls due at its rate, calls started, and of those
 * started early enough to judge (judged), the ones whose INVITE got a 2xx
 * in time (set_up) and of these the ones that failed later (failed_after). */
struct ld_step {
	uint64_t due, started, judged, set_up, failed_after;
	uint64_t p99_us; /* set-up p99 of the calls set up during the step */
};

void search_init(struct ld_search *s, double r0, double rate_max);
/* The failures of a step in per cent of its judged calls (100 when none). */
double step_failed_pct(const struct ld_step *st);
bool step_pass(const struct ld_step *st, double max_fail_pct, uint64_t max_p99_us);
/* Takes the verdict of the step at s->rate: sets s->rate to the next
 * step's, or s->done.  The answer is s->lo (0: no rate passed). */
void search_next(struct ld_search *s, bool pass);

#endif
