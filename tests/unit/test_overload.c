/* [sip] max_transactions: past it a new request is answered 503 with
 * Retry-After at once (stateless), counted, and the node serves again when
 * transactions end. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
