/* See jline.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cc/jline.h"

struct jw {
	char *p;
	size_t left;
	bool full;
};

static void put(struct jw *w, const char *s, size_t n)
{
	if (n >= w->left) {
		w->full = true;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
	w->left -= n;
}

/* A JSON string (RFC 8259 §7): jansson already holds valid UTF-8, so only
 * '"', '\\' and control characters are escaped, as json_dumps does. */
static void put_str(struct jw *w, const char *s, size_t n)
{
	size_t i = 0, run;

	put(w, "\"", 1);
	while (i < n) {
		unsigned char c;
		char esc[8];

		for (run = i;
		     run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\';
		     run++)
			;
		put(w, s + i, run - i);
		if (run == n)
			break;
		c = (unsigned char)s[run];
		switch (c) {
		case '"':
			put(w, "\\\"", 2);
			break;
		case '\\':
			put(w, "\\\\", 2);
			break;
		case '\b':
			put(w, "\\b", 2);
			break;
		case '\f':
			put(w, "\\f", 2);
			break;
		case '\n':
			put(w, "\\n", 2);
			break;
		case '\r':
			put(w, "\\r", 2);
			break;
		case '\t':
			put(w, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			put(w, esc, 6);
			break;
		}
		i = run + 1;
	}
	put(w, "\"", 1);
}

const char *jline_utoa(char buf[24], uint64_t v)
{
	char *p = buf + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

static void put_int(struct jw *w, long long v)
{
	char d[24], *p = (char *)jline_utoa(d, v < 0 ? 0ull - (unsigned long long)v
						     : (unsigned long long)v);

	if (v < 0)
		*--p = '-';
	put(w, p, (size_t)(d + 23 - p));
}

static bool put_value(struct jw *w, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		put_str(w, json_string_value(v), json_string_length(v));
		return true;
	case JSON_INTEGER:
		put_int(w, (long long)json_integer_value(v));
		return true;
	case JSON_TRUE:
		put(w, "true", 4);
		return true;
	case JSON_FALSE:
		put(w, "false", 5);
		return true;
	case JSON_NULL:
		put(w, "null", 4);
		return true;
	default:
		return false;
	}
}

/* {"event":NAME, or {"ref":REF when NAME is NULL, then "seq" and "ts". */
static bool put_head(struct jw *w, const char *name, json_t *ref, uint64_t seq, uint64_t ts)
{
	put(w, "{", 1);
	if (name) {
		put(w, "\"event\":", 8);
		put_str(w, name, strlen(name));
		put(w, ",", 1);
	} else if (ref) {
		put(w, "\"ref\":", 6);
		if (!put_value(w, ref))
			return false;
		put(w, ",", 1);
	}
	put(w, "\"seq\":", 6);
	put_int(w, (long long)seq);
	put(w, ",\"ts\":", 6);
	put_int(w, (long long)ts);
	return true;
}

/* json_object_update_missing: a key the head holds is not repeated. */
static bool in_head(const char *key, const char *name, bool ref)
{
	return !strcmp(key, "seq") || !strcmp(key, "ts") || (name && !strcmp(key, "event")) ||
	       (ref && !strcmp(key, "ref"));
}

static ssize_t end(struct jw *w, size_t cap)
{
	put(w, "}", 1);
	if (w->full || !w->left)
		return -ENOSPC;
	*w->p = '\0';
	return (ssize_t)(cap - w->left);
}

/* RFC 3629 UTF-8, as jansson's json_string() demands it. */
static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s++, n, min, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1, min = 0x80, cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2, min = 0x800, cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return false;
		}
		while (n--) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s++ & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

ssize_t jline_event_kv(char *buf, size_t cap, const char *name, uint64_t seq, uint64_t ts,
		       const struct jkv *kv, size_t n)
{
	struct jw w = { buf, cap, false };

	put_head(&w, name, NULL, seq, ts);
	for (size_t i = 0; i < n; i++) {
		if (in_head(kv[i].k, name, false))
			continue;
		if (kv[i].v && !utf8_ok((const unsigned char *)kv[i].v))
			return -EAGAIN;
		put(&w, ",", 1);
		put_str(&w, kv[i].k, strlen(kv[i].k));
		put(&w, ":", 1);
		if (kv[i].v)
			put_str(&w, kv[i].v, strlen(kv[i].v));
		else
			put(&w, "null", 4);
	}
	return end(&w, cap);
}

ssize_t jline_event(char *buf, size_t cap, const char *name, uint64_t seq, uint64_t ts,
		    json_t *fields)
{
	struct jw w = { buf, cap, false };
	json_t *ref = name ? NULL : json_object_get(fields, "ref");
	const char *key;
	json_t *v;

	if (!json_is_object(fields) || !put_head(&w, name, ref, seq, ts))
		return -EAGAIN;
	json_object_foreach (fields, key, v) {
		if (in_head(key, name, ref != NULL))
			continue;
		put(&w, ",", 1);
		put_str(&w, key, strlen(key));
		put(&w, ":", 1);
		if (!put_value(&w, v))
			return -EAGAIN;
	}
	return end(&w, cap);
}
