/* sipjunk — sends malformed SIP to a server and accounts for every answer.
 *
 *   sipjunk [-n COUNT] [-k KINDS] [-s SEED] [-r RATE] [-b BATCH] [-w MS] [-T SEC] [-v] HOST:PORT
 *   sipjunk -f FILE [-t] [-w MS] [-S SAVE] HOST:PORT
 *   sipjunk -o [-t] [-w MS] [-S SAVE] HOST:PORT
 *   sipjunk -l
 *
 * Junk mode sends COUNT datagrams of the kinds listed by -l, each from a
 * socket of its own, so every answer is attributed to the datagram that
 * caused it without parsing what came back.  Each kind knows which answers
 * are right for it (a status code, or none at all); the summary is a set of
 * machine-readable lines:
 *
 *   kind NAME sent N answered N unanswered N unexpected N
 *   sent N
 *   answered CODE COUNT      (one line per status code; code 0: not a SIP response)
 *   unanswered N
 *   extra N                  (answers beyond the first to one datagram)
 *   unexpected N             (datagrams whose outcome is not one their kind allows)
 *   unexpected KIND #I got CODE|none allowed LIST   (-v, the first 50)
 *
 * File mode sends FILE as one datagram (or over one TCP connection with -t)
 * and prints one line: the status codes of the answers in order, "none" when
 * nothing came within the wait, followed by "closed" when the server closed
 * the TCP connection.  -o does the same with a well-formed OPTIONS.
 *
 * Every mode is bounded in count and time; the exit status is 0 when the
 * run completed (whatever the server answered), 2 on usage errors, 1 when
 * the run itself failed (socket errors, deadline). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SJ_MAX_COUNT 100000
#define SJ_MAX_BATCH 512
#define SJ_MAX_FILE (1u << 20)
#define SJ_MAX_DGRAM 65507
#define SJ_HUGE_VALUE (60u << 10)
#define SJ_MAX_ALLOWED 6
#define SJ_NONE 0 /* "no answer" in an allowed list */
#define SJ_VERBOSE_MAX 50

struct sj_buf {
	char *p;
	size_t len, cap;
};

struct sj_ctx {
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char dsthost[INET6_ADDRSTRLEN + 2]; /* as written in URIs ([v6]) */
	unsigned dstport;
	uint64_t rng;
	unsigned seq;
};

/* What a generator produced: the datagram and the answers that are right. */
struct sj_msg {
	struct sj_buf b;
	int allowed[SJ_MAX_ALLOWED];
	unsigned nallowed;
};

struct sj_kind {
	const char *name;
	const char *what;
	void (*gen)(struct sj_ctx *c, unsigned lport, struct sj_msg *m);
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* xorshift64*: reproducible from -s, no libc state. */
static uint32_t rnd(struct sj_ctx *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (uint32_t)((c->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static unsigned rnd_range(struct sj_ctx *c, unsigned lo, unsigned hi) /* [lo, hi] */
{
	return lo + rnd(c) % (hi - lo + 1);
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

static void buf_add(struct sj_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len))
		return; /* the datagram comes out short; the run reports it as sent */
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void buf_printf(struct sj_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void buf_printf(struct sj_buf *b, const char *fmt, ...)
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
		buf_printf(b, "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-sj-%u-%u;rport\r\n",
			   lport, c->seq, rnd(c));
	if (which & H_MAXF)
		buf_printf(b, "Max-Forwards: 70\r\n");
	if (which & H_FROM)
		buf_printf(b, "From: <sip:junk@sipha.test>;tag=sj%u\r\n", c->seq);
	if (which & H_TO)
		buf_printf(b, "To: <sip:1001@sipha.test>\r\n");
	if (which & H_CALLID)
		buf_printf(b, "Call-ID: sj-%u-%08x@127.0.0.1\r\n", c->seq, rnd(c));
	if (which & H_CSEQ)
		buf_printf(b, "CSeq: %u %s\r\n", rnd_range(c, 1, 1000000), method);
}

static void options_line(struct sj_ctx *c, struct sj_buf *b)
{
	buf_printf(b, "OPTIONS sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
}

/* --- generators ------------------------------------------------------------------ */

/* A valid INVITE cut short.  CSeq is the last header and the body is SDP,
 * so every cut leaves a message that is broken: no CSeq, a partial CSeq, or
 * a Content-Length larger than what arrived. */
static void gen_truncated(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	struct sj_buf *b = &m->b;
	size_t line_end, cut;

	buf_printf(b, "INVITE sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
	line_end = b->len;
	add_headers(c, b, lport, "INVITE", H_VIA | H_MAXF | H_FROM | H_TO | H_CALLID);
	buf_printf(b, "Contact: <sip:junk@127.0.0.1:%u>\r\n", lport);
	buf_printf(b, "Content-Type: application/sdp\r\n");
	buf_printf(b, "Content-Length: %zu\r\n", sizeof(sdp) - 1);
	buf_printf(b, "CSeq: %u INVITE\r\n\r\n%s", rnd_range(c, 1, 1000000), sdp);
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
		chunk[i] = (char)rnd(c);
	chunk[0] = (char)(rnd(c) & 1 ? rnd_range(c, 0x00, 0x1f) : rnd_range(c, 0x80, 0xff));
	buf_add(&m->b, chunk, len);
	allow(m, SJ_NONE);
}

static void gen_empty(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	(void)c;
	(void)lport;
	buf_add(&m->b, "", 0);
	allow(m, SJ_NONE);
}

static void gen_missing(struct sj_ctx *c, unsigned lport, struct sj_msg *m, unsigned drop)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL & ~drop);
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
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
	buf_printf(&m->b, "Subject: ");
	fill(&m->b, SJ_HUGE_VALUE, 'x');
	buf_printf(&m->b, "\r\nContent-Length: 0\r\n\r\n");
	allow(m, 200);
	allow(m, 513);
}

/* A 60 KB header line without a colon: not a header at all. */
static void gen_huge_line(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	fill(&m->b, SJ_HUGE_VALUE, 'Y');
	buf_printf(&m->b, "\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_no_colon(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	buf_printf(&m->b, "Subject this line has no colon\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

/* RFC 3261 §18.3: a datagram shorter than its Content-Length is an error;
 * a request SHOULD get 400. */
static void gen_long_cl(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	buf_printf(&m->b, "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\nshort body",
		   rnd_range(c, 11, 60000));
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_neg_cl(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	buf_printf(&m->b, "Content-Type: text/plain\r\nContent-Length: -%u\r\n\r\nbody",
		   rnd_range(c, 1, 9999));
	allow(m, 400);
	allow(m, SJ_NONE);
}

static void gen_bad_version(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const char *const v[] = { "SIP/3.0", "SIP/1.0", "SIP/2.1", "SIP/7.0", "SIP/20.0" };

	buf_printf(&m->b, "OPTIONS sip:1001@%s:%u %s\r\n", c->dsthost, c->dstport,
		   v[rnd(c) % (sizeof(v) / sizeof(v[0]))]);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 505);
}

static void gen_bad_scheme(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const char *const u[] = { "http://sipha.test/1001", "mailto:1001@sipha.test",
					 "nobodyKnowsThis:1001" };

	buf_printf(&m->b, "OPTIONS %s SIP/2.0\r\n", u[rnd(c) % (sizeof(u) / sizeof(u[0]))]);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 416);
}

static void gen_cseq_mismatch(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "INVITE", H_ALL);
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 400);
}

static void gen_dup_header(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL);
	if (rnd(c) & 1)
		buf_printf(&m->b, "Call-ID: second-%u@127.0.0.1\r\n", c->seq);
	else
		buf_printf(&m->b, "CSeq: %u OPTIONS\r\n", rnd_range(c, 1, 1000));
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, 400);
}

/* A NUL octet inside the Call-ID: a C-string parser would silently keep the
 * part before it. */
static void gen_nul(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	options_line(c, &m->b);
	add_headers(c, &m->b, lport, "OPTIONS", H_ALL & ~H_CALLID);
	buf_printf(&m->b, "Call-ID: sj-%u", c->seq);
	buf_add(&m->b, "\0", 1);
	buf_printf(&m->b, "hidden@127.0.0.1\r\nContent-Length: 0\r\n\r\n");
	allow(m, 400);
	allow(m, SJ_NONE);
}

/* A response nobody asked for: no transaction matches, so it is dropped. */
static void gen_stray_response(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	static const int codes[] = { 100, 180, 200, 404, 486, 503 };

	buf_printf(&m->b, "SIP/2.0 %d Whatever\r\n", codes[rnd(c) % 6]);
	add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

static void gen_bad_response(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	switch (rnd(c) % 3) {
	case 0:
		buf_printf(&m->b, "SIP/2.0 %u Out Of Range\r\n", rnd_range(c, 700, 99999));
		add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
		break;
	case 1:
		buf_printf(&m->b, "SIP/2.0 200 OK\r\n");
		add_headers(c, &m->b, lport, "INVITE", H_FROM | H_TO);
		break;
	default:
		buf_printf(&m->b, "SIP/2.0 2x0 OK\r\n");
		add_headers(c, &m->b, lport, "INVITE", H_ALL & ~H_MAXF);
		break;
	}
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

/* An ACK is never answered (RFC 3261 §17.2.1), however broken. */
static void gen_bad_ack(struct sj_ctx *c, unsigned lport, struct sj_msg *m)
{
	buf_printf(&m->b, "ACK sip:1001@%s:%u SIP/2.0\r\n", c->dsthost, c->dstport);
	if (rnd(c) & 1)
		add_headers(c, &m->b, lport, "ACK", H_ALL & ~(H_CSEQ | H_FROM));
	else
		add_headers(c, &m->b, lport, "INVITE", H_ALL); /* CSeq method differs */
	buf_printf(&m->b, "Content-Length: 0\r\n\r\n");
	allow(m, SJ_NONE);
}

static const struct sj_kind kinds[] = {
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

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* --- answers ---------------------------------------------------------------------- */

/* Status code of a response, 0 when BUF is not one. */
static int status_code(const char *buf, size_t len)
{
	int code = 0;

	if (len < 12 || memcmp(buf, "SIP/2.0 ", 8))
		return 0;
	for (size_t i = 8; i < 11; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return 0;
		code = code * 10 + buf[i] - '0';
	}
	return buf[11] == ' ' || buf[11] == '\r' ? code : 0;
}

static bool allowed(const struct sj_msg *m, int got)
{
	for (unsigned i = 0; i < m->nallowed; i++)
		if (m->allowed[i] == got)
			return true;
	return false;
}

static void allowed_str(const struct sj_msg *m, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < m->nallowed && off < len; i++) {
		int n = m->allowed[i] == SJ_NONE
				? snprintf(out + off, len - off, "%snone", i ? "," : "")
				: snprintf(out + off, len - off, "%s%d", i ? "," : "",
					   m->allowed[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* --- junk mode ---------------------------------------------------------------- */

struct slot {
	int fd;
	unsigned kind;
	unsigned idx;
	int first; /* first status code, -1 none yet */
	unsigned answers;
	struct sj_msg msg;
};

struct kind_stats {
	unsigned sent, answered, unanswered, unexpected;
};

struct junk_run {
	unsigned count, rate, batch, wait_ms, deadline_s;
	bool verbose;
	bool use[NKINDS];
	unsigned sent, unanswered, extra, unexpected, errors, verbose_left;
	unsigned codes[1000]; /* by status code; [0]: not a SIP response */
	struct kind_stats ks[NKINDS];
};

static int open_udp(const struct sj_ctx *c, unsigned *lport)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	int fd;

	fd = socket(c->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Bind to the loopback (or the family's any) so the Via can name the
	 * port the answer must come back to. */
	ss.ss_family = c->dst.ss_family;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*lport = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void drain(struct junk_run *r, struct slot *s)
{
	char buf[SJ_MAX_DGRAM + 1];
	ssize_t n;

	while ((n = recv(s->fd, buf, sizeof(buf) - 1, 0)) >= 0) {
		int code = status_code(buf, (size_t)n);

		if (s->answers++ == 0)
			s->first = code;
		else
			r->extra++;
		r->codes[code]++;
	}
}

static void settle(struct junk_run *r, struct slot *s)
{
	struct kind_stats *k = &r->ks[s->kind];
	int outcome = s->answers ? s->first : SJ_NONE;

	if (s->answers) {
		k->answered++;
	} else {
		k->unanswered++;
		r->unanswered++;
	}
	/* A datagram answered twice is wrong whatever the codes were. */
	if (!allowed(&s->msg, outcome) || s->answers > 1) {
		k->unexpected++;
		r->unexpected++;
		if (r->verbose && r->verbose_left) {
			char a[64];

			r->verbose_left--;
			allowed_str(&s->msg, a, sizeof(a));
			if (s->answers)
				printf("unexpected %s #%u got %d%s allowed %s\n",
				       kinds[s->kind].name, s->idx, outcome,
				       s->answers > 1 ? " (and more)" : "", a);
			else
				printf("unexpected %s #%u got none allowed %s\n",
				       kinds[s->kind].name, s->idx, a);
		}
	}
	close(s->fd);
	s->fd = -1;
	free(s->msg.b.p);
	memset(&s->msg, 0, sizeof(s->msg));
}

static unsigned pick_kind(struct sj_ctx *c, const struct junk_run *r)
{
	unsigned n = 0, k;

	for (k = 0; k < NKINDS; k++)
		n += r->use[k];
	n = rnd(c) % n;
	for (k = 0; k < NKINDS; k++) {
		if (r->use[k] && n-- == 0)
			break;
	}
	return k;
}

static int run_junk(struct sj_ctx *c, struct junk_run *r)
{
	struct slot *slots = calloc(r->batch, sizeof(*slots));
	uint64_t deadline = now_ms() + (uint64_t)r->deadline_s * 1000;
	uint64_t gap_us = r->rate ? 1000000 / r->rate : 0;
	int ret = 0;

	if (!slots)
		return -ENOMEM;
	for (unsigned i = 0; i < r->batch; i++)
		slots[i].fd = -1;
	r->verbose_left = SJ_VERBOSE_MAX;
	while (r->sent < r->count) {
		unsigned n = 0;
		uint64_t next = now_us(), until;

		if (now_ms() > deadline) {
			fprintf(stderr, "sipjunk: deadline reached after %u datagrams\n", r->sent);
			ret = -ETIMEDOUT;
			break;
		}
		for (; n < r->batch && r->sent < r->count; n++) {
			struct slot *s = &slots[n];
			unsigned lport = 0;
			int fd = open_udp(c, &lport);

			if (fd < 0) {
				fprintf(stderr, "sipjunk: socket: %s\n", strerror(-fd));
				ret = fd;
				break;
			}
			s->fd = fd;
			s->idx = r->sent;
			s->kind = pick_kind(c, r);
			s->first = -1;
			s->answers = 0;
			c->seq = r->sent;
			kinds[s->kind].gen(c, lport, &s->msg);
			while (now_us() < next)
				usleep((useconds_t)(next - now_us()));
			next += gap_us;
			if (sendto(fd, s->msg.b.p ? s->msg.b.p : "", s->msg.b.len, 0,
				   (struct sockaddr *)&c->dst, c->dstlen) < 0) {
				fprintf(stderr, "sipjunk: send %s #%u (%zu octets): %s\n",
					kinds[s->kind].name, r->sent, s->msg.b.len,
					strerror(errno));
				r->errors++;
			}
			r->ks[s->kind].sent++;
			r->sent++;
		}
		/* Wait for answers: everything the server will say about this
		 * batch comes within WAIT_MS of the last datagram. */
		until = now_ms() + r->wait_ms;
		for (;;) {
			struct pollfd pfd[SJ_MAX_BATCH];
			uint64_t t = now_ms();
			int pr;

			if (t >= until)
				break;
			for (unsigned i = 0; i < n; i++)
				pfd[i] = (struct pollfd){ .fd = slots[i].fd, .events = POLLIN };
			pr = poll(pfd, n, (int)(until - t));
			if (pr < 0 && errno != EINTR)
				break;
			for (unsigned i = 0; pr > 0 && i < n; i++)
				if (pfd[i].revents & POLLIN)
					drain(r, &slots[i]);
		}
		for (unsigned i = 0; i < n; i++) {
			drain(r, &slots[i]);
			settle(r, &slots[i]);
		}
		if (ret)
			break;
	}
	free(slots);
	return ret;
}

static void print_junk(const struct junk_run *r)
{
	for (unsigned k = 0; k < NKINDS; k++) {
		const struct kind_stats *s = &r->ks[k];

		if (!r->use[k])
			continue;
		printf("kind %s sent %u answered %u unanswered %u unexpected %u\n", kinds[k].name,
		       s->sent, s->answered, s->unanswered, s->unexpected);
	}
	printf("sent %u\n", r->sent);
	for (unsigned i = 0; i < sizeof(r->codes) / sizeof(r->codes[0]); i++)
		if (r->codes[i])
			printf("answered %u %u\n", i, r->codes[i]);
	printf("unanswered %u\n", r->unanswered);
	printf("extra %u\n", r->extra);
	printf("send_errors %u\n", r->errors);
	printf("unexpected %u\n", r->unexpected);
}

/* --- file mode --------------------------------------------------------------------- */

static int read_file(const char *path, struct sj_buf *b)
{
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (b->len + (size_t)n > SJ_MAX_FILE) {
			ret = -EFBIG;
			break;
		}
		buf_add(b, chunk, (size_t)n);
	}
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Splits complete messages off the front of a TCP stream by Content-Length;
 * returns the octets used, 0 when more are needed. */
static size_t frame_response(const char *p, size_t len, int *code)
{
	const char *end = memmem(p, len, "\r\n\r\n", 4);
	size_t hdr, body = 0;

	if (!end)
		return 0;
	hdr = (size_t)(end - p) + 4;
	for (const char *l = p; l && l < end; l = memmem(l, (size_t)(end - l), "\r\n", 2)) {
		if (l != p)
			l += 2;
		if (!strncasecmp(l, "Content-Length:", 15))
			body = strtoul(l + 15, NULL, 10);
		else if (!strncasecmp(l, "l:", 2))
			body = strtoul(l + 2, NULL, 10);
	}
	if (hdr + body > len)
		return 0;
	*code = status_code(p, len);
	return hdr + body;
}

struct file_run {
	bool tcp;
	unsigned wait_ms, grace_ms;
	const char *save;
};

static int run_file(struct sj_ctx *c, const struct file_run *fr, const struct sj_buf *msg)
{
	struct sj_buf in = { 0 }, line = { 0 };
	FILE *save = NULL;
	bool closed = false;
	unsigned nanswers = 0;
	uint64_t until;
	int fd = -1, ret = 0;

	if (fr->save && !(save = fopen(fr->save, "w")))
		return -errno;
	fd = socket(c->dst.ss_family, (fr->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&c->dst, c->dstlen)) {
		ret = -errno;
		goto out;
	}
	for (size_t off = 0; off < msg->len;) {
		ssize_t n = send(fd, msg->p + off, msg->len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (fr->tcp && (errno == EPIPE || errno == ECONNRESET)) {
				closed = true;
				break;
			}
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
		if (!fr->tcp)
			break;
	}
	until = now_ms() + fr->wait_ms;
	while (!closed) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char buf[SJ_MAX_DGRAM + 1];
		uint64_t t = now_ms();
		ssize_t n;

		if (t >= until)
			break;
		if (poll(&pfd, 1, (int)(until - t)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0 && errno == ECONNREFUSED && !fr->tcp)
			continue; /* ICMP from an earlier life of the port */
		if (n <= 0) {
			closed = fr->tcp;
			if (!fr->tcp)
				continue;
			break;
		}
		if (save)
			fwrite(buf, 1, (size_t)n, save);
		if (!fr->tcp) {
			buf_printf(&line, "%s%d", nanswers++ ? " " : "",
				   status_code(buf, (size_t)n));
		} else {
			size_t used;
			int code;

			buf_add(&in, buf, (size_t)n);
			while (in.len && (used = frame_response(in.p, in.len, &code))) {
				buf_printf(&line, "%s%d", nanswers++ ? " " : "", code);
				memmove(in.p, in.p + used, in.len - used);
				in.len -= used;
			}
		}
		/* Once something came, wait only a little longer for more:
		 * a second answer to one request is a fault we want to see. */
		if (nanswers && until > now_ms() + fr->grace_ms)
			until = now_ms() + fr->grace_ms;
	}
	if (!nanswers)
		printf("%s\n", closed ? "closed" : "none");
	else
		printf("%s%s\n", line.p, closed ? " closed" : "");
out:
	if (fd >= 0)
		close(fd);
	if (save)
		fclose(save);
	free(in.p);
	free(line.p);
	return ret;
}

static void make_options(struct sj_ctx *c, struct sj_buf *b, bool tcp)
{
	struct sj_msg m = { 0 };

	c->seq = (unsigned)getpid();
	options_line(c, &m.b);
	buf_printf(&m.b, "Via: SIP/2.0/%s 127.0.0.1:9;branch=z9hG4bK-sjo-%u;rport\r\n",
		   tcp ? "TCP" : "UDP", rnd(c));
	add_headers(c, &m.b, 9, "OPTIONS", H_ALL & ~H_VIA);
	buf_printf(&m.b, "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n");
	*b = m.b;
}

/* --- main --------------------------------------------------------------------------- */

static int parse_dst(const char *s, struct sj_ctx *c)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *ai = NULL;
	size_t hl;

	if (!colon || colon == s)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	c->dstport = (unsigned)strtoul(colon + 1, NULL, 10);
	if (!c->dstport || c->dstport > 65535 || getaddrinfo(host, colon + 1, &hints, &ai))
		return -EINVAL;
	memcpy(&c->dst, ai->ai_addr, ai->ai_addrlen);
	c->dstlen = ai->ai_addrlen;
	snprintf(c->dsthost, sizeof(c->dsthost), ai->ai_family == AF_INET6 ? "[%s]" : "%s", host);
	freeaddrinfo(ai);
	return 0;
}

static int use_kinds(struct junk_run *r, char *list)
{
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		unsigned k;

		for (k = 0; k < NKINDS && strcmp(kinds[k].name, t); k++)
			;
		if (k == NKINDS) {
			fprintf(stderr, "sipjunk: unknown kind '%s' (sipjunk -l lists them)\n", t);
			return -EINVAL;
		}
		r->use[k] = true;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: sipjunk [-n COUNT] [-k KIND,...] [-s SEED] [-r RATE] [-b BATCH] [-w MS]\n"
		"               [-T SEC] [-v] HOST:PORT\n"
		"       sipjunk -f FILE [-t] [-w MS] [-S SAVE] HOST:PORT\n"
		"       sipjunk -o [-t] [-w MS] [-S SAVE] HOST:PORT\n"
		"       sipjunk -l\n");
	return 2;
}

static bool parse_uint_opt(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	struct junk_run r = { .count = 1000, .rate = 2000, .batch = 100, .deadline_s = 60 };
	struct file_run fr = { .grace_ms = 150 };
	struct sj_ctx c = { 0 };
	struct sj_buf msg = { 0 };
	const char *file = NULL;
	char *kindlist = NULL;
	bool options = false, have_seed = false, ok = true;
	unsigned seed = 0, wait_ms = 0;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:k:s:r:b:w:T:vf:tS:ol")) != -1) {
		switch (opt) {
		case 'n':
			ok = parse_uint_opt(optarg, 1, SJ_MAX_COUNT, &r.count);
			break;
		case 'k':
			kindlist = optarg;
			break;
		case 's':
			ok = parse_uint_opt(optarg, 0, UINT32_MAX, &seed);
			have_seed = true;
			break;
		case 'r':
			ok = parse_uint_opt(optarg, 0, 1000000, &r.rate);
			break;
		case 'b':
			ok = parse_uint_opt(optarg, 1, SJ_MAX_BATCH, &r.batch);
			break;
		case 'w':
			ok = parse_uint_opt(optarg, 1, 60000, &wait_ms);
			break;
		case 'T':
			ok = parse_uint_opt(optarg, 1, 3600, &r.deadline_s);
			break;
		case 'v':
			r.verbose = true;
			break;
		case 'f':
			file = optarg;
			break;
		case 't':
			fr.tcp = true;
			break;
		case 'S':
			fr.save = optarg;
			break;
		case 'o':
			options = true;
			break;
		case 'l':
			for (unsigned k = 0; k < NKINDS; k++)
				printf("%-16s %s\n", kinds[k].name, kinds[k].what);
			return 0;
		default:
			return usage();
		}
		if (!ok) {
			fprintf(stderr, "sipjunk: bad value for -%c: %s\n", opt, optarg);
			return 2;
		}
	}
	if (optind + 1 != argc || (file && options))
		return usage();
	if (parse_dst(argv[optind], &c)) {
		fprintf(stderr, "sipjunk: bad address %s (want IP:PORT)\n", argv[optind]);
		return 2;
	}
	if (!have_seed)
		seed = (unsigned)(now_us() ^ ((uint64_t)getpid() << 16));
	/* Never 0: xorshift would stay there. */
	c.rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;

	if (file || options) {
		fr.wait_ms = wait_ms ? wait_ms : 500;
		if (options) {
			make_options(&c, &msg, fr.tcp);
		} else if ((ret = read_file(file, &msg))) {
			fprintf(stderr, "sipjunk: %s: %s\n", file, strerror(-ret));
			return 1;
		}
		ret = run_file(&c, &fr, &msg);
		free(msg.p);
		if (ret)
			fprintf(stderr, "sipjunk: %s\n", strerror(-ret));
		return ret ? 1 : 0;
	}

	r.wait_ms = wait_ms ? wait_ms : 300;
	if (kindlist) {
		if (use_kinds(&r, kindlist))
			return 2;
	} else {
		for (unsigned k = 0; k < NKINDS; k++)
			r.use[k] = true;
	}
	printf("seed %u\n", seed);
	ret = run_junk(&c, &r);
	print_junk(&r);
	if (ret)
		fprintf(stderr, "sipjunk: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}
