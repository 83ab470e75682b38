/* userspace/sipha-load/route.c (with scan.c, compiled in here): the
 * caller's route set from the Record-Route of a 2xx, reversed across and
 * within header lines, its first hop as an address, the Request-URI and
 * Route line of an in-dialog request for a loose and for a strict router,
 * no route set without Record-Route, and one too long refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sipha-load/route.c"
#include "sipha-load/scan.c"

static const char ok_head[] = "SIP/2.0 200 OK\r\n"
			      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n";
static const char ok_tail[] = "From: <sip:a@b>;tag=1\r\n"
			      "To: <sip:3000@h>;tag=2\r\n"
			      "Call-ID: 1-2-abc\r\n"
			      "CSeq: 1 INVITE\r\n"
			      "Contact: <sip:uas@192.0.2.9:5090>\r\n"
			      "Content-Length: 0\r\n"
			      "\r\n";

/* Scans a 2xx with the header lines RR and builds C's route set from it. */
static int build(const char *rr, struct ld_call *c, char *buf, size_t cap)
{
	struct sl_msg m;

	snprintf(buf, cap, "%s%s%s", ok_head, rr, ok_tail);
	assert_int_equal(sl_scan(buf, strlen(buf), &m), 0);
	memset(c, 0, sizeof(*c));
	memcpy(c->contact, buf + m.contact_uri.off, m.contact_uri.len);
	c->contact_len = (uint8_t)m.contact_uri.len;
	return route_set(c, buf, &m);
}

/* The Request-URI and Route line route.c writes for C. */
static void written(const struct ld_call *c, char *ruri, char *route)
{
	static struct load ld;
	char b[1024];
	struct wb w = { b, b + sizeof(b), false };

	ld.ruri.s = (char *)"sip:3000@target";
	ld.ruri.n = strlen(ld.ruri.s);
	route_ruri(&w, &ld, c);
	*w.p = 0;
	strcpy(ruri, b);
	w = (struct wb){ b, b + sizeof(b), false };
	route_header(&w, c);
	*w.p = 0;
	strcpy(route, b);
}

static void test_loose(void **state)
{
	char buf[2048], ruri[512], route[512];
	struct ld_call c;

	(void)state;
	assert_int_equal(
		build("Record-Route: <sip:10.0.0.3;lr>, \"p2\" <sip:10.0.0.2:5062;lr;x=1>\r\n"
		      "Record-Route: <sip:[2001:db8::1]:5080;lr;ftag=abc>;hp=1\r\n",
		      &c, buf, sizeof(buf)),
		0);
	assert_false(c.strict);
	assert_true(c.has_hop);
	assert_int_equal(c.hop.sa.sa_family, AF_INET6);
	assert_int_equal(ntohs(c.hop.in6.sin6_port), 5080);
	written(&c, ruri, route);
	assert_string_equal(ruri, "sip:uas@192.0.2.9:5090");
	assert_string_equal(route, "Route: <sip:[2001:db8::1]:5080;lr;ftag=abc>,"
				   "<sip:10.0.0.2:5062;lr;x=1>,<sip:10.0.0.3;lr>\r\n");
}

static void test_hop_v4_default_port(void **state)
{
	char buf[2048];
	struct ld_call c;

	(void)state;
	assert_int_equal(build("Record-Route: <sip:proxy@10.1.2.3;lr>\r\n", &c, buf, sizeof(buf)),
			 0);
	assert_true(c.has_hop);
	assert_int_equal(c.hop.sa.sa_family, AF_INET);
	assert_int_equal(ntohs(c.hop.in.sin_port), 5060);
	assert_int_equal(ntohl(c.hop.in.sin_addr.s_addr), 0x0a010203);
	/* a host name: no hop of our own, the request goes to TARGET */
	assert_int_equal(
		build("Record-Route: <sip:proxy.example.com;lr>\r\n", &c, buf, sizeof(buf)), 0);
	assert_false(c.has_hop);
	assert_int_equal(c.route_len, strlen("<sip:proxy.example.com;lr>"));
}

static void test_strict(void **state)
{
	char buf[2048], ruri[512], route[512];
	struct ld_call c;

	(void)state;
	assert_int_equal(build("Record-Route: <sip:10.0.0.2;lr>\r\n"
			       "Record-Route: <sip:10.0.0.1:5070;maddr=x>\r\n",
			       &c, buf, sizeof(buf)),
			 0);
	assert_true(c.strict);
	written(&c, ruri, route);
	assert_string_equal(ruri, "sip:10.0.0.1:5070;maddr=x");
	assert_string_equal(route, "Route: <sip:10.0.0.2;lr>,<sip:uas@192.0.2.9:5090>\r\n");
	assert_int_equal(build("Record-Route: <sip:10.0.0.1>\r\n", &c, buf, sizeof(buf)), 0);
	assert_true(c.strict);
	written(&c, ruri, route);
	assert_string_equal(ruri, "sip:10.0.0.1");
	assert_string_equal(route, "Route: <sip:uas@192.0.2.9:5090>\r\n");
}

static void test_none_and_too_long(void **state)
{
	char buf[4096], rr[1024], ruri[512], route[512];
	struct ld_call c;
	size_t o;

	(void)state;
	assert_int_equal(build("", &c, buf, sizeof(buf)), 0);
	assert_int_equal(c.route_len, 0);
	written(&c, ruri, route);
	assert_string_equal(ruri, "sip:uas@192.0.2.9:5090");
	assert_string_equal(route, "");
	o = (size_t)snprintf(rr, sizeof(rr), "Record-Route: ");
	for (int i = 0; i < 12; i++)
		o += (size_t)snprintf(rr + o, sizeof(rr) - o, "%s<sip:proxy-%02d.example.com;lr>",
				      i ? "," : "", i);
	snprintf(rr + o, sizeof(rr) - o, "\r\n");
	assert_int_equal(build(rr, &c, buf, sizeof(buf)), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loose),
		cmocka_unit_test(test_hop_v4_default_port),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_none_and_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
