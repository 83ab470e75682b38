/* Unit tests of core/smalloc: size classes, reuse, alignment, realloc across
 * classes and to malloc, foreign pointers, and libosip2 running on it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/smalloc.h"
#include "sip/msg.h"

static void test_classes(void **state)
{
	long before = smalloc_live();
	void *p[SMALLOC_MAX + 2];

	(void)state;
	for (size_t n = 0; n <= SMALLOC_MAX + 1; n++) {
		p[n] = smalloc(n);
		assert_non_null(p[n]);
		assert_int_equal((uintptr_t)p[n] % 16, 0);
		assert_int_equal(smalloc_owns(p[n]), n <= SMALLOC_MAX);
		memset(p[n], (int)(n & 0xff), n); /* ASan: the whole size is usable */
	}
	assert_int_equal(smalloc_live() - before, SMALLOC_MAX + 1);
	for (size_t n = 0; n <= SMALLOC_MAX + 1; n++) {
		for (size_t i = 0; i < n; i++)
			assert_int_equal(((unsigned char *)p[n])[i], n & 0xff);
		sfree(p[n]);
	}
	assert_int_equal(smalloc_live(), before);
}

static void test_reuse(void **state)
{
	void *a, *b;

	(void)state;
	a = smalloc(40);
	sfree(a);
	b = smalloc(40); /* the same class: the block comes back */
	assert_ptr_equal(a, b);
	sfree(b);
	sfree(NULL);
}

static void test_grow(void **state)
{
	char *p = srealloc(NULL, 10), *q;

	(void)state;
	memcpy(p, "0123456789", 10);
	q = srealloc(p, 12); /* still fits its class */
	assert_ptr_equal(p, q);
	q = srealloc(q, 200); /* another class, contents kept */
	assert_true(smalloc_owns(q));
	assert_memory_equal(q, "0123456789", 10);
	q = srealloc(q, 5000); /* to malloc */
	assert_false(smalloc_owns(q));
	assert_memory_equal(q, "0123456789", 10);
	q = srealloc(q, 6000); /* malloc's realloc */
	assert_memory_equal(q, "0123456789", 10);
	sfree(q);
}

static void test_foreign(void **state)
{
	char *m = strdup("a malloc'd string");

	(void)state;
	assert_non_null(m);
	/* A block the application malloc'd and libosip2 frees. */
	assert_false(smalloc_owns(m));
	sfree(m);
}

static void test_osip(void **state)
{
	static const char reg[] = "REGISTER sip:sipha.test SIP/2.0\r\n"
				  "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport\r\n"
				  "Max-Forwards: 70\r\nFrom: <sip:a@sipha.test>;tag=1\r\n"
				  "To: <sip:a@sipha.test>\r\nCall-ID: r1@h\r\nCSeq: 7 REGISTER\r\n"
				  "Contact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n";
	osip_message_t *m = NULL, *c = NULL;
	long before;
	char *s;
	size_t n;

	(void)state;
	sipmsg_init();
	before = smalloc_live();
	assert_int_equal(sipmsg_parse(reg, sizeof(reg) - 1, true, &m), 0);
	assert_true(smalloc_live() > before); /* libosip2 allocates here */
	assert_true(smalloc_owns(m->call_id->number));
	assert_int_equal(osip_message_clone(m, &c), 0);
	assert_int_equal(sipmsg_to_str(c, &s, &n), 0);
	assert_non_null(strstr(s, "Call-ID: r1@h"));
	free(s);
	osip_message_free(c);
	osip_message_free(m);
	assert_int_equal(smalloc_live(), before); /* and frees every block */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes), cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_grow),	cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_osip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
