#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ha/replica.h"
#include "server/call.h"
#include "server/server.h"
#include "server/subscribe.h"

/* Call record fields (kind JR_KIND_CALL). */
enum rep_call_attr {
	RC_ID = 1, /* u64 */
	RC_STATE, /* u8, enum call_state */
	RC_DN, /* string */
	RC_FROM, /* string */
	RC_TO, /* string */
	RC_LEG_A, /* nested rep_leg_attr */
	RC_LEG_B, /* nested rep_leg_attr */
	RC_A_INVITE, /* binary: the caller's INVITE while the call is set up */
	RC_B_INVITE, /* binary: sipha's INVITE to the callee, likewise */
	RC_A_OK, /* binary: the 2xx to the caller while its ACK is awaited */
	RC_A_OK_CSEQ, /* u32: its CSeq */
	RC_B_ACK_CSEQ, /* u32: the CSeq the callee's ACK carries */
	RC_B_ACK_DEFERRED, /* flag: that ACK waits for the caller's (delayed offer) */
	RC_ROUTED_TO, /* string: routed from a routing point to this DN or URI */
	RC_COUNT
};
#define RC_MAX (RC_COUNT - 1)

enum rep_leg_attr {
	RL_CALL_ID = 1,
	RL_LOCAL_TAG,
	RL_REMOTE_TAG,
	RL_LOCAL_URI,
	RL_LOCAL_NAME,
	RL_REMOTE_URI,
	RL_REMOTE_NAME,
	RL_TARGET,
	RL_ROUTE, /* multi */
	RL_LOCAL_CSEQ,
	RL_REMOTE_CSEQ,
	RL_PROTO,
	RL_ADDR, /* binary sockaddr */
	RL_COUNT
};
#define RL_MAX (RL_COUNT - 1)

#define STR(min)                                                       \
	{                                                              \
		.kind = JR_A_STRING, .min_len = (min), .max_len = 4096 \
	}

static const struct jr_policy leg_policy[RL_COUNT] = {
	[RL_CALL_ID] = { .kind = JR_A_STRING,
			 .flags = JR_PF_REQUIRED,
			 .min_len = 1,
			 .max_len = 512 },
	[RL_LOCAL_TAG] = { .kind = JR_A_STRING,
			   .flags = JR_PF_REQUIRED,
			   .min_len = 1,
			   .max_len = 256 },
	[RL_REMOTE_TAG] = { .kind = JR_A_STRING, .max_len = 256 },
	[RL_LOCAL_URI] = { .kind = JR_A_STRING,
			   .flags = JR_PF_REQUIRED,
			   .min_len = 1,
			   .max_len = 4096 },
	[RL_LOCAL_NAME] = STR(0),
	[RL_REMOTE_URI] = { .kind = JR_A_STRING,
			    .flags = JR_PF_REQUIRED,
			    .min_len = 1,
			    .max_len = 4096 },
	[RL_REMOTE_NAME] = STR(0),
	[RL_TARGET] = { .kind = JR_A_STRING,
			.flags = JR_PF_REQUIRED,
			.min_len = 1,
			.max_len = 4096 },
	[RL_ROUTE] = { .kind = JR_A_STRING, .flags = JR_PF_MULTI, .min_len = 1, .max_len = 4096 },
	[RL_LOCAL_CSEQ] = { .kind = JR_A_U32 },
	[RL_REMOTE_CSEQ] = { .kind = JR_A_U32 },
	[RL_PROTO] = { .kind = JR_A_U8 },
	[RL_ADDR] = { .kind = JR_A_BINARY, .max_len = sizeof(struct sockaddr_storage) },
};

static const struct jr_policy call_policy[RC_COUNT] = {
	[RC_ID] = { .kind = JR_A_U64, .flags = JR_PF_REQUIRED },
	[RC_STATE] = { .kind = JR_A_U8, .flags = JR_PF_REQUIRED },
	[RC_DN] = STR(0),
	[RC_FROM] = STR(0),
	[RC_TO] = STR(0),
	[RC_LEG_A] = { .kind = JR_A_NESTED,
		       .flags = JR_PF_REQUIRED,
		       .nested = leg_policy,
		       .nested_max = RL_MAX },
	/* absent only while the call is queued on a routing point */
	[RC_LEG_B] = { .kind = JR_A_NESTED, .nested = leg_policy, .nested_max = RL_MAX },
	[RC_A_INVITE] = { .kind = JR_A_BINARY, .min_len = 1, .max_len = 65535 },
	[RC_B_INVITE] = { .kind = JR_A_BINARY, .min_len = 1, .max_len = 65535 },
	[RC_A_OK] = { .kind = JR_A_BINARY, .min_len = 1, .max_len = 65535 },
	[RC_A_OK_CSEQ] = { .kind = JR_A_U32 },
	[RC_B_ACK_CSEQ] = { .kind = JR_A_U32 },
	[RC_B_ACK_DEFERRED] = { .kind = JR_A_FLAG },
	[RC_ROUTED_TO] = { .kind = JR_A_STRING, .min_len = 1, .max_len = 512 },
};

/* Subscription record fields (kind JR_KIND_SUBSCRIPTION). */
enum rep_sub_attr {
	RS_DN = 1, /* string: the extension watched */
	RS_DIALOG, /* nested rep_leg_attr: the subscription's dialog */
	RS_EXPIRES_MS, /* u64: lifetime left when encoded */
	RS_VERSION, /* u32: the next NOTIFY's version */
	RS_LAST, /* u8 enum cc_dev: what the last NOTIFY said */
	RS_COUNT
};
#define RS_MAX (RS_COUNT - 1)

static const struct jr_policy sub_policy[RS_COUNT] = {
	[RS_DN] = { .kind = JR_A_STRING, .flags = JR_PF_REQUIRED, .min_len = 1, .max_len = 64 },
	[RS_DIALOG] = { .kind = JR_A_NESTED,
			.flags = JR_PF_REQUIRED,
			.nested = leg_policy,
			.nested_max = RL_MAX },
	[RS_EXPIRES_MS] = { .kind = JR_A_U64, .flags = JR_PF_REQUIRED },
	[RS_VERSION] = { .kind = JR_A_U32, .flags = JR_PF_REQUIRED },
	[RS_LAST] = { .kind = JR_A_U8 },
};

/* The key of a call: its A-leg dialog (Call-ID, NUL, sipha's tag), which
 * both nodes index, so the standby needs no table of its own. */
static int dialog_key(const struct dialog *d, uint8_t *key, size_t size)
{
	size_t a = strlen(d->call_id), b = strlen(d->local_tag);

	if (a + 1 + b > size)
		return -ENAMETOOLONG;
	memcpy(key, d->call_id, a);
	key[a] = '\0';
	memcpy(key + a + 1, d->local_tag, b);
	return (int)(a + 1 + b);
}

static void put_opt(struct jr_buf *b, uint16_t type, const char *s)
{
	if (s)
		jr_put_str(b, type, s);
}

static void put_dialog(struct jr_buf *b, uint16_t type, const struct dialog *d)
{
	jr_nest_begin(b, type);
	jr_put_str(b, RL_CALL_ID, d->call_id);
	jr_put_str(b, RL_LOCAL_TAG, d->local_tag);
	put_opt(b, RL_REMOTE_TAG, d->remote_tag);
	jr_put_str(b, RL_LOCAL_URI, d->local_uri);
	put_opt(b, RL_LOCAL_NAME, d->local_name);
	jr_put_str(b, RL_REMOTE_URI, d->remote_uri);
	put_opt(b, RL_REMOTE_NAME, d->remote_name);
	jr_put_str(b, RL_TARGET, d->remote_target);
	for (unsigned i = 0; i < d->nroutes; i++)
		jr_put_str(b, RL_ROUTE, d->routes[i]);
	jr_put_u32(b, RL_LOCAL_CSEQ, d->local_cseq);
	jr_put_u32(b, RL_REMOTE_CSEQ, d->remote_cseq);
	jr_put_u8(b, RL_PROTO, d->peer.proto == SIP_PROTO_TCP ? JR_PROTO_TCP : JR_PROTO_UDP);
	if (d->peer.addrlen)
		jr_put_bytes(b, RL_ADDR, &d->peer.addr, d->peer.addrlen);
	jr_nest_end(b);
}

static void put_invite(struct jr_buf *b, uint16_t type, const struct call *c, bool b_side)
{
	size_t len;
	char *inv = call_pending_invite(c, b_side, &len);

	if (inv)
		jr_put_bytes(b, type, inv, len);
	free(inv);
}

int rep_call_encode(struct jr_buf *b, uint64_t seq, const struct call *c, uint8_t op)
{
	uint8_t key[1024];
	int klen = dialog_key(&c->a.dlg, key, sizeof(key)), ret;

	if (klen < 0)
		return klen;
	ret = jr_record_begin(b, seq, JR_KIND_CALL, op, key, (size_t)klen);
	if (ret)
		return ret;
	if (op == JR_OP_UPSERT) {
		jr_put_u64(b, RC_ID, c->id);
		jr_put_u8(b, RC_STATE, (uint8_t)c->state);
		put_opt(b, RC_DN, c->dn);
		put_opt(b, RC_FROM, c->from);
		put_opt(b, RC_TO, c->to);
		put_dialog(b, RC_LEG_A, &c->a.dlg);
		if (c->b.dlg.call_id)
			put_dialog(b, RC_LEG_B, &c->b.dlg);
		put_opt(b, RC_ROUTED_TO, c->routed_to);
		put_invite(b, RC_A_INVITE, c, false);
		put_invite(b, RC_B_INVITE, c, true);
		if (c->a.ok.buf) {
			jr_put_bytes(b, RC_A_OK, c->a.ok.buf, c->a.ok.len);
			jr_put_u32(b, RC_A_OK_CSEQ, c->a.ok.cseq);
		}
		if (c->b.ack_cseq)
			jr_put_u32(b, RC_B_ACK_CSEQ, c->b.ack_cseq);
		if (c->b.ack_deferred)
			jr_put_flag(b, RC_B_ACK_DEFERRED);
	}
	return jr_record_end(b);
}

int rep_sub_encode(struct jr_buf *b, uint64_t seq, const struct sub *s, uint8_t op, uint64_t now)
{
	uint8_t key[1024];
	int klen = dialog_key(&s->dlg, key, sizeof(key)), ret;

	if (klen < 0)
		return klen;
	ret = jr_record_begin(b, seq, JR_KIND_SUBSCRIPTION, op, key, (size_t)klen);
	if (ret)
		return ret;
	if (op == JR_OP_UPSERT) {
		jr_put_str(b, RS_DN, s->dn);
		put_dialog(b, RS_DIALOG, &s->dlg);
		jr_put_u64(b, RS_EXPIRES_MS, s->expires > now ? s->expires - now : 0);
		jr_put_u32(b, RS_VERSION, s->version);
		jr_put_u8(b, RS_LAST, (uint8_t)s->last);
	}
	return jr_record_end(b);
}

int rep_reg_encode(struct jr_buf *b, uint64_t seq, const struct reg_aor *aor,
		   const struct reg_binding *rb, uint8_t op, uint64_t now)
{
	struct jr_reg_binding jb;

	memset(&jb, 0, sizeof(jb));
	if (strlen(aor->user) > JR_REG_USER_MAX || strlen(rb->contact) > JR_REG_CONTACT_MAX ||
	    strlen(rb->call_id) > JR_REG_CALLID_MAX)
		return -ENAMETOOLONG;
	strcpy(jb.user, aor->user);
	strcpy(jb.contact, rb->contact);
	strcpy(jb.call_id, rb->call_id);
	jb.expires_ms = rb->expires > now ? rb->expires - now : 0;
	jb.cseq = rb->cseq;
	jb.q = (uint16_t)rb->q;
	jb.src_proto = rb->src.proto == SIP_PROTO_TCP ? JR_PROTO_TCP : JR_PROTO_UDP;
	if (rb->src.addrlen)
		memcpy(&jb.src, &rb->src.addr, rb->src.addrlen);
	else
		jb.src.ss_family = AF_UNSPEC;
	return jr_reg_encode(b, seq, op, &jb);
}

/* --- the standby side ----------------------------------------------------------- */

static char *attr_dup(const struct jr_attr *a)
{
	char *s;

	if (!a->data)
		return NULL;
	s = malloc(a->len + 1);
	if (s) {
		memcpy(s, a->data, a->len);
		s[a->len] = '\0';
	}
	return s;
}

static int leg_decode(const struct jr_attr *nest, struct dialog *d)
{
	struct jr_attr tb[RL_COUNT];
	size_t off = 0;
	struct jr_attr a;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = jr_parse(nest->data, nest->len, leg_policy, RL_MAX, tb, NULL, NULL);
	if (ret)
		return ret;
	d->call_id = attr_dup(&tb[RL_CALL_ID]);
	d->local_tag = attr_dup(&tb[RL_LOCAL_TAG]);
	d->remote_tag = attr_dup(&tb[RL_REMOTE_TAG]);
	d->local_uri = attr_dup(&tb[RL_LOCAL_URI]);
	d->local_name = attr_dup(&tb[RL_LOCAL_NAME]);
	d->remote_uri = attr_dup(&tb[RL_REMOTE_URI]);
	d->remote_name = attr_dup(&tb[RL_REMOTE_NAME]);
	d->remote_target = attr_dup(&tb[RL_TARGET]);
	if (!d->call_id || !d->local_tag || !d->local_uri || !d->remote_uri || !d->remote_target)
		goto nomem;
	while ((ret = jr_attr_next(nest->data, nest->len, &off, &a)) == 1) {
		if (a.type != RL_ROUTE)
			continue;
		if (d->nroutes == DLG_MAX_ROUTES) {
			ret = -EBADMSG;
			goto err;
		}
		d->routes[d->nroutes] = attr_dup(&a);
		if (!d->routes[d->nroutes++])
			goto nomem;
	}
	if (ret < 0)
		goto err;
	d->local_cseq = jr_attr_u32(&tb[RL_LOCAL_CSEQ]);
	d->remote_cseq = jr_attr_u32(&tb[RL_REMOTE_CSEQ]);
	d->remote_cseq_set = true;
	d->peer.proto = jr_attr_u8(&tb[RL_PROTO]) == JR_PROTO_TCP ? SIP_PROTO_TCP : SIP_PROTO_UDP;
	if (tb[RL_ADDR].data) {
		sa_family_t fam;

		/* Only an IPv4 or IPv6 address of exactly its size: this is where
		 * in-dialog requests will be sent. */
		if (tb[RL_ADDR].len < sizeof(fam)) {
			ret = -EBADMSG;
			goto err;
		}
		memcpy(&fam, tb[RL_ADDR].data, sizeof(fam));
		if (!((fam == AF_INET && tb[RL_ADDR].len == sizeof(struct sockaddr_in)) ||
		      (fam == AF_INET6 && tb[RL_ADDR].len == sizeof(struct sockaddr_in6)))) {
			ret = -EBADMSG;
			goto err;
		}
		memcpy(&d->peer.addr, tb[RL_ADDR].data, tb[RL_ADDR].len);
		d->peer.addrlen = tb[RL_ADDR].len;
	}
	return 0;
nomem:
	ret = -ENOMEM;
err:
	dlg_free(d);
	return ret;
}

static char *attr_copy(const struct jr_attr *a, size_t *len)
{
	char *p = NULL;

	*len = 0;
	if (a->data && (p = malloc(a->len))) {
		memcpy(p, a->data, a->len);
		*len = a->len;
	}
	return p;
}

static int apply_call(struct server *srv, const struct jr_record *r)
{
	struct jr_attr tb[RC_COUNT];
	struct call_replica cr;
	const char *tag;
	int ret;

	tag = memchr(r->key, '\0', r->key_len);
	if (!tag || tag == (const char *)r->key + r->key_len - 1)
		return -EBADMSG;
	if (r->op == JR_OP_DELETE) {
		char cid[1024], t[512];
		size_t clen = (size_t)(tag - (const char *)r->key), tlen = r->key_len - clen - 1;

		if (clen >= sizeof(cid) || tlen >= sizeof(t))
			return -EBADMSG;
		memcpy(cid, r->key, clen);
		cid[clen] = '\0';
		memcpy(t, tag + 1, tlen);
		t[tlen] = '\0';
		call_drop_replica(srv, cid, t);
		return 0;
	}
	if (!r->has_fields)
		return -EBADMSG;
	ret = jr_parse(r->fields, r->fields_len, call_policy, RC_MAX, tb, NULL, NULL);
	if (ret)
		return ret;
	if (jr_attr_u8(&tb[RC_STATE]) >= CALL_RELEASED)
		return -EBADMSG;
	/* Only a queued call has no B leg yet; it cannot be resumed without
	 * the caller's INVITE. */
	if (jr_attr_u8(&tb[RC_STATE]) == CALL_QUEUED ? !tb[RC_A_INVITE].data : !tb[RC_LEG_B].data)
		return -EBADMSG;
	memset(&cr, 0, sizeof(cr));
	ret = leg_decode(&tb[RC_LEG_A], &cr.a);
	if (ret)
		return ret;
	ret = tb[RC_LEG_B].data ? leg_decode(&tb[RC_LEG_B], &cr.b) : 0;
	if (ret) {
		dlg_free(&cr.a);
		return ret;
	}
	cr.id = jr_attr_u64(&tb[RC_ID]);
	cr.state = (enum call_state)jr_attr_u8(&tb[RC_STATE]);
	cr.dn = attr_dup(&tb[RC_DN]);
	cr.from = attr_dup(&tb[RC_FROM]);
	cr.to = attr_dup(&tb[RC_TO]);
	cr.routed_to = attr_dup(&tb[RC_ROUTED_TO]);
	cr.a_invite = attr_copy(&tb[RC_A_INVITE], &cr.a_invite_len);
	cr.b_invite = attr_copy(&tb[RC_B_INVITE], &cr.b_invite_len);
	cr.a_ok = attr_copy(&tb[RC_A_OK], &cr.a_ok_len);
	cr.a_ok_cseq = jr_attr_u32(&tb[RC_A_OK_CSEQ]);
	cr.b_ack_cseq = jr_attr_u32(&tb[RC_B_ACK_CSEQ]);
	cr.b_ack_deferred = tb[RC_B_ACK_DEFERRED].type != 0;
	/* call_upsert_replica takes the dialogs and strings, whatever it returns */
	return call_upsert_replica(srv, &cr);
}

/* A key "Call-ID NUL tag" into its two strings: 0 or -EBADMSG. */
static int split_key(const struct jr_record *r, char *cid, size_t csize, char *t, size_t tsize)
{
	const char *tag = memchr(r->key, '\0', r->key_len);
	size_t clen, tlen;

	if (!tag || tag == (const char *)r->key + r->key_len - 1 || tag == (const char *)r->key)
		return -EBADMSG;
	clen = (size_t)(tag - (const char *)r->key);
	tlen = r->key_len - clen - 1;
	if (clen >= csize || tlen >= tsize || memchr(tag + 1, '\0', tlen))
		return -EBADMSG;
	memcpy(cid, r->key, clen);
	cid[clen] = '\0';
	memcpy(t, tag + 1, tlen);
	t[tlen] = '\0';
	return 0;
}

static int apply_sub(struct server *srv, const struct jr_record *r)
{
	struct jr_attr tb[RS_COUNT];
	struct sub_replica sr;
	char cid[1024], t[512];
	uint64_t ms;
	int ret;

	if (split_key(r, cid, sizeof(cid), t, sizeof(t)))
		return -EBADMSG;
	if (r->op == JR_OP_DELETE) {
		sub_drop_replica(srv, cid, t);
		return 0;
	}
	if (!r->has_fields ||
	    jr_parse(r->fields, r->fields_len, sub_policy, RS_MAX, tb, NULL, NULL))
		return -EBADMSG;
	ms = jr_attr_u64(&tb[RS_EXPIRES_MS]);
	if (ms > (uint64_t)SUB_MAX_EXPIRES * 1000 || jr_attr_u8(&tb[RS_LAST]) > CC_DEV_BUSY)
		return -EBADMSG;
	memset(&sr, 0, sizeof(sr));
	ret = leg_decode(&tb[RS_DIALOG], &sr.dlg);
	if (ret)
		return ret;
	if (strcmp(sr.dlg.call_id, cid) || strcmp(sr.dlg.local_tag, t)) {
		dlg_free(&sr.dlg);
		return -EBADMSG;
	}
	sr.dn = attr_dup(&tb[RS_DN]);
	if (!sr.dn) {
		dlg_free(&sr.dlg);
		return -ENOMEM;
	}
	sr.expires_ms = ms;
	sr.version = jr_attr_u32(&tb[RS_VERSION]);
	sr.last = (enum cc_dev)jr_attr_u8(&tb[RS_LAST]);
	return sub_upsert_replica(srv, &sr);
}

static int apply_reg(struct server *srv, const struct jr_record *r)
{
	struct jr_reg_binding jb;
	struct sip_peer src = { 0 };
	int ret = jr_reg_decode(r, &jb);

	if (ret)
		return ret;
	if (r->op == JR_OP_DELETE)
		return reg_bind(srv->reg, jb.user, jb.contact, 0, NULL, 0, 0, NULL, srv->tw->now);
	if (jb.src.ss_family == AF_INET || jb.src.ss_family == AF_INET6) {
		src.proto = jb.src_proto == JR_PROTO_TCP ? SIP_PROTO_TCP : SIP_PROTO_UDP;
		src.addr = jb.src;
		src.addrlen = jb.src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
							  : sizeof(struct sockaddr_in6);
	}
	/* Rounded up to whole seconds: the binding may outlive the active's by
	 * under a second, never the other way round.  Never past this node's
	 * own max_expires: a peer's value is not trusted blindly. */
	if (jb.expires_ms > (uint64_t)srv->cfg->sip.max_expires * 1000)
		jb.expires_ms = (uint64_t)srv->cfg->sip.max_expires * 1000;
	return reg_bind(srv->reg, jb.user, jb.contact, (unsigned)((jb.expires_ms + 999) / 1000),
			jb.call_id, jb.cseq, jb.q, src.addrlen ? &src : NULL, srv->tw->now);
}

int rep_apply(struct server *srv, const struct jr_record *r)
{
	switch (r->kind) {
	case JR_KIND_CALL:
		return apply_call(srv, r);
	case JR_KIND_REGISTRATION:
		return apply_reg(srv, r);
	case JR_KIND_CTI_SEQ:
		return rep_apply_event(srv, r);
	case JR_KIND_AGENT:
		return rep_apply_agent(srv, r);
	case JR_KIND_SUBSCRIPTION:
		return apply_sub(srv, r);
	default:
		return 0; /* kinds of later versions: ignored */
	}
}

struct reg_list {
	char (*users)[JR_REG_USER_MAX + 1];
	size_t n, cap;
};

static void collect_user(void *arg, const struct reg_aor *a, const struct reg_binding *b)
{
	struct reg_list *l = arg;

	(void)b;
	if (l->n && !strcmp(l->users[l->n - 1], a->user))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *p = realloc(l->users, cap * sizeof(*l->users));

		if (!p)
			return;
		l->users = p;
		l->cap = cap;
	}
	snprintf(l->users[l->n++], sizeof(l->users[0]), "%s", a->user);
}

int rep_reg_users(struct server *srv, char (**users)[JR_REG_USER_MAX + 1], size_t *n)
{
	struct reg_list l = { 0 };

	reg_foreach(srv->reg, collect_user, &l);
	if (l.n < reg_aor_count(srv->reg)) {
		free(l.users);
		*users = NULL;
		*n = 0;
		return -ENOMEM;
	}
	*users = l.users;
	*n = l.n;
	return 0;
}

void rep_clear_registrations(struct server *srv)
{
	struct reg_list l = { 0 };

	reg_foreach(srv->reg, collect_user, &l);
	for (size_t i = 0; i < l.n; i++)
		reg_unbind_all(srv->reg, l.users[i]);
	free(l.users);
}
