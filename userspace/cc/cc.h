/* The contact-centre layer of a node: routing-point queues, agents, device
 * states and the CTI event stream.  Node-wide state behind a small API: it
 * knows nothing of SIP messages, transactions or sockets.  The call engine
 * tells it what its calls do (cc_call_update) and whether an extension is
 * registered (cc_reg_update); it publishes events (sequence-numbered, kept
 * in the replicated event log) to a sink, which is the CTI server; CTI
 * requests that act on calls go back to the engine through cc_engine.
 *
 * On a standby the same state is kept from what the journal brings, but no
 * event is made: the active node's events arrive in the log with their own
 * sequence numbers.  cc_set_publishing() switches at a takeover. */
#ifndef SIPHA_CC_CC_H
#define SIPHA_CC_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cc/agent.h"
#include "cc/evlog.h"

struct sipha_config;

enum cc_dev {
	CC_DEV_UNREGISTERED,
	CC_DEV_IDLE,
	CC_DEV_RINGING,
	CC_DEV_BUSY
};

/* The call states cc sees (the contract names of siphactl calls). */
enum cc_call_state {
	CCS_DIALING,
	CCS_RINGING,
	CCS_ESTABLISHED,
	CCS_QUEUED,
	CCS_RELEASED
};

/* A call as the engine describes it at each change. */
struct cc_call {
	uint64_t id;
	enum cc_call_state state;
	const char *dn; /* the dialed DN */
	const char *target; /* the DN it was routed to from a routing point, or NULL */
	const char *caller; /* the caller's user part (an extension DN or not), or NULL */
	const char *from, *to; /* URIs, for events */
	const char *cause; /* released: why (may be NULL) */
};

/* What CTI requests ask of the call engine: 0, or -errno with a reason
 * for the client in WHY. */
struct cc_engine {
	int (*route)(void *arg, uint64_t call, const char *target, char *why, size_t n);
	int (*release)(void *arg, uint64_t call, char *why, size_t n);
	void *arg;
};

/* Who hears published events: the CTI server delivers them, the HA feed
 * journals them (either may be NULL). */
struct cc_sink {
	void (*deliver)(void *arg, const struct ev *e);
	void *deliver_arg;
	/* Journals E; returns the journal sequence of its record, 0 when not
	 * replicated (then E is delivered at once). */
	uint64_t (*journal)(void *arg, const struct ev *e);
	/* Journals agent A's new state. */
	void (*agent)(void *arg, const struct agent *a);
	void *journal_arg;
};

struct cc_stats {
	uint64_t events;
	uint64_t queued;
	uint64_t routed;
};

struct cc;

/* EVLOG_MAX and KEEP_MS size the event log.  A new cc is not publishing
 * (cc_set_publishing).  0 or -errno. */
int cc_new(struct cc **out, const struct sipha_config *cfg, size_t evlog_max, uint64_t keep_ms);
void cc_free(struct cc *cc);
void cc_set_engine(struct cc *cc, const struct cc_engine *e);
void cc_set_sink(struct cc *cc, const struct cc_sink *s);
/* Each half of the sink on its own: the CTI server and the HA feed. */
void cc_set_deliver(struct cc *cc, void (*deliver)(void *arg, const struct ev *e), void *arg);
void cc_set_journal(struct cc *cc, uint64_t (*journal)(void *arg, const struct ev *e),
		    void (*agent)(void *arg, const struct agent *a), void *arg);
/* The node's monotonic clock (ms) for the log; and wall-clock ms for the
 * events' "ts" (NULL: CLOCK_REALTIME). */
void cc_set_clock(struct cc *cc, const uint64_t *now_ms, uint64_t (*wall_ms)(void));

/* Called whenever an extension's device state changes (on a standby too:
 * the watcher decides what to do with it). */
void cc_set_device_watch(struct cc *cc, void (*fn)(void *arg, const char *dn, enum cc_dev d),
			 void *arg);

/* Active (or alone): events are made.  Standby: state only. */
void cc_set_publishing(struct cc *cc, bool on);
bool cc_publishing(const struct cc *cc);

/* --- from the call engine ---------------------------------------------------------- */

/* Call C changed (or is new, or released).  Updates device states and agents,
 * and publishes Queued/RouteRequest, Ringing, Established, Released. */
void cc_call_update(struct cc *cc, const struct cc_call *c);
/* Extension DN's registrations changed: REGISTERED says whether it has any. */
void cc_reg_update(struct cc *cc, const char *dn, bool registered);
/* Forgets every call (a snapshot is coming), keeping registrations. */
void cc_calls_reset(struct cc *cc);

enum cc_dev cc_dev_state(const struct cc *cc, const char *dn);
const char *cc_dev_name(enum cc_dev d);
/* Whether DN is a configured extension / routing point. */
bool cc_is_extension(const struct cc *cc, const char *dn);
bool cc_is_routing_point(const struct cc *cc, const char *dn);

/* --- from CTI -------------------------------------------------------------------- */

/* The agent requests (AgentLogin/Ready/NotReady/Logout).  0 or -errno with
 * a reason in WHY; publishes AgentState when the state changed. */
int cc_agent_request(struct cc *cc, enum ag_event ev, const char *agent, const char *dn,
		     const char *reason, char *why, size_t n);
int cc_route(struct cc *cc, uint64_t call, const char *target, char *why, size_t n);
int cc_release(struct cc *cc, uint64_t call, char *why, size_t n);

/* Publishes an event: "event" NAME (NULL: an answer, with no "event" key)
 * with "seq" and "ts" added to FIELDS (a jansson object, stolen), filed under
 * DNS (up to EV_DNS, NULL entries unused) and, for an answer, for CLIENT
 * only.  Returns its sequence, 0 when not published (standby, or no
 * memory). */
uint64_t cc_publish(struct cc *cc, const char *name, json_t *fields, const char *const *dns,
		    const char *client);

/* The answer to CLIENT's request whose ref is REF (compact JSON text, ""
 * when it had none), with FIELDS (stolen; "ref" is added): published for
 * that client only and remembered, so that the same request sent again
 * (to this node or, after a failover, to the peer) is answered from the
 * log instead of being carried out twice.  Its sequence, or 0. */
uint64_t cc_answer(struct cc *cc, const char *client, const char *ref, const char *event,
		   json_t *fields);
/* The logged answer to CLIENT's request REF (non-empty), or NULL. */
const struct ev *cc_find_answer(const struct cc *cc, const char *client, const char *ref);
/* The newest event handed to the sink (later ones wait for the journal). */
uint64_t cc_delivered_seq(const struct cc *cc);

/* --- a hot standby's copy (ha/repcc.c) ------------------------------------------- */

/* An event the active node published, as its journal record carried it.
 * In order: SEQ follows the log's last; FROM_SNAPSHOT marks the events of a
 * snapshot, which come in slices while the live ones go on: a live event
 * that arrives before the snapshot's last one waits until cc_snap_end().
 * 0, -EEXIST (already held: a late record after a switchover), -EINVAL (out
 * of order) or -ENOMEM. */
int cc_log_replica(struct cc *cc, uint64_t seq, const char *const *dns, const char *client,
		   const char *ref, const char *line, size_t len, bool from_snapshot);
/* A snapshot begins (agents and the log will be sent whole) and ends. */
void cc_snap_begin(struct cc *cc);
void cc_snap_end(struct cc *cc);

const struct agents *cc_agents(const struct cc *cc);
size_t cc_agents_logged_in(const struct cc *cc);
struct agents *cc_agents_mut(struct cc *cc);
struct evlog *cc_evlog(struct cc *cc);
const struct cc_stats *cc_stats(const struct cc *cc);
/* The journal acknowledged up to JSEQ: events held for it are delivered. */
void cc_journal_acked(struct cc *cc, uint64_t jseq);
/* Delivers every event still held (the standby is gone or out of sync). */
void cc_release_held(struct cc *cc);
/* Forgets the held events without delivering them: this node left the
 * active role, and the node that took over has them or numbers its own. */
void cc_drop_held(struct cc *cc);
/* A node that took over in a switchover numbers no event of its own until
 * the old active's last records are in (ON), then numbers what it made
 * meanwhile after them (OFF): no sequence number is given twice. */
void cc_set_defer(struct cc *cc, bool on);

#endif
