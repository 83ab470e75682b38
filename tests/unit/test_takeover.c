/* Hot standby in one process: two servers, "active" and "standby", each with
 * its own clock and capture list.  Every call change on the active goes
 * through the journal path role.c uses (rep_call_encode, jr_decode,
 * jr_record_decode, rep_apply) into the standby, which then takes over
 * (calls_take_over) and carries the calls on with real SIP messages. */
#include "ha/journal.h"
#include "ha/replica.h"
#include "sipnode.h"

#define NO_ANSWER_MS 20000

struct fx {
	struct sipnode act, sby;
	struct jr_buf jb;
	uint64_t seq;
};

#define CONF_FMT                                                                          \
	"[node]\nid = %s\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n"          \
	"no_answer_ms = %d\n[control]\nsocket = /tmp/sipha-test-takeover-%s.sock\n[dn]\n" \
	"3000 = sip:10.0.0.50:5080\n"

static void journal(void *arg, const struct call *c, bool gone)
{
	struct fx *f = arg;

	jr_buf_reset(&f->jb);
	assert_int_equal(rep_call_encode(&f->jb, ++f->seq, c, gone ? JR_OP_DELETE : JR_OP_UPSERT),
			 0);
	sipnode_apply_record(&f->sby, &f->jb);
}

/* Node ID ("a", "b"): its own control socket. */
static void node_init(struct sipnode *n, const char *id)
{
	char text[512];

	snprintf(text, sizeof(text), CONF_FMT, id, NO_ANSWER_MS, id);
	sipnode_init(n, text);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	jr_buf_init(&f->jb);
	node_init(&f->act, "a");
	node_init(&f->sby, "b");
	f->act.srv.repl.call = journal;
	f->act.srv.repl.arg = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->act.srv.repl.call = NULL; /* the active's shutdown is not news */
	sipnode_fini(&f->act);
	sipnode_fini(&f->sby);
	jr_buf_free(&f->jb);
	free(f);
	return 0;
}

/* The next message, which must be WHAT (see expect_msg); PORT where it went. */
static osip_message_t *expect(struct sipnode *n, const char *what, unsigned port)
{
	struct sip_peer to;
	osip_message_t *m = expect_msg(n, what, &to);

	assert_int_equal(port_of(&to), port);
	return m;
}

/* The next caller's INVITE carries no offer (delayed offer: the answer SDP
 * comes in its ACK). */
static bool no_offer;

/* The caller's INVITE (to N; only built when N is NULL). */
static void caller_invite(struct sipnode *n, struct uac *a, const char *id)
{
	const char *sdp = no_offer ? "" : SDP_A;

	a->peer = udp_peer("10.0.0.1", 5061);
	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(a->callid, sizeof(a->callid), "%s@10.0.0.1", id);
	snprintf(a->ftag, sizeof(a->ftag), "f%s", id);
	snprintf(a->invite, sizeof(a->invite),
		 "INVITE sip:3000@sipha.test SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%s\r\nMax-Forwards: 70\r\n"
		 "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\nTo: <sip:3000@sipha.test>\r\n"
		 "Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:5061>\r\n"
		 "%sContent-Length: %zu\r\n\r\n%s",
		 id, a->ftag, a->callid, no_offer ? "" : "Content-Type: application/sdp\r\n",
		 strlen(sdp), sdp);
	if (n)
		inject(n, &a->peer, "%s", a->invite);
}

/* The caller's INVITE on the active: its 100 Trying, then sipha's INVITE
 * to the callee, which the callee records. */
static void start_call(struct fx *f, struct uac *a, struct uas *b, const char *id)
{
	osip_message_t *m;
	struct sipnode_sent *s;

	caller_invite(&f->act, a, id);
	osip_message_free(expect(&f->act, "100 INVITE", 5061));
	m = expect(&f->act, "INVITE", 5080);
	s = &f->act.sent[f->act.seen - 1];
	b->peer = s->to;
	assert_true(s->len < sizeof(b->invite));
	memcpy(b->invite, s->buf, s->len);
	b->invite_len = s->len;
	snprintf(b->callid, sizeof(b->callid), "%s", callid(m));
	snprintf(b->ftag, sizeof(b->ftag), "%s", tag_of(m->from));
	snprintf(b->via, sizeof(b->via), "SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport",
		 branch_of(m));
	osip_message_free(m);
	expect_none(&f->act);
}

/* Answers request M that sipha sent (to either side) with CODE. */
static void answer(struct sipnode *n, const struct sip_peer *from, osip_message_t *m, int code)
{
	char *via = NULL, *fr = NULL, *to = NULL;
	osip_via_t *v = NULL;

	osip_message_get_via(m, 0, &v);
	osip_via_to_str(v, &via);
	osip_from_to_str(m->from, &fr);
	osip_to_to_str(m->to, &to);
	inject(n, from,
	       "SIP/2.0 %d Whatever\r\nVia: %s\r\nFrom: %s\r\nTo: %s%s\r\nCall-ID: %s\r\n"
	       "CSeq: %s %s\r\nContent-Length: 0\r\n\r\n",
	       code, via, fr, to, tag_of(m->to) ? "" : ";tag=btag", callid(m), m->cseq->number,
	       m->cseq->method);
	osip_free(via);
	osip_free(fr);
	osip_free(to);
}

/* An in-dialog request from the caller (ACK for the 2xx, BYE). */
static void caller_request(struct sipnode *n, struct uac *a, const char *method, int cseq)
{
	caller_in_dialog(n, a, method, cseq, NULL, "%s%d%s", method, cseq, a->ftag);
}

/* A request of the caller's INVITE transaction: CANCEL, or the ACK of an
 * error answer (with sipha's tag). */
static void caller_txn(struct sipnode *n, struct uac *a, const char *method)
{
	bool ack = !strcmp(method, "ACK");

	inject(n, &a->peer,
	       "%s sip:3000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%s\r\nMax-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\nTo: <sip:3000@sipha.test>%s%s\r\n"
	       "Call-ID: %s\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n",
	       method, a->id, a->ftag, ack ? ";tag=" : "", ack ? a->ttag : "", a->callid, method);
}

static void callee_bye(struct sipnode *n, struct uas *b)
{
	callee_in_dialog(n, b, "BYE", 2, "bye%s", b->ftag);
}

/* The standby takes over: its INVITE to the callee goes out again, byte
 * for byte what the active sent, and the caller hears nothing. */
static void take_over(struct fx *f, struct uas *b, size_t resumed)
{
	struct sipnode_sent *s;

	assert_int_equal(calls_take_over(f->sby.srv.calls), resumed);
	if (!resumed)
		return;
	assert_int_equal(f->sby.nsent - f->sby.seen, 1);
	s = &f->sby.sent[f->sby.seen++];
	assert_int_equal(port_of(&s->to), 5080);
	assert_int_equal(s->len, b->invite_len);
	assert_memory_equal(s->buf, b->invite, b->invite_len);
}

/* The callee's 180 (to NODE) reaches the caller with sipha's A-leg tag. */
static void ringing(struct sipnode *n, struct uac *a, struct uas *b)
{
	osip_message_t *m;

	callee_respond(n, b, 180, "Ringing", NULL);
	m = expect(n, "180 INVITE", 5061);
	assert_string_equal(callid(m), a->callid);
	assert_string_equal(tag_of(m->to), a->ttag);
	osip_message_free(m);
	expect_none(n);
}

/* The callee's 180 on the active, before the takeover. */
static void ring_on_active(struct fx *f, struct uac *a, struct uas *b)
{
	snprintf(a->ttag, sizeof(a->ttag), "%s", only_call(&f->act)->a.dlg.local_tag);
	ringing(&f->act, a, b);
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "ringing");
}

/* The callee's 200 (to NODE): sipha ACKs it and answers the caller. */
static void answered(struct sipnode *n, struct uac *a, struct uas *b)
{
	osip_message_t *m;

	callee_respond(n, b, 200, "OK", SDP_B);
	m = expect(n, "ACK", 5080);
	assert_string_equal(callid(m), b->callid);
	assert_string_equal(tag_of(m->to), "btag");
	assert_string_equal(m->cseq->number, "1");
	osip_message_free(m);
	m = expect(n, "200 INVITE", 5061);
	assert_string_equal(callid(m), a->callid);
	assert_string_equal(tag_of(m->to), a->ttag);
	assert_string_equal(body_of(m), SDP_B);
	osip_message_free(m);
	assert_string_equal(call_state_name(only_call(n)->state), "established");
	caller_request(n, a, "ACK", 1);
	expect_none(n);
}

/* A BYE from one side reaches the other, whose 200 comes back. */
static void hang_up(struct sipnode *n, struct uac *a, struct uas *b, bool caller)
{
	osip_message_t *m;

	if (caller)
		caller_request(n, a, "BYE", 2);
	else
		callee_bye(n, b);
	m = expect(n, "BYE", caller ? 5080 : 5061);
	assert_string_equal(callid(m), caller ? b->callid : a->callid);
	assert_string_equal(tag_of(m->from), caller ? b->ftag : a->ttag);
	assert_string_equal(tag_of(m->to), caller ? "btag" : a->ftag);
	assert_string_equal(m->req_uri->host, caller ? "10.0.0.50" : "10.0.0.1"); /* Contact */
	answer(n, caller ? &b->peer : &a->peer, m, 200);
	osip_message_free(m);
	osip_message_free(expect(n, "200 BYE", caller ? 5061 : 5080));
}

/* sipha cancels the callee's INVITE (its branch), and ACKs the 487. */
static void callee_cancelled(struct sipnode *n, struct uas *b)
{
	osip_message_t *m = expect(n, "CANCEL", 5080);

	assert_string_equal(callid(m), b->callid);
	assert_string_equal(m->cseq->number, "1");
	assert_non_null(strstr(b->via, branch_of(m)));
	answer(n, &b->peer, m, 200);
	osip_message_free(m);
	assert_int_equal(calls_count(n->srv.calls), 0);
	callee_respond(n, b, 487, "Request Terminated", NULL);
	m = expect(n, "ACK", 5080);
	assert_non_null(strstr(b->via, branch_of(m)));
	assert_string_equal(tag_of(m->to), "btag");
	osip_message_free(m);
}

static void all_gone(struct sipnode *n)
{
	assert_int_equal(calls_count(n->srv.calls), 0);
	advance(n, 64000);
	assert_int_equal(txn_count(n->srv.txns), 0);
	expect_none(n);
}

static void test_dialing_taken_over(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;

	start_call(f, &a, &b, "t1");
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "dialing");
	/* the caller has not seen it yet: the tag the active chose */
	snprintf(a.ttag, sizeof(a.ttag), "%s", only_call(&f->act)->a.dlg.local_tag);
	assert_string_equal(only_call(&f->sby)->a.dlg.local_tag, a.ttag);
	expect_none(&f->sby); /* a replica does nothing by itself */

	take_over(f, &b, 1);
	expect_none(&f->sby);
	ringing(&f->sby, &a, &b);
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "ringing");
	answered(&f->sby, &a, &b);

	hang_up(&f->sby, &a, &b, true);
	all_gone(&f->sby);
}

static void test_ringing_taken_over(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	struct sipnode_sent *last;

	start_call(f, &a, &b, "t2");
	ring_on_active(f, &a, &b);

	take_over(f, &b, 1);
	/* the caller's retransmission: absorbed, no new call, no new B INVITE */
	inject(&f->sby, &a.peer, "%s", a.invite);
	expect_none(&f->sby);
	assert_int_equal(calls_count(f->sby.srv.calls), 1);
	ringing(&f->sby, &a, &b);
	/* once the 180 went out here, a retransmission gets it again */
	last = &f->sby.sent[f->sby.nsent - 1];
	inject(&f->sby, &a.peer, "%s", a.invite);
	assert_int_equal(f->sby.nsent - f->sby.seen, 1);
	assert_int_equal(f->sby.sent[f->sby.seen].len, last->len);
	assert_memory_equal(f->sby.sent[f->sby.seen].buf, last->buf, last->len);
	f->sby.seen++;
	assert_int_equal(calls_count(f->sby.srv.calls), 1);
	answered(&f->sby, &a, &b);

	hang_up(&f->sby, &a, &b, false);
	all_gone(&f->sby);
}

static void test_cancel_after_takeover(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	start_call(f, &a, &b, "t3");
	ring_on_active(f, &a, &b);
	take_over(f, &b, 1);
	caller_txn(&f->sby, &a, "CANCEL");
	osip_message_free(expect(&f->sby, "200 CANCEL", 5061));
	m = expect(&f->sby, "487 INVITE", 5061);
	assert_string_equal(tag_of(m->to), a.ttag);
	osip_message_free(m);
	callee_cancelled(&f->sby, &b);
	/* the caller ACKs its 487 inside the rebuilt transaction */
	caller_txn(&f->sby, &a, "ACK");
	all_gone(&f->sby);
}

static void test_no_answer_after_takeover(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	start_call(f, &a, &b, "t4");
	ring_on_active(f, &a, &b);
	/* time on the standby before the takeover arms nothing */
	advance(&f->sby, NO_ANSWER_MS + 5000);
	expect_none(&f->sby);
	assert_int_equal(calls_count(f->sby.srv.calls), 1);

	take_over(f, &b, 1);
	ringing(&f->sby, &a, &b); /* the callee answers the retransmission */
	advance(&f->sby, NO_ANSWER_MS - 1);
	expect_none(&f->sby);
	advance(&f->sby, 1);
	m = expect(&f->sby, "480 INVITE", 5061);
	assert_string_equal(tag_of(m->to), a.ttag);
	osip_message_free(m);
	callee_cancelled(&f->sby, &b);
	caller_txn(&f->sby, &a, "ACK");
	all_gone(&f->sby);
}

static void test_established_taken_over(void **state)
{
	struct fx *f = *state;
	osip_message_t *m;
	struct uac a;
	struct uas b;

	start_call(f, &a, &b, "t5");
	ring_on_active(f, &a, &b);
	answered(&f->act, &a, &b);
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "established");

	take_over(f, &b, 0);
	expect_none(&f->sby);
	assert_int_equal(calls_count(f->sby.srv.calls), 1);

	/* A re-INVITE was in flight when the peer died: the callee's 2xx for
	 * it (CSeq 2) finds no transaction here, and still gets its ACK, or
	 * the callee would end the call when it gives up retransmitting. */
	inject(&f->sby, &b.peer,
	       "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgone;rport\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:3000@sipha.test>;tag=btag\r\nCall-ID: %s\r\nCSeq: 2 INVITE\r\n"
	       "Contact: <sip:bob@10.0.0.50:5080>\r\nContent-Length: 0\r\n\r\n",
	       b.ftag, b.callid);
	m = expect(&f->sby, "ACK", 5080);
	assert_string_equal(m->cseq->number, "2");
	assert_string_equal(tag_of(m->to), "btag");
	osip_message_free(m);
	expect_none(&f->sby);

	hang_up(&f->sby, &a, &b, false);
	all_gone(&f->sby);
}

/* The callee's 200 reaches the active, which ACKs it and answers the
 * caller: both lost, the peer dies before the caller's ACK.  The new
 * active resends the 2xx to the caller (and keeps retransmitting it until
 * the ACK), and ACKs the callee's retransmitted 200 itself. */
static void test_answered_unacked(void **state)
{
	struct fx *f = *state;
	osip_message_t *m;
	struct uac a;
	struct uas b;

	start_call(f, &a, &b, "t8");
	ring_on_active(f, &a, &b);
	callee_respond(&f->act, &b, 200, "OK", SDP_B);
	osip_message_free(expect(&f->act, "ACK", 5080));
	osip_message_free(expect(&f->act, "200 INVITE", 5061));
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "established");

	take_over(f, &b, 0);
	m = expect(&f->sby, "200 INVITE", 5061);
	assert_string_equal(tag_of(m->to), a.ttag);
	assert_string_equal(body_of(m), SDP_B);
	osip_message_free(m);
	expect_none(&f->sby);
	callee_respond(&f->sby, &b, 200, "OK", SDP_B);
	m = expect(&f->sby, "ACK", 5080);
	assert_string_equal(tag_of(m->to), "btag");
	assert_string_equal(m->cseq->number, "1");
	osip_message_free(m);
	advance(&f->sby, 500);
	osip_message_free(expect(&f->sby, "200 INVITE", 5061)); /* Timer G-like retransmission */
	caller_request(&f->sby, &a, "ACK", 1);
	advance(&f->sby, 8000);
	expect_none(&f->sby);
	hang_up(&f->sby, &a, &b, true);
	all_gone(&f->sby);
}

/* Delayed offer: the callee's ACK waits for the caller's, which brings the
 * answer SDP; the peer dies in between.  The caller's ACK, on the new
 * active, releases the callee's with that SDP. */
static void test_delayed_offer_taken_over(void **state)
{
	struct fx *f = *state;
	osip_message_t *m;
	struct uac a;
	struct uas b;

	no_offer = true;
	start_call(f, &a, &b, "t9");
	no_offer = false;
	ring_on_active(f, &a, &b);
	callee_respond(&f->act, &b, 200, "OK", SDP_B);
	osip_message_free(expect(&f->act, "200 INVITE", 5061));
	expect_none(&f->act); /* the callee's ACK waits for the caller's */

	take_over(f, &b, 0);
	osip_message_free(expect(&f->sby, "200 INVITE", 5061));
	caller_in_dialog(&f->sby, &a, "ACK", 1, SDP_A, "ackt9");
	m = expect(&f->sby, "ACK", 5080);
	assert_string_equal(body_of(m), SDP_A);
	osip_message_free(m);
	advance(&f->sby, 8000);
	expect_none(&f->sby);
	hang_up(&f->sby, &a, &b, false);
	all_gone(&f->sby);
}

/* More calls being set up than one slice (128): the takeover rebuilds the
 * first slice at once and the rest one slice per millisecond, except that
 * a message for a call not resumed yet resumes it on the spot: the caller's
 * CANCEL, the callee's answer, the caller's INVITE again. */
#define MANY 132

static void test_lazy_resume(void **state)
{
	struct fx *f = *state;
	static struct uac a[MANY];
	static struct uas b[MANY];
	char id[16];
	osip_message_t *m;

	for (int i = 0; i < MANY; i++) {
		snprintf(id, sizeof(id), "L%d", i);
		start_call(f, &a[i], &b[i], id);
		callee_respond(&f->act, &b[i], 180, "Ringing", NULL);
		osip_message_free(expect(&f->act, "180 INVITE", 5061));
	}
	assert_int_equal(calls_count(f->sby.srv.calls), MANY);
	assert_int_equal(calls_take_over(f->sby.srv.calls), MANY);
	/* One slice at once: 128 INVITEs to callees, newest calls first. */
	for (int i = MANY - 1; i >= 4; i--) {
		struct sipnode_sent *s = &f->sby.sent[f->sby.seen++];

		assert_int_equal(s->len, b[i].invite_len);
		assert_memory_equal(s->buf, b[i].invite, b[i].invite_len);
	}
	expect_none(&f->sby);

	/* Call 0: the caller cancels before its turn. */
	caller_txn(&f->sby, &a[0], "CANCEL");
	m = expect(&f->sby, "INVITE", 5080);
	assert_string_equal(callid(m), b[0].callid);
	osip_message_free(m);
	osip_message_free(expect(&f->sby, "200 CANCEL", 5061));
	osip_message_free(expect(&f->sby, "487 INVITE", 5061));
	osip_message_free(expect(&f->sby, "CANCEL", 5080));
	/* Call 1: the callee answers before its turn. */
	callee_respond(&f->sby, &b[1], 200, "OK", SDP_B);
	m = expect(&f->sby, "INVITE", 5080);
	assert_string_equal(callid(m), b[1].callid);
	osip_message_free(m);
	osip_message_free(expect(&f->sby, "ACK", 5080));
	osip_message_free(expect(&f->sby, "200 INVITE", 5061));
	/* Call 2: the caller's INVITE comes again: its call, not a new one. */
	inject(&f->sby, &a[2].peer, "%s", a[2].invite);
	osip_message_free(expect(&f->sby, "100 INVITE", 5061));
	m = expect(&f->sby, "INVITE", 5080);
	assert_string_equal(callid(m), b[2].callid);
	osip_message_free(m);
	assert_int_equal(calls_count(f->sby.srv.calls), MANY - 1);
	/* Call 3 is the next tick's. */
	advance(&f->sby, 1);
	m = expect(&f->sby, "INVITE", 5080);
	assert_string_equal(callid(m), b[3].callid);
	osip_message_free(m);
	advance(&f->sby, 5);
	expect_none(&f->sby);
}

/* The old active after a switchover: its calls being set up are the new
 * active's now.  Their transactions and timers end in silence here: a
 * timeout must not answer the caller (the new active is serving it). */
static void test_quiesce_after_demotion(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;

	start_call(f, &a, &b, "tq");
	ring_on_active(f, &a, &b);
	f->act.srv.repl.call = NULL; /* a standby now: nothing to replicate */
	calls_quiesce(f->act.srv.calls);
	assert_int_equal(txn_count(f->act.srv.txns), 0);
	advance(&f->act, 200000); /* past Timer B/C and no_answer_ms */
	expect_none(&f->act);
	assert_int_equal(calls_count(f->act.srv.calls), 1); /* kept as a replica */
}

/* A switchover: the new active took over a ringing call (its INVITE went
 * to the callee again) while the old one, still serving until it heard
 * the new one say active, got the callee's 200 and answered the caller.
 * Its records of that come late, and say the call is established: the
 * set-up resumed here ends in silence (no 480 at the no-answer timeout,
 * no INVITE retransmissions, no 408), and the call goes on here. */
static void test_answered_while_handing_over(void **state)
{
	struct fx *f = *state;
	struct uac a;
	struct uas b;

	start_call(f, &a, &b, "tl");
	ring_on_active(f, &a, &b);
	take_over(f, &b, 1);
	answered(&f->act, &a, &b); /* its records reach the new active now */
	assert_int_equal(calls_take_over(f->sby.srv.calls), 0); /* as late_record() does */
	assert_string_equal(call_state_name(only_call(&f->sby)->state), "established");
	assert_int_equal(txn_count(f->sby.srv.txns), 0);
	advance(&f->sby, NO_ANSWER_MS + 64 * 500);
	expect_none(&f->sby);
	assert_int_equal(calls_count(f->sby.srv.calls), 1);
	hang_up(&f->sby, &a, &b, true);
	all_gone(&f->sby);
}

struct swept {
	unsigned n;
	char call_id[64];
};

static void on_swept(void *arg, const struct call *c)
{
	struct swept *s = arg;

	s->n++;
	snprintf(s->call_id, sizeof(s->call_id), "%s", c->a.dlg.call_id);
}

static void test_mark_and_sweep(void **state)
{
	struct fx *f = *state;
	struct uac x, y;
	struct uas bx, by;
	struct swept s = { 0 };
	const struct call *cx = NULL, *left;

	start_call(f, &x, &bx, "t6x");
	calls_foreach(f->act.srv.calls, first_call, &cx); /* the newest is at the head */
	assert_string_equal(cx->a.dlg.call_id, x.callid);
	start_call(f, &y, &by, "t6y");
	assert_int_equal(calls_count(f->sby.srv.calls), 2);

	calls_mark_all(f->sby.srv.calls);
	journal(f, cx, false); /* the snapshot names X only */
	assert_int_equal(calls_count(f->sby.srv.calls), 2);
	assert_int_equal(calls_sweep(f->sby.srv.calls, on_swept, &s), 1);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.call_id, y.callid);
	left = only_call(&f->sby);
	assert_string_equal(left->a.dlg.call_id, x.callid);
	assert_string_equal(call_state_name(left->state), "dialing");
	expect_none(&f->sby); /* dropped without a message */
	/* a sweep with everything confirmed drops nothing */
	assert_int_equal(calls_sweep(f->sby.srv.calls, on_swept, &s), 0);
	assert_int_equal(s.n, 1);
}

/* A replica built by hand for caller A (dialog from its INVITE, tag "s" +
 * its id), with the INVITE bytes as given: not NUL-terminated, as the
 * journal carries them. */
static void upsert(struct sipnode *n, struct uac *a, const char *a_inv, size_t a_len,
		   const void *b_inv, size_t b_len)
{
	struct call_replica r = { .state = CALL_RINGING, .id = 100 };
	osip_message_t *req = NULL;
	char cid[64];

	snprintf(a->ttag, sizeof(a->ttag), "s%s", a->id);
	assert_int_equal(sipmsg_parse(a->invite, strlen(a->invite), true, &req), 0);
	assert_int_equal(dlg_init_uas(&r.a, req, a->ttag), 0);
	osip_message_free(req);
	r.a.peer = a->peer;
	snprintf(cid, sizeof(cid), "b%s@127.0.0.1", a->id);
	assert_int_equal(dlg_init_uac(&r.b, cid, "bt", "sip:alice@sipha.test", NULL,
				      "sip:3000@sipha.test", "sip:3000@10.0.0.50:5080", 1),
			 0);
	r.b.peer = udp_peer("10.0.0.50", 5080);
	r.dn = strdup("3000");
	r.from = strdup("sip:alice@sipha.test");
	r.to = strdup("sip:3000@sipha.test");
	r.a_invite = malloc(a_len);
	r.b_invite = malloc(b_len);
	assert_true(r.a_invite && r.b_invite);
	memcpy(r.a_invite, a_inv, r.a_invite_len = a_len);
	memcpy(r.b_invite, b_inv, r.b_invite_len = b_len);
	assert_int_equal(call_upsert_replica(&n->srv, &r), 0);
}

static void test_malformed_replica(void **state)
{
	static const char junk[] = { 'I', 'N', 'V', '\0', 0x7f, '\r', '\n', 'x', ':', ' ' };
	static const char bad_a[] = "SIP/2.0 INVITE junk\r\n\r\n";
	struct fx *f = *state;
	struct uac a1, a2, a3;
	osip_message_t *m;

	/* the caller's INVITE good, ours to the callee garbage */
	caller_invite(NULL, &a1, "t7a");
	upsert(&f->sby, &a1, a1.invite, strlen(a1.invite), junk, sizeof(junk));
	/* garbage both ways */
	caller_invite(NULL, &a2, "t7b");
	upsert(&f->sby, &a2, bad_a, sizeof(bad_a) - 1, "\x01\x02\x03", 3);
	/* the caller's INVITE good, ours cut short */
	caller_invite(NULL, &a3, "t7c");
	upsert(&f->sby, &a3, a3.invite, strlen(a3.invite), a1.invite, 40);
	assert_int_equal(calls_count(f->sby.srv.calls), 3);

	/* All three are queued for resumption, and each fails. */
	assert_int_equal(calls_take_over(f->sby.srv.calls), 3);
	assert_int_equal(calls_count(f->sby.srv.calls), 0);
	/* 500 for each good caller's INVITE, newest first (the table's order);
	 * the callee hears nothing */
	m = expect(&f->sby, "500 INVITE", 5061);
	assert_string_equal(callid(m), a3.callid);
	assert_string_equal(tag_of(m->to), a3.ttag);
	osip_message_free(m);
	m = expect(&f->sby, "500 INVITE", 5061);
	assert_string_equal(callid(m), a1.callid);
	assert_string_equal(tag_of(m->to), a1.ttag);
	osip_message_free(m);
	expect_none(&f->sby);
	caller_txn(&f->sby, &a1, "ACK");
	caller_txn(&f->sby, &a3, "ACK");
	all_gone(&f->sby);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dialing_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ringing_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_after_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_answer_after_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_established_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answered_unacked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delayed_offer_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_after_demotion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answered_while_handing_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_and_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_replica, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
