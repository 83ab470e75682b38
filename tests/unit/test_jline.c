/* Unit tests of cc/jline: an event line written by hand is byte for byte
 * what jansson prints for the same object, escapes and key order included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cc/jline.h"

/* The line as cc_publish built it with jansson. */
static char *by_jansson(const char *name, uint64_t seq, uint64_t ts, json_t *fields)
{
	json_t *o = json_object();
	char *line;

	if (name)
		json_object_set_new(o, "event", json_string(name));
	else if (json_object_get(fields, "ref"))
		json_object_set(o, "ref", json_object_get(fields, "ref"));
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	json_object_set_new(o, "ts", json_integer((json_int_t)ts));
	json_object_update_missing(o, fields);
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return line;
}

static void same(const char *name, json_t *fields)
{
	char buf[2048], *want = by_jansson(name, 42, 1765000000123ull, fields);
	ssize_t n = jline_event(buf, sizeof(buf), name, 42, 1765000000123ull, fields);

	assert_non_null(want);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	free(want);
	json_decref(fields);
}

static void test_same_as_jansson(void **state)
{
	(void)state;
	same("CallRinging",
	     json_pack("{s:s, s:s, s:s, s:s, s:s}", "call", "17", "dn", "2001", "from",
		       "sip:1001@sipha.test", "to", "sip:2001@x", "rp", "5000"));
	same("DeviceState", json_pack("{s:s, s:s}", "dn", "2001", "state", "busy"));
	/* escapes: quotes, backslash, every kind of control character, UTF-8 kept */
	same("X", json_pack("{s:s, s:s, s:s}", "a\"b", "q\"\\\b\f\n\r\t\x01\x1f end", "name",
			    "Z\xc3\xbcrich \xe2\x82\xac", "empty", ""));
	/* integers, booleans, null; keys the head holds are not repeated */
	same("Y", json_pack("{s:I, s:b, s:b, s:n, s:I, s:s, s:s}", "n", (json_int_t)-5, "t", 1, "f",
			    0, "z", "seq", (json_int_t)7, "event", "no", "ts", "no"));
	/* an answer: "ref" first, whatever its type */
	same(NULL, json_pack("{s:s, s:s}", "state", "ok", "ref", "r-1"));
	same(NULL, json_pack("{s:s, s:I}", "state", "ok", "ref", (json_int_t)9));
	same(NULL, json_pack("{s:s}", "state", "no ref"));
	same("E", json_object());
}

/* Key/value fields give the same line as the object made of them. */
static void test_kv(void **state)
{
	const struct jkv kv[] = { { "call", "17" },	    { "dn", "" },
				  { "from", "sip:a\"b@h" }, { "to", "Z\xc3\xbcrich" },
				  { "rp", NULL },	    { "seq", "skipped" } };
	const struct jkv bad[] = { { "from", "sip:\xff@h" } };
	const struct jkv surrogate[] = { { "from", "\xed\xa0\x80" } };
	char buf[1024], *want;
	json_t *o = json_object();
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < 5; i++)
		json_object_set_new(o, kv[i].k, kv[i].v ? json_string(kv[i].v) : json_null());
	json_object_set_new(o, "seq", json_string("skipped"));
	want = by_jansson("CallRinging", 3, 4, o);
	n = jline_event_kv(buf, sizeof(buf), "CallRinging", 3, 4, kv, 6);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	free(want);
	json_decref(o);
	/* not UTF-8: left to jansson's caller, which mends it */
	assert_int_equal(jline_event_kv(buf, sizeof(buf), "X", 1, 2, bad, 1), -EAGAIN);
	assert_int_equal(jline_event_kv(buf, sizeof(buf), "X", 1, 2, surrogate, 1), -EAGAIN);
	assert_int_equal(jline_event_kv(buf, 20, "X", 1, 2, kv, 4), -ENOSPC);
}

static void test_not_flat(void **state)
{
	char buf[256];
	json_t *f = json_pack("{s:s, s:[i]}", "a", "b", "list", 1);

	(void)state;
	assert_int_equal(jline_event(buf, sizeof(buf), "X", 1, 2, f), -EAGAIN);
	json_decref(f);
	f = json_pack("{s:f}", "real", 1.5);
	assert_int_equal(jline_event(buf, sizeof(buf), "X", 1, 2, f), -EAGAIN);
	json_decref(f);
	f = json_pack("{s:s}", "long", "0123456789012345678901234567890123456789");
	assert_int_equal(jline_event(buf, 40, "X", 1, 2, f), -ENOSPC);
	json_decref(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_jansson),
		cmocka_unit_test(test_not_flat),
		cmocka_unit_test(test_kv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
