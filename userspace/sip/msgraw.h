/* Raw-octet view of a SIP message, shared by msg.c (framing, parsing) and
 * msgcheck.c (the checks libosip2 leaves out).  Private to userspace/sip/msg*.c:
 * libosip2 works on C strings and forgives a lot, so every decision that must
 * not depend on its leniency is taken on the octets themselves. */
#ifndef SIPHA_SIP_MSGRAW_H
#define SIPHA_SIP_MSGRAW_H

#include <stdbool.h>
#include <stddef.h>

/* Offsets into the buffer a message arrived in. */
struct sipmsg_layout {
	size_t start; /* first octet of the start line (leading CR/LF skipped) */
	size_t sl_end; /* end of the start line, before its line end */
	size_t hdrs; /* first octet of the first header line */
	size_t hdr_end; /* first octet of the empty line that ends the headers */
	size_t body; /* first octet after that empty line */
};

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

/* Headers the framer, the parser and the checks care about. */
enum sipmsg_hid {
	SIPMSG_H_OTHER = 0,
	SIPMSG_H_CALL_ID,
	SIPMSG_H_CSEQ,
	SIPMSG_H_FROM,
	SIPMSG_H_TO,
	SIPMSG_H_VIA,
	SIPMSG_H_MAX_FORWARDS,
	SIPMSG_H_CONTENT_LENGTH,
	SIPMSG_H_CONTENT_TYPE,
	SIPMSG_H_CONTENT_DISPOSITION,
	SIPMSG_H_EXPIRES,
	SIPMSG_H_MIN_EXPIRES,
	SIPMSG_H_CONTACT,
	SIPMSG_H_ROUTE,
	SIPMSG_H_RECORD_ROUTE,
	SIPMSG_H_ACCEPT,
	SIPMSG_H_NUM
};

/* Long or compact form, case-insensitive. */
enum sipmsg_hid sipmsg_hdr_id(const struct sipmsg_hdr *h);
const char *sipmsg_hdr_name(enum sipmsg_hid id);

/* The one Content-Length of the header section.  Returns 0 with *CL, -ENOENT
 * when there is none, -EBADMSG when it is given several times, is no plain
 * number or exceeds SIPMSG_MAX. */
int sipmsg_raw_clen(const char *buf, const struct sipmsg_layout *l, size_t *cl);

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
