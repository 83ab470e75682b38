/* The RFC 3261 checks a server makes before it acts on a message (the RFC 4475
 * torture cases).  libosip2 parses leniently and even drops some headers it
 * cannot read, so the syntax that matters is checked on the raw octets and
 * the rest on what libosip2 made of them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <osipparser2/osip_parser.h>

#include "sip/msg.h"
#include "sip/msgraw.h"

#define SIPMSG_CSEQ_MAX 0x7fffffffULL /* §8.1.1.5: less than 2**31 */
#define SIPMSG_DELTA_MAX 0xffffffffULL /* §20.19, §10.2.1.1: 32-bit seconds */
#define SIPMSG_MF_MAX 255ULL /* §20.22 */
#define SIPMSG_COOKIE "z9hG4bK" /* §8.1.1.7: an RFC 3261 client */

/* Option tags sipha implements, for Require and Proxy-Require (§8.2.2.3).
 * None yet: a tag joins when the call layer does what it promises. */
static const char *const sipmsg_option_tags[] = { NULL };

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_alpha(char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static void skip_lws(const char *s, size_t n, size_t *i)
{
	while (*i < n && sipmsg_is_lws(s[*i]))
		(*i)++;
}

/* quoted-string at s[*i] == '"' */
static bool skip_quoted(const char *s, size_t n, size_t *i)
{
	for ((*i)++; *i < n; (*i)++) {
		if (s[*i] == '\\')
			(*i)++;
		else if (s[*i] == '"')
			break;
	}
	if (*i >= n)
		return false;
	(*i)++;
	return true;
}

/* scheme ":" and something after it (RFC 3261 §25.1 absoluteURI) */
static bool chk_scheme(const char *u, size_t n, size_t *colon)
{
	size_t i = 1;

	if (!n || !is_alpha(u[0]))
		return false;
	while (i < n && (sipmsg_is_alnum(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	if (i + 1 >= n || u[i] != ':')
		return false;
	if (colon)
		*colon = i;
	return true;
}

/* ---- the request line (§7.1) --------------------------------------------- */

static bool uri_char(char c)
{
	if (sipmsg_is_alnum(c))
		return true;
	/* unreserved, reserved, escaped, and brackets of an IPv6 reference */
	return c && strchr("-_.!~*'();/?:@&=+$,%[]", c);
}

static bool is_scheme(const char *u, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(u, name, n);
}

/* 400 for a malformed Request-URI, 416 for a scheme other than sip/sips */
static int chk_request_uri(const char *u, size_t n)
{
	size_t colon, at;
	const char *p;

	if (!chk_scheme(u, n, &colon))
		return 400;
	for (size_t i = colon + 1; i < n; i++) {
		if (!uri_char(u[i]))
			return 400;
		if (u[i] == '%' && (i + 2 >= n || !is_xdigit(u[i + 1]) || !is_xdigit(u[i + 2])))
			return 400;
	}
	if (!is_scheme(u, colon, "sip") && !is_scheme(u, colon, "sips"))
		return 416;
	/* §19.1.1: no headers in a Request-URI.  '?' may also be part of the
	 * user (user-unreserved), so only one after the last '@' counts. */
	for (at = colon, p = u + colon; (p = memchr(p, '@', n - (size_t)(p - u))); p++)
		at = (size_t)(p - u);
	return memchr(u + at, '?', n - at) ? 400 : 0;
}

/* "SIP/" 1*DIGIT "." 1*DIGIT up to the end: -1 malformed, 0 2.0, 1 other */
static int chk_version(const char *s, size_t n)
{
	size_t i = 4, d;

	if (n < 4 || strncasecmp(s, "SIP/", 4))
		return -1;
	for (d = i; i < n && is_digit(s[i]); i++)
		;
	if (i == d || i >= n || s[i++] != '.')
		return -1;
	for (d = i; i < n && is_digit(s[i]); i++)
		;
	if (i == d || i != n)
		return -1;
	return n == 7 && !memcmp(s + 4, "2.0", 3) ? 0 : 1;
}

/* Method SP Request-URI SP SIP-Version, one SP each (§7.1, RFC 4475 §3.1.2.7-10) */
static int chk_request_line(const char *s, size_t n)
{
	size_t i = 0, u;
	int code, ver;

	while (i < n && sipmsg_is_token(s[i]))
		i++;
	if (!i || i >= n || s[i] != ' ')
		return 400;
	u = ++i;
	while (i < n && s[i] != ' ')
		i++;
	if (i == u || i >= n)
		return 400;
	code = chk_request_uri(s + u, i - u);
	ver = chk_version(s + i + 1, n - i - 1);
	if (code == 400 || ver < 0)
		return 400;
	return ver ? 505 : code;
}

/* ---- header values --------------------------------------------------------- */

/* Call-ID = word [ "@" word ] (§25.1) */
static bool chk_call_id(const char *s, size_t n)
{
	size_t ats = 0, word = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '@') {
			if (!word || ats++)
				return false;
			word = 0;
		} else if (sipmsg_is_token(s[i]) || (s[i] && strchr("()<>:\\\"/[]?{}", s[i]))) {
			word++;
		} else {
			return false;
		}
	}
	return word > 0;
}

/* CSeq = 1*DIGIT LWS Method, the number below 2**31 */
static bool chk_cseq(const char *s, size_t n)
{
	unsigned long long v;
	size_t i = 0, m;

	while (i < n && is_digit(s[i]))
		i++;
	if (sipmsg_raw_uint(s, i, SIPMSG_CSEQ_MAX, &v) || i >= n || !sipmsg_is_lws(s[i]))
		return false;
	skip_lws(s, n, &i);
	for (m = i; i < n && sipmsg_is_token(s[i]); i++)
		;
	return i > m && i == n;
}

/* *( SEMI token [ EQUAL ( token / host / quoted-string ) ] ); the value is
 * mandatory for an m-parameter (§20.15) */
static bool chk_params_of(const char *s, size_t n, size_t i, bool need_value)
{
	for (;;) {
		size_t start;

		skip_lws(s, n, &i);
		if (i >= n)
			return true;
		if (s[i++] != ';')
			return false;
		skip_lws(s, n, &i);
		for (start = i; i < n && sipmsg_is_token(s[i]); i++)
			;
		if (i == start)
			return false;
		skip_lws(s, n, &i);
		if (i >= n || s[i] != '=') {
			if (need_value)
				return false;
			continue;
		}
		i++;
		skip_lws(s, n, &i);
		if (i < n && s[i] == '"') {
			if (!skip_quoted(s, n, &i))
				return false;
			continue;
		}
		for (start = i; i < n && (sipmsg_is_token(s[i]) || (s[i] && strchr(":[]", s[i])));
		     i++)
			;
		if (i == start)
			return false;
	}
}

/* A URI in a header: a scheme, and escapes libosip2 can undo (it cuts a user
 * part at a '%' that starts none). */
static bool chk_hdr_uri(const char *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (u[i] == '%' && (i + 2 >= n || !is_xdigit(u[i + 1]) || !is_xdigit(u[i + 2])))
			return false;
	}
	return chk_scheme(u, n, NULL);
}

static bool chk_params(const char *s, size_t n, size_t i)
{
	return chk_params_of(s, n, i, false);
}

/* addr-spec without <>: it ends at ';' and may not hold ',', '?' (§20.10) */
static bool chk_addr_spec(const char *s, size_t n, size_t i)
{
	size_t start = i;

	for (; i < n && !sipmsg_is_lws(s[i]) && s[i] != ';'; i++) {
		if (!s[i] || strchr(",?<>\"", s[i]))
			return false;
	}
	return chk_hdr_uri(s + start, i - start) && chk_params(s, n, i);
}

/* name-addr or addr-spec with header parameters (§25.1): a display name quoted
 * or made of tokens (RFC 4475 §3.1.2.15), no LWS just inside <> (§3.1.2.14),
 * quotes closed (§3.1.2.6). */
static bool chk_addr(const char *s, size_t n, bool spec_ok)
{
	size_t i = 0, start;

	skip_lws(s, n, &i);
	if (i < n && s[i] == '"') {
		if (!skip_quoted(s, n, &i))
			return false;
		skip_lws(s, n, &i);
	} else {
		size_t j = i;

		while (j < n && (sipmsg_is_token(s[j]) || sipmsg_is_lws(s[j])))
			j++;
		if (j >= n || s[j] != '<')
			return spec_ok && chk_addr_spec(s, n, i);
		i = j;
	}
	if (i >= n || s[i] != '<')
		return false;
	for (start = ++i; i < n && s[i] != '>'; i++) {
		if (sipmsg_is_lws(s[i]) || !s[i] || strchr("<\"", s[i]))
			return false;
	}
	if (i >= n || !chk_hdr_uri(s + start, i - start))
		return false;
	return chk_params(s, n, i + 1);
}

/* Next comma-separated element of S outside quotes and <>. */
static bool next_elem(const char *s, size_t n, size_t *pos, const char **e, size_t *elen)
{
	bool quoted = false, angle = false;
	size_t i = *pos;

	if (i > n)
		return false;
	for (; i < n; i++) {
		if (quoted) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				quoted = false;
		} else if (s[i] == '"') {
			quoted = true;
		} else if (s[i] == '<') {
			angle = true;
		} else if (s[i] == '>') {
			angle = false;
		} else if (s[i] == ',' && !angle) {
			break;
		}
	}
	*e = s + *pos;
	*elen = (i < n ? i : n) - *pos;
	*pos = i + 1;
	return true;
}

/* Contact ("*" or a list) and Route / Record-Route (name-addr only).
 * Returns the number of elements, or -1. */
static int chk_addr_list(const struct sipmsg_hdr *h, bool star_ok, bool spec_ok)
{
	size_t pos = 0, elen;
	const char *e;
	int n = 0;

	if (star_ok && h->vlen == 1 && h->val[0] == '*')
		return 1;
	while (next_elem(h->val, h->vlen, &pos, &e, &elen)) {
		if (!chk_addr(e, elen, spec_ok))
			return -1;
		n++;
	}
	return n;
}

/* m-type "/" m-subtype *(SEMI m-parameter) (§20.15), or a range of Accept */
static bool chk_media(const char *s, size_t n, bool range)
{
	size_t i = 0, t;

	skip_lws(s, n, &i);
	for (t = i; i < n && sipmsg_is_token(s[i]); i++)
		;
	if (i == t || i >= n || s[i++] != '/')
		return false;
	for (t = i; i < n && sipmsg_is_token(s[i]); i++)
		;
	if (i == t || (!range && s[t] == '*'))
		return false;
	return chk_params_of(s, n, i, !range);
}

/* Accept: libosip2 keeps ranges it cannot print again */
static bool chk_accept(const struct sipmsg_hdr *h)
{
	size_t pos = 0, elen;
	const char *e;

	if (!h->vlen)
		return true;
	while (next_elem(h->val, h->vlen, &pos, &e, &elen)) {
		if (!chk_media(e, elen, true))
			return false;
	}
	return true;
}

struct sipmsg_rawscan {
	int count[SIPMSG_H_NUM];
	int routes; /* Route elements */
	int rroutes; /* Record-Route elements */
};

static bool chk_value(const struct sipmsg_hdr *h, enum sipmsg_hid id, struct sipmsg_rawscan *rs)
{
	unsigned long long v;
	int n;

	switch (id) {
	case SIPMSG_H_CALL_ID:
		return chk_call_id(h->val, h->vlen);
	case SIPMSG_H_CSEQ:
		return chk_cseq(h->val, h->vlen);
	case SIPMSG_H_FROM:
	case SIPMSG_H_TO:
		return chk_addr(h->val, h->vlen, true);
	case SIPMSG_H_CONTACT:
		return chk_addr_list(h, true, true) > 0;
	case SIPMSG_H_ROUTE:
	case SIPMSG_H_RECORD_ROUTE:
		n = chk_addr_list(h, false, false);
		*(id == SIPMSG_H_ROUTE ? &rs->routes : &rs->rroutes) += n;
		return n > 0;
	case SIPMSG_H_CONTENT_TYPE:
		return chk_media(h->val, h->vlen, false);
	case SIPMSG_H_ACCEPT:
		return chk_accept(h);
	case SIPMSG_H_MAX_FORWARDS:
		return !sipmsg_raw_uint(h->val, h->vlen, SIPMSG_MF_MAX, &v);
	case SIPMSG_H_CONTENT_LENGTH:
		return !sipmsg_raw_uint(h->val, h->vlen, SIPMSG_MAX, &v);
	case SIPMSG_H_EXPIRES:
	case SIPMSG_H_MIN_EXPIRES:
		return !sipmsg_raw_uint(h->val, h->vlen, SIPMSG_DELTA_MAX, &v);
	default:
		return true;
	}
}

static bool single_valued(enum sipmsg_hid id)
{
	return id != SIPMSG_H_OTHER && id != SIPMSG_H_VIA && id != SIPMSG_H_CONTACT &&
	       id != SIPMSG_H_ROUTE && id != SIPMSG_H_RECORD_ROUTE && id != SIPMSG_H_ACCEPT;
}

/* The header section as received: every line a header, every value this
 * module relies on well-formed, single-valued headers once (RFC 4475
 * §3.3.8-9), a body only with its Content-Type (§20.15), and no Route or
 * Record-Route that libosip2 silently left out. */
static int chk_raw_headers(const osip_message_t *m, const struct sipmsg_ix *ix)
{
	struct sipmsg_rawscan rs = { { 0 }, 0, 0 };
	struct sipmsg_ixit it = { 0, 0 };
	struct sipmsg_hdr h;
	enum sipmsg_hid id;
	size_t body, cl;
	int r;

	if (ix->octets < 0 || ix->bad)
		return 400;
	while ((r = sipmsg_ix_next(ix, &it, &h, &id))) {
		if (r < 0)
			return 400;
		rs.count[id]++;
		if ((single_valued(id) && rs.count[id] > 1) || !chk_value(&h, id, &rs))
			return 400;
	}
	if (rs.routes != osip_list_size(&m->routes) ||
	    rs.rroutes != osip_list_size(&m->record_routes))
		return 400;
	body = sipmsg_ix_clen(ix, &cl) ? ix->len - ix->l.body : cl;
	return body && !rs.count[SIPMSG_H_CONTENT_TYPE] ? 400 : 0;
}

/* ---- what libosip2 made of it ---------------------------------------------- */

static const char *param_value(const osip_list_t *params, const char *name, bool *found)
{
	for (int i = 0; i < osip_list_size(params); i++) {
		const osip_generic_param_t *p = osip_list_get(params, i);

		if (p && p->gname && !strcasecmp(p->gname, name)) {
			*found = true;
			return p->gvalue;
		}
	}
	*found = false;
	return NULL;
}

static bool chk_vias(const osip_message_t *m)
{
	int n = osip_list_size(&m->vias);

	for (int i = 0; i < n; i++) {
		const osip_via_t *via = osip_list_get(&m->vias, i);

		if (!via || !via->version || strcmp(via->version, "2.0") || !via->protocol ||
		    !*via->protocol || !via->host || !*via->host)
			return false;
	}
	return n > 0;
}

/* §8.1.1.6 makes Max-Forwards mandatory, RFC 2543 did not (RFC 4475
 * §3.4.1): it is required of clients that show RFC 3261 by the cookie. */
static bool chk_max_forwards(const osip_message_t *m)
{
	const osip_via_t *via = osip_list_get(&m->vias, 0);
	osip_header_t *h = NULL;
	const char *branch;
	bool found;

	if (osip_message_header_get_byname(m, "max-forwards", 0, &h) >= 0 && h)
		return true;
	if (!via)
		return false;
	branch = param_value(&via->via_params, "branch", &found);
	return !branch || strncmp(branch, SIPMSG_COOKIE, strlen(SIPMSG_COOKIE));
}

/* A Contact expires parameter is delta-seconds (§20.10, RFC 4475 §3.1.2.4). */
static bool chk_contact_expires(const osip_message_t *m)
{
	for (int i = 0; i < osip_list_size(&m->contacts); i++) {
		const osip_contact_t *c = osip_list_get(&m->contacts, i);
		unsigned long long v;
		const char *e;
		bool found;

		if (!c)
			continue;
		e = param_value(&c->gen_params, "expires", &found);
		if (found && (!e || sipmsg_raw_uint(e, strlen(e), SIPMSG_DELTA_MAX, &v)))
			return false;
	}
	return true;
}

/* libosip2 keeps no body without Content-Type, and no number check of
 * Content-Length: the two must agree. */
static bool chk_clen(const osip_message_t *m)
{
	unsigned long long v = 0;
	const char *s;

	if (!m->content_length || !m->content_length->value)
		return osip_list_size(&m->bodies) == 0;
	s = m->content_length->value;
	if (sipmsg_raw_uint(s, strlen(s), SIPMSG_MAX, &v))
		return false;
	return !v || osip_list_size(&m->bodies) > 0;
}

static bool chk_dialog_ids(const osip_message_t *m)
{
	return m->from && m->from->url && m->to && m->to->url && m->call_id && m->call_id->number &&
	       *m->call_id->number && m->cseq && m->cseq->method && m->cseq->number;
}

static int chk_parsed(const osip_message_t *m)
{
	const char *scheme;

	/* a request sipmsg_parse salvaged only to answer it */
	if (!m->req_uri || !m->sip_method)
		return 400;
	scheme = m->req_uri->scheme;
	if (!scheme || (strcasecmp(scheme, "sip") && strcasecmp(scheme, "sips")))
		return 416;
	if (!chk_dialog_ids(m) || strcmp(m->cseq->method, m->sip_method) || !chk_vias(m) ||
	    !chk_max_forwards(m) || !chk_contact_expires(m) || !chk_clen(m))
		return 400;
	return 0;
}

/* ---- extensions and bodies -------------------------------------------------- */

static bool option_supported(const char *tag, size_t n)
{
	for (int i = 0; sipmsg_option_tags[i]; i++) {
		if (strlen(sipmsg_option_tags[i]) == n && !memcmp(sipmsg_option_tags[i], tag, n))
			return true;
	}
	return false;
}

static void list_add(char *list, size_t size, const char *item, size_t n)
{
	size_t used = strlen(list);

	/* a full list still makes the 420; the client learns the rest later */
	if (used + n + 3 > size)
		return;
	snprintf(list + used, size - used, "%s%.*s", used ? ", " : "", (int)n, item);
}

/* 420 with Unsupported for option tags of Require / Proxy-Require that sipha
 * lacks (§8.2.2.3).  An ACK cannot be refused, so it is not asked. */
static int chk_require(const osip_message_t *m, struct sip_verdict *v)
{
	if (!strcmp(m->sip_method, "ACK"))
		return 0;
	for (int i = 0; i < osip_list_size(&m->headers); i++) {
		const osip_header_t *h = osip_list_get(&m->headers, i);
		size_t pos = 0, tn;
		const char *t;

		if (!h || !h->hname || !h->hvalue ||
		    (strcasecmp(h->hname, "require") && strcasecmp(h->hname, "proxy-require")))
			continue;
		while (next_elem(h->hvalue, strlen(h->hvalue), &pos, &t, &tn)) {
			size_t k = 0;

			skip_lws(t, tn, &k);
			t += k;
			tn -= k;
			while (tn && sipmsg_is_lws(t[tn - 1]))
				tn--;
			if (tn && !option_supported(t, tn))
				list_add(v->hvalue, sizeof(v->hvalue), t, tn);
		}
	}
	if (!v->hvalue[0])
		return 0;
	v->hname = "Unsupported";
	return 420;
}

/* 415 with Accept for a session body other than SDP (§8.2.3): sipha relays
 * SDP and nothing else between the legs.  Other methods carry bodies that
 * are not sessions (MESSAGE, INFO, NOTIFY) and pass. */
static int chk_body(const osip_message_t *m, struct sip_verdict *v)
{
	const osip_content_type_t *ct = m->content_type;
	enum sip_method id = sipmsg_method_id(m->sip_method);

	if (id != SIP_INVITE && id != SIP_UPDATE && id != SIP_PRACK)
		return 0;
	if (!osip_list_size(&m->bodies))
		return 0;
	if (ct && ct->type && ct->subtype && !strcasecmp(ct->type, "application") &&
	    !strcasecmp(ct->subtype, "sdp"))
		return 0;
	v->hname = "Accept";
	snprintf(v->hvalue, sizeof(v->hvalue), "application/sdp");
	return 415;
}

void sipmsg_check_request_ix(const osip_message_t *m, const struct sipmsg_ix *ix,
			     struct sip_verdict *v)
{
	int code;

	if (!v)
		return;
	memset(v, 0, sizeof(*v));
	if (!m || !ix || !MSG_IS_REQUEST(m))
		code = 400;
	else
		code = chk_request_line(ix->buf + ix->l.start, ix->l.sl_end - ix->l.start);
	if (!code)
		code = chk_raw_headers(m, ix);
	if (!code)
		code = chk_parsed(m);
	if (!code)
		code = chk_require(m, v);
	if (!code)
		code = chk_body(m, v);
	v->code = code;
	v->reason = code ? sipmsg_reason(code) : NULL;
}

void sipmsg_check_request(const osip_message_t *m, const char *raw, size_t len,
			  struct sip_verdict *v)
{
	struct sipmsg_ix ix;

	if (raw && !sipmsg_index(raw, len, &ix)) {
		sipmsg_check_request_ix(m, &ix, v);
		return;
	}
	if (v) {
		memset(v, 0, sizeof(*v));
		v->code = 400;
		v->reason = sipmsg_reason(400);
	}
}

int sipmsg_check_response(const osip_message_t *m)
{
	unsigned long long v;
	const char *meth;
	size_t i;

	if (!m || !MSG_IS_RESPONSE(m) || m->status_code < 100 || m->status_code > 699)
		return -EBADMSG;
	if (!m->sip_version || strcasecmp(m->sip_version, "SIP/2.0") || !chk_dialog_ids(m) ||
	    !chk_vias(m) || !chk_clen(m))
		return -EBADMSG;
	if (sipmsg_raw_uint(m->cseq->number, strlen(m->cseq->number), SIPMSG_CSEQ_MAX, &v))
		return -EBADMSG;
	meth = m->cseq->method;
	for (i = 0; meth[i] && sipmsg_is_token(meth[i]); i++)
		;
	return i && !meth[i] ? 0 : -EBADMSG;
}
