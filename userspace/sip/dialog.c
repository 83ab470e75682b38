#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/dialog.h"
#include "sip/msg.h"

static int dup_str(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

/* libosip2 allocates with osip_malloc; keep our own strings in malloc'd
 * memory so dlg_free is plain free(). */
static int uri_str(const osip_uri_t *u, char **dst)
{
	char *s = NULL;
	int ret;

	if (!u || osip_uri_to_str(u, &s))
		return -EINVAL;
	ret = dup_str(dst, s);
	osip_free(s);
	return ret;
}

static const char *tag_of(const osip_from_t *f)
{
	osip_generic_param_t *p = NULL;

	if (f && osip_from_get_tag((osip_from_t *)f, &p) == 0 && p && p->gvalue)
		return p->gvalue;
	return NULL;
}

static int take_contact(struct dialog *d, const osip_message_t *m)
{
	osip_contact_t *c = NULL;

	if (osip_message_get_contact(m, 0, &c) < 0 || !c || !c->url)
		return -ENOENT;
	return uri_str(c->url, &d->remote_target);
}

static void clear_routes(struct dialog *d)
{
	for (unsigned i = 0; i < d->nroutes; i++)
		free(d->routes[i]);
	d->nroutes = 0;
}

/* Record-Route values, in the order given (UAS) or reversed (UAC). */
static int take_routes(struct dialog *d, const osip_message_t *m, bool reverse)
{
	int n = osip_list_size(&m->record_routes);

	clear_routes(d);
	if (n > DLG_MAX_ROUTES)
		return -E2BIG;
	for (int i = 0; i < n; i++) {
		osip_record_route_t *rr = osip_list_get(&m->record_routes, reverse ? n - 1 - i : i);
		char *s = NULL;

		if (!rr || osip_record_route_to_str(rr, &s))
			return -EINVAL;
		d->routes[d->nroutes] = strdup(s);
		osip_free(s);
		if (!d->routes[d->nroutes])
			return -ENOMEM;
		d->nroutes++;
	}
	return 0;
}

int dlg_init_uas(struct dialog *d, const osip_message_t *req, const char *local_tag)
{
	int ret;

	memset(d, 0, sizeof(*d));
	if (!req->call_id || !req->call_id->number || !req->from || !req->to || !req->cseq ||
	    !req->cseq->number)
		return -EINVAL;
	if (req->call_id->host) {
		size_t len = strlen(req->call_id->number) + strlen(req->call_id->host) + 2;

		d->call_id = malloc(len);
		if (!d->call_id)
			return -ENOMEM;
		snprintf(d->call_id, len, "%s@%s", req->call_id->number, req->call_id->host);
	} else if ((ret = dup_str(&d->call_id, req->call_id->number))) {
		return ret;
	}
	if ((ret = dup_str(&d->local_tag, local_tag)) ||
	    (ret = dup_str(&d->remote_tag, tag_of(req->from))) ||
	    (ret = uri_str(req->to->url, &d->local_uri)) ||
	    (ret = dup_str(&d->local_name, req->to->displayname)) ||
	    (ret = uri_str(req->from->url, &d->remote_uri)) ||
	    (ret = dup_str(&d->remote_name, req->from->displayname)))
		goto err;
	/* A request without Contact still gets a dialog: its From URI is the
	 * best target we have (RFC 2543 peers). */
	if (take_contact(d, req) && (ret = dup_str(&d->remote_target, d->remote_uri)))
		goto err;
	if ((ret = take_routes(d, req, false)))
		goto err;
	d->remote_cseq = (uint32_t)strtoul(req->cseq->number, NULL, 10);
	d->remote_cseq_set = true;
	d->local_cseq = 0;
	return 0;
err:
	dlg_free(d);
	return ret;
}

int dlg_init_uac(struct dialog *d, const char *call_id, const char *local_tag,
		 const char *local_uri, const char *local_name, const char *remote_uri,
		 const char *remote_target, uint32_t cseq)
{
	int ret;

	memset(d, 0, sizeof(*d));
	if ((ret = dup_str(&d->call_id, call_id)) || (ret = dup_str(&d->local_tag, local_tag)) ||
	    (ret = dup_str(&d->local_uri, local_uri)) ||
	    (ret = dup_str(&d->local_name, local_name)) ||
	    (ret = dup_str(&d->remote_uri, remote_uri)) ||
	    (ret = dup_str(&d->remote_target, remote_target))) {
		dlg_free(d);
		return ret;
	}
	d->local_cseq = cseq;
	return 0;
}

int dlg_uac_update(struct dialog *d, const osip_message_t *resp)
{
	const char *tag = tag_of(resp->to);
	int ret;

	if (tag && (!d->remote_tag || strcmp(d->remote_tag, tag)) &&
	    (ret = dup_str(&d->remote_tag, tag)))
		return ret;
	/* 1xx without Contact keeps the target; only a present one moves it. */
	take_contact(d, resp);
	return take_routes(d, resp, true);
}

int dlg_refresh_target(struct dialog *d, const osip_message_t *m)
{
	int ret = take_contact(d, m);

	return ret == -ENOENT ? 0 : ret;
}

void dlg_free(struct dialog *d)
{
	free(d->call_id);
	free(d->local_tag);
	free(d->remote_tag);
	free(d->local_uri);
	free(d->local_name);
	free(d->remote_uri);
	free(d->remote_name);
	free(d->remote_target);
	clear_routes(d);
	memset(d, 0, sizeof(*d));
}

static int set_addr_hdr(osip_message_t *m, bool from, const char *name, const char *uri,
			const char *tag)
{
	size_t len = strlen(uri) + (name ? strlen(name) : 0) + (tag ? strlen(tag) : 0) + 16;
	char *s = malloc(len);
	int ret;

	if (!s)
		return -ENOMEM;
	snprintf(s, len, "%s%s<%s>%s%s", name ? name : "", name ? " " : "", uri, tag ? ";tag=" : "",
		 tag ? tag : "");
	ret = from ? osip_message_set_from(m, s) : osip_message_set_to(m, s);
	free(s);
	return ret ? -EINVAL : 0;
}

int dlg_build_request(struct dialog *d, const char *method, uint32_t cseq, const char *via_host,
		      unsigned via_port, enum sip_proto proto, const char *branch,
		      const char *contact, osip_message_t **out)
{
	osip_message_t *m = NULL;
	osip_uri_t *ruri = NULL;
	char buf[512];
	int ret = -ENOMEM;

	*out = NULL;
	if (osip_message_init(&m))
		return -ENOMEM;
	osip_message_set_method(m, osip_strdup(method));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	/* Loose routing (§12.2.1.1): the target stays in the Request-URI and
	 * the route set goes into Route headers. */
	if (osip_uri_init(&ruri) || osip_uri_parse(ruri, d->remote_target)) {
		osip_uri_free(ruri);
		ret = -EINVAL;
		goto err;
	}
	osip_message_set_uri(m, ruri);
	snprintf(buf, sizeof(buf), "SIP/2.0/%s %s:%u;branch=%s;rport",
		 proto == SIP_PROTO_TCP ? "TCP" : "UDP", via_host, via_port, branch);
	if (osip_message_set_via(m, buf))
		goto err;
	if ((ret = set_addr_hdr(m, true, d->local_name, d->local_uri, d->local_tag)) ||
	    (ret = set_addr_hdr(m, false, d->remote_name, d->remote_uri, d->remote_tag)))
		goto err;
	ret = -EINVAL;
	if (osip_message_set_call_id(m, d->call_id))
		goto err;
	if (!cseq)
		cseq = ++d->local_cseq;
	snprintf(buf, sizeof(buf), "%u %s", cseq, method);
	if (osip_message_set_cseq(m, buf) || osip_message_set_max_forwards(m, "70"))
		goto err;
	for (unsigned i = 0; i < d->nroutes; i++)
		if (osip_message_set_route(m, d->routes[i]))
			goto err;
	if (contact) {
		snprintf(buf, sizeof(buf), "<%s>", contact);
		if (osip_message_set_contact(m, buf))
			goto err;
	}
	*out = m;
	return 0;
err:
	osip_message_free(m);
	return ret;
}

static bool plain(const char *s)
{
	return !s || !strstr(s, SIPMSG_NUL_ESC);
}

ssize_t dlg_write_request(struct dialog *d, const char *method, uint32_t cseq, const char *via_host,
			  unsigned via_port, enum sip_proto proto, const char *branch,
			  const char *ctype, const char *body, size_t blen, char *buf, size_t cap)
{
	size_t o = 0;
	int n;

	if (!plain(d->remote_target) || !plain(d->local_uri) || !plain(d->remote_uri) ||
	    !plain(d->local_name) || !plain(d->remote_name))
		return -EAGAIN;
	for (unsigned i = 0; i < d->nroutes; i++)
		if (!plain(d->routes[i]))
			return -EAGAIN;
	/* the dialog's next CSeq is taken only once the request is written */
	uint32_t next = cseq ? cseq : d->local_cseq + 1;
#define W(...)                                               \
	do {                                                 \
		n = snprintf(buf + o, cap - o, __VA_ARGS__); \
		if (n < 0 || (size_t)n >= cap - o)           \
			return -ENOSPC;                      \
		o += (size_t)n;                              \
	} while (0)
	W("%s %s SIP/2.0\r\nVia: SIP/2.0/%s %s:%u;branch=%s;rport\r\n", method, d->remote_target,
	  proto == SIP_PROTO_TCP ? "TCP" : "UDP", via_host, via_port, branch);
	W("From: %s%s<%s>;tag=%s\r\n", d->local_name ? d->local_name : "", d->local_name ? " " : "",
	  d->local_uri, d->local_tag);
	W("To: %s%s<%s>%s%s\r\n", d->remote_name ? d->remote_name : "", d->remote_name ? " " : "",
	  d->remote_uri, d->remote_tag ? ";tag=" : "", d->remote_tag ? d->remote_tag : "");
	W("Call-ID: %s\r\nCSeq: %u %s\r\nMax-Forwards: 70\r\n", d->call_id, next, method);
	for (unsigned i = 0; i < d->nroutes; i++)
		W("Route: %s\r\n", d->routes[i]);
	if (body && ctype)
		W("Content-Type: %s\r\n", ctype);
	W("Content-Length: %zu\r\n\r\n", body ? blen : 0);
#undef W
	if (body && blen) {
		if (blen >= cap - o)
			return -ENOSPC;
		memcpy(buf + o, body, blen);
		o += blen;
	}
	if (!cseq)
		d->local_cseq = next;
	return (ssize_t)o;
}

bool dlg_check_remote_cseq(struct dialog *d, const osip_message_t *req)
{
	uint32_t c;

	if (!req->cseq || !req->cseq->number)
		return false;
	c = (uint32_t)strtoul(req->cseq->number, NULL, 10);
	/* ACK and CANCEL reuse the INVITE's number; callers pass other methods. */
	if (d->remote_cseq_set && c < d->remote_cseq)
		return false;
	d->remote_cseq = c;
	d->remote_cseq_set = true;
	return true;
}
