/* Unit tests of userspace/cc/cc.c, the node-wide contact-centre state: on a
 * configuration with extensions 1001 and 1002, routing point 2000 and static
 * route 3000, with a sink that keeps every delivered event and a journal
 * hook the test controls.  Device states from registrations and calls,
 * the call events and their sequence numbers, queued calls and routing,
 * agents following their DN, standby mode, delivery held until the journal
 * acknowledges, and the engine hooks of RouteCall/ReleaseCall. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cc/cc.h"
#include "core/config.h"

#define CONF                                                  \
	"[node]\nid = a\n"                                    \
	"[sip]\nlisten = 0.0.0.0:5060\ndomain = sipha.test\n" \
	"[control]\nsocket = /run/sipha/a.sock\n"             \
	"[dn]\n"                                              \
	"1001 = extension\n"                                  \
	"1002 = extension\n"                                  \
	"2000 = routing-point\n"                              \
	"3000 = sip:10.99.0.50:5080\n"

#define WALL UINT64_C(1700000000123)
#define ABSENT "\x7f(absent)" /* as a wanted value: the key must not be there */

/* An event as the sink saw it: a copy, the log's entry may go. */
struct got {
	struct ev e; /* e.line is our copy */
};

struct fx {
	struct sipha_config cfg;
	struct cc *cc;
	uint64_t now;
	/* delivered */
	struct got *got;
	size_t ngot, capgot;
	size_t seen; /* events already checked by next() */
	json_t *cur; /* the last one parsed by next() (freed by the next, or teardown) */
	uint64_t last_seq; /* of the last one checked */
	/* journal */
	bool replicate;
	uint64_t next_jseq;
	size_t njournaled;
	uint64_t journaled_seq[64];
	/* agent records */
	unsigned nagent;
	char agent_id[AG_ID_MAX + 1];
	enum ag_state agent_state;
	/* engine */
	int eng_ret;
	const char *eng_why;
	unsigned nroute, nrelease;
	uint64_t eng_call;
	char eng_target[128];
};

static uint64_t wall(void)
{
	return WALL;
}

static void on_deliver(void *arg, const struct ev *e)
{
	struct fx *f = arg;
	struct got *g;

	if (f->ngot == f->capgot) {
		f->capgot = f->capgot ? f->capgot * 2 : 64;
		f->got = realloc(f->got, f->capgot * sizeof(*f->got));
		assert_non_null(f->got);
	}
	g = &f->got[f->ngot++];
	g->e = *e;
	g->e.line = strdup(e->line);
	assert_non_null(g->e.line);
	g->e.ref = e->ref ? strdup(e->ref) : NULL;
	assert_int_equal(strlen(e->line), e->len);
}

static uint64_t on_journal(void *arg, const struct ev *e)
{
	struct fx *f = arg;

	assert_int_equal(e->jseq, 0); /* not set before the journal answers */
	if (f->njournaled < 64)
		f->journaled_seq[f->njournaled] = e->seq;
	f->njournaled++;
	return f->replicate ? f->next_jseq++ : 0;
}

static void on_agent(void *arg, const struct agent *a)
{
	struct fx *f = arg;

	f->nagent++;
	strcpy(f->agent_id, a->id);
	f->agent_state = a->state;
}

static int eng_route(void *arg, uint64_t call, const char *target, char *why, size_t n)
{
	struct fx *f = arg;

	f->nroute++;
	f->eng_call = call;
	snprintf(f->eng_target, sizeof(f->eng_target), "%s", target);
	if (f->eng_ret)
		snprintf(why, n, "%s", f->eng_why);
	return f->eng_ret;
}

static int eng_release(void *arg, uint64_t call, char *why, size_t n)
{
	struct fx *f = arg;

	f->nrelease++;
	f->eng_call = call;
	if (f->eng_ret)
		snprintf(why, n, "%s", f->eng_why);
	return f->eng_ret;
}

static struct fx *fx_new(size_t evlog_max, uint64_t keep_ms)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	struct cc_sink sink;
	struct cc_engine eng = { eng_route, eng_release, NULL };

	assert_non_null(f);
	assert_int_equal(cfg_load_string(CONF, "t.conf", &f->cfg, err, sizeof(err)), 0);
	assert_int_equal(f->cfg.n_dns, 4);
	assert_int_equal(cc_new(&f->cc, &f->cfg, evlog_max, keep_ms), 0);
	memset(&sink, 0, sizeof(sink));
	sink.deliver = on_deliver;
	sink.deliver_arg = f;
	sink.journal = on_journal;
	sink.agent = on_agent;
	sink.journal_arg = f;
	cc_set_sink(f->cc, &sink);
	eng.arg = f;
	cc_set_engine(f->cc, &eng);
	cc_set_clock(f->cc, &f->now, wall);
	cc_set_publishing(f->cc, true);
	f->next_jseq = 100;
	return f;
}

static int setup(void **state)
{
	*state = fx_new(10000, 3600 * 1000);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	cc_free(f->cc);
	cfg_free(&f->cfg);
	json_decref(f->cur);
	for (size_t i = 0; i < f->ngot; i++) {
		free(f->got[i].e.line);
		free(f->got[i].e.ref);
	}
	free(f->got);
	free(f);
	return 0;
}

/* --- reading what was delivered ------------------------------------------------------ */

static const char *sget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The next delivered event, checked for its name (NULL: an answer, with no
 * "event"), the next seq, the clock's ts; then KEY, VALUE string pairs up to
 * a NULL key (value ABSENT: the key must not be there).  Returns the parsed
 * object (borrowed: valid until the next call) and the event in *E. */
static json_t *vnext(struct fx *f, const struct ev **e, const char *name, va_list ap)
{
	const struct got *g;
	json_error_t jerr;
	json_t *o;
	const char *k;

	if (f->seen >= f->ngot)
		fail_msg("expected %s, nothing more delivered (%zu events)", name ? name : "answer",
			 f->ngot);
	g = &f->got[f->seen++];
	json_decref(f->cur);
	o = f->cur = json_loads(g->e.line, 0, &jerr);
	if (!o)
		fail_msg("not JSON: %s (%s)", g->e.line, jerr.text);
	if (name) {
		const char *got = sget(o, "event");

		if (!got || strcmp(got, name))
			fail_msg("expected %s, got %s", name, g->e.line);
	} else {
		assert_null(json_object_get(o, "event"));
	}
	assert_true(json_is_integer(json_object_get(o, "seq")));
	assert_int_equal((uint64_t)json_integer_value(json_object_get(o, "seq")), g->e.seq);
	if (f->last_seq && g->e.seq != f->last_seq + 1)
		fail_msg("seq %llu after %llu: %s", (unsigned long long)g->e.seq,
			 (unsigned long long)f->last_seq, g->e.line);
	f->last_seq = g->e.seq;
	assert_int_equal((uint64_t)json_integer_value(json_object_get(o, "ts")), WALL);
	while ((k = va_arg(ap, const char *))) {
		const char *want = va_arg(ap, const char *);
		const char *got = sget(o, k);

		if (!strcmp(want, ABSENT)) {
			if (json_object_get(o, k))
				fail_msg("%s: unexpected \"%s\" in %s", name, k, g->e.line);
			continue;
		}
		if (!got || strcmp(got, want))
			fail_msg("%s: \"%s\" is %s, expected \"%s\" in %s", name, k,
				 got ? got : "(no string)", want, g->e.line);
	}
	if (e)
		*e = &g->e;
	return o;
}

/* next(f, "DeviceState", "dn", "1001", "state", "idle", NULL) */
static const struct ev *next(struct fx *f, const char *name, ...)
{
	const struct ev *e;
	va_list ap;
	json_t *o;

	va_start(ap, name);
	o = vnext(f, &e, name, ap);
	va_end(ap);
	(void)o;
	return e;
}

static json_t *next_json(struct fx *f, const char *name, ...)
{
	va_list ap;
	json_t *o;

	va_start(ap, name);
	o = vnext(f, NULL, name, ap);
	va_end(ap);
	return o;
}

static void none_left(struct fx *f)
{
	if (f->seen != f->ngot)
		fail_msg("%zu more events, the next: %s", f->ngot - f->seen,
			 f->got[f->seen].e.line);
}

/* DN filing: the event concerns exactly the DNs listed (NULL-terminated)
 * among 1001, 1002, 2000, 3000. */
static void filed(const struct ev *e, ...)
{
	static const char *const all[] = { "1001", "1002", "2000", "3000" };
	bool want[4] = { false };
	const char *dn;
	va_list ap;

	va_start(ap, e);
	while ((dn = va_arg(ap, const char *)))
		for (int i = 0; i < 4; i++)
			if (!strcmp(dn, all[i]))
				want[i] = true;
	va_end(ap);
	for (int i = 0; i < 4; i++)
		if (ev_concerns(e, all[i]) != want[i])
			fail_msg("%s: concerns %s is %d", e->line, all[i], !want[i]);
	assert_true(ev_concerns(e, NULL));
}

static void call(struct fx *f, uint64_t id, enum cc_call_state s, const char *dn,
		 const char *target, const char *caller, const char *cause)
{
	struct cc_call c = {
		.id = id,
		.state = s,
		.dn = dn,
		.target = target,
		.caller = caller,
		.from = caller ? "sip:caller@sipha.test" : NULL,
		.to = "sip:callee@sipha.test",
		.cause = cause,
	};

	cc_call_update(f->cc, &c);
}

static void reg_both(struct fx *f)
{
	cc_reg_update(f->cc, "1001", true);
	cc_reg_update(f->cc, "1002", true);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	none_left(f);
}

/* --- tests ---------------------------------------------------------------------------- */

static void test_config_view(void **state)
{
	struct fx *f = *state;

	assert_true(cc_publishing(f->cc));
	assert_true(cc_is_extension(f->cc, "1001"));
	assert_true(cc_is_extension(f->cc, "1002"));
	assert_false(cc_is_extension(f->cc, "2000"));
	assert_false(cc_is_extension(f->cc, "3000"));
	assert_false(cc_is_extension(f->cc, "9999"));
	assert_false(cc_is_extension(f->cc, ""));
	assert_false(cc_is_extension(f->cc, "100"));
	assert_true(cc_is_routing_point(f->cc, "2000"));
	assert_false(cc_is_routing_point(f->cc, "1001"));
	assert_false(cc_is_routing_point(f->cc, "3000"));
	assert_false(cc_is_routing_point(f->cc, NULL));
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_UNREGISTERED);
	assert_int_equal(cc_dev_state(f->cc, "2000"), CC_DEV_UNREGISTERED);
	assert_int_equal(cc_dev_state(f->cc, "nope"), CC_DEV_UNREGISTERED);
	assert_string_equal(cc_dev_name(CC_DEV_UNREGISTERED), "unregistered");
	assert_string_equal(cc_dev_name(CC_DEV_IDLE), "idle");
	assert_string_equal(cc_dev_name(CC_DEV_RINGING), "ringing");
	assert_string_equal(cc_dev_name(CC_DEV_BUSY), "busy");
	assert_string_equal(cc_dev_name((enum cc_dev)4), "?");
	assert_string_equal(cc_dev_name((enum cc_dev) - 1), "?");
	assert_int_equal(cc_evlog(f->cc)->n, 0);
	assert_null(cc_agents(f->cc)->list);
	assert_ptr_equal(cc_agents_mut(f->cc), cc_agents(f->cc));
	none_left(f);
}

static void test_registration(void **state)
{
	struct fx *f = *state;
	const struct ev *e;

	cc_reg_update(f->cc, "1001", true);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	e = next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	assert_int_equal(e->seq, 1);
	filed(e, "1001", NULL);
	assert_string_equal(e->client, "");
	/* the same again: nothing */
	cc_reg_update(f->cc, "1001", true);
	none_left(f);
	/* not extensions: nothing */
	cc_reg_update(f->cc, "2000", true);
	cc_reg_update(f->cc, "3000", true);
	cc_reg_update(f->cc, "9999", true);
	cc_reg_update(f->cc, NULL, true);
	none_left(f);
	assert_int_equal(cc_dev_state(f->cc, "2000"), CC_DEV_UNREGISTERED);
	cc_reg_update(f->cc, "1001", false);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_UNREGISTERED);
	e = next(f, "DeviceState", "dn", "1001", "state", "unregistered", NULL);
	assert_int_equal(e->seq, 2);
	cc_reg_update(f->cc, "1001", false);
	none_left(f);
	assert_int_equal(cc_stats(f->cc)->events, 2);
	/* each was journaled once, in order */
	assert_int_equal(f->njournaled, 2);
	assert_int_equal(f->journaled_seq[0], 1);
	assert_int_equal(f->journaled_seq[1], 2);
	/* and kept in the log */
	assert_int_equal(cc_evlog(f->cc)->last_seq, 2);
	assert_non_null(evlog_get(cc_evlog(f->cc), 1));
}

/* 1002 calls 1001: Dialing/Ringing/Established/Released, 1001 ringing ->
 * busy -> idle, the caller 1002 busy all along. */
static void test_call_to_extension(void **state)
{
	struct fx *f = *state;
	const struct ev *e;
	json_t *o;

	reg_both(f);
	call(f, 5, CCS_DIALING, "1001", NULL, "1002", NULL);
	o = next_json(f, "Dialing", "call", "5", "dn", "1001", "from", "sip:caller@sipha.test",
		      "to", "sip:callee@sipha.test", "rp", ABSENT, "cause", ABSENT, NULL);
	assert_true(json_is_string(json_object_get(o, "call"))); /* a string, not a number */
	e = &f->got[f->seen - 1].e;
	filed(e, "1001", "1002", NULL);
	e = next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	filed(e, "1001", NULL);
	e = next(f, "DeviceState", "dn", "1002", "state", "busy", NULL);
	filed(e, "1002", NULL);
	none_left(f);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_RINGING);
	assert_int_equal(cc_dev_state(f->cc, "1002"), CC_DEV_BUSY);

	call(f, 5, CCS_RINGING, "1001", NULL, "1002", NULL);
	e = next(f, "Ringing", "call", "5", "dn", "1001", NULL);
	filed(e, "1001", "1002", NULL);
	none_left(f); /* the devices did not change */

	/* the same state again: no event */
	call(f, 5, CCS_RINGING, "1001", NULL, "1002", NULL);
	none_left(f);

	call(f, 5, CCS_ESTABLISHED, "1001", NULL, "1002", NULL);
	next(f, "Established", "call", "5", "dn", "1001", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	none_left(f);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_BUSY);

	call(f, 5, CCS_RELEASED, "1001", NULL, "1002", "BYE");
	e = next(f, "Released", "call", "5", "dn", "1001", "cause", "BYE", NULL);
	filed(e, "1001", "1002", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	none_left(f);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	assert_int_equal(cc_dev_state(f->cc, "1002"), CC_DEV_IDLE);

	/* released again, or released unknown: nothing */
	call(f, 5, CCS_RELEASED, "1001", NULL, "1002", "BYE");
	call(f, 6, CCS_RELEASED, "1001", NULL, "1002", NULL);
	none_left(f);
	assert_int_equal(cc_stats(f->cc)->events, f->ngot);
}

/* An outside caller, a callee never registered, a big call id, no cause. */
static void test_call_details(void **state)
{
	struct fx *f = *state;
	const struct ev *e;

	call(f, UINT64_MAX, CCS_RINGING, "1001", NULL, "5551234", NULL);
	e = next(f, "Ringing", "call", "18446744073709551615", "dn", "1001", NULL);
	filed(e, "1001", NULL);
	assert_string_equal(e->dns[2], "5551234"); /* filed under the caller too */
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	none_left(f);
	call(f, UINT64_MAX, CCS_ESTABLISHED, "1001", NULL, "5551234", NULL);
	next(f, "Established", "call", "18446744073709551615", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	/* registered during the call: no change to see */
	cc_reg_update(f->cc, "1001", true);
	none_left(f);
	cc_reg_update(f->cc, "1001", false);
	none_left(f);
	call(f, UINT64_MAX, CCS_RELEASED, "1001", NULL, "5551234", NULL);
	next(f, "Released", "call", "18446744073709551615", "cause", "normal", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "unregistered", NULL);
	none_left(f);

	/* a call to the static route and to an unknown DN: events, no device */
	call(f, 7, CCS_DIALING, "3000", NULL, "1002", NULL);
	e = next(f, "Dialing", "call", "7", "dn", "3000", NULL);
	filed(e, "3000", "1002", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "busy", NULL);
	call(f, 8, CCS_DIALING, "4444", NULL, NULL, NULL);
	next(f, "Dialing", "call", "8", "dn", "4444", "from", "", NULL);
	none_left(f);
	call(f, 7, CCS_RELEASED, "3000", NULL, "1002", "CANCEL");
	next(f, "Released", "call", "7", "cause", "CANCEL", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "unregistered", NULL);
	call(f, 8, CCS_RELEASED, "4444", NULL, NULL, NULL);
	next(f, "Released", "call", "8", NULL);
	none_left(f);
}

/* Two calls on one extension: it is busy while either is. */
static void test_two_calls(void **state)
{
	struct fx *f = *state;

	reg_both(f);
	call(f, 1, CCS_ESTABLISHED, "1001", NULL, "5551234", NULL);
	next(f, "Established", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	call(f, 2, CCS_RINGING, "1001", NULL, "5551235", NULL);
	next(f, "Ringing", NULL);
	none_left(f); /* busy wins over ringing */
	call(f, 1, CCS_RELEASED, "1001", NULL, "5551234", NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	call(f, 2, CCS_RELEASED, "1001", NULL, "5551235", NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	none_left(f);
}

/* A call waits on routing point 2000 (Queued, RouteRequest, both filed
 * under 2000), then is routed to 1001, which rings. */
static void test_queued_then_routed(void **state)
{
	struct fx *f = *state;
	const struct ev *e;

	reg_both(f);
	call(f, 9, CCS_QUEUED, "2000", NULL, "1002", NULL);
	e = next(f, "Queued", "call", "9", "dn", "2000", "rp", "2000", NULL);
	filed(e, "2000", "1002", NULL);
	e = next(f, "RouteRequest", "call", "9", "dn", "2000", "rp", "2000", NULL);
	filed(e, "2000", "1002", NULL);
	assert_true(ev_concerns(e, "2000"));
	next(f, "DeviceState", "dn", "1002", "state", "busy", NULL); /* the caller */
	none_left(f);
	assert_int_equal(cc_stats(f->cc)->queued, 1);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);

	call(f, 9, CCS_DIALING, "2000", "1001", "1002", NULL);
	e = next(f, "Dialing", "call", "9", "dn", "1001", "rp", "2000", NULL);
	filed(e, "2000", "1001", "1002", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	none_left(f);
	call(f, 9, CCS_RINGING, "2000", "1001", "1002", NULL);
	next(f, "Ringing", "call", "9", "dn", "1001", "rp", "2000", NULL);
	none_left(f);
	call(f, 9, CCS_ESTABLISHED, "2000", "1001", "1002", NULL);
	next(f, "Established", "dn", "1001", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	call(f, 9, CCS_RELEASED, "2000", "1001", "1002", NULL);
	e = next(f, "Released", "call", "9", "dn", "1001", "rp", "2000", NULL);
	filed(e, "2000", "1001", "1002", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	none_left(f);
	assert_int_equal(cc_stats(f->cc)->queued, 1);

	/* an outside caller queued and released there: no device at all */
	call(f, 10, CCS_QUEUED, "2000", NULL, "5551234", NULL);
	e = next(f, "Queued", "call", "10", "dn", "2000", NULL);
	filed(e, "2000", NULL);
	next(f, "RouteRequest", "call", "10", NULL);
	call(f, 10, CCS_RELEASED, "2000", NULL, "5551234", "timeout");
	e = next(f, "Released", "call", "10", "dn", "2000", "cause", "timeout", NULL);
	filed(e, "2000", NULL);
	none_left(f);
	assert_int_equal(cc_stats(f->cc)->queued, 2);
}

static void test_agents(void **state)
{
	struct fx *f = *state;
	char why[128];
	const struct ev *e;
	const struct agent *a;

	reg_both(f);
	/* not an extension */
	why[0] = '\0';
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "2000", NULL, why, sizeof(why)),
		-EINVAL);
	assert_true(why[0]);
	why[0] = '\0';
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "3000", NULL, why, sizeof(why)),
		-EINVAL);
	assert_true(why[0]);
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "9999", NULL, why, sizeof(why)),
		-EINVAL);
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGIN, "alice", NULL, NULL, why, sizeof(why)),
			 -EINVAL);
	assert_null(ag_find(cc_agents(f->cc), "alice"));
	/* not logged in */
	why[0] = '\0';
	assert_int_equal(cc_agent_request(f->cc, AGE_READY, "alice", NULL, NULL, why, sizeof(why)),
			 -EPERM);
	assert_true(why[0]);
	/* a bad id */
	why[0] = '\0';
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGIN, "", "1001", NULL, why, sizeof(why)),
			 -EINVAL);
	assert_true(why[0]);
	none_left(f);
	assert_int_equal(f->nagent, 0);

	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "1001", NULL, why, sizeof(why)), 0);
	e = next(f, "AgentState", "agent", "alice", "dn", "1001", "state", "not_ready", "reason",
		 ABSENT, NULL);
	filed(e, "1001", NULL);
	assert_int_equal(f->nagent, 1);
	assert_string_equal(f->agent_id, "alice");
	assert_int_equal(f->agent_state, AG_NOT_READY);
	a = ag_find(cc_agents(f->cc), "alice");
	assert_non_null(a);
	assert_int_equal(a->state, AG_NOT_READY);

	/* a second agent on 1001, and alice again: refused */
	why[0] = '\0';
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGIN, "bob", "1001", NULL, why, sizeof(why)),
			 -EPERM);
	assert_true(why[0]);
	why[0] = '\0';
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "1002", NULL, why, sizeof(why)),
		-EPERM);
	assert_true(why[0]);
	none_left(f);

	assert_int_equal(cc_agent_request(f->cc, AGE_READY, "alice", NULL, NULL, why, sizeof(why)),
			 0);
	next(f, "AgentState", "agent", "alice", "dn", "1001", "state", "ready", NULL);
	assert_int_equal(f->nagent, 2);
	/* nothing changes: no event, no record */
	assert_int_equal(cc_agent_request(f->cc, AGE_READY, "alice", NULL, NULL, why, sizeof(why)),
			 0);
	none_left(f);
	assert_int_equal(f->nagent, 2);

	/* her DN rings: busy; answered: still busy; released: ready again */
	call(f, 11, CCS_DIALING, "1001", NULL, "5551234", NULL);
	next(f, "Dialing", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	e = next(f, "AgentState", "agent", "alice", "dn", "1001", "state", "busy", NULL);
	filed(e, "1001", NULL);
	none_left(f);
	assert_int_equal(f->nagent, 3);
	assert_int_equal(f->agent_state, AG_BUSY);
	call(f, 11, CCS_ESTABLISHED, "1001", NULL, "5551234", NULL);
	next(f, "Established", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	none_left(f);
	call(f, 11, CCS_RELEASED, "1001", NULL, "5551234", NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "AgentState", "agent", "alice", "dn", "1001", "state", "ready", NULL);
	none_left(f);
	assert_int_equal(f->nagent, 4);
	assert_int_equal(f->agent_state, AG_READY);

	/* her outgoing call makes her busy too */
	call(f, 12, CCS_DIALING, "1002", NULL, "1001", NULL);
	next(f, "Dialing", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "ringing", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	next(f, "AgentState", "agent", "alice", "state", "busy", NULL);
	call(f, 12, CCS_RELEASED, "1002", NULL, "1001", NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "AgentState", "agent", "alice", "state", "ready", NULL);
	none_left(f);

	assert_int_equal(
		cc_agent_request(f->cc, AGE_NOT_READY, "alice", NULL, "lunch", why, sizeof(why)),
		0);
	next(f, "AgentState", "agent", "alice", "state", "not_ready", "reason", "lunch", NULL);
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGOUT, "alice", NULL, NULL, why, sizeof(why)),
			 0);
	/* filed under the DN she was on */
	e = next(f, "AgentState", "agent", "alice", "dn", "1001", "state", "logged_out", "reason",
		 ABSENT, NULL);
	filed(e, "1001", NULL);
	assert_int_equal(f->agent_state, AG_LOGGED_OUT);
	why[0] = '\0';
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGOUT, "alice", NULL, NULL, why, sizeof(why)),
			 -EPERM);
	assert_true(why[0]);
	/* a device change after logout concerns nobody */
	call(f, 13, CCS_RINGING, "1001", NULL, NULL, NULL);
	next(f, "Ringing", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	none_left(f);
	/* now bob may take 1001, and lands in busy: it is ringing */
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGIN, "bob", "1001", NULL, why, sizeof(why)),
			 0);
	next(f, "AgentState", "agent", "bob", "dn", "1001", "state", "busy", NULL);
	call(f, 13, CCS_RELEASED, "1001", NULL, NULL, NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "AgentState", "agent", "bob", "dn", "1001", "state", "not_ready", NULL);
	none_left(f);
	/* requests that are not requests */
	assert_int_equal(
		cc_agent_request(f->cc, AGE_CALL_START, "bob", NULL, NULL, why, sizeof(why)),
		-EINVAL);
	none_left(f);
}

/* An agent's reason is part of its AgentState, whichever path publishes it:
 * NotReady "lunch" while on a call, then the call ends -> not_ready with
 * "lunch" (ag keeps it; the event must say so too). */
static void test_agent_state_reason_after_call(void **state)
{
	struct fx *f = *state;
	char why[128];

	reg_both(f);
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "1001", NULL, why, sizeof(why)), 0);
	next(f, "AgentState", "state", "not_ready", NULL);
	assert_int_equal(cc_agent_request(f->cc, AGE_READY, "alice", NULL, NULL, why, sizeof(why)),
			 0);
	next(f, "AgentState", "state", "ready", NULL);
	call(f, 21, CCS_ESTABLISHED, "1001", NULL, NULL, NULL);
	next(f, "Established", NULL);
	next(f, "DeviceState", "state", "busy", NULL);
	next(f, "AgentState", "state", "busy", NULL);
	assert_int_equal(
		cc_agent_request(f->cc, AGE_NOT_READY, "alice", NULL, "lunch", why, sizeof(why)),
		0);
	next(f, "AgentState", "agent", "alice", "state", "busy", "reason", "lunch", NULL);
	call(f, 21, CCS_RELEASED, "1001", NULL, NULL, NULL);
	next(f, "Released", NULL);
	next(f, "DeviceState", "state", "idle", NULL);
	assert_string_equal(ag_find(cc_agents(f->cc), "alice")->reason, "lunch");
	next(f, "AgentState", "agent", "alice", "state", "not_ready", "reason", "lunch", NULL);
	none_left(f);
}

/* Standby: no event, no agent request, no engine call; device states are
 * still computed.  Then a takeover: events from seq 1 (the log is empty). */
static void test_standby(void **state)
{
	struct fx *f = *state;
	char why[128];
	const struct agent *a;

	cc_set_publishing(f->cc, false);
	assert_false(cc_publishing(f->cc));
	cc_reg_update(f->cc, "1001", true);
	cc_reg_update(f->cc, "1002", true);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	call(f, 30, CCS_DIALING, "1001", NULL, "1002", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_RINGING);
	assert_int_equal(cc_dev_state(f->cc, "1002"), CC_DEV_BUSY);
	call(f, 31, CCS_QUEUED, "2000", NULL, NULL, NULL);
	assert_int_equal(cc_stats(f->cc)->queued, 0);
	assert_int_equal(f->ngot, 0);
	assert_int_equal(f->njournaled, 0);
	assert_int_equal(cc_evlog(f->cc)->n, 0);
	assert_int_equal(cc_evlog(f->cc)->last_seq, 0);
	assert_int_equal(cc_stats(f->cc)->events, 0);
	assert_int_equal(cc_publish(f->cc, "X", json_object(), NULL, NULL), 0);

	why[0] = '\0';
	assert_int_equal(
		cc_agent_request(f->cc, AGE_LOGIN, "alice", "1001", NULL, why, sizeof(why)),
		-EPERM);
	assert_string_equal(why, "standby");
	assert_null(ag_find(cc_agents(f->cc), "alice"));
	why[0] = '\0';
	assert_int_equal(cc_route(f->cc, 31, "1001", why, sizeof(why)), -EPERM);
	assert_string_equal(why, "standby");
	why[0] = '\0';
	assert_int_equal(cc_release(f->cc, 31, why, sizeof(why)), -EPERM);
	assert_string_equal(why, "standby");
	assert_int_equal(f->nroute + f->nrelease, 0);

	/* an agent from the active node's record stays as the record says
	 * when its DN changes here */
	assert_int_equal(ag_set(cc_agents_mut(f->cc), "carol", "1001", AG_READY, AG_LOGGED_OUT, ""),
			 0);
	call(f, 30, CCS_ESTABLISHED, "1001", NULL, "1002", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_BUSY);
	a = ag_find(cc_agents(f->cc), "carol");
	assert_int_equal(a->state, AG_READY);
	assert_int_equal(f->nagent, 0);
	assert_int_equal(f->ngot, 0);

	/* takeover: the computed states are the base, nothing is re-sent */
	cc_set_publishing(f->cc, true);
	call(f, 30, CCS_RELEASED, "1001", NULL, "1002", NULL);
	assert_int_equal(next(f, "Released", "call", "30", NULL)->seq, 1);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	none_left(f);
}

/* With a journal that replicates, an event reaches clients only once the
 * journal acknowledged its record, and always in order. */
static void test_delivery_gating(void **state)
{
	struct fx *f = *state;
	struct evlog *l = cc_evlog(f->cc);

	f->replicate = true; /* jseq 100, 101, ... */
	cc_reg_update(f->cc, "1001", true); /* seq 1, jseq 100 */
	cc_reg_update(f->cc, "1002", true); /* seq 2, jseq 101 */
	cc_reg_update(f->cc, "1001", false); /* seq 3, jseq 102 */
	assert_int_equal(f->njournaled, 3);
	assert_int_equal(f->ngot, 0);
	assert_int_equal(evlog_get(l, 1)->jseq, 100);
	assert_int_equal(evlog_get(l, 2)->jseq, 101);
	assert_int_equal(evlog_get(l, 3)->jseq, 102);

	cc_journal_acked(f->cc, 99);
	assert_int_equal(f->ngot, 0);
	cc_journal_acked(f->cc, 100);
	assert_int_equal(f->ngot, 1);
	assert_int_equal(next(f, "DeviceState", "dn", "1001", "state", "idle", NULL)->jseq, 100);
	cc_journal_acked(f->cc, 100); /* again: nothing new */
	assert_int_equal(f->ngot, 1);
	cc_journal_acked(f->cc, 102);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "unregistered", NULL);
	none_left(f);
	cc_journal_acked(f->cc, 1000); /* nothing held: nothing */
	none_left(f);

	/* a new one is held again; cc_release_held lets everything go */
	cc_reg_update(f->cc, "1001", true); /* seq 4, jseq 103 */
	cc_reg_update(f->cc, "1001", false); /* seq 5, jseq 104 */
	assert_int_equal(f->ngot, 3);
	cc_release_held(f->cc);
	next(f, "DeviceState", "state", "idle", NULL);
	next(f, "DeviceState", "state", "unregistered", NULL);
	none_left(f);
	cc_journal_acked(f->cc, 104); /* no second delivery */
	cc_release_held(f->cc);
	none_left(f);

	/* partial acknowledgement in the middle of a run */
	f->next_jseq = 200;
	for (int i = 0; i < 3; i++) {
		cc_reg_update(f->cc, "1002", false);
		cc_reg_update(f->cc, "1002", true);
	}
	assert_int_equal(f->ngot, f->seen);
	cc_journal_acked(f->cc, 202);
	assert_int_equal(f->ngot - f->seen, 3);
	cc_journal_acked(f->cc, 204);
	assert_int_equal(f->ngot - f->seen, 5);
	cc_journal_acked(f->cc, 205);
	assert_int_equal(f->ngot - f->seen, 6);
	for (int i = 0; i < 3; i++) {
		next(f, "DeviceState", "state", "unregistered", NULL);
		next(f, "DeviceState", "state", "idle", NULL);
	}
	none_left(f);
}

/* cc_publish itself: answers for one client, events filed under DNs, the
 * sequence it returns, and no event without fields. */
static void test_publish(void **state)
{
	struct fx *f = *state;
	const char *dns[EV_DNS] = { "2000", NULL, "1001" };
	const struct ev *e;
	json_t *o;

	assert_int_equal(cc_publish(f->cc, NULL, json_pack("{s:s}", "ok", "yes"), NULL, "crm-7"),
			 1);
	o = next_json(f, NULL, "ok", "yes", NULL);
	assert_null(json_object_get(o, "ref"));
	e = &f->got[f->seen - 1].e;
	assert_string_equal(e->client, "crm-7");
	filed(e, NULL);
	assert_int_equal(cc_publish(f->cc, "Custom", json_object(), dns, NULL), 2);
	e = next(f, "Custom", NULL);
	filed(e, "2000", "1001", NULL);
	assert_string_equal(e->client, "");
	assert_int_equal(cc_publish(f->cc, "Nothing", NULL, dns, NULL), 0);
	none_left(f);
	assert_int_equal(cc_evlog(f->cc)->last_seq, 2);
	assert_int_equal(cc_stats(f->cc)->events, 2);
	/* the fields' own "seq"/"ts"/"event" are overwritten, never trusted */
	assert_int_equal(
		cc_publish(f->cc, "Mine",
			   json_pack("{s:s, s:i, s:i}", "event", "Forged", "seq", 99, "ts", 5),
			   NULL, NULL),
		3);
	next(f, "Mine", NULL);
	none_left(f);
}

static void test_route_release(void **state)
{
	struct fx *f = *state;
	char why[128];

	assert_int_equal(cc_route(f->cc, 42, "1001", why, sizeof(why)), 0);
	assert_int_equal(f->nroute, 1);
	assert_int_equal(f->eng_call, 42);
	assert_string_equal(f->eng_target, "1001");
	assert_int_equal(cc_stats(f->cc)->routed, 1);
	assert_int_equal(cc_release(f->cc, 43, why, sizeof(why)), 0);
	assert_int_equal(f->nrelease, 1);
	assert_int_equal(f->eng_call, 43);

	/* the engine's refusal comes back as it was */
	f->eng_ret = -ENOENT;
	f->eng_why = "no such call";
	why[0] = '\0';
	assert_int_equal(cc_route(f->cc, 44, "sip:x@10.0.0.1", why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "no such call");
	assert_string_equal(f->eng_target, "sip:x@10.0.0.1");
	assert_int_equal(cc_stats(f->cc)->routed, 1);
	why[0] = '\0';
	assert_int_equal(cc_release(f->cc, 45, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "no such call");
	assert_int_equal(f->nroute, 2);
	assert_int_equal(f->nrelease, 2);
	none_left(f); /* requests publish nothing themselves */

	/* no engine */
	{
		struct cc_engine none = { NULL, NULL, NULL };

		cc_set_engine(f->cc, &none);
		why[0] = '\0';
		assert_int_equal(cc_route(f->cc, 1, "1001", why, sizeof(why)), -ENOSYS);
		assert_true(why[0]);
		why[0] = '\0';
		assert_int_equal(cc_release(f->cc, 1, why, sizeof(why)), -ENOSYS);
		assert_true(why[0]);
	}
}

/* The log keeps what was published, pruned on the node's clock. */
static void test_log_and_clock(void **state)
{
	struct fx *f = fx_new(3, 1000);

	(void)state;
	f->now = 5000;
	cc_reg_update(f->cc, "1001", true); /* seq 1 at 5000 */
	f->now = 5500;
	cc_reg_update(f->cc, "1002", true); /* seq 2 at 5500 */
	assert_int_equal(evlog_get(cc_evlog(f->cc), 1)->mono_ms, 5000);
	f->now = 6001;
	cc_reg_update(f->cc, "1001", false); /* seq 3; seq 1 is 1001 ms old: pruned */
	assert_int_equal(evlog_first_seq(cc_evlog(f->cc)), 2);
	f->now = 6002;
	cc_reg_update(f->cc, "1002", false); /* seq 4 */
	cc_reg_update(f->cc, "1002", true); /* seq 5; max 3: 3..5 */
	assert_int_equal(evlog_first_seq(cc_evlog(f->cc)), 3);
	assert_int_equal(cc_evlog(f->cc)->last_seq, 5);
	assert_int_equal(f->ngot, 5); /* all delivered nevertheless */
	/* no clock: the node's time is 0 */
	cc_set_clock(f->cc, NULL, NULL);
	cc_reg_update(f->cc, "1002", false);
	assert_int_equal(evlog_get(cc_evlog(f->cc), 6)->mono_ms, 0);
	{
		void *p = f;

		teardown(&p);
	}
}

/* Thousands of live calls (the call table grows) and back to idle. */
static void test_many_calls(void **state)
{
	struct fx *f = *state;
	enum {
		N = 5000
	};

	cc_reg_update(f->cc, "1001", true);
	for (uint64_t id = 1; id <= N; id++)
		call(f, id * 7919, CCS_DIALING, "1001", NULL, "5551234", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_RINGING);
	for (uint64_t id = 1; id <= N; id += 2)
		call(f, id * 7919, CCS_ESTABLISHED, "1001", NULL, "5551234", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_BUSY);
	for (uint64_t id = 1; id <= N; id += 2)
		call(f, id * 7919, CCS_RELEASED, "1001", NULL, "5551234", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_RINGING);
	for (uint64_t id = 2; id <= N; id += 2)
		call(f, id * 7919, CCS_RELEASED, "1001", NULL, "5551234", NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	/* 1 registration, N Dialing, N/2 Established, N Released, and the
	 * device: idle, ringing, busy, ringing, idle */
	assert_int_equal(f->ngot, 1 + N + N / 2 + N + 4);
	for (size_t i = 1; i < f->ngot; i++)
		assert_int_equal(f->got[i].e.seq, f->got[i - 1].e.seq + 1);
}

/* cc_calls_reset forgets the calls, keeps the registrations, and a later
 * release of a forgotten call makes no event. */
static void test_calls_reset(void **state)
{
	struct fx *f = *state;

	reg_both(f);
	call(f, 50, CCS_ESTABLISHED, "1001", NULL, "1002", NULL);
	call(f, 51, CCS_QUEUED, "2000", NULL, NULL, NULL);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_BUSY);
	f->seen = f->ngot;
	f->last_seq = f->got[f->ngot - 1].e.seq;
	cc_calls_reset(f->cc);
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	assert_int_equal(cc_dev_state(f->cc, "1002"), CC_DEV_IDLE);
	none_left(f);
	call(f, 50, CCS_RELEASED, "1001", NULL, "1002", NULL);
	call(f, 51, CCS_RELEASED, "2000", NULL, NULL, NULL);
	none_left(f);
	/* a call seen again after the reset starts afresh */
	call(f, 50, CCS_ESTABLISHED, "1001", NULL, "1002", NULL);
	next(f, "Established", "call", "50", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "busy", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "busy", NULL);
	none_left(f);
}

/* A call's URIs come from the network (libosip2 passes a From host's raw
 * bytes through): a From that is not UTF-8 must not make the call's events
 * vanish, least of all its Released. */
static void test_call_events_with_non_utf8_uri(void **state)
{
	struct fx *f = *state;
	struct cc_call c = {
		.id = 60,
		.state = CCS_DIALING,
		.dn = "1001",
		.caller = "1002",
		.from = "sip:1002@h\xff\xfe.example",
		.to = "sip:1001@sipha.test",
	};

	reg_both(f);
	cc_call_update(f->cc, &c);
	c.state = CCS_RELEASED;
	cc_call_update(f->cc, &c);
	next(f, "Dialing", "call", "60", "dn", "1001", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "ringing", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "busy", NULL);
	next(f, "Released", "call", "60", "dn", "1001", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	none_left(f);
}

/* An unreplicated event (jseq 0: the journal says the standby is not in
 * sync) published while others are held: the held ones go first, then it,
 * each exactly once. */
static void test_unreplicated_after_held(void **state)
{
	struct fx *f = *state;

	f->replicate = true;
	cc_reg_update(f->cc, "1001", true); /* seq 1, jseq 100: held */
	cc_reg_update(f->cc, "1002", true); /* seq 2, jseq 101: held */
	assert_int_equal(f->ngot, 0);
	f->replicate = false;
	cc_reg_update(f->cc, "1001", false); /* seq 3, jseq 0 */
	for (size_t i = 0; i < f->ngot; i++)
		if (f->got[i].e.seq != i + 1)
			fail_msg("delivery %zu is seq %llu (each of 1, 2, 3 once, in order)", i,
				 (unsigned long long)f->got[i].e.seq);
	assert_int_equal(f->ngot, 3);
	next(f, "DeviceState", "dn", "1001", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "unregistered", NULL);
	none_left(f);
	cc_journal_acked(f->cc, 101); /* nothing left to deliver */
	cc_release_held(f->cc);
	none_left(f);
	/* unreplicated from then on: at once, once */
	cc_reg_update(f->cc, "1002", false);
	assert_int_equal(next(f, "DeviceState", "dn", "1002", NULL)->jseq, 0);
	none_left(f);
}

/* What clients may be told is delivered: the newest event not held. */
static void test_delivered_seq(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cc_delivered_seq(f->cc), 0);
	cc_reg_update(f->cc, "1001", true);
	assert_int_equal(cc_delivered_seq(f->cc), 1);
	f->replicate = true;
	cc_reg_update(f->cc, "1002", true); /* seq 2, jseq 100 */
	cc_reg_update(f->cc, "1001", false); /* seq 3, jseq 101 */
	assert_int_equal(cc_delivered_seq(f->cc), 1);
	cc_journal_acked(f->cc, 100);
	assert_int_equal(cc_delivered_seq(f->cc), 2);
	cc_journal_acked(f->cc, 101);
	assert_int_equal(cc_delivered_seq(f->cc), 3);
	assert_int_equal(f->ngot, 3);
}

struct watch {
	unsigned n;
	char dn[16][EV_DN_MAX + 1];
	enum cc_dev d[16];
};

static void on_watch(void *arg, const char *dn, enum cc_dev d)
{
	struct watch *w = arg;

	assert_true(w->n < 16);
	strcpy(w->dn[w->n], dn);
	w->d[w->n++] = d;
}

/* The device watch hears every change of an extension's device state, on a
 * standby too, and nothing else. */
static void test_device_watch(void **state)
{
	struct fx *f = *state;
	struct watch w = { 0 };

	cc_set_device_watch(f->cc, on_watch, &w);
	cc_reg_update(f->cc, "1001", true);
	cc_reg_update(f->cc, "1001", true);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.dn[0], "1001");
	assert_int_equal(w.d[0], CC_DEV_IDLE);
	call(f, 1, CCS_DIALING, "1001", NULL, "1002", NULL);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.dn[1], "1001");
	assert_int_equal(w.d[1], CC_DEV_RINGING);
	assert_string_equal(w.dn[2], "1002");
	assert_int_equal(w.d[2], CC_DEV_BUSY);
	call(f, 1, CCS_RINGING, "1001", NULL, "1002", NULL); /* no device change */
	call(f, 2, CCS_QUEUED, "2000", NULL, NULL, NULL); /* no device */
	assert_int_equal(w.n, 3);
	cc_set_publishing(f->cc, false);
	call(f, 1, CCS_ESTABLISHED, "1001", NULL, "1002", NULL);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.dn[3], "1001");
	assert_int_equal(w.d[3], CC_DEV_BUSY);
	cc_set_device_watch(f->cc, NULL, NULL);
	call(f, 1, CCS_RELEASED, "1001", NULL, "1002", NULL);
	assert_int_equal(w.n, 4);
}

/* The two halves of the sink set on their own (CTI server, HA feed). */
static void test_split_sink(void **state)
{
	struct fx *f = *state;
	struct cc_sink none;
	char why[64];

	memset(&none, 0, sizeof(none));
	cc_set_sink(f->cc, &none);
	/* no sink at all: logged, delivered to nobody */
	cc_reg_update(f->cc, "1001", true);
	assert_int_equal(cc_evlog(f->cc)->last_seq, 1);
	assert_int_equal(f->ngot + f->njournaled, 0);
	cc_set_deliver(f->cc, on_deliver, f);
	f->seen = 0;
	cc_reg_update(f->cc, "1002", true);
	assert_int_equal(f->ngot, 1);
	assert_int_equal(f->got[0].e.seq, 2);
	f->last_seq = 1;
	cc_set_journal(f->cc, on_journal, on_agent, f);
	f->replicate = true;
	cc_reg_update(f->cc, "1001", false);
	assert_int_equal(f->njournaled, 1);
	assert_int_equal(f->ngot, 1);
	cc_journal_acked(f->cc, 100);
	assert_int_equal(f->ngot, 2);
	assert_int_equal(cc_agent_request(f->cc, AGE_LOGIN, "a", "1002", NULL, why, sizeof(why)),
			 0);
	assert_int_equal(f->nagent, 1);
	assert_string_equal(f->agent_id, "a");
	cc_journal_acked(f->cc, 101);
	next(f, "DeviceState", "dn", "1002", "state", "idle", NULL);
	next(f, "DeviceState", "dn", "1001", "state", "unregistered", NULL);
	next(f, "AgentState", "agent", "a", NULL);
	none_left(f);
}

/* Answers: for one client, with its ref echoed as JSON, remembered so that
 * the same request sent again finds its answer. */
static void test_answers(void **state)
{
	struct fx *f = *state;
	const struct ev *e, *found;
	json_t *o;
	char *ref;

	assert_int_equal(
		cc_answer(f->cc, "crm", "\"r1\"", NULL, json_pack("{s:s}", "req", "Monitor")), 1);
	o = next_json(f, NULL, "req", "Monitor", NULL);
	e = &f->got[f->seen - 1].e;
	assert_true(json_is_true(json_object_get(o, "ok")));
	ref = json_dumps(json_object_get(o, "ref"), JSON_COMPACT | JSON_ENCODE_ANY);
	assert_string_equal(ref, "\"r1\"");
	free(ref);
	assert_string_equal(e->client, "crm");
	filed(e, NULL);
	assert_non_null(e->ref);
	assert_string_equal(e->ref, "\"r1\"");

	assert_int_equal(cc_answer(f->cc, "crm", "7", "Error", json_pack("{s:s}", "reason", "no")),
			 2);
	o = next_json(f, "Error", "reason", "no", "ok", ABSENT, NULL);
	assert_true(json_is_integer(json_object_get(o, "ref")));
	assert_int_equal(json_integer_value(json_object_get(o, "ref")), 7);

	/* without a ref: no "ref", not remembered */
	assert_int_equal(cc_answer(f->cc, "crm", "", NULL, json_object()), 3);
	next(f, NULL, "ref", ABSENT, NULL);
	assert_int_equal(cc_answer(f->cc, "crm", NULL, NULL, json_object()), 4);
	next(f, NULL, "ref", ABSENT, NULL);
	assert_int_equal(cc_answer(f->cc, "crm", NULL, NULL, NULL), 0);
	none_left(f);

	found = cc_find_answer(f->cc, "crm", "\"r1\"");
	assert_non_null(found);
	assert_int_equal(found->seq, 1);
	found = cc_find_answer(f->cc, "crm", "7");
	assert_non_null(found);
	assert_int_equal(found->seq, 2);
	assert_null(cc_find_answer(f->cc, "other", "\"r1\""));
	assert_null(cc_find_answer(f->cc, "crm", "\"r2\""));
	assert_null(cc_find_answer(f->cc, "crm", "\"7\"")); /* the JSON text, exactly */
	/* the same ref answered again: the newest is found */
	assert_int_equal(cc_answer(f->cc, "crm", "\"r1\"", NULL, json_object()), 5);
	assert_int_equal(cc_find_answer(f->cc, "crm", "\"r1\"")->seq, 5);
	/* events are never answers */
	cc_reg_update(f->cc, "1001", true);
	assert_null(evlog_get(cc_evlog(f->cc), 6)->ref);
	/* a standby answers nothing */
	cc_set_publishing(f->cc, false);
	assert_int_equal(cc_answer(f->cc, "crm", "\"s\"", NULL, json_object()), 0);
	assert_null(cc_find_answer(f->cc, "crm", "\"s\""));
}

/* An answer pruned from the log is no longer found. */
static void test_answer_pruned(void **state)
{
	struct fx *f = fx_new(2, 3600 * 1000);

	(void)state;
	assert_int_equal(cc_answer(f->cc, "c", "1", NULL, json_object()), 1);
	assert_non_null(cc_find_answer(f->cc, "c", "1"));
	cc_reg_update(f->cc, "1001", true);
	assert_non_null(cc_find_answer(f->cc, "c", "1"));
	cc_reg_update(f->cc, "1002", true);
	assert_null(cc_find_answer(f->cc, "c", "1"));
	{
		void *p = f;

		teardown(&p);
	}
}

static void replica(struct fx *f, uint64_t seq, const char *client, const char *ref, bool snap,
		    int want)
{
	char line[64];
	const char *dns[EV_DNS] = { "1001", NULL, NULL };
	int ret;

	snprintf(line, sizeof(line), "{\"event\":\"X\",\"seq\":%llu}", (unsigned long long)seq);
	ret = cc_log_replica(f->cc, seq, dns, client, ref, line, strlen(line), snap);
	if (ret != want)
		fail_msg("replica %llu: %d, expected %d", (unsigned long long)seq, ret, want);
}

/* A hot standby's log: the active node's events with their sequences, and
 * their answers found after a failover. */
static void test_replica_log(void **state)
{
	struct fx *f = *state;
	struct evlog *l = cc_evlog(f->cc);
	const struct ev *e;

	cc_set_publishing(f->cc, false);
	replica(f, 5, NULL, NULL, false, 0); /* an empty log joins anywhere */
	replica(f, 5, NULL, NULL, false, -EEXIST);
	replica(f, 7, NULL, NULL, false, -EINVAL);
	replica(f, 4, NULL, NULL, false, -EINVAL);
	replica(f, 6, "crm", "\"q\"", false, 0);
	assert_int_equal(l->last_seq, 6);
	assert_int_equal(evlog_first_seq(l), 5);
	e = evlog_get(l, 5);
	assert_string_equal(e->line, "{\"event\":\"X\",\"seq\":5}");
	filed(e, "1001", NULL);
	assert_string_equal(e->client, "");
	assert_null(e->ref);
	e = cc_find_answer(f->cc, "crm", "\"q\"");
	assert_non_null(e);
	assert_int_equal(e->seq, 6);
	assert_string_equal(e->client, "crm");
	/* nothing is delivered or journaled on a standby */
	assert_int_equal(f->ngot + f->njournaled, 0);

	/* takeover: the sequence goes on */
	cc_set_publishing(f->cc, true);
	cc_reg_update(f->cc, "1001", true);
	assert_int_equal(next(f, "DeviceState", NULL)->seq, 7);
	none_left(f);
}

/* A snapshot: the log and agents start over, live events that arrive during
 * it wait for its end and are then appended (those it already had are
 * dropped). */
static void test_snapshot(void **state)
{
	struct fx *f = *state;
	struct evlog *l = cc_evlog(f->cc);

	cc_set_publishing(f->cc, false);
	replica(f, 1, "crm", "\"old\"", false, 0);
	replica(f, 2, NULL, NULL, false, 0);
	assert_int_equal(ag_set(cc_agents_mut(f->cc), "a", "1001", AG_READY, AG_LOGGED_OUT, ""), 0);

	cc_snap_begin(f->cc);
	assert_int_equal(l->n, 0);
	assert_int_equal(l->last_seq, 0);
	assert_null(cc_agents(f->cc)->list);
	assert_null(cc_find_answer(f->cc, "crm", "\"old\""));
	replica(f, 12, NULL, NULL, false, 0); /* live, before the snapshot's last: waits */
	replica(f, 13, "crm", "\"z\"", false, 0);
	assert_int_equal(l->n, 0);
	for (uint64_t s = 9; s <= 12; s++)
		replica(f, s, NULL, NULL, true, 0);
	assert_int_equal(ag_set(cc_agents_mut(f->cc), "b", "1002", AG_NOT_READY, AG_LOGGED_OUT, ""),
			 0);
	assert_int_equal(l->last_seq, 12);
	assert_null(cc_find_answer(f->cc, "crm", "\"z\""));
	cc_snap_end(f->cc);
	assert_int_equal(evlog_first_seq(l), 9);
	assert_int_equal(l->last_seq, 13);
	for (uint64_t s = 9; s <= 13; s++)
		assert_int_equal(evlog_get(l, s)->seq, s);
	assert_non_null(cc_find_answer(f->cc, "crm", "\"z\""));
	assert_int_equal(cc_find_answer(f->cc, "crm", "\"z\"")->seq, 13);
	assert_null(ag_find(cc_agents(f->cc), "a"));
	assert_non_null(ag_find(cc_agents(f->cc), "b"));
	/* after the snapshot, live events are appended at once */
	replica(f, 14, NULL, NULL, false, 0);
	assert_int_equal(l->last_seq, 14);
	assert_int_equal(f->ngot, 0);

	/* a snapshot that never ends leaks nothing (cc_free drops what waits) */
	cc_snap_begin(f->cc);
	replica(f, 20, "c", "\"w\"", false, 0);
}

/* Thousands of calls: the call table grows a few buckets at a time, and a
 * call is found again mid-growth (its release frees the devices). */
static void test_calls_mid_growth(void **state)
{
	struct fx *f = *state;
	size_t released = 0;

	reg_both(f);
	for (uint64_t id = 1; id <= 5000; id++) {
		call(f, id, CCS_DIALING, "1001", NULL, "1002", NULL);
		if (id == 4100) /* a growth began at 4,096 calls */
			for (uint64_t k = 1; k <= 50; k++)
				call(f, k, CCS_RELEASED, "1001", NULL, "1002", "BYE");
	}
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_RINGING);
	for (uint64_t id = 51; id <= 5000; id++)
		call(f, id, CCS_RELEASED, "1001", NULL, "1002", "BYE");
	assert_int_equal(cc_dev_state(f->cc, "1001"), CC_DEV_IDLE);
	assert_int_equal(cc_dev_state(f->cc, "1002"), CC_DEV_IDLE);
	for (size_t i = 0; i < f->ngot; i++)
		released += strstr(f->got[i].e.line, "\"event\":\"Released\"") != NULL;
	assert_int_equal(released, 5000);
	f->seen = f->ngot;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_to_extension, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_details, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_then_routed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_state_reason_after_call, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_standby, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_gating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_release, setup, teardown),
		cmocka_unit_test(test_log_and_clock),
		cmocka_unit_test_setup_teardown(test_many_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreplicated_after_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivered_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_sink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test(test_answer_pruned),
		cmocka_unit_test_setup_teardown(test_replica_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_mid_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_events_with_non_utf8_uri, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
