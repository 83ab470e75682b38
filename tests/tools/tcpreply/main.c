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
 * errors.  -v: the trace on stderr in any case.
 *
 * This file: the two ends' reactions to what comes in, and the steps;
 * msg.c: the messages they send and the parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpreply.h"

#define TR_STEP_MS 3000 /* the bound on each step */

/* --- receiving -------------------------------------------------------------------- */

static void callee_msg(struct tr_run *r, const struct tr_msg *m, const struct sockaddr_in *from)
{
	int ret;

	tr_trace(r, "callee  < %s", m->first);
	if (m->code)
		return; /* the callee sends no request: nothing to answer */
	if (m->callid[0] && !r->b_callid[0])
		snprintf(r->b_callid, sizeof(r->b_callid), "%s", m->callid);
	if (strcmp(m->callid, r->b_callid)) {
		tr_trace(r, "callee    (a request of another call: %s)", m->callid);
		r->b_other++;
		return;
	}
	if (!strcmp(m->method, "INVITE")) {
		if (r->b_invites++) {
			/* sipha's retransmission: the final answer again */
			if (r->b_ok_len && sendto(r->ufd, r->b_ok, r->b_ok_len, 0,
						  (const struct sockaddr *)from, sizeof(*from)) < 0)
				tr_trace(r, "callee    resending 200: %s", strerror(errno));
			return;
		}
		ret = tr_callee_reply(r, m, 180, "Ringing", from);
		if (!ret)
			ret = tr_callee_reply(r, m, 200, "OK", from);
		if (ret)
			tr_trace(r, "callee    sending: %s", strerror(-ret));
	} else if (!strcmp(m->method, "ACK")) {
		r->b_acks++;
	} else if (!strcmp(m->method, "BYE")) {
		r->b_byes++;
		ret = tr_callee_reply(r, m, 200, "OK", from);
		if (ret)
			tr_trace(r, "callee    sending: %s", strerror(-ret));
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
		if (!h || !tr_parse_msg(&m, buf, (size_t)n, (size_t)(h + 4 - buf))) {
			tr_trace(r, "callee  < %zd bytes that are no SIP message", n);
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
	tr_trace(r, "caller  < %s: %s", where, m->first);
	if (!m->code) {
		/* sipha has no reason to send the caller a request here */
		tr_trace(r, "caller    (unexpected request %s)", m->method);
		r->a_error = true;
		return;
	}
	if (strcmp(m->callid, r->callid)) {
		tr_trace(r, "caller    (a response of another Call-ID: %s)", m->callid);
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
		tr_trace(r, "caller    (a response for %s)", m->cseq_method);
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
			tr_trace(r, "caller    (the 200 came on the first connection)");
			r->a_error = true;
			return;
		}
		r->got_200 = true;
		r->ok_conn = idx;
		tr_hdr_get(m, "To", 't', r->ok_to, sizeof(r->ok_to));
		tr_hdr_get(m, "Contact", 'm', r->ok_contact, sizeof(r->ok_contact));
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
		tr_trace(r, "caller  recv on %s: %s",
			 idx < 0 ? "first connection" : "sipha's connection", strerror(errno));
		c->eof = true;
		return -errno;
	}
	if (n == 0) {
		tr_trace(r, "caller  < %s closed by sipha",
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
				tr_trace(r, "caller  no message end in %zu bytes", c->len);
				return -EMSGSIZE;
			}
			return 0;
		}
		hlen = (size_t)(h + 4 - c->buf);
		total = hlen + tr_content_length(c->buf, hlen);
		if (total > sizeof(c->buf)) {
			tr_trace(r, "caller  a message of %zu bytes", total);
			return -EMSGSIZE;
		}
		if (c->len < total)
			return 0;
		if (tr_parse_msg(&m, c->buf, total, hlen)) {
			caller_msg(r, &m, idx);
		} else {
			tr_trace(r, "caller  < no SIP message: %.60s", c->buf);
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
	tr_trace(r, "caller  accepted a connection from %s:%u", ip, ntohs(peer.sin_port));
	if (r->n_acc == TR_MAX_CONNS) {
		close(fd);
		r->a_error = true;
		return 0;
	}
	if (!r->n_acc)
		r->accept_ms = tr_now_ms() - r->t0;
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
	uint64_t end = tr_now_ms() + ms, now;
	int ret;

	if (end > r->deadline)
		end = r->deadline;
	for (;;) {
		if (fatal(r))
			return -EPROTO;
		if (done(r))
			return 0;
		now = tr_now_ms();
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
		tr_trace(r, "caller  TCP port %u: %s", r->caller_port, strerror(-ret));
		return ret;
	}
	a.sin_port = htons(r->callee_port);
	if (bind(r->ufd, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		tr_trace(r, "callee  UDP port %u: %s", r->callee_port, strerror(-ret));
		return ret;
	}
	/* Loopback: connect() completes or fails at once. */
	a.sin_port = htons(r->sipha_port);
	if (connect(r->first.fd, (struct sockaddr *)&a, sizeof(a))) {
		ret = -errno;
		tr_trace(r, "caller  connect to sipha on %u: %s", r->sipha_port, strerror(-ret));
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
	tr_trace(r, "caller  > first connection: shutdown");
	ret = wait_for(r, first_closed, TR_STEP_MS);
	close(r->first.fd);
	r->first.fd = -1;
	return ret;
}

/* A clean end of the connections sipha opened: half-close, a short drain
 * (what sipha still sends is read, so close() does not reset). */
static void close_accepted(struct tr_run *r)
{
	uint64_t end = tr_now_ms() + 500;

	for (unsigned i = 0; i < r->n_acc; i++)
		shutdown(r->acc[i].fd, SHUT_WR);
	while (tr_now_ms() < end) {
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
	ret = tr_send_invite(r);
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
	if (!tr_tag_of(r->ok_to, (char[64]){ 0 }, 64))
		return -EPROTO;
	*step = "send ACK and BYE on sipha's connection";
	ret = tr_send_in_dialog(r, "ACK", 1);
	if (!ret)
		ret = tr_send_in_dialog(r, "BYE", 2);
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
	r.t0 = tr_now_ms();
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
