/* Unit tests of userspace/cc/ctireq.c, the CTI request decoder: every
 * request with all its fields, the ref echoed as compact JSON text, and
 * every kind of malformed line (missing, unknown and mistyped fields, bad
 * numbers and strings, duplicate keys, not JSON, not an object, trailing
 * bytes, over-long and deeply nested lines, invalid UTF-8), each refused
 * with -EBADMSG and a reason, the ref kept whenever it could be read.  Then
 * a corpus of hostile lines and a deterministic mutation loop, run under
 * ASan/UBSan with each line in a buffer of its exact length. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cc/ctireq.h"

#define WHY 256

/* Decodes LEN bytes of LINE from a heap copy of exactly that size, so a
 * read past the end is an ASan error. */
static int dec_n(const char *line, size_t len, struct cti_req *r, char *why)
{
	char *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, line, len);
	why[0] = '\0';
	ret = cti_req_decode(copy, len, r, why, WHY);
	free(copy);
	return ret;
}

static int dec(const char *line, struct cti_req *r, char *why)
{
	return dec_n(line, strlen(line), r, why);
}

/* LINE decodes to 0. */
static void ok(const char *line, struct cti_req *r)
{
	char why[WHY];
	int ret = dec(line, r, why);

	if (ret)
		fail_msg("%s: %d (%s), expected 0", line, ret, why);
}

/* LINE (LEN bytes; 0: strlen) is refused with a reason, and REF is what
 * the decoder could read of the ref ("" when nothing). */
static void bad_n(const char *line, size_t len, const char *ref)
{
	struct cti_req r;
	char why[WHY];
	int ret;

	if (!len)
		len = strlen(line);
	ret = dec_n(line, len, &r, why);
	if (ret != -EBADMSG)
		fail_msg("%.200s: %d, expected -EBADMSG", line, ret);
	if (!why[0])
		fail_msg("%.200s: refused without a reason", line);
	if (strcmp(r.ref, ref))
		fail_msg("%.200s: ref '%s', expected '%s' (why: %s)", line, r.ref, ref, why);
}

static void bad(const char *line, const char *ref)
{
	bad_n(line, 0, ref);
}

/* A literal with NUL bytes in it, whole. */
#define BADN(lit, ref) bad_n(lit, sizeof(lit) - 1, ref)

/* LINE is refused with a reason containing WANT. */
static void bad_why(const char *line, const char *want)
{
	struct cti_req r;
	char why[WHY];

	assert_int_equal(dec(line, &r, why), -EBADMSG);
	if (!strstr(why, want))
		fail_msg("%s: reason '%s' lacks '%s'", line, why, want);
}

/* A string of N copies of C. */
static char *rep(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* --- valid requests ------------------------------------------------------------- */

static void test_hello(void **state)
{
	struct cti_req r;

	(void)state;
	ok("{\"req\":\"Hello\"}", &r);
	assert_int_equal(r.type, CR_HELLO);
	assert_string_equal(r.ref, "");
	assert_false(r.has_since);
	assert_int_equal(r.since_seq, 0);
	assert_string_equal(r.client, "");

	ok("{\"req\":\"Hello\",\"ref\":\"h1\",\"since_seq\":42,\"client\":\"crm-1\"}", &r);
	assert_int_equal(r.type, CR_HELLO);
	assert_string_equal(r.ref, "\"h1\"");
	assert_true(r.has_since);
	assert_int_equal(r.since_seq, 42);
	assert_string_equal(r.client, "crm-1");

	/* since_seq 0 is present (a client that has seen nothing), and may
	 * come as a string of digits; fields in any order, with spaces */
	ok(" { \"since_seq\" : 0 , \"req\" : \"Hello\" } ", &r);
	assert_true(r.has_since);
	assert_int_equal(r.since_seq, 0);
	ok("{\"since_seq\":\"18446744073709551615\",\"req\":\"Hello\"}", &r);
	assert_int_equal(r.since_seq, UINT64_MAX);
	ok("{\"req\":\"Hello\",\"since_seq\":9223372036854775807}", &r);
	assert_int_equal(r.since_seq, INT64_MAX);
	ok("{\"req\":\"Hello\",\"since_seq\":\"007\"}", &r);
	assert_int_equal(r.since_seq, 7);
	/* non-ASCII text is fine */
	ok("{\"req\":\"Hello\",\"client\":\"caf\\u00e9 \xe2\x82\xac\"}", &r);
	assert_string_equal(r.client, "caf\xc3\xa9 \xe2\x82\xac");
}

static void test_monitor(void **state)
{
	struct cti_req r;

	(void)state;
	ok("{\"req\":\"Monitor\",\"dn\":\"1001\",\"ref\":7}", &r);
	assert_int_equal(r.type, CR_MONITOR);
	assert_string_equal(r.dn, "1001");
	assert_string_equal(r.ref, "7");
	assert_string_equal(r.agent, "");
	ok("{\"req\":\"StopMonitor\",\"dn\":\"2000\"}", &r);
	assert_int_equal(r.type, CR_STOP_MONITOR);
	assert_string_equal(r.dn, "2000");
	assert_string_equal(r.ref, "");
}

static void test_agent_requests(void **state)
{
	struct cti_req r;

	(void)state;
	ok("{\"req\":\"AgentLogin\",\"agent\":\"alice\",\"dn\":\"1001\",\"ref\":\"L\"}", &r);
	assert_int_equal(r.type, CR_AGENT_LOGIN);
	assert_string_equal(r.agent, "alice");
	assert_string_equal(r.dn, "1001");
	assert_string_equal(r.ref, "\"L\"");

	ok("{\"req\":\"AgentReady\",\"agent\":\"alice\"}", &r);
	assert_int_equal(r.type, CR_AGENT_READY);
	assert_string_equal(r.agent, "alice");
	assert_string_equal(r.dn, "");

	ok("{\"req\":\"AgentNotReady\",\"agent\":\"alice\",\"reason\":\"lunch\"}", &r);
	assert_int_equal(r.type, CR_AGENT_NOT_READY);
	assert_string_equal(r.agent, "alice");
	assert_true(r.has_reason);
	assert_string_equal(r.reason, "lunch");
	ok("{\"req\":\"AgentNotReady\",\"agent\":\"alice\"}", &r);
	assert_false(r.has_reason);
	assert_string_equal(r.reason, "");
	ok("{\"req\":\"AgentNotReady\",\"agent\":\"alice\",\"reason\":\"\"}", &r);
	assert_true(r.has_reason); /* an empty reason is a reason */
	assert_string_equal(r.reason, "");

	ok("{\"req\":\"AgentLogout\",\"agent\":\"alice\",\"ref\":-1}", &r);
	assert_int_equal(r.type, CR_AGENT_LOGOUT);
	assert_string_equal(r.agent, "alice");
	assert_string_equal(r.ref, "-1");
}

static void test_call_requests(void **state)
{
	struct cti_req r;

	(void)state;
	ok("{\"req\":\"RouteCall\",\"call\":\"12\",\"target\":\"1001\",\"ref\":1}", &r);
	assert_int_equal(r.type, CR_ROUTE_CALL);
	assert_int_equal(r.call, 12);
	assert_string_equal(r.target, "1001");
	assert_string_equal(r.ref, "1");
	ok("{\"req\":\"RouteCall\",\"call\":12,\"target\":\"sip:queue@10.0.0.5:5080\"}", &r);
	assert_int_equal(r.call, 12);
	assert_string_equal(r.target, "sip:queue@10.0.0.5:5080");

	ok("{\"req\":\"ReleaseCall\",\"call\":\"98765432109876543\"}", &r);
	assert_int_equal(r.type, CR_RELEASE_CALL);
	assert_int_equal(r.call, UINT64_C(98765432109876543));
	ok("{\"req\":\"ReleaseCall\",\"call\":98765432109876543}", &r);
	assert_int_equal(r.call, UINT64_C(98765432109876543));
	ok("{\"req\":\"ReleaseCall\",\"call\":\"18446744073709551615\"}", &r);
	assert_int_equal(r.call, UINT64_MAX);
	ok("{\"req\":\"ReleaseCall\",\"call\":0}", &r);
	assert_int_equal(r.call, 0);
}

/* Every field at exactly its limit is accepted. */
static void test_limits_accepted(void **state)
{
	char line[2048];
	struct cti_req r;
	char *s64 = rep('x', 64), *s512 = rep('t', CTI_TARGET_MAX);

	(void)state;
	snprintf(line, sizeof(line), "{\"req\":\"AgentLogin\",\"agent\":\"%s\",\"dn\":\"%s\"}", s64,
		 s64);
	ok(line, &r);
	assert_string_equal(r.agent, s64);
	assert_string_equal(r.dn, s64);
	snprintf(line, sizeof(line),
		 "{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"%s\"}", s64);
	ok(line, &r);
	assert_string_equal(r.reason, s64);
	snprintf(line, sizeof(line), "{\"req\":\"Hello\",\"client\":\"%s\"}", s64);
	ok(line, &r);
	assert_string_equal(r.client, s64);
	snprintf(line, sizeof(line), "{\"req\":\"RouteCall\",\"call\":1,\"target\":\"%s\"}", s512);
	ok(line, &r);
	assert_string_equal(r.target, s512);
	/* 32 two-byte characters are 64 bytes */
	ok("{\"req\":\"Monitor\",\"dn\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	   "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	   "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\""
	   "}",
	   &r);
	assert_int_equal(strlen(r.dn), 64);
	free(s64);
	free(s512);
}

/* The ref comes back as the compact JSON text of what was sent. */
static void test_ref_echo(void **state)
{
	static const struct {
		const char *in, *ref;
	} c[] = {
		{ "\"abc\"", "\"abc\"" },
		{ "\"\"", "\"\"" },
		{ "  \"spaced out\"  ", "\"spaced out\"" },
		{ "\"q\\\"uote\"", "\"q\\\"uote\"" },
		{ "\"back\\\\slash\"", "\"back\\\\slash\"" },
		{ "\"tab\\there\"", "\"tab\\there\"" },
		{ "\"\\u00e9\"", "\"\xc3\xa9\"" },
		{ "\"\xc3\xa9\"", "\"\xc3\xa9\"" },
		{ "\"\\u0041\"", "\"A\"" },
		{ "\"\\u001f\"", "\"\\u001F\"" }, /* jansson writes upper case */
		{ "\"\\/\"", "\"/\"" },
		{ "0", "0" },
		{ "42", "42" },
		{ "-17", "-17" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "-9223372036854775808", "-9223372036854775808" },
	};
	char line[512];
	struct cti_req r;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(line, sizeof(line), "{\"ref\":%s,\"req\":\"Hello\"}", c[i].in);
		ok(line, &r);
		if (strcmp(r.ref, c[i].ref))
			fail_msg("ref %s: got '%s', expected '%s'", c[i].in, r.ref, c[i].ref);
		/* and the same ref is kept when the request is refused */
		snprintf(line, sizeof(line), "{\"ref\":%s,\"req\":\"Nope\"}", c[i].in);
		bad(line, c[i].ref);
	}
}

static void test_ref_limits(void **state)
{
	char line[1024];
	struct cti_req r;
	char *s126 = rep('r', 126), *s127 = rep('r', 127);

	(void)state;
	/* 126 characters quoted are CTI_REF_MAX bytes of JSON text */
	snprintf(line, sizeof(line), "{\"ref\":\"%s\",\"req\":\"Hello\"}", s126);
	ok(line, &r);
	assert_int_equal(strlen(r.ref), CTI_REF_MAX);
	snprintf(line, sizeof(line), "{\"ref\":\"%s\",\"req\":\"Hello\"}", s127);
	bad(line, "");
	bad_why(line, "ref");
	/* escapes count as written out: 64 newlines are 130 bytes of text */
	{
		char esc[64 * 2 + 1];

		for (int i = 0; i < 64; i++)
			memcpy(esc + 2 * i, "\\n", 2);
		esc[128] = '\0';
		snprintf(line, sizeof(line), "{\"ref\":\"%s\",\"req\":\"Hello\"}", esc);
		bad(line, "");
	}
	/* a ref that is neither a string nor an integer */
	bad("{\"ref\":1.5,\"req\":\"Hello\"}", "");
	bad("{\"ref\":1e3,\"req\":\"Hello\"}", "");
	bad("{\"ref\":true,\"req\":\"Hello\"}", "");
	bad("{\"ref\":null,\"req\":\"Hello\"}", "");
	bad("{\"ref\":[1],\"req\":\"Hello\"}", "");
	bad("{\"ref\":{\"a\":1},\"req\":\"Hello\"}", "");
	bad_why("{\"ref\":false,\"req\":\"Hello\"}", "ref");
	/* a NUL in it cannot even be parsed */
	bad("{\"ref\":\"a\\u0000b\",\"req\":\"Hello\"}", "");
	free(s126);
	free(s127);
}

/* Each call starts from a clean struct: nothing of the last one is left. */
static void test_reset_between_calls(void **state)
{
	struct cti_req r;
	char why[WHY];

	(void)state;
	ok("{\"req\":\"Hello\",\"ref\":\"x\",\"since_seq\":5,\"client\":\"c\"}", &r);
	ok("{\"req\":\"Monitor\",\"dn\":\"1001\"}", &r);
	assert_string_equal(r.ref, "");
	assert_false(r.has_since);
	assert_int_equal(r.since_seq, 0);
	assert_string_equal(r.client, "");
	ok("{\"req\":\"Hello\",\"ref\":\"x\"}", &r);
	assert_int_equal(dec("nonsense", &r, why), -EBADMSG);
	assert_string_equal(r.ref, "");
}

static void test_names(void **state)
{
	static const char *const want[CR_COUNT] = {
		"Hello",	 "Monitor",	"StopMonitor", "AgentLogin",  "AgentReady",
		"AgentNotReady", "AgentLogout", "RouteCall",   "ReleaseCall",
	};

	(void)state;
	for (int t = 0; t < CR_COUNT; t++)
		assert_string_equal(cti_req_name((enum cti_req_type)t), want[t]);
	assert_string_equal(cti_req_name(CR_COUNT), "?");
	assert_string_equal(cti_req_name((enum cti_req_type) - 1), "?");
	assert_false(cti_req_changes_state(CR_HELLO));
	assert_false(cti_req_changes_state(CR_MONITOR));
	assert_false(cti_req_changes_state(CR_STOP_MONITOR));
	assert_true(cti_req_changes_state(CR_AGENT_LOGIN));
	assert_true(cti_req_changes_state(CR_AGENT_READY));
	assert_true(cti_req_changes_state(CR_AGENT_NOT_READY));
	assert_true(cti_req_changes_state(CR_AGENT_LOGOUT));
	assert_true(cti_req_changes_state(CR_ROUTE_CALL));
	assert_true(cti_req_changes_state(CR_RELEASE_CALL));
}

/* --- malformed requests ------------------------------------------------------------ */

static void test_missing_fields(void **state)
{
	(void)state;
	bad("{\"ref\":\"m\"}", "\"m\"");
	bad_why("{}", "req");
	bad("{\"ref\":1,\"req\":\"Monitor\"}", "1");
	bad_why("{\"req\":\"Monitor\"}", "dn");
	bad_why("{\"req\":\"StopMonitor\"}", "dn");
	bad_why("{\"req\":\"AgentLogin\",\"agent\":\"a\"}", "dn");
	bad_why("{\"req\":\"AgentLogin\",\"dn\":\"1001\"}", "agent");
	bad("{\"req\":\"AgentLogin\",\"ref\":\"z\"}", "\"z\"");
	bad_why("{\"req\":\"AgentReady\"}", "agent");
	bad_why("{\"req\":\"AgentNotReady\",\"reason\":\"x\"}", "agent");
	bad_why("{\"req\":\"AgentLogout\"}", "agent");
	bad_why("{\"req\":\"RouteCall\",\"call\":1}", "target");
	bad_why("{\"req\":\"RouteCall\",\"target\":\"1001\"}", "call");
	bad_why("{\"req\":\"ReleaseCall\",\"ref\":\"q\"}", "call");
	bad("{\"req\":\"ReleaseCall\",\"ref\":\"q\"}", "\"q\"");
}

static void test_unknown_request(void **state)
{
	(void)state;
	bad_why("{\"req\":\"Goodbye\",\"ref\":\"u\"}", "unknown");
	bad("{\"req\":\"Goodbye\",\"ref\":\"u\"}", "\"u\"");
	bad("{\"req\":\"hello\"}", ""); /* names are case-sensitive */
	bad("{\"req\":\"HELLO\"}", "");
	bad("{\"req\":\" Hello\"}", "");
	bad("{\"req\":\"Hello \"}", "");
	bad("{\"req\":\"\"}", "");
	bad("{\"req\":\"?\",\"ref\":3}", "3");
	bad("{\"req\":\"Hello\\u0000\"}", "");
}

static void test_unknown_field(void **state)
{
	(void)state;
	bad_why("{\"req\":\"Hello\",\"dn\":\"1001\",\"ref\":\"f\"}", "dn");
	bad("{\"req\":\"Hello\",\"dn\":\"1001\",\"ref\":\"f\"}", "\"f\"");
	bad_why("{\"req\":\"Monitor\",\"dn\":\"1001\",\"agent\":\"a\"}", "agent");
	bad_why("{\"req\":\"Monitor\",\"dn\":\"1001\",\"DN\":\"1001\"}", "DN");
	bad_why("{\"req\":\"Monitor\",\"dn\":\"1001\",\"foo\":null}", "foo");
	bad("{\"req\":\"AgentReady\",\"agent\":\"a\",\"reason\":\"r\"}", "");
	bad("{\"req\":\"AgentLogout\",\"agent\":\"a\",\"dn\":\"1001\"}", "");
	bad("{\"req\":\"AgentLogin\",\"agent\":\"a\",\"dn\":\"1\",\"since_seq\":1}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":1,\"target\":\"1001\"}", "");
	bad("{\"req\":\"RouteCall\",\"call\":1,\"target\":\"1001\",\"client\":\"c\"}", "");
	bad("{\"req\":\"Hello\",\"\":1}", "");
	bad("{\"req\":\"Hello\",\"ref \":1}", "");
	/* a long unknown key: the reason is cut, not overflowed */
	{
		char line[CTI_LINE_MAX];
		char *k = rep('k', 4000);
		struct cti_req r;
		char why[WHY];

		snprintf(line, sizeof(line), "{\"req\":\"Hello\",\"%s\":1}", k);
		assert_int_equal(dec(line, &r, why), -EBADMSG);
		assert_true(strlen(why) < WHY);
		free(k);
	}
}

static void test_wrong_types(void **state)
{
	(void)state;
	bad_why("{\"req\":5}", "req");
	bad("{\"req\":null,\"ref\":\"w\"}", "\"w\"");
	bad("{\"req\":[\"Hello\"]}", "");
	bad("{\"req\":{\"Hello\":1}}", "");
	bad("{\"req\":true}", "");
	bad_why("{\"req\":\"Monitor\",\"dn\":1001,\"ref\":\"w\"}", "dn");
	bad("{\"req\":\"Monitor\",\"dn\":1001,\"ref\":\"w\"}", "\"w\"");
	bad("{\"req\":\"Monitor\",\"dn\":null}", "");
	bad("{\"req\":\"Monitor\",\"dn\":[\"1001\"]}", "");
	bad("{\"req\":\"AgentReady\",\"agent\":true}", "");
	bad("{\"req\":\"AgentReady\",\"agent\":{}}", "");
	bad("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":5}", "");
	bad("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":null}", "");
	bad("{\"req\":\"Hello\",\"client\":3}", "");
	bad_why("{\"req\":\"Hello\",\"since_seq\":{}}", "since_seq");
	bad("{\"req\":\"Hello\",\"since_seq\":true}", "");
	bad("{\"req\":\"Hello\",\"since_seq\":null}", "");
	bad("{\"req\":\"Hello\",\"since_seq\":1.0}", "");
	bad("{\"req\":\"RouteCall\",\"call\":1,\"target\":1001}", "");
	bad("{\"req\":\"RouteCall\",\"call\":1,\"target\":[]}", "");
	bad_why("{\"req\":\"ReleaseCall\",\"call\":1.5}", "call");
	bad("{\"req\":\"ReleaseCall\",\"call\":true}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":[1]}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":null}", "");
}

static void test_numbers(void **state)
{
	(void)state;
	/* negative */
	bad_why("{\"req\":\"ReleaseCall\",\"call\":-1,\"ref\":\"n\"}", "negative");
	bad("{\"req\":\"ReleaseCall\",\"call\":-1,\"ref\":\"n\"}", "\"n\"");
	bad("{\"req\":\"Hello\",\"since_seq\":-5}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":-9223372036854775808}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"-1\"}", "");
	/* too big for JSON integers: not even parsed */
	bad("{\"req\":\"ReleaseCall\",\"call\":9223372036854775808,\"ref\":\"n\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":99999999999999999999999999}", "");
	bad("{\"req\":\"Hello\",\"since_seq\":-99999999999999999999999999}", "");
	/* too big for 64 bits as a string */
	bad_why("{\"req\":\"ReleaseCall\",\"call\":\"18446744073709551616\"}", "range");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"99999999999999999999\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"999999999999999999999\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"000000000000000000001\"}", "");
	/* reals and exponents are not integers */
	bad("{\"req\":\"ReleaseCall\",\"call\":1e3}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":1E400}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":12.0}", "");
	/* strings that are not plain decimal digits */
	bad_why("{\"req\":\"ReleaseCall\",\"call\":\"\"}", "call");
	bad("{\"req\":\"ReleaseCall\",\"call\":\" 12\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"12 \"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"+12\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"12a\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"0x12\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"1e3\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"1.5\"}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":\"\\u0661\"}", ""); /* Arabic-Indic one */
	bad("{\"req\":\"Hello\",\"since_seq\":\"-0\"}", "");
	/* JSON number syntax errors */
	bad("{\"req\":\"ReleaseCall\",\"call\":012}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":+12}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":0x12}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":NaN}", "");
	bad("{\"req\":\"ReleaseCall\",\"call\":Infinity}", "");
}

static void test_bad_strings(void **state)
{
	char line[1024];
	char *s65 = rep('x', 65), *s513 = rep('t', CTI_TARGET_MAX + 1);

	(void)state;
	/* control characters, escaped */
	bad_why("{\"req\":\"Monitor\",\"dn\":\"10\\u000101\",\"ref\":\"c\"}", "control");
	bad("{\"req\":\"Monitor\",\"dn\":\"10\\u000101\",\"ref\":\"c\"}", "\"c\"");
	bad("{\"req\":\"Monitor\",\"dn\":\"1001\\n\"}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"\\t1001\"}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"\\u001f\"}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"\\u007f\"}", "");
	bad("{\"req\":\"AgentReady\",\"agent\":\"a\\rb\"}", "");
	bad("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\u001b[31m\"}", "");
	bad("{\"req\":\"Hello\",\"client\":\"x\\by\"}", "");
	bad("{\"req\":\"RouteCall\",\"call\":1,\"target\":\"sip:a@b\\r\\nX: y\"}", "");
	/* raw control bytes inside a JSON string: not JSON */
	bad("{\"req\":\"Monitor\",\"dn\":\"10\x01\"}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"10\t01\"}", "");
	/* NUL, escaped or raw */
	bad("{\"req\":\"Monitor\",\"dn\":\"10\\u000001\",\"ref\":\"c\"}", "");
	bad("{\"req\":\"AgentReady\",\"agent\":\"\\u0000\"}", "");
	BADN("{\"req\":\"Monitor\",\"dn\":\"10\0001\"}", "");
	BADN("{\"req\":\"Hello\"}\0", "");
	BADN("\0{\"req\":\"Hello\"}", "");
	BADN("{\"ref\":5,\"req\":\"Hello\"}\0", "");
	/* empty where a value is needed */
	bad_why("{\"req\":\"Monitor\",\"dn\":\"\"}", "empty");
	bad("{\"req\":\"AgentReady\",\"agent\":\"\"}", "");
	bad("{\"req\":\"Hello\",\"client\":\"\"}", "");
	bad("{\"req\":\"RouteCall\",\"call\":1,\"target\":\"\"}", "");
	/* one byte over each limit */
	snprintf(line, sizeof(line), "{\"req\":\"Monitor\",\"dn\":\"%s\",\"ref\":\"l\"}", s65);
	bad(line, "\"l\"");
	bad_why(line, "longer");
	snprintf(line, sizeof(line), "{\"req\":\"AgentReady\",\"agent\":\"%s\"}", s65);
	bad(line, "");
	snprintf(line, sizeof(line),
		 "{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"%s\"}", s65);
	bad(line, "");
	snprintf(line, sizeof(line), "{\"req\":\"Hello\",\"client\":\"%s\"}", s65);
	bad(line, "");
	snprintf(line, sizeof(line), "{\"req\":\"RouteCall\",\"call\":1,\"target\":\"%s\"}", s513);
	bad(line, "");
	/* 33 two-byte characters are 66 bytes */
	bad("{\"req\":\"Monitor\",\"dn\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
	    "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
	    "");
	free(s65);
	free(s513);
}

static void test_duplicates(void **state)
{
	(void)state;
	bad("{\"req\":\"Hello\",\"req\":\"Hello\"}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"1001\",\"dn\":\"1002\"}", "");
	bad("{\"ref\":1,\"req\":\"Hello\",\"ref\":2}", "");
	bad("{\"req\":\"Monitor\",\"dn\":\"1001\",\"\\u0064n\":\"1002\"}", ""); /* escaped "dn" */
}

static void test_not_json(void **state)
{
	(void)state;
	bad("hello", "");
	bad("{", "");
	bad("}", "");
	bad("{\"req\":}", "");
	bad("{\"req\" \"Hello\"}", "");
	bad("{\"req\":\"Hello\",}", "");
	bad("{,\"req\":\"Hello\"}", "");
	bad("{'req':'Hello'}", "");
	bad("{req:\"Hello\"}", "");
	bad("{\"req\":\"Hello\"", "");
	bad("{\"req\":\"Hello", "");
	bad("{\"req\":\"Hel\\lo\"}", "");
	bad("{\"req\":\"Hello\\u12\"}", "");
	bad("{\"req\":\"Hello\" /* c */}", "");
	bad("\xef\xbb\xbf{\"req\":\"Hello\"}", ""); /* a BOM */
}

static void test_not_object(void **state)
{
	(void)state;
	bad_why("[]", "object");
	bad("[{\"req\":\"Hello\",\"ref\":1}]", "");
	bad("[\"Hello\"]", "");
	bad("\"Hello\"", "");
	bad("42", "");
	bad("-1", "");
	bad("1.5", "");
	bad("null", "");
	bad("true", "");
	bad("false", "");
}

static void test_trailing(void **state)
{
	struct cti_req r;

	(void)state;
	bad("{\"req\":\"Hello\"}x", "");
	bad("{\"req\":\"Hello\"}{}", "");
	bad("{\"req\":\"Hello\"}{\"req\":\"Hello\"}", "");
	bad("{\"req\":\"Hello\"}]", "");
	bad("{\"req\":\"Hello\"}\"", "");
	bad("{\"req\":\"Hello\"} 1", "");
	bad("x{\"req\":\"Hello\"}", "");
	/* whitespace around the object is not garbage */
	ok("  {\"req\":\"Hello\"}  \t", &r);
	ok("{\"req\":\"Hello\"}\r", &r);
	assert_int_equal(r.type, CR_HELLO);
}

static void test_empty(void **state)
{
	struct cti_req r;
	char why[WHY];

	(void)state;
	assert_int_equal(dec_n("", 0, &r, why), -EBADMSG);
	assert_true(why[0]);
	assert_string_equal(r.ref, "");
	bad(" ", "");
	bad("\t", "");
	bad("\r", "");
	bad("\n", "");
}

/* CTI_LINE_MAX bytes are taken (whitespace padding), one more is not, and
 * the ref of a line refused for its length is not read. */
static void test_line_max(void **state)
{
	static const char req[] = "{\"ref\":\"big\",\"req\":\"Hello\"}";
	size_t n = strlen(req);
	char *line = malloc(CTI_LINE_MAX + 2);
	struct cti_req r;
	char why[WHY];

	(void)state;
	assert_non_null(line);
	memset(line, ' ', CTI_LINE_MAX + 1);
	memcpy(line, req, n);
	assert_int_equal(dec_n(line, CTI_LINE_MAX, &r, why), 0);
	assert_string_equal(r.ref, "\"big\"");
	assert_int_equal(dec_n(line, CTI_LINE_MAX + 1, &r, why), -EBADMSG);
	assert_true(why[0]);
	assert_string_equal(r.ref, "");
	/* a long string value in a line within the limit */
	{
		char *pad = rep('p', CTI_LINE_MAX - 40);

		snprintf(line, CTI_LINE_MAX + 2, "{\"req\":\"Hello\",\"ref\":7,\"client\":\"%s\"}",
			 pad);
		assert_true(strlen(line) <= CTI_LINE_MAX);
		bad(line, "7");
		free(pad);
	}
	/* a huge line, far past the limit */
	{
		size_t big = 1 << 20;
		char *h = malloc(big);

		assert_non_null(h);
		memset(h, '[', big);
		assert_int_equal(cti_req_decode(h, big, &r, why, sizeof(why)), -EBADMSG);
		assert_true(why[0]);
		free(h);
	}
	free(line);
}

static void test_nesting(void **state)
{
	char *line = malloc(CTI_LINE_MAX + 1);
	size_t depth, o;

	(void)state;
	assert_non_null(line);
	/* 4096 open brackets, never closed */
	memset(line, '[', 4096);
	line[4096] = '\0';
	bad(line, "");
	/* balanced, deeper than any parser should go */
	depth = 4000;
	memset(line, '[', depth);
	memset(line + depth, ']', depth);
	line[2 * depth] = '\0';
	bad(line, "");
	/* nested objects */
	o = 0;
	for (depth = 0; o + 10 < CTI_LINE_MAX / 2; depth++)
		o += (size_t)sprintf(line + o, "{\"a\":");
	line[o++] = '1';
	for (size_t i = 0; i < depth; i++)
		line[o++] = '}';
	line[o] = '\0';
	bad(line, "");
	/* a deep value inside an otherwise fine request: ref kept */
	o = (size_t)sprintf(line, "{\"ref\":\"d\",\"req\":\"Hello\",\"client\":");
	for (size_t i = 0; i < 1000; i++)
		line[o++] = '[';
	for (size_t i = 0; i < 1000; i++)
		line[o++] = ']';
	line[o++] = '}';
	line[o] = '\0';
	bad(line, "\"d\"");
	free(line);
}

static void test_bad_utf8(void **state)
{
	(void)state;
	bad("{\"req\":\"Hello\",\"client\":\"\xff\"}", "");
	bad("{\"req\":\"Hello\",\"client\":\"\xc3\"}", ""); /* truncated */
	bad("{\"req\":\"Hello\",\"client\":\"\xc3(\"}", "");
	bad("{\"req\":\"Hello\",\"client\":\"\xc0\x80\"}", ""); /* overlong NUL */
	bad("{\"req\":\"Hello\",\"client\":\"\xe0\x80\xaf\"}", ""); /* overlong '/' */
	bad("{\"req\":\"Hello\",\"client\":\"\xed\xa0\x80\"}", ""); /* a surrogate */
	bad("{\"req\":\"Hello\",\"client\":\"\xf4\x90\x80\x80\"}", ""); /* > U+10FFFF */
	bad("{\"req\":\"Hello\",\"client\":\"\xf8\x88\x80\x80\x80\"}", "");
	bad("{\"req\":\"Hello\",\"client\":\"\\ud800\"}", ""); /* lone escaped surrogate */
	bad("{\"req\":\"Hello\",\"client\":\"\\udc00x\"}", "");
	bad("{\"req\":\"Hello\",\"\xff\":1}", "");
	bad("{\"req\":\"Hell\xf6\"}", "");
	bad("{\"ref\":\"\xfe\",\"req\":\"Hello\"}", "");
	bad("\xff", "");
	/* a valid escaped pair is fine */
	{
		struct cti_req r;

		ok("{\"req\":\"Hello\",\"client\":\"\\ud83d\\ude00\"}", &r);
		assert_string_equal(r.client, "\xf0\x9f\x98\x80");
	}
}

/* A short WHY buffer gets a cut, terminated reason and nothing past it. */
static void test_short_why(void **state)
{
	char why[16];
	struct cti_req r;

	(void)state;
	memset(why, 'Z', sizeof(why));
	assert_int_equal(cti_req_decode("{\"req\":\"Nope\"}", 14, &r, why, 8), -EBADMSG);
	assert_int_equal(strlen(why), 7);
	for (size_t i = 8; i < sizeof(why); i++)
		assert_int_equal(why[i], 'Z');
}

/* --- hostile corpus ------------------------------------------------------------------- */

/* A decoded request is consistent: a known type, its required fields there,
 * the fields it does not take empty, text within limits and printable. */
static void check_decoded(const struct cti_req *r, const char *line)
{
	const char *texts[] = { r->client, r->dn, r->agent, r->reason, r->target };
	const size_t maxes[] = { EV_CLIENT_MAX, EV_DN_MAX, AG_ID_MAX, AG_REASON_MAX,
				 CTI_TARGET_MAX };
	bool hello = r->type == CR_HELLO;
	bool dn = r->type == CR_MONITOR || r->type == CR_STOP_MONITOR || r->type == CR_AGENT_LOGIN;
	bool agent = r->type >= CR_AGENT_LOGIN && r->type <= CR_AGENT_LOGOUT;
	bool call = r->type == CR_ROUTE_CALL || r->type == CR_RELEASE_CALL;

	if ((unsigned)r->type >= CR_COUNT)
		fail_msg("%s: type %d", line, r->type);
	for (size_t i = 0; i < 5; i++) {
		size_t n = strnlen(texts[i], maxes[i] + 1);

		if (n > maxes[i])
			fail_msg("%s: field %zu too long", line, i);
		for (size_t j = 0; j < n; j++)
			if ((unsigned char)texts[i][j] < 0x20 || texts[i][j] == 0x7f)
				fail_msg("%s: control character in field %zu", line, i);
	}
	if (strnlen(r->ref, CTI_REF_MAX + 1) > CTI_REF_MAX)
		fail_msg("%s: ref too long", line);
	if (r->ref[0] && r->ref[0] != '"' && r->ref[0] != '-' &&
	    !(r->ref[0] >= '0' && r->ref[0] <= '9'))
		fail_msg("%s: ref '%s' is not a string or an integer", line, r->ref);
	assert_true(dn == (r->dn[0] != '\0'));
	assert_true(agent == (r->agent[0] != '\0'));
	assert_true((r->type == CR_ROUTE_CALL) == (r->target[0] != '\0'));
	if (!hello) {
		assert_false(r->has_since);
		assert_int_equal(r->since_seq, 0);
		assert_string_equal(r->client, "");
	}
	if (r->type != CR_AGENT_NOT_READY) {
		assert_false(r->has_reason);
		assert_string_equal(r->reason, "");
	}
	if (!call)
		assert_int_equal(r->call, 0);
}

/* One line through the decoder: 0 (and consistent) or -EBADMSG with a
 * reason.  Returns the result. */
static int survive(const char *line, size_t len)
{
	struct cti_req r;
	char why[WHY];
	int ret;

	memset(&r, 0xa5, sizeof(r));
	ret = dec_n(line, len, &r, why);
	if (ret == 0) {
		check_decoded(&r, line);
	} else {
		if (ret != -EBADMSG)
			fail_msg("%.*s: %d", (int)(len < 200 ? len : 200), line, ret);
		if (!why[0] || strnlen(why, WHY) == WHY)
			fail_msg("%.*s: no reason", (int)(len < 200 ? len : 200), line);
		if (strnlen(r.ref, CTI_REF_MAX + 1) > CTI_REF_MAX)
			fail_msg("%.*s: ref not terminated", (int)(len < 200 ? len : 200), line);
	}
	return ret;
}

struct hostile {
	const char *line;
	size_t len; /* 0: strlen */
	int ret; /* expected: 0 or -EBADMSG */
};

#define H(s)                   \
	{                      \
		s, 0, -EBADMSG \
	}
#define HN(s)                              \
	{                                  \
		s, sizeof(s) - 1, -EBADMSG \
	}
#define G(s)            \
	{               \
		s, 0, 0 \
	}

static const struct hostile corpus[] = {
	H(""),
	H("{}"),
	H("[]"),
	H("{{}}"),
	H("{\"\":\"\"}"),
	H("{\"req\":\"\"}"),
	H("{\"req\":\"Hello\",\"since_seq\":\"\"}"),
	H("{\"req\":\"Hello\",\"since_seq\":1e999999}"),
	H("{\"req\":\"Hello\",\"since_seq\":-0.0}"),
	H("{\"req\":\"Hello\",\"since_seq\":\"18446744073709551616\"}"),
	H("{\"req\":\"Hello\",\"since_seq\":184467440737095516160}"),
	H("{\"req\":\"Hello\",\"client\":\"\\u0000\"}"),
	HN("{\"req\":\"Hello\",\"client\":\"a\0b\"}"),
	HN("{\"req\":\"Hello\"\0}"),
	HN("\0\0\0\0"),
	H("{\"req\":\"Hello\",\"client\":\"%s%s%s%n%n\",\"x\":1}"),
	H("{\"req\":\"%n%n%n%n\"}"),
	H("{\"req\":\"Monitor\",\"dn\":\"%s\",\"%n\":1}"),
	H("{\"req\":\"Monitor\",\"dn\":{\"dn\":\"1001\"}}"),
	H("{\"req\":\"Monitor\",\"dn\":\"1001\",\"dn\":\"1001\"}"),
	H("{\"req\":\"AgentLogin\",\"agent\":\"a\",\"dn\":\"1001\",\"agent\":\"b\"}"),
	H("{\"req\":\"AgentLogin\",\"agent\":\"a\"\"dn\":\"1001\"}"),
	H("{\"req\":\"RouteCall\",\"call\":\"1\",\"target\":\"sip:\\u0000@x\"}"),
	H("{\"req\":\"RouteCall\",\"call\":\"1\",\"target\":\"sip:a@b\\r\\n\"}"),
	H("{\"req\":\"RouteCall\",\"call\":[],\"target\":\"1001\"}"),
	H("{\"req\":\"ReleaseCall\",\"call\":-0.5}"),
	H("{\"req\":\"ReleaseCall\",\"call\":\"-\"}"),
	H("{\"req\":\"ReleaseCall\",\"call\":-}"),
	H("{\"req\":\"ReleaseCall\",\"call\":.5}"),
	H("{\"req\":\"ReleaseCall\",\"call\":5.}"),
	H("{\"req\":\"ReleaseCall\",\"call\":1e}"),
	H("{\"req\":\"ReleaseCall\",\"call\":\"\\u0031\\u0032x\"}"),
	H("{\"req\":\"ReleaseCall\"\"call\":1}"),
	H("{\"req\":\"ReleaseCall\",\"call\":1"),
	H("{\"req\":\"ReleaseCall\",\"call\":1}}"),
	H("{\"req\":\"ReleaseCall\",\"call\":1]"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\u007f\"}"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\ud800\\ud800\"}"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\uDFFF\"}"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\uZZZZ\"}"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\\"}"),
	H("{\"req\":\"AgentNotReady\",\"agent\":\"a\",\"reason\":\"\\x41\"}"),
	H("{\"req\":\"Hello\"\x80}"),
	H("{\"req\":\"Hello\",\"client\":\"\xe2\x82\"}"),
	H("{\"req\":\"Hello\",\"client\":\"\xf0\x9f\x98\"}"),
	H("{\"req\":\"Hello\",\"client\":\"\xc1\xbf\"}"),
	H("{\"req\":\"Hello\",\"client\":\"\xef\xbf\xbe\xff\"}"),
	H("\xef\xbb\xbf"),
	H("{\"req\":\"Hello\"}\n{\"req\":\"Hello\"}"),
	H("{\"req\":\"Hello\"}//"),
	H("{\"req\":\"Hello\"}\x1a"),
	H("NaN"),
	H("nul"),
	H("{\"req\":nul}"),
	H("{\"req\":tru}"),
	H("{\"req\":\"Hello\",\"ref\":{\"$ref\":\"#\"}}"),
	H("{\"req\":\"Hello\",\"ref\":1.0e0}"),
	H("{\"req\":\"Hello\",\"ref\":\"\\u0000\"}"),
	H("{\"req\":\"Hello\",\"ref\":99999999999999999999}"),
	H("{\"req\":\"Hello\",\"__proto__\":{}}"),
	H("{\"req\":\"Hello\",\"constructor\":1}"),
	H("{\"req\":\"Monitor\",\"dn\":\"1001\",\"req\":\"Hello\"}"),
	H("{\"ref\":\"a\",\"ref\":\"a\",\"req\":\"Hello\"}"),
	H("{\"req\":\"StopMonitor\",\"dn\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]"
	  "]]]]]]]]}"),
	H("{\"req\":\"StopMonitor\",\"dn\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
	H("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]"),
	H("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}}"),
	H("\"\\u0000\""),
	H("{\"req\":\"Hello\",\"since_seq\":\"1\\u0000\"}"),
	H("{\"req\":\"Hello\",\"since_seq\":\"\\u0031\\u0000\"}"),
	H("{\"req\":\"Hello\",\"since_seq\":\"123456789012345678901234567890\"}"),
	H("{\"req\":\"Hello\",\"client\":\"\\u202e\\u0000\"}"),
	H("{\"req\":\"AgentLogin\",\"agent\":\" \",\"dn\":\"\"}"),
	/* a few that are fine, however odd */
	G("{\"req\":\"Hello\",\"client\":\"\\u202e\"}"),
	G("{\"req\":\"AgentLogin\",\"agent\":\" \",\"dn\":\" \"}"),
	G("{\"req\":\"Hello\",\"since_seq\":\"00000000000000000000\"}"),
	G("{\"req\":\"Hello\",\"ref\":\"\\u0001\"}"),
	G("{\"req\":\"Hello\",\"client\":\"\xef\xbf\xbf\"}"),
	G("{\"req\":\"Hello\",\"ref\":\"<script>\"}"),
	G("{\"req\":\"Monitor\",\"dn\":\"'; DROP TABLE agents; --\"}"),
	G("{\"req\":\"RouteCall\",\"call\":\"0\",\"target\":\"sip:%00@[::1]\"}"),
};

static void test_corpus(void **state)
{
	size_t n = sizeof(corpus) / sizeof(corpus[0]);

	(void)state;
	assert_true(n >= 60);
	for (size_t i = 0; i < n; i++) {
		size_t len = corpus[i].len ? corpus[i].len : strlen(corpus[i].line);
		int ret = survive(corpus[i].line, len);

		if (ret != corpus[i].ret)
			fail_msg("corpus %zu (%.*s): %d, expected %d", i, (int)len, corpus[i].line,
				 ret, corpus[i].ret);
	}
}

/* --- mutation ---------------------------------------------------------------------- */

static uint64_t rng = 0x5eed5eed12345678ull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static const char *const seeds[] = {
	"{\"req\":\"Hello\",\"ref\":\"h1\",\"since_seq\":42,\"client\":\"crm-1\"}",
	"{\"req\":\"Hello\",\"since_seq\":\"18446744073709551615\"}",
	"{\"req\":\"Monitor\",\"dn\":\"1001\",\"ref\":7}",
	"{\"req\":\"StopMonitor\",\"dn\":\"2000\"}",
	"{\"req\":\"AgentLogin\",\"agent\":\"alice\",\"dn\":\"1001\",\"ref\":\"L\"}",
	"{\"req\":\"AgentReady\",\"agent\":\"alice\"}",
	"{\"req\":\"AgentNotReady\",\"agent\":\"alice\",\"reason\":\"lunch \\u00e9\"}",
	"{\"req\":\"AgentLogout\",\"agent\":\"alice\",\"ref\":-1}",
	"{\"req\":\"RouteCall\",\"call\":\"12\",\"target\":\"sip:q@10.0.0.5:5080\",\"ref\":1}",
	"{\"req\":\"ReleaseCall\",\"call\":98765432109876543}",
};

/* Bytes a mutation likes to insert: JSON's own, and trouble. */
static const char interesting[] =
	"{}[]\":,\\u0123456789-+.eE \t\r\n\x00\x01\x1f\x7f\x80\xc3\xa9\xff"
	"tfn";

static void test_mutations(void **state)
{
	enum {
		ROUNDS = 20000,
		MAXLEN = 512
	};
	size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
	unsigned accepted = 0, refused = 0;
	char buf[MAXLEN + 16];

	(void)state;
	/* every seed is valid to begin with */
	for (size_t i = 0; i < nseeds; i++)
		assert_int_equal(survive(seeds[i], strlen(seeds[i])), 0);
	for (unsigned round = 0; round < ROUNDS; round++) {
		const char *s = seeds[rnd() % nseeds];
		size_t len = strlen(s);
		unsigned nmut = 1 + (unsigned)(rnd() % 4);

		memcpy(buf, s, len);
		for (unsigned m = 0; m < nmut; m++) {
			size_t pos = len ? (size_t)(rnd() % (len + 1)) : 0;
			unsigned char c =
				rnd() % 2 ? (unsigned char)rnd()
					  : (unsigned char)
						    interesting[rnd() % (sizeof(interesting) - 1)];

			switch (rnd() % 5) {
			case 0: /* flip a bit */
				if (pos < len)
					buf[pos] ^= (char)(1u << (rnd() % 8));
				break;
			case 1: /* insert a byte */
				if (len < MAXLEN) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = (char)c;
					len++;
				}
				break;
			case 2: /* delete a byte */
				if (pos < len) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			case 3: /* overwrite a byte */
				if (pos < len)
					buf[pos] = (char)c;
				break;
			case 4: { /* duplicate a chunk */
				size_t from = (size_t)(rnd() % (len + 1));
				size_t n = (size_t)(rnd() % 16);

				if (from + n > len)
					n = len - from;
				if (len + n <= MAXLEN) {
					memmove(buf + pos + n, buf + pos, len - pos);
					memmove(buf + pos, buf + (from >= pos ? from + n : from),
						n);
					len += n;
				}
				break;
			}
			}
		}
		buf[len] = '\0'; /* for messages only: the decoder gets LEN bytes */
		if (survive(buf, len) == 0)
			accepted++;
		else
			refused++;
	}
	print_message("mutations: %u accepted, %u refused\n", accepted, refused);
	/* both outcomes happen: the loop exercised more than the parser's
	 * first error */
	assert_true(accepted > 100);
	assert_true(refused > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_agent_requests),	cmocka_unit_test(test_call_requests),
		cmocka_unit_test(test_limits_accepted), cmocka_unit_test(test_ref_echo),
		cmocka_unit_test(test_ref_limits),	cmocka_unit_test(test_reset_between_calls),
		cmocka_unit_test(test_names),		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_unknown_request), cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_wrong_types),	cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_bad_strings),	cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_not_json),	cmocka_unit_test(test_not_object),
		cmocka_unit_test(test_trailing),	cmocka_unit_test(test_empty),
		cmocka_unit_test(test_line_max),	cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_bad_utf8),	cmocka_unit_test(test_short_why),
		cmocka_unit_test(test_corpus),		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
