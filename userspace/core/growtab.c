/* See growtab.h. */
#include <errno.h>
#include <stdlib.h>

#include "core/growtab.h"

int growtab_init(struct growtab *g, size_t n, size_t next_off, uint64_t (*hash)(const void *))
{
	*g = (struct growtab){ .n = n, .next_off = next_off, .hash = hash };
	g->b = calloc(n, sizeof(*g->b));
	return g->b ? 0 : -ENOMEM;
}

void growtab_fini(struct growtab *g)
{
	free(g->b);
	free(g->old);
	g->b = g->old = NULL;
}

void **growtab_head(const struct growtab *g, uint64_t hv)
{
	if (g->old && (hv & (g->nold - 1)) >= g->moved)
		return &g->old[hv & (g->nold - 1)];
	return &g->b[hv & (g->n - 1)];
}

static void move(struct growtab *g, size_t buckets)
{
	while (g->old && buckets--) {
		void *e = g->old[g->moved], *next;

		for (; e; e = next) {
			void **head = &g->b[g->hash(e) & (g->n - 1)];

			next = *growtab_next(g, e);
			*growtab_next(g, e) = *head;
			*head = e;
		}
		g->old[g->moved] = NULL;
		if (++g->moved == g->nold) {
			free(g->old);
			g->old = NULL;
			g->nold = g->moved = 0;
		}
	}
}

void growtab_step(struct growtab *g, size_t count, size_t load, size_t max)
{
	void **nb;

	move(g, GROWTAB_STEP);
	if (g->old || count < g->n * load || g->n >= max)
		return;
	nb = calloc(g->n * 2, sizeof(*nb));
	if (!nb)
		return; /* longer chains: slower, still correct */
	g->old = g->b;
	g->nold = g->n;
	g->moved = 0;
	g->b = nb;
	g->n *= 2;
}

void growtab_settle(struct growtab *g)
{
	move(g, SIZE_MAX);
}
