#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/growtab.h"
#include "core/khash.h"
#include "server/registrar.h"
#include "sip/msg.h"

struct registrar {
	char user[256]; /* the AoR user of the last REGISTER (reg_result) */
	reg_notify_fn notify;
	void *notify_arg;
	struct timer_wheel *tw;
	struct reg_limits lim;
	struct growtab aors; /* chained through reg_aor's hnext */
	size_t naors, nbindings;
};

static uint64_t hash_str(const char *s)
{
	return khash_str(s);
}

static uint64_t aor_hash(const void *e)
{
	return hash_str(((const struct reg_aor *)e)->user);
}

int reg_new(struct registrar **out, struct timer_wheel *tw, const struct reg_limits *lim)
{
	struct registrar *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->tw = tw;
	r->lim = *lim;
	if (growtab_init(&r->aors, 1024, offsetof(struct reg_aor, hnext), aor_hash)) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void reg_set_notify(struct registrar *r, reg_notify_fn fn, void *arg)
{
	r->notify = fn;
	r->notify_arg = arg;
}

static void binding_free(struct registrar *r, struct reg_binding *b)
{
	if (r->notify)
		r->notify(r->notify_arg, b->aor, b, true);
	timer_del(r->tw, &b->t);
	free(b->contact);
	free(b->call_id);
	free(b);
	r->nbindings--;
}

void reg_free(struct registrar *r)
{
	if (!r)
		return;
	r->notify = NULL; /* shutting down is no news */
	for (size_t i = 0; i < growtab_nbuckets(&r->aors); i++) {
		struct reg_aor *a = growtab_bucket(&r->aors, i), *an;

		for (; a; a = an) {
			struct reg_binding *b = a->bindings, *bn;

			an = a->hnext;
			for (; b; b = bn) {
				bn = b->next;
				binding_free(r, b);
			}
			free(a);
		}
	}
	growtab_fini(&r->aors);
	free(r);
}

static struct reg_aor **aor_slot(const struct registrar *r, const char *user)
{
	struct reg_aor **pp = (struct reg_aor **)growtab_head(&r->aors, hash_str(user));

	while (*pp && strcmp((*pp)->user, user))
		pp = &(*pp)->hnext;
	return pp;
}

const struct reg_aor *reg_find(const struct registrar *r, const char *user)
{
	return *aor_slot(r, user);
}

static void aor_drop_if_empty(struct registrar *r, struct reg_aor *a)
{
	struct reg_aor **pp;

	if (a->bindings)
		return;
	pp = aor_slot(r, a->user);
	if (*pp == a) {
		*pp = a->hnext;
		free(a);
		r->naors--;
	}
}

static void binding_unlink(struct registrar *r, struct reg_binding *b)
{
	struct reg_aor *a = b->aor;

	for (struct reg_binding **pp = &a->bindings; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			a->n--;
			break;
		}
	}
	binding_free(r, b);
	aor_drop_if_empty(r, a);
}

static void binding_expired(struct timer *t)
{
	struct reg_binding *b = container_of(t, struct reg_binding, t);

	pr_debug("registrar: %s: %s expired", b->aor->user, b->contact);
	binding_unlink(b->aor->r, b);
}

static struct reg_aor *aor_get(struct registrar *r, const char *user, bool create)
{
	struct reg_aor **pp, *a;
	size_t len;

	/* a step of growth first: it moves chains, PP must come after it */
	if (create)
		growtab_step(&r->aors, r->naors, 1, SIZE_MAX);
	pp = aor_slot(r, user);
	if (*pp || !create)
		return *pp;
	if (r->naors >= r->lim.max_aors)
		return NULL;
	len = strlen(user);
	a = calloc(1, sizeof(*a) + len + 1);
	if (!a)
		return NULL;
	a->r = r;
	memcpy(a->user, user, len + 1);
	*pp = a;
	r->naors++;
	return a;
}

static struct reg_binding *binding_find(const struct reg_aor *a, const char *contact)
{
	for (struct reg_binding *b = a ? a->bindings : NULL; b; b = b->next) {
		/* RFC 3261 §19.1.4 URI equality is finer than this (case of
		 * scheme and host, parameter order); byte equality is what our
		 * own clients send back, and errs only towards an extra binding. */
		if (!strcmp(b->contact, contact))
			return b;
	}
	return NULL;
}

int reg_bind(struct registrar *r, const char *user, const char *contact, unsigned expires_s,
	     const char *call_id, uint32_t cseq, unsigned q, const struct sip_peer *src,
	     uint64_t now)
{
	struct reg_aor *a = aor_get(r, user, expires_s > 0);
	struct reg_binding *b;
	char *cid;

	if (!a)
		return expires_s ? -ENOSPC : 0;
	b = binding_find(a, contact);
	if (!expires_s) {
		if (b)
			binding_unlink(r, b);
		return 0;
	}
	cid = strdup(call_id ? call_id : "");
	if (!cid)
		goto nomem;
	if (!b) {
		if (a->n >= r->lim.max_contacts) {
			free(cid);
			aor_drop_if_empty(r, a);
			return -ENOSPC;
		}
		b = calloc(1, sizeof(*b));
		if (!b || !(b->contact = strdup(contact))) {
			free(b);
			free(cid);
			goto nomem;
		}
		timer_init(&b->t, binding_expired);
		b->aor = a;
		b->next = a->bindings;
		a->bindings = b;
		a->n++;
		r->nbindings++;
	}
	free(b->call_id);
	b->call_id = cid;
	b->cseq = cseq;
	b->q = q;
	if (src)
		b->src = *src;
	else
		memset(&b->src, 0, sizeof(b->src));
	b->expires = now + (uint64_t)expires_s * 1000;
	timer_add(r->tw, &b->t, b->expires);
	if (r->notify)
		r->notify(r->notify_arg, a, b, false);
	return 0;
nomem:
	aor_drop_if_empty(r, a);
	return -ENOMEM;
}

void reg_unbind_all(struct registrar *r, const char *user)
{
	struct reg_aor *a = aor_get(r, user, false);

	while (a && a->bindings) {
		struct reg_binding *b = a->bindings;

		if (!b->next) {
			binding_unlink(r, b); /* frees the AoR too */
			return;
		}
		a->bindings = b->next;
		a->n--;
		binding_free(r, b);
	}
}

size_t reg_binding_count(const struct registrar *r)
{
	return r->nbindings;
}

size_t reg_aor_count(const struct registrar *r)
{
	return r->naors;
}

void reg_foreach(const struct registrar *r, reg_iter_fn fn, void *arg)
{
	for (size_t i = 0; i < growtab_nbuckets(&r->aors); i++)
		for (const struct reg_aor *a = growtab_bucket(&r->aors, i); a; a = a->hnext)
			for (const struct reg_binding *b = a->bindings; b; b = b->next)
				fn(arg, a, b);
}

/* --- REGISTER processing (RFC 3261 §10.3) ------------------------------------- */

#define REG_MAX_CONTACTS_PER_REQ 32

struct reg_change {
	char *uri;
	unsigned expires;
	unsigned q;
};

static bool is_ip_literal(const char *host)
{
	for (const char *p = host; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != ':' && *p != '[' &&
		    *p != ']' && !isxdigit((unsigned char)*p))
			return false;
	return strchr(host, '.') || strchr(host, ':');
}

static bool parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno)
		v = max; /* an absurdly large delta means "as long as allowed" */
	*out = v > max ? (unsigned)max : (unsigned)v;
	return true;
}

/* q-value "0.5" → 500; false on junk. */
static bool parse_q(const char *s, unsigned *out)
{
	unsigned v = 0, scale = 1000;

	if (s[0] == '1') {
		*out = 1000;
		return true;
	}
	if (s[0] != '0')
		return false;
	if (s[1] == '.')
		for (const char *p = s + 2; *p && scale > 1; p++) {
			if (!isdigit((unsigned char)*p))
				return false;
			scale /= 10;
			v += (unsigned)(*p - '0') * scale;
		}
	*out = v;
	return true;
}

static void fail(struct reg_result *res, int code, const char *reason)
{
	res->code = code;
	res->reason = reason;
}

static void free_changes(struct reg_change *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		osip_free(c[i].uri);
}

/* Contact URIs as written, in order (RAW_MAX of them at most). */
struct raw_contacts {
	char *uri[REG_MAX_CONTACTS_PER_REQ + 1];
	unsigned n;
	bool overflow;
};

static void collect_contact(void *arg, const char *uri, size_t len)
{
	struct raw_contacts *rc = arg;

	if (len == 1 && uri[0] == '*')
		return; /* the wildcard has no URI */
	if (rc->n == REG_MAX_CONTACTS_PER_REQ + 1) {
		rc->overflow = true;
		return;
	}
	rc->uri[rc->n] = osip_malloc(len + 1);
	if (!rc->uri[rc->n]) {
		rc->overflow = true;
		return;
	}
	memcpy(rc->uri[rc->n], uri, len);
	rc->uri[rc->n++][len] = '\0';
}

static void take_user(void *arg, const char *uri, size_t len)
{
	struct registrar *r = arg;

	if (sipmsg_uri_user(uri, len, r->user, sizeof(r->user)))
		r->user[0] = '\0';
}

/* Reads the Contacts of REQ into CH; false with RES set on a refusal.
 * RC holds the same contacts as written; used when they line up one to
 * one with what libosip2 parsed. */
static bool read_contacts(struct registrar *r, const osip_message_t *req, unsigned hdr_expires,
			  struct raw_contacts *rc, struct reg_change *ch, unsigned *nch, bool *star,
			  struct reg_result *res)
{
	osip_contact_t *c;
	int pos = 0;

	*nch = 0;
	*star = false;
	while (osip_message_get_contact(req, pos++, &c) >= 0) {
		osip_generic_param_t *p = NULL;
		unsigned e = hdr_expires, q = 1000;

		if (c->displayname && !strcmp(c->displayname, "*") && !c->url) {
			*star = true;
			continue;
		}
		if (!c->url || !c->url->scheme) {
			fail(res, 400, "Bad Contact");
			return false;
		}
		if (*nch == REG_MAX_CONTACTS_PER_REQ) {
			fail(res, 403, "Too Many Contacts");
			return false;
		}
		if (osip_contact_param_get_byname(c, "expires", &p) >= 0 && p && p->gvalue &&
		    !parse_uint(p->gvalue, UINT32_MAX, &e)) {
			fail(res, 400, "Bad Contact expires");
			return false;
		}
		p = NULL;
		if (osip_contact_param_get_byname(c, "q", &p) >= 0 && p && p->gvalue &&
		    !parse_q(p->gvalue, &q)) {
			fail(res, 400, "Bad Contact q-value");
			return false;
		}
		if (e && e < r->lim.min_expires) {
			res->min_expires = r->lim.min_expires;
			fail(res, 423, "Interval Too Brief");
			return false;
		}
		if (e > r->lim.max_expires)
			e = r->lim.max_expires;
		if (rc->n && !rc->overflow) {
			ch[*nch].uri = rc->uri[*nch];
			rc->uri[*nch] = NULL;
		} else if (osip_uri_to_str(c->url, &ch[*nch].uri) != 0) {
			fail(res, 400, "Bad Contact");
			return false;
		}
		ch[*nch].expires = e;
		ch[*nch].q = q;
		(*nch)++;
	}
	if (*star && (*nch || hdr_expires != 0)) {
		fail(res, 400, "Invalid wildcard Contact");
		return false;
	}
	return true;
}

/* RFC 3261 §10.3 step 7: same Call-ID with an old CSeq is out of order. */
static bool in_order(const struct reg_aor *a, const char *uri, const char *call_id, uint32_t cseq)
{
	const struct reg_binding *b = uri ? binding_find(a, uri) : NULL;

	if (!uri) {
		for (b = a ? a->bindings : NULL; b; b = b->next)
			if (!strcmp(b->call_id, call_id) && cseq < b->cseq)
				return false;
		return true;
	}
	/* An equal CSeq is the same request again (a retransmission): harmless. */
	return !b || strcmp(b->call_id, call_id) || cseq >= b->cseq;
}

static unsigned count_contacts(const osip_message_t *req)
{
	osip_contact_t *c;
	unsigned n = 0;
	int pos = 0;

	while (osip_message_get_contact(req, pos++, &c) >= 0)
		if (!(c->displayname && !strcmp(c->displayname, "*") && !c->url))
			n++;
	return n;
}

void reg_register(struct registrar *r, const osip_message_t *req, const struct sipmsg_ix *ix,
		  const struct sip_peer *src, uint64_t now, struct reg_result *res)
{
	struct raw_contacts rc = { .n = 0 };
	struct reg_change ch[REG_MAX_CONTACTS_PER_REQ];
	osip_header_t *eh = NULL;
	const osip_uri_t *to;
	const char *call_id;
	unsigned hdr_expires = r->lim.default_expires, nch = 0, added = 0;
	uint32_t cseq;
	bool star;
	struct reg_aor *a;

	memset(res, 0, sizeof(*res));
	fail(res, 200, "OK");
	to = req->to ? req->to->url : NULL;
	if (!to || !to->scheme ||
	    (osip_strcasecmp(to->scheme, "sip") && osip_strcasecmp(to->scheme, "sips"))) {
		fail(res, 404, "Not Found");
		return;
	}
	if (!to->username || !*to->username) {
		fail(res, 404, "Not Found");
		return;
	}
	if (!to->host || (osip_strcasecmp(to->host, r->lim.domain) && !is_ip_literal(to->host))) {
		fail(res, 403, "Domain Not Served");
		return;
	}
	/* The AoR key: the To user as written, in canonical escaped form. */
	r->user[0] = '\0';
	if (ix)
		sipmsg_ix_uris(ix, false, take_user, r);
	if (!r->user[0])
		snprintf(r->user, sizeof(r->user), "%s", to->username);
	res->aor_user = r->user;
	if (strlen(r->user) > 128) {
		fail(res, 404, "Not Found");
		return;
	}
	if (osip_message_get_expires(req, 0, &eh) >= 0 && eh && eh->hvalue &&
	    !parse_uint(eh->hvalue, UINT32_MAX, &hdr_expires)) {
		fail(res, 400, "Bad Expires");
		return;
	}
	call_id = req->call_id && req->call_id->number ? req->call_id->number : "";
	cseq = req->cseq && req->cseq->number ? (uint32_t)strtoul(req->cseq->number, NULL, 10) : 0;
	if (ix) {
		sipmsg_ix_uris(ix, true, collect_contact, &rc);
		if (rc.n != count_contacts(req))
			rc.overflow = true; /* they do not line up: use libosip2's */
	}
	if (!read_contacts(r, req, hdr_expires, &rc, ch, &nch, &star, res))
		goto out;

	a = aor_get(r, r->user, false);
	if (star) {
		if (!in_order(a, NULL, call_id, cseq)) {
			fail(res, 500, "Out of Order");
			goto out;
		}
		reg_unbind_all(r, r->user);
		goto out;
	}
	for (unsigned i = 0; i < nch; i++) {
		if (!in_order(a, ch[i].uri, call_id, cseq)) {
			fail(res, 500, "Out of Order");
			goto out;
		}
		if (ch[i].expires && !binding_find(a, ch[i].uri))
			added++;
	}
	if (added && (a ? a->n : 0) + added > r->lim.max_contacts) {
		fail(res, 403, "Too Many Contacts");
		goto out;
	}
	if (added && !a && r->naors >= r->lim.max_aors) {
		fail(res, 503, "Registrar Full");
		goto out;
	}
	for (unsigned i = 0; i < nch; i++) {
		if (reg_bind(r, r->user, ch[i].uri, ch[i].expires, call_id, cseq, ch[i].q, src,
			     now)) {
			/* Only memory can fail here, the limits were checked. */
			fail(res, 500, "Server Internal Error");
			goto out;
		}
	}
out:
	free_changes(ch, nch);
	for (unsigned i = 0; i < rc.n; i++)
		osip_free(rc.uri[i]);
}

ssize_t reg_contacts_text(struct registrar *r, const char *user, uint64_t now, char *buf,
			  size_t cap)
{
	const struct reg_aor *a = reg_find(r, user);
	size_t o = 0;

	for (const struct reg_binding *b = a ? a->bindings : NULL; b; b = b->next) {
		uint64_t left = b->expires > now ? (b->expires - now + 999) / 1000 : 0;
		int n = snprintf(buf + o, cap - o, "Contact: <%s>;expires=%llu\r\n", b->contact,
				 (unsigned long long)left);

		if (n < 0 || (size_t)n >= cap - o)
			return -ENOSPC;
		o += (size_t)n;
	}
	return (ssize_t)o;
}

int reg_fill_contacts(struct registrar *r, const char *user, uint64_t now, osip_message_t *resp)
{
	const struct reg_aor *a = reg_find(r, user);
	char *buf;
	int ret;

	for (const struct reg_binding *b = a ? a->bindings : NULL; b; b = b->next) {
		uint64_t left = b->expires > now ? (b->expires - now + 999) / 1000 : 0;
		size_t len = strlen(b->contact) * 2 + 48, o = 0;

		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		/* libosip2 would decode an escaped NUL and cut the URI there; the
		 * message layer carries it as %C0%80 and prints %00 again. */
		buf[o++] = '<';
		for (const char *p = b->contact; *p; p++) {
			if (!strncmp(p, "%00", 3)) {
				memcpy(buf + o, "%C0%80", 6);
				o += 6;
				p += 2;
			} else {
				buf[o++] = *p;
			}
		}
		snprintf(buf + o, len - o, ">;expires=%llu", (unsigned long long)left);
		ret = osip_message_set_contact(resp, buf);
		free(buf);
		if (ret)
			return -ENOMEM;
	}
	return 0;
}
