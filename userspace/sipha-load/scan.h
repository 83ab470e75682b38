/* The minimal SIP reader of sipha-load's hot path: one pass over the header
 * lines of a datagram, noting where the few fields a load tool needs are,
 * as offsets into the caller's buffer.  Nothing is copied or allocated and
 * nothing is validated beyond what is read: this is a test tool reading
 * answers from the server under test, not a server reading the Internet
 * (libosip2 and sip/msg.c do that in siphad).
 *
 * Read: the start line (status code, or the method), Via lines (the top
 * one's branch), From, To (its tag), Call-ID, CSeq (number and method),
 * Contact (the first URI and its expires parameter), Expires,
 * Content-Length, the first WWW-Authenticate or Proxy-Authenticate,
 * Record-Route lines, where the body starts.  Compact
 * header names (v f t i m l) are understood; folded header lines are not. */
#ifndef SIPHA_LOAD_SCAN_H
#define SIPHA_LOAD_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct sl_span {
	uint16_t off, len; /* len 0: absent */
};

enum sl_method {
	SL_OTHER,
	SL_INVITE,
	SL_ACK,
	SL_BYE,
	SL_CANCEL,
	SL_OPTIONS,
	SL_REGISTER,
	SL_INFO,
	SL_UPDATE,
};

#define SL_MAX_VIA 8
#define SL_MAX_RR 8
#define SL_NO_EXPIRES UINT32_MAX /* no Expires header, no expires parameter */

struct sl_msg {
	int status; /* 100..699 for a response, 0 for a request */
	enum sl_method method; /* a request's method */
	enum sl_method cseq_method;
	uint32_t cseq;
	struct sl_span callid, to_tag, branch, contact_uri;
	struct sl_span challenge; /* the first WWW- or Proxy-Authenticate value */
	/* Whole header lines, CRLF included, for a UAS that echoes them. */
	struct sl_span via[SL_MAX_VIA];
	unsigned nvia;
	struct sl_span from_line, to_line, callid_line, cseq_line;
	struct sl_span rr[SL_MAX_RR]; /* Record-Route lines, in order (more: not kept) */
	unsigned nrr;
	uint32_t expires; /* the Expires header, or SL_NO_EXPIRES */
	uint32_t contact_expires; /* the first Contact's expires=, or SL_NO_EXPIRES */
	uint32_t content_length;
	uint16_t body_off; /* just past the blank line */
};

/* Reads BUF[0..LEN) (LEN < 65536).  Returns 0, or -EBADMSG when it is not a
 * SIP message: no start line, no end of headers, or no Call-ID or CSeq. */
int sl_scan(const char *buf, size_t len, struct sl_msg *m);
enum sl_method sl_method_of(const char *s, size_t n);
const char *sl_method_name(enum sl_method m);

#endif
