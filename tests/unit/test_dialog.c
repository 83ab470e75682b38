/* Unit tests of sip/dialog: a request written in place (dlg_write_request)
 * says what the one built with libosip2 (dlg_build_request) says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sip/dialog.h"
#include "sip/msg.h"

static const char invite[] =
	"INVITE sip:2001@sipha.test SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd1\r\n"
	"Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
	"From: \"Alice A\" <sip:1001@sipha.test>;tag=at\r\nTo: <sip:2001@sipha.test>\r\n"
	"Call-ID: dlg-1@h\r\nCSeq: 5 INVITE\r\nContact: <sip:1001@10.0.0.1:5060>\r\n"
	"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

static char *str_of(int (*fn)(void *, char **), void *x)
{
	char *s = NULL, *r;

	if (!x || fn(x, &s) || !s)
		return strdup("");
	r = strdup(s);
	osip_free(s);
	return r;
}

#define SAME(fn, a, b)                                              \
	do {                                                        \
		char *x_ = str_of((int (*)(void *, char **))fn, a); \
		char *y_ = str_of((int (*)(void *, char **))fn, b); \
		assert_string_equal(x_, y_);                        \
		free(x_);                                           \
		free(y_);                                           \
	} while (0)

static void compare(struct dialog *d, const char *method, const char *body)
{
	osip_message_t *slow = NULL, *fast = NULL, *back = NULL;
	uint32_t cseq = d->local_cseq;
	char out[4096], *s = NULL;
	osip_body_t *b = NULL;
	size_t n;
	ssize_t w;

	assert_int_equal(dlg_build_request(d, method, 9, "192.0.2.1", 5060, SIP_PROTO_UDP,
					   "z9hG4bKx", NULL, &slow),
			 0);
	assert_int_equal(sipmsg_to_str(slow, &s, &n), 0);
	assert_int_equal(sipmsg_parse(s, n, true, &back), 0);
	w = dlg_write_request(d, method, 9, "192.0.2.1", 5060, SIP_PROTO_UDP, "z9hG4bKx",
			      body ? "application/sdp" : NULL, body, body ? strlen(body) : 0, out,
			      sizeof(out));
	assert_true(w > 0);
	assert_int_equal(d->local_cseq, cseq); /* a given CSeq is not counted */
	assert_int_equal(sipmsg_parse(out, (size_t)w, true, &fast), 0);
	assert_string_equal(fast->sip_method, method);
	SAME(osip_uri_to_str, back->req_uri, fast->req_uri);
	SAME(osip_via_to_str, osip_list_get(&back->vias, 0), osip_list_get(&fast->vias, 0));
	SAME(osip_from_to_str, back->from, fast->from);
	SAME(osip_to_to_str, back->to, fast->to);
	SAME(osip_call_id_to_str, back->call_id, fast->call_id);
	SAME(osip_cseq_to_str, back->cseq, fast->cseq);
	assert_int_equal(osip_list_size(&back->routes), osip_list_size(&fast->routes));
	for (int i = 0; i < osip_list_size(&back->routes); i++)
		SAME(osip_route_to_str, osip_list_get(&back->routes, i),
		     osip_list_get(&fast->routes, i));
	if (body) {
		assert_int_equal(osip_message_get_body(fast, 0, &b), 0);
		assert_memory_equal(b->body, body, strlen(body));
	}
	osip_message_free(slow);
	osip_message_free(fast);
	osip_message_free(back);
	free(s);
}

static void test_write_request(void **state)
{
	osip_message_t *req = NULL;
	char small[64], big[1024];
	struct dialog d;
	uint32_t cseq;

	(void)state;
	sipmsg_init();
	assert_int_equal(sipmsg_parse(invite, sizeof(invite) - 1, true, &req), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(dlg_init_uas(&d, req, "st1"), 0);
	assert_true(d.nroutes == 2);
	compare(&d, "BYE", NULL);
	compare(&d, "ACK", "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\n");
	/* without a given CSeq the dialog's next one is taken, but only by a
	 * request that was written */
	cseq = d.local_cseq;
	assert_true(dlg_write_request(&d, "BYE", 0, "h", 1, SIP_PROTO_TCP, "z9hG4bKy", NULL, NULL,
				      0, small, sizeof(small)) == -ENOSPC);
	assert_int_equal(d.local_cseq, cseq);
	assert_true(dlg_write_request(&d, "BYE", 0, "h", 1, SIP_PROTO_TCP, "z9hG4bKy", NULL, NULL,
				      0, big, sizeof(big)) > 0);
	assert_int_equal(d.local_cseq, cseq + 1);
	assert_non_null(strstr(big, "CSeq: "));
	/* an escaped NUL goes through libosip2's printer */
	free(d.remote_target);
	d.remote_target = strdup("sip:a" SIPMSG_NUL_ESC "b@h");
	assert_int_equal(dlg_write_request(&d, "BYE", 3, "h", 1, SIP_PROTO_UDP, "z9hG4bKy", NULL,
					   NULL, 0, small, sizeof(small)),
			 -EAGAIN);
	dlg_free(&d);
	osip_message_free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
