/* Hold-time distributions of sipha-load (-d, --hold-dist) and the small
 * random number generator they draw from.  Pure functions of their state,
 * so a unit test checks them with a fixed seed. */
#ifndef SIPHA_LOAD_DIST_H
#define SIPHA_LOAD_DIST_H

#include <stdint.h>

enum ld_dist_kind {
	LD_FIXED, /* a: the value */
	LD_EXP, /* a: the mean; draws past LD_EXP_CAP * a are clamped there */
	LD_UNIFORM, /* every value in [a, b] */
};

#define LD_EXP_CAP 20 /* exp(-20): 2 draws in 10^9 are clamped */

struct ld_dist {
	uint8_t kind;
	uint64_t a, b;
};

/* "fixed:MS", "exp:MEAN_MS" or "uniform:MIN-MAX" (ms, up to MAX_MS): 0, or
 * -EINVAL. */
int dist_parse(const char *s, uint64_t max_ms, struct ld_dist *d);
/* One value (ms) drawn with the generator at *RNG. */
uint64_t dist_draw(const struct ld_dist *d, uint64_t *rng);
/* The distribution's mean, and the value it stays under (the cap). */
double dist_mean(const struct ld_dist *d);
uint64_t dist_max(const struct ld_dist *d);

/* xorshift64*: the next 64 random bits (*S must not be 0). */
uint64_t rng_next(uint64_t *s);
/* The natural logarithm of X > 0 (the build links no libm). */
double ld_ln(double x);

#endif
