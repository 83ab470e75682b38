/* The call pacer of sipha-load: a rate that holds (-r), or ramps linearly
 * from -r to --ramp-to over --ramp-s seconds and then holds.  Calls are
 * due on the integral of the rate since the start, never in bursts per
 * second: call n (from 0) is due at the first instant the integral reaches
 * n.  Pure functions of elapsed time, so a unit test drives them with a
 * fake clock. */
#ifndef SIPHA_LOAD_PACE_H
#define SIPHA_LOAD_PACE_H

#include <stdint.h>

struct ld_pace {
	double r0, r1; /* calls/s at the start and after the ramp */
	uint64_t ramp_us; /* 0: no ramp, r0 throughout */
};

/* Calls due after ELAPSED_US: floor(integral) + 1 (the first at 0). */
uint64_t pace_due(const struct ld_pace *p, uint64_t elapsed_us);
/* When call N is due, in microseconds from the start (rounded up). */
uint64_t pace_at(const struct ld_pace *p, uint64_t n);
/* The rate at ELAPSED_US. */
double pace_rate(const struct ld_pace *p, uint64_t elapsed_us);

#endif
