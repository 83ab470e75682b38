/* Registrar: bindings, RFC 3261 §10.3 processing and expiry on a fake clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/registrar.h"

struct fx {
	struct timer_wheel tw;
	struct registrar *r;
	uint64_t now;
};

static const struct reg_limits lim = {
	.min_expires = 60,
	.max_expires = 3600,
	.default_expires = 1800,
	.max_contacts = 3,
	.max_aors = 100,
	.domain = "sipha.test",
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->now = 1000;
	timer_wheel_init(&f->tw, f->now);
	assert_int_equal(reg_new(&f->r, &f->tw, &lim), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	reg_free(f->r);
	free(f);
	return 0;
}

static void advance(struct fx *f, uint64_t ms)
{
	f->now += ms;
	timer_run(&f->tw, f->now);
}

/* Builds a REGISTER; HDRS holds extra header lines ending in \r\n. */
static osip_message_t *mkreg(const char *to, const char *hdrs, const char *call_id, int cseq)
{
	char buf[2048];
	osip_message_t *m;

	snprintf(buf, sizeof(buf),
		 "REGISTER sip:sipha.test SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK%d\r\n"
		 "Max-Forwards: 70\r\n"
		 "To: <%s>\r\n"
		 "From: <%s>;tag=ft\r\n"
		 "Call-ID: %s\r\n"
		 "CSeq: %d REGISTER\r\n"
		 "%s"
		 "Content-Length: 0\r\n\r\n",
		 cseq, to, to, call_id, cseq, hdrs);
	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_parse(m, buf, strlen(buf)), 0);
	return m;
}

static int do_reg(struct fx *f, const char *to, const char *hdrs, const char *cid, int cseq,
		  struct reg_result *res)
{
	osip_message_t *m = mkreg(to, hdrs, cid, cseq);

	reg_register(f->r, m, NULL, NULL, f->now, res);
	osip_message_free(m);
	return res->code;
}

static const struct reg_binding *first(struct fx *f, const char *user)
{
	const struct reg_aor *a = reg_find(f->r, user);

	return a ? a->bindings : NULL;
}

static void test_bind_and_expire(void **state)
{
	struct fx *f = *state;

	assert_int_equal(
		reg_bind(f->r, "1001", "sip:1001@10.0.0.1:5060", 120, "c1", 1, 1000, NULL, f->now),
		0);
	assert_int_equal(reg_binding_count(f->r), 1);
	assert_int_equal(reg_aor_count(f->r), 1);
	advance(f, 119999);
	assert_int_equal(reg_binding_count(f->r), 1);
	advance(f, 1);
	assert_int_equal(reg_binding_count(f->r), 0);
	assert_int_equal(reg_aor_count(f->r), 0);
	assert_null(reg_find(f->r, "1001"));
}

static void test_refresh_moves_expiry(void **state)
{
	struct fx *f = *state;

	reg_bind(f->r, "1001", "sip:a@h", 100, "c", 1, 1000, NULL, f->now);
	advance(f, 90000);
	reg_bind(f->r, "1001", "sip:a@h", 100, "c", 2, 1000, NULL, f->now);
	advance(f, 20000); /* past the first expiry */
	assert_int_equal(reg_binding_count(f->r), 1);
	advance(f, 80000);
	assert_int_equal(reg_binding_count(f->r), 0);
}

static void test_register_basic(void **state)
{
	struct fx *f = *state;
	struct reg_result res;

	assert_int_equal(do_reg(f, "sip:1001@sipha.test", "Contact: <sip:1001@10.0.0.1:5070>\r\n",
				"c1", 1, &res),
			 200);
	assert_string_equal(first(f, "1001")->contact, "sip:1001@10.0.0.1:5070");
	/* default_expires applies without an Expires anywhere */
	assert_int_equal(first(f, "1001")->expires, f->now + 1800 * 1000);
}

static void test_register_expires_rules(void **state)
{
	struct fx *f = *state;
	struct reg_result res;

	/* header Expires */
	do_reg(f, "sip:a@sipha.test", "Contact: <sip:a@h1>\r\nExpires: 300\r\n", "c", 1, &res);
	assert_int_equal(res.code, 200);
	assert_int_equal(first(f, "a")->expires, f->now + 300000);
	/* contact parameter beats the header */
	do_reg(f, "sip:b@sipha.test", "Contact: <sip:b@h1>;expires=600\r\nExpires: 300\r\n", "c", 1,
	       &res);
	assert_int_equal(first(f, "b")->expires, f->now + 600000);
	/* above max: clamped */
	do_reg(f, "sip:c@sipha.test", "Contact: <sip:c@h1>\r\nExpires: 99999\r\n", "c", 1, &res);
	assert_int_equal(res.code, 200);
	assert_int_equal(first(f, "c")->expires, f->now + 3600000);
	/* below min: 423 with Min-Expires, nothing stored */
	do_reg(f, "sip:d@sipha.test", "Contact: <sip:d@h1>\r\nExpires: 10\r\n", "c", 1, &res);
	assert_int_equal(res.code, 423);
	assert_int_equal(res.min_expires, 60);
	assert_null(reg_find(f->r, "d"));
	/* junk Expires: 400 */
	assert_int_equal(do_reg(f, "sip:e@sipha.test", "Contact: <sip:e@h1>\r\nExpires: soon\r\n",
				"c", 1, &res),
			 400);
}

static void test_register_multi_and_remove(void **state)
{
	struct fx *f = *state;
	struct reg_result res;

	do_reg(f, "sip:m@sipha.test",
	       "Contact: <sip:m@h1>, <sip:m@h2;transport=tcp>;q=0.5\r\nContact: <sip:m@h3>\r\n",
	       "c", 1, &res);
	assert_int_equal(res.code, 200);
	assert_int_equal(reg_find(f->r, "m")->n, 3);
	/* a fourth passes max_contacts = 3: refused whole */
	do_reg(f, "sip:m@sipha.test", "Contact: <sip:m@h4>\r\n", "c", 2, &res);
	assert_int_equal(res.code, 403);
	assert_int_equal(reg_find(f->r, "m")->n, 3);
	/* expires=0 removes one */
	do_reg(f, "sip:m@sipha.test", "Contact: <sip:m@h1>;expires=0\r\n", "c", 3, &res);
	assert_int_equal(res.code, 200);
	assert_int_equal(reg_find(f->r, "m")->n, 2);
	/* the q-value was kept, the URI parameter is part of the contact */
	for (const struct reg_binding *b = first(f, "m"); b; b = b->next)
		if (!strcmp(b->contact, "sip:m@h2;transport=tcp"))
			assert_int_equal(b->q, 500);
	/* '*' without Expires: 0 is a 400 */
	assert_int_equal(do_reg(f, "sip:m@sipha.test", "Contact: *\r\n", "c", 4, &res), 400);
	assert_int_equal(reg_find(f->r, "m")->n, 2);
	/* '*' with Expires: 0 removes everything */
	assert_int_equal(
		do_reg(f, "sip:m@sipha.test", "Contact: *\r\nExpires: 0\r\n", "c", 5, &res), 200);
	assert_null(reg_find(f->r, "m"));
	assert_int_equal(reg_binding_count(f->r), 0);
}

static void test_register_out_of_order(void **state)
{
	struct fx *f = *state;
	struct reg_result res;

	do_reg(f, "sip:o@sipha.test", "Contact: <sip:o@h1>\r\nExpires: 100\r\n", "cid", 5, &res);
	/* the same CSeq again is a retransmission: accepted, unchanged */
	assert_int_equal(do_reg(f, "sip:o@sipha.test", "Contact: <sip:o@h1>\r\nExpires: 100\r\n",
				"cid", 5, &res),
			 200);
	/* an older CSeq on the same Call-ID is out of order */
	assert_int_equal(do_reg(f, "sip:o@sipha.test", "Contact: <sip:o@h1>\r\nExpires: 0\r\n",
				"cid", 4, &res),
			 500);
	assert_non_null(reg_find(f->r, "o"));
	/* another Call-ID may do anything */
	assert_int_equal(do_reg(f, "sip:o@sipha.test", "Contact: <sip:o@h1>\r\nExpires: 0\r\n",
				"other", 1, &res),
			 200);
	assert_null(reg_find(f->r, "o"));
}

static void test_register_domain_and_scheme(void **state)
{
	struct fx *f = *state;
	struct reg_result res;

	assert_int_equal(do_reg(f, "sip:x@other.example", "Contact: <sip:x@h>\r\n", "c", 1, &res),
			 403);
	assert_int_equal(do_reg(f, "sip:x@127.0.0.1", "Contact: <sip:x@h>\r\n", "c", 1, &res), 200);
	/* the AoR is the user part: both spellings reach one AoR */
	do_reg(f, "sip:x@sipha.test", "Contact: <sip:x@h2>\r\n", "c2", 1, &res);
	assert_int_equal(reg_find(f->r, "x")->n, 2);
	assert_int_equal(do_reg(f, "sip:sipha.test", "Contact: <sip:x@h>\r\n", "c", 1, &res), 404);
	assert_int_equal(do_reg(f, "tel:+15551234", "Contact: <sip:x@h>\r\n", "c", 1, &res), 404);
}

static void test_query_and_fill(void **state)
{
	struct fx *f = *state;
	struct reg_result res;
	osip_message_t *resp;
	osip_contact_t *c;
	osip_generic_param_t *p;

	do_reg(f, "sip:q@sipha.test", "Contact: <sip:q@h1>\r\nExpires: 120\r\n", "c", 1, &res);
	advance(f, 20000);
	/* no Contact: a query, nothing changes */
	assert_int_equal(do_reg(f, "sip:q@sipha.test", "", "c", 2, &res), 200);
	assert_int_equal(reg_find(f->r, "q")->n, 1);
	osip_message_init(&resp);
	assert_int_equal(reg_fill_contacts(f->r, "q", f->now, resp), 0);
	assert_int_equal(osip_message_get_contact(resp, 0, &c), 0);
	assert_int_equal(osip_contact_param_get_byname(c, "expires", &p), 0);
	assert_string_equal(p->gvalue, "100");
	assert_true(osip_message_get_contact(resp, 1, &c) < 0);
	osip_message_free(resp);
}

static void test_aor_limit(void **state)
{
	struct fx *f = *state;
	char user[16];

	for (int i = 0; i < 100; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(reg_bind(f->r, user, "sip:h", 60, "c", 1, 1000, NULL, f->now), 0);
	}
	assert_int_equal(reg_bind(f->r, "one-too-many", "sip:h", 60, "c", 1, 1000, NULL, f->now),
			 -ENOSPC);
	assert_int_equal(reg_aor_count(f->r), 100);
	reg_unbind_all(f->r, "u7");
	assert_int_equal(reg_aor_count(f->r), 99);
	assert_int_equal(reg_bind(f->r, "now-fits", "sip:h", 60, "c", 1, 1000, NULL, f->now), 0);
}

static int count_cb_n;
static void count_cb(void *arg, const struct reg_aor *a, const struct reg_binding *b)
{
	(void)arg;
	(void)a;
	(void)b;
	count_cb_n++;
}

static void test_many_bindings_grow(void **state)
{
	struct fx *f = *state;
	struct registrar *r;
	struct reg_limits big = lim;
	char user[16];

	big.max_aors = 50000;
	assert_int_equal(reg_new(&r, &f->tw, &big), 0);
	for (int i = 0; i < 20000; i++) {
		snprintf(user, sizeof(user), "%d", i);
		assert_int_equal(reg_bind(r, user, "sip:h", 60 + (unsigned)(i % 100), "c", 1, 1000,
					  NULL, f->now),
				 0);
		/* just after a growth began (at 16,384 addresses of record), with
		 * old buckets not yet moved: every one is found and walked */
		if (i == 16400) {
			count_cb_n = 0;
			reg_foreach(r, count_cb, NULL);
			assert_int_equal(count_cb_n, i + 1);
			for (int j = 0; j <= i; j += 7) {
				snprintf(user, sizeof(user), "%d", j);
				assert_non_null(reg_find(r, user));
			}
		}
	}
	count_cb_n = 0;
	reg_foreach(r, count_cb, NULL);
	assert_int_equal(count_cb_n, 20000);
	assert_non_null(reg_find(r, "12345"));
	advance(f, 100 * 1000);
	/* expiries 60..159 s: after 100 s those of 60..100 s (41 of every 100) went */
	assert_int_equal(reg_binding_count(r), 20000 - 200 * 41);
	advance(f, 100 * 1000);
	assert_int_equal(reg_binding_count(r), 0);
	reg_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bind_and_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_moves_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_expires_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_multi_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_domain_and_scheme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_and_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aor_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_bindings_grow, setup, teardown),
	};

	parser_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
