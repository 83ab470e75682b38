/* URIs taken as written: canonical user parts and raw To/Contact URIs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "sip/msg.h"

/* URI is given as it lies in a received message: not NUL-terminated, and
 * here right before an unmapped page, so any read past its end faults (a
 * sscanf() on it once did, inside libc where ASan does not look: found by
 * tests/fuzz/fuzz_sipmsg). */
static void user_is(const char *uri, const char *want)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = strlen(uri);
	char out[128], *map;

	map = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	assert_true(map != MAP_FAILED && n < (size_t)pg);
	assert_int_equal(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	memcpy(map + pg - n, uri, n);
	assert_int_equal(sipmsg_uri_user(map + pg - n, n, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	munmap(map, 2 * (size_t)pg);
}

static void test_user_canonical(void **state)
{
	char out[8];

	(void)state;
	user_is("sip:1001@sipha.test", "1001");
	/* an escaped NUL stays escaped, with what follows it */
	user_is("sip:null-%00-null@example.com", "null-%00-null");
	/* escapes of plain characters decode; reserved ones stay, upper-case */
	user_is("sip:%61lice@x", "alice");
	user_is("sip:%4a%4A@x", "JJ");
	user_is("sip:sips%3auser%40example.com@example.net", "sips%3Auser%40example.com");
	/* user-unreserved characters are plain */
	user_is("sip:+1;isub=12&x=y@gw", "+1;isub=12&x=y");
	/* a stray % is no escape */
	user_is("sip:a%zz@h", "a%25zz");
	assert_int_equal(sipmsg_uri_user("sip:host.only", 13, out, sizeof(out)), -ENOENT);
	assert_int_equal(sipmsg_uri_user("nocolon", 7, out, sizeof(out)), -EINVAL);
	assert_int_equal(sipmsg_uri_user("sip:aaaaaaaaaaaa@h", 18, out, sizeof(out)),
			 -ENAMETOOLONG);
}

struct got {
	char uri[8][128];
	int n;
};

static void collect(void *arg, const char *uri, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < 8 && len < 128);
	memcpy(g->uri[g->n], uri, len);
	g->uri[g->n++][len] = '\0';
}

static void test_raw_uris(void **state)
{
	static const char msg[] =
		"REGISTER sip:example.com SIP/2.0\r\n"
		"To: \"A, <b>\" <sip:null-%00-null@example.com>;tag=x\r\n"
		"Contact: <sip:%00@h5>, \"x,y\" <sip:a@b;transport=tcp>;expires=5\r\n"
		"Contact: sip:c@d;unknownparam\r\n"
		"m: <sip:e@f?Route=%3Csip:r%3E>\r\n"
		"Content-Length: 0\r\n\r\n";
	struct got g = { .n = 0 };

	(void)state;
	assert_int_equal(sipmsg_raw_uris(msg, sizeof(msg) - 1, false, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.uri[0], "sip:null-%00-null@example.com");
	g.n = 0;
	assert_int_equal(sipmsg_raw_uris(msg, sizeof(msg) - 1, true, collect, &g), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.uri[0], "sip:%00@h5");
	assert_string_equal(g.uri[1], "sip:a@b;transport=tcp"); /* URI params kept */
	assert_string_equal(g.uri[2], "sip:c@d"); /* header params not */
	assert_string_equal(g.uri[3], "sip:e@f?Route=%3Csip:r%3E");
	assert_int_equal(sipmsg_raw_uris("junk", 4, true, collect, &g), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_canonical),
		cmocka_unit_test(test_raw_uris),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
