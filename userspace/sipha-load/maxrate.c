/* --max-rate: the caller's side of the search (search.c decides the
 * rates).  Each step holds its rate for --step-s seconds from a fresh
 * pacer.  The calls started in all but the last second of a step are its
 * judged calls: at the step's end, each of them that failed or had no 2xx
 * to its INVITE yet counts as a failure (a call without an answer after a
 * second is one a caller would call failed).  The set-up p99 is that of the
 * set-ups seen during the step. */
#include "sipha-load/load.h"

#include <stdio.h>

#define JUDGE_MARGIN_US 1000000u

static void step_start(struct load *ld)
{
	ld->step_no++;
	memset(&ld->step, 0, sizeof(ld->step));
	hist_reset(&ld->step_setup);
	ld->step_t0_us = ld->now_us;
	ld->step_end_us = ld->now_us + (uint64_t)ld->o.step_s * 1000000u;
	ld->judge_until_us = ld->step_end_us - JUDGE_MARGIN_US;
	ld->pace.r0 = ld->pace.r1 = ld->search.rate;
	ld->pace.ramp_us = 0;
	ld->pace_t0_us = ld->now_us;
	ld->pace_n0 = ld->st.started;
}

void maxrate_begin(struct load *ld)
{
	step_start(ld);
}

void maxrate_started(struct load *ld, struct ld_call *c)
{
	if (!ld->o.max_rate)
		return;
	c->step = ld->step_no;
	c->judged = ld->now_us <= ld->judge_until_us;
	if (c->judged)
		ld->step.judged++;
}

void maxrate_set_up(struct load *ld, const struct ld_call *c, uint64_t us)
{
	if (!ld->o.max_rate)
		return;
	hist_add(&ld->step_setup, us);
	if (c->judged && c->step == ld->step_no)
		ld->step.set_up++;
}

void maxrate_failed_after(struct load *ld, const struct ld_call *c)
{
	if (ld->o.max_rate && c->judged && c->step == ld->step_no)
		ld->step.failed_after++;
}

/* The verdict of the step that just ended. */
static bool verdict(struct load *ld)
{
	struct ld_step *st = &ld->step;
	struct ld_step_rec *r = NULL;
	bool pass;

	st->due = pace_due(&ld->pace, ld->step_end_us - ld->step_t0_us);
	st->started = ld->st.started - ld->pace_n0;
	st->p99_us = hist_percentile(&ld->step_setup, 99);
	pass = step_pass(st, ld->o.max_fail_pct, ld->o.max_p99_us);
	if (ld->nsteps < LD_MAX_STEPS)
		r = &ld->steps[ld->nsteps++];
	if (r) {
		r->rate = ld->search.rate;
		r->started = st->started;
		r->judged = st->judged;
		r->failed_pct = step_failed_pct(st);
		r->p99_us = st->p99_us;
		r->pass = pass;
	}
	if (!ld->o.quiet)
		fprintf(stderr,
			"sipha-load: step %u: %.1f calls/s for %u s: %llu of %llu placed, "
			"%llu judged, %.2f%% failed, set-up p99 %llu us: %s\n",
			ld->step_no, ld->search.rate, ld->o.step_s, (unsigned long long)st->started,
			(unsigned long long)st->due, (unsigned long long)st->judged,
			step_failed_pct(st), (unsigned long long)st->p99_us,
			pass ? "pass" : "fail");
	return pass;
}

bool maxrate_tick(struct load *ld)
{
	if (ld->search.done)
		return true;
	if (ld->now_us < ld->step_end_us)
		return false;
	search_next(&ld->search, verdict(ld));
	if (ld->search.done) {
		ld->o.max_calls = ld->st.started; /* no more calls; the active ones end */
		return true;
	}
	step_start(ld);
	return false;
}
