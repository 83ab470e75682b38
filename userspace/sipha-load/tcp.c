/* TCP for sipha-load (-t t1): the caller keeps one connection to TARGET
 * and opens a new one when it breaks, as an RFC 5626 client would after a
 * failover (at once, then after 100 ms doubling to 2 s while it fails);
 * the transactions waiting on the broken one end as transport failures,
 * established calls stay and send their BYE over the new one.  The callee
 * listens and answers on the connection a request came on.  Messages are
 * framed by Content-Length; buffers are allocated per connection, not per
 * message. */
#include "sipha-load/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct ld_conn *conn_new(struct load *ld, int fd, bool uac)
{
	struct ld_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->in = malloc(LD_TCP_IN);
	c->out = malloc(LD_TCP_OUT);
	if (!c->in || !c->out) {
		free(c->in);
		free(c->out);
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->uac = uac;
	c->id = ++ld->conn_serial;
	return c;
}

struct ld_conn *tcp_conn_by_id(struct load *ld, uint64_t id)
{
	for (unsigned i = 0; i < ld->nconns; i++)
		if (ld->conns[i]->id == id)
			return ld->conns[i];
	return ld->uac_conn && ld->uac_conn->id == id && ld->uac_conn->fd >= 0 ? ld->uac_conn
									       : NULL;
}

static void conn_free(struct ld_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

bool tcp_uac_up(const struct load *ld)
{
	return ld->uac_conn && ld->uac_conn->fd >= 0 && ld->uac_conn->up;
}

static int uac_connect(struct load *ld)
{
	struct ld_conn *c = ld->uac_conn;
	int fd, one = 1;

	fd = socket(ld->o.target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ld->uac_bind_len && bind(fd, (void *)&ld->uac_bind, ld->uac_bind_len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (connect(fd, (void *)&ld->o.target, ld->o.target_len) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->fd = fd;
	c->up = false;
	c->in_len = 0;
	ld->st.connects++;
	return 0;
}

/* The caller's connection broke, or an attempt failed; plan the next
 * attempt.  A broken connection takes with it what waited on it (the
 * transactions in flight fail, the unsent bytes are dropped: a message cut
 * in half cannot go on a new stream).  A failed attempt drops nothing: what
 * was written meanwhile goes out once connected, and timers B/F bound it. */
static void uac_lost(struct load *ld, int err)
{
	struct ld_conn *c = ld->uac_conn;
	bool was_up = c->up;

	if (c->fd >= 0)
		close(c->fd);
	if (was_up)
		ld->st.conn_lost++;
	else
		ld->st.connect_failed++;
	if (!ld->o.quiet)
		fprintf(stderr, "sipha-load: TCP to %s %s: %s; reconnecting in %u ms\n",
			ld->o.target_host, was_up ? "lost" : "failed", strerror(-err),
			ld->backoff_ms);
	c->fd = -1;
	c->up = false;
	c->in_len = 0;
	ld->reconnect_at_us = ld->now_us + ld->backoff_ms * 1000ull;
	ld->backoff_ms = ld->backoff_ms ? ld->backoff_ms * 2 : 100;
	if (ld->backoff_ms > 2000)
		ld->backoff_ms = 2000;
	if (was_up) {
		c->out_len = c->out_off = 0;
		uac_conn_lost(ld);
	}
}

int tcp_uac_init(struct load *ld, const struct sockaddr_storage *bind_to, socklen_t blen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	ld->uac_conn = conn_new(ld, -1, true);
	if (!ld->uac_conn)
		return -ENOMEM;
	if (bind_to) {
		memcpy(&ld->uac_bind, bind_to, blen);
		ld->uac_bind_len = blen;
	}
	/* the address Via and Contact name: the one routed to TARGET */
	fd = socket(ld->o.target.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind_to) {
		memcpy(&ss, bind_to, blen);
	} else if (connect(fd, (void *)&ld->o.target, ld->o.target_len) ||
		   getsockname(fd, (void *)&ss, &sl)) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	if (!bind_to)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	ld_format_host(&ss, ld->uac_host, sizeof(ld->uac_host));
	return 0; /* tcp_tick() connects */
}

int tcp_uas_listen(struct load *ld, const char *ip, unsigned port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;
	socklen_t sl;
	int fd, one = 1;

	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&ss, sl) || listen(fd, 128)) {
		int err = -errno;

		close(fd);
		return err;
	}
	ld->lfd = fd;
	ld_format_host(&ss, ld->uas_host, sizeof(ld->uas_host));
	return 0;
}

void tcp_close_all(struct load *ld)
{
	conn_free(ld->uac_conn);
	ld->uac_conn = NULL;
	for (unsigned i = 0; i < ld->nconns; i++)
		conn_free(ld->conns[i]);
	ld->nconns = 0;
	if (ld->lfd >= 0)
		close(ld->lfd);
	ld->lfd = -1;
}

char *tcp_next(struct load *ld, struct ld_conn *c)
{
	if (c->out_len + LD_MSG_MAX > LD_TCP_OUT)
		tcp_flush(ld, c);
	if (c->out_len + LD_MSG_MAX > LD_TCP_OUT)
		return NULL;
	return c->out + c->out_len;
}

void tcp_commit(struct ld_conn *c, size_t len)
{
	c->out_len += len;
}

/* Writes what is pending; an error is left for the next read to find
 * (the peer closed, so POLLIN/POLLHUP comes). */
void tcp_flush(struct load *ld, struct ld_conn *c)
{
	(void)ld;
	if (c->fd < 0 || !c->up)
		return;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off > LD_TCP_OUT / 2) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
}

void tcp_flush_all(struct load *ld)
{
	if (ld->uac_conn)
		tcp_flush(ld, ld->uac_conn);
	for (unsigned i = 0; i < ld->nconns; i++)
		tcp_flush(ld, ld->conns[i]);
}

/* Frames and hands over every whole message in C's input.  Returns how
 * many, or -EBADMSG when the stream cannot be framed (a header block or
 * body larger than the buffer). */
static int frame(struct load *ld, struct ld_conn *c)
{
	size_t off = 0;
	int n = 0;

	for (;;) {
		const char *p = c->in + off, *e;
		size_t avail = c->in_len - off, total;
		struct sl_msg m;

		while (avail && (*p == '\r' || *p == '\n')) { /* keep-alives */
			p++;
			off++;
			avail--;
		}
		e = memmem(p, avail, "\r\n\r\n", 4);
		if (!e) {
			if (avail > 65535)
				return -EBADMSG;
			break;
		}
		if (sl_scan(p, (size_t)(e + 4 - p), &m)) {
			ld->st.junk++;
			return -EBADMSG;
		}
		total = (size_t)(e + 4 - p) + m.content_length;
		if (total > 65535)
			return -EBADMSG;
		if (total > avail)
			break;
		ld_rx(ld, NULL, c, p, total, NULL);
		off += total;
		n++;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return n;
}

/* Reads what C has; returns messages read, or -errno when C is gone. */
static int conn_read(struct load *ld, struct ld_conn *c)
{
	int total = 0;

	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, LD_TCP_IN - c->in_len, MSG_DONTWAIT);
		int k;

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			return -errno;
		}
		ld->now_us = ld_mono_us();
		c->in_len += (size_t)n;
		k = frame(ld, c);
		if (k < 0)
			return k;
		total += k;
		if (c->in_len == LD_TCP_IN)
			return -EBADMSG;
	}
}

unsigned tcp_pollfds(struct load *ld, struct pollfd *pf, unsigned max)
{
	unsigned n = 0;

	if (ld->uac_conn && ld->uac_conn->fd >= 0 && n < max) {
		pf[n].fd = ld->uac_conn->fd;
		pf[n].events = (short)(ld->uac_conn->up ? POLLIN : POLLOUT);
		pf[n++].revents = 0;
	}
	if (ld->lfd >= 0 && n < max) {
		pf[n].fd = ld->lfd;
		pf[n].events = POLLIN;
		pf[n++].revents = 0;
	}
	for (unsigned i = 0; i < ld->nconns && n < max; i++) {
		pf[n].fd = ld->conns[i]->fd;
		pf[n].events = POLLIN;
		pf[n++].revents = 0;
	}
	return n;
}

static void uas_accept(struct load *ld)
{
	for (;;) {
		int fd = accept4(ld->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct ld_conn *c;

		if (fd < 0)
			return;
		if (ld->nconns == LD_MAX_CONNS) {
			close(fd);
			ld->st.transport++;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = conn_new(ld, fd, false);
		if (!c) {
			close(fd);
			continue;
		}
		c->up = true;
		ld->conns[ld->nconns++] = c;
	}
}

/* Handles the events in PF[0..N) (from tcp_pollfds(), in that order); with
 * ALL, reads every connection whatever its events.  Returns messages read. */
unsigned tcp_service(struct load *ld, const struct pollfd *pf, unsigned n, bool all)
{
	unsigned k = 0, got = 0;
	struct ld_conn *c = ld->uac_conn;

	if (c && c->fd >= 0 && k < n) {
		short ev = pf[k++].revents;

		if (!c->up && ev) {
			int err = 0;
			socklen_t el = sizeof(err);

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				uac_lost(ld, -err);
			} else {
				c->up = true;
				ld->backoff_ms = 0;
				tcp_flush(ld, c);
			}
		} else if (c->up && (ev || all)) {
			int r = conn_read(ld, c);

			if (r < 0)
				uac_lost(ld, r);
			else
				got += (unsigned)r;
		}
	}
	if (ld->lfd >= 0 && k < n) {
		if (pf[k++].revents || all)
			uas_accept(ld);
	}
	for (unsigned i = 0; i < ld->nconns; i++) {
		bool ready = all || (k + i < n && pf[k + i].revents);
		int r;

		if (!ready)
			continue;
		r = conn_read(ld, ld->conns[i]);
		if (r >= 0) {
			got += (unsigned)r;
			continue;
		}
		conn_free(ld->conns[i]);
		ld->conns[i] = ld->conns[--ld->nconns];
		ld->conns[ld->nconns] = NULL;
		/* the moved one is read on the next round */
		n = 0;
	}
	return got;
}

void tcp_tick(struct load *ld)
{
	if (ld->uac_conn && ld->uac_conn->fd < 0 && ld->now_us >= ld->reconnect_at_us) {
		int err = uac_connect(ld);

		if (err)
			uac_lost(ld, err);
	}
}
