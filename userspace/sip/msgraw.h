/* Raw-octet view of a SIP message, shared by msg.c (framing, parsing) and
 * msgcheck.c (the checks libosip2 leaves out).  Private to userspace/sip/msg*.c:
 * libosip2 works on C strings and forgives a lot, so every decision that must
 * not depend on its leniency is taken on the octets themselves. */
#ifndef SIPHA_SIP_MSGRAW_H
#define SIPHA_SIP_MSGRAW_H

#include <stdbool.h>
#include <stddef.h>

#include "sip/msg.h"

/* Lines end in LF with an optional CR before it (libosip2 takes bare LF too).
 * Returns 0, or -EAGAIN when BUF holds no empty line yet. */
int sipmsg_layout(const char *buf, size_t len, struct sipmsg_layout *l);

struct sipmsg_hdr {
	const char *name; /* header name as written, without the WS before ':' */
	size_t nlen;
	const char *val; /* value without surrounding LWS; may hold folded CR LF */
	size_t vlen;
};

/* Header at *POS (start it at l->hdrs); *POS moves past it, folded lines
 * included.  Returns 1 with *H, 0 after the last header, or -EBADMSG for a
 * line that is no header (no ':', a name that is no token, a stray fold). */
int sipmsg_hdr_next(const char *buf, const struct sipmsg_layout *l, size_t *pos,
		    struct sipmsg_hdr *h);

/* Long or compact form, case-insensitive. */
enum sipmsg_hid sipmsg_hdr_id(const struct sipmsg_hdr *h);
const char *sipmsg_hdr_name(enum sipmsg_hid id);

/* The one Content-Length of the header section.  Returns 0 with *CL, -ENOENT
 * when there is none, -EBADMSG when it is given several times, is no plain
 * number or exceeds SIPMSG_MAX. */
int sipmsg_raw_clen(const char *buf, const struct sipmsg_layout *l, size_t *cl);

/* Walks an index in order, as sipmsg_hdr_next() walks the octets: 1 with
 * *H and *ID, 0 after the last header, -EBADMSG for a line that is no
 * header (the walk may go on past it).  Zero *IT to start. */
struct sipmsg_ixit {
	unsigned i;
	size_t pos;
};
int sipmsg_ix_next(const struct sipmsg_ix *ix, struct sipmsg_ixit *it, struct sipmsg_hdr *h,
		   enum sipmsg_hid *id);

/* sipmsg_raw_clen() from the index. */
int sipmsg_ix_clen(const struct sipmsg_ix *ix, size_t *cl);

/* N octets of decimal digits, at most MAX.  Returns 0, -EINVAL or -ERANGE. */
int sipmsg_raw_uint(const char *s, size_t n, unsigned long long max, unsigned long long *out);

/* Octets of the start line and headers that libosip2 cannot take as they
 * are: a NUL ends its C strings, a CR without LF ends its header section.
 * Returns -EBADMSG for either, else the number of NULs escaped as a
 * quoted-pair (legal, RFC 3261 §25.1), which the parser must replace. */
int sipmsg_raw_octets(const char *buf, const struct sipmsg_layout *l);

static inline bool sipmsg_is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline bool sipmsg_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* token (RFC 3261 §25.1) */
static inline bool sipmsg_is_token(char c)
{
	switch (c) {
	case '-':
	case '.':
	case '!':
	case '%':
	case '*':
	case '_':
	case '+':
	case '`':
	case '\'':
	case '~':
		return true;
	default:
		return sipmsg_is_alnum(c);
	}
}

#endif
