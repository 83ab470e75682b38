/* The SIP engine's limits, each past it a 503 with Retry-After, counted,
 * warned of once a second at most, and served again once below it:
 * [sip] max_transactions (a new request, answered statelessly at once),
 * max_calls (an initial INVITE) and max_registrations (a REGISTER for a new
 * address of record; one already bound is still refreshed). */
#include "sipnode.h"

struct tally {
	unsigned n200, n503, other, retry_after;
};

static int count(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct tally *t = arg;
	char copy[2048];

	(void)to;
	assert_true(len < sizeof(copy));
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (!strncmp(copy, "SIP/2.0 200 ", 12))
		t->n200++;
	else if (!strncmp(copy, "SIP/2.0 503 ", 12))
		t->n503++;
	else
		t->other++;
	if (strstr(copy, "\r\nRetry-After: 5\r\n"))
		t->retry_after++;
	return 0;
}

static void options(struct server *srv, const struct sip_peer *from, unsigned i)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "OPTIONS sip:sipha.test SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKov%u\r\n"
			 "Max-Forwards: 70\r\nFrom: <sip:probe@sipha.test>;tag=p%u\r\n"
			 "To: <sip:sipha.test>\r\nCall-ID: ov%u@10.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
			 "Content-Length: 0\r\n\r\n",
			 i, i, i);

	srv_rx(srv, from, buf, (size_t)n);
}

static void test_limit(void **state)
{
	static const char conf[] = "[node]\nid = t\n[sip]\nlisten = 127.0.0.1:5060\n"
				   "domain = sipha.test\nmax_transactions = 1024\n"
				   "[control]\nsocket = /tmp/sipha-test-overload.sock\n";
	struct sipha_config cfg = { 0 };
	struct timer_wheel tw;
	struct server srv;
	struct tally t = { 0 };
	struct sip_peer from = { .proto = SIP_PROTO_UDP };
	struct sockaddr_in *sin = (struct sockaddr_in *)&from.addr;
	char err[256];

	(void)state;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5061);
	inet_pton(AF_INET, "10.0.0.1", &sin->sin_addr);
	from.addrlen = sizeof(*sin);
	assert_int_equal(cfg_load_string(conf, "t.conf", &cfg, err, sizeof(err)), 0);
	timer_wheel_init(&tw, 1000);
	assert_int_equal(srv_core_init(&srv, &cfg, &tw, count, &t), 0);

	for (unsigned i = 0; i < 1030; i++)
		options(&srv, &from, i);
	assert_int_equal(t.n200, 1024);
	assert_int_equal(t.n503, 6);
	assert_int_equal(t.retry_after, 6);
	assert_int_equal(t.other, 0);
	assert_int_equal(srv.st.sip_rx_overload, 6);
	/* One warning for the six: the others were held back. */
	assert_int_equal(srv.rl_transactions.held, 5);
	assert_int_equal(txn_count(srv.txns), 1024);

	/* A retransmission of one in progress is still absorbed, not refused. */
	options(&srv, &from, 7);
	assert_int_equal(t.n200, 1025);
	assert_int_equal(srv.st.sip_rx_overload, 6);

	/* Timer J ends them (64 * T1 over UDP): the node serves again. */
	timer_run(&tw, tw.now + 32000);
	assert_int_equal(txn_count(srv.txns), 0);
	options(&srv, &from, 5000);
	assert_int_equal(t.n200, 1026);
	assert_int_equal(t.n503, 6);

	srv_core_fini(&srv);
	cfg_free(&cfg);
}

static const char *hdr(osip_message_t *m, const char *name)
{
	osip_header_t *h = NULL;

	return osip_message_header_get_byname(m, name, 0, &h) >= 0 && h ? h->hvalue : NULL;
}

/* The next message is a 503 to METHOD with Retry-After: 5. */
static void expect_full(struct sipnode *n, const char *what)
{
	osip_message_t *m = expect_msg(n, what, NULL);

	assert_non_null(hdr(m, "retry-after"));
	assert_string_equal(hdr(m, "retry-after"), SRV_RETRY_AFTER);
	assert_non_null(tag_of(m->to));
	osip_message_free(m);
}

static void expect_and_free(struct sipnode *n, const char *what)
{
	osip_message_free(expect_msg(n, what, NULL));
}

static void skip_sent(struct sipnode *n)
{
	n->seen = n->nsent;
}

/* An initial INVITE from 10.0.0.1 to DN, call I. */
static void invite(struct sipnode *n, const char *dn, unsigned i)
{
	struct sip_peer a = udp_peer("10.0.0.1", 5061);

	inject(n, &a,
	       "INVITE sip:%s@sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKinv%u\r\n"
	       "Max-Forwards: 70\r\nFrom: " SIPNODE_ALICE ";tag=f%u\r\n"
	       "To: <sip:%s@sipha.test>\r\nCall-ID: lim%u@10.0.0.1\r\nCSeq: 1 INVITE\r\n"
	       "Contact: <sip:alice@10.0.0.1:5061>\r\nContent-Type: application/sdp\r\n"
	       "Content-Length: %zu\r\n\r\n%s",
	       dn, i, i, dn, i, strlen(SDP_A), SDP_A);
}

/* A node with LIMIT (a [sip] line) and DNs 2000 (routing point), 3000. */
static struct sipnode *limited_node(const char *limit)
{
	struct sipnode *n = calloc(1, sizeof(*n));
	char conf[512];

	assert_non_null(n);
	snprintf(conf, sizeof(conf),
		 "[node]\nid = t\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n%s\n"
		 "[control]\nsocket = /tmp/sipha-test-overload.sock\n"
		 "[dn]\n2000 = routing-point\n3000 = sip:10.0.0.50:5080\n",
		 limit);
	sipnode_init(n, conf);
	return n;
}

static void test_max_calls(void **state)
{
	struct sipnode *n = limited_node("max_calls = 2");
	struct server *srv = &n->srv;

	(void)state;
	invite(n, "2000", 1); /* queued: 180 */
	expect_and_free(n, "180 INVITE");
	invite(n, "3000", 2); /* dialed: 100, INVITE to the callee */
	expect_and_free(n, "100 INVITE");
	expect_and_free(n, "INVITE");
	assert_int_equal(calls_count(srv->calls), 2);

	/* Full: a call to either kind of DN is refused, nothing dialed. */
	invite(n, "3000", 3);
	expect_full(n, "503 INVITE");
	invite(n, "2000", 4);
	expect_full(n, "503 INVITE");
	expect_none(n);
	assert_int_equal(calls_count(srv->calls), 2);
	assert_int_equal(srv->st.calls_overload, 2);
	assert_int_equal(srv->rl_calls.held, 1);
	/* The refused INVITE's retransmission is the transaction's: the
	 * same 503 again, not a new refusal. */
	invite(n, "3000", 3);
	expect_full(n, "503 INVITE");
	assert_int_equal(srv->st.calls_overload, 2);

	/* The queued call times out (480) and leaves the table: room again. */
	advance(n, 30000);
	skip_sent(n);
	assert_int_equal(calls_count(srv->calls), 1);
	invite(n, "2000", 5);
	expect_and_free(n, "180 INVITE");
	assert_int_equal(calls_count(srv->calls), 2);
	/* Full again, a second and more since the last warning: said at once. */
	invite(n, "2000", 6);
	expect_full(n, "503 INVITE");
	assert_int_equal(srv->st.calls_overload, 3);
	assert_int_equal(srv->rl_calls.held, 0);
	assert_int_equal(srv->rl_calls.next_ms, n->tw.now + 1000);
	sipnode_fini(n);
	free(n);
}

/* A REGISTER of USER from 10.0.0.9, CSEQ of Call-ID reg-USER. */
static void reg(struct sipnode *n, const char *user, unsigned cseq)
{
	struct sip_peer p = udp_peer("10.0.0.9", 5070);

	inject(n, &p,
	       "REGISTER sip:sipha.test SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKreg%s.%u\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:%s@sipha.test>;tag=r%u\r\n"
	       "To: <sip:%s@sipha.test>\r\nCall-ID: reg-%s\r\nCSeq: %u REGISTER\r\n"
	       "Contact: <sip:%s@10.0.0.9:5070>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
	       user, cseq, user, cseq, user, user, cseq, user);
}

static void test_max_registrations(void **state)
{
	struct sipnode *n = limited_node("max_registrations = 2");
	struct server *srv = &n->srv;

	(void)state;
	reg(n, "1001", 1);
	expect_and_free(n, "200 REGISTER");
	reg(n, "1002", 1);
	expect_and_free(n, "200 REGISTER");
	reg(n, "1003", 1);
	expect_full(n, "503 REGISTER");
	assert_int_equal(srv->st.register_overload, 1);
	assert_int_equal(srv->st.register_refused, 1);
	assert_int_equal(reg_aor_count(srv->reg), 2);
	assert_null(reg_find(srv->reg, "1003"));
	/* An address of record already bound is refreshed at the limit. */
	reg(n, "1001", 2);
	expect_and_free(n, "200 REGISTER");
	reg(n, "1004", 1);
	expect_full(n, "503 REGISTER");
	assert_int_equal(srv->st.register_overload, 2);
	assert_int_equal(srv->rl_registrations.held, 1);
	expect_none(n);
	/* Their bindings expire: a new one fits. */
	advance(n, 601000);
	assert_int_equal(reg_aor_count(srv->reg), 0);
	reg(n, "1003", 2);
	expect_and_free(n, "200 REGISTER");
	sipnode_fini(n);
	free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_max_calls),
		cmocka_unit_test(test_max_registrations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
