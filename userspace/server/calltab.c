/* The call table: live calls, the dialog index (Call-ID + sipha's tag of
 * each leg), references, and the calls a hot standby keeps for its peer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	uint64_t h = 1469598103934665603ull;

	for (const char *s = call_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h = (h ^ '\n') * 1099511628211ull;
	for (const char *s = tag; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

int calls_new(struct call_table **out, struct server *srv)
{
	struct call_table *ct = calloc(1, sizeof(*ct));

	*out = NULL;
	if (!ct)
		return -ENOMEM;
	ct->srv = srv;
	ct->next_id = 1;
	ct->ndlg_buckets = DLG_HASH_MIN;
	ct->dlg = calloc(ct->ndlg_buckets, sizeof(*ct->dlg));
	if (!ct->dlg) {
		free(ct);
		return -ENOMEM;
	}
	*out = ct;
	return 0;
}

static void dlg_index_grow(struct call_table *ct)
{
	size_t n = ct->ndlg_buckets * 2;
	struct leg **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i < ct->ndlg_buckets; i++) {
		for (struct leg *l = ct->dlg[i], *next; l; l = next) {
			size_t h = hash_key(l->dlg.call_id, l->dlg.local_tag) & (n - 1);

			next = l->hnext;
			l->hnext = nb[h];
			nb[h] = l;
		}
	}
	free(ct->dlg);
	ct->dlg = nb;
	ct->ndlg_buckets = n;
}

void dlg_index_add(struct call_table *ct, struct leg *l)
{
	size_t h;

	if (l->indexed)
		return;
	if (ct->ndlg >= ct->ndlg_buckets)
		dlg_index_grow(ct);
	h = hash_key(l->dlg.call_id, l->dlg.local_tag) & (ct->ndlg_buckets - 1);
	l->hnext = ct->dlg[h];
	ct->dlg[h] = l;
	l->indexed = true;
	ct->ndlg++;
}

void dlg_index_del(struct call_table *ct, struct leg *l)
{
	size_t h;

	if (!l->indexed)
		return;
	h = hash_key(l->dlg.call_id, l->dlg.local_tag) & (ct->ndlg_buckets - 1);
	for (struct leg **pp = &ct->dlg[h]; *pp; pp = &(*pp)->hnext) {
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
	size_t h = hash_key(call_id, tag) & (ct->ndlg_buckets - 1);

	for (struct leg *l = ct->dlg[h]; l; l = l->hnext)
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
	free(c->dn);
	free(c->from);
	free(c->to);
	free(c);
}

/* Tells the HA engine about a call's new state: the standby keeps ringing
 * and confirmed calls (a ringing one with the caller's INVITE, so that the
 * callee's answer can still be relayed after a takeover). */
void replicate(struct call *c, bool gone)
{
	const struct srv_repl_ops *r = &c->srv->repl;

	if (!r->call || (gone && !c->replicated) ||
	    (!gone && c->state != CALL_ESTABLISHED && c->state != CALL_RINGING))
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
	while (ct->live) {
		struct call *c = ct->live;

		/* Transactions still holding references are freed by the
		 * transaction layer afterwards, which drops them. */
		call_release(c, "shutdown");
	}
	free(ct->dlg);
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

/* --- HA standby: calls as the active node described them ------------------------- */

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

int call_upsert_replica(struct server *srv, uint64_t id, enum call_state state, char *dn,
			char *from, char *to, struct dialog *a, struct dialog *b, char *a_invite,
			size_t a_invite_len)
{
	struct call_table *ct = srv->calls;
	struct leg *l = dlg_lookup(ct, a->call_id, a->local_tag);
	struct call *c = l ? l->call : NULL;

	if (c) {
		/* The same call again: the dialogs moved on (CSeq, target). */
		dlg_index_del(ct, &c->a);
		dlg_index_del(ct, &c->b);
		dlg_free(&c->a.dlg);
		dlg_free(&c->b.dlg);
		free(c->dn);
		free(c->from);
		free(c->to);
		c->state = state;
		c->a.dlg = *a;
		c->b.dlg = *b;
		c->dn = dn;
		c->from = from;
		c->to = to;
		free(c->a_invite);
		c->a_invite = a_invite;
		c->a_invite_len = a_invite_len;
		dlg_index_add(ct, &c->a);
		dlg_index_add(ct, &c->b);
		return 0;
	}
	c = call_alloc(srv, id);
	if (!c) {
		dlg_free(a);
		dlg_free(b);
		free(dn);
		free(from);
		free(to);
		free(a_invite);
		return -ENOMEM;
	}
	c->a_invite = a_invite;
	c->a_invite_len = a_invite_len;
	c->state = state;
	c->a.dlg = *a;
	c->b.dlg = *b;
	c->dn = dn;
	c->from = from;
	c->to = to;
	c->replicated = true;
	if (id >= ct->next_id)
		ct->next_id = id + 1; /* ids stay unique after a takeover */
	table_add(ct, c);
	return 0;
}

void call_drop_replica(struct server *srv, const char *a_call_id, const char *a_tag)
{
	struct leg *l = dlg_lookup(srv->calls, a_call_id, a_tag);

	if (l && l == &l->call->a)
		call_release(l->call, "released on the active node");
}

void calls_drop_all(struct call_table *ct)
{
	const struct srv_repl_ops saved = ct->srv->repl;

	/* Nothing of this is news for the peer. */
	ct->srv->repl.call = NULL;
	while (ct->live)
		call_release(ct->live, "resynchronisation");
	ct->srv->repl = saved;
}

/* --- after a takeover: answers to calls that rang on the peer -------------------- */

char *call_a_invite(const struct call *c, size_t *len)
{
	char *buf = NULL;

	*len = 0;
	if (c->state != CALL_RINGING)
		return NULL;
	if (c->a_inv && c->a_inv->req) {
		if (sipmsg_to_str(c->a_inv->req, &buf, len))
			return NULL;
		return buf;
	}
	if (c->a_invite && (buf = malloc(c->a_invite_len))) {
		memcpy(buf, c->a_invite, c->a_invite_len);
		*len = c->a_invite_len;
	}
	return buf;
}

/* A 3xx-6xx whose INVITE client transaction is not here: ACK it as the
 * ICT would (§17.1.1.3: the INVITE's branch, To with the response's tag). */
static void ack_stray_final(struct server *srv, const osip_message_t *resp, const char *ruri,
			    const struct sip_peer *to)
{
	osip_message_t *ack = NULL;
	osip_via_t *via = NULL, *v2 = NULL;
	char cs[32], *buf = NULL;
	size_t len;

	if (osip_message_init(&ack))
		return;
	osip_message_set_method(ack, osip_strdup("ACK"));
	osip_message_set_version(ack, osip_strdup("SIP/2.0"));
	osip_uri_init(&ack->req_uri);
	if (osip_uri_parse(ack->req_uri, ruri))
		goto out;
	osip_message_get_via(resp, 0, &via);
	if (!via || osip_via_clone(via, &v2))
		goto out;
	osip_list_add(&ack->vias, v2, -1);
	osip_from_clone(resp->from, &ack->from);
	osip_to_clone(resp->to, &ack->to);
	osip_call_id_clone(resp->call_id, &ack->call_id);
	snprintf(cs, sizeof(cs), "%s ACK", resp->cseq->number);
	osip_message_set_cseq(ack, cs);
	osip_message_set_max_forwards(ack, "70");
	if (!sipmsg_to_str(ack, &buf, &len))
		srv_send(srv, to, buf, len);
	free(buf);
out:
	osip_message_free(ack);
}

bool call_on_stray_response(struct server *srv, osip_message_t *resp)
{
	osip_message_t *inv = NULL, *r = NULL;
	char *buf = NULL;
	struct sip_peer to;
	struct leg *l;
	struct call *c;
	uint32_t cseq;
	size_t len;
	int code = resp->status_code;

	if (!resp->cseq || !resp->cseq->method || strcmp(resp->cseq->method, "INVITE") ||
	    code < 200)
		return false;
	l = dlg_find(srv->calls, resp, true);
	if (!l || l != &l->call->b)
		return false;
	c = l->call;
	cseq = (uint32_t)strtoul(resp->cseq->number, NULL, 10);
	if (leg_peer(&c->b, &to))
		return false;
	if (code >= 300) {
		ack_stray_final(srv, resp, c->b.dlg.remote_target, &to);
		if (c->state == CALL_RINGING && !c->b_inv && c->a_invite) {
			/* rang on the peer, refused here: tell the caller */
			if (!sipmsg_parse(c->a_invite, c->a_invite_len, true, &inv) &&
			    !sipmsg_response(inv, code, resp->reason_phrase, c->a.dlg.local_tag,
					     &r) &&
			    !sipmsg_to_str(r, &buf, &len) && !leg_peer(&c->a, &to))
				srv_send(srv, &to, buf, len);
			free(buf);
			osip_message_free(r);
			osip_message_free(inv);
			call_release(c, "callee refused after a takeover");
		}
		return true;
	}
	if (c->b.ack_buf && c->b.ack_cseq == cseq) {
		srv_send(srv, &to, c->b.ack_buf, c->b.ack_len); /* our ACK was lost */
		return true;
	}
	if (c->state != CALL_RINGING || c->b_inv || !c->a_invite)
		return false;
	/* The callee answers a call that rang on the peer: confirm the B leg
	 * and answer the caller with its own INVITE, as the IST would have. */
	dlg_uac_update(&c->b.dlg, resp);
	send_ack(c, &c->b, cseq, NULL);
	if (sipmsg_parse(c->a_invite, c->a_invite_len, true, &inv) ||
	    sipmsg_response(inv, 200, "OK", c->a.dlg.local_tag, &r)) {
		osip_message_free(inv);
		return true;
	}
	copy_body(r, resp);
	add_contact(srv, r, c->a.dlg.peer.proto);
	osip_message_set_allow(r, SIPHA_ALLOW);
	if (!sipmsg_to_str(r, &buf, &len) && !leg_peer(&c->a, &to)) {
		srv_send(srv, &to, buf, len);
		arm_2xx(c, &c->a, buf, len, (uint32_t)strtoul(inv->cseq->number, NULL, 10),
			to.proto == SIP_PROTO_TCP);
	}
	free(buf);
	osip_message_free(r);
	osip_message_free(inv);
	free(c->a_invite);
	c->a_invite = NULL;
	c->state = CALL_ESTABLISHED;
	c->answered_ms = srv->tw->now;
	srv->st.calls_answered++;
	replicate(c, false);
	return true;
}
