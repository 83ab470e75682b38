/* [dn]: the directory, one "DN = extension | routing-point | sip:URI" line
 * per directory number, kept in file order in cfg->dns.  Duplicates are found
 * through a hash set of indices that lives only while the file is read. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/config_int.h"

#define CFG_DN_MAX 32

static uint32_t dn_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Index of DN in cfg->dns, or -1; *SLOT is where it would go. */
static long dn_set_find(const struct parser *p, const char *dn, size_t *slot)
{
	const struct dn_set *set = &p->dn_set;
	size_t i = dn_hash(dn) & (set->size - 1);

	while (set->slot[i]) {
		if (!strcmp(p->cfg->dns[set->slot[i] - 1].dn, dn))
			return (long)set->slot[i] - 1;
		i = (i + 1) & (set->size - 1);
	}
	*slot = i;
	return -1;
}

static int dn_set_grow(struct parser *p)
{
	struct dn_set *set = &p->dn_set;
	size_t size = set->size ? set->size * 2 : 64, i, j;
	uint32_t *slot = calloc(size, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (i = 0; i < set->size; i++) {
		if (!set->slot[i])
			continue;
		j = dn_hash(p->cfg->dns[set->slot[i] - 1].dn) & (size - 1);
		while (slot[j])
			j = (j + 1) & (size - 1);
		slot[j] = set->slot[i];
	}
	free(set->slot);
	set->slot = slot;
	set->size = size;
	return 0;
}

void cfg_dn_entry(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;
	const char *v = p->value;
	struct cfg_dn d = { 0 };
	size_t slot;
	long dup;

	if (!cfg_all_chars(p->name, "_.+-", CFG_DN_MAX)) {
		cfg_fail(p, p->lineno, p->sec, p->name,
			 "invalid directory number (expected 1..%d of A-Z a-z 0-9 _ . + -)",
			 CFG_DN_MAX);
		return;
	}
	if ((cfg->n_dns + 1) * 2 > p->dn_set.size && dn_set_grow(p))
		goto nomem;
	dup = dn_set_find(p, p->name, &slot);
	if (dup >= 0) {
		cfg_fail(p, p->lineno, p->sec, p->name, "duplicate key (first at line %u)",
			 p->dn_line[dup]);
		return;
	}
	if (!strcmp(v, "extension")) {
		d.kind = CFG_DN_EXTENSION;
	} else if (!strcmp(v, "routing-point")) {
		d.kind = CFG_DN_ROUTING_POINT;
	} else if (cfg_uri_valid(v)) {
		d.kind = CFG_DN_ROUTE;
	} else {
		cfg_fail(p, p->lineno, p->sec, p->name,
			 "invalid value '%s' (expected extension|routing-point|sip:URI|sips:URI)",
			 v);
		return;
	}
	if (cfg->n_dns == p->dn_cap) {
		size_t cap = p->dn_cap ? p->dn_cap * 2 : 16;
		struct cfg_dn *dns = reallocarray(cfg->dns, cap, sizeof(*dns));
		unsigned *lines;

		if (!dns)
			goto nomem;
		cfg->dns = dns;
		lines = reallocarray(p->dn_line, cap, sizeof(*lines));
		if (!lines)
			goto nomem;
		p->dn_line = lines;
		p->dn_cap = cap;
	}
	d.dn = strdup(p->name);
	if (d.kind == CFG_DN_ROUTE)
		d.uri = strdup(v);
	if (!d.dn || (d.kind == CFG_DN_ROUTE && !d.uri)) {
		free(d.dn);
		free(d.uri);
		goto nomem;
	}
	p->dn_line[cfg->n_dns] = p->lineno;
	cfg->dns[cfg->n_dns++] = d;
	p->dn_set.slot[slot] = (uint32_t)cfg->n_dns;
	return;
nomem:
	cfg_fail_errno(p, -ENOMEM);
}

/* Linear: [dn] is read once at start-up and the call path keeps its own
 * index (server/dn.c); this is for start-up checks and the CLI. */
const struct cfg_dn *cfg_dn_find(const struct sipha_config *cfg, const char *dn)
{
	if (!cfg || !dn)
		return NULL;
	for (size_t i = 0; i < cfg->n_dns; i++) {
		if (!strcmp(cfg->dns[i].dn, dn))
			return &cfg->dns[i];
	}
	return NULL;
}
