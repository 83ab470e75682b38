/* SIP messages on top of libosip2: framing, parsing with a safety net,
 * responses, serialisation.  The checks live in msgcheck.c. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

#include "core/log.h"
#include "core/smalloc.h"
#include "sip/msg.h"
#include "sip/msgraw.h"

static const char *const sipmsg_methods[SIP_METHOD_MAX] = {
	[SIP_INVITE] = "INVITE",       [SIP_ACK] = "ACK",	    [SIP_BYE] = "BYE",
	[SIP_CANCEL] = "CANCEL",       [SIP_REGISTER] = "REGISTER", [SIP_OPTIONS] = "OPTIONS",
	[SIP_SUBSCRIBE] = "SUBSCRIBE", [SIP_NOTIFY] = "NOTIFY",	    [SIP_REFER] = "REFER",
	[SIP_INFO] = "INFO",	       [SIP_UPDATE] = "UPDATE",	    [SIP_PRACK] = "PRACK",
	[SIP_MESSAGE] = "MESSAGE",     [SIP_PUBLISH] = "PUBLISH",
};

#define HN(s, c)                    \
	{                           \
		s, sizeof(s) - 1, c \
	}
static const struct {
	const char *name;
	uint8_t len;
	char compact;
} sipmsg_hnames[SIPMSG_H_NUM] = {
	[SIPMSG_H_CALL_ID] = HN("Call-ID", 'i'),
	[SIPMSG_H_CSEQ] = HN("CSeq", 0),
	[SIPMSG_H_FROM] = HN("From", 'f'),
	[SIPMSG_H_TO] = HN("To", 't'),
	[SIPMSG_H_VIA] = HN("Via", 'v'),
	[SIPMSG_H_MAX_FORWARDS] = HN("Max-Forwards", 0),
	[SIPMSG_H_CONTENT_LENGTH] = HN("Content-Length", 'l'),
	[SIPMSG_H_CONTENT_TYPE] = HN("Content-Type", 'c'),
	[SIPMSG_H_CONTENT_DISPOSITION] = HN("Content-Disposition", 0),
	[SIPMSG_H_EXPIRES] = HN("Expires", 0),
	[SIPMSG_H_MIN_EXPIRES] = HN("Min-Expires", 0),
	[SIPMSG_H_CONTACT] = HN("Contact", 'm'),
	[SIPMSG_H_ROUTE] = HN("Route", 0),
	[SIPMSG_H_RECORD_ROUTE] = HN("Record-Route", 0),
	[SIPMSG_H_ACCEPT] = HN("Accept", 0),
};
#undef HN

/* libosip2's own messages go through our log at debug level only: a flood of
 * malformed packets must not turn into a flood of log lines. */
__attribute__((format(printf, 4, 0))) static void
sipmsg_osip_trace(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap)
{
	char line[256];
	size_t n;

	(void)level;
	vsnprintf(line, sizeof(line), chfr, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	pr_debug("libosip2 %s:%d: %s", fi ? fi : "?", li, line);
}

static void sipmsg_init_once(void)
{
	const char *pool = getenv("SIPHA_SMALLOC");

	/* libosip2's small blocks from core/smalloc.c; SIPHA_SMALLOC=0 leaves
	 * them to malloc (for comparisons). */
	if (!pool || strcmp(pool, "0"))
		osip_set_allocators(smalloc, srealloc, sfree);
	parser_init();
	/* Level N enables the levels below N; without a function libosip2
	 * would print to stdout by itself. */
	osip_trace_initialize_func(log_get_level() >= LOG_DEBUG ? OSIP_INFO1 : TRACE_LEVEL0,
				   sipmsg_osip_trace);
}

void sipmsg_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, sipmsg_init_once);
}

enum sip_method sipmsg_method_id(const char *method)
{
	if (!method)
		return SIP_UNKNOWN;
	for (int i = SIP_UNKNOWN + 1; i < SIP_METHOD_MAX; i++) {
		if (!strcmp(method, sipmsg_methods[i]))
			return (enum sip_method)i;
	}
	return SIP_UNKNOWN;
}

const char *sipmsg_method_name(enum sip_method m)
{
	if (m <= SIP_UNKNOWN || m >= SIP_METHOD_MAX)
		return NULL;
	return sipmsg_methods[m];
}

uint16_t sipmsg_via_port(const osip_message_t *m)
{
	osip_via_t *via = NULL;
	unsigned long port;

	if (osip_message_get_via(m, 0, &via) || !via || !via->host)
		return 0;
	if (!via->port)
		return 5060;
	port = strtoul(via->port, NULL, 10);
	return port && port <= 65535 ? (uint16_t)port : 0;
}

const char *sipmsg_reason(int code)
{
	const char *r = osip_message_get_reason(code);

	return r ? r : "Unknown";
}

/* ---- raw octets ------------------------------------------------------------ */

int sipmsg_layout(const char *buf, size_t len, struct sipmsg_layout *l)
{
	const char *nl;
	size_t i = 0;

	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	l->start = i;
	nl = memchr(buf + i, '\n', len - i);
	if (!nl)
		return -EAGAIN;
	i = (size_t)(nl - buf);
	l->sl_end = (i > l->start && buf[i - 1] == '\r') ? i - 1 : i;
	l->hdrs = i + 1;
	for (;;) {
		size_t n = i + 1; /* I is the LF that ends a line */

		if (n < len && buf[n] == '\n') {
			l->hdr_end = n;
			l->body = n + 1;
			return 0;
		}
		if (n + 1 < len && buf[n] == '\r' && buf[n + 1] == '\n') {
			l->hdr_end = n;
			l->body = n + 2;
			return 0;
		}
		nl = n < len ? memchr(buf + n, '\n', len - n) : NULL;
		if (!nl)
			return -EAGAIN;
		i = (size_t)(nl - buf);
	}
}

static size_t sipmsg_line_end(const char *buf, size_t pos, size_t end)
{
	const char *nl = memchr(buf + pos, '\n', end - pos);

	return nl ? (size_t)(nl - buf) + 1 : end;
}

static void sipmsg_trim(const char **s, size_t *n)
{
	while (*n && sipmsg_is_lws(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && sipmsg_is_lws((*s)[*n - 1]))
		(*n)--;
}

int sipmsg_hdr_next(const char *buf, const struct sipmsg_layout *l, size_t *pos,
		    struct sipmsg_hdr *h)
{
	size_t p = *pos, first, e;
	const char *colon;

	if (p >= l->hdr_end)
		return 0;
	first = sipmsg_line_end(buf, p, l->hdr_end);
	e = first;
	while (e < l->hdr_end && (buf[e] == ' ' || buf[e] == '\t'))
		e = sipmsg_line_end(buf, e, l->hdr_end);
	*pos = e;
	colon = memchr(buf + p, ':', first - p);
	if (!colon || buf[p] == ' ' || buf[p] == '\t')
		return -EBADMSG;
	h->name = buf + p;
	h->nlen = (size_t)(colon - h->name);
	while (h->nlen && (h->name[h->nlen - 1] == ' ' || h->name[h->nlen - 1] == '\t'))
		h->nlen--;
	if (!h->nlen)
		return -EBADMSG;
	for (size_t i = 0; i < h->nlen; i++) {
		if (!sipmsg_is_token(h->name[i]))
			return -EBADMSG;
	}
	h->val = colon + 1;
	h->vlen = (size_t)(buf + e - h->val);
	sipmsg_trim(&h->val, &h->vlen);
	return 1;
}

enum sipmsg_hid sipmsg_hdr_id(const struct sipmsg_hdr *h)
{
	for (int i = SIPMSG_H_OTHER + 1; i < SIPMSG_H_NUM; i++) {
		char c = sipmsg_hnames[i].compact;

		if (h->nlen == 1 && c && (h->name[0] | 0x20) == c)
			return (enum sipmsg_hid)i;
		if (h->nlen == sipmsg_hnames[i].len &&
		    !strncasecmp(h->name, sipmsg_hnames[i].name, h->nlen))
			return (enum sipmsg_hid)i;
	}
	return SIPMSG_H_OTHER;
}

const char *sipmsg_hdr_name(enum sipmsg_hid id)
{
	if (id <= SIPMSG_H_OTHER || id >= SIPMSG_H_NUM)
		return NULL;
	return sipmsg_hnames[id].name;
}

int sipmsg_raw_uint(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long long)(s[i] - '0');
		if (v > max)
			return -ERANGE;
	}
	*out = v;
	return 0;
}

int sipmsg_raw_clen(const char *buf, const struct sipmsg_layout *l, size_t *cl)
{
	unsigned long long v = 0;
	struct sipmsg_hdr h;
	size_t pos = l->hdrs;
	int n = 0, r, err = 0;

	while ((r = sipmsg_hdr_next(buf, l, &pos, &h))) {
		if (r < 0)
			return -EBADMSG;
		if (sipmsg_hdr_id(&h) != SIPMSG_H_CONTENT_LENGTH)
			continue;
		n++;
		if (sipmsg_raw_uint(h.val, h.vlen, SIPMSG_MAX, &v))
			err = -EBADMSG;
	}
	if (!n)
		return -ENOENT;
	if (n > 1 || err)
		return -EBADMSG;
	*cl = (size_t)v;
	return 0;
}

int sipmsg_raw_octets(const char *buf, const struct sipmsg_layout *l)
{
	const char *p = buf + l->start, *end = buf + l->hdr_end, *q;
	int escaped = 0;

	/* Every CR is followed by LF: memchr finds the few CRs quickly. */
	for (q = p; (q = memchr(q, '\r', (size_t)(end - q))); q++) {
		if (q[1] != '\n')
			return -EBADMSG;
	}
	for (q = p; (q = memchr(q, '\0', (size_t)(end - q))); q++) {
		size_t bs = 0;

		while (bs < (size_t)(q - p) && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (!(bs & 1))
			return -EBADMSG;
		escaped++;
	}
	return escaped;
}

/* ---- the index ------------------------------------------------------------- */

static void sipmsg_ix_note(struct sipmsg_ix *ix, enum sipmsg_hid id, const struct sipmsg_hdr *h)
{
	unsigned long long v;

	if (ix->count[id] < UINT16_MAX)
		ix->count[id]++;
	if (id == SIPMSG_H_CONTENT_LENGTH) {
		if (sipmsg_raw_uint(h->val, h->vlen, SIPMSG_MAX, &v))
			ix->clen_bad = true;
		else
			ix->clen = (size_t)v;
	} else if (id == SIPMSG_H_CONTENT_TYPE && h->vlen >= 9 &&
		   !strncasecmp(h->val, "multipart", 9)) {
		ix->multipart = true;
	}
}

int sipmsg_index(const char *buf, size_t len, struct sipmsg_ix *ix)
{
	struct sipmsg_hdr h;
	size_t pos;
	int r;

	memset(ix, 0, offsetof(struct sipmsg_ix, first));
	memset(ix->first, SIPMSG_IX_NONE, sizeof(ix->first));
	ix->buf = buf;
	ix->len = len;
	if (len > SIPMSG_MAX)
		return -EBADMSG;
	if (sipmsg_layout(buf, len, &ix->l))
		return -EAGAIN;
	pos = ix->l.hdrs;
	for (;;) {
		size_t at = pos;
		enum sipmsg_hid id;

		r = sipmsg_hdr_next(buf, &ix->l, &pos, &h);
		if (!r)
			break;
		if (r < 0) {
			id = SIPMSG_H_BAD;
			ix->bad++;
			h.name = h.val = buf + at;
			h.nlen = h.vlen = 0;
		} else {
			id = sipmsg_hdr_id(&h);
			sipmsg_ix_note(ix, id, &h);
		}
		if (ix->more)
			continue;
		if (ix->n == SIPMSG_IX_HDRS) {
			ix->more = true;
			ix->resume = at;
			continue;
		}
		if (ix->first[id] == SIPMSG_IX_NONE)
			ix->first[id] = (uint8_t)ix->n;
		ix->h[ix->n++] = (struct sipmsg_ixh){
			.name = (uint16_t)(h.name - buf),
			.nlen = (uint16_t)h.nlen,
			.val = (uint16_t)(h.val - buf),
			.vlen = (uint16_t)h.vlen,
			.id = (uint8_t)id,
		};
	}
	ix->octets = sipmsg_raw_octets(buf, &ix->l);
	return 0;
}

int sipmsg_ix_next(const struct sipmsg_ix *ix, struct sipmsg_ixit *it, struct sipmsg_hdr *h,
		   enum sipmsg_hid *id)
{
	int r;

	if (it->i < ix->n) {
		const struct sipmsg_ixh *e = &ix->h[it->i++];

		if (e->id == SIPMSG_H_BAD)
			return -EBADMSG;
		h->name = ix->buf + e->name;
		h->nlen = e->nlen;
		h->val = ix->buf + e->val;
		h->vlen = e->vlen;
		*id = (enum sipmsg_hid)e->id;
		return 1;
	}
	if (!ix->more)
		return 0;
	if (it->i == ix->n) {
		it->i++;
		it->pos = ix->resume;
	}
	r = sipmsg_hdr_next(ix->buf, &ix->l, &it->pos, h);
	if (r > 0)
		*id = sipmsg_hdr_id(h);
	return r;
}

int sipmsg_ix_clen(const struct sipmsg_ix *ix, size_t *cl)
{
	unsigned n = ix->count[SIPMSG_H_CONTENT_LENGTH];

	if (ix->bad)
		return -EBADMSG;
	if (!n)
		return -ENOENT;
	if (n > 1 || ix->clen_bad)
		return -EBADMSG;
	*cl = ix->clen;
	return 0;
}

/* ---- stream framing -------------------------------------------------------- */

ssize_t sipmsg_frame_need(const char *buf, size_t len, size_t *need)
{
	struct sipmsg_layout l;
	size_t n = 0, cl;

	*need = 0;
	while (n < len && (buf[n] == '\r' || buf[n] == '\n'))
		n++;
	if (n)
		return (ssize_t)n;
	if (sipmsg_layout(buf, len < SIPMSG_MAX ? len : SIPMSG_MAX, &l))
		return len >= SIPMSG_MAX ? -EBADMSG : 0;
	/* RFC 3261 §18.3: a stream has no other way to find the end. */
	if (sipmsg_raw_clen(buf, &l, &cl) || cl > SIPMSG_MAX - l.body)
		return -EBADMSG;
	*need = l.body + cl;
	if (len < l.body + cl)
		return 0;
	return (ssize_t)(l.body + cl);
}

ssize_t sipmsg_framer_next(struct sipmsg_framer *f, const char *buf, size_t avail)
{
	ssize_t n;

	if (f->need > avail)
		return 0; /* the body is still coming */
	/* Headers incomplete: nothing new can complete them until a new line
	 * end arrives. */
	if (!f->need && f->scanned && f->scanned < avail && avail < SIPMSG_MAX &&
	    !memchr(buf + f->scanned, '\n', avail - f->scanned)) {
		f->scanned = avail;
		return 0;
	}
	if (!f->need && f->scanned >= avail && avail < SIPMSG_MAX)
		return 0;
	n = sipmsg_frame_need(buf, avail, &f->need);
	if (n == 0) {
		f->scanned = avail;
		return 0;
	}
	f->need = f->scanned = 0;
	return n;
}

ssize_t sipmsg_frame(const char *buf, size_t len)
{
	size_t need;

	return sipmsg_frame_need(buf, len, &need);
}

/* ---- parsing --------------------------------------------------------------- */

/* How many octets of BUF make the message. */
static int sipmsg_extent(const struct sipmsg_ix *ix, bool datagram, size_t *used)
{
	const struct sipmsg_layout *l = &ix->l;
	size_t cl, len = ix->len, avail = len - l->body;
	int err = sipmsg_ix_clen(ix, &cl);

	if (!err) {
		if (cl > avail || (!datagram && cl != avail))
			return -EBADMSG;
		*used = l->body + cl;
		return 0;
	}
	if (!datagram)
		return -EBADMSG;
	/* RFC 3261 §18.3: without Content-Length the datagram ends the body.
	 * An unreadable one leaves the same extent; sipmsg_check_request
	 * answers 400 for it. */
	*used = len;
	return 0;
}

/* "SIP/" 1*DIGIT "." 1*DIGIT SP 3DIGIT SP Reason-Phrase (RFC 3261 §7.2).
 * libosip2 reads the code with sscanf("%d"), which wraps a long one into
 * any code at all, so the line is checked here, before it. */
static bool sipmsg_status_line_ok(const char *s, size_t n)
{
	size_t i = 4, d;

	if (n < 4 || memcmp(s, "SIP/", 4))
		return false;
	for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == d || i >= n || s[i++] != '.')
		return false;
	for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == d || n - i < 5 || s[i] != ' ' || s[i + 4] != ' ')
		return false;
	for (d = i + 1; d < i + 4; d++) {
		if (s[d] < '0' || s[d] > '9')
			return false;
	}
	return !memchr(s + i + 5, '\0', n - i - 5);
}

/* libosip2 unescapes URI user parts and parameters into C strings, where
 * %00 would end them (RFC 4475 §3.1.1.4).  On the way in the escape becomes
 * the overlong form %C0%80 (Modified UTF-8's NUL), which survives as two
 * octets; sipmsg_to_str turns it back.  A NUL escaped as a quoted-pair is
 * legal only in a display name or a comment, where it means nothing to SIP,
 * and becomes '?'.  DST holds 2 * N octets; returns the length written. */
static size_t sipmsg_defuse(char *dst, const char *src, size_t n)
{
	size_t o = 0, i = 0;

	while (i < n) {
		/* copy up to the next '%' or NUL in one go */
		const char *pc = memchr(src + i, '%', n - i), *nul = memchr(src + i, '\0', n - i);
		size_t stop = (size_t)((pc && (!nul || pc < nul) ? pc : nul ? nul : src + n) - src);

		memcpy(dst + o, src + i, stop - i);
		o += stop - i;
		i = stop;
		if (i == n)
			break;
		if (src[i] == '%' && i + 2 < n && src[i + 1] == '0' && src[i + 2] == '0') {
			memcpy(dst + o, SIPMSG_NUL_ESC, sizeof(SIPMSG_NUL_ESC) - 1);
			o += sizeof(SIPMSG_NUL_ESC) - 1;
			i += 3;
		} else {
			dst[o++] = src[i] ? src[i] : '?';
			i++;
		}
	}
	return o;
}

/* libosip2 leaks the Content-Type of a MIME part that has a second one
 * (osip_body_set_contenttype overwrites it).  Its parts start after a line
 * that starts with "--" and their headers end at an empty line; lines end at
 * CR or LF.  Any such block with two Content-Type lines is refused, the
 * "--" line counted too, as libosip2 may start a part inside it. */
static bool sipmsg_mime_ok(const char *b, size_t n)
{
	int in_part = 0, ct = 0;
	size_t p = 0;

	while (p < n) {
		size_t e = p, s = p;

		while (e < n && b[e] != '\r' && b[e] != '\n')
			e++;
		if (e == p) {
			in_part = 0;
		} else if (e - p >= 2 && b[p] == '-' && b[p + 1] == '-') {
			in_part = 1;
			ct = 0;
			for (s = p; s + 12 <= e && !ct; s++)
				ct = !strncasecmp(b + s, "content-type", 12);
		} else if (in_part) {
			while (s < e && (b[s] == ' ' || b[s] == '\t'))
				s++;
			if (e - s >= 12 && !strncasecmp(b + s, "content-type", 12) && ++ct > 1)
				return false;
		}
		p = e + (e + 1 < n && b[e] == '\r' && b[e + 1] == '\n' ? 2 : 1);
	}
	return true;
}

static int sipmsg_osip_parse(const struct sipmsg_ix *ix, size_t used, osip_message_t **out)
{
	const char *buf = ix->buf;
	const struct sipmsg_layout *l = &ix->l;
	size_t hlen = l->hdr_end - l->start, blen = used - l->hdr_end, n;
	osip_message_t *m = NULL;
	char stackbuf[8192], *copy;
	int err;

	if (ix->octets < 0)
		return -EBADMSG;
	if (ix->multipart && !sipmsg_mime_ok(buf + l->body, used - l->body))
		return -EBADMSG;
	/* libosip2 keeps its own copy: the usual message needs no heap */
	copy = 2 * hlen + blen <= sizeof(stackbuf) ? stackbuf : malloc(2 * hlen + blen);
	if (!copy)
		return -ENOMEM;
	n = sipmsg_defuse(copy, buf + l->start, hlen);
	memcpy(copy + n, buf + l->hdr_end, blen);
	err = -ENOMEM;
	if (osip_message_init(&m))
		goto out;
	err = -EBADMSG;
	if (osip_message_parse(m, copy, n + blen))
		goto out;
	*out = m;
	m = NULL;
	err = 0;
out:
	osip_message_free(m);
	if (copy != stackbuf)
		free(copy);
	return err;
}

/* One header of a salvaged request.  What libosip2 cannot read is kept as an
 * opaque header of the same name, so that a 400 still echoes it. */
static int sipmsg_salvage_hdr(osip_message_t *m, enum sipmsg_hid id, const struct sipmsg_hdr *h)
{
	int err = -EBADMSG;
	char name[32];
	char *val;
	size_t n;

	/* any NUL becomes '?' here: the value is only echoed */
	val = malloc(2 * h->vlen + 1);
	if (!val)
		return -ENOMEM;
	n = sipmsg_defuse(val, h->val, h->vlen);
	for (size_t i = 0; i < n; i++) {
		if (val[i] == '\r' || val[i] == '\n')
			val[i] = ' ';
	}
	val[n] = '\0';
	/* it lower-cases the name in place */
	snprintf(name, sizeof(name), "%s", sipmsg_hdr_name(id));
	if (!osip_message_set_multiple_header(m, name, val))
		err = 0;
	else if (id != SIPMSG_H_VIA && !osip_message_set_header(m, sipmsg_hdr_name(id), val))
		err = 0;
	free(val);
	return err;
}

static int sipmsg_salvage_hdrs(osip_message_t *m, const struct sipmsg_ix *ix)
{
	bool seen[SIPMSG_H_NUM] = { false };
	struct sipmsg_ixit it = { 0, 0 };
	struct sipmsg_hdr h;
	enum sipmsg_hid id;
	int r, err = 0, vias = 0;

	while ((r = sipmsg_ix_next(ix, &it, &h, &id))) {
		if (r < 0)
			continue;
		switch (id) {
		case SIPMSG_H_VIA:
			err = sipmsg_salvage_hdr(m, id, &h);
			vias++;
			break;
		case SIPMSG_H_FROM:
		case SIPMSG_H_TO:
		case SIPMSG_H_CALL_ID:
		case SIPMSG_H_CSEQ:
			if (!seen[id])
				err = sipmsg_salvage_hdr(m, id, &h);
			seen[id] = true;
			break;
		default:
			break;
		}
		if (err)
			return err;
	}
	return vias ? 0 : -EBADMSG;
}

/* A request libosip2 refused, rebuilt from its method and the headers a
 * response needs (RFC 3261 §8.2.6.2), so that it can be answered instead of
 * dropped.  It has no Request-URI, which sipmsg_check_request answers with
 * 400 at the latest; it is handed out only with that verdict. */
static int sipmsg_salvage(const struct sipmsg_ix *ix, osip_message_t **out)
{
	const struct sipmsg_layout *l = &ix->l;
	const char *s = ix->buf + l->start;
	osip_message_t *m = NULL;
	struct sip_verdict v;
	size_t n = 0;
	char *method;
	int err;

	while (l->start + n < l->sl_end && sipmsg_is_token(s[n]))
		n++;
	if (!n || l->start + n >= l->sl_end || (s[n] != ' ' && s[n] != '\t'))
		return -EBADMSG;
	if (osip_message_init(&m))
		return -ENOMEM;
	err = -ENOMEM;
	method = osip_malloc(n + 1);
	if (!method)
		goto out;
	memcpy(method, s, n);
	method[n] = '\0';
	osip_message_set_method(m, method);
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (!m->sip_version)
		goto out;
	err = sipmsg_salvage_hdrs(m, ix);
	if (err)
		goto out;
	sipmsg_check_request_ix(m, ix, &v);
	err = -EBADMSG;
	if (!v.code)
		goto out;
	pr_debug("sipmsg: request kept only to answer %d", v.code);
	*out = m;
	m = NULL;
	err = 0;
out:
	osip_message_free(m);
	return err;
}

int sipmsg_parse_ix(const char *buf, size_t len, bool datagram, struct sipmsg_ix *ix,
		    osip_message_t **out)
{
	size_t used;
	bool response;
	int err;

	if (!out || !ix)
		return -EINVAL;
	*out = NULL;
	if (!buf || !len || sipmsg_index(buf, len, ix))
		return -EBADMSG;
	err = sipmsg_extent(ix, datagram, &used);
	if (err)
		return err;
	response = ix->l.sl_end - ix->l.start >= 4 && !memcmp(buf + ix->l.start, "SIP/", 4);
	if (response && !sipmsg_status_line_ok(buf + ix->l.start, ix->l.sl_end - ix->l.start))
		return -EBADMSG;
	err = sipmsg_osip_parse(ix, used, out);
	if (err != -EBADMSG || response)
		return err;
	return sipmsg_salvage(ix, out);
}

int sipmsg_parse(const char *buf, size_t len, bool datagram, osip_message_t **out)
{
	struct sipmsg_ix ix;

	return sipmsg_parse_ix(buf, len, datagram, &ix, out);
}

/* ---- responses and serialisation ------------------------------------------ */

static bool sipmsg_has_tag(const osip_to_t *to)
{
	for (int i = 0; i < osip_list_size(&to->gen_params); i++) {
		const osip_generic_param_t *p = osip_list_get(&to->gen_params, i);

		if (p && p->gname && !strcasecmp(p->gname, "tag"))
			return true;
	}
	return false;
}

/* A salvaged request carries what libosip2 could not read as opaque headers. */
static int sipmsg_copy_opaque(const osip_message_t *req, osip_message_t *resp, const char *name)
{
	osip_header_t *h = NULL;

	if (osip_message_header_get_byname(req, name, 0, &h) < 0 || !h || !h->hvalue)
		return 0;
	return osip_message_set_header(resp, name, h->hvalue) ? -ENOMEM : 0;
}

static int sipmsg_copy_dialog_ids(const osip_message_t *req, osip_message_t *r)
{
	if (req->from ? osip_from_clone(req->from, &r->from) : sipmsg_copy_opaque(req, r, "From"))
		return -ENOMEM;
	if (req->to ? osip_to_clone(req->to, &r->to) : sipmsg_copy_opaque(req, r, "To"))
		return -ENOMEM;
	if (req->call_id ? osip_call_id_clone(req->call_id, &r->call_id)
			 : sipmsg_copy_opaque(req, r, "Call-ID"))
		return -ENOMEM;
	if (req->cseq ? osip_cseq_clone(req->cseq, &r->cseq) : sipmsg_copy_opaque(req, r, "CSeq"))
		return -ENOMEM;
	return 0;
}

static int sipmsg_copy_vias(const osip_message_t *req, osip_message_t *r)
{
	for (int i = 0; i < osip_list_size(&req->vias); i++) {
		const osip_via_t *via = osip_list_get(&req->vias, i);
		osip_via_t *copy = NULL;

		if (osip_via_clone(via, &copy))
			return -ENOMEM;
		if (osip_list_add(&r->vias, copy, -1) < 0) {
			osip_via_free(copy);
			return -ENOMEM;
		}
	}
	return 0;
}

static int sipmsg_add_to_tag(osip_to_t *to, const char *tag)
{
	char *v = osip_strdup(tag);

	if (!v)
		return -ENOMEM;
	if (osip_to_set_tag(to, v)) {
		osip_free(v);
		return -ENOMEM;
	}
	return 0;
}

int sipmsg_response(const osip_message_t *req, int code, const char *reason, const char *to_tag,
		    osip_message_t **out)
{
	osip_message_t *r = NULL;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!req || !MSG_IS_REQUEST(req) || code < 100 || code > 699)
		return -EINVAL;
	err = -ENOMEM;
	if (osip_message_init(&r))
		goto out;
	osip_message_set_version(r, osip_strdup("SIP/2.0"));
	osip_message_set_status_code(r, code);
	osip_message_set_reason_phrase(r, osip_strdup(reason ? reason : sipmsg_reason(code)));
	if (!r->sip_version || !r->reason_phrase)
		goto out;
	err = sipmsg_copy_vias(req, r);
	if (!err)
		err = sipmsg_copy_dialog_ids(req, r);
	if (!err && r->to && to_tag && code > 100 && !sipmsg_has_tag(r->to))
		err = sipmsg_add_to_tag(r->to, to_tag);
	if (err)
		goto out;
	*out = r;
	r = NULL;
out:
	osip_message_free(r);
	return err;
}

/* ---- responses built straight from the request's octets --------------------- */

struct sipmsg_out {
	char *p;
	size_t left;
	bool full;
};

static void out_put(struct sipmsg_out *o, const char *s, size_t n)
{
	if (!n)
		return;
	if (n >= o->left) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
	o->left -= n;
}

static void out_str(struct sipmsg_out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_uint(struct sipmsg_out *o, unsigned v)
{
	char d[10];
	size_t n = sizeof(d);

	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_put(o, d + n, sizeof(d) - n);
}

/* One Via as libosip2 holds it, the received=/rport= amendment included.
 * false: a comment, a missing part or an escaped NUL, which only
 * libosip2's printer reproduces. */
static bool out_via(struct sipmsg_out *o, const osip_via_t *v)
{
	if (!v->version || !v->protocol || !v->host || v->comment)
		return false;
	out_put(o, "Via: SIP/", 9);
	out_str(o, v->version);
	out_put(o, "/", 1);
	out_str(o, v->protocol);
	out_put(o, " ", 1);
	if (strchr(v->host, ':')) {
		out_put(o, "[", 1);
		out_str(o, v->host);
		out_put(o, "]", 1);
	} else {
		out_str(o, v->host);
	}
	if (v->port) {
		out_put(o, ":", 1);
		out_str(o, v->port);
	}
	for (int i = 0; i < osip_list_size(&v->via_params); i++) {
		const osip_generic_param_t *g = osip_list_get(&v->via_params, i);

		if (!g || !g->gname || strstr(g->gname, SIPMSG_NUL_ESC) ||
		    (g->gvalue && strstr(g->gvalue, SIPMSG_NUL_ESC)))
			return false;
		out_put(o, ";", 1);
		out_str(o, g->gname);
		if (g->gvalue) {
			out_put(o, "=", 1);
			out_str(o, g->gvalue);
		}
	}
	out_put(o, "\r\n", 2);
	return true;
}

int sipmsg_echo_of(const struct sipmsg_ix *ix, struct sipmsg_echo *e)
{
	static const enum sipmsg_hid ids[SIPMSG_ECHO_N] = { SIPMSG_H_FROM, SIPMSG_H_TO,
							    SIPMSG_H_CALL_ID, SIPMSG_H_CSEQ };

	/* What only libosip2's printer gets right: escaped NULs, lines that
	 * are no header, more headers than indexed, folded values. */
	if (!ix || ix->octets || ix->bad || ix->more)
		return -EAGAIN;
	for (int i = 0; i < SIPMSG_ECHO_N; i++) {
		const struct sipmsg_ixh *h;

		if (ix->count[ids[i]] != 1 || ix->first[ids[i]] == SIPMSG_IX_NONE)
			return -EAGAIN;
		h = &ix->h[ix->first[ids[i]]];
		if (memchr(ix->buf + h->val, '\n', h->vlen))
			return -EAGAIN;
		e->v[i] = ix->buf + h->val;
		e->n[i] = h->vlen;
	}
	return 0;
}

ssize_t sipmsg_reply_echo(const osip_message_t *req, const struct sipmsg_echo *e,
			  const struct sipmsg_reply_opt *r, char *buf, size_t cap)
{
	static const char *const names[SIPMSG_ECHO_N] = { "From: ", "To: ", "Call-ID: ", "CSeq: " };
	struct sipmsg_out o = { buf, cap, false };

	if (!req || !e || !r || !buf || !MSG_IS_REQUEST(req) || r->code < 100 || r->code > 699)
		return -EINVAL;
	/* a salvaged request: only libosip2 prints what it kept */
	if (!req->to || !osip_list_size(&req->vias))
		return -EAGAIN;
	out_put(&o, "SIP/2.0 ", 8);
	out_uint(&o, (unsigned)r->code);
	out_put(&o, " ", 1);
	out_str(&o, r->reason ? r->reason : sipmsg_reason(r->code));
	out_put(&o, "\r\n", 2);
	for (int i = 0; i < osip_list_size(&req->vias); i++) {
		if (!out_via(&o, osip_list_get(&req->vias, i)))
			return -EAGAIN;
	}
	for (int i = 0; i < SIPMSG_ECHO_N; i++) {
		out_str(&o, names[i]);
		out_put(&o, e->v[i], e->n[i]);
		if (i == 1 && r->to_tag && r->code > 100 && !sipmsg_has_tag(req->to)) {
			out_put(&o, ";tag=", 5);
			out_str(&o, r->to_tag);
		}
		out_put(&o, "\r\n", 2);
	}
	if (r->extra)
		out_put(&o, r->extra, r->extralen);
	if (r->ctype) {
		out_put(&o, "Content-Type: ", 14);
		out_str(&o, r->ctype);
		out_put(&o, "\r\n", 2);
	}
	out_put(&o, "Content-Length: ", 16);
	out_uint(&o, (unsigned)r->bodylen);
	out_put(&o, "\r\n\r\n", 4);
	out_put(&o, r->body, r->bodylen);
	if (o.full)
		return -ENOSPC;
	return (ssize_t)(cap - o.left);
}

ssize_t sipmsg_reply(const osip_message_t *req, const struct sipmsg_ix *ix, int code,
		     const char *reason, const char *to_tag, const char *extra, size_t extralen,
		     char *buf, size_t cap)
{
	struct sipmsg_reply_opt r = { .code = code,
				      .reason = reason,
				      .to_tag = to_tag,
				      .extra = extra,
				      .extralen = extralen };
	struct sipmsg_echo e;

	if (!req || !ix || !buf || code < 100 || code > 699)
		return -EINVAL;
	if (sipmsg_echo_of(ix, &e))
		return -EAGAIN;
	return sipmsg_reply_echo(req, &e, &r, buf, cap);
}

/* The way back of sipmsg_defuse's %C0%80, in the start line and headers. */
static size_t sipmsg_restore_nul(char *dst, const char *src, size_t n)
{
	const size_t el = sizeof(SIPMSG_NUL_ESC) - 1;
	const char *end = memmem(src, n, "\r\n\r\n", 4);
	size_t hlen = end ? (size_t)(end - src) : n, o = 0, i;

	for (i = 0; i < hlen; i++) {
		if (src[i] == '%' && hlen - i >= el && !memcmp(src + i, SIPMSG_NUL_ESC, el)) {
			memcpy(dst + o, "%00", 3);
			o += 3;
			i += el - 1;
		} else {
			dst[o++] = src[i];
		}
	}
	memcpy(dst + o, src + hlen, n - hlen);
	return o + n - hlen;
}

int sipmsg_to_str(osip_message_t *m, char **buf, size_t *len)
{
	char *s = NULL;
	size_t n = 0;
	int r;

	if (!m || !buf || !len)
		return -EINVAL;
	*buf = NULL;
	*len = 0;
	/* Callers change the structures directly: never serve libosip2's
	 * cached text of an older state. */
	osip_message_force_update(m);
	r = osip_message_to_str(m, &s, &n);
	/* ...and do not leave one behind: osip_message_clone copies it with
	 * strdup, short of message_length when the body holds a NUL. */
	osip_free(m->message);
	m->message = NULL;
	m->message_length = 0;
	osip_message_force_update(m);
	if (r) {
		osip_free(s);
		return r == OSIP_NOMEM ? -ENOMEM : -EINVAL;
	}
	*buf = malloc(n + 1);
	if (!*buf) {
		osip_free(s);
		return -ENOMEM;
	}
	*len = sipmsg_restore_nul(*buf, s, n);
	(*buf)[*len] = '\0';
	osip_free(s);
	return 0;
}
