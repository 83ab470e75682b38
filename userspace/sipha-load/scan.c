/* The minimal SIP reader (see scan.h). */
#include "sipha-load/scan.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned char len;
	enum sl_method m;
} sl_methods[] = {
	{ "INVITE", 6, SL_INVITE }, { "ACK", 3, SL_ACK },	  { "BYE", 3, SL_BYE },
	{ "CANCEL", 6, SL_CANCEL }, { "OPTIONS", 7, SL_OPTIONS }, { "REGISTER", 8, SL_REGISTER },
	{ "INFO", 4, SL_INFO },	    { "UPDATE", 6, SL_UPDATE },
};

enum sl_method sl_method_of(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(sl_methods) / sizeof(sl_methods[0]); i++)
		if (n == sl_methods[i].len && !memcmp(s, sl_methods[i].name, n))
			return sl_methods[i].m;
	return SL_OTHER;
}

const char *sl_method_name(enum sl_method m)
{
	for (size_t i = 0; i < sizeof(sl_methods) / sizeof(sl_methods[0]); i++)
		if (sl_methods[i].m == m)
			return sl_methods[i].name;
	return "OTHER";
}

static inline int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static inline struct sl_span span(const char *buf, const char *a, const char *b)
{
	struct sl_span s = { (uint16_t)(a - buf), (uint16_t)(b - a) };

	return s;
}

/* The value of header parameter NAME (";name=value") in [p, e), outside any
 * <...>: a tag in a URI is the URI's, not the header's. */
static struct sl_span param(const char *buf, const char *p, const char *e, const char *name,
			    size_t nlen)
{
	struct sl_span none = { 0, 0 };
	const char *gt = memchr(p, '>', (size_t)(e - p));
	const char *lt = memchr(p, '<', (size_t)(e - p));

	if (lt && gt && gt > lt)
		p = gt + 1;
	while (p < e) {
		const char *v;

		p = memchr(p, ';', (size_t)(e - p));
		if (!p)
			return none;
		p++;
		while (p < e && is_ws(*p))
			p++;
		if ((size_t)(e - p) <= nlen || strncasecmp(p, name, nlen))
			continue;
		v = p + nlen;
		while (v < e && is_ws(*v))
			v++;
		if (v >= e || *v != '=')
			continue;
		v++;
		while (v < e && is_ws(*v))
			v++;
		p = v;
		while (p < e && *p != ';' && *p != ',' && *p != '>' && !is_ws(*p))
			p++;
		return span(buf, v, p);
	}
	return none;
}

static uint32_t num(const char **pp, const char *e)
{
	const char *p = *pp;
	uint32_t v = 0;

	while (p < e && *p >= '0' && *p <= '9' && v < 429496729u)
		v = v * 10 + (uint32_t)(*p++ - '0');
	*pp = p;
	return v;
}

/* Header name [n, n + nl) matches LONG or the compact form C (0: none). */
static inline int hname(const char *n, size_t nl, const char *lng, size_t ll, char c)
{
	if (nl == 1)
		return c && (n[0] | 0x20) == c;
	return nl == ll && !strncasecmp(n, lng, ll);
}

/* The first Contact's URI and its expires parameter (later ones: not read). */
static void contact(const char *buf, const char *v, const char *ve, struct sl_msg *m)
{
	const char *p = v, *q, *end;
	struct sl_span ex;

	if (m->contact_uri.len)
		return;
	/* a name-addr when a '<' comes before the first ',' (outside quotes) */
	for (q = v; q < ve && *q != '<' && *q != ','; q++) {
		if (*q == '"' && !(q = memchr(q + 1, '"', (size_t)(ve - q - 1)))) {
			q = ve;
			break;
		}
	}
	if (q < ve && *q == '<') {
		p = q + 1;
		q = memchr(p, '>', (size_t)(ve - p));
		if (!q)
			return;
		end = q + 1;
	} else {
		q = p;
		while (q < ve && *q != ';' && *q != ',' && !is_ws(*q))
			q++;
		end = q;
	}
	m->contact_uri = span(buf, p, q);
	while (end < ve && *end != ',')
		end++;
	ex = param(buf, q, end, "expires", 7);
	if (ex.len) {
		const char *e = buf + ex.off;

		m->contact_expires = num(&e, buf + ex.off + ex.len);
	}
}

static void header(const char *buf, const char *ls, const char *n, size_t nl, const char *v,
		   const char *ve, const char *le, struct sl_msg *m)
{
	switch (n[0] | 0x20) {
	case 'v':
		if (hname(n, nl, "via", 3, 'v')) {
			if (m->nvia == 0) {
				const char *comma = memchr(v, ',', (size_t)(ve - v));

				m->branch = param(buf, v, comma ? comma : ve, "branch", 6);
			}
			if (m->nvia < SL_MAX_VIA)
				m->via[m->nvia++] = span(buf, ls, le);
		}
		break;
	case 'f':
		if (hname(n, nl, "from", 4, 'f'))
			m->from_line = span(buf, ls, le);
		break;
	case 't':
		if (hname(n, nl, "to", 2, 't')) {
			m->to_line = span(buf, ls, le);
			m->to_tag = param(buf, v, ve, "tag", 3);
		}
		break;
	case 'i':
	case 'c':
		if (hname(n, nl, "call-id", 7, 'i')) {
			m->callid = span(buf, v, ve);
			m->callid_line = span(buf, ls, le);
		} else if (hname(n, nl, "cseq", 4, 0)) {
			const char *p = v, *ms;

			m->cseq = num(&p, ve);
			while (p < ve && is_ws(*p))
				p++;
			ms = p;
			while (p < ve && !is_ws(*p))
				p++;
			m->cseq_method = sl_method_of(ms, (size_t)(p - ms));
			m->cseq_line = span(buf, ls, le);
		} else if (hname(n, nl, "contact", 7, 0)) {
			contact(buf, v, ve, m);
		} else if (hname(n, nl, "content-length", 14, 0)) {
			const char *p = v;

			m->content_length = num(&p, ve);
		}
		break;
	case 'm':
		if (nl == 1)
			contact(buf, v, ve, m);
		break;
	case 'e':
		if (hname(n, nl, "expires", 7, 0)) {
			const char *p = v;

			m->expires = num(&p, ve);
			if (p == v)
				m->expires = SL_NO_EXPIRES;
		}
		break;
	case 'r':
		if (hname(n, nl, "record-route", 12, 0) && m->nrr < SL_MAX_RR)
			m->rr[m->nrr++] = span(buf, ls, le);
		break;
	case 'w':
	case 'p':
		if (!m->challenge.len && (hname(n, nl, "www-authenticate", 16, 0) ||
					  hname(n, nl, "proxy-authenticate", 18, 0)))
			m->challenge = span(buf, v, ve);
		break;
	case 'l':
		if (nl == 1) {
			const char *p = v;

			m->content_length = num(&p, ve);
		}
		break;
	}
}

int sl_scan(const char *buf, size_t len, struct sl_msg *m)
{
	const char *p = buf, *e = buf + len, *le;

	memset(m, 0, sizeof(*m));
	m->expires = m->contact_expires = SL_NO_EXPIRES;
	if (len < 12 || len > 65535)
		return -EBADMSG;
	le = memchr(p, '\n', len);
	if (!le)
		return -EBADMSG;
	if (!memcmp(p, "SIP/2.0 ", 8)) {
		const char *s = p + 8;

		m->status = (int)num(&s, le);
		if (s != p + 11 || m->status < 100 || m->status > 699)
			return -EBADMSG;
	} else {
		const char *sp = memchr(p, ' ', (size_t)(le - p));

		if (!sp || sp == p)
			return -EBADMSG;
		m->method = sl_method_of(p, (size_t)(sp - p));
	}
	p = le + 1;
	while (p < e) {
		const char *ls = p, *n, *ne, *v, *ve;

		le = memchr(p, '\n', (size_t)(e - p));
		if (!le)
			return -EBADMSG;
		ve = le;
		if (ve > p && ve[-1] == '\r')
			ve--;
		if (ve == p) { /* the blank line */
			m->body_off = (uint16_t)(le + 1 - buf);
			return m->callid.len && m->cseq_line.len ? 0 : -EBADMSG;
		}
		p = le + 1;
		if (is_ws(*ls))
			continue; /* folded: not read */
		n = ls;
		ne = memchr(n, ':', (size_t)(ve - n));
		if (!ne)
			continue;
		v = ne + 1;
		while (ne > n && is_ws(ne[-1]))
			ne--;
		if (ne == n)
			continue;
		while (v < ve && is_ws(*v))
			v++;
		while (ve > v && is_ws(ve[-1]))
			ve--;
		header(buf, ls, n, (size_t)(ne - n), v, ve, p, m);
	}
	return -EBADMSG;
}
