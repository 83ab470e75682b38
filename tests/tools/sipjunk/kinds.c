/* sipjunk — the kinds of junk: a generator per kind that writes one datagram
 * and the answers that are right for it, the table -l lists, and the
 * well-formed OPTIONS of -o.  Everything random comes from the context's
 * xorshift state, so a seed (-s) replays a run datagram for datagram. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sipjunk.h"

#define SJ_HUGE_VALUE (60u << 10)

/* xorshift64*: reproducible from -s, no libc state. */
uint32_t sj_rnd(struct sj_ctx *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (uint32_t)((c->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static unsigned rnd_range(struct sj_ctx *c, unsigned lo, unsigned hi) /* [lo, hi] */
{
	return lo + sj_rnd(c) % (hi - lo + 1);
}

static int buf_reserve(struct sj_buf *b, size_t more)
{
	char *p;
	size_t cap;

	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = (b->len + more + 1) * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void sj_buf_add(struct sj_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len))
		return; /* the datagram comes out short; the run reports it as sent */
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void sj_buf_printf(struct sj_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void allow(struct sj_msg *m, int code)
{
	if (m->nallowed < SJ_MAX_ALLOWED)
		m->allowed[m->nallowed++] = code;
}

static const char sdp[] = "v=0\r\n"
			  "o=sipjunk 1 1 IN IP4 127.0.0.1\r\n"
			  "s=-\r\n"
			  "c=IN IP4 127.0.0.1\r\n"
			  "t=0 0\r\n"
			  "m=audio 40000 RTP/AVP 0\r\n";

/* Header lines of a well-formed request, one bit per mandatory header so a
 * generator can leave any of them out. */
enum {
	H_VIA = 1,
	H_FROM = 2,
	H_TO = 4,
	H_CALLID = 8,
	H_CSEQ = 16,
	H_MAXF = 32,
	H_ALL = 63
};

static void add_headers(struct sj_ctx *c, struct sj_buf *b, unsigned lport, const char *method,
			unsigned which)
{
	if (which & H_VIA)
		sj_buf_printf(b, "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-sj-%u-%u;rport\r\n",
			      lport, c->seq, sj_rnd(c));
	if (which & H_MAXF)
		sj_buf_printf(b, "Max-Forwards: 70\r\n");
	if (which & H_FROM)
		sj_buf_printf(b, "From: <sip:junk@sipha.test>;tag=sj%u\r\n", c->seq);
	if (which & H_TO)
		sj_buf_printf(b, "To: <sip:1001@sipha.test>\r\n");
	if (which & H_CALLID)
		sj_buf_printf(b, "Call-ID: sj-%u-%08x@127.0.0.1\r\n", c->seq, sj_rnd(c));
	if (which & H_CSEQ)
		sj_buf_printf(b, "CSeq: %u %s\r\n", rnd_range(c, 1, 1000000), method);
}

static void options_line(struct sj_ctx *c, struct sj_buf *b)
{
	sj_buf_printf(b, "OPTIONS sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
}

/* --- generators ------------------------------------------------------------------ */

/* A valid INVITE cut short.  CSeq is the last header and the body is SDP,
 * so every cut leaves a message that is broken: no CSeq, a partial CSeq, or
 * a Content-Length larger than what arrived. */
static void gen_truncated(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	struct sj_buf *b = &m->b;
	size_t line_end, cut;

	sj_buf_printf(b, "INVITE sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
	line_end = b->len;
	add_headers(c, b, lport, "INVITE", H_VIA | H_MAXF | H_FROM | H_TO | H_CALLID);
	sj_buf_printf(b, "Contact: <sip:junk@127.0.0.1:%u>\r\n", lport);
	sj_buf_printf(b, "Content-Type: application/sdp\r\n");
	sj_buf_printf(b, "Content-Length: %zu\r\n", sizeof(sdp) - 1);
	sj_buf_printf(b, "CSeq: %u INVITE\r\n\r\n%s", rnd_range(c, 1, 1000000), sdp);
	cut = rnd_range(c, 1, (unsigned)b->len - 1);
	b->len = cut;
	b->p[cut] = '\0';
	allow(m, SJ_NONE);
	allow(m, 400);
	if (cut < line_end) {
		/* Only a start line, or part of one: a lenient parser may still
		 * see a version or a URI it refuses. */
		allow(m, 416);
		allow(m, 505);
	}
}

/* Random octets that can never start a SIP message: the first is a control
 * or non-ASCII octet, so no start line can be read. */
static void gen_binary(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	unsigned len = rnd_range(c, 1, 1400);
	char chunk[1400];

	(void)lport;
	for (unsigned i = 0; i < len; i++)
		chunk[i] = (char)sj_rnd(c);
	chunk[0] = (char)(sj_rnd(c) & 1 ? rnd_range(c, 0x00, 0x1f) : rnd_range(c, 0x80, 0xff));
	sj_buf_add(&m->b, chunk, len);
	allow(m, SJ_NONE);
}

static void gen_empty(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	(void)c;
	(void)lport;
	sj_buf_add(&m->b, "", 0);
	allow(m, SJ_NONE);
}

static void gen_missing(struct sj_ctx *c, unsigned lport, struct sj_msg *m, unsigned drop)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL & ~drop);
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 400);
	/* Without a Via there is nowhere RFC 3261 would send an answer to. */
	if (drop == H_VIA)
		allow(m, SJ_NONE);
}

static void gen_no_via(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	gen_missing(c, lport, m, H_VIA);
}

static void gen_no_from(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	gen_missing(c, lport, m, H_FROM);
}

static void gen_no_to(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	gen_missing(c, lport, m, H_TO);
}

static void gen_no_callid(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	gen_missing(c, lport, m, H_CALLID);
}

static void gen_no_cseq(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	gen_missing(c, lport, m, H_CSEQ);
}

static void fill(struct sj_buf *b, size_t n, char ch)
{
	if (buf_reserve(b, n))
		return;
	memset(b->p + b->len, ch, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A well-formed OPTIONS with a 60 KB Subject: valid SIP, so the right
 * answer is 200 (or 513 from a server that refuses the size). */
static void gen_huge_header(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Subject: ");
	fill(&m->b, SJ_HUGE_VALUE, 'x');
	sj_buf_printf(&m->b, "\r\nContent-Length: 0\r\n\r\n");
	allow(m, 200);
	allow(m, 513);
}

/* A 60 KB header line without a colon: not a header at all. */
static void gen_huge_line(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	fill(&m->b, SJ_HUGE_VALUE, 'Y');
	sj_buf_printf(&m->b, "\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_no_colon(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Subject this line has no colon\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

/* RFC 3261 §18.3: a datagram shorter than its Content-Length is an error;
 * a request SHOULD get 400. */
static void gen_long_cl(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\nshort body",
		      rnd_range(c, 11, 60000));
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_neg_cl(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Content-Type: text/plain\r\nContent-Length: -%u\r\n\r\nbody",
		      rnd_range(c, 1, 9999));
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_bad_version(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const char *const v[] = { "SIP/3.0", "SIP/1.0", "SIP/2.1", "SIP/7.0", "SIP/20.0" };

	sj_buf_printf(&m->b, "OPTIONS sip:1001@%s:%u %s\r\n", c->dsthost, c->dstport,
		      v[sj_rnd(c) % (sizeof(v) / sizeof(v[0]))]);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 505);
}

static void gen_bad_scheme(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const char *const u[] = { "http://sipha.test/1001", "mailto:1001@sipha.test",
					 "nobodyKnowsThis:1001" };

	sj_buf_printf(&m->b, "OPTIONS %s SIP/2.0\r\n", u[sj_rnd(c) % (sizeof(u) / sizeof(u[0]))]);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 416);
}

static void gen_cseq_mismatch(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "INVITE", H_ALL);
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 400);
}

static void gen_dup_header(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	if (sj_rnd(c) & 1)
		sj_buf_printf(&m->b, "Call-ID: second-%u@127.0.0.1\r\n", c->seq);
	else
		sj_buf_printf(&m->b, "CSeq: %u OPTIONS\r\n", rnd_range(c, 1, 1000));
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 400);
}

/* A NUL octet inside the Call-ID: a C-string parser would silently keep the
 * part before it. */
static void gen_nul(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL & ~H_CALLID);
	sj_buf_printf(&m->b, "Call-ID: sj-%u", c->seq);
	sj_buf_add(&m->b, "\0", 1);
	sj_buf_printf(&m->b, "hidden@127.0.0.1\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

/* A response nobody asked for: no transaction matches, so it is dropped. */
static void gen_stray_response(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const int codes[] = { 100, 180, 200, 404, 486, 503 };

	sj_buf_printf(&m->b, "SIP/2.0 %d Whatever\r\n", codes[sj_rnd(c) % 6]);
	add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

static void gen_bad_response(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	switch (sj_rnd(c) % 3) {
	case 0:
		sj_buf_printf(&m->b, "SIP/2.0 %u Out Of Range\r\n", rnd_range(c, 700, 99999));
		add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
		break;
	case 1:
		sj_buf_printf(&m->b, "SIP/2.0 200 OK\r\n");
		add_headers(c, &m->b, lport, "INVITE", H_FROM | H_TO);
		break;
	default:
		sj_buf_printf(&m->b, "SIP/2.0 2x0 OK\r\n");
		add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
		break;
	}
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

/* An ACK is never answered (RFC 3261 §17.2.1), however broken. */
static void gen_bad_ack(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	sj_buf_printf(&m->b, "ACK sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
	if (sj_rnd(c) & 1)
		add_headers(c, &m->b, lport, "ACK", H_ALL & ~(H_CSEQ | H_FROM));
	else
		add_headers(c, &m->b, lport, "INVITE", H_ALL); /* CSeq method differs */
	sj_buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

const struct sj_kind sj_kinds[] = {
	{ "truncated", "a valid INVITE cut at a random length", gen_truncated },
	{ "binary", "random octets (1..1400)", gen_binary },
	{ "empty", "a datagram of zero octets", gen_empty },
	{ "no_via", "OPTIONS without Via", gen_no_via },
	{ "no_from", "OPTIONS without From", gen_no_from },
	{ "no_to", "OPTIONS without To", gen_no_to },
	{ "no_callid", "OPTIONS without Call-ID", gen_no_callid },
	{ "no_cseq", "OPTIONS without CSeq", gen_no_cseq },
	{ "huge_header", "OPTIONS with a 60 KB Subject (valid)", gen_huge_header },
	{ "huge_line", "OPTIONS with a 60 KB line without a colon", gen_huge_line },
	{ "no_colon", "OPTIONS with a header line without a colon", gen_no_colon },
	{ "long_cl", "Content-Length larger than the body", gen_long_cl },
	{ "neg_cl", "negative Content-Length", gen_neg_cl },
	{ "bad_version", "request with a SIP version other than 2.0", gen_bad_version },
	{ "bad_scheme", "Request-URI with a non-SIP scheme", gen_bad_scheme },
	{ "cseq_mismatch", "CSeq method differs from the request method", gen_cseq_mismatch },
	{ "dup_header", "Call-ID or CSeq given twice", gen_dup_header },
	{ "nul", "a NUL octet inside the Call-ID", gen_nul },
	{ "stray_response", "a response no transaction matches", gen_stray_response },
	{ "bad_response", "a malformed response", gen_bad_response },
	{ "bad_ack", "a malformed ACK", gen_bad_ack },
};

_Static_assert(sizeof(sj_kinds) / sizeof(sj_kinds[0]) == SJ_NKINDS,
	       "SJ_NKINDS: the size of sj_kinds[]");

void sj_make_options(struct sj_ctx *c, struct sj_buf *b, bool tcp)
{
	struct sj_msg m = { 0 };

	c->seq = (unsigned)getpid();
	options_line(c, &m.b);
	sj_buf_printf(&m.b, "Via: SIP/2.0/%s 127.0.0.1:9;branch=z9hG4bK-sjo-%u;rport\r\n",
		      tcp ? "TCP" : "UDP", sj_rnd(c));
	add_headers(c, &m.b, 9, "OPTIONS", H_ALL & ~H_VIA);
	sj_buf_printf(&m.b, "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n");
	*b = m.b;
}
