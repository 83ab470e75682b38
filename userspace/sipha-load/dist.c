/* Hold-time distributions (see dist.h). */
#include "sipha-load/dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LN2 0.69314718055994530942

uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* x = m * 2^k with m in [1, 2); ln x = k ln 2 + 2 atanh((m - 1) / (m + 1)),
 * whose series converges fast for |y| <= 1/3. */
double ld_ln(double x)
{
	double y, y2, term, sum = 0;
	int k = 0;

	if (!(x > 0))
		return -1e308;
	while (x >= 2) {
		x /= 2;
		k++;
	}
	while (x < 1) {
		x *= 2;
		k--;
	}
	y = (x - 1) / (x + 1);
	y2 = y * y;
	term = y;
	for (int n = 1; n < 60; n += 2) {
		sum += term / n;
		term *= y2;
		if (term < 1e-18)
			break;
	}
	return k * LN2 + 2 * sum;
}

static int num(const char *s, const char **end, uint64_t max, uint64_t *out)
{
	char *e;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno || v > max)
		return -EINVAL;
	*end = e;
	*out = v;
	return 0;
}

int dist_parse(const char *s, uint64_t max_ms, struct ld_dist *d)
{
	const char *e;

	memset(d, 0, sizeof(*d));
	if (!strncmp(s, "fixed:", 6)) {
		d->kind = LD_FIXED;
		return num(s + 6, &e, max_ms, &d->a) || *e ? -EINVAL : 0;
	}
	if (!strncmp(s, "exp:", 4)) {
		d->kind = LD_EXP;
		if (num(s + 4, &e, max_ms / LD_EXP_CAP, &d->a) || *e || !d->a)
			return -EINVAL;
		return 0;
	}
	if (!strncmp(s, "uniform:", 8)) {
		d->kind = LD_UNIFORM;
		if (num(s + 8, &e, max_ms, &d->a) || *e != '-' || num(e + 1, &e, max_ms, &d->b) ||
		    *e || d->b < d->a)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

uint64_t dist_draw(const struct ld_dist *d, uint64_t *rng)
{
	/* 53 random bits: u in [0, 1) */
	double u = (double)(rng_next(rng) >> 11) / 9007199254740992.0, v;

	switch (d->kind) {
	case LD_EXP:
		v = -(double)d->a * ld_ln(1 - u);
		if (v > (double)d->a * LD_EXP_CAP)
			v = (double)d->a * LD_EXP_CAP;
		return (uint64_t)(v + 0.5);
	case LD_UNIFORM:
		return d->a + (uint64_t)(u * (double)(d->b - d->a + 1));
	default:
		return d->a;
	}
}

double dist_mean(const struct ld_dist *d)
{
	if (d->kind == LD_UNIFORM)
		return ((double)d->a + (double)d->b) / 2;
	return (double)d->a;
}

uint64_t dist_max(const struct ld_dist *d)
{
	switch (d->kind) {
	case LD_EXP:
		return d->a * LD_EXP_CAP;
	case LD_UNIFORM:
		return d->b;
	default:
		return d->a;
	}
}
