/* Log-linear latency histogram (see hist.h for the bucket layout). */
#include "core/hist.h"

#include <errno.h>
#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v > HIST_MAX)
		v = HIST_MAX;
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

uint64_t hist_bucket_low(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	return (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
}

uint64_t hist_bucket_width(unsigned idx)
{
	if (idx < 2 * HIST_SUB)
		return 1;
	return UINT64_C(1) << (idx / HIST_SUB - 1);
}

void hist_merge(struct hist *into, const struct hist *from)
{
	if (!from->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, hi;
	double r;

	if (!h->count)
		return 0;
	if (p > 100)
		p = 100;
	r = p / 100.0 * (double)h->count;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			hi = hist_bucket_low(i) + hist_bucket_width(i) - 1;
			if (hi > h->max)
				hi = h->max;
			if (hi < h->min)
				hi = h->min;
			return hi;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

int hist_write(const struct hist *h, FILE *f, const char *title)
{
	fprintf(f, "# %s: %llu values, min %llu max %llu\n# value count\n", title ? title : "",
		(unsigned long long)h->count, (unsigned long long)(h->count ? h->min : 0),
		(unsigned long long)h->max);
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (h->b[i])
			fprintf(f, "%llu %llu\n", (unsigned long long)hist_bucket_low(i),
				(unsigned long long)h->b[i]);
	if (fflush(f) || ferror(f))
		return -(errno ? errno : EIO);
	return 0;
}
