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
	char *routed_to; /* queued on a routing point, then routed: the target DN or URI */
	const char *release_why; /* static text, set when released */
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
	bool unconfirmed; /* standby: not in the snapshot being applied (yet) */
	bool resume_pending; /* taken over, its transactions not rebuilt yet */
	/* A standby's copies, while the call is set up, of the caller's INVITE
	 * and of ours to the callee: a takeover rebuilds both transactions
	 * from them (calls_take_over). */
	char *a_invite, *b_invite;
	size_t a_invite_len, b_invite_len;
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

/* CTI requests (cc_engine): route queued call ID to TARGET (a DN or a SIP
 * URI), release any call.  0, or -errno with the reason in WHY. */
int call_route_id(struct server *srv, uint64_t id, const char *target, char *why, size_t n);
int call_release_id(struct server *srv, uint64_t id, char *why, size_t n);
struct call *call_by_id(const struct call_table *ct, uint64_t id);

/* Where D's in-dialog requests go: the peer's open connection (TCP), else
 * the first route or the remote target.  0 or -errno. */
int dialog_peer(struct server *srv, const struct dialog *d, struct sip_peer *out);

/* Where requests for URI go (IP literal host, port, transport=tcp): 0,
 * -EINVAL or -EHOSTUNREACH (names are not resolved). */
int call_resolve(const char *uri, struct sip_peer *out);

/* --- HA (callha.c) --- */

/* A call as the active node described it: what a standby keeps. */
struct call_replica {
	uint64_t id;
	enum call_state state;
	char *dn, *from, *to;
	char *routed_to;
	struct dialog a, b; /* B empty (no Call-ID) while queued */
	/* While the call is set up (dialing, ringing): the caller's INVITE and
	 * sipha's to the callee, serialised; NULL otherwise. */
	char *a_invite, *b_invite;
	size_t a_invite_len, b_invite_len;
	/* Answered, the caller's ACK not yet in: the 2xx sipha sends it (to
	 * retransmit), and whether the callee's ACK waits for the caller's
	 * (a delayed offer: the answer SDP comes in the caller's ACK). */
	char *a_ok;
	size_t a_ok_len;
	uint32_t a_ok_cseq;
	bool b_ack_deferred;
	uint32_t b_ack_cseq;
};

/* Standby: adds or updates the call R describes, found again by its A-leg
 * dialog.  Takes R's dialogs and strings, also on error.  Such a call has
 * no transactions until calls_take_over().  0 or -errno. */
int call_upsert_replica(struct server *srv, struct call_replica *r);
void call_drop_replica(struct server *srv, const char *a_call_id, const char *a_tag);
/* The pending INVITE of a call being set up, serialised (malloc'd; NULL
 * when there is none): the caller's (B_SIDE false) or sipha's to the callee. */
char *call_pending_invite(const struct call *c, bool b_side, size_t *len);
/* Every live call, each held (its memory kept, not its place in the table)
 * until call_unhold(): a snapshot sent in slices across loop iterations.
 * 0 or -ENOMEM. */
int calls_hold_all(struct call_table *ct, struct call ***out, size_t *n);
void call_unhold(struct call *c);
/* Mark and sweep around a snapshot: every call is marked unconfirmed, an
 * upsert confirms it, and the sweep releases (without a message) those the
 * snapshot did not name, calling FN for each first.  Returns how many. */
void calls_mark_all(struct call_table *ct);
typedef void (*call_iter_fn)(void *arg, const struct call *c);
size_t calls_sweep(struct call_table *ct, call_iter_fn fn, void *arg);
/* This node has just become active: every call still being set up gets its
 * two INVITE transactions back, rebuilt from the replicated INVITEs (the
 * callee hears a retransmission, the caller's retransmissions are absorbed,
 * CANCEL and the no-answer timer work again).  The first slice at once,
 * the rest a slice per millisecond, or as soon as a message of theirs
 * arrives.  Returns how many are to be resumed; a call that cannot be is
 * released. */
size_t calls_take_over(struct call_table *ct);
/* This node leaves the active role: calls not resumed yet stay as replicas
 * (with their INVITEs) for a later takeover. */
void calls_resume_stop(struct call_table *ct);
/* This node has left the active role: the calls are the new active's now.
 * Their INVITE transactions and timers here end in silence (a timeout here
 * must not answer a caller the new active is serving); the new active's
 * snapshot brings their state back as replicas. */
void calls_quiesce(struct call_table *ct);
/* A response to an INVITE that matched no transaction: a retransmitted 2xx
 * whose ACK was lost (sent again), or a final answer to an INVITE this node
 * no longer has (ACKed).  False when it is none of ours. */
bool call_on_stray_response(struct server *srv, osip_message_t *resp);

size_t calls_count(const struct call_table *ct);
const char *call_state_name(enum call_state s);
enum dev_state call_dev_state(const struct call_table *ct, const char *dn);
void calls_foreach(const struct call_table *ct, call_iter_fn fn, void *arg);

#endif
