/* The bucket array of an intrusive chained hash table that grows a few
 * buckets at a time.
 *
 * Doubling a table of a million entries in one go stalls the loop for tens
 * of milliseconds.  Here a growth allocates the new array and leaves the
 * old one in place; each later insertion moves GROWTAB_STEP old buckets,
 * and an entry is looked for in the old array while its bucket there has
 * not moved yet.  A growth ends long before the next can start (which
 * takes as many insertions as the new array has buckets).
 *
 * Entries are the caller's: they link through a pointer at NEXT_OFF and
 * the caller gives each one's hash (HASH, for the moves). */
#ifndef SIPHA_CORE_GROWTAB_H
#define SIPHA_CORE_GROWTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROWTAB_STEP 64

struct growtab {
	void **b;
	size_t n; /* power of two */
	void **old; /* while growing: old buckets [moved, nold) still in use */
	size_t nold, moved;
	size_t next_off;
	uint64_t (*hash)(const void *entry);
};

/* N buckets (a power of two).  0 or -ENOMEM. */
int growtab_init(struct growtab *g, size_t n, size_t next_off, uint64_t (*hash)(const void *));
/* Frees the arrays (the entries are the caller's). */
void growtab_fini(struct growtab *g);
/* The head of the chain an entry of hash HV is on (or goes on). */
void **growtab_head(const struct growtab *g, uint64_t hv);
/* Before an insertion: moves a step of a growth under way, and starts one
 * when COUNT entries reach LOAD per bucket (unless N is MAX already). */
void growtab_step(struct growtab *g, size_t count, size_t load, size_t max);
/* Finishes a growth under way (before a walk over every bucket of B). */
void growtab_settle(struct growtab *g);

/* Buckets to walk, the old ones of a growth under way included: bucket I
 * of a walk is growtab_bucket(G, I) for I below growtab_nbuckets(G). */
static inline size_t growtab_nbuckets(const struct growtab *g)
{
	return g->n + (g->old ? g->nold : 0);
}

static inline void *growtab_bucket(const struct growtab *g, size_t i)
{
	return i < g->n ? g->b[i] : g->old[i - g->n];
}

static inline void **growtab_next(const struct growtab *g, void *entry)
{
	return (void **)((char *)entry + g->next_off);
}

#endif
