/* Unit tests of sip/msgvia: received= and rport= on the top Via of a request
 * (RFC 3261 §18.2.1, RFC 3581 §4), alone and in every answer a server sends:
 * a stateless rejection, OPTIONS, and a call's 100, relayed 180 and 200. */
#include "sipnode.h"

#include <errno.h>

#include "sip/msg.h"

static osip_message_t *parse_with_via(const char *via)
{
	char buf[1024];
	osip_message_t *m = NULL;
	int n = snprintf(buf, sizeof(buf),
			 "OPTIONS sip:a@b SIP/2.0\r\nVia: %s\r\nVia: SIP/2.0/UDP "
			 "10.9.9.9;branch=z9hG4bKlow\r\n"
			 "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: v1\r\n"
			 "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			 via);

	assert_true(n > 0 && n < (int)sizeof(buf));
	assert_int_equal(sipmsg_parse(buf, (size_t)n, true, &m), 0);
	return m;
}

static char *via_text(const osip_message_t *m, int i)
{
	osip_via_t *v = osip_list_get(&m->vias, i);
	char *s = NULL;

	assert_non_null(v);
	assert_int_equal(osip_via_to_str(v, &s), 0);
	return s;
}

static void test_amend(void **state)
{
	static const struct {
		const char *via, *src;
		unsigned port;
		const char *want;
	} cases[] = {
		/* sent-by is the source: nothing to add */
		{ "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK1", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK1" },
		/* the port alone differing is no reason (§18.2.1 compares hosts) */
		{ "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK2", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK2" },
		/* behind a NAT */
		{ "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bK3", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bK3;received=10.0.0.1" },
		/* a domain name always gets received= */
		{ "SIP/2.0/UDP phone.example.com;branch=z9hG4bK4", "10.0.0.1", 5061,
		  "SIP/2.0/UDP phone.example.com;branch=z9hG4bK4;received=10.0.0.1" },
		/* empty rport: filled, and received= even though sent-by matches */
		{ "SIP/2.0/UDP 10.0.0.1:5061;rport;branch=z9hG4bK5", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 10.0.0.1:5061;rport=5061;branch=z9hG4bK5;received=10.0.0.1" },
		/* sipsak's: loopback sent-by, real source elsewhere */
		{ "SIP/2.0/UDP 127.0.0.1:34552;branch=z9hG4bK6;rport", "10.98.0.11", 34552,
		  "SIP/2.0/UDP 127.0.0.1:34552;branch=z9hG4bK6;rport=34552;received=10.98.0.11" },
		/* an rport with a value was not ours to fill */
		{ "SIP/2.0/UDP 10.0.0.1:5061;rport=7000;branch=z9hG4bK7", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 10.0.0.1:5061;rport=7000;branch=z9hG4bK7" },
		/* a received= the sender wrote itself is replaced, not doubled */
		{ "SIP/2.0/UDP 192.168.1.5;received=1.2.3.4;branch=z9hG4bK8", "10.0.0.1", 5061,
		  "SIP/2.0/UDP 192.168.1.5;received=10.0.0.1;branch=z9hG4bK8" },
		/* IPv6: brackets in sent-by, none in received= */
		{ "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK9", "2001:db8::1", 5060,
		  "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK9" },
		{ "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa;rport", "2001:db8::2", 40000,
		  "SIP/2.0/UDP "
		  "[2001:db8::1]:5060;branch=z9hG4bKa;rport=40000;received=2001:db8::2" },
		/* an IPv4 literal is not an IPv6 source */
		{ "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb", "2001:db8::2", 40000,
		  "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb;received=2001:db8::2" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_peer p;
		osip_message_t *m = parse_with_via(cases[i].via);
		char *s;

		assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, cases[i].src, cases[i].port), 0);
		assert_int_equal(sipmsg_via_received(m, (const struct sockaddr *)&p.addr), 0);
		s = via_text(m, 0);
		if (strcmp(s, cases[i].want))
			fail_msg("case %zu: got %s, want %s", i, s, cases[i].want);
		osip_free(s);
		/* only the top Via is ours to touch */
		s = via_text(m, 1);
		assert_string_equal(s, "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKlow");
		osip_free(s);
		osip_message_free(m);
	}
}

static void test_amend_bad(void **state)
{
	struct sip_peer p;
	struct sockaddr_un_like {
		sa_family_t family;
		char path[32];
	} un = { AF_UNIX, "x" };
	osip_message_t *m = parse_with_via("SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKc");
	char *s;

	(void)state;
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, "10.0.0.2", 1), 0);
	assert_int_equal(sipmsg_via_received(NULL, (const struct sockaddr *)&p.addr), -EINVAL);
	assert_int_equal(sipmsg_via_received(m, NULL), -EINVAL);
	assert_int_equal(sipmsg_via_received(m, (const struct sockaddr *)&un), -EAFNOSUPPORT);
	s = via_text(m, 0);
	assert_string_equal(s, "SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKc");
	osip_free(s);
	/* no Via at all */
	while (osip_list_size(&m->vias) > 0) {
		osip_via_free(osip_list_get(&m->vias, 0));
		osip_list_remove(&m->vias, 0);
	}
	assert_int_equal(sipmsg_via_received(m, (const struct sockaddr *)&p.addr), -ENOENT);
	osip_message_free(m);
}

static const char *conf = "[node]\n"
			  "id = t\n"
			  "[sip]\n"
			  "listen = 127.0.0.1:5060\n"
			  "domain = sipha.test\n"
			  "[control]\n"
			  "socket = /tmp/sipha-test-msgvia.sock\n"
			  "[dn]\n"
			  "3000 = sip:10.0.0.50:5080\n";

#define NAT_VIA "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bK%s;rport"
#define NAT_WANT "SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bK%s;rport=5061;received=10.0.0.1"

/* The top Via of the next message sipha sent, which must be response CODE. */
static void expect_amended(struct sipnode *n, int code, const char *branch)
{
	osip_message_t *m = take(n, NULL);
	char want[256];
	char *s;

	if (!m)
		fail_msg("expected a %d, nothing sent", code);
	assert_int_equal(m->status_code, code);
	snprintf(want, sizeof(want), NAT_WANT, branch);
	s = via_text(m, 0);
	if (strcmp(s, want))
		fail_msg("%d: top Via %s, want %s", code, s, want);
	osip_free(s);
	osip_message_free(m);
}

static void test_server_answers(void **state)
{
	struct sipnode *n = calloc(1, sizeof(*n));
	struct sip_peer a = udp_peer("10.0.0.1", 5061), b;
	osip_message_t *m;
	struct uas callee;

	(void)state;
	assert_non_null(n);
	sipnode_init(n, conf);
	/* a stateless rejection (420: an extension sipha lacks) */
	inject(n, &a,
	       "OPTIONS sip:sipha.test SIP/2.0\r\nVia: " NAT_VIA "\r\n"
	       "From: <sip:alice@sipha.test>;tag=1\r\nTo: <sip:sipha.test>\r\n"
	       "Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nRequire: foo\r\n"
	       "Content-Length: 0\r\n\r\n",
	       "o1");
	expect_amended(n, 420, "o1");
	/* a transaction's answer */
	inject(n, &a,
	       "OPTIONS sip:sipha.test SIP/2.0\r\nVia: " NAT_VIA "\r\n"
	       "From: <sip:alice@sipha.test>;tag=1\r\nTo: <sip:sipha.test>\r\n"
	       "Call-ID: o2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
	       "Content-Length: 0\r\n\r\n",
	       "o2");
	expect_amended(n, 200, "o2");
	/* a call: 100 at once, the callee's 180 and 200 relayed */
	inject(n, &a,
	       "INVITE sip:3000@sipha.test SIP/2.0\r\nVia: " NAT_VIA "\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:alice@sipha.test>;tag=2\r\n"
	       "To: <sip:3000@sipha.test>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\n"
	       "Contact: <sip:alice@192.168.1.5:5060>\r\nContent-Type: application/sdp\r\n"
	       "Content-Length: %zu\r\n\r\n%s",
	       "i1", strlen(SDP_A), SDP_A);
	expect_amended(n, 100, "i1");
	m = take(n, &b);
	assert_non_null(m);
	assert_string_equal(m->sip_method, "INVITE");
	memset(&callee, 0, sizeof(callee));
	callee.peer = b;
	snprintf(callee.callid, sizeof(callee.callid), "%s", callid(m));
	snprintf(callee.ftag, sizeof(callee.ftag), "%s", tag_of(m->from));
	snprintf(callee.via, sizeof(callee.via), "SIP/2.0/UDP 127.0.0.1:5060;branch=%s",
		 branch_of(m));
	osip_message_free(m);
	callee_respond(n, &callee, 180, "Ringing", NULL);
	expect_amended(n, 180, "i1");
	callee_respond(n, &callee, 200, "OK", SDP_B);
	m = expect_msg(n, "ACK", NULL);
	osip_message_free(m);
	expect_amended(n, 200, "i1");
	sipnode_fini(n);
	free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amend),
		cmocka_unit_test(test_amend_bad),
		cmocka_unit_test(test_server_answers),
	};

	sipmsg_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
