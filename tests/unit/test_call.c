/* B2BUA call flows driven through srv_rx() with synthetic messages, a fake
 * clock and a send function that captures what sipha sends: B-leg header
 * rewriting, dialog matching and every flow of the call engine. */
#include "sipnode.h"

static const char *conf = "[node]\n"
			  "id = t\n"
			  "[sip]\n"
			  "listen = 127.0.0.1:5060\n"
			  "domain = sipha.test\n"
			  "no_answer_ms = 20000\n"
			  "[control]\n"
			  "socket = /tmp/sipha-test-call.sock\n"
			  "[dn]\n"
			  "1001 = extension\n"
			  "2000 = routing-point\n"
			  "3000 = sip:10.0.0.50:5080\n";

static int setup(void **state)
{
	struct sipnode *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	sipnode_init(f, conf);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sipnode *f = *state;

	sipnode_fini(f);
	free(f);
	return 0;
}

static const char *hdr(osip_message_t *m, const char *name)
{
	osip_header_t *h = NULL;

	if (osip_message_header_get_byname(m, name, 0, &h) >= 0 && h)
		return h->hvalue;
	return NULL;
}

static void send_invite(struct sipnode *f, struct uac *a, const char *dn, const char *sdp)
{
	a->peer = udp_peer("10.0.0.1", 5061);
	snprintf(a->callid, sizeof(a->callid), "a-%u@10.0.0.1", f->nsent);
	snprintf(a->ftag, sizeof(a->ftag), "ftag%u", f->nsent);
	a->cseq = 1;
	inject(f, &a->peer,
	       "INVITE sip:%s@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%s\r\n"
	       "Max-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:%s@sipha.test>\r\n"
	       "Call-ID: %s\r\n"
	       "CSeq: 1 INVITE\r\n"
	       "Contact: <sip:alice@10.0.0.1:5061>\r\n"
	       "%s"
	       "Content-Length: %zu\r\n\r\n%s",
	       dn, a->ftag, a->ftag, dn, a->callid, sdp ? "Content-Type: application/sdp\r\n" : "",
	       sdp ? strlen(sdp) : 0, sdp ? sdp : "");
}

/* Takes sipha's 100 Trying to A and the INVITE to B, checks the B-leg
 * rewriting, and records what the callee needs. */
static void expect_b_invite(struct sipnode *f, struct uac *a, struct uas *b, const char *ruri,
			    const char *sdp)
{
	struct sip_peer to;
	osip_message_t *m = take(f, &to);
	char *s = NULL;

	assert_non_null(m);
	assert_int_equal(m->status_code, 100);
	osip_message_free(m);
	m = take(f, &to);
	assert_non_null(m);
	assert_string_equal(m->sip_method, "INVITE");
	osip_uri_to_str(m->req_uri, &s);
	assert_string_equal(s, ruri);
	osip_free(s);
	/* sipha's own Call-ID, From tag and branch; caller's identity kept */
	assert_string_not_equal(callid(m), a->callid);
	assert_non_null(tag_of(m->from));
	assert_string_not_equal(tag_of(m->from), a->ftag);
	assert_null(tag_of(m->to));
	assert_string_equal(m->from->url->username, "alice");
	assert_string_equal(m->to->url->username, ruri[4] == '3' ? "3000" : m->to->url->username);
	assert_true(strncmp(branch_of(m), "z9hG4bK", 7) == 0);
	assert_string_not_equal(branch_of(m), "z9hG4bKa");
	/* every Via and Contact sipha writes names its advertised address */
	osip_via_t *v = NULL;
	osip_contact_t *c = NULL;

	osip_message_get_via(m, 0, &v);
	assert_string_equal(v->host, "127.0.0.1");
	assert_string_equal(v->port, "5060");
	assert_int_equal(osip_list_size(&m->vias), 1); /* A's Via does not leak */
	assert_int_equal(osip_message_get_contact(m, 0, &c), 0);
	assert_string_equal(c->url->host, "127.0.0.1");
	assert_string_equal(hdr(m, "max-forwards") ? hdr(m, "max-forwards") : "69", "69");
	/* SDP untouched */
	if (sdp)
		assert_string_equal(body_of(m), sdp);
	else
		assert_null(body_of(m));
	b->peer = to;
	snprintf(b->invite, sizeof(b->invite), "%s", last_sent(f));
	snprintf(b->callid, sizeof(b->callid), "%s", callid(m));
	snprintf(b->ftag, sizeof(b->ftag), "%s", tag_of(m->from));
	snprintf(b->via, sizeof(b->via), "SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport",
		 branch_of(m));
	s = NULL;
	osip_uri_to_str(m->req_uri, &s);
	snprintf(b->ruri, sizeof(b->ruri), "%s", s);
	osip_free(s);
	b->cseq = 1;
	osip_message_free(m);
}

static osip_message_t *expect_response(struct sipnode *f, int code, const char *method)
{
	char what[64];

	snprintf(what, sizeof(what), "%d %s", code, method);
	return expect_msg(f, what, NULL);
}

static osip_message_t *expect_request(struct sipnode *f, const char *method, struct sip_peer *to)
{
	return expect_msg(f, method, to);
}

static void a_ack(struct sipnode *f, struct uac *a)
{
	caller_in_dialog(f, a, "ACK", 1, NULL, "ack%s", a->ftag);
}

static void a_request(struct sipnode *f, struct uac *a, const char *method)
{
	a->cseq++;
	caller_in_dialog(f, a, method, a->cseq, NULL, "%s%d", method, a->cseq);
}

static void b_request(struct sipnode *f, struct uas *b, const char *method)
{
	b->cseq++;
	callee_in_dialog(f, b, method, b->cseq, "b%s%d", method, b->cseq);
}

/* Answers an in-dialog request M that sipha sent to the callee. */
static void b_answer(struct sipnode *f, struct uas *b, osip_message_t *m, int code)
{
	osip_via_t *v = NULL;
	char *via = NULL;

	osip_message_get_via(m, 0, &v);
	osip_via_to_str(v, &via);
	inject(f, &b->peer,
	       "SIP/2.0 %d OK\r\n"
	       "Via: %s\r\n"
	       "From: <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:3000@sipha.test>;tag=btag\r\n"
	       "Call-ID: %s\r\n"
	       "CSeq: %s %s\r\n"
	       "Content-Length: 0\r\n\r\n",
	       code, via, b->ftag, b->callid, m->cseq->number, m->cseq->method);
	osip_free(via);
}

static void establish(struct sipnode *f, struct uac *a, struct uas *b)
{
	osip_message_t *m;

	send_invite(f, a, "3000", SDP_A);
	expect_b_invite(f, a, b, "sip:3000@10.0.0.50:5080", SDP_A);
	callee_respond(f, b, 180, "Ringing", NULL);
	m = expect_response(f, 180, "INVITE");
	assert_string_equal(callid(m), a->callid);
	snprintf(a->ttag, sizeof(a->ttag), "%s", tag_of(m->to));
	assert_string_not_equal(a->ttag, "btag"); /* B's tag stays on the B leg */
	osip_message_free(m);
	assert_string_equal(call_state_name(only_call(f)->state), "ringing");

	callee_respond(f, b, 200, "OK", SDP_B);
	/* ACK to B (offer was in the INVITE), then the 200 to A */
	m = expect_request(f, "ACK", NULL);
	assert_string_equal(callid(m), b->callid);
	assert_string_equal(tag_of(m->to), "btag");
	assert_string_equal(m->cseq->number, "1");
	osip_message_free(m);
	m = expect_response(f, 200, "INVITE");
	assert_string_equal(tag_of(m->to), a->ttag);
	assert_string_equal(body_of(m), SDP_B);
	osip_message_free(m);
	assert_string_equal(call_state_name(only_call(f)->state), "established");
	a_ack(f, a);
	expect_none(f);
}

/* A call, then the caller's BYE, relayed to the callee, which answers CODE:
 * the caller hears 200 whatever it is, and nothing is left after every
 * timer. */
static void caller_hangs_up(struct sipnode *f, int code)
{
	struct uac a;
	struct uas b;
	struct sip_peer to;
	osip_message_t *m;

	establish(f, &a, &b);
	a_request(f, &a, "BYE");
	m = expect_request(f, "BYE", &to);
	assert_string_equal(callid(m), b.callid);
	assert_string_equal(tag_of(m->from), b.ftag);
	assert_string_equal(tag_of(m->to), "btag");
	assert_string_equal(m->cseq->number, "2");
	assert_string_equal(m->req_uri->host, "10.0.0.50"); /* B's Contact */
	b_answer(f, &b, m, code);
	osip_message_free(m);
	m = expect_response(f, 200, "BYE");
	assert_string_equal(callid(m), a.callid);
	osip_message_free(m);
	assert_int_equal(calls_count(f->srv.calls), 0);
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_basic_call_bye_from_caller(void **state)
{
	caller_hangs_up(*state, 200);
}

/* The other side no longer knows the dialog (481) or never answers (408):
 * the BYE still ends this side's dialog with sipha, which answers 200
 * (§15.1.2: the session ends whatever the BYE's response). */
static void test_bye_other_side_gone(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	struct sip_peer to;
	osip_message_t *m;

	caller_hangs_up(f, 481);
	establish(f, &a, &b);
	a_request(f, &a, "BYE");
	osip_message_free(expect_request(f, "BYE", &to));
	advance(f, 32000); /* Timer F: the callee never answers */
	while ((m = take(f, &to)) && MSG_IS_REQUEST(m))
		osip_message_free(m); /* the BYE's retransmissions */
	assert_non_null(m);
	assert_int_equal(m->status_code, 200);
	assert_string_equal(m->cseq->method, "BYE");
	osip_message_free(m);
	assert_int_equal(calls_count(f->srv.calls), 0);
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_bye_from_callee(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	struct sip_peer to;
	osip_message_t *m;

	establish(f, &a, &b);
	b_request(f, &b, "BYE");
	m = expect_request(f, "BYE", &to);
	assert_string_equal(callid(m), a.callid);
	assert_string_equal(tag_of(m->from), a.ttag);
	assert_string_equal(tag_of(m->to), a.ftag);
	assert_string_equal(m->req_uri->host, "10.0.0.1"); /* A's Contact */
	inject(f, &a.peer,
	       "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=%s\r\n"
	       "From: <sip:3000@sipha.test>;tag=%s\r\nTo: <sip:alice@sipha.test>;tag=%s\r\n"
	       "Call-ID: %s\r\nCSeq: %s BYE\r\nContent-Length: 0\r\n\r\n",
	       branch_of(m), a.ttag, a.ftag, a.callid, m->cseq->number);
	osip_message_free(m);
	m = expect_response(f, 200, "BYE");
	assert_string_equal(callid(m), b.callid);
	osip_message_free(m);
	assert_int_equal(calls_count(f->srv.calls), 0);
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_cancel_before_answer(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	send_invite(f, &a, "3000", SDP_A);
	expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
	callee_respond(f, &b, 180, "Ringing", NULL);
	osip_message_free(expect_response(f, 180, "INVITE"));
	inject(f, &a.peer,
	       "CANCEL sip:3000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%s\r\n"
	       "Max-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:3000@sipha.test>\r\n"
	       "Call-ID: %s\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
	       a.ftag, a.ftag, a.callid);
	osip_message_free(expect_response(f, 200, "CANCEL"));
	osip_message_free(expect_response(f, 487, "INVITE"));
	m = expect_request(f, "CANCEL", NULL);
	/* same branch, Call-ID and CSeq number as the INVITE it cancels */
	assert_string_equal(callid(m), b.callid);
	assert_string_equal(m->cseq->number, "1");
	assert_non_null(strstr(b.via, branch_of(m)));
	b_answer(f, &b, m, 200);
	osip_message_free(m);
	assert_int_equal(calls_count(f->srv.calls), 0);
	callee_respond(f, &b, 487, "Request Terminated", NULL);
	m = expect_request(f, "ACK", NULL); /* the ICT ACKs the 487 */
	assert_non_null(strstr(b.via, branch_of(m)));
	osip_message_free(m);
	expect_none(f);
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_busy_relayed(void **state)
{
	static const int codes[] = { 486, 603, 404 };
	struct sipnode *f = *state;

	for (unsigned i = 0; i < 3; i++) {
		struct uac a;
		struct uas b;

		send_invite(f, &a, "3000", SDP_A);
		expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
		callee_respond(f, &b, codes[i], "No", NULL);
		osip_message_free(expect_request(f, "ACK", NULL));
		osip_message_free(expect_response(f, codes[i], "INVITE"));
		assert_int_equal(calls_count(f->srv.calls), 0);
		/* the caller ACKs our error inside the transaction */
		a_ack(f, &a);
		expect_none(f);
	}
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_routing_failures(void **state)
{
	struct sipnode *f = *state;
	struct uac a;

	send_invite(f, &a, "9999", SDP_A); /* unknown DN */
	osip_message_free(expect_response(f, 404, "INVITE"));
	send_invite(f, &a, "1001", SDP_A); /* extension, nobody registered */
	osip_message_free(expect_response(f, 480, "INVITE"));
	/* (a routing point queues the call: test_queue.c) */
	expect_none(f);
	assert_int_equal(calls_count(f->srv.calls), 0);
}

static void test_accept_without_sdp_406(void **state)
{
	struct sipnode *f = *state;
	struct sip_peer p = udp_peer("10.0.0.1", 5061);
	osip_message_t *m;
	osip_accept_t *acc = NULL;

	inject(f, &p,
	       "INVITE sip:3000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKacc\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:alice@sipha.test>;tag=f\r\n"
	       "To: <sip:3000@sipha.test>\r\nCall-ID: acc@x\r\nCSeq: 1 INVITE\r\n"
	       "Accept: text/nobodyKnowsThis\r\nContent-Length: 0\r\n\r\n");
	m = expect_response(f, 406, "INVITE");
	assert_int_equal(osip_message_get_accept(m, 0, &acc), 0);
	assert_string_equal(acc->subtype, "sdp");
	osip_message_free(m);
	expect_none(f);
	assert_int_equal(calls_count(f->srv.calls), 0);
	/* application/sdp among others is fine */
	inject(f, &p,
	       "INVITE sip:3000@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKacc2\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:alice@sipha.test>;tag=f\r\n"
	       "To: <sip:3000@sipha.test>\r\nCall-ID: acc2@x\r\nCSeq: 1 INVITE\r\n"
	       "Accept: text/plain, application/sdp\r\nContent-Length: 0\r\n\r\n");
	osip_message_free(expect_response(f, 100, "INVITE"));
	osip_message_free(expect_request(f, "INVITE", NULL));
}

static void test_registered_extension(void **state)
{
	struct sipnode *f = *state;
	struct sip_peer ua = udp_peer("10.0.0.9", 5070), to;
	struct uac a;
	struct uas b;

	inject(f, &ua,
	       "REGISTER sip:sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKreg1\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:1001@sipha.test>;tag=r1\r\n"
	       "To: <sip:1001@sipha.test>\r\nCall-ID: reg1\r\nCSeq: 1 REGISTER\r\n"
	       "Contact: <sip:1001@10.0.0.9:5070>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n");
	osip_message_free(expect_response(f, 200, "REGISTER"));
	send_invite(f, &a, "1001", SDP_A);
	expect_b_invite(f, &a, &b, "sip:1001@10.0.0.9:5070", SDP_A);
	to = b.peer;
	assert_int_equal(((struct sockaddr_in *)&to.addr)->sin_port, htons(5070));
	assert_string_equal(call_state_name(only_call(f)->state), "dialing");
	assert_int_equal(call_dev_state(f->srv.calls, "1001"), DEV_RINGING);
}

static void test_no_answer(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	send_invite(f, &a, "3000", SDP_A);
	expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
	callee_respond(f, &b, 180, "Ringing", NULL);
	osip_message_free(expect_response(f, 180, "INVITE"));
	advance(f, 19999);
	expect_none(f);
	advance(f, 1);
	osip_message_free(expect_response(f, 480, "INVITE"));
	assert_int_equal(calls_count(f->srv.calls), 0);
	m = expect_request(f, "CANCEL", NULL);
	b_answer(f, &b, m, 200);
	osip_message_free(m);
	callee_respond(f, &b, 487, "Request Terminated", NULL);
	osip_message_free(expect_request(f, "ACK", NULL));
	expect_none(f);
}

static void test_no_answer_before_provisional(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	send_invite(f, &a, "3000", SDP_A);
	expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
	/* Timer A retransmissions until the no-answer timer (20 s) */
	for (int i = 0; i < 5; i++) {
		advance(f, 500u << i);
		osip_message_free(expect_request(f, "INVITE", NULL));
	}
	advance(f, 20000 - 15500);
	osip_message_free(expect_response(f, 480, "INVITE"));
	expect_none(f);
	assert_int_equal(calls_count(f->srv.calls), 0);
	/* the callee's late 180 is met with the CANCEL that had to wait */
	callee_respond(f, &b, 180, "Ringing", NULL);
	m = expect_request(f, "CANCEL", NULL);
	b_answer(f, &b, m, 200);
	osip_message_free(m);
	callee_respond(f, &b, 487, "Request Terminated", NULL);
	osip_message_free(expect_request(f, "ACK", NULL));
	expect_none(f);
	advance(f, 64000);
	assert_int_equal(txn_count(f->srv.txns), 0);
}

static void test_callee_silent_timer_b(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	unsigned retx = 0;
	osip_message_t *m;
	int code;

	/* with the no-answer timer past Timer B (64*T1 = 32 s) */
	f->cfg.sip.no_answer_ms = 40000;
	send_invite(f, &a, "3000", SDP_A);
	expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
	/* Timer A retransmits the INVITE until Timer B (64*T1) gives up */
	for (int i = 0; i < 320; i++) {
		advance(f, 100);
		while ((m = take(f, NULL))) {
			if (m->sip_method && !strcmp(m->sip_method, "INVITE")) {
				retx++;
				osip_message_free(m);
				continue;
			}
			code = m->status_code;
			osip_message_free(m);
			if (code != 408)
				fail_msg("expected 408 from Timer B, got %d", code);
			goto done;
		}
	}
	fail_msg("no 408 after Timer B");
done:
	assert_int_equal(retx, 6); /* at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s */
	assert_int_equal(calls_count(f->srv.calls), 0);
}

static void test_2xx_retransmitted_until_ack(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	send_invite(f, &a, "3000", SDP_A);
	expect_b_invite(f, &a, &b, "sip:3000@10.0.0.50:5080", SDP_A);
	callee_respond(f, &b, 200, "OK", SDP_B);
	osip_message_free(expect_request(f, "ACK", NULL));
	m = expect_response(f, 200, "INVITE");
	snprintf(a.ttag, sizeof(a.ttag), "%s", tag_of(m->to));
	osip_message_free(m);
	advance(f, 500);
	osip_message_free(expect_response(f, 200, "INVITE"));
	advance(f, 1000);
	osip_message_free(expect_response(f, 200, "INVITE"));
	/* B retransmits its 200: sipha's ACK is sent again, A hears nothing new */
	callee_respond(f, &b, 200, "OK", SDP_B);
	osip_message_free(expect_request(f, "ACK", NULL));
	expect_none(f);
	a_ack(f, &a);
	advance(f, 10000);
	expect_none(f);
	assert_string_equal(call_state_name(only_call(f)->state), "established");
}

static void test_reinvite_relayed(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m;

	establish(f, &a, &b);
	a.cseq++;
	inject(f, &a.peer,
	       "INVITE sip:sipha@127.0.0.1:5060 SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKre%s\r\n"
	       "Max-Forwards: 70\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:3000@sipha.test>;tag=%s\r\n"
	       "Call-ID: %s\r\nCSeq: %d INVITE\r\n"
	       "Contact: <sip:alice@10.0.0.1:5061>\r\n"
	       "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
	       a.ftag, a.ftag, a.ttag, a.callid, a.cseq, strlen(SDP_A), SDP_A);
	m = expect_request(f, "INVITE", NULL);
	assert_string_equal(callid(m), b.callid);
	assert_string_equal(tag_of(m->to), "btag");
	assert_string_equal(m->cseq->number, "2");
	assert_string_equal(body_of(m), SDP_A);
	inject(f, &b.peer,
	       "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport\r\n"
	       "From: <sip:alice@sipha.test>;tag=%s\r\nTo: <sip:3000@sipha.test>;tag=btag\r\n"
	       "Call-ID: %s\r\nCSeq: 2 INVITE\r\nContact: <sip:bob@10.0.0.50:5080>\r\n"
	       "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
	       branch_of(m), b.ftag, b.callid, strlen(SDP_B), SDP_B);
	osip_message_free(m);
	m = expect_request(f, "ACK", NULL);
	assert_string_equal(m->cseq->number, "2");
	osip_message_free(m);
	m = expect_response(f, 200, "INVITE");
	assert_string_equal(body_of(m), SDP_B);
	assert_string_equal(callid(m), a.callid);
	osip_message_free(m);
	assert_string_equal(call_state_name(only_call(f)->state), "established");
}

static void test_unknown_dialog_481(void **state)
{
	struct sipnode *f = *state;
	struct uac a = { .peer = udp_peer("10.0.0.1", 5061) };

	snprintf(a.callid, sizeof(a.callid), "nosuch@x");
	snprintf(a.ftag, sizeof(a.ftag), "f");
	snprintf(a.ttag, sizeof(a.ttag), "t");
	a_request(f, &a, "BYE");
	osip_message_free(expect_response(f, 481, "BYE"));
	a_request(f, &a, "INFO");
	osip_message_free(expect_response(f, 481, "INFO"));
	expect_none(f);
}

static void test_bye_crossing(void **state)
{
	struct sipnode *f = *state;
	struct uac a;
	struct uas b;
	osip_message_t *m, *bye_to_b;

	establish(f, &a, &b);
	a_request(f, &a, "BYE");
	bye_to_b = expect_request(f, "BYE", NULL);
	/* B hangs up at the same moment: answered locally, not relayed */
	b_request(f, &b, "BYE");
	osip_message_free(expect_response(f, 200, "BYE"));
	expect_none(f);
	b_answer(f, &b, bye_to_b, 200);
	osip_message_free(bye_to_b);
	m = expect_response(f, 200, "BYE");
	assert_string_equal(callid(m), a.callid);
	osip_message_free(m);
	assert_int_equal(calls_count(f->srv.calls), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic_call_bye_from_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bye_other_side_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bye_from_callee, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_before_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_relayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_without_sdp_406, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registered_extension, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_answer_before_provisional, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callee_silent_timer_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_2xx_retransmitted_until_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinvite_relayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_dialog_481, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bye_crossing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
