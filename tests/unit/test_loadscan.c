/* userspace/sipha-load/scan.c, the minimal SIP reader of sipha-load's hot
 * path (compiled in here: sipha-load's files are not in libsipha): status
 * or method, Call-ID, CSeq, the To tag (not a tag inside the URI), the top
 * Via's branch, Contact and its expires, Expires, Record-Route lines,
 * compact header names, and refusal of what is not a SIP message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sipha-load/scan.c"

static int scan(const char *s, struct sl_msg *m)
{
	return sl_scan(s, strlen(s), m);
}

static void assert_span(const char *buf, struct sl_span sp, const char *want)
{
	char got[256];

	assert_true(sp.len < sizeof(got));
	memcpy(got, buf + sp.off, sp.len);
	got[sp.len] = 0;
	assert_string_equal(got, want);
}

static void test_response(void **state)
{
	const char *r = "SIP/2.0 200 OK\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-2-abc;rport=5070\r\n"
			"From: \"x\" <sip:a@b>;tag=f1\r\n"
			"To: <sip:3000@127.0.0.1:5060>;tag=t-99\r\n"
			"Call-ID: 1a-3-deadbeef\r\n"
			"CSeq: 1 INVITE\r\n"
			"Contact: <sip:b2bua@127.0.0.1:5060;transport=udp>\r\n"
			"Content-Length: 4\r\n"
			"\r\n"
			"v=0\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.status, 200);
	assert_int_equal(m.cseq, 1);
	assert_int_equal(m.cseq_method, SL_INVITE);
	assert_span(r, m.callid, "1a-3-deadbeef");
	assert_span(r, m.to_tag, "t-99");
	assert_span(r, m.branch, "z9hG4bK-1-2-abc");
	assert_span(r, m.contact_uri, "sip:b2bua@127.0.0.1:5060;transport=udp");
	assert_int_equal(m.content_length, 4);
	assert_int_equal(m.nvia, 1);
	assert_string_equal(r + m.body_off, "v=0\n");
}

static void test_request_two_vias(void **state)
{
	const char *r =
		"INVITE sip:3000@h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP p1;branch=z9hG4bKone, SIP/2.0/UDP p2;branch=z9hG4bKtwo\r\n"
		"Via: SIP/2.0/UDP p3;branch=z9hG4bKthree\r\n"
		"From: <sip:a@b>;tag=1\r\n"
		"To: <sip:3000@h;tag=uri-param>\r\n"
		"Call-ID: abc@h\r\n"
		"CSeq: 7 INVITE\r\n"
		"Content-Length: 0\r\n"
		"\r\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.status, 0);
	assert_int_equal(m.method, SL_INVITE);
	assert_int_equal(m.cseq, 7);
	assert_int_equal(m.nvia, 2);
	assert_span(r, m.branch, "z9hG4bKone");
	assert_int_equal(m.to_tag.len, 0); /* a tag in the URI is not the To tag */
	assert_span(r, m.via[1], "Via: SIP/2.0/UDP p3;branch=z9hG4bKthree\r\n");
	assert_span(r, m.to_line, "To: <sip:3000@h;tag=uri-param>\r\n");
	assert_span(r, m.cseq_line, "CSeq: 7 INVITE\r\n");
}

static void test_compact_and_case(void **state)
{
	const char *r = "SIP/2.0 486 Busy Here\r\n"
			"v: SIP/2.0/UDP h ; BRANCH = z9hG4bKc\r\n"
			"f: <sip:a@b>;tag=1\r\n"
			"t: sip:3000@h ; TAG = x.y\r\n"
			"i: cid-1\r\n"
			"CSEQ:   2   BYE\r\n"
			"m: sip:me@h;expires=3\r\n"
			"l: 0\r\n"
			"\r\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.status, 486);
	assert_int_equal(m.cseq, 2);
	assert_int_equal(m.cseq_method, SL_BYE);
	assert_span(r, m.callid, "cid-1");
	assert_span(r, m.branch, "z9hG4bKc");
	assert_span(r, m.to_tag, "x.y");
	assert_span(r, m.contact_uri, "sip:me@h");
}

static void test_challenge(void **state)
{
	const char *r =
		"SIP/2.0 407 Proxy Authentication Required\r\n"
		"Call-ID: c\r\n"
		"CSeq: 1 INVITE\r\n"
		"Proxy-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-256\r\n"
		"Proxy-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=MD5\r\n"
		"\r\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.status, 407);
	assert_span(r, m.challenge, "Digest realm=\"r\", nonce=\"n1\", algorithm=SHA-256");
}

static void test_bare_lf(void **state)
{
	const char *r = "SIP/2.0 180 Ringing\n"
			"Call-ID: lf\n"
			"CSeq: 1 INVITE\n"
			"To: <sip:a@b>;tag=z\n"
			"\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.status, 180);
	assert_span(r, m.to_tag, "z");
	assert_int_equal(m.branch.len, 0);
}

static void test_refused(void **state)
{
	static const char *bad[] = {
		"",
		"garbage garbage garbage",
		/* no end of headers */
		"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n",
		/* status out of range, or not three digits */
		"SIP/2.0 099 X\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
		"SIP/2.0 2000 X\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
		"SIP/2.0 20 X\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
		/* no Call-ID, no CSeq */
		"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",
		"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
		/* no method */
		" INVITE sip:a SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
	};
	struct sl_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(scan(bad[i], &m), -EBADMSG);
}

/* Every prefix of a good message is read without reading past its end
 * (ASan watches) and refused, since the blank line is missing. */
static void test_prefixes(void **state)
{
	const char *r = "SIP/2.0 200 OK\r\n"
			"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
			"To: <sip:a@b>;tag=t\r\n"
			"Call-ID: c\r\n"
			"CSeq: 1 BYE\r\n"
			"\r\n";
	size_t n = strlen(r);
	struct sl_msg m;

	(void)state;
	for (size_t k = 0; k < n - 1; k++) {
		char *p = malloc(k ? k : 1);

		memcpy(p, r, k);
		assert_int_equal(sl_scan(p, k, &m), -EBADMSG);
		free(p);
	}
	assert_int_equal(scan(r, &m), 0);
}

static uint64_t fz = 0x9e3779b97f4a7c15ull;

static uint64_t frnd(void)
{
	fz ^= fz << 13;
	fz ^= fz >> 7;
	fz ^= fz << 17;
	return fz;
}

static void assert_in(struct sl_span sp, size_t len)
{
	assert_true((size_t)sp.off + sp.len <= len);
}

/* 200,000 mutations of a good answer (bytes changed, CR/LF/;/=/< put in,
 * cut short) read under ASan: whatever is accepted has every span inside
 * the buffer, and nothing is read outside it. */
static void test_mutations(void **state)
{
	const char *good = "SIP/2.0 200 OK\r\n"
			   "Via: SIP/2.0/UDP h;branch=z9hG4bKx;rport\r\n"
			   "From: <sip:a@b>;tag=1\r\n"
			   "To: \"x\" <sip:3000@h;tag=u>;tag=t9\r\n"
			   "Call-ID: 1-2-abc\r\n"
			   "CSeq: 1 INVITE\r\n"
			   "Contact: <sip:c@h>\r\n"
			   "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n"
			   "Content-Length: 3\r\n"
			   "\r\n"
			   "abc";
	static const char special[] = "\r\n;=<>,: \t\"";
	size_t glen = strlen(good);

	(void)state;
	for (int it = 0; it < 200000; it++) {
		size_t len = glen - frnd() % 8;
		char *b = malloc(len);
		struct sl_msg m;
		int k = 1 + (int)(frnd() % 4);

		memcpy(b, good, len);
		while (k--) {
			size_t at = frnd() % len;

			b[at] = frnd() % 2 ? (char)frnd() : special[frnd() % (sizeof(special) - 1)];
		}
		if (sl_scan(b, len, &m) == 0) {
			assert_in(m.callid, len);
			assert_in(m.to_tag, len);
			assert_in(m.branch, len);
			assert_in(m.contact_uri, len);
			assert_in(m.challenge, len);
			assert_in(m.from_line, len);
			assert_in(m.to_line, len);
			assert_in(m.cseq_line, len);
			for (unsigned i = 0; i < m.nvia; i++)
				assert_in(m.via[i], len);
			for (unsigned i = 0; i < m.nrr; i++)
				assert_in(m.rr[i], len);
			assert_true(m.body_off <= len);
		}
		free(b);
	}
}

static void test_register_answer(void **state)
{
	const char *r = "SIP/2.0 200 OK\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1-1-abc\r\n"
			"From: <sip:1000@h>;tag=r1-abc\r\n"
			"To: <sip:1000@h>;tag=x\r\n"
			"Call-ID: r1-abc\r\n"
			"CSeq: 1 REGISTER\r\n"
			"Contact: <sip:1000@127.0.0.1:5070;expires=99>;expires=120;q=1\r\n"
			"Contact: <sip:1000@10.0.0.1>;expires=7\r\n"
			"Expires: 3600\r\n"
			"Content-Length: 0\r\n"
			"\r\n";
	const char *bare = "SIP/2.0 200 OK\r\n"
			   "i: x\r\n"
			   "CSeq: 1 REGISTER\r\n"
			   "m: sip:1000@127.0.0.1;expires=30, <sip:1000@10.0.0.1>;expires=9\r\n"
			   "\r\n";
	const char *none = "SIP/2.0 200 OK\r\n"
			   "i: x\r\n"
			   "CSeq: 1 REGISTER\r\n"
			   "Contact: <sip:a@b>, <sip:c@d>;expires=9\r\n"
			   "\r\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.cseq_method, SL_REGISTER);
	assert_int_equal(m.contact_expires, 120); /* the header's, not the URI's */
	assert_int_equal(m.expires, 3600);
	assert_int_equal(scan(bare, &m), 0);
	assert_int_equal(m.contact_expires, 30);
	assert_int_equal(m.expires, SL_NO_EXPIRES);
	assert_int_equal(scan(none, &m), 0); /* the first Contact has none */
	assert_int_equal(m.contact_expires, SL_NO_EXPIRES);
}

static void test_record_route(void **state)
{
	const char *r = "SIP/2.0 200 OK\r\n"
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
			"Record-Route: <sip:10.0.0.1;lr>\r\n"
			"record-route: <sip:10.0.0.2;lr>, <sip:10.0.0.3;lr>\r\n"
			"From: <sip:a@b>;tag=1\r\n"
			"To: <sip:c@d>;tag=2\r\n"
			"Call-ID: x\r\n"
			"CSeq: 1 INVITE\r\n"
			"\r\n";
	struct sl_msg m;

	(void)state;
	assert_int_equal(scan(r, &m), 0);
	assert_int_equal(m.nrr, 2);
	assert_span(r, m.rr[0], "Record-Route: <sip:10.0.0.1;lr>\r\n");
	assert_span(r, m.rr[1], "record-route: <sip:10.0.0.2;lr>, <sip:10.0.0.3;lr>\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response),	 cmocka_unit_test(test_request_two_vias),
		cmocka_unit_test(test_compact_and_case), cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_challenge),	 cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_refused),		 cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_register_answer),	 cmocka_unit_test(test_record_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
