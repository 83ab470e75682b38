/* The HA role machine (docs/ARCHITECTURE.md §3): who is active, moving the VIP by
 * netlink, and in hot standby the stream of journal records that keeps the
 * standby's calls and registrations in step with the active node's. */
#ifndef SIPHA_HA_ROLE_H
#define SIPHA_HA_ROLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct ha;
struct hal_stats;

/* Contract names: active, standby, isolated ("starting" shows as standby). */
enum ha_state {
	HA_STARTING,
	HA_ACTIVE,
	HA_STANDBY,
	HA_ISOLATED
};

struct ha_status {
	enum ha_state state;
	uint64_t epoch;
	bool peer_connected;
	bool in_sync;
	uint64_t sync_lag;
	char peer[65];
	uint64_t takeovers, demotions, records_sent, records_applied, snapshots;
	uint64_t resumes; /* standbys that got the records they missed, no snapshot */
	/* Calls that ended on a node after it handed over (a BYE it relayed):
	 * deletes it sent to the new active, and those applied as active. */
	uint64_t trailing_sent, trailing_applied;
	/* Records the old active made while handing over (a call set up or
	 * changed then): sent to the new active, and those applied there. */
	uint64_t late_sent, late_applied;
};

/* Starts the HA link and the role machine of SRV (cfg [ha] present). */
int ha_start(struct ha **out, struct server *srv);
/* Leaves the active role (VIP removed), says goodbye, frees.  NULL is ok. */
void ha_stop(struct ha *h);

/* Starts leaving (SIGTERM): an active node with a peer in sync hands the
 * role over first (a switchover, so no call is lost; at most 2 × timeout_ms),
 * any node then says goodbye.  STOPPED(ARG) runs once when the process may
 * exit; ha_stop() still frees everything after the loop. */
void ha_shutdown(struct ha *h, void (*stopped)(void *arg), void *arg);

/* Hands the active role to the peer (from either node).  0, or -errno with
 * a reason in WHY. */
int ha_switchover(struct ha *h, const char **why);

/* The HA clock's counters; false when it does not run. */
struct ha_clock_stats;
bool ha_clock_counters(const struct ha *h, struct ha_clock_stats *out);
void ha_get_status(const struct ha *h, struct ha_status *st);
/* The HA link's counters (metrics). */
const struct hal_stats *ha_link_stats(const struct ha *h);
const char *ha_state_name(enum ha_state s);

#endif
