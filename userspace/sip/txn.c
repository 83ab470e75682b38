/* SIP transactions: the layer, a transaction's life cycle and the API of
 * sip/txn.h.  The machines are in txn_fsm.c, matching in txn_match.c
 * (txn_int.h).
 *
 * Freeing: a transaction entering Terminated leaves the match table, has its
 * timers stopped and its user told, and goes onto tl->dead.  That list is
 * drained only when an outermost public call (a timer callback included)
 * starts, so no function of the layer ever runs on a freed transaction,
 * whatever a user does from inside a callback. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <osipparser2/osip_port.h>

#include "core/log.h"
#include "core/rand.h"
#include "sip/msg.h"
#include "sip/txn_int.h"

static const char *const txn_state_names[TXN_NSTATES] = {
	[TXN_CALLING] = "Calling",	 [TXN_TRYING] = "Trying",
	[TXN_PROCEEDING] = "Proceeding", [TXN_ACCEPTED] = "Accepted",
	[TXN_COMPLETED] = "Completed",	 [TXN_CONFIRMED] = "Confirmed",
	[TXN_TERMINATED] = "Terminated",
};

const char *txn_state_name(enum txn_state s)
{
	return (unsigned)s < TXN_NSTATES ? txn_state_names[s] : "?";
}

/* ---- life cycle ------------------------------------------------------------- */

static void txn_timer_retx(struct timer *tm);
static void txn_timer_life(struct timer *tm);

static struct txn *txn_alloc(struct txn_layer *tl, enum txn_kind kind, const char *key,
			     const struct sip_peer *peer)
{
	static const enum txn_state first[] = {
		[TXN_IST] = TXN_PROCEEDING,
		[TXN_NIST] = TXN_TRYING,
		[TXN_ICT] = TXN_CALLING,
		[TXN_NICT] = TXN_TRYING,
	};
	struct txn_priv *p = calloc(1, sizeof(*p));
	struct txn *t;

	if (!p)
		return NULL;
	t = &p->t;
	t->key = strdup(key);
	if (!t->key) {
		free(p);
		return NULL;
	}
	t->kind = kind;
	t->state = first[kind];
	t->tl = tl;
	t->peer = *peer;
	t->reliable = peer->proto == SIP_PROTO_TCP;
	timer_init(&t->t_retx, txn_timer_retx);
	timer_init(&t->t_life, txn_timer_life);
	return t;
}

static void txn_free(struct txn *t)
{
	struct txn_priv *p;

	if (!t)
		return;
	p = container_of(t, struct txn_priv, t);
	osip_message_free(t->req);
	free(t->out);
	free(t->key);
	free(p->rsp_tag);
	free(p->echo_buf);
	free(p->req_tag);
	free(p->raw);
	free(p);
}

static void txn_drain(struct txn_layer *tl)
{
	struct txn *t;

	while ((t = tl->dead)) {
		tl->dead = t->hnext;
		txn_free(t);
	}
}

/* Every public entry point brackets its work with these. */
void txn_enter(struct txn_layer *tl)
{
	if (!tl->depth)
		txn_drain(tl);
	tl->depth++;
}

void txn_leave(struct txn_layer *tl)
{
	tl->depth--;
}

void txn_terminate(struct txn *t)
{
	struct txn_layer *tl = t->tl;

	if (t->dying)
		return;
	t->state = TXN_TERMINATED;
	t->dying = true;
	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	txn_table_del(tl, t);
	t->hnext = tl->dead;
	tl->dead = t;
	pr_debug("txn %s: terminated", t->key);
	if (t->user && t->user->on_terminated)
		t->user->on_terminated(t, t->uarg);
}

/* ---- timers ---------------------------------------------------------------- */

static void txn_on_timer(struct txn *t, enum txn_ev ev)
{
	struct txn_layer *tl = t->tl;
	struct txn_arg a = { 0 };

	/* A fired timer belongs to a live transaction: termination stops
	 * both, so the drain in txn_enter cannot free T. */
	txn_enter(tl);
	txn_fire(t, ev, &a);
	txn_leave(tl);
}

static void txn_timer_retx(struct timer *tm)
{
	txn_on_timer(container_of(tm, struct txn, t_retx), EV_RETX);
}

static void txn_timer_life(struct timer *tm)
{
	txn_on_timer(container_of(tm, struct txn, t_life), EV_LIFE);
}

/* ---- the layer ------------------------------------------------------------------- */

int txn_layer_new(struct txn_layer **out, const struct txn_env *env)
{
	struct txn_layer *tl = NULL;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!env || !env->tw || !env->send)
		return -EINVAL;
	tl = calloc(1, sizeof(*tl));
	if (!tl)
		return -ENOMEM;
	tl->env = *env;
	if (!tl->env.t1_ms)
		tl->env.t1_ms = 500;
	if (!tl->env.t2_ms)
		tl->env.t2_ms = 4000;
	if (!tl->env.t4_ms)
		tl->env.t4_ms = 5000;
	if (!tl->env.max_txns)
		tl->env.max_txns = TXN_DEFAULT_MAX;
	if (txn_table_init(tl)) {
		free(tl);
		return -ENOMEM;
	}
	*out = tl;
	return 0;
}

void txn_layer_free(struct txn_layer *tl)
{
	if (!tl)
		return;
	tl->closing = true;
	tl->depth++;
	txn_table_settle(tl);
	for (size_t i = 0; i < tl->tab.n; i++)
		while (tl->tab.b[i])
			txn_terminate(tl->tab.b[i]);
	tl->depth--;
	txn_drain(tl);
	if (tl->ignored)
		pr_debug("txn: %" PRIu64 " events ignored", tl->ignored);
	growtab_fini(&tl->tab);
	free(tl);
}

size_t txn_count(const struct txn_layer *tl)
{
	return tl ? tl->live : 0;
}

void txn_set_user(struct txn *t, const struct txn_user *user, void *uarg)
{
	if (!t)
		return;
	t->user = user;
	t->uarg = uarg;
}

void txn_new_branch(struct txn_layer *tl, char *buf, size_t len)
{
	char r[25];

	(void)tl;
	if (!buf || !len)
		return;
	/* 96 random bits: a branch names a transaction, and a guessable one
	 * lets an off-path sender CANCEL or answer it. */
	rnd_hex(r, 12);
	snprintf(buf, len, TXN_COOKIE "%s", r);
}

/* The clone keeps libosip2's cached text of the original, which sipmsg_to_str
 * never serves anyway: drop it, it is only memory. */
static void txn_drop_text(osip_message_t *m)
{
	osip_free(m->message);
	m->message = NULL;
	m->message_length = 0;
	osip_message_force_update(m);
}

/* TAKE: a new transaction keeps *REQP itself (and *REQP becomes NULL)
 * instead of a copy. */
static void txn_keep_echo(struct txn *t, const struct sipmsg_ix *ix)
{
	struct txn_priv *p = container_of(t, struct txn_priv, t);
	struct sipmsg_echo e;
	size_t n = 0;
	char *b;

	if (!ix || sipmsg_echo_of(ix, &e))
		return;
	for (int i = 0; i < SIPMSG_ECHO_N; i++)
		n += e.n[i];
	b = malloc(n ? n : 1);
	if (!b)
		return; /* the responses go through libosip2 */
	n = 0;
	for (int i = 0; i < SIPMSG_ECHO_N; i++) {
		memcpy(b + n, e.v[i], e.n[i]);
		p->echo.v[i] = b + n;
		p->echo.n[i] = e.n[i];
		n += e.n[i];
	}
	p->echo_buf = b;
}

static enum txn_rx txn_rx_req(struct txn_layer *tl, osip_message_t **reqp, bool take,
			      const struct sipmsg_ix *ix, const struct sip_peer *from,
			      struct txn **out)
{
	osip_message_t *req = reqp ? *reqp : NULL;
	struct txn_arg a = { .rx = TXN_RX_ABSORBED };
	enum txn_rx rx = TXN_RX_ERROR;
	struct txn_key k;
	struct txn *t;
	bool ack;
	int form;

	if (out)
		*out = NULL;
	if (!tl)
		return TXN_RX_ERROR;
	txn_enter(tl);
	if (!req || !from || !out || !MSG_IS_REQUEST(req) || !req->sip_method)
		goto out;
	ack = sipmsg_method_id(req->sip_method) == SIP_ACK;
	form = txn_server_key(req, ack ? "INVITE" : req->sip_method, &k);
	if (form < 0)
		goto out;
	t = txn_lookup(tl, k.s, req, form ? (ack ? TAG_ACK : TAG_REQ) : TAG_NONE);
	if (t) {
		txn_fire(t, ack ? EV_RX_ACK : EV_RX_REQ, &a);
		rx = a.rx;
		goto out;
	}
	if (ack) {
		rx = TXN_RX_ACK;
		goto out;
	}
	if (tl->closing || tl->live >= tl->env.max_txns) {
		pr_debug("txn: %zu live, new request refused", tl->live);
		goto out;
	}
	t = txn_alloc(tl, sipmsg_method_id(req->sip_method) == SIP_INVITE ? TXN_IST : TXN_NIST, k.s,
		      from);
	if (!t)
		goto out;
	if (take) {
		t->req = req;
		*reqp = NULL;
	} else if (osip_message_clone(req, &t->req) || !t->req) {
		t->req = NULL;
		txn_free(t);
		goto out;
	}
	txn_drop_text(t->req);
	txn_keep_echo(t, ix);
	if (ix && t->kind == TXN_IST) {
		struct txn_priv *p = container_of(t, struct txn_priv, t);

		/* out of memory: the records print the tree instead */
		p->raw = malloc(ix->len);
		if (p->raw) {
			memcpy(p->raw, ix->buf, ix->len);
			p->rawlen = ix->len;
		}
	}
	txn_table_add(tl, t);
	pr_debug("txn %s: new, %s", t->key, txn_state_name(t->state));
	*out = t;
	rx = TXN_RX_NEW;
out:
	txn_leave(tl);
	return rx;
}

enum txn_rx txn_rx_request(struct txn_layer *tl, osip_message_t *req, const struct sip_peer *from,
			   struct txn **out)
{
	return txn_rx_req(tl, &req, false, NULL, from, out);
}

enum txn_rx txn_rx_request_take(struct txn_layer *tl, osip_message_t **req,
				const struct sipmsg_ix *ix, const struct sip_peer *from,
				struct txn **out)
{
	return txn_rx_req(tl, req, true, ix, from, out);
}

const char *txn_raw(const struct txn *t, size_t *len)
{
	const struct txn_priv *p = container_of(t, const struct txn_priv, t);

	*len = p->rawlen;
	return p->raw;
}

int txn_reply_opt(struct txn *t, const struct sipmsg_reply_opt *r)
{
	struct txn_priv *p;
	char buf[TXN_REPLY_MAX];
	ssize_t n;

	if (!t || t->dying || !t->req || !r)
		return -EINVAL;
	p = container_of(t, struct txn_priv, t);
	if (!p->echo_buf)
		return -EAGAIN;
	n = sipmsg_reply_echo(t->req, &p->echo, r, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOSPC ? -EAGAIN : (int)n;
	return txn_respond_raw(t, r->code, r->to_tag, buf, (size_t)n);
}

bool txn_rx_response(struct txn_layer *tl, osip_message_t *resp, const struct sip_peer *from)
{
	struct txn_arg a = { .msg = resp };
	struct txn_key k;
	struct txn *t;
	enum txn_ev ev;

	(void)from; /* §17.1.3 matches on the message alone */
	if (!tl)
		return false;
	txn_enter(tl);
	if (!resp || !MSG_IS_RESPONSE(resp) || resp->status_code < 100 || resp->status_code > 699 ||
	    txn_client_key(resp, &k))
		goto out;
	t = txn_lookup(tl, k.s, resp, TAG_NONE);
	if (!t)
		goto out;
	if (resp->status_code < 200)
		ev = EV_RX_1XX;
	else if (resp->status_code < 300)
		ev = EV_RX_2XX;
	else
		ev = EV_RX_FINAL;
	txn_fire(t, ev, &a);
out:
	txn_leave(tl);
	return a.handled;
}

/* Hands the response BUF (malloc'd; taken) of status CODE to T's machine. */
static int txn_respond_buf(struct txn *t, int code, const char *tag, char *buf, size_t len)
{
	struct txn_arg a = { .code = code, .tag = tag, .buf = buf, .len = len };
	struct txn_layer *tl;
	enum txn_ev ev;
	int err = -EINVAL;

	/* Checked before txn_enter: its drain would free a dying T. */
	if (!t || t->dying || !buf) {
		free(buf);
		return -EINVAL;
	}
	tl = t->tl;
	txn_enter(tl);
	if ((t->kind != TXN_IST && t->kind != TXN_NIST) || code < 100 || code > 699)
		goto out;
	if (code < 200)
		ev = EV_TU_1XX;
	else if (code < 300)
		ev = EV_TU_2XX;
	else
		ev = EV_TU_FINAL;
	if (!txn_fsm_has(t, ev))
		goto out; /* no response of that class in this state */
	txn_fire(t, ev, &a);
	err = a.handled ? a.err : -EINVAL;
out:
	free(a.buf);
	txn_leave(tl);
	return err;
}

int txn_respond(struct txn *t, osip_message_t *resp)
{
	char *buf = NULL;
	size_t len = 0;

	if (!t || t->dying || !resp || !MSG_IS_RESPONSE(resp) || resp->status_code < 100 ||
	    resp->status_code > 699)
		return -EINVAL;
	if (sipmsg_to_str(resp, &buf, &len))
		return -ENOMEM;
	return txn_respond_buf(t, resp->status_code, txn_tag_of(resp->to), buf, len);
}

int txn_respond_raw(struct txn *t, int code, const char *to_tag, const char *bytes, size_t len)
{
	const char *tag;
	char *buf;

	if (!t || t->dying || !t->req || !bytes)
		return -EINVAL;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, bytes, len);
	/* The response's To tag: the request's own, else the one added. */
	tag = txn_tag_of(t->req->to);
	if (!*tag && to_tag && code > 100)
		tag = to_tag;
	return txn_respond_buf(t, code, tag, buf, len);
}

int txn_reply(struct txn *t, int code, const char *reason, const char *to_tag)
{
	struct sipmsg_reply_opt r = { .code = code, .reason = reason, .to_tag = to_tag };
	osip_message_t *resp = NULL;
	int err;

	if (!t || t->dying || !t->req)
		return -EINVAL;
	err = txn_reply_opt(t, &r);
	if (err != -EAGAIN)
		return err;
	err = sipmsg_response(t->req, code, reason, to_tag, &resp);
	if (!err)
		err = txn_respond(t, resp);
	osip_message_free(resp);
	return err;
}

int txn_request(struct txn_layer *tl, osip_message_t *req, const struct sip_peer *to,
		const struct txn_user *user, void *uarg, struct txn **out)
{
	return txn_request_bytes(tl, req, NULL, 0, to, user, uarg, out);
}

int txn_request_bytes(struct txn_layer *tl, osip_message_t *req, const char *bytes, size_t len,
		      const struct sip_peer *to, const struct txn_user *user, void *uarg,
		      struct txn **out)
{
	struct txn_key k;
	struct txn *t = NULL;
	enum sip_method m;
	int err = -EINVAL;

	if (out)
		*out = NULL;
	if (!tl) {
		osip_message_free(req);
		return -EINVAL;
	}
	txn_enter(tl);
	if (!req || !to || !MSG_IS_REQUEST(req) || !req->sip_method || !req->cseq ||
	    !req->cseq->method || strcmp(req->cseq->method, req->sip_method))
		goto out;
	m = sipmsg_method_id(req->sip_method);
	if (m == SIP_ACK || txn_client_key(req, &k))
		goto out; /* an ACK is no transaction; a request needs a fresh branch */
	err = -EEXIST;
	if (txn_lookup(tl, k.s, req, TAG_NONE))
		goto out;
	err = -ESHUTDOWN;
	if (tl->closing)
		goto out;
	err = -ENOBUFS;
	if (tl->live >= tl->env.max_txns)
		goto out;
	err = -ENOMEM;
	t = txn_alloc(tl, m == SIP_INVITE ? TXN_ICT : TXN_NICT, k.s, to);
	if (!t)
		goto out;
	if (bytes) {
		err = -ENOMEM;
		t->out = malloc(len);
		if (!t->out)
			goto out;
		memcpy(t->out, bytes, len);
		t->outlen = len;
	} else {
		err = sipmsg_to_str(req, &t->out, &t->outlen);
		if (err)
			goto out;
	}
	err = txn_send_out(t);
	if (err)
		goto out;
	t->req = req;
	req = NULL;
	t->user = user;
	t->uarg = uarg;
	txn_table_add(tl, t);
	if (!t->reliable) {
		t->interval = tl->env.t1_ms;
		txn_arm(t, &t->t_retx, t->interval); /* Timer A / E */
	}
	txn_arm(t, &t->t_life, 64 * tl->env.t1_ms); /* Timer B / F */
	pr_debug("txn %s: new, %s", t->key, txn_state_name(t->state));
	if (out)
		*out = t;
	t = NULL;
out:
	txn_free(t);
	osip_message_free(req);
	txn_leave(tl);
	return err;
}

void txn_abandon(struct txn *t)
{
	struct txn_layer *tl;

	if (!t || t->dying)
		return;
	tl = t->tl;
	txn_enter(tl);
	txn_terminate(t);
	txn_leave(tl);
}

size_t txn_transport_error(struct txn_layer *tl, const struct sip_peer *peer)
{
	struct txn **hit = NULL;
	size_t n = 0, cap = 0;

	if (!tl || !peer || peer->proto != SIP_PROTO_TCP)
		return 0;
	txn_enter(tl);
	/* Collected first: firing may add transactions and grow the table. */
	txn_table_settle(tl);
	for (size_t i = 0; i < tl->tab.n; i++) {
		for (struct txn *t = tl->tab.b[i]; t; t = t->hnext) {
			if ((t->kind != TXN_ICT && t->kind != TXN_NICT) || !t->reliable ||
			    t->dying || !txn_fsm_has(t, EV_TERR) ||
			    !sipt_same_addr(&t->peer.addr, &peer->addr))
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct txn **p = realloc(hit, ncap * sizeof(*hit));

				if (!p)
					goto fire;
				hit = p;
				cap = ncap;
			}
			hit[n++] = t;
		}
	}
fire:
	/* Frees are deferred until txn_leave: every pointer stays valid. */
	for (size_t i = 0; i < n; i++) {
		struct txn_arg a = { 0 };

		if (!hit[i]->dying)
			txn_fire(hit[i], EV_TERR, &a);
	}
	free(hit);
	txn_leave(tl);
	return n;
}

struct txn *txn_find_invite(struct txn_layer *tl, osip_message_t *cancel)
{
	struct txn_key k;
	struct txn *t = NULL;

	if (!tl || !cancel || !MSG_IS_REQUEST(cancel))
		return NULL;
	txn_enter(tl);
	if (txn_server_key(cancel, "INVITE", &k) >= 0) {
		t = txn_lookup(tl, k.s, cancel, TAG_NONE);
		if (t && t->kind != TXN_IST)
			t = NULL;
	}
	txn_leave(tl);
	return t;
}
