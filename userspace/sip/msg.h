/* SIP messages: libosip2 does the parsing and serialisation; this file adds
 * what libosip2 leaves to the application — stream framing, the RFC 3261
 * checks a server must make before it acts on a request (the RFC 4475 torture
 * cases), and building responses. */
#ifndef SIPHA_SIP_MSG_H
#define SIPHA_SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <osipparser2/osip_parser.h>

#define SIPMSG_MAX 65535 /* largest message accepted, datagram or stream */
/* How an escaped NUL (%00) travels inside libosip2's strings; see
 * sipmsg_defuse in msg.c.  Text holding it must be printed by
 * sipmsg_to_str, which turns it back. */
#define SIPMSG_NUL_ESC "%C0%80"

enum sip_method {
	SIP_UNKNOWN = 0,
	SIP_INVITE,
	SIP_ACK,
	SIP_BYE,
	SIP_CANCEL,
	SIP_REGISTER,
	SIP_OPTIONS,
	SIP_SUBSCRIBE,
	SIP_NOTIFY,
	SIP_REFER,
	SIP_INFO,
	SIP_UPDATE,
	SIP_PRACK,
	SIP_MESSAGE,
	SIP_PUBLISH,
	SIP_METHOD_MAX
};

/* Methods sipha implements (the Allow header of 405/501 and OPTIONS). */
#define SIPHA_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO, PRACK, SUBSCRIBE"

/* ---- the index: one pass over a message's octets ----------------------------
 * sipmsg_index() walks the header section once and records where every
 * header is; parsing, the checks, the registrar and the responses built
 * from a request read it instead of walking the octets again. */
/* Offsets into the buffer a message arrived in. */
struct sipmsg_layout {
	size_t start; /* first octet of the start line (leading CR/LF skipped) */
	size_t sl_end; /* end of the start line, before its line end */
	size_t hdrs; /* first octet of the first header line */
	size_t hdr_end; /* first octet of the empty line that ends the headers */
	size_t body; /* first octet after that empty line */
};

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
	SIPMSG_H_NUM,
	SIPMSG_H_BAD = SIPMSG_H_NUM /* in an index: a line that is no header */
};

#define SIPMSG_IX_HDRS 48 /* headers recorded; later ones are walked again when asked for */
#define SIPMSG_IX_NONE 0xff

struct sipmsg_ixh {
	uint16_t name; /* offset of the header's first octet */
	uint16_t nlen;
	uint16_t val; /* offset and length of the value, LWS trimmed */
	uint16_t vlen;
	uint8_t id; /* enum sipmsg_hid, SIPMSG_H_BAD for a line that is no header */
};

struct sipmsg_ix {
	const char *buf;
	size_t len;
	struct sipmsg_layout l;
	int octets; /* sipmsg_raw_octets() of the header section */
	unsigned bad; /* lines that are no header */
	unsigned n; /* entries in h */
	bool more; /* headers beyond h; they start at RESUME */
	bool multipart; /* a Content-Type names a multipart body */
	bool clen_bad; /* a Content-Length is no plain number up to SIPMSG_MAX */
	size_t resume;
	size_t clen; /* the (last) Content-Length's value */
	uint16_t count[SIPMSG_H_NUM + 1]; /* per header id, saturating */
	uint8_t first[SIPMSG_H_NUM + 1]; /* entry of the first of each, or SIPMSG_IX_NONE */
	struct sipmsg_ixh h[SIPMSG_IX_HDRS];
};

/* Indexes BUF[0..LEN).  0, -EAGAIN when there is no empty line ending the
 * headers, -EBADMSG when LEN exceeds SIPMSG_MAX. */
int sipmsg_index(const char *buf, size_t len, struct sipmsg_ix *ix);

/* Once per process, before any parse (libosip2's parser_init). */
void sipmsg_init(void);

/* Case-sensitive method token → id (RFC 3261 methods are case-sensitive). */
enum sip_method sipmsg_method_id(const char *method);
const char *sipmsg_method_name(enum sip_method m);

/* Stream framing (RFC 3261 §18.3): length of the first complete message in
 * BUF — header section up to CRLFCRLF plus Content-Length body octets.
 * Leading CRLFs (keep-alives, RFC 5626) count as a message of their own
 * length and carry no SIP.  Returns 0 when more data is needed, or -EBADMSG
 * when no message can be framed (Content-Length missing, invalid or several,
 * or headers longer than SIPMSG_MAX): the caller closes the connection. */
ssize_t sipmsg_frame(const char *buf, size_t len);
/* The same, and when it returns 0 with the header section complete, the
 * message's whole length in *NEED (0 while the headers are incomplete): a
 * stream reader waits for that many bytes instead of framing again on every
 * arrival. */
ssize_t sipmsg_frame_need(const char *buf, size_t len, size_t *need);

/* A stream reader's framing state: where sipmsg_framer_next() stopped in
 * the message at the head of the stream.  Zero it for a new stream. */
struct sipmsg_framer {
	size_t need; /* the whole message's length, once its headers are in */
	size_t scanned; /* octets already searched for the end of the headers */
};
/* The length of the message at the head of BUF[0..AVAIL), the stream's
 * unconsumed octets, as sipmsg_frame_need() gives it, but resuming where
 * the last call stopped, so a sender that drips octets costs linear work:
 * 0 while more data is needed, -EBADMSG when the stream cannot be framed.
 * After a message is framed the caller consumes it and calls again. */
ssize_t sipmsg_framer_next(struct sipmsg_framer *f, const char *buf, size_t avail);

/* Parses one message.  DATAGRAM: octets after the body that Content-Length
 * declares are ignored (RFC 3261 §18.3); a Content-Length larger than what
 * arrived is an error.  Returns 0 with *OUT (osip_message_free it), or
 * -EBADMSG when libosip2 cannot make a message of it. */
int sipmsg_parse(const char *buf, size_t len, bool datagram, osip_message_t **out);
/* The same, leaving the message's index in *IX for later steps. */
int sipmsg_parse_ix(const char *buf, size_t len, bool datagram, struct sipmsg_ix *ix,
		    osip_message_t **out);

/* The answer a server owes a parsed request before acting on it. */
struct sip_verdict {
	int code; /* 0: the request may be processed */
	const char *reason; /* reason phrase for CODE */
	const char *hname; /* extra header for the response, or NULL ("Unsupported", "Accept") */
	char hvalue[256];
};

/* Checks a parsed request against RFC 3261 rules libosip2 does not enforce:
 * SIP/2.0 only (505), sip/sips Request-URI (416), the mandatory headers To,
 * From, Call-ID, CSeq, Via, Max-Forwards (400), CSeq method equal to the
 * request method (400), single-valued headers given once (400), Require /
 * Proxy-Require of extensions sipha lacks (420 + Unsupported), a session
 * body type other than application/sdp (415 + Accept), a request-line or
 * header syntax that libosip2 accepted leniently but RFC 3261 forbids (400).
 * RAW/LEN are the octets the message was parsed from. */
void sipmsg_check_request(const osip_message_t *m, const char *raw, size_t len,
			  struct sip_verdict *v);
/* The same on the index sipmsg_parse_ix() left. */
void sipmsg_check_request_ix(const osip_message_t *m, const struct sipmsg_ix *ix,
			     struct sip_verdict *v);

/* Checks a parsed response: returns 0, or -EBADMSG when it must be dropped
 * (status outside 100..699, mandatory headers missing or malformed). */
int sipmsg_check_response(const osip_message_t *m);

/* Builds a response to REQ (RFC 3261 §8.2.6): Via (all), From, To, Call-ID,
 * CSeq copied; TO_TAG added to To when To has no tag and CODE > 100
 * (TO_TAG NULL: none added).  Returns 0 with *OUT or -ENOMEM. */
int sipmsg_response(const osip_message_t *req, int code, const char *reason, const char *to_tag,
		    osip_message_t **out);

/* The headers a response echoes as the client wrote them: From, To,
 * Call-ID, CSeq (values, without line ends). */
#define SIPMSG_ECHO_N 4
struct sipmsg_echo {
	const char *v[SIPMSG_ECHO_N];
	uint16_t n[SIPMSG_ECHO_N];
};
/* Fills *E from IX: 0, or -EAGAIN for a message only libosip2 can answer
 * (escaped NULs, lines that are no header, more headers than IX holds, a
 * folded or repeated header of the four). */
int sipmsg_echo_of(const struct sipmsg_ix *ix, struct sipmsg_echo *e);

struct sipmsg_reply_opt {
	int code;
	const char *reason; /* NULL: sipmsg_reason(code) */
	const char *to_tag; /* added to To when it has none and CODE > 100 */
	const char *extra; /* header lines, each ending CRLF */
	size_t extralen;
	const char *ctype; /* the body's Content-Type, or NULL */
	const char *body;
	size_t bodylen;
};
/* A response to REQ into BUF[0..CAP): REQ's Vias (amended by
 * sipmsg_via_received), E's headers, R's.  The length, -EAGAIN for a
 * request only sipmsg_response() can answer, -ENOSPC or -EINVAL. */
ssize_t sipmsg_reply_echo(const osip_message_t *req, const struct sipmsg_echo *e,
			  const struct sipmsg_reply_opt *r, char *buf, size_t cap);

/* The response sipmsg_response() would build, written straight into
 * BUF[0..CAP) from the request's octets (From, To, Call-ID and CSeq as the
 * client wrote them) and REQ's Vias (amended by sipmsg_via_received), with
 * EXTRA[0..EXTRALEN) (header lines, each ending CRLF) and an empty body.
 * Returns the length, -EAGAIN for a request only sipmsg_response() can
 * answer (salvaged, folded or escaped headers, more than IX holds),
 * -ENOSPC or -EINVAL. */
ssize_t sipmsg_reply(const osip_message_t *req, const struct sipmsg_ix *ix, int code,
		     const char *reason, const char *to_tag, const char *extra, size_t extralen,
		     char *buf, size_t cap);

/* Serialises M; *BUF is malloc'd (free it).  Returns 0 or -ENOMEM/-EINVAL. */
int sipmsg_to_str(osip_message_t *m, char **buf, size_t *len);

/* Calls FN for each URI as written in the raw message: the To URI
 * (CONTACTS false) or every Contact URI in order (CONTACTS true), without
 * the angle brackets and without header parameters.  0 or -EBADMSG. */
typedef void (*sipmsg_uri_fn)(void *arg, const char *uri, size_t len);
int sipmsg_raw_uris(const char *buf, size_t len, bool contacts, sipmsg_uri_fn fn, void *arg);
int sipmsg_ix_uris(const struct sipmsg_ix *ix, bool contacts, sipmsg_uri_fn fn, void *arg);

/* The user part of URI[0..N) in canonical form (RFC 3261 §19.1.4):
 * escapes of characters allowed plainly are decoded, every other octet —
 * an escaped NUL included — is written %XX.  0, -ENOENT (no user part),
 * -EINVAL or -ENAMETOOLONG. */
int sipmsg_uri_user(const char *uri, size_t n, char *out, size_t outlen);

/* Default reason phrase for a status code ("Unknown" if none). */
const char *sipmsg_reason(int code);
/* The port of M's top Via sent-by (5060 when it names none), 0 without a
 * usable Via. */
uint16_t sipmsg_via_port(const osip_message_t *m);

struct sockaddr;
/* Amends REQ's top Via with the address SRC it arrived from (RFC 3261
 * §18.2.1, RFC 3581 §4): received=<address> when sent-by is not that
 * address (or names a host), and an empty ;rport filled with SRC's port,
 * with received= then added whatever sent-by says.  Call it once, before
 * any response is built from REQ: responses copy its Vias.  0, -ENOENT
 * (no top Via), -EINVAL, -EAFNOSUPPORT or -ENOMEM. */
int sipmsg_via_received(osip_message_t *req, const struct sockaddr *src);

#endif
