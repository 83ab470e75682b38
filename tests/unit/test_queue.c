/* Routing points through srv_rx() with a fake clock (sipnode.h): a call to
 * a routing-point DN waits, answered 180, until call_route_id() sends it to
 * a target (the caller then hears the target's answers on its INVITE), the
 * route timeout's default route or 480, a CANCEL, or call_release_id().
 * Then hot standby in one process: the queued call, the CTI event log and
 * the agents reach a standby through the journal path role.c uses, and the
 * standby, taking over, routes the call and goes on with the sequence. */
#include <errno.h>

#include "cc/cc.h"
#include "ha/journal.h"
#include "ha/replica.h"
#include "sipnode.h"

#define ROUTE_MS 5000

#define CONF_FMT                                                                    \
	"[node]\nid = %s\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n"    \
	"no_answer_ms = 20000\n[control]\nsocket = /tmp/sipha-test-queue-%s.sock\n" \
	"[cti]\nlisten = 127.0.0.1:3000\nroute_timeout_ms = %d\n%s"                 \
	"[dn]\n1001 = extension\n2000 = routing-point\n2001 = routing-point\n"      \
	"3000 = sip:10.0.0.50:5080\n"

struct fx {
	struct sipnode act, sby;
	struct jr_buf jb;
	uint64_t seq;
	bool ha;
	/* what the active's CTI sink was given */
	char lines[64][512];
	unsigned nlines;
};

static void node_init(struct sipnode *n, const char *id, const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text), CONF_FMT, id, id, ROUTE_MS, extra);
	sipnode_init(n, text);
}

static void to_standby(struct fx *f)
{
	sipnode_apply_record(&f->sby, &f->jb);
}

static void journal_call(void *arg, const struct call *c, bool gone)
{
	struct fx *f = arg;

	assert_int_equal(rep_call_encode(&f->jb, ++f->seq, c, gone ? JR_OP_DELETE : JR_OP_UPSERT),
			 0);
	to_standby(f);
}

static uint64_t journal_event(void *arg, const struct ev *e)
{
	struct fx *f = arg;

	assert_int_equal(rep_event_encode(&f->jb, ++f->seq, e, false), 0);
	to_standby(f);
	return 0; /* delivered at once */
}

static void journal_agent(void *arg, const struct agent *a)
{
	struct fx *f = arg;

	assert_int_equal(rep_agent_encode(&f->jb, ++f->seq, a), 0);
	to_standby(f);
}

static void deliver(void *arg, const struct ev *e)
{
	struct fx *f = arg;

	assert_true(f->nlines < 64);
	snprintf(f->lines[f->nlines++], sizeof(f->lines[0]), "%s", e->line);
}

static int setup_with(void **state, const char *extra, bool ha)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	jr_buf_init(&f->jb);
	node_init(&f->act, "a", extra);
	cc_set_deliver(f->act.srv.cc, deliver, f);
	if (ha) {
		f->ha = true;
		node_init(&f->sby, "b", extra);
		srv_ha_state(&f->sby.srv, false);
		f->act.srv.repl.call = journal_call;
		f->act.srv.repl.arg = f;
		cc_set_journal(f->act.srv.cc, journal_event, journal_agent, f);
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, "", false);
}

static int setup_default(void **state)
{
	return setup_with(state, "default_route = 3000\n", false);
}

static int setup_ha(void **state)
{
	return setup_with(state, "", true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->act.srv.repl.call = NULL;
	cc_set_journal(f->act.srv.cc, NULL, NULL, NULL);
	sipnode_fini(&f->act);
	if (f->ha)
		sipnode_fini(&f->sby);
	jr_buf_free(&f->jb);
	free(f);
	return 0;
}

/* The caller's INVITE to DN. */
static void send_invite(struct sipnode *n, struct uac *a, const char *dn, const char *id)
{
	a->peer = udp_peer("10.0.0.1", 5061);
	snprintf(a->callid, sizeof(a->callid), "%s@10.0.0.1", id);
	snprintf(a->ftag, sizeof(a->ftag), "f%s", id);
	snprintf(a->invite, sizeof(a->invite),
		 "INVITE sip:%s@sipha.test SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%s\r\nMax-Forwards: 70\r\n"
		 "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\nTo: <sip:%s@sipha.test>\r\n"
		 "Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:5061>\r\n"
		 "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
		 dn, id, a->ftag, dn, a->callid, strlen(SDP_A), SDP_A);
	inject(n, &a->peer, "%s", a->invite);
}

/* A call queued on 2000: the caller hears 180 with sipha's tag, nothing
 * goes anywhere else, the call is listed queued.  Its id. */
static uint64_t queue_call(struct sipnode *n, struct uac *a, const char *id)
{
	osip_message_t *m;

	send_invite(n, a, "2000", id);
	m = expect_msg(n, "180 INVITE", NULL);
	assert_string_equal(callid(m), a->callid);
	assert_non_null(tag_of(m->to));
	snprintf(a->ttag, sizeof(a->ttag), "%s", tag_of(m->to));
	osip_message_free(m);
	expect_none(n);
	assert_string_equal(call_state_name(only_call(n)->state), "queued");
	return only_call(n)->id;
}

/* Sipha's INVITE to the callee at 10.0.0.50:5080, recorded in B. */
static void expect_b_invite(struct sipnode *n, struct uas *b)
{
	struct sip_peer to;
	osip_message_t *m = expect_msg(n, "INVITE", &to);

	assert_int_equal(port_of(&to), 5080);
	assert_string_equal(body_of(m), SDP_A); /* the caller's offer, untouched */
	b->peer = to;
	snprintf(b->callid, sizeof(b->callid), "%s", callid(m));
	snprintf(b->ftag, sizeof(b->ftag), "%s", tag_of(m->from));
	snprintf(b->via, sizeof(b->via), "SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport",
		 branch_of(m));
	osip_message_free(m);
}

/* The callee rings and answers; the caller hears both on its INVITE. */
static void answer_call(struct sipnode *n, struct uac *a, struct uas *b)
{
	osip_message_t *m;

	callee_respond(n, b, 180, "Ringing", NULL);
	m = expect_msg(n, "180 INVITE", NULL);
	assert_string_equal(tag_of(m->to), a->ttag); /* the same early dialog */
	osip_message_free(m);
	callee_respond(n, b, 200, "OK", SDP_B);
	osip_message_free(expect_msg(n, "ACK", NULL)); /* to the callee */
	m = expect_msg(n, "200 INVITE", NULL);
	assert_string_equal(callid(m), a->callid);
	assert_string_equal(tag_of(m->to), a->ttag);
	assert_string_equal(body_of(m), SDP_B);
	osip_message_free(m);
	assert_string_equal(call_state_name(only_call(n)->state), "established");
}

static void test_route_to_uri(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	char why[128] = "";
	uint64_t id = queue_call(&f->act, &a, "q1");

	assert_int_equal(
		call_route_id(&f->act.srv, id, "sip:3000@10.0.0.50:5080", why, sizeof(why)), 0);
	expect_b_invite(&f->act, &b);
	expect_none(&f->act);
	answer_call(&f->act, &a, &b);
	/* The events of the call, in order, for the monitors of 2000. */
	assert_true(f->nlines >= 5);
	assert_non_null(strstr(f->lines[0], "\"event\":\"Queued\""));
	assert_non_null(strstr(f->lines[1], "\"event\":\"RouteRequest\""));
	assert_non_null(strstr(f->lines[2], "\"event\":\"Dialing\""));
	assert_non_null(strstr(f->lines[3], "\"event\":\"Ringing\""));
	assert_non_null(strstr(f->lines[4], "\"event\":\"Established\""));
}

static void test_route_to_dn(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	char why[128] = "";
	uint64_t id = queue_call(&f->act, &a, "q2");

	assert_int_equal(call_route_id(&f->act.srv, id, "3000", why, sizeof(why)), 0);
	expect_b_invite(&f->act, &b);
	answer_call(&f->act, &a, &b);
	/* Not queued any more: a second RouteCall is refused. */
	assert_int_equal(call_route_id(&f->act.srv, id, "3000", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not queued"));
}

/* A RouteCall that cannot be carried out leaves the call queued and sends
 * nothing: the client may route it elsewhere. */
static void test_route_refused(void **state)
{
	struct fx *f = *state;
	struct uac a;
	char why[128];
	uint64_t id = queue_call(&f->act, &a, "q3");
	static const struct {
		const char *target, *why;
	} bad[] = {
		{ "9999", "unknown dn" },
		{ "2001", "routing point" },
		{ "1001", "not registered" },
		{ "sip:3000@example.com", "unreachable" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_true(call_route_id(&f->act.srv, id, bad[i].target, why, sizeof(why)) < 0);
		assert_non_null(strstr(why, bad[i].why));
		expect_none(&f->act);
		assert_string_equal(call_state_name(only_call(&f->act)->state), "queued");
	}
	assert_int_equal(call_route_id(&f->act.srv, id + 100, "3000", why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "no such call");
}

static void test_route_timeout_480(void **state)
{
	struct fx *f = *state;
	struct uac a;

	queue_call(&f->act, &a, "q4");
	advance(&f->act, ROUTE_MS - 1);
	expect_none(&f->act);
	advance(&f->act, 1);
	osip_message_free(expect_msg(&f->act, "480 INVITE", NULL));
	assert_int_equal(calls_count(f->act.srv.calls), 0);
	assert_non_null(strstr(f->lines[f->nlines - 1], "\"cause\":\"route timeout\""));
}

static void test_route_timeout_default(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;

	queue_call(&f->act, &a, "q5");
	advance(&f->act, ROUTE_MS);
	expect_b_invite(&f->act, &b); /* to 3000, the default route */
	answer_call(&f->act, &a, &b);
}

static void test_cancel_queued(void **state)
{
	struct fx *f = *state;
	struct uac a;

	queue_call(&f->act, &a, "q6");
	inject(&f->act, &a.peer,
	       "CANCEL sip:2000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKaq6\r\nMax-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\nTo: <sip:2000@sipha.test>\r\n"
	       "Call-ID: %s\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
	       a.ftag, a.callid);
	osip_message_free(expect_msg(&f->act, "200 CANCEL", NULL));
	osip_message_free(expect_msg(&f->act, "487 INVITE", NULL));
	expect_none(&f->act); /* no callee to cancel */
	assert_int_equal(calls_count(f->act.srv.calls), 0);
	assert_non_null(strstr(f->lines[f->nlines - 1], "\"cause\":\"cancelled by caller\""));
	/* The caller ACKs the 487 (same branch, §17.1.1.3); the route timer
	 * went with the call: nothing more is sent. */
	inject(&f->act, &a.peer,
	       "ACK sip:2000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKaq6\r\nMax-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\nTo: "
	       "<sip:2000@sipha.test>;tag=%s\r\n"
	       "Call-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	       a.ftag, a.ttag, a.callid);
	advance(&f->act, ROUTE_MS * 2);
	expect_none(&f->act);
}

static void test_release_queued_and_established(void **state)
{
	struct fx *f = *state;
	struct uac a, a2;
	struct uas b;
	char why[128];
	uint64_t id = queue_call(&f->act, &a, "q7"), id2;

	assert_int_equal(call_release_id(&f->act.srv, id, why, sizeof(why)), 0);
	osip_message_free(expect_msg(&f->act, "480 INVITE", NULL));
	expect_none(&f->act);
	assert_int_equal(calls_count(f->act.srv.calls), 0);

	id2 = queue_call(&f->act, &a2, "q8");
	assert_int_equal(call_route_id(&f->act.srv, id2, "3000", why, sizeof(why)), 0);
	expect_b_invite(&f->act, &b);
	answer_call(&f->act, &a2, &b);
	assert_int_equal(call_release_id(&f->act.srv, id2, why, sizeof(why)), 0);
	osip_message_free(expect_msg(&f->act, "BYE", NULL)); /* to the caller */
	osip_message_free(expect_msg(&f->act, "BYE", NULL)); /* to the callee */
	assert_int_equal(calls_count(f->act.srv.calls), 0);
	assert_int_equal(call_release_id(&f->act.srv, id2, why, sizeof(why)), -ENOENT);
}

/* --- hot standby ------------------------------------------------------------------- */

static void test_ha_queued_call_routed_after_takeover(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	char why[128];
	uint64_t id = queue_call(&f->act, &a, "h1");
	const struct call *c;

	/* The standby knows it, queued, with the caller's INVITE. */
	c = only_call(&f->sby);
	assert_int_equal(c->id, id);
	assert_string_equal(call_state_name(c->state), "queued");
	/* Standby: no events of its own, requests refused. */
	assert_int_equal(cc_evlog(f->sby.srv.cc)->last_seq, cc_evlog(f->act.srv.cc)->last_seq);
	assert_int_equal(cc_route(f->sby.srv.cc, id, "3000", why, sizeof(why)), -EPERM);

	/* The active dies; the standby takes over and a RouteCall connects. */
	calls_take_over(f->sby.srv.calls);
	srv_ha_state(&f->sby.srv, true);
	expect_none(&f->sby); /* the caller's INVITE is held in silence */
	/* The caller's retransmission is absorbed by the rebuilt transaction. */
	inject(&f->sby, &a.peer, "%s", a.invite);
	expect_none(&f->sby);
	assert_int_equal(calls_count(f->sby.srv.calls), 1);
	assert_int_equal(cc_route(f->sby.srv.cc, id, "3000", why, sizeof(why)), 0);
	expect_b_invite(&f->sby, &b);
	answer_call(&f->sby, &a, &b);
}

/* Routed on the active, which dies before the callee answers: the standby
 * resends the INVITE to the callee (a retransmission to it) and the
 * callee's answer connects the caller through the new active. */
static void test_ha_routed_then_taken_over(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	char why[128];
	uint64_t id = queue_call(&f->act, &a, "h4");
	struct sip_peer to;
	osip_message_t *m;

	assert_int_equal(call_route_id(&f->act.srv, id, "3000", why, sizeof(why)), 0);
	expect_b_invite(&f->act, &b);
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "dialing");
	calls_take_over(f->sby.srv.calls);
	srv_ha_state(&f->sby.srv, true);
	m = expect_msg(&f->sby, "INVITE", &to); /* the same INVITE again */
	assert_int_equal(port_of(&to), 5080);
	assert_string_equal(callid(m), b.callid);
	osip_message_free(m);
	answer_call(&f->sby, &a, &b);
}

static void test_ha_route_timer_restarts_after_takeover(void **state)
{
	struct fx *f = *state;
	struct uac a;

	queue_call(&f->act, &a, "h2");
	advance(&f->sby, ROUTE_MS - 100); /* time passes on the standby's clock */
	calls_take_over(f->sby.srv.calls);
	srv_ha_state(&f->sby.srv, true);
	advance(&f->sby, ROUTE_MS - 1); /* a whole route timeout from the takeover */
	expect_none(&f->sby);
	advance(&f->sby, 1);
	osip_message_free(expect_msg(&f->sby, "480 INVITE", NULL));
	assert_int_equal(calls_count(f->sby.srv.calls), 0);
}

static void test_ha_events_and_agents(void **state)
{
	struct fx *f = *state;
	struct cc *ac = f->act.srv.cc, *sc = f->sby.srv.cc;
	const struct agent *ag;
	char why[128];
	struct uac a;
	uint64_t last, id;

	assert_int_equal(cc_agent_request(ac, AGE_LOGIN, "alice", "1001", NULL, why, sizeof(why)),
			 0);
	assert_int_equal(cc_agent_request(ac, AGE_READY, "alice", NULL, NULL, why, sizeof(why)), 0);
	assert_int_equal(
		cc_agent_request(ac, AGE_NOT_READY, "alice", NULL, "lunch", why, sizeof(why)), 0);
	last = cc_answer(ac, "desk1", "\"r1\"", NULL, json_pack("{s:s}", "req", "AgentNotReady"));
	assert_int_equal(last, cc_evlog(ac)->last_seq);
	id = queue_call(&f->act, &a, "h3");

	/* Same log, seq for seq, line for line, on both nodes. */
	last = cc_evlog(ac)->last_seq;
	assert_true(last >= 5);
	assert_int_equal(cc_evlog(sc)->last_seq, last);
	for (uint64_t s = 1; s <= last; s++) {
		const struct ev *x = evlog_get(cc_evlog(ac), s), *y = evlog_get(cc_evlog(sc), s);

		assert_non_null(x);
		assert_non_null(y);
		assert_string_equal(x->line, y->line);
		assert_string_equal(x->client, y->client);
	}
	/* The answer is found on the standby by its client and ref. */
	assert_non_null(cc_find_answer(sc, "desk1", "\"r1\""));
	assert_null(cc_find_answer(sc, "desk2", "\"r1\""));
	ag = ag_find(cc_agents(sc), "alice");
	assert_non_null(ag);
	assert_int_equal(ag->state, AG_NOT_READY);
	assert_string_equal(ag->dn, "1001");
	assert_string_equal(ag->reason, "lunch");

	/* Taken over, the sequence goes on where the active stopped. */
	calls_take_over(f->sby.srv.calls);
	srv_ha_state(&f->sby.srv, true);
	assert_int_equal(cc_agent_request(sc, AGE_READY, "alice", NULL, NULL, why, sizeof(why)), 0);
	assert_int_equal(cc_evlog(sc)->last_seq, last + 1);
	assert_int_equal(ag_find(cc_agents(sc), "alice")->state, AG_READY);
	assert_int_equal(cc_release(sc, id, why, sizeof(why)), 0);
	assert_int_equal(cc_evlog(sc)->last_seq, last + 2); /* Released */
}

/* A standby joining late gets the log in a snapshot while the active goes
 * on publishing: a live event that overtakes the snapshot's slices waits
 * and lands after them, so the log ends up whole and in order. */
static void test_ha_snapshot_with_live_events(void **state)
{
	struct fx *f = *state;
	struct cc *ac = f->act.srv.cc, *sc = f->sby.srv.cc;
	char why[128];
	uint64_t last;

	cc_set_journal(ac, NULL, NULL, NULL); /* no standby yet */
	assert_int_equal(cc_agent_request(ac, AGE_LOGIN, "bob", "1001", NULL, why, sizeof(why)), 0);
	assert_int_equal(cc_agent_request(ac, AGE_READY, "bob", NULL, NULL, why, sizeof(why)), 0);
	last = cc_evlog(ac)->last_seq;
	assert_int_equal(cc_evlog(sc)->last_seq, 0);

	cc_snap_begin(sc);
	assert_int_equal(rep_agent_encode(&f->jb, ++f->seq, ag_find(cc_agents(ac), "bob")), 0);
	to_standby(f);
	/* A live event first (the active went on meanwhile)... */
	cc_set_journal(ac, journal_event, journal_agent, f);
	assert_int_equal(cc_agent_request(ac, AGE_NOT_READY, "bob", NULL, NULL, why, sizeof(why)),
			 0);
	assert_int_equal(cc_evlog(sc)->last_seq, 0); /* held back */
	/* ...then the snapshot's slices of the older ones. */
	for (uint64_t s2 = 1; s2 <= last; s2++) {
		assert_int_equal(
			rep_event_encode(&f->jb, ++f->seq, evlog_get(cc_evlog(ac), s2), true), 0);
		to_standby(f);
	}
	cc_snap_end(sc);
	assert_int_equal(cc_evlog(sc)->last_seq, last + 1);
	for (uint64_t s2 = 1; s2 <= last + 1; s2++)
		assert_string_equal(evlog_get(cc_evlog(sc), s2)->line,
				    evlog_get(cc_evlog(ac), s2)->line);
	assert_int_equal(ag_find(cc_agents(sc), "bob")->state, AG_NOT_READY);
}

/* The node that took over in a switchover: its own events wait (deferred)
 * until the old active's last records are in; those reach its clients at
 * once; then its own are numbered after them.  No seq given twice. */
static void test_switchover_defers_own_events(void **state)
{
	struct fx *f = *state;
	struct cc *c = f->act.srv.cc;
	const char *dns[EV_DNS] = { "2000", NULL, NULL };
	char why[128], late[64];
	uint64_t before = cc_evlog(c)->last_seq;
	unsigned seen = f->nlines;

	cc_set_defer(c, true);
	assert_int_equal(cc_agent_request(c, AGE_LOGIN, "x", "1001", NULL, why, sizeof(why)), 0);
	assert_int_equal(cc_evlog(c)->last_seq, before); /* not numbered yet */
	assert_int_equal(f->nlines, seen);
	snprintf(late, sizeof(late), "{\"event\":\"Released\",\"seq\":%llu}",
		 (unsigned long long)before + 1);
	assert_int_equal(cc_log_replica(c, before + 1, dns, NULL, NULL, late, strlen(late), false),
			 0);
	assert_int_equal(f->nlines, seen + 1); /* the old active's event, delivered */
	assert_string_equal(f->lines[seen], late);
	cc_set_defer(c, false);
	assert_int_equal(cc_evlog(c)->last_seq, before + 2);
	assert_int_equal(f->nlines, seen + 2);
	assert_non_null(strstr(f->lines[seen + 1], "\"event\":\"AgentState\""));
	snprintf(late, sizeof(late), "\"seq\":%llu,", (unsigned long long)before + 2);
	assert_non_null(strstr(f->lines[seen + 1], late));
}

/* A malformed event or agent record is refused, not half-applied. */
static void test_ha_bad_records(void **state)
{
	struct fx *f = *state;
	struct jr_decoder d;
	struct jr_frame fr;
	struct jr_record r;
	size_t used = 0;
	uint8_t key[8] = { 0 };
	uint64_t before = cc_evlog(f->sby.srv.cc)->last_seq;

	/* An event record with seq 0 and no line. */
	assert_int_equal(
		jr_record_begin(&f->jb, ++f->seq, JR_KIND_CTI_SEQ, JR_OP_UPSERT, key, sizeof(key)),
		0);
	assert_int_equal(jr_record_end(&f->jb), 0);
	jr_decoder_init(&d, 0);
	if (jr_decode(&d, f->jb.data, f->jb.len, &used, &fr) == 0 && !jr_record_decode(&fr, &r))
		assert_int_equal(rep_apply(&f->sby.srv, &r), -EBADMSG);
	jr_buf_reset(&f->jb);
	/* An agent record claiming an out-of-range state. */
	assert_int_equal(jr_record_begin(&f->jb, ++f->seq, JR_KIND_AGENT, JR_OP_UPSERT, "x", 1), 0);
	jr_put_str(&f->jb, 1, "1001");
	jr_put_u8(&f->jb, 2, 9);
	jr_put_u8(&f->jb, 3, 0);
	assert_int_equal(jr_record_end(&f->jb), 0);
	used = 0;
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, f->jb.data, f->jb.len, &used, &fr), 0);
	assert_int_equal(jr_record_decode(&fr, &r), 0);
	assert_int_equal(rep_apply(&f->sby.srv, &r), -EBADMSG);
	jr_buf_reset(&f->jb);
	assert_null(ag_find(cc_agents(f->sby.srv.cc), "x"));
	assert_int_equal(cc_evlog(f->sby.srv.cc)->last_seq, before);

	/* A binding whose lifetime would wrap: kept, but no longer than this
	 * node's own max_expires (3600 s by default). */
	{
		struct jr_reg_binding rb = { .expires_ms = UINT64_MAX - 5, .cseq = 1 };
		const struct reg_aor *aor;

		snprintf(rb.user, sizeof(rb.user), "1001");
		snprintf(rb.contact, sizeof(rb.contact), "sip:1001@10.0.0.7:5060");
		rb.src.ss_family = AF_UNSPEC;
		assert_int_equal(jr_reg_encode(&f->jb, ++f->seq, JR_OP_UPSERT, &rb), 0);
		to_standby(f);
		aor = reg_find(f->sby.srv.reg, "1001");
		assert_non_null(aor);
		assert_true(aor->bindings->expires <= f->sby.tw.now + 3600 * 1000);
		assert_true(aor->bindings->expires > f->sby.tw.now + 3599 * 1000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_route_to_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_to_dn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_timeout_480, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_timeout_default, setup_default,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_queued_and_established, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ha_queued_call_routed_after_takeover, setup_ha,
						teardown),
		cmocka_unit_test_setup_teardown(test_ha_routed_then_taken_over, setup_ha, teardown),
		cmocka_unit_test_setup_teardown(test_ha_route_timer_restarts_after_takeover,
						setup_ha, teardown),
		cmocka_unit_test_setup_teardown(test_ha_events_and_agents, setup_ha, teardown),
		cmocka_unit_test_setup_teardown(test_ha_snapshot_with_live_events, setup_ha,
						teardown),
		cmocka_unit_test_setup_teardown(test_ha_bad_records, setup_ha, teardown),
		cmocka_unit_test_setup_teardown(test_switchover_defers_own_events, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
