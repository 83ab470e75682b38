/* Shared by the call engine's files: call.c (what the flows send with),
 * callsetup.c (new calls), calldlg.c (in-dialog requests), calltab.c (the
 * table, the dialog index, references) and callha.c (HA replicas,
 * takeover), and subscribe.c for what it sends with (contact_uri,
 * add_contact).  Nothing else includes it. */
#ifndef SIPHA_CALL_INT_H
#define SIPHA_CALL_INT_H

#include "core/growtab.h"
#include "server/call.h"

struct call_table {
	struct server *srv;
	struct call *live; /* doubly linked */
	size_t nlive;
	uint64_t next_id;
	/* dialog index: Call-ID + local tag, chained through leg->hnext */
	struct growtab dlg;
	size_t ndlg;
	/* After a takeover: calls being set up whose transactions are still to
	 * be rebuilt (held), resumed a slice per tick or at once when a message
	 * of theirs arrives (callha.c). */
	struct call **resume;
	size_t nresume, iresume;
	struct timer t_resume;
};

void calls_resume_tick(struct timer *t);
/* A call awaiting resumption that the caller's request REQ (a CANCEL, or a
 * retransmitted INVITE) belongs to, by Call-ID and the caller's tag. */
struct call *call_pending_for(struct call_table *ct, const osip_message_t *req);
/* Resumes C now (both transactions); with ST, the caller's INVITE that just
 * arrived again becomes its server transaction.  0, or -errno with C
 * released. */
int call_resume_now(struct call *c, struct txn *st);

void dlg_index_add(struct call_table *ct, struct leg *l);
void dlg_index_del(struct call_table *ct, struct leg *l);
struct leg *dlg_lookup(const struct call_table *ct, const char *call_id, const char *tag);
/* The leg message M belongs to: its Call-ID and sipha's tag, which a peer's
 * request carries in To and a response to sipha's request in From
 * (OURS_IN_FROM).  NULL when M lacks them or no leg matches. */
struct leg *dlg_find(const struct call_table *ct, const osip_message_t *m, bool ours_in_from);

struct call *call_alloc(struct server *srv, uint64_t id);
/* A new call for the caller's INVITE REQ on server transaction ST, to DN
 * USER, in the table with ST as its A-leg INVITE; NULL when it could not be
 * made (ST answered 500). */
struct call *call_open(struct server *srv, struct txn *st, const osip_message_t *req,
		       const char *user);
/* The callee for DN USER: a registered contact of an extension (its flow),
 * or a static route's URI, into URI and TO.  0, or -errno with the SIP
 * code a caller should hear in *FAIL_CODE. */
int call_pick_target(struct server *srv, const char *user, char *uri, size_t len,
		     struct sip_peer *to, int *fail_code);
/* Sipha's INVITE to the callee at TARGET (TO): the B leg of C, made from the
 * caller's INVITE REQ.  0, or -errno with the call released (the caller
 * answered). */
int call_dial(struct call *c, const osip_message_t *req, const char *target,
	      const struct sip_peer *to);
/* Routing points (callqueue.c): the caller's INVITE waits there, answered
 * 180, until a CTI client routes it, the route timeout's default route, or
 * ReleaseCall. */
void call_queue(struct server *srv, struct txn *st, osip_message_t *req, const char *user);
void call_route_timeout(struct call *c);
/* Tells the contact-centre layer about C (its state, or GONE). */
void call_cc_note(struct call *c, bool gone);
/* Into the table and the dialog index. */
void table_add(struct call_table *ct, struct call *c);
void call_put(struct call *c);
/* Leaves the table at once; memory goes with the last reference. */
void call_release(struct call *c, const char *why);
/* Tells the HA engine (server.h srv_repl_ops) about C. */
void replicate(struct call *c, bool gone);

/* What the flows send with (call.c); the takeover path (callha.c) reuses
 * some of it. */
int leg_peer(struct leg *l, struct sip_peer *out);
void send_ack(struct call *c, struct leg *l, uint32_t cseq, const osip_message_t *body);
void copy_body(osip_message_t *dst, const osip_message_t *src);
void contact_uri(struct server *srv, enum sip_proto proto, char *buf, size_t len);
void add_contact(struct server *srv, osip_message_t *m, enum sip_proto proto);
int call_reply(struct server *srv, struct txn *st, int code, const char *reason, const char *to_tag,
	       const osip_message_t *resp_src, bool contact);
/* A new request of leg L's dialog and the peer it goes to; BRANCH_IN
 * NULL draws a fresh branch. */
int leg_request(struct call *c, struct leg *l, const char *method, uint32_t cseq,
		const char *branch_in, osip_message_t **out, struct sip_peer *to);
int arm_2xx(struct call *c, struct leg *l, const char *buf, size_t len, uint32_t cseq,
	    bool reliable);
/* A 2xx to leg L on ST (relayed from SRC), retransmitted until L's ACK. */
int reply_2xx(struct call *c, struct leg *l, struct txn *st, const osip_message_t *src);

/* Each flow's requests that the other one sends too: the CANCEL of the B
 * INVITE (callsetup.c) and a BYE of sipha's own on leg L (calldlg.c). */
void send_cancel(struct call *c);
void send_bye(struct call *c, struct leg *l);

/* The users of a call's two INVITE transactions: the caller's (IST) and
 * sipha's to the callee (ICT); callha.c rebuilds both after a takeover. */
extern const struct txn_user call_ainv_user, call_binv_user;

/* Timer callbacks the table arms on a new call. */
void call_ring_timeout(struct timer *t);
void call_ok_retx(struct timer *t);

#endif
