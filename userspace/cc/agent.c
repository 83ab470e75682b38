#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cc/agent.h"

/* What an event does in a state. */
enum ag_action {
	AA_REFUSE = 0, /* the zero of the table: anything not listed is refused */
	AA_GO, /* to NEXT */
	AA_SAME, /* accepted, nothing changes (e.g. ready when ready) */
	AA_BUSY, /* remember the state, go busy */
	AA_BACK, /* back to the remembered state */
	AA_LATER, /* busy: NEXT becomes the state the call ends in */
	AA_IGNORE, /* not a request: a device change that does not concern it */
};

struct ag_trans {
	enum ag_action act;
	enum ag_state next;
	const char *why; /* a refusal's reason */
};

#define NOT_IN "agent not logged in"
#define ALREADY "agent already logged in"

static const struct ag_trans fsm[AG_NSTATES][AGE_NEVENTS] = {
	[AG_LOGGED_OUT] = {
		[AGE_LOGIN] = { AA_GO, AG_NOT_READY, NULL },
		[AGE_READY] = { AA_REFUSE, 0, NOT_IN },
		[AGE_NOT_READY] = { AA_REFUSE, 0, NOT_IN },
		[AGE_LOGOUT] = { AA_REFUSE, 0, NOT_IN },
		[AGE_CALL_START] = { AA_IGNORE, 0, NULL },
		[AGE_CALL_END] = { AA_IGNORE, 0, NULL },
	},
	[AG_NOT_READY] = {
		[AGE_LOGIN] = { AA_REFUSE, 0, ALREADY },
		[AGE_READY] = { AA_GO, AG_READY, NULL },
		[AGE_NOT_READY] = { AA_SAME, AG_NOT_READY, NULL },
		[AGE_LOGOUT] = { AA_GO, AG_LOGGED_OUT, NULL },
		[AGE_CALL_START] = { AA_BUSY, AG_BUSY, NULL },
		[AGE_CALL_END] = { AA_IGNORE, 0, NULL },
	},
	[AG_READY] = {
		[AGE_LOGIN] = { AA_REFUSE, 0, ALREADY },
		[AGE_READY] = { AA_SAME, AG_READY, NULL },
		[AGE_NOT_READY] = { AA_GO, AG_NOT_READY, NULL },
		[AGE_LOGOUT] = { AA_GO, AG_LOGGED_OUT, NULL },
		[AGE_CALL_START] = { AA_BUSY, AG_BUSY, NULL },
		[AGE_CALL_END] = { AA_IGNORE, 0, NULL },
	},
	[AG_BUSY] = {
		[AGE_LOGIN] = { AA_REFUSE, 0, ALREADY },
		[AGE_READY] = { AA_LATER, AG_READY, NULL },
		[AGE_NOT_READY] = { AA_LATER, AG_NOT_READY, NULL },
		[AGE_LOGOUT] = { AA_GO, AG_LOGGED_OUT, NULL },
		[AGE_CALL_START] = { AA_IGNORE, 0, NULL },
		[AGE_CALL_END] = { AA_BACK, 0, NULL },
	},
};

static const char *const names[AG_NSTATES] = {
	[AG_LOGGED_OUT] = "logged_out",
	[AG_NOT_READY] = "not_ready",
	[AG_READY] = "ready",
	[AG_BUSY] = "busy",
};

const char *ag_state_name(enum ag_state s)
{
	return (unsigned)s < AG_NSTATES ? names[s] : "?";
}

int ag_state_parse(const char *s, enum ag_state *out)
{
	for (int i = 0; i < AG_NSTATES; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum ag_state)i;
			return 0;
		}
	return -EINVAL;
}

void ag_init(struct agents *t)
{
	t->list = NULL;
	t->n = 0;
}

void ag_fini(struct agents *t)
{
	while (t->list) {
		struct agent *a = t->list;

		t->list = a->next;
		free(a);
	}
	t->n = 0;
}

/* Linear: a contact centre has hundreds to a few thousand agents, and
 * these run per CTI request and per device change, not per datagram. */
struct agent *ag_find(const struct agents *t, const char *id)
{
	for (struct agent *a = t->list; a; a = a->next)
		if (!strcmp(a->id, id))
			return a;
	return NULL;
}

struct agent *ag_on_dn(const struct agents *t, const char *dn)
{
	for (struct agent *a = t->list; a; a = a->next)
		if (a->state != AG_LOGGED_OUT && !strcmp(a->dn, dn))
			return a;
	return NULL;
}

static bool valid_text(const char *s, size_t max, bool empty_ok)
{
	size_t n = s ? strlen(s) : 0;

	if (!s || n > max || (!n && !empty_ok))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static struct agent *ag_new(struct agents *t, const char *id)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	strcpy(a->id, id);
	a->state = a->prev = AG_LOGGED_OUT;
	a->next = t->list;
	t->list = a;
	t->n++;
	return a;
}

/* Runs the table for A; returns 1 changed, 0 not, -EPERM refused. */
static int step(struct agent *a, enum ag_event ev, const char *reason, const char **why)
{
	const struct ag_trans *tr = &fsm[a->state][ev];
	enum ag_state before = a->state, prev = a->prev;
	bool reason_changed = false;

	switch (tr->act) {
	case AA_REFUSE:
		*why = tr->why ? tr->why : "not allowed in this state";
		return -EPERM;
	case AA_IGNORE:
		return 0;
	case AA_SAME:
		break;
	case AA_GO:
		a->state = tr->next;
		break;
	case AA_BUSY:
		a->prev = a->state;
		a->state = AG_BUSY;
		break;
	case AA_BACK:
		a->state = a->prev;
		break;
	case AA_LATER:
		a->prev = tr->next;
		break;
	}
	if (ev == AGE_NOT_READY || (ev == AGE_READY) || ev == AGE_LOGOUT) {
		const char *r = ev == AGE_NOT_READY && reason ? reason : "";

		reason_changed = strcmp(a->reason, r) != 0;
		strcpy(a->reason, r);
	}
	if (a->state == AG_LOGGED_OUT) {
		a->dn[0] = '\0';
		a->prev = AG_LOGGED_OUT;
	}
	return a->state != before || a->prev != prev || reason_changed;
}

int ag_request(struct agents *t, enum ag_event ev, const char *id, const char *dn,
	       const char *reason, bool dn_busy, struct agent **out, const char **why)
{
	struct agent *a, *holder;
	int ret;

	if ((unsigned)ev > AGE_LOGOUT) {
		*why = "not a request";
		return -EINVAL;
	}
	if (!valid_text(id, AG_ID_MAX, false)) {
		*why = "bad agent id";
		return -EINVAL;
	}
	if (reason && !valid_text(reason, AG_REASON_MAX, true)) {
		*why = "bad reason";
		return -EINVAL;
	}
	a = ag_find(t, id);
	if (ev == AGE_LOGIN) {
		if (!valid_text(dn, AG_DN_MAX, false)) {
			*why = "bad dn";
			return -EINVAL;
		}
		if (a && a->state != AG_LOGGED_OUT) {
			*why = ALREADY;
			return -EPERM;
		}
		holder = ag_on_dn(t, dn);
		if (holder) {
			*why = "another agent is logged in on this dn";
			return -EPERM;
		}
		if (!a && !(a = ag_new(t, id)))
			return -ENOMEM;
	} else if (!a) {
		*why = NOT_IN;
		return -EPERM;
	}
	ret = step(a, ev, reason, why);
	if (ret < 0)
		return ret;
	if (ev == AGE_LOGIN) {
		strcpy(a->dn, dn);
		if (dn_busy)
			step(a, AGE_CALL_START, NULL, why);
	}
	if (out)
		*out = a;
	return ret;
}

struct agent *ag_device(struct agents *t, const char *dn, bool busy)
{
	struct agent *a = ag_on_dn(t, dn);
	const char *why;

	if (!a)
		return NULL;
	return step(a, busy ? AGE_CALL_START : AGE_CALL_END, NULL, &why) > 0 ? a : NULL;
}

int ag_set(struct agents *t, const char *id, const char *dn, enum ag_state state,
	   enum ag_state prev, const char *reason)
{
	struct agent *a;

	if (!valid_text(id, AG_ID_MAX, false) || !valid_text(dn, AG_DN_MAX, true) ||
	    !valid_text(reason, AG_REASON_MAX, true) || (unsigned)state >= AG_NSTATES ||
	    (unsigned)prev >= AG_NSTATES || prev == AG_BUSY || (state != AG_LOGGED_OUT && !*dn))
		return -EINVAL;
	a = ag_find(t, id);
	if (!a && !(a = ag_new(t, id)))
		return -ENOMEM;
	strcpy(a->dn, state == AG_LOGGED_OUT ? "" : dn);
	a->state = state;
	a->prev = prev;
	strcpy(a->reason, reason);
	return 0;
}
