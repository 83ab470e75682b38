/* The call pacer (see pace.h). */
#include "sipha-load/pace.h"

/* Square root and rounding up without libm (the build links none). */
static double root(double d)
{
	double x = d > 1 ? d : 1;

	for (int i = 0; i < 100; i++) {
		double nx = 0.5 * (x + d / x);

		if (nx == x)
			break;
		x = nx;
	}
	return x;
}

static uint64_t up(double v)
{
	uint64_t u;

	if (v <= 0)
		return 0;
	u = (uint64_t)v;
	return (double)u < v ? u + 1 : u;
}

/* The integral of the rate over [0, T] seconds: calls placed by then. */
static double integral(const struct ld_pace *p, double t)
{
	double tr = (double)p->ramp_us / 1e6;

	if (!p->ramp_us)
		return p->r0 * t;
	if (t <= tr)
		return p->r0 * t + (p->r1 - p->r0) * t * t / (2 * tr);
	return (p->r0 + p->r1) * tr / 2 + p->r1 * (t - tr);
}

uint64_t pace_at(const struct ld_pace *p, uint64_t n)
{
	double tr = (double)p->ramp_us / 1e6, x = (double)n, t;

	if (!p->ramp_us || p->r1 == p->r0) {
		t = x / p->r0;
	} else if (x <= integral(p, tr)) {
		/* r0 t + a t^2 = n with a = (r1 - r0) / (2 tr) */
		double a = (p->r1 - p->r0) / (2 * tr), d = p->r0 * p->r0 + 4 * a * x;

		t = d <= 0 ? tr : (-p->r0 + root(d)) / (2 * a);
		if (t > tr)
			t = tr;
	} else {
		t = tr + (x - integral(p, tr)) / p->r1;
	}
	return up(t * 1e6);
}

uint64_t pace_due(const struct ld_pace *p, uint64_t elapsed_us)
{
	/* The float integral is only an estimate: the calls due are exactly
	 * those whose pace_at() has come, so that the two never disagree. */
	uint64_t n = (uint64_t)integral(p, (double)elapsed_us / 1e6) + 1;

	while (n > 0 && pace_at(p, n - 1) > elapsed_us)
		n--;
	while (pace_at(p, n) <= elapsed_us)
		n++;
	return n;
}

double pace_rate(const struct ld_pace *p, uint64_t elapsed_us)
{
	if (!p->ramp_us || elapsed_us >= p->ramp_us)
		return p->ramp_us ? p->r1 : p->r0;
	return p->r0 + (p->r1 - p->r0) * (double)elapsed_us / (double)p->ramp_us;
}
