#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/khash.h"
#include "core/log.h"
#include "sip/msg.h"
#include "sip/transport.h"

/* TCP connections live in a slot table; a connection id is (generation << 32
 * | slot), so an id kept in a transaction after its connection closed can
 * never reach a newer connection in the same slot. */
#define TCP_MAX_CONNS 65536
#define TCP_ADDR_BUCKETS 4096

/* Connections open from one IP address (any port). */
struct src_count {
	struct sockaddr_storage ip;
	unsigned n;
	struct src_count *next;
};

struct tcp_conn {
	struct sip_transport *t;
	struct loop_stream *s;
	bool inbound;
	uint64_t born_ms, last_ms; /* opened, last message or keep-alive */
	uint64_t msgs;
	struct src_count *src;
	/* Framing resumes where it stopped (a sender that drips bytes must not
	 * make us parse the same header section again at every byte). */
	struct sipmsg_framer fr;
	uint32_t slot;
	uint32_t gen;
	struct sip_peer peer;
	struct tcp_conn *hnext; /* by remote address */
};

struct sip_transport {
	struct loop *l;
	int udp_fd, tcp_fd;
	bool have_src;
	struct sockaddr_storage src;
	sipt_rx_fn fn;
	sipt_err_fn err_fn;
	void *arg;
	struct sipt_stats st;
	struct tcp_conn **conns; /* TCP_MAX_CONNS slots */
	uint32_t *gens;
	uint32_t *free_slots; /* a stack: O(1) to take and give back */
	uint32_t nfree;
	struct tcp_conn *by_addr[TCP_ADDR_BUCKETS];
	struct src_count *by_src[TCP_ADDR_BUCKETS];
	uint8_t src_key[crypto_shorthash_KEYBYTES];
	struct sipt_limits lim;
	struct timer sweep;
	struct log_rl rl_full, rl_source; /* refusals: the table, one address */
};

size_t sipt_ip_bytes(const struct sockaddr_storage *ss, const uint8_t **p)
{
	if (ss->ss_family == AF_INET6) {
		*p = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
		return 16;
	}
	*p = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
	return 4;
}

static unsigned addr_hash(const struct sockaddr_storage *ss)
{
	uint8_t k[2 + 2 + 16];
	const uint8_t *ip;
	size_t n = sipt_ip_bytes(ss, &ip);

	/* Family, port and address only: a sockaddr's padding is not key. */
	memcpy(k, &ss->ss_family, 2);
	memcpy(k + 2,
	       ss->ss_family == AF_INET6
		       ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_port
		       : (const void *)&((const struct sockaddr_in *)ss)->sin_port,
	       2);
	memcpy(k + 4, ip, n);
	return (unsigned)(khash(k, 4 + n) % TCP_ADDR_BUCKETS);
}

/* The count of connections from IP's address; created (at 0) when CREATE. */
static struct src_count *src_get(struct sip_transport *t, const struct sockaddr_storage *ip,
				 bool create)
{
	const uint8_t *b, *o;
	size_t n = sipt_ip_bytes(ip, &b);
	uint64_t h;
	struct src_count *sc;

	/* Keyed: a sender cannot pick addresses that share one chain. */
	crypto_shorthash((unsigned char *)&h, b, n, t->src_key);
	for (sc = t->by_src[h % TCP_ADDR_BUCKETS]; sc; sc = sc->next)
		if (sc->ip.ss_family == ip->ss_family && sipt_ip_bytes(&sc->ip, &o) == n &&
		    !memcmp(o, b, n))
			return sc;
	if (!create || !(sc = calloc(1, sizeof(*sc))))
		return NULL;
	sc->ip = *ip;
	sc->next = t->by_src[h % TCP_ADDR_BUCKETS];
	t->by_src[h % TCP_ADDR_BUCKETS] = sc;
	return sc;
}

/* Out of the table and freed (its count is 0). */
static void src_free(struct sip_transport *t, struct src_count *sc)
{
	const uint8_t *b;
	size_t n;
	uint64_t h;

	n = sipt_ip_bytes(&sc->ip, &b);
	crypto_shorthash((unsigned char *)&h, b, n, t->src_key);
	for (struct src_count **pp = &t->by_src[h % TCP_ADDR_BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == sc) {
			*pp = sc->next;
			break;
		}
	free(sc);
}

static void src_put(struct sip_transport *t, struct src_count *sc)
{
	if (sc && !--sc->n)
		src_free(t, sc);
}

bool sipt_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port &&
	       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

static void addr_index_del(struct sip_transport *t, struct tcp_conn *c)
{
	for (struct tcp_conn **pp = &t->by_addr[addr_hash(&c->peer.addr)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			return;
		}
	}
}

const char *sipt_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

static void udp_rx(void *arg, int fd, const struct loop_dgram *d)
{
	struct sip_transport *t = arg;
	struct sip_peer p = { 0 };

	(void)fd;
	t->st.udp_in++;
	if (d->truncated) {
		t->st.udp_truncated++;
		return;
	}
	if (d->srclen > sizeof(p.addr))
		return;
	p.proto = SIP_PROTO_UDP;
	memcpy(&p.addr, d->src, d->srclen);
	p.addrlen = d->srclen;
	p.local = d->dst;
	t->fn(t->arg, &p, d->buf, d->len);
}

static size_t tcp_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct tcp_conn *c = arg;
	struct sip_transport *t = c->t;
	size_t used = 0;

	while (used < len) {
		ssize_t n = sipmsg_framer_next(&c->fr, buf + used, len - used);

		if (n == 0)
			break;
		if (n < 0) {
			char a[64];

			t->st.tcp_framing_errors++;
			pr_warn("tcp %s: unframeable SIP stream, closing",
				sipt_addr_str(&c->peer.addr, a, sizeof(a)));
			/* Answers already queued for this peer still go out. */
			loop_stream_close(s, true);
			return len;
		}
		c->last_ms = loop_now(t->l);
		c->msgs++;
		if (buf[used] == '\r' || buf[used] == '\n') {
			t->st.keepalives++;
		} else {
			t->st.tcp_in++;
			t->fn(t->arg, &c->peer, buf + used, (size_t)n);
		}
		used += (size_t)n;
	}
	return used;
}

static void tcp_closed(struct loop_stream *s, void *arg, int err)
{
	struct tcp_conn *c = arg;
	struct sip_transport *t = c->t;

	(void)s;
	if (!t) { /* the transport went first (shutdown) */
		free(c);
		return;
	}
	if (err && err != -ECONNRESET && err != -EPIPE)
		pr_debug("tcp connection closed: %s", strerror(-err));
	addr_index_del(t, c);
	t->conns[c->slot] = NULL;
	t->gens[c->slot]++;
	t->free_slots[t->nfree++] = c->slot;
	src_put(t, c->src);
	t->st.tcp_open--;
	/* Out of the tables first: the callback may send (and connect) again. */
	if (err && t->err_fn)
		t->err_fn(t->arg, &c->peer, err);
	free(c);
}

int sipt_peer_set(struct sip_peer *p, enum sip_proto proto, const char *ip, unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&p->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p->addr;

	memset(p, 0, sizeof(*p));
	p->proto = proto;
	if (port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		p->addrlen = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		p->addrlen = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

void sipt_set_error_fn(struct sip_transport *t, sipt_err_fn fn)
{
	t->err_fn = fn;
}

static const struct loop_stream_ops tcp_ops = {
	.on_data = tcp_data,
	.on_close = tcp_closed,
};

/* Registers a connection for FD in a free slot; NULL when full. */
static struct tcp_conn *conn_new(struct sip_transport *t, const struct sockaddr_storage *peer,
				 socklen_t peerlen)
{
	struct tcp_conn *c;
	uint32_t slot;

	if (!t->nfree) {
		t->st.tcp_refused++;
		t->st.tcp_table_full++;
		log_warn_rl(&t->rl_full, loop_now(t->l), "tcp: %u connections open, refusing more",
			    TCP_MAX_CONNS);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	slot = t->free_slots[--t->nfree];
	c->born_ms = c->last_ms = loop_now(t->l);
	c->t = t;
	c->slot = slot;
	c->gen = t->gens[slot];
	c->peer.proto = SIP_PROTO_TCP;
	memcpy(&c->peer.addr, peer, peerlen);
	c->peer.addrlen = peerlen;
	/* +1: a connection id is never 0, which means "no connection". */
	c->peer.conn = ((uint64_t)c->gen + 1) << 32 | slot;
	t->conns[slot] = c;
	t->st.tcp_open++;
	c->hnext = t->by_addr[addr_hash(peer)];
	t->by_addr[addr_hash(peer)] = c;
	return c;
}

static void conn_abort(struct sip_transport *t, struct tcp_conn *c)
{
	addr_index_del(t, c);
	t->conns[c->slot] = NULL;
	t->free_slots[t->nfree++] = c->slot;
	src_put(t, c->src);
	t->st.tcp_open--;
	free(c);
}

static void tcp_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	struct sip_transport *t = arg;
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	struct src_count *sc = src_get(t, peer, true);
	struct tcp_conn *c;
	int one = 1;

	/* One address may hold only so many: a flood of connections from one
	 * host cannot take the table (65,536) from everyone else. */
	if (!sc || sc->n >= t->lim.max_per_source) {
		char a[64];

		t->st.tcp_refused++;
		log_warn_rl(&t->rl_source, loop_now(t->l),
			    "tcp: connection from %s refused: %u open from that address",
			    sipt_addr_str(peer, a, sizeof(a)), sc ? sc->n : 0);
		if (sc && !sc->n)
			src_free(t, sc);
		close(fd);
		return;
	}
	c = conn_new(t, peer, peerlen);
	if (!c) {
		if (!sc->n)
			src_free(t, sc);
		close(fd);
		return;
	}
	sc->n++;
	c->src = sc;
	c->inbound = true;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!getsockname(fd, (struct sockaddr *)&local, &ll))
		c->peer.local = local;
	t->st.tcp_accepted++;
	c->s = loop_stream_add(t->l, fd, &tcp_ops, c);
	if (!c->s)
		conn_abort(t, c);
}

/* An outgoing connection to TO (RFC 3261 §18.1.1), from the VIP when there
 * is one, so the far end sees the address that survives a failover. */
static struct tcp_conn *tcp_connect(struct sip_transport *t, const struct sip_peer *to)
{
	struct tcp_conn *c;
	int fd, one = 1;

	fd = socket(to->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t->have_src && t->src.ss_family == to->addr.ss_family) {
		struct sockaddr_storage src = t->src;

		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		((struct sockaddr_in *)&src)->sin_port = 0; /* same offset for v6 */
		if (bind(fd, (struct sockaddr *)&src,
			 src.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in)))
			pr_warn("tcp: cannot bind the outgoing connection to the VIP: %s",
				strerror(errno));
	}
	c = conn_new(t, &to->addr, to->addrlen);
	if (!c) {
		close(fd);
		return NULL;
	}
	t->st.tcp_connects++;
	c->s = loop_stream_connect(t->l, fd, (const struct sockaddr *)&to->addr, to->addrlen,
				   &tcp_ops, c);
	if (!c->s) {
		conn_abort(t, c);
		return NULL;
	}
	return c;
}

static int open_socket(const struct cfg_sockaddr *a, int type)
{
	int fd, one = 1, ret;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The VIP may be configured on this node only later (takeover). */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		int sz = 8 << 20;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (type == SOCK_STREAM && listen(fd, 1024)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

#define SWEEP_MS 1000

/* Connections that never said anything SIP, or nothing for too long, are
 * closed: idle sockets are how a table is filled from outside. */
static void sweep(struct timer *tm)
{
	struct sip_transport *t = container_of(tm, struct sip_transport, sweep);
	uint64_t now = loop_now(t->l);
	uint64_t open = t->st.tcp_open;

	/* Stop at the last open connection: an idle daemon walks nothing. */
	for (uint32_t i = 0; i < TCP_MAX_CONNS && open; i++) {
		struct tcp_conn *c = t->conns[i];

		if (!c)
			continue;
		open--;
		if (!c->s)
			continue;
		if ((c->inbound && !c->msgs && now - c->born_ms >= t->lim.silent_ms) ||
		    (t->lim.idle_ms && now - c->last_ms >= t->lim.idle_ms)) {
			t->st.tcp_timeouts++;
			loop_stream_close(c->s, false);
		}
	}
	loop_timer_in(t->l, &t->sweep, SWEEP_MS);
}

void sipt_set_limits(struct sip_transport *t, const struct sipt_limits *lim)
{
	t->lim = *lim;
	if (!t->lim.max_per_source)
		t->lim.max_per_source = TCP_MAX_CONNS;
}

int sipt_open(struct sip_transport **out, struct loop *l, const struct cfg_sockaddr *listen_addr,
	      const struct sockaddr_storage *src, sipt_rx_fn fn, void *arg)
{
	struct sip_transport *t;
	char a[64];
	int ret;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->udp_fd = t->tcp_fd = -1;
	t->l = l;
	t->fn = fn;
	t->arg = arg;
	if (src) {
		t->have_src = true;
		t->src = *src;
	}
	t->conns = calloc(TCP_MAX_CONNS, sizeof(*t->conns));
	t->gens = calloc(TCP_MAX_CONNS, sizeof(*t->gens));
	t->free_slots = calloc(TCP_MAX_CONNS, sizeof(*t->free_slots));
	if (!t->conns || !t->gens || !t->free_slots) {
		ret = -ENOMEM;
		goto err;
	}
	/* Slot 0 on top: the first connections get the low ids. */
	for (uint32_t i = 0; i < TCP_MAX_CONNS; i++)
		t->free_slots[t->nfree++] = TCP_MAX_CONNS - 1 - i;
	randombytes_buf(t->src_key, sizeof(t->src_key));
	t->lim = (struct sipt_limits){ .max_per_source = TCP_MAX_CONNS, .silent_ms = 30000 };
	timer_init(&t->sweep, sweep);
	cfg_sockaddr_str(listen_addr, a, sizeof(a));
	ret = open_socket(listen_addr, SOCK_DGRAM);
	if (ret < 0) {
		pr_err("sip: cannot bind UDP %s: %s", a, strerror(-ret));
		goto err;
	}
	t->udp_fd = ret;
	ret = open_socket(listen_addr, SOCK_STREAM);
	if (ret < 0) {
		pr_err("sip: cannot listen on TCP %s: %s", a, strerror(-ret));
		goto err;
	}
	t->tcp_fd = ret;
	ret = loop_dgram_add(l, t->udp_fd, udp_rx, t);
	if (ret)
		goto err;
	ret = loop_listen_add(l, t->tcp_fd, tcp_accept, t);
	if (ret)
		goto err;
	pr_info("sip: listening on %s (UDP, TCP)", a);
	loop_timer_in(l, &t->sweep, SWEEP_MS);
	*out = t;
	return 0;
err:
	sipt_close(t);
	return ret;
}

void sipt_close(struct sip_transport *t)
{
	if (!t)
		return;
	/* Streams and their connection records belong to the loop until it is
	 * freed (it calls on_close, which frees an orphaned record); only the
	 * sockets and tables are ours. */
	if (t->udp_fd >= 0)
		close(t->udp_fd);
	if (t->tcp_fd >= 0) {
		/* Leaves LISTEN at once, so a restarted daemon can bind the port
		 * even while the ring still holds the file for a moment. */
		shutdown(t->tcp_fd, SHUT_RDWR);
		close(t->tcp_fd);
	}
	timer_del(loop_timers(t->l), &t->sweep);
	for (uint32_t i = 0; t->conns && i < TCP_MAX_CONNS; i++) {
		if (t->conns[i])
			t->conns[i]->t = NULL;
	}
	for (unsigned b = 0; b < TCP_ADDR_BUCKETS; b++)
		while (t->by_src[b]) {
			struct src_count *sc = t->by_src[b];

			t->by_src[b] = sc->next;
			free(sc);
		}
	free(t->conns);
	free(t->gens);
	free(t->free_slots);
	free(t);
}

/* The open connection with id CONN, or NULL. */
static struct tcp_conn *conn_get(const struct sip_transport *t, uint64_t conn)
{
	uint32_t slot = (uint32_t)(conn & 0xffffffffu);
	struct tcp_conn *c = conn && slot < TCP_MAX_CONNS ? t->conns[slot] : NULL;

	return c && c->peer.conn == conn ? c : NULL;
}

bool sipt_conn_open(const struct sip_transport *t, uint64_t conn)
{
	return conn_get(t, conn) != NULL;
}

int sipt_send(struct sip_transport *t, const struct sip_peer *to, const char *buf, size_t len)
{
	const struct sockaddr *from = NULL;
	struct tcp_conn *c;
	int ret;

	if (to->proto == SIP_PROTO_UDP) {
		if (t->have_src)
			from = (const struct sockaddr *)&t->src;
		else if (to->local.ss_family)
			from = (const struct sockaddr *)&to->local;
		ret = loop_dgram_send(t->l, t->udp_fd, buf, len, (const struct sockaddr *)&to->addr,
				      to->addrlen, from);
		if (ret)
			t->st.udp_send_errors++;
		else
			t->st.udp_out++;
		return ret;
	}
	c = conn_get(t, to->conn);
	if (!c && to->reply_port) {
		/* §18.2.2: the connection the request came on is gone; its
		 * source port was the client's, its Via names where it listens. */
		struct sip_peer alt = *to;

		((struct sockaddr_in *)&alt.addr)->sin_port = htons(to->reply_port); /* v6: same */
		alt.conn = 0;
		alt.reply_port = 0;
		return sipt_send(t, &alt, buf, len);
	}
	/* The connection is gone, or there never was one: reuse any open
	 * connection to that address, else open one. */
	if (!c) {
		for (c = t->by_addr[addr_hash(&to->addr)]; c; c = c->hnext)
			if (sipt_same_addr(&c->peer.addr, &to->addr))
				break;
	}
	if (!c && !(c = tcp_connect(t, to))) {
		t->st.tcp_send_errors++;
		return -ENOTCONN;
	}
	ret = loop_stream_write(c->s, buf, len);
	if (ret)
		t->st.tcp_send_errors++;
	else
		t->st.tcp_out++;
	return ret;
}

const struct sipt_stats *sipt_stats(const struct sip_transport *t)
{
	return &t->st;
}
