/* A latency histogram in the manner of HdrHistogram: log-linear buckets, so
 * that every value is kept with a relative error below 1/128 (< 0.8 %) from
 * 1 µs to about 19 hours, in a fixed 30 KiB table: adding a value is a
 * shift and an increment, no allocation, no sorting.
 *
 * Values below 256 have a bucket each.  Above, each power of two [2^k,
 * 2^(k+1)) is cut into 128 equal buckets of width 2^(k-7).  Values past
 * HIST_MAX are counted in the last bucket (and in max).  Units are the
 * caller's; sipha-load uses microseconds. */
#ifndef SIPHA_HIST_H
#define SIPHA_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_TOP_BIT 36 /* values up to 2^36 - 1 */
#define HIST_MAX ((UINT64_C(1) << HIST_TOP_BIT) - 1)
#define HIST_BUCKETS ((HIST_TOP_BIT - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count, sum, min, max;
	uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
/* The bucket of V (clamped to HIST_MAX), and the bucket's range
 * [low, low + width). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);
uint64_t hist_bucket_width(unsigned idx);

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

/* Adds every value of FROM into INTO. */
void hist_merge(struct hist *into, const struct hist *from);
/* The value at percentile P (0 < P <= 100): the highest value of the bucket
 * holding the ceil(P/100 * count)-th smallest value, never above max (so
 * P = 100 gives max exactly).  0 when the histogram is empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
/* Writes one line "value count" per non-empty bucket (value: the bucket's
 * low edge) after a '#' header: gnuplot draws it with
 * `plot FILE using 1:2 with impulses` (logscale x suits it).  Returns 0 or
 * -errno. */
int hist_write(const struct hist *h, FILE *f, const char *title);

#endif
