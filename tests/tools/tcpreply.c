/* tcpreply — a caller over TCP that closes its connection before the call is
 * answered, and the callee of that call over UDP, in one process: checks
 * that sipha sends the INVITE's responses over a new connection to the
 * request's source address at its top Via's port (RFC 3261 §18.2.2).
 *
 *   tcpreply [-v] [-T SEC] SIPHA_PORT CALLER_PORT CALLEE_PORT
 *
 * Everything on 127.0.0.1.  It listens on TCP CALLER_PORT (where the caller's
 * Via and Contact say it listens), binds UDP CALLEE_PORT (where sipha's route
 * for DN 3000 must lead), then:
 *
 *   1. connects to sipha on TCP and sends an INVITE for 3000 with
 *      Via: SIP/2.0/TCP 127.0.0.1:CALLER_PORT and an SDP offer;
 *   2. reads until the 100 Trying;
 *   3. closes that connection (shutdown, waits for sipha to close its side,
 *      so that sipha knows it is gone before the callee answers);
 *   4. the callee, only now heard, answers sipha's INVITE with 180 and 200;
 *   5. sipha must connect to CALLER_PORT (accepted within 3 s) and send the
 *      200 OK for the caller's INVITE (same Call-ID) on that connection;
 *   6. the caller sends ACK and BYE on it, the callee answers the BYE, and
 *      the caller must get 200 for its BYE; the callee must have had sipha's
 *      ACK and BYE.
 *
 * Retransmissions (sipha's INVITE to the callee, its 200 to the caller) are
 * absorbed.  Every wait is bounded, the whole run by SEC (default 15).
 * Exit status: 0 when every step held (one summary line on stdout), 1 when
 * one did not (the step and a trace of every message on stderr), 2 on usage
 * errors.  -v: the trace on stderr in any case. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TR_BUF 65536
#define TR_MAX_CONNS 4
#define TR_STEP_MS 3000 /* the bound on each step */
#define TR_TRACE 16384

/* One TCP connection of the caller: the one it opened, or one sipha opened. */
struct tr_conn {
	int fd;
	bool eof;
	size_t len;
	char buf[TR_BUF];
};

/* A parsed SIP message; pointers into the buffer it was framed from. */
struct tr_msg {
	const char *buf;
	size_t len, hlen; /* hlen: the header section with its blank line */
	int code; /* a response's status, 0 for a request */
	char method[16]; /* a request's method */
	char cseq_method[16];
	char callid[256];
	char first[160]; /* the first line, for the trace */
};

struct tr_run {
	uint16_t sipha_port, caller_port, callee_port;
	unsigned total_s;
	uint64_t t0, deadline;
	int lfd, ufd;
	struct tr_conn first; /* the caller's own connection to sipha */
	struct tr_conn acc[TR_MAX_CONNS]; /* connections sipha opened */
	unsigned n_acc;
	bool callee_live; /* the callee answers (after step 3) */
	char callid[128], from_tag[32];
	/* caller side */
	bool got_100, got_180, got_200, got_bye_200, a_error;
	int inv_final; /* a final response to the INVITE other than 200 */
	int ok_conn; /* index in acc[] of the 200's connection */
	char ok_to[512], ok_contact[512];
	uint64_t accept_ms;
	unsigned n_ok; /* 200s for the INVITE, retransmissions included */
	/* callee side */
	char b_callid[256], b_tag[32], b_ok[4096];
	size_t b_ok_len;
	unsigned b_invites, b_acks, b_byes, b_other;
	char trace[TR_TRACE];
	size_t trace_len;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 2, 3))) static void trace(struct tr_run *r, const char *fmt, ...)
{
	size_t room = sizeof(r->trace) - r->trace_len;
	va_list ap;
	int n;

	if (room < 2)
		return;
	n = snprintf(r->trace + r->trace_len, room, "  %5llu ms ",
		     (unsigned long long)(now_ms() - r->t0));
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
static bool hdr_get(const struct tr_msg *m, const char *name, char c, char *out, size_t size)
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

static size_t content_length(const char *buf, size_t hlen)
{
	struct tr_msg m = { .buf = buf, .hlen = hlen };
	char v[32];

	if (!hdr_get(&m, "Content-Length", 'l', v, sizeof(v)))
		return 0;
	return (size_t)strtoul(v, NULL, 10);
}

/* Fills M from the complete message BUF..BUF+LEN whose header section is HLEN
 * long; false when its first line is no SIP request or response. */
static bool parse_msg(struct tr_msg *m, const char *buf, size_t len, size_t hlen)
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
	hdr_get(m, "Call-ID", 'i', m->callid, sizeof(m->callid));
	if (hdr_get(m, "CSeq", 0, cseq, sizeof(cseq)))
		sscanf(cseq, "%*u %15s", m->cseq_method);
	return true;
}

/* A To (or From) value's tag, into OUT; false when it has none. */
static bool tag_of(const char *hv, char *out, size_t size)
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
	trace(r, "caller  > %s: %.*s%s%s", what, first_line_len(msg), msg, ret ? " FAILED: " : "",
	      ret ? strerror(-ret) : "");
	return ret;
}

static int send_invite(struct tr_run *r)
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
static int send_in_dialog(struct tr_run *r, const char *method, unsigned cseq)
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
static int callee_reply(struct tr_run *r, const struct tr_msg *req, int code, const char *reason,
			const struct sockaddr_in *from)
{
	char msg[4096], to[512], callid[256], cseq[64], vias[2048], from_hdr[512];
	char contact[96] = "", tag[48] = "";
	bool invite = !strcmp(req->method, "INVITE");
	bool sdp = invite && code == 200;
	int len;

	hdr_all(req, "Via", 'v', "Via: ", vias, sizeof(vias));
	hdr_get(req, "From", 'f', from_hdr, sizeof(from_hdr));
	hdr_get(req, "To", 't', to, sizeof(to));
	hdr_get(req, "Call-ID", 'i', callid, sizeof(callid));
	hdr_get(req, "CSeq", 0, cseq, sizeof(cseq));
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
	trace(r, "callee  > %d %s (CSeq %s)", code, reason, cseq);
	if (sendto(r->ufd, msg, (size_t)len, 0, (const struct sockaddr *)from, sizeof(*from)) < 0)
		return -errno;
	return 0;
}

/* --- receiving -------------------------------------------------------------------- */

static void callee_msg(struct tr_run *r, const struct tr_msg *m, const struct sockaddr_in *from)
{
	int ret;

	trace(r, "callee  < %s", m->first);
	if (m->code)
		return; /* the callee sends no request: nothing to answer */
	if (m->callid[0] && !r->b_callid[0])
		snprintf(r->b_callid, sizeof(r->b_callid), "%s", m->callid);
	if (strcmp(m->callid, r->b_callid)) {
		trace(r, "callee    (a request of another call: %s)", m->callid);
		r->b_other++;
		return;
	}
	if (!strcmp(m->method, "INVITE")) {
		if (r->b_invites++) {
			/* sipha's retransmission: the final answer again */
			if (r->b_ok_len && sendto(r->ufd, r->b_ok, r->b_ok_len, 0,
						  (const struct sockaddr *)from, sizeof(*from)) < 0)
				trace(r, "callee    resending 200: %s", strerror(errno));
			return;
		}
		ret = callee_reply(r, m, 180, "Ringing", from);
		if (!ret)
			ret = callee_reply(r, m, 200, "OK", from);
		if (ret)
			trace(r, "callee    sending: %s", strerror(-ret));
	} else if (!strcmp(m->method, "ACK")) {
		r->b_acks++;
	} else if (!strcmp(m->method, "BYE")) {
		r->b_byes++;
		ret = callee_reply(r, m, 200, "OK", from);
		if (ret)
			trace(r, "callee    sending: %s", strerror(-ret));
	} else {
		r->b_other++;
	}
}

static int callee_rx(struct tr_run *r)
{
	char buf[TR_BUF];
	struct sockaddr_in from;
	socklen_t flen;
	struct tr_msg m;
	const char *h;
	ssize_t n;

	for (;;) {
		flen = sizeof(from);
		n = recvfrom(r->ufd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
			     &flen);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		h = memmem(buf, (size_t)n, "\r\n\r\n", 4);
		if (!h || !parse_msg(&m, buf, (size_t)n, (size_t)(h + 4 - buf))) {
			trace(r, "callee  < %zd bytes that are no SIP message", n);
			r->b_other++;
			continue;
		}
		callee_msg(r, &m, &from);
	}
}

/* One message to the caller on connection IDX (-1: its own first one). */
static void caller_msg(struct tr_run *r, const struct tr_msg *m, int idx)
{
	char where[32];

	if (idx < 0)
		snprintf(where, sizeof(where), "first connection");
	else
		snprintf(where, sizeof(where), "sipha's connection %d", idx + 1);
	trace(r, "caller  < %s: %s", where, m->first);
	if (!m->code) {
		/* sipha has no reason to send the caller a request here */
		trace(r, "caller    (unexpected request %s)", m->method);
		r->a_error = true;
		return;
	}
	if (strcmp(m->callid, r->callid)) {
		trace(r, "caller    (a response of another Call-ID: %s)", m->callid);
		r->a_error = true;
		return;
	}
	if (!strcmp(m->cseq_method, "BYE")) {
		if (m->code == 200)
			r->got_bye_200 = true;
		else if (m->code >= 200)
			r->a_error = true;
		return;
	}
	if (strcmp(m->cseq_method, "INVITE")) {
		trace(r, "caller    (a response for %s)", m->cseq_method);
		r->a_error = true;
		return;
	}
	if (m->code == 100) {
		r->got_100 = true;
	} else if (m->code == 180) {
		r->got_180 = true;
	} else if (m->code == 200) {
		r->n_ok++;
		if (r->got_200)
			return; /* a retransmission */
		if (idx < 0) {
			/* the callee answers only once this connection is closed */
			trace(r, "caller    (the 200 came on the first connection)");
			r->a_error = true;
			return;
		}
		r->got_200 = true;
		r->ok_conn = idx;
		hdr_get(m, "To", 't', r->ok_to, sizeof(r->ok_to));
		hdr_get(m, "Contact", 'm', r->ok_contact, sizeof(r->ok_contact));
	} else if (m->code >= 300) {
		r->inv_final = m->code;
	}
}

/* Reads what C has and hands each complete message to caller_msg. */
static int caller_rx(struct tr_run *r, struct tr_conn *c, int idx)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	struct tr_msg m;

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		trace(r, "caller  recv on %s: %s",
		      idx < 0 ? "first connection" : "sipha's connection", strerror(errno));
		c->eof = true;
		return -errno;
	}
	if (n == 0) {
		trace(r, "caller  < %s closed by sipha",
		      idx < 0 ? "first connection" : "sipha's connection");
		c->eof = true;
		return 0;
	}
	c->len += (size_t)n;
	for (;;) {
		size_t skip = 0, hlen, total;
		const char *h;

		while (skip + 1 < c->len && c->buf[skip] == '\r' && c->buf[skip + 1] == '\n')
			skip += 2; /* keep-alives */
		if (skip) {
			memmove(c->buf, c->buf + skip, c->len - skip);
			c->len -= skip;
		}
		h = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (!h) {
			if (c->len == sizeof(c->buf)) {
				trace(r, "caller  no message end in %zu bytes", c->len);
				return -EMSGSIZE;
			}
			return 0;
		}
		hlen = (size_t)(h + 4 - c->buf);
		total = hlen + content_length(c->buf, hlen);
		if (total > sizeof(c->buf)) {
			trace(r, "caller  a message of %zu bytes", total);
			return -EMSGSIZE;
		}
		if (c->len < total)
			return 0;
		if (parse_msg(&m, c->buf, total, hlen)) {
			caller_msg(r, &m, idx);
		} else {
			trace(r, "caller  < no SIP message: %.60s", c->buf);
			r->a_error = true;
		}
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
	}
}

static int accept_one(struct tr_run *r)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	char ip[INET_ADDRSTRLEN] = "?";
	int fd = accept(r->lfd, (struct sockaddr *)&peer, &plen);

	if (fd < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	trace(r, "caller  accepted a connection from %s:%u", ip, ntohs(peer.sin_port));
	if (r->n_acc == TR_MAX_CONNS) {
		close(fd);
		r->a_error = true;
		return 0;
	}
	if (!r->n_acc)
		r->accept_ms = now_ms() - r->t0;
	r->acc[r->n_acc].fd = fd;
	r->acc[r->n_acc].eof = false;
	r->acc[r->n_acc].len = 0;
	r->n_acc++;
	return 0;
}

/* Waits up to MS for anything on our sockets and handles all of it. */
static int pump(struct tr_run *r, int ms)
{
	struct pollfd pf[TR_MAX_CONNS + 3];
	int who[TR_MAX_CONNS + 3]; /* -3 listener, -2 UDP, -1 first, i: acc[i] */
	nfds_t n = 0;
	int ret = 0;

	pf[n] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
	who[n++] = -3;
	if (r->callee_live) {
		pf[n] = (struct pollfd){ .fd = r->ufd, .events = POLLIN };
		who[n++] = -2;
	}
	if (r->first.fd >= 0 && !r->first.eof) {
		pf[n] = (struct pollfd){ .fd = r->first.fd, .events = POLLIN };
		who[n++] = -1;
	}
	for (unsigned i = 0; i < r->n_acc; i++) {
		if (r->acc[i].eof)
			continue;
		pf[n] = (struct pollfd){ .fd = r->acc[i].fd, .events = POLLIN };
		who[n++] = (int)i;
	}
	if (poll(pf, n, ms) < 0)
		return errno == EINTR ? 0 : -errno;
	for (nfds_t i = 0; i < n && !ret; i++) {
		if (!pf[i].revents)
			continue;
		if (who[i] == -3)
			ret = accept_one(r);
		else if (who[i] == -2)
			ret = callee_rx(r);
		else if (who[i] == -1)
			ret = caller_rx(r, &r->first, -1);
		else
			ret = caller_rx(r, &r->acc[who[i]], who[i]);
	}
	return ret;
}

static bool fatal(const struct tr_run *r)
{
	return r->a_error || r->inv_final || r->b_other;
}

/* Pumps until DONE holds, for MS at most (and never past the deadline):
 * 0, -ETIMEDOUT, -EPROTO when something unexpected came, or -errno. */
static int wait_for(struct tr_run *r, bool (*done)(const struct tr_run *r), unsigned ms)
{
	uint64_t end = now_ms() + ms, now;
	int ret;

	if (end > r->deadline)
		end = r->deadline;
	for (;;) {
		if (fatal(r))
			return -EPROTO;
		if (done(r))
			return 0;
		now = now_ms();
		if (now >= end)
			return -ETIMEDOUT;
		ret = pump(r, (int)(end - now < 100 ? end - now : 100));
		if (ret)
			return ret;
	}
}

static bool have_100(const struct tr_run *r)
{
	return r->got_100;
}

static bool first_closed(const struct tr_run *r)
{
	return r->first.eof;
}

static bool have_conn(const struct tr_run *r)
{
	return r->n_acc > 0;
}

static bool have_200(const struct tr_run *r)
{
	return r->got_200;
}

static bool call_over(const struct tr_run *r)
{
	return r->got_bye_200 && r->b_byes && r->b_acks;
}

/* --- the run ---------------------------------------------------------------------- */

static int open_sockets(struct tr_run *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1, ret;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	r->ufd = socket(AF_INET, SOCK_DGRAM, 0);
	r->first.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->lfd < 0 || r->ufd < 0 || r->first.fd < 0)
		return -errno;
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons(r->caller_port);
	if (bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(r->lfd, 8)) {
		ret = -errno;
		trace(r, "caller  TCP port %u: %s", r->caller_port, strerror(-ret));
		return ret;
	}
	a.sin_port = htons(r->callee_port);
	if (bind(r->ufd, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		trace(r, "callee  UDP port %u: %s", r->callee_port, strerror(-ret));
		return ret;
	}
	/* Loopback: connect() completes or fails at once. */
	a.sin_port = htons(r->sipha_port);
	if (connect(r->first.fd, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		trace(r, "caller  connect to sipha on %u: %s", r->sipha_port, strerror(-ret));
		return ret;
	}
	setsockopt(r->first.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* The caller's half-close, then sipha's close of its side: from then on
 * sipha knows the connection is gone. */
static int close_first(struct tr_run *r)
{
	int ret;

	if (shutdown(r->first.fd, SHUT_WR))
		return -errno;
	trace(r, "caller  > first connection: shutdown");
	ret = wait_for(r, first_closed, TR_STEP_MS);
	close(r->first.fd);
	r->first.fd = -1;
	return ret;
}

/* A clean end of the connections sipha opened: half-close, a short drain
 * (what sipha still sends is read, so close() does not reset). */
static void close_accepted(struct tr_run *r)
{
	uint64_t end = now_ms() + 500;

	for (unsigned i = 0; i < r->n_acc; i++)
		shutdown(r->acc[i].fd, SHUT_WR);
	while (now_ms() < end) {
		bool open = false;

		for (unsigned i = 0; i < r->n_acc; i++)
			open |= !r->acc[i].eof;
		if (!open || pump(r, 50))
			break;
	}
	for (unsigned i = 0; i < r->n_acc; i++)
		close(r->acc[i].fd);
	r->n_acc = 0;
}

static const char *err_str(int ret)
{
	if (ret == -ETIMEDOUT)
		return "timed out";
	if (ret == -EPROTO)
		return "unexpected message (see the trace)";
	return strerror(-ret);
}

/* Runs the steps; on failure *STEP says which.  0 or -errno. */
static int run(struct tr_run *r, const char **step)
{
	int ret;

	*step = "open the sockets";
	ret = open_sockets(r);
	if (ret)
		return ret;
	*step = "send the INVITE on the caller's connection";
	ret = send_invite(r);
	if (ret)
		return ret;
	*step = "100 Trying on the caller's connection";
	ret = wait_for(r, have_100, TR_STEP_MS);
	if (ret)
		return ret;
	*step = "close the caller's connection (sipha closes its side)";
	ret = close_first(r);
	if (ret)
		return ret;
	r->callee_live = true;
	*step = "sipha connects to the Via port of the caller";
	ret = wait_for(r, have_conn, TR_STEP_MS);
	if (ret)
		return ret;
	*step = "200 OK for the INVITE on sipha's connection";
	ret = wait_for(r, have_200, TR_STEP_MS);
	if (ret)
		return ret;
	*step = "the 200 OK has a To tag";
	if (!tag_of(r->ok_to, (char[64]){ 0 }, 64))
		return -EPROTO;
	*step = "send ACK and BYE on sipha's connection";
	ret = send_in_dialog(r, "ACK", 1);
	if (!ret)
		ret = send_in_dialog(r, "BYE", 2);
	if (ret)
		return ret;
	*step = "200 for the BYE, and the callee had ACK and BYE";
	ret = wait_for(r, call_over, TR_STEP_MS);
	if (ret)
		return ret;
	close_accepted(r);
	*step = "nothing unexpected while closing";
	return fatal(r) ? -EPROTO : 0;
}

static bool parse_u16(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcpreply [-v] [-T SEC] SIPHA_PORT CALLER_PORT CALLEE_PORT\n");
}

int main(int argc, char **argv)
{
	static struct tr_run r; /* large: not on the stack */
	const char *step = "";
	uint16_t total = 15;
	bool verbose = false;
	int opt, ret;

	while ((opt = getopt(argc, argv, "vT:")) != -1) {
		if (opt == 'v') {
			verbose = true;
		} else if (opt != 'T' || !parse_u16(optarg, &total)) {
			usage();
			return 2;
		}
	}
	if (argc - optind != 3 || !parse_u16(argv[optind], &r.sipha_port) ||
	    !parse_u16(argv[optind + 1], &r.caller_port) ||
	    !parse_u16(argv[optind + 2], &r.callee_port)) {
		usage();
		return 2;
	}
	r.lfd = r.ufd = r.first.fd = -1;
	r.t0 = now_ms();
	r.deadline = r.t0 + total * 1000u;
	snprintf(r.callid, sizeof(r.callid), "tcpreply-%u-%llu@127.0.0.1", (unsigned)getpid(),
		 (unsigned long long)r.t0);
	snprintf(r.from_tag, sizeof(r.from_tag), "tr%u", (unsigned)getpid());
	snprintf(r.b_tag, sizeof(r.b_tag), "cb%u", (unsigned)getpid());

	ret = run(&r, &step);
	if (ret) {
		fprintf(stderr, "tcpreply: FAIL at \"%s\": %s\n", step, err_str(ret));
		fprintf(stderr,
			"tcpreply: 100 %d, 180 %d, 200 %u, BYE 200 %d, final %d, sipha connections "
			"%u;"
			" callee: INVITE %u, ACK %u, BYE %u, other %u\n",
			r.got_100, r.got_180, r.n_ok, r.got_bye_200, r.inv_final, r.n_acc,
			r.b_invites, r.b_acks, r.b_byes, r.b_other);
		fprintf(stderr, "tcpreply: trace:\n%s", r.trace);
	} else {
		printf("ok: 100 on the caller's connection; sipha connected to %u after %llu ms;"
		       " 180 %s, 200 x%u there; BYE answered; callee: INVITE %u, ACK %u, BYE %u\n",
		       r.caller_port, (unsigned long long)r.accept_ms, r.got_180 ? "yes" : "no",
		       r.n_ok, r.b_invites, r.b_acks, r.b_byes);
		if (verbose)
			fprintf(stderr, "tcpreply: trace:\n%s", r.trace);
	}
	for (unsigned i = 0; i < r.n_acc; i++)
		close(r.acc[i].fd);
	if (r.first.fd >= 0)
		close(r.first.fd);
	if (r.ufd >= 0)
		close(r.ufd);
	if (r.lfd >= 0)
		close(r.lfd);
	return ret ? 1 : 0;
}
