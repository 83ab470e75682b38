/* What the HA engine's two files share: role.c (the role machine, link
 * and netlink events, the API) and feed.c (the active node's output to the
 * standby: live records and the snapshot, paced).  Nothing else includes it. */
#ifndef SIPHA_HA_ROLE_INT_H
#define SIPHA_HA_ROLE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timer.h"
#include "garp.h"
#include "ha/clock.h"
#include "ha/journal.h"
#include "ha/role.h"

struct call;
struct hal_link;
struct nlw;
struct server;
struct reg_aor;
struct reg_binding;

/* The active node's output.  Frames wait here, not in the link's stream,
 * while the stream holds more than FEED_SOFT_LIMIT: a snapshot of a large
 * table is bigger than the stream may ever hold (LOOP_STREAM_MAX_BACKLOG).
 * A snapshot is encoded in slices across loop iterations, so that the loop
 * (heartbeats, SIP) never stalls on a large table. */
struct feed {
	struct {
		uint8_t *data;
		size_t len, off, cap;
	} pend; /* whole frames waiting for the link */
	struct timer t; /* the pacer */
	bool snapping; /* a snapshot is being sent */
	struct call **calls; /* its calls, held, and the next one */
	size_t ncalls, ci;
	char (*users)[JR_REG_USER_MAX + 1]; /* its AoRs, and the next one */
	size_t nusers, ui;
	uint64_t ev_next, ev_last; /* its CTI events, by sequence */
	struct sub **subs; /* its subscriptions, held, and the next one */
	size_t nsubs, si;
	/* The latest frames this active node produced (FEED_RING_MAX bytes at
	 * most), kept across link outages: a standby that comes back in sync
	 * with this node's stream gets what it missed from here instead of a
	 * snapshot. */
	struct {
		uint8_t *data;
		size_t len, cap;
	} ring;
};

struct ha {
	struct server *srv;
	struct hal_link *link;
	struct ha_clock *clock; /* NULL when it could not start */
	struct timer t_progress; /* tells the clock the SIP loop lives */
	/* An ARP/NS probe run on the loop's clock, not waited for
	 * (role.c, probe_begin): started when the peer is suspect or gone. */
	struct {
		struct timer t;
		bool running, done, answered, take;
		unsigned sent;
		uint64_t deadline, done_at;
		uint8_t holder[6];
		const char *why;
	} probe;
	enum ha_state state;
	uint64_t epoch;
	uint64_t seq; /* last record sent (active) or applied (standby) */
	uint8_t mac[6]; /* our service interface's */
	uint8_t peer_mac[6];
	bool have_peer_mac;
	bool peer_up;
	struct jr_hello peer;
	bool hot;
	bool synced; /* standby: a whole snapshot applied */
	uint64_t fed_by; /* standby: the instance whose stream h->seq counts (0: none) */
	bool snap_sent; /* active: the peer is fed on this link (snapshot begun) */
	bool handing_over; /* switchover asked: stay active until the peer is */
	uint64_t handover_seq; /* our journal when it was asked */
	/* Took over by a switchover: the old active's last records (what it did
	 * while handing over) are still to come, until its HELLO says standby. */
	bool late_ok;
	/* ... and the link came up again since: they come on that link, so
	 * its going down ends them (the first down, right after the GOODBYE
	 * "demoting", is the old active re-making the link). */
	bool late_up;
	bool split_lost; /* lost a split brain: the winner's snapshot is awaited */
	/* Shutting down (ha_shutdown): called once this node may exit. */
	void (*stopped)(void *arg);
	void *stopped_arg;
	struct timer t_decide; /* start-up and isolated re-probe */
	struct jr_buf out; /* records being encoded */
	struct feed feed; /* the active's output to the standby (feed.c) */
	struct nlw *nlw; /* link and address events of the service interface */
	struct garp_ctx garp; /* packet sockets for probes and announcements, kept open */
	char epoch_path[512];
	struct ha_status st;
};

void feed_init(struct ha *h);
void feed_fini(struct ha *h);
/* The link went down: what was queued or being snapshotted is dropped. */
void feed_reset(struct ha *h);
/* A standby just connected (hot standby): it gets what it lacks, the
 * records since its last_seq when this node's ring still holds them, else a
 * snapshot. */
void feed_start(struct ha *h);
/* This node starts or stops being the active one: a new stream. */
void feed_ring_clear(struct ha *h);
/* The frames produced after seq SINCE, straight to the link (a switchover:
 * what this node did while the peer was taking over). */
void feed_send_since(struct ha *h, uint64_t since);
/* The snapshot is complete and every record acknowledged. */
bool feed_in_sync(const struct ha *h);
/* The snapshot is complete and nothing waits here: all that this node did
 * is on the link, ahead of anything sent next (a switchover may go). */
bool feed_caught_up(const struct ha *h);
/* Records sent or waiting, not yet acknowledged. */
uint64_t feed_lag(const struct ha *h);
/* srv_repl_ops / registrar hooks: one record per change. */
void feed_call(void *arg, const struct call *c, bool gone);
void feed_binding(void *arg, const struct reg_aor *a, const struct reg_binding *b, bool gone);
/* cc_sink hooks: a CTI event (returns its record's seq when a standby in
 * sync will acknowledge it, so the event waits for that) and an agent. */
struct ev;
struct agent;
uint64_t feed_event(void *arg, const struct ev *e);
void feed_sub(void *arg, const struct sub *s, bool gone);
void feed_agent(void *arg, const struct agent *a);

#endif
