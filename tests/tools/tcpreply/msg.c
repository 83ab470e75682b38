/* tcpreply — the SIP side of both ends: the trace, a small header parser
 * (enough to frame TCP messages and to read Call-ID, CSeq, To, Contact and
 * the Vias back), and the messages the caller and the callee send: the
 * caller's INVITE, its ACK and BYE in the dialog the 200 set up, and the
 * callee's responses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpreply.h"

void tr_trace(struct tr_run *r, const char *fmt, ...)
{
	size_t room = sizeof(r->trace) - r->trace_len;
	va_list ap;
	int n;

	if (room < 2)
		return;
	n = snprintf(r->trace + r->trace_len, room, "  %5llu ms ",
		     (unsigned long long)(tr_now_ms() - r->t0));
	if (n < 0 || (size_t)n >= room)
		goto full;
	r->trace_len += (size_t)n;
	room -= (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(r->trace + r->trace_len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room - 1)
		goto full;
	r->trace_len += (size_t)n;
	r->trace[r->trace_len++] = '\n';
	r->trace[r->trace_len] = '\0';
	return;
full:
	r->trace_len = sizeof(r->trace) - 1;
	r->trace[r->trace_len] = '\0';
}

/* --- parsing ---------------------------------------------------------------------- */

/* Calls FN for each header line of M named NAME (or its compact form C, 0:
 * none) with its trimmed value; stops when FN returns true. */
static bool hdr_each(const struct tr_msg *m, const char *name, char c,
		     bool (*fn)(const char *v, size_t vlen, void *arg), void *arg)
{
	const char *end = m->buf + m->hlen, *p, *e, *colon, *v, *ve;
	size_t nlen = strlen(name), klen;

	p = memmem(m->buf, m->hlen, "\r\n", 2);
	if (!p)
		return false;
	for (p += 2; p < end; p = e + 2) {
		e = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!e || e == p)
			break;
		colon = memchr(p, ':', (size_t)(e - p));
		if (!colon)
			continue;
		klen = (size_t)(colon - p);
		while (klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
			klen--;
		if (!((klen == nlen && !strncasecmp(p, name, nlen)) ||
		      (c && klen == 1 && (p[0] | 0x20) == c)))
			continue;
		for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = e; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (fn(v, (size_t)(ve - v), arg))
			return true;
	}
	return false;
}

struct tr_out {
	char *s;
	size_t size, len;
	const char *prefix; /* hdr_all: "Name: " before each value */
};

static bool take_first(const char *v, size_t vlen, void *arg)
{
	struct tr_out *o = arg;

	if (vlen >= o->size)
		vlen = o->size - 1;
	memcpy(o->s, v, vlen);
	o->s[vlen] = '\0';
	return true;
}

/* The value of header NAME into OUT ("" when absent); false when absent. */
bool tr_hdr_get(const struct tr_msg *m, const char *name, char c, char *out, size_t size)
{
	struct tr_out o = { out, size, 0, NULL };

	out[0] = '\0';
	return hdr_each(m, name, c, take_first, &o);
}

static bool take_line(const char *v, size_t vlen, void *arg)
{
	struct tr_out *o = arg;
	int n = snprintf(o->s + o->len, o->size - o->len, "%s%.*s\r\n", o->prefix, (int)vlen, v);

	if (n > 0 && (size_t)n < o->size - o->len)
		o->len += (size_t)n;
	return false;
}

/* Every header NAME of M as "PREFIX value\r\n" lines, in order; their length. */
static size_t hdr_all(const struct tr_msg *m, const char *name, char c, const char *prefix,
		      char *out, size_t size)
{
	struct tr_out o = { out, size, 0, prefix };

	out[0] = '\0';
	hdr_each(m, name, c, take_line, &o);
	return o.len;
}

size_t tr_content_length(const char *buf, size_t hlen)
{
	struct tr_msg m = { .buf = buf, .hlen = hlen };
	char v[32];

	if (!tr_hdr_get(&m, "Content-Length", 'l', v, sizeof(v)))
		return 0;
	return (size_t)strtoul(v, NULL, 10);
}

/* Fills M from the complete message BUF..BUF+LEN whose header section is HLEN
 * long; false when its first line is no SIP request or response. */
bool tr_parse_msg(struct tr_msg *m, const char *buf, size_t len, size_t hlen)
{
	const char *eol = memmem(buf, hlen, "\r\n", 2);
	char cseq[64];
	size_t n;

	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->len = len;
	m->hlen = hlen;
	if (!eol)
		return false;
	n = (size_t)(eol - buf);
	if (n >= sizeof(m->first))
		n = sizeof(m->first) - 1;
	memcpy(m->first, buf, n);
	m->first[n] = '\0';
	if (!strncmp(m->first, "SIP/2.0 ", 8)) {
		m->code = atoi(m->first + 8);
		if (m->code < 100 || m->code > 699)
			return false;
	} else if (sscanf(m->first, "%15[A-Z] sip:", m->method) != 1 ||
		   !strstr(m->first, " SIP/2.0")) {
		return false;
	}
	tr_hdr_get(m, "Call-ID", 'i', m->callid, sizeof(m->callid));
	if (tr_hdr_get(m, "CSeq", 0, cseq, sizeof(cseq)))
		sscanf(cseq, "%*u %15s", m->cseq_method);
	return true;
}

/* A To (or From) value's tag, into OUT; false when it has none. */
bool tr_tag_of(const char *hv, char *out, size_t size)
{
	const char *p = strcasestr(hv, ";tag=");
	size_t n;

	if (!p)
		return false;
	p += 5;
	n = strcspn(p, ";> \t");
	if (!n || n >= size)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* The URI inside <...> of a Contact value (or the value itself), into OUT. */
static void uri_of(const char *hv, char *out, size_t size)
{
	const char *a = strchr(hv, '<'), *b = a ? strchr(a, '>') : NULL;
	size_t n;

	if (a && b) {
		a++;
		n = (size_t)(b - a);
	} else {
		a = hv;
		n = strcspn(hv, ";");
	}
	if (n >= size)
		n = size - 1;
	memcpy(out, a, n);
	out[n] = '\0';
}

/* --- sending ---------------------------------------------------------------------- */

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int first_line_len(const char *s)
{
	const char *e = strstr(s, "\r\n");

	return e ? (int)(e - s) : (int)strlen(s);
}

static const char tr_sdp_a[] = "v=0\r\n"
			       "o=caller 1 1 IN IP4 127.0.0.1\r\n"
			       "s=-\r\n"
			       "c=IN IP4 127.0.0.1\r\n"
			       "t=0 0\r\n"
			       "m=audio 40000 RTP/AVP 0\r\n"
			       "a=rtpmap:0 PCMU/8000\r\n";

static const char tr_sdp_b[] = "v=0\r\n"
			       "o=callee 1 1 IN IP4 127.0.0.1\r\n"
			       "s=-\r\n"
			       "c=IN IP4 127.0.0.1\r\n"
			       "t=0 0\r\n"
			       "m=audio 40002 RTP/AVP 0\r\n"
			       "a=rtpmap:0 PCMU/8000\r\n";

static int caller_send(struct tr_run *r, int fd, const char *what, const char *msg, int len)
{
	int ret;

	if (len < 0 || (size_t)len >= 4096)
		return -EOVERFLOW;
	ret = send_all(fd, msg, (size_t)len);
	tr_trace(r, "caller  > %s: %.*s%s%s", what, first_line_len(msg), msg,
		 ret ? " FAILED: " : "", ret ? strerror(-ret) : "");
	return ret;
}

int tr_send_invite(struct tr_run *r)
{
	char msg[4096];
	int len;

	len = snprintf(msg, sizeof(msg),
		       "INVITE sip:3000@127.0.0.1:%u SIP/2.0\r\n"
		       "Via: SIP/2.0/TCP 127.0.0.1:%u;branch=z9hG4bK-tcpreply-%u-1\r\n"
		       "Max-Forwards: 70\r\n"
		       "From: <sip:caller@127.0.0.1:%u>;tag=%s\r\n"
		       "To: <sip:3000@127.0.0.1:%u>\r\n"
		       "Call-ID: %s\r\n"
		       "CSeq: 1 INVITE\r\n"
		       "Contact: <sip:caller@127.0.0.1:%u;transport=tcp>\r\n"
		       "Content-Type: application/sdp\r\n"
		       "Content-Length: %zu\r\n\r\n%s",
		       r->sipha_port, r->caller_port, (unsigned)getpid(), r->caller_port,
		       r->from_tag, r->sipha_port, r->callid, r->caller_port, strlen(tr_sdp_a),
		       tr_sdp_a);
	return caller_send(r, r->first.fd, "first connection", msg, len);
}

/* ACK (CSEQ 1) or BYE (CSEQ 2) in the dialog the 200 set up. */
int tr_send_in_dialog(struct tr_run *r, const char *method, unsigned cseq)
{
	char msg[4096], ruri[512];
	int len;

	uri_of(r->ok_contact, ruri, sizeof(ruri));
	if (!ruri[0])
		snprintf(ruri, sizeof(ruri), "sip:127.0.0.1:%u;transport=tcp", r->sipha_port);
	len = snprintf(msg, sizeof(msg),
		       "%s %s SIP/2.0\r\n"
		       "Via: SIP/2.0/TCP 127.0.0.1:%u;branch=z9hG4bK-tcpreply-%u-%s\r\n"
		       "Max-Forwards: 70\r\n"
		       "From: <sip:caller@127.0.0.1:%u>;tag=%s\r\n"
		       "To: %s\r\n"
		       "Call-ID: %s\r\n"
		       "CSeq: %u %s\r\n"
		       "Contact: <sip:caller@127.0.0.1:%u;transport=tcp>\r\n"
		       "Content-Length: 0\r\n\r\n",
		       method, ruri, r->caller_port, (unsigned)getpid(), method, r->caller_port,
		       r->from_tag, r->ok_to, r->callid, cseq, method, r->caller_port);
	return caller_send(r, r->acc[r->ok_conn].fd, "sipha's connection", msg, len);
}

/* The callee's response CODE to REQ, sent to FROM; the 200 for the INVITE is
 * kept for its retransmissions. */
int tr_callee_reply(struct tr_run *r, const struct tr_msg *req, int code, const char *reason,
		    const struct sockaddr_in *from)
{
	char msg[4096], to[512], callid[256], cseq[64], vias[2048], from_hdr[512];
	char contact[96] = "", tag[48] = "";
	bool invite = !strcmp(req->method, "INVITE");
	bool sdp = invite && code == 200;
	int len;

	hdr_all(req, "Via", 'v', "Via: ", vias, sizeof(vias));
	tr_hdr_get(req, "From", 'f', from_hdr, sizeof(from_hdr));
	tr_hdr_get(req, "To", 't', to, sizeof(to));
	tr_hdr_get(req, "Call-ID", 'i', callid, sizeof(callid));
	tr_hdr_get(req, "CSeq", 0, cseq, sizeof(cseq));
	if (!strcasestr(to, ";tag="))
		snprintf(tag, sizeof(tag), ";tag=%s", r->b_tag);
	if (invite)
		snprintf(contact, sizeof(contact), "Contact: <sip:callee@127.0.0.1:%u>\r\n",
			 r->callee_port);
	len = snprintf(msg, sizeof(msg),
		       "SIP/2.0 %d %s\r\n"
		       "%s"
		       "From: %s\r\n"
		       "To: %s%s\r\n"
		       "Call-ID: %s\r\n"
		       "CSeq: %s\r\n"
		       "%s%s"
		       "Content-Length: %zu\r\n\r\n%s",
		       code, reason, vias, from_hdr, to, tag, callid, cseq, contact,
		       sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? strlen(tr_sdp_b) : 0,
		       sdp ? tr_sdp_b : "");
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -EOVERFLOW;
	if (sdp) {
		memcpy(r->b_ok, msg, (size_t)len);
		r->b_ok_len = (size_t)len;
	}
	tr_trace(r, "callee  > %d %s (CSeq %s)", code, reason, cseq);
	if (sendto(r->ufd, msg, (size_t)len, 0, (const struct sockaddr *)from, sizeof(*from)) < 0)
		return -errno;
	return 0;
}
