/* One CTI event as a line of JSON, written straight into a buffer.
 *
 * Every call moves through several events and each one was built as a
 * jansson object and printed with json_dumps(): a fifth of siphad's
 * instructions per call.  Events are flat (strings, integers, booleans,
 * null), which this writer prints; anything else is left to jansson. */
#ifndef SIPHA_CC_JLINE_H
#define SIPHA_CC_JLINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* The line cc_publish gives an event: {"event":NAME (or, NAME NULL, the
 * "ref" of FIELDS), "seq":SEQ, "ts":TS, then FIELDS' other members in
 * order} — what jansson prints for the same object with JSON_COMPACT.
 * Returns the length (BUF is NUL-terminated), -EAGAIN for a value that is
 * not flat, -ENOSPC. */
ssize_t jline_event(char *buf, size_t cap, const char *name, uint64_t seq, uint64_t ts,
		    json_t *fields);

/* V in decimal at the end of BUF; returns where it starts. */
const char *jline_utoa(char buf[24], uint64_t v);

/* An event's fields as key/value strings (a NULL value is JSON null). */
struct jkv {
	const char *k;
	const char *v;
};
/* The same line from N such fields, with no jansson object at all;
 * -EAGAIN when a value is not UTF-8 (jansson's text() mends those). */
ssize_t jline_event_kv(char *buf, size_t cap, const char *name, uint64_t seq, uint64_t ts,
		       const struct jkv *kv, size_t n);

#endif
