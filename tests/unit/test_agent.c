/* Unit tests of userspace/cc/agent.c, the agent state machine: every cell of
 * the [state][event] table (requests through ag_request(), device changes
 * through ag_device()), the DN rules of a login, the busy state and what is
 * remembered for the end of the call, reasons, input validation, ag_set()
 * and the state names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cc/agent.h"

#define DN "1001"

/* Puts agent "a" into state S on DN (S busy: with PREV remembered), the way
 * the state is reached in service: a login, requests, a device change. */
static struct agent *reach(struct agents *t, enum ag_state s, enum ag_state prev)
{
	struct agent *a = NULL;
	const char *why = NULL;

	if (s == AG_LOGGED_OUT) {
		/* logged in once and out again: the agent exists, logged out */
		assert_int_equal(ag_request(t, AGE_LOGIN, "a", DN, NULL, false, &a, &why), 1);
		assert_int_equal(ag_request(t, AGE_LOGOUT, "a", NULL, NULL, false, &a, &why), 1);
		assert_int_equal(a->state, AG_LOGGED_OUT);
		return a;
	}
	assert_int_equal(ag_request(t, AGE_LOGIN, "a", DN, NULL, false, &a, &why), 1);
	assert_int_equal(a->state, AG_NOT_READY);
	if (s == AG_READY || (s == AG_BUSY && prev == AG_READY))
		assert_int_equal(ag_request(t, AGE_READY, "a", NULL, NULL, false, &a, &why), 1);
	if (s == AG_BUSY)
		assert_ptr_equal(ag_device(t, DN, true), a);
	assert_int_equal(a->state, s);
	if (s == AG_BUSY)
		assert_int_equal(a->prev, prev);
	return a;
}

/* One cell: the expected return, state and remembered state after it. */
struct cell {
	enum ag_state from, from_prev;
	enum ag_event ev;
	int ret; /* requests: 1, 0, -EPERM; device events: 1 = agent returned */
	enum ag_state to, to_prev;
};

static const struct cell cells[] = {
	/* logged out */
	{ AG_LOGGED_OUT, 0, AGE_LOGIN, 1, AG_NOT_READY, AG_LOGGED_OUT },
	{ AG_LOGGED_OUT, 0, AGE_READY, -EPERM, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_LOGGED_OUT, 0, AGE_NOT_READY, -EPERM, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_LOGGED_OUT, 0, AGE_LOGOUT, -EPERM, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_LOGGED_OUT, 0, AGE_CALL_START, 0, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_LOGGED_OUT, 0, AGE_CALL_END, 0, AG_LOGGED_OUT, AG_LOGGED_OUT },
	/* not ready */
	{ AG_NOT_READY, 0, AGE_LOGIN, -EPERM, AG_NOT_READY, AG_LOGGED_OUT },
	{ AG_NOT_READY, 0, AGE_READY, 1, AG_READY, AG_LOGGED_OUT },
	{ AG_NOT_READY, 0, AGE_NOT_READY, 0, AG_NOT_READY, AG_LOGGED_OUT },
	{ AG_NOT_READY, 0, AGE_LOGOUT, 1, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_NOT_READY, 0, AGE_CALL_START, 1, AG_BUSY, AG_NOT_READY },
	{ AG_NOT_READY, 0, AGE_CALL_END, 0, AG_NOT_READY, AG_LOGGED_OUT },
	/* ready */
	{ AG_READY, 0, AGE_LOGIN, -EPERM, AG_READY, AG_LOGGED_OUT },
	{ AG_READY, 0, AGE_READY, 0, AG_READY, AG_LOGGED_OUT },
	{ AG_READY, 0, AGE_NOT_READY, 1, AG_NOT_READY, AG_LOGGED_OUT },
	{ AG_READY, 0, AGE_LOGOUT, 1, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_READY, 0, AGE_CALL_START, 1, AG_BUSY, AG_READY },
	{ AG_READY, 0, AGE_CALL_END, 0, AG_READY, AG_LOGGED_OUT },
	/* busy, from ready */
	{ AG_BUSY, AG_READY, AGE_LOGIN, -EPERM, AG_BUSY, AG_READY },
	{ AG_BUSY, AG_READY, AGE_READY, 0, AG_BUSY, AG_READY },
	{ AG_BUSY, AG_READY, AGE_NOT_READY, 1, AG_BUSY, AG_NOT_READY },
	{ AG_BUSY, AG_READY, AGE_LOGOUT, 1, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_BUSY, AG_READY, AGE_CALL_START, 0, AG_BUSY, AG_READY },
	{ AG_BUSY, AG_READY, AGE_CALL_END, 1, AG_READY, AG_READY },
	/* busy, from not ready */
	{ AG_BUSY, AG_NOT_READY, AGE_LOGIN, -EPERM, AG_BUSY, AG_NOT_READY },
	{ AG_BUSY, AG_NOT_READY, AGE_READY, 1, AG_BUSY, AG_READY },
	{ AG_BUSY, AG_NOT_READY, AGE_NOT_READY, 0, AG_BUSY, AG_NOT_READY },
	{ AG_BUSY, AG_NOT_READY, AGE_LOGOUT, 1, AG_LOGGED_OUT, AG_LOGGED_OUT },
	{ AG_BUSY, AG_NOT_READY, AGE_CALL_START, 0, AG_BUSY, AG_NOT_READY },
	{ AG_BUSY, AG_NOT_READY, AGE_CALL_END, 1, AG_NOT_READY, AG_NOT_READY },
};

static void test_table(void **state)
{
	bool covered[AG_NSTATES][AGE_NEVENTS] = { { false } };

	(void)state;
	for (size_t i = 0; i < sizeof(cells) / sizeof(cells[0]); i++) {
		const struct cell *c = &cells[i];
		struct agents t;
		struct agent *a, *out = NULL;
		const char *why = NULL;
		int ret;

		ag_init(&t);
		a = reach(&t, c->from, c->from_prev);
		if (c->ev <= AGE_LOGOUT) {
			ret = ag_request(&t, c->ev, "a", DN, NULL, false, &out, &why);
			if (ret != c->ret)
				fail_msg("cell %zu (%s, event %d): returned %d, expected %d", i,
					 ag_state_name(c->from), c->ev, ret, c->ret);
			if (ret == -EPERM) {
				assert_non_null(why);
				assert_true(why[0] != '\0');
				assert_null(out); /* not set on refusal */
			} else {
				assert_ptr_equal(out, a);
			}
		} else {
			struct agent *got = ag_device(&t, DN, c->ev == AGE_CALL_START);

			if ((got != NULL) != (c->ret == 1))
				fail_msg("cell %zu (%s, event %d): agent %sreturned", i,
					 ag_state_name(c->from), c->ev, got ? "" : "not ");
			if (got)
				assert_ptr_equal(got, a);
		}
		if (a->state != c->to || a->prev != c->to_prev)
			fail_msg("cell %zu (%s, event %d): state %s prev %s, expected %s prev %s",
				 i, ag_state_name(c->from), c->ev, ag_state_name(a->state),
				 ag_state_name(a->prev), ag_state_name(c->to),
				 ag_state_name(c->to_prev));
		/* the DN is held exactly while logged in */
		if (a->state == AG_LOGGED_OUT) {
			assert_string_equal(a->dn, "");
			assert_null(ag_on_dn(&t, DN));
		} else {
			assert_string_equal(a->dn, DN);
			assert_ptr_equal(ag_on_dn(&t, DN), a);
		}
		assert_int_equal(t.n, 1);
		covered[c->from][c->ev] = true;
		ag_fini(&t);
	}
	for (int s = 0; s < AG_NSTATES; s++)
		for (int e = 0; e < AGE_NEVENTS; e++)
			assert_true(covered[s][e]);
}

/* A request for an agent never seen is refused (nothing is created), except
 * a login; device events are not requests. */
static void test_unknown_agent_and_non_requests(void **state)
{
	struct agents t;
	struct agent *a = NULL;
	const char *why;

	(void)state;
	ag_init(&t);
	for (int ev = AGE_READY; ev <= AGE_LOGOUT; ev++) {
		why = NULL;
		assert_int_equal(
			ag_request(&t, (enum ag_event)ev, "x", NULL, NULL, false, &a, &why),
			-EPERM);
		assert_non_null(why);
		assert_true(why[0]);
	}
	assert_null(a);
	assert_int_equal(t.n, 0);
	assert_null(ag_find(&t, "x"));

	assert_int_equal(ag_request(&t, AGE_LOGIN, "x", DN, NULL, false, &a, &why), 1);
	for (int ev = AGE_CALL_START; ev <= AGE_NEVENTS; ev++) {
		why = NULL;
		assert_int_equal(
			ag_request(&t, (enum ag_event)ev, "x", DN, NULL, false, NULL, &why),
			-EINVAL);
		assert_non_null(why);
	}
	why = NULL;
	assert_int_equal(ag_request(&t, (enum ag_event) - 1, "x", DN, NULL, false, NULL, &why),
			 -EINVAL);
	assert_non_null(why);
	assert_int_equal(a->state, AG_NOT_READY);
	/* a device change on a DN nobody holds */
	assert_null(ag_device(&t, "1002", true));
	assert_null(ag_device(&t, "1002", false));
	assert_int_equal(a->state, AG_NOT_READY);
	ag_fini(&t);
}

static void test_login_rules(void **state)
{
	struct agents t;
	struct agent *a = NULL, *b = NULL, *out;
	const char *why;

	(void)state;
	ag_init(&t);
	assert_int_equal(ag_request(&t, AGE_LOGIN, "alice", "1001", NULL, false, &a, &why), 1);
	assert_non_null(a);
	assert_string_equal(a->id, "alice");
	assert_string_equal(a->dn, "1001");
	assert_int_equal(a->state, AG_NOT_READY);
	assert_string_equal(a->reason, "");
	assert_ptr_equal(ag_find(&t, "alice"), a);
	assert_ptr_equal(ag_on_dn(&t, "1001"), a);
	assert_null(ag_on_dn(&t, "1002"));

	/* another agent on the same DN: refused, not created */
	why = NULL;
	out = NULL;
	assert_int_equal(ag_request(&t, AGE_LOGIN, "bob", "1001", NULL, false, &out, &why), -EPERM);
	assert_non_null(why);
	assert_true(why[0]);
	assert_null(out);
	assert_null(ag_find(&t, "bob"));
	assert_int_equal(t.n, 1);
	assert_ptr_equal(ag_on_dn(&t, "1001"), a);

	/* the same agent again, on its DN or another: refused, unchanged */
	why = NULL;
	assert_int_equal(ag_request(&t, AGE_LOGIN, "alice", "1001", NULL, false, &out, &why),
			 -EPERM);
	assert_non_null(why);
	why = NULL;
	assert_int_equal(ag_request(&t, AGE_LOGIN, "alice", "1002", NULL, false, &out, &why),
			 -EPERM);
	assert_non_null(why);
	assert_string_equal(a->dn, "1001");
	assert_null(ag_on_dn(&t, "1002"));

	/* bob elsewhere is fine; once alice is out, bob may not take 1001
	 * while on 1002, but carol may */
	assert_int_equal(ag_request(&t, AGE_LOGIN, "bob", "1002", NULL, false, &b, &why), 1);
	assert_int_equal(t.n, 2);
	assert_int_equal(ag_request(&t, AGE_LOGOUT, "alice", NULL, NULL, false, NULL, &why), 1);
	assert_null(ag_on_dn(&t, "1001"));
	assert_int_equal(ag_request(&t, AGE_LOGIN, "bob", "1001", NULL, false, NULL, &why), -EPERM);
	assert_int_equal(ag_request(&t, AGE_LOGIN, "carol", "1001", NULL, false, &out, &why), 1);
	assert_ptr_equal(ag_on_dn(&t, "1001"), out);
	/* alice logs in again (she stays in the list): onto a free DN */
	assert_int_equal(ag_request(&t, AGE_LOGIN, "alice", "1001", NULL, false, NULL, &why),
			 -EPERM);
	assert_int_equal(ag_request(&t, AGE_LOGIN, "alice", "1003", NULL, false, &out, &why), 1);
	assert_ptr_equal(out, a);
	assert_string_equal(a->dn, "1003");
	assert_int_equal(a->state, AG_NOT_READY);
	assert_int_equal(t.n, 3);
	ag_fini(&t);
	assert_int_equal(t.n, 0);
	assert_null(t.list);
}

/* A login onto a DN on a call lands in busy; the call's end brings it to
 * not ready. */
static void test_login_dn_busy(void **state)
{
	struct agents t;
	struct agent *a = NULL;
	const char *why;

	(void)state;
	ag_init(&t);
	assert_int_equal(ag_request(&t, AGE_LOGIN, "a", "1001", NULL, true, &a, &why), 1);
	assert_int_equal(a->state, AG_BUSY);
	assert_int_equal(a->prev, AG_NOT_READY);
	assert_string_equal(a->dn, "1001");
	assert_null(ag_device(&t, "1001", true)); /* still on a call: nothing new */
	assert_ptr_equal(ag_device(&t, "1001", false), a);
	assert_int_equal(a->state, AG_NOT_READY);
	assert_null(ag_device(&t, "1001", false));
	ag_fini(&t);
}

/* Ready / not ready while busy: the last one wins at the call's end, with
 * its reason. */
static void test_busy_remembers(void **state)
{
	struct agents t;
	struct agent *a;
	const char *why;

	(void)state;
	ag_init(&t);
	a = reach(&t, AG_BUSY, AG_READY);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 1);
	assert_int_equal(a->state, AG_BUSY);
	assert_int_equal(a->prev, AG_NOT_READY);
	assert_string_equal(a->reason, "lunch");
	/* the same again changes nothing */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 0);
	/* another reason is a change */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "coffee", false, NULL, &why), 1);
	assert_string_equal(a->reason, "coffee");
	assert_ptr_equal(ag_device(&t, DN, false), a);
	assert_int_equal(a->state, AG_NOT_READY);
	assert_string_equal(a->reason, "coffee");

	/* not ready then ready while busy: ends ready, the reason gone */
	assert_ptr_equal(ag_device(&t, DN, true), a);
	assert_int_equal(a->prev, AG_NOT_READY);
	assert_int_equal(ag_request(&t, AGE_READY, "a", NULL, NULL, false, NULL, &why), 1);
	assert_int_equal(a->state, AG_BUSY);
	assert_int_equal(a->prev, AG_READY);
	assert_string_equal(a->reason, "");
	assert_ptr_equal(ag_device(&t, DN, false), a);
	assert_int_equal(a->state, AG_READY);
	ag_fini(&t);
}

static void test_logout_while_busy(void **state)
{
	struct agents t;
	struct agent *a;
	const char *why;

	(void)state;
	ag_init(&t);
	a = reach(&t, AG_BUSY, AG_NOT_READY);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "wrap", false, NULL, &why), 1);
	assert_int_equal(ag_request(&t, AGE_LOGOUT, "a", NULL, NULL, false, NULL, &why), 1);
	assert_int_equal(a->state, AG_LOGGED_OUT);
	assert_int_equal(a->prev, AG_LOGGED_OUT);
	assert_string_equal(a->dn, "");
	assert_string_equal(a->reason, "");
	assert_null(ag_on_dn(&t, DN));
	/* the call's end concerns no one now */
	assert_null(ag_device(&t, DN, false));
	assert_int_equal(a->state, AG_LOGGED_OUT);
	/* and a fresh login is not busy unless told */
	assert_int_equal(ag_request(&t, AGE_LOGIN, "a", DN, NULL, false, NULL, &why), 1);
	assert_int_equal(a->state, AG_NOT_READY);
	ag_fini(&t);
}

static void test_reason(void **state)
{
	struct agents t;
	struct agent *a;
	const char *why;
	char max[AG_REASON_MAX + 1];

	(void)state;
	ag_init(&t);
	a = reach(&t, AG_READY, 0);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 1);
	assert_int_equal(a->state, AG_NOT_READY);
	assert_string_equal(a->reason, "lunch");
	/* not ready with the same reason: no change; with another: a change */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 0);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "meeting", false, NULL, &why), 1);
	assert_string_equal(a->reason, "meeting");
	/* without a reason (NULL or ""): cleared, which is a change */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, NULL, false, NULL, &why), 1);
	assert_string_equal(a->reason, "");
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "", false, NULL, &why), 0);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "x", false, NULL, &why), 1);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "", false, NULL, &why), 1);
	assert_string_equal(a->reason, "");
	/* ready clears it */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 1);
	assert_int_equal(ag_request(&t, AGE_READY, "a", NULL, NULL, false, NULL, &why), 1);
	assert_string_equal(a->reason, "");
	/* a reason given with ready is not stored */
	assert_int_equal(ag_request(&t, AGE_READY, "a", NULL, "ignored", false, NULL, &why), 0);
	assert_string_equal(a->reason, "");
	/* logout clears it */
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, "lunch", false, NULL, &why), 1);
	assert_int_equal(ag_request(&t, AGE_LOGOUT, "a", NULL, NULL, false, NULL, &why), 1);
	assert_string_equal(a->reason, "");
	/* exactly AG_REASON_MAX bytes is fine */
	memset(max, 'r', AG_REASON_MAX);
	max[AG_REASON_MAX] = '\0';
	assert_int_equal(ag_request(&t, AGE_LOGIN, "a", DN, NULL, false, NULL, &why), 1);
	assert_int_equal(ag_request(&t, AGE_NOT_READY, "a", NULL, max, false, NULL, &why), 1);
	assert_string_equal(a->reason, max);
	/* UTF-8 is text */
	assert_int_equal(
		ag_request(&t, AGE_NOT_READY, "a", NULL, "d\xc3\xa9jeuner", false, NULL, &why), 1);
	assert_string_equal(a->reason, "d\xc3\xa9jeuner");
	ag_fini(&t);
}

static void test_invalid_input(void **state)
{
	char long_id[AG_ID_MAX + 2], max_id[AG_ID_MAX + 1];
	char long_dn[AG_DN_MAX + 2], max_dn[AG_DN_MAX + 1];
	char long_reason[AG_REASON_MAX + 2];
	const char *bad_text[] = { "a\tb", "a\nb", "\x01", "x\x1f", "del\x7f", "\x1b[2J" };
	struct agents t;
	struct agent *a = NULL, *out;
	const char *why;

	(void)state;
	memset(long_id, 'i', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	memset(max_id, 'i', sizeof(max_id) - 1);
	max_id[sizeof(max_id) - 1] = '\0';
	memset(long_dn, '5', sizeof(long_dn) - 1);
	long_dn[sizeof(long_dn) - 1] = '\0';
	memset(max_dn, '5', sizeof(max_dn) - 1);
	max_dn[sizeof(max_dn) - 1] = '\0';
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';

	ag_init(&t);
#define BAD(ev, id, dn, reason)                                                                   \
	do {                                                                                      \
		why = NULL;                                                                       \
		out = NULL;                                                                       \
		assert_int_equal(ag_request(&t, ev, id, dn, reason, false, &out, &why), -EINVAL); \
		assert_non_null(why);                                                             \
		assert_true(why[0]);                                                              \
		assert_null(out);                                                                 \
	} while (0)

	/* ids */
	BAD(AGE_LOGIN, "", "1001", NULL);
	BAD(AGE_LOGIN, NULL, "1001", NULL);
	BAD(AGE_LOGIN, long_id, "1001", NULL);
	for (size_t i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++) {
		BAD(AGE_LOGIN, bad_text[i], "1001", NULL);
		BAD(AGE_READY, bad_text[i], NULL, NULL);
	}
	/* DNs of a login */
	BAD(AGE_LOGIN, "a", "", NULL);
	BAD(AGE_LOGIN, "a", NULL, NULL);
	BAD(AGE_LOGIN, "a", long_dn, NULL);
	for (size_t i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++)
		BAD(AGE_LOGIN, "a", bad_text[i], NULL);
	assert_int_equal(t.n, 0); /* nothing created by any of these */

	/* limits themselves are fine */
	assert_int_equal(ag_request(&t, AGE_LOGIN, max_id, max_dn, NULL, false, &a, &why), 1);
	assert_string_equal(a->id, max_id);
	assert_string_equal(a->dn, max_dn);

	/* reasons */
	assert_int_equal(ag_request(&t, AGE_LOGIN, "a", "1001", NULL, false, &a, &why), 1);
	BAD(AGE_NOT_READY, "a", NULL, long_reason);
	for (size_t i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++)
		BAD(AGE_NOT_READY, "a", NULL, bad_text[i]);
	assert_int_equal(a->state, AG_NOT_READY);
	assert_string_equal(a->reason, "");
	assert_int_equal(t.n, 2);
#undef BAD
	ag_fini(&t);
}

static void test_set(void **state)
{
	char long_id[AG_ID_MAX + 2], long_dn[AG_DN_MAX + 2], long_reason[AG_REASON_MAX + 2];
	struct agents t;
	struct agent *a;

	(void)state;
	memset(long_id, 'i', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	memset(long_dn, '5', sizeof(long_dn) - 1);
	long_dn[sizeof(long_dn) - 1] = '\0';
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';

	ag_init(&t);
	/* refusals: nothing created */
	assert_int_equal(ag_set(&t, "", "1001", AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, NULL, "1001", AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, long_id, "1001", AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a\n", "1001", AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", long_dn, AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "10\x01", AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", NULL, AG_READY, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_READY, AG_LOGGED_OUT, NULL), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_READY, AG_LOGGED_OUT, long_reason), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_READY, AG_LOGGED_OUT, "\x7f"), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_NSTATES, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", (enum ag_state) - 1, AG_LOGGED_OUT, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_BUSY, AG_NSTATES, ""), -EINVAL);
	assert_int_equal(ag_set(&t, "a", "1001", AG_BUSY, AG_BUSY, ""), -EINVAL);
	assert_int_equal(t.n, 0);

	/* busy on 1001, back to not ready "lunch" */
	assert_int_equal(ag_set(&t, "a", "1001", AG_BUSY, AG_NOT_READY, "lunch"), 0);
	a = ag_find(&t, "a");
	assert_non_null(a);
	assert_int_equal(t.n, 1);
	assert_int_equal(a->state, AG_BUSY);
	assert_int_equal(a->prev, AG_NOT_READY);
	assert_string_equal(a->dn, "1001");
	assert_string_equal(a->reason, "lunch");
	assert_ptr_equal(ag_on_dn(&t, "1001"), a);
	/* and it behaves as a busy agent */
	assert_ptr_equal(ag_device(&t, "1001", false), a);
	assert_int_equal(a->state, AG_NOT_READY);

	/* set again: updated in place, not a second agent */
	assert_int_equal(ag_set(&t, "a", "1002", AG_READY, AG_LOGGED_OUT, ""), 0);
	assert_int_equal(t.n, 1);
	assert_ptr_equal(ag_find(&t, "a"), a);
	assert_string_equal(a->dn, "1002");
	assert_null(ag_on_dn(&t, "1001"));
	assert_string_equal(a->reason, "");
	/* logged out: the DN is dropped whatever was given */
	assert_int_equal(ag_set(&t, "a", "1002", AG_LOGGED_OUT, AG_LOGGED_OUT, ""), 0);
	assert_string_equal(a->dn, "");
	assert_null(ag_on_dn(&t, "1002"));
	ag_fini(&t);
}

static void test_state_names(void **state)
{
	const char *want[AG_NSTATES] = { "logged_out", "not_ready", "ready", "busy" };
	enum ag_state s;

	(void)state;
	for (int i = 0; i < AG_NSTATES; i++) {
		assert_string_equal(ag_state_name((enum ag_state)i), want[i]);
		s = AG_NSTATES;
		assert_int_equal(ag_state_parse(ag_state_name((enum ag_state)i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_string_equal(ag_state_name(AG_NSTATES), "?");
	assert_string_equal(ag_state_name((enum ag_state) - 1), "?");
	s = AG_READY;
	assert_int_equal(ag_state_parse("?", &s), -EINVAL);
	assert_int_equal(ag_state_parse("", &s), -EINVAL);
	assert_int_equal(ag_state_parse("Ready", &s), -EINVAL);
	assert_int_equal(ag_state_parse("ready ", &s), -EINVAL);
	assert_int_equal(ag_state_parse("not-ready", &s), -EINVAL);
	assert_int_equal(s, AG_READY); /* untouched on failure */
}

/* Many agents: lookups by id and DN stay exact. */
static void test_many(void **state)
{
	struct agents t;
	char id[32], dn[32];
	const char *why;

	(void)state;
	ag_init(&t);
	for (int i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "agent%d", i);
		snprintf(dn, sizeof(dn), "%d", 10000 + i);
		assert_int_equal(ag_request(&t, AGE_LOGIN, id, dn, NULL, i % 3 == 0, NULL, &why),
				 1);
	}
	assert_int_equal(t.n, 500);
	for (int i = 0; i < 500; i++) {
		struct agent *a;

		snprintf(id, sizeof(id), "agent%d", i);
		snprintf(dn, sizeof(dn), "%d", 10000 + i);
		a = ag_find(&t, id);
		assert_non_null(a);
		assert_ptr_equal(ag_on_dn(&t, dn), a);
		assert_int_equal(a->state, i % 3 == 0 ? AG_BUSY : AG_NOT_READY);
	}
	ag_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_unknown_agent_and_non_requests),
		cmocka_unit_test(test_login_rules),
		cmocka_unit_test(test_login_dn_busy),
		cmocka_unit_test(test_busy_remembers),
		cmocka_unit_test(test_logout_while_busy),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
