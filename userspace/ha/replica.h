/* Replication of the server's state as journal records (ha/journal.h):
 * calls (both legs' dialogs, enough to continue a confirmed call on the
 * other node, and both INVITEs of one being set up) and registration
 * bindings.  The active node encodes, the
 * standby applies to its own tables. */
#ifndef SIPHA_HA_REPLICA_H
#define SIPHA_HA_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "ha/journal.h"

struct server;
struct call;
struct reg_binding;
struct reg_aor;

/* One RECORD frame for call C into B (upsert, or delete when released). */
int rep_call_encode(struct jr_buf *b, uint64_t seq, const struct call *c, uint8_t op);
/* One RECORD frame for binding RB of AOR (upsert, or delete). */
int rep_reg_encode(struct jr_buf *b, uint64_t seq, const struct reg_aor *aor,
		   const struct reg_binding *rb, uint8_t op, uint64_t now);

/* The contact-centre layer (repcc.c): one RECORD frame for CTI event E
 * (SNAPSHOT: sent as part of a snapshot), or for agent A's state. */
struct ev;
struct agent;
int rep_event_encode(struct jr_buf *b, uint64_t seq, const struct ev *e, bool snapshot);
int rep_agent_encode(struct jr_buf *b, uint64_t seq, const struct agent *a);
int rep_apply_event(struct server *srv, const struct jr_record *r);
int rep_apply_agent(struct server *srv, const struct jr_record *r);

/* One RECORD frame for subscription S (upsert, or delete), its lifetime
 * counted from NOW. */
struct sub;
int rep_sub_encode(struct jr_buf *b, uint64_t seq, const struct sub *s, uint8_t op, uint64_t now);

/* Applies a record on the standby: 0, or -EBADMSG for a malformed one (the
 * link is then dropped and resynchronised; nothing half-applied stays). */
int rep_apply(struct server *srv, const struct jr_record *r);

/* The users of every AoR that has a binding (a malloc'd array, N of them):
 * a snapshot's registrations, encoded in slices.  0 or -ENOMEM. */
int rep_reg_users(struct server *srv, char (**users)[JR_REG_USER_MAX + 1], size_t *n);

/* Drops every replicated binding (a snapshot follows; calls are marked and
 * swept instead, see calls_mark_all). */
void rep_clear_registrations(struct server *srv);

#endif
