/* The B2BUA call engine.  A call joins two dialogs: the A leg (the caller
 * and sipha as UAS) and the B leg (sipha as UAC and the callee), with
 * sipha's own Call-ID, tags and branches on the B leg.  SDP passes through
 * untouched; every Via and Contact sipha writes names the advertised
 * address (the VIP when there is one).
 *
 * States (contract names): dialing → ringing → established → released.
 * A released call leaves the table at once; its memory goes when the last
 * transaction that refers to it has terminated. */
#ifndef SIPHA_CALL_H
#define SIPHA_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/timer.h"
#include "sip/dialog.h"
#include "sip/txn.h"

struct server;

enum call_state {
	CALL_DIALING,
	CALL_RINGING,
	CALL_ESTABLISHED,
	CALL_QUEUED,
	CALL_RELEASED
};

/* A 2xx to an INVITE that sipha (as UAS) retransmits until the ACK comes
 * (RFC 3261 §13.3.1.4): the transaction layer leaves this to the TU. */
struct uas_2xx {
	char *buf;
	size_t len;
	unsigned interval;
	uint64_t deadline;
	struct timer t;
	uint32_t cseq;
};

struct leg {
	struct dialog dlg;
	bool indexed; /* in the dialog table */
	bool bye_sent;
	bool bye_rcvd;
	struct uas_2xx ok; /* pending 2xx towards this leg (sipha as UAS) */
	char *ack_buf; /* the ACK sipha sent for this leg's 2xx (sipha as UAC) */
	size_t ack_len;
	uint32_t ack_cseq;
	bool ack_deferred; /* the 2xx needs the other side's ACK body first */
	struct call *call;
	struct leg *hnext; /* dialog table chain */
};

/* Device state per DN, kept for CTI and monitoring. */
enum dev_state {
	DEV_IDLE,
	DEV_RINGING,
	DEV_BUSY
};

struct call {
	uint64_t id;
	enum call_state state;
	struct server *srv;
	unsigned refs;
	struct call *next, *prev; /* live calls */
	struct leg a, b;
	char *dn; /* the dialed DN (Request-URI user) */
	char *from; /* caller's From URI, for listings */
	char *to; /* the To URI */
	struct txn *a_inv; /* IST of the initial INVITE, until its final answer */
	struct txn *b_inv; /* ICT towards the callee, until it terminates */
	bool b_provisional; /* B sent a 1xx: CANCEL may go */
	bool cancel_pending; /* A cancelled before B's first 1xx */
	bool cancelled;
	bool no_answer;
	struct timer t_ring; /* no-answer timer */
	uint64_t created_ms, answered_ms;
	bool replicated; /* the standby knows it (hot standby) */
	/* A standby's copy of the caller's INVITE while the call rings: after a
	 * takeover, the callee's answer is relayed with it (no IST moved). */
	char *a_invite;
	size_t a_invite_len;
};

struct call_table;

int calls_new(struct call_table **out, struct server *srv);
void calls_free(struct call_table *ct);

/* Requests from the server's dispatcher, each with its new server
 * transaction (which the call layer answers). */
void call_on_invite(struct server *srv, struct txn *st, osip_message_t *req);
void call_on_cancel(struct server *srv, struct txn *st, osip_message_t *req);
/* A request with a To tag (BYE, re-INVITE, UPDATE, INFO, OPTIONS, ...):
 * false when no dialog matches (the caller answers 481). */
bool call_on_indialog(struct server *srv, struct txn *st, osip_message_t *req);
/* An ACK that matched no transaction (ACK for a 2xx). */
void call_on_ack(struct server *srv, osip_message_t *ack);

/* Where requests for URI go (IP literal host, port, transport=tcp): 0,
 * -EINVAL or -EHOSTUNREACH (names are not resolved). */
int call_resolve(const char *uri, struct sip_peer *out);

/* HA standby side: a call as the active node described it (the dialogs and
 * strings are taken over, also on error), found again by its A-leg dialog.
 * Such a call has no transactions; once this node is active, in-dialog
 * requests continue it.  0 or -errno. */
int call_upsert_replica(struct server *srv, uint64_t id, enum call_state state, char *dn,
			char *from, char *to, struct dialog *a, struct dialog *b, char *a_invite,
			size_t a_invite_len);
/* A response to an INVITE that matched no transaction: the answer to a call
 * that rang on the peer before a takeover, or a retransmitted 2xx whose ACK
 * was lost.  False when it is none of ours. */
bool call_on_stray_response(struct server *srv, osip_message_t *resp);
/* The caller's INVITE of a ringing call, serialised for replication
 * (malloc'd, NULL when there is none). */
char *call_a_invite(const struct call *c, size_t *len);
void call_drop_replica(struct server *srv, const char *a_call_id, const char *a_tag);
/* Every call leaves the table without a message sent (resynchronisation). */
void calls_drop_all(struct call_table *ct);

size_t calls_count(const struct call_table *ct);
const char *call_state_name(enum call_state s);
enum dev_state call_dev_state(const struct call_table *ct, const char *dn);
typedef void (*call_iter_fn)(void *arg, const struct call *c);
void calls_foreach(const struct call_table *ct, call_iter_fn fn, void *arg);

#endif
