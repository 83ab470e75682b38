#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"
#include "server/subscribe.h"

struct sub_table {
	struct server *srv;
	struct sub *list;
	size_t n;
};

int subs_new(struct sub_table **out, struct server *srv)
{
	struct sub_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->srv = srv;
	*out = t;
	return 0;
}

size_t subs_count(const struct sub_table *t)
{
	return t ? t->n : 0;
}

void subs_foreach(const struct sub_table *t, void (*fn)(void *arg, const struct sub *s), void *arg)
{
	for (const struct sub *s = t ? t->list : NULL; s; s = s->next)
		fn(arg, s);
}

static void sub_put(struct sub *s)
{
	if (--s->refs)
		return;
	dlg_free(&s->dlg);
	free(s->dn);
	free(s);
}

static void replicate_sub(struct sub *s, bool gone)
{
	const struct srv_repl_ops *r = &s->srv->repl;

	if (r->sub)
		r->sub(r->arg, s, gone);
}

/* Out of the table; memory goes with the last NOTIFY transaction. */
static void sub_remove(struct sub *s, bool quiet)
{
	struct sub_table *t = s->srv->subs;

	if (s->terminated)
		return;
	s->terminated = true;
	if (!quiet)
		replicate_sub(s, true);
	timer_del(s->srv->tw, &s->t);
	if (s->prev)
		s->prev->next = s->next;
	else
		t->list = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->n--;
	sub_put(s);
}

int subs_hold_all(struct sub_table *t, struct sub ***out, size_t *n)
{
	struct sub **v = malloc((t->n ? t->n : 1) * sizeof(*v));
	size_t i = 0;

	if (!v)
		return -ENOMEM;
	for (struct sub *s = t->list; s; s = s->next) {
		s->refs++;
		v[i++] = s;
	}
	*out = v;
	*n = i;
	return 0;
}

void sub_unhold(struct sub *s)
{
	sub_put(s);
}

void subs_clear(struct sub_table *t)
{
	while (t && t->list)
		sub_remove(t->list, true);
}

void subs_free(struct sub_table *t)
{
	if (!t)
		return;
	subs_clear(t);
	free(t);
}

/* --- the body ---------------------------------------------------------------------- */

/* XML-escapes S into OUT (at most N bytes, NUL included). */
static void xml_escape(const char *s, char *out, size_t n)
{
	size_t o = 0;

	for (; *s && o + 7 < n; s++) {
		const char *rep = *s == '&'   ? "&amp;"
				  : *s == '<' ? "&lt;"
				  : *s == '>' ? "&gt;"
				  : *s == '"' ? "&quot;"
					      : NULL;

		if (rep) {
			memcpy(out + o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

char *sub_dialog_info(const char *entity, const char *dn, uint32_t version, enum cc_dev d)
{
	char ent[512], id[160], dialog[400] = "", *body = NULL;
	const char *state = d == CC_DEV_RINGING ? "early" : d == CC_DEV_BUSY ? "confirmed" : NULL;

	xml_escape(entity, ent, sizeof(ent));
	xml_escape(dn, id, sizeof(id));
	/* Idle or unregistered: no dialog at all (RFC 4235 §4.1: a full
	 * document lists the dialogs there are). */
	if (state)
		snprintf(dialog, sizeof(dialog),
			 "  <dialog id=\"%s\"%s>\r\n    <state>%s</state>\r\n  </dialog>\r\n", id,
			 d == CC_DEV_RINGING ? " direction=\"recipient\"" : "", state);
	if (asprintf(&body,
		     "<?xml version=\"1.0\"?>\r\n"
		     "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"%u\" "
		     "state=\"full\" entity=\"%s\">\r\n%s</dialog-info>\r\n",
		     version, ent, dialog) < 0)
		return NULL;
	return body;
}

/* --- NOTIFY -------------------------------------------------------------------------- */

static void notify_response(struct txn *t, void *uarg, osip_message_t *resp)
{
	struct sub *s = uarg;

	(void)t;
	/* RFC 6665 §4.2.2: a 481 (or any failure but a few) ends it. */
	if (resp->status_code >= 300 && !s->terminated) {
		pr_debug("subscription to %s ended by the subscriber: %d", s->dn,
			 resp->status_code);
		sub_remove(s, false);
	}
}

static void notify_timeout(struct txn *t, void *uarg, int code)
{
	struct sub *s = uarg;

	(void)t;
	(void)code;
	if (!s->terminated)
		sub_remove(s, false);
}

static void notify_terminated(struct txn *t, void *uarg)
{
	(void)t;
	sub_put(uarg);
}

static const struct txn_user notify_user = {
	.on_response = notify_response,
	.on_timeout = notify_timeout,
	.on_terminated = notify_terminated,
};

/* A NOTIFY with the DN's state now; TERMINATED_REASON ends the
 * subscription with it ("timeout", "noresource"), NULL keeps it active. */
static void notify(struct sub *s, const char *terminated_reason)
{
	struct server *srv = s->srv;
	enum cc_dev d = cc_dev_state(srv->cc, s->dn);
	char branch[48], contact[128], state[64], entity[256];
	osip_message_t *m = NULL;
	struct sip_peer to;
	struct txn *t;
	char *body;
	uint64_t left = s->expires > srv->tw->now ? (s->expires - srv->tw->now + 999) / 1000 : 0;

	if (dialog_peer(srv, &s->dlg, &to))
		return;
	txn_new_branch(srv->txns, branch, sizeof(branch));
	contact_uri(srv, to.proto, contact, sizeof(contact));
	if (dlg_build_request(&s->dlg, "NOTIFY", 0, srv->adv_host, srv->adv_port, to.proto, branch,
			      contact, &m))
		return;
	snprintf(entity, sizeof(entity), "sip:%s@%s", s->dn, srv->cfg->sip.domain);
	body = sub_dialog_info(entity, s->dn, s->version, d);
	if (!body) {
		osip_message_free(m);
		return;
	}
	if (terminated_reason)
		snprintf(state, sizeof(state), "terminated;reason=%s", terminated_reason);
	else
		snprintf(state, sizeof(state), "active;expires=%llu", (unsigned long long)left);
	osip_message_set_header(m, "Event", "dialog");
	osip_message_set_header(m, "Subscription-State", state);
	osip_message_set_content_type(m, "application/dialog-info+xml");
	osip_message_set_body(m, body, strlen(body));
	free(body);
	s->version++;
	s->last = d;
	s->refs++;
	if (txn_request(srv->txns, m, &to, &notify_user, s, &t))
		s->refs--;
}

/* --- SUBSCRIBE ------------------------------------------------------------------------ */

static void sub_expired(struct timer *t)
{
	struct sub *s = container_of(t, struct sub, t);

	/* Only the active node speaks; a standby forgets it quietly (the
	 * active does the same at the same time and tells it anyway). */
	if (cc_publishing(s->srv->cc))
		notify(s, "timeout");
	sub_remove(s, !cc_publishing(s->srv->cc));
}

static bool is_dialog_event(const osip_message_t *req)
{
	osip_header_t *h = NULL;
	char ev[32];

	if (osip_message_header_get_byname(req, "event", 0, &h) < 0 || !h || !h->hvalue) {
		if (osip_message_header_get_byname(req, "o", 0, &h) < 0 || !h || !h->hvalue)
			return false; /* RFC 6665 §8.2.1: Event is mandatory */
	}
	snprintf(ev, sizeof(ev), "%s", h->hvalue);
	ev[strcspn(ev, "; \t")] = '\0';
	return !strcasecmp(ev, "dialog");
}

/* The Expires the subscriber asked for: -1 when absent (the default), or
 * -EINVAL when unreadable. */
static long asked_expires(const osip_message_t *req)
{
	osip_header_t *h = NULL;
	char *end;
	long v;

	if (osip_message_get_expires(req, 0, &h) < 0 || !h || !h->hvalue)
		return -1;
	v = strtol(h->hvalue, &end, 10);
	return end == h->hvalue || *end || v < 0 ? -EINVAL : v;
}

static void reply(struct server *srv, struct txn *st, int code, const char *reason, const char *tag,
		  long expires, unsigned min)
{
	osip_message_t *r = NULL;
	char v[24];

	if (sipmsg_response(st->req, code, reason, tag, &r))
		return;
	osip_message_set_header(r, "Allow-Events", "dialog");
	if (expires >= 0) {
		snprintf(v, sizeof(v), "%ld", expires);
		osip_message_set_expires(r, v);
	}
	if (min) {
		snprintf(v, sizeof(v), "%u", min);
		osip_message_set_header(r, "Min-Expires", v);
	}
	if (code >= 200 && code < 300)
		add_contact(srv, r, st->peer.proto);
	osip_message_set_header(r, "Server", "sipha");
	if (txn_respond(st, r))
		srv->st.sip_tx_errors++;
	else
		srv->st.sip_tx_responses++;
	osip_message_free(r);
}

/* How long a subscription is granted: the default without Expires, at
 * most SUB_MAX_EXPIRES; 0 stays 0 (a fetch); under [sip] min_expires it is
 * refused (-1: 423). */
static long grant(const struct server *srv, long asked)
{
	if (asked < 0)
		return SUB_DEFAULT_EXPIRES;
	if (asked == 0)
		return 0;
	if ((unsigned long)asked < srv->cfg->sip.min_expires)
		return -1;
	return asked > SUB_MAX_EXPIRES ? SUB_MAX_EXPIRES : asked;
}

void sub_on_subscribe(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct sub_table *t = srv->subs;
	const char *dn = req->req_uri ? req->req_uri->username : NULL;
	long asked = asked_expires(req), granted;
	char tag[32];
	struct sub *s;

	srv_new_tag(srv, tag, sizeof(tag));
	if (!is_dialog_event(req)) {
		reply(srv, st, 489, "Bad Event", tag, -1, 0);
		return;
	}
	if (!dn || !cc_is_extension(srv->cc, dn)) {
		reply(srv, st, 404, "Not Found", tag, -1, 0);
		return;
	}
	if (!cc_publishing(srv->cc)) {
		reply(srv, st, 503, "Service Unavailable", tag, -1, 0);
		return;
	}
	if (asked == -EINVAL) {
		reply(srv, st, 400, "Bad Expires", tag, -1, 0);
		return;
	}
	granted = grant(srv, asked);
	if (granted < 0) {
		reply(srv, st, 423, "Interval Too Brief", tag, -1, srv->cfg->sip.min_expires);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->dn = strdup(dn)) || dlg_init_uas(&s->dlg, req, tag)) {
		if (s)
			free(s->dn);
		free(s);
		reply(srv, st, 500, "Server Internal Error", tag, -1, 0);
		return;
	}
	s->srv = srv;
	s->refs = 1;
	s->dlg.peer = st->peer;
	s->expires = srv->tw->now + (uint64_t)granted * 1000;
	timer_init(&s->t, sub_expired);
	reply(srv, st, 200, "OK", tag, granted, 0);
	s->next = t->list;
	if (t->list)
		t->list->prev = s;
	t->list = s;
	t->n++;
	/* RFC 6665 §4.2.1.2: a NOTIFY at once, also for a fetch (Expires: 0),
	 * which it ends. */
	if (!granted) {
		notify(s, "timeout");
		sub_remove(s, true);
		return;
	}
	timer_add(srv->tw, &s->t, s->expires);
	notify(s, NULL);
	replicate_sub(s, false);
}

static struct sub *sub_find(const struct sub_table *t, const char *call_id, const char *tag)
{
	/* Linear: refreshes come once per subscription per hour or so. */
	for (struct sub *s = t->list; s; s = s->next)
		if (!strcmp(s->dlg.call_id, call_id) && !strcmp(s->dlg.local_tag, tag))
			return s;
	return NULL;
}

bool sub_on_indialog(struct server *srv, struct txn *st, osip_message_t *req)
{
	osip_generic_param_t *tag = NULL;
	long asked, granted;
	char cid[256];
	struct sub *s;

	if (!req->call_id || !req->call_id->number || !req->to || osip_to_get_tag(req->to, &tag) ||
	    !tag || !tag->gvalue)
		return false;
	snprintf(cid, sizeof(cid), "%s%s%s", req->call_id->number, req->call_id->host ? "@" : "",
		 req->call_id->host ? req->call_id->host : "");
	s = sub_find(srv->subs, cid, tag->gvalue);
	if (!s)
		return false;
	if (sipmsg_method_id(req->sip_method) != SIP_SUBSCRIBE) {
		reply(srv, st, 405, "Method Not Allowed", s->dlg.local_tag, -1, 0);
		return true;
	}
	if (!dlg_check_remote_cseq(&s->dlg, req)) {
		reply(srv, st, 500, "Out of Order CSeq", s->dlg.local_tag, -1, 0);
		return true;
	}
	asked = asked_expires(req);
	granted = asked == -EINVAL ? -2 : grant(srv, asked);
	if (granted == -2) {
		reply(srv, st, 400, "Bad Expires", s->dlg.local_tag, -1, 0);
		return true;
	}
	if (granted < 0) {
		reply(srv, st, 423, "Interval Too Brief", s->dlg.local_tag, -1,
		      srv->cfg->sip.min_expires);
		return true;
	}
	dlg_refresh_target(&s->dlg, req);
	if (s->dlg.peer.proto == SIP_PROTO_TCP)
		s->dlg.peer = st->peer;
	s->expires = srv->tw->now + (uint64_t)granted * 1000;
	reply(srv, st, 200, "OK", s->dlg.local_tag, granted, 0);
	if (!granted) {
		/* Unsubscribe: a last NOTIFY that says so. */
		notify(s, "timeout");
		sub_remove(s, false);
		return true;
	}
	timer_add(srv->tw, &s->t, s->expires);
	notify(s, NULL);
	replicate_sub(s, false);
	return true;
}

void sub_device_changed(void *arg, const char *dn, enum cc_dev d)
{
	struct server *srv = arg;

	(void)d;
	if (!srv->subs || !cc_publishing(srv->cc))
		return; /* a standby notifies nobody */
	for (struct sub *s = srv->subs->list, *next; s; s = next) {
		next = s->next;
		if (!strcmp(s->dn, dn)) {
			notify(s, NULL);
			replicate_sub(s, false);
		}
	}
}

void subs_take_over(struct sub_table *t)
{
	for (struct sub *s = t ? t->list : NULL, *next; s; s = next) {
		next = s->next;
		if (cc_dev_state(t->srv->cc, s->dn) != s->last) {
			notify(s, NULL);
			replicate_sub(s, false);
		}
	}
}

int sub_upsert_replica(struct server *srv, struct sub_replica *r)
{
	struct sub_table *t = srv->subs;
	struct sub *s = sub_find(t, r->dlg.call_id, r->dlg.local_tag);
	bool fresh = !s;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			dlg_free(&r->dlg);
			free(r->dn);
			return -ENOMEM;
		}
		s->srv = srv;
		s->refs = 1;
		timer_init(&s->t, sub_expired);
	}
	if (!fresh && r->version < s->version) {
		/* A snapshot's older copy after a live update: keep the newer. */
		dlg_free(&r->dlg);
		free(r->dn);
		memset(r, 0, sizeof(*r));
		return 0;
	}
	dlg_free(&s->dlg);
	free(s->dn);
	s->dlg = r->dlg;
	s->dn = r->dn;
	s->version = r->version;
	s->last = r->last;
	s->expires = srv->tw->now + r->expires_ms;
	memset(r, 0, sizeof(*r));
	timer_add(srv->tw, &s->t, s->expires);
	if (fresh) {
		s->next = t->list;
		if (t->list)
			t->list->prev = s;
		t->list = s;
		t->n++;
	}
	return 0;
}

void sub_drop_replica(struct server *srv, const char *call_id, const char *local_tag)
{
	struct sub *s = sub_find(srv->subs, call_id, local_tag);

	if (s)
		sub_remove(s, true);
}
