/* GET /metrics over HTTP on [metrics] listen: see metrics_http.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"
#include "server/control.h"
#include "server/metrics_http.h"

struct mh_conn {
	struct metrics_http *m; /* NULL once the endpoint is closed */
	struct loop_stream *s;
	struct timer t; /* MH_TIMEOUT_MS from accept */
	bool answered;
	struct mh_conn *prev, *next;
};

struct metrics_http {
	struct loop *l;
	struct server *srv;
	int fd;
	unsigned n; /* connections open */
	struct mh_conn *list;
	uint64_t refused_warn_ms; /* next time a refusal may be logged */
};

/* --- the request ---------------------------------------------------------------- */

/* Just past the empty line that ends the head in BUF, or 0 before it came.
 * Lines may end in CRLF or LF. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool word_is(const char *p, size_t n, const char *w)
{
	return n == strlen(w) && !memcmp(p, w, n);
}

/* "METHOD SP TARGET SP HTTP/1.x", N bytes without the line end. */
static int request_line(const char *p, size_t n, bool *head)
{
	const char *sp1 = memchr(p, ' ', n), *sp2, *tgt, *q;
	size_t mlen, tlen;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 400;
	if (!sp1)
		return 400;
	mlen = (size_t)(sp1 - p);
	tgt = sp1 + 1;
	sp2 = memchr(tgt, ' ', n - mlen - 1);
	if (!mlen || !sp2 || *tgt != '/' ||
	    !(word_is(sp2 + 1, (size_t)(p + n - sp2 - 1), "HTTP/1.1") ||
	      word_is(sp2 + 1, (size_t)(p + n - sp2 - 1), "HTTP/1.0")))
		return 400;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar(p[i]))
			return 400;
	tlen = (size_t)(sp2 - tgt);
	q = memchr(tgt, '?', tlen);
	if (!word_is(tgt, q ? (size_t)(q - tgt) : tlen, "/metrics"))
		return 404;
	*head = word_is(p, mlen, "HEAD");
	return *head || word_is(p, mlen, "GET") ? 200 : 405;
}

int mh_parse(const char *buf, size_t len, bool *head)
{
	size_t off = 0, end;
	const char *eol;

	*head = false;
	/* Empty lines before the request line are ignored (RFC 9112 §2.2). */
	while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
		off++;
	end = head_end(buf + off, len - off);
	if (!end)
		return len >= MH_MAX_REQUEST ? 431 : 0;
	if (off + end > MH_MAX_REQUEST)
		return 431;
	eol = memchr(buf + off, '\n', end);
	end = (size_t)(eol - (buf + off));
	if (end && buf[off + end - 1] == '\r')
		end--;
	return request_line(buf + off, end, head);
}

/* --- the answer ------------------------------------------------------------------ */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Internal Server Error";
	}
}

/* Writes the one answer of the connection and closes it once it is sent. */
static void answer(struct mh_conn *c, int status, bool head)
{
	const char *ctype = "text/plain; charset=utf-8";
	char hdr[256], msg[64];
	char *text = NULL;
	const char *body;
	size_t blen;
	int n;

	if (status == 200 && !(text = ctl_metrics_text(c->m->srv)))
		status = 500;
	if (text) {
		body = text;
		ctype = "text/plain; version=0.0.4; charset=utf-8"; /* Prometheus text format */
	} else {
		snprintf(msg, sizeof(msg), "%s\n", reason(status));
		body = msg;
	}
	blen = strlen(body);
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     status, reason(status), ctype, blen,
		     status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!loop_stream_write(c->s, hdr, (size_t)n) && !head)
		loop_stream_write(c->s, body, blen);
	free(text);
	loop_stream_close(c->s, true);
}

/* --- connections ----------------------------------------------------------------- */

static size_t mh_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct mh_conn *c = arg;
	bool head;
	int status;

	(void)s;
	/* One request a connection: what follows it is not read. */
	if (c->answered || !c->m)
		return len;
	status = mh_parse(buf, len, &head);
	if (!status)
		return 0;
	c->answered = true;
	answer(c, status, head);
	return len;
}

static void mh_closed(struct loop_stream *s, void *arg, int err)
{
	struct mh_conn *c = arg;
	struct metrics_http *m = c->m;

	(void)s;
	(void)err;
	if (m) {
		timer_del(loop_timers(m->l), &c->t);
		if (c->prev)
			c->prev->next = c->next;
		else
			m->list = c->next;
		if (c->next)
			c->next->prev = c->prev;
		m->n--;
	}
	free(c);
}

static const struct loop_stream_ops mh_ops = {
	.on_data = mh_data,
	.on_close = mh_closed,
};

/* A client that has not sent its request, or not read its answer, in
 * time: closed at once, even while the answer is still being flushed. */
static void mh_timeout(struct timer *t)
{
	struct mh_conn *c = container_of(t, struct mh_conn, t);

	loop_stream_abort(c->s, -ETIMEDOUT);
}

static void mh_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
	struct metrics_http *m = arg;
	struct mh_conn *c = NULL;

	(void)peer;
	(void)len;
	if (m->n >= MH_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		if (loop_now(m->l) >= m->refused_warn_ms) {
			pr_warn("metrics: connection refused: %u open already", m->n);
			m->refused_warn_ms = loop_now(m->l) + 1000;
		}
		close(fd);
		return;
	}
	c->m = m;
	timer_init(&c->t, mh_timeout);
	c->s = loop_stream_add(m->l, fd, &mh_ops, c);
	if (!c->s) {
		free(c);
		return;
	}
	c->next = m->list;
	if (m->list)
		m->list->prev = c;
	m->list = c;
	m->n++;
	loop_timer_in(m->l, &c->t, MH_TIMEOUT_MS);
}

/* --- the endpoint ---------------------------------------------------------------- */

int mh_open(struct metrics_http **out, struct loop *l, const struct cfg_sockaddr *la,
	    struct server *srv)
{
	struct metrics_http *m;
	char a[80];
	int fd, ret;

	*out = NULL;
	cfg_sockaddr_str(la, a, sizeof(a));
	fd = tcp_listen(la, MH_MAX_CONNS);
	if (fd < 0) {
		pr_err("metrics: cannot listen on %s: %s", a, strerror(-fd));
		return fd;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	m->l = l;
	m->srv = srv;
	m->fd = fd;
	ret = loop_listen_add(l, fd, mh_accept, m);
	if (ret) {
		close(fd);
		free(m);
		return ret;
	}
	pr_info("metrics: serving http://%s/metrics", a);
	*out = m;
	return 0;
}

void mh_close(struct metrics_http *m)
{
	if (!m)
		return;
	/* The loop frees each connection (mh_closed) when it reaps it. */
	for (struct mh_conn *c = m->list; c; c = c->next) {
		timer_del(loop_timers(m->l), &c->t);
		c->m = NULL;
		loop_stream_abort(c->s, -ECANCELED);
	}
	close(m->fd);
	free(m);
}
