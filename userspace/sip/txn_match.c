/* Finding the transaction a message belongs to: the match keys and the hash
 * table of the layer's live transactions (txn_int.h).
 *
 * One string per transaction, so one hash table serves all four kinds:
 *   "C <branch> <method>"                                client, §17.1.3
 *   "S <branch> <host>:<port> <method>"                  server, §17.2.3
 *   "O <ruri> <from-tag> <call-id> <cseq> <via> <method>" server, RFC 2543
 * An ACK is keyed as INVITE so that it finds its IST; a CANCEL keeps its own
 * method.  The RFC 2543 key leaves out the To tag, because an ACK carries the
 * tag of our response rather than the INVITE's: it is compared after the
 * lookup (txn_tag_ok). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_port.h>

#include "core/khash.h"
#include "sip/txn_int.h"

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

const osip_via_t *txn_top_via(const osip_message_t *m)
{
	return osip_list_get(&m->vias, 0);
}

static const char *via_branch(const osip_via_t *v)
{
	return param_get(&v->via_params, "branch");
}

const char *txn_tag_of(const osip_from_t *f)
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

/* ---- match keys ---------------------------------------------------------- */

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

int txn_client_key(const osip_message_t *m, struct txn_key *k)
{
	const osip_via_t *via = txn_top_via(m);
	const char *branch = via ? via_branch(via) : NULL;

	if (!branch_is_3261(branch) || !m->cseq || !m->cseq->method)
		return -EINVAL;
	key_init(k, 'C');
	key_put(k, branch, false);
	key_put(k, m->cseq->method, false);
	return k->bad ? -EINVAL : 0;
}

int txn_server_key(const osip_message_t *m, const char *method, struct txn_key *k)
{
	const osip_via_t *via = txn_top_via(m);
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
	key_put(k, txn_tag_of(m->from), false);
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

uint64_t txn_hash(const char *s)
{
	return khash_str(s);
}

static uint64_t txn_entry_hash(const void *e)
{
	return txn_hash(((const struct txn *)e)->key);
}

int txn_table_init(struct txn_layer *tl)
{
	return growtab_init(&tl->tab, TXN_BUCKETS_MIN, offsetof(struct txn, hnext), txn_entry_hash);
}

static struct txn **txn_slot(const struct txn_layer *tl, const char *key)
{
	return (struct txn **)growtab_head(&tl->tab, txn_hash(key));
}

void txn_table_settle(struct txn_layer *tl)
{
	growtab_settle(&tl->tab);
}

void txn_table_add(struct txn_layer *tl, struct txn *t)
{
	struct txn **slot;

	growtab_step(&tl->tab, tl->live, 2, TXN_BUCKETS_MAX);
	slot = txn_slot(tl, t->key);
	t->hnext = *slot;
	*slot = t;
	tl->live++;
}

void txn_table_del(struct txn_layer *tl, struct txn *t)
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

static bool txn_tag_ok(const struct txn *t, const osip_message_t *m, enum txn_tagcheck tc)
{
	const struct txn_priv *p = container_of(t, struct txn_priv, t);
	const char *want = t->req ? txn_tag_of(t->req->to) : p->req_tag ? p->req_tag : "";

	if (tc == TAG_ACK && p->rsp_tag)
		want = p->rsp_tag;
	return !strcmp(txn_tag_of(m->to), want);
}

struct txn *txn_lookup(const struct txn_layer *tl, const char *key, const osip_message_t *m,
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
