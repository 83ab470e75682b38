/* Agents: who is logged in on which extension, and whether they can take a
 * call.  The state machine is one [state][event] table (agent.c); every
 * transition and every refusal is in it.
 *
 *   logged_out --login--> not_ready <--ready/not_ready--> ready
 *   not_ready/ready --their DN is on a call--> busy --call ends--> back
 *   any logged-in state --logout--> logged_out
 *
 * A ready/not-ready request while busy is remembered: it is the state the
 * agent returns to when the call ends.  Node-wide state, not per worker. */
#ifndef SIPHA_CC_AGENT_H
#define SIPHA_CC_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#define AG_ID_MAX 64
#define AG_DN_MAX 64
#define AG_REASON_MAX 64

enum ag_state {
	AG_LOGGED_OUT,
	AG_NOT_READY,
	AG_READY,
	AG_BUSY,
	AG_NSTATES
};

enum ag_event {
	AGE_LOGIN,
	AGE_READY,
	AGE_NOT_READY,
	AGE_LOGOUT,
	AGE_CALL_START, /* the agent's DN went ringing or busy */
	AGE_CALL_END, /* the agent's DN is idle again */
	AGE_NEVENTS
};

struct agent {
	char id[AG_ID_MAX + 1];
	char dn[AG_DN_MAX + 1]; /* "" when logged out */
	enum ag_state state;
	enum ag_state prev; /* busy: where the call ends up */
	char reason[AG_REASON_MAX + 1]; /* not-ready reason, may be "" */
	struct agent *next;
};

struct agents {
	struct agent *list; /* every agent ever logged in (logged-out ones stay) */
	size_t n;
};

void ag_init(struct agents *t);
void ag_fini(struct agents *t);

struct agent *ag_find(const struct agents *t, const char *id);
/* The logged-in agent on DN, or NULL. */
struct agent *ag_on_dn(const struct agents *t, const char *dn);

/* Applies a request (LOGIN with DN; NOT_READY with an optional REASON) to
 * agent ID.  1: its state (or reason) changed, 0: nothing changed, -EPERM:
 * refused with *WHY (static text), -EINVAL: a bad id, DN or reason (*WHY
 * too), -ENOMEM.  *OUT (may be NULL) gets the agent on 1 and 0.  A LOGIN
 * onto a DN another agent holds is refused.  The caller checks that DN is an
 * extension and tells whether it is on a call (DN_BUSY), so a login lands
 * in busy when it is. */
int ag_request(struct agents *t, enum ag_event ev, const char *id, const char *dn,
	       const char *reason, bool dn_busy, struct agent **out, const char **why);
/* The DN's device went on (BUSY) or off a call: the agent logged in there,
 * if any, goes busy or back.  Returns that agent when its state changed. */
struct agent *ag_device(struct agents *t, const char *dn, bool busy);

/* Sets an agent as a replica says (standby): creates it when new.  0,
 * -EINVAL or -ENOMEM. */
int ag_set(struct agents *t, const char *id, const char *dn, enum ag_state state,
	   enum ag_state prev, const char *reason);

const char *ag_state_name(enum ag_state s);
int ag_state_parse(const char *s, enum ag_state *out);

#endif
