/* The caller's route set (RFC 3261 §12.1.2, §12.2.1.1): the Record-Route
 * URIs of the 2xx to its INVITE in reverse order.  In-dialog requests
 * (ACK, BYE, OPTIONS, re-INVITE) carry it as Route and go to its first
 * URI when that is an IP address (else to TARGET); a first URI without
 * ;lr is a strict router: it becomes the Request-URI and the remote
 * target goes last in Route. */
#include "sipha-load/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <strings.h>

/* The next element of a Record-Route value in [*pp, e): its <uri> (angle
 * brackets included) in [*s, *n); skips the header parameters after it. */
static bool rr_next(const char **pp, const char *e, const char **s, size_t *n)
{
	const char *p = *pp, *lt, *gt;

	while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
		p++;
	if (p >= e)
		return false;
	lt = memchr(p, '<', (size_t)(e - p));
	if (!lt)
		return false;
	gt = memchr(lt, '>', (size_t)(e - lt));
	if (!gt)
		return false;
	*s = lt;
	*n = (size_t)(gt + 1 - lt);
	p = gt + 1;
	while (p < e && *p != ',')
		p++;
	*pp = p;
	return true;
}

/* The value of header line L (after "Name:"), CRLF dropped. */
static void line_value(const char *buf, struct sl_span l, const char **v, const char **e)
{
	const char *p = buf + l.off, *end = p + l.len, *colon = memchr(p, ':', l.len);

	while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	*v = colon ? colon + 1 : end;
	*e = end;
}

/* Whether URI (in <>) has the lr parameter. */
static bool loose(const char *u, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i++)
		if (u[i] == ';' && (u[i + 1] | 0x20) == 'l' && (u[i + 2] | 0x20) == 'r' &&
		    (i + 3 == n || u[i + 3] == ';' || u[i + 3] == '>' || u[i + 3] == '='))
			return true;
	return false;
}

/* The host and port of "<sip:[user@]host[:port][;...]>" as an address,
 * when the host is an IP literal. */
static bool uri_addr(const char *u, size_t n, union ld_addr *a)
{
	const char *p = u + 1, *e = u + n - 1, *h, *he, *at;
	char host[INET6_ADDRSTRLEN];
	unsigned port = 5060;

	if ((size_t)(e - p) < 4 || strncasecmp(p, "sip:", 4))
		return false;
	p += 4;
	for (he = p; he < e && *he != ';' && *he != '?'; he++)
		;
	at = memchr(p, '@', (size_t)(he - p));
	h = at ? at + 1 : p;
	if (h < he && *h == '[') {
		const char *rb = memchr(h, ']', (size_t)(he - h));

		if (!rb)
			return false;
		if ((size_t)(rb - h - 1) >= sizeof(host))
			return false;
		memcpy(host, h + 1, (size_t)(rb - h - 1));
		host[rb - h - 1] = 0;
		p = rb + 1;
	} else {
		const char *c = memchr(h, ':', (size_t)(he - h));
		const char *hend = c ? c : he;

		if ((size_t)(hend - h) >= sizeof(host))
			return false;
		memcpy(host, h, (size_t)(hend - h));
		host[hend - h] = 0;
		p = hend;
	}
	if (p < he && *p == ':') {
		port = 0;
		for (p++; p < he && *p >= '0' && *p <= '9' && port < 65536; p++)
			port = port * 10 + (unsigned)(*p - '0');
		if (p != he || !port || port > 65535)
			return false;
	}
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons((uint16_t)port);
		return true;
	}
	if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)port);
		return true;
	}
	return false;
}

int route_set(struct ld_call *c, const char *buf, const struct sl_msg *m)
{
	const char *us[SL_MAX_RR * 4];
	size_t ns[SL_MAX_RR * 4], n = 0, len = 0;

	c->route_len = c->route_first = 0;
	c->has_hop = c->strict = false;
	for (unsigned i = 0; i < m->nrr; i++) {
		const char *p, *e;

		line_value(buf, m->rr[i], &p, &e);
		while (n < sizeof(us) / sizeof(us[0]) && rr_next(&p, e, &us[n], &ns[n]))
			n++;
	}
	if (!n)
		return 0;
	for (size_t i = n; i-- > 0;) { /* reversed */
		if (len + ns[i] + 1 > LD_ROUTE_MAX)
			return -ENOSPC;
		if (len)
			c->route[len++] = ',';
		memcpy(c->route + len, us[i], ns[i]);
		len += ns[i];
	}
	c->route_len = (uint16_t)len;
	c->route_first = (uint16_t)ns[n - 1];
	c->strict = !loose(c->route, c->route_first);
	c->has_hop = uri_addr(c->route, c->route_first, &c->hop);
	return 0;
}

void route_ruri(struct wb *w, const struct load *ld, const struct ld_call *c)
{
	if (c->route_len && c->strict)
		wb_mem(w, c->route + 1, c->route_first - 2u);
	else if (c->contact_len)
		wb_mem(w, c->contact, c->contact_len);
	else
		wb_str(w, &ld->ruri);
}

void route_header(struct wb *w, const struct ld_call *c)
{
	if (!c->route_len)
		return;
	wb_lit(w, "Route: ");
	if (!c->strict) {
		wb_mem(w, c->route, c->route_len);
	} else {
		if (c->route_len > c->route_first) { /* the rest, after the comma */
			wb_mem(w, c->route + c->route_first + 1,
			       (size_t)(c->route_len - c->route_first - 1));
			wb_lit(w, ",");
		}
		wb_lit(w, "<");
		wb_mem(w, c->contact, c->contact_len);
		wb_lit(w, ">");
	}
	wb_lit(w, "\r\n");
}
