/* Shared by the three files of the transaction layer, and included by
 * nothing else:
 *  - txn.c: the layer, a transaction's life cycle (allocation, Terminated,
 *    the deferred free) and the API of sip/txn.h;
 *  - txn_match.c: what finds a transaction for a message: the match keys of
 *    §17.1.3, §17.2.3 and RFC 2543, and the hash table they index;
 *  - txn_fsm.c: the four machines: their actions, their transition tables,
 *    txn_fire(), and the ACK the ICT builds.
 * Every public entry point brackets its work with txn_enter()/txn_leave(),
 * and only txn_terminate() takes a transaction out of the table. */
#ifndef SIPHA_SIP_TXN_INT_H
#define SIPHA_SIP_TXN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <osipparser2/osip_parser.h>

#include "core/growtab.h"
#include "core/timer.h"
#include "sip/txn.h"

#define TXN_COOKIE "z9hG4bK"
#define TXN_COOKIE_LEN 7
/* Longer keys (a huge Request-URI or Via in RFC 2543 matching) are refused:
 * memory per transaction stays bounded. */
#define TXN_KEY_MAX 2048
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
	/* the match table: chains through struct txn's hnext, growing a few
	 * buckets at a time (core/growtab.h) */
	struct growtab tab;
	size_t live;
	struct txn *dead; /* terminated, freed at the next safe point */
	unsigned depth; /* nesting of public calls; frees only at 0 */
	bool closing;
	uint64_t ignored; /* events with no transition */
};

/* What the public header does not need to show. */
struct txn_priv {
	struct txn t;
	/* IST: To tag of our final response, which an RFC 2543 ACK for it
	 * carries (§17.2.3). */
	char *rsp_tag;
	/* A server transaction made from a clean message: the headers its
	 * responses echo, copied into ECHO_BUF (sipmsg_reply_echo). */
	char *echo_buf;
	struct sipmsg_echo echo;
	/* NIST, once Completed and its request freed: the request's To tag,
	 * which a retransmission is matched against. */
	char *req_tag;
	/* IST made from octets: those octets, as they arrived (HA records
	 * copy them instead of printing the tree again). */
	char *raw;
	size_t rawlen;
};

/* One event's parameters and results. */
struct txn_arg {
	osip_message_t *msg; /* the response sent or received */
	int code; /* server: the status of the response sent */
	const char *tag; /* server: its To tag ("" for none) */
	char *buf; /* server: MSG serialised; an action takes it */
	size_t len;
	int err; /* server: result of sending BUF */
	bool handled; /* the event had a transition */
	enum txn_rx rx;
};

static inline void txn_arm(struct txn *t, struct timer *tm, unsigned ms)
{
	struct timer_wheel *tw = t->tl->env.tw;

	timer_add(tw, tm, tw->now + ms);
}

static inline void txn_stop(struct txn *t, struct timer *tm)
{
	timer_del(t->tl->env.tw, tm);
}

/* ---- txn_match.c ---- */

/* A match key being built (txn_match.c explains its three forms). */
struct txn_key {
	char s[TXN_KEY_MAX];
	size_t n;
	bool bad;
};

enum txn_tagcheck {
	TAG_NONE, /* RFC 3261 keys, CANCEL (§9.2: its To tag may differ) */
	TAG_REQ, /* RFC 2543 request: the To tag of the one that made the transaction */
	TAG_ACK, /* RFC 2543 ACK: the To tag of our response */
};

const osip_via_t *txn_top_via(const osip_message_t *m);
/* F's tag, "" when it has none. */
const char *txn_tag_of(const osip_from_t *f);
/* 0, or -EINVAL when M has no RFC 3261 branch or CSeq method. */
int txn_client_key(const osip_message_t *m, struct txn_key *k);
/* The server key of request M as if its method were METHOD.  Returns 0 for
 * the RFC 3261 form, 1 for the RFC 2543 one, -EINVAL when M lacks what
 * matching needs, -ENOMEM. */
int txn_server_key(const osip_message_t *m, const char *method, struct txn_key *k);
uint64_t txn_hash(const char *s);
/* Into the table (and counted live) / out of it. */
int txn_table_init(struct txn_layer *tl); /* 0 or -ENOMEM */
void txn_table_add(struct txn_layer *tl, struct txn *t);
/* Finishes a growth in progress: every transaction in BUCKETS (before a
 * walk over the whole table). */
void txn_table_settle(struct txn_layer *tl);
void txn_table_del(struct txn_layer *tl, struct txn *t);
/* The live transaction with KEY that message M matches, or NULL. */
struct txn *txn_lookup(const struct txn_layer *tl, const char *key, const osip_message_t *m,
		       enum txn_tagcheck tc);

/* ---- txn.c ---- */

void txn_enter(struct txn_layer *tl);
void txn_leave(struct txn_layer *tl);
/* Out of the table, timers stopped, user told, onto tl->dead.  Idempotent. */
void txn_terminate(struct txn *t);

/* ---- txn_fsm.c ---- */

/* Runs EV and whatever follow-up events its actions return. */
void txn_fire(struct txn *t, enum txn_ev ev, struct txn_arg *a);
/* Whether EV has a transition in T's present state. */
bool txn_fsm_has(const struct txn *t, enum txn_ev ev);
/* Sends t->out (if any) to t->peer: 0 or -errno. */
int txn_send_out(struct txn *t);

#endif
