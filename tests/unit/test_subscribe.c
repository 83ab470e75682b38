/* The dialog event package (RFC 4235 over RFC 6665) through srv_rx() with a
 * fake clock: SUBSCRIBE to an extension, the NOTIFY at once and at every
 * device change (registration, a call ringing, answered, ended), refresh,
 * unsubscribe, expiry, refusals; then a subscription replicated to a
 * standby that takes over and notifies with the next version. */
#include <errno.h>

#include "cc/cc.h"
#include "ha/journal.h"
#include "ha/replica.h"
#include "server/subscribe.h"
#include "sipnode.h"

#define CONF_FMT                                                                  \
	"[node]\nid = %s\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n"  \
	"no_answer_ms = 20000\n[control]\nsocket = /tmp/sipha-test-sub-%s.sock\n" \
	"[dn]\n1001 = extension\n1002 = extension\n2000 = routing-point\n"

struct fx {
	struct sipnode act, sby;
	struct jr_buf jb;
	uint64_t seq;
	bool ha;
	struct sip_peer phone; /* the subscriber, 10.0.0.9:5070 */
	char callid[64], ftag[32], ttag[64];
	int cseq;
};

static void to_standby(struct fx *f)
{
	sipnode_apply_record(&f->sby, &f->jb);
}

static void journal_sub(void *arg, const struct sub *s, bool gone)
{
	struct fx *f = arg;

	assert_int_equal(rep_sub_encode(&f->jb, ++f->seq, s, gone ? JR_OP_DELETE : JR_OP_UPSERT,
					f->act.tw.now),
			 0);
	to_standby(f);
}

static void node_init(struct sipnode *n, const char *id)
{
	char text[512];

	snprintf(text, sizeof(text), CONF_FMT, id, id);
	sipnode_init(n, text);
}

static int setup_with(void **state, bool ha)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	jr_buf_init(&f->jb);
	node_init(&f->act, "a");
	f->phone = udp_peer("10.0.0.9", 5070);
	if (ha) {
		f->ha = true;
		node_init(&f->sby, "b");
		srv_ha_state(&f->sby.srv, false);
		f->act.srv.repl.sub = journal_sub;
		f->act.srv.repl.arg = f;
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, false);
}

static int setup_ha(void **state)
{
	return setup_with(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	f->act.srv.repl.sub = NULL;
	sipnode_fini(&f->act);
	if (f->ha)
		sipnode_fini(&f->sby);
	jr_buf_free(&f->jb);
	free(f);
	return 0;
}

static const char *hdr(osip_message_t *m, const char *name)
{
	osip_header_t *h = NULL;

	return osip_message_header_get_byname(m, name, 0, &h) >= 0 && h ? h->hvalue : NULL;
}

/* The phone's SUBSCRIBE to DN (initial when f->ttag is empty). */
static void subscribe(struct sipnode *n, struct fx *f, const char *dn, const char *event,
		      const char *expires)
{
	char exp[64] = "";

	if (expires)
		snprintf(exp, sizeof(exp), "Expires: %s\r\n", expires);
	f->cseq++;
	inject(n, &f->phone,
	       "SUBSCRIBE sip:%s@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKs%d%s\r\nMax-Forwards: 70\r\n"
	       "From: <sip:phone@sipha.test>;tag=%s\r\nTo: <sip:%s@sipha.test>%s%s\r\n"
	       "Call-ID: %s\r\nCSeq: %d SUBSCRIBE\r\nContact: <sip:phone@10.0.0.9:5070>\r\n"
	       "%s%s%s%sAccept: application/dialog-info+xml\r\nContent-Length: 0\r\n\r\n",
	       dn, f->cseq, f->ftag, f->ftag, dn, f->ttag[0] ? ";tag=" : "", f->ttag, f->callid,
	       f->cseq, event ? "Event: " : "", event ? event : "", event ? "\r\n" : "", exp);
}

/* The NOTIFY sipha sends the phone: its version and state, answered CODE. */
static void expect_notify(struct sipnode *n, struct fx *f, unsigned version, const char *state,
			  const char *sub_state, int code)
{
	struct sip_peer to;
	osip_message_t *m = expect_msg(n, "NOTIFY", &to);
	char want[64], *via = NULL;
	const char *body = body_of(m);
	osip_via_t *v = NULL;

	assert_int_equal(port_of(&to), 5070);
	assert_string_equal(callid(m), f->callid);
	assert_string_equal(tag_of(m->to), f->ftag);
	assert_string_equal(tag_of(m->from), f->ttag);
	assert_string_equal(hdr(m, "event"), "dialog");
	assert_non_null(strstr(hdr(m, "subscription-state"), sub_state));
	assert_non_null(body);
	snprintf(want, sizeof(want), "version=\"%u\"", version);
	if (!strstr(body, want))
		fail_msg("want %s in:\n%s", want, body);
	assert_non_null(strstr(body, "state=\"full\""));
	assert_non_null(strstr(body, "entity=\"sip:1001@sipha.test\""));
	if (state) {
		snprintf(want, sizeof(want), "<state>%s</state>", state);
		if (!strstr(body, want))
			fail_msg("want %s in:\n%s", want, body);
	} else {
		assert_null(strstr(body, "<dialog "));
	}
	osip_message_get_via(m, 0, &v);
	osip_via_to_str(v, &via);
	inject(n, &to,
	       "SIP/2.0 %d X\r\nVia: %s\r\nFrom: <sip:1001@sipha.test>;tag=%s\r\n"
	       "To: <sip:phone@sipha.test>;tag=%s\r\nCall-ID: %s\r\nCSeq: %s NOTIFY\r\n"
	       "Content-Length: 0\r\n\r\n",
	       code, via, f->ttag, f->ftag, f->callid, m->cseq->number);
	osip_free(via);
	osip_message_free(m);
}

/* An initial subscription to 1001: 200 with our tag, then the first NOTIFY. */
static void start(struct sipnode *n, struct fx *f, const char *id)
{
	osip_message_t *m;

	snprintf(f->callid, sizeof(f->callid), "%s@10.0.0.9", id);
	snprintf(f->ftag, sizeof(f->ftag), "p%s", id);
	f->ttag[0] = '\0';
	f->cseq = 0;
	subscribe(n, f, "1001", "dialog", NULL);
	m = expect_msg(n, "200 SUBSCRIBE", NULL);
	assert_string_equal(hdr(m, "expires"), "3600");
	assert_string_equal(hdr(m, "allow-events"), "dialog");
	snprintf(f->ttag, sizeof(f->ttag), "%s", tag_of(m->to));
	osip_message_free(m);
}

static void register_1001(struct sipnode *n, const char *expires)
{
	struct sip_peer p = udp_peer("10.0.0.20", 5090);

	inject(n, &p,
	       "REGISTER sip:sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.20:5090;branch=z9hG4bKr%s\r\nMax-Forwards: 70\r\n"
	       "From: <sip:1001@sipha.test>;tag=r1\r\nTo: <sip:1001@sipha.test>\r\n"
	       "Call-ID: reg1001@10.0.0.20\r\nCSeq: %s REGISTER\r\n"
	       "Contact: <sip:1001@10.0.0.20:5090>\r\nExpires: %s\r\nContent-Length: 0\r\n\r\n",
	       expires, expires[0] == '0' ? "2" : "1", expires);
	/* Its 200 goes after the NOTIFY the change makes, if any: take the 200
	 * out of the order, the NOTIFY stays for the test to check. */
	for (unsigned i = n->seen; i < n->nsent; i++) {
		if (strncmp(n->sent[i].buf, "SIP/2.0 200", 11) ||
		    !strstr(n->sent[i].buf, "REGISTER"))
			continue;
		free(n->sent[i].buf);
		memmove(&n->sent[i], &n->sent[i + 1], (n->nsent - i - 1) * sizeof(n->sent[0]));
		n->nsent--;
		return;
	}
	fail_msg("no 200 to the REGISTER");
}

static void test_dialog_info_body(void **state)
{
	char *b;

	(void)state;
	b = sub_dialog_info("sip:1001@x", "1001", 7, CC_DEV_RINGING);
	assert_non_null(strstr(b, "version=\"7\""));
	assert_non_null(strstr(b, "<dialog id=\"1001\" direction=\"recipient\">"));
	assert_non_null(strstr(b, "<state>early</state>"));
	assert_non_null(strstr(b, "xmlns=\"urn:ietf:params:xml:ns:dialog-info\""));
	free(b);
	b = sub_dialog_info("sip:1001@x", "1001", 0, CC_DEV_BUSY);
	assert_non_null(strstr(b, "<state>confirmed</state>"));
	free(b);
	b = sub_dialog_info("sip:a&b<c>@x", "a&b\"", 1, CC_DEV_IDLE);
	assert_non_null(strstr(b, "entity=\"sip:a&amp;b&lt;c&gt;@x\""));
	assert_null(strstr(b, "<dialog "));
	free(b);
}

/* Busy-lamp through a whole call: registered (idle), rung (early),
 * answered (confirmed), hung up (no dialog). */
static void test_notify_through_a_call(void **state)
{
	struct fx *f = *state;
	struct sipnode *n = &f->act;
	struct uac a = { 0 };
	struct uas b = { 0 };
	struct sip_peer to;
	osip_message_t *m;

	start(n, f, "s1");
	expect_notify(n, f, 0, NULL, "active;expires=3600", 200);
	register_1001(n, "3600");
	expect_notify(n, f, 1, NULL, "active", 200); /* unregistered -> idle */

	a.peer = udp_peer("10.0.0.1", 5061);
	inject(n, &a.peer,
	       "INVITE sip:1001@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKc1\r\nMax-Forwards: 70\r\n"
	       "From: <sip:alice@sipha.test>;tag=fa\r\nTo: <sip:1001@sipha.test>\r\n"
	       "Call-ID: c1@10.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:5061>\r\n"
	       "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
	       strlen(SDP_A), SDP_A);
	osip_message_free(expect_msg(n, "100 INVITE", NULL));
	m = expect_msg(n, "INVITE", &to);
	b.peer = to;
	snprintf(b.callid, sizeof(b.callid), "%s", callid(m));
	snprintf(b.ftag, sizeof(b.ftag), "%s", tag_of(m->from));
	snprintf(b.via, sizeof(b.via), "SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport", branch_of(m));
	osip_message_free(m);
	expect_notify(n, f, 2, "early", "active", 200); /* dialing: the phone alerts */
	callee_respond(n, &b, 180, "Ringing", NULL);
	osip_message_free(expect_msg(n, "180 INVITE", NULL)); /* still early: no NOTIFY */
	expect_none(n);
	callee_respond(n, &b, 200, "OK", SDP_B);
	osip_message_free(expect_msg(n, "ACK", NULL));
	osip_message_free(expect_msg(n, "200 INVITE", NULL));
	expect_notify(n, f, 3, "confirmed", "active", 200);
	/* The callee hangs up; sipha relays the BYE, alice answers it. */
	callee_in_dialog(n, &b, "BYE", 2, "bye1");
	m = expect_msg(n, "BYE", &to);
	{
		osip_message_t *r = NULL;
		char *buf = NULL;
		size_t len;

		assert_int_equal(sipmsg_response(m, 200, "OK", NULL, &r), 0);
		assert_int_equal(sipmsg_to_str(r, &buf, &len), 0);
		srv_rx(&n->srv, &to, buf, len);
		free(buf);
		osip_message_free(r);
	}
	osip_message_free(m);
	osip_message_free(expect_msg(n, "200 BYE", NULL)); /* to the callee */
	expect_notify(n, f, 4, NULL, "active", 200);
}

static void test_refresh_unsubscribe_and_refusals(void **state)
{
	struct fx *f = *state;
	struct sipnode *n = &f->act;
	osip_message_t *m;

	start(n, f, "s2");
	expect_notify(n, f, 0, NULL, "active", 200);
	/* Refresh in the dialog: 200 with the new Expires, and a NOTIFY. */
	subscribe(n, f, "1001", "dialog", "600");
	m = expect_msg(n, "200 SUBSCRIBE", NULL);
	assert_string_equal(hdr(m, "expires"), "600");
	osip_message_free(m);
	expect_notify(n, f, 1, NULL, "active;expires=600", 200);
	/* Too brief: 423 with Min-Expires, the subscription unchanged. */
	subscribe(n, f, "1001", "dialog", "5");
	m = expect_msg(n, "423 SUBSCRIBE", NULL);
	assert_string_equal(hdr(m, "min-expires"), "60");
	osip_message_free(m);
	expect_none(n);
	/* Unsubscribe: 200, and a last NOTIFY saying terminated. */
	subscribe(n, f, "1001", "dialog", "0");
	osip_message_free(expect_msg(n, "200 SUBSCRIBE", NULL));
	expect_notify(n, f, 2, NULL, "terminated", 200);
	assert_int_equal(subs_count(n->srv.subs), 0);
	/* Now unknown: a refresh gets 481. */
	subscribe(n, f, "1001", "dialog", "600");
	osip_message_free(expect_msg(n, "481 SUBSCRIBE", NULL));

	/* Refusals of initial SUBSCRIBEs. */
	f->ttag[0] = '\0';
	snprintf(f->callid, sizeof(f->callid), "s3@10.0.0.9");
	subscribe(n, f, "1001", "presence", NULL);
	m = expect_msg(n, "489 SUBSCRIBE", NULL);
	assert_string_equal(hdr(m, "allow-events"), "dialog");
	osip_message_free(m);
	subscribe(n, f, "1001", NULL, NULL); /* no Event at all */
	osip_message_free(expect_msg(n, "489 SUBSCRIBE", NULL));
	subscribe(n, f, "2000", "dialog", NULL); /* a routing point has no device */
	osip_message_free(expect_msg(n, "404 SUBSCRIBE", NULL));
	subscribe(n, f, "9999", "dialog", NULL);
	osip_message_free(expect_msg(n, "404 SUBSCRIBE", NULL));
	subscribe(n, f, "1001", "dialog", "abc");
	osip_message_free(expect_msg(n, "400 SUBSCRIBE", NULL));
	expect_none(n);
	assert_int_equal(subs_count(n->srv.subs), 0);
}

static void test_expiry_and_481(void **state)
{
	struct fx *f = *state;
	struct sipnode *n = &f->act;

	start(n, f, "s4");
	expect_notify(n, f, 0, NULL, "active", 200);
	subscribe(n, f, "1001", "dialog", "60");
	osip_message_free(expect_msg(n, "200 SUBSCRIBE", NULL));
	expect_notify(n, f, 1, NULL, "active;expires=60", 200);
	advance(n, 59999);
	expect_none(n);
	advance(n, 1);
	expect_notify(n, f, 2, NULL, "terminated;reason=timeout", 200);
	assert_int_equal(subs_count(n->srv.subs), 0);

	/* A subscriber that answers a NOTIFY with 481 ends it. */
	start(n, f, "s5");
	expect_notify(n, f, 0, NULL, "active", 481);
	assert_int_equal(subs_count(n->srv.subs), 0);
	register_1001(n, "3600");
	expect_none(n);
}

/* A fetch (Expires: 0): 200, one NOTIFY saying terminated, nothing kept. */
static void test_fetch(void **state)
{
	struct fx *f = *state;
	struct sipnode *n = &f->act;
	osip_message_t *m;

	snprintf(f->callid, sizeof(f->callid), "s6@10.0.0.9");
	snprintf(f->ftag, sizeof(f->ftag), "p6");
	subscribe(n, f, "1001", "dialog", "0");
	m = expect_msg(n, "200 SUBSCRIBE", NULL);
	snprintf(f->ttag, sizeof(f->ttag), "%s", tag_of(m->to));
	osip_message_free(m);
	expect_notify(n, f, 0, NULL, "terminated", 200);
	assert_int_equal(subs_count(n->srv.subs), 0);
}

/* Replicated, taken over: the new active notifies a change that happened
 * meanwhile, with the next version; a standby never notifies. */
static void test_ha_takeover(void **state)
{
	struct fx *f = *state;

	start(&f->act, f, "h1");
	expect_notify(&f->act, f, 0, NULL, "active", 200);
	assert_int_equal(subs_count(f->sby.srv.subs), 1);
	/* The standby learns of a registration: no NOTIFY from it. */
	register_1001(&f->sby, "3600");
	expect_none(&f->sby);
	/* The active dies before telling; the standby takes over. */
	srv_ha_state(&f->sby.srv, true);
	expect_notify(&f->sby, f, 1, NULL, "active", 200);
	/* And goes on: an unregistration is notified too. */
	register_1001(&f->sby, "0");
	expect_notify(&f->sby, f, 2, NULL, "active", 200);
	/* The subscription's refresh is served by the new active. */
	subscribe(&f->sby, f, "1001", "dialog", "600");
	osip_message_free(expect_msg(&f->sby, "200 SUBSCRIBE", NULL));
	expect_notify(&f->sby, f, 3, NULL, "active;expires=600", 200);
	/* Unsubscribed on the active: the standby drops it too. */
	f->cseq = 10;
	subscribe(&f->act, f, "1001", "dialog", "0");
	osip_message_free(expect_msg(&f->act, "200 SUBSCRIBE", NULL));
	osip_message_free(expect_msg(&f->act, "NOTIFY", NULL));
	assert_int_equal(subs_count(f->sby.srv.subs), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialog_info_body),
		cmocka_unit_test_setup_teardown(test_notify_through_a_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_unsubscribe_and_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_481, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ha_takeover, setup_ha, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
