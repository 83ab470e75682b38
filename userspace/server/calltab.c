/* The call table: live calls, the dialog index (Call-ID + sipha's tag of
 * each leg), references, releases.  What HA adds to it is in callha.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/khash.h"
#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

#define DLG_HASH_MIN 1024

static const char *const state_names[] = {
	[CALL_DIALING] = "dialing",	    [CALL_RINGING] = "ringing",
	[CALL_ESTABLISHED] = "established", [CALL_QUEUED] = "queued",
	[CALL_RELEASED] = "released",
};

const char *call_state_name(enum call_state s)
{
	return state_names[s];
}

/* --- table and references ----------------------------------------------------- */

static uint64_t hash_key(const char *call_id, const char *tag)
{
	return khash_str2(call_id, tag);
}

static uint64_t leg_hash(const void *e)
{
	const struct leg *l = e;

	return hash_key(l->dlg.call_id, l->dlg.local_tag);
}

int calls_new(struct call_table **out, struct server *srv)
{
	struct call_table *ct = calloc(1, sizeof(*ct));

	*out = NULL;
	if (!ct)
		return -ENOMEM;
	ct->srv = srv;
	ct->next_id = 1;
	timer_init(&ct->t_resume, calls_resume_tick);
	if (growtab_init(&ct->dlg, DLG_HASH_MIN, offsetof(struct leg, hnext), leg_hash)) {
		free(ct);
		return -ENOMEM;
	}
	*out = ct;
	return 0;
}

void dlg_index_add(struct call_table *ct, struct leg *l)
{
	struct leg **head;

	if (l->indexed)
		return;
	growtab_step(&ct->dlg, ct->ndlg, 1, SIZE_MAX);
	head = (struct leg **)growtab_head(&ct->dlg, leg_hash(l));
	l->hnext = *head;
	*head = l;
	l->indexed = true;
	ct->ndlg++;
}

void dlg_index_del(struct call_table *ct, struct leg *l)
{
	if (!l->indexed)
		return;
	for (struct leg **pp = (struct leg **)growtab_head(&ct->dlg, leg_hash(l)); *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == l) {
			*pp = l->hnext;
			break;
		}
	}
	l->indexed = false;
	ct->ndlg--;
}

struct leg *dlg_lookup(const struct call_table *ct, const char *call_id, const char *tag)
{
	struct leg *l = *(struct leg **)growtab_head(&ct->dlg, hash_key(call_id, tag));

	for (; l; l = l->hnext)
		if (!strcmp(l->dlg.call_id, call_id) && !strcmp(l->dlg.local_tag, tag))
			return l;
	return NULL;
}

struct leg *dlg_find(const struct call_table *ct, const osip_message_t *m, bool ours_in_from)
{
	osip_from_t *hdr = ours_in_from ? m->from : m->to;
	osip_generic_param_t *p = NULL;
	char cid[256];

	if (!m->call_id || !m->call_id->number || !hdr || osip_from_get_tag(hdr, &p) || !p ||
	    !p->gvalue)
		return NULL;
	snprintf(cid, sizeof(cid), "%s%s%s", m->call_id->number, m->call_id->host ? "@" : "",
		 m->call_id->host ? m->call_id->host : "");
	return dlg_lookup(ct, cid, p->gvalue);
}

static void leg_free(struct leg *l)
{
	free(l->ok.buf);
	free(l->ack_buf);
	dlg_free(&l->dlg);
}

void call_put(struct call *c)
{
	if (--c->refs)
		return;
	leg_free(&c->a);
	leg_free(&c->b);
	free(c->a_invite);
	free(c->b_invite);
	free(c->dn);
	free(c->routed_to);
	free(c->from);
	free(c->to);
	free(c);
}

/* Tells the HA engine about a call's new state: the standby keeps every
 * live call (one being set up with both INVITEs, so that a takeover can
 * rebuild its transactions). */
void replicate(struct call *c, bool gone)
{
	const struct srv_repl_ops *r = &c->srv->repl;

	call_cc_note(c, gone);
	if (!r->call || (gone && !c->replicated) || (!gone && c->state == CALL_RELEASED))
		return;
	c->replicated = !gone;
	r->call(r->arg, c, gone);
}

/* Leaves the table at once (siphactl no longer lists it, in-dialog
 * requests get 481); memory stays while transactions refer to it. */
void call_release(struct call *c, const char *why)
{
	struct call_table *ct = c->srv->calls;

	if (c->state == CALL_RELEASED)
		return;
	pr_debug("call %llu released: %s", (unsigned long long)c->id, why);
	c->release_why = why;
	replicate(c, true);
	c->state = CALL_RELEASED;
	timer_del(c->srv->tw, &c->t_ring);
	timer_del(c->srv->tw, &c->a.ok.t);
	timer_del(c->srv->tw, &c->b.ok.t);
	dlg_index_del(ct, &c->a);
	dlg_index_del(ct, &c->b);
	if (c->prev)
		c->prev->next = c->next;
	else
		ct->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ct->nlive--;
	c->srv->st.calls_released++;
	call_put(c);
}

void calls_free(struct call_table *ct)
{
	if (!ct)
		return;
	calls_resume_stop(ct);
	while (ct->live) {
		struct call *c = ct->live;

		/* Transactions still holding references are freed by the
		 * transaction layer afterwards, which drops them. */
		call_release(c, "shutdown");
	}
	growtab_fini(&ct->dlg);
	free(ct);
}

size_t calls_count(const struct call_table *ct)
{
	return ct->nlive;
}

void calls_foreach(const struct call_table *ct, call_iter_fn fn, void *arg)
{
	for (const struct call *c = ct->live; c; c = c->next)
		fn(arg, c);
}

enum dev_state call_dev_state(const struct call_table *ct, const char *dn)
{
	enum dev_state st = DEV_IDLE;

	/* Linear in live calls: fine for siphactl; CTI will keep a per-DN
	 * index when it needs this on every event. */
	for (const struct call *c = ct->live; c; c = c->next) {
		if (!c->dn || strcmp(c->dn, dn))
			continue;
		if (c->state == CALL_ESTABLISHED)
			return DEV_BUSY;
		st = DEV_RINGING;
	}
	return st;
}

/* --- new calls ---------------------------------------------------------------------- */

struct call *call_alloc(struct server *srv, uint64_t id)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->id = id;
	c->refs = 1;
	c->a.call = c->b.call = c;
	c->created_ms = srv->tw->now;
	timer_init(&c->t_ring, call_ring_timeout);
	timer_init(&c->a.ok.t, call_ok_retx);
	timer_init(&c->b.ok.t, call_ok_retx);
	return c;
}

/* Into the table and the dialog index (the B leg once it has a tag). */
void table_add(struct call_table *ct, struct call *c)
{
	c->next = ct->live;
	if (ct->live)
		ct->live->prev = c;
	ct->live = c;
	ct->nlive++;
	dlg_index_add(ct, &c->a);
	if (c->b.dlg.call_id)
		dlg_index_add(ct, &c->b);
}
