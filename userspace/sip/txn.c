/* SIP transactions: RFC 3261 §17 with the Accepted states of RFC 6026.
 *
 * Each machine is a [state][event] table further down; an entry names the
 * next state and the action run on entering it.  An event with no entry is
 * ignored (and counted): that is how a 1xx after a final response, an ACK
 * before one and the like die quietly.  An action may return a follow-up
 * event — a transport error, or a timer of zero length on a reliable
 * transport (D, I, J, K) — which goes through the same table at once, so
 * every way into Terminated is in a table.
 *
 * The 100 Trying that §17.2.1 wants "if the TU will not generate a provisional
 * response within 200 ms" is left to the TU: the call engine sends it as soon
 * as it takes an INVITE.  The IST never guesses at the TU's speed and never
 * sends a response it was not given.
 *
 * Transport errors: a client's failed send (the request or a retransmission
 * of it) is a 503 to the user and the end of the transaction (§17.1.4).  A
 * server's failed send is returned to the TU by txn_respond(); it ends the
 * transaction only on a reliable transport, where the connection is gone.
 * On UDP the stored response goes out again with the request's next
 * retransmission or Timer G, which is what a full socket buffer needs.
 *
 * Freeing: a transaction entering Terminated leaves the match table, has its
 * timers stopped and its user told, and goes onto tl->dead.  That list is
 * drained only when an outermost public call (a timer callback included)
 * starts, so no function of the layer ever runs on a freed transaction,
 * whatever a user does from inside a callback. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <osipparser2/osip_port.h>

#include "core/log.h"
#include "sip/msg.h"
#include "sip/txn.h"

#define TXN_COOKIE "z9hG4bK"
#define TXN_COOKIE_LEN 7
/* Longer keys (a huge Request-URI or Via in RFC 2543 matching) are refused:
 * memory per transaction stays bounded. */
#define TXN_KEY_MAX 2048
#define TXN_TIMER_D_MS 32000
/* The ICT in Proceeding has no timer in RFC 3261: it waits for the UAS.  A
 * transaction whose UAS vanished would then live for ever, so Proceeding
 * keeps Timer C of §16.6 (more than 3 minutes, restarted by every 1xx; a UAS
 * that rings longer refreshes its 1xx each minute, §13.3.1.1). */
#define TXN_TIMER_C_MS (3 * 60 * 1000 + 1000)
#define TXN_BUCKETS_MIN 1024u
#define TXN_BUCKETS_MAX (1u << 20)

enum txn_ev {
	EV_NONE,
	EV_RX_REQ, /* server: the request again */
	EV_RX_ACK, /* IST: an ACK */
	EV_TU_1XX, /* server: the TU sends a response */
	EV_TU_2XX,
	EV_TU_FINAL, /* 3xx-6xx */
	EV_RX_1XX, /* client: a response arrived */
	EV_RX_2XX,
	EV_RX_FINAL, /* 3xx-6xx */
	EV_RETX, /* Timer A, E, G */
	EV_LIFE, /* Timer B, C, D, F, H, I, J, K, L, M */
	EV_TERR, /* the transport failed */
	EV_N
};

struct txn_layer {
	struct txn_env env; /* timer values and limit filled in */
	struct txn **buckets;
	size_t nbuckets; /* power of two */
	size_t live;
	struct txn *dead; /* terminated, freed at the next safe point */
	unsigned depth; /* nesting of public calls; frees only at 0 */
	bool closing;
	uint64_t salt;
	uint64_t seq;
	uint64_t ignored; /* events with no transition */
};

/* What the public header does not need to show. */
struct txn_priv {
	struct txn t;
	/* IST: To tag of our final response, which an RFC 2543 ACK for it
	 * carries (§17.2.3). */
	char *rsp_tag;
};

/* One event's parameters and results. */
struct txn_arg {
	osip_message_t *msg; /* the response sent or received */
	char *buf; /* server: MSG serialised; an action takes it */
	size_t len;
	int err; /* server: result of sending BUF */
	bool handled; /* the event had a transition */
	enum txn_rx rx;
};

typedef enum txn_ev (*txn_action)(struct txn *t, struct txn_arg *a);

struct txn_tr {
	enum txn_state next;
	txn_action fn; /* NULL: no transition */
};

static const char *const txn_state_names[TXN_NSTATES] = {
	[TXN_CALLING] = "Calling",	 [TXN_TRYING] = "Trying",
	[TXN_PROCEEDING] = "Proceeding", [TXN_ACCEPTED] = "Accepted",
	[TXN_COMPLETED] = "Completed",	 [TXN_CONFIRMED] = "Confirmed",
	[TXN_TERMINATED] = "Terminated",
};

static const char *const txn_ev_names[EV_N] = {
	[EV_NONE] = "-",	  [EV_RX_REQ] = "request",  [EV_RX_ACK] = "ACK",
	[EV_TU_1XX] = "send 1xx", [EV_TU_2XX] = "send 2xx", [EV_TU_FINAL] = "send 3xx-6xx",
	[EV_RX_1XX] = "1xx",	  [EV_RX_2XX] = "2xx",	    [EV_RX_FINAL] = "3xx-6xx",
	[EV_RETX] = "retransmit", [EV_LIFE] = "timeout",    [EV_TERR] = "transport error",
};

const char *txn_state_name(enum txn_state s)
{
	return (unsigned)s < TXN_NSTATES ? txn_state_names[s] : "?";
}

/* ---- small helpers ---------------------------------------------------------- */

static unsigned t1(const struct txn *t)
{
	return t->tl->env.t1_ms;
}

static unsigned t2(const struct txn *t)
{
	return t->tl->env.t2_ms;
}

static unsigned t4(const struct txn *t)
{
	return t->tl->env.t4_ms;
}

static void txn_arm(struct txn *t, struct timer *tm, unsigned ms)
{
	struct timer_wheel *tw = t->tl->env.tw;

	timer_add(tw, tm, tw->now + ms);
}

static void txn_stop(struct txn *t, struct timer *tm)
{
	timer_del(t->tl->env.tw, tm);
}

/* libosip2's *_param_get_byname take non-const lists. */
static const char *param_get(const osip_list_t *l, const char *name)
{
	for (int i = 0; i < osip_list_size(l); i++) {
		const osip_generic_param_t *p = osip_list_get(l, i);

		if (p && p->gname && !strcasecmp(p->gname, name))
			return p->gvalue ? p->gvalue : "";
	}
	return NULL;
}

static const osip_via_t *top_via(const osip_message_t *m)
{
	return osip_list_get(&m->vias, 0);
}

static const char *via_branch(const osip_via_t *v)
{
	return param_get(&v->via_params, "branch");
}

static const char *tag_of(const osip_from_t *f)
{
	const char *tag = f ? param_get(&f->gen_params, "tag") : NULL;

	return tag ? tag : "";
}

/* A branch made by an RFC 3261 element: the cookie and something after it.
 * The bare cookie (RFC 4475 badbranch) identifies nothing. */
static bool branch_is_3261(const char *b)
{
	return b && !strncmp(b, TXN_COOKIE, TXN_COOKIE_LEN) && b[TXN_COOKIE_LEN];
}

/* ---- match keys ---------------------------------------------------------------
 * One string per transaction, so one hash table serves all four kinds:
 *   "C <branch> <method>"                                client, §17.1.3
 *   "S <branch> <host>:<port> <method>"                  server, §17.2.3
 *   "O <ruri> <from-tag> <call-id> <cseq> <via> <method>" server, RFC 2543
 * An ACK is keyed as INVITE so that it finds its IST; a CANCEL keeps its own
 * method.  The RFC 2543 key leaves out the To tag, because an ACK carries the
 * tag of our response rather than the INVITE's: it is compared after the
 * lookup (txn_tag_ok). */

struct txn_key {
	char s[TXN_KEY_MAX];
	size_t n;
	bool bad;
};

static void key_init(struct txn_key *k, char kind)
{
	k->s[0] = kind;
	k->s[1] = '\0';
	k->n = 1;
	k->bad = false;
}

/* Appends S, lower-cased when LOWER; too long a key is marked bad. */
static void key_cat(struct txn_key *k, const char *s, bool lower)
{
	for (; *s; s++) {
		if (k->n + 1 >= sizeof(k->s)) {
			k->bad = true;
			break;
		}
		k->s[k->n++] = lower ? (char)tolower((unsigned char)*s) : *s;
	}
	k->s[k->n] = '\0';
}

/* Appends a field: a space, then S. */
static void key_put(struct txn_key *k, const char *s, bool lower)
{
	key_cat(k, " ", false);
	key_cat(k, s, lower);
}

static int txn_client_key(const osip_message_t *m, struct txn_key *k)
{
	const osip_via_t *via = top_via(m);
	const char *branch = via ? via_branch(via) : NULL;

	if (!branch_is_3261(branch) || !m->cseq || !m->cseq->method)
		return -EINVAL;
	key_init(k, 'C');
	key_put(k, branch, false);
	key_put(k, m->cseq->method, false);
	return k->bad ? -EINVAL : 0;
}

/* The server key of request M as if its method were METHOD.  Returns 0 for
 * the RFC 3261 form, 1 for the RFC 2543 one, -EINVAL when M lacks what
 * matching needs, -ENOMEM. */
static int txn_server_key(const osip_message_t *m, const char *method, struct txn_key *k)
{
	const osip_via_t *via = top_via(m);
	const char *branch, *port;
	char *ruri = NULL, *vs = NULL;
	int err;

	if (!via || !via->host || !method)
		return -EINVAL;
	branch = via_branch(via);
	if (branch_is_3261(branch)) {
		port = via->port;
		if (!port)
			port = via->protocol && !strcasecmp(via->protocol, "TLS") ? "5061" : "5060";
		key_init(k, 'S');
		key_put(k, branch, false);
		key_put(k, via->host, true); /* host names compare case-insensitively */
		key_cat(k, ":", false);
		key_cat(k, port, false);
		key_put(k, method, false);
		return k->bad ? -EINVAL : 0;
	}
	if (!m->req_uri || !m->call_id || !m->call_id->number || !m->cseq || !m->cseq->number)
		return -EINVAL;
	err = -ENOMEM;
	if (osip_uri_to_str(m->req_uri, &ruri) || osip_via_to_str(via, &vs))
		goto out;
	key_init(k, 'O');
	key_put(k, ruri, false);
	key_put(k, tag_of(m->from), false);
	key_put(k, m->call_id->number, false);
	if (m->call_id->host) {
		key_cat(k, "@", false);
		key_cat(k, m->call_id->host, false);
	}
	key_put(k, m->cseq->number, false);
	key_put(k, vs, false);
	key_put(k, method, false);
	err = k->bad ? -EINVAL : 1;
out:
	osip_free(ruri);
	osip_free(vs);
	return err;
}

/* ---- the match table ---------------------------------------------------------- */

static uint64_t txn_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static struct txn **txn_slot(const struct txn_layer *tl, const char *key)
{
	return &tl->buckets[txn_hash(key) & (tl->nbuckets - 1)];
}

static void txn_table_grow(struct txn_layer *tl)
{
	size_t n = tl->nbuckets * 2;
	struct txn **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains: slower, still correct */
	for (size_t i = 0; i < tl->nbuckets; i++) {
		struct txn *t = tl->buckets[i], *tn;

		for (; t; t = tn) {
			size_t h = txn_hash(t->key) & (n - 1);

			tn = t->hnext;
			t->hnext = nb[h];
			nb[h] = t;
		}
	}
	free(tl->buckets);
	tl->buckets = nb;
	tl->nbuckets = n;
}

static void txn_table_add(struct txn_layer *tl, struct txn *t)
{
	struct txn **slot;

	if (tl->live >= tl->nbuckets * 2 && tl->nbuckets < TXN_BUCKETS_MAX)
		txn_table_grow(tl);
	slot = txn_slot(tl, t->key);
	t->hnext = *slot;
	*slot = t;
	tl->live++;
}

static void txn_table_del(struct txn_layer *tl, struct txn *t)
{
	struct txn **pp;

	for (pp = txn_slot(tl, t->key); *pp; pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			t->hnext = NULL;
			tl->live--;
			return;
		}
	}
}

enum txn_tagcheck {
	TAG_NONE, /* RFC 3261 keys, CANCEL (§9.2: its To tag may differ) */
	TAG_REQ, /* RFC 2543 request: the To tag of the one that made the transaction */
	TAG_ACK, /* RFC 2543 ACK: the To tag of our response */
};

static bool txn_tag_ok(const struct txn *t, const osip_message_t *m, enum txn_tagcheck tc)
{
	const struct txn_priv *p = container_of(t, struct txn_priv, t);
	const char *want = tag_of(t->req->to);

	if (tc == TAG_ACK && p->rsp_tag)
		want = p->rsp_tag;
	return !strcmp(tag_of(m->to), want);
}

static struct txn *txn_lookup(const struct txn_layer *tl, const char *key, const osip_message_t *m,
			      enum txn_tagcheck tc)
{
	struct txn *t;

	for (t = *txn_slot(tl, key); t; t = t->hnext) {
		if (strcmp(t->key, key))
			continue;
		if (tc == TAG_NONE || txn_tag_ok(t, m, tc))
			return t;
	}
	return NULL;
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
static void txn_enter(struct txn_layer *tl)
{
	if (!tl->depth)
		txn_drain(tl);
	tl->depth++;
}

static void txn_leave(struct txn_layer *tl)
{
	tl->depth--;
}

static void txn_terminate(struct txn *t)
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

/* ---- actions ----------------------------------------------------------------- */

static int txn_send_out(struct txn *t)
{
	const struct txn_env *env = &t->tl->env;
	int err;

	if (!t->out)
		return 0;
	err = env->send(env->send_arg, &t->peer, t->out, t->outlen);
	if (err > 0)
		err = 0;
	if (err)
		pr_debug("txn %s: send: %s", t->key, strerror(-err));
	return err;
}

static enum txn_ev act_none(struct txn *t, struct txn_arg *a)
{
	(void)t;
	(void)a;
	return EV_NONE;
}

/* Server: the last response again. */
static enum txn_ev srv_resend(struct txn *t, struct txn_arg *a)
{
	a->err = txn_send_out(t);
	return a->err && t->reliable ? EV_TERR : EV_NONE;
}

/* Server: the TU's response becomes the one to retransmit, and goes out. */
static enum txn_ev srv_send(struct txn *t, struct txn_arg *a)
{
	free(t->out);
	t->out = a->buf;
	t->outlen = a->len;
	a->buf = NULL;
	t->code = a->msg->status_code;
	return srv_resend(t, a);
}

static void ist_keep_tag(struct txn *t, const osip_message_t *resp)
{
	struct txn_priv *p = container_of(t, struct txn_priv, t);
	const char *tag = tag_of(resp->to);

	if (!*tag || (p->rsp_tag && !strcmp(p->rsp_tag, tag)))
		return;
	free(p->rsp_tag);
	/* Out of memory: RFC 2543 ACKs then no longer match, Timer H ends it. */
	p->rsp_tag = strdup(tag);
}

static enum txn_ev ist_accept(struct txn *t, struct txn_arg *a)
{
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer L */
	ist_keep_tag(t, a->msg);
	return srv_send(t, a);
}

static enum txn_ev ist_complete(struct txn *t, struct txn_arg *a)
{
	if (!t->reliable) {
		t->interval = t1(t);
		txn_arm(t, &t->t_retx, t->interval); /* Timer G */
	}
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer H */
	ist_keep_tag(t, a->msg);
	return srv_send(t, a);
}

static enum txn_ev ist_timer_g(struct txn *t, struct txn_arg *a)
{
	t->interval = t->interval * 2 < t2(t) ? t->interval * 2 : t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return srv_resend(t, a);
}

static enum txn_ev ist_timer_h(struct txn *t, struct txn_arg *a)
{
	(void)a;
	pr_debug("txn %s: no ACK for %d", t->key, t->code);
	if (t->user && t->user->on_no_ack)
		t->user->on_no_ack(t, t->uarg);
	return EV_NONE;
}

static enum txn_ev ist_confirm(struct txn *t, struct txn_arg *a)
{
	(void)a;
	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	if (t->reliable)
		return EV_LIFE; /* Timer I = 0 */
	txn_arm(t, &t->t_life, t4(t)); /* Timer I */
	return EV_NONE;
}

/* An ACK for our 2xx that happens to match (RFC 2543 peers): the dialog's. */
static enum txn_ev ist_ack_up(struct txn *t, struct txn_arg *a)
{
	(void)t;
	a->rx = TXN_RX_ACK;
	return EV_NONE;
}

static enum txn_ev nist_complete(struct txn *t, struct txn_arg *a)
{
	enum txn_ev ev = srv_send(t, a);

	if (ev != EV_NONE)
		return ev;
	if (t->reliable)
		return EV_LIFE; /* Timer J = 0 */
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer J */
	return EV_NONE;
}

static void cli_deliver(struct txn *t, struct txn_arg *a)
{
	t->code = a->msg->status_code;
	if (t->user && t->user->on_response)
		t->user->on_response(t, t->uarg, a->msg);
}

static enum txn_ev cli_pass(struct txn *t, struct txn_arg *a)
{
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev cli_timeout(struct txn *t, int code)
{
	pr_debug("txn %s: %s", t->key, code == 408 ? "timed out" : "transport failed");
	if (t->user && t->user->on_timeout)
		t->user->on_timeout(t, t->uarg, code);
	return EV_NONE;
}

static enum txn_ev cli_408(struct txn *t, struct txn_arg *a)
{
	(void)a;
	return cli_timeout(t, 408);
}

static enum txn_ev cli_503(struct txn *t, struct txn_arg *a)
{
	(void)a;
	return cli_timeout(t, 503);
}

static enum txn_ev ict_timer_a(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval *= 2;
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev ict_proceed(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_arm(t, &t->t_life, TXN_TIMER_C_MS); /* replaces Timer B */
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev ict_accept(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer M */
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev ict_complete(struct txn *t, struct txn_arg *a)
{
	osip_message_t *ack = NULL;
	int err;

	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	free(t->out);
	t->out = NULL;
	t->outlen = 0;
	/* From now on the bytes to retransmit are the ACK's. */
	err = txn_build_ack(t->req, a->msg, &ack);
	if (!err)
		err = sipmsg_to_str(ack, &t->out, &t->outlen);
	osip_message_free(ack);
	if (err)
		pr_warn("txn %s: cannot build ACK: %s", t->key, strerror(-err));
	txn_send_out(t); /* a lost ACK is sent again for the next retransmitted final */
	cli_deliver(t, a);
	if (t->reliable)
		return EV_LIFE; /* Timer D = 0 */
	txn_arm(t, &t->t_life, TXN_TIMER_D_MS); /* Timer D */
	return EV_NONE;
}

static enum txn_ev ict_reack(struct txn *t, struct txn_arg *a)
{
	(void)a;
	txn_send_out(t);
	return EV_NONE;
}

static enum txn_ev nict_timer_e(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval = t->interval * 2 < t2(t) ? t->interval * 2 : t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev nict_timer_e_t2(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval = t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev nict_complete(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	cli_deliver(t, a);
	if (t->reliable)
		return EV_LIFE; /* Timer K = 0 */
	txn_arm(t, &t->t_life, t4(t)); /* Timer K */
	return EV_NONE;
}

/* ---- the machines ---------------------------------------------------------------
 * Entry: { next state, action run on entering it }.  A missing entry means the
 * event is ignored in that state. */

/* clang-format off */

/* INVITE server, §17.2.1 with RFC 6026 §8.  Starts in Proceeding; the 100
 * Trying is the TU's (see the top of the file). */
static const struct txn_tr ist_fsm[TXN_NSTATES][EV_N] = {
	[TXN_PROCEEDING] = {
		[EV_RX_REQ]   = { TXN_PROCEEDING, srv_resend },   /* the last 1xx, if any */
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_ACCEPTED,   ist_accept },   /* arms L */
		[EV_TU_FINAL] = { TXN_COMPLETED,  ist_complete }, /* arms G (UDP), H */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_ACCEPTED] = {
		[EV_RX_REQ]   = { TXN_ACCEPTED,   act_none },     /* the TU retransmits its 2xx */
		[EV_RX_ACK]   = { TXN_ACCEPTED,   ist_ack_up },   /* TXN_RX_ACK: the dialog's */
		[EV_TU_2XX]   = { TXN_ACCEPTED,   srv_send },     /* the TU's 2xx retransmission */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer L */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_COMPLETED] = {
		[EV_RX_REQ]   = { TXN_COMPLETED,  srv_resend },
		[EV_RX_ACK]   = { TXN_CONFIRMED,  ist_confirm },  /* arms I */
		[EV_RETX]     = { TXN_COMPLETED,  ist_timer_g },  /* Timer G */
		[EV_LIFE]     = { TXN_TERMINATED, ist_timer_h },  /* Timer H: on_no_ack */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_CONFIRMED] = {
		[EV_RX_REQ]   = { TXN_CONFIRMED,  act_none },
		[EV_RX_ACK]   = { TXN_CONFIRMED,  act_none },
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer I */
	},
};

/* Non-INVITE server, §17.2.2. */
static const struct txn_tr nist_fsm[TXN_NSTATES][EV_N] = {
	[TXN_TRYING] = {
		[EV_RX_REQ]   = { TXN_TRYING,     act_none },     /* nothing to resend yet */
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_COMPLETED,  nist_complete }, /* arms J */
		[EV_TU_FINAL] = { TXN_COMPLETED,  nist_complete },
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_REQ]   = { TXN_PROCEEDING, srv_resend },
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_COMPLETED,  nist_complete },
		[EV_TU_FINAL] = { TXN_COMPLETED,  nist_complete },
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_COMPLETED] = {
		[EV_RX_REQ]   = { TXN_COMPLETED,  srv_resend },
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer J */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
};

/* INVITE client, §17.1.1 with RFC 6026 §7.  Starts in Calling with A (UDP)
 * and B armed. */
static const struct txn_tr ict_fsm[TXN_NSTATES][EV_N] = {
	[TXN_CALLING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, ict_proceed },  /* stops A, B; arms C */
		[EV_RX_2XX]   = { TXN_ACCEPTED,   ict_accept },   /* arms M */
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_complete }, /* sends ACK, arms D */
		[EV_RETX]     = { TXN_CALLING,    ict_timer_a },  /* Timer A */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },      /* Timer B */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, ict_proceed },  /* restarts C */
		[EV_RX_2XX]   = { TXN_ACCEPTED,   ict_accept },
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_complete },
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },      /* Timer C */
	},
	[TXN_ACCEPTED] = {
		[EV_RX_2XX]   = { TXN_ACCEPTED,   cli_pass },     /* every 2xx goes up */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer M */
	},
	[TXN_COMPLETED] = {
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_reack },    /* absorbed */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer D */
	},
};

/* Non-INVITE client, §17.1.2.  Starts in Trying with E (UDP) and F armed. */
static const struct txn_tr nict_fsm[TXN_NSTATES][EV_N] = {
	[TXN_TRYING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, cli_pass },
		[EV_RX_2XX]   = { TXN_COMPLETED,  nict_complete }, /* arms K */
		[EV_RX_FINAL] = { TXN_COMPLETED,  nict_complete },
		[EV_RETX]     = { TXN_TRYING,     nict_timer_e },  /* Timer E, doubling to T2 */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },       /* Timer F */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, cli_pass },
		[EV_RX_2XX]   = { TXN_COMPLETED,  nict_complete },
		[EV_RX_FINAL] = { TXN_COMPLETED,  nict_complete },
		[EV_RETX]     = { TXN_PROCEEDING, nict_timer_e_t2 }, /* Timer E, at T2 */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },         /* Timer F */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_COMPLETED] = {
		[EV_RX_2XX]   = { TXN_COMPLETED,  act_none },      /* absorbed */
		[EV_RX_FINAL] = { TXN_COMPLETED,  act_none },
		[EV_LIFE]     = { TXN_TERMINATED, act_none },      /* Timer K */
	},
};

/* clang-format on */

static const struct txn_tr (*const txn_fsm[])[EV_N] = {
	[TXN_IST] = ist_fsm,
	[TXN_NIST] = nist_fsm,
	[TXN_ICT] = ict_fsm,
	[TXN_NICT] = nict_fsm,
};

/* Runs EV and whatever follow-up events its actions return. */
static void txn_fire(struct txn *t, enum txn_ev ev, struct txn_arg *a)
{
	const struct txn_tr *tr;
	bool first = true;

	while (ev != EV_NONE && t->state != TXN_TERMINATED) {
		tr = &txn_fsm[t->kind][t->state][ev];
		if (!tr->fn) {
			t->tl->ignored++;
			pr_debug("txn %s: %s ignored in %s", t->key, txn_ev_names[ev],
				 txn_state_name(t->state));
			break;
		}
		if (first)
			a->handled = true;
		first = false;
		pr_debug("txn %s: %s --%s--> %s", t->key, txn_state_name(t->state),
			 txn_ev_names[ev], txn_state_name(tr->next));
		t->state = tr->next;
		ev = tr->fn(t, a);
	}
	if (t->state == TXN_TERMINATED)
		txn_terminate(t);
}

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

static uint64_t txn_salt(const struct txn_layer *tl)
{
	struct timespec ts;
	uint64_t s;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		/* Early boot without entropy: unique enough per process. */
		clock_gettime(CLOCK_REALTIME, &ts);
		s = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
		    ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)tl;
		s = txn_hash((const char *)&s) ^ s;
	}
	return s & 0xffffffffffffull;
}

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
	tl->nbuckets = TXN_BUCKETS_MIN;
	tl->buckets = calloc(tl->nbuckets, sizeof(*tl->buckets));
	if (!tl->buckets) {
		free(tl);
		return -ENOMEM;
	}
	tl->salt = txn_salt(tl);
	*out = tl;
	return 0;
}

void txn_layer_free(struct txn_layer *tl)
{
	if (!tl)
		return;
	tl->closing = true;
	tl->depth++;
	for (size_t i = 0; i < tl->nbuckets; i++)
		while (tl->buckets[i])
			txn_terminate(tl->buckets[i]);
	tl->depth--;
	txn_drain(tl);
	if (tl->ignored)
		pr_debug("txn: %" PRIu64 " events ignored", tl->ignored);
	free(tl->buckets);
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
	if (!buf || !len)
		return;
	snprintf(buf, len, TXN_COOKIE "%012" PRIx64 ".%" PRIx64, tl->salt, ++tl->seq);
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

enum txn_rx txn_rx_request(struct txn_layer *tl, osip_message_t *req, const struct sip_peer *from,
			   struct txn **out)
{
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
	if (osip_message_clone(req, &t->req) || !t->req) {
		t->req = NULL;
		txn_free(t);
		goto out;
	}
	txn_drop_text(t->req);
	txn_table_add(tl, t);
	pr_debug("txn %s: new, %s", t->key, txn_state_name(t->state));
	*out = t;
	rx = TXN_RX_NEW;
out:
	txn_leave(tl);
	return rx;
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

int txn_respond(struct txn *t, osip_message_t *resp)
{
	struct txn_arg a = { .msg = resp };
	struct txn_layer *tl;
	enum txn_ev ev;
	int err = -EINVAL;

	/* Checked before txn_enter: its drain would free a dying T. */
	if (!t || t->dying || !resp)
		return -EINVAL;
	tl = t->tl;
	txn_enter(tl);
	if ((t->kind != TXN_IST && t->kind != TXN_NIST) || !MSG_IS_RESPONSE(resp) ||
	    resp->status_code < 100 || resp->status_code > 699)
		goto out;
	if (resp->status_code < 200)
		ev = EV_TU_1XX;
	else if (resp->status_code < 300)
		ev = EV_TU_2XX;
	else
		ev = EV_TU_FINAL;
	if (!txn_fsm[t->kind][t->state][ev].fn)
		goto out; /* no response of that class in this state */
	err = sipmsg_to_str(resp, &a.buf, &a.len);
	if (err)
		goto out;
	txn_fire(t, ev, &a);
	err = a.handled ? a.err : -EINVAL;
out:
	free(a.buf);
	txn_leave(tl);
	return err;
}

int txn_reply(struct txn *t, int code, const char *reason, const char *to_tag)
{
	osip_message_t *resp = NULL;
	int err;

	if (!t || t->dying || !t->req)
		return -EINVAL;
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
		t->interval = t1(t);
		txn_arm(t, &t->t_retx, t->interval); /* Timer A / E */
	}
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer B / F */
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

int txn_build_ack(const osip_message_t *invite, const osip_message_t *resp, osip_message_t **ack)
{
	const osip_via_t *via;
	osip_message_t *m = NULL;
	osip_via_t *v = NULL;
	osip_cseq_t *cs = NULL;
	int err = -EINVAL;

	if (!ack)
		return -EINVAL;
	*ack = NULL;
	if (!invite || !resp || !MSG_IS_REQUEST(invite) || !MSG_IS_RESPONSE(resp) ||
	    !invite->req_uri || !invite->from || !invite->call_id || !invite->cseq ||
	    !invite->cseq->number || !resp->to || !(via = top_via(invite)))
		return -EINVAL;
	err = -ENOMEM;
	if (osip_message_init(&m))
		goto out;
	osip_message_set_method(m, osip_strdup("ACK"));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (!m->sip_method || !m->sip_version)
		goto out;
	/* §17.1.1.3: the INVITE's Request-URI, Call-ID, From, top Via (so its
	 * branch) and CSeq number; the response's To (with its tag); the
	 * INVITE's Route set. */
	if (osip_uri_clone(invite->req_uri, &m->req_uri) ||
	    osip_from_clone(invite->from, &m->from) || osip_to_clone(resp->to, &m->to) ||
	    osip_call_id_clone(invite->call_id, &m->call_id))
		goto out;
	if (osip_via_clone(via, &v))
		goto out;
	if (osip_list_add(&m->vias, v, -1) < 0) {
		osip_via_free(v);
		goto out;
	}
	if (osip_cseq_init(&cs))
		goto out;
	m->cseq = cs;
	osip_cseq_set_number(cs, osip_strdup(invite->cseq->number));
	osip_cseq_set_method(cs, osip_strdup("ACK"));
	if (!cs->number || !cs->method)
		goto out;
	for (int i = 0; i < osip_list_size(&invite->routes); i++) {
		const osip_route_t *r = osip_list_get(&invite->routes, i);
		osip_route_t *rc = NULL;

		if (!r || osip_route_clone(r, &rc))
			goto out;
		if (osip_list_add(&m->routes, rc, -1) < 0) {
			osip_route_free(rc);
			goto out;
		}
	}
	if (osip_message_set_max_forwards(m, "70") || osip_message_set_content_length(m, "0"))
		goto out;
	*ack = m;
	m = NULL;
	err = 0;
out:
	osip_message_free(m);
	return err;
}
