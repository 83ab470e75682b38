#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cc/evlog.h"

#define EVLOG_MIN_CAP 1024

int evlog_init(struct evlog *l, size_t max, uint64_t keep_ms)
{
	memset(l, 0, sizeof(*l));
	if (!max)
		return -EINVAL;
	l->max = max;
	l->keep_ms = keep_ms;
	return 0;
}

static struct ev *at(const struct evlog *l, size_t i)
{
	return &l->ring[(l->head + i) % l->cap];
}

static void drop_oldest(struct evlog *l)
{
	struct ev *e = at(l, 0);

	free(e->line);
	free(e->ref);
	e->line = NULL;
	e->ref = NULL;
	l->head = (l->head + 1) % l->cap;
	l->n--;
	l->pruned++;
}

void evlog_reset(struct evlog *l, uint64_t seq)
{
	while (l->n)
		drop_oldest(l);
	l->head = 0;
	l->last_seq = seq;
}

void evlog_fini(struct evlog *l)
{
	evlog_reset(l, 0);
	free(l->ring);
	l->ring = NULL;
	l->cap = 0;
}

void evlog_prune(struct evlog *l, uint64_t now_ms)
{
	while (l->n && at(l, 0)->mono_ms + l->keep_ms < now_ms)
		drop_oldest(l);
}

/* Room for one more: the ring doubles up to MAX entries, then the oldest goes. */
static int make_room(struct evlog *l)
{
	size_t cap;
	struct ev *r;

	if (l->n == l->max) {
		drop_oldest(l);
		return 0;
	}
	if (l->n < l->cap)
		return 0;
	cap = l->cap ? l->cap * 2 : EVLOG_MIN_CAP;
	if (cap > l->max)
		cap = l->max;
	r = calloc(cap, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		r[i] = *at(l, i);
	free(l->ring);
	l->ring = r;
	l->cap = cap;
	l->head = 0;
	return 0;
}

int evlog_append(struct evlog *l, uint64_t seq, uint64_t now_ms, const char *const *dns,
		 const char *client, const char *line, size_t len)
{
	struct ev *e;
	char *copy;

	if (seq <= l->last_seq || (l->n && seq != l->last_seq + 1))
		return -EINVAL;
	evlog_prune(l, now_ms);
	copy = malloc(len + 1);
	if (!copy || make_room(l)) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	e = at(l, l->n);
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->mono_ms = now_ms;
	for (int i = 0; dns && i < EV_DNS; i++)
		if (dns[i]) {
			strncpy(e->dns[i], dns[i], EV_DN_MAX);
			e->dns[i][EV_DN_MAX] = '\0';
		}
	if (client) {
		strncpy(e->client, client, EV_CLIENT_MAX);
		e->client[EV_CLIENT_MAX] = '\0';
	}
	e->line = copy;
	e->len = len;
	l->n++;
	l->last_seq = seq;
	l->appended++;
	return 0;
}

uint64_t evlog_first_seq(const struct evlog *l)
{
	return l->n ? at(l, 0)->seq : l->last_seq + 1;
}

struct ev *evlog_get(const struct evlog *l, uint64_t seq)
{
	uint64_t first = evlog_first_seq(l);

	if (!l->n || seq < first || seq > l->last_seq)
		return NULL;
	return at(l, (size_t)(seq - first));
}

int evlog_check_since(const struct evlog *l, uint64_t since)
{
	if (since > l->last_seq)
		return -EINVAL;
	if (since == l->last_seq)
		return 0;
	return since + 1 >= evlog_first_seq(l) ? 0 : -ERANGE;
}

bool ev_concerns(const struct ev *e, const char *dn)
{
	if (!dn)
		return true;
	for (int i = 0; i < EV_DNS; i++)
		if (e->dns[i][0] && !strcmp(e->dns[i], dn))
			return true;
	return false;
}
