/* The SIP server of one worker: receives what the transports deliver, makes
 * the RFC 3261 checks, and dispatches requests to the registrar and (later)
 * the call engine.  Everything a worker owns hangs off struct server. */
#ifndef SIPHA_SERVER_H
#define SIPHA_SERVER_H

#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "sip/msg.h"
#include "sip/transport.h"
#include "server/registrar.h"
#include "sip/txn.h"

/* Counters: name, help.  One list, so metrics, JSON and docs agree. */
#define SRV_COUNTERS(X)                                                                         \
	X(sip_rx_messages, "SIP messages received (datagrams and framed stream messages)")      \
	X(sip_rx_requests, "requests received")                                                 \
	X(sip_rx_responses, "responses received")                                               \
	X(sip_rx_unparsable, "messages dropped because they could not be parsed at all")        \
	X(sip_rx_rejected, "requests refused by the RFC 3261 checks (400, 416, 420, 505, ...)") \
	X(sip_rx_ack_dropped, "malformed or unmatched ACKs dropped")                            \
	X(sip_rx_responses_dropped, "responses dropped: malformed or no matching transaction")  \
	X(sip_tx_responses, "responses sent")                                                   \
	X(sip_tx_errors, "responses that could not be built or sent")                           \
	X(sip_rx_overload, "requests answered 503 at once: max_transactions were live")         \
	X(register_ok, "REGISTER requests accepted")                                            \
	X(register_refused, "REGISTER requests refused")                                        \
	X(options_answered, "OPTIONS answered locally")                                         \
	X(method_not_allowed, "requests answered 405")                                          \
	X(method_not_implemented, "requests answered 501")                                      \
	X(no_dialog, "in-dialog requests answered 481")                                         \
	X(invite_refused, "INVITEs answered with a final error")                                \
	X(sip_rx_retransmissions,                                                               \
	  "requests absorbed by their transaction (retransmissions and ACKs of error answers)") \
	X(calls_offered, "initial INVITEs received")                                            \
	X(calls_ringing, "calls that reached the ringing state")                                \
	X(calls_answered, "calls answered (2xx from the callee)")                               \
	X(calls_failed, "calls that ended before an answer (error or refusal)")                 \
	X(calls_cancelled, "calls cancelled by the caller")                                     \
	X(calls_no_answer, "calls that hit the no-answer timer")                                \
	X(calls_no_ack, "answered calls released because the caller never sent the ACK")        \
	X(calls_route_timeout, "queued calls nobody routed within route_timeout_ms")            \
	X(calls_released, "calls that left the call table")                                     \
	X(indialog_relayed, "in-dialog requests relayed to the other leg")                      \
	X(calls_overload, "initial INVITEs answered 503 with Retry-After: max_calls were up")   \
	X(register_overload,                                                                    \
	  "REGISTERs answered 503 with Retry-After: max_registrations addresses of record held")

struct srv_stats {
#define X(name, help) uint64_t name;
	SRV_COUNTERS(X)
#undef X
};

struct control;
struct call_table;
struct cc;
struct cti;
struct auth;
struct sxdp;

typedef int (*srv_send_fn)(void *arg, const struct sip_peer *to, const char *buf, size_t len);
struct call;
struct ha;
/* Call state changes the HA engine replicates (GONE: the call left);
 * bindings come through reg_set_notify. */
struct reg_aor;
struct reg_binding;
struct sub;
struct sub_table;
struct srv_repl_ops {
	void (*call)(void *arg, const struct call *c, bool gone);
	void (*binding)(void *arg, const struct reg_aor *a, const struct reg_binding *b, bool gone);
	void (*sub)(void *arg, const struct sub *s, bool gone);
	void *arg;
};

struct server {
	struct sipha_config *cfg;
	struct loop *loop; /* NULL in unit tests */
	struct timer_wheel *tw; /* the clock is tw->now */
	srv_send_fn send; /* the transport, or a test's capture */
	void *send_arg;
	struct sip_transport *tp;
	struct registrar *reg;
	struct txn_layer *txns;
	struct call_table *calls;
	struct control *ctl;
	/* Node-wide, not per worker: the contact-centre state (routing
	 * points, agents, device states, the CTI event log) and the CTI
	 * server (NULL without [cti]). */
	struct cc *cc;
	struct cti *cti;
	struct sub_table *subs; /* dialog-event subscriptions (busy lamps) */
	struct auth *auth; /* digest authentication, NULL without [auth] */
	struct sxdp *xdp; /* NULL with [xdp] mode = off */
	bool vip_owned; /* we added the VIP and remove it on exit */
	struct ha *ha; /* NULL without [ha] */
	struct srv_repl_ops repl; /* all NULL: nothing replicates */
	struct timer xdp_tick; /* the dead man's switch heartbeat */
	unsigned t1_ms, t2_ms, t4_ms;
	struct srv_stats st;
	/* Past a limit: one warning a second each (core/log.h). */
	struct log_rl rl_calls, rl_registrations, rl_transactions;
	/* The address sipha writes into Via/Contact and sends from: the VIP
	 * when configured, else the listen address. */
	struct sockaddr_storage adv;
	bool adv_is_vip;
	char adv_host[64];
	uint16_t adv_port;
	uint64_t started_ms;
};

/* The SIP engine without I/O: registrar, transactions, calls.  Unit tests
 * drive it through srv_rx() with their own wheel and send function. */
int srv_core_init(struct server *srv, struct sipha_config *cfg, struct timer_wheel *tw,
		  srv_send_fn send, void *send_arg);
void srv_core_fini(struct server *srv);

/* The whole server on loop L: the core plus transports and control. */
int srv_init(struct server *srv, struct sipha_config *cfg, struct loop *l);
/* SIGTERM: the HA engine leaves gracefully (ha_shutdown); STOPPED(ARG) runs
 * once the loop may stop, at once without HA.  srv_fini() follows the loop. */
void srv_shutdown(struct server *srv, void (*stopped)(void *arg), void *arg);
void srv_fini(struct server *srv);

static inline int srv_send(struct server *srv, const struct sip_peer *to, const char *buf,
			   size_t len)
{
	return srv->send(srv->send_arg, to, buf, len);
}

/* The HA engine moved this node into (ACTIVE) or out of the active role:
 * the contact-centre layer publishes events only while active, and CTI
 * clients hear of the change. */
void srv_ha_state(struct server *srv, bool active);
/* The period of the XDP dead man's stamp (1..20 ms, half a heartbeat). */
unsigned srv_xdp_tick_ms(const struct sipha_config *cfg);

/* A fresh tag for a To or From header: random, not guessable. */
void srv_new_tag(struct server *srv, char *buf, size_t len);

/* How long a client refused at a limit is asked to wait (Retry-After, s). */
#define SRV_RETRY_AFTER "5"
/* A limit ([sip] max_calls, ...) refuses REQ, whose server transaction is
 * ST: 503 with Retry-After (RFC 3261 §21.5.4), so the client tries again
 * later (or elsewhere) rather than retransmitting into a full node. */
void srv_reply_full(struct server *srv, struct txn *st, const osip_message_t *req);

/* Entry point of every received SIP message (the transport's callback). */
void srv_rx(void *arg, const struct sip_peer *from, const char *buf, size_t len);

#endif
