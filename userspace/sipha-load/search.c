/* --max-rate (see search.h). */
#include "sipha-load/search.h"

void search_init(struct ld_search *s, double r0, double rate_max)
{
	s->r0 = s->rate = r0 < rate_max ? r0 : rate_max;
	s->rate_max = rate_max;
	s->lo = s->hi = 0;
	s->steps = 0;
	s->done = false;
}

double step_failed_pct(const struct ld_step *st)
{
	uint64_t bad;

	if (!st->judged)
		return 100;
	bad = st->judged - (st->set_up < st->judged ? st->set_up : st->judged) + st->failed_after;
	if (bad > st->judged)
		bad = st->judged;
	return 100.0 * (double)bad / (double)st->judged;
}

bool step_pass(const struct ld_step *st, double max_fail_pct, uint64_t max_p99_us)
{
	if ((double)st->started < SEARCH_PLACED * (double)st->due)
		return false;
	if (step_failed_pct(st) > max_fail_pct)
		return false;
	return !max_p99_us || st->p99_us <= max_p99_us;
}

void search_next(struct ld_search *s, bool pass)
{
	double next;

	s->steps++;
	if (pass)
		s->lo = s->rate;
	else
		s->hi = s->rate;
	if (s->steps >= SEARCH_MAX_STEPS || (pass && s->rate >= s->rate_max)) {
		s->done = true;
		return;
	}
	if (!s->hi) {
		next = 2 * s->rate;
		s->rate = next < s->rate_max ? next : s->rate_max;
		return;
	}
	if (s->hi - s->lo <= SEARCH_PRECISION * s->hi) {
		s->done = true;
		return;
	}
	next = (s->lo + s->hi) / 2;
	if (!s->lo && next < s->r0 / SEARCH_FLOOR) {
		s->done = true;
		return;
	}
	s->rate = next;
}
