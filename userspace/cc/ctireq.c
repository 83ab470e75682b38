#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/ctireq.h"

static const char *const req_names[CR_COUNT] = {
	[CR_HELLO] = "Hello",
	[CR_MONITOR] = "Monitor",
	[CR_STOP_MONITOR] = "StopMonitor",
	[CR_AGENT_LOGIN] = "AgentLogin",
	[CR_AGENT_READY] = "AgentReady",
	[CR_AGENT_NOT_READY] = "AgentNotReady",
	[CR_AGENT_LOGOUT] = "AgentLogout",
	[CR_ROUTE_CALL] = "RouteCall",
	[CR_RELEASE_CALL] = "ReleaseCall",
};

/* Which fields each request takes: a field a request does not take is an
 * error (a typo must not be silently ignored), so this is the schema. */
enum {
	F_REF = 1 << 0,
	F_SINCE = 1 << 1,
	F_CLIENT = 1 << 2,
	F_DN = 1 << 3,
	F_AGENT = 1 << 4,
	F_REASON = 1 << 5,
	F_CALL = 1 << 6,
	F_TARGET = 1 << 7,
	F_TOKEN = 1 << 8,
};

static const struct {
	unsigned takes, needs;
} schema[CR_COUNT] = {
	[CR_HELLO] = { F_REF | F_SINCE | F_CLIENT | F_TOKEN, 0 },
	[CR_MONITOR] = { F_REF | F_DN, F_DN },
	[CR_STOP_MONITOR] = { F_REF | F_DN, F_DN },
	[CR_AGENT_LOGIN] = { F_REF | F_AGENT | F_DN, F_AGENT | F_DN },
	[CR_AGENT_READY] = { F_REF | F_AGENT, F_AGENT },
	[CR_AGENT_NOT_READY] = { F_REF | F_AGENT | F_REASON, F_AGENT },
	[CR_AGENT_LOGOUT] = { F_REF | F_AGENT, F_AGENT },
	[CR_ROUTE_CALL] = { F_REF | F_CALL | F_TARGET, F_CALL | F_TARGET },
	[CR_RELEASE_CALL] = { F_REF | F_CALL, F_CALL },
};

static const struct {
	const char *name;
	unsigned bit;
} fields[] = {
	{ "ref", F_REF },   { "since_seq", F_SINCE }, { "client", F_CLIENT },
	{ "dn", F_DN },	    { "agent", F_AGENT },     { "reason", F_REASON },
	{ "call", F_CALL }, { "target", F_TARGET },   { "token", F_TOKEN },
};

const char *cti_req_name(enum cti_req_type t)
{
	return (unsigned)t < CR_COUNT ? req_names[t] : "?";
}

bool cti_req_changes_state(enum cti_req_type t)
{
	return t >= CR_AGENT_LOGIN;
}

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* A string field of printable characters (no controls), 1..MAX bytes of
 * UTF-8 (jansson has checked the encoding), or 0..MAX when EMPTY_OK. */
static int get_text(json_t *v, const char *name, char *out, size_t max, bool empty_ok, char *why,
		    size_t n)
{
	const char *s;
	size_t len;

	if (!json_is_string(v))
		return fail(why, n, "%s: not a string", name);
	s = json_string_value(v);
	len = json_string_length(v);
	if (len != strlen(s))
		return fail(why, n, "%s: contains a NUL character", name);
	if (!len && !empty_ok)
		return fail(why, n, "%s: empty", name);
	if (len > max)
		return fail(why, n, "%s: longer than %zu bytes", name, max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(why, n, "%s: contains a control character", name);
	memcpy(out, s, len + 1);
	return 0;
}

/* A non-negative integer, as a JSON integer or a string of decimal digits
 * (call ids are strings in events and listings). */
static int get_u64(json_t *v, const char *name, uint64_t *out, char *why, size_t n)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return fail(why, n, "%s: negative", name);
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (!*s || json_string_length(v) > 20 || strspn(s, "0123456789") != strlen(s))
			return fail(why, n, "%s: not a number", name);
		errno = 0;
		*out = strtoull(s, &end, 10);
		if (errno)
			return fail(why, n, "%s: out of range", name);
		return 0;
	}
	return fail(why, n, "%s: not a number", name);
}

static int get_ref(json_t *o, struct cti_req *r, char *why, size_t n)
{
	json_t *v = json_object_get(o, "ref");
	char *s;

	if (!v)
		return 0;
	if (!json_is_string(v) && !json_is_integer(v))
		return fail(why, n, "ref: not a string or an integer");
	if (json_is_string(v) && json_string_length(v) != strlen(json_string_value(v)))
		return fail(why, n, "ref: contains a NUL character");
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return fail(why, n, "ref: cannot be encoded");
	if (strlen(s) > CTI_REF_MAX) {
		free(s);
		return fail(why, n, "ref: longer than %d bytes", CTI_REF_MAX);
	}
	strcpy(r->ref, s);
	free(s);
	return 0;
}

int cti_req_decode(const char *line, size_t len, struct cti_req *r, char *why, size_t n)
{
	json_error_t jerr;
	const char *name, *key;
	unsigned seen = 0;
	json_t *o, *v;
	int ret = -EBADMSG, t;

	memset(r, 0, sizeof(*r));
	if (len > CTI_LINE_MAX)
		return fail(why, n, "request longer than %d bytes", CTI_LINE_MAX);
	/* One object, nothing after it; duplicate keys and NUL bytes refused. */
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return fail(why, n, "not JSON: %s", jerr.text);
	if (!json_is_object(o)) {
		fail(why, n, "not a JSON object");
		goto out;
	}
	if (get_ref(o, r, why, n))
		goto out;
	v = json_object_get(o, "req");
	if (!v) {
		fail(why, n, "no \"req\"");
		goto out;
	}
	if (!json_is_string(v)) {
		fail(why, n, "req: not a string");
		goto out;
	}
	name = json_string_value(v);
	for (t = 0; t < CR_COUNT; t++)
		if (!strcmp(name, req_names[t]))
			break;
	if (t == CR_COUNT) {
		fail(why, n, "unknown request");
		goto out;
	}
	r->type = (enum cti_req_type)t;
	json_object_foreach (o, key, v) {
		unsigned bit = 0;
		int err = 0;

		if (!strcmp(key, "req"))
			continue;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (!strcmp(key, fields[i].name))
				bit = fields[i].bit;
		if (!bit || !(schema[t].takes & bit)) {
			fail(why, n, "%s takes no field \"%.64s\"", req_names[t], key);
			goto out;
		}
		seen |= bit;
		switch (bit) {
		case F_REF:
			break;
		case F_SINCE:
			err = get_u64(v, key, &r->since_seq, why, n);
			r->has_since = true;
			break;
		case F_CLIENT:
			err = get_text(v, key, r->client, EV_CLIENT_MAX, false, why, n);
			break;
		case F_DN:
			err = get_text(v, key, r->dn, EV_DN_MAX, false, why, n);
			break;
		case F_AGENT:
			err = get_text(v, key, r->agent, AG_ID_MAX, false, why, n);
			break;
		case F_REASON:
			err = get_text(v, key, r->reason, AG_REASON_MAX, true, why, n);
			r->has_reason = true;
			break;
		case F_CALL:
			err = get_u64(v, key, &r->call, why, n);
			break;
		case F_TARGET:
			err = get_text(v, key, r->target, CTI_TARGET_MAX, false, why, n);
			break;
		case F_TOKEN:
			err = get_text(v, key, r->token, CTI_TOKEN_MAX, false, why, n);
			break;
		}
		if (err)
			goto out;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((schema[t].needs & fields[i].bit) && !(seen & fields[i].bit)) {
			fail(why, n, "%s needs \"%s\"", req_names[t], fields[i].name);
			goto out;
		}
	ret = 0;
out:
	json_decref(o);
	return ret;
}
