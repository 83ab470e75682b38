/* SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states).
 *
 * Four machines — INVITE server (IST), non-INVITE server (NIST), INVITE
 * client (ICT), non-INVITE client (NICT) — each an enum of states and a
 * transition per event, with timers A–K (and L, M of RFC 6026) on the
 * timer wheel.  The layer knows nothing of sockets or of the clock: it sends
 * through env->send and reads "now" from the wheel, so unit tests drive it
 * with synthetic messages and a fake clock.
 *
 * State is in plain structs so that the HA journal can serialise it.
 *
 * Ownership: the layer owns every transaction.  A transaction is freed after
 * it reaches Terminated, once its user's on_terminated callback returned;
 * after that the user must not touch the pointer. */
#ifndef SIPHA_SIP_TXN_H
#define SIPHA_SIP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <osipparser2/osip_parser.h>

#include "core/timer.h"
#include "sip/msg.h"
#include "sip/transport.h"

enum txn_kind {
	TXN_IST,
	TXN_NIST,
	TXN_ICT,
	TXN_NICT
};

enum txn_state {
	TXN_CALLING, /* ICT */
	TXN_TRYING, /* NIST, NICT */
	TXN_PROCEEDING, /* all */
	TXN_ACCEPTED, /* IST, ICT (RFC 6026): a 2xx was sent / received */
	TXN_COMPLETED, /* all */
	TXN_CONFIRMED, /* IST */
	TXN_TERMINATED,
	TXN_NSTATES
};

struct txn;
struct txn_layer;

/* What a transaction tells its user (the dialog / call layer). */
struct txn_user {
	/* Client: a response matched (1xx, 2xx — including 2xx
	 * retransmissions in Accepted —, 3xx–6xx).  The ICT already sent the
	 * ACK for 3xx–6xx; ACK for 2xx is the user's job (§13.2.2.4). */
	void (*on_response)(struct txn *t, void *uarg, osip_message_t *resp);
	/* Client: Timer B/F fired or the transport failed; the user acts as if
	 * a 408 (timeout) / 503 (transport) had arrived.  CODE is that code. */
	void (*on_timeout)(struct txn *t, void *uarg, int code);
	/* Server IST: the ACK for a 2xx passes the transaction (Accepted); this
	 * is only a courtesy — 2xx ACKs are matched by dialog, not here.
	 * Server: the request was retransmitted while no final response was
	 * sent (the user may ignore it). */
	/* Any: the transaction is about to be freed. */
	void (*on_terminated)(struct txn *t, void *uarg);
	/* IST: Timer H fired — no ACK came for our 3xx–6xx. */
	void (*on_no_ack)(struct txn *t, void *uarg);
};

struct txn_env {
	struct timer_wheel *tw; /* "now" is tw->now */
	int (*send)(void *arg, const struct sip_peer *to, const char *buf, size_t len);
	void *send_arg;
	unsigned t1_ms, t2_ms, t4_ms; /* 500, 4000, 5000 by default (0 = default) */
	/* Live transactions at most (0 = TXN_DEFAULT_MAX); beyond it a new
	 * request gets TXN_RX_ERROR and txn_request -ENOBUFS. */
	unsigned max_txns;
};

#define TXN_DEFAULT_MAX 65536

struct txn {
	enum txn_kind kind;
	enum txn_state state;
	struct txn_layer *tl;
	struct txn *hnext; /* in the layer's match table */
	char *key; /* match key (branch, sent-by, method) */
	struct sip_peer peer; /* server: where responses go; client: where the request went */
	bool reliable; /* TCP: no retransmission timers */
	osip_message_t *req; /* the request (server: received, client: sent) */
	char *out; /* bytes to retransmit: client the request, server the last response */
	size_t outlen;
	int code; /* last response code sent (server) or received (client), 0 none */
	unsigned interval; /* current retransmission interval, ms */
	struct timer t_retx; /* A, E, G */
	struct timer t_life; /* B, D, F, H, I, J, K, L, M */
	const struct txn_user *user;
	void *uarg;
	bool dying; /* on the layer's free list */
};

enum txn_rx {
	TXN_RX_NEW, /* a new server transaction was created: *OUT, the user handles the request */
	TXN_RX_ABSORBED, /* a retransmission, answered or ignored by its transaction */
	TXN_RX_ACK, /* an ACK matching no transaction (ACK for a 2xx): dialog business */
	TXN_RX_ERROR, /* no memory, or a request without the fields needed to match it */
};

int txn_layer_new(struct txn_layer **out, const struct txn_env *env);
/* Frees every transaction (calling on_terminated) and the layer. */
void txn_layer_free(struct txn_layer *tl);

/* An incoming request.  For a new one (TXN_RX_NEW) the transaction is
 * created in Trying/Proceeding and *OUT set; the layer keeps its own copy of
 * REQ (osip_message_clone) so the caller still frees REQ.  The caller then
 * sets the user with txn_set_user(). */
enum txn_rx txn_rx_request(struct txn_layer *tl, osip_message_t *req, const struct sip_peer *from,
			   struct txn **out);
/* The same, but a new transaction keeps *REQ itself, without a copy, and
 * *REQ becomes NULL; for any other outcome *REQ stays the caller's. */
enum txn_rx txn_rx_request_take(struct txn_layer *tl, osip_message_t **req,
				const struct sipmsg_ix *ix, const struct sip_peer *from,
				struct txn **out);

/* An incoming response: delivered to its client transaction's user, or
 * false when no transaction matches (the caller may handle a stray 2xx
 * retransmission or drop it). */
bool txn_rx_response(struct txn_layer *tl, osip_message_t *resp, const struct sip_peer *from);

void txn_set_user(struct txn *t, const struct txn_user *user, void *uarg);

/* Server: sends RESP (not freed) and moves the machine (1xx → Proceeding,
 * 2xx → Accepted/Completed, 3xx–6xx → Completed).  0 or -errno; -EINVAL in
 * a state where no response may be sent. */
int txn_respond(struct txn *t, osip_message_t *resp);
/* The same with the response already serialised (sipmsg_reply): BYTES are
 * copied; TO_TAG is the tag it added to To, if it added one. */
int txn_respond_raw(struct txn *t, int code, const char *to_tag, const char *bytes, size_t len);
/* Server: builds and sends a response with sipmsg_response (TO_TAG may be
 * NULL), the common case. */
int txn_reply(struct txn *t, int code, const char *reason, const char *to_tag);
/* Server: a response built in place from the headers the request's octets
 * gave (txn_rx_request_take with its index), with R's extra headers and
 * body.  -EAGAIN when T has none of them or the response is larger than
 * TXN_REPLY_MAX: build it with libosip2 instead. */
#define TXN_REPLY_MAX 8192
/* An INVITE server transaction made by txn_rx_request_take with an index:
 * the request's octets as they arrived (before sipmsg_via_received), else
 * NULL. */
const char *txn_raw(const struct txn *t, size_t *len);
int txn_reply_opt(struct txn *t, const struct sipmsg_reply_opt *r);

/* Client: sends REQ (the layer takes ownership of REQ) to TO; its top Via
 * must already carry a fresh branch (txn_new_branch).  0 with *OUT, or
 * -errno (REQ freed). */
int txn_request(struct txn_layer *tl, osip_message_t *req, const struct sip_peer *to,
		const struct txn_user *user, void *uarg, struct txn **out);

/* The same with BYTES (LEN of them) as what goes on the wire instead of
 * REQ serialised: a transaction resumed on another node sends exactly what
 * the first one did, so the peer sees a retransmission (NULL: serialise). */
int txn_request_bytes(struct txn_layer *tl, osip_message_t *req, const char *bytes, size_t len,
		      const struct sip_peer *to, const struct txn_user *user, void *uarg,
		      struct txn **out);

/* The transport to PEER failed (a TCP connection closed with an error):
 * every client transaction over TCP to that address still waiting for its
 * final response ends as if a 503 had come (§8.1.3.1), at once rather than
 * at Timer B/F.  Returns how many. */
size_t txn_transport_error(struct txn_layer *tl, const struct sip_peer *peer);

/* Ends T at once and in silence (on_terminated runs; nothing is sent, no
 * timeout is reported): the call it served moved to another node. */
void txn_abandon(struct txn *t);

/* The INVITE server transaction a CANCEL is for (§9.2), or NULL. */
struct txn *txn_find_invite(struct txn_layer *tl, osip_message_t *cancel);

/* A fresh branch: "z9hG4bK" + unique token.  BUF at least 40 bytes. */
void txn_new_branch(struct txn_layer *tl, char *buf, size_t len);

/* Builds the ACK for a 3xx–6xx response to an INVITE (§17.1.1.3); used
 * by the ICT and exposed for tests. */
int txn_build_ack(const osip_message_t *invite, const osip_message_t *resp, osip_message_t **ack);

/* Number of live transactions (metrics, tests). */
size_t txn_count(const struct txn_layer *tl);

const char *txn_state_name(enum txn_state s);

#endif
